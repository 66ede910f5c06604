//! Attempts: the stretches of a journal written for one version of a plan.
//!
//! When a run ends in a final state (completed, or rolled back) and the plan
//! is then changed (the fix of what failed), the next `run` does not need a
//! fresh journal: it starts a new attempt in the same one. Its records carry
//! the new plan's hash; steps an earlier attempt left done, and that did not
//! change, keep their done state; changed ones start fresh. Reading an
//! earlier attempt needs no copy of its plan: its records say which steps
//! ended done (the events), how it ended (the transitions), and what each
//! step was (the fingerprints of its `run_started`).

use std::collections::BTreeSet;
use std::ops::Range;

use super::event::Event;
use super::record::RunRecord;
use crate::journal::Record;

/// How an attempt's last run ended, from its transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptEnd {
    /// Every step succeeded.
    Completed,
    /// Rolled back to a rollback point.
    RolledBack,
    /// Halted for the operator.
    Halted,
}

/// One attempt of a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The plan hash its records carry.
    pub plan_hash: u64,
    /// Its records, as indices into the journal's.
    pub records: Range<usize>,
    /// How many runs (and resumes) it holds: its `run_started` records.
    pub runs: usize,
    /// How its last run ended; `None` while it is unfinished.
    pub end: Option<AttemptEnd>,
    /// Steps done when it ended (or now): done by its runs, or before them.
    pub done: BTreeSet<String>,
    /// Each step's fingerprint, from its last `run_started`.
    pub fingerprints: Vec<(String, u64)>,
    /// The time of its first and last record.
    pub span: (String, String),
}

/// Splits a journal's records into attempts: a new one begins at a
/// `run_started` whose plan hash differs from the records before it.
pub fn attempts(records: &[Record<RunRecord>]) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let starts = matches!(record.entry, RunRecord::RunStarted { .. });
        let new = match attempts.last() {
            None => true,
            Some(last) => starts && last.plan_hash != record.plan_hash,
        };
        if new {
            attempts.push(Attempt {
                plan_hash: record.plan_hash,
                records: index..index,
                runs: 0,
                end: None,
                done: BTreeSet::new(),
                fingerprints: Vec::new(),
                span: (record.time.clone(), record.time.clone()),
            });
        }
        let Some(attempt) = attempts.last_mut() else {
            continue;
        };
        attempt.records.end = index + 1;
        // A hook's failure told after the run's end is not part of its time.
        if !matches!(record.entry, RunRecord::HookFailed { .. }) {
            attempt.span.1 = record.time.clone();
        }
        match &record.entry {
            RunRecord::RunStarted {
                already_done,
                steps,
                ..
            } => {
                attempt.runs += 1;
                attempt.end = None;
                attempt.done = already_done.iter().cloned().collect();
                attempt.fingerprints = steps.clone();
            }
            RunRecord::Transition { to, .. } => {
                attempt.end = if to.starts_with("Completed") {
                    Some(AttemptEnd::Completed)
                } else if to.starts_with("RolledBack") {
                    Some(AttemptEnd::RolledBack)
                } else if to.starts_with("Halted") {
                    Some(AttemptEnd::Halted)
                } else {
                    None
                };
            }
            RunRecord::Event { event } => match event {
                Event::StepSucceeded { step }
                | Event::OperatorConfirmed { step }
                | Event::CheckFailed { step, .. }
                | Event::Checked { step, done: true }
                | Event::OperatorAnswered { step, done: true } => {
                    attempt.done.insert(step.clone());
                }
                // Not in effect: never done, or (for a revert in doubt)
                // undone.
                Event::RevertSucceeded { step }
                | Event::Checked { step, done: false }
                | Event::OperatorAnswered { step, done: false } => {
                    attempt.done.remove(step);
                }
                _ => {}
            },
            _ => {}
        }
    }
    attempts
}

impl Attempt {
    /// Steps this attempt left done whose fingerprint is the same in a plan
    /// with `fingerprints`: what a new attempt keeps as done.
    pub fn unchanged_done(&self, fingerprints: &[(String, u64)]) -> Vec<String> {
        self.done
            .iter()
            .filter(|id| {
                let old = self.fingerprints.iter().find(|(s, _)| s == *id);
                let new = fingerprints.iter().find(|(s, _)| s == *id);
                matches!((old, new), (Some((_, a)), Some((_, b))) if a == b)
            })
            .cloned()
            .collect()
    }
}

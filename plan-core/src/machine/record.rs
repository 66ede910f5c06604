//! What a run writes to its journal, and rebuilding a machine from it.
//!
//! The journal holds every [`Event`] fed to the machine, in order, plus
//! notes for people and for resume (effects started, transitions, output).
//! Because the machine is a pure function of its events, replaying the
//! events of the last run into a fresh machine gives back its exact state.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use statig::prelude::*;

use super::event::{Effect, Event, OnFailure, RunEnd, StepStatus};
use super::run::{feed, Outbox, RunMachine};
use super::schedule::{Schedule, Selection};
use crate::plan::Plan;

/// One journal entry of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunRecord {
    /// A run begins: what it selected, so resume rebuilds the same schedule.
    RunStarted {
        /// The plan's name.
        plan: String,
        /// `--phase`, if given.
        phase: Option<String>,
        /// Steps completed by earlier runs, skipped by this one.
        already_done: Vec<String>,
        /// The run's directory (`{{run_dir}}`).
        run_dir: String,
        /// The cutover version that started it.
        version: String,
        /// A fingerprint of each step's action, to say what changed if the
        /// plan no longer matches the journal.
        #[serde(default)]
        steps: Vec<(String, u64)>,
        /// What a step's failure leads to (`--on-failure`); journals from
        /// before it was recorded roll back.
        #[serde(default)]
        on_failure: OnFailure,
    },
    /// An event fed to the machine.
    Event {
        /// The event.
        event: Event,
    },
    /// The driver is about to perform this effect (written and synced first).
    EffectStarted {
        /// The effect.
        effect: Effect,
    },
    /// The machine changed state.
    Transition {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Something the operator should know while a step runs (why it
    /// waits, for instance): for people, not for replay.
    Note {
        /// Step id.
        step: String,
        /// What to say.
        text: String,
    },
    /// What a step printed (bounded).
    Output {
        /// Step id.
        step: String,
        /// Combined stdout and stderr, possibly shortened in the middle.
        text: String,
    },
    /// A command's process group began, here or on an SSH host (it
    /// outlives a crash of the driver; `resume` waits for it before the
    /// step's check decides).
    Process {
        /// Step id.
        step: String,
        /// Where it runs.
        #[serde(flatten)]
        group: ProcessGroup,
    },
    /// What a copy moved, from rsync's `--stats`, for estimates.
    Transferred {
        /// Step id.
        step: String,
        /// Files transferred.
        files: u64,
        /// Bytes of file data transferred.
        bytes: u64,
        /// Wall time of the copy, in milliseconds.
        millis: u64,
    },
    /// Prior state captured before a change, for an exact revert.
    Captured {
        /// Step id.
        step: String,
        /// What was there, as text in a shape the step kind decides.
        state: String,
    },
    /// The run has waited this long for the operator's answer (written once
    /// the wait passes `--remind-after`, and again at each multiple of it).
    OperatorWaiting {
        /// The step asked about; `None` at the point of no return.
        step: Option<String>,
        /// What was asked.
        question: Question,
        /// How long the run has waited so far, in milliseconds.
        waited_ms: u64,
    },
    /// The run's lock across machines (an etcd lease) could no longer be
    /// proven held: no step is started after this (for people, not for
    /// replay; the run stops, resumable).
    LockLost {
        /// Why.
        reason: String,
    },
    /// A hook (`notify`) could not be told of an event: for people, not for
    /// replay; the run went on.
    HookFailed {
        /// The hook, in words (`command ...`, `webhook URL`).
        hook: String,
        /// The event (`step_succeeded`, ...).
        event: String,
        /// The step the event is about, if one.
        #[serde(default)]
        step: Option<String>,
        /// What went wrong.
        error: String,
    },
    /// How a question to the operator was answered, and by whom: the audit
    /// trail keeps what a person typed apart from what a flag decided.
    Answered {
        /// The step asked about; `None` at the point of no return.
        step: Option<String>,
        /// What was asked.
        question: Question,
        /// The answer, in words (`yes`, `no`, `go`, `retry`, ...).
        answer: String,
        /// Who answered.
        by: AnsweredBy,
        /// How long the run waited for it, in milliseconds.
        waited_ms: u64,
    },
    /// `cutover probe` looked at the plan's hosts (the first record of a
    /// probe's record file, which holds no run): what it selected, so that
    /// estimates use its measurements only for the steps it looked at.
    ProbeStarted {
        /// The plan's name.
        plan: String,
        /// `--phase`, if given.
        phase: Option<String>,
        /// The cutover version that probed.
        version: String,
        /// The fingerprint of each step probed.
        steps: Vec<(String, u64)>,
    },
    /// What a probe measured of an `Rsync` step, for estimates: what its
    /// dry run found pending, how long the dry run took, and a timed
    /// transfer between its two hosts.
    Probed {
        /// Step id.
        step: String,
        /// Files pending.
        files: u64,
        /// Bytes of file data pending.
        bytes: u64,
        /// The dry run's wall time, in milliseconds.
        scan_millis: u64,
        /// Bytes of the timed transfer, when one was made.
        #[serde(default)]
        rate_bytes: Option<u64>,
        /// Its wall time, in milliseconds.
        #[serde(default)]
        rate_millis: Option<u64>,
    },
}

/// A question a run asks its operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// Perform a manual step and confirm it.
    Confirm,
    /// Did an in-doubt step without a check take effect?
    InDoubt,
    /// Undo a step by hand.
    RevertByHand,
    /// Cross the point of no return (type `go`).
    CrossNoReturn,
    /// A step failed: retry, roll back or halt.
    OnFailure,
}

/// Who gave an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// A person, at the terminal (Ctrl-C at a prompt included).
    Operator,
    /// A command-line flag given in advance (`--yes`, `--assume`).
    Flag,
}

/// A process group a step's command runs in, as the journal records it and
/// `resume` finds it: the one type for a command's group, here or remote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    /// The SSH host; `None` for this machine.
    #[serde(default)]
    pub host: Option<String>,
    /// Process group id (on that host): the group leader's pid.
    pub pgid: i32,
    /// The leader's start time (from `/proc`), to tell a reused pid apart;
    /// `None` where it is not known (yet).
    pub start_time: Option<u64>,
}

impl ProcessGroup {
    /// The host's name: the SSH host, or the built-in `local`.
    pub fn host_name(&self) -> &str {
        self.host.as_deref().unwrap_or(crate::plan::Host::LOCAL)
    }
}

/// One run found in a journal.
#[derive(Clone)]
pub struct ReplayedRun {
    /// `--phase` of the run.
    pub phase: Option<String>,
    /// Steps skipped because earlier runs completed them.
    pub already_done: Vec<String>,
    /// The run's directory.
    pub run_dir: String,
    /// The machine as the journal leaves it.
    pub machine: StateMachine<RunMachine>,
    /// Steps whose forward or revert effect was started.
    pub started: Vec<String>,
    /// Every process group a step's commands ran in that is not proven gone:
    /// (step, group). A group is known from its `process` record until an
    /// event settles its step (any event but `step_in_doubt`, which says the
    /// outcome, and so the command, is unknown), across any number of
    /// crashes and resumes.
    pub processes: Vec<(String, ProcessGroup)>,
    /// The prior state each step captured before its change: (step, state).
    pub captured: Vec<(String, String)>,
    /// How it ended, if it did.
    pub end: Option<RunEnd>,
    /// Index of its `RunStarted` record.
    pub first_record: usize,
}

/// Why a journal cannot be replayed against a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Records before the first `RunStarted`.
    #[error("the journal does not begin with a run_started record")]
    NoRunStarted,
    /// The journal names steps the plan does not have.
    #[error("the journal mentions step `{0}`, which this plan does not have in that run")]
    UnknownStep(String),
}

/// Rebuilds every run of a journal against `plan`.
pub fn replay(plan: &Plan, records: &[RunRecord]) -> Result<Vec<ReplayedRun>, ReplayError> {
    let mut runs: Vec<ReplayedRun> = Vec::new();
    let mut started: HashSet<String> = HashSet::new();
    for (index, record) in records.iter().enumerate() {
        match record {
            RunRecord::RunStarted {
                phase,
                already_done,
                run_dir,
                on_failure,
                ..
            } => {
                if let Some(run) = runs.last_mut() {
                    run.started = started.drain().collect();
                }
                let selection = Selection {
                    phase: phase.clone(),
                    already_done: already_done.iter().cloned().collect(),
                };
                let schedule = Arc::new(Schedule::new(plan, &selection));
                runs.push(ReplayedRun {
                    phase: phase.clone(),
                    already_done: already_done.clone(),
                    run_dir: run_dir.clone(),
                    machine: RunMachine::new(schedule)
                        .with_on_failure(*on_failure)
                        .state_machine(),
                    started: Vec::new(),
                    processes: Vec::new(),
                    captured: Vec::new(),
                    end: None,
                    first_record: index,
                });
            }
            RunRecord::Event { event } => {
                let run = runs.last_mut().ok_or(ReplayError::NoRunStarted)?;
                if let Some(step) = event.step() {
                    if run.machine.schedule().index_of(step).is_none() {
                        return Err(ReplayError::UnknownStep(step.to_owned()));
                    }
                    started.remove(step);
                    // The step's commands returned (or were killed at their
                    // deadline): their groups are gone. Not so when its
                    // outcome is unknown.
                    if !matches!(event, Event::StepInDoubt { .. }) {
                        run.processes.retain(|(s, _)| s != step);
                    }
                }
                let mut outbox = Outbox::default();
                for effect in feed(&mut run.machine, event, &mut outbox) {
                    if let Effect::Finished { end } = effect {
                        run.end = Some(end);
                    }
                }
            }
            RunRecord::EffectStarted {
                effect: Effect::Forward { step, .. } | Effect::Revert { step },
            } => {
                started.insert(step.clone());
            }
            RunRecord::Captured { step, state } => {
                let run = runs.last_mut().ok_or(ReplayError::NoRunStarted)?;
                // The first capture is what was there before the plan touched it.
                if !run.captured.iter().any(|(s, _)| s == step) {
                    run.captured.push((step.clone(), state.clone()));
                }
            }
            RunRecord::Process { step, group } => {
                let run = runs.last_mut().ok_or(ReplayError::NoRunStarted)?;
                // The same group again (its leader's start time learned
                // later) replaces what was known of it; other groups of the
                // step stay known.
                run.processes
                    .retain(|(s, g)| !(s == step && g.host == group.host && g.pgid == group.pgid));
                run.processes.push((step.clone(), group.clone()));
            }
            _ if runs.is_empty() => return Err(ReplayError::NoRunStarted),
            _ => {}
        }
    }
    if let Some(run) = runs.last_mut() {
        let mut list: Vec<String> = started.into_iter().collect();
        list.sort();
        run.started = list;
    }
    Ok(runs)
}

/// Steps that finished runs left done (completed and not reverted).
pub fn done_by_runs(runs: &[ReplayedRun]) -> HashSet<String> {
    let mut done: HashSet<String> = HashSet::new();
    for run in runs {
        let schedule = run.machine.schedule();
        for (ix, status) in run.machine.statuses().iter().enumerate() {
            let id = &schedule.steps[ix].id;
            match status {
                StepStatus::Done => {
                    done.insert(id.clone());
                }
                StepStatus::Reverted => {
                    done.remove(id);
                }
                _ => {}
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::decode;
    use crate::machine::State;
    use crate::{load_str, Settings, Source};

    /// Journals real builds wrote (see `tests/fixtures/journals/README.md`),
    /// with the plans they ran: today's code reads them and rebuilds the
    /// same finished run.
    #[test]
    fn replays_journals_written_by_earlier_builds() {
        let fixtures = [
            (
                "ok.ron",
                include_str!("../../tests/fixtures/journals/ok.ron"),
                include_str!("../../tests/fixtures/journals/ok.dc8aab0.jsonl"),
                4,
            ),
            (
                "gate.ron",
                include_str!("../../tests/fixtures/journals/gate.ron"),
                include_str!("../../tests/fixtures/journals/gate.issue9.jsonl"),
                2,
            ),
        ];
        for (name, plan_text, journal_text, steps) in fixtures {
            let plan = load_str(Source::new(name, plan_text), &Settings::default())
                .plan
                .unwrap_or_else(|| panic!("{name} is valid"));
            let journal = decode::<RunRecord>(journal_text)
                .unwrap_or_else(|e| panic!("the journal of {name} decodes: {e}"));
            assert_eq!(journal.torn_tail, None, "{name}");
            assert!(
                journal.records.iter().all(|r| r.plan_hash == plan.hash),
                "{name}: the journal is for another plan (or the plan hash changed)"
            );
            let records: Vec<RunRecord> = journal.records.into_iter().map(|r| r.entry).collect();
            let runs = replay(&plan, &records)
                .unwrap_or_else(|e| panic!("the journal of {name} replays: {e}"));
            let [run] = runs.as_slice() else {
                panic!("{name}: {} runs instead of one", runs.len());
            };
            assert_eq!(run.end, Some(RunEnd::Completed), "{name}");
            assert_eq!(run.machine.state(), &State::Completed {}, "{name}");
            assert_eq!(run.machine.statuses().len(), steps, "{name}");
            assert!(
                run.machine
                    .statuses()
                    .iter()
                    .all(|s| *s == StepStatus::Done),
                "{name}: {:?}",
                run.machine.statuses()
            );
            assert!(run.started.is_empty(), "{name}: {:?}", run.started);
        }
    }

    /// The audit trail of the newer journal: the point of no return was
    /// crossed by `--yes`, and the journal says the flag answered.
    #[test]
    fn the_issue9_journal_records_who_crossed_the_point_of_no_return() {
        let text = include_str!("../../tests/fixtures/journals/gate.issue9.jsonl");
        let journal = decode::<RunRecord>(text).expect("decodes");
        let answered: Vec<&RunRecord> = journal
            .records
            .iter()
            .map(|r| &r.entry)
            .filter(|e| matches!(e, RunRecord::Answered { .. }))
            .collect();
        assert!(
            matches!(
                answered.as_slice(),
                [RunRecord::Answered {
                    question: Question::CrossNoReturn,
                    by: AnsweredBy::Flag,
                    ..
                }]
            ),
            "{answered:?}"
        );
    }
}

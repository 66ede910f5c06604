//! Durations measured in the journals of earlier runs or rehearsals.
//!
//! A step's duration is the time from the journal's `effect_started` record
//! of its `forward` (or, for a manual step, its `confirm`) to the event that
//! says it succeeded (`step_succeeded`, `operator_confirmed`). Only
//! successful attempts are measured: a failed attempt's length says how
//! soon it failed, not how long the step takes, and failures are modelled
//! by the failure rate. The measured time includes the step's `settle`; the
//! simulator takes it out again, as it adds `settle` itself.
//!
//! In an estimate, a step with observations draws one of them (each equally
//! likely); steps without fall back to the plan's duration model.

use std::collections::BTreeMap;
use std::time::Duration;

use plan_core::journal::decode;
use plan_core::machine::{Effect, Event, RunRecord};

use crate::SimError;

/// Observed durations per step id, from one or more journals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    observations: BTreeMap<String, Vec<Duration>>,
    journals: usize,
}

impl Measured {
    /// No observations yet.
    pub fn new() -> Measured {
        Measured::default()
    }

    /// Adds the durations found in one journal's text; `name` is how errors
    /// call it (its path, usually). Returns how many durations it added.
    pub fn add_journal(&mut self, name: &str, text: &str) -> Result<usize, SimError> {
        let error = |message: String| SimError::Measured {
            journal: name.to_owned(),
            message,
        };
        let journal = decode::<RunRecord>(text).map_err(|e| error(e.to_string()))?;
        let mut started: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
        let mut added = 0;
        for record in &journal.records {
            let time = || {
                record.time.parse::<jiff::Timestamp>().map_err(|e| {
                    error(format!(
                        "record {} has the time `{}`, which is not an RFC 3339 time: {e}",
                        record.seq, record.time
                    ))
                })
            };
            match &record.entry {
                RunRecord::RunStarted { .. } => started.clear(),
                RunRecord::EffectStarted {
                    effect: Effect::Forward { step, .. } | Effect::Confirm { step },
                } => {
                    started.insert(step.clone(), time()?);
                }
                RunRecord::Event { event } => match event {
                    Event::StepSucceeded { step } | Event::OperatorConfirmed { step } => {
                        if let Some(start) = started.remove(step) {
                            let elapsed = time()?.duration_since(start);
                            let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
                            self.observations
                                .entry(step.clone())
                                .or_default()
                                .push(elapsed);
                            added += 1;
                        }
                    }
                    Event::StepFailed { step, .. }
                    | Event::DeadlineExceeded { step }
                    | Event::StepInDoubt { step, .. }
                    | Event::OperatorDeclined { step } => {
                        started.remove(step);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        self.journals += 1;
        Ok(added)
    }

    /// The durations observed for a step, in the order found.
    pub fn observations(&self, step: &str) -> Option<&[Duration]> {
        self.observations.get(step).map(Vec::as_slice)
    }

    /// Every step with observations, by id.
    pub fn steps(&self) -> impl Iterator<Item = (&str, &[Duration])> {
        self.observations
            .iter()
            .map(|(id, v)| (id.as_str(), v.as_slice()))
    }

    /// How many journals were read.
    pub fn journals(&self) -> usize {
        self.journals
    }

    /// Whether no durations were found.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plan_core::journal::encode;

    fn journal(lines: &[(&str, RunRecord)]) -> String {
        lines
            .iter()
            .enumerate()
            .map(|(i, (time, record))| encode(i as u64 + 1, time, 0xabc, record).expect("encodes"))
            .collect()
    }

    fn event(event: Event) -> RunRecord {
        RunRecord::Event { event }
    }

    #[test]
    fn successful_attempts_are_measured_failed_ones_are_not() {
        let start = RunRecord::RunStarted {
            plan: "p".into(),
            phase: None,
            already_done: vec![],
            run_dir: "/tmp/x".into(),
            version: "0".into(),
            steps: vec![],
            on_failure: Default::default(),
        };
        let forward = |step: &str, attempt| RunRecord::EffectStarted {
            effect: Effect::Forward {
                step: step.into(),
                attempt,
            },
        };
        let text = journal(&[
            ("2026-01-01T10:00:00Z", start),
            ("2026-01-01T10:00:01Z", forward("copy", 1)),
            ("2026-01-01T10:00:03Z", forward("hold", 1)),
            (
                "2026-01-01T10:05:01Z",
                event(Event::StepFailed {
                    step: "copy".into(),
                    reason: "x".into(),
                }),
            ),
            ("2026-01-01T10:05:02Z", forward("copy", 2)),
            (
                "2026-01-01T10:06:03Z",
                event(Event::StepSucceeded {
                    step: "hold".into(),
                }),
            ),
            (
                "2026-01-01T10:17:02.500Z",
                event(Event::StepSucceeded {
                    step: "copy".into(),
                }),
            ),
            (
                "2026-01-01T10:18:00Z",
                RunRecord::EffectStarted {
                    effect: Effect::Confirm { step: "ask".into() },
                },
            ),
            (
                "2026-01-01T10:21:00Z",
                event(Event::OperatorConfirmed { step: "ask".into() }),
            ),
        ]);
        let mut measured = Measured::new();
        assert_eq!(measured.add_journal("j", &text).expect("reads"), 3);
        assert_eq!(
            measured.observations("copy"),
            Some(&[Duration::from_millis(720_500)][..])
        );
        assert_eq!(
            measured.observations("hold"),
            Some(&[Duration::from_secs(360)][..])
        );
        assert_eq!(
            measured.observations("ask"),
            Some(&[Duration::from_secs(180)][..])
        );
        assert_eq!(measured.journals(), 1);
    }

    #[test]
    fn a_damaged_journal_is_an_error_naming_it() {
        let err = Measured::new()
            .add_journal("old.journal", "{not json\n{also not}\n")
            .expect_err("corrupt");
        assert!(
            err.to_string()
                .starts_with("measured durations from `old.journal`"),
            "{err}"
        );
    }
}

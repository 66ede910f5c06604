//! Where a real run stands, read from its journal, for an estimate from
//! there on (`cutover watch`).
//!
//! The journal holds every event the run's machine was fed, so replaying it
//! gives the machine exactly as the run has it now; every effect the driver
//! performs is journaled (`effect_started`) before it starts, so what is
//! under way, and since when, is what was started and has had no outcome
//! yet. The simulator then continues from that machine, with that work
//! part done: a step that has run for 40 s is drawn from its durations
//! longer than 40 s, less the 40 s (see [`crate::estimate_from`]).

use std::time::Duration;

use plan_core::journal::Record;
use plan_core::machine::{
    replay, users_change, Command, Effect, Event, ReplayedRun, RunMachine, RunRecord, Selection,
    UsersChange,
};
use plan_core::{Downtime, Plan};
use statig::blocking::StateMachine;

use crate::SimError;

/// A run as its journal leaves it now.
#[derive(Clone)]
pub struct Position {
    pub(crate) selection: Selection,
    /// The attempt's runs, replayed (never empty: the last is the run's
    /// machine now).
    runs: Vec<ReplayedRun>,
    /// Effects under way (steps as schedule indices), and seconds since
    /// each started.
    pub(crate) under_way: Vec<(Command, f64)>,
    /// Seconds users have been down, while they are.
    pub(crate) down_for: Option<f64>,
    /// Seconds of the outages that are over.
    down_before: f64,
    /// Seconds since the first run of the journal's attempt started.
    pub(crate) elapsed: f64,
    /// Seconds since its last run (or resume) started: the window's
    /// deadline counts from there, as the driver counts it.
    pub(crate) run_elapsed: f64,
    /// Seconds from the attempt's first record to its last.
    ended_after: f64,
    /// The `DnsTtl` steps that took effect, and seconds since each did.
    pub(crate) ttl_set: Vec<(String, f64)>,
    pub(crate) ended: bool,
}

impl std::fmt::Debug for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Position")
            .field("selection", &self.selection)
            .field("state", &self.machine().state())
            .field("under_way", &self.under_way)
            .field("down_for", &self.down_for)
            .field("elapsed", &self.elapsed)
            .field("ended", &self.ended)
            .finish()
    }
}

fn time_of(record: &Record<RunRecord>) -> Result<jiff::Timestamp, SimError> {
    record.time.parse().map_err(|e| {
        SimError::Options(format!(
            "journal record {} has the time `{}`, which is not an RFC 3339 time: {e}",
            record.seq, record.time
        ))
    })
}

fn seconds(from: jiff::Timestamp, to: jiff::Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

impl Position {
    /// Where the runs in `records` (one attempt of `plan`: its runs and
    /// resumes, as `cutover status` selects them) stand at `now`.
    pub fn read(
        plan: &Plan,
        records: &[Record<RunRecord>],
        now: jiff::Timestamp,
    ) -> Result<Position, SimError> {
        let entries: Vec<RunRecord> = records.iter().map(|r| r.entry.clone()).collect();
        let runs = replay(plan, &entries).map_err(|e| SimError::Options(e.to_string()))?;
        let run = runs
            .last()
            .ok_or_else(|| SimError::Options("the journal holds no run yet".into()))?;
        let first = records.first().map(time_of).transpose()?.unwrap_or(now);
        let last = records.last().map(time_of).transpose()?.unwrap_or(now);
        // Users down or not, as the driver reads it (`users_change`),
        // across the attempt's runs: a run that stopped while users were
        // down left them down. A `Begins` step's `in_flight` starts the
        // outage that much before the step.
        let mut down_since: Option<jiff::Timestamp> = None;
        // The outages over by now, in seconds.
        let mut down_before = 0.0;
        // What the last run started and has no outcome for yet.
        let mut open: Vec<(Effect, jiff::Timestamp)> = Vec::new();
        let mut run_started = first;
        // When each `DnsTtl` step last took effect.
        let mut ttl_set: Vec<(String, jiff::Timestamp)> = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let at = time_of(record)?;
            let last_run = index >= run.first_record;
            match users_change(plan, &record.entry) {
                Some(UsersChange::Down) if down_since.is_none() => {
                    let lead = match &record.entry {
                        RunRecord::EffectStarted { effect } => effect
                            .step()
                            .and_then(|step| plan.step(step))
                            .filter(|s| s.downtime == Some(Downtime::Begins))
                            .and_then(|s| s.in_flight)
                            .unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    let lead = jiff::SignedDuration::try_from(lead).unwrap_or_default();
                    down_since = Some(at.checked_sub(lead).unwrap_or(at));
                }
                Some(UsersChange::Back) => {
                    if let Some(since) = down_since.take() {
                        down_before += seconds(since, at);
                    }
                }
                _ => {}
            }
            match &record.entry {
                RunRecord::RunStarted { .. } if last_run => run_started = at,
                RunRecord::EffectStarted { effect } if last_run => {
                    open.push((effect.clone(), at));
                }
                RunRecord::Event { event } => {
                    // A TTL set by a step that succeeded, or was found done.
                    if let (true, Some(step)) = (event.took_effect(), event.step()) {
                        if matches!(
                            plan.step(step).map(|s| &s.action),
                            Some(plan_core::Action::DnsTtl { .. })
                        ) {
                            ttl_set.retain(|(s, _)| s != step);
                            ttl_set.push((step.clone(), at));
                        }
                    }
                    let closes = |effect: &Effect| match event.step() {
                        Some(step) => effect.step() == Some(step),
                        None => match event {
                            Event::PreflightPassed | Event::PreflightFailed { .. } => {
                                matches!(effect, Effect::Preflight { .. })
                            }
                            Event::CrossedNoReturn | Event::Abort { .. } => {
                                matches!(effect, Effect::CrossNoReturn { .. })
                            }
                            _ => false,
                        },
                    };
                    open.retain(|(effect, _)| !closes(effect));
                }
                _ => {}
            }
        }
        let schedule = run.machine.schedule();
        let ix = |step: &String| {
            schedule.index_of(step).ok_or_else(|| {
                SimError::Options(format!(
                    "the journal names step `{step}`, which this run does not schedule"
                ))
            })
        };
        let mut under_way = Vec::new();
        for (effect, since) in open {
            let command: Command = match effect {
                Effect::Forward { step, attempt } => Effect::Forward {
                    step: ix(&step)?,
                    attempt,
                },
                Effect::Check { step } => Effect::Check { step: ix(&step)? },
                Effect::Confirm { step } => Effect::Confirm { step: ix(&step)? },
                Effect::AskOperator { step } => Effect::AskOperator { step: ix(&step)? },
                Effect::Revert { step } => Effect::Revert { step: ix(&step)? },
                Effect::AskOnFailure {
                    step,
                    reason,
                    can_roll_back,
                } => Effect::AskOnFailure {
                    step: ix(&step)?,
                    reason,
                    can_roll_back,
                },
                Effect::CrossNoReturn { reason } => Effect::CrossNoReturn { reason },
                Effect::Preflight { hosts } => Effect::Preflight { hosts },
                Effect::Finished { .. } => continue,
            };
            under_way.push((command, seconds(since, now)));
        }
        let (selection, ended) = (
            Selection {
                phase: run.phase.clone(),
                already_done: run.already_done.iter().cloned().collect(),
            },
            run.end.is_some(),
        );
        Ok(Position {
            runs,
            selection,
            ended,
            under_way,
            down_for: down_since.map(|since| seconds(since, now)),
            down_before,
            elapsed: seconds(first, now),
            run_elapsed: seconds(run_started, now),
            ended_after: seconds(first, last),
            ttl_set: ttl_set
                .into_iter()
                .map(|(step, at)| (step, seconds(at, now)))
                .collect(),
        })
    }

    /// The run's machine now: the last run's, replayed.
    pub(crate) fn machine(&self) -> &StateMachine<RunMachine> {
        // invariant: `read` refuses a journal without a run.
        &self.runs[self.runs.len() - 1].machine
    }

    /// The attempt's runs (and resumes), replayed from the journal, the
    /// last one now: for callers that show each step's state.
    pub fn runs(&self) -> &[ReplayedRun] {
        &self.runs
    }

    /// Whether the run has ended (completed, rolled back or halted).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// How long users have been down, while they are.
    pub fn down_for(&self) -> Option<Duration> {
        self.down_for.map(Duration::from_secs_f64)
    }

    /// How long users have been down in all, over the attempt's runs: the
    /// outages that are over and the one under way.
    pub fn downtime(&self) -> Duration {
        Duration::from_secs_f64(self.down_before + self.down_for.unwrap_or(0.0))
    }

    /// From the attempt's first record to its last: how long an ended run
    /// took.
    pub fn took(&self) -> Duration {
        Duration::from_secs_f64(self.ended_after)
    }

    /// How long ago the attempt's first run started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.elapsed)
    }

    /// Whether the run is waiting for nothing: not ended, nothing under way
    /// (it was stopped, or crashed, between two records).
    pub fn stalled(&self) -> bool {
        !self.ended && self.under_way.is_empty()
    }
}

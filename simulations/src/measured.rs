//! What the journals of earlier runs or rehearsals measured, for estimates
//! that follow what really happened (`simulate --measured`, and the same
//! for `announce` and `check`).
//!
//! Per step, and only from runs whose fingerprint of that step (recorded
//! in each `run_started`, as `resume` uses it) is the step's fingerprint in
//! the plan simulated:
//!
//! - **forward durations**: from the `effect_started` record of a
//!   `forward` (or, for a manual step, its `confirm`) to the event that
//!   says it succeeded (`step_succeeded`, `operator_confirmed`). They
//!   include the step's `settle`, which the simulator takes out again. Not
//!   for `WaitTtl`: its wait is the TTL, which the simulator knows.
//! - **time to failure** of failed attempts (`step_failed`,
//!   `deadline_exceeded`, `operator_declined`), retries included;
//! - **attempts and their outcomes**: succeeded, failed, in doubt. They
//!   update the plan's failure rate as a Beta prior worth
//!   [`PRIOR_ATTEMPTS`] attempts: the rate used is
//!   `(PRIOR_ATTEMPTS · rate + failures) / (PRIOR_ATTEMPTS + attempts)`,
//!   so three runs move it but do not make it 0 or 1;
//! - **revert durations** (`effect_started` of a `revert` to
//!   `revert_succeeded`) and revert outcomes, likewise;
//! - **copies**: the bytes and time of each successful `Rsync` (its
//!   `transferred` record), so that a plan that says how much it will
//!   copy (`size`) gets `overhead + size / rate`;
//! - **probes** (the record `cutover probe` writes): what an `Rsync`
//!   step's dry run found pending, how long the dry run took, and a timed
//!   transfer between its hosts; the copy is then drawn as the dry run's
//!   time plus the pending bytes at a measured rate (see
//!   `docs/plan-format.md`, "Estimates from journals");
//! - **what checks found** after a failed or in-doubt attempt (`checked`):
//!   how often the effect was there, from a prior of one half;
//! - **checks of in-doubt steps** (`check` to `checked`), and the
//!   operator's **answers** (the `answered` records: whether an in-doubt
//!   step took effect, the point of no return), for every step alike.
//!
//! A journal of another plan (its `run_started` names another plan) is
//! refused. Steps whose fingerprint changed since a journal was written are
//! not measured from it, and [`Measured::warnings`] names them.

use std::collections::BTreeMap;
use std::time::Duration;

use plan_core::journal::decode;
use plan_core::machine::{Effect, Event, Question, RunRecord};
use plan_core::Plan;

use crate::SimError;

/// How many attempts the plan's own failure rate counts for, against the
/// attempts journals observed.
pub const PRIOR_ATTEMPTS: f64 = 2.0;

/// What journals observed of one step, in one version of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepObservations {
    /// Durations of succeeded attempts.
    pub forward: Vec<Duration>,
    /// Which journal each of `forward` came from (its index, in the order
    /// read), for [`run_paces`].
    pub forward_journals: Vec<usize>,
    /// How long failed attempts ran before they failed.
    pub failed: Vec<Duration>,
    /// Attempts with a known outcome or in doubt.
    pub attempts: u64,
    /// Attempts that failed (deadlines and declined manual steps included).
    pub failures: u64,
    /// Attempts whose outcome was unknown (in doubt).
    pub in_doubt: u64,
    /// Durations of succeeded reverts.
    pub reverts: Vec<Duration>,
    /// Reverts with an outcome.
    pub revert_attempts: u64,
    /// Reverts that failed.
    pub revert_failures: u64,
    /// Successful copies: (the step's whole time, the copy's time, bytes).
    pub copies: Vec<(Duration, Duration, u64)>,
    /// Checks of the step after a failed or in-doubt attempt.
    pub checks: u64,
    /// Those that found its effect there (in part or whole).
    pub found_done: u64,
    /// What the last probe read measured of the copy (`cutover probe`).
    pub probed: Option<ProbedCopy>,
}

/// What `cutover probe` measured of an `Rsync` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbedCopy {
    /// Bytes its dry run found pending.
    pub bytes: u64,
    /// How long the dry run took: walking and comparing both trees, which
    /// the copy does again.
    pub scan: Duration,
    /// A timed transfer between its hosts: bytes, and how long.
    pub rate: Option<(u64, Duration)>,
}

/// One journal read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct JournalSeen {
    name: String,
    plan: String,
    /// Step fingerprints of each run in it (empty: not recorded).
    fingerprints: Vec<(String, u64)>,
}

/// What journals observed, per step id and fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    steps: BTreeMap<(String, Option<u64>), StepObservations>,
    checks: Vec<Duration>,
    answers: Vec<Duration>,
    crossings: Vec<Duration>,
    journals: Vec<JournalSeen>,
}

/// An attempt under way: when it began, and what it copied so far.
struct Open {
    since: jiff::Timestamp,
    copied: Option<(Duration, u64)>,
}

impl Measured {
    /// No observations yet.
    pub fn new() -> Measured {
        Measured::default()
    }

    /// Adds what one journal's text observed; `name` is how errors call it
    /// (its path, usually). Returns how many step outcomes it added.
    pub fn add_journal(&mut self, name: &str, text: &str) -> Result<usize, SimError> {
        let error = |message: String| SimError::Measured {
            journal: name.to_owned(),
            message,
        };
        let journal = decode::<RunRecord>(text).map_err(|e| error(e.to_string()))?;
        let mut forward: BTreeMap<String, Open> = BTreeMap::new();
        let mut reverts: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
        let mut checks: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
        let mut fingerprints: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen = JournalSeen {
            name: name.to_owned(),
            plan: String::new(),
            fingerprints: Vec::new(),
        };
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
            let since = |start: jiff::Timestamp| -> Result<Duration, SimError> {
                Ok(Duration::try_from(time()?.duration_since(start)).unwrap_or(Duration::ZERO))
            };
            let key = |step: &str| (step.to_owned(), fingerprints.get(step).copied());
            match &record.entry {
                RunRecord::RunStarted { plan, steps, .. }
                | RunRecord::ProbeStarted { plan, steps, .. } => {
                    if !seen.plan.is_empty() && seen.plan != *plan {
                        return Err(error(format!(
                            "it holds runs of two plans, `{}` and `{plan}`",
                            seen.plan
                        )));
                    }
                    seen.plan.clone_from(plan);
                    forward.clear();
                    reverts.clear();
                    checks.clear();
                    fingerprints = steps.iter().cloned().collect();
                    for step in steps {
                        if !seen.fingerprints.contains(step) {
                            seen.fingerprints.push(step.clone());
                        }
                    }
                }
                RunRecord::EffectStarted { effect } => match effect {
                    Effect::Forward { step, .. } | Effect::Confirm { step } => {
                        forward.insert(
                            step.clone(),
                            Open {
                                since: time()?,
                                copied: None,
                            },
                        );
                    }
                    Effect::Revert { step } => {
                        reverts.insert(step.clone(), time()?);
                    }
                    Effect::Check { step } => {
                        checks.insert(step.clone(), time()?);
                    }
                    _ => {}
                },
                RunRecord::Transferred {
                    step,
                    bytes,
                    millis,
                    ..
                } => {
                    if let Some(open) = forward.get_mut(step) {
                        open.copied = Some((Duration::from_millis(*millis), *bytes));
                    }
                }
                RunRecord::Probed {
                    step,
                    bytes,
                    scan_millis,
                    rate_bytes,
                    rate_millis,
                    ..
                } => {
                    let seen = self.steps.entry(key(step)).or_default();
                    seen.probed = Some(ProbedCopy {
                        bytes: *bytes,
                        scan: Duration::from_millis(*scan_millis),
                        rate: rate_bytes
                            .zip(*rate_millis)
                            .map(|(b, ms)| (b, Duration::from_millis(ms))),
                    });
                    added += 1;
                }
                RunRecord::Answered {
                    question,
                    waited_ms,
                    ..
                } => {
                    let waited = Duration::from_millis(*waited_ms);
                    match question {
                        Question::InDoubt => self.answers.push(waited),
                        Question::CrossNoReturn => self.crossings.push(waited),
                        _ => {}
                    }
                }
                RunRecord::Event { event } => match event {
                    Event::StepSucceeded { step } | Event::OperatorConfirmed { step } => {
                        if let Some(open) = forward.remove(step) {
                            let took = since(open.since)?;
                            let seen = self.steps.entry(key(step)).or_default();
                            seen.forward.push(took);
                            seen.forward_journals.push(self.journals.len());
                            seen.attempts += 1;
                            if let Some((copy, bytes)) = open.copied {
                                seen.copies.push((took, copy, bytes));
                            }
                            added += 1;
                        }
                    }
                    Event::StepFailed { step, .. }
                    | Event::DeadlineExceeded { step }
                    | Event::OperatorDeclined { step } => {
                        if let Some(open) = forward.remove(step) {
                            let took = since(open.since)?;
                            let seen = self.steps.entry(key(step)).or_default();
                            seen.failed.push(took);
                            seen.attempts += 1;
                            seen.failures += 1;
                            added += 1;
                        }
                    }
                    Event::StepInDoubt { step, .. } if forward.remove(step).is_some() => {
                        let seen = self.steps.entry(key(step)).or_default();
                        seen.attempts += 1;
                        seen.in_doubt += 1;
                        added += 1;
                    }
                    Event::RevertSucceeded { step } => {
                        if let Some(start) = reverts.remove(step) {
                            let took = since(start)?;
                            let seen = self.steps.entry(key(step)).or_default();
                            seen.reverts.push(took);
                            seen.revert_attempts += 1;
                        }
                    }
                    Event::RevertFailed { step, .. } if reverts.remove(step).is_some() => {
                        let seen = self.steps.entry(key(step)).or_default();
                        seen.revert_attempts += 1;
                        seen.revert_failures += 1;
                    }
                    Event::Checked { step, done } => {
                        if let Some(start) = checks.remove(step) {
                            self.checks.push(since(start)?);
                        }
                        let seen = self.steps.entry(key(step)).or_default();
                        seen.checks += 1;
                        seen.found_done += u64::from(*done);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        self.journals.push(seen);
        Ok(added)
    }

    /// Refuses journals of another plan than `plan`.
    pub fn check_plan(&self, plan: &Plan) -> Result<(), SimError> {
        match self
            .journals
            .iter()
            .find(|j| !j.plan.is_empty() && j.plan != plan.name)
        {
            Some(j) => Err(SimError::Measured {
                journal: j.name.clone(),
                message: format!(
                    "it is a journal of the plan `{}`, not of `{}`: its durations say nothing of this plan",
                    j.plan, plan.name
                ),
            }),
            None => Ok(()),
        }
    }

    /// What `plan`'s step `id` (with this fingerprint) was observed doing:
    /// the runs of the same version of the step, and of journals that
    /// recorded no fingerprints.
    pub fn step(&self, id: &str, fingerprint: u64) -> Option<StepObservations> {
        let mut all: Option<StepObservations> = None;
        for key in [Some(fingerprint), None] {
            if let Some(seen) = self.steps.get(&(id.to_owned(), key)) {
                let into = all.get_or_insert_with(StepObservations::default);
                into.forward.extend(&seen.forward);
                into.forward_journals.extend(&seen.forward_journals);
                into.failed.extend(&seen.failed);
                into.attempts += seen.attempts;
                into.failures += seen.failures;
                into.in_doubt += seen.in_doubt;
                into.reverts.extend(&seen.reverts);
                into.revert_attempts += seen.revert_attempts;
                into.revert_failures += seen.revert_failures;
                into.copies.extend(&seen.copies);
                into.checks += seen.checks;
                into.found_done += seen.found_done;
                if seen.probed.is_some() {
                    into.probed = seen.probed;
                }
            }
        }
        all
    }

    /// How long checks of in-doubt steps took.
    pub fn checks(&self) -> &[Duration] {
        &self.checks
    }

    /// How long the operator took to say whether an in-doubt step took effect.
    pub fn answers(&self) -> &[Duration] {
        &self.answers
    }

    /// How long the point of no return waited for its `go`.
    pub fn crossings(&self) -> &[Duration] {
        &self.crossings
    }

    /// What the caller should know about using these journals for `plan`:
    /// which journals recorded steps that have changed since (not
    /// measured from them), and which recorded no fingerprints at all.
    pub fn warnings(&self, plan: &Plan) -> Vec<String> {
        let now: BTreeMap<&str, u64> = plan
            .steps()
            .map(|s| (s.id.as_str(), s.fingerprint()))
            .collect();
        let mut warnings = Vec::new();
        for journal in &self.journals {
            if journal.fingerprints.is_empty() {
                warnings.push(format!(
                    "`{}` does not record which version of each step it ran (an older journal): its measurements are taken as this plan's",
                    journal.name
                ));
                continue;
            }
            let mut changed: Vec<&str> = journal
                .fingerprints
                .iter()
                .filter(|(id, print)| now.get(id.as_str()).is_some_and(|p| p != print))
                .map(|(id, _)| id.as_str())
                .collect();
            changed.sort_unstable();
            changed.dedup();
            if !changed.is_empty() {
                warnings.push(format!(
                    "`{}` ran an earlier version of {}: not measured from it ({} changed since)",
                    journal.name,
                    changed
                        .iter()
                        .map(|id| format!("`{id}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if changed.len() == 1 { "it" } else { "they" },
                ));
            }
        }
        warnings
    }

    /// How many journals were read.
    pub fn journals(&self) -> usize {
        self.journals.len()
    }

    /// Whether no step outcome was found.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// How many journals a step must have been measured in to count for
/// [`run_paces`], and how many journals need a pace for there to be any.
pub const PACE_JOURNALS: usize = 3;

/// How fast each journal's run went against the others: the sum of its
/// measured durations over the sum of the same steps' medians across all
/// journals, counting only steps measured in at least [`PACE_JOURNALS`]
/// journals; `steps` holds, per step, its durations (seconds) and the
/// journal of each. Indexed by journal; `None` for a journal with fewer
/// than two such steps. All `None` when fewer than [`PACE_JOURNALS`]
/// journals have a pace: too few runs to tell a slow run from a slow step.
///
/// Runs are slow together: a loaded host makes every step on it slower,
/// and a step that waits for a backlog waits longer after slow steps grew
/// it. Drawing each step's duration on its own forgets that and makes the
/// total's spread too narrow, so the simulator draws one pace per run and
/// each step's duration from its observations divided by their run's pace.
pub fn run_paces(steps: &[(Vec<f64>, Vec<usize>)], journals: usize) -> Vec<Option<f64>> {
    let mut sums = vec![(0.0_f64, 0.0_f64, 0_usize); journals];
    for (durations, from) in steps {
        let mut distinct = from.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < PACE_JOURNALS {
            continue;
        }
        let mut sorted = durations.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        for (&took, &journal) in durations.iter().zip(from) {
            if let Some(sum) = sums.get_mut(journal) {
                sum.0 += took;
                sum.1 += median;
                sum.2 += 1;
            }
        }
    }
    let paces: Vec<Option<f64>> = sums
        .iter()
        .map(|&(took, median, count)| {
            (count >= 2 && median > 0.0 && took > 0.0).then(|| took / median)
        })
        .collect();
    if paces.iter().flatten().count() < PACE_JOURNALS {
        return vec![None; journals];
    }
    paces
}

/// The Beta posterior mean of a rate: the prior `rate` worth
/// [`PRIOR_ATTEMPTS`] attempts, updated by `hits` in `tries`.
pub fn posterior(rate: f64, hits: u64, tries: u64) -> f64 {
    (PRIOR_ATTEMPTS * rate + hits as f64) / (PRIOR_ATTEMPTS + tries as f64)
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

    fn start(plan: &str, steps: &[(&str, u64)]) -> RunRecord {
        RunRecord::RunStarted {
            plan: plan.into(),
            phase: None,
            already_done: vec![],
            run_dir: "/tmp/x".into(),
            version: "0".into(),
            steps: steps.iter().map(|(s, f)| (s.to_string(), *f)).collect(),
            on_failure: Default::default(),
        }
    }

    fn forward(step: &str, attempt: u32) -> RunRecord {
        RunRecord::EffectStarted {
            effect: Effect::Forward {
                step: step.into(),
                attempt,
            },
        }
    }

    fn failed(step: &str) -> RunRecord {
        event(Event::StepFailed {
            step: step.into(),
            reason: "x".into(),
        })
    }

    fn succeeded(step: &str) -> RunRecord {
        event(Event::StepSucceeded { step: step.into() })
    }

    #[test]
    fn attempts_failures_and_their_times_are_measured() {
        let text = journal(&[
            ("2026-01-01T10:00:00Z", start("p", &[])),
            ("2026-01-01T10:00:01Z", forward("copy", 1)),
            ("2026-01-01T10:00:03Z", forward("hold", 1)),
            ("2026-01-01T10:05:01Z", failed("copy")),
            ("2026-01-01T10:05:02Z", forward("copy", 2)),
            ("2026-01-01T10:06:03Z", succeeded("hold")),
            (
                "2026-01-01T10:17:01Z",
                RunRecord::Transferred {
                    step: "copy".into(),
                    files: 3,
                    bytes: 1_000_000,
                    millis: 700_000,
                },
            ),
            ("2026-01-01T10:17:02.500Z", succeeded("copy")),
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
            (
                "2026-01-01T10:22:00Z",
                RunRecord::EffectStarted {
                    effect: Effect::Revert {
                        step: "hold".into(),
                    },
                },
            ),
            (
                "2026-01-01T10:22:04Z",
                event(Event::RevertSucceeded {
                    step: "hold".into(),
                }),
            ),
        ]);
        let mut measured = Measured::new();
        assert_eq!(measured.add_journal("j", &text).expect("reads"), 4);
        // No fingerprints recorded: whatever the plan's say, they are used.
        let copy = measured.step("copy", 7).expect("copy");
        assert_eq!(copy.forward, [Duration::from_millis(720_500)]);
        assert_eq!(copy.failed, [Duration::from_secs(300)]);
        assert_eq!((copy.attempts, copy.failures), (2, 1));
        assert_eq!(
            copy.copies,
            [(
                Duration::from_millis(720_500),
                Duration::from_secs(700),
                1_000_000
            )]
        );
        let hold = measured.step("hold", 7).expect("hold");
        assert_eq!(hold.forward, [Duration::from_secs(360)]);
        assert_eq!(hold.reverts, [Duration::from_secs(4)]);
        assert_eq!((hold.revert_attempts, hold.revert_failures), (1, 0));
        assert_eq!(
            measured.step("ask", 7).expect("ask").forward,
            [Duration::from_secs(180)]
        );
        assert_eq!(measured.journals(), 1);
    }

    #[test]
    fn only_runs_of_the_same_version_of_a_step_are_used() {
        let text = journal(&[
            ("2026-01-01T10:00:00Z", start("p", &[("copy", 1)])),
            ("2026-01-01T10:00:01Z", forward("copy", 1)),
            ("2026-01-01T10:00:03Z", succeeded("copy")),
            ("2026-01-01T11:00:00Z", start("p", &[("copy", 2)])),
            ("2026-01-01T11:00:01Z", forward("copy", 1)),
            ("2026-01-01T11:00:06Z", succeeded("copy")),
        ]);
        let mut measured = Measured::new();
        measured.add_journal("j", &text).expect("reads");
        assert_eq!(
            measured.step("copy", 1).expect("v1").forward,
            [Duration::from_secs(2)]
        );
        assert_eq!(
            measured.step("copy", 2).expect("v2").forward,
            [Duration::from_secs(5)]
        );
        assert_eq!(measured.step("copy", 3), None);
    }

    #[test]
    fn a_journal_of_another_plan_is_refused_and_changed_steps_are_named() {
        let plan = crate::model::tests::waits(&["copy", "switch"]);
        let print = |id: &str| plan.step(id).expect("step").fingerprint();
        let mut measured = Measured::new();
        let same = journal(&[(
            "2026-01-01T10:00:00Z",
            start("p", &[("copy", print("copy")), ("switch", print("switch"))]),
        )]);
        let changed = journal(&[(
            "2026-01-01T10:00:00Z",
            start(
                "p",
                &[("copy", print("copy") ^ 1), ("switch", print("switch"))],
            ),
        )]);
        measured.add_journal("same.journal", &same).expect("reads");
        measured
            .add_journal("old.journal", &changed)
            .expect("reads");
        assert_eq!(measured.check_plan(&plan).ok(), Some(()));
        assert_eq!(
            measured.warnings(&plan),
            ["`old.journal` ran an earlier version of `copy`: not measured from it (it changed since)"]
        );
        let other = journal(&[("2026-01-01T10:00:00Z", start("q", &[]))]);
        measured.add_journal("q.journal", &other).expect("reads");
        let err = measured.check_plan(&plan).expect_err("another plan");
        assert!(
            err.to_string()
                .contains("`q.journal`: it is a journal of the plan `q`, not of `p`"),
            "{err}"
        );
    }

    #[test]
    fn the_failure_rate_moves_with_observations_but_three_runs_are_not_certainty() {
        // The plan's 1% against three failures in three attempts: 3.02/5.
        let three = posterior(0.01, 3, 3);
        assert!(three > 0.55 && three < 0.65, "{three}");
        assert!(posterior(0.01, 0, 3) > 0.0);
        // Many observations win over the prior.
        let many = posterior(0.01, 150, 1000);
        assert!((many - 0.15).abs() < 0.005, "{many}");
        assert_eq!(posterior(0.2, 0, 0), 0.2);
    }

    #[test]
    fn a_run_s_pace_is_its_time_over_the_steps_medians() {
        // Step `a` in journals 0-3, `b` in 0-2, `c` only in 3: too few.
        let steps = [
            (vec![10.0, 20.0, 10.0, 10.0], vec![0, 1, 2, 3]),
            (vec![5.0, 10.0, 5.0], vec![0, 1, 2]),
            (vec![100.0], vec![3]),
        ];
        let paces = run_paces(&steps, 5);
        assert_eq!(paces, [Some(1.0), Some(2.0), Some(1.0), None, None]);
        // Fewer than three journals with a pace: no paces at all.
        assert_eq!(run_paces(&steps[..1], 4), [None; 4]);
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

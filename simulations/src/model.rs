//! What the simulator knows about a plan before any run: each scheduled
//! step's duration model, failure rates and DNS role with the scenarios and
//! measured durations applied, the events its effects end in (built once),
//! and the run machine every run starts from.

use std::collections::HashMap;
use std::sync::Arc;

use plan_core::machine::{
    Command, Effect, Event, Input, Outbox, RunMachine, Schedule, Selection, StepIx, StepStatus,
};
use plan_core::{Action, Downtime, Entry, Plan, Step};
use statig::blocking::{IntoStateMachineExt as _, StateMachine};

use crate::measured::{posterior, run_paces, Measured, StepObservations};
use crate::position::Position;
use crate::sampling::DurationSampler;
use crate::scenario::{Force, Override, Scenario};
use crate::SimError;

/// How long checking an in-doubt step takes, unless a scenario says.
const DEFAULT_CHECK_SECS: f64 = 30.0;
/// How long the operator takes to answer a question, unless a scenario says.
const DEFAULT_ANSWER_SECS: f64 = 300.0;
/// The chance that an in-doubt step turns out done, unless a scenario says.
const DEFAULT_CHECKED_DONE: f64 = 0.5;

/// The machine every run starts from, and the effects it asks for there:
/// after `Start` and a passed preflight, or in `Idle` when `from_idle`. It
/// stays in `Idle` if `Start` asked for more than a preflight.
fn prepare(schedule: Arc<Schedule>, from_idle: bool) -> (StateMachine<RunMachine>, Vec<Command>) {
    let mut machine = RunMachine::new(schedule).state_machine();
    if from_idle {
        return (machine, Vec::new());
    }
    let mut started = machine.clone();
    let mut outbox = Outbox::default();
    started.handle_with_context(&Event::Start, &mut outbox);
    if !matches!(outbox.effects.as_slice(), [Effect::Preflight { .. }]) {
        return (machine, Vec::new());
    }
    outbox.effects.clear();
    started.handle_with_context(&Event::PreflightPassed, &mut outbox);
    machine = started;
    (machine, outbox.effects)
}

/// What a step does to DNS, with records as indices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum DnsRole {
    None,
    /// Sets the record's TTL (seconds).
    Ttl {
        record: usize,
        ttl: f64,
    },
    /// Points the record at new addresses.
    Switch {
        record: usize,
    },
    /// Waits for the record's previous TTL.
    WaitTtl {
        record: usize,
    },
}

/// One scheduled step as the simulator sees it, scenarios applied.
#[derive(Clone, Debug)]
pub(crate) struct StepModel {
    pub(crate) forward: DurationSampler,
    /// How long a failed attempt runs before it fails, when journals
    /// measured it; else a uniform share of a forward draw.
    pub(crate) failed: Option<DurationSampler>,
    /// How long a revert takes, when journals measured it; else a fresh
    /// forward draw.
    pub(crate) revert: Option<DurationSampler>,
    pub(crate) scale: f64,
    /// Whether `forward` draws at the run's pace ([`Model::pace`]): it was
    /// measured, each observation divided by its run's pace.
    pub(crate) paced: bool,
    pub(crate) settle: f64,
    /// Seconds a retry waits before it starts (`retry_interval`).
    pub(crate) retry_interval: f64,
    /// Seconds from the simulated run's start before which the step cannot
    /// start: its phase's anchor, counted from the first simulated phase's
    /// (phases start at their anchors, not back to back).
    pub(crate) not_before: f64,
    /// On a `Begins` step: its outage kind (see `Model::outage_kinds`).
    pub(crate) outage_kind: usize,
    /// Seconds; infinite when the step has none.
    pub(crate) deadline: f64,
    pub(crate) fail: f64,
    pub(crate) in_doubt: f64,
    pub(crate) checked_done: f64,
    /// Whether the machine checks a failed attempt for a partial effect
    /// (the step has a check and something to undo, before the point of
    /// no return): only then is the draw made.
    pub(crate) checks_failures: bool,
    pub(crate) revert_fail: f64,
    pub(crate) force: Option<Force>,
    /// Seconds after success at which the run is aborted (`AbortAfter`).
    pub(crate) abort_after: Option<f64>,
    pub(crate) downtime: Option<Downtime>,
    /// On a `Begins` step: seconds before its start that users' outage
    /// begins (their work in flight is caught).
    pub(crate) in_flight: f64,
    pub(crate) dns: DnsRole,
}

/// The events of a step that carry a reason, built once so that feeding
/// the machine allocates nothing. The others name only the step and are
/// built where they are fed (the executor's run loop): on a plan of
/// thousands of steps a table of every event (half a kilobyte a step)
/// missed the cache on most events.
#[derive(Debug)]
pub(crate) struct StepEvents {
    pub(crate) failed: Input,
    pub(crate) in_doubt: Input,
    pub(crate) revert_failed: Input,
}

impl StepEvents {
    fn new(ix: StepIx) -> StepEvents {
        let reason = || "simulated failure".to_owned();
        StepEvents {
            failed: Event::StepFailed {
                step: ix,
                reason: reason(),
            },
            in_doubt: Event::StepInDoubt {
                step: ix,
                reason: "simulated loss of the connection".into(),
            },
            revert_failed: Event::RevertFailed {
                step: ix,
                reason: reason(),
            },
        }
    }
}

/// Everything a run needs that does not change between runs; shared by
/// the worker threads.
pub(crate) struct Model {
    pub(crate) schedule: Arc<Schedule>,
    /// The effects the machine every run starts from (see
    /// [`Model::thread_template`]) asked for last, for each run to perform.
    pub(crate) initial_effects: Vec<Command>,
    /// Per initial effect: seconds it has already been under way (a real
    /// run's work, from a [`Position`]; zeros otherwise).
    pub(crate) head_starts: Vec<f64>,
    /// Seconds users have been down when the run starts (from a position).
    pub(crate) down_for: Option<f64>,
    /// The machine every run starts from, when it is a real run's.
    pub(crate) position_machine: Option<StateMachine<RunMachine>>,
    /// Whether the template is still in `Idle` (it then gets `Start` first).
    pub(crate) from_idle: bool,
    pub(crate) steps: Vec<StepModel>,
    pub(crate) events: Vec<StepEvents>,
    pub(crate) start: Input,
    pub(crate) preflight_passed: Input,
    /// The operator crosses the point of no return at once.
    pub(crate) crossed: Input,
    pub(crate) abort: Input,
    pub(crate) window_abort: Input,
    /// Seconds after the start at which the window deadline aborts the run.
    pub(crate) window_deadline: Option<f64>,
    /// What users get instead of the service, by outage kind: "unavailable"
    /// first (a `Begins` step without `outage`), then each kind the plan's
    /// `Begins` steps name, in plan order.
    pub(crate) outage_kinds: Vec<String>,
    /// Seconds users may be down before the run rolls back on its own.
    pub(crate) downtime_budget: Option<f64>,
    pub(crate) budget_abort: Input,
    /// How fast a run goes against the runs measured (one draw per run,
    /// which multiplies every `paced` step's duration); `None` without
    /// enough journals, and then no draw is made.
    pub(crate) pace: Option<DurationSampler>,
    /// How long checking an in-doubt step takes.
    pub(crate) check: DurationSampler,
    /// How long the operator takes to say whether an in-doubt step took effect.
    pub(crate) answer: DurationSampler,
    /// How long the operator takes to type `go` at the point of no return
    /// (at once, unless journals measured it).
    pub(crate) crossing: DurationSampler,
    /// Each record's TTL when the run starts (steps done before applied).
    pub(crate) initial_ttl: Vec<f64>,
    /// Each record's TTL a `WaitTtl` waits for when the run starts (the
    /// same as `initial_ttl`, but from a position: what caches may still
    /// hold of the TTL before the last change).
    pub(crate) initial_wait_ttl: Vec<f64>,
    /// From a position: per step, the TTL a done `DnsTtl` replaced (for its
    /// revert).
    pub(crate) initial_ttl_before: Option<Vec<f64>>,
    /// Events after which a run is declared endless.
    pub(crate) event_limit: u64,
    /// Scenario findings that are worth a warning.
    pub(crate) warnings: Vec<String>,
}

impl Model {
    /// Prepares the pending steps of `plan` (or of one phase) with the
    /// scenarios and measured durations applied.
    pub(crate) fn new(
        plan: &Plan,
        phase: Option<&str>,
        scenarios: &[Scenario],
        measured: Option<&Measured>,
    ) -> Result<Model, SimError> {
        if let Some(name) = phase {
            if plan.phase(name).is_none() {
                return Err(SimError::UnknownPhase(name.to_owned()));
            }
        }
        let selection = Selection {
            phase: phase.map(str::to_owned),
            ..Selection::default()
        };
        Model::build(plan, &selection, scenarios, measured, None)
    }

    /// The model of the rest of a real run, from where its journal leaves
    /// it: the run's machine, its work under way, users down or not.
    pub(crate) fn from_position(
        plan: &Plan,
        position: &Position,
        scenarios: &[Scenario],
        measured: Option<&Measured>,
    ) -> Result<Model, SimError> {
        Model::build(
            plan,
            &position.selection,
            scenarios,
            measured,
            Some(position),
        )
    }

    fn build(
        plan: &Plan,
        selection: &Selection,
        scenarios: &[Scenario],
        measured: Option<&Measured>,
        position: Option<&Position>,
    ) -> Result<Model, SimError> {
        let schedule = Arc::new(Schedule::new(plan, selection));
        let mut warnings = Vec::new();
        let by_id: HashMap<&str, &Step> = plan.steps().map(|s| (s.id.as_str(), s)).collect();
        let scheduled: Vec<&Step> = schedule
            .steps
            .iter()
            .map(|s| {
                by_id
                    .get(s.id.as_str())
                    .copied()
                    .ok_or_else(|| SimError::Options(format!("step `{}` is not in the plan", s.id)))
            })
            .collect::<Result<_, _>>()?;

        // Scenario overrides per scheduled step, and the checks on them.
        let mut overrides = vec![Override::default(); scheduled.len()];
        // Steps a scenario names by id.
        let mut named = vec![false; scheduled.len()];
        if let Some(measured) = measured {
            measured.check_plan(plan)?;
            warnings.extend(measured.warnings(plan));
        }
        let mut failure_rate = plan.failure_rate;
        let mut revert_failure_rate = None;
        let (mut check_secs, mut answer_secs) = (DEFAULT_CHECK_SECS, DEFAULT_ANSWER_SECS);
        // A scenario's times are a question asked: they win over measurements.
        let (mut scenario_check, mut scenario_answer) = (false, false);
        for scenario in scenarios {
            failure_rate = scenario.failure_rate.unwrap_or(failure_rate);
            revert_failure_rate = scenario.revert_failure_rate.or(revert_failure_rate);
            check_secs = scenario.check.map_or(check_secs, |d| d.as_secs_f64());
            answer_secs = scenario.answer.map_or(answer_secs, |d| d.as_secs_f64());
            scenario_check |= scenario.check.is_some();
            scenario_answer |= scenario.answer.is_some();
            for (kind, o) in &scenario.kinds {
                let mut matched = false;
                for (ix, step) in scheduled.iter().enumerate() {
                    if step.action.kind() == kind {
                        overrides[ix].then(o);
                        matched = true;
                    }
                }
                if !matched {
                    warnings.push(format!("scenario `{}`: no step to run is a {kind} step, so its `{kind}` override changes nothing", scenario.name));
                }
            }
            for (id, o) in &scenario.steps {
                if !by_id.contains_key(id.as_str()) {
                    return Err(SimError::Scenario {
                        scenario: scenario.name.clone(),
                        message: unknown_step(plan, id),
                    });
                }
                match schedule.index_of(id) {
                    Some(ix) => {
                        overrides[ix].then(o);
                        named[ix] = true;
                    }
                    None => warnings.push(format!(
                        "scenario `{}`: step `{id}` does not run (it is done, or not in the phase simulated), so its override changes nothing",
                        scenario.name
                    )),
                }
            }
        }

        let records: Vec<&str> = plan
            .dns
            .iter()
            .flat_map(|d| &d.records)
            .map(|r| r.name.as_str())
            .collect();
        let record_ix = |name: &str| records.iter().position(|r| *r == name);
        let mut initial_ttl = initial_ttls(plan, &schedule, &records);
        let mut initial_wait_ttl = initial_ttl.clone();
        let mut initial_ttl_before = None;
        // From a position: the `DnsTtl` steps the run has done so far, in
        // schedule order. Caches may hold a record under the TTL before a
        // change until that long after it: what a `WaitTtl` still waits.
        let elapsed = position.map_or(0.0, |p| p.elapsed);
        if let Some(position) = position {
            let mut before = vec![0.0; schedule.steps.len()];
            for (ix, status) in position.machine().statuses().iter().enumerate() {
                let id = &schedule.steps[ix].id;
                if let (StepStatus::Done, Some(Action::DnsTtl { record, ttl })) =
                    (status, plan.step(id).map(|s| &s.action))
                {
                    if let Some(r) = record_ix(record) {
                        let previous = initial_ttl[r];
                        before[ix] = previous;
                        initial_ttl[r] = ttl.as_secs_f64();
                        let since = position
                            .ttl_set
                            .iter()
                            .find(|(step, _)| step == id)
                            .map_or(f64::INFINITY, |(_, since)| *since);
                        initial_wait_ttl[r] = (previous - since).max(0.0);
                    }
                }
            }
            initial_ttl_before = Some(before);
        }

        // Each step's phase anchor, and the earliest among the steps run.
        let anchor_of = |id: &str| {
            plan.phases
                .iter()
                .find(|p| {
                    p.entries
                        .iter()
                        .any(|e| matches!(e, plan_core::Entry::Step(s) if s.id == id))
                })
                .and_then(|p| p.at)
        };
        let first_anchor = scheduled.iter().filter_map(|s| anchor_of(&s.id)).min();
        let mut outage_kinds: Vec<String> = vec![crate::estimate::UNAVAILABLE.to_owned()];
        for step in &scheduled {
            if let Some(kind) = &step.outage {
                if !outage_kinds.contains(kind) {
                    outage_kinds.push(kind.clone());
                }
            }
        }
        let mut steps = Vec::with_capacity(scheduled.len());
        // Forced events that cannot happen: warned about for steps named by
        // id, and for kinds only when the force changes nothing at all.
        let (mut cannot_overrun, mut cannot_doubt, mut can_overrun) =
            (Vec::new(), Vec::new(), false);
        let seens: Vec<StepObservations> = scheduled
            .iter()
            .map(|step| {
                measured
                    .and_then(|m| m.step(&step.id, step.fingerprint()))
                    .unwrap_or_default()
            })
            .collect();
        // The steps whose forward durations are drawn from their plain
        // measurements (a copy of a known size is drawn from its rate, a
        // `WaitTtl` waits for the TTL, a scenario's duration wins): their
        // durations without the settle, and each one's journal.
        let paced: Vec<Option<(Vec<f64>, Vec<usize>)>> = scheduled
            .iter()
            .zip(&overrides)
            .zip(&seens)
            .map(|((step, o), seen)| {
                let plain = o.duration.is_none()
                    && step.transfer_size.is_none()
                    && !seen
                        .probed
                        .is_some_and(|p| p.rate.is_some() || !seen.copies.is_empty())
                    && !matches!(step.action, Action::WaitTtl { .. })
                    && !seen.forward.is_empty();
                plain.then(|| {
                    let settle = step.settle.unwrap_or_default();
                    let durations = seen
                        .forward
                        .iter()
                        .map(|d| d.saturating_sub(settle).as_secs_f64())
                        .collect();
                    (durations, seen.forward_journals.clone())
                })
            })
            .collect();
        let inputs: Vec<(Vec<f64>, Vec<usize>)> = paced.iter().flatten().cloned().collect();
        let paces = run_paces(&inputs, measured.map_or(0, Measured::journals));
        let pace =
            DurationSampler::observed_secs(&paces.iter().flatten().copied().collect::<Vec<_>>());
        for (ix, (step, o)) in scheduled.iter().zip(&overrides).enumerate() {
            let settle = step.settle.map_or(0.0, |d| d.as_secs_f64());
            let seen = &seens[ix];
            // Measured times include the settle; it is added back later.
            let without_settle =
                |d: &std::time::Duration| d.saturating_sub(step.settle.unwrap_or_default());
            // Drawn at the run's pace: each observation over its run's pace.
            let at_pace = match (&paced[ix], &pace) {
                (Some((durations, journals)), Some(_)) => Some(
                    durations
                        .iter()
                        .zip(journals)
                        .map(|(d, j)| d / paces.get(*j).copied().flatten().unwrap_or(1.0))
                        .collect::<Vec<f64>>(),
                ),
                _ => None,
            };
            let measured_forward = || {
                // A probe's measurement wins over `size`: what is pending
                // now, after the dry run's walk, at the rate the probe
                // timed; without one, at the rates of this step's earlier
                // copies (whose walk is in their rate: the probe's walk is
                // added on top, which errs long).
                if let Some(probed) = &seen.probed {
                    let rates: Vec<_> = match probed.rate {
                        Some((bytes, took)) => vec![(probed.scan + took, took, bytes)],
                        None => seen
                            .copies
                            .iter()
                            .map(|(whole, copy, bytes)| {
                                (without_settle(whole) + probed.scan, *copy, *bytes)
                            })
                            .collect(),
                    };
                    if let Some(sampler) = DurationSampler::transfer(probed.bytes, &rates) {
                        return Some(sampler);
                    }
                }
                if let Some(size) = step.transfer_size {
                    let copies: Vec<_> = seen
                        .copies
                        .iter()
                        .map(|(whole, copy, bytes)| (without_settle(whole), *copy, *bytes))
                        .collect();
                    if let Some(sampler) = DurationSampler::transfer(size, &copies) {
                        return Some(sampler);
                    }
                }
                // A `WaitTtl` waits for the TTL, which the simulator adds
                // itself: its measured time would count the wait twice.
                if matches!(step.action, Action::WaitTtl { .. }) {
                    return None;
                }
                if let Some(durations) = &at_pace {
                    return DurationSampler::observed_secs(durations);
                }
                let durations: Vec<_> = seen.forward.iter().map(without_settle).collect();
                DurationSampler::observed(&durations)
            };
            let forward = match o.duration {
                Some(model) => DurationSampler::new(&model),
                None => measured_forward().unwrap_or_else(|| DurationSampler::new(&step.duration)),
            };
            let prior = step.failure_rate.unwrap_or(failure_rate);
            let fail = o
                .failure_rate
                .unwrap_or_else(|| posterior(prior, seen.failures, seen.attempts));
            let deadline = step.deadline.map_or(f64::INFINITY, |d| d.as_secs_f64());
            let manual = schedule.steps[ix].manual;
            match o.force {
                Some(Force::DeadlineExceeded) if step.deadline.is_none() || manual => {
                    cannot_overrun.push((ix, step.id.as_str()))
                }
                Some(Force::DeadlineExceeded) => can_overrun = true,
                Some(Force::InDoubt) if manual => cannot_doubt.push((ix, step.id.as_str())),
                _ => {}
            }
            let dns = match &step.action {
                Action::DnsTtl { record, ttl } => {
                    record_ix(record).map_or(DnsRole::None, |record| DnsRole::Ttl {
                        record,
                        ttl: ttl.as_secs_f64(),
                    })
                }
                Action::DnsRecord { record, .. } => {
                    record_ix(record).map_or(DnsRole::None, |record| DnsRole::Switch { record })
                }
                Action::WaitTtl { record } => {
                    record_ix(record).map_or(DnsRole::None, |record| DnsRole::WaitTtl { record })
                }
                _ => DnsRole::None,
            };
            let unscaled = o.duration.is_none();
            steps.push(StepModel {
                failed: DurationSampler::observed(&seen.failed).filter(|_| unscaled),
                revert: DurationSampler::observed(&seen.reverts).filter(|_| unscaled),
                forward,
                paced: at_pace.is_some(),
                scale: o.scale.unwrap_or(1.0),
                settle,
                retry_interval: step.retry_interval.map_or(0.0, |d| d.as_secs_f64()),
                outage_kind: step
                    .outage
                    .as_ref()
                    .and_then(|k| outage_kinds.iter().position(|o| o == k))
                    .unwrap_or(0),
                not_before: match (anchor_of(&step.id), first_anchor) {
                    (Some(at), Some(first)) => (at - first) as f64 - elapsed,
                    _ => 0.0,
                },
                deadline,
                fail,
                in_doubt: o
                    .in_doubt_rate
                    .unwrap_or_else(|| posterior(0.0, seen.in_doubt, seen.attempts)),
                checked_done: o.checked_done.unwrap_or_else(|| {
                    posterior(DEFAULT_CHECKED_DONE, seen.found_done, seen.checks)
                }),
                checks_failures: {
                    let s = &schedule.steps[ix];
                    s.checkable && s.undoable && !s.past_no_return
                },
                // The prior of a revert is the step's failure rate as the
                // plan (or scenario) says, not as measured: a step that
                // often fails to start says nothing of how its stop fares.
                revert_fail: o.revert_failure_rate.unwrap_or_else(|| {
                    posterior(
                        revert_failure_rate.unwrap_or(o.failure_rate.unwrap_or(prior)),
                        seen.revert_failures,
                        seen.revert_attempts,
                    )
                }),
                force: o.force,
                abort_after: match o.force {
                    Some(Force::AbortAfter(d)) => Some(d.as_secs_f64()),
                    _ => None,
                },
                downtime: step.downtime,
                in_flight: step.in_flight.map_or(0.0, |d| d.as_secs_f64()),
                dns,
            });
        }

        let list = |steps: &[(usize, &str)]| {
            steps
                .iter()
                .map(|(_, id)| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (_, id) in cannot_overrun.iter().filter(|(ix, _)| named[*ix]) {
            warnings.push(format!("`{id}` has no deadline (or is manual), so forcing it past its deadline changes nothing"));
        }
        if !can_overrun && cannot_overrun.iter().any(|(ix, _)| !named[*ix]) {
            warnings.push(format!(
                "none of the steps forced past their deadline has a deadline ({}), so that changes nothing",
                list(&cannot_overrun)
            ));
        }
        if !cannot_doubt.is_empty() {
            warnings.push(format!(
                "manual steps cannot be left in doubt; InDoubt is ignored for {}",
                list(&cannot_doubt)
            ));
        }
        let events = (0..schedule.steps.len()).map(StepEvents::new).collect();
        let attempts: u64 = schedule
            .steps
            .iter()
            .map(|s| u64::from(s.retries) + 1)
            .sum();
        // From a position, the deadline counts from the last run's start,
        // as the driver counts it (a resume starts it afresh).
        let window_deadline = plan
            .window
            .deadline
            .map(|d| (d.as_secs_f64() - position.map_or(0.0, |p| p.run_elapsed)).max(0.0));
        // Every run begins alike: `Start`, the preflight passes at once, and
        // the machine starts the first steps. No random draw is involved
        // until those steps are performed, so the machine is fed these two
        // events once per thread ([`prepare`], [`Model::thread_template`]) and
        // each run clones it from there, with the effects they produced.
        // (Unless a window deadline of zero could abort the run before the
        // preflight.)
        let from_idle = position.is_none() && window_deadline.is_some_and(|d| d <= 0.0);
        let (template, mut initial_effects) = prepare(Arc::clone(&schedule), from_idle);
        let mut head_starts = vec![0.0; initial_effects.len()];
        if let Some(position) = position {
            (initial_effects, head_starts) = position.under_way.iter().cloned().unzip();
        }
        if position.is_none()
            && !from_idle
            && matches!(template.state(), plan_core::machine::State::Idle {})
        {
            return Err(SimError::Options(
                "the run machine did not ask for a preflight first".into(),
            ));
        }
        Ok(Model {
            initial_effects,
            head_starts,
            down_for: position.and_then(|p| p.down_for),
            position_machine: position.map(|p| p.machine().clone()),
            from_idle,
            schedule,
            steps,
            events,
            start: Event::Start,
            preflight_passed: Event::PreflightPassed,
            crossed: Event::CrossedNoReturn,
            abort: Event::Abort {
                reason: "simulated abort after a step (scenario)".into(),
            },
            window_abort: Event::Abort {
                reason: "the window deadline passed".into(),
            },
            window_deadline,
            downtime_budget: plan.window.downtime_budget.map(|d| d.as_secs_f64()),
            outage_kinds,
            budget_abort: Event::Abort {
                reason: "users have been down longer than the downtime budget".into(),
            },
            pace,
            check: measured_or(
                measured.map(Measured::checks).filter(|_| !scenario_check),
                check_secs,
            ),
            answer: measured_or(
                measured.map(Measured::answers).filter(|_| !scenario_answer),
                answer_secs,
            ),
            crossing: measured_or(measured.map(Measured::crossings), 0.0),
            initial_ttl,
            initial_wait_ttl,
            initial_ttl_before,
            event_limit: 1_000 + 200 * attempts,
            warnings,
        })
    }

    /// The machine every run starts from (after `Start` and `PreflightPassed`,
    /// or in `Idle`), for one worker thread, with a schedule of its own: each
    /// run clones the machine, and so counts references to its schedule; a
    /// million counts on one schedule shared by every thread would have the
    /// threads contend for it.
    pub(crate) fn thread_template(&self) -> StateMachine<RunMachine> {
        if let Some(machine) = &self.position_machine {
            return machine.clone();
        }
        prepare(Arc::new(Schedule::clone(&self.schedule)), self.from_idle).0
    }

    /// How many steps a run schedules.
    pub(crate) fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The number of distinct end states a run can be tallied under.
    pub(crate) fn end_slots(&self) -> usize {
        2 + self.schedule.points.len() + 3 * self.steps.len()
    }

    /// Describes the end tallied in `slot`.
    pub(crate) fn end_of_slot(&self, slot: usize) -> EndSlot {
        let points = self.schedule.points.len();
        match slot {
            0 => EndSlot::Completed,
            s if s <= points => EndSlot::RolledBack(self.schedule.points[s - 1].clone()),
            s if s < 1 + points + 3 * self.steps.len() => {
                let s = s - 1 - points;
                EndSlot::Halted(Some(self.schedule.steps[s / 3].id.clone()), s % 3)
            }
            _ => EndSlot::Halted(None, 2),
        }
    }
}

/// An end state as tallied: `Halted(step, cause)` with cause 0 for a failed
/// revert, 1 for a failure past the point of no return, 2 for anything else.
pub(crate) enum EndSlot {
    Completed,
    RolledBack(String),
    Halted(Option<String>, usize),
}

/// Smoothed observations when there are any, else always `secs` (a
/// scenario's figure, or the default).
fn measured_or(seen: Option<&[std::time::Duration]>, secs: f64) -> DurationSampler {
    seen.and_then(DurationSampler::observed)
        .unwrap_or(DurationSampler::Fixed(secs))
}

/// "the plan has no step `x`", with the nearest id when one is close, else
/// the ids of the plan.
fn unknown_step(plan: &Plan, id: &str) -> String {
    match plan_core::closest(id, plan.steps().map(|s| s.id.as_str())) {
        Some(near) => format!("the plan has no step `{id}`; did you mean `{near}`?"),
        None => {
            let mut known: Vec<&str> = plan.steps().map(|s| s.id.as_str()).collect();
            known.sort_unstable();
            format!(
                "the plan has no step `{id}`; its steps are {}",
                known.join(", ")
            )
        }
    }
}

/// Each record's TTL in force when the simulated run starts: its TTL before
/// the plan, then every `DnsTtl` step that is done or belongs to a phase
/// before the simulated ones, in plan order.
fn initial_ttls(plan: &Plan, schedule: &Schedule, records: &[&str]) -> Vec<f64> {
    let mut ttl: Vec<f64> = plan
        .dns
        .iter()
        .flat_map(|d| &d.records)
        .map(|r| r.ttl.as_secs_f64())
        .collect();
    let first_scheduled = schedule.steps.first().map(|s| s.id.as_str());
    let mut before_run = true;
    for phase in &plan.phases {
        for entry in &phase.entries {
            let Entry::Step(step) = entry else { continue };
            if Some(step.id.as_str()) == first_scheduled {
                before_run = false;
            }
            if schedule.index_of(&step.id).is_some() {
                continue;
            }
            if let Action::DnsTtl { record, ttl: new } = &step.action {
                if !step.pending() || before_run {
                    if let Some(r) = records.iter().position(|x| x == record) {
                        ttl[r] = new.as_secs_f64();
                    }
                }
            }
        }
    }
    ttl
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Plan `p`: one phase of `Wait` steps with these ids.
    pub(crate) fn waits(ids: &[&str]) -> Plan {
        let steps: String = ids
            .iter()
            .map(|id| format!(r#"Step(id: "{id}", action: Wait("1m")),"#))
            .collect();
        let text = format!(
            r#"Plan(name: "p", service: "p", window: Window(announced: "1h"), phases: [
                Phase(name: "w", at: "0", steps: [{steps}])])"#
        );
        plan_core::load_str(
            plan_core::Source::new("p.ron", text.as_str()),
            &plan_core::Settings::default(),
        )
        .plan
        .expect("valid")
    }

    #[test]
    fn unknown_steps_get_the_nearest_id() {
        let plan = waits(&["final-rsync", "switch"]);
        assert!(unknown_step(&plan, "final-rsnyc").contains("did you mean `final-rsync`?"));
        assert!(unknown_step(&plan, "zzz").contains("its steps are"));
    }
}

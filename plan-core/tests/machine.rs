//! Property tests of the run machine, against a reference executor.
//!
//! Any schedule (1-30 steps, dependencies on earlier steps, rollback points,
//! barriers, a point of no return, retries, manual and irreversible steps)
//! times any fault schedule (failed attempts, deadlines, in-doubt outcomes
//! settled by a truthful check, failed reverts, a failed preflight, an
//! operator's abort, crashes followed by `resume`) ends safely. The executor
//! here keeps its own model of the world (which steps' effects are in place)
//! and performs the effects in flight in a seeded random order, as parallel
//! steps finish in any order.
//!
//! Checked for every run:
//! - it ends in a terminal state with exactly one `Finished` effect;
//! - `Completed`: every step is done, and its effect is in place;
//! - `RolledBack`: the point is declared (and is the failed step's point);
//!   every step completed at or after the point's segment is reverted; the
//!   reverts are the exact reverse of the completion order; nothing is
//!   reverted that did not complete;
//! - `Halted`: a reason is given; the reverts made are a prefix of that order;
//! - never a `Forward` for a step whose previous start has no outcome yet, or
//!   whose effect is already in place, or whose dependencies (or earlier
//!   segments) are not done;
//! - replaying the recorded events into a fresh machine gives the same state
//!   and the same step statuses (at every crash and at the end);
//! - [`explore`] finds no counterexample in the schedule;
//! - the operator is asked to cross the point of no return only when
//!   nothing past it runs; with `--on-failure ask`, any sequence of answers
//!   (retry, roll back, halt) to failed steps ends safely too.
//!
//! Tests named `regression_*` reproduce defects found and fixed, so they
//! stay fixed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use plan_core::machine::{
    explore, explore_exhaustive, explore_unshared, feed as feed_named, Effect, Event, Exploration,
    FailureChoice, HaltCause, OnFailure, Outbox, RunEnd, RunMachine, Schedule, ScheduledStep,
    State, StepIx, StepStatus, START_POINT,
};
use proptest::prelude::*;
use proptest::sample::Index;
use statig::prelude::*;

mod common;
use common::SplitMix as Rng;

// ---------------------------------------------------------------------------
// Generated schedules
// ---------------------------------------------------------------------------

/// What comes in the plan right before a step.
#[derive(Clone, Copy, Debug)]
enum Marker {
    None,
    /// A `RollbackPoint`: a new segment and a new point.
    RollbackPoint,
    /// A phase boundary: a new segment, the same point.
    Barrier,
}

#[derive(Clone, Debug)]
struct StepSpec {
    marker: Marker,
    deps: Vec<Index>,
    retries: u32,
    manual: bool,
    undoable: bool,
    checkable: bool,
    revert_after_failure: bool,
    host: u8,
}

#[derive(Clone, Debug)]
struct ScheduleSpec {
    steps: Vec<StepSpec>,
    /// The step the point of no return comes before, if any.
    no_return: Option<Index>,
    /// Whether this run crosses that point itself (the operator is asked),
    /// rather than an earlier phase's run having crossed it.
    gate: bool,
}

fn step_spec() -> impl Strategy<Value = StepSpec> {
    (
        prop_oneof![6 => Just(Marker::None), 2 => Just(Marker::RollbackPoint), 1 => Just(Marker::Barrier)],
        prop::collection::vec(any::<Index>(), 0..=3),
        0u32..=2,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.7),
        (prop::bool::weighted(0.2), 0u8..3),
    )
        .prop_map(
            |(marker, deps, retries, manual, undoable, checkable, (revert_after_failure, host))| {
                StepSpec {
                    marker,
                    deps,
                    retries,
                    manual,
                    undoable,
                    checkable,
                    revert_after_failure,
                    host,
                }
            },
        )
}

fn schedule_spec() -> impl Strategy<Value = ScheduleSpec> {
    (
        prop::collection::vec(step_spec(), 1..=30),
        prop::option::weighted(0.4, any::<Index>()),
        prop::bool::weighted(0.7),
    )
        .prop_map(|(steps, no_return, gate)| ScheduleSpec {
            steps,
            no_return,
            gate,
        })
}

/// Builds the schedule as `Schedule::new` would for such a plan: a rollback
/// point or a barrier starts a segment; a step rolls back to the segment
/// where its point began; past the point of no return everything halts.
fn build(spec: &ScheduleSpec) -> Schedule {
    let n = spec.steps.len();
    let no_return = spec.no_return.map(|i| i.index(n));
    let mut steps = Vec::with_capacity(n);
    let mut points = vec![START_POINT.to_owned()];
    let mut segment = 0usize;
    let mut point = (START_POINT.to_owned(), 0usize);
    let mut past_no_return = false;
    for (i, s) in spec.steps.iter().enumerate() {
        if no_return == Some(i) {
            segment += 1;
            past_no_return = true;
        }
        match s.marker {
            Marker::None => {}
            Marker::RollbackPoint => {
                segment += 1;
                point = (format!("p{i}"), segment);
                points.push(point.0.clone());
            }
            Marker::Barrier => segment += 1,
        }
        let mut deps: Vec<StepIx> = if i == 0 {
            Vec::new()
        } else {
            s.deps.iter().map(|d| d.index(i)).collect()
        };
        deps.sort_unstable();
        deps.dedup();
        steps.push(ScheduledStep {
            id: format!("s{i}"),
            deps,
            segment,
            rollback_point: point.0.clone(),
            rollback_segment: point.1,
            past_no_return,
            retries: s.retries,
            manual: s.manual,
            checkable: s.checkable,
            undoable: s.undoable,
            revert_after_failure: s.revert_after_failure,
            hosts: vec![format!("h{}", s.host)],
        });
    }
    let schedule = Schedule::from_steps(steps, points);
    if no_return.is_some() && spec.gate {
        schedule.with_no_return("the old host is wiped")
    } else {
        schedule
    }
}

// ---------------------------------------------------------------------------
// Generated faults
// ---------------------------------------------------------------------------

/// What one forward attempt does instead of succeeding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The attempt fails; it may have left part of its effect.
    Fail { partial: bool },
    /// Killed at its deadline; it may have left part of its effect.
    Deadline { partial: bool },
    /// The connection dropped: the effect is, or is not, in place; the
    /// step's check (or the operator) says which, truthfully.
    InDoubt { took_effect: bool },
}

#[derive(Clone, Debug)]
struct FaultSpec {
    /// (step, attempt 1..=3, what happens)
    forward: Vec<(Index, u32, Outcome)>,
    /// Steps whose revert fails.
    reverts: Vec<Index>,
    /// Steps whose check cannot run the first time it is asked for.
    checks: Vec<Index>,
    preflight_fails: bool,
    /// Abort (Ctrl-C) once this many events were fed.
    abort_at: Option<usize>,
    /// Crash, then resume, once this many events were fed.
    crashes: Vec<usize>,
    /// Order in which effects in flight finish, crash details.
    seed: u64,
    /// The run asks the operator when a step fails (`--on-failure ask`).
    ask: bool,
    /// The operator's answers to failed steps, in order (then: roll back).
    choices: Vec<FailureChoice>,
    /// The operator does not cross the point of no return (rolls back).
    decline_gate: bool,
}

fn choice() -> impl Strategy<Value = FailureChoice> {
    prop_oneof![
        2 => Just(FailureChoice::Retry),
        2 => Just(FailureChoice::Rollback),
        1 => Just(FailureChoice::Halt),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => any::<bool>().prop_map(|partial| Outcome::Fail { partial }),
        1 => any::<bool>().prop_map(|partial| Outcome::Deadline { partial }),
        2 => any::<bool>().prop_map(|took_effect| Outcome::InDoubt { took_effect }),
    ]
}

fn fault_spec() -> impl Strategy<Value = FaultSpec> {
    (
        prop::collection::vec((any::<Index>(), 1u32..=3, outcome()), 0..8),
        prop::collection::vec(any::<Index>(), 0..3),
        prop::collection::vec(any::<Index>(), 0..3),
        prop::bool::weighted(0.05),
        prop::option::weighted(0.2, 0usize..80),
        prop::collection::vec(0usize..80, 0..3),
        any::<u64>(),
        (
            prop::bool::weighted(0.4),
            prop::collection::vec(choice(), 0..4),
            prop::bool::weighted(0.2),
        ),
    )
        .prop_map(
            |(
                forward,
                reverts,
                checks,
                preflight_fails,
                abort_at,
                mut crashes,
                seed,
                (ask, choices, decline_gate),
            )| {
                crashes.sort_unstable();
                FaultSpec {
                    forward,
                    reverts,
                    checks,
                    preflight_fails,
                    abort_at,
                    crashes,
                    seed,
                    ask,
                    choices,
                    decline_gate,
                }
            },
        )
}

/// The fault schedule resolved against a schedule of `n` steps.
#[derive(Clone, Debug, Default)]
struct Faults {
    forward: HashMap<(StepIx, u32), Outcome>,
    reverts: HashSet<StepIx>,
    checks: HashSet<StepIx>,
    preflight_fails: bool,
    abort_at: Option<usize>,
    crashes: Vec<usize>,
    seed: u64,
    on_failure: OnFailure,
    choices: Vec<FailureChoice>,
    decline_gate: bool,
}

impl Faults {
    fn resolve(spec: &FaultSpec, n: usize) -> Faults {
        Faults {
            forward: spec
                .forward
                .iter()
                .map(|(s, a, o)| ((s.index(n), *a), *o))
                .collect(),
            reverts: spec.reverts.iter().map(|s| s.index(n)).collect(),
            checks: spec.checks.iter().map(|s| s.index(n)).collect(),
            preflight_fails: spec.preflight_fails,
            abort_at: spec.abort_at,
            crashes: spec.crashes.clone(),
            seed: spec.seed,
            on_failure: if spec.ask {
                OnFailure::Ask
            } else {
                OnFailure::Rollback
            },
            choices: spec.choices.clone(),
            decline_gate: spec.decline_gate,
        }
    }
}

// ---------------------------------------------------------------------------
// The reference executor
// ---------------------------------------------------------------------------

/// The journal as the driver writes it, reduced to what resume reads.
#[derive(Clone, Debug)]
enum Entry {
    Event(Event),
    /// An `EffectStarted` for a forward or a revert of this step.
    Started(String),
}

/// An effect in flight.
#[derive(Clone, Debug)]
struct InFlight {
    effect: Effect,
    /// Journaled as started (always, except for effects of the last event
    /// when a crash cuts the driver short; see [`Run::crash`]).
    journal_slot: Option<usize>,
}

/// What one run did, for the assertions.
#[derive(Debug)]
struct Outcomes {
    state: State,
    statuses: Vec<StepStatus>,
    end: RunEnd,
    /// Steps in the order their success reached a running machine.
    completed: Vec<StepIx>,
    /// Steps in the order their reverts were performed (re-issues after a
    /// crash counted once).
    reverted: Vec<StepIx>,
    /// Which steps' effects are in place at the end.
    applied: Vec<bool>,
    /// Which steps' failed attempts left part of their effect, at the end.
    partial: Vec<bool>,
    /// The step whose final failure set off the rollback, if one did.
    fatal: Option<StepIx>,
    rollback_point: Option<String>,
    machine_completion: Vec<String>,
    /// How many times the run crashed and was resumed.
    crashes: usize,
    /// Whether the operator aborted it.
    aborted: bool,
    /// How many times the operator chose what to do about a failed step.
    asked: usize,
    /// How many times the operator was asked to cross the point of no return.
    gated: usize,
}

struct Run<'a> {
    schedule: Arc<Schedule>,
    faults: &'a Faults,
    rng: Rng,
    machine: StateMachine<RunMachine>,
    /// Every event fed, in order, across crashes: what the journal holds.
    events: Vec<Event>,
    journal: Vec<Entry>,
    /// Journal slots of the forwards and reverts the last event started.
    last_started: Vec<usize>,
    in_flight: Vec<InFlight>,
    ends: Vec<RunEnd>,
    // The world, as the executor sees it.
    applied: Vec<bool>,
    /// Part of a step's effect, left by a failed attempt: what its check
    /// finds (a check cannot tell part of an effect from the whole).
    partial: Vec<bool>,
    /// Whether an attempt of the step failed (its completion may then come
    /// from its check, or from the plan's word that its revert is safe).
    failed_once: Vec<bool>,
    open_start: Vec<bool>,
    completed: Vec<StepIx>,
    done: Vec<bool>,
    reverted: Vec<StepIx>,
    fatal: Option<StepIx>,
    preflights: usize,
    /// Steps whose check already could not run once.
    checks_failed: HashSet<StepIx>,
    aborted: bool,
    next_crash: usize,
    crashes: usize,
    limit: usize,
    /// The operator's answers to failed steps given so far.
    answered: usize,
    gated: usize,
}

impl<'a> Run<'a> {
    fn new(schedule: Arc<Schedule>, faults: &'a Faults) -> Run<'a> {
        let n = schedule.steps.len();
        let retries: usize = schedule.steps.iter().map(|s| s.retries as usize).sum();
        Run {
            machine: RunMachine::new(Arc::clone(&schedule))
                .with_on_failure(faults.on_failure)
                .state_machine(),
            schedule,
            faults,
            rng: Rng(faults.seed),
            events: Vec::new(),
            journal: Vec::new(),
            last_started: Vec::new(),
            in_flight: Vec::new(),
            ends: Vec::new(),
            applied: vec![false; n],
            partial: vec![false; n],
            failed_once: vec![false; n],
            open_start: vec![false; n],
            completed: Vec::new(),
            done: vec![false; n],
            reverted: Vec::new(),
            fatal: None,
            preflights: 0,
            checks_failed: HashSet::new(),
            aborted: false,
            next_crash: 0,
            crashes: 0,
            limit: 40 * (n + retries) + 200,
            answered: 0,
            gated: 0,
        }
    }

    fn id(&self, ix: StepIx) -> String {
        self.schedule.steps[ix].id.clone()
    }

    fn ix(&self, step: &str) -> Result<StepIx, String> {
        self.schedule
            .index_of(step)
            .ok_or_else(|| format!("the machine named an unknown step `{step}`"))
    }

    /// Journals `event`, feeds it, journals the forwards and reverts it starts.
    fn feed(&mut self, event: Event) {
        // A success completes a step the machine has running (or in doubt,
        // while the run goes on). A halted run still records what the steps
        // running at the halt did; a finished run records nothing.
        let success = match &event {
            Event::StepSucceeded { step } | Event::OperatorConfirmed { step } => Some(step),
            // A failed step's check finding part of its effect is no success:
            // the machine counts it completed when it decides to undo it.
            Event::Checked { step, done: true } | Event::OperatorAnswered { step, done: true }
                if !self.machine.failing().any(|f| f == step) =>
            {
                Some(step)
            }
            _ => None,
        };
        if let Some(ix) = success.and_then(|s| self.schedule.index_of(s)) {
            let status = self.machine.statuses()[ix];
            let settles = match self.machine.state() {
                State::Completed {} | State::RolledBack { .. } | State::Halted { .. } => false,
                // A halting run settles the steps still running or in doubt
                // (after a resume) but starts nothing.
                State::Halting { .. } => match &event {
                    Event::StepSucceeded { .. } | Event::OperatorConfirmed { .. } => {
                        matches!(status, StepStatus::Running | StepStatus::InDoubt)
                    }
                    _ => status == StepStatus::InDoubt,
                },
                _ => matches!(status, StepStatus::Running | StepStatus::InDoubt),
            };
            if settles {
                self.completed.push(ix);
                self.done[ix] = true;
            }
        }
        self.events.push(event.clone());
        self.journal.push(Entry::Event(event.clone()));
        let known = self.machine.completion_order().count();
        let mut outbox = Outbox::default();
        let effects = feed_named(&mut self.machine, &event, &mut outbox);
        // A failed step counts as completed when its check found part of
        // its effect, or the plan says its revert is safe on one: the
        // rollback undoes it like a completed step.
        let new: Vec<String> = self
            .machine
            .completion_order()
            .skip(known)
            .map(str::to_owned)
            .collect();
        for id in new {
            if let Some(ix) = self.schedule.index_of(&id) {
                if self.failed_once[ix] && !self.done[ix] {
                    self.completed.push(ix);
                    self.done[ix] = true;
                }
            }
        }
        self.last_started.clear();
        for effect in effects {
            let journal_slot = match &effect {
                Effect::Forward { step, .. } | Effect::Revert { step } => {
                    self.journal.push(Entry::Started(step.clone()));
                    self.last_started.push(self.journal.len() - 1);
                    Some(self.journal.len() - 1)
                }
                _ => None,
            };
            match effect {
                Effect::Finished { end } => self.ends.push(end),
                effect => self.in_flight.push(InFlight {
                    effect,
                    journal_slot,
                }),
            }
        }
    }

    fn drive(mut self) -> Result<Outcomes, String> {
        match self.go() {
            Ok(()) => self.finish(),
            Err(problem) => Err(format!("{problem}\nevents: {:?}", self.events)),
        }
    }

    fn go(&mut self) -> Result<(), String> {
        self.feed(Event::Start);
        loop {
            if self.events.len() > self.limit {
                return Err(format!(
                    "the run does not end: {} events, state {:?}, in flight {:?}",
                    self.events.len(),
                    self.machine.state(),
                    self.in_flight
                ));
            }
            let terminal = self.machine.state().is_terminal();
            if let Some(&at) = self.faults.crashes.get(self.next_crash) {
                if at <= self.events.len() {
                    self.next_crash += 1;
                    // Until the end is announced the driver is still going
                    // (a halted run waits for the steps still running, and
                    // a crash may come then too).
                    if self.ends.is_empty() {
                        self.crash()?;
                        continue;
                    }
                }
            }
            if let Some(at) = self.faults.abort_at {
                if !self.aborted && at <= self.events.len() && !terminal {
                    self.aborted = true;
                    self.feed(Event::Abort {
                        reason: "the operator pressed Ctrl-C".into(),
                    });
                    continue;
                }
            }
            if self.in_flight.is_empty() {
                break;
            }
            let pick = self.rng.below(self.in_flight.len());
            let next = self.in_flight.remove(pick);
            self.perform(next.effect)?;
        }
        Ok(())
    }

    fn perform(&mut self, effect: Effect) -> Result<(), String> {
        match effect {
            Effect::Preflight { .. } => {
                self.preflights += 1;
                self.feed(if self.faults.preflight_fails && self.preflights == 1 {
                    Event::PreflightFailed {
                        reason: "host h0 does not answer".into(),
                    }
                } else {
                    Event::PreflightPassed
                });
            }
            Effect::Forward { step, attempt } => {
                let ix = self.ix(&step)?;
                self.before_start(ix, "Forward")?;
                if self.schedule.steps[ix].manual {
                    return Err(format!("a Forward for manual step `{step}`"));
                }
                self.open_start[ix] = true;
                let event = match self.faults.forward.get(&(ix, attempt)) {
                    None => {
                        self.applied[ix] = true;
                        self.partial[ix] = false;
                        self.open_start[ix] = false;
                        Event::StepSucceeded { step }
                    }
                    Some(Outcome::Fail { partial }) => {
                        self.open_start[ix] = false;
                        self.partial[ix] |= *partial;
                        self.failed_once[ix] = true;
                        self.note_failure(ix, attempt);
                        Event::StepFailed {
                            step,
                            reason: "injected".into(),
                        }
                    }
                    Some(Outcome::Deadline { partial }) => {
                        self.open_start[ix] = false;
                        self.partial[ix] |= *partial;
                        self.failed_once[ix] = true;
                        self.note_failure(ix, attempt);
                        Event::DeadlineExceeded { step }
                    }
                    Some(Outcome::InDoubt { took_effect }) => {
                        self.applied[ix] = *took_effect;
                        Event::StepInDoubt {
                            step,
                            reason: "connection lost".into(),
                        }
                    }
                };
                self.feed(event);
            }
            Effect::Confirm { step } => {
                let ix = self.ix(&step)?;
                self.before_start(ix, "Confirm")?;
                if !self.schedule.steps[ix].manual {
                    return Err(format!("a Confirm for automatic step `{step}`"));
                }
                let declined = matches!(
                    self.faults.forward.get(&(ix, 1)),
                    Some(Outcome::Fail { .. } | Outcome::Deadline { .. })
                );
                if declined {
                    if self.fatal.is_none() && self.going_forward() {
                        self.fatal = Some(ix);
                    }
                    self.feed(Event::OperatorDeclined { step });
                } else {
                    self.applied[ix] = true;
                    self.feed(Event::OperatorConfirmed { step });
                }
            }
            Effect::Check { step } => {
                let ix = self.ix(&step)?;
                if self.faults.checks.contains(&ix) && self.checks_failed.insert(ix) {
                    // What the driver feeds when the check itself cannot run.
                    self.feed(Event::StepInDoubt {
                        step,
                        reason: "its check did not finish: timed out".into(),
                    });
                } else {
                    self.open_start[ix] = false;
                    let done = self.applied[ix] || self.partial[ix];
                    self.feed(Event::Checked { step, done });
                }
            }
            Effect::AskOperator { step } => {
                let ix = self.ix(&step)?;
                self.open_start[ix] = false;
                let done = self.applied[ix] || self.partial[ix];
                self.feed(Event::OperatorAnswered { step, done });
            }
            Effect::Revert { step } => {
                let ix = self.ix(&step)?;
                if !self.done[ix] {
                    return Err(format!("step `{step}` is reverted but never completed"));
                }
                let declared = self.schedule.steps[ix].revert_after_failure && self.failed_once[ix];
                if !(self.applied[ix] || self.partial[ix] || declared) {
                    return Err(format!(
                        "step `{step}` is reverted but its effect is not in place"
                    ));
                }
                if self.schedule.steps[ix].past_no_return {
                    return Err(format!(
                        "step `{step}` is past the point of no return, yet reverted"
                    ));
                }
                if !self.schedule.steps[ix].undoable {
                    return Err(format!(
                        "step `{step}` has nothing to undo, yet a Revert was asked"
                    ));
                }
                if self.reverted.last() != Some(&ix) {
                    self.reverted.push(ix);
                }
                if self.faults.reverts.contains(&ix) {
                    self.feed(Event::RevertFailed {
                        step,
                        reason: "injected".into(),
                    });
                } else {
                    self.applied[ix] = false;
                    self.partial[ix] = false;
                    self.feed(Event::RevertSucceeded { step });
                }
            }
            Effect::CrossNoReturn { reason } => {
                if let Some(ix) = (0..self.schedule.steps.len())
                    .find(|&ix| self.schedule.steps[ix].past_no_return && self.open_start[ix])
                {
                    return Err(format!(
                        "asked to cross the point of no return ({reason}) while `{}` past it runs",
                        self.id(ix)
                    ));
                }
                self.gated += 1;
                if self.faults.decline_gate {
                    self.aborted = true;
                    self.feed(Event::Abort {
                        reason: "the operator did not cross the point of no return".into(),
                    });
                } else {
                    self.feed(Event::CrossedNoReturn);
                }
            }
            Effect::AskOnFailure {
                step,
                can_roll_back,
                ..
            } => {
                let ix = self.ix(&step)?;
                if can_roll_back == self.schedule.steps[ix].past_no_return {
                    return Err(format!(
                        "asked about `{step}` offering a rollback: {can_roll_back}"
                    ));
                }
                let choice = self
                    .faults
                    .choices
                    .get(self.answered)
                    .copied()
                    .unwrap_or(FailureChoice::Rollback);
                self.answered += 1;
                // A retried step is no longer what set off a rollback.
                if choice == FailureChoice::Retry && self.fatal == Some(ix) {
                    self.fatal = None;
                }
                self.feed(Event::OperatorChose { step, choice });
            }
            Effect::Finished { .. } => unreachable!("kept out of the in-flight list"),
        }
        Ok(())
    }

    /// Records the failure that ends a step's retries.
    fn note_failure(&mut self, ix: StepIx, attempt: u32) {
        if attempt > self.schedule.steps[ix].retries && self.fatal.is_none() && self.going_forward()
        {
            self.fatal = Some(ix);
        }
    }

    /// Whether a failure now sets off the rollback (rather than being drained).
    fn going_forward(&self) -> bool {
        matches!(
            self.machine.state(),
            State::Forward {} | State::AwaitingOperator { .. }
        )
    }

    /// What must hold whenever a step is started.
    fn before_start(&self, ix: StepIx, what: &str) -> Result<(), String> {
        let step = &self.schedule.steps[ix];
        if self.open_start[ix] {
            return Err(format!(
                "{what} for `{}` while its previous start has no outcome",
                step.id
            ));
        }
        if self.applied[ix] || self.done[ix] {
            return Err(format!("{what} for `{}`, which already completed", step.id));
        }
        if let Some(&dep) = step.deps.iter().find(|&&d| !self.done[d]) {
            return Err(format!(
                "{what} for `{}` before its dependency `{}` is done",
                step.id,
                self.id(dep)
            ));
        }
        if let Some(earlier) = self
            .schedule
            .steps
            .iter()
            .enumerate()
            .find(|(e, s)| s.segment < step.segment && !self.done[*e])
        {
            return Err(format!(
                "{what} for `{}` before `{}` of an earlier segment is done",
                step.id, earlier.1.id
            ));
        }
        Ok(())
    }

    /// The process dies and `resume` takes over: the in-flight effects are
    /// lost (those journaled as started may have taken effect), the journal
    /// is replayed into a fresh machine, and it gets `Resume`.
    fn crash(&mut self) -> Result<(), String> {
        // The driver journals each effect just before it starts it, so a
        // crash may come after the last event's first `cut` effects only.
        let cut = self.rng.below(self.last_started.len() + 1);
        let lost: HashSet<usize> = self.last_started[cut..].iter().copied().collect();
        let in_flight = std::mem::take(&mut self.in_flight);
        for flight in in_flight {
            let journaled = flight
                .journal_slot
                .is_some_and(|slot| !lost.contains(&slot));
            match flight.effect {
                Effect::Forward { step, .. } => {
                    let ix = self.ix(&step)?;
                    if journaled {
                        // The step's own process may finish after the crash.
                        if self.rng.coin() {
                            self.applied[ix] = true;
                        }
                    } else {
                        self.open_start[ix] = false;
                    }
                }
                Effect::Revert { step } => {
                    let ix = self.ix(&step)?;
                    if journaled && self.rng.coin() {
                        self.applied[ix] = false;
                        self.partial[ix] = false;
                        if self.reverted.last() != Some(&ix) {
                            self.reverted.push(ix);
                        }
                    }
                }
                // The operator was being asked: nothing happened yet.
                Effect::Confirm { step } => {
                    let ix = self.ix(&step)?;
                    self.open_start[ix] = false;
                }
                // Questions to the operator: nothing happened yet; the
                // resumed machine asks again.
                Effect::Check { .. }
                | Effect::AskOperator { .. }
                | Effect::CrossNoReturn { .. }
                | Effect::AskOnFailure { .. }
                | Effect::Preflight { .. }
                | Effect::Finished { .. } => {}
            }
        }
        let mut slots: Vec<usize> = lost.into_iter().collect();
        slots.sort_unstable();
        for slot in slots.into_iter().rev() {
            self.journal.remove(slot);
        }
        self.last_started.clear();
        self.crashes += 1;
        let replayed = replay(&self.schedule, self.faults.on_failure, &self.events);
        compare(&replayed, &self.machine, "at a crash")?;
        self.machine = replayed;
        let started = started_steps(&self.journal);
        self.feed(Event::Resume { started });
        Ok(())
    }

    fn finish(self) -> Result<Outcomes, String> {
        let state = self.machine.state().clone();
        if !state.is_terminal() {
            return Err(format!(
                "the run is stuck in {state:?} with nothing in flight\nevents: {:?}",
                self.events
            ));
        }
        let [end] = self.ends.as_slice() else {
            return Err(format!(
                "{} `Finished` effects instead of one: {:?}",
                self.ends.len(),
                self.ends
            ));
        };
        let replayed = replay(&self.schedule, self.faults.on_failure, &self.events);
        compare(&replayed, &self.machine, "at the end")?;
        Ok(Outcomes {
            state,
            statuses: self.machine.statuses().to_vec(),
            end: end.clone(),
            completed: self.completed,
            reverted: self.reverted,
            applied: self.applied,
            partial: self.partial,
            fatal: self.fatal,
            rollback_point: self.machine.rollback_point().map(str::to_owned),
            machine_completion: self.machine.completion_order().map(str::to_owned).collect(),
            crashes: self.crashes,
            aborted: self.aborted,
            asked: self.answered,
            gated: self.gated,
        })
    }
}

/// A fresh machine fed `events`, as `resume` rebuilds one from the journal.
fn replay(
    schedule: &Arc<Schedule>,
    on_failure: OnFailure,
    events: &[Event],
) -> StateMachine<RunMachine> {
    let mut machine = RunMachine::new(Arc::clone(schedule))
        .with_on_failure(on_failure)
        .state_machine();
    for event in events {
        feed_named(&mut machine, event, &mut Outbox::default());
    }
    machine
}

fn compare(
    replayed: &StateMachine<RunMachine>,
    live: &StateMachine<RunMachine>,
    when: &str,
) -> Result<(), String> {
    if replayed.state() != live.state() || replayed.statuses() != live.statuses() {
        return Err(format!(
            "replay differs {when}: live {:?} {:?}, replayed {:?} {:?}",
            live.state(),
            live.statuses(),
            replayed.state(),
            replayed.statuses()
        ));
    }
    Ok(())
}

/// Steps journaled as started with no event about them since: in doubt.
fn started_steps(journal: &[Entry]) -> Vec<String> {
    let mut started: Vec<String> = Vec::new();
    for entry in journal {
        match entry {
            Entry::Started(step) => {
                if !started.contains(step) {
                    started.push(step.clone());
                }
            }
            Entry::Event(event) => {
                if let Some(step) = event.step() {
                    started.retain(|s| s != step);
                }
            }
        }
    }
    started.sort();
    started
}

/// The segment a rollback to `point` goes back to.
fn point_segment(schedule: &Schedule, point: &str) -> Option<usize> {
    if point == START_POINT {
        return Some(0);
    }
    schedule
        .steps
        .iter()
        .find(|s| s.rollback_point == point)
        .map(|s| s.rollback_segment)
}

/// Every property of one finished run.
fn check_run(schedule: &Schedule, run: &Outcomes) -> Result<(), String> {
    let steps = &schedule.steps;
    let machine_completion: Vec<String> = run
        .completed
        .iter()
        .map(|&ix| steps[ix].id.clone())
        .collect();
    if machine_completion != run.machine_completion {
        return Err(format!(
            "the executor saw completions {machine_completion:?}, the machine recorded {:?}",
            run.machine_completion
        ));
    }
    // The reverts a rollback owes, in order: newest completion first.
    let owed = |segment: usize| -> Vec<StepIx> {
        run.completed
            .iter()
            .rev()
            .copied()
            .filter(|&ix| steps[ix].segment >= segment && steps[ix].undoable)
            .collect()
    };
    match (&run.state, &run.end) {
        (State::Completed {}, RunEnd::Completed) => {
            // A failed attempt's partial effect is what the step's check
            // finds: a later in-doubt attempt settled by it is in place.
            if let Some(ix) = (0..steps.len()).find(|&ix| {
                run.statuses[ix] != StepStatus::Done || !(run.applied[ix] || run.partial[ix])
            }) {
                return Err(format!(
                    "completed, but `{}` is {:?} (in place: {})",
                    steps[ix].id, run.statuses[ix], run.applied[ix]
                ));
            }
            if !run.reverted.is_empty() {
                return Err(format!("completed after reverting {:?}", run.reverted));
            }
        }
        (
            State::RolledBack { point },
            RunEnd::RolledBack {
                point: announced, ..
            },
        ) => {
            if point != announced || !schedule.points.contains(point) {
                return Err(format!(
                    "rolled back to `{point}` (announced `{announced}`), not a declared point"
                ));
            }
            if let Some(ix) = run.fatal {
                if steps[ix].rollback_point != *point {
                    return Err(format!(
                        "`{}` failed, whose point is `{}`, but the run rolled back to `{point}`",
                        steps[ix].id, steps[ix].rollback_point
                    ));
                }
            }
            let segment = point_segment(schedule, point)
                .ok_or_else(|| format!("no step rolls back to `{point}`"))?;
            for &ix in &run.completed {
                if steps[ix].segment < segment {
                    continue;
                }
                if run.statuses[ix] != StepStatus::Reverted {
                    return Err(format!(
                        "rolled back to `{point}`, but `{}` is {:?}",
                        steps[ix].id, run.statuses[ix]
                    ));
                }
                if steps[ix].undoable && run.applied[ix] {
                    return Err(format!(
                        "rolled back to `{point}`, but the effect of `{}` is still in place",
                        steps[ix].id
                    ));
                }
            }
            if let Some(ix) = (0..steps.len()).find(|&ix| {
                matches!(
                    run.statuses[ix],
                    StepStatus::Running
                        | StepStatus::InDoubt
                        | StepStatus::Reverting
                        | StepStatus::RevertInDoubt
                )
            }) {
                return Err(format!(
                    "rolled back while `{}` is {:?}",
                    steps[ix].id, run.statuses[ix]
                ));
            }
            // Issue 11, item 2: a failed step's partial effect was never
            // undone. Every one the machine can know of (by the step's
            // check, or the plan's word) is undone by the rollback.
            if let Some(ix) = (0..steps.len()).find(|&ix| {
                let s = &steps[ix];
                s.segment >= segment
                    && run.partial[ix]
                    && s.undoable
                    && !s.past_no_return
                    && (s.checkable || s.revert_after_failure)
            }) {
                return Err(format!(
                    "rolled back to `{point}`, but the partial effect of the failed `{}` is left \
                     in place",
                    steps[ix].id
                ));
            }
            let owed = owed(segment);
            if run.reverted != owed {
                return Err(format!(
                    "reverted {:?}, expected exactly {:?} (reverse completion order)",
                    names(schedule, &run.reverted),
                    names(schedule, &owed)
                ));
            }
        }
        (
            State::Halted { halt },
            RunEnd::Halted {
                reason: announced,
                cause,
                ..
            },
        ) => {
            if halt.reason.trim().is_empty() || announced.trim().is_empty() {
                return Err("halted without a reason".into());
            }
            if *cause != halt.cause || *cause == HaltCause::Unknown {
                return Err(format!("halted for {:?}, announced {cause:?}", halt.cause));
            }
            // A failed revert is the only halt inside a rollback.
            if (*cause == HaltCause::RevertFailed) != run.rollback_point.is_some()
                && *cause != HaltCause::PastPointOfNoReturn
            {
                return Err(format!(
                    "halted for {cause:?} with rollback point {:?}",
                    run.rollback_point
                ));
            }
            if let Some(point) = &run.rollback_point {
                let segment = point_segment(schedule, point)
                    .ok_or_else(|| format!("no step rolls back to `{point}`"))?;
                let owed = owed(segment);
                if !owed.starts_with(&run.reverted) {
                    return Err(format!(
                        "reverted {:?}, not a prefix of {:?}",
                        names(schedule, &run.reverted),
                        names(schedule, &owed)
                    ));
                }
            } else if !run.reverted.is_empty() {
                return Err(format!(
                    "halted without a rollback, yet reverted {:?}",
                    run.reverted
                ));
            }
        }
        (state, end) => return Err(format!("the machine is in {state:?} but announced {end:?}")),
    }
    Ok(())
}

fn names(schedule: &Schedule, list: &[StepIx]) -> Vec<String> {
    list.iter()
        .map(|&ix| schedule.steps[ix].id.clone())
        .collect()
}

fn run_once(schedule: &Arc<Schedule>, faults: &Faults) -> Result<Outcomes, String> {
    let outcomes = Run::new(Arc::clone(schedule), faults).drive()?;
    check_run(schedule, &outcomes).map_err(|problem| format!("{problem}\nrun: {outcomes:?}"))?;
    Ok(outcomes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_schedule_under_any_faults_ends_safely(spec in schedule_spec(), faults in fault_spec()) {
        let schedule = Arc::new(build(&spec));
        let faults = Faults::resolve(&faults, schedule.steps.len());
        if let Err(problem) = run_once(&schedule, &faults) {
            return Err(TestCaseError::fail(format!("{problem}\nschedule: {:#?}\nfaults: {faults:?}", schedule.steps)));
        }
    }

    #[test]
    fn exploration_finds_every_generated_schedule_safe(spec in schedule_spec()) {
        let schedule = Arc::new(build(&spec));
        let report = explore(Arc::clone(&schedule), 2).map_err(|c| TestCaseError::fail(c.to_string()))?;
        prop_assert!(report.runs > schedule.steps.len(), "{report:?}");
        prop_assert_eq!(report.completed, 1);
        // Every pair, run one by one: the same verdict, and the premise of
        // running a pair per situation holds (second faults in one situation
        // are handled alike).
        let every = explore_exhaustive(Arc::clone(&schedule), 2)
            .map_err(|c| TestCaseError::fail(c.to_string()))?;
        prop_assert_eq!(every.single_faults, report.single_faults);
        prop_assert!(every.double_faults >= report.double_faults + report.equivalent, "{every:?} {report:?}");
        // Every rollback walked to its end: the same report.
        let walked = explore_unshared(Arc::clone(&schedule), 2)
            .map_err(|c| TestCaseError::fail(c.to_string()))?;
        prop_assert_eq!(Exploration { shared_tails: 0, ..report }, walked);
    }
}

/// The generators are not vacuous: over a fixed sample, runs end in every
/// way, and crashes, aborts and parallel steps do happen.
#[test]
fn the_generated_runs_cover_every_end_crashes_and_aborts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut completed, mut rolled_back, mut halted, mut crashed, mut aborted, mut parallel) =
        (0, 0, 0, 0, 0, 0);
    let (mut asked, mut gated) = (0, 0);
    for _ in 0..2000 {
        let spec = schedule_spec()
            .new_tree(&mut runner)
            .expect("a schedule")
            .current();
        let faults = fault_spec()
            .new_tree(&mut runner)
            .expect("faults")
            .current();
        let schedule = Arc::new(build(&spec));
        let faults = Faults::resolve(&faults, schedule.steps.len());
        let run = run_once(&schedule, &faults).unwrap_or_else(|e| panic!("{e}"));
        match run.end {
            RunEnd::Completed => completed += 1,
            RunEnd::RolledBack { .. } => rolled_back += 1,
            RunEnd::Halted { .. } => halted += 1,
        }
        crashed += usize::from(run.crashes > 0);
        aborted += usize::from(run.aborted);
        asked += usize::from(run.asked > 0);
        gated += usize::from(run.gated > 0);
        let segments = schedule
            .steps
            .iter()
            .map(|s| s.segment)
            .collect::<HashSet<_>>()
            .len();
        parallel += usize::from(
            segments < schedule.steps.len() && schedule.steps.iter().any(|s| s.deps.is_empty()),
        );
    }
    let counts = (completed, rolled_back, halted, crashed, aborted, parallel);
    assert!(
        completed > 100 && rolled_back > 100 && halted > 100,
        "{counts:?}"
    );
    assert!(
        crashed > 100 && aborted > 50 && parallel > 100,
        "{counts:?}"
    );
    // The operator's questions: what to do after a failure, and the point
    // of no return.
    assert!(asked > 100 && gated > 100, "asked {asked}, gated {gated}");
}

// ---------------------------------------------------------------------------
// Fixed cases
// ---------------------------------------------------------------------------

fn feed(machine: &mut StateMachine<RunMachine>, event: Event) -> Vec<Effect> {
    feed_named(machine, &event, &mut Outbox::default())
}

fn started(machine: &mut StateMachine<RunMachine>) -> Vec<Effect> {
    feed(machine, Event::Start);
    feed(machine, Event::PreflightPassed)
}

#[test]
fn parallel_branches_revert_in_reverse_completion_order_whatever_the_finishing_order() {
    // a; then b, c, d in parallel; e after all. e fails.
    let steps = vec![
        ScheduledStep::automatic("a", vec![], 0, (START_POINT, 0), false),
        ScheduledStep::automatic("b", vec![0], 0, (START_POINT, 0), false),
        ScheduledStep::automatic("c", vec![0], 0, (START_POINT, 0), false),
        ScheduledStep::automatic("d", vec![0], 0, (START_POINT, 0), false),
        ScheduledStep::automatic("e", vec![1, 2, 3], 0, (START_POINT, 0), false),
    ];
    let schedule = Arc::new(Schedule::from_steps(steps, vec![START_POINT.into()]));
    for seed in 0..64 {
        let faults = Faults {
            forward: HashMap::from([((4, 1), Outcome::Fail { partial: false })]),
            seed,
            ..Faults::default()
        };
        let run = run_once(&schedule, &faults).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            matches!(run.end, RunEnd::RolledBack { .. }),
            "{:?}",
            run.end
        );
        assert_eq!(run.reverted.len(), 4);
    }
}

#[test]
fn a_crash_mid_step_resumes_by_checking_and_never_runs_a_step_twice() {
    let steps = (0..4)
        .map(|i| {
            ScheduledStep::automatic(
                &format!("s{i}"),
                if i == 0 { vec![] } else { vec![i - 1] },
                0,
                (START_POINT, 0),
                false,
            )
        })
        .collect();
    let schedule = Arc::new(Schedule::from_steps(steps, vec![START_POINT.into()]));
    for at in 0..12 {
        for seed in 0..16 {
            let faults = Faults {
                crashes: vec![at],
                seed,
                ..Faults::default()
            };
            let run = run_once(&schedule, &faults)
                .unwrap_or_else(|e| panic!("crash at {at}, seed {seed}: {e}"));
            assert_eq!(run.end, RunEnd::Completed, "crash at {at}, seed {seed}");
        }
    }
}

#[test]
fn an_in_doubt_step_that_did_not_take_effect_runs_again_and_one_that_did_does_not() {
    let schedule = Arc::new(Schedule::from_steps(
        vec![ScheduledStep::automatic(
            "a",
            vec![],
            0,
            (START_POINT, 0),
            false,
        )],
        vec![START_POINT.into()],
    ));
    let mut machine = RunMachine::new(Arc::clone(&schedule)).state_machine();
    started(&mut machine);
    let effects = feed(
        &mut machine,
        Event::StepInDoubt {
            step: "a".into(),
            reason: "ssh dropped".into(),
        },
    );
    assert_eq!(effects, vec![Effect::Check { step: "a".into() }]);
    let effects = feed(
        &mut machine,
        Event::Checked {
            step: "a".into(),
            done: false,
        },
    );
    assert_eq!(
        effects,
        vec![Effect::Forward {
            step: "a".into(),
            attempt: 2
        }]
    );
    let effects = feed(
        &mut machine,
        Event::StepInDoubt {
            step: "a".into(),
            reason: "ssh dropped".into(),
        },
    );
    assert_eq!(effects, vec![Effect::Check { step: "a".into() }]);
    let effects = feed(
        &mut machine,
        Event::Checked {
            step: "a".into(),
            done: true,
        },
    );
    assert_eq!(
        effects,
        vec![Effect::Finished {
            end: RunEnd::Completed
        }]
    );
}

/// The driver answers a `Check` that cannot run (e.g. the check command times
/// out) with `StepInDoubt` ("a check that cannot run leaves the operator to
/// decide", plan-steps/src/driver.rs). Regression: the machine ignored it for
/// a step already in doubt, and the run waited for ever.
#[test]
fn a_check_that_cannot_run_asks_the_operator() {
    let schedule = Arc::new(Schedule::from_steps(
        vec![ScheduledStep::automatic(
            "a",
            vec![],
            0,
            (START_POINT, 0),
            false,
        )],
        vec![START_POINT.into()],
    ));
    let mut machine = RunMachine::new(Arc::clone(&schedule)).state_machine();
    started(&mut machine);
    let effects = feed(
        &mut machine,
        Event::StepInDoubt {
            step: "a".into(),
            reason: "ssh dropped".into(),
        },
    );
    assert_eq!(effects, vec![Effect::Check { step: "a".into() }]);
    // What the driver feeds when the check itself cannot run:
    let effects = feed(
        &mut machine,
        Event::StepInDoubt {
            step: "a".into(),
            reason: "its check did not finish: timed out".into(),
        },
    );
    assert_eq!(
        effects,
        vec![Effect::AskOperator { step: "a".into() }],
        "state {:?}",
        machine.state()
    );
    let effects = feed(
        &mut machine,
        Event::OperatorAnswered {
            step: "a".into(),
            done: true,
        },
    );
    assert_eq!(
        effects,
        vec![Effect::Finished {
            end: RunEnd::Completed
        }]
    );
}

/// `awaiting_operator` documents `Abort -> Reverting via Active`; the manual
/// step stays `Running`, so the rollback waits for the operator's answer.
/// Regression: `Reverting` ignored that answer and the machine was stuck.
#[test]
fn abort_while_awaiting_the_operator_ends_the_run() {
    let mut manual = ScheduledStep::automatic("m", vec![0], 0, (START_POINT, 0), false);
    manual.manual = true;
    let steps = vec![
        ScheduledStep::automatic("a", vec![], 0, (START_POINT, 0), false),
        manual,
    ];
    let schedule = Arc::new(Schedule::from_steps(steps, vec![START_POINT.into()]));
    for answer in [
        Event::OperatorConfirmed { step: "m".into() },
        Event::OperatorDeclined { step: "m".into() },
    ] {
        let mut machine = RunMachine::new(Arc::clone(&schedule)).state_machine();
        started(&mut machine);
        let effects = feed(&mut machine, Event::StepSucceeded { step: "a".into() });
        assert_eq!(effects, vec![Effect::Confirm { step: "m".into() }]);
        let mut effects = feed(
            &mut machine,
            Event::Abort {
                reason: "Ctrl-C".into(),
            },
        );
        effects.extend(feed(&mut machine, answer.clone()));
        // Perform the reverts asked for, if any.
        while let Some(Effect::Revert { step }) = effects
            .iter()
            .find(|e| matches!(e, Effect::Revert { .. }))
            .cloned()
        {
            effects = feed(&mut machine, Event::RevertSucceeded { step });
        }
        assert!(
            machine.state().is_terminal(),
            "after Abort then {answer:?}: stuck in {:?}",
            machine.state()
        );
    }
}

/// Past the point of no return, a failure halts while parallel steps are
/// still running. Regression: their outcomes reached a `Halted` machine that
/// ignored them, so a step that then succeeded stayed `Running`, was listed
/// in `left`, and the next `cutover run` ran it a second time.
#[test]
fn a_step_finishing_after_a_halt_counts_as_done() {
    let steps = vec![
        ScheduledStep::automatic("a", vec![], 0, (START_POINT, 0), false),
        ScheduledStep::automatic("b", vec![0], 1, (START_POINT, 0), true),
        ScheduledStep::automatic("c", vec![0], 1, (START_POINT, 0), true),
    ];
    let schedule = Arc::new(Schedule::from_steps(steps, vec![START_POINT.into()]));
    let mut machine = RunMachine::new(Arc::clone(&schedule)).state_machine();
    started(&mut machine);
    let effects = feed(&mut machine, Event::StepSucceeded { step: "a".into() });
    assert_eq!(effects.len(), 2, "b and c start together: {effects:?}");
    let effects = feed(
        &mut machine,
        Event::StepFailed {
            step: "b".into(),
            reason: "boom".into(),
        },
    );
    assert!(
        matches!(machine.state(), State::Halting { .. }),
        "{effects:?}"
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Finished { .. })),
        "the halt is announced while c runs: {effects:?}"
    );
    // c, already running, finishes: its effect is in place.
    let effects = feed(&mut machine, Event::StepSucceeded { step: "c".into() });
    assert_eq!(
        machine.status_of("c"),
        Some(StepStatus::Done),
        "c took effect but the machine says {:?}",
        machine.status_of("c")
    );
    let Some(Effect::Finished {
        end: RunEnd::Halted { done, .. },
    }) = effects.first()
    else {
        panic!("the halt is not announced once nothing runs: {effects:?}");
    };
    assert_eq!(done, &vec!["a".to_owned(), "c".to_owned()]);
}

/// Regression: a crash while a halted run waits for the steps still running
/// (its end not yet announced, so `resume` does not consider the run over).
/// The replayed machine was `Halted`, which ignored `Resume`, so nothing was
/// re-checked, nothing announced, and the driver waited for ever.
#[test]
fn regression_a_crash_while_a_halt_waits_for_running_steps_resumes_to_an_end() {
    let steps = vec![
        ScheduledStep::automatic("a", vec![], 0, (START_POINT, 0), false),
        ScheduledStep::automatic("b", vec![0], 1, (START_POINT, 0), true),
        ScheduledStep::automatic("c", vec![0], 1, (START_POINT, 0), true),
    ];
    let schedule = Arc::new(Schedule::from_steps(steps, vec![START_POINT.into()]));
    let mut events = vec![
        Event::Start,
        Event::PreflightPassed,
        Event::StepSucceeded { step: "a".into() },
    ];
    events.push(Event::StepFailed {
        step: "b".into(),
        reason: "boom".into(),
    });
    let mut machine = replay(&schedule, OnFailure::Rollback, &events);
    assert!(
        matches!(machine.state(), State::Halting { .. }),
        "{:?}",
        machine.state()
    );
    // The process dies while `c` runs; resume replays the journal and goes on.
    let effects = feed(
        &mut machine,
        Event::Resume {
            started: vec!["c".into()],
        },
    );
    let settle = effects.iter().find_map(|e| match e {
        Effect::Check { step } | Effect::AskOperator { step } => Some(step.clone()),
        _ => None,
    });
    let Some(step) = settle else {
        panic!(
            "resume of a halted run with `c` in doubt does nothing: {effects:?}, state {:?}",
            machine.state()
        );
    };
    let effects = feed(&mut machine, Event::Checked { step, done: true });
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Finished { .. })),
        "{effects:?}"
    );
    assert_eq!(machine.status_of("c"), Some(StepStatus::Done));
}

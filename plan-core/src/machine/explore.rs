//! Verification by exploration: drive the run machine with a simulated
//! executor and inject a failure at every step's forward and every revert,
//! single faults and all pairs, checking that every run ends safely.
//!
//! A run branches at each point where a fault can be injected; branches
//! share the run up to that point by cloning the machine, so a pair of
//! faults costs one clone and the rest of the run, not a replay from the
//! start.
//!
//! Every single fault is run. A second fault is run once per *situation*:
//! what the machine's handling of it can depend on (a forward or a revert,
//! the kind of step, whether it is the first or the last revert of its
//! rollback, whether the step failed before, the machine's state, the first
//! fault's kind). A step failing while the first fault drains is grouped so
//! unless it is the last step in flight (its failure starts the rollback,
//! which undoes what completed: always run). One whose situation an earlier
//! run covered is counted in [`Exploration::equivalent`], not run: on a plan
//! of n steps in one segment, every pair is n² runs, and a fleet's plan has
//! thousands of steps, a hundred of them in flight at once.
//! [`explore_exhaustive`] runs every pair and checks the premise (the tests
//! run it on generated schedules).

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt;
use std::sync::Arc;

use statig::prelude::*;

use super::event::{Command, Effect, Event, FailureChoice, Input, RunEnd, StepStatus};
use super::run::{Outbox, RunMachine, State};
use super::schedule::{Schedule, StepIx};

mod tails;
use tails::{TailKey, Tails};

/// Where a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// The step's forward action fails (every attempt).
    Forward(StepIx),
    /// The step's revert fails.
    Revert(StepIx),
}

/// What exploration covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exploration {
    /// Runs driven to their end.
    pub runs: usize,
    /// Runs with exactly one fault.
    pub single_faults: usize,
    /// Runs with two faults.
    pub double_faults: usize,
    /// Runs that completed.
    pub completed: usize,
    /// Runs that rolled back.
    pub rolled_back: usize,
    /// Runs that halted.
    pub halted: usize,
    /// Second faults not run because a run with the same situation was.
    pub equivalent: usize,
    /// Runs that ended by an earlier run's rollback from the same revert
    /// on (see [`explore_unshared`]).
    pub shared_tails: usize,
}

/// What the machine's handling of a failed revert (a second fault) can
/// depend on: two in the same situation are handled alike, so one run covers
/// both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Situation {
    /// A forward action fails (else a revert).
    forward: bool,
    /// The machine's state before the fault.
    state: std::mem::Discriminant<State>,
    /// How the machine treats the step whose revert fails.
    step: StepKind,
    /// The step failed before (its revert undoes a partial effect).
    failed_before: bool,
    /// The first revert of its rollback.
    first: bool,
    /// The last revert left in its rollback.
    last: bool,
    /// The first fault: a revert, and the kind of its step.
    first_fault: (bool, StepKind),
}

impl Situation {
    /// The situation as a set's key: its state and its facts in one word
    /// (hashing a dozen flags one by one was a fifth of a fleet's check).
    fn key(&self) -> (std::mem::Discriminant<State>, u32) {
        let flags = [
            self.forward,
            self.failed_before,
            self.first,
            self.last,
            self.first_fault.0,
        ];
        let bits = flags
            .iter()
            .fold(0u32, |acc, &flag| acc << 1 | u32::from(flag));
        (
            self.state,
            bits << 12 | self.step.bits() << 6 | self.first_fault.1.bits(),
        )
    }
}

/// The schedule's facts about a step that decide how its failure is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StepKind {
    manual: bool,
    checkable: bool,
    undoable: bool,
    revert_after_failure: bool,
    past_no_return: bool,
    retries: bool,
}

impl StepKind {
    fn of(schedule: &Schedule, ix: StepIx) -> StepKind {
        let s = &schedule.steps[ix];
        StepKind {
            manual: s.manual,
            checkable: s.checkable,
            undoable: s.undoable,
            revert_after_failure: s.revert_after_failure,
            past_no_return: s.past_no_return,
            retries: s.retries > 0,
        }
    }

    /// The six facts as six bits.
    fn bits(&self) -> u32 {
        [
            self.manual,
            self.checkable,
            self.undoable,
            self.revert_after_failure,
            self.past_no_return,
            self.retries,
        ]
        .iter()
        .fold(0, |acc, &flag| acc << 1 | u32::from(flag))
    }
}

/// How the machine handled a fault: the state it went to and the effects it
/// asked for, each as its kind and whether it is about the failing step
/// (how each other step is then handled, its own faults explore).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Handling {
    state: std::mem::Discriminant<State>,
    effects: Vec<(std::mem::Discriminant<Command>, bool)>,
}

/// Which second faults a run explores.
struct Reduction {
    /// Run every pair, and check the premise of the reduction: second
    /// faults in the same situation are handled alike.
    exhaustive: bool,
    seen: FxHashSet<(std::mem::Discriminant<State>, u32)>,
    /// The key asked about last (in `seen`).
    last: Option<(std::mem::Discriminant<State>, u32)>,
    handled: FxHashMap<(std::mem::Discriminant<State>, u32), (Situation, Handling)>,
    skipped: usize,
    /// Rollback tails shared between runs.
    tails: Tails,
}

impl Reduction {
    /// Second faults by situation (or every one, `exhaustive`), and
    /// rollback tails shared or each walked.
    fn new(exhaustive: bool, share_tails: bool) -> Reduction {
        Reduction {
            exhaustive,
            seen: FxHashSet::default(),
            last: None,
            handled: FxHashMap::default(),
            skipped: 0,
            tails: Tails::new(share_tails && !exhaustive),
        }
    }

    /// A run without branches, for `simulate` and counterexamples.
    fn single_run() -> Reduction {
        Reduction::new(false, false)
    }

    /// The situation of a revert of `ix` failing in `sim`, the first of
    /// its rollback or not: `None` when no fault came before (a revert
    /// failing is then a first fault, always run).
    fn situation(schedule: &Schedule, sim: &Sim, ix: StepIx, first: bool) -> Option<Situation> {
        let first_fault = match *sim.faults.first()? {
            FaultPoint::Forward(f) => (false, StepKind::of(schedule, f)),
            FaultPoint::Revert(f) => (true, StepKind::of(schedule, f)),
        };
        Some(Situation {
            forward: false,
            state: std::mem::discriminant(sim.machine.state()),
            step: StepKind::of(schedule, ix),
            failed_before: sim.failures[ix] > 0,
            first,
            last: sim.machine.reverts_left() <= 1,
            first_fault,
        })
    }

    /// The situation of the forward of `ix` failing in `sim` while a first
    /// fault drains (other steps in flight finish before the rollback):
    /// `None` when no fault came before, or when it is the last step in
    /// flight (its failure is what starts the rollback, whose reverts
    /// differ with what completed: always run).
    fn forward_situation(schedule: &Schedule, sim: &Sim, ix: StepIx) -> Option<Situation> {
        if sim.machine.steps_in_flight() <= 1 {
            return None;
        }
        Some(Situation {
            forward: true,
            first: false,
            last: false,
            ..Reduction::situation(schedule, sim, ix, false)?
        })
    }

    /// Whether a fault in `situation` is run: when it has none (a first
    /// fault, or the last step in flight failing), or its situation is new
    /// (or every one, exhaustively).
    #[inline]
    fn run(&mut self, situation: Option<Situation>) -> bool {
        let Some(situation) = situation else {
            return true;
        };
        let key = situation.key();
        // The reverts of one rollback mostly share a situation: the last one
        // asked about is known without hashing.
        let new = self.last != Some(key) && self.seen.insert(key);
        self.last = Some(key);
        if new || self.exhaustive {
            true
        } else {
            self.skipped += 1;
            false
        }
    }

    /// Exhaustively, checks that the machine handled the second fault at
    /// `ix` (its effects from `queued` on in `sim`'s queue) as every other
    /// fault in its situation.
    fn premise(
        &mut self,
        schedule: &Schedule,
        situation: Option<Situation>,
        sim: &Sim,
        queued: usize,
        ix: StepIx,
    ) -> Result<(), String> {
        let (true, Some(situation)) = (self.exhaustive, situation) else {
            return Ok(());
        };
        let handling = Handling {
            state: std::mem::discriminant(sim.machine.state()),
            effects: sim
                .queue
                .iter()
                .skip(queued)
                .map(|c| (std::mem::discriminant(c), c.step() == Some(&ix)))
                .collect(),
        };
        match self.handled.get(&situation.key()) {
            Some((_, earlier)) if *earlier != handling => Err(format!(
                "the exploration's premise fails: `{}` failing in {situation:?} was handled \
                 as {handling:?}, another in the same situation as {earlier:?}",
                schedule.steps[ix].id
            )),
            Some(_) => Ok(()),
            None => {
                self.handled.insert(situation.key(), (situation, handling));
                Ok(())
            }
        }
    }
}

/// A run that did not end safely, with the exact events that led there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The faults injected.
    pub faults: Vec<String>,
    /// The events fed to the machine, in order.
    pub events: Vec<Event>,
    /// What went wrong.
    pub problem: String,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (faults: {})",
            self.problem,
            if self.faults.is_empty() {
                "none".into()
            } else {
                self.faults.join(", ")
            }
        )?;
        for (i, event) in self.events.iter().enumerate() {
            writeln!(f, "  {:>3}. {}", i + 1, serde_json_like(event))?;
        }
        Ok(())
    }
}

fn serde_json_like(event: &Event) -> String {
    format!("{event:?}")
}

/// One simulated run, cloned at every branch.
#[derive(Clone)]
struct Sim {
    machine: StateMachine<RunMachine>,
    queue: VecDeque<Command>,
    faults: Vec<FaultPoint>,
    budget: usize,
    completed: Vec<bool>,
    /// How many steps `completed` counts.
    done: usize,
    starts: Vec<u32>,
    failures: Vec<u32>,
    /// Completion position of each step, for the reverse-order check.
    position: Vec<usize>,
    /// How many of the first completions are the run's without faults
    /// (all of them until a fault; a rollback tail through them can be
    /// shared).
    shared: usize,
    /// The shareable reverts this run's rollback passed, with `reverts`
    /// before each.
    tail: Vec<(TailKey, usize)>,
    /// Revert effects handled.
    reverts: usize,
    last_revert: Option<usize>,
    ends: Vec<RunEnd<StepIx>>,
    events: usize,
    trace: Option<Vec<Input>>,
    log: Option<Vec<Command>>,
    /// The machine's outbox, reused from event to event.
    outbox: Outbox,
}

impl Sim {
    fn new(schedule: &Arc<Schedule>, budget: usize, faults: Vec<FaultPoint>, trace: bool) -> Sim {
        let n = schedule.steps.len();
        Sim {
            machine: RunMachine::new(Arc::clone(schedule)).state_machine(),
            queue: VecDeque::new(),
            faults,
            budget,
            completed: vec![false; n],
            done: 0,
            starts: vec![0; n],
            failures: vec![0; n],
            position: vec![usize::MAX; n],
            shared: 0,
            tail: Vec::new(),
            reverts: 0,
            last_revert: None,
            ends: Vec::new(),
            events: 0,
            trace: trace.then(Vec::new),
            log: None,
            outbox: Outbox::default(),
        }
    }

    /// A failed step the machine now counts as completed (its check found
    /// part of its effect, or its revert is declared safe on one): the
    /// rollback may undo it, in its place in the completion order.
    fn sync_completion(&mut self, ix: StepIx) {
        let counted = matches!(
            self.machine.statuses()[ix],
            StepStatus::Done | StepStatus::Reverting | StepStatus::Reverted
        );
        if counted && !self.completed[ix] {
            self.completed[ix] = true;
            self.done += 1;
            self.position[ix] = self.done;
        }
    }

    fn feed(&mut self, event: Input) {
        self.events += 1;
        if let Some(trace) = &mut self.trace {
            trace.push(event.clone());
        }
        self.machine.handle_with_context(&event, &mut self.outbox);
        self.queue.extend(self.outbox.effects.drain(..));
    }
}

/// Explores the runs of `schedule` with up to `max_faults` injected faults:
/// every single fault, and every second fault in a situation not covered
/// by an earlier run (see the module's documentation).
pub fn explore(schedule: Arc<Schedule>, max_faults: usize) -> Result<Exploration, Counterexample> {
    explore_with(schedule, max_faults, Reduction::new(false, true))
}

/// What [`explore`] does, with every rollback walked to its end: a run
/// whose rollback reaches a revert of a step completed before any fault
/// (in the same place of the completion order), where an earlier run's
/// rollback in the same situation went on to its end, takes that end in
/// [`explore`] (`Exploration::shared_tails` counts them); here it walks it
/// (for tests: the same report, `shared_tails` aside; its cost grows with
/// the square of a segment's steps).
pub fn explore_unshared(
    schedule: Arc<Schedule>,
    max_faults: usize,
) -> Result<Exploration, Counterexample> {
    explore_with(schedule, max_faults, Reduction::new(false, false))
}

/// Explores every run of `schedule` with up to `max_faults` injected
/// faults, every pair included: what [`explore`] covers by situations, run
/// one by one (for tests; its cost grows with the cube of a segment's steps).
pub fn explore_exhaustive(
    schedule: Arc<Schedule>,
    max_faults: usize,
) -> Result<Exploration, Counterexample> {
    explore_with(schedule, max_faults, Reduction::new(true, false))
}

fn explore_with(
    schedule: Arc<Schedule>,
    max_faults: usize,
    mut reduction: Reduction,
) -> Result<Exploration, Counterexample> {
    let mut report = Exploration::default();
    let mut stack = vec![Sim::new(&schedule, max_faults, Vec::new(), false)];
    stack[0].feed(Event::Start);
    let limit = event_limit(&schedule);
    while let Some(mut sim) = stack.pop() {
        let driven = drive(&schedule, &mut sim, &mut stack, limit, &mut reduction);
        report.equivalent = reduction.skipped;
        report.shared_tails = reduction.tails.taken;
        match driven {
            Ok(end) => {
                report.runs += 1;
                match sim.faults.len() {
                    0 => {}
                    1 => report.single_faults += 1,
                    _ => report.double_faults += 1,
                }
                match end {
                    RunEnd::Completed => report.completed += 1,
                    RunEnd::RolledBack { .. } => report.rolled_back += 1,
                    RunEnd::Halted { .. } => report.halted += 1,
                }
            }
            Err(problem) => return Err(counterexample(&schedule, sim.faults, problem, limit)),
        }
    }
    Ok(report)
}

/// The effects a run performs, in order, when exactly `faults` happen, and
/// how it ends: what `run --dry-run` shows, straight from the machine.
pub fn simulate(
    schedule: Arc<Schedule>,
    faults: &[FaultPoint],
) -> Result<(Vec<Effect>, RunEnd), String> {
    let mut sim = Sim::new(&schedule, 0, faults.to_vec(), false);
    sim.log = Some(Vec::new());
    sim.feed(Event::Start);
    let mut no_branches = Vec::new();
    let end = drive(
        &schedule,
        &mut sim,
        &mut no_branches,
        event_limit(&schedule),
        &mut Reduction::single_run(),
    )?;
    let log = sim.log.unwrap_or_default();
    let name = |&ix: &StepIx| schedule.steps[ix].id.clone();
    Ok((
        log.iter().map(|c| schedule.name(c)).collect(),
        end.map_step(name),
    ))
}

fn event_limit(schedule: &Schedule) -> usize {
    let retries: usize = schedule.steps.iter().map(|s| s.retries as usize + 2).sum();
    4 * (retries + schedule.steps.len()) + 16
}

fn counterexample(
    schedule: &Arc<Schedule>,
    faults: Vec<FaultPoint>,
    problem: String,
    limit: usize,
) -> Counterexample {
    let mut sim = Sim::new(schedule, 0, faults.clone(), true);
    sim.feed(Event::Start);
    let mut no_branches = Vec::new();
    let _ = drive(
        schedule,
        &mut sim,
        &mut no_branches,
        limit,
        &mut Reduction::single_run(),
    );
    let names = faults
        .iter()
        .map(|f| match *f {
            FaultPoint::Forward(ix) => format!("forward of `{}` fails", schedule.steps[ix].id),
            FaultPoint::Revert(ix) => format!("revert of `{}` fails", schedule.steps[ix].id),
        })
        .collect();
    Counterexample {
        faults: names,
        events: sim
            .trace
            .unwrap_or_default()
            .iter()
            .filter_map(|event| event.map_step(|&ix| Some(schedule.steps[ix].id.clone())))
            .collect(),
        problem,
    }
}

/// Runs `sim` to its end, pushing a faulted branch at every fault point
/// while the fault budget lasts.
fn drive(
    schedule: &Arc<Schedule>,
    sim: &mut Sim,
    branches: &mut Vec<Sim>,
    limit: usize,
    reduction: &mut Reduction,
) -> Result<RunEnd<StepIx>, String> {
    loop {
        if sim.events > limit {
            return Err(format!(
                "the run does not end: more than {limit} events in state {:?}",
                sim.machine.state()
            ));
        }
        let Some(effect) = sim.queue.pop_front() else {
            let end = finish(sim, schedule)?;
            reduction.tails.record(sim, &end);
            return Ok(end);
        };
        if let Some(log) = &mut sim.log {
            log.push(effect.clone());
        }
        match effect {
            Effect::Preflight { .. } => sim.feed(Event::PreflightPassed),
            Effect::Forward { step, .. } | Effect::Confirm { step } => {
                let (ix, id) = (step, id_of(schedule, step)?);
                if sim.completed[ix] {
                    return Err(format!("step `{id}` is started again after it completed"));
                }
                if sim.starts[ix] != sim.failures[ix] {
                    return Err(format!(
                        "step `{id}` is started again while its previous start has no outcome"
                    ));
                }
                sim.starts[ix] += 1;
                let manual = schedule.steps[ix].manual;
                let fault = FaultPoint::Forward(ix);
                let fails = sim.faults.contains(&fault);
                let can_branch = !fails && sim.budget > 0 && sim.starts[ix] == 1;
                let situation = can_branch
                    .then(|| Reduction::forward_situation(schedule, sim, ix))
                    .flatten();
                let branch_here = can_branch && reduction.run(situation);
                if branch_here {
                    // Depth first: the run goes on with the fault, the rest
                    // of the run without it waits (so only a few runs are
                    // ever kept at once, however long the plan).
                    let mut rest = sim.clone();
                    forward_succeeds(&mut rest, step, manual);
                    branches.push(rest);
                    sim.budget -= 1;
                    sim.faults.push(fault);
                }
                if fails || branch_here {
                    sim.failures[ix] += 1;
                    let queued = sim.queue.len();
                    sim.feed(if manual {
                        Event::OperatorDeclined { step }
                    } else {
                        Event::StepFailed {
                            step,
                            reason: "injected fault".into(),
                        }
                    });
                    if branch_here {
                        reduction.premise(schedule, situation, sim, queued, ix)?;
                    }
                    // The plan's word that its revert is safe on a partial effect.
                    sim.sync_completion(ix);
                } else {
                    forward_succeeds(sim, step, manual);
                }
            }
            // A failed step's check: part of its effect is there, or not.
            // Both are explored (no fault budget: they are not faults).
            Effect::Check { step }
                if sim.failures[step] > 0 && sim.starts[step] == sim.failures[step] =>
            {
                let mut branch = sim.clone();
                branch.feed(Event::Checked { step, done: false });
                branches.push(branch);
                sim.feed(Event::Checked { step, done: true });
                sim.sync_completion(step);
            }
            Effect::Check { step } => sim.feed(Event::Checked { step, done: true }),
            Effect::AskOperator { step } => sim.feed(Event::OperatorAnswered { step, done: true }),
            // The operator's Ctrl-C at the point of no return is an `Abort`,
            // which the machine takes in every state alike; the property
            // tests feed it there.
            Effect::CrossNoReturn { .. } => sim.feed(Event::CrossedNoReturn),
            // Exploration runs with the automatic policy, which never asks;
            // its answer would be this.
            Effect::AskOnFailure { step, .. } => sim.feed(Event::OperatorChose {
                step,
                choice: FailureChoice::Rollback,
            }),
            Effect::Revert { step } => {
                let (ix, id) = (step, id_of(schedule, step)?);
                if !sim.completed[ix] {
                    return Err(format!("step `{id}` is reverted but never completed"));
                }
                if let Some(previous) = sim.last_revert {
                    if sim.position[ix] > previous {
                        return Err(format!(
                            "step `{id}` is reverted out of reverse completion order"
                        ));
                    }
                }
                let first = sim.last_revert.is_none();
                sim.last_revert = Some(sim.position[ix]);
                let fault = FaultPoint::Revert(ix);
                let fails = sim.faults.contains(&fault);
                let can_branch = !fails && sim.budget > 0;
                let shareable = (!fails)
                    .then(|| reduction.tails.key(schedule, sim, ix, first))
                    .flatten();
                if let Some(key) = shareable {
                    if let Some(taken) = reduction.tails.take(schedule, sim, &key) {
                        let taken = taken?;
                        // Each revert of the tail was a second fault the
                        // run that walked it covered.
                        if can_branch {
                            reduction.skipped += taken.reverts;
                        }
                        sim.reverts += taken.reverts;
                        reduction.tails.record(sim, &taken.end);
                        return Ok(taken.end);
                    }
                    sim.tail.push((key, sim.reverts));
                }
                sim.reverts += 1;
                let situation = can_branch
                    .then(|| Reduction::situation(schedule, sim, ix, first))
                    .flatten();
                let branch_here = can_branch && reduction.run(situation);
                if branch_here {
                    let mut rest = sim.clone();
                    revert_succeeds(&mut rest, step);
                    branches.push(rest);
                    sim.budget -= 1;
                    sim.faults.push(fault);
                    // This run's rollback ends here: the tail is the rest's.
                    sim.tail.clear();
                }
                if fails || branch_here {
                    let queued = sim.queue.len();
                    sim.feed(Event::RevertFailed {
                        step,
                        reason: "injected fault".into(),
                    });
                    if branch_here {
                        reduction.premise(schedule, situation, sim, queued, ix)?;
                    }
                } else {
                    revert_succeeds(sim, step);
                }
            }
            Effect::Finished { end } => sim.ends.push(end),
        }
    }
}

/// The step's forward (or the operator's confirmation) succeeds.
fn forward_succeeds(sim: &mut Sim, step: StepIx, manual: bool) {
    sim.completed[step] = true;
    sim.done += 1;
    sim.position[step] = sim.done;
    if sim.faults.is_empty() {
        sim.shared = sim.done;
    }
    sim.feed(if manual {
        Event::OperatorConfirmed { step }
    } else {
        Event::StepSucceeded { step }
    });
}

/// The step's revert succeeds.
fn revert_succeeds(sim: &mut Sim, step: StepIx) {
    sim.completed[step] = false;
    sim.done -= 1;
    sim.feed(Event::RevertSucceeded { step });
}

/// The id of a step the machine named.
fn id_of(schedule: &Schedule, step: StepIx) -> Result<&str, String> {
    schedule
        .steps
        .get(step)
        .map(|s| s.id.as_str())
        .ok_or_else(|| format!("the machine named step {step}, which the schedule does not have"))
}

/// Checks how a run ended.
fn finish(sim: &Sim, schedule: &Schedule) -> Result<RunEnd<StepIx>, String> {
    let state = sim.machine.state();
    if !state.is_terminal() {
        return Err(format!("the run is stuck in {state:?} with nothing to do"));
    }
    let [end] = sim.ends.as_slice() else {
        return Err(format!(
            "the run ended with {} `Finished` effects instead of one",
            sim.ends.len()
        ));
    };
    let statuses = sim.machine.statuses();
    let unsettled = statuses.iter().position(|s| {
        matches!(
            s,
            StepStatus::Running
                | StepStatus::InDoubt
                | StepStatus::Reverting
                | StepStatus::RevertInDoubt
        )
    });
    match (state, end) {
        (State::Completed {}, RunEnd::Completed) => {
            if let Some(ix) = statuses.iter().position(|s| *s != StepStatus::Done) {
                return Err(format!(
                    "completed, but step `{}` is {:?}",
                    schedule.steps[ix].id, statuses[ix]
                ));
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
                    "rolled back to `{point}`, which is not a declared rollback point"
                ));
            }
            if let Some(ix) = unsettled {
                return Err(format!(
                    "rolled back while step `{}` is {:?}",
                    schedule.steps[ix].id, statuses[ix]
                ));
            }
            // Everything done at or after the point must be undone.
            let segment = schedule
                .steps
                .iter()
                .find(|s| s.rollback_point == *point)
                .map(|s| s.rollback_segment);
            if let Some(segment) = segment {
                if let Some(ix) = (0..statuses.len()).find(|&ix| {
                    schedule.steps[ix].segment >= segment
                        && statuses[ix] == StepStatus::Done
                        && sim.completed[ix]
                }) {
                    return Err(format!(
                        "rolled back to `{point}` but step `{}` is still done",
                        schedule.steps[ix].id
                    ));
                }
            }
        }
        (State::Halted { halt }, RunEnd::Halted { .. }) => {
            if halt.reason.trim().is_empty() {
                return Err("halted without a reason".into());
            }
        }
        (state, end) => return Err(format!("the machine is in {state:?} but announced {end:?}")),
    }
    Ok(end.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::ScheduledStep;

    fn linear(n: usize, point_every: usize) -> Schedule {
        let mut steps = Vec::new();
        let mut points = vec!["start".to_owned()];
        let mut point = ("start".to_owned(), 0);
        for i in 0..n {
            let segment = i.checked_div(point_every).unwrap_or(0);
            if point_every > 0 && i > 0 && i % point_every == 0 {
                point = (format!("p{segment}"), segment);
                points.push(point.0.clone());
            }
            let deps = if i == 0 || (point_every > 0 && i % point_every == 0) {
                vec![]
            } else {
                vec![i - 1]
            };
            steps.push(ScheduledStep::automatic(
                &format!("s{i}"),
                deps,
                segment,
                (&point.0, point.1),
                false,
            ));
        }
        Schedule::from_steps(steps, points)
    }

    #[test]
    fn a_linear_plan_is_safe_under_every_single_and_double_fault() {
        let report = explore_exhaustive(Arc::new(linear(8, 3)), 2).expect("safe");
        // Segments [s0 s1 s2] [s3 s4 s5] [s6 s7]: 8 forward faults, each
        // run twice: the failed step's check finds part of its effect (and
        // the rollback undoes it too), or not. A revert fails only after a
        // forward fault: the k-th step of a segment failing leaves k reverts
        // to fail (k + 1 when its partial effect is undone): 9 + 9 + 4 pairs.
        assert_eq!(
            (report.single_faults, report.double_faults),
            (16, 22),
            "{report:?}"
        );
        assert_eq!(
            (report.completed, report.rolled_back, report.halted),
            (1, 16, 22)
        );
        // By situations: the same single faults; of the 22 pairs, one per
        // situation is run (a first revert, a middle one, the last, after a
        // failed step whose partial effect is undone or not), the others
        // are covered by those.
        let reduced = explore(Arc::new(linear(8, 3)), 2).expect("safe");
        assert_eq!(reduced.single_faults, 16, "{reduced:?}");
        assert_eq!(
            reduced.double_faults + reduced.equivalent,
            22,
            "{reduced:?}"
        );
        assert!(reduced.double_faults < 22, "{reduced:?}");
    }

    /// A plan of a thousand steps in one segment: every pair would be
    /// about a million runs of up to a thousand steps; by situations, a few
    /// per forward fault.
    #[test]
    fn a_long_segment_is_explored_by_situations() {
        let report = explore(Arc::new(linear(1000, 0)), 2).expect("safe");
        assert_eq!(report.single_faults, 2000, "{report:?}");
        assert!(report.double_faults < 20_000, "{report:?}");
        assert!(report.equivalent > 900_000, "{report:?}");
    }

    /// Sharing rollback tails changes the cost, not what is covered: a long
    /// segment, segments, and hosts side by side give the same report as
    /// walking every rollback, and most runs take a shared tail.
    #[test]
    fn shared_rollback_tails_cover_what_walking_them_covers() {
        let side_by_side = |hosts: usize, chain: usize| {
            let mut steps = Vec::new();
            for h in 0..hosts {
                for s in 0..chain {
                    let deps = if s == 0 {
                        vec![]
                    } else {
                        vec![steps.len() - 1]
                    };
                    steps.push(ScheduledStep::automatic(
                        &format!("h{h}s{s}"),
                        deps,
                        0,
                        ("start", 0),
                        false,
                    ));
                }
            }
            Schedule::from_steps(steps, vec!["start".into()])
        };
        for schedule in [linear(300, 0), linear(200, 40), side_by_side(6, 30)] {
            let schedule = Arc::new(schedule);
            let shared = explore(Arc::clone(&schedule), 2).expect("safe");
            let walked = explore_unshared(Arc::clone(&schedule), 2).expect("safe");
            assert_eq!(walked.shared_tails, 0);
            assert_eq!(
                Exploration {
                    shared_tails: 0,
                    ..shared.clone()
                },
                walked
            );
            assert!(shared.shared_tails * 2 > shared.single_faults, "{shared:?}");
        }
    }

    #[test]
    fn parallel_branches_are_explored() {
        let steps = vec![
            ScheduledStep::automatic("a", vec![], 0, ("start", 0), false),
            ScheduledStep::automatic("b", vec![0], 0, ("start", 0), false),
            ScheduledStep::automatic("c", vec![0], 0, ("start", 0), false),
            ScheduledStep::automatic("d", vec![1, 2], 0, ("start", 0), false),
        ];
        let report = explore(
            Arc::new(Schedule::from_steps(steps, vec!["start".into()])),
            2,
        )
        .expect("safe");
        assert!(report.rolled_back > 0 && report.halted > 0, "{report:?}");
    }

    /// Found by rehearsal: a DNS switch whose `Resolves` check then failed
    /// was marked failed and never undone, so "rolled back" left it switched.
    #[test]
    fn a_step_whose_check_failed_after_its_action_is_undone_first() {
        let steps = vec![
            ScheduledStep::automatic("a", vec![], 0, ("start", 0), false),
            ScheduledStep::automatic("b", vec![0], 0, ("start", 0), false),
        ];
        let schedule = Arc::new(Schedule::from_steps(steps, vec!["start".into()]));
        let mut machine = RunMachine::new(schedule).state_machine();
        let mut feed = |event: Event| {
            let mut outbox = Outbox::default();
            crate::machine::feed(&mut machine, &event, &mut outbox)
        };
        feed(Event::Start);
        feed(Event::PreflightPassed);
        feed(Event::StepSucceeded { step: "a".into() });
        let effects = feed(Event::CheckFailed {
            step: "b".into(),
            reason: "no answer".into(),
        });
        assert_eq!(effects, vec![Effect::Revert { step: "b".into() }]);
        let effects = feed(Event::RevertSucceeded { step: "b".into() });
        assert_eq!(effects, vec![Effect::Revert { step: "a".into() }]);
        let effects = feed(Event::RevertSucceeded { step: "a".into() });
        assert!(
            matches!(
                effects.as_slice(),
                [Effect::Finished {
                    end: RunEnd::RolledBack { .. }
                }]
            ),
            "{effects:?}"
        );
    }

    #[test]
    fn past_the_point_of_no_return_a_failure_halts() {
        let steps = vec![
            ScheduledStep::automatic("a", vec![], 0, ("start", 0), false),
            ScheduledStep::automatic("b", vec![0], 1, ("start", 0), true),
        ];
        let report = explore(
            Arc::new(Schedule::from_steps(steps, vec!["start".into()])),
            1,
        )
        .expect("safe");
        assert_eq!(
            (report.rolled_back, report.halted),
            (2, 1),
            "a fails: its partial effect is undone, or there is none; b fails: halt (past the \
             point of no return a failed step is not checked): {report:?}"
        );
    }
}

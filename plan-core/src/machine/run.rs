//! The run machine: one statig state machine that both a real run and the
//! simulator drive, so what is rehearsed is what runs.
//!
//! Handlers are synchronous and pure. They never touch a host: they update
//! the step table and push [`Effect`]s, which a driver performs and answers
//! with [`Event`]s. Feeding the same events to a fresh machine rebuilds the
//! same state, which is how `resume` replays a journal.

#![expect(
    missing_docs,
    reason = "statig generates the State enum and its fields from the handlers, which are documented"
)]

use std::sync::Arc;

use smallvec::{smallvec, SmallVec};
use statig::prelude::*;

use super::event::{
    Command, Effect, Event, FailureChoice, HaltCause, Input, OnFailure, RunEnd, StepStatus,
    PREFLIGHT_FAILED,
};
use super::schedule::{Schedule, StepIx};

/// Feeds `event`, which names steps by id, to `machine` and returns the
/// effects it asks for, named the same way: how the real driver, resume and
/// exploration drive the machine. An event about a step this run does not
/// have changes nothing, as the machine ignores any event that does not
/// apply. Transitions stay in `outbox` when it records them.
pub fn feed(
    machine: &mut StateMachine<RunMachine>,
    event: &Event,
    outbox: &mut Outbox,
) -> Vec<Effect> {
    if let Some(input) = machine.schedule().resolve(event) {
        machine.handle_with_context(&input, outbox);
    }
    let schedule = machine.schedule();
    outbox
        .effects
        .drain(..)
        .map(|command| schedule.name(&command))
        .collect()
}

/// How many steps a machine's tables hold inline. Rehearsal clones a
/// machine for each of a million runs; up to this many steps (the seed plan
/// has 18) that clone is a copy, with no allocation.
const INLINE_STEPS: usize = 32;

/// A per-step (or per-segment) table of a run.
type Table<T> = SmallVec<[T; INLINE_STEPS]>;

/// A step index as a machine's lists hold it: half the bytes of a
/// [`StepIx`] to copy per run. A plan has far fewer than 2^32 steps (its
/// file is refused above 50 MB), so [`slot`] never truncates.
type Slot = u32;

#[inline]
fn slot(ix: StepIx) -> Slot {
    ix as Slot
}

/// The machine's shared storage: the step table and the effects to perform.
#[derive(Clone, Debug)]
pub struct RunMachine {
    schedule: Arc<Schedule>,
    /// Steps that depend on each step (from `deps`), shared by clones.
    dependents: Arc<Vec<Vec<StepIx>>>,
    status: Table<StepStatus>,
    attempts: Table<u32>,
    /// Unfinished dependencies of each step.
    waiting: Table<u32>,
    /// Steps not yet done in each segment.
    open_in_segment: Table<u32>,
    /// The lowest segment with steps not done.
    segment: usize,
    /// Steps whose dependencies are done, not yet started, in order.
    ready: Table<Slot>,
    /// Completion order.
    completed: Table<Slot>,
    /// Reverts still to do, next last.
    reverts: Table<Slot>,
    /// What set off the rollback, and where it rolls back to.
    rollback: Option<Rollback>,
    /// What a step's failure (after its retries) leads to.
    on_failure: OnFailure,
    /// The segment that begins past the point of no return, when this run
    /// crosses it (the operator is asked first).
    gate: Option<usize>,
    /// Whether the run has crossed the point of no return.
    crossed: bool,
    /// A failed step the operator is deciding about; nothing new starts.
    deciding: Option<Decision>,
}

/// Where and why a run halts: the storage of `Halting` and `Halted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    /// The step it stopped at, if any.
    pub step: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// Why, as a kind.
    pub cause: HaltCause,
}

/// A failed step waiting for the operator's choice.
#[derive(Clone, Debug)]
struct Decision {
    step: Slot,
    /// Its effect is in place (its check failed after the action).
    in_place: bool,
    cause: String,
}

/// What one event made the machine do: statig's external context.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Effects for the driver to perform, in order.
    pub effects: Vec<Command>,
    /// State transitions as `(from, to)`, for the journal and tracing; only
    /// filled when `record_transitions` is set (rehearsal runs millions of
    /// machines and needs none).
    pub transitions: Vec<(String, String)>,
    /// Whether to record transitions.
    pub record_transitions: bool,
}

impl Outbox {
    /// An outbox that also records state transitions (for the journal).
    pub fn recording() -> Outbox {
        Outbox {
            record_transitions: true,
            ..Outbox::default()
        }
    }
}

#[derive(Clone, Debug)]
struct Rollback {
    cause: String,
    point: String,
    segment: usize,
    /// Whether the revert queue was built (it is, once nothing is in flight).
    planned: bool,
}

/// Where a rollback stands after a step of it.
enum RevertNext {
    /// A revert (or a running step) is under way.
    Waiting,
    /// Everything back to the point is undone.
    Finished,
}

impl RunMachine {
    /// A machine for `schedule`, in `Idle`.
    pub fn new(schedule: Arc<Schedule>) -> RunMachine {
        let n = schedule.steps.len();
        let mut dependents = vec![Vec::new(); n];
        let mut waiting: Table<u32> = smallvec![0; n];
        let segments = schedule
            .steps
            .iter()
            .map(|s| s.segment + 1)
            .max()
            .unwrap_or(0);
        let mut open_in_segment: Table<u32> = smallvec![0; segments];
        for (ix, step) in schedule.steps.iter().enumerate() {
            open_in_segment[step.segment] += 1;
            for &dep in &step.deps {
                dependents[dep].push(ix);
                waiting[ix] += 1;
            }
        }
        let ready = (0..n).filter(|&ix| waiting[ix] == 0).map(slot).collect();
        let gate = schedule.no_return.as_ref().and_then(|_| {
            schedule
                .steps
                .iter()
                .filter(|s| s.past_no_return)
                .map(|s| s.segment)
                .min()
        });
        RunMachine {
            schedule,
            dependents: Arc::new(dependents),
            status: smallvec![StepStatus::Pending; n],
            attempts: smallvec![0; n],
            waiting,
            open_in_segment,
            segment: 0,
            ready,
            completed: Table::new(),
            reverts: Table::new(),
            rollback: None,
            on_failure: OnFailure::Rollback,
            gate,
            crossed: false,
            deciding: None,
        }
    }

    /// The same machine with this failure policy (before the run starts).
    pub fn with_on_failure(mut self, on_failure: OnFailure) -> RunMachine {
        self.on_failure = on_failure;
        self
    }

    /// What a step's failure leads to in this run.
    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    /// The schedule this machine runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Each step's status, by schedule index.
    pub fn statuses(&self) -> &[StepStatus] {
        &self.status
    }

    /// The status of the step with this id.
    pub fn status_of(&self, id: &str) -> Option<StepStatus> {
        self.schedule.index_of(id).map(|ix| self.status[ix])
    }

    /// Steps in the order they completed.
    pub fn completion_order(&self) -> impl Iterator<Item = &str> {
        self.completed
            .iter()
            .map(|&ix| self.schedule.steps[ix as StepIx].id.as_str())
    }

    /// How many times each step's forward was started.
    pub fn attempts(&self) -> &[u32] {
        &self.attempts
    }

    /// The rollback point a rollback under way goes back to.
    pub fn rollback_point(&self) -> Option<&str> {
        self.rollback.as_ref().map(|r| r.point.as_str())
    }

    /// The step an input names, if this run has it.
    fn ix(&self, step: &StepIx) -> Option<StepIx> {
        (*step < self.status.len()).then_some(*step)
    }

    fn id(&self, ix: StepIx) -> String {
        self.schedule.steps[ix].id.clone()
    }

    fn in_flight(&self) -> bool {
        self.status
            .iter()
            .any(|s| matches!(s, StepStatus::Running | StepStatus::InDoubt))
    }

    fn start(&mut self, ix: StepIx, context: &mut Outbox) {
        self.status[ix] = StepStatus::Running;
        self.attempts[ix] += 1;
        context.effects.push(Effect::Forward {
            step: ix,
            attempt: self.attempts[ix],
        });
    }

    fn mark_done(&mut self, ix: StepIx) {
        self.status[ix] = StepStatus::Done;
        self.completed.push(slot(ix));
        let segment = self.schedule.steps[ix].segment;
        self.open_in_segment[segment] -= 1;
        for &dependent in self.dependents.get(ix).into_iter().flatten() {
            self.waiting[dependent] -= 1;
            if self.waiting[dependent] == 0 {
                self.ready.push(slot(dependent));
            }
        }
    }

    fn in_doubt(&mut self, ix: StepIx, context: &mut Outbox) {
        self.status[ix] = StepStatus::InDoubt;
        self.settle(ix, context);
    }

    /// Whether a step (or its revert) took effect is unknown: its check
    /// decides, or, when it has none, the operator.
    fn settle(&self, step: StepIx, context: &mut Outbox) {
        context
            .effects
            .push(if self.schedule.steps[step].checkable {
                Effect::Check { step }
            } else {
                Effect::AskOperator { step }
            });
    }

    /// Starts what can start; says where the run goes next.
    fn advance(&mut self, context: &mut Outbox) -> Next {
        while self.segment < self.open_in_segment.len() && self.open_in_segment[self.segment] == 0 {
            self.segment += 1;
        }
        if self.segment == self.open_in_segment.len() {
            return Next::Completed;
        }
        // The operator is choosing what to do about a failed step.
        if self.deciding.is_some() {
            return Next::Forward;
        }
        let segment = self.segment;
        if !self.crossed && self.gate == Some(segment) {
            let reason = self.schedule.no_return.clone().unwrap_or_default();
            context.effects.push(Effect::CrossNoReturn { reason });
            return Next::Gate;
        }
        // Start every ready automatic step of the open segment, in order; the
        // first ready manual step waits for the others (it starts alone).
        let mut manual: Option<StepIx> = None;
        let mut i = 0;
        while i < self.ready.len() {
            let ix = self.ready[i] as StepIx;
            let step = &self.schedule.steps[ix];
            if step.segment != segment || self.status[ix] != StepStatus::Pending {
                i += 1;
            } else if step.manual {
                manual = manual.or(Some(ix));
                i += 1;
            } else {
                self.ready.remove(i);
                self.start(ix, context);
            }
        }
        if let Some(ix) = manual {
            if !self.in_flight() {
                self.ready.retain(|r| *r != slot(ix));
                self.status[ix] = StepStatus::Running;
                self.attempts[ix] += 1;
                context.effects.push(Effect::Confirm { step: ix });
                return Next::Operator(ix);
            }
        }
        Next::Forward
    }

    /// Something failed or the run was aborted: roll back, or halt past the
    /// point of no return.
    fn fail(
        &mut self,
        failed: Option<StepIx>,
        cause: String,
        context: &mut Outbox,
    ) -> Outcome<State> {
        self.settle_decision();
        // The furthest the run got decides where it rolls back to.
        let reached = failed.or_else(|| {
            (0..self.status.len())
                .rev()
                .find(|&ix| self.status[ix] != StepStatus::Pending)
        });
        let past_no_return = match failed {
            Some(ix) => self.schedule.steps[ix].past_no_return,
            None => reached.is_some_and(|ix| self.schedule.steps[ix].past_no_return),
        };
        if past_no_return {
            return self.halt(
                failed,
                format!("{cause}; past the point of no return, nothing is reverted"),
                HaltCause::PastPointOfNoReturn,
            );
        }
        let (point, segment) = match reached {
            Some(ix) => {
                let s = &self.schedule.steps[ix];
                (s.rollback_point.clone(), s.rollback_segment)
            }
            None => (super::schedule::START_POINT.to_owned(), 0),
        };
        self.rollback = Some(Rollback {
            cause,
            point,
            segment,
            planned: false,
        });
        match self.continue_rollback(context) {
            RevertNext::Waiting => Transition(State::reverting()),
            RevertNext::Finished => self.finish_rollback(),
        }
    }

    fn halt(&mut self, step: Option<StepIx>, reason: String, cause: HaltCause) -> Outcome<State> {
        self.settle_decision();
        let halt = Halt {
            step: step.map(|ix| self.id(ix)),
            reason,
            cause,
        };
        // Steps still running (or being checked) finish first, their outcome
        // recorded in `Halted`, so that what is done and what is left is true.
        if self.in_flight() {
            Transition(State::halting(halt))
        } else {
            Transition(State::halted(halt))
        }
    }

    fn announce_halt(&mut self, halt: &Halt, context: &mut Outbox) {
        let done = self
            .completed
            .iter()
            .map(|&ix| ix as StepIx)
            .filter(|&ix| self.status[ix] == StepStatus::Done)
            .map(|ix| self.id(ix))
            .collect();
        let left = (0..self.status.len())
            .filter(|&ix| !matches!(self.status[ix], StepStatus::Done | StepStatus::Reverted))
            .map(|ix| self.id(ix))
            .collect();
        context.effects.push(Effect::Finished {
            end: RunEnd::Halted {
                step: halt.step.clone(),
                reason: halt.reason.clone(),
                done,
                left,
                cause: halt.cause,
            },
        });
    }

    /// Ends a pending decision without the operator's choice (an abort, a
    /// second failure): a step whose effect is in place counts as done, so
    /// a rollback undoes it and a halt lists it.
    fn settle_decision(&mut self) {
        if let Some(decision) = self.deciding.take() {
            if decision.in_place {
                self.mark_done(decision.step as StepIx);
            }
        }
    }

    /// A step failed after its retries: roll back (or halt), or, when the
    /// policy says so, ask the operator first.
    fn failed(
        &mut self,
        ix: StepIx,
        cause: String,
        in_place: bool,
        context: &mut Outbox,
    ) -> Outcome<State> {
        if self.on_failure == OnFailure::Ask && self.deciding.is_none() {
            self.status[ix] = StepStatus::Failed;
            context.effects.push(Effect::AskOnFailure {
                step: ix,
                reason: cause.clone(),
                can_roll_back: !self.schedule.steps[ix].past_no_return,
            });
            self.deciding = Some(Decision {
                step: slot(ix),
                in_place,
                cause,
            });
            return Handled;
        }
        if in_place {
            // Its effect is in place: it counts as completed, so the
            // rollback undoes it first.
            self.mark_done(ix);
        } else {
            self.status[ix] = StepStatus::Failed;
        }
        self.fail(Some(ix), cause, context)
    }

    /// The operator chose what to do about the failed step `ix`.
    fn chose(&mut self, ix: StepIx, choice: FailureChoice, context: &mut Outbox) -> Outcome<State> {
        let Some(cause) = self
            .deciding
            .as_ref()
            .filter(|d| d.step as StepIx == ix)
            .map(|d| d.cause.clone())
        else {
            return Handled;
        };
        match choice {
            FailureChoice::Retry => {
                self.deciding = None;
                self.start(ix, context);
                Handled
            }
            FailureChoice::Rollback => self.fail(Some(ix), cause, context),
            FailureChoice::Halt => self.halt(
                Some(ix),
                format!("{cause}; the operator chose to halt"),
                HaltCause::OperatorChose,
            ),
        }
    }

    /// A check could not settle an in-doubt step: the operator decides.
    fn check_failed(&mut self, ix: StepIx, context: &mut Outbox) {
        if matches!(
            self.status[ix],
            StepStatus::InDoubt | StepStatus::RevertInDoubt
        ) {
            context.effects.push(Effect::AskOperator { step: ix });
        }
    }

    /// Starts the next revert, or ends the rollback.
    fn next_revert(&mut self, context: &mut Outbox) -> Outcome<State> {
        match self.continue_rollback(context) {
            RevertNext::Waiting => Handled,
            RevertNext::Finished => self.finish_rollback(),
        }
    }

    /// Once nothing runs forward any more, undoes completed steps one at a
    /// time in reverse completion order, back to the rollback point.
    fn continue_rollback(&mut self, context: &mut Outbox) -> RevertNext {
        if self.in_flight() {
            return RevertNext::Waiting;
        }
        if let Some(rollback) = self.rollback.as_mut().filter(|r| !r.planned) {
            rollback.planned = true;
            let segment = rollback.segment;
            self.reverts = self
                .completed
                .iter()
                .copied()
                .filter(|&ix| {
                    let ix = ix as StepIx;
                    self.schedule.steps[ix].segment >= segment
                        && self.status[ix] == StepStatus::Done
                })
                .collect();
        }
        while let Some(ix) = self.reverts.last().map(|&ix| ix as StepIx) {
            match self.status[ix] {
                StepStatus::Reverting | StepStatus::RevertInDoubt => return RevertNext::Waiting,
                _ if self.schedule.steps[ix].undoable => {
                    self.status[ix] = StepStatus::Reverting;
                    context.effects.push(Effect::Revert { step: ix });
                    return RevertNext::Waiting;
                }
                // Nothing to undo (e.g. a copy to the new host): counts as reverted.
                _ => {
                    self.status[ix] = StepStatus::Reverted;
                    self.reverts.pop();
                }
            }
        }
        RevertNext::Finished
    }

    fn finish_rollback(&mut self) -> Outcome<State> {
        let point = self.rollback.as_ref().map_or_else(
            || super::schedule::START_POINT.to_owned(),
            |r| r.point.clone(),
        );
        Transition(State::rolled_back(point))
    }

    /// Re-issues what was in flight when the run stopped.
    fn resume_in_flight(&mut self, started: &[StepIx], context: &mut Outbox) {
        for ix in 0..self.status.len() {
            let was_started = started.contains(&ix);
            match self.status[ix] {
                StepStatus::Running if self.schedule.steps[ix].manual && !was_started => {
                    context.effects.push(Effect::Confirm { step: ix });
                }
                StepStatus::Running if was_started => self.in_doubt(ix, context),
                StepStatus::Running => {
                    context.effects.push(Effect::Forward {
                        step: ix,
                        attempt: self.attempts[ix],
                    });
                }
                StepStatus::InDoubt => self.in_doubt(ix, context),
                StepStatus::Reverting if was_started => {
                    self.status[ix] = StepStatus::RevertInDoubt;
                    self.settle(ix, context);
                }
                StepStatus::Reverting => context.effects.push(Effect::Revert { step: ix }),
                StepStatus::RevertInDoubt => self.settle(ix, context),
                _ => {}
            }
        }
    }

    /// A forward outcome arrived while draining before a rollback.
    fn drained(&mut self, ix: StepIx, done: bool, context: &mut Outbox) -> Outcome<State> {
        if done {
            self.mark_done(ix);
        } else {
            self.status[ix] = StepStatus::Failed;
        }
        self.next_revert(context)
    }

    fn after_transition(&mut self, source: &State, target: &State, context: &mut Outbox) {
        if context.record_transitions {
            let (from, to) = (format!("{source:?}"), format!("{target:?}"));
            tracing::debug!(target: "cutover::machine", %from, %to, "transition");
            context.transitions.push((from, to));
        }
    }
}

/// Where the run goes once [`RunMachine::advance`] has started what can start.
enum Next {
    /// Every step is done.
    Completed,
    /// A manual step waits for the operator, alone.
    Operator(StepIx),
    /// The next segment lies past the point of no return.
    Gate,
    /// Steps run forward.
    Forward,
}

impl Next {
    /// The state the run is in next.
    fn state(self) -> State {
        match self {
            Next::Completed => State::completed(),
            Next::Operator(ix) => State::awaiting_operator(ix),
            Next::Gate => State::at_point_of_no_return(),
            Next::Forward => State::forward(),
        }
    }
}

#[state_machine(
    initial = "State::idle()",
    state(derive(Debug, Clone, PartialEq, Eq)),
    superstate(derive(Debug)),
    after_transition = "Self::after_transition"
)]
impl RunMachine {
    /// Nothing has happened yet.
    /// - `Start`, `Resume` -> `Preflight`
    #[state]
    fn idle(&mut self, context: &mut Outbox, event: &Input) -> Outcome<State> {
        match event {
            Event::Start | Event::Resume { .. } => {
                context.effects.push(Effect::Preflight {
                    hosts: self.schedule.hosts(),
                });
                Transition(State::preflight())
            }
            _ => Handled,
        }
    }

    /// Every host is being reached; nothing has changed yet.
    /// - `PreflightPassed` -> `Forward` (or `Completed` when nothing is left)
    /// - `PreflightFailed` -> `Halted`
    /// - `Abort` -> `RolledBack(start)` via `Active`
    #[state(superstate = "active")]
    fn preflight(&mut self, context: &mut Outbox, event: &Input) -> Outcome<State> {
        match event {
            Event::PreflightPassed => Transition(self.advance(context).state()),
            Event::PreflightFailed { reason } => self.halt(
                None,
                format!("{PREFLIGHT_FAILED}: {reason}"),
                HaltCause::Preflight,
            ),
            Event::Resume { .. } => {
                context.effects.push(Effect::Preflight {
                    hosts: self.schedule.hosts(),
                });
                Handled
            }
            _ => Super,
        }
    }

    /// Steps run forward; independent ones concurrently.
    /// - `StepSucceeded`, `Checked{done}`, `OperatorAnswered{done}` -> stays, or
    ///   `Completed`, or `AwaitingOperator` for a manual step
    /// - `StepFailed`, `DeadlineExceeded` -> retry, or `Reverting`, or `Halted`
    ///   past the point of no return; with [`OnFailure::Ask`], stays and asks
    /// - `OperatorChose` -> retry (stays), `Reverting` or `Halted`
    /// - next segment past the point of no return -> `AtPointOfNoReturn`
    /// - `StepInDoubt` -> stays; its check (or the operator) decides
    /// - `Abort` -> `Reverting` via `Active`
    #[state(superstate = "active")]
    fn forward(&mut self, context: &mut Outbox, event: &Input) -> Outcome<State> {
        match event {
            Event::StepSucceeded { step } => match self.ix(step) {
                Some(ix)
                    if matches!(self.status[ix], StepStatus::Running | StepStatus::InDoubt) =>
                {
                    self.mark_done(ix);
                    match self.advance(context) {
                        Next::Forward => Handled,
                        next => Transition(next.state()),
                    }
                }
                _ => Handled,
            },
            Event::StepFailed { step, .. }
            | Event::CheckFailed { step, .. }
            | Event::DeadlineExceeded { step } => match self.ix(step) {
                Some(ix) if self.status[ix] == StepStatus::Running => {
                    if self.attempts[ix] <= self.schedule.steps[ix].retries {
                        self.start(ix, context);
                        return Handled;
                    }
                    let step = &self.schedule.steps[ix].id;
                    let reason = match event {
                        Event::StepFailed { reason, .. } => {
                            format!("step `{step}` failed: {reason}")
                        }
                        Event::CheckFailed { reason, .. } => {
                            format!("step `{step}` took effect, but its check failed: {reason}")
                        }
                        _ => format!("step `{step}` ran past its deadline"),
                    };
                    let in_place = matches!(event, Event::CheckFailed { .. });
                    self.failed(ix, reason, in_place, context)
                }
                _ => Handled,
            },
            Event::OperatorChose { step, choice } => match self.ix(step) {
                Some(ix) => self.chose(ix, *choice, context),
                None => Handled,
            },
            Event::Checked { step, done } | Event::OperatorAnswered { step, done } => {
                match self
                    .ix(step)
                    .filter(|&ix| self.status[ix] == StepStatus::InDoubt)
                {
                    Some(ix) if *done => {
                        self.mark_done(ix);
                        match self.advance(context) {
                            Next::Forward => Handled,
                            next => Transition(next.state()),
                        }
                    }
                    // Not in effect: the check says running it is needed.
                    Some(ix) => {
                        self.start(ix, context);
                        Handled
                    }
                    None => Handled,
                }
            }
            Event::Resume { started } => {
                self.resume_in_flight(started, context);
                // The question was open when the run stopped: ask again.
                if let Some(d) = &self.deciding {
                    let ix = d.step as StepIx;
                    context.effects.push(Effect::AskOnFailure {
                        step: ix,
                        reason: d.cause.clone(),
                        can_roll_back: !self.schedule.steps[ix].past_no_return,
                    });
                }
                if self.in_flight() {
                    Handled
                } else {
                    match self.advance(context) {
                        Next::Forward => Handled,
                        next => Transition(next.state()),
                    }
                }
            }
            _ => Super,
        }
    }

    /// A manual step waits for the operator; nothing else starts meanwhile.
    /// - `OperatorConfirmed` -> `Forward`, `Completed` or the next manual step
    /// - `OperatorDeclined` -> `Reverting` or `Halted`
    /// - `Abort` -> `Reverting` via `Active`
    #[state(superstate = "active")]
    fn awaiting_operator(
        &mut self,
        context: &mut Outbox,
        step: &mut StepIx,
        event: &Input,
    ) -> Outcome<State> {
        let current = *step;
        match event {
            Event::OperatorConfirmed { step } if self.ix(step) == Some(current) => {
                self.mark_done(current);
                Transition(self.advance(context).state())
            }
            Event::OperatorDeclined { step } if self.ix(step) == Some(current) => {
                self.status[current] = StepStatus::Failed;
                self.fail(
                    Some(current),
                    format!(
                        "the operator declined step `{}`",
                        self.schedule.steps[current].id
                    ),
                    context,
                )
            }
            Event::Resume { .. } => {
                context.effects.push(Effect::Confirm { step: current });
                Handled
            }
            _ => Super,
        }
    }

    /// Every step before the point of no return is done; the operator is
    /// asked to cross it. Nothing runs meanwhile.
    /// - `CrossedNoReturn` -> `Forward`, `AwaitingOperator` or `Completed`
    /// - `Abort` -> `Reverting` via `Active` (the point is not crossed)
    #[state(superstate = "active")]
    fn at_point_of_no_return(&mut self, context: &mut Outbox, event: &Input) -> Outcome<State> {
        match event {
            Event::CrossedNoReturn => {
                self.crossed = true;
                Transition(self.advance(context).state())
            }
            Event::Resume { .. } => {
                context.effects.push(Effect::CrossNoReturn {
                    reason: self.schedule.no_return.clone().unwrap_or_default(),
                });
                Handled
            }
            _ => Super,
        }
    }

    /// Completed steps are undone in reverse completion order back to the
    /// rollback point, one at a time, after running steps have finished.
    /// - `RevertSucceeded` -> next revert, or `RolledBack`
    /// - `RevertFailed` -> `Halted`
    /// - `Abort` -> ignored: already rolling back
    #[state(superstate = "active")]
    fn reverting(&mut self, context: &mut Outbox, event: &Input) -> Outcome<State> {
        match event {
            // A check that failed after the action: the effect is in place.
            Event::StepSucceeded { step } | Event::CheckFailed { step, .. } => {
                match self.ix(step) {
                    Some(ix)
                        if matches!(self.status[ix], StepStatus::Running | StepStatus::InDoubt) =>
                    {
                        self.drained(ix, true, context)
                    }
                    _ => Handled,
                }
            }
            Event::StepFailed { step, .. } | Event::DeadlineExceeded { step } => {
                match self.ix(step) {
                    Some(ix) if self.status[ix] == StepStatus::Running => {
                        self.drained(ix, false, context)
                    }
                    _ => Handled,
                }
            }
            // A manual step the operator was asked about before the abort.
            Event::OperatorConfirmed { step } | Event::OperatorDeclined { step } => {
                match self.ix(step) {
                    Some(ix) if self.status[ix] == StepStatus::Running => self.drained(
                        ix,
                        matches!(event, Event::OperatorConfirmed { .. }),
                        context,
                    ),
                    _ => Handled,
                }
            }
            Event::Checked { step, done } | Event::OperatorAnswered { step, done } => {
                match self.ix(step) {
                    Some(ix) if self.status[ix] == StepStatus::InDoubt => {
                        self.drained(ix, *done, context)
                    }
                    // The forward effect is still there: the revert is needed.
                    Some(ix) if self.status[ix] == StepStatus::RevertInDoubt && *done => {
                        self.status[ix] = StepStatus::Reverting;
                        context.effects.push(Effect::Revert { step: ix });
                        Handled
                    }
                    Some(ix) if self.status[ix] == StepStatus::RevertInDoubt => {
                        self.status[ix] = StepStatus::Reverted;
                        self.reverts.retain(|r| *r != slot(ix));
                        self.next_revert(context)
                    }
                    _ => Handled,
                }
            }
            Event::RevertSucceeded { step } => match self.ix(step) {
                Some(ix) if self.status[ix] == StepStatus::Reverting => {
                    self.status[ix] = StepStatus::Reverted;
                    self.reverts.retain(|r| *r != slot(ix));
                    self.next_revert(context)
                }
                _ => Handled,
            },
            Event::RevertFailed { step, reason } => match self.ix(step) {
                Some(ix) if self.status[ix] == StepStatus::Reverting => {
                    self.status[ix] = StepStatus::RevertFailed;
                    let cause = self
                        .rollback
                        .as_ref()
                        .map(|r| r.cause.clone())
                        .unwrap_or_default();
                    self.halt(
                        Some(ix),
                        format!(
                            "{cause}; then the revert of `{}` failed: {reason}",
                            self.schedule.steps[ix].id
                        ),
                        HaltCause::RevertFailed,
                    )
                }
                _ => Handled,
            },
            Event::Resume { started } => {
                self.resume_in_flight(started, context);
                if context.effects.is_empty() {
                    self.next_revert(context)
                } else {
                    Handled
                }
            }
            Event::Abort { .. } => Handled,
            _ => Super,
        }
    }

    /// Superstate of every state in which the run is under way.
    /// - `Abort` -> `Reverting` (or `Halted` past the point of no return)
    /// - `StepInDoubt` -> stays; its check (or the operator) decides
    #[superstate]
    fn active(&mut self, context: &mut Outbox, event: &Input) -> Outcome<State> {
        match event {
            Event::Abort { reason } => self.fail(None, format!("aborted: {reason}"), context),
            // Shared by Forward and Reverting: a running step whose outcome is
            // unknown goes to its check; one whose check could not run, to the
            // operator.
            Event::StepInDoubt { step, .. } => {
                match self.ix(step) {
                    Some(ix) if self.status[ix] == StepStatus::Running => {
                        self.in_doubt(ix, context)
                    }
                    Some(ix) => self.check_failed(ix, context),
                    None => {}
                }
                Handled
            }
            _ => Handled,
        }
    }

    /// Every step succeeded. Terminal: announces [`RunEnd::Completed`] on
    /// entry and ignores every event.
    #[state(entry_action = "enter_completed")]
    fn completed(&mut self, event: &Input) -> Outcome<State> {
        let _ = event;
        Handled
    }

    #[action]
    fn enter_completed(&mut self, context: &mut Outbox) {
        context.effects.push(Effect::Finished {
            end: RunEnd::Completed,
        });
    }

    /// A failure was rolled back to `point`. Terminal: announces
    /// [`RunEnd::RolledBack`] on entry and ignores every event.
    #[state(entry_action = "enter_rolled_back")]
    fn rolled_back(&mut self, point: &mut String, event: &Input) -> Outcome<State> {
        let _ = (point, event);
        Handled
    }

    #[action]
    #[expect(
        clippy::ptr_arg,
        reason = "statig passes state-local storage as `&mut` of its declared type"
    )]
    fn enter_rolled_back(&mut self, point: &mut String, context: &mut Outbox) {
        let cause = self
            .rollback
            .as_ref()
            .map(|r| r.cause.clone())
            .unwrap_or_default();
        context.effects.push(Effect::Finished {
            end: RunEnd::RolledBack {
                point: point.clone(),
                cause,
            },
        });
    }

    /// The run is halting: steps that were running when it halted still
    /// report, and what they did is recorded; nothing new starts.
    /// - [`Event::StepSucceeded`], [`Event::OperatorConfirmed`],
    ///   [`Event::CheckFailed`] -> the step is done
    /// - [`Event::StepFailed`], [`Event::DeadlineExceeded`] -> it failed
    /// - [`Event::StepInDoubt`] -> its check (or the operator) settles it
    /// - [`Event::Checked`], [`Event::OperatorAnswered`] -> done, or left to do
    /// - [`Event::Resume`] -> steps under way at a crash are settled
    /// - once nothing runs -> `Halted`
    #[state]
    fn halting(&mut self, context: &mut Outbox, halt: &mut Halt, event: &Input) -> Outcome<State> {
        match event {
            Event::Resume { started } => {
                for ix in 0..self.status.len() {
                    match self.status[ix] {
                        StepStatus::Running if started.contains(&ix) => self.in_doubt(ix, context),
                        // Never begun: it stays to do.
                        StepStatus::Running => self.status[ix] = StepStatus::Pending,
                        StepStatus::InDoubt => self.in_doubt(ix, context),
                        _ => {}
                    }
                }
            }
            _ => {
                let Some(ix) = event.step().and_then(|step| self.ix(step)) else {
                    return Handled;
                };
                match (event, self.status[ix]) {
                    (
                        Event::StepSucceeded { .. }
                        | Event::OperatorConfirmed { .. }
                        | Event::CheckFailed { .. },
                        StepStatus::Running | StepStatus::InDoubt,
                    ) => self.mark_done(ix),
                    (Event::StepInDoubt { .. }, StepStatus::Running) => self.in_doubt(ix, context),
                    (Event::StepInDoubt { .. }, StepStatus::InDoubt) => {
                        self.check_failed(ix, context)
                    }
                    (
                        Event::Checked { done, .. } | Event::OperatorAnswered { done, .. },
                        StepStatus::InDoubt,
                    ) => {
                        if *done {
                            self.mark_done(ix);
                        } else {
                            self.status[ix] = StepStatus::Pending;
                        }
                    }
                    (_, StepStatus::Running) => self.status[ix] = StepStatus::Failed,
                    _ => return Handled,
                }
            }
        }
        if self.in_flight() {
            Handled
        } else {
            Transition(State::halted(halt.clone()))
        }
    }

    /// Stopped; an operator must look. Terminal: announces
    /// [`RunEnd::Halted`] (what is done, what is left) on entry and ignores
    /// every event.
    #[state(entry_action = "enter_halted")]
    fn halted(halt: &mut Halt, event: &Input) -> Outcome<State> {
        let _ = (halt, event);
        Handled
    }

    #[action]
    fn enter_halted(&mut self, halt: &mut Halt, context: &mut Outbox) {
        self.announce_halt(halt, context);
    }
}

impl State {
    /// Whether the run is over.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            State::Completed {} | State::RolledBack { .. } | State::Halted { .. }
        )
    }
}

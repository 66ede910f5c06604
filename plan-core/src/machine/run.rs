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
    Command, Effect, Event, HaltCause, Input, OnFailure, RunEnd, StepStatus, PREFLIGHT_FAILED,
};
use super::rollback::{Decision, Halt, Rollback};
use super::schedule::{Schedule, StepIx};
use super::table::Next;

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
pub(super) type Table<T> = SmallVec<[T; INLINE_STEPS]>;

/// A step index as a machine's lists hold it: half the bytes of a
/// [`StepIx`] to copy per run. A plan has far fewer than 2^32 steps (its
/// file is refused above 50 MB), so [`slot`] never truncates.
pub(super) type Slot = u32;

#[inline]
pub(super) fn slot(ix: StepIx) -> Slot {
    ix as Slot
}

/// The machine's shared storage: the step table and the effects to perform.
#[derive(Debug)]
pub struct RunMachine {
    pub(super) schedule: Arc<Schedule>,
    /// Steps that depend on each step (from `deps`), shared by clones.
    pub(super) dependents: Arc<Vec<Vec<StepIx>>>,
    pub(super) status: Table<StepStatus>,
    /// Steps running or in doubt: set only through `set_status`, which keeps
    /// this count.
    pub(super) in_flight: u32,
    pub(super) attempts: Table<u32>,
    /// Unfinished dependencies of each step.
    pub(super) waiting: Table<u32>,
    /// Steps not yet done in each segment.
    pub(super) open_in_segment: Table<u32>,
    /// The lowest segment with steps not done.
    pub(super) segment: usize,
    /// Steps whose dependencies are done, not yet started, in order (of
    /// the open segment and earlier).
    pub(super) ready: Table<Slot>,
    /// Steps whose dependencies are done, of segments not yet open.
    pub(super) parked: Table<Slot>,
    /// Completion order.
    pub(super) completed: Table<Slot>,
    /// Reverts still to do, next last.
    pub(super) reverts: Table<Slot>,
    /// What set off the rollback, and where it rolls back to.
    pub(super) rollback: Option<Rollback>,
    /// What a step's failure (after its retries) leads to.
    pub(super) on_failure: OnFailure,
    /// The segment that begins past the point of no return, when this run
    /// crosses it (the operator is asked first).
    pub(super) gate: Option<usize>,
    /// Whether the run has crossed the point of no return.
    pub(super) crossed: bool,
    /// A failed step the operator is deciding about; nothing new starts.
    pub(super) deciding: Option<Decision>,
    /// Steps that failed after their retries and are being checked for a
    /// partial effect, with why they failed: the check decides whether the
    /// rollback undoes them. (Empty, it clones without allocating.)
    pub(super) failing: Vec<(Slot, String)>,
}

/// Rehearsal clones a machine per run: its tables are copied as the
/// slices they are (`SmallVec::from_slice`), not element by element as a
/// derived `Clone` does. Destructured whole, so that a field added cannot
/// be left out.
impl Clone for RunMachine {
    fn clone(&self) -> RunMachine {
        let RunMachine {
            schedule,
            dependents,
            status,
            in_flight,
            attempts,
            waiting,
            open_in_segment,
            segment,
            ready,
            parked,
            completed,
            reverts,
            rollback,
            on_failure,
            gate,
            crossed,
            deciding,
            failing,
        } = self;
        RunMachine {
            schedule: Arc::clone(schedule),
            dependents: Arc::clone(dependents),
            status: Table::from_slice(status),
            in_flight: *in_flight,
            attempts: Table::from_slice(attempts),
            waiting: Table::from_slice(waiting),
            open_in_segment: Table::from_slice(open_in_segment),
            segment: *segment,
            ready: Table::from_slice(ready),
            parked: Table::from_slice(parked),
            completed: Table::from_slice(completed),
            reverts: Table::from_slice(reverts),
            rollback: rollback.clone(),
            on_failure: *on_failure,
            gate: *gate,
            crossed: *crossed,
            deciding: deciding.clone(),
            failing: failing.clone(),
        }
    }
}

/// What one event made the machine do: statig's external context.
#[derive(Clone, Debug, Default)]
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

    /// Adds the effect `make` builds, built where it is stored: the
    /// machine's frequent effects (a step to run, check or revert) go
    /// through here. `effects.push(effect)` builds the effect on the stack
    /// and copies it in; reading back those few just-written fields with
    /// wider loads stalls on store forwarding, which was a twentieth of a
    /// rehearsal's time (`bench/simulate`).
    #[inline]
    pub(super) fn push_with(&mut self, make: impl FnOnce() -> Command) {
        self.effects.extend(std::iter::once_with(make));
    }
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
        let (ready, parked) = (0..n)
            .filter(|&ix| waiting[ix] == 0)
            .map(slot)
            .partition(|&ix| schedule.steps[ix as StepIx].segment == 0);
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
            in_flight: 0,
            attempts: smallvec![0; n],
            waiting,
            open_in_segment,
            segment: 0,
            ready,
            parked,
            completed: Table::new(),
            reverts: Table::new(),
            rollback: None,
            on_failure: OnFailure::Rollback,
            gate,
            crossed: false,
            deciding: None,
            failing: Vec::new(),
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

    /// Whether the run is past the point of no return: it crossed it, or a
    /// step past it (crossed by an earlier phase's run) has started. From
    /// then on a failure, or the downtime budget, never rolls back.
    pub fn past_no_return(&self) -> bool {
        self.crossed
            || self
                .schedule
                .steps
                .iter()
                .zip(self.status.iter())
                .any(|(s, status)| s.past_no_return && *status != StepStatus::Pending)
    }

    /// The schedule this machine runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Each step's status, by schedule index.
    #[inline]
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

    /// Steps that failed and whose check is deciding whether part of their
    /// effect is there (for a reference executor to tell a failed step's
    /// check from an in-doubt one's).
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.failing
            .iter()
            .map(|(ix, _)| self.schedule.steps[*ix as StepIx].id.as_str())
    }

    /// Steps running or in doubt.
    pub fn steps_in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Reverts the rollback under way has still to do, the one running
    /// included.
    pub fn reverts_left(&self) -> usize {
        self.reverts.len()
    }

    /// The rollback point a rollback under way goes back to.
    pub fn rollback_point(&self) -> Option<&str> {
        self.rollback.as_ref().map(|r| r.point.as_str())
    }

    /// The segment a rollback under way goes back to.
    pub(super) fn rollback_segment(&self) -> Option<usize> {
        self.rollback.as_ref().map(|r| r.segment)
    }

    fn after_transition(&mut self, source: &State, target: &State, context: &mut Outbox) {
        if context.record_transitions {
            let (from, to) = (format!("{source:?}"), format!("{target:?}"));
            tracing::debug!(target: "cutover::machine", %from, %to, "transition");
            context.transitions.push((from, to));
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
    /// - [`Event::Start`], [`Event::Resume`] -> `Preflight`
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
    /// - [`Event::PreflightPassed`] -> `Forward` (or `Completed` when nothing is left)
    /// - [`Event::PreflightFailed`] -> `Halting`
    /// - [`Event::Abort`] -> `RolledBack(start)` via `Active`
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
    /// - [`Event::StepSucceeded`], [`Event::Checked`], [`Event::OperatorAnswered`] -> stays, or
    ///   `Completed`, or `AwaitingOperator` for a manual step
    /// - [`Event::StepFailed`], [`Event::DeadlineExceeded`] -> retry, or `Reverting`, or `Halting`
    ///   past the point of no return; with [`OnFailure::Ask`], stays and asks
    /// - [`Event::OperatorChose`] -> retry (stays), `Reverting` or `Halting`
    /// - next segment past the point of no return -> `AtPointOfNoReturn`
    /// - [`Event::StepInDoubt`] -> stays; its check (or the operator) decides
    /// - [`Event::Abort`] -> `Reverting` via `Active`
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
                            // The reason says what failed ("its check failed
                            // after the action"): not said twice.
                            format!("step `{step}` took effect, but {reason}")
                        }
                        _ => format!("step `{step}` ran past its deadline"),
                    };
                    if matches!(event, Event::CheckFailed { .. }) {
                        return self.failed(ix, reason, true, context);
                    }
                    self.failed_attempt(ix, reason, context)
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
                    // A failed step's check: is part of its effect there?
                    Some(ix) if self.is_failing(ix) => {
                        let cause = self.take_failing(ix);
                        self.failed(ix, cause, *done, context)
                    }
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
    /// - [`Event::OperatorConfirmed`] -> `Forward`, `Completed` or the next manual step
    /// - [`Event::OperatorDeclined`] -> `Reverting` or `Halting`
    /// - [`Event::Abort`] -> `Reverting` via `Active`
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
                self.set_status(current, StepStatus::Failed);
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
    /// - [`Event::CrossedNoReturn`] -> `Forward`, `AwaitingOperator` or `Completed`
    /// - [`Event::Abort`] -> `Reverting` via `Active` (the point is not crossed)
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
    /// - [`Event::StepSucceeded`], [`Event::CheckFailed`], [`Event::StepFailed`],
    ///   [`Event::DeadlineExceeded`], [`Event::OperatorConfirmed`],
    ///   [`Event::OperatorDeclined`] -> a step still running is drained (done
    ///   or failed), then the reverts begin
    /// - [`Event::Checked`], [`Event::OperatorAnswered`] -> an in-doubt step or
    ///   revert is settled
    /// - [`Event::RevertSucceeded`] -> next revert, or `RolledBack`
    /// - [`Event::RevertFailed`] -> `Halting`
    /// - [`Event::Abort`] -> ignored: already rolling back
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
                        let s = &self.schedule.steps[ix];
                        if s.checkable && s.undoable {
                            // Its check decides whether the rollback undoes it.
                            self.in_doubt(ix, context);
                            Handled
                        } else {
                            let in_place = s.revert_after_failure && s.undoable;
                            self.drained(ix, in_place, context)
                        }
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
                        self.set_status(ix, StepStatus::Reverting);
                        context.effects.push(Effect::Revert { step: ix });
                        Handled
                    }
                    Some(ix) if self.status[ix] == StepStatus::RevertInDoubt => {
                        self.set_status(ix, StepStatus::Reverted);
                        self.unqueue_revert(ix);
                        self.next_revert(context)
                    }
                    _ => Handled,
                }
            }
            Event::RevertSucceeded { step } => match self.ix(step) {
                Some(ix) if self.status[ix] == StepStatus::Reverting => {
                    self.set_status(ix, StepStatus::Reverted);
                    self.unqueue_revert(ix);
                    self.next_revert(context)
                }
                _ => Handled,
            },
            Event::RevertFailed { step, reason } => match self.ix(step) {
                Some(ix) if self.status[ix] == StepStatus::Reverting => {
                    self.set_status(ix, StepStatus::RevertFailed);
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
    /// - [`Event::Abort`] -> `Reverting` (or `Halting` past the point of no return)
    /// - [`Event::StepInDoubt`] -> stays; its check (or the operator) decides
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
                        StepStatus::Running => self.set_status(ix, StepStatus::Pending),
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
                    ) if self.is_failing(ix) => {
                        self.take_failing(ix);
                        if *done {
                            self.mark_done(ix);
                        } else {
                            self.set_status(ix, StepStatus::Failed);
                        }
                    }
                    (
                        Event::Checked { done, .. } | Event::OperatorAnswered { done, .. },
                        StepStatus::InDoubt,
                    ) => {
                        if *done {
                            self.mark_done(ix);
                        } else {
                            self.set_status(ix, StepStatus::Pending);
                        }
                    }
                    (_, StepStatus::Running) => self.set_status(ix, StepStatus::Failed),
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

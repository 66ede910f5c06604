//! Rollback bookkeeping of the run machine: what a failure leads to (a
//! rollback to the nearest point, a halt past the point of no return, or a
//! question to the operator), the reverts in reverse completion order, and
//! the halt with what is done and what is left.

use statig::prelude::*;

use super::event::{Effect, FailureChoice, HaltCause, OnFailure, RunEnd, StepStatus};
use super::run::{slot, Outbox, RunMachine, Slot, State};
use super::schedule::StepIx;

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
pub(super) struct Decision {
    pub(super) step: Slot,
    /// Its effect is in place (its check failed after the action).
    pub(super) in_place: bool,
    pub(super) cause: String,
}

#[derive(Clone, Debug)]
pub(super) struct Rollback {
    pub(super) cause: String,
    pub(super) point: String,
    pub(super) segment: usize,
    /// Whether the revert queue was built (it is, once nothing is in flight).
    pub(super) planned: bool,
}

/// Where a rollback stands after a step of it.
pub(super) enum RevertNext {
    /// A revert (or a running step) is under way.
    Waiting,
    /// Everything back to the point is undone.
    Finished,
}

impl RunMachine {
    /// Something failed or the run was aborted: roll back, or halt past the
    /// point of no return.
    pub(super) fn fail(
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
            RevertNext::Waiting => Transition(State::Reverting {}),
            RevertNext::Finished => self.finish_rollback(),
        }
    }

    pub(super) fn halt(
        &mut self,
        step: Option<StepIx>,
        reason: String,
        cause: HaltCause,
    ) -> Outcome<State> {
        self.settle_decision();
        let halt = Halt {
            step: step.map(|ix| self.id(ix)),
            reason,
            cause,
        };
        // Steps still running (or being checked) finish first, their outcome
        // recorded in `Halted`, so that what is done and what is left is true.
        if self.in_flight() {
            Transition(State::Halting { halt })
        } else {
            Transition(State::Halted { halt })
        }
    }

    pub(super) fn announce_halt(&mut self, halt: &Halt, context: &mut Outbox) {
        let done = self
            .completed
            .iter()
            .map(|&ix| ix as StepIx)
            .filter(|&ix| self.status[ix] == StepStatus::Done)
            .collect();
        let left = (0..self.status.len())
            .filter(|&ix| !matches!(self.status[ix], StepStatus::Done | StepStatus::Reverted))
            .collect();
        context.effects.push(Effect::Finished {
            end: RunEnd::Halted {
                step: halt
                    .step
                    .as_deref()
                    .and_then(|id| self.schedule.index_of(id)),
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
    pub(super) fn settle_decision(&mut self) {
        if let Some(decision) = self.deciding.take() {
            if decision.in_place {
                self.mark_done(decision.step as StepIx);
            }
        }
    }

    /// A step failed after its retries: roll back (or halt), or, when the
    /// policy says so, ask the operator first.
    pub(super) fn failed(
        &mut self,
        ix: StepIx,
        cause: String,
        in_place: bool,
        context: &mut Outbox,
    ) -> Outcome<State> {
        if self.on_failure == OnFailure::Ask && self.deciding.is_none() {
            self.set_status(ix, StepStatus::Failed);
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
            self.set_status(ix, StepStatus::Failed);
        }
        self.fail(Some(ix), cause, context)
    }

    /// A step failed after its retries. An attempt may have left part of its
    /// effect: when the step can be checked (and has something to undo),
    /// its check decides whether the rollback undoes it, as for a step in
    /// doubt; when the plan says its revert is safe on a partial effect, it
    /// is undone; otherwise it counts as not done.
    pub(super) fn failed_attempt(
        &mut self,
        ix: StepIx,
        cause: String,
        context: &mut Outbox,
    ) -> Outcome<State> {
        let step = &self.schedule.steps[ix];
        // Past the point of no return nothing is undone: nothing to decide.
        if step.past_no_return {
            return self.failed(ix, cause, false, context);
        }
        if step.checkable && step.undoable {
            self.failing.push((slot(ix), cause));
            self.in_doubt(ix, context);
            return Handled;
        }
        let in_place = step.revert_after_failure && step.undoable;
        self.failed(ix, cause, in_place, context)
    }

    /// Whether `ix` failed and its check is deciding about a partial effect.
    pub(super) fn is_failing(&self, ix: StepIx) -> bool {
        self.failing.iter().any(|(s, _)| *s as StepIx == ix)
    }

    /// Ends the check of failed step `ix`; returns why it failed.
    pub(super) fn take_failing(&mut self, ix: StepIx) -> String {
        match self.failing.iter().position(|(s, _)| *s as StepIx == ix) {
            Some(at) => self.failing.swap_remove(at).1,
            None => String::new(),
        }
    }

    /// The operator chose what to do about the failed step `ix`.
    pub(super) fn chose(
        &mut self,
        ix: StepIx,
        choice: FailureChoice,
        context: &mut Outbox,
    ) -> Outcome<State> {
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

    /// Starts the next revert, or ends the rollback.
    pub(super) fn next_revert(&mut self, context: &mut Outbox) -> Outcome<State> {
        match self.continue_rollback(context) {
            RevertNext::Waiting => Handled,
            RevertNext::Finished => self.finish_rollback(),
        }
    }

    /// Once nothing runs forward any more, undoes completed steps one at a
    /// time in reverse completion order, back to the rollback point.
    pub(super) fn continue_rollback(&mut self, context: &mut Outbox) -> RevertNext {
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
                    self.set_status(ix, StepStatus::Reverting);
                    context.push_with(|| Effect::Revert { step: ix });
                    return RevertNext::Waiting;
                }
                // Nothing to undo (e.g. a copy to the new host): counts as reverted.
                _ => {
                    self.set_status(ix, StepStatus::Reverted);
                    self.reverts.pop();
                }
            }
        }
        RevertNext::Finished
    }

    /// A revert is over: it leaves the queue (it is the last, the one under
    /// way, unless a resume settled another).
    pub(super) fn unqueue_revert(&mut self, ix: StepIx) {
        if self.reverts.last() == Some(&slot(ix)) {
            self.reverts.pop();
        } else {
            self.reverts.retain(|r| *r != slot(ix));
        }
    }

    pub(super) fn finish_rollback(&mut self) -> Outcome<State> {
        let point = self.rollback.as_ref().map_or_else(
            || super::schedule::START_POINT.to_owned(),
            |r| r.point.clone(),
        );
        Transition(State::RolledBack { point })
    }

    /// A forward outcome arrived while draining before a rollback.
    pub(super) fn drained(
        &mut self,
        ix: StepIx,
        done: bool,
        context: &mut Outbox,
    ) -> Outcome<State> {
        // A failed step whose check was under way when the rollback began.
        self.take_failing(ix);
        if done {
            self.mark_done(ix);
        } else {
            self.set_status(ix, StepStatus::Failed);
        }
        self.next_revert(context)
    }
}

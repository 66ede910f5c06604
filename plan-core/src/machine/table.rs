//! The run machine's step table: which steps are running, done or in
//! doubt, starting what can start, and settling a step whose outcome is
//! unknown (its check decides, or the operator).

use super::event::{Effect, StepStatus};
use super::run::{slot, Outbox, RunMachine, State};
use super::schedule::StepIx;

/// Where the run goes once [`RunMachine::advance`] has started what can start.
pub(super) enum Next {
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
    pub(super) fn state(self) -> State {
        match self {
            Next::Completed => State::Completed {},
            Next::Operator(ix) => State::AwaitingOperator { step: ix },
            Next::Gate => State::AtPointOfNoReturn {},
            Next::Forward => State::Forward {},
        }
    }
}

impl RunMachine {
    /// The step an input names, if this run has it.
    pub(super) fn ix(&self, step: &StepIx) -> Option<StepIx> {
        (*step < self.status.len()).then_some(*step)
    }

    pub(super) fn id(&self, ix: StepIx) -> String {
        self.schedule.steps[ix].id.clone()
    }

    pub(super) fn in_flight(&self) -> bool {
        self.status
            .iter()
            .any(|s| matches!(s, StepStatus::Running | StepStatus::InDoubt))
    }

    pub(super) fn start(&mut self, ix: StepIx, context: &mut Outbox) {
        self.status[ix] = StepStatus::Running;
        self.attempts[ix] += 1;
        context.effects.push(Effect::Forward {
            step: ix,
            attempt: self.attempts[ix],
        });
    }

    pub(super) fn mark_done(&mut self, ix: StepIx) {
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

    pub(super) fn in_doubt(&mut self, ix: StepIx, context: &mut Outbox) {
        self.status[ix] = StepStatus::InDoubt;
        self.settle(ix, context);
    }

    /// Whether a step (or its revert) took effect is unknown: its check
    /// decides, or, when it has none, the operator.
    pub(super) fn settle(&self, step: StepIx, context: &mut Outbox) {
        context
            .effects
            .push(if self.schedule.steps[step].checkable {
                Effect::Check { step }
            } else {
                Effect::AskOperator { step }
            });
    }

    /// Starts what can start; says where the run goes next.
    pub(super) fn advance(&mut self, context: &mut Outbox) -> Next {
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

    /// A check could not settle an in-doubt step: the operator decides.
    pub(super) fn check_failed(&mut self, ix: StepIx, context: &mut Outbox) {
        if matches!(
            self.status[ix],
            StepStatus::InDoubt | StepStatus::RevertInDoubt
        ) {
            context.effects.push(Effect::AskOperator { step: ix });
        }
    }

    /// Re-issues what was in flight when the run stopped.
    pub(super) fn resume_in_flight(&mut self, started: &[StepIx], context: &mut Outbox) {
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
}

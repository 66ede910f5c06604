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

    /// Whether a step is running or in doubt (its outcome still to come).
    pub(super) fn in_flight(&self) -> bool {
        self.in_flight > 0
    }

    /// Sets a step's status, keeping count of the steps in flight.
    pub(super) fn set_status(&mut self, ix: StepIx, status: StepStatus) {
        let flying = |s: StepStatus| matches!(s, StepStatus::Running | StepStatus::InDoubt);
        let was = std::mem::replace(&mut self.status[ix], status);
        self.in_flight = self.in_flight + u32::from(flying(status)) - u32::from(flying(was));
    }

    pub(super) fn start(&mut self, ix: StepIx, context: &mut Outbox) {
        self.set_status(ix, StepStatus::Running);
        let attempt = &mut self.attempts[ix];
        *attempt += 1;
        let attempt = *attempt;
        context.push_with(|| Effect::Forward { step: ix, attempt });
    }

    pub(super) fn mark_done(&mut self, ix: StepIx) {
        self.set_status(ix, StepStatus::Done);
        self.completed.push(slot(ix));
        let segment = self.schedule.steps[ix].segment;
        self.open_in_segment[segment] -= 1;
        // A step whose dependencies are done is ready, or parked until its
        // segment opens (so that starting steps never scans later segments).
        // (The tables as slices once, not an inline-or-spilled test per use.)
        let (steps, waiting) = (&self.schedule.steps, &mut self.waiting[..]);
        for &dependent in self.dependents.get(ix).into_iter().flatten() {
            let left = &mut waiting[dependent];
            *left -= 1;
            if *left == 0 {
                if steps[dependent].segment > self.segment {
                    self.parked.push(slot(dependent));
                } else {
                    self.ready.push(slot(dependent));
                }
            }
        }
    }

    /// The open segment moved on: its parked steps are ready, in the order
    /// they became so.
    fn unpark(&mut self) {
        let segment = self.segment;
        let steps = &self.schedule.steps;
        let mut keep = 0;
        for i in 0..self.parked.len() {
            let ix = self.parked[i];
            if steps[ix as StepIx].segment <= segment {
                self.ready.push(ix);
            } else {
                self.parked[keep] = ix;
                keep += 1;
            }
        }
        self.parked.truncate(keep);
    }

    pub(super) fn in_doubt(&mut self, ix: StepIx, context: &mut Outbox) {
        self.set_status(ix, StepStatus::InDoubt);
        self.settle(ix, context);
    }

    /// Whether a step (or its revert) took effect is unknown: its check
    /// decides, or, when it has none, the operator.
    pub(super) fn settle(&self, step: StepIx, context: &mut Outbox) {
        let checkable = self.schedule.steps[step].checkable;
        context.push_with(|| {
            if checkable {
                Effect::Check { step }
            } else {
                Effect::AskOperator { step }
            }
        });
    }

    /// Starts what can start; says where the run goes next.
    pub(super) fn advance(&mut self, context: &mut Outbox) -> Next {
        let opened = self.segment;
        while self.segment < self.open_in_segment.len() && self.open_in_segment[self.segment] == 0 {
            self.segment += 1;
        }
        if self.segment == self.open_in_segment.len() {
            return Next::Completed;
        }
        if self.segment != opened && !self.parked.is_empty() {
            self.unpark();
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
        // One pass: what starts leaves the list, the rest keeps its order.
        let mut manual: Option<StepIx> = None;
        let mut keep = 0;
        for i in 0..self.ready.len() {
            let ix = self.ready[i] as StepIx;
            let step = &self.schedule.steps[ix];
            let (here, is_manual) = (step.segment == segment, step.manual);
            let pending = here && self.status[ix] == StepStatus::Pending;
            if pending && !is_manual {
                self.start(ix, context);
                continue;
            }
            if pending {
                manual = manual.or(Some(ix));
            }
            self.ready[keep] = slot(ix);
            keep += 1;
        }
        self.ready.truncate(keep);
        if let Some(ix) = manual {
            if !self.in_flight() {
                self.ready.retain(|r| *r != slot(ix));
                self.set_status(ix, StepStatus::Running);
                self.attempts[ix] += 1;
                context.push_with(|| Effect::Confirm { step: ix });
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
                    self.set_status(ix, StepStatus::RevertInDoubt);
                    self.settle(ix, context);
                }
                StepStatus::Reverting => context.effects.push(Effect::Revert { step: ix }),
                StepStatus::RevertInDoubt => self.settle(ix, context),
                _ => {}
            }
        }
    }
}

//! Whether users are down, as a run's journal says it: one reading for the
//! driver's downtime budget across crashes (`plan-steps`' history) and for
//! `cutover watch`'s view and estimate.

use super::event::{Effect, Event};
use super::record::RunRecord;
use crate::{Downtime, Plan};

/// What a journal record does to users' service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsersChange {
    /// Users lose the service (from the time of this record).
    Down,
    /// Users have it back.
    Back,
}

/// What `entry` does to users: the `downtime: Begins` step starting (its
/// forward, or a manual step's confirmation) or the `Ends` step's revert
/// starting takes them down; the `Ends` step taking effect (succeeded,
/// confirmed, or found done by its check or the operator) or the `Begins`
/// step's revert succeeding gives the service back. Anything else changes
/// nothing. A `Begins` step's `in_flight` is the caller's to apply.
pub fn users_change(plan: &Plan, entry: &RunRecord) -> Option<UsersChange> {
    let marked =
        |step: &str, mark: Downtime| plan.step(step).is_some_and(|s| s.downtime == Some(mark));
    match entry {
        RunRecord::EffectStarted {
            effect: Effect::Forward { step, .. } | Effect::Confirm { step },
        } if marked(step, Downtime::Begins) => Some(UsersChange::Down),
        RunRecord::EffectStarted {
            effect: Effect::Revert { step },
        } if marked(step, Downtime::Ends) => Some(UsersChange::Down),
        RunRecord::Event { event } => match event {
            Event::StepSucceeded { step }
            | Event::OperatorConfirmed { step }
            | Event::Checked { step, done: true }
            | Event::OperatorAnswered { step, done: true }
                if marked(step, Downtime::Ends) =>
            {
                Some(UsersChange::Back)
            }
            Event::RevertSucceeded { step } if marked(step, Downtime::Begins) => {
                Some(UsersChange::Back)
            }
            _ => None,
        },
        _ => None,
    }
}

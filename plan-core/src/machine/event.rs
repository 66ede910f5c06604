//! What a run says and asks: the events fed to the run machine, the
//! effects it asks a driver to perform, how a run ends, and where each step
//! stands. The journal records these, so their serialized forms are part of
//! the on-disk format.

use serde::{Deserialize, Serialize};

use super::schedule::StepIx;
#[cfg(doc)]
use super::{feed, Schedule};

/// How the reason of a halt at preflight begins (nothing was changed).
pub const PREFLIGHT_FAILED: &str = "preflight failed";

/// What happened, as fed to the machine (and recorded in the journal).
///
/// `S` names a step: its id (`String`, the default) in the journal and the
/// real driver, its index in the run's [`Schedule`] ([`Input`]) inside the
/// machine, so that a run (and a million rehearsed runs) never looks a step
/// up by its name; [`Schedule::resolve`] and [`feed`] translate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<S = String> {
    /// Begin the run.
    Start,
    /// Continue after a crash; `started` lists the steps whose forward (or
    /// revert) the journal shows as begun, so they are in doubt.
    Resume {
        /// Steps whose forward or revert effect was journaled as started (see `S`).
        started: Vec<S>,
    },
    /// Every host answered.
    PreflightPassed,
    /// A host could not be reached or a precondition failed.
    PreflightFailed {
        /// Why.
        reason: String,
    },
    /// A step's action and check succeeded.
    StepSucceeded {
        /// The step (see `S`).
        step: S,
    },
    /// A step's action or check failed.
    StepFailed {
        /// The step (see `S`).
        step: S,
        /// Why.
        reason: String,
    },
    /// A step's action took effect but its check then failed: the effect is
    /// in place, so a rollback must undo it.
    CheckFailed {
        /// The step (see `S`).
        step: S,
        /// Why.
        reason: String,
    },
    /// It is unknown whether a step took effect (e.g. the connection dropped).
    StepInDoubt {
        /// The step (see `S`).
        step: S,
        /// Why.
        reason: String,
    },
    /// A step ran past its deadline and was killed.
    DeadlineExceeded {
        /// The step (see `S`).
        step: S,
    },
    /// The check of an in-doubt step ran: has the forward action taken effect?
    Checked {
        /// The step (see `S`).
        step: S,
        /// Whether the forward action's effect is in place.
        done: bool,
    },
    /// The operator confirmed a manual step as done.
    OperatorConfirmed {
        /// The step (see `S`).
        step: S,
    },
    /// The operator declined a manual step (or the change as a whole).
    OperatorDeclined {
        /// The step (see `S`).
        step: S,
    },
    /// The operator answered whether an in-doubt step took effect.
    OperatorAnswered {
        /// The step (see `S`).
        step: S,
        /// Whether the forward action's effect is in place.
        done: bool,
    },
    /// A step's revert succeeded.
    RevertSucceeded {
        /// The step (see `S`).
        step: S,
    },
    /// A step's revert failed.
    RevertFailed {
        /// The step (see `S`).
        step: S,
        /// Why.
        reason: String,
    },
    /// Stop going forward and roll back (Ctrl-C, window deadline).
    Abort {
        /// Why.
        reason: String,
    },
    /// The operator (or `--yes`) let the run cross the point of no return.
    CrossedNoReturn,
    /// The operator chose what to do about a step that failed (the run's
    /// failure policy is [`OnFailure::Ask`]).
    OperatorChose {
        /// The step (see `S`).
        step: S,
        /// What to do.
        choice: FailureChoice,
    },
}

/// What a run does when a step fails after its retries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Roll back to the rollback point (halt past the point of no return).
    #[default]
    Rollback,
    /// Ask the operator: retry the step, roll back, or halt.
    Ask,
}

/// The operator's answer to a failed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureChoice {
    /// Run the step again.
    Retry,
    /// Undo completed steps back to the rollback point (past the point of
    /// no return there is nothing to roll back: the run halts).
    Rollback,
    /// Stop here, leaving everything as it is, for the operator.
    Halt,
}

/// What the driver must do next.
///
/// `S` names a step as in [`Event`]: the machine asks with indices
/// ([`Command`]), [`Schedule::name`] gives the ids the journal records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect<S = String> {
    /// Reach every host before changing anything.
    Preflight {
        /// Hosts the run touches.
        hosts: Vec<String>,
    },
    /// Capture prior state, perform the step's action, then its check.
    Forward {
        /// The step (see `S`).
        step: S,
        /// 1 for the first try.
        attempt: u32,
    },
    /// Run the step's check to settle whether it took effect.
    Check {
        /// The step (see `S`).
        step: S,
    },
    /// Ask the operator to perform a manual step and confirm.
    Confirm {
        /// The step (see `S`).
        step: S,
    },
    /// Ask the operator whether an uncheckable in-doubt step took effect.
    AskOperator {
        /// The step (see `S`).
        step: S,
    },
    /// Undo a completed step.
    Revert {
        /// The step (see `S`).
        step: S,
    },
    /// Every step before the point of no return is done: ask the operator
    /// to cross it (answered by `CrossedNoReturn`, or `Abort` to roll back).
    CrossNoReturn {
        /// Why there is no way back, from the plan.
        reason: String,
    },
    /// A step failed after its retries and the run's policy is to ask:
    /// retry, roll back or halt (answered by `OperatorChose`).
    AskOnFailure {
        /// The step (see `S`).
        step: S,
        /// Why it failed.
        reason: String,
        /// Whether a rollback is possible (not past the point of no return).
        can_roll_back: bool,
    },
    /// The run is over.
    Finished {
        /// How it ended.
        end: RunEnd<S>,
    },
}

/// An event as the machine takes it: steps named by schedule index.
pub type Input = Event<StepIx>;

/// An effect as the machine asks for it: steps named by schedule index.
pub type Command = Effect<StepIx>;

impl<S> Event<S> {
    /// Whether the event says its step's action took effect: it succeeded,
    /// its check failed after it ran, a check or the operator found it done.
    /// (Journals read for what a step changed, its TTL for instance, ask
    /// this, so that a step found done counts as one that succeeded.)
    pub fn took_effect(&self) -> bool {
        matches!(
            self,
            Event::StepSucceeded { .. }
                | Event::CheckFailed { .. }
                | Event::Checked { done: true, .. }
                | Event::OperatorAnswered { done: true, .. }
        )
    }

    /// The step this event is about, if any.
    pub fn step(&self) -> Option<&S> {
        match self {
            Event::StepSucceeded { step }
            | Event::StepFailed { step, .. }
            | Event::CheckFailed { step, .. }
            | Event::StepInDoubt { step, .. }
            | Event::DeadlineExceeded { step }
            | Event::Checked { step, .. }
            | Event::OperatorConfirmed { step }
            | Event::OperatorDeclined { step }
            | Event::OperatorAnswered { step, .. }
            | Event::RevertSucceeded { step }
            | Event::RevertFailed { step, .. }
            | Event::OperatorChose { step, .. } => Some(step),
            Event::Start
            | Event::Resume { .. }
            | Event::PreflightPassed
            | Event::PreflightFailed { .. }
            | Event::Abort { .. }
            | Event::CrossedNoReturn => None,
        }
    }

    /// The same event with each step named by `name(step)`: `None` when the
    /// step it is about has no name there; steps of `Resume` without one are
    /// left out.
    pub fn map_step<T>(&self, mut name: impl FnMut(&S) -> Option<T>) -> Option<Event<T>> {
        Some(match self {
            Event::Start => Event::Start,
            Event::Resume { started } => Event::Resume {
                started: started.iter().filter_map(&mut name).collect(),
            },
            Event::PreflightPassed => Event::PreflightPassed,
            Event::PreflightFailed { reason } => Event::PreflightFailed {
                reason: reason.clone(),
            },
            Event::StepSucceeded { step } => Event::StepSucceeded { step: name(step)? },
            Event::StepFailed { step, reason } => Event::StepFailed {
                step: name(step)?,
                reason: reason.clone(),
            },
            Event::CheckFailed { step, reason } => Event::CheckFailed {
                step: name(step)?,
                reason: reason.clone(),
            },
            Event::StepInDoubt { step, reason } => Event::StepInDoubt {
                step: name(step)?,
                reason: reason.clone(),
            },
            Event::DeadlineExceeded { step } => Event::DeadlineExceeded { step: name(step)? },
            Event::Checked { step, done } => Event::Checked {
                step: name(step)?,
                done: *done,
            },
            Event::OperatorConfirmed { step } => Event::OperatorConfirmed { step: name(step)? },
            Event::OperatorDeclined { step } => Event::OperatorDeclined { step: name(step)? },
            Event::OperatorAnswered { step, done } => Event::OperatorAnswered {
                step: name(step)?,
                done: *done,
            },
            Event::RevertSucceeded { step } => Event::RevertSucceeded { step: name(step)? },
            Event::RevertFailed { step, reason } => Event::RevertFailed {
                step: name(step)?,
                reason: reason.clone(),
            },
            Event::Abort { reason } => Event::Abort {
                reason: reason.clone(),
            },
            Event::CrossedNoReturn => Event::CrossedNoReturn,
            Event::OperatorChose { step, choice } => Event::OperatorChose {
                step: name(step)?,
                choice: *choice,
            },
        })
    }
}

impl<S> Effect<S> {
    /// The step this effect is about, if any.
    pub fn step(&self) -> Option<&S> {
        match self {
            Effect::Forward { step, .. }
            | Effect::Check { step }
            | Effect::Confirm { step }
            | Effect::AskOperator { step }
            | Effect::Revert { step }
            | Effect::AskOnFailure { step, .. } => Some(step),
            Effect::Preflight { .. } | Effect::Finished { .. } | Effect::CrossNoReturn { .. } => {
                None
            }
        }
    }

    /// The same effect with its steps named by `name(step)`.
    pub fn map_step<T>(&self, mut name: impl FnMut(&S) -> T) -> Effect<T> {
        match self {
            Effect::Preflight { hosts } => Effect::Preflight {
                hosts: hosts.clone(),
            },
            Effect::Forward { step, attempt } => Effect::Forward {
                step: name(step),
                attempt: *attempt,
            },
            Effect::Check { step } => Effect::Check { step: name(step) },
            Effect::Confirm { step } => Effect::Confirm { step: name(step) },
            Effect::AskOperator { step } => Effect::AskOperator { step: name(step) },
            Effect::Revert { step } => Effect::Revert { step: name(step) },
            Effect::CrossNoReturn { reason } => Effect::CrossNoReturn {
                reason: reason.clone(),
            },
            Effect::AskOnFailure {
                step,
                reason,
                can_roll_back,
            } => Effect::AskOnFailure {
                step: name(step),
                reason: reason.clone(),
                can_roll_back: *can_roll_back,
            },
            Effect::Finished { end } => Effect::Finished {
                end: end.map_step(name),
            },
        }
    }
}

/// How a run ended.
///
/// `S` names a step as in [`Event`]: by index as the machine announces it
/// (a rehearsed halt lists its steps without a string), by id in the
/// journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum RunEnd<S = String> {
    /// Every step succeeded.
    Completed,
    /// A failure was rolled back to this rollback point.
    RolledBack {
        /// The rollback point (`start` when none came before the failure).
        point: String,
        /// What failed.
        cause: String,
    },
    /// The run stopped and needs an operator.
    Halted {
        /// The step it stopped at, if any.
        step: Option<S>,
        /// Why.
        reason: String,
        /// Steps done in this run and not reverted.
        done: Vec<S>,
        /// Steps not done.
        left: Vec<S>,
        /// Why, as a kind (journals from before it was recorded: `unknown`).
        #[serde(default)]
        cause: HaltCause,
    },
}

impl<S> RunEnd<S> {
    /// The same end with its steps named by `name(step)`.
    pub fn map_step<T>(&self, mut name: impl FnMut(&S) -> T) -> RunEnd<T> {
        match self {
            RunEnd::Completed => RunEnd::Completed,
            RunEnd::RolledBack { point, cause } => RunEnd::RolledBack {
                point: point.clone(),
                cause: cause.clone(),
            },
            RunEnd::Halted {
                step,
                reason,
                done,
                left,
                cause,
            } => RunEnd::Halted {
                step: step.as_ref().map(&mut name),
                reason: reason.clone(),
                done: done.iter().map(&mut name).collect(),
                left: left.iter().map(&mut name).collect(),
                cause: *cause,
            },
        }
    }
}

/// Why a run halted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltCause {
    /// Preflight refused the run: nothing was changed.
    Preflight,
    /// A revert failed during a rollback.
    RevertFailed,
    /// A step failed, or the run was aborted, past the point of no return,
    /// where nothing is reverted.
    PastPointOfNoReturn,
    /// The operator chose to halt after a failure (`--on-failure ask`).
    OperatorChose,
    /// Not recorded (a journal written before causes were).
    #[default]
    Unknown,
}

/// Where a step stands in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Its forward effect is under way.
    Running,
    /// Started, outcome unknown: its check or the operator decides.
    InDoubt,
    /// Done.
    Done,
    /// Failed (after its retries).
    Failed,
    /// Its revert is under way.
    Reverting,
    /// Its revert was under way at a crash: its check decides.
    RevertInDoubt,
    /// Undone by a rollback.
    Reverted,
    /// Its revert failed.
    RevertFailed,
}

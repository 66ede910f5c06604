//! The run machine and what it runs.

mod attempt;
mod event;
mod explore;
mod record;
mod rollback;
mod run;
mod schedule;
mod table;
mod users;

pub use attempt::{attempts, Attempt, AttemptEnd};
pub use event::{
    Command, Effect, Event, FailureChoice, HaltCause, Input, OnFailure, RunEnd, StepStatus,
    PREFLIGHT_FAILED,
};
pub use explore::FaultPoint;
pub use explore::{
    explore, explore_exhaustive, explore_unshared, simulate, Counterexample, Exploration,
};
pub use record::{
    done_by_runs, replay, AnsweredBy, ProcessGroup, Question, ReplayError, ReplayedRun, RunRecord,
};
pub use rollback::Halt;
pub use run::{feed, Outbox, RunMachine, State};
pub use schedule::{Schedule, ScheduledStep, Selection, StepIx, START_POINT};
pub use users::{users_change, UsersChange};

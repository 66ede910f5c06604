//! The run machine and what it runs.

mod explore;
mod record;
mod run;
mod schedule;

pub use explore::FaultPoint;
pub use explore::{explore, simulate, Counterexample, Exploration};
pub use record::{
    done_by_runs, replay, AnsweredBy, ProcessGroupRecord, Question, ReplayError, ReplayedRun,
    RunRecord,
};
pub use run::{
    feed, Command, Effect, Event, FailureChoice, Input, OnFailure, Outbox, RunEnd, RunMachine,
    State, StepStatus, PREFLIGHT_FAILED,
};
pub use schedule::{Schedule, ScheduledStep, Selection, StepIx, START_POINT};

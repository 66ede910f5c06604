//! The run machine and what it runs.

mod explore;
mod run;
mod schedule;

pub use explore::{explore, Counterexample, Exploration};
pub use explore::FaultPoint;
pub use run::{Effect, Event, Outbox, RunEnd, RunMachine, State, StepStatus};
pub use schedule::{Schedule, ScheduledStep, Selection, StepIx, START_POINT};

//! Performs the effects of the run machine: each step kind on its hosts.
//!
//! Each function turns a step of the plan into commands on its host (the
//! built-in `local`, or a host reached over SSH) and answers with the
//! [`Event`](plan_core::machine::Event) the machine expects. Preflight
//! reaches every host before anything changes and refuses what this version
//! cannot do, naming each step. Prior state (a service's, a record's) is
//! captured and journaled through the [`Reporter`] before the change it
//! protects.
//!
//! [`Executor::forward`], [`Executor::check`] and [`Executor::revert`]
//! (in `dispatch.rs`) hold one match arm per action kind; each kind's file
//! holds its capture, change, check and restore together:
//!
//! | file | what |
//! |---|---|
//! | `dispatch.rs` | the [`Executor`] and its three entry points |
//! | `report.rs` | [`Transcript`], [`Report`], [`Reporter`] |
//! | `hosts.rs` | connections, SSH targets, preflight, a command on a host |
//! | `leftover.rs` | process groups left running, waited for before a check |
//! | `failure.rs` | why an action did not succeed |
//! | `check.rs` | a step's own `check` |
//! | `shell.rs`, `service.rs`, `copy.rs`, `dns.rs`, `wait.rs` | the action kinds |
//! | `poll.rs` | `WaitUntil` and `check: Until(..)`: a command polled until it holds |
//! | `probe.rs` | `cutover probe`: hosts and DNS looked at, nothing changed; `probe/step.rs` each step, `probe/copy.rs` a copy |

mod check;
mod copy;
mod dispatch;
mod dns;
mod failure;
mod hosts;
mod leftover;
mod poll;
mod probe;
mod report;
mod service;
mod shell;
#[cfg(test)]
mod test_plan;
mod wait;

pub use check::CHECK_DEADLINE;
pub use dispatch::Executor;
pub use failure::{CheckError, CheckErrorKind};
pub use hosts::{PreflightError, PreflightProblem, SshOptions, CONNECT_PARALLEL, CONNECT_TIMEOUT};
pub use leftover::{LEFTOVER_WAIT, START_TIME_AFTER};
pub use probe::RATE_SAMPLE_BYTES;
pub use report::{Report, Reporter, Transcript};

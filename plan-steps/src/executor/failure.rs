//! Why an action did not succeed, and how that becomes the machine's event.

use plan_core::machine::Event;

use super::hosts::ExecError;
use crate::command::{ExitKind, ShellOutcome};
use crate::dns::DnsError;

/// Why an action did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// It failed.
    Failed(String),
    /// It ran past its deadline.
    Deadline,
    /// Whether it took effect is unknown.
    InDoubt(String),
}

impl Failure {
    pub(super) fn from_exit(outcome: &ShellOutcome) -> Result<(), Failure> {
        match outcome.status {
            ExitKind::Exited(0) => Ok(()),
            ExitKind::TimedOut => Err(Failure::Deadline),
            ExitKind::Cancelled => Err(Failure::InDoubt("cancelled while running".into())),
            status => {
                let last = outcome
                    .output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                Err(Failure::Failed(if last.is_empty() {
                    format!("{status}")
                } else {
                    format!("{status}: {last}")
                }))
            }
        }
    }

    /// A revert this executor cannot carry out: the operator's, or none.
    pub(super) fn not_revertible() -> Failure {
        Failure::Failed("its revert needs the operator or is not supported on this host".into())
    }

    pub(super) fn into_event(self, step: &str) -> Event {
        let step = step.to_owned();
        match self {
            Failure::Failed(reason) => Event::StepFailed { step, reason },
            Failure::Deadline => Event::DeadlineExceeded { step },
            Failure::InDoubt(reason) => Event::StepInDoubt { step, reason },
        }
    }

    pub(super) fn message(self) -> String {
        match self {
            Failure::Failed(reason) | Failure::InDoubt(reason) => reason,
            Failure::Deadline => "it ran past its deadline".into(),
        }
    }
}

impl From<DnsError> for Failure {
    /// A DNS error fails the step; a refused key says so.
    fn from(error: DnsError) -> Failure {
        if error.is_authentication() {
            Failure::Failed(format!(
                "DNS authentication failed (check the TSIG key): {error}"
            ))
        } else {
            Failure::Failed(error.to_string())
        }
    }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Failure {
        if e.lost {
            Failure::InDoubt(e.message)
        } else {
            Failure::Failed(e.message)
        }
    }
}

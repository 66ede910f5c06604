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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Failure;
    use crate::command::{ExitKind, ShellOutcome};

    fn ended(status: ExitKind, output: &str) -> Result<(), String> {
        let outcome = ShellOutcome {
            status,
            output: output.into(),
            dropped_bytes: 0,
            elapsed: Duration::ZERO,
        };
        Failure::from_exit(&outcome).map_err(|f| format!("{f:?}"))
    }

    #[test]
    fn an_exit_says_why_with_the_last_line_written() {
        assert_eq!(ended(ExitKind::Exited(0), "fine\n"), Ok(()));
        assert_eq!(
            ended(ExitKind::Exited(3), "copying\n  disk full  \n\n"),
            Err(r#"Failed("exited with status 3: disk full")"#.into())
        );
        assert_eq!(
            ended(ExitKind::Exited(3), ""),
            Err(r#"Failed("exited with status 3")"#.into())
        );
        assert_eq!(ended(ExitKind::TimedOut, "x"), Err("Deadline".into()));
        assert_eq!(
            ended(ExitKind::Cancelled, "x"),
            Err(r#"InDoubt("cancelled while running")"#.into())
        );
    }
}

/// Why a step's check could not tell whether the step took effect, in
/// words and by kind (so the one who answers instead can be told what to
/// look at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// What went wrong.
    pub message: String,
    /// Its kind.
    pub kind: CheckErrorKind,
}

/// The kind of a [`CheckError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckErrorKind {
    /// The step has no check, and its action cannot tell by itself.
    NoCheck,
    /// The check ran past its time limit.
    TimedOut,
    /// The host could not be reached, or the connection was lost, while
    /// checking.
    Unreachable,
    /// The check could not run for another reason (the message says).
    Failed,
}

impl From<Failure> for CheckError {
    fn from(failure: Failure) -> CheckError {
        let kind = match &failure {
            Failure::Deadline => CheckErrorKind::TimedOut,
            Failure::InDoubt(_) => CheckErrorKind::Unreachable,
            Failure::Failed(_) => CheckErrorKind::Failed,
        };
        CheckError {
            message: failure.message(),
            kind,
        }
    }
}

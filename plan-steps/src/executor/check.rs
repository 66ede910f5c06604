//! A step's own `check`: a command, a TCP port, an HTTP status, or a record resolving.

use std::time::Duration;

use plan_core::{Check, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript};
use crate::checks;
use crate::command::ExitKind;

/// How long a check may take when the step has no deadline.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(60);

impl Executor {
    /// Runs the step's check; a step without one passes.
    pub(super) async fn run_check(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        cancel: Cancel<'_>,
    ) -> Result<bool, Failure> {
        match &step.check {
            Some(Check::Run { host, command }) => {
                let shell = self.command(
                    step,
                    host,
                    command,
                    Some(step.deadline.unwrap_or(CHECK_DEADLINE)),
                );
                let outcome = self
                    .exec(&step.id, host, &shell, cancel, transcript)
                    .await?;
                match outcome.status {
                    ExitKind::Exited(0) => Ok(true),
                    ExitKind::Exited(_) => Ok(false),
                    status => Err(Failure::Failed(format!(
                        "its check did not finish: {status}"
                    ))),
                }
            }
            Some(Check::Tcp { host, port }) => {
                let address = self.address_of(host);
                let open = checks::tcp_open(&address, *port, CHECK_DEADLINE)
                    .await
                    .map_err(Failure::Failed)?;
                transcript.note(&format!(
                    "[check] {address}:{port} {}",
                    if open {
                        "accepts connections"
                    } else {
                        "refuses"
                    }
                ));
                Ok(open)
            }
            Some(Check::Http { url, status }) => {
                let answer = checks::http_status(url, CHECK_DEADLINE)
                    .await
                    .map_err(Failure::Failed)?;
                transcript.note(&format!("[check] GET {url}: {answer} (expected {status})"));
                Ok(answer == *status)
            }
            Some(Check::Resolves { record, to }) => {
                let dns = self.dns().await?;
                let resolves = dns.resolves(record, *to).await?;
                transcript.note(&format!(
                    "[check] {record} {} {to}",
                    if resolves {
                        "resolves to"
                    } else {
                        "does not resolve to"
                    }
                ));
                Ok(resolves)
            }
            Some(Check::Until(p)) => super::poll::poll(self, step, p, transcript, cancel).await,
            None => Ok(true),
        }
    }

    /// The address a host is reached at from this machine.
    pub(super) fn address_of(&self, host: &str) -> String {
        match self.plan.host(host) {
            Some(h) if !h.is_local() => h.address.clone(),
            _ => "127.0.0.1".to_owned(),
        }
    }
}

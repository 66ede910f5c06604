//! The `Service` action: capture whether it ran, start or stop it, confirm, put it back.

use plan_core::{ServiceControl, ServiceState, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript, CHECK_DEADLINE};
use crate::command::ExitKind;
use crate::service::{self, Commands};

/// Captures whether `unit` runs, journals that, brings it to `state`
/// unless it is there already, and confirms it got there.
#[expect(
    clippy::too_many_arguments,
    reason = "the step, the four fields of its action, the transcript and the cancel"
)]
pub(super) async fn forward(
    ex: &Executor,
    step: &Step,
    host: &str,
    unit: &str,
    state: ServiceState,
    control: &ServiceControl,
    transcript: &mut Transcript,
    mut cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let commands = service::commands(unit, control);
    let status = ex.command(&commands.status, Some(CHECK_DEADLINE));
    let before = ex
        .exec(&step.id, host, &status, cancel.as_mut(), transcript)
        .await?;
    let running = match before.status {
        ExitKind::Exited(0) => true,
        ExitKind::Exited(_) => false,
        other => {
            return Err(Failure::Failed(format!(
                "asking whether {unit} runs did not finish: {other}"
            )))
        }
    };
    ex.capture(&step.id, service::capture_text(running).to_owned())
        .await?;
    if running == (state == ServiceState::Running) {
        transcript.note(&format!(
            "{unit} is already {}",
            service::capture_text(running)
        ));
    } else {
        let change = ex.command(commands.to(state), step.deadline);
        let outcome = ex
            .exec(&step.id, host, &change, cancel.as_mut(), transcript)
            .await?;
        Failure::from_exit(&outcome)?;
    }
    service_is(ex, step, host, &commands, state, transcript, cancel).await
}

/// Whether an in-doubt step took effect, when it has no check of its own:
/// whether the service is in `state`.
#[expect(
    clippy::too_many_arguments,
    reason = "the step, the four fields of its action, the transcript and the cancel"
)]
pub(super) async fn done(
    ex: &Executor,
    step: &Step,
    host: &str,
    unit: &str,
    state: ServiceState,
    control: &ServiceControl,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<bool, Failure> {
    let commands = service::commands(unit, control);
    Ok(
        service_is(ex, step, host, &commands, state, transcript, cancel)
            .await
            .is_ok(),
    )
}

/// Puts the service back in the state `captured` before the change, and
/// confirms it got there.
#[expect(
    clippy::too_many_arguments,
    reason = "the step, three fields of its action, what it captured, the transcript and the cancel"
)]
pub(super) async fn undo(
    ex: &Executor,
    step: &Step,
    host: &str,
    unit: &str,
    control: &ServiceControl,
    captured: Option<&str>,
    transcript: &mut Transcript,
    mut cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let before = captured
        .and_then(service::parse_capture)
        .ok_or_else(|| Failure::Failed(format!("no captured state of {unit} to restore")))?;
    let commands = service::commands(unit, control);
    let change = ex.command(commands.to(before), step.deadline);
    let outcome = ex
        .exec(&step.id, host, &change, cancel.as_mut(), transcript)
        .await?;
    Failure::from_exit(&outcome)?;
    service_is(ex, step, host, &commands, before, transcript, cancel).await
}

/// Confirms a service reached `state`.
async fn service_is(
    ex: &Executor,
    step: &Step,
    host: &str,
    commands: &Commands,
    state: ServiceState,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let status = ex.command(&commands.status, Some(CHECK_DEADLINE));
    let after = ex.exec(&step.id, host, &status, cancel, transcript).await?;
    let running = after.status == ExitKind::Exited(0);
    if running == (state == ServiceState::Running) {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "it is still {} after the change",
            service::capture_text(running)
        )))
    }
}

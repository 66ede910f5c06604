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
    let running = runs(ex, step, host, unit, &commands, transcript, cancel.as_mut()).await?;
    ex.capture(&step.id, service::capture_text(running).to_owned())
        .await?;
    if running == (state == ServiceState::Running) {
        transcript.note(&format!(
            "{unit} is already {}",
            service::capture_text(running)
        ));
    } else {
        let change = ex.command(step, host, commands.to(state), step.deadline);
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
/// confirms it got there. Conditional, like every revert: it first asks
/// the service's state; when it is already as captured (someone put it
/// back, or the step found it so), nothing is run.
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
    let running = runs(ex, step, host, unit, &commands, transcript, cancel.as_mut()).await?;
    if running == (before == ServiceState::Running) {
        transcript.note(&format!(
            "{unit} is already {}, as before the step: nothing to put back",
            service::capture_text(running)
        ));
        return Ok(());
    }
    let change = ex.command(step, host, commands.to(before), step.deadline);
    let outcome = ex
        .exec(&step.id, host, &change, cancel.as_mut(), transcript)
        .await?;
    Failure::from_exit(&outcome)?;
    service_is(ex, step, host, &commands, before, transcript, cancel).await
}

/// Whether `unit` runs now, by its status command.
async fn runs(
    ex: &Executor,
    step: &Step,
    host: &str,
    unit: &str,
    commands: &Commands,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<bool, Failure> {
    let status = ex.command(step, host, &commands.status, Some(CHECK_DEADLINE));
    let now = ex.exec(&step.id, host, &status, cancel, transcript).await?;
    match now.status {
        ExitKind::Exited(0) => Ok(true),
        ExitKind::Exited(_) => Ok(false),
        other => Err(Failure::Failed(format!(
            "asking whether {unit} runs did not finish: {other}"
        ))),
    }
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
    let status = ex.command(step, host, &commands.status, Some(CHECK_DEADLINE));
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

#[cfg(test)]
mod tests {
    use plan_core::machine::Event;

    use super::super::test_plan::{plan, scratch, Journal};

    fn pending() -> std::future::Pending<()> {
        std::future::pending()
    }

    /// A service of our own: it "runs" while the file `running` exists;
    /// every start is also counted in `starts`.
    fn step(state: &str, start: &str) -> String {
        format!(
            r#"Step(id: "demo", action: Service(on: "local", unit: "demo", state: {state},
                    start: "{start}",
                    stop: "rm -f {{{{dir}}}}/running",
                    status: "test -f {{{{dir}}}}/running"))"#
        )
    }

    const START: &str = "echo x >> {{dir}}/starts; touch {{dir}}/running";

    #[tokio::test]
    async fn a_service_is_started_and_put_back_as_captured() {
        let dir = scratch();
        let running = dir.path().join("running");
        let (ex, journal) = Journal::executor(plan(dir.path(), "", &step("Running", START)));

        // Without a check of its own, its state tells whether it took effect.
        assert_eq!(ex.check("demo", pending()).await.0, Ok(false));

        let (event, transcript) = ex.forward("demo", pending()).await;
        assert_eq!(
            event,
            Event::StepSucceeded {
                step: "demo".into()
            },
            "{}",
            transcript.text
        );
        assert!(running.exists());
        assert_eq!(
            journal.captured(),
            [("demo".to_owned(), "stopped".to_owned())]
        );
        assert_eq!(ex.check("demo", pending()).await.0, Ok(true));

        let (event, transcript) = ex.revert("demo", Some("stopped"), pending()).await;
        assert_eq!(
            event,
            Event::RevertSucceeded {
                step: "demo".into()
            },
            "{}",
            transcript.text
        );
        assert!(!running.exists(), "not put back to stopped");

        let (event, _) = ex.revert("demo", None, pending()).await;
        assert_eq!(
            event,
            Event::RevertFailed {
                step: "demo".into(),
                reason: "no captured state of demo to restore".into()
            }
        );
    }

    /// Issue 11, item 6: reverts are conditional. A service someone already
    /// put back as it was before the step is not touched by the revert.
    #[tokio::test]
    async fn a_revert_finding_the_service_as_captured_runs_nothing() {
        let dir = scratch();
        let running = dir.path().join("running");
        std::fs::write(&running, "").unwrap();
        let (ex, _) = Journal::executor(plan(dir.path(), "", &step("Stopped", START)));
        let (event, _) = ex.forward("demo", pending()).await;
        assert_eq!(
            event,
            Event::StepSucceeded {
                step: "demo".into()
            }
        );
        assert!(!running.exists());
        // Someone starts it again by hand.
        std::fs::write(&running, "").unwrap();
        let (event, transcript) = ex.revert("demo", Some("running"), pending()).await;
        assert_eq!(
            event,
            Event::RevertSucceeded {
                step: "demo".into()
            },
            "{}",
            transcript.text
        );
        assert!(
            transcript.text.contains("nothing to put back"),
            "{}",
            transcript.text
        );
        assert!(
            !dir.path().join("starts").exists(),
            "the revert ran the start command: {}",
            transcript.text
        );
    }

    #[tokio::test]
    async fn a_service_already_in_its_state_is_left_alone() {
        let dir = scratch();
        std::fs::write(dir.path().join("running"), "").unwrap();
        let (ex, journal) = Journal::executor(plan(dir.path(), "", &step("Running", START)));
        let (event, transcript) = ex.forward("demo", pending()).await;
        assert_eq!(
            event,
            Event::StepSucceeded {
                step: "demo".into()
            }
        );
        assert!(
            transcript.text.contains("demo is already running"),
            "{}",
            transcript.text
        );
        assert!(!dir.path().join("starts").exists(), "started again");
        assert_eq!(
            journal.captured(),
            [("demo".to_owned(), "running".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_service_that_does_not_get_there_fails_the_step() {
        let dir = scratch();
        let (ex, _) = Journal::executor(plan(dir.path(), "", &step("Running", "true")));
        let (event, _) = ex.forward("demo", pending()).await;
        assert_eq!(
            event,
            Event::StepFailed {
                step: "demo".into(),
                reason: "it is still stopped after the change".into()
            }
        );
    }
}

//! The `Shell` action: its command forward, its stated revert back.

use plan_core::{Revert, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript};

/// Runs the command `run` on `host`.
pub(super) async fn forward(
    ex: &Executor,
    step: &Step,
    host: &str,
    run: &str,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let command = ex.command(step, host, run, step.deadline);
    let outcome = ex
        .exec(&step.id, host, &command, cancel, transcript)
        .await?;
    Failure::from_exit(&outcome)
}

/// Undoes the command as its `revert` says: runs the stated command on
/// `host`, or has nothing to do, or cannot.
pub(super) async fn undo(
    ex: &Executor,
    step: &Step,
    host: &str,
    revert: &Revert,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<(), Failure> {
    match revert {
        Revert::Run(command) => {
            let shell = ex.command(step, host, command, step.deadline);
            let outcome = ex.exec(&step.id, host, &shell, cancel, transcript).await?;
            Failure::from_exit(&outcome)
        }
        Revert::Irreversible(reason) => {
            Err(Failure::Failed(format!("it is irreversible: {reason}")))
        }
        Revert::Nothing(_) => Ok(()),
        Revert::Manual(_) => Err(Failure::not_revertible()),
    }
}

#[cfg(test)]
mod tests {
    use plan_core::machine::Event;

    use super::super::test_plan::{plan, scratch};
    use super::super::Executor;

    fn pending() -> std::future::Pending<()> {
        std::future::pending()
    }

    #[tokio::test]
    async fn a_shell_step_runs_is_checked_and_is_reverted() {
        let dir = scratch();
        let flag = dir.path().join("flag");
        let ex = Executor::new(plan(
            dir.path(),
            "",
            r#"Step(id: "flag",
                    action: Shell(on: "local", run: "touch {{dir}}/flag", revert: Run("rm {{dir}}/flag")),
                    check: Run("test -f {{dir}}/flag"))"#,
        ));

        assert_eq!(ex.check("flag", pending()).await.0, Ok(false));

        let (event, transcript) = ex.forward("flag", pending()).await;
        assert_eq!(
            event,
            Event::StepSucceeded {
                step: "flag".into()
            },
            "{}",
            transcript.text
        );
        assert!(flag.exists());
        assert!(
            transcript.text.contains("[local] $ touch "),
            "{}",
            transcript.text
        );
        assert_eq!(ex.check("flag", pending()).await.0, Ok(true));

        let (event, _) = ex.revert("flag", None, pending()).await;
        assert_eq!(
            event,
            Event::RevertSucceeded {
                step: "flag".into()
            }
        );
        assert!(!flag.exists(), "the revert command did not run");
        assert_eq!(ex.check("flag", pending()).await.0, Ok(false));
    }

    #[tokio::test]
    async fn a_failing_command_fails_the_step_with_its_last_line() {
        let dir = scratch();
        let ex = Executor::new(plan(
            dir.path(),
            "",
            r#"Step(id: "full",
                    action: Shell(on: "local", run: "echo copying; echo 'no space left'; echo; exit 3",
                                  revert: Nothing("it changed nothing"))),
               Step(id: "slow",
                    action: Shell(on: "local", run: "sleep 30", revert: Nothing("it changed nothing")),
                    duration: Fixed("100ms"), deadline: "300ms")"#,
        ));
        let (event, _) = ex.forward("full", pending()).await;
        assert_eq!(
            event,
            Event::StepFailed {
                step: "full".into(),
                reason: "exited with status 3: no space left".into()
            }
        );
        let (event, _) = ex.forward("slow", pending()).await;
        assert_eq!(
            event,
            Event::DeadlineExceeded {
                step: "slow".into()
            }
        );
        // `Nothing` has nothing to run.
        let (event, _) = ex.revert("full", None, pending()).await;
        assert_eq!(
            event,
            Event::RevertSucceeded {
                step: "full".into()
            }
        );
        // Without a check, an in-doubt shell step cannot be settled.
        let (done, _) = ex.check("full", pending()).await;
        assert_eq!(
            done,
            Err(super::super::CheckError {
                message: "step `full` has no check to tell whether it took effect".into(),
                kind: super::super::CheckErrorKind::NoCheck,
            })
        );
    }
}

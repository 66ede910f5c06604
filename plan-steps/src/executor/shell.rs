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
    let command = ex.command(run, step.deadline);
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
            let shell = ex.command(command, step.deadline);
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

//! The `Rsync` action: the copy forward, and whether nothing is left to copy.

use plan_core::{Action, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Report, Transcript, CHECK_DEADLINE};
use crate::command::ExitKind;
use crate::rsync;

/// Runs the copy on the `from` host, and reports what it moved.
pub(super) async fn forward(
    ex: &Executor,
    step: &Step,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let (from, copy) = copy_of(ex, step)?;
    let command = ex.command(&copy.command(false), step.deadline);
    let outcome = ex
        .exec(&step.id, from, &command, cancel, transcript)
        .await?;
    if let (Some(stats), Some(reporter)) = (rsync::parse_stats(&outcome.output), &ex.reporter) {
        reporter.send(Report::Transferred {
            step: step.id.clone(),
            files: stats.files_transferred,
            bytes: stats.bytes_transferred,
            millis: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }
    Failure::from_exit(&outcome)
}

/// Whether an in-doubt copy took effect. A copy is done only when nothing
/// is left to copy, whatever else its own check looks at (a partial copy
/// passes most checks): then its check, if it has one, decides.
pub(super) async fn done(
    ex: &Executor,
    step: &Step,
    transcript: &mut Transcript,
    mut cancel: Cancel<'_>,
) -> Result<bool, Failure> {
    match rsync_done(ex, step, transcript, cancel.as_mut()).await {
        Ok(true) if step.check.is_some() => ex.run_check(step, transcript, cancel).await,
        other => other,
    }
}

/// Whether a copy is complete: a dry run finds nothing left to copy.
async fn rsync_done(
    ex: &Executor,
    step: &Step,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<bool, Failure> {
    let (from, copy) = copy_of(ex, step)?;
    let command = ex.command(&copy.command(true), step.deadline.or(Some(CHECK_DEADLINE)));
    let outcome = ex
        .exec(&step.id, from, &command, cancel, transcript)
        .await?;
    Ok(
        match (outcome.status, rsync::parse_stats(&outcome.output)) {
            (ExitKind::Exited(0), Some(stats)) => stats.files_transferred == 0,
            _ => false,
        },
    )
}

/// The copy a `Rsync` step makes, and the host it runs on (`from`): the
/// one place both the copy and its dry run are built.
fn copy_of<'a>(ex: &'a Executor, step: &'a Step) -> Result<(&'a str, rsync::Copy<'a>), Failure> {
    let Action::Rsync {
        from,
        to,
        path,
        dest,
        delete,
        args,
    } = &step.action
    else {
        return Err(Failure::Failed(format!("step `{}` is not a copy", step.id)));
    };
    let to_host = ex
        .plan
        .host(to)
        .ok_or_else(|| Failure::Failed(format!("no host `{to}`")))?;
    let copy = rsync::Copy {
        path,
        dest,
        to: to_host,
        delete: *delete,
        args,
    };
    Ok((from, copy))
}

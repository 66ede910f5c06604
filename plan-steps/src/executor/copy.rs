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
    let command = ex.command(step, from, &copy.command(false), step.deadline);
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
    let command = ex.command(
        step,
        from,
        &copy.command(true),
        step.deadline.or(Some(CHECK_DEADLINE)),
    );
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
pub(super) fn copy_of<'a>(
    ex: &'a Executor,
    step: &'a Step,
) -> Result<(&'a str, rsync::Copy<'a>), Failure> {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use plan_core::machine::Event;

    use super::super::test_plan::{plan, scratch, Journal};

    fn pending() -> std::future::Pending<()> {
        std::future::pending()
    }

    /// A real copy on this machine: rsync's remote shell is a script that
    /// drops the host name and runs the rest here.
    #[tokio::test]
    async fn a_copy_is_done_only_when_nothing_is_left_to_copy() {
        // No test is skipped for want of a package: scripts/test installs rsync.
        assert!(
            std::process::Command::new("rsync")
                .arg("--version")
                .output()
                .is_ok(),
            "rsync is missing: install it (scripts/test does)"
        );
        let dir = scratch();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("list.txt"), "mailman\n").unwrap();
        let rsh = dir.path().join("rsh");
        std::fs::write(&rsh, "#!/bin/sh\nshift\nexec \"$@\"\n").unwrap();
        std::fs::set_permissions(&rsh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ex, journal) = Journal::executor(plan(
            dir.path(),
            r#"hosts: { "backup": Host(address: "backup.invalid") },"#,
            r#"Step(id: "copy", action: Rsync(from: "local", to: "backup",
                    path: "{{dir}}/src/", dest: "{{dir}}/dst/", args: ["-e", "{{dir}}/rsh"]))"#,
        ));

        // The in-doubt check is a dry run: it finds the file and copies nothing.
        let (done, transcript) = ex.check("copy", pending()).await;
        assert_eq!(done, Ok(false), "{}", transcript.text);
        assert!(transcript.text.contains("--dry-run"), "{}", transcript.text);
        assert!(!dst.join("list.txt").exists(), "the check copied");

        let (event, transcript) = ex.forward("copy", pending()).await;
        assert_eq!(
            event,
            Event::StepSucceeded {
                step: "copy".into()
            },
            "{}",
            transcript.text
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("list.txt")).unwrap(),
            "mailman\n"
        );
        assert_eq!(journal.transferred().await, [("copy".to_owned(), 1)]);
        assert_eq!(ex.check("copy", pending()).await.0, Ok(true));

        // Nothing is undone: the copy stays.
        let (event, _) = ex.revert("copy", None, pending()).await;
        assert_eq!(
            event,
            Event::RevertSucceeded {
                step: "copy".into()
            }
        );
        assert!(dst.join("list.txt").exists());
    }
}

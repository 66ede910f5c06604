//! Process groups a step's command may leave running, and waiting for them before a check.

use std::time::{Duration, SystemTime};

use plan_core::Step;

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Report, Transcript, CHECK_DEADLINE};
use crate::command::{ExitKind, ShellCommand};
use crate::local;
use plan_core::machine::ProcessGroup;

/// How long an SSH command runs before its leader's start time is asked for
/// (see [`ProcessGroup::start_time`]; a crash or a lost connection may leave
/// the group running, and an in-doubt check waits for it first).
pub const START_TIME_AFTER: Duration = Duration::from_millis(500);

/// How long an in-doubt check waits at most for a leftover command when the
/// step has no deadline. It is then left running: no deadline says it may
/// be stopped.
pub const LEFTOVER_WAIT: Duration = Duration::from_secs(15 * 60);

impl Executor {
    /// Records that `step`'s command runs in `group`, and reports it for the
    /// journal.
    pub(super) fn started(&self, step: &str, group: ProcessGroup) {
        // An untracked command (a probe of a leftover): not the step's.
        if step.is_empty() {
            return;
        }
        if let Ok(mut groups) = self.groups.lock() {
            groups.insert(step.to_owned(), group.clone());
        }
        if let Some(reporter) = &self.reporter {
            reporter.send(Report::Spawned {
                step: step.to_owned(),
                group,
            });
        }
    }

    /// Forgets `step`'s group: its command has ended.
    pub(super) fn finished(&self, step: &str) {
        if let Ok(mut groups) = self.groups.lock() {
            groups.remove(step);
        }
    }

    /// Before an in-doubt step is checked: lets every command it left running
    /// (after a crash, or a lost connection; any number of crashes ago) finish,
    /// so the check sees its effect and nothing runs twice at once. At the
    /// step's deadline, counted from when the command began (when the journal
    /// says), the group is killed, as the deadline would have, if its leader
    /// is still the process that was started (its start time tells; on a
    /// host without `/proc`, where it cannot, the group is only waited for).
    ///
    /// A group that cannot be proven gone (its host does not answer, or it
    /// still runs after [`LEFTOVER_WAIT`] without a deadline to stop it) is
    /// an error, and stays known: the check must not decide while it may
    /// still be at work, or the step would run again beside it.
    pub(super) async fn settle_leftover(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        mut cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        let groups = self
            .leftovers
            .lock()
            .ok()
            .and_then(|mut l| l.remove(&step.id))
            .unwrap_or_default();
        let mut left = Vec::new();
        let mut result = Ok(());
        for (group, began) in groups {
            if result.is_err() {
                left.push((group, began));
                continue;
            }
            let since = began
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let deadline = step.deadline.map(|d| d.saturating_sub(since));
            if let Err(failure) = self
                .settle_one(step, &group, deadline, transcript, cancel.as_mut())
                .await
            {
                left.push((group, began));
                result = Err(failure);
            }
        }
        if !left.is_empty() {
            if let Ok(mut leftovers) = self.leftovers.lock() {
                leftovers.entry(step.id.clone()).or_default().extend(left);
            }
        }
        result
    }

    /// Waits for one leftover group, stopping it once `deadline` (what is
    /// left of the step's) has passed.
    async fn settle_one(
        &self,
        step: &Step,
        group: &ProcessGroup,
        deadline: Option<Duration>,
        transcript: &mut Transcript,
        mut cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        let still_runs = |limit: Duration| {
            Failure::Failed(format!(
                "process group {} on {}, left running by a stopped attempt, still runs after {}s \
                 and the step has no deadline to stop it; its check could not be trusted",
                group.pgid,
                group.host_name(),
                limit.as_secs()
            ))
        };
        if group.host.is_none() {
            let wait = local::wait_leftover(group.clone(), deadline);
            let waited = match deadline {
                Some(_) => Ok(wait.await),
                None => tokio::time::timeout(LEFTOVER_WAIT, wait).await,
            };
            return match waited {
                Ok(local::Leftover::Gone) => Ok(()),
                Ok(outcome) => {
                    transcript.note(&format!(
                        "[local] waited for process group {} left running: {outcome:?}",
                        group.pgid
                    ));
                    Ok(())
                }
                Err(_) => Err(still_runs(LEFTOVER_WAIT)),
            };
        }
        let limit = deadline.unwrap_or(LEFTOVER_WAIT);
        let started = tokio::time::Instant::now();
        let probe = crate::ssh::leftover_probe(group.pgid, group.start_time);
        let unreachable = |e: super::hosts::ExecError| {
            Failure::InDoubt(format!(
                "cannot tell whether process group {} left running on {} has ended ({}); it \
                 stays known until it can",
                group.pgid,
                group.host_name(),
                e.message
            ))
        };
        loop {
            // Probes are not the step's commands: they are not journaled as
            // its process groups (an untracked step).
            let alive = self
                .exec(
                    "",
                    group.host_name(),
                    &ShellCommand::new(&probe).with_deadline(CHECK_DEADLINE),
                    cancel.as_mut(),
                    &mut Transcript::default(),
                )
                .await
                .map(|o| o.status == ExitKind::Exited(0))
                .map_err(unreachable)?;
            if !alive {
                if started.elapsed() > Duration::from_millis(300) {
                    transcript.note(&format!(
                        "[{}] waited {:.1}s for process group {} left by the stopped attempt",
                        group.host_name(),
                        started.elapsed().as_secs_f64(),
                        group.pgid
                    ));
                }
                return Ok(());
            }
            if started.elapsed() < limit {
                tokio::time::sleep(Duration::from_millis(250).min(limit)).await;
                continue;
            }
            let kill = deadline.and_then(|_| {
                crate::ssh::leftover_kill(group.pgid, group.start_time, local::KILL_GRACE)
            });
            let Some(kill) = kill else {
                return Err(still_runs(limit));
            };
            self.exec(
                "",
                group.host_name(),
                &ShellCommand::new(&kill).with_deadline(CHECK_DEADLINE),
                cancel.as_mut(),
                &mut Transcript::default(),
            )
            .await
            .map_err(unreachable)?;
            transcript.note(&format!(
                "[{}] process group {} left by the stopped attempt ran past the step's deadline \
                 ({}s from when it began): stopped",
                group.host_name(),
                group.pgid,
                step.deadline.unwrap_or_default().as_secs()
            ));
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;
    use std::time::Instant;

    use super::super::test_plan::{plan, scratch};
    use super::super::Executor;
    use super::{Duration, ProcessGroup};

    /// `sleep SECONDS` in its own process group, as a crashed run leaves a
    /// command, reaped by a thread once it ends.
    fn left_running(seconds: &str) -> ProcessGroup {
        let mut child = std::process::Command::new("sleep")
            .arg(seconds)
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        let pgid = i32::try_from(child.id()).expect("a pid fits");
        let start_time = crate::local::start_time(pgid);
        assert!(start_time.is_some(), "this machine has /proc");
        std::thread::spawn(move || child.wait());
        ProcessGroup {
            host: None,
            pgid,
            start_time,
        }
    }

    #[tokio::test]
    async fn an_in_doubt_check_waits_for_the_command_a_crash_left() {
        let dir = scratch();
        let ex = Executor::new(plan(
            dir.path(),
            "",
            r#"Step(id: "pause", action: Wait("10ms"))"#,
        ))
        .with_leftovers([("pause".to_owned(), left_running("0.5"))]);
        let started = Instant::now();
        let (done, transcript) = ex.check("pause", std::future::pending()).await;
        assert_eq!(done, Ok(false));
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
        assert!(
            transcript.text.contains("left running: Finished"),
            "{}",
            transcript.text
        );
    }

    #[tokio::test]
    async fn at_the_step_deadline_the_leftover_is_stopped() {
        let dir = scratch();
        let ex = Executor::new(plan(
            dir.path(),
            "",
            r#"Step(id: "pause", action: Wait("10ms"), deadline: "300ms")"#,
        ))
        .with_leftovers([("pause".to_owned(), left_running("30"))]);
        let started = Instant::now();
        let (_, transcript) = ex.check("pause", std::future::pending()).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            transcript.text.contains("left running: Killed"),
            "{}",
            transcript.text
        );
    }
}

//! Process groups a step's command may leave running, and waiting for them before a check.

use std::time::Duration;

use plan_core::Step;

use super::dispatch::Cancel;
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

    /// Before an in-doubt step is checked: lets a command it left running
    /// (after a crash, or a lost connection) finish, so the check sees its
    /// effect and nothing runs twice at once. At the step's deadline the group
    /// is killed, as the deadline would have, if its leader is still the
    /// process that was started (its start time tells; on a host without
    /// `/proc`, where it cannot, the group is only waited for).
    pub(super) async fn settle_leftover(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        mut cancel: Cancel<'_>,
    ) {
        let Some(group) = self.groups.lock().ok().and_then(|mut g| g.remove(&step.id)) else {
            return;
        };
        if group.host.is_none() {
            // Stopped at the deadline; without one nothing says it may be
            // stopped: waited for, at most LEFTOVER_WAIT, as on an SSH host.
            let wait = local::wait_leftover(group.clone(), step.deadline);
            let waited = match step.deadline {
                Some(_) => Ok(wait.await),
                None => tokio::time::timeout(LEFTOVER_WAIT, wait).await,
            };
            match waited {
                Ok(local::Leftover::Gone) => {}
                Ok(outcome) => transcript.note(&format!(
                    "[local] waited for process group {} left running: {outcome:?}",
                    group.pgid
                )),
                Err(_) => transcript.note(&format!(
                    "[local] process group {} left by the stopped attempt still runs after {}s; checking anyway",
                    group.pgid,
                    LEFTOVER_WAIT.as_secs()
                )),
            }
            return;
        }
        let limit = step.deadline.unwrap_or(LEFTOVER_WAIT);
        let started = tokio::time::Instant::now();
        let probe = crate::ssh::leftover_probe(group.pgid, group.start_time);
        loop {
            let mut quiet = Transcript::default();
            let alive = self
                .exec(
                    &step.id,
                    group.host_name(),
                    &ShellCommand::new(&probe).with_deadline(CHECK_DEADLINE),
                    cancel.as_mut(),
                    &mut quiet,
                )
                .await
                .map(|o| o.status == ExitKind::Exited(0));
            match alive {
                Ok(true) if started.elapsed() < limit => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                Ok(true) => {
                    let kill = step.deadline.and_then(|_| {
                        crate::ssh::leftover_kill(group.pgid, group.start_time, local::KILL_GRACE)
                    });
                    let Some(kill) = kill else {
                        transcript.note(&format!(
                            "[{}] process group {} left by the stopped attempt still runs after {}s; checking anyway",
                            group.host_name(),
                            group.pgid,
                            limit.as_secs()
                        ));
                        return;
                    };
                    let killed = self
                        .exec(
                            &step.id,
                            group.host_name(),
                            &ShellCommand::new(&kill).with_deadline(CHECK_DEADLINE),
                            cancel.as_mut(),
                            &mut Transcript::default(),
                        )
                        .await;
                    transcript.note(&format!(
                        "[{}] process group {} left by the stopped attempt ran past the step's deadline ({}s): {}",
                        group.host_name(),
                        group.pgid,
                        limit.as_secs(),
                        match killed {
                            Ok(_) => "stopped",
                            Err(_) => "it could not be stopped (the check decides)",
                        }
                    ));
                    return;
                }
                Ok(false) => {
                    if started.elapsed() > Duration::from_millis(300) {
                        transcript.note(&format!(
                            "[{}] waited {:.1}s for process group {} left by the stopped attempt",
                            group.host_name(),
                            started.elapsed().as_secs_f64(),
                            group.pgid
                        ));
                    }
                    return;
                }
                // The host cannot be asked: the check will say so.
                Err(_) => return,
            }
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

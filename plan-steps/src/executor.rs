//! Performs one effect of the run machine on the built-in host `local`.
//!
//! Each function turns a step of the plan into processes on this machine and
//! answers with the [`Event`] the machine expects. What this version cannot
//! do (SSH hosts, rsync, DNS updates, services) is refused at preflight,
//! before anything changes, with a message saying so.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use plan_core::machine::{Event, Schedule};
use plan_core::{Action, Check, Plan, Revert, Step};

use tokio::sync::{mpsc, oneshot};

use crate::local::{self, ExitKind, ProcessGroup, ShellCommand, ShellOutcome};

/// How long a check may take when the step has no deadline.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(60);

/// What a step printed, for the journal and the live view.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    /// Combined output of the commands run, each introduced by `$ command`.
    pub text: String,
}

impl Transcript {
    fn add(&mut self, command: &str, outcome: &ShellOutcome) {
        self.text.push_str(&format!("$ {command}\n{}", outcome.output));
        if outcome.dropped_bytes > 0 {
            self.text.push_str(&format!("[{} bytes of output left out]\n", outcome.dropped_bytes));
        }
    }
}

/// Runs steps of one plan on this machine.
#[derive(Clone, Debug)]
pub struct Executor {
    plan: Arc<Plan>,
    reporter: Option<Reporter>,
}

/// What a step tells the driver while it runs, for the journal.
#[derive(Debug)]
pub enum Report {
    /// A local command's process group began.
    Spawned {
        /// Step id.
        step: String,
        /// The group.
        group: ProcessGroup,
    },
    /// Prior state, captured before the change; the change waits for `ack`,
    /// which the driver sends once the record is on disk.
    Captured {
        /// Step id.
        step: String,
        /// The state, as text.
        state: String,
        /// Sent once journaled.
        ack: oneshot::Sender<()>,
    },
    /// What a copy moved.
    Transferred {
        /// Step id.
        step: String,
        /// Files transferred.
        files: u64,
        /// Bytes of file data transferred.
        bytes: u64,
        /// Wall time in milliseconds.
        millis: u64,
    },
}

/// Sends [`Report`]s to the driver.
#[derive(Clone, Debug)]
pub struct Reporter(mpsc::UnboundedSender<Report>);

impl Reporter {
    /// A reporter sending on `to`.
    pub fn new(to: mpsc::UnboundedSender<Report>) -> Reporter {
        Reporter(to)
    }

    /// Journals a capture and waits until it is on disk.
    pub async fn captured(&self, step: &str, state: String) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.0
            .send(Report::Captured { step: step.to_owned(), state, ack })
            .map_err(|_| "the journal is gone: not changing anything".to_owned())?;
        done.await.map_err(|_| "the captured state could not be journaled: not changing anything".to_owned())
    }

    fn send(&self, report: Report) {
        let _ = self.0.send(report);
    }
}

impl Executor {
    /// An executor for `plan`.
    pub fn new(plan: Arc<Plan>) -> Executor {
        Executor { plan, reporter: None }
    }

    /// Reports process groups, captures and transfers to the driver.
    pub fn reporting(mut self, reporter: Reporter) -> Executor {
        self.reporter = Some(reporter);
        self
    }

    /// Runs an action's or revert's command, reporting its process group.
    async fn run_step_command(
        &self,
        step: &str,
        command: &ShellCommand,
        cancel: impl Future<Output = ()>,
    ) -> Result<ShellOutcome, local::LocalError> {
        let reporter = self.reporter.clone();
        local::run_reporting(command, cancel, |group| {
            if let Some(reporter) = reporter {
                reporter.send(Report::Spawned { step: step.to_owned(), group });
            }
        })
        .await
    }

    fn step(&self, id: &str) -> Result<&Step, String> {
        self.plan.step(id).ok_or_else(|| format!("the plan has no step `{id}`"))
    }

    /// Refuses, before anything changes, a run this version cannot carry out.
    pub fn preflight(&self, schedule: &Schedule) -> Result<(), String> {
        let mut problems = Vec::new();
        for scheduled in &schedule.steps {
            let step = self.step(&scheduled.id)?;
            if let Some(problem) = unsupported(step) {
                problems.push(format!("step `{}`: {problem}", step.id));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "this version of cutover runs Shell, Wait, Manual and Verify steps on host `local` only; {}",
                problems.join("; ")
            ))
        }
    }

    /// Performs a step's action, then its check.
    pub async fn forward(&self, id: &str, cancel: impl Future<Output = ()>) -> (Event, Transcript) {
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(reason) => return (Event::StepFailed { step: id.to_owned(), reason }, transcript),
        };
        let step_id = step.id.clone();
        let mut cancel = std::pin::pin!(cancel);
        let event = match &step.action {
            Action::Shell { run, .. } => {
                let command = self.command(run, step.deadline);
                match self.run_step_command(id, &command, cancel.as_mut()).await {
                    Err(e) => Event::StepFailed { step: step_id, reason: e.to_string() },
                    Ok(outcome) => {
                        transcript.add(run, &outcome);
                        match outcome.status {
                            ExitKind::Exited(0) => self.after_action(step, &mut transcript, cancel.as_mut()).await,
                            ExitKind::TimedOut => Event::DeadlineExceeded { step: step_id },
                            ExitKind::Cancelled => {
                                Event::StepInDoubt { step: step_id, reason: "cancelled while running".into() }
                            }
                            status => Event::StepFailed { step: step_id, reason: failure(&status, &outcome) },
                        }
                    }
                }
            }
            Action::Wait(duration) => {
                tokio::select! {
                    () = tokio::time::sleep(*duration) => self.after_action(step, &mut transcript, cancel.as_mut()).await,
                    () = cancel.as_mut() => Event::StepInDoubt { step: step_id, reason: "cancelled while waiting".into() },
                }
            }
            Action::Verify => self.after_action(step, &mut transcript, cancel.as_mut()).await,
            _ => Event::StepFailed {
                step: step_id,
                reason: unsupported(step).unwrap_or_else(|| "not supported".into()),
            },
        };
        (event, transcript)
    }

    /// After the action: the check, then `settle`.
    async fn after_action(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        mut cancel: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Event {
        let id = step.id.clone();
        if step.check.is_some() {
            match self.run_check(step, transcript, cancel.as_mut()).await {
                Ok(true) => {}
                Ok(false) => return Event::StepFailed { step: id, reason: "its check failed after the action".into() },
                Err(reason) => return Event::StepFailed { step: id, reason },
            }
        }
        if let Some(settle) = step.settle {
            tokio::select! {
                () = tokio::time::sleep(settle) => {}
                () = cancel.as_mut() => return Event::StepInDoubt { step: id, reason: "cancelled while settling".into() },
            }
        }
        Event::StepSucceeded { step: id }
    }

    /// Settles whether an in-doubt step took effect.
    pub async fn check(&self, id: &str, cancel: impl Future<Output = ()>) -> (Result<bool, String>, Transcript) {
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(reason) => return (Err(reason), transcript),
        };
        let mut cancel = std::pin::pin!(cancel);
        let result = match (&step.action, &step.check) {
            (_, Some(_)) => self.run_check(step, &mut transcript, cancel.as_mut()).await,
            // A wait leaves nothing behind: running it again is what is needed.
            (Action::Wait(_), None) => Ok(false),
            _ => Err(format!("step `{id}` has no check to tell whether it took effect")),
        };
        (result, transcript)
    }

    async fn run_check(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        cancel: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<bool, String> {
        match &step.check {
            Some(Check::Run { host, command }) if host == plan_core::Host::LOCAL => {
                let shell = self.command(command, Some(step.deadline.unwrap_or(CHECK_DEADLINE)));
                let outcome = local::run(&shell, cancel).await.map_err(|e| e.to_string())?;
                transcript.add(command, &outcome);
                match outcome.status {
                    ExitKind::Exited(0) => Ok(true),
                    ExitKind::Exited(_) => Ok(false),
                    status => Err(format!("its check did not finish: {status}")),
                }
            }
            Some(Check::Tcp { host, port }) if host == plan_core::Host::LOCAL => {
                let connect = tokio::net::TcpStream::connect(("127.0.0.1", *port));
                match tokio::time::timeout(CHECK_DEADLINE, connect).await {
                    Ok(Ok(_)) => Ok(true),
                    Ok(Err(_)) => Ok(false),
                    Err(_) => Err(format!("connecting to port {port} timed out")),
                }
            }
            Some(_) => Err(unsupported(step).unwrap_or_else(|| "this check is not supported yet".into())),
            None => Ok(true),
        }
    }

    /// Undoes a completed step.
    pub async fn revert(&self, id: &str, captured: Option<&str>, cancel: impl Future<Output = ()>) -> (Event, Transcript) {
        let _ = captured;
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(reason) => return (Event::RevertFailed { step: id.to_owned(), reason }, transcript),
        };
        let step_id = step.id.clone();
        let event = match &step.action {
            Action::Shell { revert: Revert::Run(command), .. } => {
                let shell = self.command(command, step.deadline);
                match self.run_step_command(id, &shell, cancel).await {
                    Err(e) => Event::RevertFailed { step: step_id, reason: e.to_string() },
                    Ok(outcome) => {
                        transcript.add(command, &outcome);
                        match outcome.status {
                            ExitKind::Exited(0) => Event::RevertSucceeded { step: step_id },
                            status => Event::RevertFailed { step: step_id, reason: failure(&status, &outcome) },
                        }
                    }
                }
            }
            Action::Shell { revert: Revert::Nothing(_), .. } | Action::Wait(_) | Action::Verify => {
                Event::RevertSucceeded { step: step_id }
            }
            Action::Shell { revert: Revert::Irreversible(reason), .. } => {
                Event::RevertFailed { step: step_id, reason: format!("it is irreversible: {reason}") }
            }
            _ => Event::RevertFailed {
                step: step_id,
                reason: "its revert needs the operator or is not supported on this host".into(),
            },
        };
        (event, transcript)
    }

    fn command(&self, command: &str, deadline: Option<Duration>) -> ShellCommand {
        let shell = ShellCommand::new(command);
        match deadline {
            Some(deadline) => shell.with_deadline(deadline),
            None => shell,
        }
    }
}

/// What this version cannot do for `step`, if anything.
pub fn unsupported(step: &Step) -> Option<String> {
    let local = |host: &str| host == plan_core::Host::LOCAL;
    match &step.action {
        Action::Shell { host, .. } if !local(host) => {
            return Some(format!("host `{host}` is reached over SSH, which this version cannot do yet"))
        }
        Action::Shell { .. } | Action::Wait(_) | Action::Manual { .. } | Action::Verify => {}
        other => return Some(format!("`{}` steps are not implemented yet", other.kind())),
    }
    match &step.check {
        Some(Check::Run { host, .. } | Check::Tcp { host, .. }) if !local(host) => {
            Some(format!("its check runs on host `{host}`, reached over SSH, which this version cannot do yet"))
        }
        Some(Check::Http { .. }) => Some("HTTP checks are not implemented yet".into()),
        Some(Check::Resolves { .. }) => Some("DNS checks are not implemented yet".into()),
        _ => None,
    }
}

fn failure(status: &ExitKind, outcome: &ShellOutcome) -> String {
    let last = outcome.output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if last.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {last}")
    }
}

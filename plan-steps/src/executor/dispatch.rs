//! The executor and its three entry points, one match arm per action kind: forward, check, revert.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use plan_core::machine::Event;
use plan_core::{Action, Plan, Step};
use tokio::sync::RwLock;

use super::failure::{CheckError, CheckErrorKind, Failure};
use super::hosts::{Conn, CONNECT_PARALLEL};
use super::{copy, dns, poll, service, shell, wait};
use super::{Reporter, SshOptions, Transcript};
use crate::dns::DnsClient;
use crate::history::TtlChange;
use plan_core::machine::ProcessGroup;

/// The caller's cancellation: once it completes, what the step runs is
/// stopped.
pub(super) type Cancel<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

/// Process groups earlier runs left, by step, with when each began.
pub(super) type Leftovers = HashMap<String, Vec<(ProcessGroup, Option<SystemTime>)>>;

/// Runs steps of one plan on their hosts.
#[derive(Clone, Debug)]
pub struct Executor {
    pub(super) plan: Arc<Plan>,
    pub(super) reporter: Option<Reporter>,
    pub(super) ssh: SshOptions,
    /// Each host's connection, made once: concurrent steps on a host that
    /// has none yet wait for the same connection.
    pub(super) conns: Arc<RwLock<HashMap<String, Arc<tokio::sync::OnceCell<Conn>>>>>,
    /// Bounds how many SSH connections are being opened at once, at
    /// preflight and later (a resume, a reconnect): `--connect-parallel`.
    pub(super) connecting: Arc<tokio::sync::Semaphore>,
    pub(super) dns: Arc<tokio::sync::OnceCell<DnsClient>>,
    /// The process group of the command each step runs now.
    pub(super) groups: Arc<std::sync::Mutex<HashMap<String, ProcessGroup>>>,
    /// Process groups earlier runs of the journal left, not proven gone,
    /// by step, with when each began (when the journal says): waited for
    /// (or stopped at the step's deadline) before the step's check.
    pub(super) leftovers: Arc<std::sync::Mutex<Leftovers>>,
    /// When each record's TTL was last changed (by this run, or an earlier
    /// one of its journal), and from what.
    pub(super) ttl_changes: Arc<std::sync::Mutex<HashMap<String, TtlChange>>>,
    /// When an interrupted wait began, by step (from the journal, on
    /// resume): the wait goes on from there.
    pub(super) waits_started: Arc<std::sync::Mutex<HashMap<String, SystemTime>>>,
}

impl Executor {
    /// An executor for `plan`; hosts are reached at [`Executor::preflight`].
    pub fn new(plan: Arc<Plan>) -> Executor {
        Executor {
            plan,
            reporter: None,
            ssh: SshOptions::default(),
            conns: Arc::default(),
            connecting: Arc::new(tokio::sync::Semaphore::new(usize::from(CONNECT_PARALLEL))),
            groups: Arc::default(),
            leftovers: Arc::default(),
            dns: Arc::default(),
            ttl_changes: Arc::default(),
            waits_started: Arc::default(),
        }
    }

    /// What the journal says about earlier TTL changes and interrupted waits.
    pub fn with_history(self, history: &crate::history::History) -> Executor {
        if let Ok(mut changes) = self.ttl_changes.lock() {
            for (record, change) in &history.ttl_changes {
                crate::history::note_ttl_change(&mut changes, record, *change);
            }
        }
        if let Ok(mut known) = self.leftovers.lock() {
            for (group, started) in known.values_mut().flatten() {
                let key = (group.host.clone(), group.pgid);
                *started = started.or_else(|| history.processes_started.get(&key).copied());
            }
        }
        if let Ok(mut waits) = self.waits_started.lock() {
            waits.extend(history.waits_started.iter().map(|(s, t)| (s.clone(), *t)));
        }
        self
    }

    /// How much of a `duration` wait of `step` is left: all of it, unless an
    /// interrupted attempt began earlier (then from that start).
    pub(super) fn wait_left(&self, step: &str, duration: Duration) -> Duration {
        let started = self
            .waits_started
            .lock()
            .ok()
            .and_then(|w| w.get(step).copied());
        let waited = started
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        duration.saturating_sub(waited)
    }

    /// Process groups a crashed run left behind, by step (from its journal).
    pub fn with_leftovers(
        self,
        leftovers: impl IntoIterator<Item = (String, ProcessGroup)>,
    ) -> Executor {
        if let Ok(mut known) = self.leftovers.lock() {
            for (step, group) in leftovers {
                known.entry(step).or_default().push((group, None));
            }
        }
        self
    }

    /// Reaches SSH hosts with these options.
    pub fn with_ssh(mut self, ssh: SshOptions) -> Executor {
        self.connecting = Arc::new(tokio::sync::Semaphore::new(usize::from(
            match ssh.connect_parallel {
                0 => CONNECT_PARALLEL,
                n => n,
            },
        )));
        self.ssh = ssh;
        self
    }

    /// Reports process groups, captures and transfers to the driver.
    pub fn reporting(mut self, reporter: Reporter) -> Executor {
        self.reporter = Some(reporter);
        self
    }

    /// The step `id` of the plan.
    pub(super) fn step(&self, id: &str) -> Result<&Step, String> {
        self.plan
            .step(id)
            .ok_or_else(|| format!("the plan has no step `{id}`"))
    }

    /// Performs a step's action, then its check.
    pub async fn forward(
        &self,
        id: &str,
        cancel: impl Future<Output = ()> + Send,
    ) -> (Event, Transcript) {
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(reason) => {
                return (
                    Event::StepFailed {
                        step: id.to_owned(),
                        reason,
                    },
                    transcript,
                )
            }
        };
        let mut cancel: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(cancel);
        let acted = self.act(step, &mut transcript, cancel.as_mut()).await;
        let event = match acted {
            Ok(()) => {
                self.after_action(step, &mut transcript, cancel.as_mut())
                    .await
            }
            Err(outcome) => outcome.into_event(&step.id),
        };
        (event, transcript)
    }

    /// The action itself.
    async fn act(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        match &step.action {
            Action::Shell { host, run, .. } => {
                shell::forward(self, step, host, run, transcript, cancel).await
            }
            Action::Service {
                host,
                unit,
                state,
                control,
            } => {
                service::forward(self, step, host, unit, *state, control, transcript, cancel).await
            }
            Action::Rsync { .. } => copy::forward(self, step, transcript, cancel).await,
            Action::Wait(duration) => {
                let left = self.wait_left(&step.id, *duration);
                if left < *duration {
                    self.note(
                        &step.id,
                        format!(
                            "the wait began before the run stopped: {} left of {}",
                            plan_core::duration::format_duration(left),
                            plan_core::duration::format_duration(*duration)
                        ),
                    );
                }
                let waited = wait::forward(left, cancel).await;
                if let Ok(mut waits) = self.waits_started.lock() {
                    waits.remove(&step.id);
                }
                waited
            }
            Action::Verify => Ok(()),
            Action::WaitUntil(p) => {
                if poll::poll(self, step, p, transcript, cancel).await? {
                    Ok(())
                } else {
                    Err(Failure::Failed(format!(
                        "it did not hold within {}",
                        plan_core::duration::format_duration(p.within)
                    )))
                }
            }
            Action::Manual { .. } => Err(Failure::Failed(
                "manual steps are confirmed by the operator".into(),
            )),
            Action::DnsTtl { record, ttl } => {
                dns::set_ttl(self, step, record, *ttl, transcript).await
            }
            Action::DnsRecord { record, addresses } => {
                dns::set_addresses(self, step, record, addresses, transcript, cancel).await
            }
            Action::WaitTtl { record } => {
                dns::wait_ttl(self, step, record, transcript, cancel).await
            }
        }
    }

    /// After the action: the check, then `settle`.
    async fn after_action(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        mut cancel: Cancel<'_>,
    ) -> Event {
        let id = step.id.clone();
        if step.check.is_some() {
            match self.run_check(step, transcript, cancel.as_mut()).await {
                Ok(true) => {}
                // The action ran: its effect may well be in place, so the
                // machine counts it completed and a rollback undoes it.
                Ok(false)
                    if matches!(
                        step.action,
                        Action::Verify | Action::Wait(_) | Action::WaitUntil(_)
                    ) =>
                {
                    return Event::StepFailed {
                        step: id,
                        reason: "its check failed".into(),
                    }
                }
                Ok(false) => {
                    return Event::CheckFailed {
                        step: id,
                        reason: "its check failed after the action".into(),
                    }
                }
                Err(failure) => return failure.into_event(&id),
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
    pub async fn check(
        &self,
        id: &str,
        cancel: impl Future<Output = ()> + Send,
    ) -> (Result<bool, CheckError>, Transcript) {
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(message) => {
                let kind = CheckErrorKind::Failed;
                return (Err(CheckError { message, kind }), transcript);
            }
        };
        let mut cancel: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(cancel);
        if let Err(failure) = self
            .settle_leftover(step, &mut transcript, cancel.as_mut())
            .await
        {
            return (Err(CheckError::from(failure)), transcript);
        }
        let result = match &step.action {
            // Checked by its dry run first, with or without a check.
            Action::Rsync { .. } => copy::done(self, step, &mut transcript, cancel.as_mut()).await,
            // Any other step with a check of its own is settled by it.
            _ if step.check.is_some() => {
                self.run_check(step, &mut transcript, cancel.as_mut()).await
            }
            Action::Service {
                host,
                unit,
                state,
                control,
            } => {
                service::done(
                    self,
                    step,
                    host,
                    unit,
                    *state,
                    control,
                    &mut transcript,
                    cancel.as_mut(),
                )
                .await
            }
            Action::DnsTtl { record, ttl } => dns::ttl_done(self, record, *ttl).await,
            Action::DnsRecord { record, addresses } => {
                dns::addresses_done(self, record, addresses).await
            }
            // A wait leaves nothing behind: it is done once its time has
            // passed since it began; otherwise it goes on from there.
            Action::Wait(duration) => Ok(self.wait_left(&step.id, *duration).is_zero()),
            Action::WaitTtl { record } => Ok(self.ttl_expired(record)),
            Action::WaitUntil(p) => {
                poll::holds_now(self, step, p, &mut transcript, cancel.as_mut()).await
            }
            Action::Shell { .. } | Action::Manual { .. } | Action::Verify => {
                let message = format!("step `{id}` has no check to tell whether it took effect");
                let kind = CheckErrorKind::NoCheck;
                return (Err(CheckError { message, kind }), transcript);
            }
        };
        (result.map_err(CheckError::from), transcript)
    }

    /// Undoes a completed step, using what it captured before its change.
    pub async fn revert(
        &self,
        id: &str,
        captured: Option<&str>,
        cancel: impl Future<Output = ()> + Send,
    ) -> (Event, Transcript) {
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(reason) => {
                return (
                    Event::RevertFailed {
                        step: id.to_owned(),
                        reason,
                    },
                    transcript,
                )
            }
        };
        let mut cancel: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(cancel);
        let result = self
            .undo(step, captured, &mut transcript, cancel.as_mut())
            .await;
        let event = match result {
            Ok(()) => Event::RevertSucceeded {
                step: step.id.clone(),
            },
            Err(failure) => Event::RevertFailed {
                step: step.id.clone(),
                reason: failure.message(),
            },
        };
        (event, transcript)
    }

    async fn undo(
        &self,
        step: &Step,
        captured: Option<&str>,
        transcript: &mut Transcript,
        cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        match &step.action {
            Action::Shell { host, revert, .. } => {
                shell::undo(self, step, host, revert, transcript, cancel).await
            }
            Action::Service {
                host,
                unit,
                control,
                ..
            } => {
                service::undo(
                    self, step, host, unit, control, captured, transcript, cancel,
                )
                .await
            }
            Action::DnsTtl { record, .. } | Action::DnsRecord { record, .. } => {
                dns::restore(self, step, record, captured, transcript).await
            }
            // Nothing to undo.
            Action::Wait(_) | Action::WaitUntil(_) | Action::Verify | Action::Rsync { .. } => {
                Ok(())
            }
            Action::Manual { .. } | Action::WaitTtl { .. } => Err(Failure::not_revertible()),
        }
    }
}

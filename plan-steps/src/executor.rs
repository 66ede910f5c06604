//! Performs the effects of the run machine: each step kind on its hosts.
//!
//! Each function turns a step of the plan into commands on its host (the
//! built-in `local`, or a host reached over SSH) and answers with the
//! [`Event`] the machine expects. Preflight reaches every host before
//! anything changes and refuses what this version cannot do, naming each
//! step. Prior state (a service's, a record's) is captured and journaled
//! through the [`Reporter`] before the change it protects.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use plan_core::machine::{Event, Schedule};
use plan_core::{Action, Check, Plan, Revert, ServiceState, Step};
use tokio::sync::{mpsc, oneshot, RwLock};

use crate::dns::{capture_to_string, parse_capture, DnsClient, DnsError, RRset};
use crate::local::{self, ExitKind, ProcessGroup, ShellCommand, ShellOutcome};
use crate::ssh::{
    connect_all, HostKeyPolicy, KnownHosts, RemoteGroup, Session, SshConfig, SshEnv, SshTarget,
};
use crate::{checks, rsync, service};

/// How long a check may take when the step has no deadline.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(60);

/// What a step printed, for the journal and the live view.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    /// Combined output of the commands run, each introduced by `$ command`.
    pub text: String,
}

impl Transcript {
    fn add(&mut self, host: &str, command: &str, outcome: &ShellOutcome) {
        self.text
            .push_str(&format!("[{host}] $ {command}\n{}", outcome.output));
        if !outcome.output.is_empty() && !outcome.output.ends_with('\n') {
            self.text.push('\n');
        }
        if outcome.dropped_bytes > 0 {
            self.text.push_str(&format!(
                "[{} bytes of output left out]\n",
                outcome.dropped_bytes
            ));
        }
    }

    fn note(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
    }
}

/// What a step tells the driver while it runs, for the journal.
#[derive(Debug)]
pub enum Report {
    /// A command's process group began (here or on an SSH host).
    Spawned {
        /// Step id.
        step: String,
        /// Where it runs.
        group: Leftover,
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
            .send(Report::Captured {
                step: step.to_owned(),
                state,
                ack,
            })
            .map_err(|_| "the journal is gone: not changing anything".to_owned())?;
        done.await.map_err(|_| {
            "the captured state could not be journaled: not changing anything".to_owned()
        })
    }

    fn send(&self, report: Report) {
        let _ = self.0.send(report);
    }
}

/// A process group a step's command runs in, which may outlive a crash of
/// the driver or a lost connection; an in-doubt check waits for it first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// `local`, or the SSH host.
    pub host: String,
    /// Process group id (on that host).
    pub pgid: i32,
    /// The leader's start time, from `/proc`: tells a reused pid apart.
    /// `None` on an SSH host until the command has run for
    /// [`START_TIME_AFTER`], or where the host has no `/proc`.
    pub start_time: Option<u64>,
}

/// How long an SSH command runs before its leader's start time is asked for
/// (see [`Leftover::start_time`]).
pub const START_TIME_AFTER: Duration = Duration::from_millis(500);

/// How long an in-doubt check waits at most for a leftover command when the
/// step has no deadline. It is then left running: no deadline says it may
/// be stopped.
pub const LEFTOVER_WAIT: Duration = Duration::from_secs(15 * 60);

/// A command could not be run to an outcome.
#[derive(Clone, Debug)]
struct ExecError {
    /// The connection went away: whether it ran is unknown.
    lost: bool,
    message: String,
}

/// How commands reach one host.
#[derive(Clone, Debug)]
enum Conn {
    /// This machine, through local processes.
    Local,
    /// A host over SSH: one session, a channel per command.
    Ssh(Session),
}

/// How hosts are reached over SSH.
#[derive(Clone, Debug, Default)]
pub struct SshOptions {
    /// The known_hosts file (`--known-hosts`); else the plan's, else the user's.
    pub known_hosts: Option<PathBuf>,
    /// Trust a host's key on first use and add it to the file (`--accept-new`);
    /// a changed key is refused all the same.
    pub accept_new: bool,
}

/// How long connecting and logging in to one host may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

type Cancel<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

/// Runs steps of one plan on their hosts.
#[derive(Clone, Debug)]
pub struct Executor {
    plan: Arc<Plan>,
    reporter: Option<Reporter>,
    ssh: SshOptions,
    conns: Arc<RwLock<HashMap<String, Conn>>>,
    dns: Arc<tokio::sync::OnceCell<DnsClient>>,
    /// Process groups of commands still running, or left by a crash, by step.
    groups: Arc<std::sync::Mutex<HashMap<String, Leftover>>>,
    /// When each record's TTL was last changed by this run, and from what.
    ttl_changes: Arc<std::sync::Mutex<HashMap<String, (SystemTime, u32)>>>,
}

impl Executor {
    /// An executor for `plan`; hosts are reached at [`Executor::preflight`].
    pub fn new(plan: Arc<Plan>) -> Executor {
        Executor {
            plan,
            reporter: None,
            ssh: SshOptions::default(),
            conns: Arc::default(),
            groups: Arc::default(),
            dns: Arc::default(),
            ttl_changes: Arc::default(),
        }
    }

    /// Process groups a crashed run left behind, by step (from its journal).
    pub fn with_leftovers(
        self,
        leftovers: impl IntoIterator<Item = (String, Leftover)>,
    ) -> Executor {
        if let Ok(mut groups) = self.groups.lock() {
            groups.extend(leftovers);
        }
        self
    }

    fn started(&self, step: &str, group: Leftover) {
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

    fn finished(&self, step: &str) {
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
    async fn settle_leftover(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        mut cancel: Cancel<'_>,
    ) {
        let Some(group) = self.groups.lock().ok().and_then(|mut g| g.remove(&step.id)) else {
            return;
        };
        if group.host == plan_core::Host::LOCAL {
            let leftover = ProcessGroup {
                pgid: group.pgid,
                start_time: group.start_time,
            };
            // Stopped at the deadline; without one nothing says it may be
            // stopped: waited for, at most LEFTOVER_WAIT, as on an SSH host.
            let wait = local::wait_leftover(leftover, step.deadline);
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
                    &group.host,
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
                            group.host,
                            group.pgid,
                            limit.as_secs()
                        ));
                        return;
                    };
                    let killed = self
                        .exec(
                            &step.id,
                            &group.host,
                            &ShellCommand::new(&kill).with_deadline(CHECK_DEADLINE),
                            cancel.as_mut(),
                            &mut Transcript::default(),
                        )
                        .await;
                    transcript.note(&format!(
                        "[{}] process group {} left by the stopped attempt ran past the step's deadline ({}s): {}",
                        group.host,
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
                            group.host,
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

    /// Reaches SSH hosts with these options.
    pub fn with_ssh(mut self, ssh: SshOptions) -> Executor {
        self.ssh = ssh;
        self
    }

    /// The known_hosts file and policy in force.
    fn known_hosts(&self, env: &SshEnv) -> KnownHosts {
        let policy = if self.ssh.accept_new {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        };
        match self
            .ssh
            .known_hosts
            .as_ref()
            .or(self.plan.known_hosts.as_ref())
        {
            Some(path) => KnownHosts::new(env.expand_tilde(path), policy),
            None => KnownHosts::user(env, policy),
        }
    }

    /// Where and as whom to reach `host`, completed from `~/.ssh/config`.
    fn target(&self, host: &str, env: &SshEnv) -> Result<SshTarget, ExecError> {
        let plan_host = self.plan.host(host).ok_or_else(|| ExecError {
            lost: false,
            message: format!("the plan has no host `{host}`"),
        })?;
        let config = SshConfig::load(env).map_err(|e| ExecError {
            lost: false,
            message: e.to_string(),
        })?;
        Ok(SshTarget::resolve(plan_host, &config, env))
    }

    /// Reports process groups, captures and transfers to the driver.
    pub fn reporting(mut self, reporter: Reporter) -> Executor {
        self.reporter = Some(reporter);
        self
    }

    fn step(&self, id: &str) -> Result<&Step, String> {
        self.plan
            .step(id)
            .ok_or_else(|| format!("the plan has no step `{id}`"))
    }

    /// Reaches every host of the run and refuses, before anything changes,
    /// what this version cannot carry out.
    pub async fn preflight(&self, schedule: &Schedule) -> Result<(), String> {
        // Hosts of actions and of checks, reached all at once.
        let mut hosts = schedule.hosts();
        for scheduled in &schedule.steps {
            if let Some(Check::Run { host, .. }) = &self.step(&scheduled.id)?.check {
                if !hosts.contains(host) {
                    hosts.push(host.clone());
                }
            }
        }
        let env = SshEnv::from_process();
        let (remote, local): (Vec<String>, Vec<String>) =
            hosts.into_iter().partition(|h| h != plan_core::Host::LOCAL);
        for host in local {
            self.conn(&host).await.map_err(|e| e.message)?;
        }
        let targets = remote
            .iter()
            .map(|h| self.target(h, &env))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.message)?;
        let sessions = connect_all(&targets, &self.known_hosts(&env), CONNECT_TIMEOUT).await;
        let mut problems = Vec::new();
        let mut conns = self.conns.write().await;
        for (host, session) in remote.into_iter().zip(sessions) {
            match session {
                Ok(session) => {
                    conns.insert(host, Conn::Ssh(session));
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        drop(conns);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        // Every record the run changes or checks must be readable now.
        let mut records: Vec<&str> = Vec::new();
        for scheduled in &schedule.steps {
            let step = self.step(&scheduled.id)?;
            if let Action::DnsTtl { record, .. }
            | Action::DnsRecord { record, .. }
            | Action::WaitTtl { record } = &step.action
            {
                records.push(record);
            }
            if let Some(Check::Resolves { record, .. }) = &step.check {
                records.push(record);
            }
        }
        records.sort_unstable();
        records.dedup();
        for record in records {
            let dns = self.dns().await.map_err(Failure::message)?;
            dns.query(record)
                .await
                .map_err(|e| Failure::from_dns(&e).message())?;
        }
        Ok(())
    }

    /// The connection to `host`, made on first use: at preflight, or on
    /// resume (which skips preflight), or after a connection was lost.
    async fn conn(&self, host: &str) -> Result<Conn, ExecError> {
        if let Some(conn) = self.conns.read().await.get(host) {
            return Ok(conn.clone());
        }
        let conn = if host == plan_core::Host::LOCAL {
            Conn::Local
        } else {
            let env = SshEnv::from_process();
            let target = self.target(host, &env)?;
            let session = Session::connect(&target, &self.known_hosts(&env), CONNECT_TIMEOUT)
                .await
                .map_err(|e| ExecError {
                    lost: false,
                    message: e.to_string(),
                })?;
            Conn::Ssh(session)
        };
        self.conns
            .write()
            .await
            .insert(host.to_owned(), conn.clone());
        Ok(conn)
    }

    /// The DNS client, made on first use from the plan's `dns` section (the
    /// TSIG key is read then, never logged).
    async fn dns(&self) -> Result<&DnsClient, Failure> {
        let dns = self
            .plan
            .dns
            .as_ref()
            .ok_or_else(|| Failure::Failed("the plan has no `dns` section".into()))?;
        self.dns
            .get_or_try_init(|| async { DnsClient::from_plan(dns) })
            .await
            .map_err(|e| Failure::from_dns(&e))
    }

    /// Runs `command` on an SSH host and tells where it runs (see
    /// [`Leftover`]): its process group once it starts, and, should it run
    /// longer than [`START_TIME_AFTER`], its leader's start time, which a
    /// resume needs to tell the group from a later process with the same pid.
    /// Only a longer command is asked about: asking costs a channel, and a
    /// shorter one a crash leaves behind ends soon anyway.
    async fn exec_ssh(
        &self,
        session: &Session,
        step: &str,
        host: &str,
        command: &ShellCommand,
        cancel: Cancel<'_>,
    ) -> Result<ShellOutcome, crate::ssh::SshError> {
        let group = std::sync::OnceLock::new();
        let leftover = |pgid, start_time| Leftover {
            host: host.to_owned(),
            pgid,
            start_time,
        };
        let run = session.exec_reporting(command, cancel, |g: RemoteGroup| {
            let _ = group.set(g.pgid);
            self.started(step, leftover(g.pgid, None));
        });
        let learn = async {
            tokio::time::sleep(START_TIME_AFTER).await;
            // While the command runs its group keeps the pid from reuse: the
            // leader found now is the one that started it.
            if let Some(&pgid) = group.get() {
                if let Ok(Some(start)) = session.start_time(pgid).await {
                    self.started(step, leftover(pgid, Some(start)));
                }
            }
            // Never ends: the command's outcome is the answer.
            std::future::pending().await
        };
        tokio::select! {
            biased;
            outcome = run => outcome,
            outcome = learn => outcome,
        }
    }

    /// Runs `command` on `host`; `step` names whose command it is.
    async fn exec(
        &self,
        step: &str,
        host: &str,
        command: &ShellCommand,
        cancel: Cancel<'_>,
        transcript: &mut Transcript,
    ) -> Result<ShellOutcome, ExecError> {
        let outcome = match self.conn(host).await? {
            Conn::Local => {
                let outcome = local::run_reporting(command, cancel, |group| {
                    self.started(
                        step,
                        Leftover {
                            host: host.to_owned(),
                            pgid: group.pgid,
                            start_time: group.start_time,
                        },
                    )
                })
                .await
                .map_err(|e| ExecError {
                    lost: false,
                    message: e.to_string(),
                })?;
                self.finished(step);
                outcome
            }
            Conn::Ssh(session) => {
                match self.exec_ssh(&session, step, host, command, cancel).await {
                    Ok(outcome) => {
                        self.finished(step);
                        outcome
                    }
                    Err(e) => {
                        let lost = e.is_in_doubt();
                        if lost {
                            // The next command to this host connects afresh.
                            self.conns.write().await.remove(host);
                        }
                        transcript.note(&format!("[{host}] $ {}\n{e}", command.command));
                        return Err(ExecError {
                            lost,
                            message: e.to_string(),
                        });
                    }
                }
            }
        };
        transcript.add(host, &command.command, &outcome);
        Ok(outcome)
    }

    fn command(&self, command: &str, deadline: Option<Duration>) -> ShellCommand {
        let shell = ShellCommand::new(command);
        match deadline {
            Some(deadline) => shell.with_deadline(deadline),
            None => shell,
        }
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
        mut cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        match &step.action {
            Action::Shell { host, run, .. } => {
                let command = self.command(run, step.deadline);
                let outcome = self
                    .exec(&step.id, host, &command, cancel, transcript)
                    .await?;
                Failure::from_exit(&outcome)
            }
            Action::Service {
                host,
                unit,
                state,
                control,
            } => {
                let commands = service::commands(unit, control);
                let status = self.command(&commands.status, Some(CHECK_DEADLINE));
                let before = self
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
                self.capture(&step.id, service::capture_text(running).to_owned())
                    .await?;
                if running == (*state == ServiceState::Running) {
                    transcript.note(&format!(
                        "{unit} is already {}",
                        service::capture_text(running)
                    ));
                } else {
                    let change = self.command(commands.to(*state), step.deadline);
                    let outcome = self
                        .exec(&step.id, host, &change, cancel.as_mut(), transcript)
                        .await?;
                    Failure::from_exit(&outcome)?;
                }
                self.service_is(step, host, &commands, *state, transcript, cancel)
                    .await
            }
            Action::Rsync {
                from,
                to,
                path,
                dest,
                delete,
                args,
            } => {
                let to_host = self
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
                let command = self.command(&copy.command(false), step.deadline);
                let outcome = self
                    .exec(&step.id, from, &command, cancel, transcript)
                    .await?;
                if let (Some(stats), Some(reporter)) =
                    (rsync::parse_stats(&outcome.output), &self.reporter)
                {
                    reporter.send(Report::Transferred {
                        step: step.id.clone(),
                        files: stats.files_transferred,
                        bytes: stats.bytes_transferred,
                        millis: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
                    });
                }
                Failure::from_exit(&outcome)
            }
            Action::Wait(duration) => {
                tokio::select! {
                    () = tokio::time::sleep(*duration) => Ok(()),
                    () = cancel => Err(Failure::InDoubt("cancelled while waiting".into())),
                }
            }
            Action::Verify => Ok(()),
            Action::Manual { .. } => Err(Failure::Failed(
                "manual steps are confirmed by the operator".into(),
            )),
            Action::DnsTtl { record, ttl } => {
                let dns = self.dns().await?;
                let before = dns.query(record).await.map_err(|e| Failure::from_dns(&e))?;
                self.capture(&step.id, capture_to_string(&before)).await?;
                let seconds = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
                let served = dns
                    .set_ttl(record, seconds)
                    .await
                    .map_err(|e| Failure::from_dns(&e))?;
                transcript.note(&format!("[dns] {record}: {before} -> {served}"));
                if let (Some(previous), Ok(mut changes)) =
                    (before.longest_ttl(), self.ttl_changes.lock())
                {
                    changes.insert(record.clone(), (SystemTime::now(), previous));
                }
                Ok(())
            }
            Action::DnsRecord { record, addresses } => {
                let dns = self.dns().await?;
                let before = dns.query(record).await.map_err(|e| Failure::from_dns(&e))?;
                self.capture(&step.id, capture_to_string(&before)).await?;
                let ttl = before.ttl.unwrap_or_else(|| {
                    self.plan
                        .record(record)
                        .map_or(300, |r| u32::try_from(r.ttl.as_secs()).unwrap_or(u32::MAX))
                });
                let served = dns
                    .set_addresses(record, addresses, ttl)
                    .await
                    .map_err(|e| Failure::from_dns(&e))?;
                transcript.note(&format!("[dns] {record}: {before} -> {served}"));
                Ok(())
            }
            Action::WaitTtl { record } => {
                let dns = self.dns().await?;
                let change = self
                    .ttl_changes
                    .lock()
                    .ok()
                    .and_then(|c| c.get(record).copied());
                // Without a change seen by this run (an earlier phase, or a
                // resume), wait the whole previous TTL from now: never less.
                let (changed_at, previous) = change.unwrap_or_else(|| {
                    (
                        SystemTime::now(),
                        previous_ttl(&self.plan, &step.id, record),
                    )
                });
                let waited = dns
                    .wait_ttl(record, previous, changed_at, None, cancel, |_| {})
                    .await
                    .map_err(|e| Failure::from_dns(&e))?;
                transcript.note(&format!(
                    "[dns] waited {}s for caches of {record} to expire",
                    waited.waited.as_secs()
                ));
                Ok(())
            }
        }
    }

    async fn capture(&self, step: &str, state: String) -> Result<(), Failure> {
        match &self.reporter {
            Some(reporter) => reporter
                .captured(step, state)
                .await
                .map_err(Failure::Failed),
            // Without a journal (e.g. in tests) there is nowhere to keep it.
            None => Ok(()),
        }
    }

    /// Confirms a service reached `state`.
    async fn service_is(
        &self,
        step: &Step,
        host: &str,
        commands: &service::Commands,
        state: ServiceState,
        transcript: &mut Transcript,
        cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        let status = self.command(&commands.status, Some(CHECK_DEADLINE));
        let after = self
            .exec(&step.id, host, &status, cancel, transcript)
            .await?;
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
                Ok(false) if matches!(step.action, Action::Verify | Action::Wait(_)) => {
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
    ) -> (Result<bool, String>, Transcript) {
        let mut transcript = Transcript::default();
        let step = match self.step(id) {
            Ok(step) => step,
            Err(reason) => return (Err(reason), transcript),
        };
        let mut cancel: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(cancel);
        self.settle_leftover(step, &mut transcript, cancel.as_mut())
            .await;
        let result = match (&step.action, &step.check) {
            // A copy is done only when nothing is left to copy, whatever else
            // its own check looks at (a partial copy passes most checks).
            (Action::Rsync { .. }, Some(_)) => match self
                .rsync_done(step, &mut transcript, cancel.as_mut())
                .await
            {
                Ok(true) => self.run_check(step, &mut transcript, cancel.as_mut()).await,
                other => other,
            },
            (_, Some(_)) => self.run_check(step, &mut transcript, cancel.as_mut()).await,
            (
                Action::Service {
                    host,
                    unit,
                    state,
                    control,
                },
                None,
            ) => {
                let commands = service::commands(unit, control);
                Ok(self
                    .service_is(
                        step,
                        host,
                        &commands,
                        *state,
                        &mut transcript,
                        cancel.as_mut(),
                    )
                    .await
                    .is_ok())
            }
            (Action::Rsync { .. }, None) => {
                self.rsync_done(step, &mut transcript, cancel.as_mut())
                    .await
            }
            (Action::DnsTtl { record, ttl }, None) => match self.dns().await {
                Ok(dns) => dns
                    .query(record)
                    .await
                    .map(|served| served.longest_ttl() == u32::try_from(ttl.as_secs()).ok())
                    .map_err(|e| Failure::from_dns(&e)),
                Err(e) => Err(e),
            },
            (Action::DnsRecord { record, addresses }, None) => match self.dns().await {
                Ok(dns) => dns
                    .query(record)
                    .await
                    .map(|served| {
                        RRset::new(0, addresses.iter().copied()).addresses == served.addresses
                    })
                    .map_err(|e| Failure::from_dns(&e)),
                Err(e) => Err(e),
            },
            // A wait leaves nothing behind: running it again is what is needed.
            (Action::Wait(_) | Action::WaitTtl { .. }, None) => Ok(false),
            _ => Err(Failure::Failed(format!(
                "step `{id}` has no check to tell whether it took effect"
            ))),
        };
        (result.map_err(|f| f.message()), transcript)
    }

    /// Whether a copy is complete: a dry run finds nothing left to copy.
    async fn rsync_done(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        cancel: Cancel<'_>,
    ) -> Result<bool, Failure> {
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
        let to_host = self
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
        let command = self.command(&copy.command(true), step.deadline.or(Some(CHECK_DEADLINE)));
        let outcome = self
            .exec(&step.id, from, &command, cancel, transcript)
            .await?;
        Ok(
            match (outcome.status, rsync::parse_stats(&outcome.output)) {
                (ExitKind::Exited(0), Some(stats)) => stats.files_transferred == 0,
                _ => false,
            },
        )
    }

    async fn run_check(
        &self,
        step: &Step,
        transcript: &mut Transcript,
        cancel: Cancel<'_>,
    ) -> Result<bool, Failure> {
        match &step.check {
            Some(Check::Run { host, command }) => {
                let shell = self.command(command, Some(step.deadline.unwrap_or(CHECK_DEADLINE)));
                let outcome = self
                    .exec(&step.id, host, &shell, cancel, transcript)
                    .await?;
                match outcome.status {
                    ExitKind::Exited(0) => Ok(true),
                    ExitKind::Exited(_) => Ok(false),
                    status => Err(Failure::Failed(format!(
                        "its check did not finish: {status}"
                    ))),
                }
            }
            Some(Check::Tcp { host, port }) => {
                let address = self.address_of(host);
                let open = checks::tcp_open(&address, *port, CHECK_DEADLINE)
                    .await
                    .map_err(Failure::Failed)?;
                transcript.note(&format!(
                    "[check] {address}:{port} {}",
                    if open {
                        "accepts connections"
                    } else {
                        "refuses"
                    }
                ));
                Ok(open)
            }
            Some(Check::Http { url, status }) => {
                let answer = checks::http_status(url, CHECK_DEADLINE)
                    .await
                    .map_err(Failure::Failed)?;
                transcript.note(&format!("[check] GET {url}: {answer} (expected {status})"));
                Ok(answer == *status)
            }
            Some(Check::Resolves { record, to }) => {
                let dns = self.dns().await?;
                let resolves = dns
                    .resolves(record, *to)
                    .await
                    .map_err(|e| Failure::from_dns(&e))?;
                transcript.note(&format!(
                    "[check] {record} {} {to}",
                    if resolves {
                        "resolves to"
                    } else {
                        "does not resolve to"
                    }
                ));
                Ok(resolves)
            }
            None => Ok(true),
        }
    }

    /// The address a host is reached at from this machine.
    fn address_of(&self, host: &str) -> String {
        match self.plan.host(host) {
            Some(h) if !h.is_local() => h.address.clone(),
            _ => "127.0.0.1".to_owned(),
        }
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
        mut cancel: Cancel<'_>,
    ) -> Result<(), Failure> {
        match &step.action {
            Action::Shell {
                host,
                revert: Revert::Run(command),
                ..
            } => {
                let shell = self.command(command, step.deadline);
                let outcome = self
                    .exec(&step.id, host, &shell, cancel, transcript)
                    .await?;
                Failure::from_exit(&outcome)
            }
            Action::Service {
                host,
                unit,
                control,
                ..
            } => {
                let before = captured.and_then(service::parse_capture).ok_or_else(|| {
                    Failure::Failed(format!("no captured state of {unit} to restore"))
                })?;
                let commands = service::commands(unit, control);
                let change = self.command(commands.to(before), step.deadline);
                let outcome = self
                    .exec(&step.id, host, &change, cancel.as_mut(), transcript)
                    .await?;
                Failure::from_exit(&outcome)?;
                self.service_is(step, host, &commands, before, transcript, cancel)
                    .await
            }
            Action::DnsTtl { record, .. } | Action::DnsRecord { record, .. } => {
                let before = captured
                    .ok_or_else(|| {
                        Failure::Failed(format!("no captured records of {record} to restore"))
                    })
                    .and_then(|text| {
                        parse_capture(text).map_err(|e| Failure::Failed(e.to_string()))
                    })?;
                let dns = self.dns().await?;
                let served = dns
                    .restore(record, &before)
                    .await
                    .map_err(|e| Failure::from_dns(&e))?;
                transcript.note(&format!("[dns] {record} restored: {served}"));
                Ok(())
            }
            Action::Shell {
                revert: Revert::Irreversible(reason),
                ..
            } => Err(Failure::Failed(format!("it is irreversible: {reason}"))),
            Action::Shell {
                revert: Revert::Nothing(_),
                ..
            }
            | Action::Wait(_)
            | Action::Verify
            | Action::Rsync { .. } => Ok(()),
            _ => Err(Failure::Failed(
                "its revert needs the operator or is not supported on this host".into(),
            )),
        }
    }
}

/// Why an action did not succeed.
#[derive(Debug)]
enum Failure {
    /// It failed.
    Failed(String),
    /// It ran past its deadline.
    Deadline,
    /// Whether it took effect is unknown.
    InDoubt(String),
}

impl Failure {
    fn from_exit(outcome: &ShellOutcome) -> Result<(), Failure> {
        match outcome.status {
            ExitKind::Exited(0) => Ok(()),
            ExitKind::TimedOut => Err(Failure::Deadline),
            ExitKind::Cancelled => Err(Failure::InDoubt("cancelled while running".into())),
            status => {
                let last = outcome
                    .output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                Err(Failure::Failed(if last.is_empty() {
                    format!("{status}")
                } else {
                    format!("{status}: {last}")
                }))
            }
        }
    }

    fn into_event(self, step: &str) -> Event {
        let step = step.to_owned();
        match self {
            Failure::Failed(reason) => Event::StepFailed { step, reason },
            Failure::Deadline => Event::DeadlineExceeded { step },
            Failure::InDoubt(reason) => Event::StepInDoubt { step, reason },
        }
    }

    fn message(self) -> String {
        match self {
            Failure::Failed(reason) | Failure::InDoubt(reason) => reason,
            Failure::Deadline => "it ran past its deadline".into(),
        }
    }
}

impl Failure {
    fn from_dns(error: &DnsError) -> Failure {
        if error.is_authentication() {
            Failure::Failed(format!(
                "DNS authentication failed (check the TSIG key): {error}"
            ))
        } else {
            Failure::Failed(error.to_string())
        }
    }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Failure {
        if e.lost {
            Failure::InDoubt(e.message)
        } else {
            Failure::Failed(e.message)
        }
    }
}

/// The TTL caches may hold a record with before `step` (a `WaitTtl`): the
/// TTL set by the last `DnsTtl` on it before the one preceding `step`, or the
/// record's declared TTL.
fn previous_ttl(plan: &Plan, step: &str, record: &str) -> u32 {
    let mut in_force = plan.record(record).map(|r| r.ttl);
    let mut before_last_change = in_force;
    for s in plan.steps() {
        if s.id == step {
            break;
        }
        if let Action::DnsTtl { record: r, ttl } = &s.action {
            if r == record {
                before_last_change = in_force;
                in_force = Some(*ttl);
            }
        }
    }
    before_last_change.map_or(0, |ttl| u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX))
}

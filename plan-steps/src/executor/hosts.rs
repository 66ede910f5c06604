//! Reaching hosts: connections, SSH targets and known_hosts, preflight, and a command on a host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plan_core::machine::Schedule;
use plan_core::{Action, Check, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript, START_TIME_AFTER};
use crate::command::{ShellCommand, ShellOutcome};
use crate::dns::DnsClient;
use crate::local;
use crate::ssh::{
    connect_all_bounded, HostKey, HostKeyPolicy, KnownHosts, Session, SshConfig, SshEnv, SshError,
    SshErrorKind, SshTarget,
};
use plan_core::machine::ProcessGroup;

/// A command could not be run to an outcome.
#[derive(Clone, Debug)]
pub(super) struct ExecError {
    /// The connection went away: whether it ran is unknown.
    pub(super) lost: bool,
    pub(super) message: String,
}

/// How commands reach one host.
#[derive(Clone, Debug)]
pub(super) enum Conn {
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
    /// At most this many sessions are opened at once, at preflight and
    /// later (a resume, a reconnect): `--connect-parallel`; 0 means
    /// [`CONNECT_PARALLEL`].
    pub connect_parallel: u16,
}

/// How many sessions preflight opens at once by default: sshd's default
/// `MaxStartups` begins refusing unauthenticated connections beyond 10, and
/// several of a fleet's hosts may be one server.
pub const CONNECT_PARALLEL: u16 = 10;

/// How long connecting and logging in to one host may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl Executor {
    /// The known_hosts file and policy in force.
    pub(super) fn known_hosts(&self, env: &SshEnv) -> KnownHosts {
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
    pub(super) fn target(&self, host: &str, env: &SshEnv) -> Result<SshTarget, ExecError> {
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

    /// Reaches every host of the run and refuses, before anything changes,
    /// what this version cannot carry out.
    pub async fn preflight(&self, schedule: &Schedule) -> Result<(), PreflightError> {
        let mut problems = Vec::new();
        self.reach_all(schedule, &mut problems)
            .await
            .map_err(|message| PreflightError { message, problems })
    }

    /// Preflight's work; `problems` gets the kind of each host's refusal.
    async fn reach_all(
        &self,
        schedule: &Schedule,
        kinds: &mut Vec<PreflightProblem>,
    ) -> Result<(), String> {
        // Hosts of actions and of checks, reached all at once.
        let mut hosts = schedule.hosts();
        for scheduled in &schedule.steps {
            let check_host = match &self.step(&scheduled.id)?.check {
                Some(Check::Run { host, .. }) => Some(host),
                Some(Check::Until(poll)) => Some(&poll.host),
                _ => None,
            };
            if let Some(host) = check_host {
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
        let mut problems = Vec::new();
        for opened in self.open_sessions(&targets, &env).await {
            if let Err(e) = opened {
                kinds.push(match e.kind() {
                    SshErrorKind::HostKeyUnknown => PreflightProblem::HostKeyUnknown {
                        host: e.host().to_owned(),
                    },
                    SshErrorKind::HostKeyChanged => PreflightProblem::HostKeyChanged {
                        host: e.host().to_owned(),
                    },
                    _ => PreflightProblem::Other,
                });
                problems.push(e.to_string())
            }
        }
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
                .map_err(|e| Failure::from(e).message())?;
        }
        Ok(())
    }

    /// Opens a session to each of `targets` at once (as many at a time as
    /// `--connect-parallel` allows) and keeps those opened as their hosts'
    /// connections; in the order of `targets`, each host's key or why it
    /// could not be reached.
    pub(super) async fn open_sessions(
        &self,
        targets: &[SshTarget],
        env: &SshEnv,
    ) -> Vec<Result<HostKey, SshError>> {
        let sessions = connect_all_bounded(
            targets,
            &self.known_hosts(env),
            CONNECT_TIMEOUT,
            Arc::clone(&self.connecting),
        )
        .await;
        let mut conns = self.conns.write().await;
        targets
            .iter()
            .zip(sessions)
            .map(|(target, session)| {
                let session = session?;
                let key = session.host_key().clone();
                let made = tokio::sync::OnceCell::new_with(Some(Conn::Ssh(session)));
                conns.insert(target.name.clone(), Arc::new(made));
                Ok(key)
            })
            .collect()
    }

    /// The connection to `host`, made on first use: at preflight, or on
    /// resume (which skips preflight), or after a connection was lost.
    /// Steps on a host without one wait for the same connection, and no more
    /// connections are opened at once than preflight opens.
    async fn conn(&self, host: &str) -> Result<Conn, ExecError> {
        let cell = {
            let known = self.conns.read().await.get(host).cloned();
            match known {
                Some(cell) => cell,
                None => Arc::clone(self.conns.write().await.entry(host.to_owned()).or_default()),
            }
        };
        cell.get_or_try_init(|| async {
            if host == plan_core::Host::LOCAL {
                return Ok(Conn::Local);
            }
            let env = SshEnv::from_process();
            let target = self.target(host, &env)?;
            // (The semaphore is never closed: an error would only mean no limit.)
            let _permit = self.connecting.acquire().await.ok();
            Session::connect(&target, &self.known_hosts(&env), CONNECT_TIMEOUT)
                .await
                .map(Conn::Ssh)
                .map_err(|e| ExecError {
                    lost: false,
                    message: e.to_string(),
                })
        })
        .await
        .cloned()
    }

    /// The DNS client, made on first use from the plan's `dns` section (the
    /// TSIG key is read then, never logged).
    pub(super) async fn dns(&self) -> Result<&DnsClient, Failure> {
        let dns = self
            .plan
            .dns
            .as_ref()
            .ok_or_else(|| Failure::Failed("the plan has no `dns` section".into()))?;
        self.dns
            .get_or_try_init(|| async { DnsClient::from_plan(dns) })
            .await
            .map_err(Failure::from)
    }

    /// Runs `command` on an SSH host and tells where it runs (see
    /// [`ProcessGroup`]): its process group once it starts, and, should it run
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
        let leftover = |pgid, start_time| ProcessGroup {
            host: Some(host.to_owned()),
            pgid,
            start_time,
        };
        let run = session.exec_reporting(command, cancel, |pgid: i32| {
            let _ = group.set(pgid);
            self.started(step, leftover(pgid, None));
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
    pub(super) async fn exec(
        &self,
        step: &str,
        host: &str,
        command: &ShellCommand,
        cancel: Cancel<'_>,
        transcript: &mut Transcript,
    ) -> Result<ShellOutcome, ExecError> {
        let outcome = match self.conn(host).await? {
            Conn::Local => {
                let outcome =
                    local::run_reporting(command, cancel, |group| self.started(step, group))
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

    /// `command` of `step` as run on `host`: with the host's `env` and the
    /// step's over it, stopped after `deadline`, if any.
    pub(super) fn command(
        &self,
        step: &Step,
        host: &str,
        command: &str,
        deadline: Option<Duration>,
    ) -> ShellCommand {
        let shell = ShellCommand::new(command).with_env(self.plan.command_env(step, host));
        match deadline {
            Some(deadline) => shell.with_deadline(deadline),
            None => shell,
        }
    }
}

/// Why preflight refused a run, in words (for the journal) and by kind (so
/// a command line can say what to do about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightError {
    /// What went wrong, every host's problem.
    pub message: String,
    /// The kind of each host's refusal, where it has one.
    pub problems: Vec<PreflightProblem>,
}

/// One host's refusal at preflight, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreflightProblem {
    /// The host offered a key known_hosts does not hold (strict policy).
    HostKeyUnknown {
        /// The host as the plan names it.
        host: String,
    },
    /// The host offered a key other than the one on file.
    HostKeyChanged {
        /// The host as the plan names it.
        host: String,
    },
    /// Anything else; the message says what.
    Other,
}

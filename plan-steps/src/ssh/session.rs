//! A verified, authenticated SSH session to one host.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_ssh2_lite::ssh2::{DisconnectCode, MethodType};
use async_ssh2_lite::AsyncSession;

use super::auth::authenticate;
use super::config::SshTarget;
use super::error::{describe, SshError, SshErrorKind};
use super::exec::{self, Link};
use super::known_hosts::{algorithm_preference, HostKey, KnownHosts};
use super::socket::SessionSocket;
use crate::command::{ShellCommand, ShellOutcome};

/// A session to one host, over which commands run on channels of their
/// own. Cheap to clone; clones share the connection, and commands on one
/// session may run at the same time (OpenSSH allows 10 channels per
/// connection by default, `MaxSessions`; stopping a command takes one more).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    target: SshTarget,
    known_hosts: KnownHosts,
    timeout: Duration,
    host_key: HostKey,
    link: Link,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.inner.target.display())
            .field("host_key", &self.inner.host_key.fingerprint())
            .finish()
    }
}

impl Session {
    /// Connects to `target` (with `TCP_NODELAY`), checks its host key
    /// against `known_hosts` before sending anything secret, and logs in:
    /// the ssh-agent first if `target.use_agent`, then `target.identity`,
    /// then `target.fallback_identities`. All of it within `timeout`.
    pub async fn connect(
        target: &SshTarget,
        known_hosts: &KnownHosts,
        timeout: Duration,
    ) -> Result<Session, SshError> {
        match tokio::time::timeout(timeout, connect(target, known_hosts)).await {
            Ok(Ok((ssh, host_key))) => {
                tracing::debug!(host = %target.name, "connected to {}", target.display());
                Ok(Session {
                    inner: Arc::new(Inner {
                        target: target.clone(),
                        known_hosts: known_hosts.clone(),
                        timeout,
                        host_key,
                        link: Link::new(ssh),
                    }),
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SshError::new(
                SshErrorKind::Connect,
                &target.name,
                format!(
                    "cannot connect to {}: no session within {}",
                    target.display(),
                    humantime_short(timeout)
                ),
            )),
        }
    }

    /// A new session to the same host with the same settings, after this
    /// one's connection broke. Commands that were running stay in doubt: a
    /// new session knows nothing of them.
    pub async fn reconnect(&self) -> Result<Session, SshError> {
        let inner = &self.inner;
        Session::connect(&inner.target, &inner.known_hosts, inner.timeout).await
    }

    /// Where this session goes.
    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// The host key the server showed, as verified.
    pub fn host_key(&self) -> &HostKey {
        &self.inner.host_key
    }

    /// Runs `cmd` on the host (see the [`super`] module doc for what is sent).
    ///
    /// Returns like [`crate::local::run`]: when the command exits (its
    /// background processes are left alone, their output read for one more
    /// second), or after its deadline or once `cancel` completes, when its
    /// process group has been killed. Errors of kind
    /// [`SshErrorKind::ConnectionLost`] leave the command in doubt.
    ///
    /// Dropping the returned future once the command runs kills its process
    /// group with SIGKILL, from a task spawned on the current runtime.
    pub async fn exec(
        &self,
        cmd: &ShellCommand,
        cancel: impl Future<Output = ()>,
    ) -> Result<ShellOutcome, SshError> {
        self.exec_reporting(cmd, cancel, |_| {}).await
    }

    /// As [`Session::exec`], and tells `on_start` the command's process
    /// group as soon as the host reports it (a caller that crashes can then
    /// find it again after reconnecting).
    pub async fn exec_reporting(
        &self,
        cmd: &ShellCommand,
        cancel: impl Future<Output = ()>,
        on_start: impl FnOnce(i32),
    ) -> Result<ShellOutcome, SshError> {
        let host = self.inner.target.name.as_str();
        exec::run(&self.inner.link, host, cmd, cancel, on_start).await
    }

    /// The start time of process `pid` on the host (field 22 of its
    /// `/proc/PID/stat`), which tells it apart from a later process that gets
    /// the same pid; `None` when there is no such process, or no `/proc`.
    pub async fn start_time(&self, pid: i32) -> Result<Option<u64>, SshError> {
        let script =
            ShellCommand::new(exec::start_time_script(pid)).with_deadline(Duration::from_secs(30));
        let outcome = self.exec(&script, std::future::pending()).await?;
        Ok(outcome.output.trim().parse().ok())
    }

    /// Says goodbye to the server. Dropping the last clone closes the
    /// connection too, only less politely.
    pub async fn close(&self) {
        let goodbye = self.inner.link.ssh().disconnect(
            Some(DisconnectCode::ByApplication),
            "cutover is done",
            None,
        );
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), goodbye).await {
            tracing::debug!(host = %self.inner.target.name, "disconnecting: {}", describe(&e));
        }
    }
}

/// Opens sessions to all `targets`, at most `parallel` handshakes at once
/// (sshd drops unauthenticated connections beyond its `MaxStartups`, 10 by
/// default, and a fleet's hosts may share a server); the results are in the
/// order of `targets`.
pub async fn connect_all(
    targets: &[SshTarget],
    known_hosts: &KnownHosts,
    timeout: Duration,
    parallel: usize,
) -> Vec<Result<Session, SshError>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    connect_all_bounded(targets, known_hosts, timeout, permits).await
}

/// [`connect_all`], each handshake holding one of `permits`, which the
/// caller may share with connections it opens later.
pub async fn connect_all_bounded(
    targets: &[SshTarget],
    known_hosts: &KnownHosts,
    timeout: Duration,
    permits: Arc<tokio::sync::Semaphore>,
) -> Vec<Result<Session, SshError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().enumerate() {
        let (target, known_hosts) = (target.clone(), known_hosts.clone());
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            // The timeout counts from the connection's own start, not from
            // the wait for a permit.
            // (It is never closed: an error would only mean no limit.)
            let _permit = permits.acquire_owned().await.ok();
            (
                index,
                Session::connect(&target, &known_hosts, timeout).await,
            )
        });
    }
    let mut results: Vec<Option<Result<Session, SshError>>> =
        targets.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            Err(e) => tracing::warn!("a connection task failed: {e}"),
        }
    }
    results
        .into_iter()
        .zip(targets)
        .map(|(result, target)| {
            result.unwrap_or_else(|| {
                Err(SshError::new(
                    SshErrorKind::Connect,
                    &target.name,
                    "the connection task failed",
                ))
            })
        })
        .collect()
}

/// TCP, handshake, host key, login.
async fn connect(
    target: &SshTarget,
    known_hosts: &KnownHosts,
) -> Result<(AsyncSession<SessionSocket>, HostKey), SshError> {
    let name = target.name.as_str();
    let fail = |kind, message: String| SshError::new(kind, name, message);
    let to = target.host_port();
    let addresses: Vec<_> = tokio::net::lookup_host((target.address.as_str(), target.port))
        .await
        .map_err(|e| {
            fail(
                SshErrorKind::Connect,
                format!("cannot resolve {}: {e}", target.address),
            )
            .with_source(e)
        })?
        .collect();
    let mut stream = None;
    let mut refusals = Vec::new();
    for address in &addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => refusals.push(format!("{address}: {e}")),
        }
    }
    let Some(stream) = stream else {
        return Err(fail(
            SshErrorKind::Connect,
            format!("cannot connect to {to}: {}", refusals.join("; ")),
        ));
    };
    let socket = SessionSocket::new(stream).map_err(|e| {
        fail(
            SshErrorKind::Connect,
            format!("cannot set up the socket to {to}: {e}"),
        )
    })?;
    let mut ssh = AsyncSession::new(socket, None).map_err(|e| {
        fail(
            SshErrorKind::Connect,
            format!("cannot start an SSH session: {}", describe(&e)),
        )
        .with_source(e)
    })?;

    // Ask for the key types on file first, as OpenSSH does, so that a host
    // with several keys shows the one we know.
    let known = known_hosts.known_types(target)?;
    let handshake_error = |e: async_ssh2_lite::Error| {
        fail(
            SshErrorKind::Connect,
            format!("the SSH handshake with {to} failed: {}", describe(&e)),
        )
        .with_source(e)
    };
    let supported = ssh
        .supported_algs(MethodType::HostKey)
        .await
        .map_err(handshake_error)?;
    ssh.method_pref(
        MethodType::HostKey,
        &algorithm_preference(&known, &supported),
    )
    .await
    .map_err(handshake_error)?;
    ssh.handshake().await.map_err(handshake_error)?;

    let host_key = ssh
        .host_key()
        .and_then(|(blob, _)| HostKey::from_blob(blob))
        .ok_or_else(|| {
            fail(
                SshErrorKind::Connect,
                format!("{to} showed no usable host key"),
            )
        })?;
    known_hosts.verify(target, &host_key)?;
    authenticate(&ssh, target).await?;
    Ok((ssh, host_key))
}

/// `10s`, `1.5s`, `250ms`.
fn humantime_short(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

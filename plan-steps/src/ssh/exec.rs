//! One command on one channel: the wrapper, reading, stopping.
//!
//! The wrapper and the way the process group is killed are described in the
//! [`super`] module doc.

use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_ssh2_lite::{AsyncChannel, AsyncSession, AsyncStream};
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt as _;

use super::error::{describe, is_connection_error, SshError, SshErrorKind};
use super::output::{Markers, StderrFilter, Stream, Streams};
use super::socket::SessionSocket;
use crate::command::{ExitKind, ShellCommand, ShellOutcome};
use crate::local::{KILL_GRACE, SHELL};

/// After the command exits, how long to keep reading output that a
/// background process it left behind still holds open (as [`crate::local`]).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// How long the kill channel may take, grace included, before the host
/// counts as unreachable.
const KILL_LIMIT: Duration = Duration::from_secs(15);

/// After the kill, how long to wait for the channel to close.
const KILL_SETTLE: Duration = Duration::from_secs(5);

/// When a stop comes before the wrapper told its process group, how long to
/// wait for it.
const PGID_WAIT: Duration = Duration::from_secs(5);

/// How long starting a command (channel, exec request) may take, waiting
/// for other commands' starts included. The deadline is not applied there:
/// stopping a command needs its process group, which it tells once started.
const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// How long closing a finished channel may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// Bytes read from a stream at once.
const READ_CHUNK: usize = 16 * 1024;

/// One connection's libssh2 session, and the lock under which channels are
/// set up one at a time.
///
/// libssh2 keeps the state of a channel being opened in the session, not in
/// the channel, and when waiting for the answer to a request it fails on an
/// answer of the right type for another channel ("Failed waiting for channel
/// success", libssh2 issue #671). So opening a channel and starting a command
/// on it (two round trips) happen under this lock; reading, stopping and
/// closing channels run concurrently.
#[derive(Clone)]
pub(crate) struct Link {
    ssh: AsyncSession<SessionSocket>,
    setup: Arc<tokio::sync::Mutex<()>>,
}

/// Which step of starting a command failed.
enum Start {
    /// Opening the channel: nothing ran.
    Open(async_ssh2_lite::Error),
    /// The exec request or closing stdin: the command may run.
    Exec(async_ssh2_lite::Error),
}

impl Link {
    pub(crate) fn new(ssh: AsyncSession<SessionSocket>) -> Link {
        Link {
            ssh,
            setup: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(crate) fn ssh(&self) -> &AsyncSession<SessionSocket> {
        &self.ssh
    }

    /// Opens a channel and runs `command` on it, with stdin closed, within
    /// [`SETUP_LIMIT`] (a host that does not answer counts as unreachable).
    async fn start(&self, command: &str) -> Result<AsyncChannel<SessionSocket>, Start> {
        let until = tokio::time::Instant::now() + SETUP_LIMIT;
        let no_answer = || {
            let message = format!("no answer within {} s", SETUP_LIMIT.as_secs());
            async_ssh2_lite::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
        };
        let _one_at_a_time = tokio::time::timeout_at(until, self.setup.lock())
            .await
            .map_err(|_| Start::Open(no_answer()))?;
        let mut channel = tokio::time::timeout_at(until, self.ssh.channel_session())
            .await
            .map_err(|_| Start::Open(no_answer()))?
            .map_err(Start::Open)?;
        tokio::time::timeout_at(until, channel.exec(command))
            .await
            .map_err(|_| Start::Exec(no_answer()))?
            .map_err(Start::Exec)?;
        // Stdin is empty, as for local commands.
        tokio::time::timeout_at(until, channel.send_eof())
            .await
            .map_err(|_| Start::Exec(no_answer()))?
            .map_err(Start::Exec)?;
        Ok(channel)
    }
}

/// The text sent in the exec request for `command` (see the module doc).
/// `env` is exported (names checked by the loader, values quoted) for the
/// command's shell, so the values never pass through sshd's `AcceptEnv`.
pub(crate) fn wrap(command: &str, env: &[(String, String)], nonce: &str) -> String {
    let quoted = plan_core::template::quote(command);
    let exports: String = env
        .iter()
        .map(|(name, value)| format!("export {name}={}; ", plan_core::template::quote(value)))
        .collect();
    format!(
        "echo cutover-{nonce}-pgid $$ >&2; {exports}{SHELL} -c {quoted}; s=$?; \
         printf '\\001cutover-{nonce}-exit %s\\n' $s >&2; exit $s"
    )
}

/// Reads process `pid`'s start time: field 22 of `/proc/PID/stat`, after
/// the command name (which may hold spaces). Prints nothing where there is
/// no such process, or no `/proc`.
const START_TIME: &str = "read -r l 2>/dev/null < /proc/$P/stat || return 1; \
     l=${l##*') '}; set -- $l; t=${20}";

/// A script that prints the start time of process `pid` (see
/// [`START_TIME`]), or nothing.
pub(crate) fn start_time_script(pid: i32) -> String {
    format!("P={pid}; st() {{ {START_TIME}; }}; st && echo \"$t\"")
}

/// Defines `ours`, which succeeds while process `pgid` is the one that
/// started at `start` (a pid the host has since given to another process,
/// or no process at all, fails).
fn ours_function(pgid: i32, start: u64) -> String {
    format!("P={pgid}; ours() {{ {START_TIME}; [ \"$t\" = {start} ]; }}; ")
}

/// A script that exits 0 while group `pgid`, left running by an earlier
/// attempt, still runs: while its leader is the process that started at
/// `start_time`, where that is known; else while any process is in a group
/// of that id.
pub(crate) fn leftover_probe(pgid: i32, start_time: Option<u64>) -> String {
    match start_time {
        Some(start) => format!("{}ours", ours_function(pgid, start)),
        None => format!("kill -s 0 -- -{pgid} 2>/dev/null"),
    }
}

/// A script that stops group `pgid`, left running by an earlier attempt, as
/// a deadline would ([`kill_script`]), if its leader is still the process
/// that started at `start_time`; `None` when that is not known.
pub(crate) fn leftover_kill(pgid: i32, start_time: Option<u64>, grace: Duration) -> Option<String> {
    let start = start_time?;
    Some(format!(
        "{}ours || exit 0; {}",
        ours_function(pgid, start),
        kill_script(pgid, grace)
    ))
}

/// The script that stops group `pgid`: SIGTERM, up to `grace` for it to go
/// (looking ten times a second), then SIGKILL. A group whose members are all
/// zombies is gone: where `/proc` exists it is read for that, since an init
/// that is slow to reap (as in containers) would otherwise hold up every
/// stop for the whole grace. `kill -s` and `--` because dash reads
/// `kill -0 -- -N` wrongly.
pub(crate) fn kill_script(pgid: i32, grace: Duration) -> String {
    let ticks = grace.as_millis() / 100;
    format!(
        "P={pgid}; \
         alive() {{ kill -s 0 -- -$P 2>/dev/null || return 1; [ -r /proc/self/stat ] || return 0; \
         for f in /proc/[0-9]*/stat; do read -r l 2>/dev/null < \"$f\" || continue; \
         l=${{l##*') '}}; set -- $l; [ \"$3\" = \"$P\" ] && [ \"$1\" != Z ] && return 0; done; \
         return 1; }}; \
         kill -s TERM -- -$P 2>/dev/null || exit 0; n=0; \
         while alive; do \
         if [ $n -ge {ticks} ]; then kill -s KILL -- -$P 2>/dev/null; exit 0; fi; \
         sleep 0.1; n=$((n+1)); done"
    )
}

/// A nonce no command output will contain by chance.
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

/// Runs `cmd` on a new channel of `link` (see [`super::Session::exec`]).
pub(crate) async fn run(
    link: &Link,
    host: &str,
    cmd: &ShellCommand,
    cancel: impl Future<Output = ()>,
    on_start: impl FnOnce(i32),
) -> Result<ShellOutcome, SshError> {
    let started = Instant::now();
    // The deadline counts from here, starting included.
    let deadline_at = cmd.deadline.map(|d| tokio::time::Instant::now() + d);
    let nonce = nonce();
    // Once the exec request is sent the command may run; a run dropped from
    // then on kills it (when it told its process group).
    let mut guard = KillOnDrop {
        link: link.clone(),
        host: host.to_owned(),
        pgid: None,
    };
    let mut channel = link
        .start(&wrap(&cmd.command, &cmd.env, &nonce))
        .await
        .map_err(|start| match start {
            Start::Open(e) if is_connection_error(&e) => {
                let message = format!("the connection is broken ({}); reconnect", describe(&e));
                SshError::new(SshErrorKind::Connect, host, message).with_source(e)
            }
            Start::Open(e) => {
                let message = format!("the server refused a channel: {}", describe(&e));
                SshError::new(SshErrorKind::Channel, host, message).with_source(e)
            }
            Start::Exec(e) => broken(host, "starting the command", e),
        })?;
    let result = drive(
        link,
        &mut channel,
        host,
        cmd,
        deadline_at,
        &nonce,
        cancel,
        on_start,
        &mut guard,
    )
    .await;
    // Finished, stopped, or the connection is gone: nothing left to kill.
    guard.pgid = None;
    let (status, pump) = result?;
    let (output, dropped_bytes) = pump.into_output();
    Ok(ShellOutcome {
        status,
        output,
        dropped_bytes,
        elapsed: started.elapsed(),
    })
}

/// Reads the command to its end, or stops it.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, all of them distinct"
)]
async fn drive(
    link: &Link,
    channel: &mut AsyncChannel<SessionSocket>,
    host: &str,
    cmd: &ShellCommand,
    deadline_at: Option<tokio::time::Instant>,
    nonce: &str,
    cancel: impl Future<Output = ()>,
    on_start: impl FnOnce(i32),
    guard: &mut KillOnDrop,
) -> Result<(ExitKind, Pump), SshError> {
    let mut pump = Pump::new(host, channel, nonce, cmd.output_limit);
    let mut on_start = Some(on_start);
    let deadline = async {
        match deadline_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline, cancel);
    let drain = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(drain);
    let mut draining = false;

    let stop = loop {
        if pump.finished() {
            break None;
        }
        tokio::select! {
            biased;
            step = pump.step() => {
                step?;
                if let (Some(pgid), None) = (pump.pgid, guard.pgid) {
                    guard.pgid = Some(pgid);
                    if let Some(on_start) = on_start.take() {
                        on_start(pgid);
                    }
                }
                if pump.exit.is_some() && !draining {
                    draining = true;
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                }
            }
            () = &mut drain, if draining => {
                tracing::debug!(
                    host,
                    "a background process still holds the output open; no longer reading it"
                );
                break None;
            }
            // An exit already seen counts, also when the deadline comes while
            // the output is drained.
            () = &mut deadline, if !draining => break Some(ExitKind::TimedOut),
            () = &mut cancel, if !draining => break Some(ExitKind::Cancelled),
        }
    };

    let status = match stop {
        None => finish(channel, &pump, host).await?,
        Some(kind) => {
            tracing::info!(host, "{kind}: stopping the command's process group");
            stop_group(link, channel, &mut pump, host).await?;
            kind
        }
    };
    Ok((status, pump))
}

/// The connection broke while `doing`: whether the command ran is unknown.
fn broken(host: &str, doing: &str, e: async_ssh2_lite::Error) -> SshError {
    let kind = if is_connection_error(&e) {
        SshErrorKind::ConnectionLost
    } else {
        SshErrorKind::Channel
    };
    let message = match kind {
        SshErrorKind::ConnectionLost => format!(
            "the connection broke while {doing} ({}); the command may or may not have run",
            describe(&e)
        ),
        _ => format!("the server refused {doing}: {}", describe(&e)),
    };
    SshError::new(kind, host, message).with_source(e)
}

fn lost(host: &str, doing: &str, detail: String) -> SshError {
    SshError::new(
        SshErrorKind::ConnectionLost,
        host,
        format!(
            "the connection broke while {doing} ({detail}); the command may or may not have run"
        ),
    )
}

/// The command ended by itself: closes the channel and reads its status.
async fn finish(
    channel: &mut AsyncChannel<SessionSocket>,
    pump: &Pump,
    host: &str,
) -> Result<ExitKind, SshError> {
    let closed = tokio::time::timeout(CLOSE_LIMIT, async {
        channel.close().await?;
        channel.wait_close().await
    })
    .await;
    match closed {
        Ok(Ok(())) => {}
        Ok(Err(e)) if pump.exit.is_none() => {
            return Err(broken(host, "waiting for the command", e))
        }
        Err(_) if pump.exit.is_none() => {
            return Err(lost(host, "waiting for the command", "no answer".into()))
        }
        // The status is known; a close that fails changes nothing.
        Ok(Err(e)) => tracing::debug!(host, "closing the channel: {}", describe(&e)),
        Err(_) => tracing::debug!(host, "closing the channel: no answer"),
    }
    if let Some(code) = pump.exit {
        return Ok(ExitKind::Exited(code));
    }
    // No exit marker: the wrapper itself died, by a signal if the server
    // says so.
    let signal = channel
        .exit_signal()
        .await
        .ok()
        .and_then(|s| s.exit_signal)
        .map(|name| {
            Signal::from_str(&format!("SIG{name}"))
                .map(|s| s as i32)
                .unwrap_or(0)
        });
    match signal {
        Some(signal) => Ok(ExitKind::Signalled(signal)),
        None => Err(SshError::new(
            SshErrorKind::Channel,
            host,
            format!(
                "the command ended without reporting its status (exit status {}); is the \
                 login shell a POSIX shell?",
                channel.exit_status().unwrap_or(-1)
            ),
        )),
    }
}

/// Kills the command's process group from a second channel, reading the
/// first meanwhile, then waits for the first to close.
async fn stop_group(
    link: &Link,
    channel: &mut AsyncChannel<SessionSocket>,
    pump: &mut Pump,
    host: &str,
) -> Result<(), SshError> {
    if pump.pgid.is_none() {
        let waited = tokio::time::timeout(PGID_WAIT, async {
            while pump.pgid.is_none() && !pump.finished() {
                pump.step().await?;
            }
            Ok::<(), SshError>(())
        })
        .await;
        match waited {
            Ok(result) => result?,
            Err(_) => {
                return Err(SshError::new(
                    SshErrorKind::Channel,
                    host,
                    "the command did not report its process group; it cannot be stopped and \
                     may still run",
                ))
            }
        }
    }
    if let Some(pgid) = pump.pgid.filter(|_| !pump.finished()) {
        let killed = pump
            .run_while(tokio::time::timeout(
                KILL_LIMIT,
                kill(link, pgid, KILL_GRACE),
            ))
            .await;
        match killed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.context(host, "stopping the command")),
            Err(_) => return Err(lost(host, "stopping the command", "no answer".into())),
        }
    }
    let settled = tokio::time::timeout(KILL_SETTLE, async {
        while !pump.finished() {
            pump.step().await?;
        }
        Ok::<(), SshError>(())
    })
    .await;
    match settled {
        Ok(result) => result?,
        Err(_) => tracing::warn!(
            host,
            "output still open after the kill; no longer reading it"
        ),
    }
    let _ = tokio::time::timeout(CLOSE_LIMIT, async {
        channel.close().await?;
        channel.wait_close().await
    })
    .await;
    Ok(())
}

/// Why the kill channel failed, before the host name is added.
struct KillError(async_ssh2_lite::Error);

impl KillError {
    fn context(self, host: &str, doing: &str) -> SshError {
        broken(host, doing, self.0)
    }
}

/// Runs [`kill_script`] on a new channel and waits for it.
async fn kill(link: &Link, pgid: i32, grace: Duration) -> Result<(), KillError> {
    let mut channel = link
        .start(&kill_script(pgid, grace))
        .await
        .map_err(|(Start::Open(e) | Start::Exec(e))| KillError(e))?;
    let mut sink = Vec::new();
    channel
        .read_to_end(&mut sink)
        .await
        .map_err(|e| KillError(e.into()))?;
    channel.close().await.map_err(KillError)?;
    channel.wait_close().await.map_err(KillError)?;
    Ok(())
}

/// Kills the command's group (SIGKILL at once) if the run is dropped while
/// the command runs, as [`crate::local::run`] does.
struct KillOnDrop {
    link: Link,
    host: String,
    pgid: Option<i32>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(host = %self.host, pgid, "dropped outside a runtime: the remote command is left running");
            return;
        };
        let (link, host) = (self.link.clone(), self.host.clone());
        runtime.spawn(async move {
            match tokio::time::timeout(KILL_LIMIT, kill(&link, pgid, Duration::ZERO)).await {
                Ok(Ok(())) => {
                    tracing::debug!(host, pgid, "killed the process group of a dropped command")
                }
                Ok(Err(KillError(e))) => {
                    tracing::warn!(
                        host,
                        pgid,
                        "cannot kill the process group of a dropped command: {}",
                        describe(&e)
                    )
                }
                Err(_) => tracing::warn!(
                    host,
                    pgid,
                    "cannot kill the process group of a dropped command: no answer"
                ),
            }
        });
    }
}

/// Reads stdout and stderr as data arrives, into one capture and the log.
struct Pump {
    host: String,
    streams: Streams<AsyncStream<SessionSocket>, AsyncStream<SessionSocket>>,
    filter: StderrFilter,
    pgid: Option<i32>,
    exit: Option<i32>,
}

impl Pump {
    fn new(host: &str, channel: &AsyncChannel<SessionSocket>, nonce: &str, limit: usize) -> Pump {
        Pump {
            host: host.to_owned(),
            streams: Streams::new(
                host,
                Some(channel.stream(0)),
                Some(channel.stderr()),
                READ_CHUNK,
                limit,
            ),
            filter: StderrFilter::new(Markers::new(nonce)),
            pgid: None,
            exit: None,
        }
    }

    fn finished(&self) -> bool {
        self.streams.finished()
    }

    /// Runs `fut` to completion, reading output meanwhile.
    async fn run_while<F: Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                step = self.step(), if !self.finished() => {
                    if let Err(e) = step {
                        // The caller's future meets the same broken
                        // connection and reports it.
                        tracing::debug!(host = %self.host, "{e}");
                        self.streams.abandon();
                    }
                }
            }
        }
    }

    /// Takes one chunk from whichever stream has one. Cancel-safe.
    async fn step(&mut self) -> Result<(), SshError> {
        let (stream, result) = self.streams.read().await;
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                return Err(lost(&self.host, "the command ran", e.to_string()));
            }
        };
        match stream {
            Stream::Stdout if n == 0 => self.streams.close(Stream::Stdout),
            Stream::Stdout => self.streams.keep_read(Stream::Stdout, n),
            Stream::Stderr => {
                let mut out = Vec::new();
                if n == 0 {
                    self.filter.finish(&mut out);
                } else {
                    let bytes = self.streams.read_bytes(Stream::Stderr, n);
                    let found = self.filter.push(bytes, &mut out);
                    self.pgid = self.pgid.or(found.pgid);
                    self.exit = self.exit.or(found.exit);
                }
                self.streams.keep(Stream::Stderr, &out);
                if n == 0 {
                    self.streams.close(Stream::Stderr);
                }
            }
        }
        Ok(())
    }

    fn into_output(self) -> (String, u64) {
        self.streams.into_output()
    }
}

#[cfg(test)]
mod tests;

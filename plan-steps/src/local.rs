//! Running one shell command on this machine, for the built-in host `local`.
//!
//! [`run`] starts `/bin/sh -c COMMAND` with stdin closed and this process's
//! environment and working directory, reads stdout and stderr together (kept
//! bounded: the head and the tail), logs every line at debug level under the
//! target `cutover::output`, and stops the command when its deadline passes
//! or the caller cancels.
//!
//! It is for the executor's `local` host: plan commands, checks and reverts
//! that act on the machine running `cutover`, and the example plans, which
//! need nothing else. It is not for remote hosts (those go over SSH), not a
//! sandbox (the command runs as this user, with this environment), and not
//! a way to leave daemons behind: on deadline or cancellation everything the
//! command started is killed.
//!
//! # Why a process group
//!
//! A shell command is rarely one process: `a | b`, `a & b & wait`, a script
//! that starts helpers. Killing the shell alone would leave its children
//! running, re-parented to init, still holding files, ports and locks, and
//! still holding the output pipe open, so that reading it never ends. So the
//! shell starts as the leader of a new process group, and stopping it signals
//! the whole group: SIGTERM, up to [`KILL_GRACE`] for it to go, then SIGKILL.
//!
//! The group id is the shell's pid, and the shell is not reaped until the
//! signalling is over, so the id cannot be reused meanwhile: a signal can
//! only reach processes the command started. A process that leaves the group
//! on purpose (`setsid`, `setpgid`) escapes, as it would from a terminal.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), plan_steps::local::LocalError> {
//! use std::time::Duration;
//! use plan_steps::local::{run, ShellCommand};
//!
//! let cmd = ShellCommand::new("test -d /var/lib/mailman").with_deadline(Duration::from_secs(10));
//! let outcome = run(&cmd, std::future::pending()).await?;
//! if !outcome.success() {
//!     eprintln!("{}: {}", outcome.status, outcome.output);
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::output::Streams;
// The command and its outcome are shared with SSH; they are also reached
// from here, where they began.
pub use crate::command::{ExitKind, ShellCommand, ShellOutcome, DEFAULT_OUTPUT_LIMIT};

/// The shell that runs commands.
pub const SHELL: &str = "/bin/sh";

/// How long a stopped command has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// The `tracing` target of the command output lines.
pub const OUTPUT_TARGET: &str = "cutover::output";

/// After the shell exits, how long to keep reading output that a background
/// process it left behind still holds open (like Go's `Cmd.WaitDelay`).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// How long to wait for the group to vanish after SIGKILL, and for the shell
/// to be reaped. Only a process stuck in the kernel takes longer.
const KILL_SETTLE: Duration = Duration::from_secs(5);

/// How often to look whether the group is gone.
const POLL: Duration = Duration::from_millis(25);

/// Bytes read from a pipe at once.
const READ_CHUNK: usize = 8 * 1024;

/// A command that could not be run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// `/bin/sh` could not be started (missing, not executable, out of
    /// processes, or a NUL byte in the command).
    #[error("cannot start {SHELL}: {source}")]
    Spawn {
        /// The operating system's reason.
        source: io::Error,
    },
    /// Waiting for the shell that exited failed: something else in this
    /// process reaped it, so its status is lost.
    #[error("lost track of the {SHELL} process: {source}")]
    Wait {
        /// The operating system's reason.
        source: io::Error,
    },
}

/// Runs `cmd` with `/bin/sh -c` in its own process group.
///
/// Returns when the shell exits, or, after its deadline or once `cancel`
/// completes, when its whole process group has been killed (SIGTERM, up to
/// [`KILL_GRACE`], SIGKILL) and the shell reaped. A command that exits leaves
/// its background processes alone; their output is read for at most one more
/// second.
///
/// Dropping the returned future before it completes kills the process group
/// at once with SIGKILL.
pub async fn run(
    cmd: &ShellCommand,
    cancel: impl Future<Output = ()>,
) -> Result<ShellOutcome, LocalError> {
    run_reporting(cmd, cancel, |_| {}).await
}

/// A process group a command runs in, identified beyond its pid: the group
/// leader's start time (in clock ticks since boot, from `/proc/<pid>/stat`)
/// tells a reused pid apart. Here `host` is `None`: this machine.
pub use plan_core::machine::ProcessGroup;

/// As [`run`], and tells `on_spawn` the command's process group as soon as
/// it exists, so a caller can record it (a crash of the caller leaves the
/// group running; `resume` then waits for it before judging the step).
pub async fn run_reporting(
    cmd: &ShellCommand,
    cancel: impl Future<Output = ()>,
    on_spawn: impl FnOnce(ProcessGroup),
) -> Result<ShellOutcome, LocalError> {
    let started = Instant::now();
    let mut command = Command::new(SHELL);
    for name in &cmd.env_removed {
        command.env_remove(name);
    }
    let mut child = command
        .arg("-c")
        .arg(&cmd.command)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| LocalError::Spawn { source })?;
    // invariant: tokio knows the pid of a child it has not yet reaped.
    let pid = child.id().expect("a freshly spawned child has a pid");
    // invariant: Linux and the BSDs keep pids far below i32::MAX.
    let pid = i32::try_from(pid).expect("pids fit in pid_t");
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut group = Group {
        child,
        pgid: Pid::from_raw(pid),
        reaped: false,
    };
    tracing::debug!(pid, "started {SHELL} -c");
    on_spawn(ProcessGroup {
        host: None,
        pgid: pid,
        start_time: start_time(pid),
    });
    let mut pump = Pump::new(pid, stdout, stderr, cmd.output_limit);

    let deadline = async {
        match cmd.deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let ending = pump
        .run_while(async {
            tokio::select! {
                // An exit that coincides with the deadline counts as the exit.
                biased;
                status = group.wait() => Ending::Exited(status),
                () = deadline => Ending::Stopped(ExitKind::TimedOut),
                () = cancel => Ending::Stopped(ExitKind::Cancelled),
            }
        })
        .await;

    let status = match ending {
        Ending::Exited(status) => {
            let status = status.map_err(|source| LocalError::Wait { source })?;
            if tokio::time::timeout(DRAIN_AFTER_EXIT, pump.finish())
                .await
                .is_err()
            {
                tracing::debug!(
                    pid,
                    "a background process still holds the output open; no longer reading it"
                );
            }
            exit_kind(status)
        }
        Ending::Stopped(kind) => {
            tracing::info!(pid, "{kind}: stopping the command's process group");
            stop(&mut group, &mut pump).await;
            kind
        }
    };
    let (output, dropped_bytes) = pump.0.into_output();
    Ok(ShellOutcome {
        status,
        output,
        dropped_bytes,
        elapsed: started.elapsed(),
    })
}

/// Why the first wait ended.
enum Ending {
    Exited(io::Result<ExitStatus>),
    Stopped(ExitKind),
}

fn exit_kind(status: ExitStatus) -> ExitKind {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitKind::Exited(code),
        (None, Some(signal)) => ExitKind::Signalled(signal),
        // Cannot happen: `wait` reports only exits and deaths by signal, never
        // a stop. Reported as a failure, never as a success.
        (None, None) => ExitKind::Signalled(0),
    }
}

/// SIGTERM to the group, a grace period, SIGKILL, then reaps the shell.
async fn stop(group: &mut Group, pump: &mut Pump) {
    let pgid = group.pgid;
    group.signal(Signal::SIGTERM);
    match pump.run_while(wait_group_gone(pgid, KILL_GRACE)).await {
        Members::Gone => {}
        Members::Alive => {
            tracing::info!(
                pgid = pgid.as_raw(),
                "still running after SIGTERM; sending SIGKILL"
            );
        }
        // Without /proc the group cannot be watched: give it the whole grace.
        Members::Unknown => pump.run_while(tokio::time::sleep(KILL_GRACE)).await,
    }
    // Always, even when the group looks gone: it costs nothing, and catches a
    // process forked between the last look and now.
    group.signal(Signal::SIGKILL);
    if let Members::Alive = pump.run_while(wait_group_gone(pgid, KILL_SETTLE)).await {
        tracing::warn!(
            pgid = pgid.as_raw(),
            "processes of the group survive SIGKILL (stuck in the kernel?)"
        );
    }
    match pump
        .run_while(tokio::time::timeout(KILL_SETTLE, group.wait()))
        .await
    {
        Ok(Ok(_)) => {}
        // The group was signalled while the shell was ours; the kill stands.
        Ok(Err(e)) => tracing::warn!(pgid = pgid.as_raw(), "cannot reap the shell: {e}"),
        // The shell is left to tokio, which reaps it whenever it dies.
        Err(_) => tracing::warn!(pgid = pgid.as_raw(), "the shell survives SIGKILL"),
    }
    // Every writer is dead now, or escaped the group; take what is left.
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, pump.finish()).await;
}

/// The shell and its process group, killed with SIGKILL if dropped unreaped.
struct Group {
    child: Child,
    pgid: Pid,
    /// Once the shell is reaped its pid (the group id) may be reused: from
    /// then on the group must never be signalled.
    reaped: bool,
}

impl Group {
    /// Signals every process of the group, unless the shell was reaped.
    fn signal(&self, signal: Signal) {
        if self.reaped {
            return;
        }
        match killpg(self.pgid, signal) {
            // No member is left.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pgid = self.pgid.as_raw(), "cannot send {signal}: {e}"),
        }
    }

    /// Waits for the shell to exit and reaps it. Cancel-safe.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await;
        // Also on an error: the shell may have been reaped by someone else,
        // and its pid is no longer ours to signal.
        self.reaped = true;
        status
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// Whether a process group still has live (non-zombie) members.
enum Members {
    Alive,
    Gone,
    /// This system has no readable `/proc`.
    Unknown,
}

/// Polls until the group has no live member, or `limit` passes.
async fn wait_group_gone(pgid: Pid, limit: Duration) -> Members {
    let until = Instant::now() + limit;
    loop {
        let pgid = pgid.as_raw();
        let members = tokio::task::spawn_blocking(move || group_members(pgid))
            .await
            .unwrap_or(Members::Unknown);
        match members {
            Members::Alive if Instant::now() < until => tokio::time::sleep(POLL).await,
            other => return other,
        }
    }
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`).
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after `comm` start at 3 (state); start time is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// What became of a process group left by an earlier, crashed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Its leader is gone (or its pid now belongs to another process).
    Gone,
    /// It ended by itself while we waited.
    Finished,
    /// It was still running after `limit` and was killed.
    Killed,
}

/// Waits for a group left by a crashed run to end; after `limit` (if any)
/// kills it like a deadline would. Only a group whose leader still has the
/// recorded start time is ours: anything else is never signalled.
pub async fn wait_leftover(group: ProcessGroup, limit: Option<Duration>) -> Leftover {
    let ours = |g: &ProcessGroup| g.start_time.is_some() && start_time(g.pgid) == g.start_time;
    if !ours(&group) {
        return Leftover::Gone;
    }
    let pgid = Pid::from_raw(group.pgid);
    let until = limit.map(|l| Instant::now() + l);
    loop {
        if !ours(&group) {
            return Leftover::Finished;
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            let _ = killpg(pgid, Signal::SIGTERM);
            let _ = wait_group_gone(pgid, KILL_GRACE).await;
            if ours(&group) {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            return Leftover::Killed;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Looks through `/proc` for a live process in group `pgid`.
fn group_members(pgid: i32) -> Members {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Members::Unknown;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process that exits meanwhile has no stat any more: not a member.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, group)) = parse_stat(&stat) {
            if group == pgid && !matches!(state, 'Z' | 'X' | 'x') {
                return Members::Alive;
            }
        }
    }
    Members::Gone
}

/// State and process group from a `/proc/<pid>/stat` line:
/// `pid (comm) state ppid pgrp ...`, where `comm` may hold spaces and `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Reads stdout and stderr as bytes arrive, into one capture and the log.
struct Pump(Streams<ChildStdout, ChildStderr>);

impl Pump {
    fn new(
        pid: i32,
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        limit: usize,
    ) -> Self {
        Pump(Streams::new(
            format_args!("local pid {pid}"),
            stdout,
            stderr,
            READ_CHUNK,
            limit,
        ))
    }

    /// Whether both pipes are at their end.
    fn finished(&self) -> bool {
        self.0.finished()
    }

    /// Reads until both pipes end. Cancel-safe.
    async fn finish(&mut self) {
        while !self.finished() {
            self.step().await;
        }
    }

    /// Runs `fut` to completion, reading output meanwhile so that the
    /// command never blocks on a full pipe.
    async fn run_while<F: Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                () = self.step(), if !self.finished() => {}
            }
        }
    }

    /// Takes one chunk from whichever pipe has one. Cancel-safe: a read that
    /// has not completed has consumed nothing.
    async fn step(&mut self) {
        let (stream, result) = self.0.read().await;
        match result {
            Ok(0) => self.0.close(stream),
            Ok(n) => self.0.keep_read(stream, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(
                    source = self.0.source(),
                    "cannot read {}: {e}",
                    stream.name()
                );
                self.0.close(stream);
            }
        }
    }
}

#[cfg(test)]
mod tests;

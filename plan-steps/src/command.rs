//! The shell command a step runs and how it ended, the same whether it runs here or over SSH.
//!
//! [`crate::local::run`] runs a [`ShellCommand`] on this machine and
//! [`crate::ssh::Session::exec`] on a remote host; both answer with a
//! [`ShellOutcome`], so the executor treats the two alike.

use std::fmt;
use std::time::Duration;

use nix::sys::signal::Signal;

/// How many bytes of output [`ShellCommand::new`] keeps.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

/// One command to run with `/bin/sh -c`, on this machine or on an SSH host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellCommand {
    /// The text given to `/bin/sh -c`, already expanded and quoted.
    pub command: String,
    /// Stop the command this long after it started; `None` waits for ever.
    pub deadline: Option<Duration>,
    /// How many bytes of output to keep: the first half and the last half.
    pub output_limit: usize,
    /// Environment variables it runs with (the plan's `env`), in order: set
    /// in the process's environment here, exported (each value quoted) in
    /// front of the command on an SSH host. Never part of `command`, so the
    /// journal's transcript, which shows `command`, never holds them.
    pub env: Vec<(String, String)>,
    /// Variables of this process's environment it runs without (here only:
    /// secrets a hook must not see).
    pub env_removed: Vec<String>,
}

impl ShellCommand {
    /// A command with no deadline and [`DEFAULT_OUTPUT_LIMIT`].
    pub fn new(command: impl Into<String>) -> Self {
        ShellCommand {
            command: command.into(),
            deadline: None,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            env: Vec::new(),
            env_removed: Vec::new(),
        }
    }

    /// Runs it with these environment variables.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Runs it without these variables of this process's environment.
    pub fn without_env(mut self, names: Vec<String>) -> Self {
        self.env_removed = names;
        self
    }

    /// Stops the command this long after it started.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Keeps this many bytes of output.
    pub fn with_output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// It exited with this status.
    Exited(i32),
    /// A signal it did not handle killed it (not one sent by [`crate::local::run`]).
    Signalled(i32),
    /// Its deadline passed; [`crate::local::run`] killed it.
    TimedOut,
    /// The caller cancelled it; [`crate::local::run`] killed it.
    Cancelled,
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitKind::Exited(code) => write!(f, "exited with status {code}"),
            ExitKind::Signalled(signal) => match Signal::try_from(signal) {
                Ok(name) => write!(f, "killed by signal {signal} ({name})"),
                Err(_) => write!(f, "killed by signal {signal}"),
            },
            ExitKind::TimedOut => f.write_str("timed out"),
            ExitKind::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// What a finished command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellOutcome {
    /// How it ended.
    pub status: ExitKind,
    /// stdout and stderr interleaved as they arrived, decoded as lossy UTF-8.
    /// When over the limit, the head and the tail with a note of the gap.
    pub output: String,
    /// How many bytes of output were left out between the head and the tail.
    pub dropped_bytes: u64,
    /// From the start of the shell until it was reaped.
    pub elapsed: Duration,
}

impl ShellOutcome {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == ExitKind::Exited(0)
    }
}

//! Running commands on remote hosts over SSH: one session per host, one
//! channel per command.
//!
//! [`SshTarget`] says where and as whom to log in: a plan's
//! [`plan_core::Host`] completed from `~/.ssh/config` ([`SshConfig`]).
//! [`Session::connect`] opens a session after checking the server's host key
//! against a known_hosts file ([`KnownHosts`], strict or trust-on-first-use)
//! and authenticating with the ssh-agent or key files; [`connect_all`] opens
//! the sessions of many hosts at once. [`Session::exec`] runs one command on
//! a new channel with the same contract as [`crate::local::run`]: stdout and
//! stderr read together, kept bounded, logged line by line under the target
//! [`crate::local::OUTPUT_TARGET`], a deadline and a cancellation that kill
//! the remote process group.
//!
//! It is not an SSH client for people: no terminals, no port forwarding, no
//! passwords or passphrase prompts (keys with a passphrase go through the
//! agent), no certificates, and only the common subset of `ssh_config`.
//!
//! # What runs on the host
//!
//! `sshd` runs the text of an exec request with the login shell, as a new
//! session whose id is the shell's pid (OpenSSH calls `setsid()` for every
//! command without a terminal). [`Session::exec`] sends, for a command `CMD`:
//!
//! ```text
//! echo cutover-NONCE-pgid $$ >&2; /bin/sh -c 'CMD'; s=$?; printf '\001cutover-NONCE-exit %s\n' $s >&2; exit $s
//! ```
//!
//! `CMD` is quoted with [`plan_core::template::quote`], so the login shell
//! passes it to `/bin/sh` unchanged, and commands run under `/bin/sh` as they
//! do locally. The first marker tells the process group of everything the
//! command starts; the second tells that the command ended and how, even
//! when a background process it left still holds the output open (`sshd`
//! closes the channel only when every writer is gone). `NONCE` is random per
//! command, so output cannot fake a marker; both markers are removed from the
//! output. A deadline or a cancellation runs, on a second channel,
//! `kill -TERM -- -PGID`, waits up to [`crate::local::KILL_GRACE`] for the
//! group to go, then `kill -KILL`. The login shell must be a POSIX shell
//! (`sh`, `bash`, `dash`, `zsh`, `ksh`), as it must for `ssh host CMD`.
//!
//! A command the shell reports as killed by signal N exits with 128+N, so it
//! appears as [`crate::command::ExitKind::Exited`]`(128+N)`; only the
//! wrapper's own death (the group killed from outside) gives
//! [`crate::command::ExitKind::Signalled`].
//!
//! # When the connection goes away
//!
//! An error of kind [`SshErrorKind::ConnectionLost`] means the command may
//! still be running, may have finished, or never started: the caller must
//! treat the step as in doubt, [`Session::reconnect`], and let the step's
//! check decide. A command is not killed when the connection drops (there is
//! no terminal to hang up). A host that vanishes without closing the
//! connection is noticed by TCP keepalive within about a minute.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(host: &plan_core::Host) -> Result<(), plan_steps::ssh::SshError> {
//! use std::time::Duration;
//! use plan_steps::command::ShellCommand;
//! use plan_steps::ssh::{HostKeyPolicy, KnownHosts, Session, SshConfig, SshEnv, SshTarget};
//!
//! let env = SshEnv::from_process();
//! let config = SshConfig::load(&env)?;
//! let target = SshTarget::resolve(host, &config, &env);
//! let known_hosts = KnownHosts::user(&env, HostKeyPolicy::Strict);
//! let session = Session::connect(&target, &known_hosts, Duration::from_secs(10)).await?;
//! let cmd = ShellCommand::new("systemctl is-active nginx").with_deadline(Duration::from_secs(30));
//! let outcome = session.exec(&cmd, std::future::pending()).await?;
//! println!("{}: {}", outcome.status, outcome.output);
//! # Ok(()) }
//! ```

mod auth;
mod config;
mod error;
mod exec;
mod known_hosts;
mod output;
mod pattern;
mod session;
mod socket;

pub use config::{HostConfig, SshConfig, SshEnv, SshTarget};
pub use error::{SshError, SshErrorKind};
pub(crate) use exec::{leftover_kill, leftover_probe};
pub use known_hosts::{HostKey, HostKeyPolicy, KnownHosts};
pub use session::{connect_all, connect_all_bounded, Session};

//! What each step of a cutover plan does on a real host.
//!
//! This crate performs the effects the run machine in `plan-core` asks for
//! and feeds the outcomes back: [`driver`] runs the loop (journal first,
//! then the effect), [`executor`] turns a step into commands and updates on
//! its hosts, [`ssh`] reaches hosts over SSH (host keys checked against
//! known_hosts), [`local`] runs a command on this machine in its own process
//! group ([`command`] is that command and its outcome, the same over SSH),
//! [`dns`] changes records with RFC 2136 updates signed with TSIG,
//! [`rsync`] and [`service`] build the commands of those steps, [`checks`]
//! holds the checks that need no shell, and [`journal_file`] keeps the
//! crash-safe journal on disk.
//!
//! It is not for deciding *what* to run or in which order: that is the run
//! machine, the same one the simulator drives.
#![warn(missing_docs)]

pub mod checks;
pub mod command;
pub mod dns;
pub mod driver;
pub mod etcd_lock;
pub mod executor;
pub mod history;
pub mod journal_file;
pub mod local;
pub mod notify;
mod output;
pub mod probe;
pub mod rsync;
pub mod service;
pub mod ssh;

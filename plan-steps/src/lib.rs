//! What each step of a cutover plan does on a real host.
//!
//! This crate performs the effects the run machine in `plan-core` asks for
//! and feeds the outcomes back: [`driver`] runs the loop (journal first,
//! then the effect), [`executor`] turns a step into processes, [`local`]
//! runs one shell command in its own process group with a deadline, and
//! [`journal_file`] keeps the crash-safe journal on disk.
//!
//! It is not for deciding *what* to run or in which order: that is the run
//! machine, the same one the simulator drives.
//!
//! **Status:** steps run on the built-in host `local` only. The SSH
//! transport, rsync, RFC 2136 DNS updates and services are not implemented
//! yet; [`executor::Executor::preflight`] refuses plans that need them
//! before anything changes.
#![warn(missing_docs)]

pub mod checks;
pub mod dns;
pub mod driver;
pub mod executor;
pub mod journal_file;
pub mod local;
pub mod rsync;
pub mod service;
pub mod ssh;

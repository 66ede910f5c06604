//! What each step of a cutover plan does on a real host.
//!
//! This crate will hold the effects the run machine asks for: the SSH
//! transport (async-ssh2-lite), rsync, RFC 2136 DNS updates with TSIG,
//! services, waits and checks, and the executor that performs them.
//!
//! It is not for deciding *what* to run or in which order: that is the run
//! machine in `plan-core`, the same one the simulator drives.
//!
//! **Status:** nothing is implemented here yet. Execution against real hosts
//! is tracked as its own issue; until it lands, `cutover` cannot run a plan
//! and says so rather than pretending.
#![warn(missing_docs)]

pub mod local;

pub mod journal_file;
pub mod driver;
pub mod executor;

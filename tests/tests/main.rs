//! cutover's integration tests: the `cutover` binary run as users run it.
//!
//! One test binary (the harness is `tests/src/lib.rs`), one module per area.

mod bad_input;
mod calibration;
mod check;
mod cutover_lab;
mod dns;
mod examples;
mod fleet;
mod graph;
mod lab;
mod lock;
mod mail_lab;
mod mailman;
mod notify;
mod plan_format;
mod probe;
mod run;
mod run_safety;
mod ssh;
mod status;
mod terminal;
mod watch;

//! The exit codes of `cutover`, as documented in `docs/cli.md`.

/// The command did what was asked; a run completed.
pub const OK: u8 = 0;
/// Something went wrong that is not the plan's fault: a file could not be
/// read, a command line was wrong, a host could not be reached.
pub const ERROR: u8 = 1;
/// The plan is invalid: it has at least one error diagnostic.
pub const INVALID_PLAN: u8 = 2;
/// A run failed and was rolled back to a rollback point (used by `run`).
pub const ROLLED_BACK: u8 = 3;
/// A run halted and needs an operator (used by `run`).
pub const HALTED: u8 = 4;

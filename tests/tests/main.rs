//! cutover's integration tests: the `cutover` binary run as users run it.
//!
//! One test binary (see `tests/src/lib.rs` for the harness), one module per
//! area.

mod check;

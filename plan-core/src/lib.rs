//! The model and semantics of a cutover plan. No network, no clock, no output.
//!
//! `plan-core` reads a plan file (RON), checks it, and answers questions about
//! it. It is for everything that must be the same in rehearsal and in a real
//! run; it is *not* for performing steps (that is `plan-steps`) or printing
//! anything (that is `plan-cli`, which renders what this crate returns).
//!
//! Loading has two phases: the RON text becomes raw serde structs that keep
//! the byte span of every value the user wrote, and those become a validated
//! [`Plan`] with every name resolved. Then the verifier's rules run. Every
//! problem, from either phase, is a [`Diagnostic`] with a stable [`Rule`] code
//! and labelled places in the file.
//!
//! ```
//! use plan_core::{load_str, Settings, Source};
//!
//! let text = r#"Plan(
//!     name: "demo", service: "demo", window: Window(announced: "10m"),
//!     phases: [Phase(name: "window", at: "0", steps: [
//!         Step(id: "hello", action: Shell(on: "local", run: "echo hi", revert: Nothing("prints only")),
//!              check: Run("true")),
//!     ])],
//! )"#;
//! let loaded = load_str(Source::new("demo.ron", text), &Settings::default());
//! let plan = loaded.plan.expect("valid");
//! assert_eq!(plan.steps().count(), 1);
//! ```
#![warn(missing_docs)]

mod diagnostic;
pub mod duration;
mod hash;
pub mod journal;
mod load;
pub mod machine;
mod plan;
mod print;
mod raw;
pub mod secret;
mod span;
mod suggest;
pub mod template;
pub mod verify;

pub use diagnostic::{visible, Diagnostic, Diagnostics, Label, Rule, Severity, Source};
pub use hash::fnv1a;
pub use load::{
    check_hook_url, load_bytes, load_path, load_str, Loaded, ReadError, ReadErrorKind, Settings,
    ENV_PREFIX, MAX_PLAN_BYTES, RUN_DIR, RUN_DIR_UNSET,
};
pub use plan::*;
pub use print::to_ron;
pub use span::Span;
pub use suggest::closest;

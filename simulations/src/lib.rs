//! Rehearsal of cutover plans: a virtual clock and a simulated executor that
//! drive the same run machine as a real run, failure scenarios, the Monte
//! Carlo downtime estimate, the announcement text and plots.
//!
//! It is for answering, before the window, "how long will users be down,
//! how bad is the worst case, how likely is a rollback?". It is not for
//! anything that touches a host: effects are simulated, never performed;
//! and it does not print: callers render what it returns.
//!
//! # The estimate
//!
//! [`estimate`] drives the real run machine of `plan-core` (not a copy of
//! its logic) through many runs on a virtual clock: step durations are drawn
//! from the plan's duration models (or from durations measured in journals,
//! see [`Measured`]), attempts fail with the step's failure rate, deadlines
//! kill attempts that run too long, parallel steps overlap, rollbacks take
//! time. [`Scenario`]s change those assumptions or force events (see
//! [`scenario`] for the format and [`scenario::BUILTIN`] for the built-in
//! ones). The result, an [`Estimate`], holds the downtime and run-length
//! quantiles, the chance of a rollback, how runs ended and which steps
//! drive the tail. How each effect and the downtime are modelled is
//! described in [`executor`].
//!
//! The same [`Options::seed`] gives the same estimate, whatever
//! [`Options::threads`]. Memory does not grow with the number of runs.
//! A run of the 18-step seed plan costs about 3–4 µs on one core, most of
//! it in the run machine: 10,000 runs (enough for a quick figure; the
//! quantiles move by about a percent between seeds at that count) take a
//! few tens of milliseconds, 1,000,000 a couple of seconds on two cores.
//!
//! ```
//! use std::time::Duration;
//! use plan_core::{load_str, Settings, Source};
//! use simulations::{estimate, Options, Scenario};
//!
//! let text = r#"Plan(
//!     name: "demo", service: "demo", window: Window(announced: "1h"),
//!     phases: [Phase(name: "window", at: "0", steps: [
//!         Step(id: "stop", downtime: Begins,
//!              action: Shell(on: "local", run: "true", revert: Run("true")), check: Run("true")),
//!         Step(id: "copy", action: Wait("1m"),
//!              duration: Pert(min: "10m", likely: "15m", max: "40m"), deadline: "35m"),
//!         Step(id: "start", downtime: Ends,
//!              action: Shell(on: "local", run: "true", revert: Run("true")), check: Run("true")),
//!     ])],
//! )"#;
//! let plan = load_str(Source::new("demo.ron", text), &Settings::default()).plan.expect("valid");
//!
//! let options = Options { runs: 10_000, seed: 7, ..Options::default() };
//! let likely = estimate(&plan, &options)?;
//! assert!(likely.downtime.p50 > Duration::from_secs(10 * 60));
//! assert!(likely.downtime.p95 >= likely.downtime.p50);
//! // The announced window might be the P95 of the downtime, rollbacks included:
//! let _announce = likely.downtime_quantile(0.95);
//!
//! // What if the copy always overruns its deadline? (The built-in
//! // `rsync-overrun` does this to `Rsync` steps; the demo's copy is a `Wait`.)
//! let overrun = Scenario::parse(
//!     "overrun",
//!     r#"Scenario(description: "the copy overruns", steps: { "copy": Override(force: DeadlineExceeded) })"#,
//! )?;
//! let worst = estimate(&plan, &Options { scenarios: vec![overrun], ..options })?;
//! assert_eq!(worst.rollback_probability, 1.0);
//! assert!(worst.downtime.p50 >= Duration::from_secs(35 * 60));
//! # Ok::<(), simulations::SimError>(())
//! ```
//!
//! For the announced *window* (how long the maintenance lasts, not only the
//! outage), use [`Estimate::duration`] with [`Options::phase`] set to the
//! window's phase: the run length includes rollbacks.
#![warn(missing_docs)]

pub mod announce;
pub mod downtime_chart;
mod error;
mod estimate;
pub mod executor;
pub mod gantt;
pub mod histogram;
pub mod measured;
mod model;
mod outage;
pub mod position;
pub mod random;
pub mod sampling;
pub mod scenario;
mod tally;
pub mod timeline;

/// 100000 as "100,000", for reports.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub use error::SimError;
pub use estimate::{
    estimate, estimate_from, EndShare, EndState, Estimate, HaltCause, Options, OutageDowntime,
    Quantiles, TailDriver, DEFAULT_RUNS, DEFAULT_SEED, UNAVAILABLE,
};
pub use histogram::Histogram;
pub use measured::{Measured, ProbedCopy};
pub use position::Position;
pub use scenario::Scenario;

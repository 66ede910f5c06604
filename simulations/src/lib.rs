//! Rehearsal of cutover plans: a virtual clock and a simulated executor that
//! drive the same run machine as a real run, failure scenarios, the Monte
//! Carlo downtime estimate, the announcement text and plots.
//!
//! It is not for anything that touches a host: simulated effects only.
//!
//! **Status:** nothing is implemented here yet. Simulation is tracked as its
//! own issue; until it lands, `cutover` has no `simulate`, `announce` or
//! `timeline` verb.
#![warn(missing_docs)]

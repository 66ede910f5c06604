//! One module per verb.

pub mod check;
pub mod graph;
pub mod status;

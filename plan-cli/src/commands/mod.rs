//! One module per verb.

pub mod check;
pub mod graph;
pub mod resume;
pub mod run;
pub mod status;
pub mod timeline;

//! One module per verb.

pub mod announce;
pub mod check;
pub mod completions;
pub mod graph;
pub mod man;
pub mod print;
pub mod probe;
pub mod resume;
pub mod run;
pub mod simulate;
pub mod status;
pub mod timeline;
pub mod watch;

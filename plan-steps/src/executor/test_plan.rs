//! For the executor's tests: a plan from RON steps, and a journal that keeps what is reported.

use std::path::Path;
use std::sync::{Arc, Mutex};

use plan_core::{Plan, Settings, Source};
use tokio::sync::mpsc;

use super::{Executor, Report, Reporter};

/// A plan of `steps` (RON `Step(..)` items, comma-separated) in one phase,
/// with the plan variable `dir` set to `dir`; `extra` goes into the
/// `Plan(..)` as written (e.g. `hosts: {..},`).
pub(super) fn plan(dir: &Path, extra: &str, steps: &str) -> Arc<Plan> {
    let text = format!(
        r#"Plan(
            name: "executor test", service: "test", window: Window(announced: "1h"),
            vars: {{ "dir": "{dir}" }},
            {extra}
            phases: [Phase(name: "now", at: "0", steps: [{steps}])],
        )"#,
        dir = dir.display()
    );
    let loaded = plan_core::load_str(Source::new("test.ron", text), &Settings::default());
    match loaded.plan {
        Some(plan) => Arc::new(plan),
        None => panic!("the test plan does not load: {:?}", loaded.diagnostics),
    }
}

/// What the executor reported: captured states are acknowledged at once, as
/// the driver does once they are on disk.
#[derive(Clone, Default)]
pub(super) struct Journal {
    /// `(step, state)` of each capture, in order.
    pub(super) captured: Arc<Mutex<Vec<(String, String)>>>,
    /// `(step, files)` of each transfer, in order.
    pub(super) transferred: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Journal {
    /// An executor for `plan` reporting to a new journal. Needs a Tokio
    /// runtime: a task receives the reports.
    pub(super) fn executor(plan: Arc<Plan>) -> (Executor, Journal) {
        let (to, mut reports) = mpsc::unbounded_channel();
        let journal = Journal::default();
        let kept = journal.clone();
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                match report {
                    Report::Captured { step, state, ack } => {
                        kept.captured.lock().unwrap().push((step, state));
                        let _ = ack.send(());
                    }
                    Report::Transferred { step, files, .. } => {
                        kept.transferred.lock().unwrap().push((step, files));
                    }
                    Report::Spawned { .. } | Report::Note { .. } => {}
                }
            }
        });
        (Executor::new(plan).reporting(Reporter::new(to)), journal)
    }

    /// The states captured so far.
    pub(super) fn captured(&self) -> Vec<(String, String)> {
        self.captured.lock().unwrap().clone()
    }

    /// The transfers reported so far, once the journal's task has had the
    /// chance to receive them (reports other than captures are not waited
    /// for by the executor).
    pub(super) async fn transferred(&self) -> Vec<(String, u64)> {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        self.transferred.lock().unwrap().clone()
    }
}

/// A fresh scratch directory.
pub(super) fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

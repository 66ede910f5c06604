//! What a step tells while it runs: its transcript, and reports for the journal.

use tokio::sync::{mpsc, oneshot};

use super::failure::Failure;
use super::Executor;
use crate::command::ShellOutcome;
use plan_core::machine::ProcessGroup;

/// What a step printed, for the journal and the live view.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    /// Combined output of the commands run, each introduced by `$ command`.
    pub text: String,
}

impl Transcript {
    pub(super) fn add(&mut self, host: &str, command: &str, outcome: &ShellOutcome) {
        self.text
            .push_str(&format!("[{host}] $ {command}\n{}", outcome.output));
        if !outcome.output.is_empty() && !outcome.output.ends_with('\n') {
            self.text.push('\n');
        }
        if outcome.dropped_bytes > 0 {
            self.text.push_str(&format!(
                "[{} bytes of output left out]\n",
                outcome.dropped_bytes
            ));
        }
    }

    pub(super) fn note(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
    }
}

/// What a step tells the driver while it runs, for the journal.
#[derive(Debug)]
pub enum Report {
    /// A command's process group began (here or on an SSH host).
    Spawned {
        /// Step id.
        step: String,
        /// Where it runs.
        group: ProcessGroup,
    },
    /// Prior state, captured before the change; the change waits for `ack`,
    /// which the driver sends once the record is on disk.
    Captured {
        /// Step id.
        step: String,
        /// The state, as text.
        state: String,
        /// Sent once journaled.
        ack: oneshot::Sender<()>,
    },
    /// Something the operator should know while the step runs (why it
    /// waits, for instance).
    Note {
        /// Step id.
        step: String,
        /// What to say.
        text: String,
    },
    /// What a copy moved.
    Transferred {
        /// Step id.
        step: String,
        /// Files transferred.
        files: u64,
        /// Bytes of file data transferred.
        bytes: u64,
        /// Wall time in milliseconds.
        millis: u64,
    },
}

/// Sends [`Report`]s to the driver.
#[derive(Clone, Debug)]
pub struct Reporter(mpsc::UnboundedSender<Report>);

impl Reporter {
    /// A reporter sending on `to`.
    pub fn new(to: mpsc::UnboundedSender<Report>) -> Reporter {
        Reporter(to)
    }

    /// Journals a capture and waits until it is on disk.
    pub async fn captured(&self, step: &str, state: String) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.0
            .send(Report::Captured {
                step: step.to_owned(),
                state,
                ack,
            })
            .map_err(|_| "the journal is gone: not changing anything".to_owned())?;
        done.await.map_err(|_| {
            "the captured state could not be journaled: not changing anything".to_owned()
        })
    }

    pub(super) fn send(&self, report: Report) {
        let _ = self.0.send(report);
    }
}

impl Executor {
    /// Tells the operator (through the journal) what the step is doing.
    pub(super) fn note(&self, step: &str, text: String) {
        if let Some(reporter) = &self.reporter {
            reporter.send(Report::Note {
                step: step.to_owned(),
                text,
            });
        }
    }

    /// Journals `state`, captured before the change it protects, and waits
    /// until it is on disk.
    pub(super) async fn capture(&self, step: &str, state: String) -> Result<(), Failure> {
        match &self.reporter {
            Some(reporter) => reporter
                .captured(step, state)
                .await
                .map_err(Failure::Failed),
            // Without a journal (e.g. in tests) there is nowhere to keep it.
            None => Ok(()),
        }
    }
}

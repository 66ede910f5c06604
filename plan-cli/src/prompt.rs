//! Reading the operator's answers.
//!
//! One thread owns standard input and hands over whole lines through a
//! channel, so waiting for an answer never blocks the run's thread: steps
//! running in parallel go on, the journal is written, a long wait is said
//! and journaled, and a Ctrl-C (or the end of input) ends the wait instead
//! of leaving the run stuck in a `read`. Lines typed before a question was
//! shown are not taken as its answer.
//!
//! Prompts are written to stderr; the live view is hidden meanwhile (see
//! [`crate::live::View::pause`]), so the question and the typed answer are
//! never drawn over.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use tokio::sync::{mpsc, watch};

/// What came back from a prompt.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A line the operator typed, trimmed.
    Line(String),
    /// Ctrl-C was pressed while waiting.
    Interrupted,
}

/// The receiving end of the stdin thread; taken out while a prompt waits.
type Lines = mpsc::UnboundedReceiver<String>;

fn lines() -> &'static Mutex<Option<Lines>> {
    static LINES: OnceLock<Mutex<Option<Lines>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let (sender, receiver) = mpsc::unbounded_channel();
        // Lives as long as the process; ends when input ends (the sender
        // is then dropped, which a waiting prompt sees as closed input).
        let spawned = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                for line in stdin.lock().lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        // Without the thread, prompts find the input closed.
        Mutex::new(spawned.ok().map(|_| receiver))
    })
}

/// Takes the line reader for one question, dropping lines typed ahead.
struct Taken(Option<Lines>);

impl Taken {
    fn new(question: &str) -> Result<Taken, String> {
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "no terminal to ask \"{}\"",
                question.lines().next().unwrap_or(question).trim()
            ));
        }
        let mut taken = lines()
            .lock()
            .map_err(|_| "the input reader failed".to_owned())?
            .take()
            .ok_or_else(|| "standard input was closed".to_owned())?;
        while taken.try_recv().is_ok() {}
        Ok(Taken(Some(taken)))
    }

    fn receiver(&mut self) -> &mut Lines {
        // invariant: `Taken` holds the reader from `new` until it is dropped.
        self.0.as_mut().expect("the reader is held until drop")
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let (Some(reader), Ok(mut slot)) = (self.0.take(), lines().lock()) {
            *slot = Some(reader);
        }
    }
}

fn show(question: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} ");
    let _ = err.flush();
}

fn closed() -> String {
    "standard input was closed before an answer".to_owned()
}

/// Asks `question` and waits for a line, outside the async runtime (before
/// a run starts). Ctrl-C here ends the program: nothing has started.
pub fn ask_blocking(question: &str) -> Result<String, String> {
    let mut taken = Taken::new(question)?;
    show(question);
    taken
        .receiver()
        .blocking_recv()
        .map(|l| l.trim().to_owned())
        .ok_or_else(closed)
}

/// Asks `question` and waits for a line or a Ctrl-C (a change of
/// `interrupts` after the question was shown).
pub async fn ask(question: &str, interrupts: &mut watch::Receiver<u32>) -> Result<Reply, String> {
    let mut taken = Taken::new(question)?;
    interrupts.borrow_and_update();
    show(question);
    tokio::select! {
        line = taken.receiver().recv() => line
            .map(|l| Reply::Line(l.trim().to_owned()))
            .ok_or_else(closed),
        changed = interrupts.changed() => match changed {
            Ok(()) => {
                eprintln!();
                Ok(Reply::Interrupted)
            }
            // Nobody watches Ctrl-C any more: wait for the line alone.
            Err(_) => taken
                .receiver()
                .recv()
                .await
                .map(|l| Reply::Line(l.trim().to_owned()))
                .ok_or_else(closed),
        },
    }
}

/// Whether `answer` is a yes.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Asks a yes/no question before the run starts; anything but `y`/`yes`
/// is a no. `Err` without a terminal.
pub fn ask_yes_no(question: &str) -> Result<bool, String> {
    ask_blocking(&format!("{question} [y/N]")).map(|a| is_yes(&a))
}

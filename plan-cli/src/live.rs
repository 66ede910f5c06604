//! What a run shows while it goes: a live view on a terminal, plain lines
//! otherwise, or one JSON object per line with `--json`; and the operator's
//! prompts.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan_core::machine::{Effect, Event, RunEnd};
use plan_core::{duration::format_duration, Plan, Step};
use plan_steps::driver::{Operator, Progress};
use serde::Serialize;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Spinners per running step on a terminal.
    Live,
    /// One line per change, for logs.
    Plain,
    /// One JSON object per line on stdout.
    Json,
}

impl Mode {
    /// Live on a terminal, plain otherwise, JSON when asked.
    pub fn pick(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// Renders [`Progress`] for people or programs.
pub struct View {
    mode: Mode,
    plan: Arc<Plan>,
    bars: MultiProgress,
    running: HashMap<String, (ProgressBar, Instant)>,
    /// The rollback point in force while each step runs.
    points: HashMap<String, String>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    #[serde(flatten)]
    what: JsonWhat<'a>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JsonWhat<'a> {
    Effect { effect: &'a Effect },
    Event { event: &'a Event },
    Transition { from: &'a str, to: &'a str },
    Output { step: &'a str, text: &'a str },
    End { end: &'a RunEnd },
    Note { text: &'a str },
}

impl View {
    /// A view of a run of `plan`.
    pub fn new(mode: Mode, plan: Arc<Plan>, schedule: &plan_core::machine::Schedule) -> View {
        let points = schedule
            .steps
            .iter()
            .map(|s| {
                let point = if s.past_no_return {
                    "none, past the point of no return".to_owned()
                } else {
                    s.rollback_point.clone()
                };
                (s.id.clone(), point)
            })
            .collect();
        let target = if mode == Mode::Live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        View {
            mode,
            plan,
            bars: MultiProgress::with_draw_target(target),
            running: HashMap::new(),
            points,
        }
    }

    fn json(&self, what: JsonWhat<'_>) {
        let line = JsonLine {
            time: jiff::Timestamp::now().to_string(),
            what,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// Prints a line for people (above the live bars).
    pub fn note(&self, text: &str) {
        match self.mode {
            Mode::Json => self.json(JsonWhat::Note { text }),
            Mode::Live => {
                let _ = self.bars.println(text);
            }
            Mode::Plain => eprintln!("{text}"),
        }
    }

    fn title(&self, id: &str) -> String {
        self.plan
            .step(id)
            .map_or_else(|| id.to_owned(), |s| format!("{} ({})", s.id, s.title))
    }

    fn start_bar(&mut self, id: &str, what: &str) {
        let deadline = self
            .plan
            .step(id)
            .and_then(|s| s.deadline)
            .map(|d| format!(" / deadline {}", format_duration(d)));
        let point = self
            .points
            .get(id)
            .map(|p| format!(" · rollback point: {p}"))
            .unwrap_or_default();
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!(
            "{}] {what} {}{point}",
            deadline.unwrap_or_default(),
            self.title(id)
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
        if self.mode == Mode::Plain {
            eprintln!("{what} {}", self.title(id));
        }
        self.running.insert(id.to_owned(), (bar, Instant::now()));
    }

    fn end_bar(&mut self, id: &str, mark: &str, text: &str) {
        let elapsed = match self.running.remove(id) {
            Some((bar, started)) => {
                bar.finish_and_clear();
                self.bars.remove(&bar);
                format!(" ({})", format_elapsed(started.elapsed()))
            }
            None => String::new(),
        };
        self.note(&format!(
            "{mark} {}{elapsed}{}",
            self.title(id),
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        ));
    }

    /// Shows one piece of progress.
    pub fn show(&mut self, progress: &Progress) {
        if self.mode == Mode::Json {
            match progress {
                Progress::Effect(effect) => self.json(JsonWhat::Effect { effect }),
                Progress::Event(event) => self.json(JsonWhat::Event { event }),
                Progress::Transition { from, to } => self.json(JsonWhat::Transition { from, to }),
                Progress::Output { step, text } => self.json(JsonWhat::Output { step, text }),
            }
            return;
        }
        match progress {
            Progress::Effect(Effect::Forward { step, attempt }) => {
                let what = if *attempt > 1 {
                    format!("retrying (attempt {attempt})")
                } else {
                    "running".into()
                };
                self.start_bar(step, &what);
            }
            Progress::Effect(Effect::Check { step }) => {
                self.start_bar(step, "checking whether it took effect:")
            }
            Progress::Effect(Effect::Revert { step }) => self.start_bar(step, "reverting"),
            Progress::Effect(Effect::Preflight { hosts }) => {
                self.note(&format!("preflight: hosts {}", hosts.join(", ")))
            }
            Progress::Event(Event::StepSucceeded { step }) => self.end_bar(step, "✓", ""),
            Progress::Event(Event::StepFailed { step, reason }) => self.end_bar(step, "✗", reason),
            Progress::Event(Event::CheckFailed { step, reason }) => {
                self.end_bar(step, "✗", &format!("{reason}; its effect will be undone"))
            }
            Progress::Event(Event::DeadlineExceeded { step }) => self.end_bar(
                step,
                "✗",
                "ran past its deadline; its processes were killed",
            ),
            Progress::Event(Event::StepInDoubt { step, reason }) => {
                self.end_bar(step, "?", &format!("in doubt: {reason}"))
            }
            Progress::Event(Event::Checked { step, done }) => self.end_bar(
                step,
                "·",
                if *done {
                    "its check says it took effect"
                } else {
                    "its check says it did not take effect"
                },
            ),
            Progress::Event(Event::RevertSucceeded { step }) => self.end_bar(step, "↶", "reverted"),
            Progress::Event(Event::RevertFailed { step, reason }) => {
                self.end_bar(step, "✗", &format!("revert failed: {reason}"))
            }
            Progress::Event(Event::OperatorConfirmed { step }) => self.note(&format!(
                "✓ {} (confirmed by the operator)",
                self.title(step)
            )),
            Progress::Event(Event::OperatorDeclined { step }) => self.note(&format!(
                "✗ {} (declined by the operator)",
                self.title(step)
            )),
            Progress::Event(Event::Abort { reason }) => {
                self.note(&format!("! abort: {reason}; rolling back"))
            }
            Progress::Event(Event::PreflightFailed { reason }) => {
                self.note(&format!("✗ preflight failed: {reason}"))
            }
            Progress::Transition { to, .. } => {
                if to.starts_with("Reverting") {
                    self.note("rolling back: undoing completed steps in reverse order");
                }
            }
            Progress::Output { .. } | Progress::Event(_) | Progress::Effect(_) => {}
        }
    }

    /// Shows how the run ended.
    pub fn end(&mut self, end: &RunEnd) {
        for (_, (bar, _)) in self.running.drain() {
            bar.finish_and_clear();
        }
        if self.mode == Mode::Json {
            self.json(JsonWhat::End { end });
            return;
        }
        let text = match end {
            RunEnd::Completed => "completed: every step succeeded".to_owned(),
            RunEnd::Halted { reason, .. } if crate::session::refused_at_preflight(end) => {
                format!("not started: {reason}; nothing was changed")
            }
            RunEnd::RolledBack { point, cause } => format!("rolled back to `{point}`: {cause}"),
            RunEnd::Halted { step, reason, done, left } => format!(
                "HALTED{}: {reason}\n  done: {}\n  left: {}\n  an operator must look before anything else happens",
                step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default(),
                if done.is_empty() { "nothing".into() } else { done.join(", ") },
                if left.is_empty() { "nothing".into() } else { left.join(", ") },
            ),
        };
        eprintln!("{text}");
    }

    /// Runs `f` with the live bars hidden (for prompts).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bars.suspend(f)
    }
}

fn format_elapsed(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format_duration(Duration::from_secs(d.as_secs()))
    }
}

/// Answers of the operator at a terminal, or fixed by flags.
pub struct TtyOperator {
    /// `--yes`: manual steps count as confirmed without asking.
    pub yes: bool,
    /// `--assume done|not-done` for in-doubt steps without a check.
    pub assume: Option<bool>,
    /// The view, to hide bars while asking.
    pub view: Arc<Mutex<View>>,
}

/// Asks a yes/no question on the terminal; `Err` without one.
pub fn ask_yes_no(question: &str) -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!("no terminal to ask \"{question}\""));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

impl TtyOperator {
    fn ask(&self, question: String) -> Result<bool, String> {
        match self.view.lock() {
            Ok(view) => view.suspend(|| ask_yes_no(&question)),
            Err(_) => ask_yes_no(&question),
        }
    }
}

impl Operator for TtyOperator {
    async fn confirm(&mut self, step: &Step) -> Result<bool, String> {
        if self.yes {
            return Ok(true);
        }
        let prompt = match &step.action {
            plan_core::Action::Manual { prompt, .. } => prompt.clone(),
            _ => step.title.clone(),
        };
        self.ask(format!(
            "MANUAL STEP `{}`: {}\n  {prompt}\n  Done?",
            step.id, step.title
        ))
    }

    async fn ask_done(&mut self, step: &Step) -> Result<bool, String> {
        if let Some(done) = self.assume {
            return Ok(done);
        }
        self.ask(format!(
            "Step `{}` ({}) was under way when the run stopped and has no check. Did it take effect?",
            step.id, step.title
        ))
        .map_err(|e| format!("{e}; pass --assume done or --assume not-done"))
    }

    async fn revert_by_hand(&mut self, step: &Step, instructions: &str) -> Result<bool, String> {
        self.ask(format!(
            "UNDO BY HAND `{}`: {instructions}\n  Done?",
            step.id
        ))
    }
}

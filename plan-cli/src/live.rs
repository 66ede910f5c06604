//! What a run shows while it goes: a live view on a terminal, plain lines
//! otherwise, or one JSON object per line with `--json`.
//!
//! The live view owns the terminal while it is shown: everything a run says
//! goes through it ([`View::note`] prints above the bars), and a prompt
//! takes the terminal over only after [`View::pause`] has hidden the bars.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan_core::machine::{AnsweredBy, Effect, Event, FailureChoice, Question, RunEnd, RunRecord};
use plan_core::{duration::format_duration, Plan};
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

/// How many last lines of a failed step's output are shown by default.
pub const FAILURE_LINES: usize = 10;

/// Renders the run's journal records for people or programs.
pub struct View {
    mode: Mode,
    plan: Arc<Plan>,
    bars: MultiProgress,
    running: HashMap<String, (ProgressBar, Instant)>,
    /// The rollback point in force while each step runs.
    points: HashMap<String, String>,
    /// A prompt has the terminal: the bars are hidden, notes go straight
    /// to stderr.
    paused: bool,
    /// Who gave the last answer (a person or a flag), for the note on the
    /// event it leads to: the screen says what the journal says.
    answered_by: Option<AnsweredBy>,
    /// The output of each step's last command, journaled just before the
    /// event that ends it: a failure shows its last lines.
    outputs: HashMap<String, String>,
    /// How many of those lines a failure shows.
    failure_lines: usize,
}

/// One line of `--json`: a journal record as the journal holds it (`entry`),
/// or the run's end, or a note for people.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: &'a str,
    #[serde(flatten)]
    what: JsonWhat<'a>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JsonWhat<'a> {
    Record { entry: &'a RunRecord },
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
        let bars = MultiProgress::with_draw_target(target);
        if mode == Mode::Live {
            crate::logging::set_live(Some(bars.clone()));
        }
        View {
            mode,
            plan,
            bars,
            running: HashMap::new(),
            points,
            paused: false,
            answered_by: None,
            outputs: HashMap::new(),
            failure_lines: FAILURE_LINES,
        }
    }

    /// Shows this many last lines of a failed step's output (0: none).
    pub fn with_failure_lines(mut self, lines: usize) -> View {
        self.failure_lines = lines;
        self
    }

    /// The last lines of what `step`'s last command printed, indented, for
    /// a failure: the reason is usually there.
    fn failure_output(&mut self, step: &str) {
        let Some(text) = self.outputs.remove(step) else {
            return;
        };
        if self.failure_lines == 0 {
            return;
        }
        let lines: Vec<&str> = text.lines().collect();
        let skipped = lines.len().saturating_sub(self.failure_lines);
        let mut shown = String::new();
        if skipped > 0 {
            shown.push_str(&format!(
                "    | ... {skipped} line{} before (all of it: `cutover status PLAN --journal J --output {step}`)\n",
                if skipped == 1 { "" } else { "s" }
            ));
        }
        for line in &lines[skipped..] {
            shown.push_str(&format!("    | {line}\n"));
        }
        self.note(shown.trim_end());
    }

    fn json(&self, what: JsonWhat<'_>) {
        self.json_at(&jiff::Timestamp::now().to_string(), what);
    }

    fn json_at(&self, time: &str, what: JsonWhat<'_>) {
        let line = JsonLine { time, what };
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
            Mode::Live if !self.paused => {
                let _ = self.bars.println(text);
            }
            Mode::Live | Mode::Plain => eprintln!("{text}"),
        }
    }

    fn title(&self, id: &str) -> String {
        self.plan
            .step(id)
            .map_or_else(|| id.to_owned(), |s| format!("{} ({})", s.id, s.title))
    }

    /// Whether `id` is a wait, which has no check: an interrupted one is
    /// settled by the time since it began.
    fn is_wait(&self, id: &str) -> bool {
        self.plan.step(id).is_some_and(|s| {
            matches!(
                s.action,
                plan_core::Action::Wait(_) | plan_core::Action::WaitTtl { .. }
            )
        })
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
            // `wide_msg`: cut to the terminal's width, so a long title never
            // wraps (a wrapped line is redrawn as garbage).
            ProgressStyle::with_template("{spinner} [{elapsed}{wide_msg}")
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

    /// Shows one journal record, just written at `time`.
    pub fn show(&mut self, time: &str, record: &RunRecord) {
        if self.mode == Mode::Json {
            self.json_at(time, JsonWhat::Record { entry: record });
            return;
        }
        match record {
            RunRecord::EffectStarted {
                effect: Effect::Forward { step, attempt },
            } => {
                let what = if *attempt > 1 {
                    format!("retrying (attempt {attempt})")
                } else {
                    "running".into()
                };
                self.start_bar(step, &what);
            }
            RunRecord::EffectStarted {
                effect: Effect::Check { step },
            } if self.is_wait(step) => {
                self.start_bar(step, "has the interrupted wait's time passed?")
            }
            RunRecord::EffectStarted {
                effect: Effect::Check { step },
            } => self.start_bar(step, "checking whether it took effect:"),
            RunRecord::EffectStarted {
                effect: Effect::Revert { step },
            } => self.start_bar(step, "reverting"),
            RunRecord::EffectStarted {
                effect: Effect::Preflight { hosts },
            } => self.note(&format!("preflight: hosts {}", hosts.join(", "))),
            RunRecord::Event {
                event: Event::StepSucceeded { step },
            } => {
                self.outputs.remove(step);
                self.end_bar(step, "✓", "");
            }
            RunRecord::Note { step, text } => self.note(&format!("· {}: {text}", self.title(step))),
            RunRecord::Output { step, text } => {
                self.outputs.insert(step.clone(), text.clone());
            }
            RunRecord::Event {
                event: Event::StepFailed { step, reason },
            } => {
                self.end_bar(step, "✗", reason);
                self.failure_output(step);
            }
            RunRecord::Event {
                event: Event::CheckFailed { step, reason },
            } => {
                self.end_bar(step, "✗", &format!("{reason}; its effect will be undone"));
                self.failure_output(step);
            }
            RunRecord::Event {
                event: Event::DeadlineExceeded { step },
            } => {
                self.end_bar(
                    step,
                    "✗",
                    "ran past its deadline; its processes were killed",
                );
                self.failure_output(step);
            }
            RunRecord::Event {
                event: Event::StepInDoubt { step, reason },
            } => self.end_bar(step, "?", &format!("in doubt: {reason}")),
            RunRecord::Event {
                event: Event::Checked { step, done },
            } if self.is_wait(step) => self.end_bar(
                step,
                "·",
                if *done {
                    "its time has passed since it began"
                } else {
                    "not over: it goes on from when it began"
                },
            ),
            RunRecord::Event {
                event: Event::Checked { step, done },
            } => self.end_bar(
                step,
                "·",
                if *done {
                    "its check says it took effect"
                } else {
                    "its check says it did not take effect"
                },
            ),
            RunRecord::Event {
                event: Event::RevertSucceeded { step },
            } => {
                self.outputs.remove(step);
                self.end_bar(step, "↶", "reverted");
            }
            RunRecord::Event {
                event: Event::RevertFailed { step, reason },
            } => {
                self.end_bar(step, "✗", &format!("revert failed: {reason}"));
                self.failure_output(step);
            }
            RunRecord::Answered { by, .. } => self.answered_by = Some(*by),
            RunRecord::Event {
                event: Event::OperatorConfirmed { step },
            } => self.note(&format!(
                "✓ {} (confirmed {})",
                self.title(step),
                match self.answered_by {
                    Some(AnsweredBy::Flag) => "in advance with --confirm",
                    _ => "by the operator",
                }
            )),
            RunRecord::Event {
                event: Event::OperatorDeclined { step },
            } => self.note(&format!(
                "✗ {} (declined by the operator)",
                self.title(step)
            )),
            RunRecord::Event {
                event: Event::Abort { reason },
            } => self.note(&format!("! abort: {reason}; rolling back")),
            RunRecord::Event {
                event: Event::PreflightFailed { reason },
            } => self.note(&format!("✗ preflight failed: {reason}")),
            RunRecord::Event {
                event: Event::CrossedNoReturn,
            } => self.note(match self.answered_by {
                Some(AnsweredBy::Flag) => {
                    "→ crossed the point of no return (--yes): from here on a failure halts"
                }
                _ => "→ crossed the point of no return: from here on a failure halts",
            }),
            RunRecord::Event {
                event: Event::OperatorChose { step, choice },
            } => self.note(&format!(
                "· {}: {} to {}",
                self.title(step),
                match self.answered_by {
                    Some(AnsweredBy::Flag) => "--yes chose",
                    _ => "the operator chose",
                },
                match choice {
                    FailureChoice::Retry => "retry it",
                    FailureChoice::Rollback => "roll back",
                    FailureChoice::Halt => "halt",
                }
            )),
            RunRecord::OperatorWaiting {
                step,
                question,
                waited_ms,
            } => self.note(&format!(
                "… still waiting for the operator ({}) {}: the run is paused{}",
                format_duration(Duration::from_secs(waited_ms / 1000)),
                match question {
                    Question::Confirm => "to confirm a manual step",
                    Question::InDoubt => "to say whether an in-doubt step took effect",
                    Question::RevertByHand => "to undo a step by hand",
                    Question::CrossNoReturn => "to type `go` at the point of no return",
                    Question::OnFailure => "to choose retry, roll back or halt",
                },
                step.as_ref()
                    .map(|s| format!(" at `{s}`"))
                    .unwrap_or_default()
            )),
            RunRecord::Transition { to, .. } if to.starts_with("Reverting") => {
                self.note("rolling back: undoing completed steps in reverse order")
            }
            _ => {}
        }
    }

    /// Shows how the run ended.
    pub fn end(&mut self, end: &RunEnd) {
        for (_, (bar, _)) in self.running.drain() {
            bar.finish_and_clear();
        }
        crate::logging::set_live(None);
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
            RunEnd::Halted {
                step,
                reason,
                done,
                left,
                ..
            } => format!(
                "HALTED{}: {reason}\n  done: {}\n  left: {}\n  an operator must look before anything else happens",
                step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default(),
                if done.is_empty() { "nothing".into() } else { done.join(", ") },
                if left.is_empty() { "nothing".into() } else { left.join(", ") },
            ),
        };
        eprintln!("{text}");
    }

    /// Hides the live view while a prompt has the terminal.
    pub fn pause(&mut self) {
        if self.mode == Mode::Live && !self.paused {
            let _ = self.bars.clear();
            self.bars.set_draw_target(ProgressDrawTarget::hidden());
        }
        self.paused = true;
    }

    /// Shows the live view again after a prompt.
    pub fn resume(&mut self) {
        if self.mode == Mode::Live && self.paused {
            self.bars.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.paused = false;
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // Log lines go straight to stderr once the view is gone.
        if self.mode == Mode::Live {
            crate::logging::set_live(None);
        }
    }
}

fn format_elapsed(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format_duration(Duration::from_secs(d.as_secs()))
    }
}

//! What a run shows while it goes: a live view on a terminal, plain lines
//! otherwise, or one JSON object per line with `--json`.
//!
//! The live view owns the terminal while it is shown: everything a run says
//! goes through it ([`View::note`] prints above the bars), and a prompt
//! takes the terminal over only after [`View::pause`] has hidden the bars.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan_core::machine::{
    AnsweredBy, Effect, Event, FailureChoice, Question, RunEnd, RunRecord, StepStatus,
};
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

/// At most this many running steps have a bar of their own; the others are
/// counted on the phase's line (a fleet runs a hundred hosts at once, and a
/// terminal has forty rows).
pub const MAX_BARS: usize = 8;

/// A run of more steps than this is shown in brief on a terminal: a line
/// per phase counts the steps done and running and the failures, instead of a line
/// per finished step (failures, reverts and doubts still get theirs).
pub const BRIEF_ABOVE: usize = 40;

/// At most this many names are listed where a run names steps or hosts
/// (a halt's done and left, preflight's hosts); the rest are counted.
pub const MAX_NAMES: usize = 12;

/// `names` joined with ", ", at most [`MAX_NAMES`] of them and then how
/// many more.
pub fn some_names<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(MAX_NAMES).map(AsRef::as_ref).collect();
    match names.len().saturating_sub(MAX_NAMES) {
        0 => shown.join(", "),
        more => format!("{}, and {more} more", shown.join(", ")),
    }
}

/// The steps of one phase of the run, counted for its line.
#[derive(Debug, Default)]
struct PhaseCount {
    name: String,
    total: usize,
    /// Steps done (before this run's view too, on resume).
    done: usize,
    /// Steps with something under way (forward, check or revert).
    running: usize,
    /// Failed attempts, checks and reverts.
    failures: usize,
    started: Option<Instant>,
    /// Its "done" line was printed.
    finished: bool,
}

/// A step with something under way.
struct Running {
    /// Its bar, when it has one (at most [`MAX_BARS`] in brief).
    bar: Option<ProgressBar>,
    started: Instant,
    /// What it does ("running", "reverting", ...), for a bar given later.
    what: String,
}

/// Renders the run's journal records for people or programs.
pub struct View {
    mode: Mode,
    plan: Arc<Plan>,
    bars: MultiProgress,
    /// Steps with something under way.
    running: HashMap<String, Running>,
    /// Steps done, for the phases' counts.
    done: HashSet<String>,
    /// Steps whose last forward attempt failed: their check finding the
    /// effect means a partial effect, not success.
    failed_last: HashSet<String>,
    /// A rollback is under way: no phase is "done" any more.
    rolling_back: bool,
    /// Running steps without a bar, in the order they started: the next to
    /// get one when a bar is free.
    unshown: Vec<String>,
    /// Shown in brief (more than [`BRIEF_ABOVE`] steps, on a terminal).
    brief: bool,
    /// Each step's phase (an index into `phases`).
    phase_of: HashMap<String, usize>,
    /// The run's phases and their counts.
    phases: Vec<PhaseCount>,
    /// The line of the phase under way, in brief.
    phase_bar: Option<ProgressBar>,
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
    /// `statuses` are the machine's (on resume, steps may be done already).
    pub fn new(
        mode: Mode,
        plan: Arc<Plan>,
        schedule: &plan_core::machine::Schedule,
        statuses: &[StepStatus],
    ) -> View {
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
        let mut phases: Vec<PhaseCount> = Vec::new();
        let mut phase_of = HashMap::new();
        let mut done = HashSet::new();
        for phase in &plan.phases {
            let ix = phases.len();
            let mut count = PhaseCount {
                name: phase.name.clone(),
                ..PhaseCount::default()
            };
            for entry in &phase.entries {
                if let plan_core::Entry::Step(step) = entry {
                    if let Some(at) = schedule.index_of(&step.id) {
                        phase_of.insert(step.id.clone(), ix);
                        count.total += 1;
                        if statuses.get(at) == Some(&StepStatus::Done) {
                            count.done += 1;
                            done.insert(step.id.clone());
                        }
                    }
                }
            }
            phases.push(count);
        }
        View {
            mode,
            plan,
            bars,
            running: HashMap::new(),
            done,
            failed_last: HashSet::new(),
            rolling_back: false,
            unshown: Vec::new(),
            brief: mode == Mode::Live && schedule.steps.len() > BRIEF_ABOVE,
            phase_of,
            phases,
            phase_bar: None,
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
        if self.mode == Mode::Plain {
            eprintln!("{what} {}", self.title(id));
        }
        if let Some(before) = self.running.remove(id) {
            // Started again without an end shown: a new line.
            if let Some(bar) = before.bar {
                bar.finish_and_clear();
                self.bars.remove(&bar);
            }
            self.count(id, |c| c.running = c.running.saturating_sub(1));
        }
        self.unshown.retain(|u| u != id);
        let shown = self.running.values().filter(|r| r.bar.is_some()).count();
        let bar = if !self.brief || shown < MAX_BARS {
            Some(self.bar(id, what, Duration::ZERO))
        } else {
            self.unshown.push(id.to_owned());
            None
        };
        self.running.insert(
            id.to_owned(),
            Running {
                bar,
                started: Instant::now(),
                what: what.to_owned(),
            },
        );
        self.count(id, |c| {
            c.running += 1;
            c.started.get_or_insert_with(Instant::now);
        });
    }

    /// A running step's bar: elapsed against its deadline, what it does,
    /// the rollback point a failure would go back to.
    fn bar(&self, id: &str, what: &str, elapsed: Duration) -> ProgressBar {
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
        let spinner = ProgressBar::new_spinner().with_elapsed(elapsed);
        let bar = match &self.phase_bar {
            // Above the phase's line, which stays last.
            Some(line) => self.bars.insert_before(line, spinner),
            None => self.bars.add(spinner),
        };
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
        bar
    }

    /// Updates the counts of `id`'s phase, and its line in brief.
    fn count(&mut self, id: &str, change: impl FnOnce(&mut PhaseCount)) {
        let Some(&ix) = self.phase_of.get(id) else {
            return;
        };
        change(&mut self.phases[ix]);
        if !self.brief {
            return;
        }
        let line = match &self.phase_bar {
            Some(line) => line.clone(),
            None => {
                let line = self.bars.add(ProgressBar::new_spinner());
                line.set_style(
                    ProgressStyle::with_template("{wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                self.phase_bar = Some(line.clone());
                line
            }
        };
        let c = &self.phases[ix];
        let unshown = self.unshown.len();
        line.set_message(format!(
            "phase {}: {} of {} steps done, {} running{}{}",
            c.name,
            c.done,
            c.total,
            c.running,
            if unshown > 0 {
                format!(" ({unshown} not shown)")
            } else {
                String::new()
            },
            match c.failures {
                0 => String::new(),
                1 => ", 1 failure".to_owned(),
                n => format!(", {n} failures"),
            }
        ));
        if c.total > 0 && c.done == c.total && !c.finished && !self.rolling_back {
            let elapsed = c
                .started
                .map(|t| format!(" in {}", format_elapsed(t.elapsed())))
                .unwrap_or_default();
            let text = format!("✓ phase {}: {} steps done{elapsed}", c.name, c.total);
            self.phases[ix].finished = true;
            self.note(&text);
        }
    }

    fn end_bar(&mut self, id: &str, mark: &str, text: &str) {
        let elapsed = match self.running.remove(id) {
            Some(ended) => {
                if let Some(bar) = ended.bar {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                    // A bar is free: the longest-running step without one gets it.
                    if !self.unshown.is_empty() {
                        let next = self.unshown.remove(0);
                        if let Some(waiting) = self.running.get(&next) {
                            let bar = self.bar(&next, &waiting.what, waiting.started.elapsed());
                            if let Some(entry) = self.running.get_mut(&next) {
                                entry.bar = Some(bar);
                            }
                        }
                    }
                }
                self.unshown.retain(|u| u != id);
                self.count(id, |c| c.running = c.running.saturating_sub(1));
                format!(" ({})", format_elapsed(ended.started.elapsed()))
            }
            None => String::new(),
        };
        // In brief, a step that succeeded is counted on its phase's line.
        if self.brief && mark == "✓" {
            return;
        }
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

    /// `id` is done (`true`) or undone: its phase's count follows.
    fn set_done(&mut self, id: &str, done: bool) {
        let changed = if done {
            self.done.insert(id.to_owned())
        } else {
            self.done.remove(id)
        };
        if changed {
            self.count(id, |c| {
                if done {
                    c.done += 1;
                } else {
                    c.done = c.done.saturating_sub(1);
                }
            });
        }
    }

    /// A failed attempt, check or revert of `id`.
    fn failure(&mut self, id: &str) {
        self.count(id, |c| c.failures += 1);
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
            } => self.note(&format!("preflight: hosts {}", some_names(hosts))),
            RunRecord::Event {
                event: Event::StepSucceeded { step },
            } => {
                self.outputs.remove(step);
                self.failed_last.remove(step);
                self.end_bar(step, "✓", "");
                self.set_done(step, true);
            }
            RunRecord::Note { step, text } => self.note(&format!("· {}: {text}", self.title(step))),
            RunRecord::LockLost { reason } => self.note(&format!(
                "⚠ the run's lock is lost: {reason}. No step is started from now on; \
                 the steps under way finish, then the run stops (resume it once the lock can be held)"
            )),
            RunRecord::HookFailed {
                hook,
                event,
                step,
                error,
            } => self.note(&format!(
                "⚠ {hook} was not told of {event}{}: {error} (the run goes on)",
                step.as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            )),
            RunRecord::Output { step, text } => {
                self.outputs.insert(step.clone(), text.clone());
            }
            RunRecord::Event {
                event: Event::StepFailed { step, reason },
            } => {
                self.end_bar(step, "✗", reason);
                self.failed_last.insert(step.clone());
                self.failure(step);
                self.failure_output(step);
            }
            RunRecord::Event {
                event: Event::CheckFailed { step, reason },
            } => {
                self.end_bar(step, "✗", &format!("{reason}; its effect will be undone"));
                self.failure(step);
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
                self.failed_last.insert(step.clone());
                self.failure(step);
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
            } => {
                self.end_bar(
                    step,
                    "·",
                    if *done {
                        "its check says it took effect"
                    } else {
                        "its check says it did not take effect"
                    },
                );
                // An in-doubt step found done is done; a failed one found
                // with part of its effect is only to be undone.
                if *done && !self.failed_last.contains(step) {
                    self.set_done(step, true);
                }
            }
            RunRecord::Event {
                event: Event::RevertSucceeded { step },
            } => {
                self.outputs.remove(step);
                self.end_bar(step, "↶", "reverted");
                self.set_done(step, false);
            }
            RunRecord::Event {
                event: Event::RevertFailed { step, reason },
            } => {
                self.end_bar(step, "✗", &format!("revert failed: {reason}"));
                self.failure(step);
                self.failure_output(step);
            }
            RunRecord::Answered { by, .. } => self.answered_by = Some(*by),
            RunRecord::Event {
                event: Event::OperatorConfirmed { step },
            } => {
                self.note(&format!(
                    "✓ {} (confirmed {})",
                    self.title(step),
                    match self.answered_by {
                        Some(AnsweredBy::Flag) => "in advance with --confirm",
                        _ => "by the operator",
                    }
                ));
                self.set_done(step, true);
            }
            RunRecord::Event {
                event: Event::OperatorAnswered { step, done: true },
            } if !self.failed_last.contains(step) => self.set_done(step, true),
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
                self.rolling_back = true;
                self.note("rolling back: undoing completed steps in reverse order")
            }
            _ => {}
        }
    }

    /// Shows how the run ended.
    pub fn end(&mut self, end: &RunEnd) {
        for (_, running) in self.running.drain() {
            if let Some(bar) = running.bar {
                bar.finish_and_clear();
            }
        }
        if let Some(line) = self.phase_bar.take() {
            line.finish_and_clear();
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
                if done.is_empty() { "nothing".into() } else { some_names(done) },
                if left.is_empty() { "nothing".into() } else { some_names(left) },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_names_names_twelve_and_counts_the_rest() {
        let few = ["a", "b"];
        assert_eq!(some_names(&few), "a, b");
        let many: Vec<String> = (0..100).map(|i| format!("h{i:03}")).collect();
        let text = some_names(&many);
        assert!(text.starts_with("h000, h001,"), "{text}");
        assert!(text.ends_with("h011, and 88 more"), "{text}");
    }
}

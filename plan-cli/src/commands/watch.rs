//! `cutover watch JOURNAL`: follow a run from its journal, read-only, from
//! another terminal or login: the steps under way against their deadlines,
//! the rollback point in force, the last lines they printed, and the time
//! users have left to wait, simulated on from where the run is now.
//! `--serve ADDR` serves the same as a page.
//!
//! The journal is only read (never locked, never written): every record
//! is on disk before the work it announces starts, so the journal is the
//! run as far as anyone can know it. A torn last line (the writer is in
//! the middle of it) is left for the next look.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use plan_core::duration::format_duration;
use plan_core::journal::Record;
use plan_core::machine::{AttemptEnd, Effect, RunRecord, StepStatus};
use plan_core::{Plan, Settings};
use plan_steps::journal_file::{self, JournalFile, JournalFileErrorKind};
use serde::Serialize;
use simulations::{estimate, estimate_from, Options, Position};

use crate::{exit_codes, CliError, MeasuredArgs, PlanArgs};

/// Arguments of `cutover watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The run's journal (read only; it may not exist yet)
    #[arg(value_name = "JOURNAL")]
    journal: PathBuf,
    /// The plan the run executes [default: the journal's path without `.journal`]
    #[arg(long, value_name = "PLAN")]
    plan: Option<PathBuf>,
    /// Override a plan variable, as the run did; HOST.NAME=VALUE sets a host variable (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = Settings::parse_set)]
    set: Vec<(String, String)>,
    #[command(flatten)]
    measured: MeasuredArgs,
    /// How many simulated runs each estimate of the time left rests on
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// How often to look at the journal
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = plan_core::duration::parse_duration)]
    interval: Duration,
    /// Show the run once and exit
    #[arg(long)]
    once: bool,
    /// One JSON object per change (a line each) instead of text
    #[arg(long)]
    json: bool,
    /// Serve the view as a web page at this address (a port alone binds 127.0.0.1)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8377")]
    serve: Option<String>,
    /// How many of the last lines of output to show
    #[arg(long, value_name = "N", default_value_t = 5)]
    lines: usize,
    /// Show the run as it stood at this time (RFC 3339), from the records written by then
    #[arg(long, value_name = "TIME", conflicts_with = "serve")]
    as_of: Option<jiff::Timestamp>,
}

/// What the view shows, as text, JSON and the page.
#[derive(Clone, Debug, Serialize)]
struct View {
    plan: String,
    service: String,
    journal: String,
    /// waiting, running, stopped, completed, rolled back, halted.
    state: String,
    /// A sentence on the state.
    summary: String,
    started: Option<String>,
    now: String,
    elapsed_s: f64,
    /// Who holds the journal (the process running it), when known.
    holder: Option<String>,
    rollback_point: Option<String>,
    past_no_return: bool,
    /// How long users have been down, while they are.
    users_down_s: Option<f64>,
    /// How long users were down in all, once they are back.
    downtime_s: Option<f64>,
    phases: Vec<PhaseView>,
    running: Vec<RunningView>,
    last_output: Option<OutputView>,
    steps: Vec<StepView>,
    estimate: Option<EstimateView>,
    /// Why there is no estimate, when there is none.
    estimate_note: Option<String>,
    /// The estimate of the whole run before it started (the announcement's).
    announced: Option<EstimateView>,
}

#[derive(Clone, Debug, Serialize)]
struct PhaseView {
    name: String,
    done: usize,
    total: usize,
    running: usize,
    failed: usize,
}

#[derive(Clone, Debug, Serialize)]
struct RunningView {
    step: String,
    title: String,
    /// running, checking, reverting, waiting for the operator.
    what: String,
    attempt: u32,
    elapsed_s: f64,
    deadline_s: Option<f64>,
}

/// The last lines a step printed (the journal has a step's output once
/// its command has returned).
#[derive(Clone, Debug, Serialize)]
struct OutputView {
    step: String,
    lines: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
struct StepView {
    id: String,
    title: String,
    phase: String,
    status: String,
    /// Seconds from the run's start to the step's last start and end.
    start_s: Option<f64>,
    end_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
struct EstimateView {
    /// Time users have left to wait (the whole downtime before it begins).
    downtime_p50_s: f64,
    downtime_p95_s: f64,
    /// Time until the run ends.
    run_p50_s: f64,
    run_p95_s: f64,
    rollback_probability: f64,
    runs: u64,
}

/// Follows the journal until the run ends (or once).
pub fn cmd_watch(
    args: &WatchArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    if args.interval < Duration::from_millis(50) {
        return Err(CliError::Usage(format!(
            "--interval {:?}: look at the journal at most every 50 ms",
            args.interval
        )));
    }
    let plan_path = match &args.plan {
        Some(plan) => plan.clone(),
        None => plan_of(&args.journal)?,
    };
    let plan = PlanArgs {
        plan: plan_path,
        set: args.set.clone(),
    }
    .load_to_show(stderr)?;
    let measured = args.measured.load(stderr)?;
    if let Some(m) = &measured {
        m.check_plan(&plan)?;
    }
    let secrets = plan_steps::notify::secrets(&plan);
    let page = match &args.serve {
        Some(addr) => {
            let page = Page::serve(addr)?;
            writeln!(
                stderr,
                "serving the run's page at http://{}/ (read-only; Ctrl-C stops)",
                page.addr
            )?;
            Some(page)
        }
        None => None,
    };
    let live = !args.json && !args.once && args.as_of.is_none() && std::io::stdout().is_terminal();
    let mut watcher = Watcher {
        plan: &plan,
        journal: &args.journal,
        measured,
        runs: args.runs,
        lines: args.lines,
        secrets,
        past: args.as_of.is_some(),
        announced: None,
        estimate: None,
        estimated_at: None,
    };
    let mut last_records = usize::MAX;
    let mut said_waiting = false;
    let mut last_state = String::new();
    loop {
        let now = args.as_of.unwrap_or_else(jiff::Timestamp::now);
        let records = match JournalFile::read::<RunRecord>(&args.journal) {
            Ok(journal) => journal.records,
            Err(e) if matches!(e.kind, JournalFileErrorKind::NotFound) => {
                if args.once || args.as_of.is_some() {
                    return Err(CliError::Journal(format!(
                        "{}: no such journal (no run has started it yet)",
                        args.journal.display()
                    )));
                }
                if !said_waiting {
                    writeln!(
                        stderr,
                        "waiting for {} to appear (the run has not started)",
                        args.journal.display()
                    )?;
                    said_waiting = true;
                }
                std::thread::sleep(args.interval);
                continue;
            }
            Err(e) => return Err(CliError::Journal(e.to_string())),
        };
        let records: Vec<Record<RunRecord>> = match args.as_of {
            Some(at) => records
                .into_iter()
                .take_while(|r| r.time.parse::<jiff::Timestamp>().is_ok_and(|t| t <= at))
                .collect(),
            None => records,
        };
        let changed = records.len() != last_records;
        last_records = records.len();
        let view = watcher.view(&records, now, changed)?;
        if let Some(page) = &page {
            page.show(&view)?;
        }
        let finished = matches!(view.state.as_str(), "completed" | "rolled back" | "halted");
        // A run killed (or finished) changes its state, not always its
        // records: that is news too.
        let changed = changed || view.state != last_state;
        last_state.clone_from(&view.state);
        if args.json {
            if changed || args.once {
                serde_json::to_writer(&mut *stdout, &view)?;
                writeln!(stdout)?;
            }
        } else if live {
            // Home, clear, the view: a frame a look.
            write!(stdout, "\x1b[H\x1b[2J{}", render(&view))?;
        } else if changed || args.once {
            writeln!(stdout, "{}", render(&view))?;
        }
        stdout.flush()?;
        if args.once || args.as_of.is_some() || (finished && page.is_none()) {
            return Ok(exit_codes::OK);
        }
        std::thread::sleep(args.interval);
    }
}

/// The plan next to a journal named as `run` names it: `PLAN.journal`.
fn plan_of(journal: &Path) -> Result<PathBuf, CliError> {
    let name = journal.to_string_lossy();
    match name.strip_suffix(".journal") {
        Some(plan) if !plan.is_empty() => Ok(PathBuf::from(plan)),
        _ => Err(CliError::Usage(format!(
            "{}: which plan does it run? Its name does not end in `.journal` (run's default); name the plan with --plan PLAN",
            journal.display()
        ))),
    }
}

/// What stays between looks: the estimates, recomputed when the journal
/// grew or every few seconds (the run's position moves with time too).
struct Watcher<'a> {
    plan: &'a Plan,
    journal: &'a Path,
    measured: Option<simulations::Measured>,
    runs: u64,
    lines: usize,
    secrets: Vec<String>,
    /// `--as-of`: the run as it stood in the past.
    past: bool,
    announced: Option<Option<EstimateView>>,
    estimate: Option<Result<EstimateView, String>>,
    estimated_at: Option<Instant>,
}

/// How often the estimate is redone while the journal does not change.
const ESTIMATE_EVERY: Duration = Duration::from_secs(5);

fn seconds(from: jiff::Timestamp, to: jiff::Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

fn estimate_view(e: &simulations::Estimate, less: f64) -> EstimateView {
    let secs = |d: Duration| (d.as_secs_f64() - less).max(0.0);
    EstimateView {
        downtime_p50_s: secs(e.downtime.p50),
        downtime_p95_s: secs(e.downtime.p95),
        run_p50_s: e.duration.p50.as_secs_f64(),
        run_p95_s: e.duration.p95.as_secs_f64(),
        rollback_probability: e.rollback_probability,
        runs: e.runs,
    }
}

impl Watcher<'_> {
    fn options(&self, phase: Option<String>) -> Options {
        Options {
            runs: self.runs,
            measured: self.measured.clone(),
            phase,
            ..Options::default()
        }
    }

    fn view(
        &mut self,
        all: &[Record<RunRecord>],
        now: jiff::Timestamp,
        changed: bool,
    ) -> Result<View, CliError> {
        let plan = self.plan;
        let mut view = View {
            plan: plan.name.clone(),
            service: plan.service.clone(),
            journal: self.journal.display().to_string(),
            state: "waiting".into(),
            summary: "the run has not started".into(),
            started: None,
            now: now.to_string(),
            elapsed_s: 0.0,
            holder: None,
            rollback_point: None,
            past_no_return: false,
            users_down_s: None,
            downtime_s: None,
            phases: Vec::new(),
            running: Vec::new(),
            last_output: None,
            steps: Vec::new(),
            estimate: None,
            estimate_note: None,
            announced: None,
        };
        // The runs of this version of the plan: its last attempt.
        let (found, current) = crate::session::plan_attempt(plan, self.journal, all)?;
        let Some(attempt) = current.map(|c| &found[c]) else {
            return Ok(view);
        };
        let records = &all[attempt.records.clone()];
        let position = Position::read(plan, records, now)?;
        // As of a past time, who ran it then is not known: taken as alive.
        let live = if self.past {
            journal_file::Liveness::Unknown
        } else {
            journal_file::liveness(self.journal)
        };
        if let journal_file::Liveness::Held(holder) = &live {
            view.holder = Some(holder.to_string());
        }
        let first = records
            .first()
            .and_then(|r| r.time.parse::<jiff::Timestamp>().ok())
            .unwrap_or(now);
        view.started = Some(first.to_string());
        view.elapsed_s = seconds(first, now);

        // Per step: status, times, output; the phase from the last run_started.
        let runs = position.runs();
        let Some(run) = runs.last() else {
            return Ok(view);
        };
        let machine = &run.machine;
        let schedule = machine.schedule();
        let mut status: HashMap<&str, StepStatus> = HashMap::new();
        for id in &run.already_done {
            status.insert(id, StepStatus::Done);
        }
        for r in runs {
            for (ix, s) in r.machine.statuses().iter().enumerate() {
                let id = r.machine.schedule().steps[ix].id.as_str();
                if *s != StepStatus::Pending || !status.contains_key(id) {
                    // Borrow from the plan, which outlives the runs.
                    if let Some(step) = plan.step(id) {
                        status.insert(step.id.as_str(), *s);
                    }
                }
            }
        }
        let mut started: HashMap<String, (f64, Effect, u32)> = HashMap::new();
        let mut ended: HashMap<String, f64> = HashMap::new();
        let mut began: HashMap<String, f64> = HashMap::new();
        for record in records {
            let Ok(t) = record.time.parse::<jiff::Timestamp>() else {
                continue;
            };
            let at = seconds(first, t);
            match &record.entry {
                // What an earlier run left under way has no outcome: it is
                // not under way in this one.
                RunRecord::RunStarted { .. } => started.clear(),
                RunRecord::EffectStarted { effect } => {
                    if let Some(step) = effect.step() {
                        let attempt = match effect {
                            Effect::Forward { attempt, .. } => *attempt,
                            _ => started.get(step).map_or(1, |s| s.2),
                        };
                        started.insert(step.clone(), (at, effect.clone(), attempt));
                        began.insert(step.clone(), at);
                        ended.remove(step);
                    }
                }
                RunRecord::Event { event } => {
                    if let Some(step) = event.step() {
                        started.remove(step);
                        ended.insert(step.clone(), at);
                    }
                }
                RunRecord::Output { step, text } => {
                    let text = plan_core::secret::redact(text, &self.secrets);
                    let lines: Vec<&str> = text.lines().collect();
                    let keep = lines.len().saturating_sub(self.lines);
                    view.last_output = Some(OutputView {
                        step: step.clone(),
                        lines: lines[keep..].iter().map(|l| (*l).to_owned()).collect(),
                    });
                }
                _ => {}
            }
        }
        view.users_down_s = position.down_for().map(|d| d.as_secs_f64());
        let downtime = position.downtime().as_secs_f64();
        if view.users_down_s.is_none() && downtime > 0.0 {
            view.downtime_s = Some(downtime);
        }
        view.past_no_return = machine.past_no_return();
        // The point a failure now would roll back to: the one a rollback
        // under way goes to, else that of the steps under way or last done.
        view.rollback_point = machine.rollback_point().map(str::to_owned).or_else(|| {
            let last = started
                .iter()
                .map(|(id, s)| (s.0, id))
                .chain(ended.iter().map(|(id, at)| (*at, id)))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, id)| id.clone());
            last.and_then(|id| schedule.index_of(&id))
                .map(|ix| schedule.steps[ix].rollback_point.clone())
        });
        // The steps, in plan order.
        for phase in &plan.phases {
            let mut count = PhaseView {
                name: phase.name.clone(),
                done: 0,
                total: 0,
                running: 0,
                failed: 0,
            };
            for step in phase.steps() {
                let s = status.get(step.id.as_str()).copied();
                count.total += 1;
                match s {
                    Some(StepStatus::Done) => count.done += 1,
                    None if !step.pending() => count.done += 1,
                    Some(StepStatus::Running | StepStatus::Reverting) => count.running += 1,
                    Some(StepStatus::Failed | StepStatus::RevertFailed) => count.failed += 1,
                    _ => {}
                }
                view.steps.push(StepView {
                    id: step.id.clone(),
                    title: step.title.clone(),
                    phase: phase.name.clone(),
                    status: match s {
                        None if !step.pending() => "done before".into(),
                        None => "not run".into(),
                        Some(s) => status_word(s).into(),
                    },
                    start_s: began.get(&step.id).copied(),
                    end_s: ended.get(&step.id).copied(),
                });
            }
            view.phases.push(count);
        }
        let mut running: Vec<RunningView> = started
            .iter()
            .map(|(id, (at, effect, attempt))| {
                let step = plan.step(id);
                RunningView {
                    step: id.clone(),
                    title: step.map(|s| s.title.clone()).unwrap_or_default(),
                    what: match effect {
                        Effect::Forward { .. } => "running",
                        Effect::Check { .. } => "checking",
                        Effect::Revert { .. } => "reverting",
                        _ => "waiting for the operator",
                    }
                    .into(),
                    attempt: *attempt,
                    elapsed_s: view.elapsed_s - at,
                    deadline_s: step
                        .and_then(|s| s.deadline)
                        .filter(|_| matches!(effect, Effect::Forward { .. }))
                        .map(|d| d.as_secs_f64()),
                }
            })
            .collect();
        running.sort_by(|a, b| b.elapsed_s.total_cmp(&a.elapsed_s));
        view.running = running;

        // The state, and the estimates.
        let phase = run.phase.clone();
        if self.announced.is_none() {
            // The whole phase as `simulate` and `announce` give it (their
            // runs and seed; the --measured journals given here).
            let options = Options {
                runs: simulations::DEFAULT_RUNS,
                ..self.options(phase.clone())
            };
            self.announced = Some(
                estimate(plan, &options)
                    .ok()
                    .map(|e| estimate_view(&e, 0.0)),
            );
        }
        view.announced = self.announced.clone().flatten();
        match attempt.end {
            Some(end) => {
                view.elapsed_s = position.took().as_secs_f64();
                view.state = match end {
                    AttemptEnd::Completed => "completed",
                    AttemptEnd::RolledBack => "rolled back",
                    AttemptEnd::Halted => "halted",
                }
                .into();
                view.summary = match view.downtime_s {
                    Some(d) => format!(
                        "the run {} after {}; users were down {}",
                        view.state,
                        secs(view.elapsed_s),
                        secs(d)
                    ),
                    None => format!("the run {} after {}", view.state, secs(view.elapsed_s)),
                };
                return Ok(view);
            }
            // Nothing under way and nobody holds the journal: stopped. (A
            // live run is between two records for a moment at each step.)
            // Nobody runs it any more: stopped, or killed mid-step (the
            // step's outcome was never journaled; resume's check decides).
            None if matches!(live, journal_file::Liveness::Gone) => {
                view.state = "stopped".into();
                view.summary = if view.running.is_empty() {
                    "no cutover runs this journal any more: the run was stopped; `cutover resume` goes on".into()
                } else {
                    "no cutover runs this journal any more: the run was killed (or its machine died) with steps under way; `cutover resume` checks what they did and goes on".into()
                };
                view.estimate_note = Some("no estimate while nobody runs it".into());
                return Ok(view);
            }
            None => {
                view.state = "running".into();
                view.summary = match view.users_down_s {
                    Some(d) => format!("users have been down {}", secs(d)),
                    None => "users are not down".into(),
                };
            }
        }
        // Between two records the last estimate stands.
        let due = !position.stalled()
            && (changed
                || self
                    .estimated_at
                    .is_none_or(|at| at.elapsed() >= ESTIMATE_EVERY));
        if due {
            let options = self.options(phase);
            let less = position.down_for().map_or(0.0, |d| d.as_secs_f64());
            self.estimate = Some(
                estimate_from(plan, &position, &options)
                    .map(|e| estimate_view(&e, less))
                    .map_err(|e| e.to_string()),
            );
            self.estimated_at = Some(Instant::now());
        }
        match &self.estimate {
            Some(Ok(e)) => view.estimate = Some(e.clone()),
            Some(Err(why)) => view.estimate_note = Some(why.clone()),
            None => {}
        }
        Ok(view)
    }
}

fn status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::Running => "running",
        StepStatus::InDoubt => "in doubt",
        StepStatus::Done => "done",
        StepStatus::Failed => "failed",
        StepStatus::Reverting => "reverting",
        StepStatus::RevertInDoubt => "revert in doubt",
        StepStatus::Reverted => "reverted",
        StepStatus::RevertFailed => "revert failed",
    }
}

/// Seconds as the terminal shows them: tenths below a minute.
fn secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format_duration(Duration::from_secs_f64(s.round()))
    }
}

/// The view as text.
fn render(view: &View) -> String {
    let mut out = format!(
        "{} ({}), journal {}\n",
        view.plan, view.service, view.journal
    );
    let since = view
        .started
        .as_deref()
        .map(|s| format!(", {} since {s}", secs(view.elapsed_s)))
        .unwrap_or_default();
    out.push_str(&format!("{}{since}: {}\n", view.state, view.summary));
    if let Some(holder) = view.holder.as_deref().filter(|_| view.state == "running") {
        out.push_str(&format!("run by {holder}\n"));
    }
    if view.past_no_return {
        out.push_str("past the point of no return: a failure now halts for the operator\n");
    } else if let Some(point) = &view.rollback_point {
        out.push_str(&format!("a failure now rolls back to `{point}`\n"));
    }
    if let Some(e) = &view.estimate {
        let what = if view.users_down_s.is_some() {
            "time users have left to wait"
        } else {
            "downtime ahead"
        };
        out.push_str(&format!(
            "{what}: P50 {}, P95 {}; rollback from here {:.0}%; run ends in P50 {}, P95 {}\n",
            secs(e.downtime_p50_s),
            secs(e.downtime_p95_s),
            e.rollback_probability * 100.0,
            secs(e.run_p50_s),
            secs(e.run_p95_s),
        ));
    } else if let Some(note) = &view.estimate_note {
        out.push_str(&format!("estimate: {note}\n"));
    }
    if let Some(a) = &view.announced {
        out.push_str(&format!(
            "announced before the run: downtime P50 {}, P95 {}\n",
            secs(a.downtime_p50_s),
            secs(a.downtime_p95_s)
        ));
    }
    let phases: Vec<String> = view
        .phases
        .iter()
        .filter(|p| p.total > 0)
        .map(|p| {
            let mut s = format!("{} {}/{}", p.name, p.done, p.total);
            if p.running > 0 {
                s.push_str(&format!(" ({} running)", p.running));
            }
            if p.failed > 0 {
                s.push_str(&format!(" ({} failed)", p.failed));
            }
            s
        })
        .collect();
    out.push_str(&format!("phases: {}\n", phases.join(" · ")));
    // A fleet runs a hundred steps at once; a terminal has forty rows.
    const SHOWN: usize = 8;
    for r in view.running.iter().take(SHOWN) {
        let deadline = r
            .deadline_s
            .map(|d| format!(" of deadline {}", secs(d)))
            .unwrap_or_default();
        let attempt = if r.attempt > 1 {
            format!(", attempt {}", r.attempt)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {} {}: {}{deadline}{attempt}  {}\n",
            r.what,
            r.step,
            secs(r.elapsed_s),
            r.title
        ));
    }
    if view.running.len() > SHOWN {
        out.push_str(&format!(
            "  and {} more under way\n",
            view.running.len() - SHOWN
        ));
    }
    if let Some(last) = &view.last_output {
        out.push_str(&format!("last output, of {}:\n", last.step));
        for line in &last.lines {
            // What a step printed may hold escape sequences, bidi
            // overrides: not for the watcher's terminal.
            out.push_str(&format!("    | {}\n", plan_core::visible(line)));
        }
    }
    out
}

/// The page: a loopback HTTP server answering `/` with the page and
/// `/view.json` with the latest view, from its own thread.
struct Page {
    addr: std::net::SocketAddr,
    latest: Arc<Mutex<String>>,
}

const PAGE: &str = include_str!("watch.html");

impl Page {
    fn serve(addr: &str) -> Result<Page, CliError> {
        let addr = if addr.parse::<u16>().is_ok() {
            format!("127.0.0.1:{addr}")
        } else {
            addr.to_owned()
        };
        let listener = std::net::TcpListener::bind(&addr)
            .map_err(CliError::io(format!("cannot serve the page at {addr}")))?;
        let bound = listener
            .local_addr()
            .map_err(CliError::io("cannot read the page's address"))?;
        let latest = Arc::new(Mutex::new("{}".to_owned()));
        let shared = Arc::clone(&latest);
        // Requests naming another host are refused on loopback: a web page
        // elsewhere must not read the run through a rebound DNS name.
        let loopback = bound.ip().is_loopback();
        let port = bound.port();
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else {
                    // Out of descriptors, say: wait, never spin.
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                // A bounded number of connections at once; the rest wait
                // in the kernel's queue.
                while open.load(std::sync::atomic::Ordering::Acquire) >= MAX_CONNECTIONS {
                    std::thread::sleep(Duration::from_millis(10));
                }
                open.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                let (shared, open) = (Arc::clone(&shared), Arc::clone(&open));
                std::thread::spawn(move || {
                    answer(stream, &shared, loopback.then_some(port));
                    open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                });
            }
        });
        Ok(Page {
            addr: bound,
            latest,
        })
    }

    fn show(&self, view: &View) -> Result<(), CliError> {
        let json = serde_json::to_string(view)?;
        // invariant: the lock is only held to swap a string, never across a panic.
        if let Ok(mut latest) = self.latest.lock() {
            *latest = json;
        }
        Ok(())
    }
}

/// At most this many requests are answered at once.
const MAX_CONNECTIONS: usize = 32;
/// The longest request (line and headers) read.
const MAX_REQUEST: u64 = 8 * 1024;
/// How long one request may take to arrive, and its answer to leave.
const REQUEST_TIME: Duration = Duration::from_secs(5);

/// Answers one request: GET only, the page or the view; read-only and
/// bounded (its size, and its time in both directions). `loopback_port`:
/// bound to loopback on this port, where only requests naming a loopback
/// host are answered.
fn answer(mut stream: std::net::TcpStream, latest: &Mutex<String>, loopback_port: Option<u16>) {
    use std::io::Read;
    let deadline = Instant::now() + REQUEST_TIME;
    let _ = stream.set_write_timeout(Some(REQUEST_TIME));
    // The request line and headers, up to the blank line: at most
    // MAX_REQUEST bytes, all in REQUEST_TIME (a byte at a time included).
    let mut head: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() as u64 >= MAX_REQUEST {
            return;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut chunk) {
            // The client is done writing: answer what it sent.
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            // Too slow (or gone): no answer.
            Err(_) => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let request = lines.next().unwrap_or("").to_owned();
    let host = lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let named_loopback = |port: u16| {
        let name = host
            .strip_suffix(&format!(":{port}"))
            .unwrap_or(&host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        _ if loopback_port.is_some_and(|port| !named_loopback(port)) => (
            "421 Misdirected Request",
            "text/plain",
            "this page answers only to a loopback host name\n".to_owned(),
        ),
        ("GET", "/") => ("200 OK", "text/html; charset=utf-8", PAGE.to_owned()),
        ("GET", "/view.json") => (
            "200 OK",
            "application/json",
            latest.lock().map(|l| l.clone()).unwrap_or_default(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "read-only: GET only\n".to_owned(),
        ),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_the_journal_s_name_without_journal() {
        assert_eq!(
            plan_of(Path::new("x/plan.ron.journal")).expect("named"),
            PathBuf::from("x/plan.ron")
        );
        assert!(plan_of(Path::new("x/run.log")).is_err());
        assert!(plan_of(Path::new(".journal")).is_err());
    }
}

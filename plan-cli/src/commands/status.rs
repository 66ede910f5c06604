//! `cutover status PLAN [--journal J]`: the plan as the seed-style table,
//! and with a journal, where each step stands in the runs so far.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use plan_core::duration::format_duration;
use plan_core::machine::{replay, Effect, RunRecord, StepStatus};
use plan_core::{Entry, Plan};
use plan_steps::journal_file::JournalFile;
use serde::Serialize;

use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Output format; markdown pastes into a ticket as-is
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    format: StatusFormat,
    /// The same as --format json
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Also show each step's state in the runs recorded in this journal
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Print everything this step's commands printed, from the journal (needs --journal)
    #[arg(long, value_name = "STEP", requires = "journal")]
    output: Option<String>,
}

/// How `status` prints.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StatusFormat {
    /// An aligned table for the terminal
    Text,
    /// A Markdown table
    Markdown,
    /// One JSON object
    Json,
}

/// One row of the table.
#[derive(Serialize)]
struct Row {
    number: u32,
    id: String,
    title: String,
    phase: String,
    tickets: Vec<String>,
    done: &'static str,
    action: &'static str,
    /// With a journal: done, reverted, failed, in doubt, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    /// With a journal: how long its last forward (or revert) took.
    #[serde(skip_serializing_if = "Option::is_none")]
    took_s: Option<f64>,
}

#[derive(Serialize)]
struct JsonStatus<'a> {
    plan: &'a str,
    service: &'a str,
    steps: &'a [Row],
    /// With a journal: its attempts (one per version of the plan it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<&'a [AttemptRow]>,
}

/// One attempt of the journal: the runs of one version of the plan.
#[derive(Serialize)]
struct AttemptRow {
    number: usize,
    plan_hash: String,
    /// Whether it is of this version of the plan.
    current: bool,
    runs: usize,
    first: String,
    last: String,
    /// completed, rolled back, halted, or unfinished.
    end: &'static str,
}

/// Prints one row per step.
pub fn cmd_status(
    args: &StatusArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_to_show(stderr)?;
    if let (Some(step), Some(journal)) = (&args.output, &args.journal) {
        return step_output(&plan, journal, step, stdout);
    }
    let runs = match &args.journal {
        Some(path) => Some(journal_state(&plan, path)?),
        None => None,
    };
    let rows = rows(&plan, runs.as_ref());
    let attempts = runs.as_ref().map(|r| r.attempts.as_slice());
    let format = if args.json {
        StatusFormat::Json
    } else {
        args.format
    };
    match format {
        StatusFormat::Text => {
            if let (Some(attempts), Some(path)) = (attempts, &args.journal) {
                write!(stdout, "{}", attempt_lines(path, attempts))?;
            }
            write!(stdout, "{}", text_table(&plan, &rows, runs.is_some()))?
        }
        StatusFormat::Markdown => write!(stdout, "{}", markdown_table(&rows, runs.is_some()))?,
        StatusFormat::Json => {
            serde_json::to_writer_pretty(
                &mut *stdout,
                &JsonStatus {
                    plan: &plan.name,
                    service: &plan.service,
                    steps: &rows,
                    attempts,
                },
            )?;
            writeln!(stdout)?;
        }
    }
    Ok(exit_codes::OK)
}

/// Prints every output record of `step` in the journal at `path`, each
/// under a line saying when, and what of the step printed it.
fn step_output(
    plan: &Plan,
    path: &std::path::Path,
    step: &str,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    if plan.step(step).is_none() {
        let ids: Vec<&str> = plan.steps().map(|s| s.id.as_str()).collect();
        let near = plan_core::closest(step, ids.iter().copied());
        return Err(CliError::Usage(format!(
            "--output {step}: the plan has no step `{step}`{}",
            near.map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default()
        )));
    }
    let journal =
        JournalFile::read::<RunRecord>(path).map_err(|e| CliError::Journal(e.to_string()))?;
    let mut what = "";
    let mut attempt = 0;
    let mut printed = 0;
    for record in &journal.records {
        match &record.entry {
            RunRecord::EffectStarted { effect } if effect.step().is_some_and(|s| s == step) => {
                what = match effect {
                    Effect::Forward { attempt: a, .. } => {
                        attempt = *a;
                        "forward"
                    }
                    Effect::Check { .. } => "check",
                    Effect::Revert { .. } => "revert",
                    _ => "",
                };
            }
            RunRecord::Output { step: s, text } if s == step => {
                let label = match what {
                    "forward" => format!("attempt {attempt}"),
                    "" => "output".to_owned(),
                    other => other.to_owned(),
                };
                writeln!(out, "--- {step}, {label}, {} ---", record.time)?;
                write!(out, "{text}")?;
                if !text.ends_with('\n') {
                    writeln!(out)?;
                }
                printed += 1;
            }
            _ => {}
        }
    }
    if printed == 0 {
        writeln!(
            out,
            "step `{step}` printed nothing in the runs of {}",
            path.display()
        )?;
    }
    Ok(exit_codes::OK)
}

/// Each step's state and last duration, from the journal's runs of this
/// version of the plan, and the journal's attempts.
struct JournalState {
    state: HashMap<String, StepStatus>,
    took: HashMap<String, f64>,
    attempts: Vec<AttemptRow>,
}

/// The journal's attempts, a line each, when it has more than one.
fn attempt_lines(path: &std::path::Path, attempts: &[AttemptRow]) -> String {
    if attempts.len() < 2 {
        return String::new();
    }
    let mut text = format!("journal {}: {} attempts\n", path.display(), attempts.len());
    for a in attempts {
        text.push_str(&format!(
            "  attempt {}{}: plan {}, {} run{}, {} .. {}, {}\n",
            a.number,
            if a.current { " (this plan)" } else { "" },
            a.plan_hash,
            a.runs,
            if a.runs == 1 { "" } else { "s" },
            a.first,
            a.last,
            a.end
        ));
    }
    text.push('\n');
    text
}

fn journal_state(plan: &Plan, path: &std::path::Path) -> Result<JournalState, CliError> {
    let journal =
        JournalFile::read::<RunRecord>(path).map_err(|e| CliError::Journal(e.to_string()))?;
    // The runs of this version of the plan: its last attempt in the journal.
    let (attempts, current) = crate::session::plan_attempt(plan, path, &journal.records)?;
    let rows: Vec<AttemptRow> = attempts
        .iter()
        .enumerate()
        .map(|(i, a)| AttemptRow {
            number: i + 1,
            plan_hash: format!("{:016x}", a.plan_hash),
            current: Some(i) == current,
            runs: a.runs,
            first: a.span.0.clone(),
            last: a.span.1.clone(),
            end: match a.end {
                Some(plan_core::machine::AttemptEnd::Completed) => "completed",
                Some(plan_core::machine::AttemptEnd::RolledBack) => "rolled back",
                Some(plan_core::machine::AttemptEnd::Halted) => "halted",
                None => "unfinished",
            },
        })
        .collect();
    let range = current.map_or(0..0, |c| attempts[c].records.clone());
    let journal = plan_core::journal::Journal {
        records: journal.records[range].to_vec(),
        ..journal
    };
    let mut started: HashMap<String, jiff::Timestamp> = HashMap::new();
    let mut took = HashMap::new();
    for record in &journal.records {
        let time = record.time.parse::<jiff::Timestamp>().ok();
        match &record.entry {
            RunRecord::EffectStarted {
                effect: Effect::Forward { step, .. } | Effect::Revert { step },
            } => {
                if let Some(t) = time {
                    started.insert(step.clone(), t);
                }
            }
            RunRecord::Event { event } => {
                if let (Some(step), Some(end)) = (event.step(), time) {
                    if let Some(begin) = started.remove(step) {
                        let seconds = end.duration_since(begin).as_secs_f64();
                        took.insert(step.to_owned(), seconds);
                    }
                }
            }
            _ => {}
        }
    }
    let entries: Vec<RunRecord> = journal.records.into_iter().map(|r| r.entry).collect();
    let runs = replay(plan, &entries)
        .map_err(|e| CliError::Journal(format!("{}: {e}", path.display())))?;
    let mut state = HashMap::new();
    // Steps carried done from an earlier attempt (unchanged since).
    if let Some(first) = runs.first() {
        for id in &first.already_done {
            state.insert(id.clone(), StepStatus::Done);
        }
    }
    for run in &runs {
        let schedule = run.machine.schedule();
        for (ix, status) in run.machine.statuses().iter().enumerate() {
            // A step a run never touched keeps what earlier runs left.
            if *status != StepStatus::Pending || !state.contains_key(&schedule.steps[ix].id) {
                state.insert(schedule.steps[ix].id.clone(), *status);
            }
        }
    }
    Ok(JournalState {
        state,
        took,
        attempts: rows,
    })
}

fn rows(plan: &Plan, runs: Option<&JournalState>) -> Vec<Row> {
    let mut rows = Vec::new();
    for phase in &plan.phases {
        for entry in &phase.entries {
            let Entry::Step(step) = entry else { continue };
            let status = runs.and_then(|r| r.state.get(&step.id)).copied();
            let done = match status {
                Some(StepStatus::Done) => "yes",
                _ => step.done.as_str(),
            };
            rows.push(Row {
                number: step.number,
                id: step.id.clone(),
                title: step.title.clone(),
                phase: phase.name.clone(),
                tickets: step.tickets.clone(),
                done,
                action: step.action.kind(),
                run: runs.map(|_| {
                    status.map_or_else(
                        || {
                            if step.pending() {
                                "not run"
                            } else {
                                "done before"
                            }
                            .to_owned()
                        },
                        |status| match status {
                            // The rollback passed over it: nothing was undone,
                            // and its time is its forward's, not a revert's.
                            StepStatus::Reverted if !step.undoable() => {
                                "rolled back past (nothing to undo)".to_owned()
                            }
                            status => describe(status),
                        },
                    )
                }),
                took_s: runs.and_then(|r| r.took.get(&step.id)).copied(),
            });
        }
    }
    rows
}

fn describe(status: StepStatus) -> String {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::Running => "running (or stopped mid-step)",
        StepStatus::InDoubt => "in doubt",
        StepStatus::Done => "done",
        StepStatus::Failed => "failed",
        StepStatus::Reverting => "reverting (or stopped mid-revert)",
        StepStatus::RevertInDoubt => "revert in doubt",
        StepStatus::Reverted => "reverted",
        StepStatus::RevertFailed => "revert failed",
    }
    .to_owned()
}

fn cells(row: &Row, with_run: bool) -> Vec<String> {
    let mut cells = vec![
        row.number.to_string(),
        row.title.clone(),
        row.tickets.join(", "),
        row.done.to_owned(),
    ];
    if with_run {
        cells.push(row.run.clone().unwrap_or_default());
        cells.push(row.took_s.map_or_else(String::new, took));
    }
    cells
}

fn took(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1}s")
    } else {
        format_duration(std::time::Duration::from_secs_f64(seconds.round()))
    }
}

fn header(with_run: bool) -> Vec<&'static str> {
    let mut header = vec!["#", "step", "ticket", "done?"];
    if with_run {
        header.extend(["run", "took"]);
    }
    header
}

/// The Markdown table, one row per step, as the seed ticket has it.
fn markdown_table(rows: &[Row], with_run: bool) -> String {
    let escape = |cell: &str| cell.replace('|', "\\|").replace('\n', " ");
    let header = header(with_run);
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        let cells: Vec<String> = cells(row, with_run).iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// An aligned plain-text table with a line per phase.
fn text_table(plan: &Plan, rows: &[Row], with_run: bool) -> String {
    let header = header(with_run);
    let table: Vec<Vec<String>> = rows.iter().map(|r| cells(r, with_run)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &table {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if i == 0 {
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            } else {
                l.push_str("  ");
                l.push_str(cell);
                l.push_str(&" ".repeat(pad));
            }
        }
        format!("{}\n", l.trim_end())
    };
    let mut out = format!("{}  ({})\n\n", plan.name, plan.service);
    out.push_str(&line(
        &header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>(),
    ));
    let mut last_phase = "";
    for (row, cells) in rows.iter().zip(&table) {
        if row.phase != last_phase {
            let phase = plan.phase(&row.phase);
            let anchor = phase.and_then(|p| p.at).map_or_else(
                || "unscheduled".to_owned(),
                |a| format!("at {}", plan_core::duration::format_anchor(a)),
            );
            out.push_str(&format!("-- {} ({anchor})\n", row.phase));
            last_phase = &row.phase;
        }
        out.push_str(&line(cells));
    }
    out
}

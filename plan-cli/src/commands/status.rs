//! `cutover status PLAN`: the plan as the seed-style table.

use std::io::Write;

use clap::{Args, ValueEnum};
use plan_core::{Plan, Step};
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

#[derive(Serialize)]
struct JsonStatus<'a> {
    plan: &'a str,
    service: &'a str,
    steps: Vec<JsonRow<'a>>,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    number: u32,
    id: &'a str,
    title: &'a str,
    phase: &'a str,
    tickets: &'a [String],
    done: &'static str,
    action: &'static str,
}

/// Prints one row per step.
pub fn cmd_status(
    args: &StatusArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_valid(stderr)?;
    match args.format {
        StatusFormat::Text => write!(stdout, "{}", text_table(&plan))?,
        StatusFormat::Markdown => write!(stdout, "{}", markdown_table(&plan))?,
        StatusFormat::Json => {
            let steps = plan
                .phases
                .iter()
                .flat_map(|phase| phase_steps(phase).map(move |s| (phase.name.as_str(), s)))
                .map(|(phase, s)| JsonRow {
                    number: s.number,
                    id: &s.id,
                    title: &s.title,
                    phase,
                    tickets: &s.tickets,
                    done: s.done.as_str(),
                    action: s.action.kind(),
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut *stdout,
                &JsonStatus {
                    plan: &plan.name,
                    service: &plan.service,
                    steps,
                },
            )?;
            writeln!(stdout)?;
        }
    }
    Ok(exit_codes::OK)
}

fn phase_steps(phase: &plan_core::Phase) -> impl Iterator<Item = &Step> {
    phase.entries.iter().filter_map(|e| match e {
        plan_core::Entry::Step(s) => Some(s),
        _ => None,
    })
}

const HEADER: [&str; 4] = ["#", "step", "ticket", "done?"];

fn row(step: &Step) -> [String; 4] {
    [
        step.number.to_string(),
        step.title.clone(),
        step.tickets.join(", "),
        step.done.as_str().to_owned(),
    ]
}

/// The Markdown table, one row per step, as the seed ticket has it.
pub fn markdown_table(plan: &Plan) -> String {
    let escape = |cell: &str| cell.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("| {} |\n|---|---|---|---|\n", HEADER.join(" | "));
    for step in plan.steps() {
        let cells = row(step).map(|c| escape(&c));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// An aligned plain-text table with a line per phase.
pub fn text_table(plan: &Plan) -> String {
    let rows: Vec<[String; 4]> = plan.steps().map(row).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut l = format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut out = format!("{}  ({})\n\n", plan.name, plan.service);
    out.push_str(&line(HEADER));
    for phase in &plan.phases {
        let anchor = phase.at.map_or_else(
            || "unscheduled".to_owned(),
            |a| format!("at {}", plan_core::duration::format_anchor(a)),
        );
        out.push_str(&format!("-- {} ({anchor})\n", phase.name));
        for step in phase_steps(phase) {
            let r = row(step);
            out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
        }
    }
    out
}

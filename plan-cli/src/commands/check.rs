//! `cutover check PLAN`: verify a plan and report every problem.

use std::io::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::render::{self, JsonDiagnostic};
use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Output format: diagnostics for people, or one JSON object
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
    /// The same as --format json
    #[arg(long, conflicts_with = "format")]
    json: bool,
    #[command(flatten)]
    measured: crate::MeasuredArgs,
}

/// How `check` reports.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CheckFormat {
    /// Labelled diagnostics on stderr, a summary on stdout
    Text,
    /// One JSON object on stdout
    Json,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    plan: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    steps: Option<usize>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

/// Verifies the plan: exit 0 when valid (warnings allowed), 2 when invalid.
pub fn cmd_check(
    args: &CheckArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let loaded = args.plan.load()?;
    let mut all = loaded.diagnostics.clone();
    let name = args.plan.plan.display().to_string();
    let code = if all.has_errors() {
        exit_codes::INVALID_PLAN
    } else {
        exit_codes::OK
    };
    // The announced window against the simulated P95 downtime (valid plans only).
    if let Some(plan) = &loaded.plan {
        // Journals given on purpose must fit the plan: a mismatch is an
        // error here, not a note that the window went unchecked.
        let measured = args.measured.load(stderr)?;
        if let Some(measured) = &measured {
            measured.check_plan(plan)?;
            for warning in measured.warnings(plan) {
                writeln!(stderr, "warning: {warning}")?;
            }
        }
        let warnings = super::announce::window_warning(plan, measured.as_ref(), stderr)?;
        if !warnings.is_empty() {
            for warning in warnings {
                all.push(warning);
            }
            all.attach(&plan.source);
        }
    }
    let diagnostics = &all;
    let warning_count = diagnostics.warning_count();
    let format = if args.json {
        CheckFormat::Json
    } else {
        args.format
    };
    match format {
        CheckFormat::Json => {
            let report = JsonReport {
                plan: name,
                valid: !diagnostics.has_errors(),
                errors: diagnostics.error_count(),
                warnings: warning_count,
                steps: loaded.plan.as_ref().map(|p| p.steps().count()),
                diagnostics: diagnostics.iter().map(JsonDiagnostic::from).collect(),
            };
            serde_json::to_writer_pretty(&mut *stdout, &report)?;
            writeln!(stdout)?;
        }
        CheckFormat::Text => {
            render::diagnostics_text(diagnostics, stderr)?;
            let warnings = render::count(warning_count, "warning");
            match &loaded.plan {
                Some(plan) => {
                    let pending = plan.steps().filter(|s| s.pending()).count();
                    writeln!(
                        stdout,
                        "{name}: valid: {} steps in {} phases ({pending} to run), {warnings}",
                        plan.steps().count(),
                        plan.phases.len(),
                    )?;
                }
                None => {
                    writeln!(
                        stderr,
                        "{name}: invalid: {}, {warnings}",
                        render::count(diagnostics.error_count(), "error")
                    )?;
                }
            }
        }
    }
    Ok(code)
}

//! `cutover resume PLAN`: continue the last run after a crash or a stop.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use plan_core::machine::Event;

use crate::live::Mode;
use crate::prompt::ask_yes_no;
use crate::session::{self, journal_path, open_journal, Carried, Interaction};
use crate::{CliError, PlanArgs};

/// Arguments of `cutover resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Journal file (default: the plan's path with `.journal` appended)
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// For a step in doubt that has no check: take it as done or not done (a step with a check is always settled by its check)
    #[arg(long, value_enum, value_name = "ANSWER")]
    assume: Option<Assume>,
    /// Do not ask before continuing, at the point of no return, nor after a failure (Manual steps still need a person or --confirm)
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    output: crate::JsonArgs,
    #[command(flatten)]
    ssh: crate::session::SshArgs,
    #[command(flatten)]
    operator: crate::session::OperatorArgs,
    #[command(flatten)]
    notify: crate::session::NotifyArgs,
    #[command(flatten)]
    lock: crate::session::LockArgs,
}

/// The answer for in-doubt steps without a check.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Assume {
    /// It took effect
    Done,
    /// It did not take effect; run it again
    NotDone,
}

/// Replays the journal into the machine and continues where it stopped.
pub fn cmd_resume(
    args: &ResumeArgs,
    _stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_valid(stderr)?;
    args.notify.hooks(&plan)?;
    let path = journal_path(&args.plan.plan, args.journal.as_deref());
    if !path.exists() {
        return Err(CliError::Refused {
            message: format!("there is no journal at {}", path.display()),
            hint: format!(
                "start a run with `cutover run {}`",
                args.plan.plan.display()
            ),
        });
    }
    // Across machines first: the journal is this machine's.
    let lock = args.lock.acquire(&plan)?;
    let session::Opened {
        file: mut journal,
        runs,
        history,
        torn,
        ..
    } = open_journal(&path, &plan, false)?;
    if let Some(warning) = torn {
        writeln!(stderr, "warning: {warning}")?;
    }
    let Some(last) = runs.last() else {
        return Err(CliError::Refused {
            message: format!("the journal {} holds no run", path.display()),
            hint: format!("start one with `cutover run {}`", args.plan.plan.display()),
        });
    };
    if let Some(end) = &last.end {
        writeln!(
            stderr,
            "nothing to resume: the last run already ended ({})",
            describe_end(end)
        )?;
        return Ok(session::exit_code(end));
    }
    // The run's own directory comes back, so `{{run_dir}}` means the same.
    let mut settings = args.plan.settings();
    settings.run_dir = Some(last.run_dir.clone());
    let plan = plan_core::load_path(&args.plan.plan, &settings)?
        .plan
        .ok_or_else(|| CliError::Refused {
            message: "the plan file changed while resuming, and is now invalid".into(),
            hint: "restore the plan the run was started with, then resume again".into(),
        })?;
    let ahead =
        last.machine.schedule().steps.iter().filter(|s| {
            last.machine.status_of(&s.id) != Some(plan_core::machine::StepStatus::Done)
        });
    args.operator.check(&plan, ahead.map(|s| s.id.as_str()))?;
    let hooks = args.notify.hooks(&plan)?;
    let phase = last.phase.clone();
    let mut machine = last.machine.clone();
    let captured = last.captured.clone();
    let started = last.started.clone();
    let mode = Mode::pick(args.output.json());
    if mode != Mode::Json {
        writeln!(
            stderr,
            "resuming the run in {} from {}",
            last.run_dir,
            path.display()
        )?;
        if !started.is_empty() {
            writeln!(
                stderr,
                "in doubt (under way when the run stopped): {}",
                crate::live::some_names(&started)
            )?;
        }
    }
    if !args.yes {
        match ask_yes_no("Continue this run?") {
            Ok(true) => {}
            Ok(false) => return Ok(crate::exit_codes::ERROR),
            Err(e) => {
                return Err(CliError::Refused {
                    message: format!("{e}, so the run was not resumed"),
                    hint: "pass --yes to resume without asking".into(),
                })
            }
        }
    }
    // Commands the run started and never saw end may outlive it, whatever
    // crashed since: the executor lets them finish (or stops them at their
    // step's deadline) before the step's check decides.
    let leftovers = last.processes.clone();
    let assume = args.assume.map(|a| matches!(a, Assume::Done));
    let run_dir = last.run_dir.clone();
    session::recreate_run_dir(&run_dir)?;
    let result = session::drive(
        Arc::new(plan),
        &mut journal,
        &mut machine,
        Event::Resume { started },
        None,
        Interaction {
            mode,
            yes: args.yes,
            confirmed: args.operator.confirm.clone(),
            assume,
            remind_after: args.operator.remind_after,
            failure_lines: args.operator.failure_lines,
        },
        Carried {
            captured,
            ssh: args.ssh.options(),
            leftovers,
            preflight_first: true,
            history,
            notify: hooks,
            phase,
            journal_path: path.clone(),
            lock,
        },
    );
    session::tidy_run_dir(&run_dir);
    result
}

fn describe_end(end: &plan_core::machine::RunEnd) -> String {
    match end {
        plan_core::machine::RunEnd::Completed => "completed".into(),
        plan_core::machine::RunEnd::RolledBack { point, .. } => format!("rolled back to `{point}`"),
        plan_core::machine::RunEnd::Halted { reason, .. } => format!("halted: {reason}"),
    }
}

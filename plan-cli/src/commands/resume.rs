//! `cutover resume PLAN`: continue the last run after a crash or a stop.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use plan_core::machine::Event;
use plan_core::Settings;

use crate::live::{ask_yes_no, Mode};
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
    /// For a step in doubt that has no check: take it as done or not done
    #[arg(long, value_enum, value_name = "ANSWER")]
    assume: Option<Assume>,
    /// Do not ask before continuing or at manual steps
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print one JSON object per event on stdout instead of the live view
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ssh: crate::session::SshArgs,
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
    let (mut journal, runs, torn) = open_journal(&path, &plan)?;
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
    let mut settings = Settings::from_env();
    settings.set = args.plan.set.clone();
    settings.run_dir = Some(last.run_dir.clone());
    let plan = plan_core::load_path(&args.plan.plan, &settings)?
        .plan
        .ok_or_else(|| CliError::Usage("the plan changed while resuming".into()))?;
    let mut machine = last.machine.clone();
    let captured = last.captured.clone();
    let started = last.started.clone();
    let mode = Mode::pick(args.json);
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
                started.join(", ")
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
    wait_for_leftovers(&plan, last, stderr)?;
    let assume = args.assume.map(|a| matches!(a, Assume::Done));
    session::drive(
        Arc::new(plan),
        &mut journal,
        &mut machine,
        Event::Resume { started },
        None,
        Interaction {
            mode,
            yes: args.yes,
            assume,
        },
        Carried { captured, ssh: args.ssh.options() },
    )
}

/// Commands of in-doubt steps may outlive the crashed run (they run in
/// their own process groups): let them finish (or kill them at the step's
/// deadline) before the step's check decides, so nothing runs twice at once.
fn wait_for_leftovers(
    plan: &plan_core::Plan,
    run: &plan_core::machine::ReplayedRun,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    use plan_steps::local::{wait_leftover, Leftover, ProcessGroup};
    let leftovers: Vec<_> = run
        .processes
        .iter()
        .filter(|(step, _, _)| run.started.contains(step))
        .collect();
    if leftovers.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    for (step, pgid, start_time) in leftovers {
        let group = ProcessGroup {
            pgid: *pgid,
            start_time: *start_time,
        };
        let limit = plan.step(step).and_then(|s| s.deadline);
        let outcome = runtime.block_on(async {
            let wait = wait_leftover(group, limit);
            tokio::pin!(wait);
            tokio::select! {
                outcome = &mut wait => outcome,
                () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    let _ = writeln!(stderr, "waiting for step `{step}`'s commands, left running by the stopped run (process group {pgid}), to finish");
                    wait.await
                }
            }
        });
        match outcome {
            Leftover::Gone => {}
            Leftover::Finished => {
                writeln!(stderr, "step `{step}`'s leftover commands have finished")?
            }
            Leftover::Killed => writeln!(
                stderr,
                "step `{step}`'s leftover commands passed its deadline and were killed"
            )?,
        }
    }
    Ok(())
}

fn describe_end(end: &plan_core::machine::RunEnd) -> String {
    match end {
        plan_core::machine::RunEnd::Completed => "completed".into(),
        plan_core::machine::RunEnd::RolledBack { point, .. } => format!("rolled back to `{point}`"),
        plan_core::machine::RunEnd::Halted { reason, .. } => format!("halted: {reason}"),
    }
}

//! `cutover print PLAN`: the plan as it will run, in RON.

use std::io::Write;

use clap::Args;

use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover print`.
#[derive(Debug, Args)]
pub struct PrintArgs {
    #[command(flatten)]
    plan: PlanArgs,
}

/// Prints the validated plan with every variable expanded (the values of
/// `--set` and `CUTOVER_VAR_*` included), so what exactly will run in
/// staging can be read, diffed and checked again. Secrets are never in a
/// plan (TSIG keys are named by file or environment variable, not held), so
/// none is printed. An invalid plan prints its errors and exits 2.
pub fn cmd_print(
    args: &PrintArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_to_show(stderr)?;
    stdout.write_all(plan_core::to_ron(&plan).as_bytes())?;
    Ok(exit_codes::OK)
}

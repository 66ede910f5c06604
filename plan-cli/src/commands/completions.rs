//! `cutover completions SHELL`: the shell's completion script, on stdout.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::{exit_codes, Cli, CliError};

/// Arguments of `cutover completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for `shell`, generated from the same
/// definitions as `--help`.
pub fn cmd_completions(args: &CompletionsArgs, stdout: &mut dyn Write) -> Result<u8, CliError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "cutover", &mut script);
    stdout.write_all(&script)?;
    Ok(exit_codes::OK)
}

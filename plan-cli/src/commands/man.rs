//! `cutover man`: the manual pages, generated from the same definitions as
//! `--help`: `cutover(1)` on stdout, or one page per verb in a directory.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use crate::{exit_codes, Cli, CliError};

/// Arguments of `cutover man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write cutover.1 and one cutover-VERB.1 per verb into this directory instead of printing cutover.1
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

fn render(command: clap::Command) -> Result<Vec<u8>, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    Ok(page)
}

/// Prints `cutover(1)`, or writes every page into `--out-dir`.
pub fn cmd_man(
    args: &ManArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let command = Cli::command();
    let Some(dir) = &args.out_dir else {
        stdout.write_all(&render(command)?)?;
        return Ok(exit_codes::OK);
    };
    std::fs::create_dir_all(dir)
        .map_err(CliError::io(format!("cannot create {}", dir.display())))?;
    let mut pages = vec![("cutover.1".to_owned(), render(command.clone())?)];
    for verb in command.get_subcommands() {
        let name = format!("cutover-{}", verb.get_name());
        let page = render(verb.clone().name(name.clone()))?;
        pages.push((format!("{name}.1"), page));
    }
    for (file, page) in &pages {
        let path = dir.join(file);
        std::fs::write(&path, page)
            .map_err(CliError::io(format!("cannot write {}", path.display())))?;
    }
    writeln!(
        stderr,
        "wrote {} pages to {} (read one with `man -l {}`)",
        pages.len(),
        dir.display(),
        dir.join("cutover-run.1").display()
    )?;
    Ok(exit_codes::OK)
}

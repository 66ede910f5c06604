//! The `cutover` command line: parses arguments, calls the libraries, renders
//! what they return. This crate is the only one that prints.
//!
//! Each verb lives in `commands/<verb>.rs` as a `<Verb>Args` struct and a
//! `cmd_<verb>` function; [`main`] maps the outcome to a documented exit code
//! (see [`exit_codes`]).
#![warn(missing_docs)]

pub mod commands;
pub mod error;
pub mod exit_codes;
mod live;
mod logging;
mod operator;
mod prompt;
mod render;
mod session;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use plan_core::{Loaded, Plan, Settings};

pub use error::CliError;

/// Plan-as-code for service migrations: verify, rehearse, announce and run.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Write logs to this file (at `info`, or what RUST_LOG says); without it, RUST_LOG sends them to stderr
    #[arg(long, global = true, value_name = "PATH")]
    log_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a plan and report every problem with its place in the file
    Check(commands::check::CheckArgs),
    /// Show the plan as the seed-style table: #, step, ticket, done?
    Status(commands::status::StatusArgs),
    /// Draw the plan's steps, rollback points and revert edges (Mermaid or Graphviz)
    Graph(commands::graph::GraphArgs),
    /// Print the plan as it will run: every variable expanded, in RON
    Print(commands::print::PrintArgs),
    /// Look at the hosts, DNS and every step without changing anything: what would stop the run
    Probe(commands::probe::ProbeArgs),
    /// Verify, confirm, then execute the plan with automatic rollback
    Run(commands::run::RunArgs),
    /// Continue the last run from its journal after a crash or a stop
    Resume(commands::resume::ResumeArgs),
    /// Rehearse the plan many times on a virtual clock: downtime, rollback chance, worst case
    Simulate(commands::simulate::SimulateArgs),
    /// Write the announcement mail: when, how long users are down, what they notice
    Announce(commands::announce::AnnounceArgs),
    /// Draw the plan at its likely durations as a Gantt chart (SVG) or as text
    Timeline(commands::timeline::TimelineArgs),
    /// Follow a run from its journal, read-only: steps under way, time users have left to wait
    Watch(commands::watch::WatchArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell)
    Completions(commands::completions::CompletionsArgs),
    /// Print the manual page, or write one page per verb into a directory
    Man(commands::man::ManArgs),
}

/// Which plan, and variable overrides for it.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (RON)
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// Override a plan variable; HOST.NAME=VALUE sets a host variable (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = Settings::parse_set)]
    pub set: Vec<(String, String)>,
}

/// How many rehearsals, from which seed (`simulate`, `announce`).
#[derive(Debug, Args)]
pub struct RehearsalArgs {
    /// How many runs to simulate
    #[arg(long, value_name = "N", default_value_t = simulations::DEFAULT_RUNS)]
    pub runs: u64,
    /// Seed of the random draws; the same seed gives the same figures
    #[arg(long, value_name = "S", default_value_t = simulations::DEFAULT_SEED)]
    pub seed: u64,
}

/// `--measured JOURNAL...`: estimates from what earlier runs measured
/// (`simulate`, `announce`, `check`), one loader for all three.
#[derive(Debug, Args)]
pub struct MeasuredArgs {
    /// Learn from these journals of earlier runs or rehearsals of this plan: step durations,
    /// failure rates, revert times, copy rates, operator answers (see docs/plan-format.md)
    #[arg(long, value_name = "JOURNAL", num_args = 1..)]
    pub measured: Vec<std::path::PathBuf>,
}

impl MeasuredArgs {
    /// The journals read, or `None` when none were given. A journal that
    /// cannot be read or decoded is an error naming it; one without a
    /// single step outcome is a warning on `stderr`.
    pub fn load(
        &self,
        stderr: &mut dyn std::io::Write,
    ) -> Result<Option<simulations::Measured>, CliError> {
        if self.measured.is_empty() {
            return Ok(None);
        }
        let mut measured = simulations::Measured::new();
        for path in &self.measured {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(CliError::io(format!("cannot read the journal `{name}`")))?;
            if measured.add_journal(&name, &text)? == 0 {
                writeln!(
                    stderr,
                    "warning: `{name}` has no step outcome to learn from"
                )?;
            }
        }
        Ok(Some(measured))
    }
}

/// `--json`, the one output switch of the verbs that print events or
/// figures; `--format json` means the same, as on `check` and `status`.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON on stdout (one object per event for `run`/`resume`)
    #[arg(long)]
    json: bool,
    /// The same as --json when `json`; `text` is the default
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
    format: Option<TextOrJson>,
}

/// `--format` of the verbs that print text or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TextOrJson {
    /// For people
    Text,
    /// For programs
    Json,
}

impl JsonArgs {
    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.json || self.format == Some(TextOrJson::Json)
    }
}

impl PlanArgs {
    /// The variable overrides: `CUTOVER_VAR_*` from this process's
    /// environment (variables whose name or value is not UTF-8 are not
    /// ours, and are skipped rather than a panic), then `--set`.
    pub fn settings(&self) -> Settings {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        let mut settings = Settings::default().with_env(env);
        settings.set = self.set.clone();
        settings
    }

    /// Loads and verifies the plan; `CUTOVER_VAR_*` and `--set` override variables.
    pub fn load(&self) -> Result<Loaded, CliError> {
        Ok(plan_core::load_path(&self.plan, &self.settings())?)
    }

    /// Loads a plan that must be valid; prints its errors otherwise.
    pub fn load_valid(&self, stderr: &mut dyn Write) -> Result<Plan, CliError> {
        self.valid(self.load()?, stderr)
    }

    /// Loads a plan only to show it (`print`, `graph`, `timeline`,
    /// `status`): every rule but fault exploration, which is what makes a
    /// fleet's plan cost seconds, and which only the verbs that run or
    /// rehearse it need. It must be valid; its errors are printed otherwise.
    pub fn load_to_show(&self, stderr: &mut dyn Write) -> Result<Plan, CliError> {
        let mut settings = self.settings();
        settings.skip_exploration = true;
        let loaded = plan_core::load_path(&self.plan, &settings)?;
        self.valid(loaded, stderr)
    }

    fn valid(&self, loaded: Loaded, stderr: &mut dyn Write) -> Result<Plan, CliError> {
        match loaded.plan {
            Some(plan) => Ok(plan),
            None => {
                let errors = loaded.diagnostics.error_count();
                let mut only_errors = loaded.diagnostics.clone();
                only_errors.retain_errors();
                render::diagnostics_text(&only_errors, stderr)?;
                Err(CliError::InvalidPlan {
                    path: self.plan.display().to_string(),
                    errors,
                })
            }
        }
    }
}

/// Runs `cutover` with these arguments, writing to these streams.
pub fn run(cli: Cli, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Result<u8, CliError> {
    match cli.command {
        Command::Check(args) => commands::check::cmd_check(&args, stdout, stderr),
        Command::Status(args) => commands::status::cmd_status(&args, stdout, stderr),
        Command::Graph(args) => commands::graph::cmd_graph(&args, stdout, stderr),
        Command::Print(args) => commands::print::cmd_print(&args, stdout, stderr),
        Command::Run(args) => commands::run::cmd_run(&args, stdout, stderr),
        Command::Resume(args) => commands::resume::cmd_resume(&args, stdout, stderr),
        Command::Simulate(args) => commands::simulate::cmd_simulate(&args, stdout, stderr),
        Command::Announce(args) => commands::announce::cmd_announce(&args, stdout, stderr),
        Command::Timeline(args) => commands::timeline::cmd_timeline(&args, stdout, stderr),
        Command::Watch(args) => commands::watch::cmd_watch(&args, stdout, stderr),
        Command::Probe(args) => commands::probe::cmd_probe(&args, stdout, stderr),
        Command::Completions(args) => commands::completions::cmd_completions(&args, stdout),
        Command::Man(args) => commands::man::cmd_man(&args, stdout, stderr),
    }
}

/// The whole program: parse arguments, run, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit_codes::ERROR
            } else {
                exit_codes::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Unlocked handles: each write takes the stream's lock for that write
    // only. Holding `stderr().lock()` for the whole command deadlocks a run
    // on a terminal: indicatif's ticker thread draws the live view to stderr
    // while holding its bar's state, and this thread then waits for that
    // state (issue 9). The live view owns the terminal while it is shown.
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let outcome =
        logging::init(cli.log_file.as_deref()).and_then(|()| run(cli, &mut out, &mut err));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(exit_codes::OK)
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            if let Some(hint) = e.hint() {
                let _ = writeln!(err, "  hint: {hint}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

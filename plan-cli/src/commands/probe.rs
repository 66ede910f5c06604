//! `cutover probe PLAN`: a read-only rehearsal against the real hosts, the
//! day before the window and again right before it. It reaches every host
//! the run needs (host keys against known_hosts, never adding one; the
//! login), asks the DNS server a signed question, and looks at each step
//! without running it: its check ("already done?"), its programs, its
//! unit, its record, its pending copy. Findings are ranked blockers,
//! warnings, facts; the copies' measurements go to a record that
//! `simulate`, `announce` and `check` take with `--measured`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use plan_core::machine::{RunRecord, Schedule, Selection};
use plan_core::Plan;
use plan_steps::executor::{Executor, SshOptions};
use plan_steps::probe::{bytes_text, Finding, Probed, Severity};
use serde::Serialize;

use crate::{exit_codes, session, CliError, PlanArgs};

/// What `cutover probe --help` says after the options.
const AFTER: &str = "\
What it runs on the hosts, and nothing else:
    id -un; command -v PROGRAM; test -e PATH; df -Pk; rsync --dry-run --stats;
    systemctl show -p LoadState / is-active, or the service's own status command;
    the step's check (checks only look) or the step's `probe` (the plan vouches for it);
    a timed stream of 32 MiB of zeros from a copy's source host to its destination host,
    thrown away there (ssh ... 'dd of=/dev/null', which reports its time).
It never runs a step's action or revert, never updates DNS (one signed query per record),
never adds a host key to known_hosts, and never opens or writes the run's journal.

Exit codes: 0 no blocker, 1 blockers found (or the probe could not start), 2 invalid plan.";

/// Arguments of `cutover probe`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER)]
pub struct ProbeArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Probe only this phase's steps (records are expected as the earlier phases leave them)
    #[arg(long, value_name = "NAME")]
    phase: Option<String>,
    /// Check host keys against this known_hosts file (default: the plan's `known_hosts`, else ~/.ssh/known_hosts)
    #[arg(long, value_name = "PATH")]
    known_hosts: Option<PathBuf>,
    /// Open at most N SSH sessions at once
    #[arg(long, value_name = "N", default_value_t = plan_steps::executor::CONNECT_PARALLEL,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    connect_parallel: u16,
    /// Write the measurements here, for `simulate --measured` [default: the plan's path with `.probe` appended]
    #[arg(long, value_name = "PATH")]
    record: Option<PathBuf>,
    /// Write no record
    #[arg(long, conflicts_with = "record")]
    no_record: bool,
    #[command(flatten)]
    output: crate::JsonArgs,
}

/// The probe as `--json` prints it.
#[derive(Serialize)]
struct ProbeJson<'a> {
    plan: &'a str,
    phase: Option<&'a str>,
    steps: usize,
    blockers: usize,
    warnings: usize,
    findings: &'a [Finding],
    copies: Vec<CopyJson<'a>>,
    record: Option<String>,
}

#[derive(Serialize)]
struct CopyJson<'a> {
    #[serde(flatten)]
    copy: &'a plan_steps::probe::CopyMeasure,
    /// The expected time of the copy, in seconds.
    expected_secs: Option<f64>,
}

/// Probes the plan: exit 0 without blockers, 1 with, 2 for an invalid plan.
pub fn cmd_probe(
    args: &ProbeArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_valid(stderr)?;
    session::known_phase(&plan, args.phase.as_deref())?;
    let selection = Selection {
        phase: args.phase.clone(),
        already_done: Default::default(),
    };
    let schedule = Schedule::new(&plan, &selection);
    let plan = Arc::new(plan);
    let executor = Executor::new(Arc::clone(&plan)).with_ssh(SshOptions {
        known_hosts: args.known_hosts.clone(),
        accept_new: false,
        connect_parallel: args.connect_parallel,
    });
    let record = match (&args.record, args.no_record) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => Some(default_record(&args.plan.plan)),
    };
    if let Some(path) = &record {
        check_record_path(path)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("cannot start the async runtime"))?;
    let probed = runtime.block_on(executor.probe(&schedule));
    if let Some(path) = &record {
        write_record(path, &plan, &schedule, args.phase.as_deref(), &probed)?;
    }
    let (blockers, warnings) = (
        probed.count(Severity::Blocker),
        probed.count(Severity::Warning),
    );
    if args.output.json() {
        let json = ProbeJson {
            plan: &plan.name,
            phase: args.phase.as_deref(),
            steps: schedule.steps.len(),
            blockers,
            warnings,
            findings: &probed.findings,
            copies: probed
                .copies
                .iter()
                .map(|copy| CopyJson {
                    copy,
                    expected_secs: copy.expected().map(|d| d.as_secs_f64()),
                })
                .collect(),
            record: record.as_ref().map(|p| p.display().to_string()),
        };
        serde_json::to_writer_pretty(&mut *stdout, &json)?;
        writeln!(stdout)?;
    } else {
        let shown = Shown {
            plan_path: &args.plan.plan,
            record: record.as_deref(),
        };
        render(&plan, &schedule, &probed, &shown, stdout)?;
    }
    Ok(if blockers > 0 {
        exit_codes::ERROR
    } else {
        exit_codes::OK
    })
}

/// `PLAN.probe`, beside the plan.
fn default_record(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_owned();
    name.push(".probe");
    PathBuf::from(name)
}

/// Refuses a record path that holds something else than a probe's record
/// (a journal, say): only an earlier probe's record is replaced.
fn check_record_path(path: &Path) -> Result<(), CliError> {
    if let Ok(bytes) = std::fs::read(path) {
        let text = String::from_utf8_lossy(&bytes);
        let probe = plan_core::journal::decode::<RunRecord>(&text).is_ok_and(|journal| {
            matches!(
                journal.records.first().map(|r| &r.entry),
                Some(RunRecord::ProbeStarted { .. })
            )
        });
        if !text.is_empty() && !probe {
            return Err(CliError::Refused {
                message: format!(
                    "`{}` exists and is not a probe's record (a journal?): not replaced",
                    path.display()
                ),
                hint: "name another file with --record, or write none with --no-record".into(),
            });
        }
    }
    Ok(())
}

/// The record `simulate --measured` reads: a journal-format file with a
/// `probe_started` record and a `probed` record per copy measured,
/// replaced whole (written beside, then renamed).
fn write_record(
    path: &Path,
    plan: &Plan,
    schedule: &Schedule,
    phase: Option<&str>,
    probed: &Probed,
) -> Result<(), CliError> {
    let time = jiff::Timestamp::now().to_string();
    let mut records = vec![RunRecord::ProbeStarted {
        plan: plan.name.clone(),
        phase: phase.map(str::to_owned),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        steps: schedule
            .steps
            .iter()
            .filter_map(|s| plan.step(&s.id))
            .map(|s| (s.id.clone(), s.fingerprint()))
            .collect(),
    }];
    for copy in &probed.copies {
        records.push(RunRecord::Probed {
            step: copy.step.clone(),
            files: copy.files,
            bytes: copy.bytes,
            scan_millis: copy.scan_millis,
            rate_bytes: copy.rate.map(|r| r.0),
            rate_millis: copy.rate.map(|r| r.1),
        });
    }
    let mut text = String::new();
    for (seq, record) in (1..).zip(&records) {
        let line = plan_core::journal::encode(seq, &time, plan.hash, record)
            .map_err(|e| CliError::Internal(format!("cannot encode the probe's record: {e}")))?;
        text.push_str(&line);
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, text).map_err(CliError::io(format!(
        "cannot write the probe's record `{}`",
        partial.display()
    )))?;
    std::fs::rename(&partial, path).map_err(CliError::io(format!(
        "cannot write the probe's record `{}`",
        path.display()
    )))
}

/// Where the plan and the record are, as the summary names them.
struct Shown<'a> {
    plan_path: &'a Path,
    record: Option<&'a Path>,
}

/// The one-screen summary: counts, then blockers, warnings and facts.
fn render(
    plan: &Plan,
    schedule: &Schedule,
    probed: &Probed,
    shown: &Shown<'_>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    writeln!(
        out,
        "probe of {}: {}: {}, {}, {}",
        plan.name,
        count(schedule.steps.len(), "step", "steps"),
        count(probed.count(Severity::Blocker), "blocker", "blockers"),
        count(probed.count(Severity::Warning), "warning", "warnings"),
        count(probed.count(Severity::Fact), "fact", "facts"),
    )?;
    for (severity, title, mark) in [
        (
            Severity::Blocker,
            "blockers: the run would fail here, or could not roll back",
            "✗",
        ),
        (Severity::Warning, "warnings", "!"),
        (Severity::Fact, "facts", "·"),
    ] {
        let found: Vec<&Finding> = probed
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .collect();
        if found.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}:")?;
        for finding in found {
            let place = match (&finding.step, &finding.host) {
                (Some(step), Some(host)) => format!("{step} [{host}]: "),
                (Some(step), None) => format!("{step}: "),
                (None, Some(host)) => format!("{host}: "),
                (None, None) => String::new(),
            };
            writeln!(out, "  {mark} {place}{}", finding.message)?;
        }
    }
    if let Some(path) = shown.record {
        let pending: u64 = probed.copies.iter().map(|c| c.bytes).sum();
        writeln!(
            out,
            "\nrecord: {} ({} pending in {}); estimates use it with `cutover simulate {} --measured {}`",
            path.display(),
            bytes_text(pending),
            match probed.copies.len() {
                1 => "1 copy".to_owned(),
                n => format!("{n} copies"),
            },
            shown.plan_path.display(),
            path.display()
        )?;
    }
    Ok(())
}

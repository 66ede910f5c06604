//! `cutover announce PLAN --start RFC3339 [--tz ZONE]...`: the announcement
//! mail, from the plan and its simulated downtime. Also the hook that lets
//! `cutover check` compare the announced window with the simulated P95.

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use plan_core::{Diagnostic, Plan};
use simulations::announce::{self, Facts, Figures, Format};
use simulations::{timeline, Options};

use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover announce`.
#[derive(Debug, Args)]
pub struct AnnounceArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// When the window starts (RFC 3339, e.g. 2026-12-01T14:00:00Z); defaults to the plan's `start`
    #[arg(long, value_name = "RFC3339", value_parser = plan_core::duration::parse_time)]
    start: Option<Timestamp>,
    /// Announce the downtime that this share of simulated runs stays within
    #[arg(long, value_name = "P", default_value_t = 0.95, value_parser = parse_confidence)]
    confidence: f64,
    /// Also give the times in this IANA time zone, e.g. Europe/Berlin (repeatable)
    #[arg(long = "tz", value_name = "ZONE")]
    zones: Vec<String>,
    /// Plain-text mail or Markdown
    #[arg(long, value_enum, default_value_t = AnnounceFormat::Text)]
    format: AnnounceFormat,
    #[command(flatten)]
    rehearsal: crate::RehearsalArgs,
    #[command(flatten)]
    measured: crate::MeasuredArgs,
}

/// How the mail is written.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum AnnounceFormat {
    /// A plain-text mail, `Subject:` first, wrapped at 72 columns
    Text,
    /// Markdown with a table of the times
    Markdown,
}

fn parse_confidence(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number; write e.g. 0.95"))?;
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "`{text}` is not a share of runs between 0 and 1; write e.g. 0.95"
        ))
    }
}

/// Simulates the plan and prints the announcement.
pub fn cmd_announce(
    args: &AnnounceArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_valid(stderr)?;
    let start = args
        .start
        .or(plan.window.start)
        .ok_or_else(|| CliError::Refused {
            message:
                "the announcement needs the start of the window, and the plan does not fix one"
                    .into(),
            hint: "give it with --start, e.g. --start 2026-12-01T14:00:00Z".into(),
        })?;
    let zones = args
        .zones
        .iter()
        .map(|name| zone(name))
        .collect::<Result<Vec<_>, _>>()?;
    if !plan.steps().any(|s| s.pending() && s.downtime.is_some()) {
        return Err(CliError::Refused {
            message: "the plan has no pending step with `downtime: Begins`: there is no outage to announce".into(),
            hint: "mark the steps where users lose and regain the service with `downtime: Begins` and `downtime: Ends`"
                .into(),
        });
    }
    let phase = announce::downtime_phase(&plan).map(str::to_owned);
    let measured = args.measured.load(stderr)?;
    let journals = measured.as_ref().map_or(0, simulations::Measured::journals);
    let options = Options {
        runs: args.rehearsal.runs,
        seed: args.rehearsal.seed,
        phase: phase.clone(),
        measured,
        ..Options::default()
    };
    let estimate = simulations::estimate(&plan, &options).map_err(CliError::announce_estimate)?;
    for warning in &estimate.warnings {
        writeln!(stderr, "warning: {warning}")?;
    }
    let figures = Figures::from_estimate(&estimate, args.confidence, phase, journals);
    let facts = Facts::from_plan(&plan, start, zones, outage_begins(&plan), figures);
    let format = match args.format {
        AnnounceFormat::Text => Format::Text,
        AnnounceFormat::Markdown => Format::Markdown,
    };
    write!(stdout, "{}", announce::compose(&facts, format))?;
    Ok(exit_codes::OK)
}

/// An IANA zone by name, from the system's database (or the bundled copy).
fn zone(name: &str) -> Result<(String, TimeZone), CliError> {
    TimeZone::get(name).map(|tz| (name.to_owned(), tz)).map_err(|e| {
        CliError::Usage(format!("--tz {name}: not a time zone ({e}); write an IANA name such as Europe/Berlin or America/New_York"))
    })
}

/// How long after the window start users likely lose the service: the
/// anchor of the phase where the outage begins plus the start of the
/// `Begins` step in it, at likely durations.
fn outage_begins(plan: &Plan) -> Duration {
    let Ok(laid_out) = timeline::layout(plan, None) else {
        return Duration::ZERO;
    };
    laid_out
        .phases
        .iter()
        .find_map(|p| {
            let begins = p
                .bars
                .iter()
                .find(|b| b.downtime == Some(plan_core::Downtime::Begins))?;
            let at =
                p.at.unwrap_or(0)
                    .saturating_add(i64::try_from(begins.start.as_secs()).unwrap_or(i64::MAX));
            Some(Duration::from_secs(u64::try_from(at).unwrap_or(0)))
        })
        .unwrap_or_default()
}

/// The warning `cutover check` adds when the announced window is shorter
/// than the simulated P95 downtime; `None` when it is not, or the plan has no
/// outage. A simulation that cannot run does not fail `check`: it is noted on
/// `stderr`, so the warning's absence is not taken for a verdict.
pub(crate) fn window_warning(
    plan: &Plan,
    measured: Option<&simulations::Measured>,
    stderr: &mut dyn Write,
) -> std::io::Result<Vec<Diagnostic>> {
    match announce::estimate_rules(plan, measured) {
        Ok(warnings) => Ok(warnings),
        Err(e) => {
            writeln!(
                stderr,
                "note: the announced window and the downtime budget were not checked against a simulation: {e}"
            )?;
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use simulations::announce::{human, round_near, round_up};

    use crate::Cli;

    const MAILMAN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/mailman.ron");
    const RUNS: u64 = 20_000;
    const SEED: u64 = 7;

    /// Runs `cutover ARGS...`; returns the exit code, stdout and stderr.
    fn cutover(args: &[&str]) -> (u8, String, String) {
        let cli = Cli::try_parse_from(std::iter::once("cutover").chain(args.iter().copied()))
            .expect("arguments parse");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = match crate::run(cli, &mut out, &mut err) {
            Ok(code) => code,
            Err(e) => {
                err.extend_from_slice(e.to_string().as_bytes());
                e.exit_code()
            }
        };
        (
            code,
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    }

    fn announce(start: &str, extra: &[&str]) -> String {
        let (runs, seed) = (RUNS.to_string(), SEED.to_string());
        let mut args = vec![
            "announce", MAILMAN, "--start", start, "--runs", &runs, "--seed", &seed,
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = cutover(&args);
        assert_eq!(code, 0, "{err}");
        out
    }

    /// The mail's words with line breaks folded, so wrapped sentences match.
    fn folded(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The estimate the mail rests on, made independently.
    fn estimate() -> simulations::Estimate {
        let text = std::fs::read_to_string(MAILMAN).expect("the example");
        let plan = plan_core::load_str(
            plan_core::Source::new("mailman.ron", text),
            &plan_core::Settings::default(),
        )
        .plan
        .expect("valid");
        let options = simulations::Options {
            runs: RUNS,
            seed: SEED,
            phase: Some("window".into()),
            ..simulations::Options::default()
        };
        simulations::estimate(&plan, &options).expect("simulates")
    }

    #[test]
    fn mailman_winter_mail_states_the_facts() {
        let mail = announce("2026-12-01T14:00:00Z", &["--tz", "Europe/Berlin"]);
        let words = folded(&mail);
        let estimate = estimate();
        let (p50, p95) = (estimate.downtime.p50, estimate.downtime.p95);
        // The likely outage is about 35-40 minutes, the P95 about an hour.
        assert!(
            p50 > std::time::Duration::from_secs(30 * 60)
                && p95 < std::time::Duration::from_secs(75 * 60)
        );
        assert!(
            mail.starts_with(
                "Subject: Maintenance: lists.wikimedia.org on Tuesday 1 December 2026, 14:00 to "
            ),
            "{mail}"
        );
        // hold-mail starts a minute in (after ttl-10s): the window ends a
        // minute plus the P95 after the start, rounded up to 5 minutes.
        let end = "2026-12-01T14:00:00Z"
            .parse::<jiff::Timestamp>()
            .expect("RFC 3339")
            + jiff::SignedDuration::from_secs(
                round_up(p95 + std::time::Duration::from_secs(60)).as_secs() as i64,
            );
        let utc_end = end.strftime("%H:%M").to_string();
        let berlin_end = (end + jiff::SignedDuration::from_hours(1))
            .strftime("%H:%M")
            .to_string();
        assert!(
            words.contains(&format!(
                "Tuesday 1 December 2026, from 14:00 to {utc_end} UTC"
            )),
            "{mail}"
        );
        assert!(
            words.contains(&format!(
                "from 15:00 to {berlin_end} CET (Europe/Berlin, UTC+01:00)"
            )),
            "{mail}"
        );
        assert!(
            words.contains(&format!("unavailable for about {}", human(round_near(p50)))),
            "{mail}"
        );
        assert!(
            words.contains(&format!(
                "Please allow for up to {}, until {utc_end} UTC / {berlin_end} CET",
                human(round_up(p95))
            )),
            "{mail}"
        );
        assert!(
            words.contains(&format!(
                "in 95 of 100 simulated rehearsals of this plan users were down for {} or less",
                human(round_up(p95))
            )),
            "{mail}"
        );
        assert!(
            words.contains("failed and was rolled back (about 10 in 100)"),
            "{mail}"
        );
        assert!(
            words.contains(
                "Mail sent to lists.wikimedia.org is held and delivered later, after the move."
            ),
            "{mail}"
        );
        assert!(
            words.contains("Please wait for the all-clear; the archives stay readable."),
            "{mail}"
        );
        assert!(
            words.contains(
                "A follow-up mail announces the changes of the new mailman version that users notice."
            ),
            "{mail}"
        );
        assert!(
            words.contains("We will announce here when lists.wikimedia.org is back"),
            "{mail}"
        );
        assert!(
            words.contains("upgrade mailman from 2.1.13 to 2.1.18"),
            "{mail}"
        );
        assert!(
            words.contains("from 20,000 simulated runs of phase `window`"),
            "{mail}"
        );
        assert!(
            mail.lines()
                .all(|l| l.chars().count() <= 72 || l.starts_with("Subject:")),
            "{mail}"
        );
    }

    #[test]
    fn summer_times_and_markdown() {
        let mail = announce(
            "2026-07-01T14:00:00Z",
            &[
                "--tz",
                "Europe/Berlin",
                "--tz",
                "Asia/Tokyo",
                "--format",
                "markdown",
            ],
        );
        assert!(mail.starts_with("**Subject:** "), "{mail}");
        assert!(
            mail.contains("| UTC | Wednesday 1 July 2026 | 14:00 |"),
            "{mail}"
        );
        assert!(
            mail.contains("| CEST (Europe/Berlin, UTC+02:00) | Wednesday 1 July 2026 | 16:00 |"),
            "{mail}"
        );
        assert!(mail.contains("| JST (Asia/Tokyo, UTC+09:00) | Wednesday 1 July 2026 | 23:00 | Thursday 2 July 00:"), "{mail}");
        assert!(
            mail.contains("## What you will notice\n\n- Mail sent to lists.wikimedia.org is held"),
            "{mail}"
        );
    }

    #[test]
    fn same_seed_same_mail_and_a_higher_confidence_announces_longer() {
        let a = announce("2026-12-01T14:00:00Z", &[]);
        assert_eq!(a, announce("2026-12-01T14:00:00Z", &[]));
        let b = announce("2026-12-01T14:00:00Z", &["--confidence", "0.999"]);
        assert!(
            folded(&b).contains("in 999 of 1,000 simulated rehearsals"),
            "{b}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_announce() {
        let (code, _, err) = cutover(&[
            "announce",
            MAILMAN,
            "--start",
            "2026-12-01T14:00:00Z",
            "--tz",
            "Mars/Olympus",
        ]);
        assert_eq!(code, crate::exit_codes::ERROR);
        assert!(err.contains("Mars/Olympus"), "{err}");
        let (code, _, err) = cutover(&["announce", MAILMAN]);
        assert_eq!(code, crate::exit_codes::ERROR);
        assert!(err.contains("start of the window"), "{err}");
        assert!(Cli::try_parse_from([
            "cutover",
            "announce",
            MAILMAN,
            "--start",
            "2026-12-01T14:00:00Z",
            "--confidence",
            "1.5"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["cutover", "announce", MAILMAN, "--start", "tomorrow"]).is_err()
        );
    }

    /// Regression for issue 5, deliverable 6: `check` warns when the
    /// announced window is shorter than the simulated P95.
    #[test]
    fn check_warns_when_the_announced_window_is_short() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = std::fs::read_to_string(MAILMAN).expect("the example");
        let short = dir.path().join("short.ron");
        std::fs::write(
            &short,
            text.replace(r#"Window(announced: "2h")"#, r#"Window(announced: "45m")"#),
        )
        .expect("write");
        let short = short.to_str().expect("utf-8 path");

        let (code, out, _) = cutover(&["check", short, "--format", "json"]);
        assert_eq!(code, 0, "a warning leaves the plan valid");
        let report: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(report["warnings"], 1, "{out}");
        let warning = &report["diagnostics"][0];
        assert_eq!(warning["code"], "cutover::announced-window-short");
        assert!(
            warning["message"]
                .as_str()
                .is_some_and(|m| m.contains("45m") && m.contains("P95")),
            "{out}"
        );
        let label = &warning["labels"][0];
        let offset = label["offset"].as_u64().expect("offset") as usize;
        let length = label["length"].as_u64().expect("length") as usize;
        assert_eq!(
            &std::fs::read_to_string(short).expect("read")[offset..offset + length],
            "\"45m\""
        );

        let (code, out, err) = cutover(&["check", short]);
        assert_eq!(code, 0);
        assert!(out.contains("1 warning"), "{out}");
        assert!(
            err.contains("cutover::announced-window-short") && err.contains("announced 45m"),
            "{err}"
        );

        let (code, out, err) = cutover(&["check", MAILMAN]);
        assert_eq!(code, 0);
        assert!(
            out.contains("0 warnings") && !err.contains("announced-window-short"),
            "{out}{err}"
        );
    }
}

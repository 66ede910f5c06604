//! `cutover simulate PLAN`: rehearse the plan many times on a virtual clock
//! and report the downtime estimate: quantiles, the chance of a rollback,
//! how runs end and which steps drive the worst cases.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use plan_core::duration::format_duration;
use serde::Serialize;
use simulations::{
    downtime_chart, EndState, Estimate, HaltCause, Options, Quantiles, Scenario, SimError,
};

use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    rehearsal: crate::RehearsalArgs,
    /// Worker threads [default: one per core]; the figures do not depend on it
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Apply a failure scenario (repeatable): rsync-overrun, dns-rollback, ssh-drop, revert-fails,
    /// slow-operator, or a scenario file (RON)
    #[arg(long = "scenario", value_name = "NAME|FILE")]
    scenarios: Vec<String>,
    #[command(flatten)]
    measured: crate::MeasuredArgs,
    /// Simulate only this phase
    #[arg(long, value_name = "NAME")]
    phase: Option<String>,
    #[command(flatten)]
    output: crate::JsonArgs,
    /// Draw the downtime distribution as SVG into this file
    #[arg(long, value_name = "FILE.svg")]
    histogram: Option<PathBuf>,
}

/// Simulates the plan and prints the estimate.
pub fn cmd_simulate(
    args: &SimulateArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_valid(stderr)?;
    let scenarios = args
        .scenarios
        .iter()
        .map(|s| load_scenario(s))
        .collect::<Result<Vec<_>, _>>()?;
    let measured = args.measured.load(stderr)?;
    let options = Options {
        runs: args.rehearsal.runs,
        seed: args.rehearsal.seed,
        threads: args.threads.unwrap_or(0),
        scenarios,
        measured,
        phase: args.phase.clone(),
    };
    let estimate = simulations::estimate(&plan, &options)?;
    for warning in &estimate.warnings {
        writeln!(stderr, "warning: {warning}")?;
    }
    if let Some(path) = &args.histogram {
        let svg = downtime_chart::svg(&estimate, &plan.name)?;
        std::fs::write(path, svg).map_err(CliError::io(format!(
            "cannot write the histogram to `{}`",
            path.display()
        )))?;
    }
    if args.output.json() {
        serde_json::to_writer_pretty(&mut *stdout, &JsonEstimate::new(&plan.name, &estimate))?;
        writeln!(stdout)?;
    } else {
        report(&plan.name, &options, &estimate, stdout)?;
        if let Some(path) = &args.histogram {
            writeln!(stdout, "\nhistogram: {}", path.display())?;
        }
    }
    Ok(exit_codes::OK)
}

/// A built-in scenario by name, else a scenario file.
fn load_scenario(name: &str) -> Result<Scenario, CliError> {
    if let Some(scenario) = Scenario::builtin(name) {
        return Ok(scenario);
    }
    let path = Path::new(name);
    if !path.exists() {
        return Err(CliError::from(Scenario::named(name).err().unwrap_or(
            SimError::UnknownScenario {
                name: name.to_owned(),
                known: String::new(),
            },
        )));
    }
    let text = std::fs::read_to_string(path).map_err(CliError::io(format!(
        "cannot read the scenario file `{name}`"
    )))?;
    Scenario::parse(name, &text).map_err(CliError::from)
}

/// Rounded to whole seconds and written compactly (`35m12s`).
fn human(d: Duration) -> String {
    format_duration(Duration::from_secs(d.as_secs_f64().round() as u64))
}

fn percent(share: f64) -> String {
    let p = 100.0 * share;
    if p > 0.0 && p < 0.01 {
        "<0.01%".into()
    } else {
        format!("{p:.2}%")
    }
}

fn quantile_line(q: &Quantiles) -> String {
    format!(
        "P50 {:<9} P90 {:<9} P95 {:<9} P99 {:<9} max {:<9} mean {}",
        human(q.p50),
        human(q.p90),
        human(q.p95),
        human(q.p99),
        human(q.max),
        human(q.mean)
    )
}

/// The report for people.
fn report(
    name: &str,
    options: &Options,
    estimate: &Estimate,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "{name}")?;
    let what = match &options.phase {
        Some(phase) => format!("of phase `{phase}`"),
        None => "of the whole plan".into(),
    };
    writeln!(
        out,
        "{} simulated runs {what}, seed {} (the same seed gives the same figures)",
        simulations::thousands(estimate.runs),
        estimate.seed
    )?;
    for scenario in &options.scenarios {
        writeln!(out, "scenario {}: {}", scenario.name, scenario.description)?;
    }
    writeln!(out)?;
    writeln!(out, "downtime    {}", quantile_line(&estimate.downtime))?;
    // Beside the worst case: a client that resolves afresh, when the
    // difference (time spent only waiting for DNS caches) shows.
    if estimate.downtime_fresh != estimate.downtime {
        writeln!(
            out,
            "  fresh DNS {}",
            quantile_line(&estimate.downtime_fresh)
        )?;
        writeln!(
            out,
            "            (downtime: the worst-placed user, whose resolver kept the old address for the\n            whole TTL: what the window promises; fresh DNS: a client that looks the name up afresh)"
        )?;
    }
    // When the plan says what users get in each outage: each kind's time.
    for outage in &estimate.outages {
        writeln!(
            out,
            "  {:<10}{}",
            outage.kind,
            quantile_line(&outage.downtime)
        )?;
    }
    writeln!(out, "run length  {}", quantile_line(&estimate.duration))?;
    writeln!(
        out,
        "rollback    {} of runs",
        percent(estimate.rollback_probability)
    )?;
    if estimate.open_outage_probability > 0.0 {
        writeln!(
            out,
            "still down  {} of runs stop while users are down (halted, or rolled back to a point inside the\n            downtime); their downtime is counted until the stop, but the outage lasts until an operator acts",
            percent(estimate.open_outage_probability)
        )?;
    }
    writeln!(out, "\nend states")?;
    for end in &estimate.end_states {
        writeln!(out, "  {:>8}  {}", percent(end.share), end.end)?;
    }
    if estimate.tail_drivers.is_empty() {
        writeln!(out, "\nno run had any downtime")?;
        return Ok(());
    }
    writeln!(
        out,
        "\nwhat drives the tail: the {} runs with a downtime of {} (P95) or more",
        simulations::thousands(estimate.tail_runs),
        human(estimate.tail_from)
    )?;
    let width = estimate
        .tail_drivers
        .iter()
        .map(|d| d.label().len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "  {:<width$}  {:>6}  {:>12}  {:>12}",
        "step", "share", "mean in tail", "mean overall"
    )?;
    for driver in estimate
        .tail_drivers
        .iter()
        .filter(|d| d.share >= 0.005)
        .take(10)
    {
        writeln!(
            out,
            "  {:<width$}  {:>5.0}%  {:>12}  {:>12}",
            driver.label(),
            100.0 * driver.share,
            human(driver.tail_mean),
            human(driver.mean)
        )?;
    }
    writeln!(
        out,
        "  (time each step takes while users are down; steps side by side overlap)"
    )?;
    Ok(())
}

/// One outage kind's downtime, in seconds.
#[derive(Serialize)]
struct JsonOutage {
    kind: String,
    downtime_s: JsonQuantiles,
}

/// The estimate as JSON: durations in seconds.
#[derive(Serialize)]
struct JsonEstimate<'a> {
    plan: &'a str,
    runs: u64,
    seed: u64,
    scenarios: &'a [String],
    downtime_s: JsonQuantiles,
    /// The downtime of a client that looks the name up afresh (no DNS
    /// cache waits): most users are back this soon.
    downtime_fresh_s: JsonQuantiles,
    /// Each outage kind's downtime, when the plan names kinds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outages: Vec<JsonOutage>,
    duration_s: JsonQuantiles,
    rollback_probability: f64,
    open_outage_probability: f64,
    end_states: Vec<JsonEnd>,
    tail: JsonTail,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonQuantiles {
    p50: f64,
    p90: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl From<&Quantiles> for JsonQuantiles {
    fn from(q: &Quantiles) -> Self {
        JsonQuantiles {
            p50: q.p50.as_secs_f64(),
            p90: q.p90.as_secs_f64(),
            p95: q.p95.as_secs_f64(),
            p99: q.p99.as_secs_f64(),
            max: q.max.as_secs_f64(),
            mean: q.mean.as_secs_f64(),
        }
    }
}

#[derive(Serialize)]
struct JsonEnd {
    /// `completed`, `rolled_back` or `halted`.
    end: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    point: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'static str>,
    runs: u64,
    share: f64,
    text: String,
}

#[derive(Serialize)]
struct JsonTail {
    from_s: f64,
    runs: u64,
    drivers: Vec<JsonDriver>,
}

#[derive(Serialize)]
struct JsonDriver {
    /// The step id, or null for DNS propagation.
    step: Option<String>,
    label: String,
    share: f64,
    tail_mean_s: f64,
    mean_s: f64,
}

impl<'a> JsonEstimate<'a> {
    fn new(plan: &'a str, e: &'a Estimate) -> Self {
        let end_states = e
            .end_states
            .iter()
            .map(|s| {
                let (end, point, step, cause) = match &s.end {
                    EndState::Completed => ("completed", None, None, None),
                    EndState::RolledBack { point } => {
                        ("rolled_back", Some(point.clone()), None, None)
                    }
                    EndState::Halted { step, cause } => (
                        "halted",
                        None,
                        step.clone(),
                        Some(match cause {
                            HaltCause::RevertFailed => "revert_failed",
                            HaltCause::PastPointOfNoReturn => "past_point_of_no_return",
                            HaltCause::Other => "other",
                        }),
                    ),
                };
                JsonEnd {
                    end,
                    point,
                    step,
                    cause,
                    runs: s.runs,
                    share: s.share,
                    text: s.end.to_string(),
                }
            })
            .collect();
        let drivers = e
            .tail_drivers
            .iter()
            .map(|d| JsonDriver {
                step: d.step.clone(),
                label: d.label().to_owned(),
                share: d.share,
                tail_mean_s: d.tail_mean.as_secs_f64(),
                mean_s: d.mean.as_secs_f64(),
            })
            .collect();
        JsonEstimate {
            plan,
            runs: e.runs,
            seed: e.seed,
            scenarios: &e.scenarios,
            downtime_s: (&e.downtime).into(),
            downtime_fresh_s: (&e.downtime_fresh).into(),
            outages: e
                .outages
                .iter()
                .map(|o| JsonOutage {
                    kind: o.kind.clone(),
                    downtime_s: (&o.downtime).into(),
                })
                .collect(),
            duration_s: (&e.duration).into(),
            rollback_probability: e.rollback_probability,
            open_outage_probability: e.open_outage_probability,
            end_states,
            tail: JsonTail {
                from_s: e.tail_from.as_secs_f64(),
                runs: e.tail_runs,
                drivers,
            },
            warnings: &e.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{exit_codes, Cli, CliError};

    fn simulate(args: &[&str]) -> Result<(u8, String, String), CliError> {
        let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/mailman.ron");
        let mut argv = vec!["cutover", "simulate", plan];
        argv.extend(args);
        let cli = Cli::try_parse_from(argv).expect("valid arguments");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = crate::run(cli, &mut out, &mut err)?;
        Ok((
            code,
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        ))
    }

    #[test]
    fn the_output_is_the_same_whatever_the_threads() {
        let one = simulate(&["--runs", "3000", "--threads", "1"]).expect("runs");
        let three = simulate(&["--runs", "3000", "--threads", "3"]).expect("runs");
        assert_eq!(one, three);
        assert_eq!(one.0, exit_codes::OK);
        assert!(
            one.1.contains("3,000 simulated runs") && one.1.contains("seed 1"),
            "{}",
            one.1
        );
        assert!(one.1.contains("what drives the tail"));
    }

    #[test]
    fn json_has_the_documented_keys() {
        let (_, out, _) = simulate(&[
            "--runs",
            "2000",
            "--seed",
            "9",
            "--json",
            "--scenario",
            "slow-operator",
        ])
        .expect("runs");
        let json: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
        assert_eq!(json["runs"], 2000);
        assert_eq!(json["seed"], 9);
        for q in ["p50", "p90", "p95", "p99", "max"] {
            assert!(
                json["downtime_s"][q].as_f64().is_some_and(|s| s > 0.0),
                "{q}: {json}"
            );
        }
        assert!(json["rollback_probability"].as_f64().is_some());
        let ends = json["end_states"].as_array().expect("a list");
        let total: f64 = ends.iter().filter_map(|e| e["share"].as_f64()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert_eq!(json["scenarios"][0], "slow-operator");
    }

    #[test]
    fn an_unknown_scenario_is_refused_with_the_names_there_are() {
        let err = simulate(&["--runs", "10", "--scenario", "meteor"]).expect_err("unknown");
        let message = err.to_string();
        assert!(
            message.contains("`meteor`") && message.contains("`rsync-overrun`"),
            "{message}"
        );
        assert_eq!(err.exit_code(), exit_codes::ERROR);
    }
}

//! Issue 13: estimates calibrated with the journals of real runs, as users
//! make them: run the plan a few times, then `simulate`, `announce` and
//! `check` with `--measured`.

use std::path::{Path, PathBuf};

use tests::Cutover;

/// A plan whose one slow step is guessed at ten minutes but takes about a
/// second; the announced window (5 minutes) is too short for the guess.
fn plan_text(work: &str) -> String {
    tests::local_demo_plan(
        "calibration: a guessed duration",
        &format!(
            r#"Step(id: "hold", title: "hold writes",
                 action: Shell(on: "local", run: "touch {{{{d}}}}/held", revert: Run("rm -f {{{{d}}}}/held")),
                 check: Run("test -f {{{{d}}}}/held"), downtime: Begins, duration: Fixed("1s")),
            Step(id: "work", title: "the slow part",
                 action: Shell(on: "local", run: "{work}", revert: Nothing("it changes nothing")),
                 check: Run("true"), duration: Fixed("10m")),
            Step(id: "open", title: "open writes",
                 action: Shell(on: "local", run: "rm -f {{{{d}}}}/held", revert: Run("touch {{{{d}}}}/held")),
                 check: Run("test ! -f {{{{d}}}}/held"), downtime: Ends, duration: Fixed("1s")),"#
        ),
    )
}

/// Runs the plan in `dir` `n` times, each with its own journal; returns them.
fn journals(dir: &Path, plan: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let journal = dir.join(format!("run-{i}.journal"));
            let out = tests::run_plan(plan, &journal, &["--yes", "--force"]);
            let _run_dir = tests::run_dir_in(&out.stderr);
            out.assert_code(0);
            journal
        })
        .collect()
}

fn with_measured(cutover: Cutover, journals: &[PathBuf]) -> Cutover {
    cutover.arg("--measured").args(journals)
}

#[test]
fn journals_of_real_runs_calibrate_simulate_announce_and_check() {
    let dir = tests::temp_dir("cutover-calibration-test-");
    let plan = dir.path().join("plan.ron");
    std::fs::write(&plan, plan_text("sleep 1")).expect("the plan is written");
    let journals = journals(dir.path(), &plan, 3);

    // The plan's guess: ten minutes, longer than the announced window.
    let guessed = Cutover::new().args(["check", "--json"]).arg(&plan).run();
    guessed.assert_code(0);
    guessed.diagnostic("cutover::announced-window-short");

    // What the runs measured: about a second of work, not ten minutes.
    let simulated = with_measured(
        Cutover::new()
            .arg("simulate")
            .arg(&plan)
            .args(["--runs", "5000", "--json"]),
        &journals,
    )
    .run();
    simulated.assert_code(0);
    let json = simulated.json();
    let p50 = json["downtime_s"]["p50"].as_f64().expect("a P50");
    assert!(p50 > 0.5 && p50 < 10.0, "{}", simulated.describe());
    // No DNS here: a fresh client sees the same outage.
    assert_eq!(json["downtime_fresh_s"], json["downtime_s"]);
    // No run failed: each step's 1% becomes 0.02/5 (a prior worth two
    // attempts, three successes), about 1.6% for the four steps.
    assert!(
        json["rollback_probability"].as_f64().expect("a share") < 0.03,
        "{}",
        simulated.describe()
    );

    // The calibrated window reaches the announcement and `check`.
    let announced = with_measured(
        Cutover::new().arg("announce").arg(&plan).args([
            "--start",
            "2026-12-01T14:00:00Z",
            "--runs",
            "5000",
        ]),
        &journals,
    )
    .run();
    announced.assert_code(0);
    let said = announced
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("calibrated with what 3 journals of earlier runs measured"),
        "{}",
        announced.describe()
    );
    assert!(said.contains("seconds"), "{}", announced.describe());
    assert!(
        !said.contains("about 10 minutes"),
        "{}",
        announced.describe()
    );
    let checked = with_measured(
        Cutover::new().args(["check", "--json"]).arg(&plan),
        &journals,
    )
    .run();
    checked.assert_code(0);
    assert!(
        !checked
            .diagnostics()
            .iter()
            .any(|d| d.code == "cutover::announced-window-short"),
        "{}",
        checked.describe()
    );

    // The step changed since: its runs no longer speak for it, and the
    // warning says which journals and which step.
    let changed = dir.path().join("changed.ron");
    std::fs::write(&changed, plan_text("sleep 2")).expect("the plan is written");
    let simulated = with_measured(
        Cutover::new()
            .arg("simulate")
            .arg(&changed)
            .args(["--runs", "2000", "--json"]),
        &journals,
    )
    .run();
    simulated.assert_code(0);
    assert!(
        simulated.stderr.contains(&format!(
            "warning: `{}` ran an earlier version of `work`: not measured from it (it changed since)",
            journals[0].display()
        )),
        "{}",
        simulated.describe()
    );
    let p50 = simulated.json()["downtime_s"]["p50"]
        .as_f64()
        .expect("a P50");
    // The plan's ten minutes again (to within the histogram's bins).
    assert!(p50 > 590.0, "{}", simulated.describe());
}

#[test]
fn a_journal_of_another_plan_is_refused_by_name() {
    let dir = tests::temp_dir("cutover-calibration-test-");
    let other = dir.path().join("other.ron");
    std::fs::write(
        &other,
        tests::local_demo_plan("calibration: another plan", ""),
    )
    .expect("the plan is written");
    let journals = journals(dir.path(), &other, 1);
    let plan = dir.path().join("plan.ron");
    std::fs::write(&plan, plan_text("true")).expect("the plan is written");
    for verb in ["simulate", "check"] {
        let out = with_measured(Cutover::new().arg(verb).arg(&plan), &journals).run();
        out.assert_code(1);
        assert!(
            out.stderr.contains(&format!(
                "`{}`: it is a journal of the plan `calibration: another plan`, not of `calibration: a guessed duration`",
                journals[0].display()
            )),
            "{verb}: {}",
            out.describe()
        );
    }
}

/// An `Rsync` may say how much it will copy; the size is checked like any
/// other value, and `print` writes it back.
#[test]
fn an_rsync_size_is_read_checked_and_printed() {
    let text = |size: &str| {
        format!(
            r#"Plan(name: "p", service: "s", window: Window(announced: "1h"),
                hosts: {{"a": Host(address: "192.0.2.1"), "b": Host(address: "192.0.2.2")}},
                phases: [Phase(name: "w", at: "0", steps: [
                    Step(id: "copy", action: Rsync(from: "a", to: "b", path: "/srv/", size: "{size}")),
                ])])"#
        )
    };
    let bad = text("40 gigs");
    let check = tests::check_json(&bad);
    check.assert_code(2);
    let d = check.diagnostic("cutover::invalid-value");
    assert_eq!(
        d.message,
        "`gigs` is not a unit of size",
        "{}",
        check.describe()
    );
    assert_eq!(d.labels[0].slice(&bad), r#""40 gigs""#);
    let printed = Cutover::new()
        .arg("print")
        .plan_text(&text("1.5 GiB"))
        .run();
    printed.assert_code(0);
    assert!(
        printed.stdout.contains(r#"size: "1536 MiB""#),
        "{}",
        printed.describe()
    );
}

//! Every example plan is valid, and prints back as itself.

use std::path::PathBuf;

use plan_core::{Plan, Settings, Source};
use tests::{workspace_file, Cutover};

fn examples() -> Vec<PathBuf> {
    let dir = workspace_file("examples");
    let mut plans: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    plans.sort();
    assert!(
        plans.iter().any(|p| p.ends_with("mailman.ron")),
        "examples/mailman.ron is missing: {plans:?}"
    );
    plans
}

#[test]
fn every_example_passes_check() {
    for path in examples() {
        let run = Cutover::new().arg("check").arg(&path).run();
        run.assert_no_panic().assert_code(0);
        assert!(
            run.stdout.contains(": valid: "),
            "{}: {}",
            path.display(),
            run.describe()
        );
        let json = Cutover::new()
            .arg("check")
            .arg(&path)
            .args(["--format", "json"])
            .run();
        json.assert_code(0);
        assert_eq!(json.json()["errors"], 0, "{}", json.describe());
    }
}

#[test]
fn the_seed_plan_has_every_row_of_the_ticket() {
    let run = Cutover::new()
        .args(["check", "--format", "json"])
        .arg(workspace_file("examples/mailman.ron"))
        .run();
    run.assert_code(0);
    // 33 rows, with row 3 twice.
    assert_eq!(run.json()["steps"], 34, "{}", run.describe());
}

fn load(name: &str, text: &str) -> Plan {
    let loaded = plan_core::load_str(Source::new(name, text), &Settings::default());
    match loaded.plan {
        Some(plan) => plan,
        None => panic!(
            "{name} does not load: {:?}\n{text}",
            loaded
                .diagnostics
                .iter()
                .map(|d| d.message().to_owned())
                .collect::<Vec<_>>()
        ),
    }
}

#[test]
fn every_example_prints_back_as_itself() {
    for path in examples() {
        let text = std::fs::read_to_string(&path).expect("the example is readable");
        let name = path.display().to_string();
        let plan = load(&name, &text);
        let printed = plan_core::to_ron(&plan);
        let again = load(&format!("{name} printed"), &printed);
        assert_eq!(plan_core::to_ron(&again), printed, "{name}");
        let view = |p: &Plan| {
            p.steps()
                .map(|s| {
                    format!(
                        "{} {} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                        s.number,
                        s.id,
                        s.title,
                        s.tickets,
                        s.done,
                        s.action,
                        s.check,
                        s.duration,
                        s.after
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(view(&plan), view(&again), "{name}");
        // What is printed is itself a valid plan for `cutover check`.
        let run = Cutover::new().arg("check").plan_text(&printed).run();
        run.assert_code(0);
    }
}

/// `cutover print` shows the plan as it will run: `--set` values expanded
/// into the commands, and the output is a valid plan that prints as itself.
#[test]
fn print_expands_variables_and_its_output_is_a_plan_that_prints_as_itself() {
    for path in examples() {
        let run = Cutover::new().arg("print").arg(&path).run();
        run.assert_no_panic().assert_code(0);
        let again = Cutover::new().arg("print").plan_text(&run.stdout).run();
        again.assert_code(0);
        assert_eq!(again.stdout, run.stdout, "{}", path.display());
    }
    let staging = Cutover::new()
        .arg("print")
        .arg(workspace_file("examples/mailman.ron"))
        .args(["--set", "service_ip=10.0.0.5"])
        .run();
    staging.assert_code(0);
    assert!(
        staging.stdout.contains("addresses: [\"10.0.0.5\""),
        "the switch shows the staging address:\n{}",
        staging.stdout
    );
    assert!(
        !staging.stdout.contains("208.80.154.75"),
        "{}",
        staging.stdout
    );
    let invalid = Cutover::new().arg("print").plan_text("Plan(").run();
    invalid.assert_code(2);
    assert!(invalid.stdout.is_empty(), "{}", invalid.stdout);
}

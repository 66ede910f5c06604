//! `cutover status`: the plan as the seed ticket's table.

use tests::{workspace_file, Cutover};

fn mailman_status(format: &str) -> tests::Run {
    let run = Cutover::new()
        .arg("status")
        .arg(workspace_file("examples/mailman.ron"))
        .args(["--format", format])
        .run();
    run.assert_no_panic().assert_code(0);
    run
}

#[test]
fn markdown_is_the_seed_tickets_first_table() {
    let fixture = workspace_file("tests/fixtures/seed-table.md");
    let expected =
        std::fs::read_to_string(&fixture).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    let run = mailman_status("markdown");
    if run.stdout != expected {
        let mismatch = run
            .stdout
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (got, want))| got != want);
        panic!(
            "the table differs from tests/fixtures/seed-table.md, first at {mismatch:#?}\n{}",
            run.describe()
        );
    }
    assert!(run.stderr.is_empty(), "{}", run.describe());
}

#[test]
fn json_has_a_row_per_step() {
    let json = mailman_status("json").json();
    assert_eq!(json["service"], "lists.wikimedia.org");
    let steps = json["steps"].as_array().expect("a steps array");
    assert_eq!(steps.len(), 34);
    assert_eq!(steps[0]["number"], 1);
    assert_eq!(steps[0]["done"], "yes");
    let row_9 = steps.iter().find(|s| s["number"] == 9).expect("row 9");
    assert_eq!(row_9["tickets"], serde_json::json!(["T109539", "T109393"]));
    let in_progress: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|s| s["done"] == "in progress")
        .collect();
    assert_eq!(in_progress.len(), 1);
    assert_eq!(in_progress[0]["number"], 12);
    for step in steps {
        for key in ["id", "title", "phase", "action"] {
            assert!(step[key].as_str().is_some_and(|v| !v.is_empty()), "{step}");
        }
    }
}

#[test]
fn text_groups_rows_by_phase() {
    let run = mailman_status("text");
    let out = &run.stdout;
    assert!(
        out.starts_with("lists.wikimedia.org: sodium -> fermium"),
        "{out}"
    );
    for phase in ["-- prep (unscheduled)", "-- window (at 0)"] {
        assert!(out.contains(phase), "no {phase:?} in\n{out}");
    }
    assert!(out.contains("switch over service IP"), "{out}");
    // Rows 1-11 (row 3 twice) and 13-16 were done.
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" yes")).count(),
        16,
        "{out}"
    );
}

#[test]
fn an_invalid_plan_has_no_status() {
    let run = Cutover::new()
        .arg("status")
        .plan_text(r#"Plan(name: "x", service: "x", window: Window(announced: "1h"), phases: [Phase(name: "p", steps: [Step(id: "a", action: Shell(on: "nowhere", run: "true"))])])"#)
        .run();
    run.assert_no_panic().assert_code(2);
    assert!(run.stdout.is_empty(), "{}", run.describe());
    assert!(
        run.stderr.contains("cutover::unknown-host"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("cutover::missing-revert"),
        "{}",
        run.describe()
    );
}

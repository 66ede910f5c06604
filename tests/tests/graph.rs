//! `cutover graph`: every step, rollback point and the point of no return,
//! in Mermaid and in Graphviz.

use plan_core::{Entry, Plan, Settings, Source};
use tests::{workspace_file, Cutover};

fn mailman() -> (String, Plan) {
    let path = workspace_file("examples/mailman.ron");
    let text = std::fs::read_to_string(&path).expect("examples/mailman.ron is readable");
    let plan = plan_core::load_str(
        Source::new("mailman.ron", text.as_str()),
        &Settings::default(),
    )
    .plan
    .expect("examples/mailman.ron is valid");
    (path.display().to_string(), plan)
}

fn graph(path: &str, format: &str) -> String {
    let run = Cutover::new()
        .args(["graph", path, "--format", format])
        .run();
    run.assert_no_panic().assert_code(0);
    assert!(run.stderr.is_empty(), "{}", run.describe());
    run.stdout
}

/// What each entry of the plan must show, in the syntax's own escaping.
fn expected_labels(plan: &Plan, escape: impl Fn(&str) -> String, newline: &str) -> Vec<String> {
    plan.phases
        .iter()
        .flat_map(|p| &p.entries)
        .map(|entry| match entry {
            Entry::Step(s) => escape(&format!(
                "{}. {}{newline}{} · {}",
                s.number,
                s.title,
                s.id,
                s.action.kind()
            )),
            Entry::RollbackPoint(m) => escape(&format!("rollback point{newline}{}", m.text)),
            Entry::PointOfNoReturn(m) => escape(&format!("point of no return{newline}{}", m.text)),
        })
        .collect()
}

#[test]
fn mermaid_shows_every_row_and_point() {
    let (path, plan) = mailman();
    let out = graph(&path, "mermaid");
    assert!(out.starts_with("flowchart TD\n"), "{out}");
    let labels = expected_labels(&plan, |s| s.replace('"', "#quot;"), "<br/>");
    assert_eq!(
        labels.len(),
        34 + 6 + 1,
        "34 steps, 6 rollback points, 1 point of no return"
    );
    for label in &labels {
        assert!(
            out.contains(&format!("\"{label}\"")),
            "no {label:?} in\n{out}"
        );
    }
    // Rollback points are hexagons; failures revert along dashed edges.
    assert_eq!(out.matches("{{\"rollback point<br/>").count(), 6, "{out}");
    assert!(out.contains("-. revert .->"), "{out}");
    for phase in &plan.phases {
        assert!(
            out.contains(&format!("[\"{}\"]", phase.name)),
            "no phase {} in\n{out}",
            phase.name
        );
    }
}

#[test]
fn dot_shows_every_row_and_point() {
    let (path, plan) = mailman();
    let out = graph(&path, "dot");
    assert!(
        out.starts_with("digraph plan {\n") && out.ends_with("}\n"),
        "{out}"
    );
    assert_eq!(out.matches('{').count(), out.matches('}').count(), "{out}");
    let labels = expected_labels(
        &plan,
        |s| s.replace('\\', "\\\\").replace('"', "\\\""),
        "\\n",
    );
    for label in &labels {
        assert!(
            out.contains(&format!("label=\"{label}\"")),
            "no {label:?} in\n{out}"
        );
    }
    assert_eq!(out.matches("shape=hexagon").count(), 6, "{out}");
    assert_eq!(out.matches("shape=trapezium").count(), 1, "{out}");
    assert!(out.contains("style=dashed"), "{out}");
}

#[test]
fn steps_past_the_point_of_no_return_have_no_revert_edge() {
    let plan = r#"Plan(name: "g", service: "g", window: Window(announced: "1h"),
        hosts: { "a": Host(address: "a.example.org") },
        phases: [Phase(name: "w", at: "0", steps: [
            RollbackPoint("start"),
            Step(id: "one", action: Shell(on: "a", run: "one", revert: Run("undo one")), check: Run("true")),
            PointOfNoReturn(reason: "gone"),
            Step(id: "two", action: Shell(on: "a", run: "two", revert: Irreversible("gone")), check: Run("true")),
        ])])"#;
    let run = Cutover::new()
        .arg("graph")
        .plan_text(plan)
        .args(["--format", "mermaid"])
        .run();
    run.assert_code(0);
    let out = &run.stdout;
    // Nodes are numbered in plan order: r1 start, s2 one, p3 the point, s4 two.
    assert!(out.contains("s2 -. revert .-> r1"), "{out}");
    assert!(!out.contains("s4 -. revert"), "{out}");
    assert!(out.contains("s2 --> p3") || out.contains("p3"), "{out}");
}

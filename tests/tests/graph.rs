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
fn expected_labels(plan: &Plan, escape: impl Fn(&str) -> String) -> Vec<String> {
    plan.phases
        .iter()
        .flat_map(|p| &p.entries)
        .map(|entry| match entry {
            Entry::Step(s) => escape(&format!(
                "{}. {}\n{} · {}",
                s.number,
                s.title,
                s.id,
                s.action.kind()
            )),
            Entry::RollbackPoint(m) => escape(&format!("rollback point\n{}", m.text)),
            Entry::PointOfNoReturn(m) => escape(&format!("point of no return\n{}", m.text)),
        })
        .collect()
}

fn rollback_points(plan: &Plan) -> usize {
    plan.phases
        .iter()
        .flat_map(|p| &p.entries)
        .filter(|e| matches!(e, Entry::RollbackPoint(_)))
        .count()
}

#[test]
fn mermaid_shows_every_row_and_point() {
    let (path, plan) = mailman();
    let out = graph(&path, "mermaid");
    assert!(out.starts_with("flowchart TD\n"), "{out}");
    let labels = expected_labels(&plan, |s| s.replace('"', "#quot;").replace('\n', "<br/>"));
    let points = rollback_points(&plan);
    assert!(points >= 2, "the seed plan has rollback points");
    for label in &labels {
        assert!(
            out.contains(&format!("\"{label}\"")),
            "no {label:?} in\n{out}"
        );
    }
    // Rollback points are hexagons; failures revert along dashed edges.
    assert_eq!(
        out.matches("{{\"rollback point<br/>").count(),
        points,
        "{out}"
    );
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
    let labels = expected_labels(&plan, |s| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    });
    for label in &labels {
        assert!(
            out.contains(&format!("label=\"{label}\"")),
            "no {label:?} in\n{out}"
        );
    }
    assert_eq!(
        out.matches("shape=hexagon").count(),
        rollback_points(&plan),
        "{out}"
    );
    assert_eq!(out.matches("shape=trapezium").count(), 1, "{out}");
    assert!(out.contains("style=dashed"), "{out}");
}

#[test]
fn steps_past_the_point_of_no_return_have_no_revert_edge() {
    let plan = r#"Plan(name: "g", service: "g", window: Window(announced: "1h"),
        hosts: { "a": Host(address: "a.example.org") },
        phases: [Phase(name: "w", at: "0", steps: [
            RollbackPoint("before-one"),
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
    // Nodes are numbered in plan order: r1 before-one, s2 one, p3 the point, s4 two.
    assert!(out.contains("s2 -. revert .-> r1"), "{out}");
    assert!(!out.contains("s4 -. revert"), "{out}");
    for edge in ["r1 --> s2", "s2 --> p3", "p3 --> s4"] {
        assert!(out.contains(edge), "no {edge} in\n{out}");
    }
}

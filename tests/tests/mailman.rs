//! The "done when" checks on `examples/mailman.ron`, the seed plan: break a
//! copy of it the way people do and `cutover check` says where and how.

use plan_core::{Action, Plan, Settings, Source, Span, Step};
use tests::{workspace_file, Cutover, JsonDiagnostic, Run};

fn mailman_text() -> String {
    let path = workspace_file("examples/mailman.ron");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(text: &str) -> Plan {
    let loaded = plan_core::load_str(Source::new("mailman.ron", text), &Settings::default());
    loaded.plan.expect("examples/mailman.ron is valid")
}

fn check_json(text: &str) -> Run {
    let run = Cutover::new()
        .arg("check")
        .plan_name("mailman.ron")
        .plan_text(text)
        .args(["--format", "json"])
        .run();
    run.assert_no_panic().assert_code(2);
    run
}

fn slice(text: &str, span: Span) -> &str {
    &text[span.offset..span.end()]
}

/// The diagnostic with `code` whose first label starts at `offset`.
#[track_caller]
fn diagnostic_at(run: &Run, code: &str, offset: usize) -> JsonDiagnostic {
    let all = run.diagnostics();
    all.iter()
        .find(|d| d.code == code && d.labels.first().is_some_and(|l| l.offset == offset))
        .cloned()
        .unwrap_or_else(|| panic!("no `{code}` labelled at byte {offset}:\n{all:#?}"))
}

#[test]
fn deleting_a_shell_revert_is_a_missing_revert_at_the_action() {
    let text = mailman_text();
    let plan = load(&text);
    let shells: Vec<&Step> = plan
        .steps()
        .filter(|s| s.pending() && matches!(s.action, Action::Shell { .. }))
        .filter(|s| s.spans.revert.is_some())
        .collect();
    assert!(
        shells.len() >= 3,
        "the seed plan has Shell steps with reverts"
    );
    for step in shells {
        let revert = step.spans.revert.expect("filtered on it");
        // Delete `, revert: <value>` (the comma before it too).
        let keyword = text[..revert.offset]
            .rfind("revert")
            .expect("`revert:` precedes its value");
        let comma = text[..keyword]
            .trim_end()
            .strip_suffix(',')
            .map(str::len)
            .expect("`revert` follows another field");
        let broken = format!("{}{}", &text[..comma], &text[revert.end()..]);
        let removed = revert.end() - comma;
        let action = step.spans.action;
        let expected = format!(
            "{}{}",
            &text[action.offset..comma],
            &text[revert.end()..action.end()]
        );

        let run = check_json(&broken);
        let d = diagnostic_at(&run, "cutover::missing-revert", action.offset);
        assert_eq!(
            d.labels[0].length,
            action.len - removed,
            "step `{}`: {d:?}",
            step.id
        );
        assert_eq!(d.labels[0].slice(&broken), expected, "step `{}`", step.id);
        assert!(expected.starts_with("Shell(") && expected.ends_with(')'));
        assert!(!expected.contains("revert"), "{expected}");
        assert_eq!(
            run.codes(),
            ["cutover::missing-revert"],
            "{}",
            run.describe()
        );
    }
}

#[test]
fn a_misspelt_host_is_unknown_with_a_suggestion() {
    let text = mailman_text();
    let plan = load(&text);
    let hosts: Vec<&str> = plan
        .hosts
        .iter()
        .filter(|h| !h.is_local())
        .map(|h| h.name.as_str())
        .collect();
    assert!(hosts.contains(&"sodium") && hosts.contains(&"fermium"));
    for host in hosts {
        let step = plan
            .steps()
            .find(|s| matches!(&s.action, Action::Shell { host: h, .. } if h == host))
            .unwrap_or_else(|| panic!("a Shell step runs on {host}"));
        let quoted = format!("\"{host}\"");
        let at = step.spans.action.offset
            + slice(&text, step.spans.action)
                .find(&quoted)
                .expect("the action names its host");
        // Drop a letter from the middle: "sodium" -> "sodum".
        let mut typo = host.to_owned();
        typo.remove(host.len() / 2);
        let broken = format!("{}\"{typo}\"{}", &text[..at], &text[at + quoted.len()..]);

        let run = check_json(&broken);
        let d = diagnostic_at(&run, "cutover::unknown-host", at);
        assert_eq!(d.labels[0].slice(&broken), format!("\"{typo}\""));
        assert!(d.message.contains(&typo), "{d:?}");
        let help = d.help.as_deref().unwrap_or_default();
        assert!(
            help.contains(&format!("did you mean `{host}`")),
            "no suggestion: {d:?}"
        );

        // People read the text form: it shows the same.
        let text_run = Cutover::new()
            .arg("check")
            .plan_name("mailman.ron")
            .plan_text(&broken)
            .run();
        text_run.assert_code(2);
        assert!(
            text_run
                .stderr
                .contains(&format!("help: did you mean `{host}`?")),
            "{}",
            text_run.describe()
        );
    }
}

#[test]
fn a_duplicated_id_labels_both_places() {
    let text = mailman_text();
    let plan = load(&text);
    let steps: Vec<&Step> = plan.steps().collect();
    let first = steps[0];
    // A step nothing runs `after`, so the copy breaks one rule only.
    let later = steps
        .iter()
        .rev()
        .find(|s| s.pending() && !steps.iter().any(|o| o.after.contains(&s.id)))
        .expect("some step is no one's dependency");
    let id = slice(&text, first.spans.id);
    assert_eq!(id, format!("\"{}\"", first.id));
    let at = later.spans.id.offset;
    let broken = format!("{}{id}{}", &text[..at], &text[later.spans.id.end()..]);

    let run = check_json(&broken);
    let d = diagnostic_at(&run, "cutover::duplicate-id", at);
    assert_eq!(d.labels.len(), 2, "{d:?}");
    assert_eq!(d.labels[0].slice(&broken), id);
    assert_eq!(d.labels[1].slice(&broken), id);
    assert_eq!(d.labels[1].offset, first.spans.id.offset);
    assert!(d.message.contains(&first.id), "{d:?}");
    assert_eq!(run.codes(), ["cutover::duplicate-id"], "{}", run.describe());
}

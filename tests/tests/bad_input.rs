//! Files that are not plans: `cutover` says what is wrong and where, on one
//! screen, quickly, and never panics.

use std::time::Duration;

use tests::{workspace_file, Cutover, Run};

/// A report longer than this does not fit on one screen.
const MAX_STDERR_LINES: usize = 40;

/// Generous for a loaded CI machine; the real figure is milliseconds.
const MAX_WALL_TIME: Duration = Duration::from_secs(5);

fn mailman() -> String {
    std::fs::read_to_string(workspace_file("examples/mailman.ron"))
        .expect("examples/mailman.ron is readable")
}

/// What every bad input must get: the exit code, a short report naming the
/// file, no panic, an answer within [`MAX_WALL_TIME`].
#[track_caller]
fn assert_reported(run: &Run, exit: i32, file: &str) {
    eprintln!("{:>10.1?}  {}", run.elapsed, run.command);
    run.assert_no_panic().assert_code(exit);
    assert!(
        run.elapsed < MAX_WALL_TIME,
        "took {:?}\n{}",
        run.elapsed,
        run.describe()
    );
    let lines = run.stderr.lines().count();
    assert!(
        (1..=MAX_STDERR_LINES).contains(&lines),
        "stderr has {lines} lines\n{}",
        run.describe()
    );
    assert!(
        run.stderr.contains(file),
        "stderr does not name {file}\n{}",
        run.describe()
    );
}

/// Checks a bad plan both ways: `--format json` gives the rule and the
/// place, the text report names the file and that place.
#[track_caller]
fn assert_bad_plan(bytes: impl Into<Vec<u8>>, code: &str) -> (Option<u64>, Option<u64>) {
    let bytes = bytes.into();
    let json = Cutover::new()
        .arg("check")
        .plan_bytes(bytes.clone())
        .args(["--format", "json"])
        .run();
    json.assert_no_panic().assert_code(2);
    assert!(json.elapsed < MAX_WALL_TIME, "{}", json.describe());
    let diagnostics = json.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{}", json.describe());
    let d = &diagnostics[0];
    assert_eq!(d.code, code, "{}", json.describe());
    for label in &d.labels {
        assert!(
            label.offset + label.length <= bytes.len(),
            "label outside the file: {d:?}"
        );
    }

    let run = Cutover::new().arg("check").plan_bytes(bytes).run();
    assert_reported(&run, 2, "plan.ron");
    assert!(run.stderr.contains(code), "{}", run.describe());
    assert!(
        run.stderr.contains("plan.ron: invalid: 1 error"),
        "{}",
        run.describe()
    );
    if let (Some(line), Some(column)) = (d.line, d.column) {
        // Long or binary lines are shown as an excerpt, which says its line.
        let here = format!("[plan.ron:{line}:{column}]");
        let excerpt = format!("[plan.ron (excerpt of line {line} from column ");
        assert!(
            run.stderr.contains(&here) || run.stderr.contains(&excerpt),
            "stderr does not point at {line}:{column}\n{}",
            run.describe()
        );
    }
    (d.line, d.column)
}

#[test]
fn empty_file() {
    assert_eq!(assert_bad_plan("", "cutover::syntax"), (Some(1), Some(1)));
    assert_bad_plan("  \n\n\t\n", "cutover::syntax");
}

#[test]
fn binary_garbage() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert_eq!(
        assert_bad_plan(png, "cutover::unreadable"),
        (Some(1), Some(1))
    );
    // Control characters that happen to be UTF-8 are still not RON.
    let elf: Vec<u8> = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0"
        .iter()
        .copied()
        .cycle()
        .take(2000)
        .collect();
    assert_bad_plan(elf, "cutover::syntax");
}

#[test]
fn invalid_utf8() {
    let text = mailman();
    let at = text.find("install jessie").expect("row 2 is in the plan");
    let line = text[..at].matches('\n').count() as u64 + 1;
    let column = text[..at]
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count()) as u64
        + 1;
    let mut bytes = text.into_bytes();
    bytes.insert(at, 0xff);
    assert_eq!(
        assert_bad_plan(bytes, "cutover::unreadable"),
        (Some(line), Some(column))
    );
}

#[test]
fn truncated_file() {
    let text = mailman();
    for cut in [1, 100, text.len() / 2, text.len() - 3] {
        let cut = (0..=cut)
            .rev()
            .find(|c| text.is_char_boundary(*c))
            .unwrap_or(0);
        let (line, _) = assert_bad_plan(&text.as_bytes()[..cut], "cutover::syntax");
        let last_line = text[..cut].matches('\n').count() as u64 + 1;
        assert!(line.is_some_and(|l| l <= last_line), "cut at {cut}");
    }
}

#[test]
fn unbalanced_brackets() {
    let text = mailman();
    for (from, to) in [
        ("steps: [", "steps: [["),
        ("steps: [", "steps: "),
        ("Step(id:", "Step(id: (("),
        ("hosts: {", "hosts: {{"),
    ] {
        let broken = text.replacen(from, to, 1);
        assert_ne!(broken, text);
        assert_bad_plan(broken, "cutover::syntax");
    }
    assert_bad_plan(format!("{text})"), "cutover::syntax");
    assert_bad_plan(format!("{text}]]]"), "cutover::syntax");
}

#[test]
fn wrong_types() {
    let text = mailman();
    for (from, to, at) in [
        (
            r#"name: "lists.wikimedia.org: sodium -> fermium""#,
            "name: 5",
            "5",
        ),
        (r#"announced: "2h""#, "announced: 7200", "7200"),
        (r#"done: true"#, "done: 1", "1"),
        (r#"ticket: "T108065""#, "ticket: T108065", "T108065"),
    ] {
        let broken = text.replacen(from, to, 1);
        let offset = text.find(from).expect("the fixture has it") + to.find(at).unwrap_or(0);
        let line = broken[..offset].matches('\n').count() as u64 + 1;
        let (got, _) = assert_bad_plan(broken, "cutover::syntax");
        assert_eq!(got, Some(line), "{to}");
    }
}

#[test]
fn unknown_fields() {
    let text = mailman();
    for (from, to, field) in [
        ("ticket: \"T108065\"", "tiket: \"T108065\"", "tiket"),
        ("    service: ", "    servce: ", "servce"),
        (
            "window: Window(announced:",
            "window: Window(length:",
            "length",
        ),
    ] {
        let broken = text.replacen(from, to, 1);
        assert_ne!(broken, text);
        let run = tests::check_json(&broken);
        run.assert_code(2);
        let d = run.diagnostic("cutover::syntax");
        assert!(d.message.contains(field), "{d:?}");
        assert_eq!(d.labels[0].slice(&broken), field, "{d:?}");
        assert_bad_plan(broken, "cutover::syntax");
    }
}

#[test]
fn a_hundred_thousand_open_brackets() {
    let deep = "[".repeat(100_000);
    assert_bad_plan(deep.clone(), "cutover::syntax");
    assert_bad_plan(format!("Plan(name: {deep}"), "cutover::syntax");
    assert_bad_plan(
        format!("Plan(name: {}", "(".repeat(100_000)),
        "cutover::syntax",
    );
    // Deep inside a step, where values are parsed a second time for their spans.
    let text = mailman();
    for (field, open) in [
        ("ticket: \"T108065\"", "["),
        ("action: Manual(prompt: \"Request", "Wait("),
        ("    vars: {", "{"),
    ] {
        let (name, value) = field.split_once(": ").expect("a field");
        let broken = text.replacen(
            field,
            &format!("{name}: {}{value}", open.repeat(100_000)),
            1,
        );
        assert_ne!(broken, text);
        let (line, _) = assert_bad_plan(broken, "cutover::syntax");
        let field_line = text[..text.find(field).expect("the plan has it")]
            .matches('\n')
            .count() as u64
            + 1;
        assert_eq!(line, Some(field_line), "{field}");
    }
}

#[test]
fn a_fifty_megabyte_file() {
    let mut big = mailman().into_bytes();
    big.resize(50 * 1024 * 1024, b' ');
    let run = Cutover::new().arg("check").plan_bytes(big.clone()).run();
    assert_reported(&run, 2, "plan.ron");
    assert!(
        run.stderr.contains("cutover::unreadable"),
        "{}",
        run.describe()
    );
    assert!(run.stderr.contains("50.0 MiB"), "{}", run.describe());

    let json = Cutover::new()
        .arg("check")
        .plan_bytes(big)
        .args(["--format", "json"])
        .run();
    json.assert_code(2);
    assert_eq!(json.codes(), ["cutover::unreadable"]);
}

#[test]
fn a_directory() {
    let run = Cutover::new().args(["check", "."]).run();
    assert_reported(&run, 1, "`.`");
    assert!(run.stderr.contains("directory"), "{}", run.describe());
    let examples = workspace_file("examples");
    let run = Cutover::new().arg("status").arg(&examples).run();
    assert_reported(&run, 1, &examples.display().to_string());
}

#[test]
fn a_missing_path() {
    for verb in ["check", "status", "graph"] {
        let run = Cutover::new().args([verb, "no-such-plan.ron"]).run();
        assert_reported(&run, 1, "no-such-plan.ron");
        assert!(run.stderr.contains("no such file"), "{}", run.describe());
    }
}

#[test]
fn every_verb_refuses_bad_input_the_same_way() {
    for verb in ["status", "graph"] {
        for bytes in [
            Vec::new(),
            b"\xff\xfe".to_vec(),
            "[".repeat(100_000).into_bytes(),
        ] {
            let run = Cutover::new().arg(verb).plan_bytes(bytes).run();
            assert_reported(&run, 2, "plan.ron");
            assert!(run.stdout.is_empty(), "{}", run.describe());
        }
    }
}

/// Regression: an environment variable whose value is not UTF-8 (any
/// variable, not only ours) made every verb panic while reading
/// `CUTOVER_VAR_*`. Such variables are not ours, and are skipped.
#[test]
fn regression_a_non_utf8_environment_variable_is_skipped_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let bytes = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    for name in ["CUTOVER_VAR_anything", "SOME_OTHER_VARIABLE"] {
        let run = Cutover::new()
            .env(name, bytes)
            .arg("check")
            .arg(tests::workspace_file("examples/minimal.ron"))
            .run();
        run.assert_no_panic().assert_code(0);
    }
}

/// Issue 11, item 10: `check` accepted values that fail only later: a NUL
/// byte in a command (mid-run), DNS names and host addresses that are not
/// (at preflight, after earlier phases ran), absurd durations and anchors,
/// and `retries: 4294967295` (minutes of exploration). Each is refused by
/// `check`, at its place in the file.
#[test]
fn regression_values_that_would_fail_mid_run_are_refused_by_check() {
    let plan = |hosts: &str, dns: &str, at: &str, step: &str| {
        format!(
            r#"Plan(name: "bad values", service: "demo", window: Window(announced: "10m"),
    hosts: {{ {hosts} }},
    {dns}
    phases: [Phase(name: "window", at: "{at}", steps: [ {step} ])])"#
        )
    };
    let shell = |fields: &str| {
        format!(
            r#"Step(id: "s", action: Shell(on: "local", run: "touch /tmp/x", revert: Run("rm -f /tmp/x")), check: Run("test -f /tmp/x"){fields})"#
        )
    };
    let ok_step = shell("");
    let dns = |record: &str| {
        format!(
            r#"dns: Rfc2136(server: "127.0.0.1:53", zone: "lab.test.", key: TsigEnv("K"),
        records: {{ "{record}": Record(ttl: "5m", addresses: ["127.0.0.1"]) }}),"#
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a NUL byte in a command",
            plan(
                "",
                "",
                "0",
                &shell("").replace("touch /tmp/x", r"touch /tmp/\u{0}x"),
            ),
            r#""touch /tmp/\u{0}x""#,
        ),
        (
            "a record name with an empty label",
            plan("", &dns("www..lab.test."), "0", &ok_step),
            r#""www..lab.test.""#,
        ),
        (
            "a record name with a space",
            plan("", &dns("www lab.lab.test."), "0", &ok_step),
            r#""www lab.lab.test.""#,
        ),
        (
            "a host address with a space",
            plan(
                r#""h": Host(address: "db one.example.org")"#,
                "",
                "0",
                &ok_step,
            ),
            r#""db one.example.org""#,
        ),
        (
            "a host address with a shell metacharacter",
            plan(r#""h": Host(address: "db;reboot")"#, "", "0", &ok_step),
            r#""db;reboot""#,
        ),
        (
            "a duration of ten thousand years",
            plan("", "", "0", &shell(r#", duration: Fixed("10000y")"#)),
            r#""10000y""#,
        ),
        (
            "a deadline of a century",
            plan("", "", "0", &shell(r#", deadline: "100y""#)),
            r#""100y""#,
        ),
        (
            "an anchor two years before the window",
            plan("", "", "-730d", &ok_step),
            r#""-730d""#,
        ),
        (
            "four billion retries",
            plan("", "", "0", &shell(", retries: 4294967295")),
            "4294967295",
        ),
    ];
    for (what, text, place) in cases {
        let json = tests::check_json(&text);
        json.assert_no_panic();
        assert_eq!(json.code, Some(2), "{what}: accepted\n{}", json.describe());
        let diagnostic = json.diagnostic("cutover::invalid-value");
        let label = diagnostic
            .labels
            .first()
            .unwrap_or_else(|| panic!("{what}: no place\n{}", json.describe()));
        assert_eq!(label.slice(&text), place, "{what}\n{}", json.describe());
    }
}

/// Issue 12, item 9: messages spoke of internal types (`RawServiceState`)
/// and, at a field that takes one of a few forms, said "Expected
/// identifier". They now name the field, the forms it takes, and what was
/// found.
#[test]
fn syntax_errors_at_typed_fields_name_the_forms_allowed() {
    let plan = |step: &str| {
        format!(
            r#"Plan(name: "d", service: "d", window: Window(announced: "10m"),
  hosts: {{ "a": Host(address: "a") }},
  phases: [Phase(name: "w", at: "0", steps: [ {step} ])])"#
        )
    };
    for (step, expected) in [
        (
            r#"Step(id: "s", action: Service(on: "a", unit: "u", state: Runing))"#,
            "`state` takes one of: Running, Stopped, not `Runing`",
        ),
        (
            r#"Step(id: "t", action: Shell(on: "a", run: "true", revert: Run("true")), check: "test -f x")"#,
            "`check` takes one of: Run(\"command\"), RunOn(host, run)",
        ),
        (
            r#"Step(id: "t", action: Shell(on: "a", run: "true", revert: "true"))"#,
            "`revert` takes one of: Run(\"command\"), Manual(\"what to do\")",
        ),
    ] {
        let run = tests::check_json(&plan(step));
        run.assert_no_panic().assert_code(2);
        let d = run.diagnostic("cutover::syntax");
        assert!(d.message.contains(expected), "{}", run.describe());
        assert!(!d.message.contains("Raw"), "{}", run.describe());
    }
}

/// Issue 12, item 9: an endless input (a device, a pipe) was reported as
/// "8.0 MiB; limited to 8 MiB"; and a plan value holding a bidirectional
/// override was quoted raw in messages, reordering what the operator reads.
#[test]
fn endless_inputs_say_what_they_are_and_hidden_characters_are_shown_escaped() {
    let run = Cutover::new().arg("check").arg("/dev/zero").run();
    assert_reported(&run, 2, "/dev/zero");
    assert!(
        run.stderr.contains("not a regular file"),
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains("8.0 MiB"), "{}", run.describe());

    let text = "Plan(name: \"d\", service: \"d\", window: Window(announced: \"10m\"),\n  hosts: { \"a\": Host(address: \"db\u{202e}evil\") },\n  phases: [Phase(name: \"w\", at: \"0\", steps: [ Step(id: \"s\", action: Shell(on: \"a\", run: \"true\", revert: Nothing(\"x\"))) ])])";
    let json = tests::check_json(text);
    json.assert_code(2);
    let d = json.diagnostic("cutover::invalid-value");
    assert!(d.message.contains("db\\u{202e}evil"), "{}", json.describe());
    assert!(!d.message.contains('\u{202e}'), "{}", json.describe());
}

/// Issue 12, item 9: one diagnostic labelling two distant places shows each
/// with a line of context, and not the lines between.
#[test]
fn two_distant_places_of_one_diagnostic_are_shown_apart() {
    let mut text = String::from(
        "Plan(name: \"d\", service: \"d\", window: Window(announced: \"10m\"),\n  phases: [Phase(name: \"w\", at: \"0\", steps: [\n",
    );
    for i in 0..40 {
        let id = if i == 1 || i == 38 {
            "dup".to_owned()
        } else {
            format!("s{i}")
        };
        text.push_str(&format!(
            "    Step(id: \"{id}\", action: Shell(on: \"local\", run: \"true\", revert: Nothing(\"x\"))),\n"
        ));
    }
    text.push_str("  ])])\n");
    let run = Cutover::new().arg("check").plan_text(&text).run();
    assert_reported(&run, 2, "plan.ron");
    for shown in ["first used here", "used again here", "\"s37\"", "\"s2\""] {
        assert!(
            run.stderr.contains(shown),
            "no {shown:?}\n{}",
            run.describe()
        );
    }
    assert!(
        !run.stderr.contains("\"s20\""),
        "the lines between are shown\n{}",
        run.describe()
    );
}

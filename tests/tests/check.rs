//! `cutover check`: one test per rule of the loader and the verifier. Each
//! breaks a valid plan in one place and asserts the exit code, the rule's
//! code in `--format json`, and that the labels point at the right bytes.

use tests::{edit, nth_offset, workspace_file, Cutover, JsonDiagnostic};

/// A valid plan that every test breaks in one place.
const BASE: &str = r#"Plan(
    name: "rules",
    service: "lists.example.org",
    window: Window(announced: "1h"),
    vars: { "dir": "/srv/data" },
    hosts: {
        "sodium": Host(address: "sodium.example.org"),
        "fermium": Host(address: "fermium.example.org"),
    },
    dns: Rfc2136(server: "ns0.example.org:53", zone: "example.org.", key: TsigFile("/etc/tsig.key"),
        records: { "lists.example.org.": Record(ttl: "1h") }),
    phases: [
        Phase(name: "day-before", at: "-1d", steps: [
            Step(id: "lower-ttl", action: DnsTtl(record: "lists.example.org.", ttl: "5m")),
        ]),
        Phase(name: "window", at: "0", steps: [
            Step(id: "hold", action: Shell(on: "sodium", run: "hold {{dir}}", revert: Run("release")),
                 check: Run("held"), downtime: Begins),
            Step(id: "copy", action: Rsync(from: "sodium", to: "fermium", path: "/srv/data/")),
            RollbackPoint("copied"),
            Step(id: "switch", action: DnsRecord(record: "lists.example.org.", addresses: ["10.0.0.2"]),
                 downtime: Ends),
            PointOfNoReturn(reason: "sodium is wiped"),
            Step(id: "wipe", action: Shell(on: "sodium", run: "wipe", revert: Irreversible("data is gone")),
                 check: Run("true")),
        ]),
    ],
)
"#;

/// Runs `cutover check --format json` on `plan`, asserts the exit code and
/// the verdict, and returns the first diagnostic with `code`.
#[track_caller]
fn check(plan: &str, code: &str, exit: i32) -> JsonDiagnostic {
    check_with(plan, &[], code, exit)
}

#[track_caller]
fn check_with(plan: &str, extra: &[&str], code: &str, exit: i32) -> JsonDiagnostic {
    let run = Cutover::new()
        .arg("check")
        .plan_text(plan)
        .args(["--format", "json"])
        .args(extra)
        .run();
    run.assert_no_panic().assert_code(exit);
    let json = run.json();
    assert_eq!(json["valid"], exit == 0, "{}", run.describe());
    let diagnostic = run.diagnostic(code);
    let warning = matches!(
        code,
        "cutover::missing-check" | "cutover::long-ttl-switch" | "cutover::nothing-to-run"
    );
    let severity = if warning { "warning" } else { "error" };
    assert_eq!(diagnostic.severity, severity, "{diagnostic:?}");
    assert!(!diagnostic.message.is_empty());
    assert!(
        diagnostic.help.as_deref().is_some_and(|h| !h.is_empty()),
        "every rule says how to fix it: {diagnostic:?}"
    );
    // The reported line and column are those of the first label.
    if let Some(first) = diagnostic.labels.first() {
        let before = &plan[..first.offset];
        let line = before.matches('\n').count() as u64 + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
        assert_eq!(diagnostic.file.as_deref(), Some("plan.ron"));
        assert_eq!(
            (diagnostic.line, diagnostic.column),
            (Some(line), Some(column))
        );
    }
    diagnostic
}

/// Asserts that label `index` covers exactly `expected`, at its `nth`
/// occurrence in the plan (0-based), and says something.
#[track_caller]
fn assert_label(plan: &str, d: &JsonDiagnostic, index: usize, expected: &str, nth: usize) {
    let label = d
        .labels
        .get(index)
        .unwrap_or_else(|| panic!("no label {index}: {d:?}"));
    assert_eq!(label.slice(plan), expected, "label {index} of {d:?}");
    assert_eq!(
        label.offset,
        nth_offset(plan, expected, nth),
        "label {index} is at another `{expected}`: {d:?}"
    );
}

#[test]
fn the_base_plan_is_valid_and_clean() {
    let run = Cutover::new()
        .arg("check")
        .plan_text(BASE)
        .args(["--format", "json"])
        .run();
    run.assert_no_panic().assert_code(0);
    let json = run.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["steps"], 5);
    assert!(run.diagnostics().is_empty(), "{}", run.describe());

    let text = Cutover::new().arg("check").plan_text(BASE).run();
    text.assert_code(0);
    assert_eq!(
        text.stdout.trim(),
        "plan.ron: valid: 5 steps in 2 phases (5 to run), 0 warnings"
    );
}

#[test]
fn syntax() {
    let plan = edit(BASE, r#"name: "rules""#, "name: 5");
    let d = check(&plan, "cutover::syntax", 2);
    assert_label(&plan, &d, 0, "5", 0);

    let plan = edit(BASE, "check: Run(\"held\")", "chek: Run(\"held\")");
    let d = check(&plan, "cutover::syntax", 2);
    assert!(d.message.contains("chek"), "{d:?}");
    assert_label(&plan, &d, 0, "chek", 0);
}

#[test]
fn invalid_value() {
    let plan = edit(BASE, r#"announced: "1h""#, r#"announced: "soon""#);
    let d = check(&plan, "cutover::invalid-value", 2);
    assert_label(&plan, &d, 0, r#""soon""#, 0);

    let plan = edit(BASE, r#"["10.0.0.2"]"#, r#"["10.0.0.256"]"#);
    let d = check(&plan, "cutover::invalid-value", 2);
    assert_label(&plan, &d, 0, r#""10.0.0.256""#, 0);
}

/// `BASE` with host sodium's `port` (and `vars`) as given.
fn with_port(port: &str, vars: &str) -> String {
    edit(
        BASE,
        r#""sodium": Host(address: "sodium.example.org")"#,
        &format!(
            r#""sodium": Host(address: "sodium.example.org", port: {port}, vars: {{ {vars} }})"#
        ),
    )
}

/// Asserts that `cutover check` finds `plan` valid.
#[track_caller]
fn assert_valid(plan: &str) {
    Cutover::new()
        .arg("check")
        .plan_text(plan)
        .run()
        .assert_no_panic()
        .assert_code(0);
}

#[test]
fn ports_are_numbers_from_1_to_65535_written_or_from_a_variable() {
    for port in ["22", "65535", r#""{{ssh_port}}""#, r#"" 2222 ""#] {
        assert_valid(&with_port(port, r#""ssh_port": "2222""#));
    }
    for port in ["0", "65536", "-1", r#""ssh""#] {
        let plan = with_port(port, "");
        let d = check(&plan, "cutover::invalid-value", 2);
        assert_label(&plan, &d, 0, port, 0);
        assert!(d.message.contains("is not a port"), "{d:?}");
    }
    // `--set` reaches it, and a value that is no port is reported at the field.
    let plan = with_port(r#""{{ssh_port}}""#, r#""ssh_port": "22""#);
    let d = check_with(
        &plan,
        &["--set", "sodium.ssh_port=99999"],
        "cutover::invalid-value",
        2,
    );
    assert_label(&plan, &d, 0, r#""{{ssh_port}}""#, 0);
    assert!(d.message.contains("`99999`"), "{d:?}");
    // An unknown variable is one problem, not two.
    let run = Cutover::new()
        .arg("check")
        .plan_text(&with_port(r#""{{sshport}}""#, ""))
        .args(["--format", "json"])
        .run();
    run.assert_code(2);
    assert_eq!(run.json()["errors"], 1, "{}", run.describe());
    run.diagnostic("cutover::unknown-variable");
}

#[test]
fn four_braces_are_a_literal_pair_of_braces() {
    let with_check = |command: &str| {
        edit(
            BASE,
            r#"check: Run("held")"#,
            &format!("check: Run({command:?})"),
        )
    };
    assert_valid(&with_check("docker inspect -f '{{{{.State.Running}}' held"));
    // Without the escape, the Go template is taken for a variable.
    let plan = with_check("docker inspect -f '{{.State.Running}}' held");
    let d = check(&plan, "cutover::invalid-value", 2);
    assert!(d.message.contains("written `{{{{`"), "{d:?}");
}

#[test]
fn duplicate_id() {
    let plan = edit(BASE, r#"id: "copy""#, r#"id: "hold""#);
    let d = check(&plan, "cutover::duplicate-id", 2);
    assert_label(&plan, &d, 0, r#""hold""#, 1);
    assert_label(&plan, &d, 1, r#""hold""#, 0);
}

#[test]
fn unknown_host() {
    let plan = edit(
        BASE,
        r#"on: "sodium", run: "hold"#,
        r#"on: "sodum", run: "hold"#,
    );
    let d = check(&plan, "cutover::unknown-host", 2);
    assert_label(&plan, &d, 0, r#""sodum""#, 0);
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `sodium`")),
        "{d:?}"
    );
}

#[test]
fn unknown_record() {
    let plan = edit(
        BASE,
        r#"DnsTtl(record: "lists.example.org.""#,
        r#"DnsTtl(record: "list.example.org.""#,
    );
    let d = check(&plan, "cutover::unknown-record", 2);
    assert_label(&plan, &d, 0, r#""list.example.org.""#, 0);
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `lists.example.org.`")),
        "{d:?}"
    );
}

#[test]
fn unknown_step() {
    let plan = edit(
        BASE,
        r#"path: "/srv/data/")"#,
        r#"path: "/srv/data/"), after: ["hld"]"#,
    );
    let d = check(&plan, "cutover::unknown-step", 2);
    assert_label(&plan, &d, 0, r#""hld""#, 0);
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `hold`")),
        "{d:?}"
    );
}

#[test]
fn unknown_variable() {
    let plan = edit(BASE, "hold {{dir}}", "hold {{ dirr }}");
    let d = check(&plan, "cutover::unknown-variable", 2);
    assert_label(&plan, &d, 0, "{{ dirr }}", 0);
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `{{dir}}`")),
        "{d:?}"
    );
}

#[test]
fn unknown_setting() {
    // It comes from the command line, so it has no place in the file.
    let d = check_with(BASE, &["--set", "dri=/tmp"], "cutover::unknown-setting", 2);
    assert!(d.labels.is_empty(), "{d:?}");
    assert!(d.message.contains("dri"), "{d:?}");
    assert!(
        d.help.as_deref().is_some_and(|h| h.contains("dir")),
        "{d:?}"
    );
    // A known one is fine, and reaches the commands.
    let run = Cutover::new()
        .args(["check", "--set", "dir=/elsewhere"])
        .plan_text(BASE)
        .run();
    run.assert_code(0);
}

#[test]
fn no_dns() {
    let start = BASE
        .find("    dns: Rfc2136")
        .expect("the base has a dns section");
    let end = BASE[start..].find("}),\n").expect("it ends") + start + "}),\n".len();
    let plan = format!("{}{}", &BASE[..start], &BASE[end..]);
    let d = check(&plan, "cutover::no-dns", 2);
    assert_label(&plan, &d, 0, r#""lists.example.org.""#, 0);
}

#[test]
fn after_later_phase() {
    let plan = edit(BASE, r#"ttl: "5m")"#, r#"ttl: "5m"), after: ["hold"]"#);
    let d = check(&plan, "cutover::after-later-phase", 2);
    assert_label(&plan, &d, 0, r#""hold""#, 0);
    assert_label(&plan, &d, 1, r#""hold""#, 1);
}

#[test]
fn after_cycle() {
    let plan = edit(
        BASE,
        "downtime: Begins",
        r#"downtime: Begins, after: ["copy"]"#,
    );
    let plan = edit(
        &plan,
        r#"path: "/srv/data/")"#,
        r#"path: "/srv/data/"), after: ["hold"]"#,
    );
    let d = check(&plan, "cutover::after-cycle", 2);
    assert!(
        d.message.contains("hold") && d.message.contains("copy"),
        "{d:?}"
    );
    let mut labelled: Vec<&str> = d.labels.iter().map(|l| l.slice(&plan)).collect();
    labelled.sort_unstable();
    assert_eq!(labelled, [r#""copy""#, r#""hold""#], "{d:?}");
    // Both labels are the `after` entries, not the ids.
    for label in &d.labels {
        assert!(plan[..label.offset].ends_with("after: ["), "{d:?}");
    }
}

#[test]
fn missing_revert() {
    let plan = edit(BASE, r#", revert: Run("release")"#, "");
    let d = check(&plan, "cutover::missing-revert", 2);
    assert_label(
        &plan,
        &d,
        0,
        r#"Shell(on: "sodium", run: "hold {{dir}}")"#,
        0,
    );
}

#[test]
fn incompatible() {
    let plan = edit(
        BASE,
        "            RollbackPoint(\"copied\"),",
        "            Step(id: \"ask\", action: Manual(prompt: \"ask\", revert: Run(\"undo\"))),\n            RollbackPoint(\"copied\"),",
    );
    let d = check(&plan, "cutover::incompatible", 2);
    assert_label(&plan, &d, 0, r#"Run("undo")"#, 0);

    // A check that runs a command needs a host too.
    let plan = edit(
        BASE,
        "downtime: Ends",
        r#"downtime: Ends, check: Run("dig")"#,
    );
    let d = check(&plan, "cutover::incompatible", 2);
    assert_label(&plan, &d, 0, r#"Run("dig")"#, 0);
}

#[test]
fn irreversible_before_point_of_no_return() {
    let plan = edit(
        BASE,
        r#"revert: Run("release")"#,
        r#"revert: Irreversible("cannot")"#,
    );
    let d = check(&plan, "cutover::irreversible-before-point-of-no-return", 2);
    assert_label(&plan, &d, 0, r#"Irreversible("cannot")"#, 0);
    assert_label(&plan, &d, 1, r#""sodium is wiped""#, 0);
}

#[test]
fn rollback_point_after_point_of_no_return() {
    let plan = edit(
        BASE,
        "                 check: Run(\"true\")),\n",
        "                 check: Run(\"true\")),\n            RollbackPoint(\"too-late\"),\n",
    );
    let d = check(&plan, "cutover::rollback-point-after-point-of-no-return", 2);
    assert_label(&plan, &d, 0, r#""too-late""#, 0);
    assert_label(&plan, &d, 1, r#""sodium is wiped""#, 0);
}

#[test]
fn second_point_of_no_return() {
    let plan = edit(
        BASE,
        "                 check: Run(\"true\")),\n",
        "                 check: Run(\"true\")),\n            PointOfNoReturn(reason: \"again\"),\n",
    );
    let d = check(&plan, "cutover::second-point-of-no-return", 2);
    assert_label(&plan, &d, 0, r#""again""#, 0);
    assert_label(&plan, &d, 1, r#""sodium is wiped""#, 0);
}

#[test]
fn downtime_never_ends() {
    let plan = edit(BASE, ",\n                 downtime: Ends", "");
    let d = check(&plan, "cutover::downtime-never-ends", 2);
    assert_label(&plan, &d, 0, "Begins", 0);
}

#[test]
fn downtime_order() {
    let plan = edit(BASE, "downtime: Begins", "downtime: Ends");
    let d = check(&plan, "cutover::downtime-order", 2);
    assert!(d.message.contains("`hold`"), "{d:?}");
    assert_label(&plan, &d, 0, "Ends", 0);

    let plan = edit(BASE, "downtime: Ends", "downtime: Begins");
    let d = check(&plan, "cutover::downtime-order", 2);
    assert_label(&plan, &d, 0, "Begins", 1);
    assert_label(&plan, &d, 1, "Begins", 0);
}

#[test]
fn ttl_not_expired() {
    // The TTL is lowered from 1h only five minutes before the switch.
    let plan = edit(BASE, r#"at: "-1d""#, r#"at: "-5m""#);
    let d = check(&plan, "cutover::ttl-not-expired", 2);
    assert_label(
        &plan,
        &d,
        0,
        r#"DnsRecord(record: "lists.example.org.", addresses: ["10.0.0.2"])"#,
        0,
    );
    assert_label(
        &plan,
        &d,
        1,
        r#"DnsTtl(record: "lists.example.org.", ttl: "5m")"#,
        0,
    );
    assert!(d.labels[1].text.contains("1h"), "{d:?}");
}

#[test]
fn deadline_below_minimum() {
    let plan = edit(
        BASE,
        r#"path: "/srv/data/")"#,
        r#"path: "/srv/data/"), duration: Fixed("10m"), deadline: "5m""#,
    );
    let d = check(&plan, "cutover::deadline-below-minimum", 2);
    assert_label(&plan, &d, 0, r#""5m""#, 1);
    assert_label(&plan, &d, 1, r#"Fixed("10m")"#, 0);
}

#[test]
fn phase_order() {
    let plan = edit(BASE, r#"at: "-1d""#, r#"at: "+1h""#);
    let d = check(&plan, "cutover::phase-order", 2);
    assert_label(&plan, &d, 0, r#""0""#, 0);
    assert_label(&plan, &d, 1, r#""+1h""#, 0);

    // An unscheduled phase after a scheduled one.
    let plan = edit(BASE, r#"name: "window", at: "0","#, r#"name: "window","#);
    let d = check(&plan, "cutover::phase-order", 2);
    assert_label(&plan, &d, 0, r#""window""#, 0);
    assert_label(&plan, &d, 1, r#""-1d""#, 0);
}

#[test]
fn verify_without_check() {
    let plan = edit(
        BASE,
        "            RollbackPoint(\"copied\"),",
        "            Step(id: \"look\", action: Verify),\n            RollbackPoint(\"copied\"),",
    );
    let d = check(&plan, "cutover::verify-without-check", 2);
    assert_label(&plan, &d, 0, "Verify", 0);
}

#[test]
fn missing_check_is_a_warning() {
    let plan = edit(BASE, "\n                 check: Run(\"held\"),", "");
    let d = check(&plan, "cutover::missing-check", 0);
    assert_label(
        &plan,
        &d,
        0,
        r#"Shell(on: "sodium", run: "hold {{dir}}", revert: Run("release"))"#,
        0,
    );

    let run = Cutover::new().arg("check").plan_text(&plan).run();
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("valid: 5 steps in 2 phases (5 to run), 1 warning"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("cutover::missing-check"),
        "{}",
        run.describe()
    );
}

#[test]
fn long_ttl_switch_is_a_warning() {
    // Without the TTL lowered the day before, users keep the old address for an hour.
    let plan = edit(
        BASE,
        "            Step(id: \"lower-ttl\", action: DnsTtl(record: \"lists.example.org.\", ttl: \"5m\")),\n",
        "",
    );
    let d = check(&plan, "cutover::long-ttl-switch", 0);
    assert!(d.message.contains("1h"), "{d:?}");
    assert_label(
        &plan,
        &d,
        0,
        r#"DnsRecord(record: "lists.example.org.", addresses: ["10.0.0.2"])"#,
        0,
    );
}

#[test]
fn nothing_to_run_is_a_warning() {
    let plan = r#"Plan(name: "done", service: "done", window: Window(announced: "1h"),
        phases: [Phase(name: "prep", steps: [
            Step(id: "a", done: true, action: Manual(prompt: "did it")),
            Step(id: "b", done: true, action: Wait("1m")),
        ])])"#;
    let d = check(plan, "cutover::nothing-to-run", 0);
    assert!(d.labels.is_empty(), "{d:?}");
}

#[test]
fn unreadable() {
    let mut bytes = BASE.as_bytes().to_vec();
    let at = nth_offset(BASE, "rules", 0);
    bytes[at] = 0xff;
    let run = Cutover::new()
        .arg("check")
        .plan_bytes(bytes)
        .args(["--format", "json"])
        .run();
    run.assert_no_panic().assert_code(2);
    let d = run.diagnostic("cutover::unreadable");
    assert_eq!(d.labels.len(), 1, "{d:?}");
    assert_eq!((d.labels[0].offset, d.labels[0].length), (at, 1), "{d:?}");
    assert_eq!((d.line, d.column), (Some(2), Some(12)), "{d:?}");
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let plan = edit(
        BASE,
        r#"on: "sodium", run: "hold"#,
        r#"on: "sodum", run: "hold"#,
    );
    let plan = edit(&plan, r#"announced: "1h""#, r#"announced: "soon""#);
    let plan = edit(&plan, r#"id: "copy""#, r#"id: "hold""#);
    let run = Cutover::new()
        .arg("check")
        .plan_text(&plan)
        .args(["--format", "json"])
        .run();
    run.assert_code(2);
    let codes = run.codes();
    // In file order.
    assert_eq!(
        codes,
        [
            "cutover::invalid-value",
            "cutover::unknown-host",
            "cutover::duplicate-id"
        ],
        "{}",
        run.describe()
    );
    assert_eq!(run.json()["errors"], 3);
}

#[test]
fn text_output_labels_the_place() {
    let plan = edit(
        BASE,
        r#"on: "sodium", run: "hold"#,
        r#"on: "sodum", run: "hold"#,
    );
    let run = Cutover::new().arg("check").plan_text(&plan).run();
    run.assert_no_panic().assert_code(2);
    assert!(run.stdout.is_empty(), "{}", run.describe());
    let line = plan[..nth_offset(&plan, "sodum", 0)].matches('\n').count() + 1;
    for expected in [
        "cutover::unknown-host".to_owned(),
        "host `sodum` is not declared".to_owned(),
        format!("[plan.ron:{line}:"),
        "unknown host".to_owned(),
        "help: did you mean `sodium`?".to_owned(),
        "plan.ron: invalid: 1 error, 0 warnings".to_owned(),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "no {expected:?} in\n{}",
            run.describe()
        );
    }
}

/// One output convention: `--format json` everywhere a verb prints JSON,
/// `--json` its alias, the two the same byte for byte.
#[test]
fn json_and_format_json_are_the_same_on_every_verb() {
    let plan = workspace_file("examples/minimal.ron");
    for verb in [&["check"][..], &["status"], &["simulate", "--runs", "500"]] {
        let with = |flag: &[&str]| {
            let run = Cutover::new().args(verb).arg(&plan).args(flag).run();
            run.assert_code(0);
            run.stdout
        };
        let json = with(&["--json"]);
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{verb:?}: {json}"
        );
        assert_eq!(json, with(&["--format", "json"]), "{verb:?}");
    }
    let both = Cutover::new()
        .args(["check", "--json", "--format", "text"])
        .arg(&plan)
        .run();
    both.assert_code(1);
}

/// A file the command must write cannot be: an I/O error naming the file
/// and what was being done, exit 1, nothing half written.
#[test]
fn an_output_file_that_cannot_be_written_is_an_io_error() {
    let run = Cutover::new()
        .args(["timeline", "--svg", "/nonexistent-dir/timeline.svg"])
        .arg(workspace_file("examples/mailman.ron"))
        .run();
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("cannot write /nonexistent-dir/timeline.svg: No such file"),
        "{}",
        run.describe()
    );
}

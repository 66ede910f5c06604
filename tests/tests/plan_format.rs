//! The plan format, for plans nobody here wrote (issue 12): what a real
//! PostgreSQL move needed to say without repeating itself.

use tests::Cutover;

/// A plan with `vars` (plan text inside `vars: { ... }`), `hosts` and one
/// step whose action is `action`.
fn plan(vars: &str, hosts: &str, action: &str) -> String {
    format!(
        r#"Plan(
    name: "format",
    service: "demo",
    window: Window(announced: "5m"),
    vars: {{ {vars} }},
    hosts: {{ {hosts} }},
    phases: [
        Phase(name: "window", at: "0", steps: [
            Step(id: "s", action: {action}, duration: Fixed("1s")),
        ]),
    ],
)"#
    )
}

/// Issue 12, item 1: `"pg_dir": "{{lab_dir}}/host1/pg"` was used
/// literally, so `lab_dir`'s override never reached it. Variables now
/// expand inside variable values, after `--set` and the environment.
#[test]
fn variables_expand_inside_variable_values_and_follow_overrides() {
    let text = plan(
        r#""lab_dir": "/tmp/lab", "pg_dir": "{{lab_dir}}/host1/pg", "data": "{{pg_dir}}/data""#,
        r#""db": Host(address: "127.0.0.2", vars: { "conf": "{{pg_dir}}/{{name}}.conf", "name": "main" })"#,
        r#"Shell(on: "db", run: "ls {{data}} {{conf}}", revert: Nothing("only lists"))"#,
    );
    let printed = Cutover::new()
        .arg("print")
        .plan_text(&text)
        .args(["--set", "lab_dir=/srv/other lab"])
        .run();
    printed.assert_code(0);
    assert!(
        printed
            .stdout
            .contains("ls '/srv/other lab/host1/pg/data' '/srv/other lab/host1/pg/main.conf'"),
        "{}",
        printed.describe()
    );
    // From the environment too.
    let printed = Cutover::new()
        .arg("print")
        .plan_text(&text)
        .env("CUTOVER_VAR_lab_dir", "/env")
        .run();
    printed.assert_code(0);
    assert!(
        printed
            .stdout
            .contains("ls /env/host1/pg/data /env/host1/pg/main.conf"),
        "{}",
        printed.describe()
    );
}

/// A cycle of variables is an error that names it, at each value.
#[test]
fn variables_referring_to_each_other_in_a_cycle_are_an_error_naming_the_cycle() {
    let text = plan(
        r#""a": "{{b}}/x", "b": "{{c}}", "c": "{{a}}", "ok": "fine""#,
        "",
        r#"Shell(on: "local", run: "echo {{a}}", revert: Nothing("only echoes"))"#,
    );
    let out = Cutover::new()
        .arg("check")
        .plan_text(&text)
        .args(["--format", "json"])
        .run();
    out.assert_no_panic().assert_code(2);
    let d = out.diagnostic("cutover::variable-cycle");
    assert!(
        d.message.contains("`a` -> `b` -> `c` -> `a`"),
        "{}",
        out.describe()
    );
    let places: Vec<&str> = d.labels.iter().map(|l| l.slice(&text)).collect();
    assert_eq!(places, [r#""{{b}}/x""#, r#""{{c}}""#, r#""{{a}}""#]);
}

/// A `{{name}}` in a value that names no variable never expands: a
/// warning at its place, and the value keeps it as written.
#[test]
fn a_placeholder_in_a_value_that_never_expands_is_a_warning() {
    let text = plan(
        r#""lab_dir": "/tmp/lab", "dir": "{{lab_dri}}/pg""#,
        "",
        r#"Shell(on: "local", run: "ls {{dir}}", revert: Nothing("only lists"))"#,
    );
    let out = Cutover::new()
        .arg("check")
        .plan_text(&text)
        .args(["--format", "json"])
        .run();
    out.assert_no_panic().assert_code(0);
    let d = out.diagnostic("cutover::never-expands");
    assert!(
        d.message.contains("`{{lab_dri}}` names no variable"),
        "{}",
        out.describe()
    );
    assert_eq!(d.labels[0].slice(&text), r#""{{lab_dri}}/pg""#);
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `{{lab_dir}}`?")),
        "{}",
        out.describe()
    );
}

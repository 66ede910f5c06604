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
    let out = tests::check_json(&text);
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
    let out = tests::check_json(&text);
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

/// Issue 12, item 2: `psql -h ... -p ... -U postgres -d app` was written out
/// 35 times. A host's and a step's `env` reach every command the step runs
/// (forward, check, revert), here and over SSH, with values quoted and
/// variables expanded; `--dry-run` and `print` show them, secrets redacted;
/// neither the journal nor the screen holds a secret's value.
#[test]
fn a_host_and_a_step_env_reach_every_command_and_secrets_stay_hidden() {
    let lab = tests::lab::Lab::builder()
        .hosts(1)
        .start()
        .expect("the lab starts");
    let host = lab.host("host1");
    let out_dir = host.dir.join("run");
    let text = format!(
        r#"Plan(
    name: "format: env",
    service: "demo",
    window: Window(announced: "5m"),
    vars: {{ "lab_dir": "/tmp/lab", "db": "app db" }},
    known_hosts: "{{{{lab_dir}}}}/known_hosts",
    hosts: {{
        "db1": Host(address: "{address}", port: {port}, user: "cutover-lab",
                    identity: "{{{{lab_dir}}}}/id_ed25519",
                    env: {{ "PGHOST": "{address}", "PGDATABASE": "{{{{db}}}}" }}),
    }},
    phases: [
        Phase(name: "window", at: "0", steps: [
            Step(id: "remote", action: Shell(on: "db1",
                    run: "printf '%s|%s|%s' \"$PGHOST\" \"$PGDATABASE\" \"$PGPASSWORD\" > {out}/remote",
                    revert: Run("rm -f {out}/remote")),
                 check: Run("test \"$PGDATABASE\" = 'app db' && test -s {out}/remote"),
                 env: {{ "PGDATABASE": "{{{{db}}}} (step)", "PGPASSWORD": "s3cret-value" }},
                 duration: Fixed("1s")),
        ]),
    ],
)"#,
        address = host.address,
        port = host.ssh_port,
        out = out_dir.display(),
    );
    let dir = tests::temp_dir("cutover-format-test-");
    let plan = dir.path().join("env.ron");
    std::fs::write(&plan, &text).expect("the plan is written");
    let set = format!("lab_dir={}", lab.dir().display());

    let dry = Cutover::new()
        .arg("run")
        .arg(&plan)
        .args(["--dry-run", "--set", &set])
        .run();
    dry.assert_code(0);
    assert!(
        dry.stdout.contains(&format!(
            "env: PGHOST={} PGDATABASE='app db (step)' PGPASSWORD=<redacted>",
            host.address
        )),
        "{}",
        dry.describe()
    );
    let printed = Cutover::new()
        .arg("print")
        .arg(&plan)
        .args(["--set", &set])
        .run();
    printed.assert_code(0);
    assert!(
        printed.stdout.contains(r#""PGPASSWORD": "<redacted>""#)
            && printed.stdout.contains(r#""PGDATABASE": "app db""#),
        "{}",
        printed.describe()
    );

    let journal = dir.path().join("env.journal");
    // The step's check runs with the step's env, which sets PGDATABASE
    // differently: it fails, and the run rolls back (its revert runs with
    // the env too).
    let out = Cutover::new()
        .arg("run")
        .arg(&plan)
        .args(["--yes", "--set", &set, "--journal"])
        .arg(&journal)
        .run();
    let _run_dir = tests::run_dir_in(&out.stderr);
    out.assert_code(3);
    let journal_text = std::fs::read_to_string(&journal).expect("the journal");
    for shown in [&out.stdout, &out.stderr, &journal_text] {
        assert!(!shown.contains("s3cret-value"), "a secret leaked:\n{shown}");
    }
    assert!(
        !out_dir.join("remote").exists(),
        "the revert did not run with its env\n{}",
        out.describe()
    );
    // Now with the check the step's env satisfies.
    let fixed = text.replace("= 'app db' &&", "= 'app db (step)' &&");
    std::fs::write(&plan, &fixed).expect("the plan is written");
    let out = Cutover::new()
        .arg("run")
        .arg(&plan)
        .args(["--yes", "--set", &set, "--journal"])
        .arg(&journal)
        .run();
    let _run_dir = tests::run_dir_in(&out.stderr);
    out.assert_code(0);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("remote")).expect("written remotely"),
        format!("{}|app db (step)|s3cret-value", host.address)
    );
}

/// Issue 12, item 3: every real cutover waits for something, and the plan
/// had hand-written `until` loops that repeated the condition in the check.
/// `WaitUntil` polls a command until it holds (or fails the step past
/// `within`), a check can poll with `Until`, and `retry_interval` spaces
/// retries out.
#[test]
fn wait_until_and_check_until_poll_and_retries_wait_their_interval() {
    let dir = tests::temp_dir("cutover-format-test-");
    let plan_text = |within: &str| {
        tests::local_demo_plan(
            "format: polling",
            &format!(
                r#"Step(id: "start-replica", title: "start something that gets ready in a second",
                 action: Shell(on: "local",
                               run: "nohup sh -c 'sleep 1; touch {{{{d}}}}/ready' >/dev/null 2>&1 &",
                               revert: Run("rm -f {{{{d}}}}/ready")),
                 check: Until(run: "test -f {{{{d}}}}/ready", every: "200ms", within: "10s"),
                 duration: Fixed("1s")),
            Step(id: "caught-up", title: "wait until it holds",
                 action: WaitUntil(on: "local", run: "test -f {{{{d}}}}/ready && test -f {{{{d}}}}/flaky.2", every: "200ms", within: "{within}")),
            Step(id: "flaky", title: "fails once, then succeeds",
                 action: Shell(on: "local",
                               run: "if test -f {{{{d}}}}/flaky.1; then touch {{{{d}}}}/flaky.2; else touch {{{{d}}}}/flaky.1; exit 1; fi",
                               revert: Run("rm -f {{{{d}}}}/flaky.1 {{{{d}}}}/flaky.2")),
                 check: Run("test -f {{{{d}}}}/flaky.2"), retries: 1, retry_interval: "2s",
                 duration: Fixed("1s"), after: ["start-replica"]),"#
            ),
        )
    };
    // `caught-up` waits for `flaky`'s second attempt, which runs beside it.
    let plan = dir.path().join("poll.ron");
    std::fs::write(&plan, plan_text("20s")).expect("the plan is written");
    let dry = Cutover::new().arg("run").arg(&plan).arg("--dry-run").run();
    dry.assert_code(0);
    assert!(
        dry.stdout.contains("wait until on local:")
            && dry.stdout.contains("(every 200ms, at most 20s)")
            && dry.stdout.contains("check on local: until"),
        "{}",
        dry.describe()
    );
    let journal = dir.path().join("poll.journal");
    let out = tests::run_plan(&plan, &journal, &["--yes"]);
    let _run_dir = tests::run_dir_in(&out.stderr);
    out.assert_code(0);
    let text = std::fs::read_to_string(&journal).expect("the journal");
    assert!(text.contains("held after"), "{text}");
    // The retry started at least its interval after the first attempt failed.
    let times: Vec<jiff::Timestamp> = text
        .lines()
        .filter(|l| {
            l.contains(r#""event":"step_failed","step":"flaky""#)
                || l.contains(r#""effect":"forward","step":"flaky","attempt":2"#)
        })
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["time"].as_str().and_then(|t| t.parse().ok()))
        .collect();
    assert_eq!(times.len(), 2, "{text}");
    // The pause is after the attempt is journaled: it shows in the gap
    // between the retry's start and its process.
    let process_times: Vec<jiff::Timestamp> = text
        .lines()
        .filter(|l| l.contains(r#""type":"process","step":"flaky""#))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["time"].as_str().and_then(|t| t.parse().ok()))
        .collect();
    let retry_began = process_times.last().expect("the retry's process");
    assert!(
        retry_began.duration_since(times[0]).as_secs_f64() >= 2.0,
        "the retry did not wait its interval\n{text}"
    );

    // A condition that does not hold in time fails the step, and the run
    // rolls back.
    std::fs::write(
        &plan,
        plan_text("1s").replace("flaky.2\", every", "never\", every"),
    )
    .expect("the plan is written");
    let out = tests::run_plan(
        &plan,
        &dir.path().join("late.journal"),
        &["--yes", "--force"],
    );
    let _run_dir = tests::run_dir_in(&out.stderr);
    out.assert_code(3);
    assert!(
        out.stderr.contains("it did not hold within 1s"),
        "{}",
        out.describe()
    );
}

/// Issue 12, item 4: reverting a DNS switch after clients wrote to the new
/// host drops those writes, and nothing said so. A step's `loses` is warned
/// about by `check` when a rollback can undo it, shown on the dry run's
/// rollback path, and told to users by `announce`.
#[test]
fn a_revert_that_loses_data_says_so_in_check_the_dry_run_and_the_announcement() {
    let text = tests::local_demo_plan(
        "format: a lossy revert",
        r#"Step(id: "switch", title: "send clients to the new host",
                 action: Shell(on: "local", run: "touch {{d}}/switched", revert: Run("rm -f {{d}}/switched")),
                 check: Run("test -f {{d}}/switched"), downtime: Begins,
                 loses: "writes made on the new host after the switch"),
            Step(id: "open", title: "open writes",
                 action: Shell(on: "local", run: "true", revert: Nothing("opens nothing")),
                 check: Run("true"), downtime: Ends),"#,
    );
    let check = tests::check_json(&text);
    check.assert_code(0);
    let d = check.diagnostic("cutover::lossy-revert");
    assert!(
        d.message
            .contains("a rollback to `before-demo` would undo `switch`, and that loses writes made on the new host after the switch"),
        "{}",
        check.describe()
    );
    assert_eq!(
        d.labels[0].slice(&text),
        r#""writes made on the new host after the switch""#
    );
    let dry = Cutover::new()
        .arg("run")
        .plan_text(&text)
        .arg("--dry-run")
        .run();
    dry.assert_code(0);
    assert!(
        dry.stdout.contains(
            "if `open` fails: undo switch (loses writes made on the new host after the switch)"
        ),
        "{}",
        dry.describe()
    );
    let announce = Cutover::new()
        .arg("announce")
        .plan_text(&text)
        .args(["--start", "2026-12-01T14:00:00Z", "--runs", "2000"])
        .run();
    announce.assert_code(0);
    let said = announce
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains(
            "Should the move be rolled back after the step \"send clients to the new host\", writes made on the new host after the switch would be lost."
        ),
        "{}",
        announce.describe()
    );
}

/// Issue 12, item 5: a downtime budget. Users down longer than
/// `downtime_budget` before the point of no return: the run rolls back on
/// its own. `check` warns when the budget is at or below the simulated P50.
#[test]
fn a_run_past_its_downtime_budget_rolls_back_and_check_warns_of_a_tight_budget() {
    let text = tests::local_demo_plan(
        "format: a downtime budget",
        r#"Step(id: "hold", title: "hold writes",
                 action: Shell(on: "local", run: "touch {{d}}/held", revert: Run("rm -f {{d}}/held")),
                 check: Run("test -f {{d}}/held"), downtime: Begins, duration: Fixed("1s")),
            Step(id: "copy", title: "a copy that runs long",
                 action: Shell(on: "local", run: "sleep 4; touch {{d}}/copied", revert: Run("rm -f {{d}}/copied")),
                 check: Run("test -f {{d}}/copied"), duration: Fixed("1m")),
            Step(id: "open", title: "open writes",
                 action: Shell(on: "local", run: "rm -f {{d}}/held", revert: Run("touch {{d}}/held")),
                 check: Run("test ! -f {{d}}/held"), downtime: Ends, duration: Fixed("1s")),"#,
    )
    .replace(
        r#"window: Window(announced: "5m")"#,
        r#"window: Window(announced: "5m", downtime_budget: "2s")"#,
    );
    let check = tests::check_json(&text);
    check.assert_code(0);
    let d = check.diagnostic("cutover::downtime-budget-short");
    assert!(
        d.message
            .contains("the downtime budget of 2s is at or below the simulated P50"),
        "{}",
        check.describe()
    );
    assert_eq!(d.labels[0].slice(&text), r#""2s""#);

    let dir = tests::temp_dir("cutover-format-test-");
    let plan = dir.path().join("budget.ron");
    std::fs::write(&plan, &text).expect("the plan is written");
    let out = tests::run_plan(&plan, &dir.path().join("budget.journal"), &["--yes"]);
    let _run_dir = tests::run_dir_in(&out.stderr);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("users have been down longer than the downtime budget (2s)"),
        "{}",
        out.describe()
    );
}

/// Issue 12, item 8: a 21 s outage was announced as "about 5 minutes", and
/// an operator's own `Manual` prompt appeared under "Afterwards". Lengths
/// are rounded to fit their size; only what users notice is listed.
#[test]
fn the_announcement_rounds_to_fit_the_outage_and_lists_only_what_users_notice() {
    let text = tests::local_demo_plan(
        "format: a short outage",
        r#"Step(id: "down", action: Wait("21s"), downtime: Begins),
            Step(id: "up", action: Wait("0"), downtime: Ends),
            Step(id: "tell", title: "send the operators' wrap-up",
                 action: Manual(prompt: "Write the wrap-up on the ops ticket.", revert: Nothing("a note")),
                 duration: Fixed("1m")),
            Step(id: "cleanup", action: Wait("1s"), notice: "Old links keep working for a week."),"#,
    );
    let out = Cutover::new()
        .arg("announce")
        .plan_text(&text)
        .args(["--start", "2026-12-01T14:00:00Z", "--runs", "1000"])
        .run();
    out.assert_code(0);
    let said = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "unavailable for about 20 seconds",
        "Please allow for up to 25 seconds, until 14:01 UTC",
        "Old links keep working for a week.",
    ] {
        assert!(
            said.contains(expected),
            "no {expected:?} in\n{}",
            out.stdout
        );
    }
    assert!(
        !said.contains("wrap-up") && !said.contains("about 5 minutes"),
        "{}",
        out.stdout
    );
}

/// Issue 12, item 6: a write outage is not "unavailable". The `outage` of
/// the `downtime: Begins` step says what users get, in the announcement and
/// in `simulate`'s report (each kind's time when there are several).
#[test]
fn a_partial_outage_is_announced_as_what_users_get() {
    let plan = tests::example("postgres.ron");
    let out = Cutover::new()
        .arg("announce")
        .arg(&plan)
        .args(["--start", "2026-12-01T14:00:00Z", "--runs", "2000"])
        .run();
    out.assert_code(0);
    let said = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("We expect app.example.org to be read-only for about"),
        "{}",
        out.stdout
    );
    let simulated = Cutover::new()
        .arg("simulate")
        .arg(&plan)
        .args(["--phase", "window", "--runs", "2000", "--json"])
        .run();
    simulated.assert_code(0);
    let kinds: Vec<String> = simulated.json()["outages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        kinds,
        ["unavailable", "read-only"],
        "{}",
        simulated.describe()
    );
}

/// Issue 12, item 9: after a rollback, `status --journal` said "reverted"
/// with a time for steps that have nothing to undo, as if a revert had run.
#[test]
fn status_says_a_rollback_passed_over_steps_with_nothing_to_undo() {
    let dir = tests::temp_dir("cutover-format-test-");
    let plan = dir.path().join("plan.ron");
    std::fs::write(
        &plan,
        r#"Plan(name: "st", service: "d", window: Window(announced: "10m"),
  phases: [Phase(name: "w", at: "0", steps: [
    Step(id: "look", action: Shell(on: "local", run: "true", revert: Nothing("looking changes nothing")), duration: Fixed("1s")),
    Step(id: "fail", action: Shell(on: "local", run: "exit 1", revert: Nothing("x")), duration: Fixed("1s")),
  ])])"#,
    )
    .expect("the plan is written");
    let journal = dir.path().join("plan.journal");
    let out = tests::run_plan(&plan, &journal, &["--yes"]);
    let _run_dir = tests::run_dir_in(&out.stderr);
    out.assert_code(3);
    let status = tests::status_of(&plan, &journal, &["--json"]);
    status.assert_code(0);
    assert_eq!(
        status.json()["steps"][0]["run"],
        "rolled back past (nothing to undo)",
        "{}",
        status.describe()
    );
}

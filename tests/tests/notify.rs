//! Hooks and webhooks (`notify`, `--notify`; issue 16, item 2): told of
//! every event of a real run, never holding it up, their failures journaled
//! and shown, and never shown a secret. Webhooks post to a real HTTP server
//! on loopback ([`tests::http::Recorder`]); hook commands are real scripts.

use std::fs;
use std::time::Duration;

use serde_json::Value;
use tests::http::Recorder;
use tests::{journal_entries, Cutover, Run};

/// The webhook's token and the plan's TSIG key: neither may reach a hook.
const TOKEN: &str = "tok-3f9a1c77e2";
const TSIG: &str = "hmac-sha256:lab-key:c2VjcmV0LXRzaWctdmFsdWUtOTk4Nw==";

/// A plan of local steps with `notify` hooks (`hooks`, plan text), a `dns`
/// section whose key comes from `$NOTIFY_TEST_TSIG` (no DNS step: it is
/// there for its secret), tickets on the steps, and `steps` after them.
fn plan(hooks: &str, steps: &str) -> String {
    format!(
        r#"Plan(
    name: "notify test",
    service: "demo",
    window: Window(announced: "5m"),
    dns: Rfc2136(server: "127.0.0.1:1", zone: "lab.test.", key: TsigEnv("NOTIFY_TEST_TSIG")),
    phases: [
        Phase(name: "window", at: "0", steps: [
            RollbackPoint("before"),
            Step(id: "first", title: "the first step", ticket: "T110136",
                 action: Shell(on: "local", run: "sleep 0.2", revert: Run("true")), duration: Fixed("1s")),
            {steps}
        ]),
    ],
    notify: [
        {hooks}
    ],
)"#
    )
}

/// A hook command that appends its `CUTOVER_*` variables and whether it saw
/// the secrets to `log`, one JSON object per event.
fn recording_hook(log: &str) -> String {
    format!(
        r#"Command(run: "python3 -c 'import json, os; e = {{k: v for k, v in os.environ.items() if k.startswith(\"CUTOVER_\")}}; e[\"saw_tsig\"] = \"NOTIFY_TEST_TSIG\" in os.environ; e[\"saw_token\"] = \"NOTIFY_TEST_TOKEN\" in os.environ; open(\"{log}\", \"a\").write(json.dumps(e) + \"\\n\")'")"#
    )
}

fn events(log: &std::path::Path) -> Vec<Value> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn run(cutover: Cutover, extra: &[&str]) -> Run {
    cutover
        .env("NOTIFY_TEST_TSIG", TSIG)
        .env("NOTIFY_TEST_TOKEN", TOKEN)
        .args(["--yes"])
        .args(extra)
        .run()
}

#[test]
fn hooks_and_webhooks_are_told_every_event_in_order_and_never_a_secret() {
    let server = Recorder::start(200, "{}");
    let dir = tests::temp_dir("cutover-notify-");
    let log = dir.path().join("hook.jsonl");
    let hooks = format!(
        "{},\n        Webhook(url: \"{}\", token_env: \"NOTIFY_TEST_TOKEN\")",
        recording_hook(&log.display().to_string()),
        server.url("/hooks/cutover?channel=ops")
    );
    let text = plan(
        &hooks,
        r#"Step(id: "second", action: Shell(on: "local", run: "true", revert: Run("true")), after: ["first"], duration: Fixed("1s")),"#,
    );
    let done = run(Cutover::new().arg("run").plan_text(&text), &[]);
    done.assert_code(0);

    // The command: every event, in order, with its variables.
    let told = events(&log);
    let names: Vec<&str> = told
        .iter()
        .map(|e| e["CUTOVER_EVENT"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        names,
        [
            "run_started",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "run_ended"
        ],
        "{told:#?}\n{}",
        done.describe()
    );
    let first_done = &told[2];
    assert_eq!(first_done["CUTOVER_STEP"], "first");
    assert_eq!(first_done["CUTOVER_TICKET"], "T110136");
    assert_eq!(first_done["CUTOVER_STEP_TITLE"], "the first step");
    assert_eq!(first_done["CUTOVER_PLAN"], "notify test");
    let took: f64 = first_done["CUTOVER_STEP_ELAPSED_S"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the step's elapsed seconds");
    assert!(took >= 0.2, "the step slept 0.2 s but took {took} s");
    assert_eq!(told[5]["CUTOVER_OUTCOME"], "completed");
    for event in &told {
        assert_eq!(
            event["saw_tsig"], false,
            "a hook saw the TSIG key's variable: {event}"
        );
        assert_eq!(
            event["saw_token"], false,
            "a hook saw the webhook token's variable: {event}"
        );
        assert!(!event.to_string().contains(TOKEN) && !event.to_string().contains("c2VjcmV0"));
    }

    // The webhook: the same events as JSON, the token only in its header.
    let posts = server.wait_for(Duration::from_secs(10), "six posts", |r| r.len() >= 6);
    let kinds: Vec<String> = posts
        .iter()
        .map(|p| {
            p.json()["event"]["event"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, names, "{posts:#?}");
    for post in &posts {
        assert_eq!(post.method, "POST");
        assert_eq!(post.path, "/hooks/cutover?channel=ops");
        assert_eq!(
            post.headers.get("authorization").map(String::as_str),
            Some(&*format!("Bearer {TOKEN}"))
        );
        assert_eq!(
            post.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert!(
            !post.body.contains(TOKEN) && !post.body.contains("c2VjcmV0"),
            "a secret in {}",
            post.body
        );
        assert!(post.json()["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("cutover: notify test: ")));
    }
    assert_eq!(posts[2].json()["event"]["tickets"][0], "T110136");
    assert_eq!(
        posts[5].json()["text"]
            .as_str()
            .map(|t| t.contains("run completed")),
        Some(true),
        "{}",
        posts[5].body
    );
    // Nothing failed, so nothing of the hooks is in the journal.
    let journal = done.plan_path.with_extension("ron.journal");
    assert!(journal_entries(&journal)
        .iter()
        .all(|e| e["type"] != "hook_failed"));
}

#[test]
fn a_failure_tells_the_hooks_why_and_of_the_rollback() {
    let dir = tests::temp_dir("cutover-notify-");
    let log = dir.path().join("hook.jsonl");
    let text = plan(
        &recording_hook(&log.display().to_string()),
        r#"Step(id: "breaks", action: Shell(on: "local", run: "echo disk full >&2; exit 3", revert: Run("true")), after: ["first"], duration: Fixed("1s")),"#,
    );
    let rolled = run(Cutover::new().arg("run").plan_text(&text), &[]);
    rolled.assert_code(3);
    let told = events(&log);
    let names: Vec<&str> = told
        .iter()
        .map(|e| e["CUTOVER_EVENT"].as_str().unwrap_or("?"))
        .collect();
    for expected in ["step_failed", "rollback_started", "run_ended"] {
        assert!(
            names.contains(&expected),
            "{expected} not told: {names:?}\n{}",
            rolled.describe()
        );
    }
    let failed = told
        .iter()
        .find(|e| e["CUTOVER_EVENT"] == "step_failed")
        .expect("step_failed");
    assert_eq!(failed["CUTOVER_STEP"], "breaks");
    assert!(
        failed["CUTOVER_REASON"]
            .as_str()
            .is_some_and(|r| r.contains("3")),
        "{failed}"
    );
    let end = told.last().expect("run_ended");
    assert_eq!(end["CUTOVER_OUTCOME"], "rolled_back", "{end}");
    assert!(
        end["CUTOVER_REASON"]
            .as_str()
            .is_some_and(|r| r.contains("before")),
        "{end}"
    );
}

#[test]
fn a_hook_that_hangs_or_fails_never_holds_the_run_up_and_is_journaled_and_shown() {
    // Every post is refused with a 500, and the command hangs.
    let server = Recorder::start(500, "{}");
    let hooks = format!(
        r#"Command(run: "sleep 60", on: [RunStarted], timeout: "1s"),
        Webhook(url: "{}", on: [StepSucceeded], timeout: "2s")"#,
        server.url("/broken")
    );
    let text = plan(&hooks, "");
    let done = run(Cutover::new().arg("run").plan_text(&text), &[]);
    done.assert_code(0);
    assert!(
        done.elapsed < Duration::from_secs(30),
        "the run waited for a hanging hook: {:?}\n{}",
        done.elapsed,
        done.describe()
    );
    // Retried, then given up on, within its timeout.
    let posts = server.requests();
    assert!(posts.len() >= 2, "the webhook was not retried: {posts:#?}");
    let journal = done.plan_path.with_extension("ron.journal");
    let failed: Vec<Value> = journal_entries(&journal)
        .into_iter()
        .filter(|e| e["type"] == "hook_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:#?}\n{}", done.describe());
    assert!(failed.iter().any(|f| f["event"] == "run_started"
        && f["hook"].as_str().is_some_and(|h| h.contains("sleep 60"))
        && f["error"].as_str().is_some_and(|e| e.contains("timeout"))));
    assert!(failed.iter().any(|f| f["event"] == "step_succeeded"
        && f["step"] == "first"
        && f["error"].as_str().is_some_and(|e| e.contains("HTTP 500"))));
    assert!(
        done.stderr.contains("was not told of"),
        "{}",
        done.describe()
    );
}

#[test]
fn notify_on_the_command_line_adds_hooks_and_no_notify_silences_the_plans() {
    let server = Recorder::start(200, "{}");
    let dir = tests::temp_dir("cutover-notify-");
    let log = dir.path().join("hook.jsonl");
    let text = plan(&recording_hook(&log.display().to_string()), "");
    let url = server.url("/cli");
    let done = run(
        Cutover::new().arg("run").plan_text(&text),
        &["--notify", &url],
    );
    done.assert_code(0);
    server.wait_for(Duration::from_secs(10), "the run's end posted", |r| {
        r.iter().any(|p| p.body.contains("run_ended"))
    });
    assert!(!events(&log).is_empty(), "the plan's hook was not told");

    fs::remove_file(&log).expect("the log can be removed");
    let quiet = run(Cutover::new().arg("run").plan_text(&text), &["--no-notify"]);
    quiet.assert_code(0);
    assert!(
        events(&log).is_empty(),
        "--no-notify still told the plan's hook"
    );

    let refused = run(
        Cutover::new().arg("run").plan_text(&text),
        &["--notify", "https://"],
    );
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("--notify https://"),
        "{}",
        refused.describe()
    );
    assert!(
        !refused.plan_path.with_extension("ron.journal").exists(),
        "a refused --notify left a journal"
    );
}

#[test]
fn a_bad_hook_in_the_plan_is_a_diagnostic_at_its_place() {
    let text = plan(
        r#"Webhook(url: "ftp://chat.example.org/x", token_env: "1TOKEN", timeout: "5m")"#,
        "",
    );
    let checked = tests::check_json(&text);
    checked.assert_code(2);
    let messages: Vec<String> = checked
        .diagnostics()
        .iter()
        .map(|d| {
            format!(
                "{} @ {}",
                d.message,
                d.labels.first().map(|l| l.slice(&text)).unwrap_or("")
            )
        })
        .collect();
    for expected in [
        "is not an http:// or https:// URL @ \"ftp://chat.example.org/x\"",
        "is not an environment variable's name @ \"1TOKEN\"",
        "timeout must be between 1s and 60s @ \"5m\"",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "no diagnostic `{expected}`: {messages:#?}"
        );
    }
}

/// The example hook posts each step's elapsed time as a comment on the
/// step's Phabricator task, through Conduit's `maniphest.edit`.
#[test]
fn the_phabricator_example_hook_comments_on_the_steps_ticket() {
    let conduit = Recorder::start(
        200,
        r#"{"result": {"object": {"id": 1}}, "error_code": null, "error_info": null}"#,
    );
    let hook = tests::example("hooks/phabricator-comment");
    let text = plan(
        &format!(
            r#"Command(run: "{}", on: [StepSucceeded, StepFailed])"#,
            hook.display()
        ),
        "",
    );
    let done = run(
        Cutover::new()
            .arg("run")
            .plan_text(&text)
            .env("PHABRICATOR_URL", conduit.url(""))
            .env("PHABRICATOR_TOKEN", "api-testtoken"),
        &[],
    );
    done.assert_code(0);
    let requests = conduit.wait_for(Duration::from_secs(10), "a comment", |r| !r.is_empty());
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/maniphest.edit");
    let form = request.form();
    assert_eq!(
        form.get("api.token").map(String::as_str),
        Some("api-testtoken")
    );
    assert_eq!(
        form.get("objectIdentifier").map(String::as_str),
        Some("T110136")
    );
    assert_eq!(
        form.get("transactions[0][type]").map(String::as_str),
        Some("comment")
    );
    let comment = form
        .get("transactions[0][value]")
        .cloned()
        .unwrap_or_default();
    assert!(
        comment.starts_with("cutover: step `first` (the first step) done in ")
            && comment.contains("Plan: notify test"),
        "{comment}"
    );
    // Conduit refusing it is the hook's failure, journaled; the run goes on.
    let refusing = Recorder::start(
        200,
        r#"{"result": null, "error_code": "ERR-CONDUIT-CORE", "error_info": "No such object"}"#,
    );
    let done = run(
        Cutover::new()
            .arg("run")
            .plan_text(&text)
            .env("PHABRICATOR_URL", refusing.url(""))
            .env("PHABRICATOR_TOKEN", "api-testtoken"),
        &[],
    );
    done.assert_code(0);
    let journal = done.plan_path.with_extension("ron.journal");
    assert!(
        journal_entries(&journal)
            .iter()
            .any(|e| e["type"] == "hook_failed"
                && e["error"]
                    .as_str()
                    .is_some_and(|m| m.contains("No such object"))),
        "{}",
        done.describe()
    );
}

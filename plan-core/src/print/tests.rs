//! Tests of printing a plan back to RON: every field, the fixpoint, line breaking.

use super::*;
use crate::diagnostic::Source;
use crate::load::{load_str, Settings};
use crate::span::ron_options;

fn load(text: &str) -> Plan {
    let loaded = load_str(Source::new("test.ron", text), &Settings::default());
    match loaded.plan {
        Some(plan) => plan,
        None => panic!(
            "plan does not load: {:#?}\n--- text ---\n{text}",
            loaded
                .diagnostics
                .iter()
                .map(|d| (d.rule(), d.message()))
                .collect::<Vec<_>>()
        ),
    }
}

/// Prints, loads the print, prints again: the two prints must agree.
fn round_trip(text: &str) -> String {
    let printed = to_ron(&load(text));
    let again = to_ron(&load(&printed));
    assert_eq!(again, printed, "printing is not a fixpoint");
    printed
}

const MINIMAL: &str = r#"Plan(name: "m", service: "m", window: Window(announced: "10m"),
        phases: [Phase(name: "window", at: "0", steps: [
            Step(id: "hello", action: Shell(on: "local", run: "echo hi", revert: Nothing("prints only")),
                 check: Run("true")),
        ])])"#;

#[test]
fn prints_only_what_differs_from_the_defaults() {
    assert_eq!(
        round_trip(MINIMAL),
        r#"Plan(
    name: "m",
    service: "m",
    window: Window(announced: "10m"),
    phases: [
        Phase(
            name: "window",
            at: "0",
            steps: [
                Step(
                    id: "hello",
                    action: Shell(on: "local", run: "echo hi", revert: Nothing("prints only")),
                    check: Run("true"),
                ),
            ],
        ),
    ],
)
"#
    );
}

const FULL: &str = r#"Plan(
        name: "lists: sodium -> fermium",
        service: "lists.example.org",
        description: "Move the lists.\nAll of them.",
        window: Window(start: "2015-09-01T14:00:00Z", announced: "2h", deadline: "3h"),
        vars: { "dir": "/var/lib/mailman", "who": "it's me" },
        hosts: {
            "sodium": Host(address: "sodium.example.org", user: "root", port: 2222,
                           identity: "/root/.ssh/id", vars: { "svc": "mailman" }),
            "fermium": Host(address: "10.0.0.2"),
        },
        dns: Rfc2136(server: "ns0.example.org:53", zone: "Example.org", key: TsigEnv("TSIG"),
            records: { "lists.example.org.": Record(ttl: "1h", addresses: ["10.0.0.1"]),
                       "www.example.org": Record(ttl: "5m") }),
        phases: [
            Phase(name: "prep", steps: [
                Step(id: "vm", title: "request VM", ticket: ["T1", "T2"], done: true,
                     action: Manual(prompt: "ask for a VM")),
                Step(id: "plan", number: 12, ticket: "T3", done: "in progress",
                     action: Manual(prompt: "write the plan", revert: Manual("forget it"))),
            ]),
            Phase(name: "day-before", at: "-1d", steps: [
                Step(id: "ttl", action: DnsTtl(record: "lists.example.org.", ttl: "5m"),
                     duration: Uniform(min: "1s500ms", max: "2m")),
            ]),
            Phase(name: "window", at: "0", steps: [
                Step(id: "hold", action: Shell(on: "sodium", run: "hold {{svc}} {{who}}",
                     revert: Run("release {{ svc }}")), check: Run("held {{dir}}"), downtime: Begins),
                Step(id: "stop", action: Service(on: "sodium", unit: "{{svc}}", state: Stopped),
                     check: RunOn(host: "fermium", run: "true"), retries: 2, settle: "10s"),
                RollbackPoint("stopped"),
                Step(id: "rsync", action: Rsync(from: "sodium", to: "fermium", path: "{{dir}}/",
                     dest: "/srv/mailman/", delete: true, args: ["--numeric-ids"]),
                     duration: Pert(min: "10m", likely: "20m", max: "70m"), deadline: "75m",
                     after: ["hold", "stop"]),
                Step(id: "wait", action: WaitTtl(record: "lists.example.org"), after: []),
                Step(id: "switch", action: DnsRecord(record: "lists.example.org.", addresses: ["10.0.0.2", "2001:db8::2"]),
                     check: Resolves(record: "lists.example.org.", to: "10.0.0.2"), downtime: Ends,
                     notice: "mail is back"),
                PointOfNoReturn(reason: "sodium \"is\" gone"),
                Step(id: "web", action: Verify, check: Http(url: "https://lists.example.org/", status: 302)),
                Step(id: "port", action: Wait("1m"), check: Tcp(host: "fermium", port: 25),
                     duration: LogNormal(p50: "1m", p95: "5m")),
                Step(id: "kill", action: Shell(on: "local", run: "echo \"bye\" \\ done",
                     revert: Irreversible("gone")), check: Run("true")),
            ]),
        ],
    )"#;

#[test]
fn every_field_round_trips() {
    let printed = round_trip(FULL);
    for expected in [
        "description: \"Move the lists.\\nAll of them.\",",
        "window: Window(start: \"2015-09-01T14:00:00Z\", announced: \"2h\", deadline: \"3h\"),",
        "\"who\": \"it's me\"",
        "port: 2222,",
        "\"fermium\": Host(address: \"10.0.0.2\"),",
        "zone: \"example.org.\",",
        "key: TsigEnv(\"TSIG\"),",
        "\"www.example.org.\": Record(ttl: \"5m\"),",
        "ticket: [\"T1\", \"T2\"],",
        "done: true,",
        "number: 12,",
        "done: \"in progress\",",
        "duration: Uniform(min: \"1s500ms\", max: \"2m\"),",
        // Variables are expanded (and shell-quoted in commands) ...
        r##"run: r#"hold mailman 'it'\''s me'"#"##,
        "revert: Run(\"release mailman\")",
        "check: Run(\"held /var/lib/mailman\"),",
        "unit: \"mailman\"",
        "check: RunOn(host: \"fermium\", run: \"true\"),",
        "path: \"/var/lib/mailman/\",\n",
        "dest: \"/srv/mailman/\",\n",
        "delete: true,\n",
        "args: [\"--numeric-ids\"],\n",
        "deadline: \"1h15m\",",
        "after: [\"hold\", \"stop\"],",
        "after: [],",
        "record: \"lists.example.org.\"",
        "addresses: [\"10.0.0.2\", \"2001:db8::2\"]",
        "check: Resolves(record: \"lists.example.org.\", to: \"10.0.0.2\"),",
        "downtime: Ends,",
        "PointOfNoReturn(reason: r#\"sodium \"is\" gone\"#),",
        "action: Verify,",
        "check: Http(url: \"https://lists.example.org/\", status: 302),",
        "action: Wait(\"1m\"),",
        "check: Tcp(host: \"fermium\", port: 25),",
        "duration: LogNormal(p50: \"1m\", p95: \"5m\"),",
        "run: r#\"echo \"bye\" \\ done\"#",
        "revert: Irreversible(\"gone\")",
        "retries: 2,",
        "settle: \"10s\",",
        "notice: \"mail is back\",",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in\n{printed}"
        );
    }
    // ... and the variables are printed with them.
    assert!(printed.contains("vars: {\n        \"dir\": \"/var/lib/mailman\","));
    assert!(printed.contains("vars: {\"svc\": \"mailman\"}"));
    // Defaults and stand-ins stay out.
    for absent in [
        "\"local\": Host",
        "{{",
        "number: 1,",
        "number: 13,",
        "status: 200",
    ] {
        assert!(
            !printed.contains(absent),
            "unexpected {absent:?} in\n{printed}"
        );
    }
    // A done step without a revert gets none (the loader's stand-in is not a revert).
    assert!(printed.contains("action: Manual(prompt: \"ask for a VM\"),"));
    for line in printed.lines() {
        assert!(
            line.chars().count() <= WIDTH || !line.contains(", "),
            "too long: {line}"
        );
    }
}

#[test]
fn the_same_plan_comes_back() {
    let first = load(FULL);
    let second = load(&to_ron(&first));
    let view = |plan: &Plan| plan.steps().map(Step::what).collect::<Vec<_>>();
    assert_eq!(view(&first), view(&second));
    assert_eq!(first.vars, second.vars);
    assert_eq!(first.window.start, second.window.start);
    let hosts = |plan: &Plan| {
        format!(
            "{:?}",
            plan.hosts
                .iter()
                .map(|h| {
                    let vars: Vec<_> = h
                        .vars
                        .iter()
                        .map(|v| (&v.name, &v.value, v.origin))
                        .collect();
                    (&h.name, &h.address, &h.user, h.port, &h.identity, vars)
                })
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(hosts(&first), hosts(&second));
    let dns = |plan: &Plan| {
        let d = plan.dns.as_ref().expect("dns");
        format!(
            "{} {} {:?} {:?}",
            d.server,
            d.zone,
            d.key,
            d.records
                .iter()
                .map(|r| (&r.name, r.ttl, &r.addresses))
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(dns(&first), dns(&second));
}

#[test]
fn long_parts_are_broken_over_lines() {
    let long = "x".repeat(90);
    let text = MINIMAL.replace("echo hi", &format!("echo {long}"));
    let printed = round_trip(&text);
    assert!(
            printed.contains(&format!(
                "action: Shell(\n                        on: \"local\",\n                        run: \"echo {long}\",\n                        revert: Nothing(\"prints only\"),\n                    ),"
            )),
            "{printed}"
        );
}

#[test]
fn strings_read_back_as_written() {
    for text in [
        "",
        "plain",
        "say \"hi\"",
        r"back\slash",
        "\"#",
        "\"## and \"#",
        "line\nbreak",
        "tab\tand \"quote\" and \\",
        "nul\0 bell\u{7} del\u{7f} c1\u{85}",
        "crlf\r\n",
        "unicode: é ∑ 🙂 \u{2028}",
        "r#\"already raw\"#",
        "}} {{",
    ] {
        let literal = string(text);
        let back: String = ron_options()
            .from_str(&literal)
            .unwrap_or_else(|e| panic!("{literal} does not parse: {e}"));
        assert_eq!(back, text, "{literal}");
        assert!(!literal.contains('\n'), "{literal}");
    }
}

#[test]
fn durations_read_back_exactly() {
    for d in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(1500),
        Duration::from_nanos(1_000_001),
        Duration::from_micros(3),
        Duration::from_secs(59),
        Duration::from_secs(5_400),
        Duration::from_secs(90_061) + Duration::from_millis(250),
    ] {
        let text = duration_text(d);
        assert_eq!(crate::duration::parse_duration(&text), Ok(d), "{text}");
    }
    assert_eq!(duration_text(Duration::from_secs(5_400)), "1h30m");
}

#[test]
fn unwritten_durations_are_the_loaders_defaults() {
    let text = r#"Plan(name: "d", service: "d", window: Window(announced: "1h"),
            vars: { "v": "{{x}}" },
            hosts: { "a": Host(address: "a"), "b": Host(address: "b") },
            dns: Rfc2136(server: "ns:53", zone: "example.org.", key: TsigFile("/k"),
                         records: { "www.example.org.": Record(ttl: "1m") }),
            phases: [Phase(name: "w", at: "0", steps: [
                Step(id: "shell", action: Shell(on: "a", run: "true", revert: Nothing("no"))),
                Step(id: "service", action: Service(on: "a", unit: "u", state: Running)),
                Step(id: "rsync", action: Rsync(from: "a", to: "b", path: "/p/")),
                Step(id: "ttl", action: DnsTtl(record: "www.example.org.", ttl: "10s")),
                Step(id: "waitttl", action: WaitTtl(record: "www.example.org.")),
                Step(id: "switch", action: DnsRecord(record: "www.example.org.", addresses: ["10.0.0.1"])),
                Step(id: "wait", action: Wait("2m")),
                Step(id: "manual", action: Manual(prompt: "p", revert: Nothing("no"))),
                Step(id: "verify", action: Verify, check: Run("true") , after: ["shell"]),
            ])])"#;
    // `verify` has no host for `Run`: swap in a check that has one.
    let text = text.replace(
        "check: Run(\"true\") ,",
        "check: RunOn(host: \"a\", run: \"true\"),",
    );
    let printed = round_trip(&text);
    assert!(!printed.contains("duration:"), "{printed}");
    // A placeholder in a value that names no variable is kept as written
    // (with a warning), and printed escaped so that it reads back the same.
    assert!(printed.contains("\"v\": \"{{{{x}}\""), "{printed}");
}

#[test]
fn literal_braces_are_printed_escaped_and_read_back_the_same() {
    let text = r#"Plan(name: "b", service: "b", window: Window(announced: "1h"),
            vars: { "fmt": "{{.State.Running}}" },
            hosts: { "a": Host(address: "a") },
            phases: [Phase(name: "w", at: "0", steps: [
                Step(id: "up", action: Shell(on: "a", run: "docker start web",
                     revert: Run("docker stop web")),
                     check: Run("docker inspect -f '{{{{.State.Running}}' web | grep -qx true")),
                Step(id: "var", action: Shell(on: "a", run: "docker inspect -f {{fmt}} web",
                     revert: Nothing("reads only")), check: Run("true")),
                Step(id: "ask", action: Manual(prompt: "look at {{{{ this }} in the UI",
                     revert: Nothing("only looks"))),
            ])])"#;
    let plan = load(text);
    let commands: Vec<String> = plan
        .steps()
        .filter_map(|s| s.check.as_ref())
        .filter_map(|c| match c {
            Check::Run { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands[0],
        "docker inspect -f '{{.State.Running}}' web | grep -qx true"
    );
    let printed = round_trip(text);
    for expected in [
        "check: Run(\"docker inspect -f '{{{{.State.Running}}' web | grep -qx true\")",
        // A value holding `{{`, quoted into the command, escaped in print.
        "run: \"docker inspect -f '{{{{.State.Running}}' web\"",
        "prompt: \"look at {{{{ this }} in the UI\"",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in\n{printed}"
        );
    }
    // The printed plan loads to the same commands.
    assert_eq!(load(&printed).steps().count(), plan.steps().count());
}

#[test]
fn notify_hooks_round_trip() {
    let text = r#"Plan(name: "m", service: "m", window: Window(announced: "10m"),
        vars: {"hook": "https://chat.example.org/hooks/abc", "who": "it's me"},
        phases: [Phase(name: "window", at: "0", steps: [
            Step(id: "hello", action: Shell(on: "local", run: "echo hi", revert: Nothing("prints only")),
                 check: Run("true")),
        ])],
        notify: [
            Command(run: "say {{who}}", on: [StepFailed, RunStarted, StepFailed]),
            Webhook(url: "{{hook}}", token_env: "CHAT_TOKEN", timeout: "5s"),
            Webhook(url: "http://127.0.0.1:9/x"),
        ])"#;
    let printed = round_trip(text);
    for expected in [
        // The events in run order, once each; the command's variable quoted.
        r##"Command(run: r#"say 'it'\''s me'"#, on: [RunStarted, StepFailed]),"##,
        r#"Webhook(url: "https://chat.example.org/hooks/abc", token_env: "CHAT_TOKEN", timeout: "5s"),"#,
        r#"Webhook(url: "http://127.0.0.1:9/x"),"#,
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in\n{printed}"
        );
    }
    assert_eq!(load(text).notify, load(&printed).notify);
}

#[test]
fn the_lock_setting_round_trips() {
    let text = r#"Plan(name: "m", service: "m", window: Window(announced: "10m"),
        vars: {"etcd": "etcd1.example.org:2379"},
        phases: [Phase(name: "window", at: "0", steps: [
            Step(id: "hello", action: Shell(on: "local", run: "echo hi", revert: Nothing("prints only")),
                 check: Run("true")),
        ])],
        lock: "etcd://{{etcd}}/cutover")"#;
    let printed = round_trip(text);
    assert!(
        printed.contains("lock: \"etcd://etcd1.example.org:2379/cutover\","),
        "{printed}"
    );
    let plan = load(&printed);
    let lock = plan.lock.expect("a lock");
    assert_eq!(lock.endpoint, "http://etcd1.example.org:2379");
    assert_eq!(lock.key("m"), "/cutover/m");
}

//! Printing a validated [`Plan`] back as plan-format RON.
//!
//! The output is what a careful person would write: fields in the order the
//! plan format defines them, only those that differ from their defaults,
//! short parts on one line and long ones broken over several, 4-space indents.
//!
//! A [`Plan`] holds commands with their `{{variables}}` already expanded (and
//! shell-quoted), so that is what is printed, together with the variables in
//! force. Loading the output gives the same plan, and printing that plan
//! again gives the same text: [`to_ron`] is a fixpoint after one round.
//! A literal `{{` in a field that is expanded (whether written `{{{{` or
//! brought in by a variable's value) is printed `{{{{` again.
//!
//! ```
//! use plan_core::{load_str, to_ron, Settings, Source};
//!
//! let text = r#"Plan(name: "demo", service: "demo", window: Window(announced: "10m"),
//!     phases: [Phase(name: "window", at: "0", steps: [
//!         Step(id: "hello", action: Shell(on: "local", run: "echo hi",
//!              revert: Nothing("prints only")), check: Run("true")),
//!     ])])"#;
//! let plan = load_str(Source::new("demo.ron", text), &Settings::default()).plan.expect("valid");
//! let printed = to_ron(&plan);
//! assert!(printed.starts_with("Plan(\n    name: \"demo\",\n"));
//! let again = load_str(Source::new("again.ron", printed.as_str()), &Settings::default());
//! assert_eq!(to_ron(&again.plan.expect("still valid")), printed);
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::duration::{format_anchor, format_duration};
use crate::plan::{
    Action, Check, Dns, Done, Downtime, DurationModel, Entry, Host, Phase, Plan, Revert,
    ServiceState, Step, TsigKeySource, Variable, Window,
};
use crate::template;

/// Lines longer than this are broken over several lines.
const WIDTH: usize = 100;
const INDENT: &str = "    ";

/// Prints `plan` as plan-format RON, ending with a newline.
///
/// Commands, paths and prompts are printed as the plan holds them, with
/// variables expanded; the variables themselves are printed too, with the
/// values in force (after `--set` and environment overrides).
pub fn to_ron(plan: &Plan) -> String {
    let mut out = String::new();
    plan_node(plan).render(0, &mut out);
    out.push('\n');
    out
}

/// A RON value laid out on one line when it fits, else over several.
enum Node {
    /// A scalar, already written as RON.
    Atom(String),
    /// `Name(field: value, ...)` or `Name(value)` (fields without names).
    Call {
        name: &'static str,
        fields: Vec<(Option<&'static str>, Node)>,
        broken: bool,
    },
    /// `[a, b]`.
    List { items: Vec<Node>, broken: bool },
    /// `{"key": value}`.
    Map {
        entries: Vec<(String, Node)>,
        broken: bool,
    },
}

impl Node {
    fn call(name: &'static str, fields: Vec<(Option<&'static str>, Node)>) -> Node {
        Node::Call {
            name,
            fields,
            broken: false,
        }
    }

    /// `Name(value)`.
    fn wrap(name: &'static str, value: Node) -> Node {
        Node::call(name, vec![(None, value)])
    }

    fn str(text: &str) -> Node {
        Node::Atom(string(text))
    }

    /// A field the loader expands: printed so that it expands to `text`.
    fn template(text: &str) -> Node {
        Node::str(&template::escape(text))
    }

    fn duration(d: Duration) -> Node {
        Node::str(&duration_text(d))
    }

    fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Node {
        Node::List {
            items: items.into_iter().map(|s| Node::str(s)).collect(),
            broken: false,
        }
    }

    fn templates<'a>(items: impl IntoIterator<Item = &'a String>) -> Node {
        Node::List {
            items: items.into_iter().map(|s| Node::template(s)).collect(),
            broken: false,
        }
    }

    /// Always laid out over several lines (the plan's skeleton reads better so).
    fn broken(mut self) -> Node {
        match &mut self {
            Node::Call { broken, .. } | Node::List { broken, .. } | Node::Map { broken, .. } => {
                *broken = true;
            }
            Node::Atom(_) => {}
        }
        self
    }

    /// The one-line form.
    fn inline(&self, out: &mut String) {
        match self {
            Node::Atom(text) => out.push_str(text),
            Node::Call { name, fields, .. } => {
                out.push_str(name);
                out.push('(');
                for (i, (field, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if let Some(field) = field {
                        out.push_str(field);
                        out.push_str(": ");
                    }
                    value.inline(out);
                }
                out.push(')');
            }
            Node::List { items, .. } => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.inline(out);
                }
                out.push(']');
            }
            Node::Map { entries, .. } => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push_str(": ");
                    value.inline(out);
                }
                out.push('}');
            }
        }
    }

    fn is_empty_container(&self) -> bool {
        match self {
            Node::List { items, .. } => items.is_empty(),
            Node::Map { entries, .. } => entries.is_empty(),
            Node::Atom(_) | Node::Call { .. } => false,
        }
    }

    /// Appends the node to `out`, whose last line is at `depth` indents.
    fn render(&self, depth: usize, out: &mut String) {
        let forced = match self {
            Node::Atom(_) => false,
            Node::Call { broken, .. } | Node::List { broken, .. } | Node::Map { broken, .. } => {
                *broken && !self.is_empty_container()
            }
        };
        if !forced {
            let mut line = String::new();
            self.inline(&mut line);
            let line_start = out.rfind('\n').map_or(0, |i| i + 1);
            // Characters, not bytes: a title in Cyrillic is no longer than one in English.
            let column = out[line_start..].chars().count();
            // Strings are escaped onto one line, so an atom is never broken.
            if matches!(self, Node::Atom(_)) || column + line.chars().count() <= WIDTH {
                out.push_str(&line);
                return;
            }
        }
        let inner = INDENT.repeat(depth + 1);
        let close = |out: &mut String, bracket: char| {
            out.push_str(&INDENT.repeat(depth));
            out.push(bracket);
        };
        match self {
            Node::Atom(text) => out.push_str(text),
            Node::Call { name, fields, .. } => {
                out.push_str(name);
                out.push_str("(\n");
                for (field, value) in fields {
                    out.push_str(&inner);
                    if let Some(field) = field {
                        out.push_str(field);
                        out.push_str(": ");
                    }
                    value.render(depth + 1, out);
                    out.push_str(",\n");
                }
                close(out, ')');
            }
            Node::List { items, .. } => {
                out.push_str("[\n");
                for item in items {
                    out.push_str(&inner);
                    item.render(depth + 1, out);
                    out.push_str(",\n");
                }
                close(out, ']');
            }
            Node::Map { entries, .. } => {
                out.push_str("{\n");
                for (key, value) in entries {
                    out.push_str(&inner);
                    out.push_str(key);
                    out.push_str(": ");
                    value.render(depth + 1, out);
                    out.push_str(",\n");
                }
                close(out, '}');
            }
        }
    }
}

/// A RON string literal for `text`.
///
/// Text with quotes or backslashes (shell commands, mostly) becomes a raw
/// string, `r#"grep -q "x" f"#`, which reads as it runs; text with control
/// characters becomes an ordinary string with escapes, so that it stays on
/// one line.
fn string(text: &str) -> String {
    let has_control = text.chars().any(char::is_control);
    if !has_control && (text.contains('"') || text.contains('\\')) {
        // Enough hashes that no `"###` inside can end the string early.
        let mut longest = 0;
        for (i, _) in text.match_indices('"') {
            let run = text[i + 1..].bytes().take_while(|b| *b == b'#').count();
            longest = longest.max(run);
        }
        let hashes = "#".repeat(longest + 1);
        return format!("r{hashes}\"{text}\"{hashes}");
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration as the plan format writes it.
///
/// Whole seconds use [`format_duration`]; a fraction of a second is appended
/// in `ms`, `us` and `ns` (which `format_duration` does not print), so that
/// the value reads back exactly.
fn duration_text(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format_duration(d);
    }
    let mut out = if d.as_secs() > 0 {
        format_duration(Duration::from_secs(d.as_secs()))
    } else {
        String::new()
    };
    for (value, unit) in [
        (nanos / 1_000_000, "ms"),
        (nanos / 1_000 % 1_000, "us"),
        (nanos % 1_000, "ns"),
    ] {
        if value > 0 {
            let _ = write!(out, "{value}{unit}");
        }
    }
    out
}

fn plan_node(plan: &Plan) -> Node {
    let mut fields = vec![
        (Some("name"), Node::str(&plan.name)),
        (Some("service"), Node::str(&plan.service)),
    ];
    if let Some(description) = &plan.description {
        fields.push((Some("description"), Node::str(description)));
    }
    fields.push((Some("window"), window_node(&plan.window)));
    if !plan.vars.is_empty() {
        fields.push((Some("vars"), vars_node(&plan.vars).broken()));
    }
    let hosts: Vec<(String, Node)> = plan
        .hosts
        .iter()
        .filter(|h| !h.is_local())
        .map(|h| (string(&h.name), host_node(h)))
        .collect();
    if !hosts.is_empty() {
        fields.push((
            Some("hosts"),
            Node::Map {
                entries: hosts,
                broken: true,
            },
        ));
    }
    if let Some(dns) = &plan.dns {
        fields.push((Some("dns"), dns_node(dns)));
    }
    let mut number = 0;
    let phases = plan
        .phases
        .iter()
        .map(|p| phase_node(p, &mut number))
        .collect();
    fields.push((
        Some("phases"),
        Node::List {
            items: phases,
            broken: true,
        },
    ));
    if let Some(path) = &plan.known_hosts {
        fields.push((
            Some("known_hosts"),
            Node::template(&path.display().to_string()),
        ));
    }
    if plan.failure_rate != crate::plan::DEFAULT_FAILURE_RATE {
        fields.push((Some("failure_rate"), Node::Atom(float(plan.failure_rate))));
    }
    if let Some(lock) = &plan.lock {
        fields.push((Some("lock"), Node::template(&lock.text)));
    }
    if !plan.notify.is_empty() {
        fields.push((
            Some("notify"),
            Node::List {
                items: plan.notify.iter().map(hook_node).collect(),
                broken: true,
            },
        ));
    }
    Node::call("Plan", fields).broken()
}

fn hook_node(hook: &crate::plan::Hook) -> Node {
    use crate::plan::HookTarget;
    let (name, mut fields) = match &hook.target {
        HookTarget::Command { run } => ("Command", vec![(Some("run"), Node::template(run))]),
        HookTarget::Webhook { url, token_env } => {
            let mut fields = vec![(Some("url"), Node::template(url))];
            if let Some(name) = token_env {
                fields.push((Some("token_env"), Node::str(name)));
            }
            ("Webhook", fields)
        }
    };
    if !hook.on.is_empty() {
        fields.push((
            Some("on"),
            Node::List {
                items: hook
                    .on
                    .iter()
                    .map(|e| Node::Atom(e.plan_name().to_owned()))
                    .collect(),
                broken: false,
            },
        ));
    }
    if hook.timeout != crate::plan::HOOK_TIMEOUT {
        fields.push((Some("timeout"), Node::duration(hook.timeout)));
    }
    Node::call(name, fields)
}

/// A float as RON reads it back exactly (always with a `.` or exponent).
fn float(value: f64) -> String {
    let text = format!("{value:?}");
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

fn window_node(window: &Window) -> Node {
    let mut fields = Vec::new();
    if let Some(start) = &window.start {
        fields.push((Some("start"), Node::str(&start.to_string())));
    }
    fields.push((Some("announced"), Node::duration(window.announced)));
    if let Some(deadline) = window.deadline {
        fields.push((Some("deadline"), Node::duration(deadline)));
    }
    if let Some(budget) = window.downtime_budget {
        fields.push((Some("downtime_budget"), Node::duration(budget)));
    }
    Node::call("Window", fields)
}

fn vars_node(vars: &[Variable]) -> Node {
    Node::Map {
        entries: vars
            .iter()
            // Values are expanded (variables may use variables): printed so
            // that they read back as themselves.
            .map(|v| (string(&v.name), Node::template(&v.value)))
            .collect(),
        broken: false,
    }
}

/// An `env` map; the values of names that hold secrets (`PGPASSWORD`,
/// `API_TOKEN`, `..._KEY`) are printed as `<redacted>`.
fn env_node(env: &[(String, String)]) -> Node {
    Node::Map {
        entries: env
            .iter()
            .map(|(name, value)| {
                let value = if crate::secret::secret_name(name) {
                    crate::secret::REDACTED
                } else {
                    value
                };
                (string(name), Node::template(value))
            })
            .collect(),
        broken: false,
    }
}

fn host_node(host: &Host) -> Node {
    let mut fields = vec![(Some("address"), Node::template(&host.address))];
    if let Some(user) = &host.user {
        fields.push((Some("user"), Node::template(user)));
    }
    if let Some(port) = host.port {
        fields.push((Some("port"), Node::Atom(port.to_string())));
    }
    if let Some(identity) = &host.identity {
        fields.push((
            Some("identity"),
            Node::template(&identity.to_string_lossy()),
        ));
    }
    if !host.vars.is_empty() {
        fields.push((Some("vars"), vars_node(&host.vars)));
    }
    if !host.env.is_empty() {
        fields.push((Some("env"), env_node(&host.env)));
    }
    Node::call("Host", fields)
}

fn dns_node(dns: &Dns) -> Node {
    let key = match &dns.key {
        TsigKeySource::File(path) => {
            Node::wrap("TsigFile", Node::template(&path.to_string_lossy()))
        }
        TsigKeySource::Env(var) => Node::wrap("TsigEnv", Node::str(var)),
    };
    let mut fields = vec![
        (Some("server"), Node::template(&dns.server)),
        (Some("zone"), Node::str(&dns.zone)),
        (Some("key"), key),
    ];
    if !dns.records.is_empty() {
        let entries = dns
            .records
            .iter()
            .map(|record| {
                let mut fields = vec![(Some("ttl"), Node::duration(record.ttl))];
                if !record.addresses.is_empty() {
                    let addresses: Vec<String> =
                        record.addresses.iter().map(ToString::to_string).collect();
                    fields.push((Some("addresses"), Node::strings(&addresses)));
                }
                (string(&record.name), Node::call("Record", fields))
            })
            .collect();
        fields.push((
            Some("records"),
            Node::Map {
                entries,
                broken: true,
            },
        ));
    }
    Node::call("Rfc2136", fields).broken()
}

/// `number` is the last step number so far: numbers run on across phases.
fn phase_node(phase: &Phase, number: &mut u32) -> Node {
    let mut fields = vec![(Some("name"), Node::str(&phase.name))];
    if let Some(at) = phase.at {
        fields.push((Some("at"), Node::str(&format_anchor(at))));
    }
    let items = phase
        .entries
        .iter()
        .map(|entry| entry_node(entry, number))
        .collect();
    fields.push((
        Some("steps"),
        Node::List {
            items,
            broken: true,
        },
    ));
    Node::call("Phase", fields).broken()
}

fn entry_node(entry: &Entry, number: &mut u32) -> Node {
    match entry {
        Entry::Step(step) => {
            // The loader counts on from the previous step unless told.
            let counted = number.checked_add(1);
            *number = step.number;
            step_node(step, counted != Some(step.number))
        }
        Entry::RollbackPoint(marker) => Node::wrap("RollbackPoint", Node::str(&marker.text)),
        Entry::PointOfNoReturn(marker) => Node::call(
            "PointOfNoReturn",
            vec![(Some("reason"), Node::str(&marker.text))],
        ),
    }
}

fn step_node(step: &Step, write_number: bool) -> Node {
    let mut fields = vec![(Some("id"), Node::str(&step.id))];
    if step.title != step.id {
        fields.push((Some("title"), Node::str(&step.title)));
    }
    if write_number {
        fields.push((Some("number"), Node::Atom(step.number.to_string())));
    }
    match step.tickets.as_slice() {
        [] => {}
        [one] => fields.push((Some("ticket"), Node::str(one))),
        many => fields.push((Some("ticket"), Node::strings(many))),
    }
    match step.done {
        Done::Yes => fields.push((Some("done"), Node::Atom("true".into()))),
        Done::InProgress => fields.push((Some("done"), Node::str(Done::InProgress.as_str()))),
        Done::No => {}
    }
    fields.push((
        Some("action"),
        action_node(&step.action, step.transfer_size),
    ));
    if let Some(check) = &step.check {
        fields.push((Some("check"), check_node(check, step.host())));
    }
    if let Some(probe) = &step.probe {
        fields.push((Some("probe"), check_node(probe, step.host())));
    }
    if step.duration != step.action.default_duration() {
        fields.push((Some("duration"), duration_model_node(&step.duration)));
    }
    if let Some(deadline) = step.deadline {
        fields.push((Some("deadline"), Node::duration(deadline)));
    }
    if step.retries != 0 {
        fields.push((Some("retries"), Node::Atom(step.retries.to_string())));
    }
    if let Some(interval) = step.retry_interval {
        fields.push((Some("retry_interval"), Node::duration(interval)));
    }
    if step.after_explicit {
        fields.push((Some("after"), Node::strings(&step.after)));
    }
    if let Some(downtime) = step.downtime {
        let marker = match downtime {
            Downtime::Begins => "Begins",
            Downtime::Ends => "Ends",
        };
        fields.push((Some("downtime"), Node::Atom(marker.into())));
    }
    if let Some(settle) = step.settle {
        fields.push((Some("settle"), Node::duration(settle)));
    }
    if let Some(outage) = &step.outage {
        fields.push((Some("outage"), Node::str(outage)));
    }
    if let Some(in_flight) = step.in_flight {
        fields.push((Some("in_flight"), Node::duration(in_flight)));
    }
    if let Some(loses) = &step.loses {
        fields.push((Some("loses"), Node::template(loses)));
    }
    if let Some(notice) = &step.notice {
        fields.push((Some("notice"), Node::template(notice)));
    }
    if !step.env.is_empty() {
        fields.push((Some("env"), env_node(&step.env)));
    }
    if step.revert_after_failure {
        fields.push((Some("revert_after_failure"), Node::Atom("true".into())));
    }
    if let Some(rate) = step.failure_rate {
        fields.push((Some("failure_rate"), Node::Atom(float(rate))));
    }
    Node::call("Step", fields).broken()
}

/// `revert: ...`, unless the loader's stand-in for an unwritten revert (only
/// allowed on steps that are done).
fn revert_field(revert: &Revert) -> Option<(Option<&'static str>, Node)> {
    // Commands and manual instructions are expanded; reasons are not.
    let (kind, text) = match revert {
        Revert::Run(t) => ("Run", Node::template(t)),
        Revert::Manual(t) => ("Manual", Node::template(t)),
        Revert::Irreversible(t) => ("Irreversible", Node::str(t)),
        Revert::Nothing(t) if t.is_empty() => return None,
        Revert::Nothing(t) => ("Nothing", Node::str(t)),
    };
    Some((Some("revert"), Node::wrap(kind, text)))
}

fn action_node(action: &Action, transfer_size: Option<u64>) -> Node {
    match action {
        Action::Shell { host, run, revert } => {
            let mut fields = vec![
                (Some("on"), Node::str(host)),
                (Some("run"), Node::template(run)),
            ];
            fields.extend(revert_field(revert));
            Node::call("Shell", fields)
        }
        Action::Service {
            host,
            unit,
            state,
            control,
        } => {
            let state = match state {
                ServiceState::Running => "Running",
                ServiceState::Stopped => "Stopped",
            };
            let mut fields = vec![
                (Some("on"), Node::str(host)),
                (Some("unit"), Node::template(unit)),
                (Some("state"), Node::Atom(state.into())),
            ];
            if let crate::plan::ServiceControl::Commands {
                start,
                stop,
                status,
            } = control
            {
                fields.push((Some("start"), Node::template(start)));
                fields.push((Some("stop"), Node::template(stop)));
                fields.push((Some("status"), Node::template(status)));
            }
            Node::call("Service", fields)
        }
        Action::Rsync {
            from,
            to,
            path,
            dest,
            delete,
            args,
        } => {
            let mut fields = vec![
                (Some("from"), Node::str(from)),
                (Some("to"), Node::str(to)),
                (Some("path"), Node::template(path)),
            ];
            if dest != path {
                fields.push((Some("dest"), Node::template(dest)));
            }
            if *delete {
                fields.push((Some("delete"), Node::Atom("true".into())));
            }
            if !args.is_empty() {
                fields.push((Some("args"), Node::templates(args)));
            }
            if let Some(bytes) = transfer_size {
                fields.push((
                    Some("size"),
                    Node::str(&crate::duration::format_size(bytes)),
                ));
            }
            Node::call("Rsync", fields)
        }
        Action::DnsTtl { record, ttl } => Node::call(
            "DnsTtl",
            vec![
                (Some("record"), Node::str(record)),
                (Some("ttl"), Node::duration(*ttl)),
            ],
        ),
        Action::DnsRecord { record, addresses } => {
            let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            Node::call(
                "DnsRecord",
                vec![
                    (Some("record"), Node::str(record)),
                    (Some("addresses"), Node::strings(&addresses)),
                ],
            )
        }
        Action::WaitTtl { record } => {
            Node::call("WaitTtl", vec![(Some("record"), Node::str(record))])
        }
        Action::Wait(d) => Node::wrap("Wait", Node::duration(*d)),
        Action::WaitUntil(poll) => Node::call(
            "WaitUntil",
            vec![
                (Some("on"), Node::str(&poll.host)),
                (Some("run"), Node::template(&poll.command)),
                (Some("every"), Node::duration(poll.every)),
                (Some("within"), Node::duration(poll.within)),
            ],
        ),
        Action::Manual { prompt, revert } => {
            let mut fields = vec![(Some("prompt"), Node::template(prompt))];
            fields.extend(revert_field(revert));
            Node::call("Manual", fields)
        }
        Action::Verify => Node::Atom("Verify".into()),
    }
}

/// A check; `Run` when it runs on the step's own host, `RunOn` otherwise.
fn check_node(check: &Check, step_host: Option<&str>) -> Node {
    match check {
        Check::Run { host, command } if step_host == Some(host.as_str()) => {
            Node::wrap("Run", Node::template(command))
        }
        Check::Run { host, command } => Node::call(
            "RunOn",
            vec![
                (Some("host"), Node::str(host)),
                (Some("run"), Node::template(command)),
            ],
        ),
        Check::Tcp { host, port } => Node::call(
            "Tcp",
            vec![
                (Some("host"), Node::str(host)),
                (Some("port"), Node::Atom(port.to_string())),
            ],
        ),
        Check::Http { url, status } => {
            let mut fields = vec![(Some("url"), Node::template(url))];
            if *status != 200 {
                fields.push((Some("status"), Node::Atom(status.to_string())));
            }
            Node::call("Http", fields)
        }
        Check::Resolves { record, to } => Node::call(
            "Resolves",
            vec![
                (Some("record"), Node::str(record)),
                (Some("to"), Node::str(&to.to_string())),
            ],
        ),
        Check::Until(poll) => {
            let mut fields = vec![
                (Some("run"), Node::template(&poll.command)),
                (Some("every"), Node::duration(poll.every)),
                (Some("within"), Node::duration(poll.within)),
            ];
            if step_host != Some(poll.host.as_str()) {
                fields.push((Some("on"), Node::str(&poll.host)));
            }
            Node::call("Until", fields)
        }
    }
}

fn duration_model_node(model: &DurationModel) -> Node {
    let d = |value: Duration| Node::duration(value);
    match *model {
        DurationModel::Fixed(value) => Node::wrap("Fixed", d(value)),
        DurationModel::Uniform { min, max } => Node::call(
            "Uniform",
            vec![(Some("min"), d(min)), (Some("max"), d(max))],
        ),
        DurationModel::Pert { min, likely, max } => Node::call(
            "Pert",
            vec![
                (Some("min"), d(min)),
                (Some("likely"), d(likely)),
                (Some("max"), d(max)),
            ],
        ),
        DurationModel::LogNormal { p50, p95 } => Node::call(
            "LogNormal",
            vec![(Some("p50"), d(p50)), (Some("p95"), d(p95))],
        ),
    }
}

#[cfg(test)]
mod tests;

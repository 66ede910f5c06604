//! Loading a plan: RON text -> raw structs with spans -> validated [`Plan`].
//!
//! Loading never stops at the first problem: it keeps going with a stand-in
//! value so that one run reports everything, then runs the verifier on the
//! result. A [`Plan`] is handed out only when there is no error.
//!
//! This file reads the text and holds the `Validator`; each part of the
//! plan is validated in a file of its own: `scope.rs` (variables, hosts,
//! settings), `dns.rs`, `phases.rs` (the window, phases and steps) and
//! `action.rs` (actions, reverts, checks, durations).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::{Diagnostic, Diagnostics, Rule, Source};
use crate::duration::parse_duration;
use crate::plan::*;
use crate::raw::*;
use crate::span::{offset_of, ron_options, ParseScope, Span, Spanned};
use crate::verify;

mod action;
mod dns;
mod names;
mod notify;

pub use notify::check_hook_url;
mod phases;
mod scope;

/// Plans larger than this are refused unread: no real plan comes near it, and
/// reading a runaway file would only waste memory.
pub const MAX_PLAN_BYTES: u64 = 8 * 1024 * 1024;

/// Variable overrides, strongest last: the environment, then `--set`.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `NAME=VALUE` or `HOST.NAME=VALUE` pairs from `--set`.
    pub set: Vec<(String, String)>,
    /// `CUTOVER_VAR_<NAME>` (or `CUTOVER_VAR_<HOST>__<NAME>`) from the environment.
    pub env: Vec<(String, String)>,
    /// The run's own directory, for the built-in `{{run_dir}}`; decided when
    /// a run starts, so [`RUN_DIR_UNSET`] stands in before that.
    pub run_dir: Option<String>,
    /// Leave out fault exploration (`cutover::unsafe-run`): the verbs that
    /// only show a plan (`print`, `graph`, `timeline`, `status`) need every
    /// other rule, not the machine driven through every fault.
    pub skip_exploration: bool,
}

/// The name of the built-in variable holding a run's fresh directory.
pub const RUN_DIR: &str = "run_dir";

/// What `{{run_dir}}` shows before a run has created its directory.
pub const RUN_DIR_UNSET: &str = "/tmp/cutover-run-<created when the run starts>";

/// The prefix of environment variables that override plan variables.
pub const ENV_PREFIX: &str = "CUTOVER_VAR_";

impl Settings {
    /// Takes `CUTOVER_VAR_*` from `vars`; `HOST__NAME` addresses a host variable.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env = vars
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ENV_PREFIX)?.replacen("__", ".", 1), v)))
            .collect();
        self
    }

    /// Parses a `NAME=VALUE` command-line setting.
    pub fn parse_set(text: &str) -> Result<(String, String), String> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
        Ok((name.trim().to_owned(), value.to_owned()))
    }
}

/// The outcome of loading and verifying one plan.
#[derive(Debug)]
pub struct Loaded {
    /// The plan, when it has no error (warnings allowed).
    pub plan: Option<Plan>,
    /// Every problem found, in file order.
    pub diagnostics: Diagnostics,
    /// The source, for rendering.
    pub source: Source,
}

/// The file could not be read at all (not a problem *in* the plan).
#[derive(Debug, thiserror::Error)]
#[error("cannot read plan `{}`: {kind}", path.display())]
pub struct ReadError {
    /// The path as given.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

/// What went wrong reading a plan file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// No such file.
    #[error("no such file")]
    NotFound,
    /// A directory was given.
    #[error("it is a directory, not a plan file")]
    IsDirectory,
    /// Any other I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads and loads the plan at `path`.
///
/// I/O failures are a [`ReadError`]; a file that is too large or not UTF-8 is
/// read and reported as a [`Rule::Unreadable`] diagnostic.
pub fn load_path(path: &Path, settings: &Settings) -> Result<Loaded, ReadError> {
    let err = |kind| ReadError {
        path: path.to_owned(),
        kind,
    };
    let metadata = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err(ReadErrorKind::NotFound),
        _ => err(ReadErrorKind::Io(e)),
    })?;
    if metadata.is_dir() {
        return Err(err(ReadErrorKind::IsDirectory));
    }
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    let file = fs::File::open(path).map_err(|e| err(ReadErrorKind::Io(e)))?;
    file.take(MAX_PLAN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(ReadErrorKind::Io(e)))?;
    if bytes.len() as u64 > MAX_PLAN_BYTES {
        let limit = MAX_PLAN_BYTES / (1024 * 1024);
        // A pipe or a device has no size: say what it is, not a made-up one.
        let message = if metadata.is_file() {
            format!(
                "the plan file is {:.1} MiB; plans are limited to {limit} MiB",
                metadata.len().max(bytes.len() as u64) as f64 / (1024.0 * 1024.0),
            )
        } else {
            format!(
                "the plan is not a regular file (a pipe or a device?) and goes on past the \
                 {limit} MiB plans are limited to"
            )
        };
        let diagnostic = Diagnostic::new(Rule::Unreadable, message)
            .help("is this the right file? A plan of thousands of steps is still well under 1 MiB");
        return Ok(unreadable(Source::new(name, ""), diagnostic));
    }
    Ok(load_bytes(name, bytes, settings))
}

/// Loads a plan from bytes that claim to be UTF-8 RON.
pub fn load_bytes(name: String, mut bytes: Vec<u8>, settings: &Settings) -> Loaded {
    // Some editors start UTF-8 files with a byte-order mark; it is no part of the plan.
    // Blanking it keeps every byte offset (and so every span) as in the file.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes[..3].copy_from_slice(b"   ");
    }
    match String::from_utf8(bytes) {
        Ok(text) => load_str(Source::new(name, text), settings),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = Source::new(name, text);
            let binary = e.as_bytes().iter().take(4096).filter(|b| **b == 0).count() > 0;
            let diagnostic = Diagnostic::new(
                Rule::Unreadable,
                format!("the plan file is not valid UTF-8 (byte {offset})"),
            )
            .label(Span::new(offset, 1), "this byte is not UTF-8")
            .help(if binary {
                "this looks like a binary file; a plan is a RON text file"
            } else {
                "save the plan as UTF-8"
            });
            unreadable(source, diagnostic)
        }
    }
}

fn unreadable(source: Source, diagnostic: Diagnostic) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    diagnostics.push(diagnostic);
    diagnostics.attach(&source);
    Loaded {
        plan: None,
        diagnostics,
        source,
    }
}

/// Loads and verifies a plan from its text.
pub fn load_str(source: Source, settings: &Settings) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let plan = match parse_raw(&source) {
        Ok(raw) => {
            let plan = Validator::new(&source, settings, &mut diagnostics).plan(raw);
            verify::verify(&plan, settings, &mut diagnostics);
            Some(plan)
        }
        Err(d) => {
            diagnostics.push(*d);
            None
        }
    };
    diagnostics.attach(&source);
    let plan = plan.filter(|_| !diagnostics.has_errors());
    Loaded {
        plan,
        diagnostics,
        source,
    }
}

/// Phase one: RON text to raw structs, or one syntax diagnostic.
fn parse_raw(source: &Source) -> Result<RawPlan, Box<Diagnostic>> {
    let text = source.text();
    if text.trim().is_empty() {
        return Err(Box::new(Diagnostic::new(Rule::Syntax, "the plan file is empty")
            .label(Span::new(0, text.len()), "nothing here")
            .help("a plan starts with `Plan(name: ..., service: ..., window: ..., phases: [...])`; see docs/plan-format.md")));
    }
    let scope = ParseScope::enter(text);
    let result = ron_options().from_str::<RawPlan>(text);
    let inner = scope.take_inner_error();
    drop(scope);
    let error = match result {
        Ok(raw) => return Ok(raw),
        Err(e) => e,
    };
    let (message, span) = match inner {
        Some(inner) => (inner.message, inner.span),
        None => {
            let start = offset_of(text, error.span.start.line, error.span.start.col);
            let end = offset_of(text, error.span.end.line, error.span.end.col).max(start);
            (error.code.to_string(), Span::new(start, end - start))
        }
    };
    let span = widen_to_char(text, span);
    let mut help = syntax_help(&message);
    // ron's own wording here speaks to ron's API, not to the plan's author.
    let mut message = if message.contains("recursion limit") {
        "values are nested more than 64 levels deep".to_owned()
    } else {
        plain_type_names(&message)
    };
    // A value of the wrong shape where a field takes one of a few forms:
    // say which forms, not what the parser expected next.
    if let Some((field, forms)) = field_before(text, span.offset).and_then(|f| {
        FIELD_FORMS
            .iter()
            .find(|(name, _)| *name == f)
            .map(|(name, forms)| (*name, *forms))
    }) {
        if message.starts_with("Expected") || message.contains("Unexpected") {
            let found = message
                .split_once("named `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(name, _)| format!(", not `{name}`"))
                .unwrap_or_default();
            message = format!("`{field}` takes one of: {forms}{found}");
            help = format!(
                "write `{field}: ` followed by one of those forms; see docs/plan-format.md"
            );
        }
    }
    Err(Box::new(
        Diagnostic::new(
            Rule::Syntax,
            format!("the plan is not valid RON for a plan: {message}"),
        )
        .label(span, "here")
        .help(help),
    ))
}

/// Makes an empty span cover one character, so it can be pointed at.
fn widen_to_char(text: &str, span: Span) -> Span {
    if span.len > 0 {
        return span;
    }
    let len = text
        .get(span.offset..)
        .and_then(|r| r.chars().next())
        .map_or(0, char::len_utf8);
    Span::new(span.offset, len)
}

/// The forms the fields that take one of a few shapes accept, for syntax
/// errors at their value.
const FIELD_FORMS: &[(&str, &str)] = &[
    ("action", "Shell(on, run, revert), Service(on, unit, state), Rsync(from, to, path), DnsTtl(record, ttl), DnsRecord(record, addresses), WaitTtl(record), Wait(\"5m\"), WaitUntil(on, run, every, within), Manual(prompt, revert), Verify"),
    ("check", "Run(\"command\"), RunOn(host, run), Tcp(host, port), Http(url, status), Resolves(record, to), Until(run, every, within)"),
    ("revert", "Run(\"command\"), Manual(\"what to do\"), Irreversible(\"why\"), Nothing(\"why\")"),
    ("duration", "Fixed(\"5m\"), Uniform(min, max), Pert(min, likely, max), LogNormal(p50, p95)"),
    ("downtime", "Begins, Ends"),
    ("state", "Running, Stopped"),
    ("key", "TsigFile(\"/path\"), TsigEnv(\"VARIABLE\")"),
];

/// The name of the field whose value starts at `offset`, if the text just
/// before it is `name:`.
fn field_before(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?.trim_end();
    let before = before.strip_suffix(':')?.trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &before[start..];
    (!name.is_empty()).then_some(name)
}

/// serde's messages name our internal types (`RawServiceState`): say what
/// the plan calls them instead.
fn plain_type_names(message: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("enum `RawServiceState`", "`state`"),
        ("enum `RawAction`", "`action`"),
        ("enum `RawCheck`", "`check`"),
        ("enum `RawRevert`", "`revert`"),
        ("enum `RawDuration`", "`duration`"),
        ("enum `RawMarker`", "`downtime`"),
        ("enum `RawDns`", "`dns`"),
        ("enum `RawTsig`", "`key`"),
        ("enum `RawEntry`", "a phase's `steps`"),
        ("enum `RawDone`", "`done`"),
        ("enum `RawPort`", "`port`"),
    ];
    let mut out = message.to_owned();
    for (internal, plain) in NAMES {
        out = out.replace(internal, plain);
    }
    // Anything left that still names an internal type: drop the `Raw`.
    out.replace("`Raw", "`")
}

fn syntax_help(message: &str) -> String {
    if message.contains("recursion limit") {
        "values nest far deeper than any plan needs; look for unbalanced brackets".into()
    } else if message.contains("Unexpected end of RON")
        || message.contains("Expected") && message.contains("end")
    {
        "the file ends early or a bracket is not closed".into()
    } else if message.contains("Unexpected field")
        || message.contains("Unexpected missing field")
        || message.contains("field")
    {
        "see docs/plan-format.md for the fields each part takes".into()
    } else {
        "see docs/plan-format.md for the plan format".into()
    }
}

/// Phase two: checks values and resolves names, collecting every problem.
struct Validator<'a> {
    source: &'a Source,
    settings: &'a Settings,
    diagnostics: &'a mut Diagnostics,
    plan_vars: Vec<Variable>,
    host_vars: HashMap<String, Vec<Variable>>,
    hosts: HashSet<String>,
    records: HashSet<String>,
    has_dns: bool,
    hash: u64,
}

fn span_of<T>(s: &Spanned<T>) -> Span {
    s.span
}

impl<'a> Validator<'a> {
    fn new(source: &'a Source, settings: &'a Settings, diagnostics: &'a mut Diagnostics) -> Self {
        Validator {
            source,
            settings,
            diagnostics,
            plan_vars: Vec::new(),
            host_vars: HashMap::new(),
            hosts: HashSet::new(),
            records: HashSet::new(),
            has_dns: false,
            hash: 0,
        }
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn invalid(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        let d = Diagnostic::new(Rule::InvalidValue, message)
            .label(span, "")
            .help(help);
        self.report(d);
    }

    /// Reports a name written twice, labelled where it is written again and,
    /// when known, where it was first; `verb` says how ("declared", "used").
    fn duplicate(
        &mut self,
        message: String,
        verb: &str,
        again: Span,
        first: Option<Span>,
        help: &str,
    ) {
        let mut d =
            Diagnostic::new(Rule::DuplicateId, message).label(again, format!("{verb} again here"));
        if let Some(first) = first {
            d = d.label(first, format!("first {verb} here"));
        }
        self.report(d.help(help));
    }

    fn plan(mut self, raw: RawPlan) -> Plan {
        self.plan_vars = self.variables(&raw.vars, "plan");
        let pending = self.hosts(raw.hosts);
        self.apply_settings();
        // Addresses, users and keys may differ between staging and production.
        let hosts: Vec<Host> = pending.into_iter().map(|p| self.resolve_host(p)).collect();
        let known_hosts = raw
            .known_hosts
            .map(|k| PathBuf::from(self.expand(&k, None, false)));
        let dns = raw.dns.map(|d| self.dns(d));
        let notify = self.notify(raw.notify);
        let lock = raw.lock.and_then(|l| self.lock(&l));
        let window = self.window(raw.window);
        let phases = self.phases(raw.phases);
        let failure_rate = raw
            .failure_rate
            .and_then(|r| self.probability(&r))
            .unwrap_or(DEFAULT_FAILURE_RATE);
        let mut hosts = hosts;
        for host in &mut hosts {
            host.vars = self.host_vars.remove(&host.name).unwrap_or_default();
        }
        hosts.push(Host {
            name: Host::LOCAL.into(),
            address: "localhost".into(),
            user: None,
            port: None,
            identity: None,
            vars: Vec::new(),
            env: Vec::new(),
            span: Span::default(),
        });
        Plan {
            name: raw.name.value,
            service: raw.service.value,
            description: raw.description.map(|d| d.value),
            window,
            vars: self.plan_vars,
            hosts,
            dns,
            phases,
            source: self.source.clone(),
            hash: self.hash,
            failure_rate,
            known_hosts,
            notify,
            lock,
        }
    }

    fn duration(&mut self, text: &Spanned<String>) -> Duration {
        match parse_duration(&text.value) {
            Ok(d) if d > names::MAX_DURATION => {
                self.invalid(
                    text.span,
                    format!("`{}` is longer than a year", text.value.trim()),
                    "no step, wait, deadline or TTL of a cutover lasts that long: is it a typo?",
                );
                Duration::ZERO
            }
            Ok(d) => d,
            Err(message) => {
                self.invalid(
                    text.span,
                    message,
                    "units: s, m, h, d (e.g. \"90s\", \"1h30m\")",
                );
                Duration::ZERO
            }
        }
    }

    /// A size in bytes (`"2 GB"`, `"500MiB"`), or a diagnostic.
    fn size(&mut self, text: &Spanned<String>) -> Option<u64> {
        match crate::duration::parse_size(&text.value) {
            Ok(bytes) => Some(bytes),
            Err(message) => {
                self.invalid(
                    text.span,
                    message,
                    "a size in bytes with a unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. \"40 GB\"",
                );
                None
            }
        }
    }

    fn probability(&mut self, rate: &Spanned<f64>) -> Option<f64> {
        if (0.0..=1.0).contains(&rate.value) {
            Some(rate.value)
        } else {
            self.invalid(
                rate.span,
                format!("`{}` is not a probability", rate.value),
                "a failure rate is the chance that one attempt fails: between 0.0 and 1.0, e.g. 0.02",
            );
            None
        }
    }

    fn check_id(&mut self, id: &Spanned<String>, what: &str) {
        let ok = !id.value.is_empty()
            && id
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            self.invalid(
                id.span,
                format!("`{}` is not a valid {what} name", id.value),
                "names use letters, digits, `-`, `_` and `.`",
            );
        }
    }
}

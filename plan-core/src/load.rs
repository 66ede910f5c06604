//! Loading a plan: RON text -> raw structs with spans -> validated [`Plan`].
//!
//! Loading never stops at the first problem: it keeps going with a stand-in
//! value so that one run reports everything, then runs the verifier on the
//! result. A [`Plan`] is handed out only when there is no error.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::{Diagnostic, Diagnostics, Rule, Source};
use crate::duration::{parse_anchor, parse_duration};
use crate::hash::plan_hash;
use crate::plan::*;
use crate::raw::*;
use crate::span::{offset_of, ron_options, ParseScope, Span, Spanned, SpannedMap};
use crate::suggest::closest;
use crate::template::{self, TemplateError};
use crate::verify;

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
}

/// The name of the built-in variable holding a run's fresh directory.
pub const RUN_DIR: &str = "run_dir";

/// What `{{run_dir}}` shows before a run has created its directory.
pub const RUN_DIR_UNSET: &str = "/tmp/cutover-run-<created when the run starts>";

/// The prefix of environment variables that override plan variables.
pub const ENV_PREFIX: &str = "CUTOVER_VAR_";

impl Settings {
    /// Reads `CUTOVER_VAR_*` from this process's environment.
    pub fn from_env() -> Self {
        Self::default().with_env(std::env::vars())
    }

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
        let size = metadata.len().max(bytes.len() as u64);
        let diagnostic = Diagnostic::new(
            Rule::Unreadable,
            format!(
                "the plan file is {:.1} MiB; plans are limited to {} MiB",
                size as f64 / (1024.0 * 1024.0),
                MAX_PLAN_BYTES / (1024 * 1024)
            ),
        )
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
            verify::verify(&plan, &mut diagnostics);
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
    let help = syntax_help(&message);
    // ron's own wording here speaks to ron's API, not to the plan's author.
    let message = if message.contains("recursion limit") {
        "values are nested more than 64 levels deep".to_owned()
    } else {
        message
    };
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
        }
    }

    fn variables(&mut self, raw: &SpannedMap<Spanned<String>>, owner: &str) -> Vec<Variable> {
        let mut vars: Vec<Variable> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for (name, value) in &raw.0 {
            if !template::is_name(&name.value) {
                self.invalid(
                    name.span,
                    format!("`{}` is not a variable name", name.value),
                    "variable names are letters, digits and `_`, not starting with a digit",
                );
            }
            if let Some(first) = seen.insert(&name.value, name.span) {
                self.report(
                    Diagnostic::new(
                        Rule::DuplicateId,
                        format!("variable `{}` is defined twice in the {owner}", name.value),
                    )
                    .label(name.span, "defined again here")
                    .label(first, "first defined here")
                    .help("remove one of them"),
                );
                continue;
            }
            vars.push(Variable {
                name: name.value.clone(),
                value: value.value.clone(),
                origin: VarOrigin::Plan,
            });
        }
        vars
    }

    fn hosts(&mut self, raw: SpannedMap<RawHost>) -> Vec<PendingHost> {
        let mut hosts: Vec<PendingHost> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (name, host) in raw.0 {
            self.check_id(&name, "host");
            if name.value == Host::LOCAL {
                self.invalid(
                    name.span,
                    "`local` is built in and cannot be declared",
                    "`local` always means this machine; give the host another name",
                );
                continue;
            }
            if let Some(first) = seen.insert(name.value.clone(), name.span) {
                self.report(
                    Diagnostic::new(
                        Rule::DuplicateId,
                        format!("host `{}` is declared twice", name.value),
                    )
                    .label(name.span, "declared again here")
                    .label(first, "first declared here")
                    .help("host names must be unique; rename or remove one"),
                );
                continue;
            }
            let vars = self.variables(&host.vars, &format!("host `{}`", name.value));
            self.host_vars.insert(name.value.clone(), vars);
            hosts.push(PendingHost {
                host: Host {
                    name: name.value.clone(),
                    address: String::new(),
                    user: None,
                    port: None,
                    identity: None,
                    vars: Vec::new(),
                    span: name.span,
                },
                address: host.address,
                user: host.user,
                port: host.port,
                identity: host.identity,
            });
            self.hosts.insert(name.value);
        }
        self.hosts.insert(Host::LOCAL.into());
        hosts
    }

    /// Applies the environment, then `--set`, to plan and host variables.
    fn apply_settings(&mut self) {
        let sources = [
            (&self.settings.env, VarOrigin::Environment),
            (&self.settings.set, VarOrigin::CommandLine),
        ];
        let mut unknown = Vec::new();
        for (pairs, origin) in sources {
            for (key, value) in pairs {
                // Variable names have no `.`; host names may.
                let target = match key.rsplit_once('.') {
                    Some((host, name)) => self
                        .host_vars
                        .get_mut(host)
                        .and_then(|v| v.iter_mut().find(|v| v.name == name)),
                    None => self.plan_vars.iter_mut().find(|v| &v.name == key),
                };
                match target {
                    Some(var) => {
                        var.value = value.clone();
                        var.origin = origin;
                    }
                    // Unknown names in the environment may belong to another plan.
                    None if origin == VarOrigin::CommandLine => unknown.push(key.clone()),
                    None => {}
                }
            }
        }
        // The hash ties a journal to this plan and these settings, but not to
        // the run's directory, which differs from run to run.
        let mut host_vars: Vec<(&String, &Vec<Variable>)> = self.host_vars.iter().collect();
        host_vars.sort_by_key(|(name, _)| name.as_str());
        let all_vars: Vec<&Variable> = self
            .plan_vars
            .iter()
            .chain(host_vars.into_iter().flat_map(|(_, v)| v))
            .collect();
        self.hash = plan_hash(self.source.text(), &all_vars);
        // Variable values may name the run's directory.
        let run_dir = self.run_dir().to_owned();
        let placeholder = format!("{{{{{RUN_DIR}}}}}");
        for var in self
            .plan_vars
            .iter_mut()
            .chain(self.host_vars.values_mut().flatten())
        {
            if var.value.contains(&placeholder) {
                var.value = var.value.replace(&placeholder, &run_dir);
            }
        }
        for key in unknown {
            let known: Vec<String> = self
                .plan_vars
                .iter()
                .map(|v| v.name.clone())
                .chain(
                    self.host_vars
                        .iter()
                        .flat_map(|(h, vs)| vs.iter().map(move |v| format!("{h}.{}", v.name))),
                )
                .collect();
            let help = if known.is_empty() {
                "this plan defines no variables; add them under `vars: { ... }`".to_owned()
            } else {
                format!("the plan defines: {}", known.join(", "))
            };
            self.report(
                Diagnostic::new(
                    Rule::UnknownSetting,
                    format!("`--set {key}=...` names a variable the plan does not define"),
                )
                .help(help),
            );
        }
    }

    fn resolve_host(&mut self, pending: PendingHost) -> Host {
        let PendingHost {
            mut host,
            address,
            user,
            port,
            identity,
        } = pending;
        let scope = host.name.clone();
        host.address = self.expand(&address, Some(&scope), false);
        if host.address.trim().is_empty() {
            self.invalid(
                address.span,
                "a host address cannot be empty",
                "write a DNS name, an IP address or an ~/.ssh/config alias",
            );
        }
        host.user = user.map(|u| self.expand(&u, Some(&scope), false));
        host.port = port.and_then(|p| self.port(p, &scope));
        host.identity = identity.map(|i| PathBuf::from(self.expand(&i, Some(&scope), false)));
        host
    }

    /// A host's port, its variables expanded; `None` (and reported) unless
    /// it is a number from 1 to 65535.
    fn port(&mut self, port: Spanned<RawPort>, host: &str) -> Option<u16> {
        let before = self.diagnostics.len();
        let text = match port.value {
            RawPort::Number(n) => n.to_string(),
            RawPort::Text(text) => self.expand(
                &Spanned {
                    value: text,
                    span: port.span,
                },
                Some(host),
                false,
            ),
        };
        let number = text.trim().parse::<u16>().ok().filter(|&n| n != 0);
        // An unknown variable is reported already.
        if number.is_none() && self.diagnostics.len() == before {
            self.invalid(
                port.span,
                format!("`{text}` is not a port"),
                "a port is a number from 1 to 65535 (or a variable that holds one)",
            );
        }
        number
    }

    fn lookup_var(&self, host: Option<&str>, name: &str) -> Option<&str> {
        host.and_then(|h| self.host_vars.get(h))
            .and_then(|vars| vars.iter().find(|v| v.name == name))
            .or_else(|| self.plan_vars.iter().find(|v| v.name == name))
            .map(|v| v.value.as_str())
            .or_else(|| (name == RUN_DIR).then(|| self.run_dir()))
    }

    fn run_dir(&self) -> &str {
        self.settings.run_dir.as_deref().unwrap_or(RUN_DIR_UNSET)
    }

    /// Expands `{{name}}` in a spanned text; reports unknown variables at their place.
    fn expand(&mut self, text: &Spanned<String>, host: Option<&str>, shell: bool) -> String {
        let result = {
            let this = &*self;
            template::expand(&text.value, shell, |name| this.lookup_var(host, name))
        };
        match result {
            Ok(expanded) => expanded,
            Err(errors) => {
                let written = self.source.slice(text.span).to_owned();
                for error in errors {
                    match error {
                        TemplateError::Unknown(placeholder) => {
                            let span = written.find(&placeholder.written).map_or(text.span, |i| {
                                Span::new(text.span.offset + i, placeholder.written.len())
                            });
                            let scope = host.map_or("the plan".to_owned(), |h| {
                                format!("the plan or host `{h}`")
                            });
                            let mut known: Vec<&str> =
                                self.plan_vars.iter().map(|v| v.name.as_str()).collect();
                            if let Some(vs) = host.and_then(|h| self.host_vars.get(h)) {
                                known.extend(vs.iter().map(|v| v.name.as_str()));
                            }
                            let help = match closest(&placeholder.name, known.iter().copied()) {
                                Some(near) => format!(
                                    "did you mean `{{{{{near}}}}}`? Or define `{}` under `vars`",
                                    placeholder.name
                                ),
                                None => {
                                    format!("define `{}` under `vars` in {scope}", placeholder.name)
                                }
                            };
                            self.report(
                                Diagnostic::new(
                                    Rule::UnknownVariable,
                                    format!("variable `{}` is not defined", placeholder.name),
                                )
                                .label(span, "used here")
                                .help(help),
                            );
                        }
                        TemplateError::Malformed(message) => {
                            self.invalid(text.span, message, "variables are written `{{name}}`");
                        }
                    }
                }
                text.value.clone()
            }
        }
    }

    fn duration(&mut self, text: &Spanned<String>) -> Duration {
        match parse_duration(&text.value) {
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

    fn check_host(&mut self, host: &Spanned<String>) {
        if !self.hosts.contains(&host.value) {
            let help = match closest(&host.value, self.hosts.iter().map(String::as_str)) {
                Some(near) => {
                    format!("did you mean `{near}`? Hosts are declared under `hosts: {{ ... }}`")
                }
                None => "declare it under `hosts: { ... }`, or use `local` for this machine".into(),
            };
            self.report(
                Diagnostic::new(
                    Rule::UnknownHost,
                    format!("host `{}` is not declared", host.value),
                )
                .label(host.span, "unknown host")
                .help(help),
            );
        }
    }

    fn check_record(&mut self, record: &Spanned<String>) -> String {
        let name = fqdn(&record.value);
        if !self.has_dns {
            self.report(
                Diagnostic::new(Rule::NoDns, format!("record `{}` is used but the plan has no `dns` section", record.value))
                    .label(record.span, "needs a DNS server")
                    .help("add `dns: Rfc2136(server: ..., zone: ..., key: TsigFile(...), records: { ... })`"),
            );
        } else if !self.records.contains(&name) {
            let help = match closest(&name, self.records.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`? Records are declared under `dns: Rfc2136(records: {{ ... }})`"),
                None => "declare it under `records: { ... }` in the `dns` section, with its current TTL".into(),
            };
            self.report(
                Diagnostic::new(
                    Rule::UnknownRecord,
                    format!("record `{name}` is not declared"),
                )
                .label(record.span, "unknown record")
                .help(help),
            );
        }
        name
    }

    fn dns(&mut self, raw: Spanned<RawDns>) -> Dns {
        let RawDns::Rfc2136 {
            server,
            zone,
            key,
            records,
        } = raw.value;
        self.has_dns = true;
        let server_text = self.expand(&server, None, false);
        if let Err(message) = check_server(&server_text) {
            self.invalid(
                server.span,
                message,
                "write `host:port`, e.g. \"ns0.example.org:53\" or \"127.0.0.1:5353\"",
            );
        }
        let zone_name = fqdn(&zone.value);
        let key = match key.value {
            RawTsig::TsigFile(path) => {
                TsigKeySource::File(PathBuf::from(self.expand(&path, None, false)))
            }
            RawTsig::TsigEnv(var) => TsigKeySource::Env(var.value),
        };
        let mut out = Vec::new();
        for (name, record) in records.0 {
            let fq = fqdn(&name.value);
            if !in_zone(&fq, &zone_name) {
                self.report(
                    Diagnostic::new(
                        Rule::UnknownRecord,
                        format!("record `{fq}` is not in zone `{zone_name}`"),
                    )
                    .label(name.span, "outside the zone")
                    .label(zone.span, "the zone")
                    .help("RFC 2136 updates can only change names inside the zone"),
                );
            }
            if !self.records.insert(fq.clone()) {
                self.report(
                    Diagnostic::new(
                        Rule::DuplicateId,
                        format!("record `{fq}` is declared twice"),
                    )
                    .label(name.span, "declared again here")
                    .help("remove one of them"),
                );
            }
            let ttl = self.duration(&record.ttl);
            let addresses = record
                .addresses
                .iter()
                .filter_map(|a| self.address(a))
                .collect();
            out.push(Record {
                name: fq,
                ttl,
                addresses,
                span: name.span,
            });
        }
        Dns {
            server: server_text,
            zone: zone_name,
            key,
            records: out,
        }
    }

    fn address(&mut self, text: &Spanned<String>) -> Option<IpAddr> {
        let before = self.diagnostics.len();
        let expanded = self.expand(text, None, false);
        if self.diagnostics.len() > before {
            // The variable is already reported; its name is no address.
            return None;
        }
        match expanded.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.invalid(
                    text.span,
                    format!("`{expanded}` is not an IP address"),
                    "write an IPv4 or IPv6 address, e.g. \"208.80.154.61\"",
                );
                None
            }
        }
    }

    fn window(&mut self, raw: RawWindow) -> Window {
        let start = raw
            .start
            .and_then(|s| match s.value.parse::<jiff::Timestamp>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.invalid(
                        s.span,
                        format!("`{}` is not an RFC 3339 time: {e}", s.value),
                        "write e.g. \"2015-09-01T14:00:00Z\"",
                    );
                    None
                }
            });
        let announced = self.duration(&raw.announced);
        let deadline = raw.deadline.map(|d| (self.duration(&d), d.span));
        if let Some((deadline, span)) = deadline {
            if deadline < announced {
                self.invalid(
                    span,
                    "the window deadline is shorter than the announced window",
                    "a deadline at or past the announced length gives the announced time to finish",
                );
            }
        }
        Window {
            start,
            announced,
            deadline: deadline.map(|d| d.0),
            announced_span: raw.announced.span,
        }
    }

    fn phases(&mut self, raw: Spanned<Vec<RawPhase>>) -> Vec<Phase> {
        let mut phases = Vec::new();
        let mut phase_names: HashMap<String, Span> = HashMap::new();
        let mut step_ids: HashMap<String, (Span, usize)> = HashMap::new();
        let mut points: HashMap<String, Span> = HashMap::new();
        let mut last_anchor: Option<(i64, Span)> = None;
        let mut number = 0u32;
        // `after` is resolved once every id is known: (phase, entry, ids).
        let mut afters: Vec<PendingAfter> = Vec::new();
        for (phase_index, raw_phase) in raw.value.into_iter().enumerate() {
            self.check_id(&raw_phase.name, "phase");
            if let Some(first) =
                phase_names.insert(raw_phase.name.value.clone(), raw_phase.name.span)
            {
                self.report(
                    Diagnostic::new(
                        Rule::DuplicateId,
                        format!("phase `{}` is declared twice", raw_phase.name.value),
                    )
                    .label(raw_phase.name.span, "declared again here")
                    .label(first, "first declared here")
                    .help("phase names must be unique, they are used with `--phase`"),
                );
            }
            let at = raw_phase
                .at
                .as_ref()
                .and_then(|at| match parse_anchor(&at.value) {
                    Ok(secs) => Some((secs, at.span)),
                    Err(message) => {
                        self.invalid(
                            at.span,
                            message,
                            "phases are anchored relative to the window start",
                        );
                        None
                    }
                });
            match (at, last_anchor) {
                (Some((secs, span)), Some((previous, previous_span))) if secs < previous => self
                    .report(
                        Diagnostic::new(Rule::PhaseOrder, "phases are out of time order")
                            .label(span, "this phase starts earlier")
                            .label(previous_span, "than this earlier phase")
                            .help("list phases in the order they run"),
                    ),
                (None, Some((_, previous_span))) if raw_phase.at.is_none() => self.report(
                    Diagnostic::new(
                        Rule::PhaseOrder,
                        format!(
                            "phase `{}` has no `at` but follows a scheduled phase",
                            raw_phase.name.value
                        ),
                    )
                    .label(raw_phase.name.span, "unscheduled")
                    .label(previous_span, "scheduled before it")
                    .help("unscheduled (preparation) phases come first; give this one an `at`"),
                ),
                _ => {}
            }
            if at.is_some() {
                last_anchor = at;
            }
            let mut entries = Vec::new();
            for raw_entry in raw_phase.steps {
                match raw_entry {
                    RawEntry::RollbackPoint(name) => {
                        self.check_id(&name, "rollback point");
                        if name.value == crate::machine::START_POINT {
                            self.invalid(
                                name.span,
                                "`start` is the rollback point every run begins with; it cannot be declared",
                                "give this rollback point another name, e.g. \"before-release\"",
                            );
                        }
                        if let Some(first) = points.insert(name.value.clone(), name.span) {
                            self.report(
                                Diagnostic::new(Rule::DuplicateId, format!("rollback point `{}` is declared twice", name.value))
                                    .label(name.span, "declared again here")
                                    .label(first, "first declared here")
                                    .help("rollback point names must be unique: runs end in `RolledBack(name)`"),
                            );
                        }
                        entries.push(Entry::RollbackPoint(Marker {
                            text: name.value,
                            span: name.span,
                        }));
                    }
                    RawEntry::PointOfNoReturn { reason } => {
                        entries.push(Entry::PointOfNoReturn(Marker {
                            text: reason.value,
                            span: reason.span,
                        }));
                    }
                    RawEntry::Step {
                        id,
                        title,
                        number: explicit,
                        ticket,
                        done,
                        action,
                        check,
                        duration,
                        deadline,
                        retries,
                        after,
                        downtime,
                        settle,
                        notice,
                        failure_rate,
                    } => {
                        self.check_id(&id, "step");
                        let failure_rate = failure_rate.and_then(|r| self.probability(&r));
                        if let Some((first, _)) =
                            step_ids.insert(id.value.clone(), (id.span, phase_index))
                        {
                            self.report(
                                Diagnostic::new(
                                    Rule::DuplicateId,
                                    format!("step id `{}` is used twice", id.value),
                                )
                                .label(id.span, "used again here")
                                .label(first, "first used here")
                                .help("step ids must be unique across the whole plan; rename one"),
                            );
                        }
                        number = match &explicit {
                            Some(n) => n.value,
                            None => number.checked_add(1).unwrap_or_else(|| {
                                self.invalid(
                                    id.span,
                                    "row numbers run past 4294967295",
                                    "give this step a smaller `number`",
                                );
                                number
                            }),
                        };
                        let done = match done.map(|d| d.value) {
                            Some(RawDone::Yes) => Done::Yes,
                            Some(RawDone::InProgress) => Done::InProgress,
                            Some(RawDone::No) | None => Done::No,
                        };
                        let action_span = action.span;
                        let (action, revert_span) = self.action(action, done);
                        let check_span = check.as_ref().map(span_of);
                        let host = action.host().map(str::to_owned);
                        let check = check.and_then(|c| self.check(c, host.as_deref()));
                        if matches!(action, Action::Verify)
                            && check.is_none()
                            && check_span.is_none()
                        {
                            self.report(
                                Diagnostic::new(Rule::VerifyWithoutCheck, format!("step `{}` is a `Verify` step without a check", id.value))
                                    .label(action_span, "nothing to verify")
                                    .help("add `check: Run(\"...\")`, `Http(url: ...)`, `Tcp(host: ..., port: ...)` or `Resolves(record: ..., to: ...)`"),
                            );
                        }
                        let duration_span = duration.as_ref().map(span_of);
                        let duration = match duration {
                            Some(d) => self.duration_model(d),
                            None => action.default_duration(),
                        };
                        let deadline_span = deadline.as_ref().map(span_of);
                        let deadline = deadline.map(|d| self.duration(&d));
                        let downtime_span = downtime.as_ref().map(span_of);
                        let downtime = downtime.map(|d| match d.value {
                            RawMarker::Begins => Downtime::Begins,
                            RawMarker::Ends => Downtime::Ends,
                        });
                        let settle = settle.map(|s| self.duration(&s));
                        let notice = notice.map(|n| self.expand(&n, None, false));
                        afters.push((phase_index, entries.len(), after.map(|a| a.value)));
                        entries.push(Entry::Step(Step {
                            title: title.map_or_else(|| id.value.clone(), |t| t.value),
                            id: id.value,
                            number,
                            tickets: ticket.map(|t| t.value.0).unwrap_or_default(),
                            done,
                            action,
                            check,
                            duration,
                            deadline,
                            retries: retries.map_or(0, |r| r.value),
                            after: Vec::new(),
                            after_explicit: false,
                            downtime,
                            settle,
                            notice,
                            failure_rate,
                            spans: StepSpans {
                                id: id.span,
                                action: action_span,
                                revert: revert_span,
                                check: check_span,
                                duration: duration_span,
                                deadline: deadline_span,
                                downtime: downtime_span,
                                after: Vec::new(),
                            },
                        }));
                    }
                }
            }
            phases.push(Phase {
                name: raw_phase.name.value,
                at: at.map(|a| a.0),
                entries,
                span: raw_phase.name.span,
            });
        }
        self.resolve_after(&mut phases, afters, &step_ids);
        phases
    }

    fn resolve_after(
        &mut self,
        phases: &mut [Phase],
        afters: Vec<PendingAfter>,
        ids: &HashMap<String, (Span, usize)>,
    ) {
        let mut previous: Option<(usize, String)> = None;
        for (phase_index, entry_index, after) in afters {
            if previous.as_ref().is_some_and(|(p, _)| *p != phase_index) {
                previous = None;
            }
            let Entry::Step(step) = &mut phases[phase_index].entries[entry_index] else {
                continue;
            };
            match after {
                None => {
                    step.after = previous.iter().map(|(_, id)| id.clone()).collect();
                }
                Some(list) => {
                    step.after_explicit = true;
                    for dep in list {
                        match ids.get(&dep.value) {
                            None => {
                                let help = match closest(&dep.value, ids.keys().map(String::as_str))
                                {
                                    Some(near) => format!("did you mean `{near}`?"),
                                    None => {
                                        "`after` lists ids of steps in this or an earlier phase"
                                            .into()
                                    }
                                };
                                self.diagnostics.push(
                                    Diagnostic::new(
                                        Rule::UnknownStep,
                                        format!(
                                            "step `{}` runs after `{}`, which does not exist",
                                            step.id, dep.value
                                        ),
                                    )
                                    .label(dep.span, "no step has this id")
                                    .help(help),
                                );
                            }
                            Some((dep_span, dep_phase)) if *dep_phase > phase_index => {
                                self.diagnostics.push(
                                    Diagnostic::new(Rule::AfterLaterPhase, format!("step `{}` runs after `{}`, which is in a later phase", step.id, dep.value))
                                        .label(dep.span, "in a later phase")
                                        .label(*dep_span, "defined here")
                                        .help("a step can only wait for steps of its own or an earlier phase"),
                                );
                            }
                            Some((_, dep_phase)) => {
                                // Steps of earlier phases are done by then; only same-phase edges order the run.
                                if *dep_phase == phase_index {
                                    step.after.push(dep.value.clone());
                                    step.spans.after.push(dep.span);
                                }
                            }
                        }
                    }
                }
            }
            previous = Some((phase_index, step.id.clone()));
        }
    }

    /// Validates an action; returns it and the span of its stated revert.
    fn action(&mut self, raw: Spanned<RawAction>, done: Done) -> (Action, Option<Span>) {
        let span = raw.span;
        match raw.value {
            RawAction::Shell { on, run, revert } => {
                self.check_host(&on);
                let command = self.expand(&run, Some(&on.value), true);
                let revert_span = revert.as_ref().map(span_of);
                let revert = self.revert(revert, Some(&on.value), span, "Shell", done);
                (
                    Action::Shell {
                        host: on.value,
                        run: command,
                        revert,
                    },
                    revert_span,
                )
            }
            RawAction::Manual { prompt, revert } => {
                let prompt_text = self.expand(&prompt, None, false);
                let revert_span = revert.as_ref().map(span_of);
                let revert = self.revert(revert, None, span, "Manual", done);
                (
                    Action::Manual {
                        prompt: prompt_text,
                        revert,
                    },
                    revert_span,
                )
            }
            RawAction::Service {
                on,
                unit,
                state,
                start,
                stop,
                status,
            } => {
                self.check_host(&on);
                let control = match (start, stop, status) {
                    (None, None, None) => ServiceControl::Systemd,
                    (Some(start), Some(stop), Some(status)) => ServiceControl::Commands {
                        start: self.expand(&start, Some(&on.value), true),
                        stop: self.expand(&stop, Some(&on.value), true),
                        status: self.expand(&status, Some(&on.value), true),
                    },
                    _ => {
                        self.invalid(
                            span,
                            "a service with its own commands needs all three: `start`, `stop` and `status`",
                            "give all three, or none to use systemd (`systemctl start|stop|is-active`)",
                        );
                        ServiceControl::Systemd
                    }
                };
                let unit_name = self.expand(&unit, Some(&on.value), false);
                if unit_name.trim().is_empty() || unit_name.contains(char::is_whitespace) {
                    self.invalid(
                        unit.span,
                        format!("`{unit_name}` is not a unit name"),
                        "write a systemd unit, e.g. \"mailman\" or \"exim4.service\"",
                    );
                }
                let state = match state.value {
                    RawServiceState::Running => ServiceState::Running,
                    RawServiceState::Stopped => ServiceState::Stopped,
                };
                (
                    Action::Service {
                        host: on.value,
                        unit: unit_name,
                        state,
                        control,
                    },
                    None,
                )
            }
            RawAction::Rsync {
                from,
                to,
                path,
                dest,
                delete,
                args,
            } => {
                self.check_host(&from);
                self.check_host(&to);
                if from.value == to.value {
                    self.invalid(
                        to.span,
                        "rsync from a host to itself",
                        "`from` and `to` must be different hosts",
                    );
                }
                let path_text = self.expand(&path, Some(&from.value), false);
                let dest_written = dest
                    .as_ref()
                    .map(|d| (self.expand(d, Some(&to.value), false), d.span));
                let mut paths = vec![(path_text.clone(), path.span)];
                paths.extend(dest_written.clone());
                for (p, span) in paths {
                    if !p.starts_with('/') {
                        self.invalid(
                            span,
                            format!("`{p}` is not an absolute path"),
                            "rsync paths must be absolute, e.g. \"/var/lib/mailman/\"",
                        );
                    }
                }
                let dest_text = dest_written.map_or_else(|| path_text.clone(), |(d, _)| d);
                let args = args
                    .iter()
                    .map(|a| self.expand(a, Some(&from.value), false))
                    .collect();
                (
                    Action::Rsync {
                        from: from.value,
                        to: to.value,
                        path: path_text,
                        dest: dest_text,
                        delete: delete.is_some_and(|d| d.value),
                        args,
                    },
                    None,
                )
            }
            RawAction::DnsTtl { record, ttl } => {
                let name = self.check_record(&record);
                let ttl = self.duration(&ttl);
                (Action::DnsTtl { record: name, ttl }, None)
            }
            RawAction::DnsRecord { record, addresses } => {
                let name = self.check_record(&record);
                if addresses.value.is_empty() {
                    self.invalid(
                        addresses.span,
                        "a record switch needs at least one address",
                        "list the new addresses, e.g. [\"208.80.154.61\"]",
                    );
                }
                let addresses = addresses
                    .value
                    .iter()
                    .filter_map(|a| self.address(a))
                    .collect();
                (
                    Action::DnsRecord {
                        record: name,
                        addresses,
                    },
                    None,
                )
            }
            RawAction::WaitTtl { record } => {
                let name = self.check_record(&record);
                (Action::WaitTtl { record: name }, None)
            }
            RawAction::Wait(d) => (Action::Wait(self.duration(&d)), None),
            RawAction::Verify => (Action::Verify, None),
        }
    }

    fn revert(
        &mut self,
        raw: Option<Spanned<RawRevert>>,
        host: Option<&str>,
        action_span: Span,
        kind: &str,
        done: Done,
    ) -> Revert {
        let Some(raw) = raw else {
            if done != Done::Yes {
                self.report(
                    Diagnostic::new(Rule::MissingRevert, format!("this `{kind}` step has no revert"))
                        .label(action_span, "what undoes this on rollback?")
                        .help(if host.is_some() {
                            "add `revert: Run(\"...\")`, or `revert: Irreversible(\"why\")` behind a `PointOfNoReturn`, or `revert: Nothing(\"why nothing needs undoing\")`"
                        } else {
                            "add `revert: Manual(\"what to do\")`, or `revert: Irreversible(\"why\")` behind a `PointOfNoReturn`, or `revert: Nothing(\"why nothing needs undoing\")`"
                        }),
                );
            }
            return Revert::Nothing(String::new());
        };
        match raw.value {
            RawRevert::Run(command) => match host {
                Some(h) => Revert::Run(self.expand(&command, Some(h), true)),
                None => {
                    self.report(
                        Diagnostic::new(Rule::IncompatibleRevert, format!("a `{kind}` step has no host to run a revert on"))
                            .label(raw.span, "runs where?")
                            .help("use `Manual(\"what the operator does\")`, or make it a `Shell` step with `on:`"),
                    );
                    Revert::Manual(command.value)
                }
            },
            RawRevert::Manual(text) => Revert::Manual(self.expand(&text, host, false)),
            RawRevert::Irreversible(reason) => Revert::Irreversible(reason.value),
            RawRevert::Nothing(reason) => {
                if reason.value.trim().is_empty() {
                    self.invalid(
                        reason.span,
                        "say why there is nothing to undo",
                        "e.g. `Nothing(\"read-only: only looks at the queue\")`",
                    );
                }
                Revert::Nothing(reason.value)
            }
        }
    }

    fn check(&mut self, raw: Spanned<RawCheck>, step_host: Option<&str>) -> Option<Check> {
        match raw.value {
            RawCheck::Run(command) => match step_host {
                Some(host) => Some(Check::Run {
                    host: host.to_owned(),
                    command: self.expand(&command, Some(host), true),
                }),
                None => {
                    self.report(
                        Diagnostic::new(
                            Rule::IncompatibleRevert,
                            "this step has no host to run its check on",
                        )
                        .label(raw.span, "runs where?")
                        .help("write `RunOn(host: \"...\", run: \"...\")`"),
                    );
                    None
                }
            },
            RawCheck::RunOn { host, run } => {
                self.check_host(&host);
                let command = self.expand(&run, Some(&host.value), true);
                Some(Check::Run {
                    host: host.value,
                    command,
                })
            }
            RawCheck::Tcp { host, port } => {
                self.check_host(&host);
                Some(Check::Tcp {
                    host: host.value,
                    port: port.value,
                })
            }
            RawCheck::Http { url, status } => {
                let url_text = self.expand(&url, None, false);
                if !(url_text.starts_with("http://") || url_text.starts_with("https://")) {
                    self.invalid(
                        url.span,
                        format!("`{url_text}` is not an http(s) URL"),
                        "write e.g. \"https://lists.wikimedia.org/\"",
                    );
                }
                let status = status.map_or(200, |s| s.value);
                Some(Check::Http {
                    url: url_text,
                    status,
                })
            }
            RawCheck::Resolves { record, to } => {
                let name = self.check_record(&record);
                let address = self.address(&to)?;
                Some(Check::Resolves {
                    record: name,
                    to: address,
                })
            }
        }
    }

    fn duration_model(&mut self, raw: Spanned<RawDuration>) -> DurationModel {
        let span = raw.span;
        let model = match raw.value {
            RawDuration::Fixed(d) => DurationModel::Fixed(self.duration(&d)),
            RawDuration::Uniform { min, max } => DurationModel::Uniform {
                min: self.duration(&min),
                max: self.duration(&max),
            },
            RawDuration::Pert { min, likely, max } => DurationModel::Pert {
                min: self.duration(&min),
                likely: self.duration(&likely),
                max: self.duration(&max),
            },
            RawDuration::LogNormal { p50, p95 } => DurationModel::LogNormal {
                p50: self.duration(&p50),
                p95: self.duration(&p95),
            },
        };
        let ordered = match model {
            DurationModel::Fixed(_) => true,
            DurationModel::Uniform { min, max } => min <= max,
            DurationModel::Pert { min, likely, max } => {
                min <= likely && likely <= max && min < max || min == max && likely == min
            }
            DurationModel::LogNormal { p50, p95 } => !p50.is_zero() && p50 < p95,
        };
        if !ordered {
            self.invalid(
                span,
                "the duration's figures are out of order",
                "Uniform needs min <= max, Pert min <= likely <= max, LogNormal 0 < p50 < p95",
            );
        }
        model
    }
}

/// A host whose address, user and key wait for the variables in force.
struct PendingHost {
    host: Host,
    address: Spanned<String>,
    user: Option<Spanned<String>>,
    port: Option<Spanned<RawPort>>,
    identity: Option<Spanned<String>>,
}

/// A step's `after` as written, resolved once every id is known:
/// (phase index, entry index, the ids or `None` for "the previous step").
type PendingAfter = (usize, usize, Option<Vec<Spanned<String>>>);

fn check_server(server: &str) -> Result<(), String> {
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, Some(p)),
        _ => (server, None),
    };
    if host.trim().is_empty() {
        return Err("the DNS server is empty".into());
    }
    if let Some(port) = port {
        port.parse::<u16>()
            .map_err(|_| format!("`{port}` is not a port"))?;
    }
    Ok(())
}

/// Lowercases a name and makes it fully qualified.
pub(crate) fn fqdn(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}")) || zone == "."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified() {
        assert_eq!(fqdn("Lists.Wikimedia.org"), "lists.wikimedia.org.");
        assert!(in_zone("lists.wikimedia.org.", "wikimedia.org."));
        assert!(!in_zone("lists.wikimedia.org.", "media.org."));
        assert!(!in_zone("xwikimedia.org.", "wikimedia.org."));
    }

    #[test]
    fn servers_need_a_host_and_a_port_that_is_a_port() {
        assert!(check_server("ns0.wikimedia.org:53").is_ok());
        assert!(check_server("127.0.0.1").is_ok());
        assert!(check_server("[::1]:53").is_ok());
        assert!(check_server("ns0:port").is_err());
        assert!(check_server("").is_err());
    }
}

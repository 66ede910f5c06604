//! Names in scope: variables, hosts, the settings that override them, and `{{name}}` expansion.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Validator, RUN_DIR, RUN_DIR_UNSET};
use crate::diagnostic::{Diagnostic, Rule};
use crate::hash::plan_hash;
use crate::plan::*;
use crate::raw::*;
use crate::span::{Span, Spanned, SpannedMap};
use crate::suggest::{closest, did_you_mean};
use crate::template::{self, TemplateError};

/// A variable by scope (`None`: the plan's) and name.
type VarKey = (Option<String>, String);

/// Every variable's value as written, and where.
type VarValues = HashMap<VarKey, (String, Option<Span>)>;

impl Validator<'_> {
    pub(super) fn variables(
        &mut self,
        raw: &SpannedMap<Spanned<String>>,
        owner: &str,
    ) -> Vec<Variable> {
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
                self.duplicate(
                    format!("variable `{}` is defined twice in the {owner}", name.value),
                    "defined",
                    name.span,
                    Some(first),
                    "remove one of them",
                );
                continue;
            }
            vars.push(Variable {
                name: name.value.clone(),
                value: value.value.clone(),
                origin: VarOrigin::Plan,
                span: Some(value.span),
            });
        }
        vars
    }

    pub(super) fn hosts(&mut self, raw: SpannedMap<RawHost>) -> Vec<PendingHost> {
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
                self.duplicate(
                    format!("host `{}` is declared twice", name.value),
                    "declared",
                    name.span,
                    Some(first),
                    "host names must be unique; rename or remove one",
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
                    env: Vec::new(),
                    span: name.span,
                },
                env: host.env,
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
    pub(super) fn apply_settings(&mut self) {
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
                        var.span = None;
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
        // Values may name other variables (and the run's directory).
        self.expand_variable_values();
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

    /// Expands `{{name}}` inside variable values, once the settings are in
    /// force, so `"pg_dir": "{{lab_dir}}/pg"` follows `--set lab_dir=...`.
    /// A plan variable's value sees the plan's variables; a host variable's
    /// sees its host's, then the plan's (as in commands). A cycle is an
    /// error naming it; a name that never expands is a warning, and the
    /// value keeps it as written.
    fn expand_variable_values(&mut self) {
        let mut values: VarValues = HashMap::new();
        for var in &self.plan_vars {
            values.insert((None, var.name.clone()), (var.value.clone(), var.span));
        }
        for (host, vars) in &self.host_vars {
            for var in vars {
                values.insert(
                    (Some(host.clone()), var.name.clone()),
                    (var.value.clone(), var.span),
                );
            }
        }
        let run_dir = self.run_dir().to_owned();
        // Which variable a name in the value of `key` refers to.
        let target = |key: &VarKey, name: &str| -> Option<VarKey> {
            let own = (key.0.clone(), name.to_owned());
            if values.contains_key(&own) {
                return Some(own);
            }
            let plan = (None, name.to_owned());
            values.contains_key(&plan).then_some(plan)
        };
        let mut keys: Vec<VarKey> = values.keys().cloned().collect();
        keys.sort();
        let mut done: HashMap<VarKey, String> = HashMap::new();
        let mut reported_cycles: Vec<Vec<VarKey>> = Vec::new();
        let mut never: Vec<(VarKey, String, Option<String>)> = Vec::new();
        for start in &keys {
            // Depth first, children before parents; the stack holds the path.
            let mut stack: Vec<(VarKey, usize)> = vec![(start.clone(), 0)];
            while let Some((key, next)) = stack.last().cloned() {
                if done.contains_key(&key) {
                    stack.pop();
                    continue;
                }
                let value = &values[&key].0;
                let refs = match template::names(value) {
                    Ok(refs) => refs,
                    Err(TemplateError::Malformed(message)) => {
                        never.push((key.clone(), message, None));
                        done.insert(key.clone(), value.clone());
                        stack.pop();
                        continue;
                    }
                    Err(TemplateError::Unknown(_)) => Vec::new(),
                };
                let pending = refs[next..].iter().enumerate().find_map(|(i, name)| {
                    let t = target(&key, name)?;
                    (!done.contains_key(&t)).then_some((next + i, t))
                });
                match pending {
                    Some((at, child)) => {
                        if let Some(pos) = stack.iter().position(|(k, _)| *k == child) {
                            // A cycle: report it once, and take the values
                            // in it as written.
                            let cycle: Vec<VarKey> =
                                stack[pos..].iter().map(|(k, _)| k.clone()).collect();
                            let mut sorted = cycle.clone();
                            sorted.sort();
                            if !reported_cycles.contains(&sorted) {
                                reported_cycles.push(sorted);
                                self.report_cycle(&cycle, &values);
                            }
                            for (k, _) in stack.drain(pos..) {
                                let written = values[&k].0.clone();
                                done.insert(k, written);
                            }
                            continue;
                        }
                        if let Some(top) = stack.last_mut() {
                            top.1 = at + 1;
                        }
                        stack.push((child, 0));
                    }
                    None => {
                        let lookup = |name: &str| -> Option<&str> {
                            match target(&key, name) {
                                Some(t) => done.get(&t).map(String::as_str),
                                None => (name == RUN_DIR).then_some(run_dir.as_str()),
                            }
                        };
                        let expanded = match template::expand_known(value, lookup) {
                            Ok((expanded, kept)) => {
                                for p in kept {
                                    never.push((
                                        key.clone(),
                                        format!("`{}` names no variable", p.written),
                                        Some(p.name),
                                    ));
                                }
                                expanded
                            }
                            // Reported above when first read.
                            Err(_) => value.clone(),
                        };
                        done.insert(key, expanded);
                        stack.pop();
                    }
                }
            }
        }
        for (key, message, missing) in never {
            let (scope, name) = &key;
            let owner = scope
                .as_ref()
                .map_or("the plan".to_owned(), |h| format!("host `{h}`"));
            let known = values
                .keys()
                .filter(|(s, _)| s.is_none() || s == scope)
                .map(|(_, n)| n.as_str());
            let help = match missing.as_deref().and_then(|m| closest(m, known)) {
                Some(near) => did_you_mean(
                    &format!("{{{{{near}}}}}"),
                    "Or define the variable it names under `vars`",
                ),
                None => {
                    "define the variable it names under `vars`, or write a literal `{{` as `{{{{`"
                        .to_owned()
                }
            };
            let mut diagnostic = Diagnostic::new(
                Rule::NeverExpands,
                format!("the value of variable `{name}` ({owner}) keeps a placeholder that never expands: {message}"),
            )
            .help(help);
            if let Some(span) = values[&key].1 {
                diagnostic = diagnostic.label(span, "never expands");
            }
            self.report(diagnostic);
        }
        for var in self.plan_vars.iter_mut() {
            if let Some(value) = done.remove(&(None, var.name.clone())) {
                var.value = value;
            }
        }
        for (host, vars) in self.host_vars.iter_mut() {
            for var in vars.iter_mut() {
                if let Some(value) = done.remove(&(Some(host.clone()), var.name.clone())) {
                    var.value = value;
                }
            }
        }
    }

    /// Reports variables whose values refer to each other in a cycle.
    fn report_cycle(&mut self, cycle: &[VarKey], values: &VarValues) {
        let named = |(scope, name): &VarKey| match scope {
            Some(host) => format!("`{name}` (host `{host}`)"),
            None => format!("`{name}`"),
        };
        let mut path: Vec<String> = cycle.iter().map(named).collect();
        path.push(named(&cycle[0]));
        let mut diagnostic = Diagnostic::new(
            Rule::VariableCycle,
            format!("variables refer to each other in a cycle: {}", path.join(" -> ")),
        )
        .help("a variable's value may use other variables, but not itself through them; write one of the values out");
        for (i, key) in cycle.iter().enumerate() {
            if let Some(span) = values[key].1 {
                let next = &cycle[(i + 1) % cycle.len()];
                diagnostic = diagnostic.label(span, format!("{} uses {}", named(key), named(next)));
            }
        }
        self.report(diagnostic);
    }

    pub(super) fn resolve_host(&mut self, pending: PendingHost) -> Host {
        let PendingHost {
            mut host,
            env,
            address,
            user,
            port,
            identity,
        } = pending;
        let scope = host.name.clone();
        host.env = self.env(&env, Some(&scope));
        host.address = self.expand(&address, Some(&scope), false);
        if host.address.trim().is_empty() {
            self.invalid(
                address.span,
                "a host address cannot be empty",
                "write a DNS name, an IP address or an ~/.ssh/config alias",
            );
        } else if let Err(problem) = crate::load::names::host_address(&host.address) {
            // Refused now, not at preflight after earlier phases have run.
            self.invalid(
                address.span,
                format!("`{}` is not a host address: {problem}", host.address),
                "write a DNS name (e.g. \"fermium.eqiad.wmnet\"), an IP address or an \
                 ~/.ssh/config alias",
            );
        }
        host.user = user.map(|u| {
            let name = self.expand(&u, Some(&scope), false);
            // It goes on command lines (`ssh -l`, rsync's `user@host:`): a
            // leading `-` would be read as an option there.
            let portable = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if name.is_empty() || name.starts_with('-') || !name.chars().all(portable) {
                self.invalid(
                    u.span,
                    format!("`{name}` is not a login name"),
                    "a user name is letters, digits, `.`, `_` and `-`, not starting with `-`",
                );
            }
            name
        });
        host.port = port.and_then(|p| self.port(p, &scope));
        host.identity = identity.map(|i| PathBuf::from(self.expand(&i, Some(&scope), false)));
        host
    }

    /// An `env` map: names checked, values expanded in `scope` (not quoted:
    /// the executor quotes each when it sends the command).
    pub(super) fn env(
        &mut self,
        raw: &SpannedMap<Spanned<String>>,
        scope: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        for (name, value) in &raw.0 {
            if !template::is_name(&name.value) {
                self.invalid(
                    name.span,
                    format!("`{}` is not an environment variable name", name.value),
                    "names are letters, digits and `_`, not starting with a digit, e.g. \"PGHOST\"",
                );
                continue;
            }
            if env.iter().any(|(n, _)| *n == name.value) {
                self.duplicate(
                    format!("environment variable `{}` is set twice", name.value),
                    "set",
                    name.span,
                    None,
                    "remove one of them",
                );
                continue;
            }
            env.push((name.value.clone(), self.expand(value, scope, false)));
        }
        env
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
    pub(super) fn expand(
        &mut self,
        text: &Spanned<String>,
        host: Option<&str>,
        shell: bool,
    ) -> String {
        let result = {
            let this = &*self;
            template::expand(&text.value, shell, |name| this.lookup_var(host, name))
        };
        match result {
            // No command, path or name can hold a NUL byte: the command would
            // fail mid-run, after earlier steps changed things.
            Ok(expanded) if expanded.contains('\0') => {
                self.invalid(
                    text.span,
                    "this value holds a NUL byte (`\\u{0}`), which no command, path or name can hold",
                    "remove it; a variable's value may have brought it in",
                );
                expanded
            }
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
                                Some(near) => did_you_mean(
                                    &format!("{{{{{near}}}}}"),
                                    &format!("Or define `{}` under `vars`", placeholder.name),
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

    pub(super) fn check_host(&mut self, host: &Spanned<String>) {
        if !self.hosts.contains(&host.value) {
            let help = match closest(&host.value, self.hosts.iter().map(String::as_str)) {
                Some(near) => did_you_mean(near, "Hosts are declared under `hosts: { ... }`"),
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
}

/// A host whose address, user and key wait for the variables in force.
pub(super) struct PendingHost {
    host: Host,
    env: SpannedMap<Spanned<String>>,
    address: Spanned<String>,
    user: Option<Spanned<String>>,
    port: Option<Spanned<RawPort>>,
    identity: Option<Spanned<String>>,
}

//! Where and as whom to log in: a plan's host completed from `~/.ssh/config`.
//!
//! Only the common subset of `ssh_config(5)` is read: `Host` blocks (with
//! `*`/`?` wildcards and `!` negation), `Match all`, `Include` (with
//! wildcards in the file name), and the keywords `HostName` (with `%h`),
//! `User`, `Port` and `IdentityFile` (with `~`, `%d`, `%u`, `%h`, `%r`,
//! `%p`, `%%`). As in OpenSSH, the first value found for a keyword wins and
//! `IdentityFile`s add up. Other keywords are ignored, as are blocks of
//! `Match` criteria other than `all` (they never apply). The plan's own
//! values win over the file's.

use std::path::{Path, PathBuf};

use super::error::{SshError, SshErrorKind};
use super::pattern;

/// How deep `Include`s may nest (OpenSSH allows 16).
const INCLUDE_DEPTH: usize = 16;

/// The local facts an SSH connection depends on: home directory, user,
/// config file and agent. Built from the process by [`SshEnv::from_process`];
/// tests build their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshEnv {
    /// The home directory: `~` in paths, `~/.ssh/...` defaults.
    pub home: PathBuf,
    /// The local user name (the default remote user, `%u`).
    pub local_user: String,
    /// The config file; `None` for `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    /// Whether to try the ssh-agent (at `$SSH_AUTH_SOCK`) before key files.
    pub use_agent: bool,
}

impl SshEnv {
    /// `$HOME` (else the password database), the current user, the default
    /// config file, and the agent when `$SSH_AUTH_SOCK` is set.
    pub fn from_process() -> SshEnv {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten();
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| user.as_ref().map(|u| u.dir.clone()))
            .unwrap_or_else(|| PathBuf::from("/"));
        let local_user = user
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".to_owned());
        SshEnv {
            home,
            local_user,
            config_file: None,
            use_agent: std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()),
        }
    }

    /// An environment for `home` and `local_user`, without an agent.
    pub fn new(home: impl Into<PathBuf>, local_user: impl Into<String>) -> SshEnv {
        SshEnv {
            home: home.into(),
            local_user: local_user.into(),
            config_file: None,
            use_agent: false,
        }
    }

    /// `~/.ssh`.
    pub fn ssh_dir(&self) -> PathBuf {
        self.home.join(".ssh")
    }

    /// The config file read: [`SshEnv::config_file`] or `~/.ssh/config`.
    pub fn config_path(&self) -> PathBuf {
        self.config_file
            .clone()
            .unwrap_or_else(|| self.ssh_dir().join("config"))
    }

    /// `~/.ssh/known_hosts`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.ssh_dir().join("known_hosts")
    }

    /// The key files tried when nothing names one: `~/.ssh/id_ed25519`,
    /// `id_ecdsa`, `id_rsa`.
    pub fn default_identities(&self) -> Vec<PathBuf> {
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|name| self.ssh_dir().join(name))
            .collect()
    }

    /// `path` with a leading `~` replaced by the home directory.
    pub fn expand_tilde(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("~") {
            Ok(rest) => self.home.join(rest),
            Err(_) => path.to_owned(),
        }
    }
}

/// A parsed `ssh_config` file, with its includes.
#[derive(Clone, Debug, Default)]
pub struct SshConfig {
    directives: Vec<Directive>,
}

/// One `Keyword value` line, and the blocks it sits in.
#[derive(Clone, Debug)]
struct Directive {
    /// Every one must match (the block, and the block of each `Include`).
    when: Vec<Block>,
    keyword: Keyword,
    value: String,
}

/// What a block applies to.
#[derive(Clone, Debug)]
enum Block {
    /// `Host PATTERN...`.
    Host(Vec<String>),
    /// `Match` with criteria this reader does not evaluate: never applies.
    Never,
}

impl Block {
    fn applies(&self, alias: &str) -> bool {
        match self {
            Block::Host(patterns) => pattern::list(patterns.iter().map(String::as_str), alias),
            Block::Never => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    HostName,
    User,
    Port,
    IdentityFile,
}

/// What `~/.ssh/config` says about one host alias.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`, with `%h` replaced by the alias.
    pub host_name: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// Every `IdentityFile`, in order, as written (tokens not yet expanded).
    pub identity_files: Vec<String>,
}

impl SshConfig {
    /// Reads [`SshEnv::config_path`]; a missing file is an empty config.
    pub fn load(env: &SshEnv) -> Result<SshConfig, SshError> {
        let path = env.config_path();
        let mut directives = Vec::new();
        read_file(&path, env, &[], 0, true, &mut directives)?;
        Ok(SshConfig { directives })
    }

    /// Parses config text; `origin` names it in errors. `Include`s are read
    /// from disk, relative to `~/.ssh`.
    pub fn parse(text: &str, origin: &Path, env: &SshEnv) -> Result<SshConfig, SshError> {
        let mut directives = Vec::new();
        parse_into(text, origin, env, &[], 0, &mut directives)?;
        Ok(SshConfig { directives })
    }

    /// What the config says about `alias` (the name given as the host).
    pub fn lookup(&self, alias: &str) -> HostConfig {
        let mut found = HostConfig::default();
        let applying = self
            .directives
            .iter()
            .filter(|d| d.when.iter().all(|b| b.applies(alias)));
        for directive in applying {
            let value = &directive.value;
            match directive.keyword {
                Keyword::HostName if found.host_name.is_none() => {
                    found.host_name = Some(percent(value, &[('h', alias)]));
                }
                Keyword::User if found.user.is_none() => found.user = Some(value.clone()),
                // invariant: ports were checked when parsed.
                Keyword::Port if found.port.is_none() => found.port = value.parse().ok(),
                Keyword::IdentityFile => found.identity_files.push(value.clone()),
                _ => {}
            }
        }
        found
    }
}

/// Reads one config file into `out`. A missing top-level file is empty; a
/// missing include is skipped (`optional`), as OpenSSH does.
fn read_file(
    path: &Path,
    env: &SshEnv,
    when: &[Block],
    depth: usize,
    optional: bool,
    out: &mut Vec<Directive>,
) -> Result<(), SshError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(config_error(path, None, format!("cannot read it: {e}")).with_source(e));
        }
    };
    parse_into(&text, path, env, when, depth, out)
}

fn parse_into(
    text: &str,
    origin: &Path,
    env: &SshEnv,
    outer: &[Block],
    depth: usize,
    out: &mut Vec<Directive>,
) -> Result<(), SshError> {
    let mut block: Option<Block> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = split_keyword(line);
        let args = split_args(rest)
            .map_err(|problem| config_error(origin, Some(line_no), problem.to_owned()))?;
        let when = || {
            let mut when = outer.to_vec();
            when.extend(block.clone());
            when
        };
        let first = || {
            args.first().cloned().ok_or_else(|| {
                config_error(origin, Some(line_no), format!("`{keyword}` needs a value"))
            })
        };
        match keyword.to_ascii_lowercase().as_str() {
            "host" => {
                if args.is_empty() {
                    return Err(config_error(
                        origin,
                        Some(line_no),
                        "`Host` needs a pattern".into(),
                    ));
                }
                block = Some(Block::Host(args.clone()));
            }
            "match" => {
                let all = args.len() == 1 && args[0].eq_ignore_ascii_case("all");
                block = if all { None } else { Some(Block::Never) };
                if !all {
                    tracing::debug!(
                        "{}:{line_no}: `Match {}` is not evaluated; its block is ignored",
                        origin.display(),
                        args.join(" ")
                    );
                }
            }
            "include" => {
                if depth >= INCLUDE_DEPTH {
                    return Err(config_error(
                        origin,
                        Some(line_no),
                        format!("`Include` nested deeper than {INCLUDE_DEPTH} (a loop?)"),
                    ));
                }
                let when = when();
                for arg in &args {
                    for path in include_paths(arg, env) {
                        read_file(&path, env, &when, depth + 1, true, out)?;
                    }
                }
            }
            "hostname" => out.push(Directive {
                when: when(),
                keyword: Keyword::HostName,
                value: first()?,
            }),
            "user" => out.push(Directive {
                when: when(),
                keyword: Keyword::User,
                value: first()?,
            }),
            "port" => {
                let value = first()?;
                match value.parse::<u16>() {
                    Ok(port) if port > 0 => {}
                    _ => {
                        return Err(config_error(
                            origin,
                            Some(line_no),
                            format!("`Port {value}` is not a port number"),
                        ))
                    }
                }
                out.push(Directive {
                    when: when(),
                    keyword: Keyword::Port,
                    value,
                });
            }
            "identityfile" => out.push(Directive {
                when: when(),
                keyword: Keyword::IdentityFile,
                value: first()?,
            }),
            _ => {}
        }
    }
    Ok(())
}

fn config_error(path: &Path, line: Option<usize>, problem: String) -> SshError {
    let at = match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    SshError::new(SshErrorKind::Config, &at, problem)
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (keyword, rest)
}

/// Whitespace-separated arguments; double or single quotes group.
fn split_args(text: &str) -> Result<Vec<String>, &'static str> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        let mut arg = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    Some(c) if c == first => break,
                    Some(c) => arg.push(c),
                    None => return Err("unterminated quote"),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| !c.is_whitespace()) {
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
}

/// The files an `Include` argument names: `~` expanded, relative to
/// `~/.ssh`, wildcards in the file name (not in directories) expanded, sorted.
fn include_paths(arg: &str, env: &SshEnv) -> Vec<PathBuf> {
    let path = env.expand_tilde(Path::new(arg));
    let path = if path.is_absolute() {
        path
    } else {
        env.ssh_dir().join(path)
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| pattern::wildcard(&name, &entry.file_name().to_string_lossy()))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

/// Replaces `%x` tokens from `tokens`, and `%%` with `%`; others are kept.
fn percent(text: &str, tokens: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// Where and as whom to log in to one host, fully resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// The plan's name of the host (used in messages and logs).
    pub name: String,
    /// What to connect to: a DNS name or an address. Also the name looked up
    /// in known_hosts.
    pub address: String,
    /// The TCP port.
    pub port: u16,
    /// The remote user.
    pub user: String,
    /// The key file the plan or `~/.ssh/config` names, tried after the agent.
    pub identity: Option<PathBuf>,
    /// Key files tried after `identity` when they exist: further
    /// `IdentityFile`s, then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub fallback_identities: Vec<PathBuf>,
    /// Whether to try the ssh-agent first.
    pub use_agent: bool,
}

impl SshTarget {
    /// A target for `address:port` as `user` with one key file, no agent and
    /// no fallbacks (what tests and tools that manage their keys want).
    pub fn new(
        name: &str,
        address: &str,
        port: u16,
        user: &str,
        identity: Option<PathBuf>,
    ) -> SshTarget {
        SshTarget {
            name: name.to_owned(),
            address: address.to_owned(),
            port,
            user: user.to_owned(),
            identity,
            fallback_identities: Vec::new(),
            use_agent: false,
        }
    }

    /// The plan's `host` completed from `config`: the plan's address is the
    /// alias looked up; its user, port and identity win over the file's.
    pub fn resolve(host: &plan_core::Host, config: &SshConfig, env: &SshEnv) -> SshTarget {
        let alias = host.address.as_str();
        let found = config.lookup(alias);
        let address = found.host_name.unwrap_or_else(|| alias.to_owned());
        let user = host
            .user
            .clone()
            .or(found.user)
            .unwrap_or_else(|| env.local_user.clone());
        let port = host.port.or(found.port).unwrap_or(22);
        let home = env.home.to_string_lossy();
        let port_text = port.to_string();
        let tokens = [
            ('d', home.as_ref()),
            ('u', env.local_user.as_str()),
            ('h', address.as_str()),
            ('r', user.as_str()),
            ('p', port_text.as_str()),
        ];
        let mut files: Vec<PathBuf> = found
            .identity_files
            .iter()
            .map(|f| env.expand_tilde(Path::new(&percent(f, &tokens))))
            .collect();
        let identity = match &host.identity {
            Some(path) => Some(env.expand_tilde(path)),
            None if !files.is_empty() => Some(files.remove(0)),
            None => None,
        };
        files.extend(env.default_identities());
        let mut fallback_identities = Vec::new();
        for file in files {
            if Some(&file) != identity.as_ref() && !fallback_identities.contains(&file) {
                fallback_identities.push(file);
            }
        }
        SshTarget {
            name: host.name.clone(),
            address,
            port,
            user,
            identity,
            fallback_identities,
            use_agent: env.use_agent,
        }
    }

    /// `user@address:port`, for messages.
    pub fn display(&self) -> String {
        format!("{}@{}", self.user, self.host_port())
    }

    /// `address:port`, with brackets around an IPv6 address.
    pub(crate) fn host_port(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

#[cfg(test)]
mod tests;

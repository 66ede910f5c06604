//! The `notify` section (hooks told of a run's events) and the `lock`
//! setting (where runs hold their lock across machines): how a run works
//! with a team.

use std::time::Duration;

use super::Validator;
use crate::plan::*;
use crate::raw::*;
use crate::span::Spanned;

/// The longest a hook may take with one event: hooks run beside the run,
/// but a run's end waits for them (up to this) so the last event is told.
const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

impl Validator<'_> {
    pub(super) fn notify(&mut self, raw: Vec<Spanned<RawHook>>) -> Vec<Hook> {
        raw.into_iter().map(|hook| self.hook(hook)).collect()
    }

    pub(super) fn lock(&mut self, raw: &Spanned<String>) -> Option<LockUrl> {
        let text = self.expand(raw, None, false);
        match LockUrl::parse(&text) {
            Ok(url) => Some(url),
            Err(message) => {
                self.invalid(
                    raw.span,
                    message,
                    "where runs of this plan hold their lock in etcd: \"etcd://HOST:PORT/PREFIX\", e.g. \"etcd://etcd1.example.org:2379/cutover\"",
                );
                None
            }
        }
    }

    fn hook(&mut self, raw: Spanned<RawHook>) -> Hook {
        let (target, mut on, timeout) = match raw.value {
            RawHook::Command { run, on, timeout } => {
                if run.value.trim().is_empty() {
                    self.invalid(
                        run.span,
                        "this hook's command is empty",
                        "a shell command run on this machine with the event in its environment, e.g. \"scripts/hooks/phabricator-comment\"",
                    );
                }
                // Values of variables are quoted, as in steps' commands.
                let run = self.expand(&run, None, true);
                (HookTarget::Command { run }, on, timeout)
            }
            RawHook::Webhook {
                url,
                token_env,
                on,
                timeout,
            } => {
                let text = self.expand(&url, None, false);
                if let Err(message) = check_hook_url(&text) {
                    self.invalid(
                        url.span,
                        message,
                        "write the whole URL to post to, e.g. \"https://chat.example.org/hooks/abc123\"",
                    );
                }
                if let Some(name) = &token_env {
                    if !env_name(&name.value) {
                        self.invalid(
                            name.span,
                            format!("`{}` is not an environment variable's name", name.value),
                            "the name of a variable that holds the token, e.g. \"CHAT_TOKEN\": letters, digits and `_`, not starting with a digit",
                        );
                    }
                }
                (
                    HookTarget::Webhook {
                        url: text,
                        token_env: token_env.map(|n| n.value),
                    },
                    on,
                    timeout,
                )
            }
        };
        let timeout = match timeout {
            None => HOOK_TIMEOUT,
            Some(text) => {
                let t = self.duration(&text);
                if t < Duration::from_secs(1) || t > MAX_HOOK_TIMEOUT {
                    self.invalid(
                        text.span,
                        format!("a hook's timeout must be between 1s and {}s", MAX_HOOK_TIMEOUT.as_secs()),
                        "a hook runs beside the run, but the run's end waits for it (up to its timeout) to tell the last event",
                    );
                }
                t.clamp(Duration::from_secs(1), MAX_HOOK_TIMEOUT)
            }
        };
        on.sort_unstable();
        on.dedup();
        Hook {
            target,
            on,
            timeout,
        }
    }
}

/// Whether `url` is an `http://` or `https://` URL with a host.
pub fn check_hook_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{url}` names no host"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("`{url}` holds a space"));
    }
    Ok(())
}

/// Whether `name` can be an environment variable's name.
fn env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

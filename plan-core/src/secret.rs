//! Which values are secrets: never printed, logged or journaled as they are.

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Whether an environment variable of this name holds a secret: its name
/// holds `SECRET`, `PASSWORD`, `PASSWD` or `TOKEN`, or ends in `_KEY`
/// (case does not matter).
pub fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["SECRET", "PASSWORD", "PASSWD", "TOKEN"]
        .iter()
        .any(|w| name.contains(w))
        || name.ends_with("_KEY")
}

/// Values that must never be shown: those of this process's environment
/// variables with secret names ([`secret_name`]) or named in `also`, and
/// `values`; each 4 bytes or longer, with the last `:`-separated part of
/// each too (the secret of a TSIG key written `algorithm:name:base64`);
/// the longest first, so one that contains another is replaced whole.
pub fn secret_values(also: &[String], values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut secrets: Vec<String> = std::env::vars()
        .filter(|(name, _)| secret_name(name) || also.contains(name))
        .map(|(_, value)| value)
        .chain(values)
        .collect();
    let parts: Vec<String> = secrets
        .iter()
        .filter_map(|s| s.rsplit_once(':').map(|(_, last)| last.to_owned()))
        .collect();
    secrets.extend(parts);
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// `text` with every one of `secrets` replaced by [`REDACTED`].
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), REDACTED)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_names() {
        for name in [
            "PGPASSWORD",
            "api_token",
            "AWS_SECRET_ACCESS_KEY",
            "TSIG_KEY",
        ] {
            assert!(super::secret_name(name), "{name}");
        }
        for name in ["PGHOST", "PGPORT", "KEYBOARD", "HOME"] {
            assert!(!super::secret_name(name), "{name}");
        }
    }
}

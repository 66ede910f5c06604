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

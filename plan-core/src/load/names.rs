//! What a DNS name and a host address may look like, and how long a
//! duration or how many retries a plan may ask for: checked by the loader so
//! that `check` refuses what would only fail mid-run (at preflight, after
//! earlier phases ran, or in the DNS server's answer).

use std::net::IpAddr;
use std::time::Duration;

/// The longest duration, wait, deadline, TTL or anchor a plan may give: a
/// year. Nothing in a cutover takes longer; a larger value is a typo (and
/// would overflow the clocks that add them up).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// The most retries a step may ask for: each retry is a real attempt on a
/// real host, and the verifier explores every one.
pub const MAX_RETRIES: u32 = 100;

/// Checks a fully qualified DNS name (`lists.wikimedia.org.`, or `.`).
pub fn dns_name(name: &str) -> Result<(), String> {
    if name == "." {
        return Ok(());
    }
    let bare = name.strip_suffix('.').unwrap_or(name);
    // 255 octets on the wire: 253 characters written without the root dot.
    if bare.len() > 253 {
        return Err(format!("it is {} bytes long, more than 253", bare.len()));
    }
    for label in bare.split('.') {
        label_ok(label)?;
    }
    Ok(())
}

/// Checks a host's address: an IP address, a DNS name or an
/// `~/.ssh/config` alias (a name of the same letters).
pub fn host_address(address: &str) -> Result<(), String> {
    let bracketed = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if bracketed.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(c) = address
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("it holds {c:?}"));
    }
    dns_name(address)
}

fn label_ok(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row, or a leading dot)".into());
    }
    if label.len() > 63 {
        return Err(format!("the label `{label}` is longer than 63 bytes"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '*'))
    {
        return Err(format!("the label `{label}` holds {c:?}"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("the label `{label}` begins or ends with `-`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for good in [
            ".",
            "lists.wikimedia.org.",
            "a.b",
            "_dmarc.example.org.",
            "x-1.lab.test.",
        ] {
            assert_eq!(dns_name(good), Ok(()), "{good}");
        }
        for bad in [
            "a..b.",
            ".a.",
            "-a.b.",
            "a-.b.",
            "a b.c.",
            "ä.b.",
            "a\0.b.",
            &format!("{}.b.", "x".repeat(64)),
            &format!("{}.", vec!["x".repeat(60); 5].join(".")),
        ] {
            assert!(dns_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_addresses() {
        for good in [
            "127.0.0.2",
            "::1",
            "[::1]",
            "fermium.eqiad.wmnet",
            "sodium",
            "db_1",
        ] {
            assert_eq!(host_address(good), Ok(()), "{good}");
        }
        for bad in ["host one", "a..b", "-x", "x\ty", "evil;rm", "$(id)", "a/b"] {
            assert!(host_address(bad).is_err(), "{bad:?}");
        }
    }
}

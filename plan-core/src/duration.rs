//! Human durations (`"10s"`, `"5m"`, `"1h30m"`, `"1d"`), phase anchors
//! (`"-1d"`, `"0"`, `"+1h"`) and sizes (`"40 GB"`, `"512MiB"`).

use std::time::Duration;

/// Parses a duration such as `10s`, `5m`, `1h30m`, `2h 15m` or `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration cannot be empty; write e.g. \"5m\", \"1h30m\" or \"10s\"".into());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write e.g. \"5m\", \"1h30m\" or \"10s\"")
    })
}

/// Reads an RFC 3339 time (`2026-12-01T14:00:00Z`), saying what is wrong in
/// words rather than in the time library's (a month of 13, a year past the
/// last one a timestamp can hold).
pub fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    text.trim().parse::<jiff::Timestamp>().map_err(|e| {
        let raw = e.to_string();
        let why = if let Some(rest) = raw.split_once("parameter '").map(|(_, r)| r) {
            let name = rest.split('\'').next().unwrap_or("value");
            let range = rest
                .split_once("range of ")
                .map(|(_, r)| r.trim_end_matches('.').replace("..=", " to "));
            match (name, range) {
                ("Unix timestamp seconds", _) => {
                    "it is outside the times cutover can count (up to 9999-12-30)".to_owned()
                }
                (name, Some(range)) => format!("its {name} must be {range}"),
                (name, None) => format!("its {name} is out of range"),
            }
        } else if raw.contains("offset") || raw.contains("Z") {
            "it needs a date, a time and an offset (`Z` for UTC)".to_owned()
        } else {
            "it is not of the form 2026-12-01T14:00:00Z".to_owned()
        };
        format!("`{}` is not an RFC 3339 time: {why}", text.trim())
    })
}

/// A signed offset from the window start, in seconds.
pub fn parse_anchor(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    let (sign, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (-1, &trimmed[1..]),
        Some(b'+') => (1, &trimmed[1..]),
        _ => (1, trimmed),
    };
    let duration = parse_duration(rest).map_err(|_| {
        format!("`{trimmed}` is not an offset from the window start; write e.g. \"-1d\", \"0\" or \"+2h\"")
    })?;
    let secs =
        i64::try_from(duration.as_secs()).map_err(|_| format!("`{trimmed}` is too far away"))?;
    Ok(sign * secs)
}

/// Formats a duration compactly, as people write it: `45s`, `5m`, `1h30m`,
/// `1d2h`, `1.5s`, `2m0.25s`, `500ms` (below a millisecond it rounds down).
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs();
    let millis = d.subsec_millis();
    if total == 0 {
        let ms = d.as_millis();
        return if ms == 0 {
            "0s".into()
        } else {
            format!("{ms}ms")
        };
    }
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3_600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let mut out = String::new();
    for (value, unit) in [(days, "d"), (hours, "h"), (minutes, "m")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    match (seconds, millis) {
        (0, 0) => {}
        (s, 0) => out.push_str(&format!("{s}s")),
        (s, ms) => {
            let fraction = format!("{ms:03}");
            out.push_str(&format!("{s}.{}s", fraction.trim_end_matches('0')));
        }
    }
    out
}

/// Formats a signed anchor: `-1d`, `0`, `+2h`.
pub fn format_anchor(secs: i64) -> String {
    match secs {
        0 => "0".into(),
        s if s < 0 => format!(
            "-{}",
            format_duration(Duration::from_secs(s.unsigned_abs()))
        ),
        s => format!(
            "+{}",
            format_duration(Duration::from_secs(s.unsigned_abs()))
        ),
    }
}

/// The largest size a plan may state: a petabyte. More is a typo.
pub const MAX_SIZE: u64 = 1_000_000_000_000_000;

/// Parses a size in bytes: a number (decimals allowed) and a unit, `B`,
/// `kB`/`KB`, `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`,
/// `TiB` (powers of 1024), with or without a space: `"40 GB"`, `"1.5GiB"`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    let not_a_size = || format!("`{trimmed}` is not a size");
    let value: f64 = number.parse().map_err(|_| not_a_size())?;
    let factor: u64 = match unit {
        "B" => 1,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "" => return Err(format!("`{trimmed}` has no unit")),
        _ => return Err(format!("`{unit}` is not a unit of size")),
    };
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes > MAX_SIZE as f64 {
        return Err(format!("`{trimmed}` is more than a petabyte"));
    }
    Ok(bytes.round() as u64)
}

/// A size as [`parse_size`] reads it back: in the largest unit that divides
/// it exactly (`"40 GB"`, `"512 MiB"`), else in bytes.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (1 << 40, "TiB"),
        (1_000_000_000_000, "TB"),
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "kB"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| bytes > 0 && bytes % unit == 0)
        .map_or_else(
            || format!("{bytes} B"),
            |(unit, name)| format!("{} {name}", bytes / unit),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_plans_use() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h 15m"), Ok(Duration::from_secs(8100)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5m").is_err());
    }

    #[test]
    fn parses_anchors() {
        assert_eq!(parse_anchor("-1d"), Ok(-86_400));
        assert_eq!(parse_anchor("0"), Ok(0));
        assert_eq!(parse_anchor("+1h"), Ok(3_600));
        assert!(parse_anchor("yesterday").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for secs in [0, 1, 59, 60, 300, 3_600, 5_400, 86_400, 90_061] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{secs}");
        }
        for ms in [1, 999, 1_500, 2_500, 61_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}ms");
        }
        assert_eq!(format_duration(Duration::from_millis(2_500)), "2.5s");
        // Issue 12, item 9: the time library's own words, translated.
        assert_eq!(
            parse_time("2026-13-01T00:00:00Z"),
            Err("`2026-13-01T00:00:00Z` is not an RFC 3339 time: its month must be 1 to 12".into())
        );
        assert!(parse_time("9999-12-31T23:00:00Z")
            .is_err_and(|e| e.ends_with("outside the times cutover can count (up to 9999-12-30)")));
        assert!(parse_time("2026-12-01")
            .is_err_and(|e| e.ends_with("not of the form 2026-12-01T14:00:00Z")));
        assert!(parse_time(" 2026-12-01T14:00:00Z ").is_ok());
        assert_eq!(format_duration(Duration::from_millis(120_250)), "2m0.25s");
        assert_eq!(format_duration(Duration::from_millis(1_005)), "1.005s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_anchor(-86_400), "-1d");
        assert_eq!(format_anchor(0), "0");
        assert_eq!(format_anchor(5_400), "+1h30m");
    }

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(parse_size("40 GB"), Ok(40_000_000_000));
        assert_eq!(parse_size("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size(" 512 MiB "), Ok(512 << 20));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert_eq!(parse_size("7 B"), Ok(7));
        assert_eq!(parse_size("40").unwrap_err(), "`40` has no unit");
        assert_eq!(
            parse_size("40 gigs").unwrap_err(),
            "`gigs` is not a unit of size"
        );
        assert_eq!(parse_size("GB").unwrap_err(), "`GB` is not a size");
        assert_eq!(
            parse_size("1..2 GB").unwrap_err(),
            "`1..2 GB` is not a size"
        );
        assert!(parse_size("2000 TB").unwrap_err().contains("petabyte"));
        for text in [
            "40 GB", "512 MiB", "3 TiB", "1500 kB", "7 B", "0 B", "1001 B",
        ] {
            assert_eq!(format_size(parse_size(text).expect("a size")), text);
        }
    }
}

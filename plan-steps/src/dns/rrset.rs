//! What a name resolves to (its A and AAAA records), and the journaled
//! capture of it that an exact revert puts back.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The A and AAAA records of one name, as the authoritative server serves
/// them.
///
/// Addresses are kept sorted (IPv4 first) and without duplicates: DNS does
/// not order an RRset, so two equal RRsets compare equal whatever order a
/// server answers in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RRset {
    /// The TTL, in seconds, of the A records, or of the AAAA records when
    /// there are no A records; `None` when the name has neither.
    pub ttl: Option<u32>,
    /// The AAAA records' TTL when the name has both families and the two
    /// TTLs differ (A and AAAA are two RRsets and may), so that a revert
    /// is exact; `None` otherwise.
    #[serde(default, rename = "aaaa_ttl", skip_serializing_if = "Option::is_none")]
    pub distinct_aaaa_ttl: Option<u32>,
    /// The addresses: A records as IPv4, AAAA records as IPv6.
    pub addresses: Vec<IpAddr>,
}

impl RRset {
    /// Addresses served with one TTL; an empty list is "no records" (and
    /// then `ttl` is ignored).
    pub fn new(ttl: u32, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut addresses: Vec<IpAddr> = addresses.into_iter().collect();
        addresses.sort_unstable();
        addresses.dedup();
        let ttl = (!addresses.is_empty()).then_some(ttl);
        Self {
            ttl,
            distinct_aaaa_ttl: None,
            addresses,
        }
    }

    /// From the A records (with their TTL) and the AAAA records (with theirs).
    pub(crate) fn from_families(
        a: Option<(u32, Vec<IpAddr>)>,
        aaaa: Option<(u32, Vec<IpAddr>)>,
    ) -> Self {
        let ttl = a.as_ref().or(aaaa.as_ref()).map(|(ttl, _)| *ttl);
        let aaaa_ttl = match (&a, &aaaa) {
            (Some((a, _)), Some((aaaa, _))) if a != aaaa => Some(*aaaa),
            _ => None,
        };
        let mut set = Self::new(
            0,
            a.into_iter()
                .chain(aaaa)
                .flat_map(|(_, addresses)| addresses),
        );
        if !set.addresses.is_empty() {
            set.ttl = ttl;
            set.distinct_aaaa_ttl = aaaa_ttl;
        }
        set
    }

    /// Whether the name has no A and no AAAA records.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The TTL of the A records, if there are any.
    pub fn a_ttl(&self) -> Option<u32> {
        self.addresses
            .iter()
            .any(IpAddr::is_ipv4)
            .then_some(self.ttl)
            .flatten()
    }

    /// The TTL of the AAAA records, if there are any.
    pub fn aaaa_ttl(&self) -> Option<u32> {
        self.addresses
            .iter()
            .any(IpAddr::is_ipv6)
            .then_some(self.distinct_aaaa_ttl.or(self.ttl))
            .flatten()
    }

    /// The longest TTL: how long a cache may keep some of these records.
    pub fn longest_ttl(&self) -> Option<u32> {
        self.a_ttl().max(self.aaaa_ttl())
    }

    /// The same addresses with one TTL for both families.
    pub fn with_ttl(&self, ttl: u32) -> Self {
        Self::new(ttl, self.addresses.iter().copied())
    }

    /// Whether `address` is among the records.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.addresses.contains(&address)
    }
}

impl fmt::Display for RRset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no A/AAAA records");
        }
        let list = |f: &mut fmt::Formatter<'_>, v6: bool| {
            let mut first = true;
            for address in self.addresses.iter().filter(|a| a.is_ipv6() == v6) {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{address}")?;
            }
            Ok(())
        };
        match (self.a_ttl(), self.aaaa_ttl()) {
            (Some(a), Some(aaaa)) if a != aaaa => {
                list(f, false)?;
                write!(f, " (TTL {a}s); ")?;
                list(f, true)?;
                write!(f, " (TTL {aaaa}s)")
            }
            (a, aaaa) => {
                list(f, false)?;
                if a.is_some() && aaaa.is_some() {
                    f.write_str(", ")?;
                }
                list(f, true)?;
                write!(f, " (TTL {}s)", a.or(aaaa).unwrap_or_default())
            }
        }
    }
}

/// The version of the capture text written by [`capture_to_string`].
const CAPTURE_FORMAT: u32 = 1;

/// The journaled text: the RRset with a format version.
#[derive(Serialize, Deserialize)]
struct Capture {
    format: u32,
    #[serde(flatten)]
    rrset: RRset,
}

/// The text journaled as `Captured` state before a DNS step changes `rrset`:
/// one line of JSON, `{"format":1,"ttl":3600,"addresses":["192.0.2.10"]}`
/// (`"ttl":null,"addresses":[]` when the name had no records, and an
/// `"aaaa_ttl"` when the families' TTLs differed).
pub fn capture_to_string(rrset: &RRset) -> String {
    let capture = Capture {
        format: CAPTURE_FORMAT,
        rrset: rrset.clone(),
    };
    // invariant: serializing plain numbers and addresses into a string cannot fail.
    serde_json::to_string(&capture).expect("an RRset serializes")
}

/// Reads text written by [`capture_to_string`] back.
pub fn parse_capture(text: &str) -> Result<RRset, CaptureError> {
    let capture: Capture = serde_json::from_str(text).map_err(|e| CaptureError(e.to_string()))?;
    if capture.format != CAPTURE_FORMAT {
        return Err(CaptureError(format!(
            "format {} is not one this version reads (1)",
            capture.format
        )));
    }
    let RRset {
        ttl,
        distinct_aaaa_ttl,
        addresses,
    } = capture.rrset;
    let ttl = ttl.ok_or_else(|| CaptureError("addresses without a TTL".into()));
    let v4: Vec<IpAddr> = addresses.iter().copied().filter(IpAddr::is_ipv4).collect();
    let v6: Vec<IpAddr> = addresses.iter().copied().filter(IpAddr::is_ipv6).collect();
    // Normalized as a query would have read it, so that equal RRsets compare equal.
    Ok(match (v4.is_empty(), v6.is_empty()) {
        (true, true) => RRset::default(),
        (false, true) => RRset::new(ttl?, v4),
        (true, false) => RRset::new(distinct_aaaa_ttl.map_or(ttl, Ok)?, v6),
        (false, false) => {
            let ttl = ttl?;
            RRset::from_families(
                Some((ttl, v4)),
                Some((distinct_aaaa_ttl.unwrap_or(ttl), v6)),
            )
        }
    })
}

/// Captured text that is not a DNS capture.
#[derive(Debug, thiserror::Error)]
#[error("captured DNS state cannot be read: {0}")]
pub struct CaptureError(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn captures_round_trip() {
        let sets = [
            RRset::default(),
            RRset::new(3600, [ip("192.0.2.10")]),
            RRset::new(60, [ip("2001:db8::1"), ip("192.0.2.11"), ip("192.0.2.10")]),
            RRset::from_families(
                Some((300, vec![ip("192.0.2.1")])),
                Some((600, vec![ip("2001:db8::2")])),
            ),
            RRset::from_families(None, Some((600, vec![ip("2001:db8::2")]))),
        ];
        for set in sets {
            let text = capture_to_string(&set);
            assert!(!text.contains('\n'));
            assert_eq!(parse_capture(&text).unwrap(), set, "{text}");
        }
    }

    #[test]
    fn the_capture_text_is_stable() {
        let set = RRset::new(3600, [ip("192.0.2.10"), ip("2001:db8::1")]);
        assert_eq!(
            capture_to_string(&set),
            r#"{"format":1,"ttl":3600,"addresses":["192.0.2.10","2001:db8::1"]}"#
        );
        assert_eq!(
            capture_to_string(&RRset::default()),
            r#"{"format":1,"ttl":null,"addresses":[]}"#
        );
        let mixed = RRset::from_families(
            Some((300, vec![ip("192.0.2.1")])),
            Some((600, vec![ip("2001:db8::2")])),
        );
        assert_eq!(
            capture_to_string(&mixed),
            r#"{"format":1,"ttl":300,"aaaa_ttl":600,"addresses":["192.0.2.1","2001:db8::2"]}"#
        );
        assert_eq!(
            (mixed.a_ttl(), mixed.aaaa_ttl(), mixed.longest_ttl()),
            (Some(300), Some(600), Some(600))
        );
    }

    #[test]
    fn bad_captures_are_errors() {
        assert!(parse_capture("running").is_err());
        assert!(parse_capture(r#"{"format":2,"ttl":1,"addresses":[]}"#).is_err());
        assert!(parse_capture(r#"{"format":1,"ttl":null,"addresses":["192.0.2.1"]}"#).is_err());
        assert!(parse_capture(r#"{"format":1,"ttl":5,"addresses":["example.org"]}"#).is_err());
        // Written by hand, read as a query would have.
        let same =
            parse_capture(r#"{"format":1,"ttl":5,"aaaa_ttl":5,"addresses":["::1","127.0.0.1"]}"#);
        assert_eq!(same.unwrap(), RRset::new(5, [ip("127.0.0.1"), ip("::1")]));
        let v6 = parse_capture(r#"{"format":1,"ttl":5,"aaaa_ttl":9,"addresses":["::1"]}"#);
        assert_eq!(v6.unwrap(), RRset::new(9, [ip("::1")]));
    }

    #[test]
    fn rrsets_compare_as_sets() {
        let a = RRset::new(60, [ip("192.0.2.2"), ip("192.0.2.1"), ip("192.0.2.1")]);
        let b = RRset::new(60, [ip("192.0.2.1"), ip("192.0.2.2")]);
        assert_eq!(a, b);
        assert_ne!(a, a.with_ttl(61));
        assert_eq!(RRset::new(60, []), RRset::default());
        assert_eq!(a.to_string(), "192.0.2.1, 192.0.2.2 (TTL 60s)");
        assert_eq!(RRset::default().to_string(), "no A/AAAA records");
    }
}

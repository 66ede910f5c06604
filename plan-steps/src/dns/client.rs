//! The client of one zone's authoritative server: reads a name's A and AAAA
//! records and replaces them with RFC 2136 updates, each checked afterwards.

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};

use super::error::{DnsError, DnsErrorKind};
use super::key::TsigKey;
use super::rrset::RRset;
use super::transport::{exchange, rcode_name, Server};

/// Reads and changes the A and AAAA records of names in one zone, at its
/// authoritative server, every message signed with a TSIG key.
///
/// Names are taken as absolute whether or not they end in a dot. Every
/// change is one update message (the server applies all of it or none) and
/// is followed by a query that confirms the server serves the result.
#[derive(Clone)]
pub struct DnsClient {
    server: Server,
    zone: Name,
    signer: TSigner,
    timeout: Duration,
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsClient")
            .field("server", &self.server.to_string())
            .field("zone", &self.zone.to_ascii())
            .field("key", &self.signer.signer_name().to_ascii())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A family of addresses and its record type.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    const BOTH: [Family; 2] = [Family::V4, Family::V6];

    fn record_type(self) -> RecordType {
        match self {
            Family::V4 => RecordType::A,
            Family::V6 => RecordType::AAAA,
        }
    }

    fn holds(self, address: &IpAddr) -> bool {
        match self {
            Family::V4 => address.is_ipv4(),
            Family::V6 => address.is_ipv6(),
        }
    }

    /// The TTL `rrset` gives this family, if it has records of it.
    fn ttl(self, rrset: &RRset) -> Option<u32> {
        match self {
            Family::V4 => rrset.a_ttl(),
            Family::V6 => rrset.aaaa_ttl(),
        }
    }
}

impl DnsClient {
    /// How long one exchange with the server may take, unless changed with
    /// [`DnsClient::with_timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A client of `server` (`host:port`, the port 53 when absent) for
    /// `zone`, signing with `key`. Nothing is sent yet.
    pub fn new(server: &str, zone: &str, key: &TsigKey) -> Result<Self, DnsError> {
        let error = |kind| DnsError::new("setup", server, kind);
        let parsed = Server::parse(server).map_err(error)?;
        let zone = absolute(zone).map_err(error)?;
        Ok(Self {
            server: parsed,
            zone,
            signer: key.signer(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The client for a plan's `dns` settings, with its key loaded from the
    /// file or environment variable the plan names.
    pub fn from_plan(dns: &plan_core::Dns) -> Result<Self, DnsError> {
        let key =
            TsigKey::load(&dns.key).map_err(|e| DnsError::new("setup", &dns.server, e.into()))?;
        Self::new(&dns.server, &dns.zone, &key)
    }

    /// Bounds each exchange (connect, send, answer) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server, as `host:port`.
    pub fn server(&self) -> String {
        self.server.to_string()
    }

    /// The zone, fully qualified.
    pub fn zone(&self) -> String {
        self.zone.to_ascii()
    }

    /// The A and AAAA records of `name`, asked of the authoritative server
    /// (an empty [`RRset`] when it has none or does not exist).
    pub async fn query(&self, name: &str) -> Result<RRset, DnsError> {
        let operation = format!("query for {name}");
        let name = self
            .in_zone(name)
            .map_err(|kind| self.error(&operation, kind))?;
        self.query_name(&name)
            .await
            .map_err(|kind| self.error(&operation, kind))
    }

    /// Whether `name` resolves to `expected` at the authoritative server
    /// (among its other addresses, if any): the `Resolves` check.
    pub async fn resolves(&self, name: &str, expected: IpAddr) -> Result<bool, DnsError> {
        Ok(self.query(name).await?.contains(expected))
    }

    /// Serves the A and AAAA records of `name` with `ttl` seconds, addresses
    /// unchanged, and returns what the server now serves.
    ///
    /// The update is conditional on the records being what was just read,
    /// so a concurrent change fails with [`DnsErrorKind::Conflict`] rather
    /// than being overwritten.
    pub async fn set_ttl(&self, name: &str, ttl: u32) -> Result<RRset, DnsError> {
        let operation = format!("TTL change of {name} to {ttl}s");
        let error = |kind| self.error(&operation, kind);
        let name = self.in_zone(name).map_err(error)?;
        let current = self.query_name(&name).await.map_err(error)?;
        if current.is_empty() {
            return Err(error(DnsErrorKind::NoRecords(name.to_ascii())));
        }
        let mut update = self.update_message();
        require(&mut update, &name, &current);
        let expected = current.with_ttl(ttl);
        self.replace(&mut update, &name, &expected);
        self.apply(update, &name, &expected).await.map_err(error)
    }

    /// Replaces the A and AAAA records of `name` with `addresses` (A for
    /// IPv4, AAAA for IPv6; none deletes both) served with `ttl` seconds, and
    /// returns what the server now serves.
    pub async fn set_addresses(
        &self,
        name: &str,
        addresses: &[IpAddr],
        ttl: u32,
    ) -> Result<RRset, DnsError> {
        let operation = format!("update of {name}");
        let error = |kind| self.error(&operation, kind);
        let name = self.in_zone(name).map_err(error)?;
        let expected = RRset::new(ttl, addresses.iter().copied());
        let mut update = self.update_message();
        self.replace(&mut update, &name, &expected);
        self.apply(update, &name, &expected).await.map_err(error)
    }

    /// Puts back the A and AAAA records of `name` exactly as `captured`,
    /// for a revert, but only while they are still what the run set (`set`):
    /// a record someone else changed since is left alone
    /// ([`DnsErrorKind::NotOurs`]). The update carries RFC 2136
    /// prerequisites (the addresses are still `set`'s), so a change racing
    /// with it fails it ([`DnsErrorKind::Conflict`]) instead of being
    /// overwritten. When the server already serves `captured`, nothing is
    /// sent.
    pub async fn restore_if(
        &self,
        name: &str,
        captured: &RRset,
        set: &RRset,
    ) -> Result<RRset, DnsError> {
        let operation = format!("restore of {name} to {captured}");
        let error = |kind| self.error(&operation, kind);
        let name = self.in_zone(name).map_err(error)?;
        let served = self.query_name(&name).await.map_err(error)?;
        if served == *captured {
            return Ok(served);
        }
        if served != *set {
            return Err(error(DnsErrorKind::NotOurs {
                set: set.clone(),
                served,
            }));
        }
        let mut update = self.update_message();
        require(&mut update, &name, &served);
        self.replace(&mut update, &name, captured);
        self.apply(update, &name, captured).await.map_err(error)
    }

    /// Puts back the A and AAAA records of `name` exactly as `captured`
    /// (addresses and TTLs; an empty capture deletes them), whatever the
    /// server serves now.
    pub async fn restore(&self, name: &str, captured: &RRset) -> Result<RRset, DnsError> {
        let operation = format!("restore of {name} to {captured}");
        let error = |kind| self.error(&operation, kind);
        let name = self.in_zone(name).map_err(error)?;
        let mut update = self.update_message();
        self.replace(&mut update, &name, captured);
        self.apply(update, &name, captured).await.map_err(error)
    }

    pub(super) fn error(&self, operation: &str, kind: DnsErrorKind) -> DnsError {
        DnsError::new(operation, self.server.to_string(), kind)
    }

    pub(super) fn in_zone(&self, name: &str) -> Result<Name, DnsErrorKind> {
        let name = absolute(name)?;
        if !self.zone.zone_of(&name) {
            return Err(DnsErrorKind::OutsideZone {
                name: name.to_ascii(),
                zone: self.zone.to_ascii(),
            });
        }
        Ok(name)
    }

    pub(super) async fn query_name(&self, name: &Name) -> Result<RRset, DnsErrorKind> {
        let a = self.query_family(name, Family::V4).await?;
        let aaaa = self.query_family(name, Family::V6).await?;
        Ok(RRset::from_families(a, aaaa))
    }

    async fn query_family(
        &self,
        name: &Name,
        family: Family,
    ) -> Result<Option<(u32, Vec<IpAddr>)>, DnsErrorKind> {
        let mut request = Message::query();
        request.metadata.recursion_desired = false;
        request.add_query(Query::query(name.clone(), family.record_type()));
        let response = exchange(&self.server, &self.signer, self.timeout, request).await?;
        match response.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            other => return Err(self.rcode_error(other)),
        }
        if !response.metadata.authoritative {
            return Err(DnsErrorKind::NotAuthoritative {
                zone: self.zone.to_ascii(),
            });
        }
        let mut ttl = None;
        let mut addresses = Vec::new();
        // Only the name's own records: behind a CNAME are another name's.
        for record in response.answers.iter().filter(|r| r.name == *name) {
            let address = match &record.data {
                RData::A(A(v4)) => IpAddr::V4(*v4),
                RData::AAAA(AAAA(v6)) => IpAddr::V6(*v6),
                _ => continue,
            };
            // RFC 2181 5.2: one TTL per RRset; the lowest if a server errs.
            ttl = Some(ttl.map_or(record.ttl, |t: u32| t.min(record.ttl)));
            addresses.push(address);
        }
        Ok(ttl.map(|ttl| (ttl, addresses)))
    }

    /// An update message for the zone, with its zone section.
    fn update_message(&self) -> Message {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        let mut zone = Query::query(self.zone.clone(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        message.add_query(zone);
        message
    }

    /// Adds to `update`: delete the A and AAAA RRsets of `name`, then add
    /// `rrset`'s records (RFC 2136 2.5.2 and 2.5.1).
    fn replace(&self, update: &mut Message, name: &Name, rrset: &RRset) {
        for family in Family::BOTH {
            let mut delete = Record::update0(name.clone(), 0, family.record_type());
            delete.dns_class = DNSClass::ANY;
            update.add_authority(delete);
        }
        for family in Family::BOTH {
            if let Some(ttl) = family.ttl(rrset) {
                for address in rrset.addresses.iter().filter(|a| family.holds(a)) {
                    update.add_authority(address_record(name, ttl, *address));
                }
            }
        }
    }

    /// Sends `update`, then confirms the server serves `expected` at `name`.
    async fn apply(
        &self,
        update: Message,
        name: &Name,
        expected: &RRset,
    ) -> Result<RRset, DnsErrorKind> {
        tracing::debug!(server = %self.server, zone = %self.zone, name = %name, to = %expected, "DNS update");
        let response = exchange(&self.server, &self.signer, self.timeout, update).await?;
        match response.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXRRSet
            | ResponseCode::YXRRSet
            | ResponseCode::YXDomain
            | ResponseCode::NXDomain => {
                return Err(DnsErrorKind::Conflict {
                    rcode: rcode_name(response.metadata.response_code),
                });
            }
            other => return Err(self.rcode_error(other)),
        }
        let served = self.query_name(name).await?;
        if served != *expected {
            return Err(DnsErrorKind::NotApplied {
                expected: expected.clone(),
                served,
            });
        }
        Ok(served)
    }

    fn rcode_error(&self, rcode: ResponseCode) -> DnsErrorKind {
        match rcode {
            ResponseCode::Refused => DnsErrorKind::Refused,
            ResponseCode::NotAuth => DnsErrorKind::NotAuthoritative {
                zone: self.zone.to_ascii(),
            },
            other => DnsErrorKind::Rejected {
                rcode: rcode_name(other),
            },
        }
    }
}

/// Adds to `update` the prerequisites that `name`'s A and AAAA RRsets are
/// exactly `current`'s addresses (RFC 2136 2.4.2), or absent (2.4.3).
fn require(update: &mut Message, name: &Name, current: &RRset) {
    for family in Family::BOTH {
        match family.ttl(current) {
            Some(_) => {
                for address in current.addresses.iter().filter(|a| family.holds(a)) {
                    update.add_answer(address_record(name, 0, *address));
                }
            }
            None => {
                let mut absent = Record::update0(name.clone(), 0, family.record_type());
                absent.dns_class = DNSClass::NONE;
                update.add_answer(absent);
            }
        }
    }
}

/// An A or AAAA record in class IN.
fn address_record(name: &Name, ttl: u32, address: IpAddr) -> Record {
    let data = match address {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name.clone(), ttl, data)
}

/// `text` as an absolute name, trailing dot or not.
fn absolute(text: &str) -> Result<Name, DnsErrorKind> {
    let invalid = || DnsErrorKind::InvalidName(text.to_owned());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut name = Name::from_ascii(trimmed).map_err(|_| invalid())?;
    name.set_fqdn(true);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(zone: &str) -> DnsClient {
        let key = TsigKey::new("k", "hmac-sha256", vec![7; 32]).unwrap();
        DnsClient::new("127.0.0.1:1", zone, &key).unwrap()
    }

    #[test]
    fn names_are_absolute_and_must_be_in_the_zone() {
        let dns = client("lab.test");
        assert_eq!(dns.zone(), "lab.test.");
        assert_eq!(
            dns.in_zone("www.lab.test").unwrap(),
            dns.in_zone("WWW.Lab.Test.").unwrap()
        );
        assert!(dns.in_zone("lab.test.").is_ok());
        assert!(matches!(
            dns.in_zone("www.other.test."),
            Err(DnsErrorKind::OutsideZone { name, zone }) if name == "www.other.test." && zone == "lab.test."
        ));
        assert!(matches!(
            dns.in_zone("notlab.test."),
            Err(DnsErrorKind::OutsideZone { .. })
        ));
        assert!(matches!(dns.in_zone(""), Err(DnsErrorKind::InvalidName(_))));
        assert!(matches!(
            dns.in_zone("a..b"),
            Err(DnsErrorKind::InvalidName(_))
        ));
    }

    #[test]
    fn bad_servers_are_refused_up_front() {
        let key = TsigKey::new("k", "hmac-sha256", vec![7; 32]).unwrap();
        let error = DnsClient::new("127.0.0.1:dns", "lab.test.", &key).unwrap_err();
        assert!(matches!(error.kind(), DnsErrorKind::InvalidServer(_)));
        assert_eq!(
            error.to_string(),
            "DNS setup at 127.0.0.1:dns: `127.0.0.1:dns` is not host:port"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let key = TsigKey::new("k", "hmac-sha256", b"sesame-sesame-sesame".to_vec()).unwrap();
        let dns = DnsClient::new("127.0.0.1:53", "lab.test.", &key).unwrap();
        let debug = format!("{dns:?}");
        assert!(!debug.contains("sesame"), "{debug}");
        assert!(debug.contains("k."), "{debug}");
    }

    #[test]
    fn replacing_deletes_both_families_and_adds_each_with_its_ttl() {
        let dns = client("lab.test.");
        let name = dns.in_zone("www.lab.test.").unwrap();
        let rrset = RRset {
            ttl: Some(300),
            distinct_aaaa_ttl: Some(600),
            addresses: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
        };
        let mut update = dns.update_message();
        dns.replace(&mut update, &name, &rrset);
        let summary: Vec<_> = update
            .authorities
            .iter()
            .map(|r| (r.dns_class, r.record_type(), r.ttl))
            .collect();
        assert_eq!(
            summary,
            [
                (DNSClass::ANY, RecordType::A, 0),
                (DNSClass::ANY, RecordType::AAAA, 0),
                (DNSClass::IN, RecordType::A, 300),
                (DNSClass::IN, RecordType::AAAA, 600),
            ]
        );
        assert_eq!(update.metadata.op_code, OpCode::Update);
        assert_eq!(update.queries[0].query_type(), RecordType::SOA);
    }
}

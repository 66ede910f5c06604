//! What can go wrong talking to the authoritative server.

use std::time::Duration;

use super::key::KeyError;
use super::rrset::{CaptureError, RRset};

/// A DNS operation that failed: what was being done, at which server, and
/// why ([`DnsError::kind`]).
#[derive(Debug, thiserror::Error)]
#[error("DNS {operation} at {server}: {kind}")]
pub struct DnsError {
    operation: String,
    server: String,
    // Boxed: results carrying it stay small, and errors are rare.
    kind: Box<DnsErrorKind>,
}

impl DnsError {
    pub(crate) fn new(
        operation: impl Into<String>,
        server: impl Into<String>,
        kind: DnsErrorKind,
    ) -> Self {
        Self {
            operation: operation.into(),
            server: server.into(),
            kind: Box::new(kind),
        }
    }

    /// Why it failed.
    pub fn kind(&self) -> &DnsErrorKind {
        &self.kind
    }

    /// Whether the server did not accept our key or signature (or we did
    /// not accept its): a wrong key name, secret or algorithm, or clocks too
    /// far apart.
    pub fn is_authentication(&self) -> bool {
        matches!(*self.kind, DnsErrorKind::Authentication(_))
    }
}

/// Why a DNS operation failed. Callers branch on it: an authentication
/// failure or a refusal will not go away by retrying; a timeout may.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// The TSIG key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The server is not `host` or `host:port`.
    #[error("`{0}` is not host:port")]
    InvalidServer(String),
    /// A name that is not a DNS name.
    #[error("`{0}` is not a valid DNS name")]
    InvalidName(String),
    /// The name is not in the zone the client updates (checked before
    /// anything is sent).
    #[error("{name} is not in zone {zone}")]
    OutsideZone {
        /// The name.
        name: String,
        /// The zone.
        zone: String,
    },
    /// The server did not accept the key or the signature, or its answer
    /// did not verify.
    #[error("authentication failed: {0}")]
    Authentication(AuthFailure),
    /// The server refused (REFUSED): typically the key may not update this
    /// name or zone, or the server does not answer for it.
    #[error("refused by the server (REFUSED)")]
    Refused,
    /// The server is not authoritative for the zone (NOTAUTH with a valid
    /// signature), or answered a query without authority.
    #[error("the server is not authoritative for zone {zone}")]
    NotAuthoritative {
        /// The zone.
        zone: String,
    },
    /// The records changed between reading and updating them (an RFC 2136
    /// prerequisite failed: NXRRSET or YXRRSET); read again and retry.
    #[error("the records changed meanwhile (prerequisite failed: {rcode})")]
    Conflict {
        /// The response code.
        rcode: String,
    },
    /// Any other error response (SERVFAIL, FORMERR, NOTZONE, ...).
    #[error("the server answered {rcode}")]
    Rejected {
        /// The response code.
        rcode: String,
    },
    /// No answer in time.
    #[error("no answer within {}", humanize(*.after))]
    Timeout {
        /// The deadline that passed.
        after: Duration,
    },
    /// The connection failed (refused, reset, unreachable).
    #[error("network error: {0}")]
    Network(std::io::Error),
    /// The answer was not a well-formed answer to our message.
    #[error("malformed answer: {0}")]
    Protocol(String),
    /// `set_ttl` on a name without A or AAAA records.
    #[error("{0} has no A or AAAA records")]
    NoRecords(String),
    /// The server accepted the update but does not serve what it should
    /// (for example, the name is a CNAME, which RFC 2136 servers keep by
    /// silently ignoring the addresses).
    #[error("the update was accepted, but the server serves {served} instead of {expected}")]
    NotApplied {
        /// What the update should have left.
        expected: RRset,
        /// What the server serves.
        served: RRset,
    },
    /// A revert found the records changed since this run set them: someone
    /// (or something) else changed them, and putting back what this run
    /// captured would overwrite that. Nothing was changed.
    #[error(
        "not restoring: the server serves {served}, not what this run set ({set}); someone else \
         changed it since, and a restore would overwrite that"
    )]
    NotOurs {
        /// What this run set.
        set: RRset,
        /// What the server serves now.
        served: RRset,
    },
    /// The journaled capture cannot be read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The records changed while waiting for caches to expire, so the wait
    /// proved nothing.
    #[error("the records changed during the wait: {before} became {after}")]
    ChangedDuringWait {
        /// Served when the wait began.
        before: RRset,
        /// Served when it ended.
        after: RRset,
    },
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// How TSIG authentication failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The server does not know the key's name or algorithm (BADKEY).
    #[error("the server does not know this key name or algorithm (BADKEY)")]
    UnknownKey,
    /// The signature did not verify: the secret is wrong (BADSIG).
    #[error("the server rejected the signature; is the secret right? (BADSIG)")]
    BadSignature,
    /// The clocks of this machine and the server are too far apart (BADTIME).
    #[error("the clocks of this machine and the server differ too much (BADTIME)")]
    BadTime,
    /// Another TSIG error code.
    #[error("TSIG error {0}")]
    Other(u16),
    /// NOTAUTH without a TSIG record: the server did not accept the key.
    #[error("the server answered NOTAUTH without a TSIG record")]
    NotAuthorized,
    /// The server's answer is not signed, so it cannot be trusted.
    #[error("the server's answer is not signed")]
    UnsignedAnswer,
    /// The server's answer is signed, but not with our key, or was
    /// altered, or is outside the time window.
    #[error("the server's answer did not verify")]
    AnswerDidNotVerify,
}

fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        format!("{} s", millis / 1000)
    } else {
        format!("{millis} ms")
    }
}

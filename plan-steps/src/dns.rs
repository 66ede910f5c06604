//! The DNS steps: `DnsTtl` and `DnsRecord` as RFC 2136 updates signed with
//! TSIG, the exact revert of both, `WaitTtl`, and the `Resolves` check.
//!
//! Every message goes to the zone's authoritative server, signed with the
//! plan's key ([`TsigKey`], read from a BIND key file or an environment
//! variable, never from the plan text, never shown). A change first reads
//! the name's A and AAAA records ([`DnsClient::query`]); the executor
//! journals them ([`capture_to_string`]) before the change, so a revert
//! ([`DnsClient::restore`]) puts back exactly that, also after a crash.
//!
//! It is not a resolver: it asks only the one server, and follows no
//! CNAME. It does not decide when to change what; the run machine does.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use plan_steps::dns::{capture_to_string, parse_capture, DnsClient, TsigKey};
//!
//! let key = TsigKey::from_file("/etc/cutover/tsig.key".as_ref())?;
//! let dns = DnsClient::new("127.0.0.1:5353", "lab.test.", &key)?;
//! let before = dns.query("www.lab.test.").await?;
//! let journaled = capture_to_string(&before); // into the journal, first
//! dns.set_addresses("www.lab.test.", &["192.0.2.20".parse()?], 300).await?;
//! // ... and should the cutover roll back:
//! dns.restore("www.lab.test.", &parse_capture(&journaled)?).await?;
//! # Ok(()) }
//! ```

mod client;
mod error;
mod key;
mod rrset;
mod transport;
mod wait;

pub use client::DnsClient;
pub use error::{AuthFailure, DnsError, DnsErrorKind};
pub use key::{KeyError, KeyErrorKind, TsigKey};
pub use rrset::{capture_to_string, parse_capture, CaptureError, RRset};
pub use wait::{WaitProgress, Waited};

//! `WaitTtl`: wait until no cache can still hold what a name resolved to
//! before a change, and confirm at the authoritative server that what it
//! serves now held still meanwhile.

use std::future::Future;
use std::time::{Duration, SystemTime};

use super::client::DnsClient;
use super::error::{DnsError, DnsErrorKind};
use super::rrset::RRset;

/// How often [`DnsClient::wait_ttl`] reports progress.
const TICK: Duration = Duration::from_secs(1);

/// Where a TTL wait stands, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitProgress {
    /// Waited so far in this call.
    pub waited: Duration,
    /// Still to wait.
    pub remaining: Duration,
}

/// A finished TTL wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waited {
    /// How long this call waited (zero when the TTL had already run out).
    pub waited: Duration,
    /// What the server serves, the same at the start and the end.
    pub served: RRset,
}

impl DnsClient {
    /// Waits until `previous_ttl` seconds have passed since `changed_at`,
    /// when `name`'s records were changed, so that no cache still holds the
    /// records from before.
    ///
    /// It asks the authoritative server what it serves at the start (which
    /// must equal `expected`, when given: the new records) and again at the
    /// end (which must not have changed, or the clock would have restarted:
    /// [`DnsErrorKind::ChangedDuringWait`]). `progress` is called at the
    /// start, about every second and at the end. When `cancel` completes
    /// first, the wait ends with [`DnsErrorKind::Cancelled`].
    ///
    /// A `changed_at` in the future (a clock set back) waits no longer than
    /// `previous_ttl` from now.
    pub async fn wait_ttl(
        &self,
        name: &str,
        previous_ttl: u32,
        changed_at: SystemTime,
        expected: Option<&RRset>,
        cancel: impl Future<Output = ()>,
        mut progress: impl FnMut(WaitProgress),
    ) -> Result<Waited, DnsError> {
        let operation = format!("TTL wait for {name}");
        let error = |kind| self.error(&operation, kind);
        let name = self.in_zone(name).map_err(error)?;
        let before = self.query_name(&name).await.map_err(error)?;
        if let Some(expected) = expected.filter(|e| **e != before) {
            return Err(error(DnsErrorKind::NotApplied {
                expected: expected.clone(),
                served: before,
            }));
        }

        let previous_ttl = Duration::from_secs(u64::from(previous_ttl));
        let since_change = SystemTime::now()
            .duration_since(changed_at)
            .unwrap_or_default();
        let remaining = previous_ttl.saturating_sub(since_change);
        let start = tokio::time::Instant::now();
        let deadline = start + remaining;
        tracing::debug!(name = %name, remaining = ?remaining, "waiting for the previous TTL to run out");

        let mut cancel = std::pin::pin!(cancel);
        loop {
            let now = tokio::time::Instant::now();
            let left = deadline.saturating_duration_since(now);
            progress(WaitProgress {
                waited: now - start,
                remaining: left,
            });
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = &mut cancel => return Err(error(DnsErrorKind::Cancelled)),
                () = tokio::time::sleep(left.min(TICK)) => {}
            }
        }

        let after = self.query_name(&name).await.map_err(error)?;
        if after != before {
            return Err(error(DnsErrorKind::ChangedDuringWait { before, after }));
        }
        Ok(Waited {
            waited: start.elapsed(),
            served: after,
        })
    }
}

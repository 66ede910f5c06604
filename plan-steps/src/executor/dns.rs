//! The DNS actions: `DnsTtl` and `DnsRecord` (capture, update, restore) and `WaitTtl`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use plan_core::{Action, Plan, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript};
use crate::dns::{capture_to_string, parse_capture, RRset};
use crate::history::{note_ttl_change, TtlChange, MAX_TTL_WAIT};
use plan_core::duration::format_duration;

/// Captures the record, journals it, and sets its TTL to `ttl`; remembers
/// when, and from what, for a later `WaitTtl`.
pub(super) async fn set_ttl(
    ex: &Executor,
    step: &Step,
    record: &str,
    ttl: Duration,
    transcript: &mut Transcript,
) -> Result<(), Failure> {
    let dns = ex.dns().await?;
    let before = dns.query(record).await?;
    ex.capture(&step.id, capture_to_string(&before)).await?;
    let seconds = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
    let served = dns.set_ttl(record, seconds).await?;
    transcript.note(&format!("[dns] {record}: {before} -> {served}"));
    if let (Some(previous), Ok(mut changes)) = (before.longest_ttl(), ex.ttl_changes.lock()) {
        let change = TtlChange {
            at: SystemTime::now(),
            previous,
        };
        note_ttl_change(&mut changes, record, change);
    }
    Ok(())
}

impl Executor {
    /// The TTL change of `record` whose old answers caches may keep longest,
    /// known to this run (or its journal).
    fn ttl_change(&self, record: &str) -> Option<TtlChange> {
        self.ttl_changes
            .lock()
            .ok()
            .and_then(|c| c.get(record).copied())
    }

    /// Whether no resolver can still hold `record` under the TTL it had
    /// before its last known change (true when none is known).
    pub(super) fn ttl_expired(&self, record: &str) -> bool {
        self.ttl_change(record)
            .is_none_or(|c| c.remaining(SystemTime::now()).is_zero())
    }
}

/// Before a switch: the TTL `record` had before its last change must have
/// run out, or resolvers would keep sending users to the old address. Waits
/// for it (saying why) up to [`MAX_TTL_WAIT`]; refuses the switch beyond.
async fn old_ttl_expired(
    ex: &Executor,
    step: &Step,
    record: &str,
    mut cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let Some(change) = ex.ttl_change(record) else {
        return Ok(());
    };
    let left = change.remaining(SystemTime::now());
    if left.is_zero() {
        return Ok(());
    }
    let ago = SystemTime::now()
        .duration_since(change.at)
        .unwrap_or_default();
    let why = format!(
        "the TTL of {record} changed {} ago; resolvers may hold its old address under the \
         previous TTL ({}s) for {} more",
        format_duration(ago),
        change.previous,
        format_duration(left)
    );
    if left > MAX_TTL_WAIT {
        return Err(Failure::Failed(format!(
            "not switching: {why}, longer than a switch waits ({}); run this phase once the \
             old TTL has run out",
            format_duration(MAX_TTL_WAIT)
        )));
    }
    ex.note(&step.id, format!("waiting before the switch: {why}"));
    tokio::select! {
        () = tokio::time::sleep(left) => Ok(()),
        // Nothing has changed yet, but the driver takes a cancelled step
        // as in doubt, and its check (the record as served) decides.
        () = cancel.as_mut() => Err(Failure::InDoubt("cancelled while waiting for the old TTL to run out".into())),
    }
}

/// Whether an in-doubt `DnsTtl` took effect: the server serves `ttl`.
pub(super) async fn ttl_done(ex: &Executor, record: &str, ttl: Duration) -> Result<bool, Failure> {
    let served = ex.dns().await?.query(record).await?;
    Ok(served.longest_ttl() == u32::try_from(ttl.as_secs()).ok())
}

/// Captures the record, journals it, and points it at `addresses`, keeping
/// the TTL it had (the declared one when it had none).
pub(super) async fn set_addresses(
    ex: &Executor,
    step: &Step,
    record: &str,
    addresses: &[IpAddr],
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<(), Failure> {
    old_ttl_expired(ex, step, record, cancel).await?;
    let dns = ex.dns().await?;
    let before = dns.query(record).await?;
    ex.capture(&step.id, capture_to_string(&before)).await?;
    let ttl = set_ttl_of(ex, record, &before);
    let served = dns.set_addresses(record, addresses, ttl).await?;
    transcript.note(&format!("[dns] {record}: {before} -> {served}"));
    Ok(())
}

/// Whether an in-doubt `DnsRecord` took effect: the server serves exactly
/// `addresses`.
pub(super) async fn addresses_done(
    ex: &Executor,
    record: &str,
    addresses: &[IpAddr],
) -> Result<bool, Failure> {
    let served = ex.dns().await?.query(record).await?;
    Ok(RRset::new(0, addresses.iter().copied()).addresses == served.addresses)
}

/// Undoes a `DnsTtl` or a `DnsRecord`: puts back the records `captured`
/// before the change, only while the server still serves what the step set
/// (a record someone else changed since is not overwritten: the revert
/// fails, and the run halts for the operator).
pub(super) async fn restore(
    ex: &Executor,
    step: &Step,
    record: &str,
    captured: Option<&str>,
    transcript: &mut Transcript,
) -> Result<(), Failure> {
    let before = captured
        .ok_or_else(|| Failure::Failed(format!("no captured records of {record} to restore")))
        .and_then(|text| parse_capture(text).map_err(|e| Failure::Failed(e.to_string())))?;
    let set = match &step.action {
        Action::DnsTtl { ttl, .. } => {
            before.with_ttl(u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX))
        }
        Action::DnsRecord { addresses, .. } => {
            RRset::new(set_ttl_of(ex, record, &before), addresses.iter().copied())
        }
        _ => return Err(Failure::not_revertible()),
    };
    let dns = ex.dns().await?;
    let served = dns.restore_if(record, &before, &set).await?;
    transcript.note(&format!("[dns] {record} restored: {served}"));
    Ok(())
}

/// The TTL a `DnsRecord` switch serves its addresses with: the one the
/// record had (`before`), else the declared one.
fn set_ttl_of(ex: &Executor, record: &str, before: &RRset) -> u32 {
    before.ttl.unwrap_or_else(|| {
        ex.plan
            .record(record)
            .map_or(300, |r| u32::try_from(r.ttl.as_secs()).unwrap_or(u32::MAX))
    })
}

/// Waits until caches can no longer hold `record` under its previous TTL.
pub(super) async fn wait_ttl(
    ex: &Executor,
    step: &Step,
    record: &str,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<(), Failure> {
    let dns = ex.dns().await?;
    let change = ex.ttl_change(record);
    // Without a change known to this run or its journal (a change made by
    // hand, or a journal without it), wait the whole previous TTL from
    // now: never less.
    let (changed_at, previous) = change.map_or_else(
        || (SystemTime::now(), previous_ttl(&ex.plan, &step.id, record)),
        |c| (c.at, c.previous),
    );
    let waited = dns
        .wait_ttl(record, previous, changed_at, None, cancel, |_| {})
        .await?;
    transcript.note(&format!(
        "[dns] waited {}s for caches of {record} to expire",
        waited.waited.as_secs()
    ));
    Ok(())
}

/// The TTL caches may hold a record with before `step` (a `WaitTtl`): the
/// TTL set by the last `DnsTtl` on it before the one preceding `step`, or the
/// record's declared TTL.
fn previous_ttl(plan: &Plan, step: &str, record: &str) -> u32 {
    let mut in_force = plan.record(record).map(|r| r.ttl);
    let mut before_last_change = in_force;
    for s in plan.steps() {
        if s.id == step {
            break;
        }
        if let Action::DnsTtl { record: r, ttl } = &s.action {
            if r == record {
                before_last_change = in_force;
                in_force = Some(*ttl);
            }
        }
    }
    before_last_change.map_or(0, |ttl| u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::super::test_plan::{plan, scratch};
    use super::previous_ttl;

    #[test]
    fn a_wait_for_caches_waits_for_the_ttl_before_the_last_change() {
        let dir = scratch();
        let plan = plan(
            dir.path(),
            r#"dns: Rfc2136(server: "127.0.0.1:53", zone: "example.org.",
                    key: TsigFile("/nonexistent/test.key"),
                    records: { "www.example.org.": Record(ttl: "1h", addresses: ["192.0.2.10"]) }),"#,
            r#"Step(id: "wait-first", action: WaitTtl(record: "www.example.org.")),
               Step(id: "lower", action: DnsTtl(record: "www.example.org.", ttl: "5m")),
               Step(id: "wait-lower", action: WaitTtl(record: "www.example.org.")),
               Step(id: "lowest", action: DnsTtl(record: "www.example.org.", ttl: "1m")),
               Step(id: "wait-lowest", action: WaitTtl(record: "www.example.org."))"#,
        );
        let record = "www.example.org.";
        // Before any change: the TTL in force is the declared one.
        assert_eq!(previous_ttl(&plan, "wait-first", record), 3600);
        // After a change, caches may hold the record under the TTL before it.
        assert_eq!(previous_ttl(&plan, "wait-lower", record), 3600);
        assert_eq!(previous_ttl(&plan, "wait-lowest", record), 300);
        // A record the plan does not declare has nothing to wait for.
        assert_eq!(previous_ttl(&plan, "wait-lowest", "other.example.org."), 0);
    }
}

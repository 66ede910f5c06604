//! The DNS actions: `DnsTtl` and `DnsRecord` (capture, update, restore) and `WaitTtl`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use plan_core::{Action, Plan, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript};
use crate::dns::{capture_to_string, parse_capture, RRset};

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
        changes.insert(record.to_owned(), (SystemTime::now(), previous));
    }
    Ok(())
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
) -> Result<(), Failure> {
    let dns = ex.dns().await?;
    let before = dns.query(record).await?;
    ex.capture(&step.id, capture_to_string(&before)).await?;
    let ttl = before.ttl.unwrap_or_else(|| {
        ex.plan
            .record(record)
            .map_or(300, |r| u32::try_from(r.ttl.as_secs()).unwrap_or(u32::MAX))
    });
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
/// before the change.
pub(super) async fn restore(
    ex: &Executor,
    record: &str,
    captured: Option<&str>,
    transcript: &mut Transcript,
) -> Result<(), Failure> {
    let before = captured
        .ok_or_else(|| Failure::Failed(format!("no captured records of {record} to restore")))
        .and_then(|text| parse_capture(text).map_err(|e| Failure::Failed(e.to_string())))?;
    let dns = ex.dns().await?;
    let served = dns.restore(record, &before).await?;
    transcript.note(&format!("[dns] {record} restored: {served}"));
    Ok(())
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
    let change = ex
        .ttl_changes
        .lock()
        .ok()
        .and_then(|c| c.get(record).copied());
    // Without a change seen by this run (an earlier phase, or a
    // resume), wait the whole previous TTL from now: never less.
    let (changed_at, previous) =
        change.unwrap_or_else(|| (SystemTime::now(), previous_ttl(&ex.plan, &step.id, record)));
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

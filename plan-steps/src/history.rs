//! What a journal's times say, for the rules that hold at run time whatever
//! the phases promised: when each record's TTL last changed and from what
//! (a DNS switch waits for the old TTL to run out), when each interrupted
//! wait began (a resumed wait goes on from there), and when each phase's
//! last completed run ended (a later phase is not run before its anchor).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use plan_core::journal::Record;
use plan_core::machine::{users_change, Effect, Event, RunRecord, UsersChange};
use plan_core::{Action, Plan};

use crate::dns::parse_capture;

/// The longest a `DnsRecord` switch waits for the TTL a record had before
/// its last change to run out. A longer wait refuses the switch instead:
/// the phases were run too close together, and the operator decides.
pub const MAX_TTL_WAIT: Duration = Duration::from_secs(10 * 60);

/// A TTL change: when it was made (at the latest), and the TTL before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlChange {
    /// When the change was known to be in place (the record that said so).
    pub at: SystemTime,
    /// The TTL before the change, in seconds: resolvers may hold the
    /// record as it was for that long after `at`.
    pub previous: u32,
}

impl TtlChange {
    /// When no resolver can hold the record as it was before the change.
    pub fn expires(&self) -> SystemTime {
        self.at + Duration::from_secs(u64::from(self.previous))
    }

    /// How long until then, from `now` (zero once past).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires().duration_since(now).unwrap_or_default()
    }
}

/// Records `change` of `record` unless a change already known keeps old
/// answers in caches longer: lowering a TTL again does not shorten how long
/// caches keep what they fetched under the first, longer one.
pub fn note_ttl_change(changes: &mut HashMap<String, TtlChange>, record: &str, change: TtlChange) {
    match changes.get(record) {
        Some(known) if known.expires() >= change.expires() => {}
        _ => {
            changes.insert(record.to_owned(), change);
        }
    }
}

/// What the journal's times say.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The TTL change of each record whose old answers caches may keep
    /// longest, by fully qualified name.
    pub ttl_changes: HashMap<String, TtlChange>,
    /// When the last attempt of each `Wait`/`WaitTtl` step began, for the
    /// ones that have not finished.
    pub waits_started: HashMap<String, SystemTime>,
    /// When each phase's last completed run ended.
    pub phase_ends: HashMap<String, SystemTime>,
    /// When users went down (the `downtime: Begins` step began) and are not
    /// back yet (its `Ends` step has not succeeded): the downtime budget
    /// counts from then, across crashes.
    pub down_since: Option<SystemTime>,
    /// When each process group (by host and id) was first journaled: when
    /// its command began, give or take a record. A leftover's deadline
    /// counts from then.
    pub processes_started: HashMap<(Option<String>, i32), SystemTime>,
}

impl History {
    /// Reads `records` (the whole journal, with times, every attempt) of
    /// `plan`.
    pub fn read(plan: &Plan, records: &[Record<RunRecord>]) -> History {
        let mut history = History::default();
        let mut captured_ttl: HashMap<&str, u32> = HashMap::new();
        let mut phase: Option<String> = None;
        for record in records {
            let Some(time) = time_of(record) else {
                continue;
            };
            match users_change(plan, &record.entry) {
                Some(UsersChange::Down) if history.down_since.is_none() => {
                    history.down_since = Some(time);
                }
                Some(UsersChange::Back) => history.down_since = None,
                _ => {}
            }
            match &record.entry {
                RunRecord::RunStarted { phase: p, .. } => phase = p.clone(),
                // The run's phase is done: every step of it succeeded.
                RunRecord::Transition { to, .. } if to.starts_with("Completed") => {
                    if let Some(p) = &phase {
                        history.phase_ends.insert(p.clone(), time);
                    }
                }
                RunRecord::Process { group, .. } => {
                    history
                        .processes_started
                        .entry((group.host.clone(), group.pgid))
                        .or_insert(time);
                }
                RunRecord::Captured { step, state } => {
                    if let (Some(Action::DnsTtl { .. }), Ok(rrset)) =
                        (plan.step(step).map(|s| &s.action), parse_capture(state))
                    {
                        if let Some(ttl) = rrset.longest_ttl() {
                            captured_ttl.insert(step.as_str(), ttl);
                        }
                    }
                }
                RunRecord::EffectStarted {
                    effect: Effect::Forward { step, .. } | Effect::Confirm { step },
                } => {
                    let Some(s) = plan.step(step) else { continue };
                    if matches!(s.action, Action::Wait(_) | Action::WaitTtl { .. }) {
                        history.waits_started.insert(step.clone(), time);
                    }
                }
                RunRecord::Event { event } => {
                    let Some(step) = event.step() else { continue };
                    let took_effect = event.took_effect();
                    if took_effect {
                        history.waits_started.remove(step);
                    }
                    let Some(Action::DnsTtl { record, ttl }) = plan.step(step).map(|s| &s.action)
                    else {
                        continue;
                    };
                    if took_effect {
                        if let Some(&previous) = captured_ttl.get(step.as_str()) {
                            let change = TtlChange { at: time, previous };
                            note_ttl_change(&mut history.ttl_changes, record, change);
                        }
                    } else if matches!(event, Event::RevertSucceeded { .. }) {
                        // Put back: caches may hold it under the lowered TTL.
                        let previous = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
                        let change = TtlChange { at: time, previous };
                        note_ttl_change(&mut history.ttl_changes, record, change);
                    }
                }
                _ => {}
            }
        }
        history
    }
}

fn time_of(record: &Record<RunRecord>) -> Option<SystemTime> {
    let at = record.time.parse::<jiff::Timestamp>().ok()?;
    let nanos = u64::try_from(at.as_nanosecond()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}

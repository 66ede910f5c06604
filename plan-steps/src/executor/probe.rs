//! `cutover probe`: the hosts, the DNS server and every step looked at,
//! nothing changed (see [`crate::probe`] for what is run). This file
//! reaches the hosts and the DNS server and walks the plan; `probe/step.rs`
//! looks at one step, `probe/copy.rs` at a copy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use plan_core::duration::format_duration;
use plan_core::machine::Schedule;
use plan_core::{Action, Check, Step};

use super::{Executor, Transcript};
use crate::command::ShellOutcome;
use crate::dns::RRset;
use crate::probe::{
    FindingKind as Kind, Probed,
    Severity::{Blocker, Fact},
};
use crate::ssh::{SshEnv, SshErrorKind};

mod copy;
mod step;

/// How long one look on a host may take.
const LOOK_DEADLINE: Duration = Duration::from_secs(60);

/// How long a copy's dry run may take when its step has no deadline.
const DRY_RUN_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// How long the timed transfer may take (32 MiB in 2 minutes: 280 kB/s);
/// slower links get no rate, and the estimate keeps the plan's model.
const RATE_DEADLINE: Duration = Duration::from_secs(120);

/// How many bytes of zeros the timed transfer between two hosts sends.
pub const RATE_SAMPLE_BYTES: u64 = 32 * 1024 * 1024;

/// A record as the plan expects it: TTL and addresses (empty: not said).
#[derive(Clone, Debug)]
struct Expected {
    ttl: u32,
    addresses: Vec<IpAddr>,
    /// The step whose change it follows, if any.
    after: Option<String>,
}

impl Executor {
    /// Looks at everything `schedule`'s steps need, changing nothing: the
    /// hosts (host keys against known_hosts, never adding one; the login;
    /// the user it lands as), the DNS server (a signed query), and each
    /// step's programs, check, records, unit and pending copy.
    pub async fn probe(&self, schedule: &Schedule) -> Probed {
        // Never trusting a new host key, however this executor was made
        // (a reconnect included): the probe adds nothing to known_hosts.
        let strict = Executor {
            ssh: super::SshOptions {
                accept_new: false,
                ..self.ssh.clone()
            },
            ..self.clone()
        };
        strict.probe_strictly(schedule).await
    }

    async fn probe_strictly(&self, schedule: &Schedule) -> Probed {
        let mut probed = Probed::default();
        let steps: Vec<&Step> = schedule
            .steps
            .iter()
            .filter_map(|s| self.plan.step(&s.id))
            .collect();
        let reached = self.probe_hosts(&steps, &mut probed).await;
        let (dns, served) = self.probe_dns(&steps, &mut probed).await;
        let mut seen = Seen {
            expected: self.declared_records(),
            served,
            ..Seen::default()
        };
        // In the plan's order: a step the run does is probed; one it does
        // not (done, or of an earlier phase) leaves its records as it
        // changed them; those of later phases are not there yet.
        let first_phase = schedule.steps.first().and_then(|s| {
            self.plan
                .phases
                .iter()
                .position(|p| p.steps().any(|step| step.id == s.id))
        });
        for (phase_ix, phase) in self.plan.phases.iter().enumerate() {
            for step in phase.steps() {
                if schedule.index_of(&step.id).is_some() {
                    let prober = StepProbe {
                        ex: self,
                        step,
                        reached: &reached,
                    };
                    prober.probe(dns, &mut seen, &mut probed).await;
                } else if !step.pending() || first_phase.is_some_and(|f| phase_ix < f) {
                    apply(&mut seen.expected, step);
                }
            }
        }
        probed.rank();
        probed
    }

    /// Connects to every host the steps use; returns those reached.
    async fn probe_hosts(&self, steps: &[&Step], probed: &mut Probed) -> BTreeSet<String> {
        let mut hosts: BTreeSet<String> = BTreeSet::new();
        for step in steps {
            hosts.extend(step_hosts(step));
        }
        let env = SshEnv::from_process();
        let mut reached = BTreeSet::new();
        let mut targets = Vec::new();
        for host in &hosts {
            if host == plan_core::Host::LOCAL {
                reached.insert(host.clone());
                continue;
            }
            match self.target(host, &env) {
                Ok(target) => targets.push(target),
                Err(e) => probed.add(Blocker, Kind::HostUnreachable, None, Some(host), e.message),
            }
        }
        for (target, opened) in targets.iter().zip(self.open_sessions(&targets, &env).await) {
            let host = target.name.as_str();
            match opened {
                Ok(key) => {
                    reached.insert(host.to_owned());
                    probed.add(
                        Fact,
                        Kind::HostReached,
                        None,
                        Some(host),
                        format!(
                            "reached {}@{}:{} (host key {} {}, as on record)",
                            target.user,
                            target.address,
                            target.port,
                            key.key_type,
                            key.fingerprint()
                        ),
                    );
                }
                Err(e) => {
                    let kind = match e.kind() {
                        SshErrorKind::HostKeyUnknown => Kind::HostKeyUnknown,
                        SshErrorKind::HostKeyChanged => Kind::HostKeyChanged,
                        SshErrorKind::Auth => Kind::LoginRefused,
                        _ => Kind::HostUnreachable,
                    };
                    let message = e.to_string();
                    let message = message
                        .strip_prefix(&format!("{host}: "))
                        .unwrap_or(&message);
                    probed.add(Blocker, kind, None, Some(host), message);
                }
            }
        }
        // Who each login lands as: sudo rules and file modes depend on it.
        for host in &reached {
            if let Ok(out) = self.look(None, host, "id -un").await {
                if out.success() {
                    probed.add(
                        Fact,
                        Kind::HostReached,
                        None,
                        Some(host),
                        format!("commands run as `{}`", out.output.trim()),
                    );
                }
            }
        }
        reached
    }

    /// A signed query for each record the steps touch: the server answers
    /// and takes the key. Whether DNS is of use for the steps' looks, and
    /// what each record that answered serves (the steps compare it with
    /// what the plan expects, without asking again).
    async fn probe_dns(
        &self,
        steps: &[&Step],
        probed: &mut Probed,
    ) -> (bool, BTreeMap<String, RRset>) {
        let mut served = BTreeMap::new();
        let records = dns_records(steps);
        if records.is_empty() {
            return (false, served);
        }
        let dns = match self.dns().await {
            Ok(dns) => dns,
            Err(e) => {
                probed.add(
                    Blocker,
                    Kind::DnsUnreachable,
                    None,
                    None,
                    format!("the DNS client cannot be set up: {}", e.message()),
                );
                return (false, served);
            }
        };
        for record in &records {
            match dns.query(record).await {
                Ok(rrset) => {
                    served.insert(record.clone(), rrset);
                }
                Err(e) if e.is_authentication() => {
                    probed.add(
                        Blocker,
                        Kind::TsigRefused,
                        None,
                        None,
                        format!("the DNS server refuses the plan's TSIG key: {e}"),
                    );
                    return (false, served);
                }
                Err(e) => probed.add(
                    Blocker,
                    Kind::DnsUnreachable,
                    None,
                    None,
                    format!("{record}: {e}"),
                ),
            }
        }
        if served.is_empty() {
            return (false, served);
        }
        probed.add(
            Fact,
            Kind::DnsAnswered,
            None,
            None,
            format!(
                "the DNS server {} answers for {} and takes the TSIG key",
                dns.server(),
                dns.zone()
            ),
        );
        (true, served)
    }

    /// Each record as the plan declares it before its first step.
    fn declared_records(&self) -> BTreeMap<String, Expected> {
        let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
        let Some(dns) = &self.plan.dns else {
            return expected;
        };
        for record in &dns.records {
            expected.insert(
                record.name.clone(),
                Expected {
                    ttl: seconds(record.ttl),
                    addresses: record.addresses.clone(),
                    after: None,
                },
            );
        }
        expected
    }

    /// Runs a read-only `command` on `host` (with the host's `env`, and
    /// the step's when one is given).
    async fn look(
        &self,
        step: Option<&Step>,
        host: &str,
        command: &str,
    ) -> Result<ShellOutcome, String> {
        self.look_within(step, host, command, LOOK_DEADLINE).await
    }

    /// [`Executor::look`], stopped after `deadline`.
    async fn look_within(
        &self,
        step: Option<&Step>,
        host: &str,
        command: &str,
        deadline: Duration,
    ) -> Result<ShellOutcome, String> {
        let shell = match step {
            Some(step) => self.command(step, host, command, Some(deadline)),
            None => crate::command::ShellCommand::new(command)
                .with_env(
                    self.plan
                        .host(host)
                        .map(|h| h.env.clone())
                        .unwrap_or_default(),
                )
                .with_deadline(deadline),
        };
        let cancel = std::pin::pin!(std::future::pending::<()>());
        let mut transcript = Transcript::default();
        // An untracked command (""): no step's process group.
        self.exec("", host, &shell, cancel, &mut transcript)
            .await
            .map_err(|e| e.message)
    }
}

/// What the probe learnt once for every step.
#[derive(Default)]
struct Seen {
    /// Each record as the plan expects it before the step probed now.
    expected: BTreeMap<String, Expected>,
    /// What each record served when the probe began (those that answered).
    served: BTreeMap<String, RRset>,
    /// Records whose served state was compared (by their first step).
    records: BTreeSet<String>,
    /// The timed transfer between each pair of hosts (from, to).
    rates: BTreeMap<(String, String), Option<(u64, u64)>>,
}

/// The probe of one step.
struct StepProbe<'a> {
    ex: &'a Executor,
    step: &'a Step,
    reached: &'a BTreeSet<String>,
}

/// Every host a step's action, check or probe uses (the destination of a
/// copy too).
fn step_hosts(step: &Step) -> impl Iterator<Item = String> + '_ {
    let mut hosts: Vec<String> = Vec::new();
    match &step.action {
        Action::Rsync { from, to, .. } => {
            hosts.push(from.clone());
            hosts.push(to.clone());
        }
        action => hosts.extend(action.host().map(str::to_owned)),
    }
    for check in [&step.check, &step.probe].into_iter().flatten() {
        if let Some(host) = check_host(check) {
            hosts.push(host.to_owned());
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts.into_iter()
}

/// The host a check runs a command on.
fn check_host(check: &Check) -> Option<&str> {
    match check {
        Check::Run { host, .. } => Some(host),
        Check::Until(poll) => Some(&poll.host),
        _ => None,
    }
}

/// The records the steps read or change.
fn dns_records(steps: &[&Step]) -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for step in steps {
        if let Action::DnsTtl { record, .. }
        | Action::DnsRecord { record, .. }
        | Action::WaitTtl { record } = &step.action
        {
            records.push(record.clone());
        }
        for check in [&step.check, &step.probe].into_iter().flatten() {
            if let Check::Resolves { record, .. } = check {
                records.push(record.clone());
            }
        }
    }
    records.sort();
    records.dedup();
    records
}

/// A DNS step's change applied to what the plan expects of its record.
fn apply(expected: &mut BTreeMap<String, Expected>, step: &Step) {
    match &step.action {
        Action::DnsTtl { record, ttl } => {
            if let Some(e) = expected.get_mut(record) {
                e.ttl = seconds(*ttl);
                e.after = Some(step.id.clone());
            }
        }
        Action::DnsRecord { record, addresses } => {
            if let Some(e) = expected.get_mut(record) {
                e.addresses.clone_from(addresses);
                e.after = Some(step.id.clone());
            }
        }
        _ => {}
    }
}

fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `0.4 s`, `12 s`, `3m 20s`.
fn seconds_text(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format_duration(Duration::from_secs(d.as_secs()))
    }
}

/// The last `n` non-empty lines of `output`, joined.
fn last_lines(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

//! `cutover probe`: the hosts, the DNS server and every step looked at,
//! nothing changed (see [`crate::probe`] for what is run).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use plan_core::duration::format_duration;
use plan_core::machine::Schedule;
use plan_core::template::quote;
use plan_core::{Action, Check, DurationModel, Revert, ServiceControl, ServiceState, Step};

use super::hosts::{Conn, CONNECT_TIMEOUT};
use super::{Executor, Transcript};
use crate::command::{ExitKind, ShellOutcome};
use crate::dns::RRset;
use crate::probe::{
    bytes_text, df_available, program_of, CopyMeasure, FindingKind as Kind, Probed,
    Severity::{Blocker, Fact, Warning},
};
use crate::rsync;
use crate::ssh::{connect_all_bounded, SshEnv, SshErrorKind};

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
        let dns = self.probe_dns(&steps, &mut probed).await;
        let mut expected = self.declared_records();
        let mut seen = Seen::default();
        // In the plan's order: a step the run does is probed; one it does
        // not (done, or of an earlier phase) leaves its records as it
        // changed them; those of later phases are not there yet.
        let first_phase = schedule.steps.first().and_then(|s| {
            self.plan
                .phases
                .iter()
                .position(|p| steps_of(p).any(|step| step.id == s.id))
        });
        for (phase_ix, phase) in self.plan.phases.iter().enumerate() {
            for step in steps_of(phase) {
                if schedule.index_of(&step.id).is_some() {
                    let prober = StepProbe {
                        ex: self,
                        step,
                        reached: &reached,
                    };
                    prober
                        .probe(dns, &mut expected, &mut seen, &mut probed)
                        .await;
                } else if !step.pending() || first_phase.is_some_and(|f| phase_ix < f) {
                    apply(&mut expected, step);
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
        let known = self.known_hosts(&env);
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
        let sessions = connect_all_bounded(
            &targets,
            &known,
            CONNECT_TIMEOUT,
            Arc::clone(&self.connecting),
        )
        .await;
        let mut conns = self.conns.write().await;
        for (target, session) in targets.iter().zip(sessions) {
            let host = target.name.as_str();
            match session {
                Ok(session) => {
                    let key = session.host_key();
                    let key = format!("{} {}", key.key_type, key.fingerprint());
                    conns.insert(
                        host.to_owned(),
                        Arc::new(tokio::sync::OnceCell::new_with(Some(Conn::Ssh(session)))),
                    );
                    reached.insert(host.to_owned());
                    probed.add(
                        Fact,
                        Kind::HostReached,
                        None,
                        Some(host),
                        format!(
                            "reached {}@{}:{} (host key {key}, as on record)",
                            target.user, target.address, target.port
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
        drop(conns);
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
    /// and takes the key. `false` when there is no use going on with DNS.
    async fn probe_dns(&self, steps: &[&Step], probed: &mut Probed) -> bool {
        let records = dns_records(steps);
        if records.is_empty() {
            return false;
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
                return false;
            }
        };
        let mut answered = Ok(());
        for record in &records {
            match dns.query(record).await {
                Ok(_) => {}
                Err(e) if e.is_authentication() => {
                    answered = Err(e);
                    break;
                }
                Err(e) => {
                    probed.add(
                        Blocker,
                        Kind::DnsUnreachable,
                        None,
                        None,
                        format!("{record}: {e}"),
                    );
                }
            }
        }
        match answered {
            Ok(()) => {
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
                true
            }
            Err(e) if e.is_authentication() => {
                probed.add(
                    Blocker,
                    Kind::TsigRefused,
                    None,
                    None,
                    format!("the DNS server refuses the plan's TSIG key: {e}"),
                );
                false
            }
            Err(e) => {
                probed.add(Blocker, Kind::DnsUnreachable, None, None, e.to_string());
                false
            }
        }
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

impl StepProbe<'_> {
    async fn probe(
        &self,
        dns: bool,
        expected: &mut BTreeMap<String, Expected>,
        seen: &mut Seen,
        probed: &mut Probed,
    ) {
        let step = self.step;
        let id = Some(step.id.as_str());
        // Hosts not reached were reported once; nothing more to learn.
        if let Some(host) = step_hosts(step).find(|h| !self.reached.contains(h)) {
            probed.add(
                Fact,
                Kind::NothingToProbe,
                id,
                Some(&host),
                format!("not looked at: `{host}` was not reached"),
            );
            apply(expected, step);
            return;
        }
        if let Some(check) = &step.check {
            self.check(check, dns, probed).await;
        }
        match &step.probe {
            Some(own) => self.own_probe(own, dns, probed).await,
            None => self.action(dns, expected, seen, probed).await,
        }
        if step.probe.is_some() {
            // The records' expectations still follow the plan.
            apply(expected, step);
        }
        self.reverts(probed).await;
    }

    /// The step's check: it should not pass before the step ran.
    async fn check(&self, check: &Check, dns: bool, probed: &mut Probed) {
        let id = Some(self.step.id.as_str());
        let needs_dns = matches!(check, Check::Resolves { .. });
        if needs_dns && !dns {
            return;
        }
        match self.holds(check).await {
            Ok(true) => probed.add(
                Warning,
                Kind::AlreadyDone,
                id,
                check_host(check),
                "its check passes already: is the step done? A run would do it again",
            ),
            Ok(false) => probed.add(
                Fact,
                Kind::NotDoneYet,
                id,
                check_host(check),
                "its check does not pass yet",
            ),
            Err(e) => probed.add(
                Warning,
                Kind::CheckNotRun,
                id,
                check_host(check),
                format!("its check could not be run: {e}"),
            ),
        }
    }

    /// Whether a check (or probe) holds now, tried once.
    async fn holds(&self, check: &Check) -> Result<bool, String> {
        let ex = self.ex;
        match check {
            Check::Run { host, command } => {
                let out = ex.look(Some(self.step), host, command).await?;
                match out.status {
                    ExitKind::Exited(0) => Ok(true),
                    ExitKind::Exited(_) => Ok(false),
                    status => Err(format!("it did not finish: {status}")),
                }
            }
            Check::Until(poll) => {
                let out = ex.look(Some(self.step), &poll.host, &poll.command).await?;
                Ok(out.success())
            }
            Check::Tcp { host, port } => {
                crate::checks::tcp_open(&ex.address_of(host), *port, LOOK_DEADLINE).await
            }
            Check::Http { url, status } => {
                let answer = crate::checks::http_status(url, LOOK_DEADLINE).await?;
                Ok(answer == *status)
            }
            Check::Resolves { record, to } => {
                let dns = ex.dns().await.map_err(|e| e.message())?;
                dns.resolves(record, *to).await.map_err(|e| e.to_string())
            }
        }
    }

    /// The plan's own probe for the step.
    async fn own_probe(&self, own: &Check, dns: bool, probed: &mut Probed) {
        let id = Some(self.step.id.as_str());
        if matches!(own, Check::Resolves { .. }) && !dns {
            return;
        }
        match self.holds(own).await {
            Ok(true) => probed.add(
                Fact,
                Kind::ProbePassed,
                id,
                check_host(own),
                "its probe passes",
            ),
            Ok(false) => probed.add(
                Blocker,
                Kind::ProbeFailed,
                id,
                check_host(own),
                "its probe fails: the plan says the step cannot run so",
            ),
            Err(e) => probed.add(
                Blocker,
                Kind::ProbeFailed,
                id,
                check_host(own),
                format!("its probe cannot be run: {e}"),
            ),
        }
    }

    /// The action's own read-only probe.
    async fn action(
        &self,
        dns: bool,
        expected: &mut BTreeMap<String, Expected>,
        seen: &mut Seen,
        probed: &mut Probed,
    ) {
        let step = self.step;
        let id = Some(step.id.as_str());
        match &step.action {
            Action::Shell { host, run, .. } => self.program(host, run, "its command", probed).await,
            Action::Service {
                host,
                unit,
                state,
                control,
            } => self.service(host, unit, *state, control, probed).await,
            Action::Rsync { .. } => self.copy(seen, probed).await,
            Action::DnsTtl { record, .. } | Action::DnsRecord { record, .. } => {
                if dns {
                    self.record(record, expected, &mut seen.records, probed)
                        .await;
                }
                apply(expected, step);
            }
            Action::WaitTtl { record } => probed.add(
                Fact,
                Kind::NothingToProbe,
                id,
                None,
                format!(
                    "waits until caches can no longer hold {record} under its TTL before \
                     its last change: nothing on the hosts to look at"
                ),
            ),
            Action::Wait(d) => probed.add(
                Fact,
                Kind::NothingToProbe,
                id,
                None,
                format!("waits {}: nothing to look at", format_duration(*d)),
            ),
            Action::WaitUntil(poll) => {
                self.program(&poll.host, &poll.command, "its condition", probed)
                    .await;
                if let Ok(holds) = self.holds(&Check::Until(poll.clone())).await {
                    probed.add(
                        if holds { Warning } else { Fact },
                        if holds {
                            Kind::AlreadyDone
                        } else {
                            Kind::NotDoneYet
                        },
                        id,
                        Some(&poll.host),
                        if holds {
                            "what it waits for already holds"
                        } else {
                            "what it waits for does not hold yet"
                        },
                    );
                }
            }
            Action::Manual { .. } => probed.add(
                Fact,
                Kind::NothingToProbe,
                id,
                None,
                "a person does it: nothing to look at",
            ),
            Action::Verify => {}
        }
    }

    /// A command's program is on the host's PATH.
    async fn program(&self, host: &str, command: &str, what: &str, probed: &mut Probed) {
        let id = Some(self.step.id.as_str());
        let Some(program) = program_of(command) else {
            probed.add(
                Warning,
                Kind::NotProbeable,
                id,
                Some(host),
                format!(
                    "{what} does not start with a plain program name, so nothing of it can \
                     be looked at without running it; give the step `probe: Run(\"...\")`, \
                     a read-only command that shows it can run"
                ),
            );
            return;
        };
        self.has_program(host, program, what, probed).await;
    }

    /// `command -v program` on `host`: found, or a blocker.
    /// `command -v program` on `host`: found (`true`), or a blocker.
    async fn has_program(
        &self,
        host: &str,
        program: &str,
        what: &str,
        probed: &mut Probed,
    ) -> bool {
        let id = Some(self.step.id.as_str());
        let look = format!("command -v {}", quote(program));
        match self.ex.look(Some(self.step), host, &look).await {
            Ok(out) if out.success() => {
                probed.add(
                    Fact,
                    Kind::ProgramFound,
                    id,
                    Some(host),
                    format!("{what}: `{program}` is {}", out.output.trim()),
                );
                true
            }
            Ok(_) => {
                probed.add(
                    Blocker,
                    Kind::MissingProgram,
                    id,
                    Some(host),
                    format!("{what}: `{program}` is not found on {host} (not in its PATH)"),
                );
                false
            }
            Err(e) => {
                probed.add(
                    Blocker,
                    Kind::HostUnreachable,
                    id,
                    Some(host),
                    format!("{what}: `{program}` could not be looked for: {e}"),
                );
                false
            }
        }
    }

    async fn service(
        &self,
        host: &str,
        unit: &str,
        state: ServiceState,
        control: &ServiceControl,
        probed: &mut Probed,
    ) {
        let id = Some(self.step.id.as_str());
        let commands = crate::service::commands(unit, control);
        match control {
            ServiceControl::Systemd => {
                if !self
                    .has_program(host, "systemctl", "the service manager", probed)
                    .await
                {
                    return;
                }
                let show = format!("systemctl show -p LoadState --value {}", quote(unit));
                if let Ok(out) = self.ex.look(Some(self.step), host, &show).await {
                    if out.success() && out.output.trim() == "not-found" {
                        probed.add(
                            Blocker,
                            Kind::ServiceUnknown,
                            id,
                            Some(host),
                            format!("systemd on {host} has no unit `{unit}`"),
                        );
                        return;
                    }
                }
            }
            ServiceControl::Commands { .. } => {
                for (what, command) in [
                    ("its start command", &commands.start),
                    ("its stop command", &commands.stop),
                    ("its status command", &commands.status),
                ] {
                    self.program(host, command, what, probed).await;
                }
            }
        }
        let running = match self.ex.look(Some(self.step), host, &commands.status).await {
            Ok(out) => match out.status {
                ExitKind::Exited(0) => true,
                // The shell's own: not found, not executable.
                ExitKind::Exited(code @ (126 | 127)) => {
                    probed.add(
                        Blocker,
                        Kind::ServiceUnknown,
                        id,
                        Some(host),
                        format!(
                            "its status command could not run (exit {code}): {}",
                            last_lines(&out.output, 2)
                        ),
                    );
                    return;
                }
                ExitKind::Exited(_) => false,
                status => {
                    probed.add(
                        Blocker,
                        Kind::ServiceUnknown,
                        id,
                        Some(host),
                        format!("its status command did not finish: {status}"),
                    );
                    return;
                }
            },
            Err(e) => {
                probed.add(Blocker, Kind::HostUnreachable, id, Some(host), e);
                return;
            }
        };
        let now = crate::service::capture_text(running);
        let wanted = crate::service::capture_text(state == ServiceState::Running);
        if now == wanted {
            probed.add(
                Warning,
                Kind::AlreadyDone,
                id,
                Some(host),
                format!(
                    "`{unit}` is {now} already; a rollback would leave it {now}, as it found it"
                ),
            );
        } else {
            probed.add(
                Fact,
                Kind::ServiceState,
                id,
                Some(host),
                format!("`{unit}` is {now}; the step makes it {wanted}"),
            );
        }
    }

    /// rsync on both ends, the source, the room at the destination, what
    /// is pending, and how fast the two hosts talk.
    async fn copy(&self, seen: &mut Seen, probed: &mut Probed) {
        let step = self.step;
        let id = Some(step.id.as_str());
        let Action::Rsync {
            from,
            to,
            path,
            dest,
            delete,
            args,
        } = &step.action
        else {
            return;
        };
        let Some(to_host) = self.ex.plan.host(to) else {
            return;
        };
        let copy = rsync::Copy {
            path,
            dest,
            to: to_host,
            delete: *delete,
            args,
        };
        let before = probed.count(Blocker);
        self.has_program(from, "rsync", "the copy", probed).await;
        if !rsync::is_daemon(dest) {
            self.has_program(to, "rsync", "the copy's receiving end", probed)
                .await;
        }
        let exists = format!("test -e {}", quote(path));
        if let Ok(out) = self.ex.look(Some(step), from, &exists).await {
            if !out.success() {
                probed.add(
                    Blocker,
                    Kind::MissingSource,
                    id,
                    Some(from),
                    format!("the source `{path}` does not exist on {from}"),
                );
            }
        }
        if probed.count(Blocker) > before {
            return;
        }
        if let Some(acting) = copy.acting_argument() {
            probed.add(
                Warning,
                Kind::NotProbeable,
                id,
                Some(from),
                format!(
                    "its argument `{acting}` acts even in a dry run, so what the copy has \
                     pending is not measured; give the step `probe: Run(\"...\")` to look \
                     at it another way"
                ),
            );
            return;
        }
        // The walk alone past the step's deadline: the copy would be too.
        let bound = step.deadline.unwrap_or(DRY_RUN_DEADLINE);
        let started = std::time::Instant::now();
        let dry = match self
            .ex
            .look_within(Some(step), from, &copy.probe_command(), bound)
            .await
        {
            Ok(out) => out,
            Err(e) => {
                probed.add(Blocker, Kind::HostUnreachable, id, Some(from), e);
                return;
            }
        };
        let scan = started.elapsed();
        let stats = match (&dry.status, rsync::parse_stats(&dry.output)) {
            (ExitKind::Exited(0), Some(stats)) => stats,
            (ExitKind::Exited(_), _) => {
                probed.add(
                    Blocker,
                    Kind::CopyRefused,
                    id,
                    Some(from),
                    format!(
                        "its dry run (`rsync --dry-run`) failed ({}): {}",
                        dry.status,
                        last_lines(&dry.output, 3)
                    ),
                );
                return;
            }
            (status, _) => {
                probed.add(
                    if step.deadline.is_some() {
                        Blocker
                    } else {
                        Warning
                    },
                    Kind::TransferTooLong,
                    id,
                    Some(from),
                    format!(
                        "its dry run alone did not finish within {} ({status}){}",
                        format_duration(bound),
                        if step.deadline.is_some() {
                            ": the copy would run past its deadline"
                        } else {
                            ""
                        }
                    ),
                );
                return;
            }
        };
        if let Some(room) = copy.room_command() {
            if let Ok(out) = self.ex.look(Some(step), to, &room).await {
                match df_available(&out.output) {
                    Some(free) if free < stats.bytes_transferred => probed.add(
                        Blocker,
                        Kind::NoRoom,
                        id,
                        Some(to),
                        format!(
                            "the destination has {} free on {to}, the copy has {} to write",
                            bytes_text(free),
                            bytes_text(stats.bytes_transferred)
                        ),
                    ),
                    Some(free) => probed.add(
                        Fact,
                        Kind::Room,
                        id,
                        Some(to),
                        format!("the destination has {} free", bytes_text(free)),
                    ),
                    None => {}
                }
            }
        }
        // One timed transfer per pair of hosts.
        let pair = (from.clone(), to.clone());
        let rate = match seen.rates.get(&pair) {
            Some(rate) => *rate,
            None => {
                let rate = self.rate(from, &copy).await;
                seen.rates.insert(pair, rate);
                rate
            }
        };
        let measure = CopyMeasure {
            step: step.id.clone(),
            files: stats.files_transferred,
            bytes: stats.bytes_transferred,
            total_bytes: stats.total_bytes,
            scan_millis: millis(scan),
            rate,
        };
        let expected = measure.expected();
        let mut message = format!(
            "{} files, {} pending (of {}); the dry run took {}",
            stats.files_transferred,
            bytes_text(stats.bytes_transferred),
            bytes_text(stats.total_bytes),
            seconds_text(scan)
        );
        match (rate, expected) {
            (Some((bytes, ms)), Some(expected)) => message.push_str(&format!(
                "; {from} -> {to} at {}/s: the copy should take about {}",
                bytes_text((bytes as f64 / (ms as f64 / 1000.0)) as u64),
                seconds_text(expected)
            )),
            _ => message.push_str("; the rate between the hosts could not be measured"),
        }
        probed.add(Fact, Kind::Transfer, id, Some(from), message);
        if let Some(expected) = expected {
            self.fits(expected, probed);
        }
        probed.copies.push(measure);
    }

    /// A timed stream of zeros from `from` to the copy's destination host,
    /// over the same remote shell, thrown away there; less the time of an
    /// empty one (the connection's own). `None` for a daemon or a copy with
    /// its own remote shell, or when the clock or the stream fails.
    async fn rate(&self, from: &str, copy: &rsync::Copy<'_>) -> Option<(u64, u64)> {
        let empty = copy.timed_stream(0)?;
        let full = copy.timed_stream(RATE_SAMPLE_BYTES)?;
        let nanos = |out: ShellOutcome| -> Option<u64> {
            out.success()
                .then(|| {
                    out.output
                        .lines()
                        .find_map(|l| l.strip_prefix(rsync::STREAM_MARK))
                        .and_then(|n| n.trim().parse().ok())
                })
                .flatten()
        };
        let base = nanos(self.ex.look(Some(self.step), from, &empty).await.ok()?)?;
        let took = nanos(
            self.ex
                .look_within(Some(self.step), from, &full, RATE_DEADLINE)
                .await
                .ok()?,
        )?;
        let millis = took.saturating_sub(base) / 1_000_000;
        (millis > 0).then_some((RATE_SAMPLE_BYTES, millis))
    }

    /// Whether an expected copy time fits the step's model and deadline.
    fn fits(&self, expected: Duration, probed: &mut Probed) {
        let step = self.step;
        let id = Some(step.id.as_str());
        if let Some(deadline) = step.deadline {
            if expected > deadline {
                probed.add(
                    Blocker,
                    Kind::TransferTooLong,
                    id,
                    None,
                    format!(
                        "the copy should take about {}, past its deadline of {}: the run would \
                         cancel it and roll back",
                        seconds_text(expected),
                        format_duration(deadline)
                    ),
                );
                return;
            }
        }
        if let Some(longest) = longest(&step.duration) {
            if expected > longest {
                probed.add(
                    Warning,
                    Kind::TransferTooLong,
                    id,
                    None,
                    format!(
                        "the copy should take about {}, longer than the plan's longest ({}): \
                         the estimates are too short; `simulate --measured` with the probe's \
                         record uses the measurement",
                        seconds_text(expected),
                        format_duration(longest)
                    ),
                );
            }
        }
    }

    /// A record as the plan expects it before the first change of it.
    async fn record(
        &self,
        record: &str,
        expected: &BTreeMap<String, Expected>,
        looked: &mut BTreeSet<String>,
        probed: &mut Probed,
    ) {
        let id = Some(self.step.id.as_str());
        let Some(want) = expected.get(record) else {
            return;
        };
        if !looked.insert(record.to_owned()) {
            // What it serves now is what the first step finds; this one
            // finds what the steps before it leave.
            let after = want.after.as_deref().unwrap_or("the steps before it");
            probed.add(
                Fact,
                Kind::RecordAsExpected,
                id,
                None,
                format!(
                    "expects {record} as `{after}` leaves it: {}",
                    RRset::new(want.ttl, want.addresses.iter().copied())
                ),
            );
            return;
        }
        let served = match self.ex.dns().await {
            Ok(dns) => dns.query(record).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.message()),
        };
        let served = match served {
            Ok(served) => served,
            Err(e) => {
                probed.add(Blocker, Kind::DnsUnreachable, id, None, e);
                return;
            }
        };
        let wanted = RRset::new(want.ttl, want.addresses.iter().copied());
        let addresses_differ = !want.addresses.is_empty() && served.addresses != wanted.addresses;
        let ttl_differs = served.ttl != Some(want.ttl);
        let after = want
            .after
            .as_ref()
            .map(|s| format!(" (after `{s}`)"))
            .unwrap_or_default();
        if !addresses_differ && !ttl_differs {
            probed.add(
                Fact,
                Kind::RecordAsExpected,
                id,
                None,
                format!("{record} serves {served}, as the plan expects before this step{after}"),
            );
            return;
        }
        // A switch of the plan that looks done already.
        let switched = self.ex.plan.steps().find_map(|s| match &s.action {
            Action::DnsRecord {
                record: r,
                addresses,
            } if r == record
                && RRset::new(0, addresses.iter().copied()).addresses == served.addresses =>
            {
                Some(s.id.as_str())
            }
            _ => None,
        });
        let target = match (&self.step.action, switched) {
            (_, Some(switch)) if addresses_differ => Some(format!(
                " It already holds what `{switch}` sets: the switch looks done, and a rollback \
                 would restore the new addresses, not the old ones."
            )),
            (Action::DnsTtl { ttl, .. }, _) if served.ttl == Some(seconds(*ttl)) => {
                Some(" Its TTL is already what this step sets.".to_owned())
            }
            _ => None,
        };
        probed.add(
            Blocker,
            Kind::RecordNotAsExpected,
            id,
            None,
            format!(
                "{record} serves {served}, but the plan expects {wanted} before this step{after}: \
                 the change would capture the wrong state to restore.{}",
                target.unwrap_or_default()
            ),
        );
    }

    /// A rollback must be runnable too: the revert's program.
    async fn reverts(&self, probed: &mut Probed) {
        let step = self.step;
        if let Action::Shell {
            host,
            revert: Revert::Run(command),
            ..
        } = &step.action
        {
            if step.probe.is_none() {
                self.program(host, command, "its revert", probed).await;
            }
        }
    }
}

/// The steps of a phase, in order.
fn steps_of(phase: &plan_core::Phase) -> impl Iterator<Item = &Step> {
    phase.entries.iter().filter_map(|e| match e {
        plan_core::Entry::Step(step) => Some(step),
        _ => None,
    })
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

/// The longest a duration model allows (a log-normal's 99th percentile).
fn longest(model: &DurationModel) -> Option<Duration> {
    match *model {
        DurationModel::Fixed(d) => Some(d),
        DurationModel::Uniform { max, .. } | DurationModel::Pert { max, .. } => Some(max),
        DurationModel::LogNormal { .. } => None,
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

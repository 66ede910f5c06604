//! The probe of one step: its check, its own probe, its action's programs,
//! its unit, its record, its revert.

use plan_core::duration::format_duration;
use plan_core::template::quote;
use plan_core::{Action, Check, Revert, ServiceControl, ServiceState};

use super::{apply, check_host, last_lines, seconds, step_hosts, Seen, StepProbe, LOOK_DEADLINE};
use crate::command::ExitKind;
use crate::dns::RRset;
use crate::probe::{
    program_of, FindingKind as Kind, Probed,
    Severity::{Blocker, Fact, Warning},
};

impl StepProbe<'_> {
    /// Looks at the step; `dns`: the DNS server answered with the key.
    pub(super) async fn probe(&self, dns: bool, seen: &mut Seen, probed: &mut Probed) {
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
            apply(&mut seen.expected, step);
            return;
        }
        if let Some(check) = &step.check {
            self.check(check, dns, probed).await;
        }
        match &step.probe {
            Some(own) => self.own_probe(own, dns, probed).await,
            None => self.action(dns, seen, probed).await,
        }
        if step.probe.is_some() {
            // The records' expectations still follow the plan.
            apply(&mut seen.expected, step);
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
    async fn action(&self, dns: bool, seen: &mut Seen, probed: &mut Probed) {
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
                    self.record(record, seen, probed);
                }
                apply(&mut seen.expected, step);
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
    pub(super) async fn has_program(
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

    /// A record as the plan expects it before the first change of it.
    fn record(&self, record: &str, seen: &mut Seen, probed: &mut Probed) {
        let id = Some(self.step.id.as_str());
        let Some(want) = seen.expected.get(record) else {
            return;
        };
        if !seen.records.insert(record.to_owned()) {
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
        // A record that did not answer was reported by the DNS look.
        let Some(served) = seen.served.get(record) else {
            return;
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

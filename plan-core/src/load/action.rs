//! What a step does: its action, its revert, its check and its duration model.

use super::{span_of, Validator};
use crate::diagnostic::{Diagnostic, Rule};
use crate::plan::*;
use crate::raw::*;
use crate::span::{Span, Spanned};

impl Validator<'_> {
    /// Validates an action; returns it, the span of its stated revert, and
    /// the bytes an `Rsync` says it will copy (`size`).
    pub(super) fn action(
        &mut self,
        raw: Spanned<RawAction>,
        done: Done,
    ) -> (Action, Option<Span>, Option<u64>) {
        let span = raw.span;
        match raw.value {
            RawAction::Shell { on, run, revert } => {
                self.check_host(&on);
                let command = self.expand(&run, Some(&on.value), true);
                let revert_span = revert.as_ref().map(span_of);
                let revert = self.revert(revert, Some(&on.value), span, "Shell", done);
                (
                    Action::Shell {
                        host: on.value,
                        run: command,
                        revert,
                    },
                    revert_span,
                    None,
                )
            }
            RawAction::Manual { prompt, revert } => {
                let prompt_text = self.expand(&prompt, None, false);
                let revert_span = revert.as_ref().map(span_of);
                let revert = self.revert(revert, None, span, "Manual", done);
                (
                    Action::Manual {
                        prompt: prompt_text,
                        revert,
                    },
                    revert_span,
                    None,
                )
            }
            RawAction::Service {
                on,
                unit,
                state,
                start,
                stop,
                status,
            } => {
                self.check_host(&on);
                let control = match (start, stop, status) {
                    (None, None, None) => ServiceControl::Systemd,
                    (Some(start), Some(stop), Some(status)) => ServiceControl::Commands {
                        start: self.expand(&start, Some(&on.value), true),
                        stop: self.expand(&stop, Some(&on.value), true),
                        status: self.expand(&status, Some(&on.value), true),
                    },
                    _ => {
                        self.invalid(
                            span,
                            "a service with its own commands needs all three: `start`, `stop` and `status`",
                            "give all three, or none to use systemd (`systemctl start|stop|is-active`)",
                        );
                        ServiceControl::Systemd
                    }
                };
                let unit_name = self.expand(&unit, Some(&on.value), false);
                if unit_name.trim().is_empty() || unit_name.contains(char::is_whitespace) {
                    self.invalid(
                        unit.span,
                        format!("`{unit_name}` is not a unit name"),
                        "write a systemd unit, e.g. \"mailman\" or \"exim4.service\"",
                    );
                }
                let state = match state.value {
                    RawServiceState::Running => ServiceState::Running,
                    RawServiceState::Stopped => ServiceState::Stopped,
                };
                (
                    Action::Service {
                        host: on.value,
                        unit: unit_name,
                        state,
                        control,
                    },
                    None,
                    None,
                )
            }
            RawAction::Rsync {
                from,
                to,
                path,
                dest,
                delete,
                args,
                size,
            } => {
                self.check_host(&from);
                self.check_host(&to);
                if from.value == to.value {
                    self.invalid(
                        to.span,
                        "rsync from a host to itself",
                        "`from` and `to` must be different hosts",
                    );
                }
                let path_text = self.expand(&path, Some(&from.value), false);
                let dest_written = dest
                    .as_ref()
                    .map(|d| (self.expand(d, Some(&to.value), false), d.span));
                let mut paths = vec![(path_text.clone(), path.span)];
                paths.extend(dest_written.clone());
                for (p, span) in paths {
                    if !p.starts_with('/') {
                        self.invalid(
                            span,
                            format!("`{p}` is not an absolute path"),
                            "rsync paths must be absolute, e.g. \"/var/lib/mailman/\"",
                        );
                    }
                }
                let dest_text = dest_written.map_or_else(|| path_text.clone(), |(d, _)| d);
                let args = args
                    .iter()
                    .map(|a| self.expand(a, Some(&from.value), false))
                    .collect();
                (
                    Action::Rsync {
                        from: from.value,
                        to: to.value,
                        path: path_text,
                        dest: dest_text,
                        delete: delete.is_some_and(|d| d.value),
                        args,
                    },
                    None,
                    size.and_then(|size| self.size(&size)),
                )
            }
            RawAction::DnsTtl { record, ttl } => {
                let name = self.check_record(&record);
                let ttl = self.duration(&ttl);
                (Action::DnsTtl { record: name, ttl }, None, None)
            }
            RawAction::DnsRecord { record, addresses } => {
                let name = self.check_record(&record);
                if addresses.value.is_empty() {
                    self.invalid(
                        addresses.span,
                        "a record switch needs at least one address",
                        "list the new addresses, e.g. [\"208.80.154.61\"]",
                    );
                }
                let addresses = addresses
                    .value
                    .iter()
                    .filter_map(|a| self.address(a))
                    .collect();
                (
                    Action::DnsRecord {
                        record: name,
                        addresses,
                    },
                    None,
                    None,
                )
            }
            RawAction::WaitTtl { record } => {
                let name = self.check_record(&record);
                (Action::WaitTtl { record: name }, None, None)
            }
            RawAction::Wait(d) => (Action::Wait(self.duration(&d)), None, None),
            RawAction::WaitUntil {
                on,
                run,
                every,
                within,
            } => {
                self.check_host(&on);
                let poll = self.poll(on.value, &run, &every, &within);
                (Action::WaitUntil(poll), None, None)
            }
            RawAction::Verify => (Action::Verify, None, None),
        }
    }

    fn revert(
        &mut self,
        raw: Option<Spanned<RawRevert>>,
        host: Option<&str>,
        action_span: Span,
        kind: &str,
        done: Done,
    ) -> Revert {
        let Some(raw) = raw else {
            if done != Done::Yes {
                self.report(
                    Diagnostic::new(Rule::MissingRevert, format!("this `{kind}` step has no revert"))
                        .label(action_span, "what undoes this on rollback?")
                        .help(if host.is_some() {
                            "add `revert: Run(\"...\")`, or `revert: Irreversible(\"why\")` behind a `PointOfNoReturn`, or `revert: Nothing(\"why nothing needs undoing\")`"
                        } else {
                            "add `revert: Manual(\"what to do\")`, or `revert: Irreversible(\"why\")` behind a `PointOfNoReturn`, or `revert: Nothing(\"why nothing needs undoing\")`"
                        }),
                );
            }
            return Revert::Nothing(String::new());
        };
        match raw.value {
            RawRevert::Run(command) => match host {
                Some(h) => Revert::Run(self.expand(&command, Some(h), true)),
                None => {
                    self.report(
                        Diagnostic::new(Rule::IncompatibleRevert, format!("a `{kind}` step has no host to run a revert on"))
                            .label(raw.span, "runs where?")
                            .help("use `Manual(\"what the operator does\")`, or make it a `Shell` step with `on:`"),
                    );
                    Revert::Manual(command.value)
                }
            },
            RawRevert::Manual(text) => Revert::Manual(self.expand(&text, host, false)),
            RawRevert::Irreversible(reason) => Revert::Irreversible(reason.value),
            RawRevert::Nothing(reason) => {
                if reason.value.trim().is_empty() {
                    self.invalid(
                        reason.span,
                        "say why there is nothing to undo",
                        "e.g. `Nothing(\"read-only: only looks at the queue\")`",
                    );
                }
                Revert::Nothing(reason.value)
            }
        }
    }

    pub(super) fn check(
        &mut self,
        raw: Spanned<RawCheck>,
        step_host: Option<&str>,
    ) -> Option<Check> {
        match raw.value {
            RawCheck::Run(command) => match step_host {
                Some(host) => Some(Check::Run {
                    host: host.to_owned(),
                    command: self.expand(&command, Some(host), true),
                }),
                None => {
                    self.report(
                        Diagnostic::new(
                            Rule::IncompatibleRevert,
                            "this step has no host to run its check on",
                        )
                        .label(raw.span, "runs where?")
                        .help("write `RunOn(host: \"...\", run: \"...\")`"),
                    );
                    None
                }
            },
            RawCheck::RunOn { host, run } => {
                self.check_host(&host);
                let command = self.expand(&run, Some(&host.value), true);
                Some(Check::Run {
                    host: host.value,
                    command,
                })
            }
            RawCheck::Tcp { host, port } => {
                self.check_host(&host);
                Some(Check::Tcp {
                    host: host.value,
                    port: port.value,
                })
            }
            RawCheck::Http { url, status } => {
                let url_text = self.expand(&url, None, false);
                if !(url_text.starts_with("http://") || url_text.starts_with("https://")) {
                    self.invalid(
                        url.span,
                        format!("`{url_text}` is not an http(s) URL"),
                        "write e.g. \"https://lists.wikimedia.org/\"",
                    );
                }
                let status = status.map_or(200, |s| s.value);
                Some(Check::Http {
                    url: url_text,
                    status,
                })
            }
            RawCheck::Resolves { record, to } => {
                let name = self.check_record(&record);
                let address = self.address(&to)?;
                Some(Check::Resolves {
                    record: name,
                    to: address,
                })
            }
            RawCheck::Until {
                run,
                every,
                within,
                on,
            } => {
                let host = match (on, step_host) {
                    (Some(on), _) => {
                        self.check_host(&on);
                        on.value
                    }
                    (None, Some(host)) => host.to_owned(),
                    (None, None) => {
                        self.report(
                            Diagnostic::new(
                                Rule::IncompatibleRevert,
                                "this step has no host to poll its check on",
                            )
                            .label(raw.span, "runs where?")
                            .help("write `Until(on: \"host\", run: \"...\", every: \"1s\", within: \"2m\")`"),
                        );
                        return None;
                    }
                };
                Some(Check::Until(self.poll(host, &run, &every, &within)))
            }
        }
    }

    /// A polled command on `host`: expanded and quoted in its scope; `every`
    /// must be above zero and at most `within`.
    fn poll(
        &mut self,
        host: String,
        run: &Spanned<String>,
        every: &Spanned<String>,
        within: &Spanned<String>,
    ) -> Poll {
        let command = self.expand(run, Some(&host), true);
        let (every_d, within_d) = (self.duration(every), self.duration(within));
        if every_d.is_zero() {
            self.invalid(
                every.span,
                "polling every 0s would hammer the host",
                "poll at most every few seconds, e.g. \"1s\" or \"5s\"",
            );
        } else if every_d > within_d {
            self.invalid(
                every.span,
                format!(
                    "polls every {} but gives up after {}: it would try once",
                    crate::duration::format_duration(every_d),
                    crate::duration::format_duration(within_d)
                ),
                "`every` is the pause between tries, `within` how long to keep trying",
            );
        }
        Poll {
            host,
            command,
            every: every_d.max(std::time::Duration::from_millis(1)),
            within: within_d,
        }
    }

    pub(super) fn duration_model(&mut self, raw: Spanned<RawDuration>) -> DurationModel {
        let span = raw.span;
        let model = match raw.value {
            RawDuration::Fixed(d) => DurationModel::Fixed(self.duration(&d)),
            RawDuration::Uniform { min, max } => DurationModel::Uniform {
                min: self.duration(&min),
                max: self.duration(&max),
            },
            RawDuration::Pert { min, likely, max } => DurationModel::Pert {
                min: self.duration(&min),
                likely: self.duration(&likely),
                max: self.duration(&max),
            },
            RawDuration::LogNormal { p50, p95 } => DurationModel::LogNormal {
                p50: self.duration(&p50),
                p95: self.duration(&p95),
            },
        };
        let ordered = match model {
            DurationModel::Fixed(_) => true,
            DurationModel::Uniform { min, max } => min <= max,
            DurationModel::Pert { min, likely, max } => {
                min <= likely && likely <= max && min < max || min == max && likely == min
            }
            DurationModel::LogNormal { p50, p95 } => !p50.is_zero() && p50 < p95,
        };
        if !ordered {
            self.invalid(
                span,
                "the duration's figures are out of order",
                "Uniform needs min <= max, Pert min <= likely <= max, LogNormal 0 < p50 < p95",
            );
        }
        model
    }
}

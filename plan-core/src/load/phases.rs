//! The window and the phases: anchors, steps and their ids, and `after`.

use std::collections::HashMap;

use super::{span_of, Validator};
use crate::diagnostic::{Diagnostic, Rule};
use crate::duration::parse_anchor;
use crate::plan::*;
use crate::raw::*;
use crate::span::{Span, Spanned};
use crate::suggest::{closest, did_you_mean};

impl Validator<'_> {
    pub(super) fn window(&mut self, raw: RawWindow) -> Window {
        let start = raw
            .start
            .and_then(|s| match crate::duration::parse_time(&s.value) {
                Ok(t) => Some(t),
                Err(message) => {
                    self.invalid(s.span, message, "write e.g. \"2015-09-01T14:00:00Z\"");
                    None
                }
            });
        let announced = self.duration(&raw.announced);
        let deadline = raw.deadline.map(|d| (self.duration(&d), d.span));
        if let Some((deadline, span)) = deadline {
            if deadline < announced {
                self.invalid(
                    span,
                    "the window deadline is shorter than the announced window",
                    "a deadline at or past the announced length gives the announced time to finish",
                );
            }
        }
        let budget = raw.downtime_budget.map(|b| (self.duration(&b), b.span));
        if let Some((budget, span)) = budget {
            if budget.is_zero() {
                self.invalid(
                    span,
                    "a downtime budget of 0 rolls back every run the moment users are down",
                    "give the longest outage users may see before the run gives up, e.g. \"15m\"",
                );
            }
        }
        Window {
            start,
            announced,
            deadline: deadline.map(|d| d.0),
            downtime_budget: budget.map(|b| b.0),
            announced_span: raw.announced.span,
            budget_span: budget.map(|b| b.1),
        }
    }

    pub(super) fn phases(&mut self, raw: Spanned<Vec<RawPhase>>) -> Vec<Phase> {
        let mut phases = Vec::new();
        let mut phase_names: HashMap<String, Span> = HashMap::new();
        let mut last_anchor: Option<(i64, Span)> = None;
        let mut seen = Seen::default();
        for (phase_index, raw_phase) in raw.value.into_iter().enumerate() {
            self.check_id(&raw_phase.name, "phase");
            if let Some(first) =
                phase_names.insert(raw_phase.name.value.clone(), raw_phase.name.span)
            {
                self.duplicate(
                    format!("phase `{}` is declared twice", raw_phase.name.value),
                    "declared",
                    raw_phase.name.span,
                    Some(first),
                    "phase names must be unique, they are used with `--phase`",
                );
            }
            let at = self.anchor(&raw_phase, last_anchor);
            if at.is_some() {
                last_anchor = at;
            }
            let mut entries = Vec::new();
            for raw_entry in raw_phase.steps {
                let entry = self.entry(raw_entry, phase_index, entries.len(), &mut seen);
                entries.push(entry);
            }
            phases.push(Phase {
                name: raw_phase.name.value,
                at: at.map(|a| a.0),
                entries,
                span: raw_phase.name.span,
            });
        }
        self.resolve_after(&mut phases, seen.afters, &seen.step_ids);
        phases
    }

    /// A step's `retries`, at most [`MAX_RETRIES`](super::names::MAX_RETRIES).
    fn retries(&mut self, retries: Spanned<u32>) -> u32 {
        if retries.value > super::names::MAX_RETRIES {
            self.invalid(
                retries.span,
                format!(
                    "{} retries is more than {}",
                    retries.value,
                    super::names::MAX_RETRIES
                ),
                "each retry is a real attempt on a real host; a step that needs more should wait \
                 with `Wait` or fail for the operator",
            );
            return super::names::MAX_RETRIES;
        }
        retries.value
    }

    /// A phase's `at`, in seconds from the window start, checked against the
    /// anchor of the last scheduled phase before it.
    fn anchor(
        &mut self,
        raw_phase: &RawPhase,
        last_anchor: Option<(i64, Span)>,
    ) -> Option<(i64, Span)> {
        let at =
            raw_phase
                .at
                .as_ref()
                .and_then(|at| match parse_anchor(&at.value) {
                    Ok(secs) if secs.unsigned_abs() > super::names::MAX_DURATION.as_secs() => {
                        self.invalid(
                        at.span,
                        format!("`{}` is more than a year from the window start", at.value.trim()),
                        "phases are anchored within a year of the window, e.g. \"-1d\" or \"+2h\"",
                    );
                        None
                    }
                    Ok(secs) => Some((secs, at.span)),
                    Err(message) => {
                        self.invalid(
                            at.span,
                            message,
                            "phases are anchored relative to the window start",
                        );
                        None
                    }
                });
        match (at, last_anchor) {
            (Some((secs, span)), Some((previous, previous_span))) if secs < previous => self
                .report(
                    Diagnostic::new(Rule::PhaseOrder, "phases are out of time order")
                        .label(span, "this phase starts earlier")
                        .label(previous_span, "than this earlier phase")
                        .help("list phases in the order they run"),
                ),
            (None, Some((_, previous_span))) if raw_phase.at.is_none() => self.report(
                Diagnostic::new(
                    Rule::PhaseOrder,
                    format!(
                        "phase `{}` has no `at` but follows a scheduled phase",
                        raw_phase.name.value
                    ),
                )
                .label(raw_phase.name.span, "unscheduled")
                .label(previous_span, "scheduled before it")
                .help("unscheduled (preparation) phases come first; give this one an `at`"),
            ),
            _ => {}
        }
        at
    }

    /// Validates one entry of a phase, the `index`th of phase `phase_index`.
    fn entry(&mut self, raw: RawEntry, phase_index: usize, index: usize, seen: &mut Seen) -> Entry {
        match raw {
            RawEntry::RollbackPoint(name) => self.rollback_point(name, &mut seen.points),
            RawEntry::PointOfNoReturn { reason } => Entry::PointOfNoReturn(Marker {
                text: reason.value,
                span: reason.span,
            }),
            RawEntry::Step {
                id,
                title,
                number: explicit,
                ticket,
                done,
                action,
                check,
                probe,
                duration,
                deadline,
                retries,
                retry_interval,
                after,
                downtime,
                settle,
                notice,
                failure_rate,
                revert_after_failure,
                env,
                loses,
                outage,
                in_flight,
            } => {
                self.check_id(&id, "step");
                let failure_rate = failure_rate.and_then(|r| self.probability(&r));
                if let Some((first, _)) = seen
                    .step_ids
                    .insert(id.value.clone(), (id.span, phase_index))
                {
                    self.duplicate(
                        format!("step id `{}` is used twice", id.value),
                        "used",
                        id.span,
                        Some(first),
                        "step ids must be unique across the whole plan; rename one",
                    );
                }
                seen.number = match &explicit {
                    Some(n) => n.value,
                    None => seen.number.checked_add(1).unwrap_or_else(|| {
                        self.invalid(
                            id.span,
                            "row numbers run past 4294967295",
                            "give this step a smaller `number`",
                        );
                        seen.number
                    }),
                };
                let done = match done.map(|d| d.value) {
                    Some(RawDone::Yes) => Done::Yes,
                    Some(RawDone::InProgress) => Done::InProgress,
                    Some(RawDone::No) | None => Done::No,
                };
                let action_span = action.span;
                let (action, revert_span, transfer_size) = self.action(action, done);
                let check_span = check.as_ref().map(span_of);
                let host = action.host().map(str::to_owned);
                let check = check.and_then(|c| self.check(c, host.as_deref()));
                let probe = probe.and_then(|c| self.check(c, host.as_deref()));
                let env = self.env(&env, host.as_deref());
                if matches!(action, Action::Verify) && check.is_none() && check_span.is_none() {
                    self.report(
                        Diagnostic::new(Rule::VerifyWithoutCheck, format!("step `{}` is a `Verify` step without a check", id.value))
                            .label(action_span, "nothing to verify")
                            .help("add `check: Run(\"...\")`, `Http(url: ...)`, `Tcp(host: ..., port: ...)` or `Resolves(record: ..., to: ...)`"),
                    );
                }
                let duration_span = duration.as_ref().map(span_of);
                let duration = match duration {
                    Some(d) => self.duration_model(d),
                    None => action.default_duration(),
                };
                let deadline_span = deadline.as_ref().map(span_of);
                let deadline = deadline.map(|d| self.duration(&d));
                let downtime_span = downtime.as_ref().map(span_of);
                let downtime = downtime.map(|d| match d.value {
                    RawMarker::Begins => Downtime::Begins,
                    RawMarker::Ends => Downtime::Ends,
                });
                let settle = settle.map(|s| self.duration(&s));
                let notice = notice.map(|n| self.expand(&n, None, false));
                let loses_span = loses.as_ref().map(span_of);
                if let Some(o) = &outage {
                    if !matches!(downtime, Some(Downtime::Begins)) {
                        self.invalid(
                            o.span,
                            "`outage` says what users get during an outage: it belongs on the step marked `downtime: Begins`",
                            "move it to the step where the outage begins, e.g. `downtime: Begins, outage: \"read-only\"`",
                        );
                    } else if o.value.trim().is_empty() {
                        self.invalid(
                            o.span,
                            "an empty `outage`",
                            "say what users get instead of the service, e.g. \"read-only\"",
                        );
                    }
                }
                let outage = outage.map(|o| o.value);
                let in_flight = in_flight.map(|f| {
                    if !matches!(downtime, Some(Downtime::Begins)) {
                        self.invalid(
                            f.span,
                            "`in_flight` says how long before its start an outage catches users' work: it belongs on the step marked `downtime: Begins`",
                            "move it to the step where the outage begins, e.g. `downtime: Begins, in_flight: \"2s\"`",
                        );
                    }
                    self.duration(&f)
                });
                let loses = loses.map(|l| self.expand(&l, None, false));
                seen.afters
                    .push((phase_index, index, after.map(|a| a.value)));
                Entry::Step(Step {
                    title: title.map_or_else(|| id.value.clone(), |t| t.value),
                    id: id.value,
                    number: seen.number,
                    tickets: ticket.map(|t| t.value.0).unwrap_or_default(),
                    done,
                    action,
                    check,
                    probe,
                    duration,
                    deadline,
                    retry_interval: retry_interval.map(|i| {
                        let interval = self.duration(&i);
                        if retries.as_ref().is_none_or(|r| r.value == 0) {
                            self.invalid(
                                i.span,
                                "a retry interval without retries: the step is tried once",
                                "add `retries: N`, or remove `retry_interval`",
                            );
                        }
                        interval
                    }),
                    retries: retries.map_or(0, |r| self.retries(r)),
                    after: Vec::new(),
                    after_explicit: false,
                    downtime,
                    settle,
                    notice,
                    failure_rate,
                    outage,
                    in_flight,
                    loses,
                    env,
                    revert_after_failure: revert_after_failure.is_some_and(|r| r.value),
                    transfer_size,
                    spans: StepSpans {
                        id: id.span,
                        action: action_span,
                        revert: revert_span,
                        check: check_span,
                        duration: duration_span,
                        deadline: deadline_span,
                        downtime: downtime_span,
                        after: Vec::new(),
                        loses: loses_span,
                    },
                })
            }
        }
    }

    fn rollback_point(
        &mut self,
        name: Spanned<String>,
        points: &mut HashMap<String, Span>,
    ) -> Entry {
        self.check_id(&name, "rollback point");
        if name.value == crate::machine::START_POINT {
            self.invalid(
                name.span,
                "`start` is the rollback point every run begins with; it cannot be declared",
                "give this rollback point another name, e.g. \"before-release\"",
            );
        }
        if let Some(first) = points.insert(name.value.clone(), name.span) {
            self.duplicate(
                format!("rollback point `{}` is declared twice", name.value),
                "declared",
                name.span,
                Some(first),
                "rollback point names must be unique: runs end in `RolledBack(name)`",
            );
        }
        Entry::RollbackPoint(Marker {
            text: name.value,
            span: name.span,
        })
    }

    fn resolve_after(
        &mut self,
        phases: &mut [Phase],
        afters: Vec<PendingAfter>,
        ids: &HashMap<String, (Span, usize)>,
    ) {
        let mut previous: Option<(usize, String)> = None;
        for (phase_index, entry_index, after) in afters {
            if previous.as_ref().is_some_and(|(p, _)| *p != phase_index) {
                previous = None;
            }
            let Entry::Step(step) = &mut phases[phase_index].entries[entry_index] else {
                continue;
            };
            match after {
                None => {
                    step.after = previous.iter().map(|(_, id)| id.clone()).collect();
                }
                Some(list) => {
                    step.after_explicit = true;
                    for dep in list {
                        match ids.get(&dep.value) {
                            None => {
                                let help = match closest(&dep.value, ids.keys().map(String::as_str))
                                {
                                    Some(near) => did_you_mean(near, ""),
                                    None => {
                                        "`after` lists ids of steps in this or an earlier phase"
                                            .into()
                                    }
                                };
                                self.diagnostics.push(
                                    Diagnostic::new(
                                        Rule::UnknownStep,
                                        format!(
                                            "step `{}` runs after `{}`, which does not exist",
                                            step.id, dep.value
                                        ),
                                    )
                                    .label(dep.span, "no step has this id")
                                    .help(help),
                                );
                            }
                            Some((dep_span, dep_phase)) if *dep_phase > phase_index => {
                                self.diagnostics.push(
                                    Diagnostic::new(Rule::AfterLaterPhase, format!("step `{}` runs after `{}`, which is in a later phase", step.id, dep.value))
                                        .label(dep.span, "in a later phase")
                                        .label(*dep_span, "defined here")
                                        .help("a step can only wait for steps of its own or an earlier phase"),
                                );
                            }
                            Some((_, dep_phase)) => {
                                // Steps of earlier phases are done by then; only same-phase edges order the run.
                                if *dep_phase == phase_index {
                                    step.after.push(dep.value.clone());
                                    step.spans.after.push(dep.span);
                                }
                            }
                        }
                    }
                }
            }
            previous = Some((phase_index, step.id.clone()));
        }
    }
}

/// What the entries validated so far leave for those after them.
#[derive(Default)]
struct Seen {
    /// Each step id with where it is written and its phase's index.
    step_ids: HashMap<String, (Span, usize)>,
    /// Each rollback point with where it is written.
    points: HashMap<String, Span>,
    /// The last step's row number.
    number: u32,
    /// `after` is resolved once every id is known: (phase, entry, ids).
    afters: Vec<PendingAfter>,
}

/// A step's `after` as written, resolved once every id is known:
/// (phase index, entry index, the ids or `None` for "the previous step").
type PendingAfter = (usize, usize, Option<Vec<Spanned<String>>>);

//! The static verifier: rules over a loaded plan that make it safe to run.
//!
//! Each rule has a [`Rule`] code and reports every breach it finds, labelled
//! in the file. The loader calls [`verify`] on every plan it builds, so
//! `cutover check` and every other verb see the same verdict.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics, Rule};
use crate::duration::format_duration;
use crate::load::Settings;
use crate::machine::{explore, Counterexample, Schedule, Selection};
use crate::plan::{Action, Done, Downtime, Entry, Phase, Plan, Revert, Step};
use crate::span::Span;

/// A TTL above this at a switch earns a warning: users may keep the old
/// address for that long.
pub const LONG_TTL: Duration = Duration::from_secs(300);

/// Runs every static rule over `plan`, adding what it finds to `diagnostics`
/// (fault exploration unless `settings` leave it out).
pub fn verify(plan: &Plan, settings: &Settings, diagnostics: &mut Diagnostics) {
    let cyclic = cycles(plan, diagnostics);
    points_of_no_return(plan, diagnostics);
    downtime(plan, diagnostics);
    deadlines(plan, diagnostics);
    lossy_reverts(plan, diagnostics);
    if !cyclic {
        ttl_before_switch(plan, diagnostics);
    }
    if !diagnostics.has_errors() && !settings.skip_exploration {
        explore_faults(plan, diagnostics);
    }
    if plan.steps().all(|s| !s.pending()) {
        diagnostics.push(
            Diagnostic::new(
                Rule::NothingToRun,
                "every step is already done: there is nothing to run",
            )
            .help("mark steps that still have to happen with `done: false` (the default)"),
        );
    }
}

/// How many faults exploration injects into one run.
pub const EXPLORED_FAULTS: usize = 2;

/// Drives the run machine through every single and double fault.
fn explore_faults(plan: &Plan, diagnostics: &mut Diagnostics) {
    let schedule = Schedule::new(plan, &Selection::default());
    if let Err(counterexample) = explore(Arc::new(schedule), EXPLORED_FAULTS) {
        diagnostics.push(unsafe_run(&counterexample));
    }
}

/// The `cutover::unsafe-run` diagnostic: what went wrong, the faults
/// injected and the exact events that led there.
fn unsafe_run(counterexample: &Counterexample) -> Diagnostic {
    let events: Vec<String> = counterexample
        .events
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    Diagnostic::new(
        Rule::UnsafeRun,
        format!(
            "a run of this plan does not end safely: {}",
            counterexample.problem
        ),
    )
    .help(format!(
        "injected: {}; events: {}",
        if counterexample.faults.is_empty() {
            "no fault".to_owned()
        } else {
            counterexample.faults.join(", ")
        },
        events.join(" -> ")
    ))
}

/// Reports cycles in `after`; returns whether there is one.
fn cycles(plan: &Plan, diagnostics: &mut Diagnostics) -> bool {
    let steps: Vec<&Step> = plan.steps().collect();
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    if index.len() != steps.len() {
        // Duplicate ids (reported by the loader) make `after` ambiguous.
        return false;
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Finished,
    }
    let mut marks = vec![Mark::New; steps.len()];
    let mut found = false;
    for root in 0..steps.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, next dependency to visit).
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let deps = &steps[node].after;
            if *next == deps.len() {
                marks[node] = Mark::Finished;
                path.pop();
                continue;
            }
            let dep_position = *next;
            *next += 1;
            let Some(&dep) = index.get(deps[dep_position].as_str()) else {
                continue;
            };
            match marks[dep] {
                Mark::New => {
                    marks[dep] = Mark::OnPath;
                    path.push((dep, 0));
                }
                Mark::OnPath => {
                    found = true;
                    let start = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let cycle: Vec<usize> = path[start..].iter().map(|(n, _)| *n).collect();
                    diagnostics.push(cycle_diagnostic(&steps, &cycle, &path[start..]));
                }
                Mark::Finished => {}
            }
        }
    }
    found
}

fn cycle_diagnostic(steps: &[&Step], cycle: &[usize], path: &[(usize, usize)]) -> Diagnostic {
    let mut names: Vec<&str> = cycle.iter().map(|&n| steps[n].id.as_str()).collect();
    names.push(steps[cycle[0]].id.as_str());
    let mut d = Diagnostic::new(
        Rule::AfterCycle,
        format!(
            "steps wait for each other in a cycle: {}",
            names.join(" runs after ")
        ),
    )
    .help("break the cycle: one of these `after` entries must go");
    for (node, next) in path {
        let step = steps[*node];
        let which = next - 1;
        let dep = &step.after[which];
        d = match step.spans.after.get(which).filter(|_| step.after_explicit) {
            Some(span) => d.label(*span, format!("`{}` runs after `{dep}`", step.id)),
            None => d.label(
                step.spans.id,
                format!("`{}` runs after `{dep}`, the step before it", step.id),
            ),
        };
    }
    d
}

/// Irreversible steps only past the point of no return; one such point; no
/// rollback point past it.
fn points_of_no_return(plan: &Plan, diagnostics: &mut Diagnostics) {
    let ponr: Option<Span> = plan
        .phases
        .iter()
        .flat_map(|p| &p.entries)
        .find_map(|e| match e {
            Entry::PointOfNoReturn(m) => Some(m.span),
            _ => None,
        });
    let mut passed: Option<Span> = None;
    for entry in plan.phases.iter().flat_map(|p| &p.entries) {
        match entry {
            Entry::PointOfNoReturn(marker) => {
                if let Some(first) = passed {
                    diagnostics.push(
                        Diagnostic::new(
                            Rule::SecondPointOfNoReturn,
                            "the plan has more than one point of no return",
                        )
                        .label(marker.span, "a second one")
                        .label(first, "the first one")
                        .help("everything after the first is already past it; remove the second"),
                    );
                }
                passed.get_or_insert(marker.span);
            }
            Entry::RollbackPoint(marker) => {
                if let Some(point) = passed {
                    diagnostics.push(
                        Diagnostic::new(
                            Rule::RollbackPointAfterPointOfNoReturn,
                            format!(
                                "rollback point `{}` is past the point of no return",
                                marker.text
                            ),
                        )
                        .label(marker.span, "never rolled back to")
                        .label(point, "failures past here halt instead of reverting")
                        .help(
                            "move the rollback point before the point of no return, or remove it",
                        ),
                    );
                }
            }
            Entry::Step(step) => {
                let (Action::Shell {
                    revert: Revert::Irreversible(reason),
                    ..
                }
                | Action::Manual {
                    revert: Revert::Irreversible(reason),
                    ..
                }) = &step.action
                else {
                    continue;
                };
                if passed.is_some() || step.done == Done::Yes {
                    continue;
                }
                let mut d = Diagnostic::new(
                    Rule::IrreversibleBeforePointOfNoReturn,
                    format!(
                        "step `{}` cannot be undone but comes before the point of no return",
                        step.id
                    ),
                )
                .label(
                    step.spans.revert.unwrap_or(step.spans.id),
                    format!("irreversible: {reason}"),
                );
                d = match ponr {
                    Some(span) => d
                        .label(span, "the point of no return")
                        .help("move the step after the `PointOfNoReturn`, or give it a revert"),
                    None => d.help(format!(
                        "put `PointOfNoReturn(reason: \"{reason}\")` before this step, or give it a revert"
                    )),
                };
                diagnostics.push(d);
            }
        }
    }
}

/// `downtime: Begins` and `Ends` alternate, starting with `Begins`.
fn downtime(plan: &Plan, diagnostics: &mut Diagnostics) {
    let mut open: Option<&Step> = None;
    let mut inside: Vec<&Step> = Vec::new();
    for step in plan.steps() {
        match step.downtime {
            Some(Downtime::Begins) => {
                if let Some(begun) = open {
                    diagnostics.push(
                        Diagnostic::new(
                            Rule::DowntimeOrder,
                            format!("downtime begins again at `{}` before it has ended", step.id),
                        )
                        .label(step.spans.downtime.unwrap_or(step.spans.id), "begins again")
                        .label(begun.spans.downtime.unwrap_or(begun.spans.id), "began here")
                        .help(
                            "mark the step that gives users the service back with `downtime: Ends`",
                        ),
                    );
                }
                open = Some(step);
                inside.clear();
            }
            Some(Downtime::Ends) => {
                if open.is_none() {
                    diagnostics.push(
                        Diagnostic::new(Rule::DowntimeOrder, format!("downtime ends at `{}` before it begins", step.id))
                            .label(step.spans.downtime.unwrap_or(step.spans.id), "ends here")
                            .help("mark the step where users lose the service with `downtime: Begins`, before this one"),
                    );
                } else {
                    inside.push(step);
                    missing_checks(&inside, diagnostics);
                }
                open = None;
                inside.clear();
                continue;
            }
            None => {}
        }
        if open.is_some() {
            inside.push(step);
        }
    }
    if let Some(begun) = open {
        diagnostics.push(
            Diagnostic::new(
                Rule::DowntimeNeverEnds,
                format!("downtime begins at `{}` and never ends", begun.id),
            )
            .label(
                begun.spans.downtime.unwrap_or(begun.spans.id),
                "users lose the service here",
            )
            .help("mark the step that gives users the service back with `downtime: Ends`"),
        );
        missing_checks(&inside, diagnostics);
    }
}

/// Inside the downtime every step should say how to tell it worked.
fn missing_checks(inside: &[&Step], diagnostics: &mut Diagnostics) {
    for step in inside {
        let exempt = step.action.checks_itself()
            || matches!(step.action, Action::Manual { .. } | Action::Verify);
        if step.pending() && step.check.is_none() && !exempt {
            diagnostics.push(
                Diagnostic::new(Rule::MissingCheck, format!("step `{}` runs while users are down but has no check", step.id))
                    .label(step.spans.action, "how is success confirmed?")
                    .help("add `check: Run(\"...\")` so a failure is caught, and so a resume after a crash can tell whether it happened"),
            );
        }
    }
}

/// A step whose revert loses what users did (its `loses`) and that a
/// rollback can undo: the plan says so, and `check` reminds which rollback
/// point would cost it.
fn lossy_reverts(plan: &Plan, diagnostics: &mut Diagnostics) {
    let schedule = Schedule::new(plan, &Selection::default());
    for scheduled in &schedule.steps {
        let Some(step) = plan.step(&scheduled.id) else {
            continue;
        };
        let (Some(loses), Some(span)) = (&step.loses, step.spans.loses) else {
            continue;
        };
        if scheduled.past_no_return || !step.undoable() {
            continue;
        }
        diagnostics.push(
            Diagnostic::new(
                Rule::LossyRevert,
                format!(
                    "a rollback to `{}` would undo `{}`, and that loses {loses}",
                    scheduled.rollback_point, step.id
                ),
            )
            .label(span, "lost by its revert")
            .help(
                "if that loss is not acceptable, put the `PointOfNoReturn` before this step (its \
                 failure then halts instead), or a `RollbackPoint` after it; `run --dry-run` and \
                 `announce` say it too",
            ),
        );
    }
}

/// A deadline below the shortest the step can take always fails.
fn deadlines(plan: &Plan, diagnostics: &mut Diagnostics) {
    for step in plan.steps() {
        let (Some(deadline), Some(span)) = (step.deadline, step.spans.deadline) else {
            continue;
        };
        let min = step.duration.min();
        if deadline < min {
            let mut d = Diagnostic::new(
                Rule::DeadlineBelowMinimum,
                format!(
                    "step `{}` has a deadline of {} but takes at least {}",
                    step.id,
                    format_duration(deadline),
                    format_duration(min)
                ),
            )
            .label(span, "always exceeded");
            if let Some(duration) = step.spans.duration {
                d = d.label(duration, "the shortest it takes");
            }
            diagnostics.push(
                d.help("raise the deadline above the minimum duration, or correct the duration"),
            );
        }
    }
}

/// One step's place in time, for the TTL rule.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    /// Earliest start after the phase start (minimum durations).
    earliest_start: Duration,
    /// Latest end after the phase start (high durations).
    latest_end: Duration,
    /// Minimum length including `settle`.
    min: Duration,
}

/// Switching a record sooner after a TTL change than the old TTL means
/// resolvers may still cache the record for the old TTL.
fn ttl_before_switch(plan: &Plan, diagnostics: &mut Diagnostics) {
    let initial: HashMap<&str, Duration> = plan
        .dns
        .iter()
        .flat_map(|d| &d.records)
        .map(|r| (r.name.as_str(), r.ttl))
        .collect();
    let mut ttl_in_force = initial.clone();
    // The TTL changes so far: (phase, step, record, the TTL before it).
    let mut changes: Vec<(usize, &Step, &str, Duration)> = Vec::new();
    let mut wait_ttl: HashMap<&str, Duration> = HashMap::new();
    for step in plan.steps() {
        match &step.action {
            Action::WaitTtl { record } => {
                let previous = changes.iter().rev().find(|c| c.2 == record).map(|c| c.3);
                let ttl = previous
                    .or_else(|| ttl_in_force.get(record.as_str()).copied())
                    .unwrap_or_default();
                wait_ttl.insert(step.id.as_str(), ttl);
            }
            Action::DnsTtl { record, ttl } => {
                let old = ttl_in_force
                    .insert(record.as_str(), *ttl)
                    .unwrap_or_default();
                if step.pending() {
                    changes.push((phase_of(plan, &step.id), step, record.as_str(), old));
                }
            }
            _ => {}
        }
    }
    let timings: Vec<PhaseTimings<'_>> = plan
        .phases
        .iter()
        .map(|p| phase_timings(p, &wait_ttl))
        .collect();
    ttl_in_force = initial;
    for (phase_index, phase) in plan.phases.iter().enumerate() {
        for step in phase.steps() {
            match &step.action {
                Action::DnsTtl { record, ttl } => {
                    ttl_in_force.insert(record.as_str(), *ttl);
                }
                Action::DnsRecord { record, .. } if step.pending() => {
                    for (change_phase, change, _, old) in changes
                        .iter()
                        .filter(|c| c.2 == record && c.1.id != step.id)
                    {
                        if plan_position(plan, &change.id) > plan_position(plan, &step.id) {
                            continue;
                        }
                        let Some(gap) =
                            gap(plan, &timings, (*change_phase, change), (phase_index, step))
                        else {
                            continue;
                        };
                        if gap < *old {
                            diagnostics.push(
                                Diagnostic::new(
                                    Rule::TtlNotExpired,
                                    format!(
                                        "`{}` switches {record} as soon as {} after `{}` changed its TTL, but resolvers may cache it for the old TTL of {}",
                                        step.id,
                                        format_duration(gap),
                                        change.id,
                                        format_duration(*old)
                                    ),
                                )
                                .label(step.spans.action, "switched here")
                                .label(change.spans.action, format!("TTL changed here; it was {}", format_duration(*old)))
                                .help(format!(
                                    "let at least {} pass in between: add a `WaitTtl(record: \"{record}\")` step before the switch, or lower the TTL earlier",
                                    format_duration(*old)
                                )),
                            );
                        }
                    }
                    let ttl = ttl_in_force
                        .get(record.as_str())
                        .copied()
                        .unwrap_or_default();
                    if ttl > LONG_TTL {
                        diagnostics.push(
                            Diagnostic::new(
                                Rule::LongTtlSwitch,
                                format!("`{}` switches {record} while its TTL is {}: some users keep the old address that long", step.id, format_duration(ttl)),
                            )
                            .label(step.spans.action, "switched with a long TTL")
                            .help("lower the TTL well before the switch with `DnsTtl` steps (e.g. to 5m the day before, 10s just before)"),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

fn plan_position(plan: &Plan, id: &str) -> usize {
    plan.steps().position(|s| s.id == id).unwrap_or(usize::MAX)
}

fn phase_of(plan: &Plan, id: &str) -> usize {
    plan.phases
        .iter()
        .position(|p| {
            p.entries
                .iter()
                .any(|e| matches!(e, Entry::Step(s) if s.id == id))
        })
        .unwrap_or(0)
}

/// A phase's step timings and an order in which every step follows its
/// dependencies and the barriers (rollback points, the point of no return).
struct PhaseTimings<'p> {
    timings: HashMap<&'p str, Timing>,
    order: Vec<&'p Step>,
    segment: HashMap<&'p str, usize>,
}

/// The phase's steps, each with its barrier segment, in plan order.
fn segmented(phase: &Phase) -> Vec<(&Step, usize)> {
    let mut segment = 0;
    let mut steps = Vec::new();
    for entry in &phase.entries {
        match entry {
            Entry::Step(step) => steps.push((step, segment)),
            Entry::RollbackPoint(_) | Entry::PointOfNoReturn(_) => segment += 1,
        }
    }
    steps
}

/// Earliest starts and latest ends of a phase's steps (it has no cycle).
/// A step waits for its `after` steps and for every step before the last
/// barrier ahead of it, as the run machine does.
fn phase_timings<'p>(phase: &'p Phase, wait_ttl: &HashMap<&str, Duration>) -> PhaseTimings<'p> {
    let mut timings: HashMap<&str, Timing> = HashMap::new();
    let mut order = Vec::new();
    let steps = segmented(phase);
    let segment: HashMap<&str, usize> = steps.iter().map(|(s, k)| (s.id.as_str(), *k)).collect();
    let segments = steps.last().map_or(0, |(_, k)| k + 1);
    // What every step of the earlier segments guarantees: (earliest end, latest end).
    let (mut barrier_early, mut barrier_late) = (Duration::ZERO, Duration::ZERO);
    for current in 0..segments {
        let mut remaining: Vec<&Step> = steps
            .iter()
            .filter(|(_, k)| *k == current)
            .map(|(s, _)| *s)
            .collect();
        let mut ends = Vec::new();
        // Dependencies may point forward in the list; settle them in rounds.
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|step| {
                if !step.after.iter().all(|d| timings.contains_key(d.as_str())) {
                    return true;
                }
                let (min, high) = if step.pending() {
                    let settle = step.settle.unwrap_or_default();
                    let wait = wait_ttl.get(step.id.as_str()).copied().unwrap_or_default();
                    (
                        step.duration.min() + settle + wait,
                        step.duration.high() + settle + wait,
                    )
                } else {
                    (Duration::ZERO, Duration::ZERO)
                };
                let deps = step.after.iter().filter_map(|d| timings.get(d.as_str()));
                let earliest_start = deps
                    .clone()
                    .map(|t| t.earliest_start + t.min)
                    .max()
                    .unwrap_or_default()
                    .max(barrier_early);
                let latest_start = deps
                    .map(|t| t.latest_end)
                    .max()
                    .unwrap_or_default()
                    .max(barrier_late);
                let timing = Timing {
                    earliest_start,
                    latest_end: latest_start + high,
                    min,
                };
                ends.push((timing.earliest_start + timing.min, timing.latest_end));
                timings.insert(step.id.as_str(), timing);
                order.push(*step);
                false
            });
            if remaining.len() == before {
                break;
            }
        }
        for (early, late) in ends {
            barrier_early = barrier_early.max(early);
            barrier_late = barrier_late.max(late);
        }
    }
    PhaseTimings {
        timings,
        order,
        segment,
    }
}

/// The guaranteed time between the end of `change` and the start of `switch`,
/// or `None` when it cannot be known (an unscheduled phase).
fn gap(
    plan: &Plan,
    timings: &[PhaseTimings<'_>],
    (change_phase, change): (usize, &Step),
    (switch_phase, switch): (usize, &Step),
) -> Option<Duration> {
    if change_phase != switch_phase {
        let change_at = plan.phases[change_phase].at?;
        let switch_at = plan.phases[switch_phase].at?;
        let change_end = change_at
            + secs(
                timings[change_phase]
                    .timings
                    .get(change.id.as_str())?
                    .latest_end,
            );
        let switch_start = switch_at
            + secs(
                timings[switch_phase]
                    .timings
                    .get(switch.id.as_str())?
                    .earliest_start,
            );
        return Some(Duration::from_secs(
            u64::try_from(switch_start - change_end).unwrap_or(0),
        ));
    }
    // Same phase: the longest chain of minimum durations from change to
    // switch, through `after` and through the barriers between segments.
    let phase = &timings[switch_phase];
    let change_segment = phase.segment.get(change.id.as_str()).copied()?;
    let mut reach: HashMap<&str, Duration> = HashMap::new();
    // The latest reached end among steps of segments already closed.
    let (mut closed, mut open, mut open_segment) = (None::<Duration>, None::<Duration>, 0usize);
    for step in &phase.order {
        let segment = phase.segment.get(step.id.as_str()).copied().unwrap_or(0);
        if segment != open_segment {
            closed = closed.max(open);
            open = None;
            open_segment = segment;
        }
        if step.id == change.id {
            open = open.max(Some(Duration::ZERO));
            continue;
        }
        let through_after = step
            .after
            .iter()
            .filter_map(|d| {
                if *d == change.id {
                    Some(Duration::ZERO)
                } else {
                    let min = phase.timings.get(d.as_str())?.min;
                    reach.get(d.as_str()).map(|r| *r + min)
                }
            })
            .max();
        let through_barrier = closed.filter(|_| segment > change_segment);
        if let Some(best) = through_after.max(through_barrier) {
            reach.insert(step.id.as_str(), best);
            let min = phase
                .timings
                .get(step.id.as_str())
                .map_or(Duration::ZERO, |t| t.min);
            open = open.max(Some(best + min));
        }
    }
    Some(
        reach
            .get(switch.id.as_str())
            .copied()
            .unwrap_or(Duration::ZERO),
    )
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{ScheduledStep, START_POINT};

    /// Two steps waiting for each other, as no valid plan can say (the
    /// `after-cycle` rule refuses it first): nothing can ever start.
    fn deadlocked() -> Arc<Schedule> {
        let a = ScheduledStep::automatic("a", vec![1], 0, (START_POINT, 0), false);
        let b = ScheduledStep::automatic("b", vec![0], 0, (START_POINT, 0), false);
        Arc::new(Schedule::from_steps(vec![a, b], vec![START_POINT.into()]))
    }

    #[test]
    fn exploration_reports_a_run_that_never_ends_with_its_events() {
        let counterexample = explore(deadlocked(), EXPLORED_FAULTS)
            .expect_err("a schedule where nothing can start is unsafe");
        assert!(counterexample.faults.is_empty(), "{counterexample}");
        assert!(
            counterexample.events.starts_with(&[
                crate::machine::Event::Start,
                crate::machine::Event::PreflightPassed
            ]),
            "{counterexample}"
        );
        assert!(!counterexample.problem.is_empty());
    }

    #[test]
    fn an_unsafe_run_is_a_diagnostic_with_the_faults_and_events() {
        let counterexample = explore(deadlocked(), EXPLORED_FAULTS).expect_err("unsafe");
        let diagnostic = unsafe_run(&counterexample);
        assert_eq!(diagnostic.rule(), Rule::UnsafeRun);
        assert!(
            diagnostic.message().contains(&counterexample.problem),
            "{}",
            diagnostic.message()
        );
        let help = diagnostic.help_text().unwrap_or_default();
        assert!(help.contains("injected: no fault"), "{help}");
        assert!(help.contains("Start -> PreflightPassed"), "{help}");
    }
}

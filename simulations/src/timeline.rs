//! The plan laid out in time at its likely durations: where each pending
//! step starts and ends, the critical path, the downtime window and the
//! barriers, per phase. [`crate::gantt`] draws it; the CLI prints it.
//!
//! Steps are placed as the run machine runs them: a step starts when its
//! `after` steps are done and every step before the last rollback point or
//! point of no return ahead of it is done; phases start at their anchors.
//! This is the *likely* schedule (PERT likely, the middle of a uniform, the
//! median of a log-normal), not a simulated one: it says what the plan
//! expects, the estimate says how that varies.
//!
//! ```
//! use plan_core::{load_str, Settings, Source};
//! use simulations::timeline::layout;
//!
//! let text = r#"Plan(
//!     name: "demo", service: "demo", window: Window(announced: "10m"),
//!     phases: [Phase(name: "window", at: "0", steps: [
//!         Step(id: "a", action: Wait("2m")),
//!         Step(id: "b", action: Wait("3m")),
//!     ])],
//! )"#;
//! let plan = load_str(Source::new("demo.ron", text), &Settings::default()).plan.expect("valid");
//! let timeline = layout(&plan, None).expect("one phase");
//! assert_eq!(timeline.phases[0].length.as_secs(), 300);
//! assert!(timeline.phases[0].bars.iter().all(|b| b.critical));
//! ```

use std::collections::HashMap;
use std::time::Duration;

use plan_core::{Action, Downtime, Entry, Phase, Plan, Step};

/// A plan laid out in time, phase by phase.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The plan's name.
    pub plan: String,
    /// When the window starts, if the plan fixes it.
    pub window_start: Option<jiff::Timestamp>,
    /// The phases that have pending steps (or the one selected), in plan order.
    pub phases: Vec<PhaseTimeline>,
}

/// One phase laid out from its own start.
#[derive(Clone, Debug)]
pub struct PhaseTimeline {
    /// The phase's name.
    pub name: String,
    /// Seconds from the window start, or `None` for an unscheduled phase.
    pub at: Option<i64>,
    /// Pending steps in plan order, each with its likely start.
    pub bars: Vec<Bar>,
    /// Rollback points and the point of no return, where the run passes them.
    pub markers: Vec<TimelineMarker>,
    /// The part of the user-visible outage that falls into this phase.
    pub downtime: Option<DowntimeSpan>,
    /// The likely length of the phase: the end of its critical path.
    pub length: Duration,
    /// Ids of the steps on the critical path, in run order.
    pub critical_path: Vec<String>,
}

/// One pending step's place in time.
#[derive(Clone, Debug)]
pub struct Bar {
    /// The step id.
    pub id: String,
    /// The step's title (the id when the plan gives none).
    pub title: String,
    /// The row number the step has in `status`.
    pub number: u32,
    /// The action's kind (`Shell`, `Rsync`, ...).
    pub kind: &'static str,
    /// Likely start, from the phase start.
    pub start: Duration,
    /// Likely length of the action (a `WaitTtl` waits for the TTL it guards).
    pub work: Duration,
    /// The `settle` wait after the action.
    pub settle: Duration,
    /// Whether the step is on the critical path.
    pub critical: bool,
    /// The downtime marker the step carries.
    pub downtime: Option<Downtime>,
}

impl Bar {
    /// Likely end, from the phase start.
    pub fn end(&self) -> Duration {
        self.start + self.work + self.settle
    }
}

/// What a vertical marker line stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerKind {
    /// A `RollbackPoint`.
    RollbackPoint,
    /// The `PointOfNoReturn`.
    PointOfNoReturn,
}

/// A rollback point or the point of no return, placed in time.
#[derive(Clone, Debug)]
pub struct TimelineMarker {
    /// Which kind.
    pub kind: MarkerKind,
    /// The rollback point's name, or the reason there is no way back.
    pub text: String,
    /// When the run passes it: every step before it is done.
    pub at: Duration,
}

/// The outage within one phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DowntimeSpan {
    /// Users lose the service (the start of the `Begins` step, or the phase
    /// start when the outage began in an earlier phase).
    pub begins: Duration,
    /// The `Ends` step is done (or the phase ends with the outage still on).
    pub ends: Duration,
    /// Then resolvers may still hold the old address this long: the TTL in
    /// force when the record was switched (zero for other `Ends` steps).
    pub ttl: Duration,
    /// Whether the outage goes on past this phase.
    pub continues: bool,
}

impl DowntimeSpan {
    /// When users have the service back, propagation included.
    pub fn over(&self) -> Duration {
        self.ends + self.ttl
    }
}

/// Why a timeline cannot be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    /// `--phase` names no phase of the plan.
    #[error("the plan has no phase `{name}`; its phases are {known}")]
    UnknownPhase {
        /// The name asked for.
        name: String,
        /// The phase names, comma-separated.
        known: String,
    },
    /// Nothing is left to run in the part asked for.
    #[error("{0}")]
    NothingToRun(String),
    /// The SVG could not be drawn.
    #[error("cannot draw the chart: {0}")]
    Draw(String),
}

/// Lays out the pending steps of `plan` (only phase `phase`, when given).
pub fn layout(plan: &Plan, phase: Option<&str>) -> Result<Timeline, TimelineError> {
    if let Some(name) = phase {
        if plan.phase(name).is_none() {
            return Err(TimelineError::UnknownPhase {
                name: name.to_owned(),
                known: plan
                    .phases
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let ttls = TtlFacts::new(plan);
    let mut phases = Vec::new();
    // Whether users are down when a phase starts (the outage began earlier).
    let mut down = false;
    for p in &plan.phases {
        let laid = lay_out_phase(p, &ttls, down);
        down = laid.down_at_end;
        let selected = phase.is_none_or(|name| name == p.name);
        if selected && !laid.phase.bars.is_empty() {
            phases.push(laid.phase);
        }
    }
    if phases.is_empty() {
        return Err(TimelineError::NothingToRun(match phase {
            Some(name) => {
                format!("every step of phase `{name}` is already done: there is nothing to draw")
            }
            None => "every step of the plan is already done: there is nothing to draw".to_owned(),
        }));
    }
    Ok(Timeline {
        plan: plan.name.clone(),
        window_start: plan.window.start,
        phases,
    })
}

/// What the DNS steps imply for timing: how long each `WaitTtl` waits, and
/// the TTL in force when an `Ends` step switches a record.
struct TtlFacts<'p> {
    wait: HashMap<&'p str, Duration>,
    switch: HashMap<&'p str, Duration>,
}

impl<'p> TtlFacts<'p> {
    fn new(plan: &'p Plan) -> Self {
        let mut in_force: HashMap<&str, Duration> = plan
            .dns
            .iter()
            .flat_map(|d| &d.records)
            .map(|r| (r.name.as_str(), r.ttl))
            .collect();
        // The TTL each record had before its latest change.
        let mut before_change: HashMap<&str, Duration> = HashMap::new();
        let (mut wait, mut switch) = (HashMap::new(), HashMap::new());
        for step in plan.steps() {
            match &step.action {
                Action::DnsTtl { record, ttl } => {
                    let old = in_force.insert(record.as_str(), *ttl).unwrap_or_default();
                    before_change.insert(record.as_str(), old);
                }
                Action::WaitTtl { record } => {
                    let ttl = before_change
                        .get(record.as_str())
                        .or_else(|| in_force.get(record.as_str()));
                    wait.insert(step.id.as_str(), ttl.copied().unwrap_or_default());
                }
                Action::DnsRecord { record, .. } => {
                    switch.insert(
                        step.id.as_str(),
                        in_force.get(record.as_str()).copied().unwrap_or_default(),
                    );
                }
                _ => {}
            }
        }
        TtlFacts { wait, switch }
    }
}

struct LaidOut {
    phase: PhaseTimeline,
    down_at_end: bool,
}

/// Places one phase's pending steps; `down` says whether the outage is on
/// when the phase starts.
fn lay_out_phase(phase: &Phase, ttls: &TtlFacts<'_>, mut down: bool) -> LaidOut {
    // Pending steps with their barrier segment; markers close a segment.
    let mut steps: Vec<(&Step, usize)> = Vec::new();
    // Each marker with the last segment it closes.
    let mut marker_after: Vec<(MarkerKind, &str, usize)> = Vec::new();
    let mut segment = 0;
    for entry in &phase.entries {
        match entry {
            Entry::Step(step) if step.pending() => steps.push((step, segment)),
            Entry::Step(_) => {}
            Entry::RollbackPoint(m) => {
                marker_after.push((MarkerKind::RollbackPoint, &m.text, segment));
                segment += 1;
            }
            Entry::PointOfNoReturn(m) => {
                marker_after.push((MarkerKind::PointOfNoReturn, &m.text, segment));
                segment += 1;
            }
        }
    }
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.id.as_str(), i))
        .collect();
    let mut bars: Vec<Option<Bar>> = vec![None; steps.len()];
    // The step whose end a step's start waits for, if any.
    let mut binding: Vec<Option<usize>> = vec![None; steps.len()];
    // The latest-ending step of the segments closed so far.
    let mut barrier: Option<(Duration, usize)> = None;
    for current in 0..=segment {
        let mut remaining: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i].1 == current)
            .collect();
        let mut closing = barrier;
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|&i| {
                let step = steps[i].0;
                // Dependencies that are done, or in another phase, are met.
                let deps: Vec<usize> = step
                    .after
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect();
                if deps.iter().any(|&d| bars[d].is_none()) {
                    return true;
                }
                let mut start = barrier.map(|(end, _)| end).unwrap_or_default();
                let mut bound = barrier.map(|(_, by)| by);
                for d in deps {
                    let end = bars[d].as_ref().map(Bar::end).unwrap_or_default();
                    if end >= start {
                        start = end;
                        bound = Some(d);
                    }
                }
                let wait = ttls.wait.get(step.id.as_str()).copied().unwrap_or_default();
                let bar = Bar {
                    id: step.id.clone(),
                    title: step.title.clone(),
                    number: step.number,
                    kind: step.action.kind(),
                    start,
                    work: step.duration.likely() + wait,
                    settle: step.settle.unwrap_or_default(),
                    critical: false,
                    downtime: step.downtime,
                };
                if closing.is_none_or(|(end, _)| bar.end() > end) {
                    closing = Some((bar.end(), i));
                }
                binding[i] = bound;
                bars[i] = Some(bar);
                false
            });
            if remaining.len() == before {
                // A cycle: the loader reports it and no valid plan has one.
                break;
            }
        }
        barrier = closing;
    }
    let mut bars: Vec<Bar> = bars.into_iter().flatten().collect();
    let length = bars.iter().map(Bar::end).max().unwrap_or_default();

    // The critical path: back from the last end through what each start waited for.
    let mut critical_path = Vec::new();
    let mut at = (0..bars.len()).max_by_key(|&i| (bars[i].end(), i));
    while let Some(i) = at {
        if bars[i].critical {
            break;
        }
        bars[i].critical = true;
        critical_path.push(bars[i].id.clone());
        at = binding.get(i).copied().flatten();
    }
    critical_path.reverse();

    let markers = marker_after
        .into_iter()
        .map(|(kind, text, closes)| TimelineMarker {
            kind,
            text: text.to_owned(),
            at: steps
                .iter()
                .zip(&bars)
                .filter(|((_, k), _)| *k <= closes)
                .map(|(_, b)| b.end())
                .max()
                .unwrap_or_default(),
        })
        .collect();

    // The outage: from the `Begins` step's start to the `Ends` step's end,
    // then the TTL in force at the switch. Done steps mark it at the phase start.
    let mut downtime: Option<DowntimeSpan> = down.then_some(DowntimeSpan {
        begins: Duration::ZERO,
        ends: length,
        ttl: Duration::ZERO,
        continues: true,
    });
    for entry in &phase.entries {
        let Entry::Step(step) = entry else { continue };
        let bar = bars.iter().find(|b| b.id == step.id);
        match step.downtime {
            Some(Downtime::Begins) => {
                down = true;
                let begins = bar.map(|b| b.start).unwrap_or_default();
                downtime = Some(DowntimeSpan {
                    begins,
                    ends: length,
                    ttl: Duration::ZERO,
                    continues: true,
                });
            }
            Some(Downtime::Ends) => {
                down = false;
                let ends = bar.map(Bar::end).unwrap_or_default();
                let ttl = ttls
                    .switch
                    .get(step.id.as_str())
                    .copied()
                    .unwrap_or_default();
                let begins = downtime.map(|d| d.begins).unwrap_or_default();
                downtime = Some(DowntimeSpan {
                    begins,
                    ends,
                    ttl,
                    continues: false,
                });
            }
            None => {}
        }
    }
    LaidOut {
        phase: PhaseTimeline {
            name: phase.name.clone(),
            at: phase.at,
            bars,
            markers,
            downtime,
            length,
            critical_path,
        },
        down_at_end: down,
    }
}

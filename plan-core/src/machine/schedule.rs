//! What one run executes: the pending steps of the selected phases, with
//! their dependencies, barriers and rollback points resolved to indices.

use std::collections::HashSet;

use rustc_hash::FxHashMap;

use super::event::{Command, Effect, Event, Input};
use crate::plan::{Action, Entry, Plan};

/// Index of a step in a [`Schedule`].
pub type StepIx = usize;

/// The name used for the implicit rollback point at the start of a run,
/// when no `RollbackPoint` comes before the failed step.
pub const START_POINT: &str = "start";

/// One step as the run machine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledStep {
    /// The step id.
    pub id: String,
    /// Steps of this run that must finish first.
    pub deps: Vec<StepIx>,
    /// Barrier segment: rollback points, the point of no return and phase
    /// boundaries start a new one; a step waits for every earlier segment.
    pub segment: usize,
    /// The rollback point a failure of this step rolls back to.
    pub rollback_point: String,
    /// The first segment rolled back on a failure of this step.
    pub rollback_segment: usize,
    /// Past the point of no return: a failure halts.
    pub past_no_return: bool,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// An operator performs it and confirms.
    pub manual: bool,
    /// Whether anything can tell if it took effect (for in-doubt steps).
    pub checkable: bool,
    /// Whether a rollback has something to undo.
    pub undoable: bool,
    /// Whether a failed attempt is undone without a check saying its
    /// effect is there (`revert_after_failure`).
    pub revert_after_failure: bool,
    /// Hosts it touches.
    pub hosts: Vec<String>,
}

impl ScheduledStep {
    /// An automatic step on `local` that rolls back to `point` (its name and
    /// first segment): no retries, checkable, with something to undo. The
    /// common case, for tests, generators and benchmarks.
    pub fn automatic(
        id: &str,
        deps: Vec<StepIx>,
        segment: usize,
        point: (&str, usize),
        past_no_return: bool,
    ) -> ScheduledStep {
        ScheduledStep {
            id: id.into(),
            deps,
            segment,
            rollback_point: point.0.into(),
            rollback_segment: point.1,
            past_no_return,
            retries: 0,
            manual: false,
            checkable: true,
            undoable: true,
            revert_after_failure: false,
            hosts: vec!["local".into()],
        }
    }
}

/// The steps of one run, in plan order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The steps.
    pub steps: Vec<ScheduledStep>,
    /// Rollback points of this run, by name (and `start`).
    pub points: Vec<String>,
    /// The reason of the point of no return this run crosses, if it does
    /// (one passed in an earlier phase's run is not crossed again).
    pub no_return: Option<String>,
    index: FxHashMap<String, StepIx>,
}

/// Which part of a plan a run executes.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this phase (`--phase`); all phases when `None`.
    pub phase: Option<String>,
    /// Steps already completed by earlier runs (from the journal).
    pub already_done: HashSet<String>,
}

impl Schedule {
    /// The pending steps of the selected phases of `plan`.
    pub fn new(plan: &Plan, selection: &Selection) -> Schedule {
        let mut steps: Vec<ScheduledStep> = Vec::new();
        let mut index: FxHashMap<String, StepIx> = FxHashMap::default();
        let mut points = vec![START_POINT.to_owned()];
        let mut segment = 0usize;
        let mut point = (START_POINT.to_owned(), 0usize);
        let mut past_no_return = false;
        let mut no_return = None;
        let mut first_phase = true;
        let mut reached_selection = false;
        for phase in &plan.phases {
            if selection.phase.as_ref().is_some_and(|p| *p != phase.name) {
                // A point of no return passed in an earlier phase stays passed.
                if !reached_selection {
                    past_no_return |= phase
                        .entries
                        .iter()
                        .any(|e| matches!(e, Entry::PointOfNoReturn(_)));
                }
                continue;
            }
            reached_selection = true;
            if !first_phase {
                segment += 1;
            }
            first_phase = false;
            for entry in &phase.entries {
                match entry {
                    Entry::RollbackPoint(marker) => {
                        segment += 1;
                        point = (marker.text.clone(), segment);
                        points.push(marker.text.clone());
                    }
                    Entry::PointOfNoReturn(marker) => {
                        segment += 1;
                        past_no_return = true;
                        no_return = Some(marker.text.clone());
                    }
                    Entry::Step(step) => {
                        if !step.pending() || selection.already_done.contains(&step.id) {
                            continue;
                        }
                        let deps = step
                            .after
                            .iter()
                            .filter_map(|d| index.get(d).copied())
                            .collect();
                        let hosts = match &step.action {
                            Action::Rsync { from, to, .. } => vec![from.clone(), to.clone()],
                            _ => step.host().map(|h| vec![h.to_owned()]).unwrap_or_default(),
                        };
                        index.insert(step.id.clone(), steps.len());
                        steps.push(ScheduledStep {
                            id: step.id.clone(),
                            deps,
                            segment,
                            rollback_point: point.0.clone(),
                            rollback_segment: point.1,
                            past_no_return,
                            retries: step.retries,
                            manual: matches!(step.action, Action::Manual { .. }),
                            checkable: step.check.is_some() || step.action.checks_itself(),
                            undoable: step.undoable(),
                            revert_after_failure: step.revert_after_failure,
                            hosts,
                        });
                    }
                }
            }
        }
        // Crossed only when a step of this run lies past it.
        let no_return = no_return.filter(|_| steps.iter().any(|s| s.past_no_return));
        Schedule {
            steps,
            points,
            no_return,
            index,
        }
    }

    /// Builds a schedule from steps directly (for tests and generators).
    pub fn from_steps(steps: Vec<ScheduledStep>, points: Vec<String>) -> Schedule {
        let index = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Schedule {
            steps,
            points,
            no_return: None,
            index,
        }
    }

    /// The same schedule, crossing a point of no return for this reason
    /// before its first step past it (for tests and generators).
    pub fn with_no_return(mut self, reason: &str) -> Schedule {
        self.no_return = Some(reason.to_owned());
        self
    }

    /// The index of the step with this id.
    pub fn index_of(&self, id: &str) -> Option<StepIx> {
        self.index.get(id).copied()
    }

    /// The machine's form of `event`: `None` when it is about a step this
    /// run does not have (the machine would ignore it).
    pub fn resolve(&self, event: &Event) -> Option<Input> {
        event.map_step(|id| self.index_of(id))
    }

    /// `command`, which the machine of this schedule asked for, with its step
    /// named by id.
    pub fn name(&self, command: &Command) -> Effect {
        // invariant: the machine only names steps of its own schedule.
        command.map_step(|&ix| self.steps[ix].id.clone())
    }

    /// Every host the run touches, in first-use order.
    pub fn hosts(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.steps
            .iter()
            .flat_map(|s| s.hosts.iter())
            .filter(|h| seen.insert(h.as_str()))
            .cloned()
            .collect()
    }
}

//! Rollback tails shared between the exploration's runs.
//!
//! A fault at the k-th step of a segment is followed by a rollback that
//! undoes the k steps completed before it, so exploring every forward fault
//! of an n-step segment walks n²/2 reverts: 50 million for a fleet's
//! 10,000-step plan with one rollback point. Most of those reverts are the
//! same ones again: every branch is cloned from the run without faults, so
//! the steps it completed before its fault complete in that run's order,
//! and once its rollback has undone what came after them (the failed step,
//! the steps that drained), what is left is the same descent through that
//! shared prefix for every fault past it.
//!
//! So the first run to revert a step of the shared prefix records how its
//! rollback ended from there, and a later run that reaches the same revert
//! in the same situation (the same rollback segment, fault budget, first
//! fault and whether it is the rollback's first revert) takes that ending
//! instead of walking it again. What it skips is accounted as if walked:
//! the second faults of the tail are counted as covered (the first run
//! explored them), and what the tail leaves untouched (every step outside
//! it) is checked as the run's end would be. `explore_unshared` walks every
//! tail, and the tests check both give the same report.

use rustc_hash::FxHashMap;

use super::{FaultPoint, Schedule, Sim, StepKind};
use crate::machine::event::{RunEnd, StepStatus};
use crate::machine::schedule::StepIx;

/// What the rest of a rollback can depend on, from a revert of a step the
/// run without faults completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct TailKey {
    step: StepIx,
    /// The segment the rollback goes back to.
    segment: usize,
    budget: usize,
    /// The rollback's first revert.
    first: bool,
    /// The first fault: a revert, and the kind of its step.
    first_fault: (bool, u32),
}

/// How a rollback went on from a revert.
#[derive(Clone, Debug)]
struct Tail {
    end: RunEnd<StepIx>,
    /// The reverts it asked for, the first included.
    reverts: usize,
}

/// The tails recorded so far.
#[derive(Default)]
pub(super) struct Tails {
    enabled: bool,
    ends: FxHashMap<TailKey, Tail>,
    /// Runs that took a recorded tail.
    pub(super) taken: usize,
}

/// A recorded tail a run takes: its end, and the second faults it covers.
pub(super) struct Taken {
    pub(super) end: RunEnd<StepIx>,
    pub(super) reverts: usize,
}

impl Tails {
    pub(super) fn new(enabled: bool) -> Tails {
        Tails {
            enabled,
            ..Tails::default()
        }
    }

    /// The key of `sim` reverting `ix` now, when its tail can be shared:
    /// the step is one the run without faults completed, in the same place
    /// of its completion order, and a fault started the rollback.
    pub(super) fn key(
        &self,
        schedule: &Schedule,
        sim: &Sim,
        ix: StepIx,
        first: bool,
    ) -> Option<TailKey> {
        if !self.enabled || !sim.completed[ix] || sim.position[ix] > sim.shared {
            return None;
        }
        let first_fault = match *sim.faults.first()? {
            FaultPoint::Forward(f) => (false, StepKind::of(schedule, f).bits()),
            FaultPoint::Revert(f) => (true, StepKind::of(schedule, f).bits()),
        };
        Some(TailKey {
            step: ix,
            segment: sim.machine.rollback_segment()?,
            budget: sim.budget,
            first,
            first_fault,
        })
    }

    /// The recorded tail from `key`, after checking what it leaves as it
    /// is: every step but those it reverts must end as a rollback's end
    /// requires.
    pub(super) fn take(
        &mut self,
        schedule: &Schedule,
        sim: &Sim,
        key: &TailKey,
    ) -> Option<Result<Taken, String>> {
        let tail = self.ends.get(key)?;
        self.taken += 1;
        let checked = untouched_by_tail(schedule, sim, key).map(|()| Taken {
            end: tail.end.clone(),
            reverts: tail.reverts,
        });
        Some(checked)
    }

    /// Records how `sim`'s rollback ended from each shareable revert it
    /// passed.
    pub(super) fn record(&mut self, sim: &Sim, end: &RunEnd<StepIx>) {
        for &(key, at) in &sim.tail {
            self.ends.entry(key).or_insert_with(|| Tail {
                end: end.clone(),
                reverts: sim.reverts - at,
            });
        }
    }
}

/// The steps a shared tail from `key` does not revert (done outside the
/// shared prefix, or never done) are settled, and none of them in the
/// rollback's segments is left done: what the run's end would check of
/// them.
fn untouched_by_tail(schedule: &Schedule, sim: &Sim, key: &TailKey) -> Result<(), String> {
    let bound = sim.position[key.step];
    for (ix, status) in sim.machine.statuses().iter().enumerate() {
        if sim.completed[ix] && sim.position[ix] <= bound {
            continue;
        }
        let id = &schedule.steps[ix].id;
        if matches!(
            status,
            StepStatus::Running
                | StepStatus::InDoubt
                | StepStatus::Reverting
                | StepStatus::RevertInDoubt
        ) {
            return Err(format!("rolled back while step `{id}` is {status:?}"));
        }
        if schedule.steps[ix].segment >= key.segment
            && *status == StepStatus::Done
            && sim.completed[ix]
        {
            return Err(format!(
                "rolling back to the start of segment {}, step `{id}` is left done after \
                 the steps completed before it are undone",
                key.segment
            ));
        }
    }
    Ok(())
}

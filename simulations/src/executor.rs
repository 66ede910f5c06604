//! The simulated executor: performs the run machine's effects on a virtual
//! clock and feeds their outcomes back as events, exactly as the real
//! executor does with hosts, so a simulated run is the real machine's run.
//!
//! Effects complete at virtual times kept in a queue ordered by time (ties
//! in the order they were scheduled). How each effect is simulated:
//!
//! - `Preflight`: passes at once.
//! - Phases start at their anchors: a step of a phase anchored later than
//!   the first simulated phase does not start before that much virtual
//!   time has passed (a `+1d` clean-up runs a day after the window opened,
//!   not back to back with it).
//! - `Forward`: takes a duration drawn from the step's model (times the
//!   scenario's `scale`; a `WaitTtl` waits for the TTL it guards on top),
//!   then `settle`. An attempt fails with the step's failure rate: it then
//!   fails partway, at a uniformly drawn share of its duration (or after a
//!   draw of the times to failure journals measured). An attempt
//!   whose duration exceeds the step's `deadline` is killed at the deadline
//!   (`DeadlineExceeded`); `settle` does not count towards the deadline.
//!   Scenarios may also leave an attempt in doubt partway through, or force
//!   any of these outcomes. Parallel steps overlap in virtual time. A
//!   failed attempt of a step with a check and something to undo (before
//!   the point of no return) left part of its effect with the step's
//!   `checked_done` chance: the machine then checks it (taking the `check`
//!   time), and the rollback undoes it, as a real run does.
//! - `Confirm` (a manual step): the operator takes the step's duration and
//!   declines with its failure rate. Manual steps have no deadline.
//! - `Check` and `AskOperator` (for a step in doubt): take the scenario's
//!   `check` (30 s) or `answer` (5 min) time. Whether they find the action
//!   done is drawn when the connection is lost: with the step's
//!   `checked_done` chance (0.5) the action had taken effect and the
//!   connection was lost at its end; otherwise it was lost partway, and the
//!   machine runs the step again.
//! - `CrossNoReturn`: the operator crosses the point of no return at once.
//! - `Revert`: takes a draw of the revert durations journals measured, or
//!   without them a fresh draw of the step's forward duration model
//!   (scaled, without `settle`): undoing a change is then assumed to cost
//!   about what making it did. It fails with the revert failure rate, which
//!   is the step's failure rate unless a scenario says otherwise (or
//!   journals observed reverts: see [`crate::measured`]).
//! - the window's `deadline`, when the plan sets one, aborts the run that
//!   long after it started, as the real driver does.
//!
//! # Downtime
//!
//! Users are down from the start of the `Begins` step (less its
//! `in_flight`: work users started that long before is caught by it) to
//! the end of the `Ends` step. A `DnsRecord` switch made while users are down (the `Ends`
//! step itself, or one between the markers) keeps them down until the TTL in
//! force for that record at the switch has passed, since resolvers may hold
//! the old address that long; `DnsTtl` steps change that TTL as they
//! complete and are reverted. On a rollback, reverting the `Ends` step takes
//! users down again, and they are back when the revert of the `Begins` step
//! completes, plus the TTL in force when a switch was reverted. Time spent
//! rolling back counts. A run that stops (halts, or rolls back to a point
//! inside the outage) while users are down counts the downtime until it
//! stops, and is counted as an open outage: an operator must act, so the
//! real outage is longer.
//!
//! # Cost
//!
//! A run allocates nothing of its own: buffers live in each thread's worker
//! and are reused, the events fed to the machine are built once per step,
//! and every run starts from a copy of a machine that has already had
//! `Start` and `PreflightPassed` (the same for every run, before any random
//! draw). That copy allocates nothing either (the machine's tables are
//! inline up to 32 steps), and each thread copies its own template, with a
//! schedule of its own, so threads never share a reference count. The
//! machine names steps by schedule index, so no event is looked up by name
//! and no effect clones one. What remains is the machine's own work, about
//! half the time (`bench/simulate` prints the share), and the draws.

use std::borrow::Cow;
use std::cmp::Ordering;

use plan_core::machine::{
    Command, Effect, Event, FailureChoice, HaltCause, Input, Outbox, RunEnd, RunMachine, StepStatus,
};
use plan_core::Downtime;
use statig::blocking::StateMachine;

use crate::model::{DnsRole, Model, StepModel};
use crate::outage::Outage;
use crate::random::Rng;
use crate::sampling::DurationSampler;
use crate::scenario::Force;
use crate::tally::{millis, Tally};
use crate::SimError;

/// What a scheduled completion feeds to the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    PreflightPassed,
    Crossed,
    ChoseRollback,
    Succeeded,
    Failed,
    Deadline,
    InDoubt,
    Checked(bool),
    Confirmed,
    Declined,
    Answered(bool),
    Reverted,
    RevertFailed,
    Abort,
    WindowAbort,
    /// The downtime budget may be spent: aborts the run if users are still
    /// down since then and the point of no return is not crossed.
    BudgetAbort,
}

impl What {
    /// What this completion feeds the machine about step `step`. Events
    /// that name only the step are built here, on the stack; those with a
    /// reason (or of no step) are the model's, built once.
    #[inline]
    fn event(self, step: usize, model: &Model) -> Cow<'_, Input> {
        match self {
            What::PreflightPassed => Cow::Borrowed(&model.preflight_passed),
            What::Crossed => Cow::Borrowed(&model.crossed),
            What::Abort => Cow::Borrowed(&model.abort),
            What::WindowAbort => Cow::Borrowed(&model.window_abort),
            What::BudgetAbort => Cow::Borrowed(&model.budget_abort),
            What::Failed => Cow::Borrowed(&model.events[step].failed),
            What::InDoubt => Cow::Borrowed(&model.events[step].in_doubt),
            What::RevertFailed => Cow::Borrowed(&model.events[step].revert_failed),
            What::Succeeded => Cow::Owned(Event::StepSucceeded { step }),
            What::Deadline => Cow::Owned(Event::DeadlineExceeded { step }),
            What::Checked(done) => Cow::Owned(Event::Checked { step, done }),
            What::Confirmed => Cow::Owned(Event::OperatorConfirmed { step }),
            What::Declined => Cow::Owned(Event::OperatorDeclined { step }),
            What::Answered(done) => Cow::Owned(Event::OperatorAnswered { step, done }),
            What::Reverted => Cow::Owned(Event::RevertSucceeded { step }),
            // A rehearsal rolls back, as a run with the default policy does.
            What::ChoseRollback => Cow::Owned(Event::OperatorChose {
                step,
                choice: FailureChoice::Rollback,
            }),
        }
    }
}

/// A completion waiting in the virtual clock's queue.
#[derive(Clone, Copy, Debug)]
struct Pending {
    at: f64,
    seq: u32,
    ix: u32,
    /// When the work that completes here started (for the tail report).
    since: f64,
    what: What,
}

impl Pending {
    /// Whether this completion comes before `other`: the earlier time, and
    /// at the same time the one scheduled first (`seq` is unique in a run,
    /// so this is a strict total order and any heap pops the same sequence).
    #[inline]
    fn before(&self, other: &Pending) -> bool {
        match self.at.total_cmp(&other.at) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.seq < other.seq,
        }
    }
}

/// The virtual clock's queue: a binary min-heap of completions, so a hundred
/// steps running side by side cost a logarithm per completion, not a scan.
///
/// Written out rather than `std::collections::BinaryHeap`: that one writes
/// the new element into the heap and reads it back to sift it, and the read
/// of a just-written 32-byte record stalls on store forwarding, a few
/// percent of a rehearsal's time. Here the element sifts in registers and
/// is written once, where it lands.
#[derive(Debug, Default)]
struct Queue(Vec<Pending>);

impl Queue {
    fn clear(&mut self) {
        self.0.clear();
    }

    #[inline]
    fn push(&mut self, pending: Pending) {
        let heap = &mut self.0;
        let hole = heap.len();
        // The slot is overwritten by `rise`; pushing makes the room.
        heap.push(pending);
        rise(heap, hole, pending);
    }

    /// Removes and returns the earliest completion.
    #[inline]
    fn pop(&mut self) -> Option<Pending> {
        let heap = &mut self.0;
        let last = heap.pop()?;
        let Some(&top) = heap.first() else {
            return Some(last);
        };
        // The root's hole goes down the earlier child all the way, then
        // `last` rises from the bottom to where it belongs (it came from
        // the bottom, so it rarely rises far): one comparison a level on
        // the way down, where sinking `last` from the root takes two.
        let len = heap.len();
        let mut hole = 0;
        let mut child = 1;
        while child + 1 < len {
            if heap[child + 1].before(&heap[child]) {
                child += 1;
            }
            heap[hole] = heap[child];
            hole = child;
            child = 2 * hole + 1;
        }
        if child < len {
            heap[hole] = heap[child];
            hole = child;
        }
        rise(heap, hole, last);
        Some(top)
    }
}

/// Puts `pending` in the heap at `hole` or above it: parents later than it
/// move down into the hole, then it is written once, where it lands.
#[inline]
fn rise(heap: &mut [Pending], mut hole: usize, pending: Pending) {
    while hole > 0 {
        let parent = (hole - 1) / 2;
        if !pending.before(&heap[parent]) {
            break;
        }
        heap[hole] = heap[parent];
        hole = parent;
    }
    heap[hole] = pending;
}

/// One thread's simulator: buffers reused from run to run.
pub(crate) struct Worker<'m> {
    model: &'m Model,
    /// The model's template machine, this thread's own copy.
    template: StateMachine<RunMachine>,
    outbox: Outbox,
    queue: Queue,
    seq: u32,
    now: f64,
    ttl: Vec<f64>,
    /// Per record: what a `WaitTtl` waits for (the TTL before the last change).
    wait_ttl: Vec<f64>,
    /// Per step: the TTL its `DnsTtl` replaced, for its revert.
    ttl_before: Vec<f64>,
    /// Per step: whether the attempt last left in doubt had taken effect
    /// (what its check will find).
    took_effect: Vec<bool>,
    /// (step, from, to) of every piece of work, for the tail report.
    work: Vec<(u32, f64, f64)>,
    outage: Outage,
    times: Vec<u64>,
    end: Option<usize>,
    rolled_back: bool,
    /// This run's pace ([`Model::pace`]; 1 without one).
    pace: f64,
    /// Seconds the effect being performed has been under way (a real
    /// run's, when the simulation continues one; else 0).
    head_start: f64,
    pub(crate) tally: Tally,
}

impl<'m> Worker<'m> {
    pub(crate) fn new(model: &'m Model) -> Worker<'m> {
        Worker {
            model,
            template: model.thread_template(),
            outbox: Outbox::default(),
            queue: Queue::default(),
            seq: 0,
            now: 0.0,
            ttl: model.initial_ttl.clone(),
            wait_ttl: model.initial_wait_ttl.clone(),
            ttl_before: vec![0.0; model.step_count()],
            took_effect: vec![false; model.step_count()],
            work: Vec::new(),
            outage: Outage::default(),
            times: vec![0; model.step_count() + 1],
            end: None,
            rolled_back: false,
            pace: 1.0,
            head_start: 0.0,
            tally: Tally::new(model),
        }
    }

    /// Users lose the service now; with a downtime budget, the run checks
    /// when it is spent whether they still are.
    fn users_down(&mut self) {
        self.users_down_at(self.now, None, 0.0);
    }

    /// Users lose the service at `at` (now, or when a step waiting for its
    /// phase's anchor starts).
    /// `lead` seconds earlier for users, whose work in flight is caught
    /// (`in_flight`); the budget counts from `at`, as the driver counts it.
    fn users_down_at(&mut self, at: f64, kind: Option<usize>, lead: f64) {
        let was_down = self.outage.is_down();
        self.outage.down(at - lead, kind);
        if let (false, Some(budget)) = (was_down, self.model.downtime_budget) {
            // (Users down before a continued run began may have spent it.)
            self.schedule(
                (at - self.now + budget).max(0.0),
                u32::MAX,
                What::BudgetAbort,
            );
        }
    }

    /// Whether users have been down the whole downtime budget by now, with
    /// the run still before the point of no return: then it rolls back.
    fn budget_spent(&self, machine: &StateMachine<RunMachine>) -> bool {
        let (Some(budget), Some(since)) = (self.model.downtime_budget, self.outage.down_since())
        else {
            return false;
        };
        self.now - since >= budget - 1e-9 && !machine.past_no_return()
    }

    fn schedule(&mut self, after: f64, ix: u32, what: What) {
        self.seq += 1;
        // Work a real run started before the simulation took over has
        // been under way that long already.
        let after = (after - self.head_start).max(0.0);
        self.queue.push(Pending {
            at: self.now + after,
            seq: self.seq,
            ix,
            since: self.now - self.head_start,
            what,
        });
    }

    /// A draw of `sampler`, times `factor`; for work under way since
    /// `head_start` seconds, a draw longer than that (up to 32 tries: a
    /// step overdue against every draw is taken to end now).
    fn draw(&self, sampler: &DurationSampler, factor: f64, rng: &mut Rng) -> f64 {
        let mut length = sampler.sample(rng) * factor;
        if self.head_start > 0.0 {
            for _ in 0..32 {
                if length > self.head_start {
                    return length;
                }
                length = sampler.sample(rng) * factor;
            }
            return length.max(self.head_start);
        }
        length
    }

    /// Simulates run `run` of the estimate seeded with `seed` and tallies it.
    pub(crate) fn run(&mut self, run: u64, seed: u64) -> Result<(), SimError> {
        let model = self.model;
        let mut rng = Rng::for_run(seed, run);
        let mut machine = self.template.clone();
        self.queue.clear();
        self.seq = 0;
        self.now = 0.0;
        self.ttl.copy_from_slice(&model.initial_ttl);
        self.wait_ttl.copy_from_slice(&model.initial_wait_ttl);
        if let Some(before) = &model.initial_ttl_before {
            self.ttl_before.copy_from_slice(before);
        }
        self.work.clear();
        self.outage.reset();
        self.end = None;
        self.rolled_back = false;
        self.pace = model.pace.as_ref().map_or(1.0, |p| p.sample(&mut rng));
        if let Some(deadline) = model.window_deadline {
            self.schedule(deadline, u32::MAX, What::WindowAbort);
        }
        if let Some(down_for) = model.down_for {
            self.users_down_at(-down_for, None, 0.0);
        }
        if model.from_idle {
            self.feed(&mut machine, &model.start, &mut rng);
        } else {
            for (effect, &head_start) in model.initial_effects.iter().zip(&model.head_starts) {
                // A check (or the operator) under way finds what the step
                // left: drawn as when the step was left in doubt.
                if let Effect::Check { step } | Effect::AskOperator { step } = effect {
                    self.took_effect[*step] = rng.uniform() < model.steps[*step].checked_done;
                }
                self.head_start = head_start;
                self.perform(effect, &mut rng);
            }
            self.head_start = 0.0;
        }
        let mut events = 0u64;
        while self.end.is_none() {
            let Some(next) = self.queue.pop() else { break };
            events += 1;
            if events > model.event_limit {
                return Err(SimError::RunDidNotEnd {
                    run,
                    seed,
                    problem: format!(
                        "more than {} events, in state {:?} (a scenario that leaves every attempt in doubt and never done makes runs endless)",
                        model.event_limit,
                        machine.state()
                    ),
                });
            }
            self.now = next.at;
            let ix = next.ix as usize;
            if next.what == What::BudgetAbort && !self.budget_spent(&machine) {
                continue;
            }
            if next.ix != u32::MAX {
                self.work.push((next.ix, next.since, next.at));
            }
            let event = next.what.event(ix, model);
            machine.handle_with_context(&event, &mut self.outbox);
            self.outbox.transitions.clear();
            // What the event did comes first (users back when an `Ends`
            // step is done), then what it starts: a `Begins` step started
            // by that same event begins a new outage, not none.
            match next.what {
                What::Succeeded | What::Confirmed | What::Checked(true) | What::Answered(true)
                    if machine.statuses()[ix] == StepStatus::Done =>
                {
                    self.step_done(ix);
                }
                What::Reverted if machine.statuses()[ix] == StepStatus::Reverted => {
                    self.step_reverted(ix)
                }
                _ => {}
            }
            self.perform_effects(&mut rng);
        }
        let Some(end) = self.end else {
            return Err(SimError::RunDidNotEnd {
                run,
                seed,
                problem: format!(
                    "nothing left to do, but the machine is in {:?} and announced no end",
                    machine.state()
                ),
            });
        };
        self.tally_run(end);
        Ok(())
    }

    /// Feeds one event and performs the effects it produced, at `now`.
    fn feed(&mut self, machine: &mut StateMachine<RunMachine>, event: &Input, rng: &mut Rng) {
        machine.handle_with_context(event, &mut self.outbox);
        self.outbox.transitions.clear();
        self.perform_effects(rng);
    }

    /// Performs the effects the machine asked for, in order.
    fn perform_effects(&mut self, rng: &mut Rng) {
        let mut effects = std::mem::take(&mut self.outbox.effects);
        for effect in &effects {
            self.perform(effect, rng);
        }
        effects.clear();
        self.outbox.effects = effects;
    }

    fn perform(&mut self, effect: &Command, rng: &mut Rng) {
        let model = self.model;
        match effect {
            Effect::Preflight { .. } => self.schedule(0.0, u32::MAX, What::PreflightPassed),
            // Step indices fit in u32: a plan file holds far fewer steps.
            Effect::Forward { step, attempt } => self.forward(*step as u32, *attempt, rng),
            Effect::Confirm { step } => self.confirm(*step as u32, rng),
            Effect::Check { step } => {
                let done = self.took_effect[*step];
                let took = self.draw(&model.check, 1.0, rng);
                self.schedule(took, *step as u32, What::Checked(done));
            }
            Effect::AskOperator { step } => {
                let done = self.took_effect[*step];
                let took = self.draw(&model.answer, 1.0, rng);
                self.schedule(took, *step as u32, What::Answered(done));
            }
            Effect::Revert { step } => {
                self.rolled_back = true;
                self.revert(*step as u32, rng);
            }
            // The operator types `go` at once, unless journals measured how
            // long it took: rehearsal counts the steps' time.
            Effect::CrossNoReturn { .. } => {
                let took = self.draw(&model.crossing, 1.0, rng);
                self.schedule(took, u32::MAX, What::Crossed)
            }
            // Rehearsals run with the default policy, which never asks.
            Effect::AskOnFailure { step, .. } => {
                self.schedule(0.0, *step as u32, What::ChoseRollback)
            }
            Effect::Finished { end } => self.end = Some(self.end_slot(end)),
        }
    }

    fn forward(&mut self, ix: u32, attempt: u32, rng: &mut Rng) {
        let model = self.model;
        let m = &model.steps[ix as usize];
        // A phase starts at its anchor: its steps wait for it.
        let wait = (m.not_before - self.now).max(0.0);
        if m.downtime == Some(Downtime::Begins) {
            self.users_down_at(self.now + wait, Some(m.outage_kind), m.in_flight);
        }
        // A `WaitTtl` waits until the TTL before the change has run out:
        // `wait_ttl` is what is left of it now (for a run continued from a
        // journal, less the time since the change), so the head start of
        // one under way is added back for `schedule` to take off again.
        let length = match m.dns {
            DnsRole::WaitTtl { record } => {
                m.forward.sample(rng) * m.scale * self.pace_of(m)
                    + self.wait_ttl[record]
                    + self.head_start
            }
            _ => self.draw(&m.forward, m.scale * self.pace_of(m), rng),
        };
        // A retry waits its interval first (outside the deadline's reach,
        // as the real driver pauses before it starts the attempt).
        let pause = wait + if attempt > 1 { m.retry_interval } else { 0.0 };
        let (mut at, mut what) = match m.force {
            Some(Force::Fail) => (length * rng.uniform(), What::Failed),
            Some(Force::InDoubt) if attempt == 1 => (length * rng.uniform(), What::InDoubt),
            Some(Force::DeadlineExceeded) if m.deadline.is_finite() => (m.deadline, What::Deadline),
            _ => {
                let u = rng.uniform();
                if u < m.fail {
                    let at = match &m.failed {
                        Some(failed) => failed.sample(rng) * m.scale,
                        None => length * (u / m.fail),
                    };
                    (at, What::Failed)
                } else if u < m.fail + m.in_doubt {
                    (length * ((u - m.fail) / m.in_doubt), What::InDoubt)
                } else {
                    (length, What::Succeeded)
                }
            }
        };
        if what == What::InDoubt {
            // Whether the action took effect before the connection was lost:
            // if so, it was lost at the end of the action, else partway.
            let done = rng.uniform() < m.checked_done;
            self.took_effect[ix as usize] = done;
            if done {
                at = length;
            }
        }
        if at > m.deadline {
            (at, what) = (m.deadline, What::Deadline);
        }
        if matches!(what, What::Failed | What::Deadline) && m.checks_failures {
            // Whether the failed attempt left part of its effect, which its
            // check finds and the rollback then undoes (as the machine asks).
            self.took_effect[ix as usize] = rng.uniform() < m.checked_done;
        }
        if what == What::Succeeded {
            at += m.settle;
        }
        self.schedule(pause + at, ix, what);
    }

    fn confirm(&mut self, ix: u32, rng: &mut Rng) {
        let model = self.model;
        let m = &model.steps[ix as usize];
        let wait = (m.not_before - self.now).max(0.0);
        if m.downtime == Some(Downtime::Begins) {
            self.users_down_at(self.now + wait, Some(m.outage_kind), m.in_flight);
        }
        let length = self.draw(&m.forward, m.scale * self.pace_of(m), rng);
        let (at, what) = if m.force == Some(Force::Fail) {
            (length * rng.uniform(), What::Declined)
        } else {
            let u = rng.uniform();
            if u < m.fail {
                (length * (u / m.fail), What::Declined)
            } else {
                (length + m.settle, What::Confirmed)
            }
        };
        self.schedule(wait + at, ix, what);
    }

    fn revert(&mut self, ix: u32, rng: &mut Rng) {
        let model = self.model;
        let m = &model.steps[ix as usize];
        // Undoing the step that gave users the service back takes it away again.
        if m.downtime == Some(Downtime::Ends) {
            self.users_down();
        }
        let length = match &m.revert {
            Some(revert) => self.draw(revert, m.scale, rng),
            None => self.draw(&m.forward, m.scale * self.pace_of(m), rng),
        };
        let (at, what) = if m.force == Some(Force::RevertFails) {
            (length * rng.uniform(), What::RevertFailed)
        } else {
            let u = rng.uniform();
            if u < m.revert_fail {
                (length * (u / m.revert_fail), What::RevertFailed)
            } else {
                (length, What::Reverted)
            }
        };
        self.schedule(at, ix, what);
    }

    /// What multiplies step `m`'s drawn duration in this run.
    #[inline]
    fn pace_of(&self, m: &StepModel) -> f64 {
        if m.paced {
            self.pace
        } else {
            1.0
        }
    }

    fn step_done(&mut self, ix: usize) {
        let model = self.model;
        let m = &model.steps[ix];
        match m.dns {
            DnsRole::Ttl { record, ttl } => {
                self.ttl_before[ix] = self.ttl[record];
                self.wait_ttl[record] = self.ttl[record];
                self.ttl[record] = ttl;
            }
            DnsRole::Switch { record } => self.outage.propagate(self.now + self.ttl[record]),
            DnsRole::None | DnsRole::WaitTtl { .. } => {}
        }
        if m.downtime == Some(Downtime::Ends) {
            self.outage.up(self.now);
        }
        if let Some(after) = m.abort_after {
            self.schedule(after, u32::MAX, What::Abort);
        }
    }

    fn step_reverted(&mut self, ix: usize) {
        let model = self.model;
        let m = &model.steps[ix];
        match m.dns {
            DnsRole::Ttl { record, .. } => self.ttl[record] = self.ttl_before[ix],
            // Resolvers may hold the new address for the TTL it was served with.
            DnsRole::Switch { record } => self.outage.propagate(self.now + self.ttl[record]),
            DnsRole::None | DnsRole::WaitTtl { .. } => {}
        }
        if m.downtime == Some(Downtime::Begins) {
            self.outage.up(self.now);
        }
    }

    fn end_slot(&self, end: &RunEnd<usize>) -> usize {
        let schedule = &self.model.schedule;
        let points = schedule.points.len();
        match end {
            RunEnd::Completed => 0,
            RunEnd::RolledBack { point, .. } => {
                1 + schedule.points.iter().position(|p| p == point).unwrap_or(0)
            }
            RunEnd::Halted { step, cause, .. } => {
                match *step {
                    Some(ix) if ix < self.model.step_count() => {
                        // The slot's cause, as `estimate` reads it back.
                        let cause = match cause {
                            HaltCause::RevertFailed => 0,
                            HaltCause::PastPointOfNoReturn => 1,
                            _ => 2,
                        };
                        1 + points + 3 * ix + cause
                    }
                    _ => 1 + points + 3 * self.model.step_count(),
                }
            }
        }
    }

    fn tally_run(&mut self, end: usize) {
        let open = self.outage.finish(self.now);
        let downtime = self.outage.total();
        let downtime_ms = millis(downtime);
        for (kind, histogram) in self.tally.by_kind.iter_mut().enumerate() {
            histogram.record(millis(self.outage.total_of(kind)));
        }
        let tally = &mut self.tally;
        tally.runs += 1;
        tally.downtime.record(downtime_ms);
        tally
            .fresh
            .record(millis(downtime - self.outage.propagation));
        tally.duration.record(millis(self.now));
        tally.ends[end] += 1;
        tally.rollbacks +=
            u64::from(self.rolled_back || (1..=self.model.schedule.points.len()).contains(&end));
        tally.open_outages += u64::from(open);
        if downtime_ms > 0 {
            self.times.fill(0);
            for &(ix, from, to) in &self.work {
                self.times[ix as usize] += millis(self.outage.overlap(from, to));
            }
            let last = self.times.len() - 1;
            self.times[last] = millis(self.outage.propagation);
        } else {
            self.times.fill(0);
        }
        tally.drivers.record(downtime_ms, &self.times);
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::{Pending, Queue, What};

    proptest! {
        /// The hand-written heap pops completions in the order a standard
        /// binary heap keyed by (time, sequence) does, ties in time and
        /// pops interleaved with pushes included: rehearsals' results
        /// depend on that order.
        #[test]
        fn queue_pops_in_time_then_sequence_order(
            ops in proptest::collection::vec(proptest::option::weighted(0.7, 0u8..6), 0..200)
        ) {
            let mut queue = Queue::default();
            let mut reference = BinaryHeap::new();
            for (seq, op) in (1u32..).zip(ops) {
                match op {
                    // Few distinct times: many ties, which `seq` orders.
                    Some(t) => {
                        let at = f64::from(t) * 1.5;
                        queue.push(Pending { at, seq, ix: seq, since: 0.0, what: What::Succeeded });
                        reference.push(Reverse((at.to_bits(), seq)));
                    }
                    None => {
                        let popped = queue.pop().map(|p| (p.at.to_bits(), p.seq));
                        prop_assert_eq!(popped, reference.pop().map(|Reverse(k)| k));
                    }
                }
            }
            while let Some(Reverse(expected)) = reference.pop() {
                let popped = queue.pop().map(|p| (p.at.to_bits(), p.seq));
                prop_assert_eq!(popped, Some(expected));
            }
            prop_assert!(queue.pop().is_none());
        }
    }
}

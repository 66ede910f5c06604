//! The Monte Carlo estimate: many seeded runs of the simulated executor, in
//! parallel, summed up in constant memory.
//!
//! Run `i` draws its random numbers from a generator seeded with
//! `(seed, i)` alone, runs are tallied in integer histograms and sums, and
//! integer sums do not depend on the order they are added in: so the same
//! seed gives the same estimate whatever the number of threads.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use plan_core::Plan;

use crate::executor::Worker;
use crate::histogram::Histogram;
use crate::measured::Measured;
use crate::model::{EndSlot, Model};
use crate::position::Position;
use crate::scenario::Scenario;
use crate::tally::Tally;
use crate::SimError;

/// How many runs an estimate makes unless told otherwise.
pub const DEFAULT_RUNS: u64 = 100_000;
/// The seed an estimate uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 1;
/// Runs handed to a thread at a time.
const CHUNK: u64 = 1024;

/// What to simulate and how often.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many runs (at least 1).
    pub runs: u64,
    /// The seed: the same seed gives the same estimate.
    pub seed: u64,
    /// Worker threads; 0 for one per core. Does not change the result.
    pub threads: usize,
    /// Scenarios, applied in order.
    pub scenarios: Vec<Scenario>,
    /// Durations measured in journals; steps without fall back to the plan.
    pub measured: Option<Measured>,
    /// Simulate only this phase (as `cutover run --phase` runs it).
    pub phase: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: DEFAULT_RUNS,
            seed: DEFAULT_SEED,
            threads: 0,
            scenarios: Vec::new(),
            measured: None,
            phase: None,
        }
    }
}

/// The simulated distribution of a plan's downtime and length.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// How many runs it rests on.
    pub runs: u64,
    /// The seed it was made with.
    pub seed: u64,
    /// The scenarios applied, by name.
    pub scenarios: Vec<String>,
    /// User-visible downtime per run (DNS propagation and rollbacks
    /// included): what the worst-placed user sees, whose resolver kept the
    /// old address for the whole TTL in force at each switch. This is what
    /// the window and the announcement promise.
    pub downtime: Quantiles,
    /// The downtime of a user whose client looks the name up afresh: the
    /// same runs without the time spent only waiting for DNS caches. Most
    /// users are back sooner than the worst-placed one; this is how soon.
    pub downtime_fresh: Quantiles,
    /// The downtime by what users get instead of the service, when the plan
    /// names it (`outage: "read-only"` on a `downtime: Begins` step): one
    /// entry per kind, "unavailable" first (outages that name none); empty
    /// when no step names a kind.
    pub outages: Vec<OutageDowntime>,
    /// Length of a run, from its start to its end (rollback included).
    /// Phases start at their anchors, so the gaps between them count.
    pub duration: Quantiles,
    /// The share of runs that rolled back (whether or not the rollback
    /// completed: a revert that fails halts the run).
    pub rollback_probability: f64,
    /// The share of runs that stopped while users were down: halted, or
    /// rolled back to a point inside the downtime. Their downtime is counted
    /// until the stop; the real outage lasts until an operator acts.
    pub open_outage_probability: f64,
    /// How runs ended, most frequent first.
    pub end_states: Vec<EndShare>,
    /// The steps that take up the downtime of the worst runs, largest first.
    pub tail_drivers: Vec<TailDriver>,
    /// The runs the tail report covers: downtime at or above this (P95, to
    /// within the tail report's 3% bins).
    pub tail_from: Duration,
    /// How many runs the tail report covers.
    pub tail_runs: u64,
    /// Every run's downtime, for other quantiles and for plots.
    pub downtime_histogram: Histogram,
    /// Every run's length.
    pub duration_histogram: Histogram,
    /// Things the caller should know: scenario overrides that match nothing,
    /// forced events that cannot happen.
    pub warnings: Vec<String>,
}

/// What users get during an outage that names none.
pub const UNAVAILABLE: &str = "unavailable";

/// The downtime of one kind of outage.
#[derive(Clone, Debug, PartialEq)]
pub struct OutageDowntime {
    /// What users get instead of the service (`read-only`, `unavailable`).
    pub kind: String,
    /// How long per run.
    pub downtime: Quantiles,
}

/// The usual quantiles of a distribution of durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantiles {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The largest value seen.
    pub max: Duration,
    /// The mean.
    pub mean: Duration,
}

impl Quantiles {
    fn of(histogram: &Histogram) -> Quantiles {
        Quantiles {
            p50: histogram.quantile(0.50),
            p90: histogram.quantile(0.90),
            p95: histogram.quantile(0.95),
            p99: histogram.quantile(0.99),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EndState {
    /// Every step succeeded.
    Completed,
    /// A failure was rolled back to this rollback point.
    RolledBack {
        /// The rollback point (`start` when there is none before the failure).
        point: String,
    },
    /// The run stopped for an operator.
    Halted {
        /// The step it stopped at, if any.
        step: Option<String>,
        /// Why.
        cause: HaltCause,
    },
}

/// Why a run halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HaltCause {
    /// A revert failed during a rollback.
    RevertFailed,
    /// A step failed past the point of no return, where nothing is reverted.
    PastPointOfNoReturn,
    /// Anything else (e.g. the window deadline past the point of no return).
    Other,
}

impl fmt::Display for EndState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndState::Completed => write!(f, "completed"),
            EndState::RolledBack { point } => write!(f, "rolled back to `{point}`"),
            EndState::Halted { step, cause } => {
                write!(f, "halted")?;
                if let Some(step) = step {
                    write!(f, " at `{step}`")?;
                }
                match cause {
                    HaltCause::RevertFailed => write!(f, ": its revert failed"),
                    HaltCause::PastPointOfNoReturn => {
                        write!(f, ": failed past the point of no return")
                    }
                    HaltCause::Other => Ok(()),
                }
            }
        }
    }
}

/// One end state and how often runs ended in it.
#[derive(Clone, Debug, PartialEq)]
pub struct EndShare {
    /// The end state.
    pub end: EndState,
    /// How many runs ended so.
    pub runs: u64,
    /// Their share of all runs.
    pub share: f64,
}

/// A step's part in the downtime of the worst runs.
#[derive(Clone, Debug, PartialEq)]
pub struct TailDriver {
    /// The step id, or `None` for waiting on DNS caches after a switch.
    pub step: Option<String>,
    /// Its share of the tail runs' downtime. Steps running side by side
    /// overlap, so shares may add up to more than 1.
    pub share: f64,
    /// Its mean time inside the outage in the tail runs.
    pub tail_mean: Duration,
    /// Its mean time inside the outage over all runs.
    pub mean: Duration,
}

impl TailDriver {
    /// The step id, or "DNS propagation".
    pub fn label(&self) -> &str {
        self.step.as_deref().unwrap_or("DNS propagation")
    }
}

impl Estimate {
    /// The downtime that a share `q` of runs stay within (e.g. 0.95).
    pub fn downtime_quantile(&self, q: f64) -> Duration {
        self.downtime_histogram.quantile(q)
    }

    /// The run length that a share `q` of runs stay within.
    pub fn duration_quantile(&self, q: f64) -> Duration {
        self.duration_histogram.quantile(q)
    }

    /// The share of runs whose downtime was at most `d`.
    pub fn downtime_confidence(&self, d: Duration) -> f64 {
        self.downtime_histogram.share_at_most(d)
    }
}

/// Simulates `options.runs` runs of `plan` and sums them up.
pub fn estimate(plan: &Plan, options: &Options) -> Result<Estimate, SimError> {
    if options.runs == 0 {
        return Err(SimError::Options(
            "an estimate needs at least one run".into(),
        ));
    }
    let model = Model::new(
        plan,
        options.phase.as_deref(),
        &options.scenarios,
        options.measured.as_ref(),
    )?;
    let tally = simulate(&model, options.runs, options.seed, options.threads)?;
    Ok(summarise(&model, &tally, options))
}

/// The rest of a real run, continuing from `position` (where its journal
/// leaves it): each simulated run goes on from the run's machine, with the
/// work under way drawn longer than it has already taken. The downtime
/// counts the time users have already been down; the duration counts from
/// now. An error when the run has ended, or when nothing is under way (a
/// run stopped between two records: only `resume` goes on from there).
pub fn estimate_from(
    plan: &Plan,
    position: &Position,
    options: &Options,
) -> Result<Estimate, SimError> {
    if options.runs == 0 {
        return Err(SimError::Options(
            "an estimate needs at least one run".into(),
        ));
    }
    if position.ended() {
        return Err(SimError::Options(
            "the run has ended: nothing is left to estimate".into(),
        ));
    }
    if position.stalled() {
        return Err(SimError::Options(
            "nothing is under way: the run stopped between two steps (killed, or its machine died?); `cutover resume` goes on from there".into(),
        ));
    }
    let model = Model::from_position(
        plan,
        position,
        &options.scenarios,
        options.measured.as_ref(),
    )?;
    let tally = simulate(&model, options.runs, options.seed, options.threads)?;
    Ok(summarise(&model, &tally, options))
}

/// Runs `runs` simulations on `threads` threads and merges their tallies.
fn simulate(model: &Model, runs: u64, seed: u64, threads: usize) -> Result<Tally, SimError> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let chunks = runs.div_ceil(CHUNK);
    let threads = threads
        .min(usize::try_from(chunks).unwrap_or(usize::MAX))
        .max(1);
    let next_chunk = AtomicU64::new(0);
    // The lowest failing run seen: chunks after it are skipped, chunks
    // before it still run, so the error reported is always the same one.
    let first_failure = AtomicU64::new(u64::MAX);
    let work = || -> Result<Tally, (u64, SimError)> {
        let mut worker = Worker::new(model);
        loop {
            let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
            let start = chunk.saturating_mul(CHUNK);
            if start >= runs || start > first_failure.load(Ordering::Relaxed) {
                return Ok(worker.tally);
            }
            for run in start..(start + CHUNK).min(runs) {
                if let Err(e) = worker.run(run, seed) {
                    first_failure.fetch_min(run, Ordering::Relaxed);
                    return Err((run, e));
                }
            }
        }
    };
    let results: Vec<Result<Tally, (u64, SimError)>> = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut total: Option<Tally> = None;
    let mut failure: Option<(u64, SimError)> = None;
    for result in results {
        match result {
            Ok(tally) => match &mut total {
                Some(t) => t.merge(&tally),
                None => total = Some(tally),
            },
            Err((run, e)) => {
                if failure.as_ref().is_none_or(|(r, _)| run < *r) {
                    failure = Some((run, e));
                }
            }
        }
    }
    match (failure, total) {
        (Some((_, e)), _) => Err(e),
        (None, Some(t)) => Ok(t),
        (None, None) => Err(SimError::Options("no thread ran".into())),
    }
}

fn summarise(model: &Model, tally: &Tally, options: &Options) -> Estimate {
    let runs = tally.runs;
    let share = |n: u64| n as f64 / runs as f64;
    let mut end_states: Vec<EndShare> = tally
        .ends
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(slot, &n)| {
            let end = match model.end_of_slot(slot) {
                EndSlot::Completed => EndState::Completed,
                EndSlot::RolledBack(point) => EndState::RolledBack { point },
                EndSlot::Halted(step, cause) => EndState::Halted {
                    step,
                    cause: [
                        HaltCause::RevertFailed,
                        HaltCause::PastPointOfNoReturn,
                        HaltCause::Other,
                    ][cause.min(2)],
                },
            };
            EndShare {
                end,
                runs: n,
                share: share(n),
            }
        })
        .collect();
    end_states.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.end.cmp(&b.end)));

    let downtime = Quantiles::of(&tally.downtime);
    let downtime_fresh = Quantiles::of(&tally.fresh);
    let tail_from = downtime.p95;
    let mut tail_drivers = Vec::new();
    let mut tail_runs = 0;
    if !tally.downtime.max().is_zero() {
        let from_ms = u64::try_from(tail_from.as_millis()).unwrap_or(u64::MAX);
        let (n, downtime_ms, sums) = tally.drivers.from(from_ms);
        let (_, _, all) = tally.drivers.from(0);
        tail_runs = n;
        let steps = &model.schedule.steps;
        for (column, (&tail, &overall)) in sums.iter().zip(&all).enumerate() {
            if tail == 0 || n == 0 {
                continue;
            }
            tail_drivers.push(TailDriver {
                step: steps.get(column).map(|s| s.id.clone()),
                share: if downtime_ms == 0 {
                    0.0
                } else {
                    tail as f64 / downtime_ms as f64
                },
                tail_mean: Duration::from_millis(tail / n),
                mean: Duration::from_millis(overall / runs),
            });
        }
        tail_drivers.sort_by(|a, b| {
            b.tail_mean
                .cmp(&a.tail_mean)
                .then_with(|| a.step.cmp(&b.step))
        });
    }

    Estimate {
        runs,
        seed: options.seed,
        scenarios: options.scenarios.iter().map(|s| s.name.clone()).collect(),
        downtime,
        outages: if model.outage_kinds.len() > 1 {
            model
                .outage_kinds
                .iter()
                .zip(&tally.by_kind)
                .map(|(kind, histogram)| OutageDowntime {
                    kind: kind.clone(),
                    downtime: Quantiles::of(histogram),
                })
                .collect()
        } else {
            Vec::new()
        },
        downtime_fresh,
        duration: Quantiles::of(&tally.duration),
        rollback_probability: share(tally.rollbacks),
        open_outage_probability: share(tally.open_outages),
        end_states,
        tail_drivers,
        tail_from,
        tail_runs,
        downtime_histogram: tally.downtime.clone(),
        duration_histogram: tally.duration.clone(),
        warnings: model.warnings.clone(),
    }
}

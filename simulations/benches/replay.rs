//! How fast the simulator replays runs, next to loops that do less.
//!
//! `cargo bench -p simulations --bench replay [-- PLAN RUNS THREADS]`
//! (defaults: examples/mailman.ron, 1,000,000 runs, 2 threads) prints one
//! line per case, each the best of seven rounds (a round runs every case
//! once), then the simulator's time over the loop's, best against
//! best and as the median of the rounds' ratios:
//!
//! - `arithmetic`: per replay, draw every pending step's duration from its
//!   model (the same samplers) and one failure draw per step, sum them, and
//!   count the sum in the same histogram: the work a replay cannot avoid,
//!   without the run machine;
//! - `arithmetic, 20 PERT steps`: the reference loop of the issue: 20 steps
//!   of `Pert(10m, 20m, 70m)` with 1% failures;
//! - `machine alone`: per replay, clone the run machine and answer each
//!   effect with success (pre-built events, no clock, no draws): what the
//!   machine itself costs on a run without failures;
//! - `simulator`: `simulations::estimate`, the real thing.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plan_core::machine::{Command, Effect, Event, Input, Outbox, RunMachine, Schedule, Selection};
use plan_core::{load_path, DurationModel, Plan, Settings};
use simulations::random::Rng;
use simulations::sampling::DurationSampler;
use simulations::{estimate, Histogram, Options};
use statig::blocking::IntoStateMachineExt as _;

const REPEATS: usize = 7;

fn main() {
    // `cargo test --all-targets` runs benchmarks too, unoptimised: there they
    // only prove they build. The figures come from `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark skipped: run it with `cargo bench`");
        return;
    }
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let plan_path = args
        .first()
        .map_or_else(|| root.join("examples/mailman.ron"), PathBuf::from);
    let runs: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let plan = load_path(&plan_path, &Settings::default())
        .ok()
        .and_then(|l| l.plan)
        .unwrap_or_else(|| {
            eprintln!("cannot load a valid plan from {}", plan_path.display());
            std::process::exit(1);
        });
    let schedule = Arc::new(Schedule::new(&plan, &Selection::default()));
    println!(
        "{}: {} steps to run; {runs} replays on {threads} threads, best of {REPEATS}",
        plan_path.display(),
        schedule.steps.len()
    );

    let steps = pending_models(&plan, &schedule);
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let pert = DurationModel::Pert {
        min: minutes(10),
        likely: minutes(20),
        max: minutes(70),
    };
    let pert20: Vec<(DurationSampler, f64, f64)> = (0..20)
        .map(|_| (DurationSampler::new(&pert), 0.01, 0.0))
        .collect();
    let options = Options {
        runs,
        threads,
        ..Options::default()
    };
    // Round after round, every case once: a busy spell on a shared machine
    // then slows the cases of that round alike instead of one case's
    // every try. Each case's best is printed; and since the loop
    // runs just before the simulator, each round also gives a ratio of two
    // neighbouring measurements, whose median a busy spell hardly moves.
    let mut arithmetic = Duration::MAX;
    let mut reference = Duration::MAX;
    let mut machine = Duration::MAX;
    let mut simulator = Duration::MAX;
    let mut ratios = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        arithmetic = arithmetic.min(parallel(runs, threads, |range| {
            arithmetic_loop(&steps, range)
        }));
        machine = machine.min(parallel(runs, threads, |range| {
            machine_loop(&schedule, range)
        }));
        let loop_took = parallel(runs, threads, |range| arithmetic_loop(&pert20, range));
        reference = reference.min(loop_took);
        let start = Instant::now();
        black_box(estimate(&plan, &options).expect("the plan simulates"));
        let took = start.elapsed();
        simulator = simulator.min(took);
        ratios.push(took.as_secs_f64() / loop_took.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios[ratios.len() / 2];

    let rate = |d: Duration| runs as f64 / d.as_secs_f64();
    let line = |name: &str, d: Duration| {
        println!(
            "{name:<44} {:>8.3} s  {:>12.0} replays/s",
            d.as_secs_f64(),
            rate(d)
        );
    };
    line("arithmetic (this plan's models, no machine)", arithmetic);
    line("arithmetic, 20 PERT steps (issue's loop)", reference);
    line("machine alone (scripted successes)", machine);
    line("simulator (simulations::estimate)", simulator);
    println!(
        "simulator / arithmetic: {:.1}x; / 20-PERT loop: {:.2}x (best against best), {:.2}x (median of the rounds, {:.2}x to {:.2}x); machine alone is {:.0}% of the simulator's time",
        simulator.as_secs_f64() / arithmetic.as_secs_f64(),
        simulator.as_secs_f64() / reference.as_secs_f64(),
        median_ratio,
        ratios[0],
        ratios[ratios.len() - 1],
        100.0 * machine.as_secs_f64() / simulator.as_secs_f64()
    );
}

/// Runs `work` over `runs` split evenly across `threads`; the wall time.
fn parallel(
    runs: u64,
    threads: usize,
    work: impl Fn(std::ops::Range<u64>) -> u64 + Sync,
) -> Duration {
    let start = Instant::now();
    let per = runs.div_ceil(threads as u64);
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let work = &work;
                scope.spawn(move || work(t * per..((t + 1) * per).min(runs)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .sum()
    });
    black_box(total);
    start.elapsed()
}

/// Each pending step's sampler, failure rate and settle, in schedule order.
fn pending_models(plan: &Plan, schedule: &Schedule) -> Vec<(DurationSampler, f64, f64)> {
    schedule
        .steps
        .iter()
        .filter_map(|s| plan.step(&s.id))
        .map(|step| {
            let rate = step.failure_rate.unwrap_or(plan.failure_rate);
            (
                DurationSampler::new(&step.duration),
                rate,
                step.settle.map_or(0.0, |d| d.as_secs_f64()),
            )
        })
        .collect()
}

/// Sums each replay's drawn durations (a failed attempt counts part of its
/// length) and counts the sum in a histogram.
fn arithmetic_loop(steps: &[(DurationSampler, f64, f64)], runs: std::ops::Range<u64>) -> u64 {
    let mut histogram = Histogram::default();
    for run in runs {
        let mut rng = Rng::for_run(1, run);
        let mut total = 0.0;
        for (sampler, rate, settle) in steps {
            let d = sampler.sample(&mut rng);
            let u = rng.uniform();
            total += if u < *rate {
                d * (u / rate)
            } else {
                d + settle
            };
        }
        histogram.record((total * 1000.0) as u64);
    }
    histogram.count()
}

/// Drives the run machine through each replay answering every effect with
/// success, in the order the effects come: no clock, no random draws. Like
/// the simulator, each replay clones a machine that has had `Start` and
/// `PreflightPassed`.
fn machine_loop(schedule: &Arc<Schedule>, runs: std::ops::Range<u64>) -> u64 {
    let n = schedule.steps.len();
    let succeeded: Vec<Input> = (0..n).map(|step| Event::StepSucceeded { step }).collect();
    let confirmed: Vec<Input> = (0..n)
        .map(|step| Event::OperatorConfirmed { step })
        .collect();
    // A schedule of this thread's own, as the simulator's workers have.
    let mut template = RunMachine::new(Arc::new(Schedule::clone(schedule))).state_machine();
    let mut outbox = Outbox::default();
    template.handle_with_context(&Event::Start, &mut outbox);
    outbox.effects.clear();
    template.handle_with_context(&Event::PreflightPassed, &mut outbox);
    let first: Vec<Command> = std::mem::take(&mut outbox.effects);
    // Answers to give, as (step index, manual).
    let mut queue: std::collections::VecDeque<(usize, bool)> = std::collections::VecDeque::new();
    let mut finished = 0;
    let answer = |effect: &Command,
                  queue: &mut std::collections::VecDeque<(usize, bool)>,
                  finished: &mut u64| match effect {
        Effect::Forward { step, .. } => queue.push_back((*step, false)),
        Effect::Confirm { step } => queue.push_back((*step, true)),
        Effect::Finished { .. } => *finished += 1,
        _ => {}
    };
    for _ in runs {
        let mut machine = template.clone();
        queue.clear();
        for effect in &first {
            answer(effect, &mut queue, &mut finished);
        }
        while let Some((ix, manual)) = queue.pop_front() {
            let event = if manual {
                &confirmed[ix]
            } else {
                &succeeded[ix]
            };
            machine.handle_with_context(event, &mut outbox);
            outbox.transitions.clear();
            for effect in outbox.effects.drain(..) {
                answer(&effect, &mut queue, &mut finished);
            }
        }
    }
    finished
}

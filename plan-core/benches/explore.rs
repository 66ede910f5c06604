//! How long fault exploration takes on a plan of 1,000 steps.
//!
//! Three shapes of schedule, each explored with single and double faults
//! (`explore(schedule, 2)`: revert faults by situation, `covered` counts
//! those an explored run covers; docs/plan-format.md says exactly what is
//! run; `shared` counts the runs that ended by a rollback an earlier run
//! walked), and with single faults only for comparison; each timed as the best
//! of three runs. No criterion: `cargo
//! bench -p plan-core --bench explore` prints one line per case.
//!
//! - `sequential, point every 20`: each step after the previous one, a
//!   rollback point every 20 steps (the usual shape of a migration plan);
//! - `sequential, one segment`: the same 1,000 steps with no rollback point,
//!   so a late failure reverts everything before it;
//! - `parallel branches, point every 20`: each 20-step segment forks after
//!   its first step into four branches of four steps, which join again.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plan_core::machine::{explore, Exploration, Schedule, ScheduledStep, StepIx, START_POINT};

const STEPS: usize = 1000;
const REPEATS: usize = 3;

fn step(i: usize, deps: Vec<StepIx>, segment: usize, point: &(String, usize)) -> ScheduledStep {
    ScheduledStep {
        retries: if i % 7 == 0 { 1 } else { 0 },
        // Some steps (copies, checks) have nothing to undo.
        undoable: i % 5 != 0,
        hosts: vec![format!("host-{}", i % 3)],
        ..ScheduledStep::automatic(
            &format!("step-{i:04}"),
            deps,
            segment,
            (&point.0, point.1),
            false,
        )
    }
}

/// Each step after the previous; a rollback point every `every` steps (none if 0).
fn sequential(every: usize) -> Schedule {
    let mut steps = Vec::with_capacity(STEPS);
    let mut points = vec![START_POINT.to_owned()];
    let mut point = (START_POINT.to_owned(), 0);
    let mut segment = 0;
    for i in 0..STEPS {
        if every > 0 && i > 0 && i % every == 0 {
            segment += 1;
            point = (format!("point-{segment}"), segment);
            points.push(point.0.clone());
        }
        let deps = if i == 0 { vec![] } else { vec![i - 1] };
        steps.push(step(i, deps, segment, &point));
    }
    Schedule::from_steps(steps, points)
}

/// Segments of 20: a head, four branches of four steps after it, a join
/// after all four branches, and two more steps in sequence.
fn parallel_branches() -> Schedule {
    let mut steps = Vec::with_capacity(STEPS);
    let mut points = vec![START_POINT.to_owned()];
    let mut point = (START_POINT.to_owned(), 0);
    for segment in 0..STEPS / 20 {
        if segment > 0 {
            point = (format!("point-{segment}"), segment);
            points.push(point.0.clone());
        }
        let head = steps.len();
        let previous = head.checked_sub(1).map(|p| vec![p]).unwrap_or_default();
        steps.push(step(head, previous, segment, &point));
        let mut tails = Vec::new();
        for _branch in 0..4 {
            let mut last = head;
            for _ in 0..4 {
                let ix = steps.len();
                steps.push(step(ix, vec![last], segment, &point));
                last = ix;
            }
            tails.push(last);
        }
        let join = steps.len();
        steps.push(step(join, tails, segment, &point));
        for _ in 0..2 {
            let ix = steps.len();
            steps.push(step(ix, vec![ix - 1], segment, &point));
        }
    }
    assert_eq!(steps.len(), STEPS);
    Schedule::from_steps(steps, points)
}

/// Best wall time of [`REPEATS`] explorations, and what the last one found.
fn time(schedule: &Arc<Schedule>, max_faults: usize) -> (Duration, Exploration) {
    let mut best = Duration::MAX;
    let mut report = Exploration::default();
    for _ in 0..REPEATS {
        let started = Instant::now();
        let result = explore(Arc::clone(black_box(schedule)), max_faults);
        let elapsed = started.elapsed();
        report = match result {
            Ok(report) => report,
            Err(counterexample) => panic!("a safe schedule has a counterexample: {counterexample}"),
        };
        best = best.min(elapsed);
    }
    (best, report)
}

fn main() {
    // `cargo test --all-targets` runs benchmarks too, unoptimised: there they
    // only prove they build. The figures come from `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark skipped: run it with `cargo bench`");
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument, if any, picks cases.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let cases: [(&str, Schedule); 3] = [
        ("sequential, point every 20", sequential(20)),
        ("sequential, one segment", sequential(0)),
        ("parallel branches, point every 20", parallel_branches()),
    ];
    println!("explore() on {STEPS}-step schedules, best of {REPEATS}");
    println!(
        "{:<36} {:>6} {:>10} {:>8} {:>10} {:>10} {:>8} {:>12} {:>12}",
        "schedule", "faults", "runs", "single", "double", "covered", "shared", "best", "per run"
    );
    for (name, schedule) in cases {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let schedule = Arc::new(schedule);
        for max_faults in [1, 2] {
            let (best, report) = time(&schedule, max_faults);
            let per_run = best / u32::try_from(report.runs.max(1)).unwrap_or(u32::MAX);
            println!(
                "{name:<36} {max_faults:>6} {:>10} {:>8} {:>10} {:>10} {:>8} {:>12.3?} {:>12.3?}",
                report.runs,
                report.single_faults,
                report.double_faults,
                report.equivalent,
                report.shared_tails,
                best,
                per_run
            );
        }
    }
}

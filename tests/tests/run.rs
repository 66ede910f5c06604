//! `cutover run` and `cutover resume` for real: the local example plans run
//! as processes on this machine, one is killed with SIGKILL at many points
//! and resumed, and what the steps did is read back from the files they
//! wrote.
//!
//! Every run gets its own journal in a temporary directory (`--journal`), so
//! the repository stays clean; the run directories `cutover` creates under
//! the system's temporary directory are removed when each test ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use plan_core::machine::{Schedule, Selection};
use plan_core::Settings;
use tests::{
    edit, example, journal_entries, resume_plan as resume, run_dir_in, run_dir_in_journal,
    run_plan as run, Cutover, RunDir,
};

/// What `examples/local/slow.ron` leaves in `demo/effects.log`.
const SLOW_LOG: &str = "step-1\nstep-2\nstep-3\nstep-4\nstep-5\nstep-6\n";

/// A step of `slow.ron` sleeps 2 s: a command left running by a killed
/// `cutover` is over well within this.
const LEFTOVER_GRACE: Duration = Duration::from_millis(2500);

fn temp_dir() -> tempfile::TempDir {
    tests::temp_dir("cutover-run-test-")
}

#[test]
fn run_ok_completes_and_leaves_every_file() {
    let dir = temp_dir();
    let journal = dir.path().join("ok.journal");
    let out = run(&example("local/ok.ron"), &journal, &["--yes"]);
    out.assert_code(0);
    let run_dir =
        run_dir_in(&out.stderr).unwrap_or_else(|| panic!("no run directory\n{}", out.describe()));
    for file in ["greeting.txt", "greeting.copy", "finished-at"] {
        assert!(
            run_dir.demo().join(file).is_file(),
            "{file} is missing\n{}",
            out.describe()
        );
    }
    assert_eq!(
        fs::read_to_string(run_dir.demo().join("greeting.txt")).expect("greeting"),
        "hello from cutover\n"
    );
    assert!(journal.is_file(), "no journal at {}", journal.display());
    // The run is over: there is nothing to resume.
    resume(&example("local/ok.ron"), &journal).assert_code(0);
}

#[test]
fn run_rollback_rolls_back_and_leaves_the_demo_directory_absent() {
    let dir = temp_dir();
    let journal = dir.path().join("rollback.journal");
    let out = run(&example("local/rollback.ron"), &journal, &["--yes"]);
    out.assert_code(3);
    let run_dir =
        run_dir_in(&out.stderr).unwrap_or_else(|| panic!("no run directory\n{}", out.describe()));
    // Everything the run made is undone, so its (empty) directory is gone too.
    assert!(
        !run_dir.0.exists(),
        "{} is still there after the rollback\n{}",
        run_dir.0.display(),
        out.describe()
    );
    assert!(out.stderr.contains("rolled back to"), "{}", out.describe());
}

/// The pending steps of `examples/mailman.ron`, all phases, as `run` schedules them.
fn mailman_schedule() -> Schedule {
    let loaded = plan_core::load_path(&example("mailman.ron"), &Settings::default())
        .expect("mailman.ron reads");
    let plan = loaded.plan.expect("mailman.ron is valid");
    Schedule::new(&plan, &Selection::default())
}

#[test]
fn dry_run_lists_every_pending_step_in_forward_order_and_the_revert_plan() {
    let journal = example("mailman.ron.journal");
    let journal_before = journal.exists();
    let out = Cutover::new()
        .args(["run", "--dry-run"])
        .arg(example("mailman.ron"))
        .run();
    out.assert_code(0);
    assert_eq!(
        journal.exists(),
        journal_before,
        "a dry run touched the journal"
    );
    let schedule = mailman_schedule();
    let steps = &schedule.steps;

    // "  12. final-rsync [Rsync] title"
    let listed: Vec<(usize, String)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let (number, rest) = l.trim_start().split_once(". ")?;
            let number: usize = number.parse().ok()?;
            let (id, rest) = rest.split_once(' ')?;
            rest.starts_with('[').then(|| (number, id.to_owned()))
        })
        .collect();
    let numbers: Vec<usize> = listed.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (1..=steps.len()).collect::<Vec<_>>(),
        "numbering\n{}",
        out.describe()
    );
    let order: Vec<usize> = listed
        .iter()
        .map(|(_, id)| {
            schedule
                .index_of(id)
                .unwrap_or_else(|| panic!("`{id}` is not a pending step\n{}", out.describe()))
        })
        .collect();
    let mut seen = vec![false; steps.len()];
    for (position, &ix) in order.iter().enumerate() {
        assert!(!seen[ix], "`{}` listed twice", steps[ix].id);
        seen[ix] = true;
        for &dep in &steps[ix].deps {
            assert!(
                seen[dep],
                "`{}` is listed before `{}`, which it runs after",
                steps[ix].id, steps[dep].id
            );
        }
        if let Some(&previous) = position.checked_sub(1).map(|p| &order[p]) {
            assert!(
                steps[previous].segment <= steps[ix].segment,
                "`{}` comes before the barrier of `{}`",
                steps[ix].id,
                steps[previous].id
            );
        }
    }
    assert!(
        seen.iter().all(|s| *s),
        "steps missing from the forward order\n{}",
        out.describe()
    );

    // "  if `a` .. `b` fails: undo x, then y; rolled back to `p`"
    let revert_plan = out
        .stdout
        .split("Revert plan")
        .nth(1)
        .unwrap_or_else(|| panic!("no revert plan\n{}", out.describe()));
    let mut covered = Vec::new();
    for line in revert_plan
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("if `"))
    {
        let (which, rest) = line
            .split_once(" fails: ")
            .unwrap_or_else(|| panic!("odd line `{line}`"));
        let (undo, ending) = rest
            .split_once("; ")
            .unwrap_or_else(|| panic!("odd line `{line}`"));
        let which = which.trim_end_matches('`');
        let (first, last) = which.split_once("` .. `").unwrap_or((which, which));
        let (first, last) = (
            schedule.index_of(first).expect("a step"),
            schedule.index_of(last).expect("a step"),
        );
        // The failed step itself comes first when its check may find part
        // of its effect (issue 11).
        let undo = undo
            .replace(" if its check finds part of its effect", "")
            .replace(", else nothing", "")
            .replace(" (its revert is safe on a partial effect)", "");
        let undone: Vec<&str> = undo
            .strip_prefix("undo ")
            .map(|u| u.split(", then ").collect())
            .unwrap_or_default();
        for ix in first..=last {
            covered.push(ix);
            let failing = &steps[ix];
            let expected_ending = if failing.past_no_return {
                "halt for the operator (past the point of no return)".to_owned()
            } else {
                format!("rolled back to `{}`", failing.rollback_point)
            };
            assert_eq!(ending, expected_ending, "for a failure of `{}`", failing.id);
            // What completed before it, back to its point, newest first. Steps
            // running beside it finish first and may be undone as well.
            let position = order.iter().position(|&o| o == ix).expect("listed");
            let own = !failing.past_no_return
                && failing.undoable
                && (failing.checkable || failing.revert_after_failure);
            let expected: Vec<&str> = own
                .then_some(failing.id.as_str())
                .into_iter()
                .chain(
                    order[..position]
                        .iter()
                        .rev()
                        .filter(|&&o| {
                            !failing.past_no_return
                                && steps[o].segment >= failing.rollback_segment
                                && steps[o].undoable
                        })
                        .map(|&o| steps[o].id.as_str()),
                )
                .collect();
            let beside = |id: &&str| {
                schedule.index_of(id).is_some_and(|o| {
                    steps[o].segment == failing.segment
                        && order.iter().position(|&p| p == o) > Some(position)
                })
            };
            let undone_here: Vec<&str> = undone.iter().filter(|id| !beside(id)).copied().collect();
            assert_eq!(
                undone_here, expected,
                "what a failure of `{}` undoes",
                failing.id
            );
        }
    }
    assert_eq!(
        covered,
        (0..steps.len()).collect::<Vec<_>>(),
        "the revert plan covers every step once, in plan order\n{}",
        out.describe()
    );
}

#[test]
fn run_without_yes_and_without_a_terminal_changes_nothing() {
    let dir = temp_dir();
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).expect("a private TMPDIR");
    let journal = dir.path().join("ok.journal");
    let out = Cutover::new()
        .env("TMPDIR", &tmp)
        .arg("run")
        .arg(example("local/ok.ron"))
        .arg("--journal")
        .arg(&journal)
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("--yes"),
        "no hint to pass --yes\n{}",
        out.describe()
    );
    // `open` may create the journal, but nothing is recorded in it.
    let size = fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(size, 0, "the journal holds records\n{}", out.describe());
    assert_eq!(
        run_dirs_in(&tmp),
        Vec::<PathBuf>::new(),
        "{}",
        out.describe()
    );
}

/// The `cutover-run-*` directories in `dir` (a run's private TMPDIR).
fn run_dirs_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("cutover-run-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Regression: `run` created (and kept) its run directory before it asked
/// whether to start, so every refused start left an empty
/// `/tmp/cutover-run-*`. The run gets a TMPDIR of its own, which must stay
/// empty.
#[test]
fn regression_a_run_not_started_leaves_no_run_directory() {
    let dir = temp_dir();
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).expect("a private TMPDIR");
    let out = Cutover::new()
        .env("TMPDIR", &tmp)
        .arg("run")
        .arg(example("local/ok.ron"))
        .arg("--journal")
        .arg(dir.path().join("ok.journal"))
        .run();
    out.assert_code(1);
    assert_eq!(
        run_dirs_in(&tmp),
        Vec::<PathBuf>::new(),
        "a run that never started left its directory behind\n{}",
        out.describe()
    );
    // The check can see one: a run that starts makes its directory there.
    let started = Cutover::new()
        .env("TMPDIR", &tmp)
        .args(["run", "--yes", "--journal"])
        .arg(dir.path().join("ok2.journal"))
        .arg(example("local/ok.ron"))
        .run();
    started.assert_code(0);
    let made = run_dirs_in(&tmp);
    assert_eq!(made.len(), 1, "{}", started.describe());
    drop(RunDir(made[0].clone()));
}

#[test]
fn run_refuses_an_invalid_plan_with_exit_2_before_creating_a_journal() {
    let text = fs::read_to_string(example("local/ok.ron")).expect("ok.ron");
    let invalid = edit(&text, "on: \"local\"", "on: \"nowhere\"");
    let dir = temp_dir();
    let journal = dir.path().join("invalid.journal");
    let explicit = Cutover::new()
        .arg("run")
        .plan_text(&invalid)
        .args(["--yes", "--journal"])
        .arg(&journal)
        .run();
    explicit.assert_code(2);
    assert!(
        !journal.exists(),
        "a journal was created for an invalid plan\n{}",
        explicit.describe()
    );
    assert!(
        run_dir_in(&explicit.stderr).is_none(),
        "a run directory was created\n{}",
        explicit.describe()
    );
    let default = Cutover::new()
        .arg("run")
        .plan_text(&invalid)
        .arg("--yes")
        .run();
    default.assert_code(2);
    let mut next_to_plan = default.plan_path.clone().into_os_string();
    next_to_plan.push(".journal");
    assert!(
        !Path::new(&next_to_plan).exists(),
        "a journal was created next to the plan\n{}",
        default.describe()
    );
}

// ---------------------------------------------------------------------------
// kill -9 and resume
// ---------------------------------------------------------------------------

/// When to kill `cutover run examples/local/slow.ron`.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This long after it started.
    After(Duration),
    /// As soon as a journal line contains this text.
    Journaled(&'static str),
}

/// Spread over the ~12 s run: mid-step, near the step boundaries, right
/// after a step's success is journaled (between steps), right after a
/// forward is journaled as started, and right after its process began.
fn kill_points() -> Vec<KillAt> {
    let mut points: Vec<KillAt> = [
        300, 1000, 2050, 3000, 4150, 5500, 7000, 8100, 9500, 11000, 12150,
    ]
    .iter()
    .map(|&ms| KillAt::After(Duration::from_millis(ms)))
    .collect();
    points.extend([
        KillAt::Journaled(r#""event":"step_succeeded","step":"step-2""#),
        KillAt::Journaled(r#""effect":"forward","step":"step-4""#),
        KillAt::Journaled(r#""type":"process","step":"step-5""#),
        KillAt::Journaled(r#""event":"step_succeeded","step":"step-6""#),
    ]);
    points
}

/// Starts `cutover run PLAN --yes --journal J` and SIGKILLs it at `at`;
/// returns everything it printed.
fn run_and_kill(plan: &Path, journal: &Path, at: KillAt) -> String {
    let started = Instant::now();
    let mut child = Cutover::new()
        .arg("run")
        .arg(plan)
        .args(["--yes", "--journal"])
        .arg(journal)
        .spawn();
    match at {
        KillAt::After(delay) => thread::sleep(delay.saturating_sub(started.elapsed())),
        KillAt::Journaled(needle) => {
            child.poll_until(Duration::from_secs(30), || {
                fs::read_to_string(journal).is_ok_and(|t| t.contains(needle))
            });
        }
    }
    // Our own child, by its handle: SIGKILL on Unix.
    child.kill();
    child.output()
}

/// What one kill point did.
struct Crash {
    /// `effects.log` once everything is over.
    log: String,
    /// Whether the kill interrupted the run (resume had work to do).
    interrupted: bool,
}

/// Kills a run of slow.ron at `at`, resumes it, and returns its effects log.
fn crash_and_resume(at: KillAt) -> Result<Crash, String> {
    let plan = example("local/slow.ron");
    let dir = temp_dir();
    let journal = dir.path().join("slow.journal");
    let first = run_and_kill(&plan, &journal, at);
    let run_dir = run_dir_in_journal(&journal).or_else(|| run_dir_in(&first));
    let resumed = resume(&plan, &journal);
    let journaled = journal_entries(&journal)
        .iter()
        .any(|e| e["type"] == "run_started");
    if !journaled {
        // Killed before the run began: nothing ran, and resume has nothing to continue.
        let untouched = run_dir.as_ref().is_none_or(|d| !d.demo().exists());
        return if resumed.code == Some(1) && untouched {
            Ok(Crash {
                log: SLOW_LOG.to_owned(),
                interrupted: false,
            })
        } else {
            Err(format!(
                "killed before the run was journaled, yet:\n{}",
                resumed.describe()
            ))
        };
    }
    let run_dir = run_dir.ok_or("the journal names no run directory")?;
    if resumed.code != Some(0) {
        return Err(format!(
            "resume did not complete\n--- killed run ---\n{first}\n{}",
            resumed.describe()
        ));
    }
    let interrupted = !resumed.stderr.contains("nothing to resume");
    let log_path = run_dir.demo().join("effects.log");
    let log = fs::read_to_string(&log_path)
        .map_err(|e| format!("{}: {e}\n{}", log_path.display(), resumed.describe()))?;
    // A command the killed run left behind must not add anything later.
    thread::sleep(LEFTOVER_GRACE);
    let later = fs::read_to_string(&log_path).map_err(|e| e.to_string())?;
    if later != log {
        return Err(format!(
            "effects.log changed after resume ended: {log:?} then {later:?}"
        ));
    }
    let again = resume(&plan, &journal);
    if again.code != Some(0) || !again.stderr.contains("nothing to resume") {
        return Err(format!(
            "the resumed run is not recorded as completed\n{}",
            again.describe()
        ));
    }
    if log != SLOW_LOG {
        return Err(format!(
            "effects.log is {log:?}\n--- killed run ---\n{first}\n{}\n--- journal ---\n{}",
            resumed.describe(),
            fs::read_to_string(&journal).unwrap_or_default()
        ));
    }
    Ok(Crash { log, interrupted })
}

#[test]
fn kill_9_at_any_point_then_resume_applies_every_effect_exactly_once() {
    let baseline = thread::spawn(|| {
        let dir = temp_dir();
        let out = run(
            &example("local/slow.ron"),
            &dir.path().join("slow.journal"),
            &["--yes"],
        );
        out.assert_code(0);
        let run_dir = run_dir_in(&out.stderr)
            .unwrap_or_else(|| panic!("no run directory\n{}", out.describe()));
        fs::read_to_string(run_dir.demo().join("effects.log")).expect("effects.log")
    });
    let points = kill_points();
    let crashes: Vec<_> = points
        .iter()
        .map(|&at| (at, thread::spawn(move || crash_and_resume(at))))
        .collect();
    let uninterrupted = baseline.join().expect("the uninterrupted run");
    assert_eq!(uninterrupted, SLOW_LOG, "an uninterrupted run");
    let mut interrupted = 0;
    let failures: Vec<String> = crashes
        .into_iter()
        .filter_map(|(at, handle)| match handle.join() {
            Ok(Ok(crash)) if crash.log == uninterrupted => {
                interrupted += usize::from(crash.interrupted);
                None
            }
            Ok(Ok(crash)) => Some(format!("killed at {at:?}: effects.log is {:?}", crash.log)),
            Ok(Err(problem)) => Some(format!("killed at {at:?}: {problem}")),
            Err(_) => Some(format!("killed at {at:?}: the test thread panicked")),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} kill points failed:\n\n{}",
        failures.len(),
        points.len(),
        failures.join("\n\n")
    );
    // Most points fall inside the run; if they stop doing so, the test
    // no longer tests resume.
    assert!(
        interrupted >= points.len() - 3,
        "only {interrupted} of {} kills interrupted the run",
        points.len()
    );
}

#[test]
fn resume_refuses_a_plan_that_changed_and_names_the_step() {
    let dir = temp_dir();
    let plan = dir.path().join("slow.ron");
    let original = fs::read_to_string(example("local/slow.ron")).expect("slow.ron");
    fs::write(&plan, &original).expect("copy the plan");
    let journal = dir.path().join("slow.journal");
    run_and_kill(
        &plan,
        &journal,
        KillAt::Journaled(r#""event":"step_succeeded","step":"step-1""#),
    );
    let run_dir = run_dir_in_journal(&journal).expect("the run was journaled");
    let recorded = fs::read(&journal).expect("the journal");

    fs::write(
        &plan,
        edit(&original, "echo step-4 >>", "echo step-four >>"),
    )
    .expect("change the plan");
    let refused = resume(&plan, &journal);
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("step `step-4` changed"),
        "the changed step is not named\n{}",
        refused.describe()
    );
    assert_eq!(
        fs::read(&journal).expect("the journal"),
        recorded,
        "the refused resume changed the journal"
    );

    // With the plan as it was, the run continues.
    fs::write(&plan, &original).expect("restore the plan");
    resume(&plan, &journal).assert_code(0);
    assert_eq!(
        fs::read_to_string(run_dir.demo().join("effects.log")).expect("effects.log"),
        SLOW_LOG
    );
}

#[test]
fn a_torn_last_journal_line_is_dropped_with_a_warning_on_resume() {
    let plan = example("local/slow.ron");
    let dir = temp_dir();
    let journal = dir.path().join("slow.journal");
    run_and_kill(
        &plan,
        &journal,
        KillAt::Journaled(r#""type":"process","step":"step-2""#),
    );
    let run_dir = run_dir_in_journal(&journal).expect("the run was journaled");
    // Cut the last line in the middle, as a crash during an append would.
    let bytes = fs::read(&journal).expect("the journal");
    let body = &bytes[..bytes.len() - 1];
    let last_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let cut = last_start + (bytes.len() - last_start) / 2;
    fs::write(&journal, &bytes[..cut]).expect("tear the journal");

    let resumed = resume(&plan, &journal);
    resumed.assert_code(0);
    assert!(
        resumed.stderr.contains("warning:") && resumed.stderr.contains("torn"),
        "no warning about the torn line\n{}",
        resumed.describe()
    );
    thread::sleep(LEFTOVER_GRACE);
    assert_eq!(
        fs::read_to_string(run_dir.demo().join("effects.log")).expect("effects.log"),
        SLOW_LOG
    );
    // The torn bytes were dropped before anything was appended: the journal
    // reads back whole, and says the run is over.
    let again = resume(&plan, &journal);
    again.assert_code(0);
    assert!(
        !again.stderr.contains("torn"),
        "the torn line is still there\n{}",
        again.describe()
    );
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.describe()
    );
}

/// Regression: the step fingerprints journaled by `run` were taken from
/// the plan with `{{run_dir}}` expanded, and `resume` compared them with the
/// plan loaded without it, so every step that mentions `{{run_dir}}` was
/// named as changed, not only the one that did.
#[test]
fn regression_resume_names_only_the_step_that_changed() {
    let dir = temp_dir();
    let plan = dir.path().join("ok.ron");
    let original = fs::read_to_string(example("local/ok.ron")).expect("ok.ron");
    fs::write(&plan, &original).expect("copy the plan");
    let journal = dir.path().join("ok.journal");
    let first = run(&plan, &journal, &["--yes"]);
    first.assert_code(0);
    let _run_dir = run_dir_in(&first.stderr);
    fs::write(&plan, edit(&original, "date -u", "date")).expect("change the plan");
    let refused = resume(&plan, &journal);
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("step `stamp-finished` changed"),
        "{}",
        refused.describe()
    );
    assert!(
        !refused.stderr.contains("step `create-demo-dir` changed"),
        "an unchanged step is named\n{}",
        refused.describe()
    );
}

/// Past the point of no return `b` fails at once while `c`, started with it,
/// runs for 3 s.
const HALT_PLAN: &str = r#"Plan(
    name: "halt while a parallel step runs",
    service: "demo",
    window: Window(announced: "5m"),
    phases: [
        Phase(name: "window", at: "0", steps: [
            Step(id: "a", title: "a",
                 action: Shell(on: "local", run: "true", revert: Nothing("changes nothing")),
                 check: Run("true"), duration: Fixed("1s")),
            PointOfNoReturn(reason: "demo"),
            Step(id: "b", title: "fails at once", after: ["a"],
                 action: Shell(on: "local", run: "false", revert: Irreversible("demo")),
                 check: Run("true"), duration: Fixed("1s")),
            Step(id: "c", title: "runs 3 s", after: ["a"],
                 action: Shell(on: "local", run: "sleep 3; echo c >> {{run_dir}}/c.log", revert: Irreversible("demo")),
                 check: Run("grep -qx c {{run_dir}}/c.log"), duration: Fixed("3s"), deadline: "1m"),
        ]),
    ],
)
"#;

/// Regression: a halted run waits for the steps still running before it
/// announces its end. Killed in between, its journal had no end, so
/// `resume` took it up; but the replayed machine was `Halted` and ignored
/// `Resume`: nothing was checked, no end announced, and `resume` waited for
/// ever.
#[test]
fn regression_resume_of_a_run_killed_while_halting_ends_halted() {
    let dir = temp_dir();
    let plan = dir.path().join("halt.ron");
    fs::write(&plan, HALT_PLAN).expect("write the plan");
    let journal = dir.path().join("halt.journal");
    let first = run_and_kill(
        &plan,
        &journal,
        KillAt::Journaled(r#""event":"step_failed","step":"b""#),
    );
    let run_dir =
        run_dir_in_journal(&journal).unwrap_or_else(|| panic!("no run journaled\n{first}"));
    let mut resume = Cutover::new()
        .arg("resume")
        .arg(&plan)
        .args(["--yes", "--journal"])
        .arg(&journal)
        .spawn();
    let code = resume.wait(Duration::from_secs(20));
    let said = resume.output();
    assert_eq!(
        code,
        Some(4),
        "resume should end halted\n--- killed run ---\n{first}\n--- resume ---\n{said}"
    );
    assert_eq!(
        fs::read_to_string(run_dir.0.join("c.log")).unwrap_or_default(),
        "c\n"
    );
}

/// Logs go to stderr (or `--log-file`), never into `--json`'s stdout.
#[test]
fn logs_never_mix_into_json_output_and_a_log_file_gets_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let journal = dir.path().join("ok.journal");
    let log = dir.path().join("run.log");
    let run = Cutover::new()
        .env("RUST_LOG", "debug")
        .args(["run", "--yes", "--json", "--journal"])
        .arg(&journal)
        .arg("--log-file")
        .arg(&log)
        .arg(example("local/ok.ron"))
        .run();
    run.assert_code(0);
    let _dir = run_dir_in_journal(&journal);
    for line in run.stdout.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line:?}"
        );
    }
    let logged = fs::read_to_string(&log).expect("the log file is written");
    assert!(
        logged.contains("DEBUG cutover::machine: transition"),
        "{logged}"
    );
    assert!(logged.contains("INFO cutover::run: effect"), "{logged}");
    assert!(!run.stderr.contains("DEBUG"), "{}", run.stderr);

    let bad = Cutover::new()
        .env("RUST_LOG", "[")
        .args(["check"])
        .arg(example("local/ok.ron"))
        .run();
    bad.assert_code(1);
    assert!(
        bad.stderr.contains("RUST_LOG is not a valid log filter"),
        "{}",
        bad.stderr
    );
}

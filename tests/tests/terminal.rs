//! The operator's terminal: `cutover run` and `cutover resume` in a real
//! pseudo-terminal (`tests::pty`), every interactive path as an operator
//! walks it at 2 a.m. The live view, the confirmation before the first
//! change, manual steps, the `go` gate before the point of no return, the
//! choice after a failure (`--on-failure ask`), a long wait for an answer,
//! Ctrl-C once (roll back) and twice (stop, then resume), and the question
//! about an in-doubt step after a crash.
//!
//! Every wait is bounded and fails with the screen's last lines. A run that
//! hangs on a terminal (the deadlock of issue 9: the live view's ticker and
//! the command both waiting on the other's lock) fails the first test here
//! within its wait.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::pty::Pty;
use tests::{journal_entries, run_dir_in, workspace_file, RunDir};

/// Long enough for any local step of these plans; a hang shows as a failure
/// after this, with the screen.
const WAIT: Duration = Duration::from_secs(30);

/// A plan and its journal in a private directory.
struct Case {
    dir: tempfile::TempDir,
    plan: PathBuf,
    journal: PathBuf,
}

impl Case {
    /// `text` as `plan.ron` in a fresh directory.
    fn new(text: &str) -> Case {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plan = dir.path().join("plan.ron");
        fs::write(&plan, text).expect("the plan is written");
        let journal = dir.path().join("plan.ron.journal");
        Case { dir, plan, journal }
    }

    /// One of the examples, copied.
    fn example(name: &str) -> Case {
        let path = workspace_file(&format!("examples/{name}"));
        Case::new(&fs::read_to_string(&path).expect("the example exists"))
    }

    /// `cutover VERB plan.ron --journal J ARGS...` in a terminal.
    fn start(&self, verb: &str, args: &[&str]) -> Pty {
        let mut all: Vec<String> = vec![
            verb.into(),
            self.plan.display().to_string(),
            "--journal".into(),
            self.journal.display().to_string(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Pty::cutover(all, self.dir.path())
    }

    /// `cutover run plan.ron ARGS...` in a terminal, its first question
    /// (run these steps?) answered `y`.
    fn confirmed(&self, args: &[&str]) -> Pty {
        let mut pty = self.start("run", args);
        pty.expect("[y/N]", WAIT);
        pty.send_line("y");
        pty
    }

    fn entries(&self) -> Vec<Value> {
        journal_entries(&self.journal)
    }

    /// Journal records of this `type`.
    fn records(&self, kind: &str) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }
}

/// The run directory a run named on the terminal (removed when dropped).
#[track_caller]
fn run_dir(pty: &Pty) -> RunDir {
    run_dir_in(&pty.transcript())
        .unwrap_or_else(|| panic!("no `run directory:` line in\n{}", pty.transcript()))
}

/// One step that makes `{{run_dir}}/demo`, then `steps` (plan text).
fn plan_with(name: &str, steps: &str) -> String {
    tests::local_demo_plan(name, steps)
}

/// A manual step after the directory is made.
fn manual_plan() -> String {
    plan_with(
        "pty: a manual step",
        r#"Step(id: "look", title: "look at the directory",
                 action: Manual(prompt: "Look at the demo directory.", revert: Nothing("looking changes nothing")),
                 duration: Fixed("1m")),"#,
    )
}

/// A point of no return after the directory is made.
fn gate_plan() -> String {
    plan_with(
        "pty: the point of no return",
        r#"PointOfNoReturn(reason: "the old copy is deleted"),
            Step(id: "stamp", title: "stamp the directory",
                 action: Shell(on: "local", run: "touch {{d}}/stamped", revert: Irreversible("the old copy is gone")),
                 check: Run("test -f {{d}}/stamped"), duration: Fixed("1s")),"#,
    )
}

/// A step that fails its first attempt and succeeds after that.
fn flaky_plan() -> String {
    plan_with(
        "pty: a step that fails once",
        r#"Step(id: "flaky", title: "succeed on the second try",
                 action: Shell(on: "local",
                               run: "if test -f {{d}}/tried; then touch {{d}}/done; else touch {{d}}/tried; exit 1; fi",
                               revert: Run("rm -f {{d}}/done")),
                 check: Run("test -f {{d}}/done"), duration: Fixed("1s")),"#,
    )
}

fn kill9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -9 {pid}");
}

/// Polls `ready` until it holds; fails with `what` after `limit`.
#[track_caller]
fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "no {what} after {limit:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_with_yes_completes_in_a_terminal() {
    let case = Case::example("local/ok.ron");
    let mut pty = case.start("run", &["--yes"]);
    pty.expect("running create-demo-dir", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0, "{}", pty.transcript());
    let dir = run_dir(&pty);
    assert!(dir.demo().join("finished-at").is_file());
}

#[test]
fn the_live_view_shows_the_running_step_its_deadline_and_the_rollback_point_and_redraws() {
    let case = Case::example("local/slow.ron");
    let mut pty = case.start("run", &["--yes"]);
    // The bar of a running step: elapsed time against its deadline, and the
    // rollback point a failure would go back to.
    pty.expect("[0s / deadline 1m] running step-1", WAIT);
    pty.expect("rollback point: before-demo", WAIT);
    // Redrawn while the step runs: its elapsed time moves.
    pty.expect("[1s / deadline 1m] running step-1", WAIT);
    pty.expect("✓ step-1", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let dir = run_dir(&pty);
    assert_eq!(
        fs::read_to_string(dir.demo().join("effects.log")).expect("the log"),
        "step-1\nstep-2\nstep-3\nstep-4\nstep-5\nstep-6\n"
    );
}

#[test]
fn the_confirmation_answered_y_runs() {
    let case = Case::example("local/ok.ron");
    let mut pty = case.start("run", &[]);
    pty.expect("Run 4 steps of \"local demo: a run that completes\"", WAIT);
    pty.expect("[y/N]", WAIT);
    pty.send_line("y");
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let _dir = run_dir(&pty);
}

#[test]
fn the_confirmation_answered_n_or_enter_changes_nothing() {
    for answer in ["n", ""] {
        let case = Case::example("local/ok.ron");
        let mut pty = case.start("run", &[]);
        pty.expect("[y/N]", WAIT);
        pty.send_line(answer);
        pty.expect("not started; nothing changed", WAIT);
        assert_eq!(pty.wait_exit(WAIT), 1, "answer {answer:?}");
        assert!(
            !pty.transcript().contains("run directory:"),
            "answer {answer:?}: {}",
            pty.transcript()
        );
        assert!(
            case.records("run_started").is_empty(),
            "answer {answer:?}: a run was journaled"
        );
    }
}

#[test]
fn a_manual_step_confirmed_completes_and_the_answer_is_journaled_as_the_operators() {
    let case = Case::new(&manual_plan());
    let mut pty = case.confirmed(&[]);
    pty.expect("MANUAL STEP `look`: look at the directory", WAIT);
    pty.expect("Look at the demo directory.", WAIT);
    pty.expect("Done?", WAIT);
    pty.send_line("y");
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let _dir = run_dir(&pty);
    let answers = case.records("answered");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["question"], "confirm");
    assert_eq!(answers[0]["answer"], "yes");
    assert_eq!(answers[0]["by"], "operator");
}

#[test]
fn a_manual_step_declined_rolls_back() {
    let case = Case::new(&manual_plan());
    let mut pty = case.confirmed(&[]);
    pty.expect("Done?", WAIT);
    pty.send_line("n");
    pty.expect("rolled back to `before-demo`", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 3);
    let dir = run_dir(&pty);
    assert!(!dir.demo().exists(), "the directory is removed again");
}

/// Issue 11, item 3: under `--yes`, a manual step printed "confirmed by the
/// operator" and journaled a confirmation nobody gave. `--yes` answers the
/// start; the manual step still asks the person at the terminal.
#[test]
fn regression_with_yes_a_manual_step_still_asks_the_person() {
    let case = Case::new(&manual_plan());
    let mut pty = case.start("run", &["--yes"]);
    pty.expect("MANUAL STEP `look`", WAIT);
    pty.send_line("y");
    pty.expect("(confirmed by the operator)", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let _dir = run_dir(&pty);
    let answers = case.records("answered");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["by"], "operator");
}

/// `--confirm STEP` confirms a manual step in advance; the screen and the
/// journal say a flag did, not a person.
#[test]
fn a_manual_step_confirmed_in_advance_is_journaled_as_the_flags() {
    let case = Case::new(&manual_plan());
    let mut pty = case.start("run", &["--yes", "--confirm", "look"]);
    pty.expect("(confirmed in advance with --confirm)", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let _dir = run_dir(&pty);
    let answers = case.records("answered");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["by"], "flag");
    assert!(
        !pty.transcript().contains("confirmed by the operator"),
        "{}",
        pty.transcript()
    );
}

/// Without a terminal, `--yes` alone cannot confirm a manual step: the run
/// is refused before anything runs, naming the step and the flag to use.
#[test]
fn regression_with_yes_and_no_terminal_a_manual_step_refuses_the_run_before_it_starts() {
    let case = Case::new(&manual_plan());
    let out = tests::Cutover::new()
        .arg("run")
        .arg(&case.plan)
        .args(["--yes", "--journal"])
        .arg(&case.journal)
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("`look`") && out.stderr.contains("--confirm look"),
        "{}",
        out.describe()
    );
    assert!(!case.journal.exists(), "a refused run wrote a journal");
    let wrong = tests::Cutover::new()
        .arg("run")
        .arg(&case.plan)
        .args(["--yes", "--confirm", "make-dir", "--journal"])
        .arg(&case.journal)
        .run();
    assert!(
        wrong.stderr.contains("not a Manual one"),
        "{}",
        wrong.describe()
    );
    assert!(!case.journal.exists(), "a refused run wrote a journal");
}

#[test]
fn the_point_of_no_return_needs_the_word_go() {
    let case = Case::new(&gate_plan());
    let mut pty = case.confirmed(&[]);
    pty.expect("✓ make-dir", WAIT);
    pty.expect("POINT OF NO RETURN: the old copy is deleted", WAIT);
    pty.expect("Type `go` to cross it", WAIT);
    // A `y` is not enough, and changes nothing: the question comes again.
    pty.send_line("y");
    pty.expect("Please type `go` or `rollback`", WAIT);
    assert!(!pty.transcript().contains("running stamp"));
    pty.send_line("go");
    pty.expect("crossed the point of no return", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let dir = run_dir(&pty);
    assert!(dir.demo().join("stamped").is_file());
    let answers = case.records("answered");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["question"], "cross_no_return");
    assert_eq!(answers[0]["answer"], "go");
    assert_eq!(answers[0]["by"], "operator");
}

#[test]
fn rollback_at_the_point_of_no_return_undoes_the_run() {
    let case = Case::new(&gate_plan());
    let mut pty = case.confirmed(&[]);
    pty.expect("Type `go` to cross it", WAIT);
    pty.send_line("rollback");
    pty.expect("rolled back to `before-demo`", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 3);
    let dir = run_dir(&pty);
    assert!(!dir.demo().exists(), "the directory is removed again");
}

#[test]
fn on_failure_ask_offers_retry_and_a_retry_completes() {
    let case = Case::new(&flaky_plan());
    let mut pty = case.confirmed(&["--on-failure", "ask"]);
    pty.expect("STEP FAILED `flaky`", WAIT);
    pty.expect("[r]etry it, roll [b]ack, or [h]alt", WAIT);
    pty.send_line("r");
    pty.expect("the operator chose to retry it", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let dir = run_dir(&pty);
    assert!(dir.demo().join("done").is_file());
    // The choice is an event of the run: resume and the journal agree.
    let chose: Vec<Value> = case
        .records("event")
        .into_iter()
        .filter(|e| e["event"]["event"] == "operator_chose")
        .collect();
    assert_eq!(chose.len(), 1, "{chose:?}");
    assert_eq!(chose[0]["event"]["choice"], "retry");
    assert_eq!(case.records("run_started")[0]["on_failure"], "ask");
}

#[test]
fn on_failure_ask_answered_halt_halts_and_roll_back_rolls_back() {
    for (answer, code, end) in [("h", 4, "HALTED"), ("b", 3, "rolled back to `before-demo`")] {
        let case = Case::new(&flaky_plan());
        let mut pty = case.confirmed(&["--on-failure", "ask"]);
        pty.expect("[r]etry it, roll [b]ack, or [h]alt", WAIT);
        pty.send_line(answer);
        pty.expect(end, WAIT);
        assert_eq!(pty.wait_exit(WAIT), code, "answer {answer}");
        let dir = run_dir(&pty);
        assert_eq!(dir.demo().exists(), answer == "h", "answer {answer}");
    }
}

#[test]
fn a_long_wait_for_an_answer_is_shown_and_journaled() {
    let case = Case::new(&manual_plan());
    let mut pty = case.confirmed(&["--remind-after", "1s"]);
    pty.expect("Done?", WAIT);
    pty.expect("still waiting for the operator", WAIT);
    pty.expect(
        "to confirm a manual step: the run is paused at `look`",
        WAIT,
    );
    pty.send_line("y");
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0);
    let _dir = run_dir(&pty);
    let waits = case.records("operator_waiting");
    assert!(!waits.is_empty(), "{:?}", case.entries());
    assert_eq!(waits[0]["step"], "look");
    assert!(waits[0]["waited_ms"].as_u64().is_some_and(|ms| ms >= 1000));
    let answers = case.records("answered");
    assert!(answers[0]["waited_ms"]
        .as_u64()
        .is_some_and(|ms| ms >= 1000));
}

#[test]
fn one_ctrl_c_mid_run_rolls_back() {
    let case = Case::example("local/slow.ron");
    let mut pty = case.start("run", &["--yes"]);
    pty.expect("running step-2", WAIT);
    wait_until(WAIT, "step-2's process journaled", || {
        case.records("process")
            .iter()
            .any(|r| r["step"] == "step-2")
    });
    pty.ctrl_c();
    pty.expect("Ctrl-C: rolling back in order", WAIT);
    pty.expect("rolled back to `before-demo`", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 3);
    let dir = run_dir(&pty);
    assert!(!dir.demo().exists(), "the directory is removed again");
}

/// The second Ctrl-C stops at once, killing what runs; the journal holds the
/// rollback the first one asked for, so `resume` finishes that rollback.
/// (Two presses the terminal delivers before the first is handled arrive as
/// one signal: hence the wait for the first one's note.)
#[test]
fn two_ctrl_c_stop_at_once_and_resume_finishes_the_rollback() {
    // A step long enough that both presses land while it runs, however
    // loaded the machine is.
    let case = Case::new(&plan_with(
        "pty: two Ctrl-C",
        r#"Step(id: "long", title: "a long step",
                 action: Shell(on: "local", run: "sleep 20; touch {{d}}/long", revert: Run("rm -f {{d}}/long")),
                 check: Run("test -f {{d}}/long"), duration: Fixed("20s"), deadline: "1m"),"#,
    ));
    let mut pty = case.start("run", &["--yes"]);
    pty.expect("running long", WAIT);
    // Pressed once the step's command runs (its process group journaled),
    // as an operator would: a press in the very microseconds the command is
    // being started can reach it before it has a process group of its own.
    wait_until(WAIT, "the long step's process journaled", || {
        case.records("process").iter().any(|r| r["step"] == "long")
    });
    pty.ctrl_c();
    pty.expect("Ctrl-C: rolling back in order", WAIT);
    pty.ctrl_c();
    pty.expect("stopping at once", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 1);
    let dir = run_dir(&pty);
    let mut resume = case.start("resume", &[]);
    resume.expect("Continue this run?", WAIT);
    resume.send_line("y");
    resume.expect("rolled back to `before-demo`", WAIT);
    assert_eq!(resume.wait_exit(WAIT), 3, "{}", resume.transcript());
    assert!(
        !dir.demo().exists(),
        "the rollback the first Ctrl-C began is finished"
    );
}

#[test]
fn resume_asks_about_an_in_doubt_step_and_takes_the_typed_answer() {
    // `mark` has no check: after a crash while it runs, only the operator
    // can say whether it took effect.
    let case = Case::new(&plan_with(
        "pty: an in-doubt step",
        r#"Step(id: "mark", title: "mark the directory, slowly",
                 action: Shell(on: "local", run: "touch {{d}}/started; sleep 1; touch {{d}}/marked", revert: Run("rm -f {{d}}/marked")),
                 duration: Fixed("1s")),
            Step(id: "after", title: "note that it is over",
                 action: Shell(on: "local", run: "touch {{d}}/after", revert: Run("rm -f {{d}}/after")),
                 check: Run("test -f {{d}}/after"), duration: Fixed("1s")),"#,
    ));
    let mut pty = case.start("run", &["--yes"]);
    pty.expect("running mark", WAIT);
    // "running" is drawn when the step starts, which on a loaded machine can
    // be before its command is spawned: kill only once the command runs, or
    // nothing would ever mark the directory.
    let dir = run_dir(&pty);
    wait_until(WAIT, "started file", || dir.demo().join("started").exists());
    let pid = pty.pid().expect("cutover has a pid");
    kill9(pid);
    pty.wait_exit(WAIT);
    // The command the killed run left behind finishes on its own.
    wait_until(WAIT, "marked file", || dir.demo().join("marked").exists());
    let mut resume = case.start("resume", &[]);
    resume.expect("in doubt (under way when the run stopped): mark", WAIT);
    resume.expect("Continue this run?", WAIT);
    resume.send_line("y");
    resume.expect("IN DOUBT `mark`", WAIT);
    resume.expect("its outcome is unknown and it has no check", WAIT);
    resume.expect("Did it take effect?", WAIT);
    resume.send_line("maybe");
    resume.expect("Please type `y` or `n`", WAIT);
    resume.send_line("y");
    resume.expect("completed: every step succeeded", WAIT);
    assert_eq!(resume.wait_exit(WAIT), 0);
    assert!(dir.demo().join("after").is_file());
    let answers: Vec<Value> = case
        .records("answered")
        .into_iter()
        .filter(|a| a["question"] == "in_doubt")
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["answer"], "done");
    assert_eq!(answers[0]["by"], "operator");
}

#[test]
fn json_on_a_terminal_prints_events_and_no_live_view() {
    let case = Case::example("local/ok.ron");
    let mut pty = case.start("run", &["--yes", "--json"]);
    assert_eq!(pty.wait_exit(WAIT), 0, "{}", pty.transcript());
    let transcript = pty.transcript();
    let lines: Vec<&str> = transcript
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(lines.len() > 5, "{transcript}");
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON line: {line:?}\n{transcript}"
        );
    }
    assert!(transcript.contains("\"end\":\"completed\""), "{transcript}");
    if let Some(dir) = case
        .records("run_started")
        .first()
        .and_then(|r| r["run_dir"].as_str().map(PathBuf::from))
    {
        drop(RunDir(dir));
    }
}

#[test]
fn logs_on_a_terminal_are_written_above_the_live_view_and_the_run_completes() {
    // A long step's bar stays on the screen while quick steps beside it
    // start their commands, each start a log line.
    let quick: String = (1..=4)
        .map(|i| {
            format!(
                r#"Step(id: "quick-{i}", title: "a quick step", after: [{after}],
                 action: Shell(on: "local", run: "sleep 0.3", revert: Nothing("it changes nothing")),
                 check: Run("true"), duration: Fixed("1s")),"#,
                after = if i == 1 { String::new() } else { format!("\"quick-{}\"", i - 1) }
            )
        })
        .collect();
    let case = Case::new(&plan_with(
        "pty: logs beside the live view",
        &format!(
            r#"Step(id: "long", title: "a long step", after: ["make-dir"],
                 action: Shell(on: "local", run: "sleep 2", revert: Nothing("it changes nothing")),
                 check: Run("true"), duration: Fixed("2s")),
            {quick}"#
        ),
    ));
    let args = [
        "run".to_owned(),
        case.plan.display().to_string(),
        "--journal".to_owned(),
        case.journal.display().to_string(),
        "--yes".to_owned(),
    ];
    let mut pty = Pty::cutover_with_env(
        args,
        case.dir.path(),
        [("RUST_LOG", "plan_steps::local=debug")],
    );
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0, "{}", pty.transcript());
    let _dir = run_dir(&pty);
    // On the screen, every log line is a row of its own: none was drawn
    // into a bar's row, nor a bar over a log line.
    let screen = pty.screen();
    let rows: Vec<String> = pty
        .rows()
        .into_iter()
        .filter(|r| r.contains("DEBUG"))
        .collect();
    let written = pty.transcript().matches("DEBUG plan_steps::local").count();
    assert!(written >= 6, "{}", pty.transcript());
    assert_eq!(
        rows.len(),
        written,
        "{written} log lines written, {} on the screen: one was drawn over\n{screen}",
        rows.len()
    );
    for row in rows {
        assert!(
            row.starts_with("20") && !row.contains("running"),
            "a log line shares a row with the live view: {row:?}\n{screen}"
        );
    }
}

/// The README's second local demo, as it is written there.
#[test]
fn the_rollback_demo_rolls_back_in_a_terminal() {
    let case = Case::example("local/rollback.ron");
    let mut pty = case.start("run", &["--yes"]);
    pty.expect(
        "rolling back: undoing completed steps in reverse order",
        WAIT,
    );
    pty.expect("rolled back to", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 3, "{}", pty.transcript());
    let dir = run_dir(&pty);
    assert!(!dir.demo().exists(), "the directory is removed again");
}

/// Issue 11, item 1: a phase run earlier than its anchor allows (here, the
/// window a minute after the phase anchored an hour before it ended) warns
/// and asks on a terminal; `n` starts nothing.
#[test]
fn a_phase_run_before_its_anchor_asks_and_n_starts_nothing() {
    let case = Case::new(
        r#"Plan(
    name: "pty: phases an hour apart",
    service: "demo",
    window: Window(announced: "5m"),
    phases: [
        Phase(name: "before", at: "-1h", steps: [
            Step(id: "early", action: Shell(on: "local", run: "true", revert: Nothing("does nothing")),
                 duration: Fixed("1s")),
        ]),
        Phase(name: "window", at: "0", steps: [
            Step(id: "late", action: Shell(on: "local", run: "true", revert: Nothing("does nothing")),
                 duration: Fixed("1s")),
        ]),
    ],
)"#,
    );
    let mut pty = case.start("run", &["--phase", "before", "--yes"]);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0, "{}", pty.transcript());
    let _dir = run_dir(&pty);

    let mut pty = case.start("run", &["--phase", "window"]);
    pty.expect(
        "phase `window` is anchored at 0, 1h after phase `before`",
        WAIT,
    );
    pty.expect("Run it now anyway? [y/N]", WAIT);
    pty.send_line("n");
    pty.expect("not started", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 1, "{}", pty.transcript());
    assert!(
        case.records("event")
            .iter()
            .all(|e| e["event"]["step"] != "late"),
        "the early phase ran"
    );
}

/// A fleet's run on a terminal: thirty chains of three steps side by side.
/// The live view stays readable: at most 8 steps have a bar at once, the
/// others are counted on the phase's line, and steps that succeed are
/// counted there too instead of each printing a line.
#[test]
fn a_fleet_of_steps_side_by_side_is_shown_in_brief() {
    let mut steps = String::new();
    for chain in 0..30 {
        for link in 0..3 {
            let after = if link == 0 {
                r#""make-dir""#.to_owned()
            } else {
                format!(r#""c{chain:02}-{}""#, link - 1)
            };
            steps.push_str(&format!(
                r#"Step(id: "c{chain:02}-{link}", action: Shell(on: "local", run: "sleep 0.8; echo c{chain:02}-{link} >> {{{{d}}}}/log", revert: Run("true")),
                 check: Run("grep -qx c{chain:02}-{link} {{{{d}}}}/log"), duration: Fixed("1s"), after: [{after}]),
            "#
            ));
        }
    }
    let case = Case::new(&plan_with("pty: a fleet", &steps));
    let mut pty = case.start("run", &["--yes"]);
    pty.expect("not shown", WAIT);
    // While they run: never more than 8 bars on the screen.
    let mut most = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let bars = pty
            .rows()
            .iter()
            .filter(|row| row.contains("] running c"))
            .count();
        most = most.max(bars);
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        (1..=8).contains(&most),
        "{most} bars at once:\n{}",
        pty.screen()
    );
    pty.expect("✓ phase window: 91 steps done", WAIT);
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0, "{}", pty.transcript());
    let transcript = pty.transcript();
    assert!(
        !transcript.contains("✓ c00-0"),
        "a line for a step that succeeded:\n{transcript}"
    );
    let dir = run_dir(&pty);
    let log = fs::read_to_string(dir.demo().join("log")).expect("the log");
    assert_eq!(log.lines().count(), 90, "{log}");
}

/// Issue 16: the team is told when the run waits for its operator longer
/// than `--remind-after`, and of a manual step's start and confirmation.
#[test]
fn a_long_wait_for_the_operator_and_a_manual_step_are_told_to_the_hooks() {
    let case = Case::new(&manual_plan());
    let log = case.dir.path().join("told.log");
    let hook = format!(
        "echo \"$CUTOVER_EVENT ${{CUTOVER_STEP:--}}\" >> {}",
        log.display()
    );
    let mut pty = case.confirmed(&["--remind-after", "1s", "--notify", &hook]);
    pty.expect("Done?", WAIT);
    // Past --remind-after, the hook hears that the run waits.
    wait_until(WAIT, "operator_awaited told", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("operator_awaited look"))
    });
    pty.send_line("y");
    pty.expect("completed: every step succeeded", WAIT);
    assert_eq!(pty.wait_exit(WAIT), 0, "{}", pty.transcript());
    let _dir = run_dir(&pty);
    let told = fs::read_to_string(&log).expect("the hook's log");
    let lines: Vec<&str> = told.lines().collect();
    let at = |line: &str| {
        lines
            .iter()
            .position(|l| *l == line)
            .unwrap_or_else(|| panic!("{line:?} not told: {lines:?}"))
    };
    assert!(
        at("step_started look") < at("operator_awaited look"),
        "{lines:?}"
    );
    assert!(
        at("operator_awaited look") < at("step_succeeded look"),
        "{lines:?}"
    );
    assert_eq!(lines.last(), Some(&"run_ended -"), "{lines:?}");
}

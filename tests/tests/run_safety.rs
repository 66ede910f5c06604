//! Run safety (issue 11): what a hostile tester found the machine promising
//! but not doing, each reproduced as it was found and now guarded.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::{
    example, journal_entries, resume_plan as resume, run_dir_in, run_dir_in_journal,
    run_plan as run, Cutover,
};

fn temp_dir() -> tempfile::TempDir {
    tests::temp_dir("cutover-safety-test-")
}

/// Issue 11, item 4: two runs (or a run and a resume) of one journal at
/// once both executed and wrote duplicate sequence numbers. The second is
/// refused, named the holder; once the holder is killed with SIGKILL, the
/// kernel has released the lock and `resume` needs nothing by hand.
#[test]
fn regression_a_second_run_or_resume_of_a_live_journal_is_refused_naming_the_holder() {
    let plan = example("local/slow.ron");
    let dir = temp_dir();
    let journal = dir.path().join("slow.journal");
    let mut first = Cutover::new()
        .arg("run")
        .arg(&plan)
        .args(["--yes", "--journal"])
        .arg(&journal)
        .spawn();
    first.wait_until(Duration::from_secs(30), "step-1 under way", || {
        fs::read_to_string(&journal)
            .is_ok_and(|t| t.contains(r#""type":"process","step":"step-1""#))
    });
    let before = fs::read(&journal).expect("the journal");
    let holder = format!("pid {}", first.pid());

    let second = run(&plan, &journal, &["--yes"]);
    second.assert_code(1);
    assert!(
        second
            .stderr
            .contains("another run of this journal is live")
            && second.stderr.contains(&holder),
        "{}",
        second.describe()
    );
    let beside = resume(&plan, &journal);
    beside.assert_code(1);
    assert!(beside.stderr.contains(&holder), "{}", beside.describe());
    let now = fs::read(&journal).expect("the journal");
    assert!(
        now.starts_with(&before),
        "the refused runs wrote into the journal"
    );

    first.kill();
    let run_dir = run_dir_in_journal(&journal).expect("the run directory");
    let resumed = resume(&plan, &journal);
    resumed.assert_code(0);
    let log = fs::read_to_string(run_dir.demo().join("effects.log")).expect("the log");
    assert_eq!(log, "step-1\nstep-2\nstep-3\nstep-4\nstep-5\nstep-6\n");
}

/// Issue 11, item 9: a journal deleted mid-run went unnoticed and the run
/// completed into an unlinked file. Now the run stops at its next record,
/// saves what it had journaled beside the path, and says how to resume.
#[test]
fn regression_a_journal_deleted_mid_run_stops_the_run_and_is_saved() {
    let plan = example("local/slow.ron");
    let dir = temp_dir();
    let journal = dir.path().join("slow.journal");
    let mut running = Cutover::new()
        .arg("run")
        .arg(&plan)
        .args(["--yes", "--journal"])
        .arg(&journal)
        .spawn();
    running.wait_until(Duration::from_secs(30), "step-1 under way", || {
        fs::read_to_string(&journal)
            .is_ok_and(|t| t.contains(r#""type":"process","step":"step-1""#))
    });
    let run_dir = run_dir_in_journal(&journal).expect("the run directory");
    fs::remove_file(&journal).expect("the journal is deleted");
    let code = running.wait(Duration::from_secs(60));
    let output = running.output();
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("deleted or replaced"), "{output}");
    // Issue 12, item 9: it says what had happened by then.
    assert!(
        output.contains("by then: done create-demo-dir; under way") && output.contains("step-1"),
        "{output}"
    );
    let saved = dir.path().join("slow.journal.saved");
    assert!(saved.is_file(), "nothing saved\n{output}");
    let log = fs::read_to_string(run_dir.demo().join("effects.log")).unwrap_or_default();
    assert!(
        !log.contains("step-2"),
        "the run went on after its journal vanished: {log:?}\n{output}"
    );
    // Put back, the saved journal resumes the run to its end.
    fs::rename(&saved, &journal).expect("put back");
    resume(&plan, &journal).assert_code(0);
    let log = fs::read_to_string(run_dir.demo().join("effects.log")).expect("the log");
    assert_eq!(log, "step-1\nstep-2\nstep-3\nstep-4\nstep-5\nstep-6\n");
}

/// Issue 11, item 4: a second journal for the same plan (which would take
/// the first one's half-done changes as its "before") needs --force.
#[test]
fn regression_a_second_journal_for_the_same_plan_needs_force() {
    let plan = example("local/ok.ron");
    let dir = temp_dir();
    let first = dir.path().join("first.journal");
    let out = run(&plan, &first, &["--yes"]);
    out.assert_code(0);
    let _first_dir = run_dir_in(&out.stderr);
    let second = dir.path().join("second.journal");
    let refused = run(&plan, &second, &["--yes"]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr
            .contains("another journal of this plan exists")
            && refused.stderr.contains("first.journal")
            && refused.stderr.contains("--force"),
        "{}",
        refused.describe()
    );
    assert!(!second.exists(), "the refused run wrote a journal");
    let forced = run(&plan, &second, &["--yes", "--force"]);
    let _second_dir = run_dir_in(&forced.stderr);
    forced.assert_code(0);
}

/// Issue 11, item 14: every run left an empty `/tmp/cutover-run-*` behind.
/// An empty run directory is removed when the run ends; one a step left
/// files in is kept, and the run says so.
#[test]
fn regression_an_empty_run_directory_is_removed_and_a_used_one_kept() {
    let dir = temp_dir();
    let rolled_back = run(
        &example("local/rollback.ron"),
        &dir.path().join("rollback.journal"),
        &["--yes"],
    );
    rolled_back.assert_code(3);
    let empty = run_dir_in(&rolled_back.stderr).expect("a run directory");
    assert!(!empty.0.exists(), "{}", rolled_back.describe());

    let ok = run(
        &example("local/ok.ron"),
        &dir.path().join("ok.journal"),
        &["--yes"],
    );
    ok.assert_code(0);
    let used = run_dir_in(&ok.stderr).expect("a run directory");
    assert!(used.demo().is_dir(), "{}", ok.describe());
    assert!(ok.stderr.contains("is kept"), "{}", ok.describe());
}

/// Writes `text` as `plan.ron` in `dir`.
fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("plan.ron");
    fs::write(&path, text).expect("the plan is written");
    path
}

/// A one-phase local plan holding `steps`.
fn local_plan(name: &str, steps: &str) -> String {
    tests::local_demo_plan(name, steps)
}

/// Starts `cutover run PLAN --yes --journal J` and kills it (SIGKILL) once
/// `needle` is in the journal.
fn run_and_kill_at(plan: &Path, journal: &Path, needle: &str) {
    let mut child = Cutover::new()
        .arg("run")
        .arg(plan)
        .args(["--yes", "--journal"])
        .arg(journal)
        .spawn();
    child.wait_until(Duration::from_secs(30), needle, || {
        fs::read_to_string(journal).is_ok_and(|t| t.contains(needle))
    });
    child.kill();
}

/// Issue 11, item 7: `resume --assume done` completed a migration whose
/// in-doubt step had a check that merely could not run. `--assume` stands in
/// only for a missing check; a check that could not run is run again on the
/// next resume, and the run stops saying so.
#[test]
fn regression_assume_never_answers_for_a_check_that_exists_but_could_not_run() {
    let dir = temp_dir();
    let plan = write_plan(
        dir.path(),
        &local_plan(
            "safety: a check that cannot run",
            r#"Step(id: "publish", title: "publish, checked over HTTP",
                 action: Shell(on: "local", run: "sleep 2; touch {{d}}/published", revert: Run("rm -f {{d}}/published")),
                 check: Http(url: "http://127.0.0.1:9/health", status: 200), duration: Fixed("2s")),"#,
        ),
    );
    let journal = dir.path().join("plan.journal");
    run_and_kill_at(&plan, &journal, r#""type":"process","step":"publish""#);
    let _run_dir = run_dir_in_journal(&journal);
    let resumed = Cutover::new()
        .arg("resume")
        .arg(&plan)
        .args(["--yes", "--assume", "done", "--journal"])
        .arg(&journal)
        .run();
    resumed.assert_code(1);
    assert!(
        resumed
            .stderr
            .contains("has a check, which could not settle it"),
        "{}",
        resumed.describe()
    );
    assert!(
        !resumed.stderr.contains("no check"),
        "it says the step has no check\n{}",
        resumed.describe()
    );
    let answered_by_flag = journal_entries(&journal)
        .iter()
        .any(|e| e["type"] == "answered" && e["by"] == "flag");
    assert!(
        !answered_by_flag,
        "--assume answered for a step with a check"
    );
}

/// Issue 11, item 13: a failed command showed only its last stderr line,
/// a failed check nothing. The failure now shows the last lines of what it
/// printed (`--failure-lines`), and `status --output STEP` prints all of it
/// from the journal.
#[test]
fn regression_a_failure_shows_its_last_lines_and_status_prints_the_whole_output() {
    let dir = temp_dir();
    let plan = write_plan(
        dir.path(),
        &local_plan(
            "safety: failures with their reasons",
            r#"Step(id: "migrate", title: "a migration that explains itself",
                 action: Shell(on: "local",
                               run: "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo \"migrate line $i\" >&2; done; exit 3",
                               revert: Nothing("it failed before changing anything")),
                 duration: Fixed("1s")),"#,
        ),
    );
    let journal = dir.path().join("plan.journal");
    let out = run(&plan, &journal, &["--yes"]);
    out.assert_code(3);
    let _run_dir = run_dir_in(&out.stderr);
    for shown in [
        "migrate line 6",
        "migrate line 15",
        "6 lines before",
        "--output migrate",
    ] {
        assert!(
            out.stderr.contains(shown),
            "no {shown:?}\n{}",
            out.describe()
        );
    }
    assert!(
        !out.stderr.contains("migrate line 5\n"),
        "more than 10 lines shown\n{}",
        out.describe()
    );

    let status = tests::status_of(&plan, &journal, &["--output", "migrate"]);
    status.assert_code(0);
    for i in 1..=15 {
        assert!(
            status.stdout.contains(&format!("migrate line {i}\n")),
            "line {i} missing\n{}",
            status.describe()
        );
    }
    assert!(
        status.stdout.contains("--- migrate, attempt 1,"),
        "{}",
        status.describe()
    );

    // A failed check shows what the check printed.
    let plan = write_plan(
        dir.path(),
        &local_plan(
            "safety: a check that explains itself",
            r#"Step(id: "publish", title: "publish",
                 action: Shell(on: "local", run: "touch {{d}}/published", revert: Run("rm -f {{d}}/published")),
                 check: Run("echo 'the health page says 503' >&2; exit 1"), duration: Fixed("1s")),"#,
        ),
    );
    let out = run(
        &plan,
        &dir.path().join("check.journal"),
        &["--yes", "--force"],
    );
    out.assert_code(3);
    let _run_dir = run_dir_in(&out.stderr);
    assert!(
        out.stderr.contains("the health page says 503"),
        "{}",
        out.describe()
    );
}

/// A DNS-only plan for the lab's server: `phases` holds the phases, the
/// record is declared with `declared_ttl`.
fn dns_plan(lab: &tests::lab::Lab, name: &str, declared_ttl: &str, phases: &str) -> String {
    let dns = lab.dns();
    format!(
        r#"Plan(
    name: "{name}",
    service: "www.lab.test",
    window: Window(announced: "10m"),
    dns: Rfc2136(server: "{server}", zone: "lab.test.", key: TsigFile("{key}"),
        records: {{ "www.lab.test.": Record(ttl: "{declared_ttl}", addresses: ["127.0.0.1"]) }}),
    phases: [ {phases} ],
)"#,
        server = dns.server(),
        key = dns.tsig_key.display()
    )
}

fn dns_lab(ttl: u32) -> tests::lab::Lab {
    tests::lab::Lab::builder()
        .hosts(0)
        .dns()
        .record_ttl(ttl)
        .start()
        .expect("the lab's named starts")
}

/// The time of the first journal record whose text holds `needle`.
fn journaled_at(journal: &Path, needle: &str) -> jiff::Timestamp {
    let text = fs::read_to_string(journal).expect("the journal");
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} in the journal\n{text}"));
    let record: serde_json::Value = serde_json::from_str(line).expect("a record");
    record["time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a time")
}

/// Issue 11, item 1: a TTL lowered in the `-1d` phase and the record
/// switched in the window right after (`run --phase day-before`, then
/// `--phase window`) went through 21 ms after the TTL change, while
/// resolvers still held the old answer for the whole old TTL. Now the
/// window is refused as early by its anchor (unless --force), and even
/// forced, the switch is refused by the TTL rule: the old TTL has an hour
/// left, far more than a switch waits. The record is not touched.
#[test]
fn regression_a_switch_right_after_a_ttl_change_in_an_earlier_phase_is_refused() {
    let lab = dns_lab(3600);
    let before = lab.lookup("www.lab.test.");
    let dir = temp_dir();
    let plan = write_plan(
        dir.path(),
        &dns_plan(
            &lab,
            "safety: TTL one day before",
            "1h",
            r#"Phase(name: "day-before", at: "-1d", steps: [
            Step(id: "lower-ttl", action: DnsTtl(record: "www.lab.test.", ttl: "5s"), duration: Fixed("1s")),
        ]),
        Phase(name: "window", at: "0", steps: [
            Step(id: "switch", action: DnsRecord(record: "www.lab.test.", addresses: ["127.0.0.99"]), duration: Fixed("1s")),
        ]),"#,
        ),
    );
    let journal = dir.path().join("plan.journal");
    run(&plan, &journal, &["--yes", "--phase", "day-before"]).assert_code(0);
    assert_eq!(lab.lookup("www.lab.test.")[0].ttl, 5);

    let early = run(&plan, &journal, &["--yes", "--phase", "window"]);
    early.assert_code(1);
    assert!(
        early
            .stderr
            .contains("phase `window` is anchored at 0, 1d after phase `day-before`")
            && early.stderr.contains("--force"),
        "{}",
        early.describe()
    );
    let forced = run(&plan, &journal, &["--yes", "--phase", "window", "--force"]);
    forced.assert_code(1);
    assert!(
        forced
            .stderr
            .contains("step `switch` switches www.lab.test., whose TTL was changed")
            && forced.stderr.contains("from 3600s"),
        "{}",
        forced.describe()
    );
    let after = lab.lookup("www.lab.test.");
    assert_eq!(
        after[0].address, before[0].address,
        "the record was switched"
    );
}

/// Issue 11, item 1: a switch whose record's old TTL has a few seconds left
/// waits for it, saying why (a `note` in the journal and on the screen),
/// and switches only once no resolver can hold the old answer.
#[test]
fn regression_a_switch_waits_for_the_old_ttl_to_run_out_and_says_why() {
    let lab = dns_lab(4);
    let dir = temp_dir();
    let plan = write_plan(
        dir.path(),
        &dns_plan(
            &lab,
            "safety: TTL seconds before",
            "4s",
            r#"Phase(name: "just-before", at: "-5s", steps: [
            Step(id: "lower-ttl", action: DnsTtl(record: "www.lab.test.", ttl: "1s"), duration: Fixed("1s")),
        ]),
        Phase(name: "window", at: "0", steps: [
            Step(id: "switch", action: DnsRecord(record: "www.lab.test.", addresses: ["127.0.0.99"]), duration: Fixed("1s")),
        ]),"#,
        ),
    );
    let journal = dir.path().join("plan.journal");
    run(&plan, &journal, &["--yes", "--phase", "just-before"]).assert_code(0);
    let out = run(&plan, &journal, &["--yes", "--phase", "window", "--force"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("waiting before the switch: the TTL of www.lab.test. changed"),
        "{}",
        out.describe()
    );
    let lowered = journaled_at(&journal, r#""event":"step_succeeded","step":"lower-ttl""#);
    let switched = journaled_at(&journal, r#""type":"captured","step":"switch""#);
    let gap = switched.duration_since(lowered);
    assert!(
        gap.as_secs_f64() >= 4.0,
        "switched {gap:?} after the TTL change, within the old TTL (4 s)\n{}",
        out.describe()
    );
    assert_eq!(
        lab.lookup("www.lab.test.")[0].address,
        "127.0.0.99"
            .parse::<std::net::Ipv4Addr>()
            .expect("an address")
    );
}

/// Issue 11, item 12: a resumed `WaitTtl` waited the whole TTL again. It
/// now goes on from when the wait began (the journal's time), and its
/// resume says so without speaking of a check it does not have.
#[test]
fn regression_a_resumed_ttl_wait_goes_on_from_when_it_began() {
    let lab = dns_lab(8);
    let dir = temp_dir();
    let plan = write_plan(
        dir.path(),
        &dns_plan(
            &lab,
            "safety: a TTL wait interrupted",
            "8s",
            r#"Phase(name: "window", at: "0", steps: [
            Step(id: "lower-ttl", action: DnsTtl(record: "www.lab.test.", ttl: "1s"), duration: Fixed("1s")),
            Step(id: "wait-ttl", action: WaitTtl(record: "www.lab.test.")),
            Step(id: "switch", action: DnsRecord(record: "www.lab.test.", addresses: ["127.0.0.99"]), duration: Fixed("1s")),
        ]),"#,
        ),
    );
    let journal = dir.path().join("plan.journal");
    let mut child = Cutover::new()
        .arg("run")
        .arg(&plan)
        .args(["--yes", "--journal"])
        .arg(&journal)
        .spawn();
    child.wait_until(Duration::from_secs(30), "the TTL wait under way", || {
        fs::read_to_string(&journal)
            .is_ok_and(|t| t.contains(r#""effect":"forward","step":"wait-ttl""#))
    });
    std::thread::sleep(Duration::from_secs(4));
    child.kill();
    let resumed = resume(&plan, &journal);
    resumed.assert_code(0);
    assert!(
        resumed.elapsed < Duration::from_secs(7),
        "the resumed wait took {:?}: it waited the whole TTL again\n{}",
        resumed.elapsed,
        resumed.describe()
    );
    assert!(
        resumed
            .stderr
            .contains("not over: it goes on from when it began")
            && !resumed.stderr.contains("no check")
            && !resumed.stderr.contains("checking whether"),
        "{}",
        resumed.describe()
    );
    let lowered = journaled_at(&journal, r#""event":"step_succeeded","step":"lower-ttl""#);
    let switched = journaled_at(&journal, r#""type":"captured","step":"switch""#);
    assert!(
        switched.duration_since(lowered).as_secs_f64() >= 8.0,
        "switched within the old TTL"
    );
}

/// Issue 11, item 2: `Shell(run: "touch flag && exit 1")` failed, the run
/// reported "rolled back", and the flag stayed; for a `downtime: Begins`
/// step the outage went on after a "successful" rollback. A failed attempt
/// is now treated like an in-doubt one: its check finds the partial effect
/// and the rollback undoes it. A step without a check is undone when the
/// plan says its revert is safe on a partial effect.
#[test]
fn regression_a_failed_steps_partial_effect_is_undone_by_the_rollback() {
    let dir = temp_dir();
    let plan = write_plan(
        dir.path(),
        &local_plan(
            "safety: partial effects",
            r#"Step(id: "hold-mail", title: "hold mail: users are down from here",
                 action: Shell(on: "local", run: "touch {{run_dir}}/held && exit 1", revert: Run("rm -f {{run_dir}}/held")),
                 check: Run("test -f {{run_dir}}/held"), downtime: Begins, duration: Fixed("1s")),
            Step(id: "release", title: "release it", action: Shell(on: "local", run: "rm -f {{run_dir}}/held", revert: Run("touch {{run_dir}}/held")),
                 check: Run("test ! -f {{run_dir}}/held"), downtime: Ends, duration: Fixed("1s")),"#,
        ),
    );
    let dry = Cutover::new().arg("run").arg(&plan).arg("--dry-run").run();
    dry.assert_code(0);
    assert!(
        dry.stdout.contains(
            "if `hold-mail` fails: undo hold-mail if its check finds part of its effect, then make-dir"
        ),
        "{}",
        dry.describe()
    );
    let journal = dir.path().join("plan.journal");
    let out = run(&plan, &journal, &["--yes"]);
    out.assert_code(3);
    let run_dir = run_dir_in(&out.stderr).expect("a run directory");
    assert!(
        !run_dir.0.join("held").exists(),
        "the failed step's flag is still there after the rollback\n{}",
        out.describe()
    );
    let reverted: Vec<String> = journal_entries(&journal)
        .iter()
        .filter(|e| e["type"] == "effect_started" && e["effect"]["effect"] == "revert")
        .map(|e| e["effect"]["step"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(reverted, ["hold-mail", "make-dir"], "{}", out.describe());

    // Without a check, the plan's word: `revert_after_failure: true`.
    let plan = write_plan(
        dir.path(),
        &local_plan(
            "safety: partial effects, no check",
            r#"Step(id: "hold-mail", title: "hold mail",
                 action: Shell(on: "local", run: "touch {{run_dir}}/held && exit 1", revert: Run("rm -f {{run_dir}}/held")),
                 revert_after_failure: true, duration: Fixed("1s")),"#,
        ),
    );
    let out = run(
        &plan,
        &dir.path().join("declared.journal"),
        &["--yes", "--force"],
    );
    out.assert_code(3);
    let run_dir = run_dir_in(&out.stderr).expect("a run directory");
    assert!(
        !run_dir.0.join("held").exists(),
        "revert_after_failure did not undo the partial effect\n{}",
        out.describe()
    );
    let reverted = journal_entries(&dir.path().join("declared.journal"))
        .iter()
        .filter(|e| e["type"] == "effect_started" && e["effect"]["effect"] == "revert")
        .count();
    assert_eq!(reverted, 2, "{}", out.describe());
}

/// Issue 11, item 6: a DNS revert wrote the captured record back without
/// looking, so one run's rollback undid another's finished switch. Now the
/// revert first makes sure the record is still what this run set (and the
/// update carries RFC 2136 prerequisites); when it is not, it refuses, the
/// run halts for the operator, and the other change stays.
#[test]
fn regression_a_dns_revert_never_overwrites_what_someone_else_set() {
    let lab = dns_lab(4);
    let dns = lab.dns();
    let dir = temp_dir();
    // Between the switch and the failure that rolls it back, someone else
    // points the record elsewhere (with nsupdate and the same key).
    let meddle = format!(
        "printf 'server {} {}\\\\nupdate delete www.lab.test. A\\\\nupdate add www.lab.test. 4 A 127.0.0.77\\\\nsend\\\\n' | nsupdate -k {} && exit 1",
        dns.address,
        dns.port,
        dns.tsig_key.display()
    );
    let plan = write_plan(
        dir.path(),
        &dns_plan(
            &lab,
            "safety: a revert that is not ours to make",
            "4s",
            &format!(
                r#"Phase(name: "window", at: "0", steps: [
            RollbackPoint("before-switch"),
            Step(id: "switch", action: DnsRecord(record: "www.lab.test.", addresses: ["127.0.0.99"]), duration: Fixed("1s")),
            Step(id: "someone-else", title: "another operator switches it meanwhile, then this run fails",
                 action: Shell(on: "local", run: "{meddle}", revert: Nothing("not this run's change")),
                 duration: Fixed("1s")),
        ]),"#
            ),
        ),
    );
    let journal = dir.path().join("plan.journal");
    let out = run(&plan, &journal, &["--yes"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("not restoring: the server serves")
            && out.stderr.contains("127.0.0.77")
            && out.stderr.contains("HALTED"),
        "{}",
        out.describe()
    );
    assert_eq!(
        lab.lookup("www.lab.test.")[0].address,
        "127.0.0.77"
            .parse::<std::net::Ipv4Addr>()
            .expect("an address"),
        "the revert overwrote the other change"
    );
}

/// Issue 11, item 11: after a rollback, the fix could not be run: the
/// changed plan was refused by its journal, a fresh journal refused the next
/// phase until earlier ones were re-run, and a refused run left an empty
/// journal. Now a run that ended (completed, rolled back) lets the changed
/// plan go on in the same journal as a new attempt: unchanged steps keep
/// their done state, changed ones start fresh, `status` shows the attempts.
#[test]
fn regression_after_a_rollback_the_fixed_plan_runs_as_a_new_attempt_in_the_same_journal() {
    let dir = temp_dir();
    let two_phases = |migrate: &str| {
        format!(
            r#"Plan(
    name: "safety: fix and run again",
    service: "demo",
    window: Window(announced: "5m"),
    vars: {{"d": "{{{{run_dir}}}}/demo"}},
    phases: [
        Phase(name: "prep", steps: [
            Step(id: "prepare", action: Shell(on: "local", run: "true", revert: Nothing("prepares nothing")),
                 duration: Fixed("1s")),
        ]),
        Phase(name: "window", at: "0", steps: [
            RollbackPoint("before-migration"),
            Step(id: "migrate", action: Shell(on: "local", run: "{migrate}", revert: Nothing("changes nothing")),
                 duration: Fixed("1s")),
        ]),
    ],
)"#
        )
    };
    let plan = write_plan(dir.path(), &two_phases("exit 3"));
    let journal = dir.path().join("plan.journal");
    run(&plan, &journal, &["--yes", "--phase", "prep"]).assert_code(0);
    run(&plan, &journal, &["--yes", "--phase", "window", "--force"]).assert_code(3);

    // The fix.
    write_plan(dir.path(), &two_phases("true"));
    let fixed = run(&plan, &journal, &["--yes", "--phase", "window", "--force"]);
    fixed.assert_code(0);
    assert!(
        fixed.stderr.contains("starts attempt 2")
            && fixed.stderr.contains("kept done (unchanged): prepare")
            && fixed.stderr.contains("step `migrate` changed"),
        "{}",
        fixed.describe()
    );
    let status = tests::status_of(&plan, &journal, &[]);
    status.assert_code(0);
    assert!(
        status.stdout.contains("2 attempts")
            && status.stdout.contains("attempt 1: plan")
            && status.stdout.contains("rolled back")
            && status.stdout.contains("attempt 2 (this plan)"),
        "{}",
        status.describe()
    );
    let json = tests::status_of(&plan, &journal, &["--json"]);
    let value = json.json();
    let done: Vec<(&str, &str)> = value["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or(""),
                s["done"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        done,
        [("prepare", "yes"), ("migrate", "yes")],
        "{}",
        json.describe()
    );
    assert_eq!(value["attempts"].as_array().map(Vec::len), Some(2));
}

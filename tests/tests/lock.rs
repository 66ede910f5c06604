//! One run at a time across machines (`--lock etcd://...`; issue 16, item
//! 1), against a real etcd the test starts on loopback. Two "machines" are
//! two directories, each with its own copy of the plan and its own journal:
//! only the lock in etcd keeps them apart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::etcd::Etcd;
use tests::{journal_entries, Cutover, Run, Spawned};

/// A plan of local steps: `slow` sleeps `seconds`, then `after` writes
/// `marker`.
fn plan(seconds: u32, marker: &Path) -> String {
    format!(
        r#"Plan(
    name: "lock test",
    service: "lists.lab.test",
    window: Window(announced: "5m"),
    phases: [
        Phase(name: "window", at: "0", steps: [
            RollbackPoint("before"),
            Step(id: "slow", action: Shell(on: "local", run: "sleep {seconds}", revert: Run("true")), duration: Fixed("{seconds}s")),
            Step(id: "after", action: Shell(on: "local", run: "touch {marker}", revert: Run("rm -f {marker}")),
                 after: ["slow"], duration: Fixed("1s")),
        ]),
    ],
)"#,
        marker = marker.display()
    )
}

/// `cutover run PLAN --yes --journal J EXTRA...` on "a machine" of its own
/// (a fresh directory).
fn on_a_machine(text: &str, journal: &Path, extra: &[&str]) -> Cutover {
    Cutover::new()
        .arg("run")
        .plan_text(text)
        .args(["--yes", "--journal"])
        .arg(journal)
        .args(extra)
}

/// The same with `--lock URL`.
fn machine(text: &str, journal: &Path, lock: &str, extra: &[&str]) -> Cutover {
    on_a_machine(text, journal, &[&["--lock", lock], extra].concat())
}

/// `text` with the plan setting `lock: "URL"`.
fn with_lock(text: &str, url: &str) -> String {
    text.replacen(
        "    phases: [",
        &format!("    lock: \"{url}\",\n    phases: ["),
        1,
    )
}

fn wait_for_step(spawned: &mut Spawned, journal: &Path, step: &str) {
    spawned.wait_until(
        Duration::from_secs(30),
        &format!("`{step}` under way"),
        || {
            journal_entries(journal)
                .iter()
                .any(|e| tests::is_effect_started(e, "forward", step))
        },
    );
}

fn refused_by_holder(run: &Run, pid: u32) {
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("another run holds the lock /cutover/lists.lab.test in etcd")
            && run.stderr.contains(&format!("pid {pid}"))
            && run.stderr.contains('@'),
        "{}",
        run.describe()
    );
}

#[test]
fn a_second_machine_is_refused_naming_the_holder_until_the_run_ends() {
    let etcd = Etcd::start();
    let lock = etcd.lock_url("cutover");
    let dir = tests::temp_dir("cutover-lock-");
    let marker = dir.path().join("marker");
    let text = plan(4, &marker);
    let first_journal = dir.path().join("first.journal");
    let mut first = machine(&text, &first_journal, &lock, &[]).spawn();
    wait_for_step(&mut first, &first_journal, "slow");

    // The other machine keeps its journal elsewhere.
    let elsewhere = tests::temp_dir("cutover-lock-other-");
    let second_journal = elsewhere.path().join("second.journal");
    let refused = machine(&text, &second_journal, &lock, &[]).run();
    refused_by_holder(&refused, first.pid());
    assert!(!second_journal.exists(), "the refused run wrote a journal");

    assert_eq!(
        first.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        first.output()
    );
    // Released on exit: the other machine runs now.
    std::fs::remove_file(&marker).expect("the first run left its marker");
    machine(&text, &second_journal, &lock, &[])
        .run()
        .assert_code(0);
    assert!(marker.exists());
}

#[test]
fn a_killed_holders_lock_expires_after_its_ttl() {
    let etcd = Etcd::start();
    let lock = etcd.lock_url("cutover");
    let dir = tests::temp_dir("cutover-lock-");
    let text = plan(30, &dir.path().join("marker"));
    let journal = dir.path().join("dead.journal");
    let mut dead = machine(&text, &journal, &lock, &["--lock-ttl", "3s"]).spawn();
    wait_for_step(&mut dead, &journal, "slow");
    let pid = dead.pid();
    dead.kill();

    // The kill -9 revoked nothing: the lock is still held...
    let elsewhere = tests::temp_dir("cutover-lock-other-");
    let other = elsewhere.path().join("other.journal");
    let quick = plan(0, &elsewhere.path().join("marker"));
    let refused = machine(&quick, &other, &lock, &[]).run();
    refused_by_holder(&refused, pid);
    // ... until its TTL runs out.
    let until = Instant::now() + Duration::from_secs(20);
    let mut tries = Vec::new();
    loop {
        let run = machine(&quick, &other, &lock, &[]).run();
        if run.code == Some(0) {
            break;
        }
        tries.push(run.describe());
        assert!(
            Instant::now() < until,
            "the dead holder's lock (TTL 3s) was still held after 20s:\n{}",
            tries.join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_network_cut_to_etcd_stops_new_steps_says_so_and_resume_goes_on() {
    // etcd in a network namespace of its own, over a veth pair.
    let etcd = Etcd::behind_a_link();
    let lock = etcd.lock_url("cutover");
    let dir = tests::temp_dir("cutover-lock-");
    let marker = dir.path().join("marker");
    let text = plan(6, &marker);
    let journal: PathBuf = dir.path().join("cut.journal");
    let cutover = machine(&text, &journal, &lock, &["--lock-ttl", "3s"]);
    let plan_path = cutover.dir().join("plan.ron");
    let mut run = cutover.spawn();
    wait_for_step(&mut run, &journal, "slow");
    // The link goes down while `slow` runs (6 s): after 2 s without a
    // confirmed keep-alive the lock is lost, `slow` finishes, `after` never starts.
    etcd.cut();
    let code = run.wait(Duration::from_secs(60));
    etcd.restore();
    let output = run.output();
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("the run's lock is lost"), "{output}");
    let entries = journal_entries(&journal);
    assert!(
        entries.iter().any(|e| e["type"] == "lock_lost"),
        "{entries:#?}"
    );
    assert!(entries
        .iter()
        .any(|e| tests::is_event(e, "step_succeeded", "slow")));
    assert!(
        !entries
            .iter()
            .any(|e| tests::is_effect_started(e, "forward", "after")),
        "a step started after the lock was lost"
    );
    assert!(!marker.exists());

    // Once etcd is reachable and the old lease is gone, resume finishes the run.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let resumed = Cutover::new()
            .arg("resume")
            .arg(&plan_path)
            .args(["--yes", "--journal"])
            .arg(&journal)
            .args(["--lock", &lock])
            .run();
        if resumed.code == Some(0) {
            break;
        }
        assert!(
            Instant::now() < until && resumed.stderr.contains("holds the lock"),
            "{}\netcd:\n{}",
            resumed.describe(),
            etcd.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(marker.exists(), "resume did not run `after`");
}

#[test]
fn a_bad_lock_url_or_an_unreachable_etcd_refuses_before_anything_runs() {
    let dir = tests::temp_dir("cutover-lock-");
    let marker = dir.path().join("marker");
    let text = plan(0, &marker);
    let journal = dir.path().join("j.journal");
    let bad = machine(&text, &journal, "http://127.0.0.1:2379/x", &[]).run();
    bad.assert_code(1);
    assert!(
        bad.stderr.contains("not an etcd:// URL"),
        "{}",
        bad.describe()
    );
    // Nothing listens on port 1.
    let unreachable = machine(&text, &journal, "etcd://127.0.0.1:1/cutover", &[]).run();
    unreachable.assert_code(1);
    assert!(
        unreachable
            .stderr
            .contains("cannot take the lock /cutover/lists.lab.test in etcd at http://127.0.0.1:1"),
        "{}",
        unreachable.describe()
    );
    assert!(!journal.exists() && !marker.exists());
}

/// The plan's own `lock` setting works as `--lock` does; `--no-lock` holds
/// none; a bad one is a diagnostic at its place.
#[test]
fn the_plans_lock_setting_refuses_a_second_machine_and_no_lock_skips_it() {
    let etcd = Etcd::start();
    let team = etcd.lock_url("team");
    let dir = tests::temp_dir("cutover-lock-");
    let text = with_lock(&plan(4, &dir.path().join("marker")), &team);
    let first_journal = dir.path().join("first.journal");
    let mut first = on_a_machine(&text, &first_journal, &[]).spawn();
    wait_for_step(&mut first, &first_journal, "slow");

    let elsewhere = tests::temp_dir("cutover-lock-other-");
    let refused = on_a_machine(&text, &elsewhere.path().join("second.journal"), &[]).run();
    refused.assert_code(1);
    assert!(
        refused
            .stderr
            .contains("another run holds the lock /team/lists.lab.test")
            && refused.stderr.contains(&format!("pid {}", first.pid())),
        "{}",
        refused.describe()
    );
    // --no-lock: only the journal's own lock (another journal here).
    let quick = with_lock(&plan(0, &elsewhere.path().join("marker")), &team);
    on_a_machine(
        &quick,
        &elsewhere.path().join("third.journal"),
        &["--no-lock"],
    )
    .run()
    .assert_code(0);
    assert_eq!(
        first.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        first.output()
    );

    let bad = tests::check_json(&with_lock(
        &plan(0, &dir.path().join("m")),
        "etcd://etcd1.example.org/cutover",
    ));
    bad.assert_code(2);
    assert!(
        bad.diagnostics()
            .iter()
            .any(|d| d.message.contains("names no port")),
        "{}",
        bad.describe()
    );
}

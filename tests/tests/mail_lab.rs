//! Issue 14: the seed's cutover (`examples/lab/mailman.ron`) on the mail
//! lab (`scripts/mail-lab`: exim and mailman3 on sodium and fermium, a
//! mailbox host, BIND), with mail flowing the whole time. Each test ends
//! with the delivery count of `scripts/mail-load`: 0 lost, 0 duplicated.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::lab::Lab;
use tests::{workspace_file, Run};

/// TTL of lists.lab.test when the lab starts (the plan's record says the same).
const LISTS_TTL: u32 = 10;

fn plan_text() -> String {
    let path = workspace_file("examples/lab/mailman.ron");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tests::edit(
        &text,
        r#"Record(ttl: "60s", addresses: ["{{sodium_address}}"])"#,
        &format!(r#"Record(ttl: "{LISTS_TTL}s", addresses: ["{{{{sodium_address}}}}"])"#),
    )
}

/// The mail lab, the plan written into it, and the journal's path.
struct MailLab {
    lab: Lab,
    plan: PathBuf,
    journal: PathBuf,
}

impl MailLab {
    fn start() -> MailLab {
        let lab = Lab::builder()
            .mail(LISTS_TTL)
            .start()
            .unwrap_or_else(|e| panic!("the mail lab starts: {e}"));
        let plan = lab.dir().join("mailman.ron");
        std::fs::write(&plan, plan_text()).expect("the plan is written");
        let journal = lab.dir().join("mailman.journal");
        MailLab { lab, plan, journal }
    }

    /// `cutover run PLAN --phase PHASE --yes --force` (phases are run back to
    /// back, before their anchors), confirming the manual steps named.
    fn run_phase(&self, phase: &str, confirm: &[&str]) -> Run {
        let mut cutover = self
            .lab
            .cutover()
            .arg("run")
            .arg(&self.plan)
            .args(["--phase", phase, "--yes", "--force", "--journal"])
            .arg(&self.journal)
            .timeout(Duration::from_secs(300));
        for step in confirm {
            cutover = cutover.args(["--confirm", step]);
        }
        let run = cutover.run();
        // The run directory (`{{run_dir}}`) is not used by the plan: gone.
        drop(tests::run_dir_in(&run.stderr));
        run
    }

    /// The two phases before the window, which must complete.
    fn prepare(&self) {
        self.run_phase("preparation", &[]).assert_code(0);
        self.run_phase("day-before", &["announce-downtime"])
            .assert_code(0);
    }

    /// `cutover VERB PLAN ...` (`run --phase window`, or `resume`) on the
    /// journal, left running.
    fn spawn(&self, verb: &str) -> tests::Spawned {
        let mut cutover = self.lab.cutover().arg(verb).arg(&self.plan);
        if verb == "run" {
            cutover = cutover.args(["--phase", "window", "--force"]);
        }
        cutover
            .args(["--yes", "--confirm", "follow-up-mail", "--journal"])
            .arg(&self.journal)
            .spawn()
    }

    /// After the window: decommission, let the last mail arrive, stop the
    /// load; fermium serves sodium's lists as they were (`before`), and
    /// nothing was lost.
    #[track_caller]
    fn finish(&self, mut load: Load, before: &str) {
        self.run_phase("decommission", &[]).assert_code(0);
        std::thread::sleep(Duration::from_secs(5));
        load.stop();
        assert_eq!(
            self.lab.resolve("lists.lab.test."),
            vec![self.address("host2")]
        );
        assert_eq!(self.lists_on("host2"), before);
        assert_nothing_lost(self);
    }

    /// `mail-load send` at 2 posts a second until stopped.
    fn start_load(&self) -> Load {
        let child = Command::new("python3")
            .arg(workspace_file("scripts/mail-load"))
            .args(["send"])
            .arg(self.lab.dir())
            .args(["--rate", "2", "--duration", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mail-load starts");
        Load { child: Some(child) }
    }

    /// `mail-load count` (waiting up to two minutes for deliveries).
    fn count(&self) -> Output {
        let started = Instant::now();
        let output = Command::new("python3")
            .arg(workspace_file("scripts/mail-load"))
            .arg("count")
            .arg(self.lab.dir())
            .args(["--wait", "120"])
            .stdin(Stdio::null())
            .output()
            .expect("mail-load count runs");
        assert!(started.elapsed() < Duration::from_secs(240));
        output
    }

    fn sodium(&self, command: &str) -> Output {
        self.lab.ssh("host1", command)
    }

    fn fermium(&self, command: &str) -> Output {
        self.lab.ssh("host2", command)
    }

    fn address(&self, host: &str) -> Ipv4Addr {
        self.lab.host(host).address
    }

    /// What the list server on `host` holds: its lists, each list's members,
    /// the held messages.
    fn lists_on(&self, host: &str) -> String {
        self.lab.ssh_ok(
            host,
            "mailman lists -q && for l in public private big; do mailman members $l@lists.lab.test; done && mailman-ctl held",
        )
    }
}

/// The load generator, stopped (TERM, then waited for) when dropped.
struct Load {
    child: Option<Child>,
}

impl Load {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn assert_nothing_lost(lab: &MailLab) {
    let count = lab.count();
    let said = text(&count);
    assert!(
        count.status.success() && said.contains(" 0 lost, 0 duplicated"),
        "the delivery count:\n{said}"
    );
}

fn exit_code(output: &Output) -> Option<i32> {
    output.status.code()
}

#[test]
fn the_seeds_cutover_moves_the_lists_while_mail_flows_and_loses_nothing() {
    let lab = MailLab::start();
    let before = lab.lists_on("host1");
    assert!(
        before.contains("total 3"),
        "held messages on sodium:\n{before}"
    );
    let load = lab.start_load();
    lab.prepare();
    let window = lab.run_phase("window", &["follow-up-mail"]);
    window.assert_code(0);
    // sodium's mail services are shut down past the point of no return
    // (`finish` runs it); fermium no longer holds.
    lab.finish(load, &before);
    assert_eq!(exit_code(&lab.sodium("exim-ctl status")), Some(3));
    assert_eq!(exit_code(&lab.sodium("mailman-ctl status")), Some(3));
    assert_eq!(exit_code(&lab.fermium("exim-ctl held")), Some(1));
}

#[test]
fn fermiums_mailman_refusing_to_start_rolls_back_and_sodium_delivers_what_it_held() {
    let lab = MailLab::start();
    let before = lab.lists_on("host1");
    std::fs::write(lab.lab.host("host2").dir.join("mailman-refuse-start"), "")
        .expect("the refusal is written");
    let mut load = lab.start_load();
    lab.prepare();
    let window = lab.run_phase("window", &["follow-up-mail"]);
    window.assert_code(3);
    assert!(
        window
            .stderr
            .contains("rolled back to `window-start`: step `start-mailman-fermium` failed"),
        "{}",
        window.describe()
    );
    std::thread::sleep(Duration::from_secs(5));
    load.stop();

    // sodium serves again: the name, its TTL before the window (the
    // day before's 5 s), its exim delivering (not held) and its mailman.
    let records = lab.lab.lookup("lists.lab.test.");
    assert_eq!(
        records.iter().map(|r| r.address).collect::<Vec<_>>(),
        vec![lab.address("host1")]
    );
    assert!(records.iter().all(|r| r.ttl == 5), "{records:?}");
    assert_eq!(exit_code(&lab.sodium("exim-ctl status")), Some(0));
    assert_eq!(exit_code(&lab.sodium("exim-ctl held")), Some(1));
    assert_eq!(exit_code(&lab.sodium("mailman-ctl status")), Some(0));
    assert_eq!(lab.lists_on("host1"), before);
    assert_nothing_lost(&lab);
}

/// `cutover probe` of the seed's plan on the mail lab, as an operator
/// runs it: the preparation phase on the fresh lab, then the window the
/// day before it (after the preparation and day-before phases ran). Both
/// list servers reached as root, the programs of every step and revert
/// found, the copies of the lists measured; and nothing changed: fermium's
/// files (logs aside; sodium's live mailman writes its own), the lists and
/// held mail on both servers, the record, and which services run.
#[test]
fn probing_the_seeds_plan_on_the_mail_lab_changes_nothing() {
    let lab = MailLab::start();
    let state = || {
        let mut said = Vec::new();
        for host in ["host1", "host2"] {
            for command in ["exim-ctl status", "mailman-ctl status", "exim-ctl held"] {
                said.push(format!(
                    "{host} {command}: {:?}",
                    exit_code(&lab.lab.ssh(host, command))
                ));
            }
        }
        said.push(lab.lists_on("host1"));
        said.push(format!("{:?}", lab.lab.lookup("lists.lab.test.")));
        said
    };
    let fermium = lab.lab.host("host2").dir.clone();
    let record = lab.lab.dir().join("mailman.probe");
    let probe = |phase: &str| {
        let (files, before) = (crate::probe::tree(&fermium), state());
        let run = lab
            .lab
            .cutover()
            .arg("probe")
            .arg(&lab.plan)
            .args(["--phase", phase, "--json", "--record"])
            .arg(&record)
            .timeout(Duration::from_secs(300))
            .run();
        run.assert_code(0);
        let changed = crate::probe::tree_changes(&files, &crate::probe::tree(&fermium));
        assert!(
            changed.is_empty(),
            "the probe of {phase} changed fermium:\n  {}",
            changed.join("\n  ")
        );
        assert_eq!(state(), before, "the probe of {phase} changed the mail lab");
        run
    };
    let preparation = probe("preparation");
    let reached = crate::probe::of_kind(&preparation, "fact", "host-reached");
    for host in ["sodium", "fermium"] {
        assert!(
            reached
                .iter()
                .any(|f| f.contains(&format!("[{host}]")) && f.contains("`root`")),
            "{host}: {reached:#?}"
        );
    }
    lab.prepare();
    let window = probe("window");
    let programs = crate::probe::of_kind(&window, "fact", "program-found");
    for (step, program) in [
        ("hold-mail [sodium]", "exim-ctl"),
        ("stop-mailman [sodium]", "mailman-ctl"),
        ("test-mails [fermium]", "exim4"),
    ] {
        assert!(
            programs
                .iter()
                .any(|f| f.starts_with(step) && f.contains(program)),
            "{step}: {program} not reported: {programs:#?}"
        );
    }
    let copies = window.json()["copies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let measured: Vec<&str> = copies.iter().filter_map(|c| c["step"].as_str()).collect();
    assert_eq!(measured, ["final-rsync"], "{}", window.describe());
    // The preparation's copy already moved the lists: the final one
    // measures what changed since (nothing, without mail flowing).
    assert!(
        copies[0]["total_bytes"].as_u64().is_some_and(|b| b > 0)
            && copies[0]["bytes"].as_u64().is_some(),
        "{copies:#?}"
    );
}

/// Whether the journal says `step`'s forward effect has started.
fn started(journal: &std::path::Path, step: &str) -> bool {
    tests::journal_entries(journal)
        .iter()
        .any(|e| tests::is_effect_started(e, "forward", step))
}

/// A mail lab with the load running, the phases before the window done and
/// the window started: the lab, sodium's lists before, the load, the run.
fn window_under_load() -> (MailLab, String, Load, tests::Spawned) {
    let lab = MailLab::start();
    let before = lab.lists_on("host1");
    let load = lab.start_load();
    lab.prepare();
    let run = lab.spawn("run");
    (lab, before, load, run)
}

#[test]
fn kill_9_inside_the_window_then_resume_completes_and_loses_nothing() {
    let (lab, before, load, mut run) = window_under_load();
    let limit = Duration::from_secs(240);
    // Killed while mailman stops, while the queue moves, while fermium's
    // mailman starts: each time `resume` takes over from the journal.
    for step in ["stop-mailman", "rsync-exim-spool", "start-mailman-fermium"] {
        run.wait_until(limit, &format!("start of `{step}`"), || {
            started(&lab.journal, step)
        });
        run.kill();
        let _dirs = tests::run_dir_in(&run.output());
        run = lab.spawn("resume");
    }
    assert_eq!(run.wait(limit), Some(0), "{}", run.output());
    lab.finish(load, &before);
}

#[test]
fn the_link_to_sodium_dropped_while_mailman_stops_leaves_the_step_in_doubt_and_its_check_decides() {
    let (lab, before, load, mut run) = window_under_load();
    let limit = Duration::from_secs(240);
    run.wait_until(limit, "start of `stop-mailman`", || {
        started(&lab.journal, "stop-mailman")
    });
    // `mailman-ctl stop` takes seconds: drop sodium's connections under it.
    std::thread::sleep(Duration::from_millis(500));
    let killed = lab.lab.kill_ssh_sessions("host1");
    assert!(!killed.is_empty(), "no SSH session to sodium to drop");
    let code = run.wait(limit);
    let _dirs = tests::run_dir_in(&run.output());
    let entries = tests::journal_entries(&lab.journal);
    let describe = || format!("{}\n{entries:#?}", run.output());
    assert_eq!(code, Some(0), "{}", describe());
    let in_doubt = tests::position(&entries, 0, |e| {
        tests::is_event(e, "step_in_doubt", "stop-mailman")
    })
    .unwrap_or_else(|| panic!("`stop-mailman` was not in doubt\n{}", describe()));
    let checked = tests::position(&entries, in_doubt, |e| {
        tests::is_event(e, "checked", "stop-mailman")
    })
    .unwrap_or_else(|| panic!("its check did not decide\n{}", describe()));
    if entries[checked]["event"]["done"] == false {
        tests::position(&entries, checked, |e| {
            tests::is_event(e, "step_succeeded", "stop-mailman")
        })
        .unwrap_or_else(|| panic!("the step was not run again\n{}", describe()));
    }
    lab.finish(load, &before);
}

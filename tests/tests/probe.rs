//! `cutover probe`: a read-only look at the lab's hosts, DNS and each step
//! of `examples/lab/cutover.ron`. It reports every host, key, program and
//! the pending copy; each thing broken in the lab (a changed host key,
//! rsync missing from a host's PATH, a rotated TSIG key, the record already
//! switched, a full destination) becomes its blocker; the lab is the same,
//! file for file, record and service, after every probe; and the probe's
//! record moves `simulate --measured`'s estimate of the copy to what was
//! measured.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::lab::{Lab, RECORD};
use tests::{edit, workspace_file, Cutover, Run};

/// A lab with two hosts, DNS, the service on host1 and `data_mb` of data.
fn probe_lab(data_mb: u32) -> Lab {
    Lab::builder()
        .hosts(2)
        .dns()
        .service()
        .data_mb(data_mb)
        .start()
        .expect("the lab starts")
}

/// Every file under a directory (its contents and mode; logs aside, which
/// sshd, named and exim write on every connection: `*.log`, and what is in
/// a `log` or `logs` directory) and every directory in it.
pub(crate) type Tree = BTreeMap<PathBuf, (u32, Vec<u8>)>;

/// The [`Tree`] under `dir`.
pub(crate) fn tree(dir: &Path) -> Tree {
    fn walk(dir: &Path, files: &mut Tree) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{e}"));
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                files.insert(path.clone(), (mode, Vec::new()));
                walk(&path, files);
            } else if path.extension().is_none_or(|e| e != "log")
                && !dir.ends_with("log")
                && !dir.ends_with("logs")
            {
                let bytes = if meta.is_file() {
                    fs::read(&path).unwrap_or_default()
                } else {
                    Vec::new()
                };
                files.insert(path, (mode, bytes));
            }
        }
    }
    let mut files = Tree::new();
    walk(dir, &mut files);
    files
}

/// What changed between two trees, a line each.
pub(crate) fn tree_changes(before: &Tree, after: &Tree) -> Vec<String> {
    let mut changed: Vec<String> = Vec::new();
    for (path, seen) in before {
        match after.get(path) {
            None => changed.push(format!("{} removed", path.display())),
            Some(now) if now != seen => changed.push(format!("{} changed", path.display())),
            _ => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        changed.push(format!("{} created", path.display()));
    }
    changed
}

/// What a probe must leave as it found it: the lab's [`Tree`], what the
/// record serves, and whether the service runs on each host.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    files: Tree,
    record: Vec<(u32, std::net::Ipv4Addr)>,
    services: Vec<bool>,
}

fn snapshot(lab: &Lab) -> Snapshot {
    let record = lab
        .lookup(RECORD)
        .into_iter()
        .map(|r| (r.ttl, r.address))
        .collect();
    let services = ["host1", "host2"]
        .iter()
        .map(|h| lab.service(h, "status").status.success())
        .collect();
    Snapshot {
        files: tree(lab.dir()),
        record,
        services,
    }
}

/// Asserts nothing of the lab changed, naming what did.
#[track_caller]
fn assert_unchanged(before: &Snapshot, lab: &Lab, what: &str) {
    let after = snapshot(lab);
    if *before == after {
        return;
    }
    let mut changed = tree_changes(&before.files, &after.files);
    if before.record != after.record {
        changed.push(format!(
            "{RECORD}: {:?} -> {:?}",
            before.record, after.record
        ));
    }
    if before.services != after.services {
        changed.push(format!(
            "services running: {:?} -> {:?}",
            before.services, after.services
        ));
    }
    panic!("{what} changed the lab:\n  {}", changed.join("\n  "));
}

/// `cutover probe PLAN --json --record RECORD EXTRA...` with the lab's
/// variables; the record goes outside the lab.
fn probe(lab: &Lab, plan: &Path, record: &Path, extra: &[&str]) -> Run {
    lab.cutover()
        .arg("probe")
        .arg(plan)
        .arg("--json")
        .arg("--record")
        .arg(record)
        .args(extra)
        .timeout(Duration::from_secs(120))
        .run()
}

/// The findings of a probe's JSON.
fn findings(run: &Run) -> Vec<Value> {
    run.json()["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {}", run.describe()))
        .clone()
}

/// The findings of `kind` (and `severity`), as `step [host]: message`.
pub(crate) fn of_kind(run: &Run, severity: &str, kind: &str) -> Vec<String> {
    findings(run)
        .iter()
        .filter(|f| f["kind"] == kind && f["severity"] == severity)
        .map(|f| {
            format!(
                "{} [{}]: {}",
                f["step"].as_str().unwrap_or("-"),
                f["host"].as_str().unwrap_or("-"),
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Asserts the probe exited 1 with exactly one blocker, of `kind`, whose
/// text contains each of `words`.
#[track_caller]
fn assert_one_blocker(run: &Run, kind: &str, words: &[&str]) {
    run.assert_code(1);
    let blockers: Vec<String> = findings(run)
        .iter()
        .filter(|f| f["severity"] == "blocker")
        .map(|f| format!("{}: {}", f["kind"], f["message"]))
        .collect();
    let found = of_kind(run, "blocker", kind);
    assert!(
        found.len() == 1 && blockers.len() == 1,
        "expected one `{kind}` blocker, got {blockers:#?}\n{}",
        run.describe()
    );
    for word in words {
        assert!(
            found[0].contains(word),
            "the `{kind}` blocker does not say `{word}`: {}",
            found[0]
        );
    }
}

#[test]
fn a_probe_reports_hosts_programs_and_the_pending_copy_and_changes_nothing() {
    let lab = probe_lab(4);
    let plan = workspace_file("examples/lab/cutover.ron");
    let scratch = tests::temp_dir("cutover-probe");
    let record = scratch.path().join("lab.probe");
    let before = snapshot(&lab);
    let run = probe(&lab, &plan, &record, &[]);
    run.assert_code(0);
    assert_unchanged(&before, &lab, "a probe");
    let json = run.json();
    assert_eq!(json["blockers"], 0, "{}", run.describe());
    // Every host: reached with the key on record, and as whom.
    let reached = of_kind(&run, "fact", "host-reached");
    for host in ["host1", "host2"] {
        let address = &lab.host(host).address;
        assert!(
            reached.iter().any(|f| f.contains(&format!("[{host}]"))
                && f.contains(address.to_string().as_str())
                && f.contains("ssh-ed25519 SHA256:")),
            "{host} is not reported reached: {reached:#?}"
        );
        assert!(
            reached
                .iter()
                .any(|f| f.contains(&format!("[{host}]")) && f.contains(lab.user())),
            "{host}: whom commands run as is not said: {reached:#?}"
        );
    }
    // The DNS server, its key, and the record as the plan expects it.
    assert_eq!(of_kind(&run, "fact", "dns-answered").len(), 1);
    let record_facts = of_kind(&run, "fact", "record-as-expected");
    assert!(
        record_facts
            .iter()
            .any(|f| f.starts_with("lower-ttl") && f.contains("as the plan expects")),
        "{record_facts:#?}"
    );
    // Programs: rsync on both ends, the service's scripts.
    let programs = of_kind(&run, "fact", "program-found");
    for host in ["host1", "host2"] {
        assert!(
            programs
                .iter()
                .any(|f| f.starts_with(&format!("final-rsync [{host}]")) && f.contains("rsync")),
            "rsync on {host} is not reported: {programs:#?}"
        );
    }
    let services = of_kind(&run, "fact", "service-state");
    assert!(
        services
            .iter()
            .any(|f| f.starts_with("stop-host1 [host1]") && f.contains("is running")),
        "{services:#?}"
    );
    // The pending copy: the 4 MiB of data and its index, at a measured rate.
    let copies = json["copies"].as_array().expect("copies");
    assert_eq!(copies.len(), 1, "{copies:#?}");
    let copy = &copies[0];
    assert_eq!(copy["step"], "final-rsync");
    let bytes = copy["bytes"].as_u64().expect("bytes");
    assert!(
        (4 << 20..5 << 20).contains(&bytes),
        "pending {bytes} bytes, not the lab's 4 MiB: {copy}"
    );
    assert!(copy["files"].as_u64().is_some_and(|f| f >= 2), "{copy}");
    assert!(copy["rate"].is_array(), "no rate measured: {copy}");
    let expected = copy["expected_secs"].as_f64().expect("an expected time");
    assert!(expected > 0.0 && expected < 30.0, "{copy}");
    // The record: a probe_started and the copy's measurement.
    let text = fs::read_to_string(&record).expect("the probe's record is written");
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            v["entry"]["type"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(kinds, ["probe_started", "probed"], "{text}");

    // `simulate --measured` with the record: the copy's estimate moves from
    // the plan's model (1 to 30 seconds) to what the probe measured.
    let copy_mean = |extra: &[&str]| -> f64 {
        let run = lab
            .cutover()
            .arg("simulate")
            .arg(&plan)
            .args(["--runs", "2000", "--json"])
            .args(extra)
            .run();
        run.assert_code(0);
        run.json()["tail"]["drivers"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["step"] == "final-rsync"))
            .and_then(|d| d["mean_s"].as_f64())
            .unwrap_or_else(|| panic!("no final-rsync in {}", run.describe()))
    };
    let modelled = copy_mean(&[]);
    let measured = copy_mean(&["--measured", record.to_str().expect("UTF-8")]);
    assert!(
        modelled > 10.0,
        "the plan's model gives {modelled} s for the copy"
    );
    assert!(
        (measured - expected).abs() < expected.max(0.5),
        "with the probe's record the copy takes {measured} s in simulation, the probe \
         expects {expected} s (the model alone: {modelled} s)"
    );
    // `check` takes the record for its announced-window rule, and a second
    // probe replaces the record, never a journal.
    lab.cutover()
        .arg("check")
        .arg(&plan)
        .arg("--measured")
        .arg(&record)
        .run()
        .assert_code(0);
    let journal = scratch.path().join("lab.journal");
    fs::write(&journal, "not a probe's record\n").expect("writable");
    let refused = probe(&lab, &plan, &journal, &[]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("is not a probe's record"),
        "{}",
        refused.describe()
    );
    assert_eq!(
        fs::read_to_string(&journal).expect("readable"),
        "not a probe's record\n"
    );
}

#[test]
fn each_thing_broken_in_the_lab_is_its_blocker_and_the_probe_changes_nothing() {
    let lab = probe_lab(1);
    let plan = workspace_file("examples/lab/cutover.ron");
    let scratch = tests::temp_dir("cutover-probe");
    let record = scratch.path().join("lab.probe");

    // A changed host key: host2's key on record for host1, and host1's for host2.
    let keys = fs::read_to_string(lab.known_hosts()).expect("known_hosts");
    let keys: Vec<(&str, &str)> = keys.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(keys.len(), 2);
    let swapped = scratch.path().join("swapped_known_hosts");
    fs::write(
        &swapped,
        format!("{} {}\n{} {}\n", keys[0].0, keys[1].1, keys[1].0, keys[0].1),
    )
    .expect("a file can be written");
    let before = snapshot(&lab);
    let known = fs::read(&swapped).expect("readable");
    let run = probe(
        &lab,
        &plan,
        &record,
        &["--known-hosts", swapped.to_str().expect("UTF-8")],
    );
    run.assert_code(1);
    let changed = of_kind(&run, "blocker", "host-key-changed");
    assert_eq!(changed.len(), 2, "{changed:#?}\n{}", run.describe());
    assert!(
        changed.iter().all(|f| f.contains("CHANGED")),
        "{changed:#?}"
    );
    assert_eq!(
        fs::read(&swapped).expect("readable"),
        known,
        "the probe wrote to known_hosts"
    );
    assert_unchanged(&before, &lab, "a probe with a changed host key");

    // A rotated TSIG key: the plan's key file holds another secret.
    let rotated = lab.write_tsig_key("rotated.key", "lab-key");
    let rotated_plan = lab.dir().join("rotated.ron");
    fs::write(
        &rotated_plan,
        edit(
            &lab.example_plan(),
            r#"TsigFile("{{lab_dir}}/tsig.key")"#,
            &format!("TsigFile({:?})", rotated.display().to_string()),
        ),
    )
    .expect("a plan can be written");
    let before = snapshot(&lab);
    let run = probe(&lab, &rotated_plan, &record, &[]);
    assert_one_blocker(&run, "tsig-refused", &["BADSIG"]);
    assert_unchanged(&before, &lab, "a probe with a rotated TSIG key");

    // The record already switched to host2.
    let host1 = lab.host("host1").address.to_string();
    let host2 = lab.host("host2").address.to_string();
    let update = |address: &str| {
        let out = lab.nsupdate(
            &lab.dir().join("tsig.key"),
            &format!("update delete {RECORD} A\nupdate add {RECORD} 30 A {address}"),
        );
        assert!(out.status.success(), "nsupdate: {out:?}");
    };
    update(&host2);
    let before = snapshot(&lab);
    let run = probe(&lab, &plan, &record, &[]);
    assert_one_blocker(
        &run,
        "record-not-as-expected",
        &[&host2, &host1, "`switch-dns`"],
    );
    assert_unchanged(&before, &lab, "a probe of a switched record");
    update(&host1);

    // rsync missing from host2's PATH: its sshd gives sessions a PATH of
    // every program of /usr/bin but rsync.
    let bin = lab.dir().join("no-rsync-bin");
    fs::create_dir(&bin).expect("a directory can be made");
    for entry in fs::read_dir("/usr/bin").expect("/usr/bin").flatten() {
        if entry.file_name() != "rsync" {
            let _ = std::os::unix::fs::symlink(entry.path(), bin.join(entry.file_name()));
        }
    }
    let sshd_config = lab.dir().join("host2/sshd_config");
    let config = fs::read_to_string(&sshd_config).expect("host2's sshd_config");
    let path_line = config
        .lines()
        .find(|l| l.starts_with("SetEnv PATH="))
        .expect("a PATH line");
    let path = path_line
        .split_whitespace()
        .nth(1)
        .expect("PATH=...")
        .to_owned();
    let host2_bin = lab.dir().join("host2/bin");
    let without = format!("PATH={}:{}", host2_bin.display(), bin.display());
    fs::write(&sshd_config, config.replace(&path, &without)).expect("writable");
    reload_sshd(&lab, "host2", "command -v rsync || echo none", "none");
    let before = snapshot(&lab);
    let run = probe(&lab, &plan, &record, &[]);
    assert_one_blocker(&run, "missing-program", &["final-rsync [host2]", "rsync"]);
    assert_unchanged(&before, &lab, "a probe without rsync on host2");
    fs::write(&sshd_config, &config).expect("writable");
    reload_sshd(
        &lab,
        "host2",
        "command -v rsync || echo none",
        "/usr/bin/rsync",
    );

    // A full destination: host2's data directory on a 64 KiB file system.
    let srv = lab.dir().join("host2/srv");
    let _mount = Tmpfs::mount(&srv, "64k");
    let before = snapshot(&lab);
    let run = probe(&lab, &plan, &record, &[]);
    assert_one_blocker(&run, "no-room", &["final-rsync [host2]", "free"]);
    assert_unchanged(&before, &lab, "a probe of a full destination");
}

/// Makes `host`'s sshd read its config again (SIGHUP: it re-executes
/// itself), and waits until a new session's `command` prints `expect`.
fn reload_sshd(lab: &Lab, host: &str, command: &str, expect: &str) {
    let pid = fs::read_to_string(lab.dir().join(format!("{host}/sshd.pid"))).expect("a pidfile");
    let status = Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -HUP {pid}");
    let start = Instant::now();
    let mut seen = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        let out = lab.ssh(host, command);
        seen = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if seen == expect {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{host}'s sshd did not take its new config: `{command}` printed {seen:?}, not {expect:?}"
    );
}

/// A tmpfs of `size` mounted over a directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=1777"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs as a full destination and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// A plan's own `probe`, programs that are missing or cannot be looked at,
/// a check that passes already, and the exit codes, on this machine's
/// `local` host.
#[test]
fn a_steps_own_probe_and_missing_programs_are_reported_locally() {
    let plan = tests::local_demo_plan(
        "probe demo",
        r#"
            Step(id: "missing", action: Shell(on: "local", run: "no-such-program-cutover --now",
                 revert: Run("true")), check: Run("false")),
            Step(id: "vouched", action: Shell(on: "local", run: "GREETING=hi no-such-program-either",
                 revert: Run("true")), check: Run("false"), probe: Run("exit 3")),
            Step(id: "opaque", action: Shell(on: "local", run: "$(echo true)", revert: Run("true")),
                 check: Run("true")),
        "#,
    );
    let run = Cutover::new()
        .arg("probe")
        .plan_text(&plan)
        .args(["--json", "--no-record"])
        .run();
    run.assert_code(1);
    let missing = of_kind(&run, "blocker", "missing-program");
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert!(missing[0].starts_with("missing [local]"), "{missing:#?}");
    let failed = of_kind(&run, "blocker", "probe-failed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].starts_with("vouched"), "{failed:#?}");
    let opaque = of_kind(&run, "warning", "not-probeable");
    assert!(
        opaque.iter().any(|f| f.starts_with("opaque")),
        "{opaque:#?}"
    );
    let done = of_kind(&run, "warning", "already-done");
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(done[0].starts_with("opaque"), "{done:#?}");
    assert!(
        of_kind(&run, "fact", "program-found")
            .iter()
            .any(|f| f.starts_with("make-dir [local]") && f.contains("mkdir")),
        "{}",
        run.describe()
    );

    // An invalid plan: exit 2; an unknown phase: exit 1, nothing probed.
    let invalid = Cutover::new()
        .arg("probe")
        .plan_text(&edit(&plan, r#"id: "opaque""#, r#"id: "missing""#))
        .arg("--no-record")
        .run();
    invalid.assert_code(2);
    let phase = Cutover::new()
        .arg("probe")
        .plan_text(&plan)
        .args(["--phase", "later", "--no-record"])
        .run();
    phase.assert_code(1);
    assert!(
        phase.stderr.contains("no phase `later`"),
        "{}",
        phase.describe()
    );
}

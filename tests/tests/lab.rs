//! The lab fixture (`tests::lab`, `scripts/lab`) gives real servers that
//! behave as plans expect: SSH hosts that trust only the lab's keys both
//! ways, a DNS server that takes only signed updates, a service run by its
//! script, and nothing left running afterwards.

use std::fs;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tests::lab::{is_running, same_tree, Lab, RECORD};
use tests::{workspace_file, Cutover};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ssh_hosts_accept_the_lab_key_and_refuse_unknown_host_keys() {
    let lab = Lab::builder().hosts(2).start().expect("the lab starts");
    for host in lab.hosts() {
        let who = lab.ssh_ok(
            &host.name,
            "id -un; echo $LAB_HOST; getent passwd $(id -un) | cut -d: -f7",
        );
        let who: Vec<&str> = who.lines().collect();
        assert_eq!(who[..2], [lab.user(), host.name.as_str()]);
        // Run as root, the lab logs in its own user, whose shell reads no rc
        // file (otherwise it can only log in the user running it).
        if lab.user() == "cutover-lab" {
            assert_eq!(who[2], "/bin/sh");
        }
    }
    let known_hosts = fs::read_to_string(lab.known_hosts()).expect("known_hosts is readable");
    let keys: Vec<&str> = known_hosts.lines().collect();
    assert_eq!(keys.len(), 2, "{known_hosts}");
    for (line, host) in keys.iter().zip(lab.hosts()) {
        let prefix = format!("[{}]:{} ssh-ed25519 ", host.address, host.ssh_port);
        assert!(
            line.starts_with(&prefix),
            "{line:?} does not start with {prefix:?}"
        );
    }

    // No key on record for the host: refused.
    let empty = lab.dir().join("empty_known_hosts");
    fs::write(&empty, "").expect("a file can be written");
    let unknown = lab
        .ssh_command("host1")
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.display()))
        .arg("true")
        .output()
        .expect("ssh runs");
    assert!(
        !unknown.status.success(),
        "an unknown host key was accepted"
    );
    assert!(
        text(&unknown.stderr).contains("Host key verification failed"),
        "{}",
        text(&unknown.stderr)
    );

    // host2's key on record for host1's address: a changed key, refused.
    let swapped = lab.dir().join("swapped_known_hosts");
    let host2_key = keys[1].split_once(' ').map(|(_, key)| key).expect("a key");
    let host1 = lab.host("host1");
    fs::write(
        &swapped,
        format!("[{}]:{} {host2_key}\n", host1.address, host1.ssh_port),
    )
    .expect("a file can be written");
    let changed = lab
        .ssh_command("host1")
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", swapped.display()))
        .arg("true")
        .output()
        .expect("ssh runs");
    assert!(!changed.status.success(), "a changed host key was accepted");
    assert!(
        text(&changed.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        text(&changed.stderr)
    );

    // A client key the hosts do not know: refused.
    let stranger = lab.dir().join("stranger_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .expect("ssh-keygen runs");
    assert!(keygen.success());
    // `-o IdentityFile` would only add to the config's key: a config of its own.
    let config = lab.dir().join("stranger_ssh_config");
    fs::write(
        &config,
        fs::read_to_string(lab.ssh_config())
            .expect("ssh_config is readable")
            .replace(
                &lab.identity().display().to_string(),
                &stranger.display().to_string(),
            ),
    )
    .expect("a file can be written");
    let refused = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["host2", "true"])
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs");
    assert!(
        !refused.status.success(),
        "an unknown client key was accepted"
    );
    assert!(
        text(&refused.stderr).contains("Permission denied"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn host1_pushes_its_data_to_host2_with_rsync_over_ssh() {
    let lab = Lab::builder().hosts(2).start().expect("the lab starts");
    let (host1, host2) = (lab.host("host1"), lab.host("host2"));
    assert!(
        fs::read_dir(&host2.srv)
            .expect("host2 has a data directory")
            .next()
            .is_none(),
        "host2's data directory starts empty"
    );
    // The command line plan-steps' Rsync runs on the source host: plain
    // `ssh` there is the host's own (its key, the lab's known_hosts).
    let rsync = format!(
        "rsync -a --stats --delete -e 'ssh -p {} -o BatchMode=yes' {}/ {}@{}:{}/",
        host2.ssh_port,
        host1.srv.display(),
        lab.user(),
        host2.address,
        host2.srv.display()
    );
    let stats = lab.ssh_ok("host1", &rsync);
    assert!(
        stats.contains("Number of regular files transferred"),
        "{stats}"
    );
    same_tree(&host1.srv, &host2.srv).expect("host2 holds host1's data");
    let bytes: u64 = walk(&host1.srv)
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    assert!(
        bytes > 4_000_000,
        "host1 holds a few MB of data, not {bytes} bytes"
    );
    assert!(
        host1.srv.join("data/archive").is_dir(),
        "the data has a subdirectory"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("a directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn dns_serves_the_record_and_takes_only_signed_updates() {
    let lab = Lab::builder()
        .hosts(1)
        .dns()
        .start()
        .expect("the lab starts");
    let host1 = lab.host("host1").address;
    let before = lab.lookup(RECORD);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!((before[0].ttl, before[0].address), (30, host1));

    let key = lab.dns().tsig_key.clone();
    let signed = lab.nsupdate(
        &key,
        "update delete www.lab.test. A\nupdate add www.lab.test. 10 A 127.0.0.9",
    );
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let after = lab.lookup(RECORD);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].ttl, after[0].address),
        (10, Ipv4Addr::new(127, 0, 0, 9))
    );

    // The key's name with another secret: the signature does not verify.
    let wrong = lab.write_tsig_key("wrong.key", &lab.dns().tsig_name);
    let forged = lab.nsupdate(&wrong, "update add forged.lab.test. 10 A 127.0.0.66");
    assert!(
        !forged.status.success(),
        "an update with a wrong secret went through"
    );
    assert!(
        text(&forged.stderr).contains("BADSIG"),
        "{}",
        text(&forged.stderr)
    );
    // A key the server does not know.
    let other = lab.write_tsig_key("other.key", "other-key");
    let unknown = lab.nsupdate(&other, "update add forged.lab.test. 10 A 127.0.0.66");
    assert!(
        !unknown.status.success(),
        "an update with an unknown key went through"
    );
    assert!(
        text(&unknown.stderr).contains("BADKEY"),
        "{}",
        text(&unknown.stderr)
    );
    assert!(lab.lookup("forged.lab.test.").is_empty());
    assert_eq!(lab.resolve(RECORD), vec![Ipv4Addr::new(127, 0, 0, 9)]);
}

#[test]
fn the_service_serves_host1_data_and_obeys_its_script() {
    let lab = Lab::builder()
        .hosts(2)
        .service()
        .start()
        .expect("the lab starts");
    let host1 = lab.host("host1");
    let page = lab.get("host1", "/").expect("host1's service answers");
    assert_eq!(page.status, 200);
    assert!(
        text(&page.body).contains("www.lab.test"),
        "{}",
        text(&page.body)
    );
    let manifest = lab
        .get("host1", "/data/manifest.csv")
        .expect("host1's service answers");
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.body,
        fs::read(host1.srv.join("data/manifest.csv")).expect("the manifest is readable")
    );
    assert!(
        lab.get("host2", "/").is_err(),
        "host2's service is not running"
    );

    // Running, stopped, stopped again (a no-op): one SSH session, as a
    // plan's step would do it.
    let script = host1.service_script.display();
    lab.ssh_ok(
        "host1",
        &format!("{script} status && {script} stop && {{ {script} status; test $? -eq 3; }} && {script} stop"),
    );
    assert!(
        lab.get("host1", "/").is_err(),
        "a stopped service still answers"
    );
    let started = lab.service("host1", "start");
    assert!(started.status.success(), "{}", text(&started.stderr));
    assert_eq!(lab.get("host1", "/").expect("it answers again").status, 200);

    // The hook for a new host whose service does not come up.
    lab.refuse_service_start("host2", true);
    let script = lab.host("host2").service_script.display();
    let refused = lab.ssh(
        "host2",
        &format!("{script} status; test $? -eq 3 && {script} start"),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("refuses to start"),
        "{}",
        text(&refused.stderr)
    );
    lab.refuse_service_start("host2", false);
    assert!(lab.service("host2", "start").status.success());
    assert_eq!(lab.get("host2", "/").expect("host2 serves").status, 200);
}

#[test]
fn a_full_lab_fits_the_example_plan_and_leaves_nothing_running() {
    let lab = Lab::builder()
        .hosts(2)
        .dns()
        .service()
        .start()
        .expect("the lab starts");

    // examples/lab/cutover.ron with this lab's port and variables.
    let check = lab
        .cutover()
        .arg("check")
        .plan_text(&lab.example_plan())
        .run();
    check.assert_code(0);
    assert!(check.stdout.contains("0 warnings"), "{}", check.describe());
    let dry = lab
        .cutover()
        .args(["run", "--dry-run"])
        .plan_text(&lab.example_plan())
        .run();
    dry.assert_code(0);
    let host2 = lab.host("host2");
    for expected in [
        format!("{}/host2/srv/", lab.dir().display()),
        format!("{RECORD} -> {}", host2.address),
        host2.service_url(),
    ] {
        assert!(
            dry.stdout.contains(&expected),
            "no {expected:?} in\n{}",
            dry.describe()
        );
    }

    // A lab runs once per directory.
    let again = Command::new("bash")
        .arg(workspace_file("scripts/lab"))
        .arg("up")
        .arg(lab.dir())
        .output()
        .expect("scripts/lab runs");
    assert!(
        !again.status.success(),
        "a second lab started in the same directory"
    );
    assert!(
        text(&again.stderr).contains("already running"),
        "{}",
        text(&again.stderr)
    );

    // Every process the lab owns, the second service and an open SSH
    // session included.
    assert!(lab.service("host2", "start").status.success());
    let mut session = lab
        .ssh_command("host1")
        .arg("sleep 60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh starts");
    let pids = lab.pids();
    let names: Vec<&str> = pids.iter().map(|(what, _)| what.as_str()).collect();
    assert_eq!(
        names,
        [
            "host1 sshd",
            "host1 service",
            "host2 sshd",
            "host2 service",
            "named"
        ],
        "{pids:?}"
    );
    let status = Command::new("bash")
        .arg(workspace_file("scripts/lab"))
        .arg("status")
        .arg(lab.dir())
        .output()
        .expect("scripts/lab runs");
    assert!(status.status.success(), "{}", text(&status.stdout));

    drop(lab);
    for (what, pid) in &pids {
        assert!(
            !is_running(*pid),
            "{what} (pid {pid}) still runs after the lab was dropped"
        );
    }
    // Its session ended with its sshd.
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.try_wait().expect("ssh can be waited for").is_none() {
        if Instant::now() > deadline {
            let _ = session.kill();
            panic!("an SSH session outlived the lab");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn down_is_safe_to_repeat() {
    let lab = Lab::builder().hosts(1).start().expect("the lab starts");
    let pids = lab.pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let first = lab.down();
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("stopped host1/sshd"),
        "{}",
        text(&first.stdout)
    );
    assert!(!is_running(pids[0].1));
    let second = lab.down();
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("nothing running"),
        "{}",
        text(&second.stdout)
    );
    let status = Command::new("bash")
        .arg(workspace_file("scripts/lab"))
        .arg("status")
        .arg(lab.dir())
        .output()
        .expect("scripts/lab runs");
    assert_eq!(status.status.code(), Some(3), "{}", text(&status.stdout));
}

#[test]
fn the_lab_example_plan_passes_check_as_written() {
    let run = Cutover::new()
        .arg("check")
        .arg(workspace_file("examples/lab/cutover.ron"))
        .args(["--format", "json"])
        .run();
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["errors"], 0, "{}", run.describe());
    assert_eq!(json["warnings"], 0, "{}", run.describe());
}

/// `tests/examples.rs` reads only the top of `examples/`.
#[test]
fn the_lab_example_plan_prints_back_as_itself() {
    let path = workspace_file("examples/lab/cutover.ron");
    let text = fs::read_to_string(&path).expect("the example is readable");
    let load = |name: &str, text: &str| {
        let loaded = plan_core::load_str(
            plan_core::Source::new(name, text),
            &plan_core::Settings::default(),
        );
        loaded
            .plan
            .unwrap_or_else(|| panic!("{name} does not load:\n{text}"))
    };
    let printed = plan_core::to_ron(&load("cutover.ron", &text));
    let again = plan_core::to_ron(&load("cutover.ron printed", &printed));
    assert_eq!(again, printed);
}

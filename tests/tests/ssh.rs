//! `plan_steps::ssh` against real OpenSSH servers: the lab's hosts (sshd on
//! loopback with their own host keys, a login user with a clean shell).
//! Each test has its own lab, so they run in parallel. As every lab host
//! runs on this machine, tests may look at `/proc` to check on the remote
//! processes, but the transport's own claims are checked over SSH.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use plan_steps::local::{ExitKind, ShellCommand, ShellOutcome};
use plan_steps::ssh::{
    connect_all, HostKeyPolicy, KnownHosts, Session, SshConfig, SshEnv, SshError, SshErrorKind,
    SshTarget,
};
use tests::lab::Lab;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a test's async part, bounded (see [`tests::bounded`]).
#[track_caller]
fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    tests::bounded(runtime, future)
}

fn lab(hosts: u8) -> Lab {
    Lab::builder()
        .hosts(hosts)
        .start()
        .expect("the lab's sshd starts")
}

/// `host` of `lab` with the lab's client key.
fn target(lab: &Lab, host: &str) -> SshTarget {
    let h = lab.host(host);
    SshTarget::new(
        host,
        &h.address.to_string(),
        h.ssh_port,
        lab.user(),
        Some(lab.identity()),
    )
}

fn strict(path: &Path) -> KnownHosts {
    KnownHosts::new(path, HostKeyPolicy::Strict)
}

async fn connect(lab: &Lab, host: &str) -> Session {
    match Session::connect(&target(lab, host), &strict(&lab.known_hosts()), TIMEOUT).await {
        Ok(session) => session,
        Err(e) => panic!("{e}\n{}", lab.logs()),
    }
}

async fn connect_err(target: &SshTarget, known_hosts: &KnownHosts) -> SshError {
    match Session::connect(target, known_hosts, TIMEOUT).await {
        Ok(session) => panic!("connected to {session:?}"),
        Err(e) => e,
    }
}

async fn run(session: &Session, cmd: &ShellCommand) -> ShellOutcome {
    match session.exec(cmd, std::future::pending()).await {
        Ok(outcome) => outcome,
        Err(e) => panic!("`{}`: {e}", cmd.command),
    }
}

async fn run_text(session: &Session, command: &str) -> String {
    let outcome = run(session, &ShellCommand::new(command)).await;
    assert!(outcome.success(), "`{command}`: {outcome:?}");
    outcome.output
}

fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

/// Whether the host still runs process `pid` (a zombie does not run: this
/// container's init is slow to reap), asked over SSH.
async fn remote_alive(session: &Session, pid: i32) -> bool {
    let check = format!(
        "read -r l 2>/dev/null < /proc/{pid}/stat || {{ echo gone; exit 0; }}; \
         l=${{l##*') '}}; case $l in Z*|X*) echo gone;; *) echo alive;; esac"
    );
    run_text(session, &check).await.trim() == "alive"
}

/// Whether the host still runs any process of group `pgid`, asked over SSH.
async fn remote_group_alive(session: &Session, pgid: i32) -> bool {
    let check = format!(
        "for f in /proc/[0-9]*/stat; do read -r l 2>/dev/null < \"$f\" || continue; \
         l=${{l##*') '}}; set -- $l; \
         if [ \"$3\" = {pgid} ] && [ \"$1\" != Z ]; then echo alive; exit 0; fi; done; echo gone"
    );
    run_text(session, &check).await.trim() == "alive"
}

/// Waits until `pred` holds, up to ten seconds.
async fn eventually<F, Fut>(mut pred: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if pred().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The `ssh-ed25519 BASE64` of `host`'s line in the lab's known_hosts.
fn lab_host_key(lab: &Lab, host: &str) -> String {
    let h = lab.host(host);
    let name = format!("[{}]:{}", h.address, h.ssh_port);
    let text = std::fs::read_to_string(lab.known_hosts()).expect("the lab's known_hosts");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("{name} missing from {text}"));
    line.split_whitespace()
        .skip(1)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn commands_return_output_and_exit_codes() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;

        let ok = run(&session, &ShellCommand::new("true")).await;
        assert_eq!(ok.status, ExitKind::Exited(0));
        assert_eq!(ok.output, "");

        let three = run(
            &session,
            &ShellCommand::new("echo out; echo err >&2; exit 3"),
        )
        .await;
        assert_eq!(three.status, ExitKind::Exited(3));
        assert!(!three.success());
        assert_contains(&three.output, &["out\n", "err\n"]);
        assert_eq!(
            three.output.len(),
            8,
            "no marker left in {:?}",
            three.output
        );

        // The command reaches /bin/sh unchanged: quotes, `$`, `;`.
        let quoted = run_text(&session, r#"printf '%s|' "it's" "$LAB_HOST" '$HOME'; echo"#).await;
        assert_eq!(quoted, "it's|host1|$HOME|\n");

        // Stdin is empty.
        assert_eq!(run_text(&session, "cat; echo done").await, "done\n");

        // A command the shell saw die of SIGKILL.
        let killed = run(&session, &ShellCommand::new("kill -KILL $$")).await;
        assert_eq!(killed.status, ExitKind::Exited(137));

        // Output is kept bounded: head and tail.
        let big =
            ShellCommand::new("printf START; head -c 1000000 /dev/zero | tr '\\0' x; printf END")
                .with_output_limit(100);
        let big = run(&session, &big).await;
        assert!(big.success());
        assert_eq!(big.dropped_bytes, 5 + 1_000_000 + 3 - 100);
        assert!(big.output.starts_with("STARTxxx"), "{}", big.output);
        assert!(big.output.ends_with("xxxEND"), "{}", big.output);

        session.close().await;
    });
}

#[test]
fn stdout_and_stderr_are_read_together() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        let outcome = run(
            &session,
            &ShellCommand::new(
                "echo out-1; sleep 0.1; echo err-1 >&2; sleep 0.1; echo out-2; sleep 0.1; \
                 echo err-2 >&2",
            ),
        )
        .await;
        assert!(outcome.success());
        // Written 100 ms apart: the arrival order is the order written.
        assert_eq!(outcome.output, "out-1\nerr-1\nout-2\nerr-2\n");
        // stderr without a final newline keeps it so.
        let partial = run_text(&session, "printf 'no newline' >&2").await;
        assert_eq!(partial, "no newline");
    });
}

#[test]
fn a_deadline_kills_the_remote_process_group() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        let cmd = ShellCommand::new("sleep 300 & echo $!; sleep 301 & echo $!; wait")
            .with_deadline(Duration::from_millis(1500));
        let mut group = None;
        let outcome = session
            .exec_reporting(&cmd, std::future::pending(), |g| group = Some(g))
            .await
            .expect("the command runs");
        assert_eq!(outcome.status, ExitKind::TimedOut);
        assert!(
            outcome.elapsed >= Duration::from_millis(1500),
            "{outcome:?}"
        );
        // SIGTERM suffices: no need to wait out the grace period.
        assert!(outcome.elapsed < Duration::from_secs(3), "{outcome:?}");
        let pids: Vec<i32> = outcome
            .output
            .lines()
            .map(|l| l.parse().expect("a pid"))
            .collect();
        assert_eq!(pids.len(), 2, "{outcome:?}");
        let pgid = group.expect("the process group was reported");
        // Asked over a second connection: the sleeps and their group are gone.
        let other = connect(&lab, "host1").await;
        for pid in pids {
            assert!(!remote_alive(&other, pid).await, "sleep {pid} survived");
        }
        assert!(
            !remote_group_alive(&other, pgid).await,
            "group {pgid} survived"
        );
    });
}

#[test]
fn a_command_ignoring_sigterm_gets_sigkill_after_the_grace() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        let cmd = ShellCommand::new("trap '' TERM; sleep 300 & echo $!; echo ready; wait")
            .with_deadline(Duration::from_millis(500));
        let outcome = run(&session, &cmd).await;
        assert_eq!(outcome.status, ExitKind::TimedOut);
        let least = Duration::from_millis(500) + plan_steps::local::KILL_GRACE;
        assert!(outcome.elapsed >= least, "{outcome:?}");
        assert!(outcome.elapsed < Duration::from_secs(15), "{outcome:?}");
        // Output written before the kill is kept.
        assert!(outcome.output.ends_with("ready\n"), "{outcome:?}");
        let pid: i32 = outcome
            .output
            .lines()
            .next()
            .and_then(|l| l.parse().ok())
            .expect("a pid");
        assert!(
            !remote_alive(&session, pid).await,
            "sleep {pid} survived SIGKILL"
        );
    });
}

#[test]
fn cancelling_or_dropping_a_command_kills_its_group() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        let cmd = ShellCommand::new("sleep 300 & wait");

        let outcome = session
            .exec(&cmd, tokio::time::sleep(Duration::from_millis(500)))
            .await
            .expect("the command runs");
        assert_eq!(outcome.status, ExitKind::Cancelled);

        // Dropped once it runs: killed from a spawned task.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let running = session.exec_reporting(&cmd, std::future::pending(), |g| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(g);
            }
        });
        let pgid = tokio::select! {
            result = running => panic!("the command cannot end: {result:?}"),
            pgid = rx => pgid.expect("the group is reported"),
        };
        assert!(
            eventually(|| async { !remote_group_alive(&session, pgid).await }).await,
            "group {pgid} survived the drop"
        );
    });
}

#[test]
fn a_background_process_holding_the_output_does_not_hold_the_command() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        let outcome = run(&session, &ShellCommand::new("sleep 300 & echo $!; echo hi")).await;
        assert_eq!(outcome.status, ExitKind::Exited(0));
        assert!(outcome.elapsed < Duration::from_secs(5), "{outcome:?}");
        let mut lines = outcome.output.lines();
        let pid: i32 = lines.next().and_then(|l| l.parse().ok()).expect("a pid");
        assert_eq!(lines.next(), Some("hi"));
        // Left alone, as locally; this test cleans up after itself.
        assert!(remote_alive(&session, pid).await);
        run_text(&session, &format!("kill {pid}")).await;
    });
}

#[test]
fn commands_run_concurrently_on_one_session() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..8 {
            let session = session.clone();
            tasks.spawn(async move {
                let cmd = ShellCommand::new(format!("sleep 0.5; echo {n}; echo e{n} >&2"));
                (n, session.exec(&cmd, std::future::pending()).await)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (n, result) = joined.expect("the task finishes");
            let outcome = result.expect("the command runs");
            assert!(outcome.success());
            // Written at once to two streams: either may come first.
            let mut lines: Vec<&str> = outcome.output.lines().collect();
            lines.sort_unstable();
            assert_eq!(lines, [format!("{n}"), format!("e{n}")], "{outcome:?}");
        }
        // Eight half-second sleeps, at once.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    });
}

/// Channels of one session that end in one burst, many times over: a stress
/// test of the socket's wake-ups. A libssh2 call of one task can read the
/// packets of every channel off the socket; the socket's watcher used to
/// start a new round of retries only when it still found unread bytes, so
/// such a burst, taken by another task first, could leave a command waiting
/// for ever (seen once in `commands_run_concurrently_on_one_session`, every
/// task parked; this test did not catch the old code in five runs: the race
/// is narrow). Each command is bounded, so a lost wake-up fails here.
#[test]
fn commands_ending_in_one_burst_on_one_session_all_finish() {
    let lab = lab(1);
    block_on(async {
        let session = connect(&lab, "host1").await;
        for round in 0..12 {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..24 {
                let session = session.clone();
                tasks.spawn(async move {
                    let cmd = ShellCommand::new(format!("sleep 0.2; echo {n}; echo e{n} >&2"));
                    let run = session.exec(&cmd, std::future::pending());
                    (n, tokio::time::timeout(Duration::from_secs(20), run).await)
                });
            }
            // Something else busy on the runtime, as on a loaded machine.
            let spinner = tokio::spawn(async {
                loop {
                    tokio::task::yield_now().await;
                }
            });
            while let Some(joined) = tasks.join_next().await {
                let (n, result) = joined.expect("the task finishes");
                let outcome = result
                    .unwrap_or_else(|_| panic!("round {round}: command {n} never ended"))
                    .expect("the command runs");
                assert!(outcome.success(), "{outcome:?}");
            }
            spinner.abort();
        }
    });
}

#[test]
fn an_unknown_host_key_is_refused_when_strict_and_added_with_accept_new() {
    let lab = lab(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("known_hosts");
    let h = lab.host("host1");
    let name = format!("[{}]:{}", h.address, h.ssh_port);
    block_on(async {
        let e = connect_err(&target(&lab, "host1"), &strict(&file)).await;
        assert_eq!(e.kind(), SshErrorKind::HostKeyUnknown);
        assert_contains(
            &e.to_string(),
            &[
                "host1: ",
                &name,
                "ssh-ed25519 SHA256:",
                &file.display().to_string(),
                "not known",
            ],
        );
        assert!(!file.exists(), "nothing is written when strict");

        let accept = KnownHosts::new(&file, HostKeyPolicy::AcceptNew);
        let session = Session::connect(&target(&lab, "host1"), &accept, TIMEOUT)
            .await
            .expect("trusted on first use");
        assert_eq!(run_text(&session, "echo $LAB_HOST").await, "host1\n");
        let written = std::fs::read_to_string(&file).expect("the key was written");
        assert_eq!(written, format!("{name} {}\n", lab_host_key(&lab, "host1")));

        // Now known: strict accepts it, and nothing more is written.
        Session::connect(&target(&lab, "host1"), &strict(&file), TIMEOUT)
            .await
            .expect("known now");
        Session::connect(&target(&lab, "host1"), &accept, TIMEOUT)
            .await
            .expect("known now");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), written);
    });
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let lab = lab(2);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("known_hosts");
    let h = lab.host("host1");
    let name = format!("[{}]:{}", h.address, h.ssh_port);
    // host1 filed with host2's key: as if host1 had been replaced.
    let text = format!("{name} {}\n", lab_host_key(&lab, "host2"));
    std::fs::write(&file, &text).expect("write");
    block_on(async {
        for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
            let e = connect_err(&target(&lab, "host1"), &KnownHosts::new(&file, policy)).await;
            assert_eq!(e.kind(), SshErrorKind::HostKeyChanged, "{e}");
            assert_contains(
                &e.to_string(),
                &[
                    "CHANGED",
                    &name,
                    &format!("{}:1", file.display()),
                    "ssh-keygen -R",
                ],
            );
        }
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            text,
            "file untouched"
        );
    });
}

#[test]
fn hashed_known_hosts_entries_match() {
    let lab = lab(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("known_hosts");
    std::fs::copy(lab.known_hosts(), &file).expect("copy");
    let hashed = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&file)
        .output()
        .expect("ssh-keygen runs");
    assert!(hashed.status.success(), "{hashed:?}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.starts_with("|1|"), "{text}");
    block_on(async {
        let session = Session::connect(&target(&lab, "host1"), &strict(&file), TIMEOUT)
            .await
            .expect("the hashed entry matches");
        assert_eq!(run_text(&session, "echo $LAB_HOST").await, "host1\n");
    });
}

#[test]
fn a_wrong_key_fails_with_a_clear_error() {
    let lab = lab(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = dir.path().join("stranger");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(made.status.success(), "{made:?}");
    let missing = dir.path().join("missing");
    block_on(async {
        let mut wrong = target(&lab, "host1");
        wrong.identity = Some(key.clone());
        wrong.fallback_identities = vec![missing.clone()];
        let e = connect_err(&wrong, &strict(&lab.known_hosts())).await;
        assert_eq!(e.kind(), SshErrorKind::Auth);
        assert_contains(
            &e.to_string(),
            &[
                &format!("cannot log in as {}@", lab.user()),
                "ssh-agent: not used",
                &format!("{}: refused by the server", key.display()),
                &format!("{}: absent", missing.display()),
            ],
        );

        let mut none = target(&lab, "host1");
        none.identity = Some(missing.clone());
        let e = connect_err(&none, &strict(&lab.known_hosts())).await;
        assert_eq!(e.kind(), SshErrorKind::Auth);
        assert_contains(
            &e.to_string(),
            &[&format!("{}: no such file", missing.display())],
        );

        // The right key after a wrong one.
        let mut second = target(&lab, "host1");
        second.identity = Some(key.clone());
        second.fallback_identities = vec![lab.identity()];
        Session::connect(&second, &strict(&lab.known_hosts()), TIMEOUT)
            .await
            .expect("the fallback key logs in");
    });
}

#[test]
fn hosts_resolve_through_the_ssh_config() {
    let lab = lab(1);
    // The lab's ssh_config names host1 with its address, port, user and key.
    let env = SshEnv {
        config_file: Some(lab.ssh_config()),
        ..SshEnv::new(lab.dir(), "nobody")
    };
    let config = SshConfig::load(&env).expect("the lab's ssh_config parses");
    let host = plan_core::Host {
        name: "web".into(),
        address: "host1".into(),
        user: None,
        port: None,
        identity: None,
        vars: Vec::new(),
        env: Vec::new(),
        span: plan_core::Span::default(),
    };
    let target = SshTarget::resolve(&host, &config, &env);
    let h = lab.host("host1");
    assert_eq!(target.name, "web");
    assert_eq!(target.address, h.address.to_string());
    assert_eq!(target.port, h.ssh_port);
    assert_eq!(target.user, lab.user());
    assert_eq!(target.identity, Some(lab.identity()));
    block_on(async {
        let session = Session::connect(&target, &strict(&lab.known_hosts()), TIMEOUT)
            .await
            .expect("connects through the alias");
        assert_eq!(run_text(&session, "echo $LAB_HOST").await, "host1\n");
    });
}

/// The parent of `pid`, from `/proc` (the lab's hosts run here).
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_connection_killed_mid_command_is_lost_and_in_doubt() {
    let lab = lab(1);
    let sshd: i32 = std::fs::read_to_string(&lab.host("host1").sshd_pidfile)
        .expect("the sshd pidfile")
        .trim()
        .parse()
        .expect("a pid");
    block_on(async {
        let session = connect(&lab, "host1").await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let sleep = ShellCommand::new("sleep 30");
        let running = session.exec_reporting(&sleep, std::future::pending(), |g| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(g);
            }
        });
        tokio::pin!(running);
        let pgid = tokio::select! {
            result = &mut running => panic!("the command cannot end: {result:?}"),
            pgid = rx => pgid.expect("the group is reported"),
        };
        // The session's sshd processes: the login shell's ancestors up to
        // (not including) the listening sshd this lab started.
        let mut chain = Vec::new();
        let mut pid = parent(pgid).expect("the shell's parent");
        while pid != sshd {
            chain.push(pid);
            pid = parent(pid).unwrap_or_else(|| panic!("{pid} is not under sshd {sshd}"));
        }
        assert!(!chain.is_empty());
        for pid in &chain {
            let _ = nix_kill(*pid);
        }
        let e = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("the loss is noticed")
            .expect_err("the connection is gone");
        assert_eq!(e.kind(), SshErrorKind::ConnectionLost, "{e}");
        assert!(e.is_in_doubt());
        assert_contains(&e.to_string(), &["host1: ", "may or may not have run"]);

        // A new session works, and shows why "in doubt": the command runs on.
        let again = session.reconnect().await.expect("reconnects");
        assert!(remote_group_alive(&again, pgid).await);
        run_text(&again, &format!("kill -s KILL -- -{pgid}")).await;
        assert!(eventually(|| async { !remote_group_alive(&again, pgid).await }).await);

        // The old session stays broken, and says so before running anything.
        let e = session
            .exec(&ShellCommand::new("true"), std::future::pending())
            .await
            .expect_err("the old session is gone");
        assert!(
            matches!(
                e.kind(),
                SshErrorKind::Connect | SshErrorKind::ConnectionLost
            ),
            "{e}"
        );
    });
}

/// SIGKILL to a process the lab's sshd started for this test's session.
fn nix_kill(pid: i32) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
}

#[test]
fn sessions_to_several_hosts_open_in_parallel() {
    let lab = lab(3);
    block_on(async {
        let names = ["host1", "host2", "host3"];
        let targets: Vec<SshTarget> = names.iter().map(|n| target(&lab, n)).collect();
        let mut with_stranger = targets.clone();
        with_stranger.push(SshTarget::new("nowhere", "127.0.0.1", 1, "x", None));
        let results = connect_all(
            &with_stranger,
            &strict(&lab.known_hosts()),
            TIMEOUT,
            with_stranger.len(),
        )
        .await;
        assert_eq!(results.len(), 4);
        for (name, result) in names.iter().zip(&results) {
            let session = result.as_ref().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(session.target().name, *name);
            assert_eq!(
                run_text(session, "echo $LAB_HOST").await,
                format!("{name}\n")
            );
        }
        let e = results[3].as_ref().expect_err("nothing listens there");
        assert_eq!(e.kind(), SshErrorKind::Connect);
        assert_contains(&e.to_string(), &["nowhere: cannot connect to 127.0.0.1:1"]);
    });
}

#[test]
fn targets_keep_the_plan_values() {
    // No lab needed: resolution against a config text.
    let env = SshEnv::new(PathBuf::from("/home/op"), "op");
    let config = SshConfig::parse(
        "Host db\n  HostName 10.1.1.1\n  User admin\n  Port 2200\n",
        Path::new("inline"),
        &env,
    )
    .expect("parses");
    let host = plan_core::Host {
        name: "db1".into(),
        address: "db".into(),
        user: Some("deploy".into()),
        port: None,
        identity: Some(PathBuf::from("~/.ssh/deploy")),
        vars: Vec::new(),
        env: Vec::new(),
        span: plan_core::Span::default(),
    };
    let target = SshTarget::resolve(&host, &config, &env);
    assert_eq!(
        (target.address.as_str(), target.port, target.user.as_str()),
        ("10.1.1.1", 2200, "deploy")
    );
    assert_eq!(target.identity, Some(PathBuf::from("/home/op/.ssh/deploy")));
}

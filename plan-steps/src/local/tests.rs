//! Tests of local commands: process groups, deadlines, output, leftovers, against real processes.

use super::*;

use std::path::Path;

/// A test's scratch directory; a file in it records pids.
fn scratch() -> tempfile::TempDir {
    // invariant: tests run where a temporary directory can be made.
    tempfile::tempdir().expect("a temporary directory")
}

fn shell(command: &str) -> ShellCommand {
    ShellCommand::new(command)
}

async fn run_ok(cmd: &ShellCommand) -> ShellOutcome {
    match run(cmd, std::future::pending()).await {
        Ok(outcome) => outcome,
        Err(e) => panic!("`{}` did not run: {e}", cmd.command),
    }
}

/// The pids written one per line to `file`.
fn pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether `pid` is a live process of group `pgid` (a zombie is not live;
/// a pid reused by a process of another group is not ours).
fn alive_in_group(pid: i32, pgid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            matches!(parse_stat(&stat), Some((state, g)) if g == pgid && state != 'Z' && state != 'X')
        }
        Err(_) => false,
    }
}

/// Writes `$$` (the shell, leader of the group) then runs `body`; the
/// body appends the pids it starts to the same file.
fn recording(file: &Path, body: &str) -> String {
    let file = file.display();
    format!("echo $$ > '{file}'; {body}")
}

/// Asserts that the shell and every recorded process are gone.
fn assert_all_gone(file: &Path, expected: usize) {
    let pids = pids(file);
    assert_eq!(pids.len(), expected, "pids recorded: {pids:?}");
    let pgid = pids[0];
    for pid in &pids {
        assert!(!alive_in_group(*pid, pgid), "process {pid} survived");
    }
}

/// Kills what a test left running on purpose.
fn cleanup(pids: &[i32]) {
    for pid in pids {
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
}

#[tokio::test]
async fn exit_codes_are_reported() {
    let ok = run_ok(&shell("true")).await;
    assert_eq!(ok.status, ExitKind::Exited(0));
    assert!(ok.success());

    let three = run_ok(&shell("exit 3")).await;
    assert_eq!(three.status, ExitKind::Exited(3));
    assert!(!three.success());

    let killed = run_ok(&shell("kill -KILL $$")).await;
    assert_eq!(killed.status, ExitKind::Signalled(9));
    assert!(!killed.success());
    assert_eq!(killed.status.to_string(), "killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn stdout_and_stderr_are_both_captured() {
    let outcome = run_ok(&shell(
        "echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2",
    ))
    .await;
    assert!(outcome.success());
    let out = &outcome.output;
    for line in ["out-1\n", "out-2\n", "err-1\n", "err-2\n"] {
        assert!(out.contains(line), "{line:?} missing from {out:?}");
    }
    // Order within one stream is kept; across streams it is arrival order.
    let at = |s: &str| out.find(s).unwrap_or(usize::MAX);
    assert!(
        at("out-1") < at("out-2") && at("err-1") < at("err-2"),
        "{out:?}"
    );
    assert_eq!(outcome.dropped_bytes, 0);
    assert_eq!(out.len(), 24);
}

#[tokio::test]
async fn stdin_is_empty() {
    let outcome = run_ok(&shell("cat; echo done").with_deadline(Duration::from_secs(30))).await;
    assert_eq!(outcome.status, ExitKind::Exited(0));
    assert_eq!(outcome.output, "done\n");
}

#[tokio::test]
async fn output_keeps_head_and_tail_and_counts_the_rest() {
    let cmd = shell("printf START; head -c 10000 /dev/zero | tr '\\0' x; printf END")
        .with_output_limit(100);
    let outcome = run_ok(&cmd).await;
    assert!(outcome.success());
    assert_eq!(outcome.dropped_bytes, 5 + 10_000 + 3 - 100);
    let (head, rest) = outcome.output.split_at(50);
    assert_eq!(head, format!("START{}", "x".repeat(45)));
    assert_eq!(
        rest,
        format!(
            "\n[... 9908 bytes of output left out ...]\n{}END",
            "x".repeat(47)
        )
    );
}

#[test]
fn stat_lines_parse_with_odd_names() {
    assert_eq!(
        parse_stat("4242 (my (odd) name) S 1 4240 4240 0 -1"),
        Some(('S', 4240))
    );
    assert_eq!(parse_stat("garbage"), None);
}

#[tokio::test]
async fn deadline_kills_the_whole_group() {
    let dir = scratch();
    let file = dir.path().join("pids");
    let body = format!(
        "sleep 300 & echo $! >> '{f}'; sleep 300 & echo $! >> '{f}'; wait",
        f = file.display()
    );
    let cmd = shell(&recording(&file, &body)).with_deadline(Duration::from_millis(500));
    let outcome = run_ok(&cmd).await;
    assert_eq!(outcome.status, ExitKind::TimedOut);
    assert!(!outcome.success());
    assert_all_gone(&file, 3);
    assert!(
        outcome.elapsed >= Duration::from_millis(500),
        "{:?}",
        outcome.elapsed
    );
    // SIGTERM suffices here: no need to wait out the grace period.
    assert!(
        outcome.elapsed < Duration::from_secs(20),
        "{:?}",
        outcome.elapsed
    );
}

#[tokio::test]
async fn cancelling_kills_the_whole_group() {
    let dir = scratch();
    let file = dir.path().join("pids");
    let body = format!("sleep 300 & echo $! >> '{}'; wait", file.display());
    let cmd = shell(&recording(&file, &body));
    // Cancels once both processes have started.
    let cancel = async {
        while pids(&file).len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let outcome = match run(&cmd, cancel).await {
        Ok(outcome) => outcome,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(outcome.status, ExitKind::Cancelled);
    assert_all_gone(&file, 2);
}

#[tokio::test]
async fn a_command_ignoring_sigterm_gets_sigkill_after_the_grace() {
    let dir = scratch();
    let file = dir.path().join("pids");
    let body = format!(
        "trap '' TERM; sleep 300 & echo $! >> '{}'; echo ready; wait",
        file.display()
    );
    let cmd = shell(&recording(&file, &body)).with_deadline(Duration::from_millis(500));
    let outcome = run_ok(&cmd).await;
    assert_eq!(outcome.status, ExitKind::TimedOut);
    assert_all_gone(&file, 2);
    // The grace period was waited out before SIGKILL.
    let least = Duration::from_millis(500) + KILL_GRACE;
    assert!(outcome.elapsed >= least, "{:?}", outcome.elapsed);
    assert!(
        outcome.elapsed < Duration::from_secs(30),
        "{:?}",
        outcome.elapsed
    );
    // Output written before the kill is kept.
    assert_eq!(outcome.output, "ready\n");
}

#[tokio::test]
async fn a_grandchild_ignoring_sigterm_is_killed_too() {
    let dir = scratch();
    let file = dir.path().join("pids");
    let body = format!(
        "(trap '' TERM; exec sleep 300) & echo $! >> '{}'; wait",
        file.display()
    );
    let cmd = shell(&recording(&file, &body)).with_deadline(Duration::from_millis(300));
    let outcome = run_ok(&cmd).await;
    assert_eq!(outcome.status, ExitKind::TimedOut);
    assert_all_gone(&file, 2);
}

#[tokio::test]
async fn elapsed_time_is_measured() {
    let outcome = run_ok(&shell("sleep 0.3")).await;
    assert!(outcome.success());
    assert!(
        outcome.elapsed >= Duration::from_millis(300),
        "{:?}",
        outcome.elapsed
    );
    assert!(
        outcome.elapsed < Duration::from_secs(20),
        "{:?}",
        outcome.elapsed
    );
}

#[tokio::test]
async fn a_background_process_holding_the_output_does_not_hold_the_run() {
    let dir = scratch();
    let file = dir.path().join("pids");
    let body = format!("sleep 300 & echo $! >> '{}'; echo hi", file.display());
    let outcome = run_ok(&shell(&recording(&file, &body))).await;
    let left = pids(&file);
    cleanup(&left[1..]);
    assert_eq!(outcome.status, ExitKind::Exited(0));
    assert_eq!(outcome.output, "hi\n");
    assert!(
        outcome.elapsed < Duration::from_secs(20),
        "{:?}",
        outcome.elapsed
    );
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    let dir = scratch();
    let file = dir.path().join("pids");
    let body = format!("sleep 300 & echo $! >> '{}'; wait", file.display());
    let cmd = shell(&recording(&file, &body));
    let mut running = Box::pin(run(&cmd, std::future::pending()));
    let until = Instant::now() + Duration::from_secs(10);
    while pids(&file).len() < 2 && Instant::now() < until {
        tokio::select! {
            result = &mut running => panic!("the command cannot finish: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    drop(running);
    // SIGKILL was sent on drop; death follows within moments.
    let pids = pids(&file);
    assert_eq!(pids.len(), 2, "{pids:?}");
    let until = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive_in_group(*p, pids[0])) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in &pids {
        assert!(!alive_in_group(*pid, pids[0]), "process {pid} survived");
    }
}

#[tokio::test]
async fn a_nul_byte_fails_to_spawn() {
    let result = run(&shell("echo a\0b"), std::future::pending()).await;
    assert!(
        matches!(result, Err(LocalError::Spawn { .. })),
        "{result:?}"
    );
}

#[test]
fn the_run_can_be_spawned_on_a_multi_threaded_runtime() {
    fn is_send<T: Send>(_: T) {}
    is_send(run(&shell("true"), std::future::pending::<()>()));
}

#[test]
fn exit_kinds_read_well() {
    assert_eq!(ExitKind::Exited(3).to_string(), "exited with status 3");
    assert_eq!(ExitKind::TimedOut.to_string(), "timed out");
    assert_eq!(ExitKind::Cancelled.to_string(), "cancelled");
    assert_eq!(
        ExitKind::Signalled(15).to_string(),
        "killed by signal 15 (SIGTERM)"
    );
}

//! Tests of the remote command wrapper and the leftover probe, against a real shell.

use super::*;

#[test]
fn commands_are_quoted_into_the_wrapper() {
    let wrapped = wrap("echo 'it''s' $HOME; exit 3", &[], "abc");
    assert_eq!(
        wrapped,
        "echo cutover-abc-pgid $$ >&2; /bin/sh -c 'echo '\\''it'\\'''\\''s'\\'' $HOME; exit 3'; \
             s=$?; printf '\\001cutover-abc-exit %s\\n' $s >&2; exit $s"
    );
}

#[test]
fn the_wrapper_runs_the_command_unchanged_and_reports() {
    // The wrapper through a real local shell, as a login shell would.
    let command = "echo out; echo \"err $((1+1))\" >&2; printf '%s' \"$0\"; exit 7";
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(wrap(command, &[], "n"))
        .output()
        .expect("sh runs");
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n/bin/sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut lines = stderr.lines();
    let pgid = lines.next().and_then(|l| l.strip_prefix("cutover-n-pgid "));
    assert!(pgid.is_some_and(|p| p.parse::<i32>().is_ok()), "{stderr}");
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["err 2", "\u{1}cutover-n-exit 7"]
    );
}

/// The plan's `env` reaches the command with its values intact, however
/// hostile (quotes, `$()`, newlines), and runs nothing.
#[test]
fn the_wrapper_exports_env_values_quoted() {
    let env = vec![
        ("PGHOST".to_owned(), "db one".to_owned()),
        (
            "TRICKY".to_owned(),
            "$(touch /tmp/cutover-env-pwned) `id` 'x'\ny".to_owned(),
        ),
    ];
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(wrap(r#"printf '%s|%s' "$PGHOST" "$TRICKY""#, &env, "n"))
        .output()
        .expect("sh runs");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "db one|$(touch /tmp/cutover-env-pwned) `id` 'x'\ny"
    );
    assert!(!std::path::Path::new("/tmp/cutover-env-pwned").exists());
}

/// Runs `script` with `/bin/sh`: whether it exited 0, and its stdout.
fn sh(script: &str) -> (bool, String) {
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_leftover_is_probed_and_stopped_only_while_its_leader_is_the_same_process() {
    use std::os::unix::process::CommandExt as _;
    // A real group on this machine.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .expect("sleep starts");
    let pgid = i32::try_from(child.id()).expect("a pid fits");
    let start = crate::local::start_time(pgid).expect("this machine has /proc");
    // The script reads the start time /proc gives.
    assert_eq!(sh(&start_time_script(pgid)), (true, format!("{start}\n")));
    let other = Some(start + 1);
    assert!(sh(&leftover_probe(pgid, Some(start))).0);
    assert!(!sh(&leftover_probe(pgid, other)).0, "another process's pid");
    assert!(sh(&leftover_probe(pgid, None)).0);
    // The kill leaves a process that is not ours alone ...
    let grace = Duration::from_millis(500);
    assert!(sh(&leftover_kill(pgid, other, grace).expect("a start time")).0);
    assert!(child.try_wait().expect("waitable").is_none(), "killed");
    // ... stops ours ...
    assert!(sh(&leftover_kill(pgid, Some(start), grace).expect("a start time")).0);
    let status = child.wait().expect("waitable");
    assert!(!status.success(), "{status}");
    // ... and, gone, it is no longer probed as running, nor has a start.
    assert!(!sh(&leftover_probe(pgid, Some(start))).0);
    assert_eq!(sh(&start_time_script(pgid)), (false, String::new()));
    // Without a start time nothing tells a reused pid: no kill.
    assert!(leftover_kill(pgid, None, Duration::ZERO).is_none());
}

#[test]
fn nonces_differ() {
    assert_ne!(nonce(), nonce());
    assert_eq!(nonce().len(), 16);
}

#[test]
fn the_kill_script_polls_for_the_grace() {
    let script = kill_script(42, Duration::from_secs(2));
    assert!(script.starts_with("P=42; alive() {"), "{script}");
    assert!(script.contains("kill -s TERM -- -$P"), "{script}");
    assert!(script.contains("[ $n -ge 20 ]"), "{script}");
}

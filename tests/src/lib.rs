//! The harness of cutover's integration tests: finds the `cutover` binary,
//! runs it on plans written into a private temporary directory, and gives
//! back what it did.
//!
//! It is for tests that treat `cutover` as users do, through its command
//! line, exit codes and output. It is not for unit tests of the libraries
//! (those live beside the code).
//!
//! ```no_run
//! use tests::Cutover;
//!
//! let run = Cutover::new()
//!     .arg("check")
//!     .plan_text("Plan(name: \"x\")")
//!     .args(["--format", "json"])
//!     .run();
//! run.assert_code(2);
//! assert_eq!(run.diagnostics()[0].code, "cutover::syntax");
//! ```
//!
//! The binary is `$CUTOVER_BIN` when set, else `target/debug/cutover` next
//! to the test executable. `cargo test` does not build it (it builds only
//! the test harness of a binary, not the binary itself), so build it first:
//! `cargo build -p plan-cli`, as `scripts/test` does.
#![warn(missing_docs)]

pub mod etcd;
pub mod http;
pub mod lab;
pub mod pty;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The environment variable naming the `cutover` binary to test.
pub const BIN_ENV: &str = "CUTOVER_BIN";

/// A run that takes longer than this is killed: `cutover`'s read-only verbs
/// answer in milliseconds, so this only catches a hang.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (where `Cargo.toml`, `examples/` and `tests/` are).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// A file of the workspace, e.g. `workspace_file("examples/mailman.ron")`.
pub fn workspace_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// The `cutover` binary under test; panics with what to do when it is
/// missing, or older than the sources it is built from.
pub fn cutover_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os(BIN_ENV) {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "${BIN_ENV} is {}, which is not a file",
                path.display()
            );
            return path;
        }
        // The test executable is target/<profile>/deps/integration-<hash>.
        let exe = std::env::current_exe().expect("the test knows its own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let bin = profile_dir.join(format!("cutover{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "the `cutover` binary is missing at {}: run `cargo build -p plan-cli` first \
             (`cargo test --workspace` builds only its test harness; `scripts/test` does both), \
             or set ${BIN_ENV} to the binary to test",
            bin.display()
        );
        if let Some(newer) = newer_source(&bin) {
            panic!(
                "{} is older than {}: run `cargo build -p plan-cli` so the tests do not \
                 test a stale binary (or set ${BIN_ENV})",
                bin.display(),
                newer.display()
            );
        }
        bin
    })
}

/// A source file of the binary that changed after the binary was built.
///
/// Cargo writes the binary's sources next to it (`cutover.d`, in Makefile
/// syntax); a source newer than the binary means it was not rebuilt.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let dep_info = fs::read_to_string(bin.with_extension("d")).ok()?;
    let (_, deps) = dep_info.lines().next()?.split_once(": ")?;
    // Paths are separated by spaces; a space inside a path is escaped.
    let deps = deps.replace("\\ ", "\0");
    deps.split_whitespace()
        .map(|d| PathBuf::from(d.replace('\0', " ")))
        .find(|source| {
            fs::metadata(source)
                .and_then(|m| m.modified())
                .is_ok_and(|changed: SystemTime| changed > built)
        })
}

enum Arg {
    Plain(OsString),
    /// The plan file written by [`Cutover::plan_bytes`], by its name.
    Plan,
}

/// One invocation of `cutover`, built up fluently and then [`run`](Cutover::run).
///
/// It runs in its own temporary directory (deleted afterwards), with no
/// `CUTOVER_VAR_*` variables from the test's environment.
pub struct Cutover {
    args: Vec<Arg>,
    env: Vec<(OsString, OsString)>,
    plan_name: String,
    plan: Option<Vec<u8>>,
    dir: tempfile::TempDir,
    timeout: Duration,
}

impl Default for Cutover {
    fn default() -> Self {
        Self::new()
    }
}

impl Cutover {
    /// An invocation without arguments yet.
    pub fn new() -> Self {
        Cutover {
            args: Vec::new(),
            env: Vec::new(),
            plan_name: "plan.ron".to_owned(),
            plan: None,
            timeout: RUN_TIMEOUT,
            dir: tempfile::Builder::new()
                .prefix("cutover-test-")
                .tempdir()
                .expect("a temporary directory can be created"),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(Arg::Plain(arg.as_ref().to_owned()));
        self
    }

    /// Adds arguments.
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// Writes `text` as the plan file and passes its name as the next argument.
    pub fn plan_text(self, text: &str) -> Self {
        self.plan_bytes(text.as_bytes())
    }

    /// Writes `bytes` as the plan file and passes its name as the next argument.
    pub fn plan_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.plan = Some(bytes.into());
        self.args.push(Arg::Plan);
        self
    }

    /// Names the plan file (default `plan.ron`); call before `plan_*`.
    pub fn plan_name(mut self, name: &str) -> Self {
        self.plan_name = name.to_owned();
        self
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// How long [`Cutover::run`] waits before it kills the run and fails
    /// (default [`RUN_TIMEOUT`]): for runs that really take minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The directory the run happens in (relative paths are relative to it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The command line, ready but for its output: the plan written, the
    /// environment without the caller's `CUTOVER_VAR_*`, the arguments; and
    /// how it is shown in messages.
    fn command(&self) -> (Command, String) {
        let plan_path = self.dir.path().join(&self.plan_name);
        if let Some(bytes) = &self.plan {
            fs::write(&plan_path, bytes).expect("the plan file can be written");
        }
        let mut command = Command::new(cutover_bin());
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CUTOVER_VAR_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut shown = vec!["cutover".to_owned()];
        for arg in &self.args {
            match arg {
                Arg::Plain(a) => {
                    command.arg(a);
                    shown.push(a.to_string_lossy().into_owned());
                }
                Arg::Plan => {
                    command.arg(&self.plan_name);
                    shown.push(self.plan_name.clone());
                }
            }
        }
        (command, shown.join(" "))
    }

    /// Starts `cutover` and leaves it running; see [`Spawned`].
    pub fn spawn(self) -> Spawned {
        let (mut command, shown) = self.command();
        let output = self.dir.path().join("cutover.out");
        let out = fs::File::create(&output).expect("the output file can be created");
        command
            .stdout(out.try_clone().expect("the output file can be shared"))
            .stderr(out);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cutover_bin().display()));
        Spawned {
            child,
            command: shown,
            output,
            _dir: self.dir,
        }
    }

    /// Runs `cutover` and waits for it (at most [`RUN_TIMEOUT`], or what
    /// [`Cutover::timeout`] said).
    pub fn run(self) -> Run {
        let timeout = self.timeout;
        let plan_path = self.dir.path().join(&self.plan_name);
        let (mut command, shown) = self.command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cutover_bin().display()));
        // Drain both pipes while waiting, so a chatty child never blocks.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let status = loop {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                break status;
            }
            if started.elapsed() > timeout {
                // Our own child, by its handle (its PID).
                let _ = child.kill();
                let _ = child.wait();
                let said = |h: thread::JoinHandle<Vec<u8>>| {
                    String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
                };
                panic!(
                    "`{shown}` did not finish in {timeout:?}; it said:\n{}{}",
                    said(stdout),
                    said(stderr)
                );
            }
            thread::sleep(Duration::from_millis(2));
        };
        let elapsed = started.elapsed();
        let text = |h: thread::JoinHandle<Vec<u8>>| {
            String::from_utf8_lossy(&h.join().expect("the pipe reader does not panic")).into_owned()
        };
        Run {
            command: shown,
            code: status.code(),
            stdout: text(stdout),
            stderr: text(stderr),
            elapsed,
            plan_path,
            _dir: self.dir,
        }
    }
}

/// A `cutover` started and left running, for tests that kill it, drop its
/// connections or watch its journal grow. Its stdout and stderr go to one
/// file, read by [`Spawned::output`]. Every wait is bounded; a `Spawned`
/// dropped while the program runs kills it (by its handle: our own child).
pub struct Spawned {
    child: std::process::Child,
    command: String,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file its stdout and stderr go to, for waits that read it while
    /// [`Spawned::poll_until`] holds the `Spawned`.
    pub fn output_file(&self) -> PathBuf {
        self.output.clone()
    }

    /// Everything it printed so far (stdout and stderr together).
    pub fn output(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// Polls `ready` every 10 ms until it holds (`true`), the program exits
    /// or `limit` passes (`false`).
    pub fn poll_until(&mut self, limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
        let started = Instant::now();
        loop {
            if ready() {
                return true;
            }
            if self.exited() || started.elapsed() > limit {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `ready` until it holds; fails the test with `what` and the
    /// output when the program exits first or `limit` passes (killing it).
    #[track_caller]
    pub fn wait_until(&mut self, limit: Duration, what: &str, ready: impl FnMut() -> bool) {
        if !self.poll_until(limit, ready) {
            let exited = self.exited();
            self.kill();
            panic!(
                "`{}`: no {what} {}\n{}",
                self.command,
                if exited {
                    "before it exited".to_owned()
                } else {
                    format!("after {limit:?}")
                },
                self.output()
            );
        }
    }

    /// Waits for the exit and returns the exit code (`None`: killed by a
    /// signal). Fails the test, killing the program, past `limit`.
    #[track_caller]
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("our child can be waited for") {
                return status.code();
            }
            if started.elapsed() > limit {
                self.kill();
                panic!(
                    "`{}` did not finish in {limit:?} (killed)\n{}",
                    self.command,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, by its handle, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.exited() {
            self.kill();
        }
    }
}

/// What one run of `cutover` did.
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Wall time from start to exit.
    pub elapsed: Duration,
    /// Where the plan file was written.
    pub plan_path: PathBuf,
    _dir: tempfile::TempDir,
}

/// One diagnostic of `cutover check --format json`.
#[derive(Clone, Debug)]
pub struct JsonDiagnostic {
    /// e.g. `cutover::unknown-host`.
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    /// The one-line message.
    pub message: String,
    /// The file, when the diagnostic has a place.
    pub file: Option<String>,
    /// 1-based line of the first label.
    pub line: Option<u64>,
    /// 1-based column of the first label.
    pub column: Option<u64>,
    /// The labelled places.
    pub labels: Vec<JsonLabel>,
    /// How to fix it.
    pub help: Option<String>,
}

/// A labelled place: byte offset and length into the plan file.
#[derive(Clone, Debug)]
pub struct JsonLabel {
    /// Byte offset.
    pub offset: usize,
    /// Length in bytes.
    pub length: usize,
    /// What the label says.
    pub text: String,
}

impl JsonLabel {
    /// The labelled bytes of `plan`, as text.
    pub fn slice<'a>(&self, plan: &'a str) -> &'a str {
        self.offset
            .checked_add(self.length)
            .and_then(|end| plan.get(self.offset..end))
            .unwrap_or_else(|| panic!("label {self:?} is not a slice of the plan"))
    }
}

impl Run {
    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?} in {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "wrong exit code\n{}",
            self.describe()
        );
        self
    }

    /// Asserts that it did not panic (nor crash by a signal).
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            self.code.is_some() && !self.stderr.contains("panicked"),
            "cutover panicked or crashed\n{}",
            self.describe()
        );
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.describe()))
    }

    /// The diagnostics of `check --format json`, in file order.
    #[track_caller]
    pub fn diagnostics(&self) -> Vec<JsonDiagnostic> {
        let json = self.json();
        let list = json["diagnostics"]
            .as_array()
            .unwrap_or_else(|| panic!("no `diagnostics` array\n{}", self.describe()));
        list.iter().map(parse_diagnostic).collect()
    }

    /// The codes of the diagnostics, in file order.
    #[track_caller]
    pub fn codes(&self) -> Vec<String> {
        self.diagnostics().into_iter().map(|d| d.code).collect()
    }

    /// The first diagnostic with this code; panics listing the codes there are.
    #[track_caller]
    pub fn diagnostic(&self, code: &str) -> JsonDiagnostic {
        let all = self.diagnostics();
        all.iter()
            .find(|d| d.code == code)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no `{code}` diagnostic; there are {:?}\n{}",
                    all.iter().map(|d| &d.code).collect::<Vec<_>>(),
                    self.describe()
                )
            })
    }
}

fn parse_diagnostic(value: &Value) -> JsonDiagnostic {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    JsonDiagnostic {
        code: text(&value["code"]).unwrap_or_default(),
        severity: text(&value["severity"]).unwrap_or_default(),
        message: text(&value["message"]).unwrap_or_default(),
        file: text(&value["file"]),
        line: value["line"].as_u64(),
        column: value["column"].as_u64(),
        labels: value["labels"]
            .as_array()
            .map(|labels| {
                labels
                    .iter()
                    .map(|l| JsonLabel {
                        offset: l["offset"].as_u64().unwrap_or(u64::MAX) as usize,
                        length: l["length"].as_u64().unwrap_or(0) as usize,
                        text: text(&l["text"]).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        help: text(&value["help"]),
    }
}

/// `text` with the first `from` replaced by `to`; panics when `from` is not
/// there, so that an edited fixture cannot silently stop testing anything.
#[track_caller]
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in the plan:\n{text}");
    text.replacen(from, to, 1)
}

/// The byte offset of the `n`th (0-based) occurrence of `needle` in `text`.
#[track_caller]
pub fn nth_offset(text: &str, needle: &str, n: usize) -> usize {
    text.match_indices(needle)
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("`{needle}` does not occur {} times", n + 1))
}

/// A run directory `cutover` created; removed when dropped.
pub struct RunDir(pub PathBuf);

impl RunDir {
    /// The `demo` directory the local example plans make in it.
    pub fn demo(&self) -> PathBuf {
        self.0.join("demo")
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Only what `cutover` creates: a `cutover-run-*` directory of its own.
        let ours = self
            .0
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("cutover-run-"));
        if ours {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// The run directory named by a `run directory: PATH` line of `output`.
pub fn run_dir_in(output: &str) -> Option<RunDir> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("run directory: "))
        .map(|p| RunDir(PathBuf::from(p.trim())))
}

/// The run directory the journal's first run recorded.
pub fn run_dir_in_journal(path: &Path) -> Option<RunDir> {
    journal_entries(path)
        .iter()
        .find(|e| e["type"] == "run_started")
        .and_then(|e| e["run_dir"].as_str().map(|d| RunDir(PathBuf::from(d))))
}

/// A plan named `name` on this machine: a rollback point `before-demo`, one
/// step (`make-dir`) that makes `{{run_dir}}/demo` (the plan variable `d`),
/// then `steps` (plan text).
pub fn local_demo_plan(name: &str, steps: &str) -> String {
    format!(
        r#"Plan(
    name: "{name}",
    service: "demo",
    window: Window(announced: "5m"),
    vars: {{"d": "{{{{run_dir}}}}/demo"}},
    phases: [
        Phase(name: "window", at: "0", steps: [
            RollbackPoint("before-demo"),
            Step(id: "make-dir", title: "make the demo directory",
                 action: Shell(on: "local", run: "mkdir -p {{{{d}}}}", revert: Run("rm -rf {{{{d}}}}")),
                 check: Run("test -d {{{{d}}}}"), duration: Fixed("1s")),
            {steps}
        ]),
    ],
)"#
    )
}

/// `examples/NAME` in the workspace.
pub fn example(name: &str) -> PathBuf {
    workspace_file(&format!("examples/{name}"))
}

/// A private temporary directory named `PREFIX...`, removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}

/// `cutover check` of plan `text`, with `--format json`, waited for.
pub fn check_json(text: &str) -> Run {
    Cutover::new()
        .arg("check")
        .plan_text(text)
        .args(["--format", "json"])
        .run()
}

/// `cutover run PLAN EXTRA... --journal JOURNAL`, waited for.
pub fn run_plan(plan: &Path, journal: &Path, extra: &[&str]) -> Run {
    Cutover::new()
        .arg("run")
        .arg(plan)
        .args(extra)
        .arg("--journal")
        .arg(journal)
        .run()
}

/// `cutover resume PLAN --yes --journal JOURNAL`, waited for.
pub fn resume_plan(plan: &Path, journal: &Path) -> Run {
    Cutover::new()
        .arg("resume")
        .arg(plan)
        .args(["--yes", "--journal"])
        .arg(journal)
        .run()
}

/// `cutover status PLAN --journal JOURNAL EXTRA...`, waited for.
pub fn status_of(plan: &Path, journal: &Path, extra: &[&str]) -> Run {
    Cutover::new()
        .arg("status")
        .arg(plan)
        .arg("--journal")
        .arg(journal)
        .args(extra)
        .run()
}

/// The `entry` of every whole record of a journal (a torn last line is left out).
pub fn journal_entries(path: &Path) -> Vec<Value> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["entry"].clone())
        .collect()
}

/// The first index of an entry of `entries` (as [`journal_entries`] reads
/// them) from `from` on that `matches`.
pub fn position(entries: &[Value], from: usize, matches: impl Fn(&Value) -> bool) -> Option<usize> {
    entries
        .iter()
        .skip(from)
        .position(matches)
        .map(|i| i + from)
}

/// Whether a journal entry is the event `event` of `step`.
pub fn is_event(entry: &Value, event: &str, step: &str) -> bool {
    entry["type"] == "event" && entry["event"]["event"] == event && entry["event"]["step"] == step
}

/// Whether a journal entry starts `effect` (`forward`, `revert`, `check`)
/// of `step`.
pub fn is_effect_started(entry: &Value, effect: &str, step: &str) -> bool {
    entry["type"] == "effect_started"
        && entry["effect"]["effect"] == effect
        && entry["effect"]["step"] == step
}

/// Runs a test's async part on `runtime`, bounded: a hang fails the test
/// (after two minutes, far beyond any test here) instead of holding up CI.
#[track_caller]
pub fn bounded<F: std::future::Future>(runtime: tokio::runtime::Runtime, future: F) -> F::Output {
    let limit = Duration::from_secs(120);
    runtime
        .block_on(async { tokio::time::timeout(limit, future).await })
        .unwrap_or_else(|_| panic!("the test's async part did not finish in {limit:?}: a hang"))
}

//! `cutover watch JOURNAL` (issue 16, item 3): a lab run followed from its
//! journal by a second process, as a teammate on the call would, in JSON,
//! in a real pseudo-terminal and as a page in headless Chromium. The run's
//! steps wait for gate files the test creates, so each check happens at a
//! known moment: the first step under way with users down, the second,
//! the last, and the run completed. The steps' modelled durations are
//! fixed (20 s each), so the time users have left to wait is known at each
//! moment: it must fall as steps finish.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::lab::Lab;
use tests::pty::Pty;
use tests::Spawned;

/// The three gated steps, in order.
const STEPS: [&str; 3] = ["stop", "copy", "start"];

/// A plan of three gated steps on the lab's two hosts: `stop` begins the
/// downtime on host1, `copy` and `start` run on host2, `start` ends it.
/// Each prints a line, then waits for its gate file under `gates` (at
/// most two minutes: a test that fails, or kills the run, must not leave
/// a loop behind on the lab's hosts).
fn gated_plan(lab: &Lab, gates: &Path) -> String {
    let host = |n: usize| {
        let h = &lab.hosts()[n];
        format!(
            "Host(address: \"{}\", port: {}, user: \"{}\", identity: \"{}\")",
            h.address,
            h.ssh_port,
            lab.user(),
            lab.identity().display()
        )
    };
    let step = |id: &str, on: &str, mark: &str| {
        let gate = gates.join(id);
        format!(
            "Step(id: \"{id}\", title: \"the {id} step\", action: Shell(on: \"{on}\", \
             run: \"echo {id} is waiting for its gate; for i in $(seq 1200); do [ -e {gate} ] && break; sleep 0.1; done; echo {id} went through\", \
             revert: Run(\"true\")), check: Run(\"test -e {gate}\"), duration: Fixed(\"20s\"), deadline: \"5m\"{mark}),\n",
            gate = gate.display()
        )
    };
    format!(
        r#"Plan(
    name: "watch test",
    service: "demo",
    window: Window(announced: "5m"),
    known_hosts: "{known_hosts}",
    hosts: {{"one": {one}, "two": {two}}},
    phases: [
        Phase(name: "window", at: "0", steps: [
            RollbackPoint("before"),
            {stop}            {copy}            {start}        ]),
    ],
)
"#,
        known_hosts = lab.known_hosts().display(),
        one = host(0),
        two = host(1),
        stop = step("stop", "one", ", downtime: Begins"),
        copy = step("copy", "two", ""),
        start = step("start", "two", ", downtime: Ends"),
    )
}

/// A lab, the plan written into it, its gates' directory (writable by the
/// lab's login user), and the journal's path.
struct Setup {
    lab: Lab,
    plan: PathBuf,
    gates: PathBuf,
    journal: PathBuf,
}

fn setup() -> Setup {
    let lab = Lab::builder().hosts(2).start().expect("the lab starts");
    let gates = lab.dir().join("gates");
    fs::create_dir(&gates).expect("the gates' directory");
    let plan = lab.dir().join("watched.ron");
    fs::write(&plan, gated_plan(&lab, &gates)).expect("the plan is written");
    let journal = lab.dir().join("watched.ron.journal");
    Setup {
        lab,
        plan,
        gates,
        journal,
    }
}

impl Setup {
    fn run(&self) -> Spawned {
        self.lab
            .cutover()
            .arg("run")
            .arg(&self.plan)
            .args(["--yes", "--journal"])
            .arg(&self.journal)
            .spawn()
    }

    /// `cutover watch JOURNAL --json --interval 200ms` and `extra`.
    fn watch(&self, extra: &[&str]) -> Spawned {
        self.lab
            .cutover()
            .arg("watch")
            .arg(&self.journal)
            .args(["--json", "--interval", "200ms"])
            .args(extra)
            .spawn()
    }

    fn open(&self, gate: &str) {
        fs::write(self.gates.join(gate), "").expect("the gate opens");
    }
}

/// The JSON views `watch --json` printed so far (into `output`, its
/// output file).
fn views_in(output: &Path) -> Vec<Value> {
    fs::read_to_string(output)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn views(watch: &Spawned) -> Vec<Value> {
    views_in(&watch.output_file())
}

/// Waits for a view in which `step` runs with an estimate; returns it.
#[track_caller]
fn view_running(watch: &mut Spawned, run: &mut Spawned, step: &str) -> Value {
    let found = |views: &[Value]| {
        views
            .iter()
            .rev()
            .find(|v| {
                v["running"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|s| s["step"] == step))
                    && v["estimate"].is_object()
            })
            .cloned()
    };
    let output = watch.output_file();
    if !watch.poll_until(Duration::from_secs(60), || {
        found(&views_in(&output)).is_some()
    }) {
        panic!(
            "watch never showed `{step}` under way with an estimate\nwatch:\n{}\nrun:\n{}",
            watch.output(),
            run.output()
        );
    }
    found(&views(watch)).expect("found above")
}

fn left_p50(view: &Value) -> f64 {
    view["estimate"]["downtime_p50_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("an estimate: {view:#}"))
}

#[test]
fn watch_follows_a_lab_run_and_the_time_left_falls_as_steps_finish() {
    let s = setup();
    let mut run = s.run();
    let mut watch = s.watch(&[]);

    let mut left = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        let view = view_running(&mut watch, &mut run, step);
        assert_eq!(view["state"], "running", "{view:#}");
        assert!(
            view["users_down_s"].as_f64().is_some(),
            "users are down from `stop` on: {view:#}"
        );
        assert_eq!(view["rollback_point"], "before", "{view:#}");
        let running = &view["running"][0];
        assert_eq!(running["deadline_s"], 300.0, "{view:#}");
        // The journal has a step's output once its command returned: the
        // last lines are the step before's.
        if i > 0 {
            let before = STEPS[i - 1];
            assert_eq!(view["last_output"]["step"], before, "{view:#}");
            let went = format!("{before} went through");
            assert!(
                view["last_output"]["lines"]
                    .as_array()
                    .is_some_and(|lines| lines.iter().any(|l| *l == went.as_str())),
                "{view:#}"
            );
        }
        // Three fixed 20 s steps: 60 s less what has run, then 40, then 20.
        let p50 = left_p50(&view);
        let most = 20.0 * (3 - i) as f64;
        assert!(
            p50 <= most && p50 > most - 20.0,
            "with `{step}` under way the time left is {p50} s, not within ({}, {most}]: {view:#}",
            most - 20.0
        );
        left.push(p50);
        s.open(step);
    }
    assert!(left.windows(2).all(|w| w[1] < w[0]), "{left:?}");
    assert_eq!(
        run.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        run.output()
    );
    // The run is over: watch says so and ends by itself.
    assert_eq!(
        watch.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        watch.output()
    );
    let last = views(&watch).pop().expect("a last view");
    assert_eq!(last["state"], "completed", "{last:#}");
    assert!(
        last["downtime_s"].as_f64().is_some_and(|d| d > 0.0),
        "{last:#}"
    );
    assert!(
        last["announced"]["downtime_p50_s"].as_f64().is_some(),
        "{last:#}"
    );
}

/// A run killed mid-step leaves its step without an outcome and its lock
/// file behind, naming a process that is gone: watch says it stopped.
#[test]
fn a_killed_run_is_shown_stopped_not_running() {
    let s = setup();
    let mut run = s.run();
    let mut watch = s.watch(&[]);
    let view = view_running(&mut watch, &mut run, "stop");
    assert!(view["holder"].as_str().is_some(), "{view:#}");
    run.kill();
    let output = watch.output_file();
    watch.wait_until(Duration::from_secs(30), "stopped view", || {
        views_in(&output).iter().any(|v| v["state"] == "stopped")
    });
    let stopped = views(&watch)
        .into_iter()
        .find(|v| v["state"] == "stopped")
        .expect("found above");
    assert!(stopped["estimate"].is_null(), "{stopped:#}");
    assert!(
        stopped["summary"]
            .as_str()
            .is_some_and(|s| s.contains("killed")),
        "{stopped:#}"
    );
    // The killed run's command still waits on the host: let it go.
    s.open("stop");
}

#[test]
fn watch_in_a_terminal_redraws_the_run_live_and_ends_with_it() {
    let s = setup();
    let mut run = s.run();
    let mut pty = Pty::cutover_with_env(
        [
            "watch".as_ref(),
            s.journal.as_os_str(),
            "--interval".as_ref(),
            "200ms".as_ref(),
        ],
        s.lab.dir(),
        s.lab.cutover_vars(),
    );
    pty.expect("time users have left to wait", Duration::from_secs(60));
    pty.expect("running stop", Duration::from_secs(10));
    s.open("stop");
    pty.expect("running copy", Duration::from_secs(30));
    pty.expect("stop went through", Duration::from_secs(10));
    s.open("copy");
    s.open("start");
    pty.expect("completed", Duration::from_secs(60));
    assert_eq!(
        run.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        run.output()
    );
    assert_eq!(
        pty.wait_exit(Duration::from_secs(30)),
        0,
        "{}",
        pty.transcript()
    );
    let screen = pty.screen();
    assert!(screen.contains("users were down"), "{screen}");
}

/// The page as headless Chromium renders it, after its script has fetched
/// the view (at most `--virtual-time-budget` of page time).
fn rendered(url: &str, profile: &Path) -> String {
    let mut chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts (the README's test command installs Debian's `chromium`)");
    // Read as it writes: a DOM past the pipe's buffer must not block it.
    let mut out = chromium.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        use std::io::Read as _;
        let _ = out.read_to_string(&mut dom);
        dom
    });
    let started = Instant::now();
    while chromium.try_wait().expect("waits").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = chromium.kill();
            let _ = chromium.wait();
            panic!("chromium did not render {url} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("the reader thread never panics")
}

#[test]
fn the_page_shows_the_run_in_chromium_at_three_moments() {
    let s = setup();
    let mut run = s.run();
    let mut watch = s.watch(&["--serve", "127.0.0.1:0"]);
    let output = watch.output_file();
    let url_in = |output: &Path| watch_url(&fs::read_to_string(output).unwrap_or_default());
    watch.wait_until(Duration::from_secs(30), "page address", || {
        url_in(&output).is_some()
    });
    let url = url_in(&output).expect("an address");
    let profile = s.lab.dir().join("chromium");

    // 1. `stop` under way: users down, the time left, the step's output.
    view_running(&mut watch, &mut run, "stop");
    let dom = rendered(&url, &profile);
    assert!(dom.contains("data-state=\"running\""), "{dom}");
    assert!(dom.contains("Time users have left to wait"), "{dom}");
    assert!(
        dom.contains("data-step=\"stop\" data-status=\"running\""),
        "{dom}"
    );
    assert!(dom.contains("A failure now rolls back to before"), "{dom}");

    // 2. `copy` under way: `stop` done on the timeline.
    s.open("stop");
    view_running(&mut watch, &mut run, "copy");
    let dom = rendered(&url, &profile);
    assert!(
        dom.contains("data-step=\"stop\" data-status=\"done\""),
        "{dom}"
    );
    assert!(
        dom.contains("data-step=\"copy\" data-status=\"running\""),
        "{dom}"
    );
    assert!(dom.contains("\nstop went through"), "{dom}");

    // 3. The run completed: every step done, users' downtime told.
    s.open("copy");
    s.open("start");
    assert_eq!(
        run.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        run.output()
    );
    watch.wait_until(Duration::from_secs(30), "completed view", || {
        views_in(&output).iter().any(|v| v["state"] == "completed")
    });
    let dom = rendered(&url, &profile);
    assert!(dom.contains("data-state=\"completed\""), "{dom}");
    assert!(dom.contains("Users were down"), "{dom}");
    for step in STEPS {
        assert!(
            dom.contains(&format!("data-step=\"{step}\" data-status=\"done\"")),
            "{dom}"
        );
    }
    // Read-only: nothing but GET; on loopback, only for a loopback name.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let post = raw(
        &addr,
        "POST /view.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let elsewhere = raw(
        &addr,
        "GET /view.json HTTP/1.1\r\nHost: attacker.example\r\n\r\n",
    );
    assert!(elsewhere.starts_with("HTTP/1.1 421"), "{elsewhere}");
    let other = raw(&addr, "GET /etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    // A request that never ends is cut off, not waited for.
    let started = Instant::now();
    let endless = raw(&addr, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
    assert!(endless.is_empty(), "{endless}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// Sends `request` as it is to `addr` and reads the answer (bounded).
fn raw(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the page's server answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a bounded read");
    stream
        .write_all(request.as_bytes())
        .expect("the request is sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The page's address, from what `watch --serve` printed.
fn watch_url(out: &str) -> Option<String> {
    let at = out.find("http://")?;
    let url: String = out[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url.ends_with('/').then_some(url)
}

#[test]
fn watch_refuses_what_it_cannot_follow_with_a_clear_error() {
    let dir = tests::temp_dir("cutover-watch-");
    let plan = dir.path().join("demo.ron");
    fs::write(&plan, tests::local_demo_plan("watch demo", "")).expect("the plan");
    let journal = dir.path().join("demo.ron.journal");
    let watch = |args: &[&std::ffi::OsStr]| {
        tests::Cutover::new()
            .arg("watch")
            .args(args)
            .timeout(Duration::from_secs(30))
            .run()
    };

    // No journal yet: --once cannot wait for one.
    let none = watch(&[journal.as_os_str(), "--once".as_ref()]);
    none.assert_code(1).assert_no_panic();
    assert!(
        none.stderr.contains("no such journal"),
        "{}",
        none.describe()
    );

    // A finished run: one view, the end and the downtime said, exit 0.
    tests::run_plan(&plan, &journal, &["--yes"]).assert_code(0);
    let done = watch(&[journal.as_os_str(), "--once".as_ref()]);
    done.assert_code(0);
    assert!(done.stdout.contains("completed"), "{}", done.describe());

    // The plan must be the run's: another variable value is another plan.
    let other = watch(&[
        journal.as_os_str(),
        "--once".as_ref(),
        "--set".as_ref(),
        "d=/elsewhere".as_ref(),
    ]);
    other.assert_code(2).assert_no_panic();
    assert!(
        other.stderr.contains("another version"),
        "{}",
        other.describe()
    );

    // A journal not named PLAN.journal needs --plan.
    let renamed = dir.path().join("run.log");
    fs::copy(&journal, &renamed).expect("a copy");
    let unnamed = watch(&[renamed.as_os_str(), "--once".as_ref()]);
    unnamed.assert_code(1).assert_no_panic();
    assert!(
        unnamed.stderr.contains("--plan PLAN"),
        "{}",
        unnamed.describe()
    );
    let named = watch(&[
        renamed.as_os_str(),
        "--once".as_ref(),
        "--plan".as_ref(),
        plan.as_os_str(),
    ]);
    named.assert_code(0);

    // A directory, and a busy loop, are refused.
    watch(&[
        dir.path().as_os_str(),
        "--once".as_ref(),
        "--plan".as_ref(),
        plan.as_os_str(),
    ])
    .assert_code(1)
    .assert_no_panic();
    let busy = watch(&[journal.as_os_str(), "--interval".as_ref(), "1ms".as_ref()]);
    busy.assert_code(1);
    assert!(
        busy.stderr.contains("at most every 50 ms"),
        "{}",
        busy.describe()
    );
}

/// What a step prints is journaled with the plan's secrets redacted, so
/// no reader of the journal (`status --output`, watch, its page) sees
/// them.
#[test]
fn a_secret_a_step_prints_never_reaches_the_journal_or_watch() {
    let dir = tests::temp_dir("cutover-watch-");
    let plan = dir.path().join("secret.ron");
    let step = r#"Step(id: "tell", action: Shell(on: "local", run: "echo pw=$PGPASSWORD", revert: Run("true")),
                 env: { "PGPASSWORD": "s3cret-printed-value" }, duration: Fixed("1s")),"#;
    fs::write(&plan, tests::local_demo_plan("watch secret", step)).expect("the plan");
    let journal = dir.path().join("secret.ron.journal");
    tests::run_plan(&plan, &journal, &["--yes"]).assert_code(0);
    let text = fs::read_to_string(&journal).expect("the journal");
    assert!(!text.contains("s3cret-printed-value"), "{text}");
    assert!(text.contains("pw=<redacted>"), "{text}");
    let watch = tests::Cutover::new()
        .arg("watch")
        .arg(&journal)
        .arg("--once")
        .timeout(Duration::from_secs(30))
        .run();
    watch.assert_code(0);
    assert!(
        watch.stdout.contains("pw=<redacted>"),
        "{}",
        watch.describe()
    );
}

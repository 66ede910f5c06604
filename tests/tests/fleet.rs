//! A plan across many hosts, run for real (issue 15, item 4): many host
//! entries per lab sshd, so that a handful of servers stand for a fleet.
//! Preflight opens the sessions side by side, never more at once than
//! `--connect-parallel` (proven against sshds that refuse connections
//! beyond a small `MaxStartups`), and steps on different hosts run at the
//! same time.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::lab::Lab;
use tests::Run;

/// Lab sshds, and the plan's hosts spread over them.
const SSHDS: u8 = 4;
const HOSTS: usize = 40;
/// Each sshd refuses connections beyond this many not yet logged in.
const MAX_STARTUPS: u32 = 2;

/// A fleet plan: [`HOSTS`] hosts (`node00`...), spread over the lab's sshds,
/// each a chain of two steps that append their id to the host's own file
/// under `dir` (checked by grep, reverted by sed). The first step of each
/// host sleeps a second, so steps on different hosts overlap if and only if
/// they run side by side.
fn fleet_plan(lab: &Lab, dir: &Path) -> String {
    let mut hosts = String::new();
    let mut steps = String::new();
    for n in 0..HOSTS {
        let sshd = &lab.hosts()[n % lab.hosts().len()];
        hosts.push_str(&format!(
            "        \"node{n:02}\": Host(address: \"{}\", port: {}, user: \"{}\", identity: \"{}\"),\n",
            sshd.address,
            sshd.ssh_port,
            lab.user(),
            lab.identity().display()
        ));
        let file = dir.join(format!("node{n:02}"));
        let file = file.display();
        for (s, (run, after)) in [
            // `after: []`: each host's chain starts with the phase.
            (
                format!("sleep 1 && echo node{n:02}-a >> {file}"),
                ", after: []".to_owned(),
            ),
            (
                format!("echo node{n:02}-b >> {file}"),
                format!(", after: [\"node{n:02}-a\"]"),
            ),
        ]
        .iter()
        .enumerate()
        {
            let id = format!("node{n:02}-{}", ["a", "b"][s]);
            steps.push_str(&format!(
                "            Step(id: \"{id}\", action: Shell(on: \"node{n:02}\", run: \"{run}\", \
                 revert: Run(\"sed -i '/^{id}$/d' {file}\")), check: Run(\"grep -qx {id} {file}\"), \
                 duration: Fixed(\"1s\"){after}),\n"
            ));
        }
    }
    format!(
        r#"Plan(
    name: "a fleet of {HOSTS} hosts on {SSHDS} sshds",
    service: "fleet",
    window: Window(announced: "10m"),
    known_hosts: "{known_hosts}",
    hosts: {{
{hosts}    }},
    phases: [
        Phase(name: "window", at: "0", steps: [
            RollbackPoint("before"),
{steps}        ]),
    ],
)
"#,
        known_hosts = lab.known_hosts().display()
    )
}

/// The most steps the journal shows running at the same time.
fn most_at_once(entries: &[Value]) -> usize {
    let (mut running, mut most) = (0usize, 0usize);
    for entry in entries {
        if entry["type"] == "effect_started" && entry["effect"]["effect"] == "forward" {
            running += 1;
            most = most.max(running);
        } else if entry["type"] == "event" && entry["event"]["event"] == "step_succeeded" {
            running = running.saturating_sub(1);
        }
    }
    most
}

/// The lines of every host's file, host by host.
fn written(dir: &Path) -> Vec<(String, Vec<String>)> {
    (0..HOSTS)
        .map(|n| {
            let name = format!("node{n:02}");
            let text = fs::read_to_string(dir.join(&name)).unwrap_or_default();
            (name, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

fn run(lab: &Lab, plan: &Path, journal: &Path, parallel: usize) -> Run {
    lab.cutover()
        .arg("run")
        .arg(plan)
        .args(["--yes", "--journal"])
        .arg(journal)
        .args(["--connect-parallel", &parallel.to_string()])
        .run()
}

#[test]
fn a_fleet_plan_reaches_every_host_within_the_connection_bound_and_runs_hosts_side_by_side() {
    let lab = Lab::builder()
        .hosts(SSHDS)
        .max_startups(MAX_STARTUPS)
        .start()
        .expect("the lab starts");
    let dir = lab.dir().join("fleet");
    fs::create_dir(&dir).expect("a directory for the hosts' files");
    // The lab's login user writes there.
    let status = std::process::Command::new("chmod")
        .arg("777")
        .arg(&dir)
        .status()
        .expect("chmod runs");
    assert!(status.success());
    let plan: PathBuf = lab.dir().join("fleet.ron");
    fs::write(&plan, fleet_plan(&lab, &dir)).expect("the plan is written");

    // Every host at once: the sshds refuse most of the connections, so
    // preflight fails and nothing runs. (This is what the bound is for.)
    let journal = lab.dir().join("unbounded.journal");
    let unbounded = run(&lab, &plan, &journal, HOSTS);
    unbounded.assert_code(1);
    assert!(
        unbounded.stderr.contains("preflight"),
        "{}",
        unbounded.describe()
    );
    assert!(
        written(&dir).iter().all(|(_, lines)| lines.is_empty()),
        "a step ran although preflight failed: {:?}\n{}",
        written(&dir),
        unbounded.describe()
    );

    // Within the sshds' bound, every host is reached and the steps run.
    let journal = lab.dir().join("bounded.journal");
    let bounded = run(&lab, &plan, &journal, MAX_STARTUPS as usize);
    bounded.assert_code(0);
    for (host, lines) in written(&dir) {
        assert_eq!(
            lines,
            [format!("{host}-a"), format!("{host}-b")],
            "{host}'s steps\n{}",
            bounded.describe()
        );
    }
    // Hosts side by side: the second-long first steps overlapped.
    let entries = tests::journal_entries(&journal);
    let most = most_at_once(&entries);
    assert!(
        most >= HOSTS / 2,
        "at most {most} steps ran at once across {HOSTS} hosts\n{}",
        bounded.describe()
    );
}

//! What the SSH transport costs: per-command overhead on one session, and a
//! parallel preflight against single handshakes. `bench/ssh-overhead` runs
//! it against a lab and compares with OpenSSH.
//!
//! ```text
//! ssh_overhead --ssh-config FILE --known-hosts FILE [--steps N] [--rounds N] HOST...
//! ```
//!
//! The hosts are aliases in the config file (which gives address, port,
//! user and key); the first one runs the steps.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use plan_steps::local::ShellCommand;
use plan_steps::ssh::{
    connect_all, HostKeyPolicy, KnownHosts, Session, SshConfig, SshEnv, SshTarget,
};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    ssh_config: PathBuf,
    known_hosts: PathBuf,
    steps: usize,
    rounds: usize,
    hosts: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut ssh_config, mut known_hosts) = (None, None);
    let (mut steps, mut rounds) = (100, 7);
    let mut hosts = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--ssh-config" => ssh_config = Some(PathBuf::from(value(&arg)?)),
            "--known-hosts" => known_hosts = Some(PathBuf::from(value(&arg)?)),
            "--steps" => steps = value(&arg)?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--rounds" => rounds = value(&arg)?.parse().map_err(|e| format!("--rounds: {e}"))?,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            host => hosts.push(host.to_owned()),
        }
    }
    if hosts.is_empty() || steps == 0 || rounds == 0 {
        return Err("usage: ssh_overhead --ssh-config FILE --known-hosts FILE [--steps N] [--rounds N] HOST...".into());
    }
    Ok(Args {
        ssh_config: ssh_config.ok_or("--ssh-config is required")?,
        known_hosts: known_hosts.ok_or("--known-hosts is required")?,
        steps,
        rounds,
        hosts,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time in USER_HZ ticks (100 a second on Linux): this process's
/// (`/proc/self/stat`) and the whole machine's busy time (`/proc/stat`).
fn cpu_ticks() -> Option<(u64, u64)> {
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<u64> = own[own.rfind(')')? + 2..]
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After `) `: state is not a number, so utime and stime (fields 14, 15)
    // are at 10 and 11 here.
    let process = fields.get(10)? + fields.get(11)?;
    let machine = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = machine
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle
    // and iowait.
    let busy = cpu.iter().take(8).sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
    Some((process, busy))
}

/// The median and the minimum.
fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[0])
}

async fn bench(args: Args) -> Result<(), String> {
    let env = SshEnv {
        config_file: Some(args.ssh_config.clone()),
        ..SshEnv::from_process()
    };
    let config = SshConfig::load(&env).map_err(|e| e.to_string())?;
    let targets: Vec<SshTarget> = args
        .hosts
        .iter()
        .map(|alias| {
            let host = plan_core::Host {
                name: alias.clone(),
                address: alias.clone(),
                user: None,
                port: None,
                identity: None,
                vars: Vec::new(),
                env: Vec::new(),
                span: plan_core::Span::default(),
            };
            SshTarget {
                use_agent: false,
                ..SshTarget::resolve(&host, &config, &env)
            }
        })
        .collect();
    let known_hosts = KnownHosts::new(&args.known_hosts, HostKeyPolicy::Strict);

    // Per-step overhead: `true` through one session, after a warm-up.
    let session = Session::connect(&targets[0], &known_hosts, TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let step = ShellCommand::new("true");
    let run = |session: &Session| {
        let session = session.clone();
        let step = step.clone();
        async move {
            let outcome = session
                .exec(&step, std::future::pending())
                .await
                .map_err(|e| e.to_string())?;
            if !outcome.success() {
                return Err(format!("`true` failed: {outcome:?}"));
            }
            Ok::<Duration, String>(outcome.elapsed)
        }
    };
    for _ in 0..5 {
        run(&session).await?;
    }
    let mut per_step = Vec::with_capacity(args.steps);
    let started = Instant::now();
    for _ in 0..args.steps {
        let one = Instant::now();
        run(&session).await?;
        per_step.push(one.elapsed());
    }
    let total = started.elapsed();
    per_step.sort();
    let p = |q: f64| ms(per_step[((per_step.len() - 1) as f64 * q) as usize]);
    println!(
        "cutover ssh: {} steps of `true` on one session: {:.1} ms, {:.2} ms/step (p50 {:.2}, p95 {:.2}, max {:.2})",
        args.steps,
        ms(total),
        ms(total) / args.steps as f64,
        p(0.5),
        p(0.95),
        p(1.0)
    );
    session.close().await;

    // Preflight: all hosts at once, against one handshake; interleaved
    // rounds so that both see the same machine load.
    let mut single = Vec::new();
    let mut parallel = Vec::new();
    let cpu_before = cpu_ticks();
    for _ in 0..args.rounds {
        let started = Instant::now();
        let one = Session::connect(&targets[0], &known_hosts, TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        single.push(started.elapsed());
        one.close().await;

        let started = Instant::now();
        let all = connect_all(&targets, &known_hosts, TIMEOUT, targets.len()).await;
        parallel.push(started.elapsed());
        for result in all {
            result.map_err(|e| e.to_string())?.close().await;
        }
    }
    let cpu_after = cpu_ticks();
    let (single_median, single_min) = stats(single);
    let (parallel_median, parallel_min) = stats(parallel);
    println!(
        "cutover ssh: one handshake (connect, key exchange, host key, login): median {:.1} ms (min {:.1}, {} rounds)",
        ms(single_median),
        ms(single_min),
        args.rounds
    );
    println!(
        "cutover ssh: preflight of {} hosts in parallel: median {:.1} ms (min {:.1}) = {:.2} x one handshake",
        targets.len(),
        ms(parallel_median),
        ms(parallel_min),
        parallel_median.as_secs_f64() / single_median.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let handshakes = (args.rounds * (targets.len() + 1)) as f64;
        let per = |ticks: u64| ticks as f64 * 10.0 / handshakes;
        println!(
            "cutover ssh: CPU per handshake: {:.1} ms in this client, {:.1} ms on the whole machine \
             (client and sshd, and whatever else runs) with {} CPUs",
            per(after.0 - before.0),
            per(after.1 - before.1),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ssh_overhead: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ssh_overhead: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssh_overhead: {e}");
            ExitCode::FAILURE
        }
    }
}

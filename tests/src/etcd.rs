//! A private etcd (Debian's `etcd-server`) for the run lock's tests: its own
//! data directory and ports, stopped by its PID when dropped. On loopback
//! ([`Etcd::start`]), or in a network namespace of its own reached over a
//! veth pair ([`Etcd::behind_a_link`]), whose link [`Etcd::cut`] takes down:
//! a real network cut between the run and etcd.

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long etcd may take to answer its health check after it starts.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running etcd.
pub struct Etcd {
    child: Child,
    /// `HOST:PORT` of its client URL.
    client: String,
    dir: tempfile::TempDir,
    link: Option<Link>,
}

/// The namespace etcd runs in and the host's end of the veth pair to it.
struct Link {
    netns: String,
    host_end: String,
}

static LINKS: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, panicking with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Etcd {
    /// Starts one on loopback and waits until it answers `/health`.
    pub fn start() -> Etcd {
        let (client_port, peer_port) = (free_port(), free_port());
        Etcd::launch(
            Vec::new(),
            &format!("127.0.0.1:{client_port}"),
            &format!("127.0.0.1:{peer_port}"),
            None,
        )
    }

    /// Starts one in a network namespace of its own (root only), reached
    /// from here over a veth pair on a private /30, and waits until it
    /// answers `/health` across the link.
    pub fn behind_a_link() -> Etcd {
        let n = LINKS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let netns = format!("cutover-etcd-{pid}-{n}");
        // Interface names have at most 15 bytes.
        let (host_end, ns_end) = (
            format!("ce{}h{n}", pid % 100_000),
            format!("ce{}n{n}", pid % 100_000),
        );
        let net = format!("10.{}.{}", 200 + n % 50, pid % 250);
        ip(&["netns", "add", &netns]);
        let link = Link {
            netns: netns.clone(),
            host_end: host_end.clone(),
        };
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
        ]);
        ip(&["link", "set", &ns_end, "netns", &netns]);
        ip(&["addr", "add", &format!("{net}.1/30"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{net}.2/30"),
            "dev",
            &ns_end,
        ]);
        ip(&["-n", &netns, "link", "set", &ns_end, "up"]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        Etcd::launch(
            vec!["ip".into(), "netns".into(), "exec".into(), netns],
            &format!("{net}.2:2379"),
            "127.0.0.1:2380",
            Some(link),
        )
    }

    fn launch(prefix: Vec<String>, client: &str, peer: &str, link: Option<Link>) -> Etcd {
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("etcd is installed (Debian's etcd-server; scripts/test installs it)");
        let dir = tempfile::Builder::new()
            .prefix("cutover-etcd-")
            .tempdir()
            .expect("a directory for etcd");
        let (client_url, peer_url) = (format!("http://{client}"), format!("http://{peer}"));
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd's log");
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = command
            .args(["--name", "lock-test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args([
                "--initial-cluster",
                &format!("lock-test={peer_url}"),
                "--initial-cluster-state",
                "new",
            ])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        let etcd = Etcd {
            child,
            client: client.to_owned(),
            dir,
            link,
        };
        let until = Instant::now() + READY_WITHIN;
        loop {
            if etcd.healthy() {
                return etcd;
            }
            assert!(
                Instant::now() < until,
                "etcd did not answer /health within {READY_WITHIN:?}; its log:\n{}",
                etcd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(1)))
            .proxy(None)
            .build()
            .into();
        agent
            .get(&format!("http://{}/health", self.client))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .is_some_and(|body| body.contains("\"health\":\"true\""))
    }

    /// `etcd://HOST:PORT/PREFIX`.
    pub fn lock_url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.client)
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// Takes the link to it down: a network cut ([`Etcd::behind_a_link`]).
    pub fn cut(&self) {
        let link = self.link.as_ref().expect("an etcd behind a link");
        ip(&["link", "set", &link.host_end, "down"]);
    }

    /// Brings the link back up.
    pub fn restore(&self) {
        let link = self.link.as_ref().expect("an etcd behind a link");
        ip(&["link", "set", &link.host_end, "up"]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(link) = &self.link {
            // Deleting the namespace deletes its end of the pair, and so both.
            let _ = Command::new("ip")
                .args(["netns", "del", &link.netns])
                .status();
        }
    }
}

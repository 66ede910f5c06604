//! A private etcd (Debian's `etcd-server`) on loopback, for the run lock's
//! tests: its own data directory and ports, stopped by its PID when
//! dropped. [`Etcd::freeze`] stops it answering (SIGSTOP) the way a network
//! cut looks from a client: connections hang, nothing comes back.

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long etcd may take to answer its health check after it starts.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running etcd.
pub struct Etcd {
    child: Child,
    client_port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Etcd {
    /// Starts one and waits until it answers `/health`.
    pub fn start() -> Etcd {
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("etcd is installed (Debian's etcd-server; scripts/test installs it)");
        let dir = tempfile::Builder::new()
            .prefix("cutover-etcd-")
            .tempdir()
            .expect("a directory for etcd");
        let (client_port, peer_port) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd's log");
        let child = Command::new(binary)
            .args(["--name", "lock-test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &format!("lock-test={peer}"),
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
            client_port,
            dir,
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
            .get(&format!("http://127.0.0.1:{}/health", self.client_port))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .is_some_and(|body| body.contains("\"health\":\"true\""))
    }

    /// `etcd://127.0.0.1:PORT/PREFIX`.
    pub fn lock_url(&self, prefix: &str) -> String {
        format!("etcd://127.0.0.1:{}/{prefix}", self.client_port)
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        kill(Pid::from_raw(pid), signal).expect("etcd can be signalled");
    }

    /// Stops it answering, as a network cut would (SIGSTOP).
    pub fn freeze(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Lets it answer again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(Signal::SIGCONT);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = kill(
            Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0)),
            Signal::SIGCONT,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

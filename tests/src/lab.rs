//! Lab fixtures: real servers on loopback for the integration tests, each
//! fixture with its own temporary directory, loopback addresses and ports,
//! so tests run in parallel.
//!
//! A lab is two (or more) OpenSSH hosts, an authoritative DNS server (BIND
//! `named`, zone `lab.test.`, TSIG-signed updates) and a small web service
//! on `host1` serving its data directory. There is one implementation of it,
//! `scripts/lab`: a fixture runs `scripts/lab up DIR` with `LAB_*` settings,
//! reads back `DIR/lab.env`, and runs `scripts/lab down DIR` when dropped
//! (also when the test panics), which stops exactly the processes the lab
//! started, by PID.
//!
//! It is for tests that need real hosts; it is not a mock of any of them.
//!
//! ```no_run
//! use tests::lab::Lab;
//!
//! let lab = Lab::builder().hosts(2).dns().service().start().expect("the lab starts");
//! lab.ssh_ok("host1", "true");
//! assert_eq!(lab.resolve(tests::lab::RECORD), vec![lab.host("host1").address]);
//! let page = lab.get("host1", "/").expect("the service answers");
//! assert_eq!(page.status, 200);
//! // A plan for this lab: examples/lab/cutover.ron with its port and variables.
//! let run = lab.cutover().arg("check").plan_text(&lab.example_plan()).run();
//! run.assert_code(0);
//! ```
//!
//! Set `CUTOVER_KEEP_LAB=1` to keep a lab's directory (its logs, keys and
//! data) after the test; its processes are stopped all the same.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{workspace_file, Cutover};

/// The zone the lab's DNS server is authoritative for.
pub const ZONE: &str = "lab.test.";

/// The service's record: an A record pointing at `host1` when the lab starts.
pub const RECORD: &str = "www.lab.test.";

/// `scripts/lab up` takes a second or two and `scripts/mail-lab up` about
/// half a minute; this only catches a hang. Two mail labs starting side by
/// side on a 2-core machine whose process creation was slow (1 ms a
/// fork and exec) once took over 90 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// What went wrong starting or talking to a lab.
#[derive(Debug)]
pub struct LabError {
    message: String,
}

impl LabError {
    fn new(message: impl Into<String>) -> Self {
        LabError {
            message: message.into(),
        }
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LabError {}

/// What [`Lab`]s return.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Builds a [`Lab`]: `Lab::builder().hosts(2).dns().service().start()`.
///
/// Without calls, it starts two hosts and nothing else.
#[derive(Clone, Debug)]
pub struct LabBuilder {
    hosts: u8,
    dns: bool,
    service: bool,
    data_mb: u32,
    record_ttl: u32,
    /// `Some(TTL of lists.lab.test)`: the mail lab (`scripts/mail-lab`).
    mail: Option<u32>,
    /// Each sshd's `MaxStartups` (`LAB_MAX_STARTUPS`), when not the lab's.
    max_startups: Option<u32>,
}

impl LabBuilder {
    /// The mail lab instead (`scripts/mail-lab`: `sodium` = host1 and
    /// `fermium` = host2 with exim and mailman, a mailbox host, BIND with
    /// `lists.lab.test` at `lists_ttl` seconds); hosts, service and data
    /// settings do not apply.
    pub fn mail(mut self, lists_ttl: u32) -> Self {
        self.mail = Some(lists_ttl);
        self.dns = true;
        self
    }

    /// The number of SSH hosts, `host1` to `hostN` (0 to 16; default 2).
    pub fn hosts(mut self, hosts: u8) -> Self {
        self.hosts = hosts;
        self
    }

    /// Each sshd refuses connections beyond `n` not yet logged in
    /// (`MaxStartups n`; the lab's default is generous).
    pub fn max_startups(mut self, n: u32) -> Self {
        self.max_startups = Some(n);
        self
    }

    /// Starts the DNS server too.
    pub fn dns(mut self) -> Self {
        self.dns = true;
        self
    }

    /// Starts the service on `host1` (every host has the service's script;
    /// only `host1` runs it at the start).
    pub fn service(mut self) -> Self {
        self.service = true;
        self
    }

    /// MiB of data files in `host1`'s data directory (default 4), e.g. to
    /// make an rsync last long enough to be interrupted.
    pub fn data_mb(mut self, mb: u32) -> Self {
        self.data_mb = mb;
        self
    }

    /// The TTL in seconds of [`RECORD`] when the lab starts (default 30, as the example plan declares).
    pub fn record_ttl(mut self, seconds: u32) -> Self {
        self.record_ttl = seconds;
        self
    }

    /// Starts the lab: picks loopback addresses and free ports, runs
    /// `scripts/lab up` in a fresh temporary directory and waits until every
    /// server answers (the script checks that before it returns).
    pub fn start(self) -> Result<Lab> {
        if self.hosts > 16 {
            return Err(LabError::new(format!(
                "a lab has at most 16 hosts, not {}",
                self.hosts
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("cutover-lab-")
            .tempdir()
            .map_err(|e| LabError::new(format!("cannot create a temporary directory: {e}")))?;
        let net = pick_net();
        // named listens only on addresses an interface has: lo's 127.0.0.1.
        let dns_addr = Ipv4Addr::LOCALHOST;
        let host_addrs: Vec<Ipv4Addr> = (1..=self.hosts)
            .map(|n| Ipv4Addr::new(127, net[0], net[1], n + 1))
            .collect();
        let mut taken = Vec::new();
        let ssh_port = free_port(&host_addrs, &taken, false)?;
        taken.push(ssh_port);
        let service_port = free_port(&host_addrs, &taken, false)?;
        taken.push(service_port);
        let dns_port = free_port(&[dns_addr], &taken, true)?;
        taken.push(dns_port);

        let script = if self.mail.is_some() {
            "scripts/mail-lab"
        } else {
            "scripts/lab"
        };
        let mut command = Command::new("bash");
        if let Some(ttl) = self.mail {
            let mail_addrs: Vec<Ipv4Addr> = [2, 3, 10]
                .iter()
                .map(|n| Ipv4Addr::new(127, net[0], net[1], *n))
                .collect();
            for name in ["LAB_SMTP_PORT", "LAB_LMTP_PORT", "LAB_REST_PORT"] {
                let port = free_port(&mail_addrs, &taken, false)?;
                taken.push(port);
                command.env(name, port.to_string());
            }
            command.env("LAB_LISTS_TTL", ttl.to_string());
        }
        if let Some(n) = self.max_startups {
            command.env("LAB_MAX_STARTUPS", n.to_string());
        }
        command
            .arg(workspace_file(script))
            .arg("up")
            .arg(dir.path())
            .env("LAB_NET", format!("127.{}.{}", net[0], net[1]))
            .env("LAB_HOSTS", self.hosts.to_string())
            .env("LAB_SSH_PORT", ssh_port.to_string())
            .env("LAB_DNS", if self.dns { "1" } else { "0" })
            .env("LAB_DNS_PORT", dns_port.to_string())
            .env("LAB_SERVICE", if self.service { "1" } else { "0" })
            .env("LAB_SERVICE_PORT", service_port.to_string())
            .env("LAB_DATA_MB", self.data_mb.to_string())
            .env("LAB_RECORD_TTL", self.record_ttl.to_string());
        // From here on the directory holds a lab: dropping it stops whatever
        // `up` got to start, even when `up` failed half way.
        let mut lab = Lab {
            script,
            path: dir.path().to_owned(),
            dir: Some(dir),
            vars: BTreeMap::new(),
            hosts: Vec::new(),
            dns: None,
            user: String::new(),
        };
        let output = run_with_timeout(&mut command, SCRIPT_TIMEOUT)?;
        if !output.status.success() {
            return Err(LabError::new(format!(
                "`{script} up {}` failed ({})\n{}{}",
                lab.path.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        lab.read_env()?;
        Ok(lab)
    }
}

/// One host of a lab, as `ssh -F DIR/ssh_config NAME` reaches it.
#[derive(Clone, Debug)]
pub struct LabHost {
    /// `host1`, `host2`, ...: the name in the lab's `ssh_config` and in plans.
    pub name: String,
    /// Its loopback address.
    pub address: Ipv4Addr,
    /// Its sshd port.
    pub ssh_port: u16,
    /// `DIR/hostN`.
    pub dir: PathBuf,
    /// The data directory its service serves (`DIR/hostN/srv`).
    pub srv: PathBuf,
    /// `DIR/hostN/bin/service`: `start`, `stop`, `status`.
    pub service_script: PathBuf,
    /// The service's port on this host's address.
    pub service_port: u16,
    /// The service's pidfile.
    pub service_pidfile: PathBuf,
    /// The sshd's pidfile.
    pub sshd_pidfile: PathBuf,
}

impl LabHost {
    /// `http://ADDRESS:PORT/`.
    pub fn service_url(&self) -> String {
        format!("http://{}:{}/", self.address, self.service_port)
    }

    /// The service's address.
    pub fn service_addr(&self) -> SocketAddr {
        SocketAddr::from((self.address, self.service_port))
    }
}

/// The lab's DNS server.
#[derive(Clone, Debug)]
pub struct LabDns {
    /// Its loopback address.
    pub address: Ipv4Addr,
    /// Its port (UDP and TCP).
    pub port: u16,
    /// The BIND key file of the TSIG key updates must be signed with.
    pub tsig_key: PathBuf,
    /// The key's name.
    pub tsig_name: String,
    /// [`RECORD`]'s TTL when the lab started, in seconds.
    pub record_ttl: u32,
    /// named's pidfile.
    pub pidfile: PathBuf,
}

impl LabDns {
    /// `ADDRESS:PORT`, as a plan's `dns: Rfc2136(server: ..)` wants it.
    pub fn server(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }
}

/// One A record as `dig` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ARecord {
    /// Seconds.
    pub ttl: u32,
    /// The address.
    pub address: Ipv4Addr,
}

/// An HTTP answer.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A running lab; dropping it stops every process it started.
pub struct Lab {
    /// `scripts/lab` or `scripts/mail-lab`.
    script: &'static str,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    vars: BTreeMap<String, String>,
    hosts: Vec<LabHost>,
    dns: Option<LabDns>,
    user: String,
}

impl Lab {
    /// A builder for a lab.
    pub fn builder() -> LabBuilder {
        LabBuilder {
            hosts: 2,
            dns: false,
            service: false,
            data_mb: 4,
            record_ttl: 30,
            mail: None,
            max_startups: None,
        }
    }

    fn read_env(&mut self) -> Result<()> {
        let env_file = self.path.join("lab.env");
        let text = fs::read_to_string(&env_file)
            .map_err(|e| LabError::new(format!("{}: {e}", env_file.display())))?;
        self.vars = parse_env(&text)?;
        let var = |name: &str| -> Result<&str> {
            self.vars
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| LabError::new(format!("{} has no {name}", env_file.display())))
        };
        let number = |name: &str| -> Result<u32> {
            var(name)?
                .parse()
                .map_err(|_| LabError::new(format!("{name} in lab.env is not a number")))
        };
        let addr = |name: &str| -> Result<Ipv4Addr> {
            var(name)?
                .parse()
                .map_err(|_| LabError::new(format!("{name} in lab.env is not an IPv4 address")))
        };
        let port = |name: &str| -> Result<u16> {
            var(name)?
                .parse()
                .map_err(|_| LabError::new(format!("{name} in lab.env is not a port")))
        };
        let path = |name: &str| -> Result<PathBuf> { var(name).map(PathBuf::from) };
        let mut hosts = Vec::new();
        for n in 1..=number("LAB_HOSTS")? {
            let key = |what: &str| format!("LAB_HOST{n}_{what}");
            hosts.push(LabHost {
                name: format!("host{n}"),
                address: addr(&key("ADDR"))?,
                ssh_port: port("LAB_SSH_PORT")?,
                dir: path(&key("DIR"))?,
                srv: path(&key("SRV"))?,
                service_script: path(&key("SERVICE"))?,
                service_port: port("LAB_SERVICE_PORT")?,
                service_pidfile: path(&key("SERVICE_PIDFILE"))?,
                sshd_pidfile: path(&key("SSHD_PIDFILE"))?,
            });
        }
        let dns = if var("LAB_DNS")? == "1" {
            Some(LabDns {
                address: addr("LAB_DNS_ADDR")?,
                port: port("LAB_DNS_PORT")?,
                tsig_key: path("LAB_TSIG_KEY")?,
                tsig_name: var("LAB_TSIG_NAME")?.to_owned(),
                record_ttl: number("LAB_RECORD_TTL")?,
                pidfile: path("LAB_DNS_PIDFILE")?,
            })
        } else {
            None
        };
        self.user = var("LAB_USER")?.to_owned();
        self.hosts = hosts;
        self.dns = dns;
        Ok(())
    }

    /// The lab's directory.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The login user on every host.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The hosts, `host1` first.
    pub fn hosts(&self) -> &[LabHost] {
        &self.hosts
    }

    /// The host called `name` (`host1`, ...); panics when there is none.
    #[track_caller]
    pub fn host(&self, name: &str) -> &LabHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("the lab has no host `{name}` (it has {})", self.hosts.len()))
    }

    /// The DNS server; panics when the lab was built without [`LabBuilder::dns`].
    #[track_caller]
    pub fn dns(&self) -> &LabDns {
        self.dns
            .as_ref()
            .expect("the lab was built with .dns() to have a DNS server")
    }

    /// `DIR/ssh_config`: `ssh -F` it to reach `host1`, `host2`, ...
    pub fn ssh_config(&self) -> PathBuf {
        self.path.join("ssh_config")
    }

    /// `DIR/known_hosts`: every host's key, as `[ADDRESS]:PORT ssh-ed25519 ...`.
    pub fn known_hosts(&self) -> PathBuf {
        self.path.join("known_hosts")
    }

    /// `DIR/id_ed25519`: the client key every host accepts.
    pub fn identity(&self) -> PathBuf {
        self.path.join("id_ed25519")
    }

    /// Every variable `DIR/lab.env` sets (`LAB_*` and `CUTOVER_VAR_*`).
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The `CUTOVER_VAR_*` variables of `lab.env`, which give
    /// `examples/lab/cutover.ron`'s variables this lab's values.
    pub fn cutover_vars(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter(|(k, _)| k.starts_with("CUTOVER_VAR_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The same as `--set NAME=VALUE` arguments.
    pub fn set_args(&self) -> Vec<String> {
        self.cutover_vars()
            .into_iter()
            .flat_map(|(k, v)| {
                let name = k.trim_start_matches("CUTOVER_VAR_").to_owned();
                ["--set".to_owned(), format!("{name}={v}")]
            })
            .collect()
    }

    /// A `cutover` invocation with this lab's variables in its environment.
    pub fn cutover(&self) -> Cutover {
        self.cutover_vars()
            .into_iter()
            .fold(Cutover::new(), |run, (k, v)| run.env(k, v))
    }

    /// `examples/lab/cutover.ron`, as it is: its variables (the hosts'
    /// addresses and SSH port, the DNS server, ...) come from
    /// [`Lab::cutover`] (or [`Lab::set_args`]).
    #[track_caller]
    pub fn example_plan(&self) -> String {
        let path = workspace_file("examples/lab/cutover.ron");
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `ssh -F DIR/ssh_config HOST`, to add options and a command to.
    pub fn ssh_command(&self, host: &str) -> Command {
        let mut command = Command::new("ssh");
        command
            .arg("-F")
            .arg(self.ssh_config())
            .arg(host)
            .stdin(Stdio::null());
        command
    }

    /// Runs `command` on `host` over SSH.
    #[track_caller]
    pub fn ssh(&self, host: &str, command: &str) -> Output {
        let mut ssh = self.ssh_command(host);
        ssh.arg(command);
        run_with_timeout(&mut ssh, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("ssh {host} {command}: {e}"))
    }

    /// Runs `command` on `host` over SSH; panics unless it exits 0; its stdout.
    #[track_caller]
    pub fn ssh_ok(&self, host: &str, command: &str) -> String {
        let output = self.ssh(host, command);
        assert!(
            output.status.success(),
            "`ssh {host} {command}` failed ({})\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs the service script on `host` (as the login user, over SSH):
    /// `verb` is `start`, `stop` or `status`.
    #[track_caller]
    pub fn service(&self, host: &str, verb: &str) -> Output {
        let script = self.host(host).service_script.display().to_string();
        self.ssh(host, &format!("{script} {verb}"))
    }

    /// Makes `service start` fail on `host` (`refuse: false` undoes it): a
    /// new host whose service does not come up.
    #[track_caller]
    pub fn refuse_service_start(&self, host: &str, refuse: bool) {
        let flag = self.host(host).dir.join("refuse-start");
        if refuse {
            fs::write(&flag, "refused by a test\n")
                .unwrap_or_else(|e| panic!("{}: {e}", flag.display()));
        } else if let Err(e) = fs::remove_file(&flag) {
            assert!(
                e.kind() == std::io::ErrorKind::NotFound,
                "{}: {e}",
                flag.display()
            );
        }
    }

    /// A `cutover` process to spawn rather than wait for (a test that kills
    /// it, or watches its journal grow), with this lab's variables in its
    /// environment, as [`Lab::cutover`] gives them.
    pub fn cutover_command(&self) -> Command {
        let mut command = Command::new(crate::cutover_bin());
        command.stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CUTOVER_VAR_") {
                command.env_remove(key);
            }
        }
        command.envs(self.cutover_vars());
        command
    }

    /// The sshd processes serving `host`'s open connections now: the
    /// descendants of its listener that are sshd (the privileged monitor and
    /// the session process of each connection), not the commands they run.
    /// As `scripts/lab down` finds sessions: by parent, from `/proc`.
    pub fn ssh_sessions(&self, host: &str) -> Vec<u32> {
        let Some(listener) = fs::read_to_string(&self.host(host).sshd_pidfile)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut sessions = Vec::new();
        let mut queue = vec![listener];
        while let Some(pid) = queue.pop() {
            for child in children_of(pid) {
                // `sshd: user [priv]`, `sshd: user@notty` (or `sshd-session`
                // in newer OpenSSH); a command's shell is not followed.
                if cmdline(child).starts_with("sshd") {
                    sessions.push(child);
                    queue.push(child);
                }
            }
        }
        sessions.sort_unstable();
        sessions
    }

    /// Drops every SSH connection to `host` at once, as a network failure
    /// would: SIGKILL to its session processes (the listener stays, so a
    /// new connection works). Returns the PIDs signalled; the commands the
    /// sessions ran are left running, as they would be.
    pub fn kill_ssh_sessions(&self, host: &str) -> Vec<u32> {
        let sessions = self.ssh_sessions(host);
        for pid in &sessions {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        sessions
    }

    /// `dig @SERVER -p PORT ARGS...` against the lab's DNS server.
    #[track_caller]
    pub fn dig(&self, args: &[&str]) -> Output {
        let dns = self.dns();
        let mut dig = Command::new("dig");
        dig.arg(format!("@{}", dns.address))
            .args(["-p", &dns.port.to_string(), "+time=2", "+tries=2"])
            .args(args);
        run_with_timeout(&mut dig, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("dig {args:?}: {e}"))
    }

    /// The A records of `name` at the lab's DNS server.
    #[track_caller]
    pub fn lookup(&self, name: &str) -> Vec<ARecord> {
        let output = self.dig(&["+noall", "+answer", "+norecurse", name, "A"]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "dig {name} failed: {text}");
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [_, ttl, "IN", "A", address] => Some(ARecord {
                        ttl: ttl.parse().ok()?,
                        address: address.parse().ok()?,
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// The addresses `name` resolves to at the lab's DNS server.
    #[track_caller]
    pub fn resolve(&self, name: &str) -> Vec<Ipv4Addr> {
        self.lookup(name).into_iter().map(|r| r.address).collect()
    }

    /// Sends an RFC 2136 update with `nsupdate -k KEY`: `commands` are
    /// nsupdate lines such as `update add www.lab.test. 60 A 127.0.0.9`;
    /// the `server`, `zone` and `send` lines are added.
    #[track_caller]
    pub fn nsupdate(&self, key: &Path, commands: &str) -> Output {
        let dns = self.dns();
        let script = format!(
            "server {} {}\nzone {ZONE}\n{}\nsend\n",
            dns.address,
            dns.port,
            commands.trim_end()
        );
        let mut nsupdate = Command::new("nsupdate");
        nsupdate.args(["-t", "5", "-k"]).arg(key);
        run_with_input(&mut nsupdate, script.as_bytes(), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("nsupdate: {e}"))
    }

    /// Writes a fresh TSIG key named `key_name` into the lab's directory as
    /// `file_name`: with the lab key's name, a key whose secret is wrong.
    #[track_caller]
    pub fn write_tsig_key(&self, file_name: &str, key_name: &str) -> PathBuf {
        let output = Command::new("tsig-keygen")
            .args(["-a", "hmac-sha256", key_name])
            .output()
            .unwrap_or_else(|e| panic!("tsig-keygen: {e}"));
        assert!(output.status.success(), "tsig-keygen failed: {output:?}");
        let path = self.path.join(file_name);
        fs::write(&path, &output.stdout).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// `GET path` from `host`'s service.
    #[track_caller]
    pub fn get(&self, host: &str, path: &str) -> Result<HttpResponse> {
        http_get(self.host(host).service_addr(), path)
    }

    /// Every process the lab runs now, from its pidfiles: `(what, pid)`.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pidfiles: Vec<(String, PathBuf)> = Vec::new();
        for host in &self.hosts {
            pidfiles.push((format!("{} sshd", host.name), host.sshd_pidfile.clone()));
            pidfiles.push((
                format!("{} service", host.name),
                host.service_pidfile.clone(),
            ));
        }
        if let Some(dns) = &self.dns {
            pidfiles.push(("named".to_owned(), dns.pidfile.clone()));
        }
        pidfiles
            .into_iter()
            .filter_map(|(what, pidfile)| {
                let pid = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
                is_running(pid).then_some((what, pid))
            })
            .collect()
    }

    /// Runs `scripts/lab down DIR` (or `scripts/mail-lab`'s) now (dropping
    /// the lab runs it again, which is harmless).
    pub fn down(&self) -> Output {
        let mut command = Command::new("bash");
        command
            .arg(workspace_file(self.script))
            .arg("down")
            .arg(&self.path);
        run_with_timeout(&mut command, SCRIPT_TIMEOUT).unwrap_or_else(|e| Output {
            status: failed_status(),
            stdout: Vec::new(),
            stderr: e.to_string().into_bytes(),
        })
    }

    /// The last lines of every log of the lab, for failure messages.
    pub fn logs(&self) -> String {
        let mut logs = vec![self.path.join("dns/named.log")];
        for host in &self.hosts {
            logs.push(host.dir.join("sshd.log"));
            logs.push(host.dir.join("run/service.log"));
        }
        let mut text = String::new();
        for log in logs {
            if let Ok(content) = fs::read_to_string(&log) {
                let lines: Vec<&str> = content.lines().collect();
                let tail = &lines[lines.len().saturating_sub(15)..];
                text.push_str(&format!("--- {} ---\n{}\n", log.display(), tail.join("\n")));
            }
        }
        text
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let before = self.pids();
        let down = self.down();
        // Should `down` have failed, what the pidfiles named still goes (by
        // PID, and only a process whose command line names this lab).
        for (what, pid) in before {
            if is_running(pid) && cmdline(pid).contains(&*self.path.to_string_lossy()) {
                eprintln!("lab: `scripts/lab down` left {what} (pid {pid}) running; killing it");
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        if !down.status.success() {
            eprintln!(
                "lab: `scripts/lab down {}` failed: {}{}",
                self.path.display(),
                String::from_utf8_lossy(&down.stdout),
                String::from_utf8_lossy(&down.stderr)
            );
        }
        if thread::panicking() {
            eprintln!(
                "lab in {} (the test failed):\n{}",
                self.path.display(),
                self.logs()
            );
        }
        if std::env::var_os("CUTOVER_KEEP_LAB").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("lab: kept {}", dir.keep().display());
            }
        }
    }
}

/// Whether `pid` is a live process (a zombie is not).
pub fn is_running(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, None | Some('Z' | 'X' | 'x'))
}

/// The children of `pid`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name in parentheses: the state, then the parent.
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok())
                == Some(parent)
        })
        .collect()
}

fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// Compares two directory trees: the same files (by relative path), with
/// the same bytes. `Err` says the first difference.
pub fn same_tree(a: &Path, b: &Path) -> Result<(), String> {
    fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                files(root, &path, out)?;
            } else {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_owned());
            }
        }
        Ok(())
    }
    let list = |root: &Path| -> Result<Vec<PathBuf>, String> {
        let mut out = Vec::new();
        files(root, root, &mut out).map_err(|e| format!("{}: {e}", root.display()))?;
        out.sort();
        Ok(out)
    };
    let (left, right) = (list(a)?, list(b)?);
    if left != right {
        return Err(format!(
            "different files:\n{}: {left:?}\n{}: {right:?}",
            a.display(),
            b.display()
        ));
    }
    for file in &left {
        let read = |root: &Path| {
            fs::read(root.join(file)).map_err(|e| format!("{}: {e}", root.join(file).display()))
        };
        if read(a)? != read(b)? {
            return Err(format!("{} differs", file.display()));
        }
    }
    Ok(())
}

/// `GET path` over HTTP/1.0.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<HttpResponse> {
    let fail = |e: std::io::Error| LabError::new(format!("GET http://{addr}{path}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(fail)?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).map_err(fail)?;
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| LabError::new(format!("GET http://{addr}{path}: no end of headers")))?;
    let head = String::from_utf8_lossy(&bytes[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            LabError::new(format!(
                "GET http://{addr}{path}: bad status line in {head:?}"
            ))
        })?;
    Ok(HttpResponse {
        status,
        body: bytes[split + 4..].to_vec(),
    })
}

/// Two octets `127.A.B.0/24` for a new lab: different for each lab of this
/// process, and, by the process id and the time, most likely from those of
/// other processes. Free ports on them are checked anyway.
fn pick_net() -> [u8; 2] {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static SEED: OnceLock<u32> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        std::process::id()
            .wrapping_mul(2_654_435_761)
            .wrapping_add(nanos)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Blocks 127.10.0.0 to 127.209.249.0, never the default lab's 127.0.0.x;
    // 7919 is prime to their number, so a process goes through them all
    // before it uses one twice.
    let k = (seed % 50_000 + (n % 50_000) * 7919) % 50_000;
    [10 + (k / 250) as u8, (k % 250) as u8]
}

/// A port free on every address (TCP, and UDP too when `udp`), not in `taken`.
fn free_port(addrs: &[Ipv4Addr], taken: &[u16], udp: bool) -> Result<u16> {
    let Some(first) = addrs.first() else {
        // No host: the port is not used; any number will do.
        return Ok(if taken.contains(&1) { 2 } else { 1 });
    };
    for _ in 0..100 {
        let port = TcpListener::bind((*first, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| LabError::new(format!("cannot bind {first}: {e}")))?
            .port();
        if taken.contains(&port) {
            continue;
        }
        let free = addrs.iter().all(|a| {
            TcpListener::bind((*a, port)).is_ok() && (!udp || UdpSocket::bind((*a, port)).is_ok())
        });
        if free {
            return Ok(port);
        }
    }
    Err(LabError::new(format!("no free port on {addrs:?}")))
}

/// Reads `NAME=value` and `export NAME=value` lines; values are bare words
/// or single-quoted (as `scripts/lab` writes them).
fn parse_env(text: &str) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, raw) = line
            .split_once('=')
            .ok_or_else(|| LabError::new(format!("lab.env: not an assignment: {line}")))?;
        let mut value = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => value.push(c),
                        None => {
                            return Err(LabError::new(format!("lab.env: unclosed quote: {line}")))
                        }
                    }
                },
                '\\' => value.extend(chars.next()),
                c => value.push(c),
            }
        }
        vars.insert(name.to_owned(), value);
    }
    Ok(vars)
}

/// Exit status 1, for a `down` that could not even run.
fn failed_status() -> std::process::ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(1 << 8)
}

/// Runs `command` with stdin from /dev/null; kills it (its own child, by
/// its handle) past `timeout`.
fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Output> {
    run_with_input(command, b"", timeout)
}

fn run_with_input(command: &mut Command, input: &[u8], timeout: Duration) -> Result<Output> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::new(format!("cannot start {shown}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes the pipe: not an error.
        let _ = stdin.write_all(input);
    }
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
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                // What it said before it was stopped: the readers end when
                // the pipes close, unless something it started still holds
                // them (then, after a bounded wait, without that).
                let deadline = Instant::now() + Duration::from_secs(2);
                let said = |h: thread::JoinHandle<Vec<u8>>| {
                    while !h.is_finished() && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(10));
                    }
                    if h.is_finished() {
                        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
                    } else {
                        "(its output is still held open by a process it started)\n".to_owned()
                    }
                };
                return Err(LabError::new(format!(
                    "{shown} did not finish in {timeout:?}; it said:\n{}{}",
                    said(stdout),
                    said(stderr)
                )));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(LabError::new(format!("{shown}: {e}"))),
        }
    };
    let join = |h: thread::JoinHandle<Vec<u8>>| h.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script past its time is stopped, and the error says what it had
    /// printed: a lab that did not start in time shows how far it got.
    #[test]
    fn a_script_past_its_time_is_stopped_and_its_output_shown() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "echo got this far; echo and said this >&2; exec sleep 30",
        ]);
        let started = Instant::now();
        let e = run_with_timeout(&mut command, Duration::from_millis(500))
            .expect_err("stopped at its time");
        let e = e.to_string();
        assert!(e.contains("did not finish in 500ms"), "{e}");
        assert!(e.contains("got this far"), "{e}");
        assert!(e.contains("and said this"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10), "{e}");
        // Something it started holds the pipes (a `sleep 4` in the
        // background, which ends by itself): the error comes anyway.
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 4 & echo started; exec sleep 30"]);
        let e = run_with_timeout(&mut command, Duration::from_millis(500))
            .expect_err("stopped at its time")
            .to_string();
        assert!(e.contains("still held open"), "{e}");
    }

    #[test]
    fn reads_what_the_script_writes() {
        let vars = parse_env(
            "# comment\nLAB_DIR=/tmp/lab\nLAB_X='a b'\\''c'\nexport CUTOVER_VAR_lab_dir=/tmp/lab\n",
        )
        .expect("it parses");
        assert_eq!(vars["LAB_DIR"], "/tmp/lab");
        assert_eq!(vars["LAB_X"], "a b'c");
        assert_eq!(vars["CUTOVER_VAR_lab_dir"], "/tmp/lab");
    }

    #[test]
    fn nets_differ_within_a_process() {
        let a = pick_net();
        let b = pick_net();
        assert_ne!(a, b);
        assert!((10..210).contains(&a[0]));
    }
}

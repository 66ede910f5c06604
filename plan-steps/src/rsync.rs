//! The `Rsync` step: the command line run on the source host, and what its
//! `--stats` say.
//!
//! The copy runs on the `from` host and pushes to the `to` host, over SSH
//! (`user@address:dest`, with `-e "ssh -p PORT -o BatchMode=yes"` unless the
//! step's `args` give their own `-e`/`--rsh`) or to an rsync daemon when
//! `dest` is an `rsync://` URL or `host::module` path. Every value from the
//! plan is shell-quoted.

use plan_core::template::quote;
use plan_core::Host;

/// What to copy, resolved from a plan step and its hosts.
#[derive(Clone, Debug)]
pub struct Copy<'a> {
    /// Source path on the `from` host.
    pub path: &'a str,
    /// Destination: a path on the `to` host, or a daemon target.
    pub dest: &'a str,
    /// The destination host (for SSH).
    pub to: &'a Host,
    /// Delete files at the destination that the source lacks.
    pub delete: bool,
    /// Extra arguments from the plan.
    pub args: &'a [String],
}

/// Whether `dest` names an rsync daemon module rather than a path.
pub fn is_daemon(dest: &str) -> bool {
    dest.starts_with("rsync://") || dest.contains("::")
}

impl Copy<'_> {
    /// The shell command that performs the copy (`dry_run`: only measure it).
    pub fn command(&self, dry_run: bool) -> String {
        self.command_with(dry_run, "")
    }

    /// The dry run `cutover probe` runs: as [`Copy::command`]'s, its SSH
    /// trusting only host keys the source host already knows and writing
    /// none ([`PROBE_SSH_OPTIONS`]).
    pub fn probe_command(&self) -> String {
        self.command_with(true, PROBE_SSH_OPTIONS)
    }

    fn command_with(&self, dry_run: bool, ssh_options: &str) -> String {
        let mut words: Vec<String> = vec!["rsync".into(), "-a".into(), "--stats".into()];
        if self.delete {
            words.push("--delete".into());
        }
        if self.over_our_ssh() {
            let port = self.to.port.unwrap_or(22);
            words.push("-e".into());
            words.push(quote(&format!("ssh -p {port} -o BatchMode=yes{ssh_options}")).into_owned());
        }
        words.extend(self.args.iter().map(|a| quote(a).into_owned()));
        // After the plan's arguments, so that none of them undoes it.
        if dry_run {
            words.push("--dry-run".into());
        }
        words.push("--".into());
        words.push(quote(self.path).into_owned());
        words.push(quote(&self.target()).into_owned());
        words.join(" ")
    }

    /// Whether the copy goes over the SSH remote shell cutover gives it
    /// (not a daemon, not the plan's own `-e`).
    fn over_our_ssh(&self) -> bool {
        !is_daemon(self.dest)
            && !self
                .args
                .iter()
                .any(|a| a == "-e" || a.starts_with("--rsh"))
    }

    /// The plan's argument that makes even a dry run act (run a command on
    /// the destination, write a log or a batch file), if any: such a copy
    /// cannot be probed read-only.
    pub fn acting_argument(&self) -> Option<&str> {
        const ACTING: [&str; 6] = [
            "--rsync-path",
            "--log-file",
            "--write-batch",
            "--only-write-batch",
            "--remote-option",
            "-M",
        ];
        self.args
            .iter()
            .find(|a| {
                ACTING
                    .iter()
                    .any(|act| a.as_str() == *act || a.starts_with(&format!("{act}=")))
            })
            .map(String::as_str)
    }

    /// A command for the source host that streams `bytes` zeros to the
    /// destination host over the copy's remote shell (uncompressed, with
    /// [`PROBE_SSH_OPTIONS`]), where `dd` throws them away and says how
    /// long they took ([`parse_dd`]). `None` when the copy does not use
    /// cutover's SSH remote shell. It writes nothing anywhere: `probe`
    /// times the link with it.
    pub fn timed_stream(&self, bytes: u64) -> Option<String> {
        if !self.over_our_ssh() {
            return None;
        }
        let port = self.to.port.unwrap_or(22);
        let user = match &self.to.user {
            Some(user) => format!(" -l {}", quote(user)),
            None => String::new(),
        };
        Some(format!(
            "head -c {bytes} /dev/zero | ssh -p {port} -o BatchMode=yes -o Compression=no\
             {PROBE_SSH_OPTIONS}{user} -- {} 'LC_ALL=C dd of=/dev/null bs=65536'",
            quote(&self.to.address)
        ))
    }

    /// A command for the destination host that prints `df -Pk` of the
    /// file system the destination is (or would be created) on (`None`
    /// for a daemon target).
    pub fn room_command(&self) -> Option<String> {
        if is_daemon(self.dest) {
            return None;
        }
        Some(format!(
            "d={}; while [ ! -e \"$d\" ]; do d=$(dirname -- \"$d\"); done; LC_ALL=C df -Pk -- \"$d\"",
            quote(self.dest)
        ))
    }

    /// `user@address:dest`, or the daemon target as written.
    fn target(&self) -> String {
        if is_daemon(self.dest) {
            return self.dest.to_owned();
        }
        match &self.to.user {
            Some(user) => format!("{user}@{}:{}", self.to.address, self.dest),
            None => format!("{}:{}", self.to.address, self.dest),
        }
    }
}

/// The SSH options of the probe's commands on a copy's source host: a
/// destination host key the source does not know is refused rather than
/// trusted, and none is written to its known_hosts.
pub const PROBE_SSH_OPTIONS: &str = " -o StrictHostKeyChecking=yes -o UpdateHostKeys=no";

/// The seconds GNU `dd` (`LC_ALL=C`) says it took to copy `bytes`, from
/// its report `N bytes (...) copied, S s, R MB/s`; `None` unless the report
/// is there and counts all of them.
pub fn parse_dd(output: &str, bytes: u64) -> Option<f64> {
    let line = output.lines().find(|l| l.contains(" copied, "))?;
    let counted: u64 = line.split_whitespace().next()?.parse().ok()?;
    let (_, after) = line.split_once(" copied, ")?;
    let seconds: f64 = after.split_whitespace().next()?.parse().ok()?;
    (counted == bytes && seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

/// The figures of `rsync --stats` that estimates and checks need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// "Number of regular files transferred" (or "Number of files transferred").
    pub files_transferred: u64,
    /// "Total transferred file size", in bytes.
    pub bytes_transferred: u64,
    /// "Total file size", in bytes.
    pub total_bytes: u64,
}

/// Reads the `--stats` block of rsync's output; `None` when there is none.
pub fn parse_stats(output: &str) -> Option<Stats> {
    let mut stats = Stats::default();
    let mut seen = false;
    for line in output.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || -> Option<u64> {
            let first = value.split_whitespace().next()?;
            first.replace([',', '.'], "").parse().ok()
        };
        match key.trim() {
            "Number of regular files transferred" | "Number of files transferred" => {
                stats.files_transferred = number()?;
                seen = true;
            }
            "Total transferred file size" => stats.bytes_transferred = number()?,
            "Total file size" => stats.total_bytes = number()?,
            _ => {}
        }
    }
    seen.then_some(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(user: Option<&str>, port: Option<u16>) -> Host {
        Host {
            name: "fermium".into(),
            address: "fermium.wikimedia.org".into(),
            user: user.map(str::to_owned),
            port,
            identity: None,
            vars: Vec::new(),
            env: Vec::new(),
            span: plan_core::Span::default(),
        }
    }

    #[test]
    fn pushes_over_ssh_with_every_value_quoted() {
        let to = host(Some("root"), Some(2222));
        let args = vec!["--exclude".to_owned(), "qfiles/bad dir".to_owned()];
        let copy = Copy {
            path: "/var/lib/mailman/",
            dest: "/var/lib/mailman/",
            to: &to,
            delete: true,
            args: &args,
        };
        assert_eq!(
            copy.command(false),
            "rsync -a --stats --delete -e 'ssh -p 2222 -o BatchMode=yes' --exclude 'qfiles/bad dir' \
             -- /var/lib/mailman/ root@fermium.wikimedia.org:/var/lib/mailman/"
        );
        // The dry run's flag comes after the plan's arguments: none undoes it.
        assert!(copy
            .command(true)
            .ends_with("'qfiles/bad dir' --dry-run -- /var/lib/mailman/ root@fermium.wikimedia.org:/var/lib/mailman/"));
        // The probe's own: strict about the destination's host key, and
        // writes none; its timed stream logs in with -l, the address after --.
        assert!(copy
            .probe_command()
            .contains("-o BatchMode=yes -o StrictHostKeyChecking=yes -o UpdateHostKeys=no'"));
        let stream = copy.timed_stream(1024).expect("over ssh");
        assert_eq!(
            stream,
            "head -c 1024 /dev/zero | ssh -p 2222 -o BatchMode=yes -o Compression=no \
             -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -l root -- \
             fermium.wikimedia.org 'LC_ALL=C dd of=/dev/null bs=65536'"
        );
        let report = "512+0 records in\n512+0 records out\n\
                      33554432 bytes (34 MB, 32 MiB) copied, 0.138 s, 243 MB/s\n";
        assert_eq!(parse_dd(report, 33_554_432), Some(0.138));
        assert_eq!(parse_dd(report, 1024), None, "a stream cut short");
        assert_eq!(parse_dd("dd: invalid option", 1024), None);
        assert_eq!(copy.acting_argument(), None);
        let acting = vec!["--rsync-path=mkdir -p /x && rsync".to_owned()];
        assert_eq!(
            Copy {
                args: &acting,
                ..copy
            }
            .acting_argument(),
            Some("--rsync-path=mkdir -p /x && rsync")
        );
    }

    #[test]
    fn daemons_and_own_shells_get_no_ssh_option() {
        let to = host(None, None);
        let none: Vec<String> = Vec::new();
        let daemon = Copy {
            path: "/srv/",
            dest: "fermium::mailman/",
            to: &to,
            delete: false,
            args: &none,
        };
        assert_eq!(
            daemon.command(false),
            "rsync -a --stats -- /srv/ fermium::mailman/"
        );
        let own = vec!["-e".to_owned(), "ssh -i /root/.ssh/sync".to_owned()];
        let copy = Copy {
            path: "/srv/",
            dest: "/srv/",
            to: &to,
            delete: false,
            args: &own,
        };
        assert_eq!(
            copy.command(false),
            "rsync -a --stats -e 'ssh -i /root/.ssh/sync' -- /srv/ fermium.wikimedia.org:/srv/"
        );
    }

    #[test]
    fn reads_the_stats_of_rsync_3() {
        let output = "\nNumber of files: 1,204 (reg: 1,100, dir: 104)\nNumber of created files: 3 (reg: 3)\n\
            Number of deleted files: 0\nNumber of regular files transferred: 17\nTotal file size: 3,524,111 bytes\n\
            Total transferred file size: 52,410 bytes\nLiteral data: 52,410 bytes\n\
            sent 54,000 bytes  received 400 bytes  108,800.00 bytes/sec\ntotal size is 3,524,111  speedup is 64.78\n";
        assert_eq!(
            parse_stats(output),
            Some(Stats {
                files_transferred: 17,
                bytes_transferred: 52_410,
                total_bytes: 3_524_111
            })
        );
        assert_eq!(parse_stats("rsync: connection unexpectedly closed"), None);
    }
}

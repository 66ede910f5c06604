//! What `cutover probe` finds: a read-only look at the hosts, the DNS
//! server and each step, days or minutes before the window.
//!
//! [`Executor::probe`](crate::executor::Executor::probe) does the looking
//! (in `executor/probe.rs`); this module holds what it finds, ranked, and
//! the pure pieces: which word of a command is its program, what `df`
//! says, how long a copy should take.
//!
//! Nothing the probe runs can change anything: `command -v`, `test -e`,
//! `df`, `id -un`, `rsync --dry-run`, `systemctl show`/`is-active`, a
//! service's own `status` command, the step's `check` (a check only looks,
//! by the plan's contract) and the step's `probe` (the plan vouches for it),
//! a signed DNS query, and a timed stream of zeros from one host to another
//! that the receiving end throws away (`dd of=/dev/null`, timing it).

use std::time::Duration;

use serde::Serialize;

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The run would fail, or a rollback could not restore what was there.
    Blocker,
    /// Worth a look before the window.
    Warning,
    /// What the probe saw.
    Fact,
}

/// What a finding is about, as a stable code (`--json`'s `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A host answered and took the login.
    HostReached,
    /// A host could not be reached (name, TCP, SSH handshake, timeout).
    HostUnreachable,
    /// known_hosts holds no key for the host (the probe never adds one).
    HostKeyUnknown,
    /// The host offered another key than the one on record.
    HostKeyChanged,
    /// No way of logging in worked.
    LoginRefused,
    /// A program a step (or its revert) needs is not on the host's PATH.
    MissingProgram,
    /// A program was found.
    ProgramFound,
    /// A command does not start with a plain program name: only its own
    /// `probe` could look at it.
    NotProbeable,
    /// The step's `probe` command failed.
    ProbeFailed,
    /// The step's `probe` command passed.
    ProbePassed,
    /// The step's check already passes.
    AlreadyDone,
    /// The step's check does not pass yet (the expected state).
    NotDoneYet,
    /// The step's check could not be run to an answer.
    CheckNotRun,
    /// The DNS server answered a signed query.
    DnsAnswered,
    /// The DNS server cannot be reached, or the key cannot be read.
    DnsUnreachable,
    /// The DNS server refused the TSIG key.
    TsigRefused,
    /// A record is as the plan expects before its change.
    RecordAsExpected,
    /// A record is not as the plan expects before its change.
    RecordNotAsExpected,
    /// A unit or service and its current state.
    ServiceState,
    /// The service manager does not know the unit.
    ServiceUnknown,
    /// A copy's source path does not exist.
    MissingSource,
    /// The copy's dry run failed.
    CopyRefused,
    /// What a copy has pending, and how long it should take.
    Transfer,
    /// The destination has not room for what is pending.
    NoRoom,
    /// How much room the destination has.
    Room,
    /// A copy would take longer than the step's duration model (or its
    /// deadline) allows.
    TransferTooLong,
    /// A step the probe has nothing to look at (a wait, a manual step).
    NothingToProbe,
}

/// One thing the probe found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// What it is about.
    pub kind: FindingKind,
    /// The step, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The host, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What was seen, in a sentence.
    pub message: String,
}

/// What the probe measured of an `Rsync` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyMeasure {
    /// The step.
    pub step: String,
    /// Files the dry run would transfer.
    pub files: u64,
    /// Bytes of file data the dry run would transfer.
    pub bytes: u64,
    /// Bytes of every file of the source.
    pub total_bytes: u64,
    /// How long the dry run took (walking and comparing both trees), ms.
    pub scan_millis: u64,
    /// A timed transfer between the two hosts: bytes, and ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<(u64, u64)>,
}

impl CopyMeasure {
    /// The copy's expected time: the dry run's walk, and the pending bytes
    /// at the measured rate (`None` without a rate).
    pub fn expected(&self) -> Option<Duration> {
        let (bytes, millis) = self.rate?;
        if bytes == 0 || millis == 0 {
            return None;
        }
        let transfer = self.bytes as f64 * millis as f64 / bytes as f64 / 1000.0;
        Some(Duration::from_millis(self.scan_millis) + Duration::from_secs_f64(transfer))
    }
}

/// Everything a probe found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Probed {
    /// Findings, blockers first, then in the order seen.
    pub findings: Vec<Finding>,
    /// Copies measured.
    pub copies: Vec<CopyMeasure>,
}

impl Probed {
    /// How many findings of this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Adds a finding.
    pub(crate) fn add(
        &mut self,
        severity: Severity,
        kind: FindingKind,
        step: Option<&str>,
        host: Option<&str>,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            severity,
            kind,
            step: step.map(str::to_owned),
            host: host.map(str::to_owned),
            message: message.into(),
        });
    }

    /// Blockers first, then warnings, then facts; otherwise as found.
    pub(crate) fn rank(&mut self) {
        self.findings.sort_by_key(|f| f.severity);
    }
}

/// The program a shell command runs first, when it is a plain word (not a
/// redirection, a subshell, a quoted or expanded word), past variable
/// assignments (`LANG=C sort`) and the wrappers that run the next word
/// (`sudo`, `exec`, `env`, `nohup`, `time`, `command`; `sudo` only without
/// options). `None` when the command does not start with one.
pub fn program_of(command: &str) -> Option<&str> {
    const WRAPPERS: [&str; 6] = ["sudo", "exec", "env", "nohup", "time", "command"];
    let plain = |word: &str| {
        word.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '@')
        })
    };
    let assignment = |word: &str| {
        word.split_once('=').is_some_and(|(name, value)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && plain(value)
        })
    };
    for word in command.split_whitespace() {
        if assignment(word) || WRAPPERS.contains(&word) {
            continue;
        }
        return (plain(word) && !word.starts_with('-')).then_some(word);
    }
    None
}

/// The bytes available on the file system `LC_ALL=C df -Pk` describes:
/// on its last line, the column before the capacity (`NN%`), in KiB (so
/// names with spaces, before or after, do not shift it).
pub fn df_available(output: &str) -> Option<u64> {
    let line = output.lines().rev().find(|l| !l.trim().is_empty())?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let capacity = words
        .iter()
        .position(|w| w.ends_with('%') && w[..w.len() - 1].parse::<u32>().is_ok())?;
    let kib: u64 = words.get(capacity.checked_sub(1)?)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A byte count for people: `1.5 GB`, `512 kB`, `12 B` (powers of 1000).
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_the_first_plain_word() {
        assert_eq!(program_of("systemctl stop mailman3"), Some("systemctl"));
        assert_eq!(program_of("  /usr/sbin/exim4 -bp"), Some("/usr/sbin/exim4"));
        assert_eq!(program_of("FOO=1 make"), Some("make"));
        assert_eq!(program_of("sudo -u list mailman stop"), None);
        assert_eq!(program_of("sudo systemctl stop exim4"), Some("systemctl"));
        assert_eq!(program_of("FOO=$(x) make"), None);
        assert_eq!(program_of("$(which x) y"), None);
        assert_eq!(program_of("'quoted' y"), None);
        assert_eq!(program_of("(cd /x && y)"), None);
        assert_eq!(program_of(""), None);
    }

    #[test]
    fn df_says_what_is_available() {
        let output = "Filesystem     1024-blocks  Used Available Capacity Mounted on\n\
                      tmpfs                 64     8        56      13% /tmp/lab/host2/srv\n";
        assert_eq!(df_available(output), Some(56 * 1024));
        assert_eq!(df_available("df: /nowhere: No such file"), None);
        let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      my disk 100 40 60 40% /mnt/with space\n";
        assert_eq!(df_available(spaced), Some(60 * 1024));
    }

    #[test]
    fn a_copy_takes_its_walk_and_its_bytes_at_the_rate() {
        let copy = CopyMeasure {
            step: "final-rsync".into(),
            files: 3,
            bytes: 50_000_000,
            total_bytes: 60_000_000,
            scan_millis: 500,
            rate: Some((10_000_000, 1000)),
        };
        assert_eq!(copy.expected(), Some(Duration::from_millis(5500)));
        assert_eq!(CopyMeasure { rate: None, ..copy }.expected(), None);
        assert_eq!(bytes_text(50_000_000), "50.0 MB");
        assert_eq!(bytes_text(999), "999 B");
    }
}

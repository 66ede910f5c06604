//! Host key verification against an OpenSSH known_hosts file.
//!
//! The file is read as OpenSSH reads it: one `HOSTS KEYTYPE BASE64 [COMMENT]`
//! per line, `HOSTS` a comma-separated list of patterns (`*`, `?`, `!`) or
//! one hashed name (`|1|SALT|HMAC-SHA1`, as `ssh-keygen -H` writes), a host
//! on a port other than 22 written `[host]:port`, `@revoked` lines refusing a
//! key, `@cert-authority` lines ignored (certificates are not supported).
//! Lines that do not parse are skipped.
//!
//! The verdict follows OpenSSH: a line with the offered key accepts it
//! (unless a line revokes it); else a line with another key of the same type
//! means the key CHANGED, and so does a host known only by keys of other
//! types (the connection asks for the known types first, so a server that
//! still had one would have offered it); else the key is unknown. A changed
//! key is always refused; an unknown key is refused under
//! [`HostKeyPolicy::Strict`] and appended to the file under
//! [`HostKeyPolicy::AcceptNew`] (OpenSSH's `StrictHostKeyChecking
//! accept-new`).

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use data_encoding::{BASE64, BASE64_NOPAD};

use super::config::{SshEnv, SshTarget};
use super::error::{SshError, SshErrorKind};
use super::pattern;

/// What to do with a host key the file does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse the connection.
    Strict,
    /// Trust it on first use: add it to the file and connect.
    AcceptNew,
}

/// The known_hosts file host keys are checked against, and the policy for
/// keys it does not hold. A changed key is refused under every policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHosts {
    /// The file (it need not exist yet).
    pub path: PathBuf,
    /// What to do with an unknown key.
    pub policy: HostKeyPolicy,
}

/// A server's public host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// The key type as in the key and the file (`ssh-ed25519`, ...).
    pub key_type: String,
    /// The key in SSH wire format.
    pub blob: Vec<u8>,
}

impl HostKey {
    /// A key from its wire format, whose first field is the type name.
    pub fn from_blob(blob: &[u8]) -> Option<HostKey> {
        let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        let name = blob.get(4..4 + len)?;
        Some(HostKey {
            key_type: String::from_utf8(name.to_vec()).ok()?,
            blob: blob.to_vec(),
        })
    }

    /// The fingerprint as OpenSSH shows it: `SHA256:` and unpadded base64.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.blob);
        format!("SHA256:{}", BASE64_NOPAD.encode(digest.as_ref()))
    }

    /// `TYPE FINGERPRINT`, for messages.
    fn describe(&self) -> String {
        format!("{} {}", self.key_type, self.fingerprint())
    }
}

/// Serializes additions to known_hosts files within this process, so
/// parallel connections to one new host add it once.
static APPEND: Mutex<()> = Mutex::new(());

impl KnownHosts {
    /// `path` with `policy`.
    pub fn new(path: impl Into<PathBuf>, policy: HostKeyPolicy) -> KnownHosts {
        KnownHosts {
            path: path.into(),
            policy,
        }
    }

    /// The user's `~/.ssh/known_hosts` with `policy`.
    pub fn user(env: &SshEnv, policy: HostKeyPolicy) -> KnownHosts {
        KnownHosts::new(env.known_hosts_path(), policy)
    }

    /// The name a host is filed under: `address` on port 22, else
    /// `[address]:port`.
    pub fn host_name(address: &str, port: u16) -> String {
        if port == 22 {
            address.to_owned()
        } else {
            format!("[{address}]:{port}")
        }
    }

    /// The key types on file for `target`, to ask its server for those
    /// first.
    pub(crate) fn known_types(&self, target: &SshTarget) -> Result<Vec<String>, SshError> {
        let name = KnownHosts::host_name(&target.address, target.port);
        let mut types: Vec<String> = Vec::new();
        for entry in self.read(target)?.iter().filter(|e| e.matches(&name)) {
            if entry.marker.is_none() && !types.contains(&entry.key.key_type) {
                types.push(entry.key.key_type.clone());
            }
        }
        Ok(types)
    }

    /// Accepts `key` for `target`, adds it under
    /// [`HostKeyPolicy::AcceptNew`], or refuses it with an error saying which
    /// host, which key and where it looked.
    pub(crate) fn verify(&self, target: &SshTarget, key: &HostKey) -> Result<(), SshError> {
        let name = KnownHosts::host_name(&target.address, target.port);
        let file = self.path.display();
        let refuse = |kind, message: String| Err(SshError::new(kind, &target.name, message));
        match verdict(&self.read(target)?, &name, key) {
            Verdict::Match => Ok(()),
            Verdict::Revoked { line } => refuse(
                SshErrorKind::HostKeyChanged,
                format!(
                    "the host key of {name} ({}) is marked @revoked in {file}:{line}; refusing to connect",
                    key.describe()
                ),
            ),
            Verdict::Changed { line, old } => refuse(
                SshErrorKind::HostKeyChanged,
                format!(
                    "the host key of {name} has CHANGED: the server offers {}, but {file}:{line} \
                     holds {} for it. Someone may be intercepting the connection, or the host was \
                     reinstalled; refusing to connect. If the change is expected, remove the old \
                     key (ssh-keygen -R '{name}' -f {file}) and connect again",
                    key.describe(),
                    old.describe()
                ),
            ),
            Verdict::OtherTypes { known } => refuse(
                SshErrorKind::HostKeyChanged,
                format!(
                    "the host key of {name} has CHANGED: the server offers {}, but {file} knows \
                     it only by {} key(s) (line {}), which the server no longer offers; refusing \
                     to connect. If the change is expected, remove the old keys (ssh-keygen -R \
                     '{name}' -f {file}) and connect again",
                    key.describe(),
                    known.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(", "),
                    known.iter().map(|(l, _)| l.to_string()).collect::<Vec<_>>().join(", "),
                ),
            ),
            Verdict::Unknown => match self.policy {
                HostKeyPolicy::Strict => refuse(
                    SshErrorKind::HostKeyUnknown,
                    format!(
                        "the host key of {name} is not known: the server offers {}, and {file} \
                         has no key for {name}; refusing to connect (check the fingerprint and \
                         add the key to the file, or accept new host keys)",
                        key.describe()
                    ),
                ),
                HostKeyPolicy::AcceptNew => self.add(target, &name, key),
            },
        }
    }

    /// Appends `key` for `name`, unless meanwhile another connection did.
    fn add(&self, target: &SshTarget, name: &str, key: &HostKey) -> Result<(), SshError> {
        // A poisoned lock only means another addition panicked; the file is
        // re-read below either way.
        let _guard = APPEND
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match verdict(&self.read(target)?, name, key) {
            Verdict::Match => return Ok(()),
            Verdict::Unknown => {}
            // Another connection filed another key meanwhile: decide again.
            _ => return self.verify(target, key),
        }
        self.append(name, key).map_err(|e| {
            SshError::new(
                SshErrorKind::KnownHostsFile,
                &target.name,
                format!(
                    "cannot add the host key of {name} to {}: {e}",
                    self.path.display()
                ),
            )
            .with_source(e)
        })?;
        tracing::info!(
            host = %target.name,
            "added the host key of {name} ({}) to {}",
            key.describe(),
            self.path.display()
        );
        Ok(())
    }

    fn append(&self, name: &str, key: &HostKey) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(&self.path)?;
        let needs_newline = match fs::read(&self.path) {
            Ok(bytes) => bytes.last().is_some_and(|b| *b != b'\n'),
            Err(_) => false,
        };
        let line = format!(
            "{}{name} {} {}\n",
            if needs_newline { "\n" } else { "" },
            key.key_type,
            BASE64.encode(&key.blob)
        );
        // One write of a short line: appends from other processes do not
        // interleave with it.
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    fn read(&self, target: &SshTarget) -> Result<Vec<Entry>, SshError> {
        read_entries(&self.path).map_err(|e| {
            SshError::new(
                SshErrorKind::KnownHostsFile,
                &target.name,
                format!("cannot read {}: {e}", self.path.display()),
            )
            .with_source(e)
        })
    }
}

/// The OpenSSH host key algorithms in OpenSSH's order of preference
/// (`ssh-rsa` with SHA-1 and DSA are left out, as OpenSSH does).
const ALGORITHMS: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// The host key algorithms to offer: those of the `known` key types first,
/// then the others, each in OpenSSH's order, all among `supported`.
pub(crate) fn algorithm_preference(known: &[String], supported: &[&str]) -> String {
    let of_type = |alg: &str, key_type: &str| match key_type {
        "ssh-rsa" => alg.starts_with("rsa-sha2-"),
        other => alg == other,
    };
    let is_known = |alg: &str| known.iter().any(|t| of_type(alg, t));
    let usable = ALGORITHMS.iter().filter(|a| supported.contains(a));
    let (first, rest): (Vec<&str>, Vec<&str>) = usable.partition(|a| is_known(a));
    first.into_iter().chain(rest).collect::<Vec<_>>().join(",")
}

/// One key line of a known_hosts file.
#[derive(Clone, Debug)]
struct Entry {
    line: usize,
    marker: Option<Marker>,
    hosts: String,
    key: HostKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Revoked,
    CertAuthority,
}

impl Entry {
    /// Whether this line is about `name` (`host` or `[host]:port`).
    fn matches(&self, name: &str) -> bool {
        match self.hosts.strip_prefix("|1|") {
            Some(hashed) => hashed_matches(hashed, name),
            None => pattern::list(self.hosts.split(','), name),
        }
    }
}

/// `SALT|HASH` (base64 each): HMAC-SHA1 of the name keyed with the salt.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

fn read_entries(path: &Path) -> io::Result<Vec<Entry>> {
    match fs::read(path) {
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn parse(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next().filter(|f| !f.starts_with('#')) else {
            continue;
        };
        let marker = match first {
            "@revoked" => Some(Marker::Revoked),
            "@cert-authority" => Some(Marker::CertAuthority),
            _ => None,
        };
        if marker.is_some() {
            match fields.next() {
                Some(hosts) => first = hosts,
                None => continue,
            }
        }
        let (Some(key_type), Some(encoded)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(blob) = BASE64.decode(encoded.as_bytes()) else {
            continue;
        };
        // The type inside the key must agree with the type written.
        match HostKey::from_blob(&blob) {
            Some(key) if key.key_type == key_type => entries.push(Entry {
                line: index + 1,
                marker,
                hosts: first.to_owned(),
                key,
            }),
            _ => continue,
        }
    }
    entries
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Match,
    Revoked { line: usize },
    Changed { line: usize, old: HostKey },
    OtherTypes { known: Vec<(usize, String)> },
    Unknown,
}

fn verdict(entries: &[Entry], name: &str, key: &HostKey) -> Verdict {
    let about: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.marker != Some(Marker::CertAuthority) && e.matches(name))
        .collect();
    if let Some(revoked) = about
        .iter()
        .find(|e| e.marker == Some(Marker::Revoked) && e.key == *key)
    {
        return Verdict::Revoked { line: revoked.line };
    }
    let keys: Vec<&&Entry> = about.iter().filter(|e| e.marker.is_none()).collect();
    if keys.iter().any(|e| e.key == *key) {
        return Verdict::Match;
    }
    if let Some(same_type) = keys.iter().find(|e| e.key.key_type == key.key_type) {
        return Verdict::Changed {
            line: same_type.line,
            old: same_type.key.clone(),
        };
    }
    if !keys.is_empty() {
        return Verdict::OtherTypes {
            known: keys
                .iter()
                .map(|e| (e.line, e.key.key_type.clone()))
                .collect(),
        };
    }
    Verdict::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIAHz+uHpjGRLNKDeJ32Mk8AKeiNHV+rAVAF8kecXdwAY";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHxLI7aI85kxPOh1FYC6yQfKul+ThVnLKNiZ3jrpAgi4";
    /// `[127.0.0.1]:2222` and `web.example.com` with K1, hashed by
    /// `ssh-keygen -H`.
    const HASHED: &str = "\
|1|wLsRvD72mHU9cTOvt9e9k/3Coa8=|kY64Em6+mUR75reGixnHNTPYuK8= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAHz+uHpjGRLNKDeJ32Mk8AKeiNHV+rAVAF8kecXdwAY
|1|4HwIv7ACEkJ/cequPTTWrCV9kZw=|I2gOqcT1qA+/3Qanv943PuvHdyA= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAHz+uHpjGRLNKDeJ32Mk8AKeiNHV+rAVAF8kecXdwAY
";

    fn key(encoded: &str) -> HostKey {
        let blob = BASE64.decode(encoded.as_bytes()).expect("base64");
        HostKey::from_blob(&blob).expect("a key")
    }

    #[test]
    fn keys_have_openssh_fingerprints() {
        let k1 = key(K1);
        assert_eq!(k1.key_type, "ssh-ed25519");
        // As `ssh-keygen -lf` prints it.
        assert_eq!(
            k1.fingerprint(),
            "SHA256:PS8s+M6n9oeaE2IYZ1iTiCQ701UKR/3AMAIY9iuc2Og"
        );
        assert_eq!(HostKey::from_blob(b"\0\0\0\x09short"), None);
    }

    #[test]
    fn hashed_names_match() {
        let entries = parse(HASHED);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            verdict(&entries, "[127.0.0.1]:2222", &key(K1)),
            Verdict::Match
        );
        assert_eq!(
            verdict(&entries, "web.example.com", &key(K1)),
            Verdict::Match
        );
        assert_eq!(
            verdict(&entries, "[127.0.0.1]:2223", &key(K1)),
            Verdict::Unknown
        );
        assert_eq!(verdict(&entries, "127.0.0.1", &key(K1)), Verdict::Unknown);
        assert_eq!(
            verdict(&entries, "[127.0.0.1]:2222", &key(K2)),
            Verdict::Changed {
                line: 1,
                old: key(K1)
            }
        );
    }

    #[test]
    fn plain_patterns_ports_and_markers() {
        let text = format!(
            "# comment\n\
             \n\
             web1,10.0.0.5 ssh-ed25519 {K1} comment here\n\
             *.example.com,!bad.example.com ssh-ed25519 {K1}\n\
             [10.0.0.9]:2222 ssh-ed25519 {K2}\n\
             @revoked * ssh-ed25519 {K2}\n\
             @cert-authority * ssh-ed25519 {K1}\n\
             broken line\n\
             web9 ssh-rsa {K1}\n"
        );
        let entries = parse(&text);
        assert_eq!(entries.len(), 5, "{entries:?}");
        assert_eq!(verdict(&entries, "10.0.0.5", &key(K1)), Verdict::Match);
        assert_eq!(verdict(&entries, "a.example.com", &key(K1)), Verdict::Match);
        assert_eq!(
            verdict(&entries, "bad.example.com", &key(K1)),
            Verdict::Unknown
        );
        // A port other than 22 is only known as `[host]:port`.
        assert_eq!(
            verdict(&entries, "[10.0.0.5]:2222", &key(K1)),
            Verdict::Unknown
        );
        // K2 is revoked everywhere, also where it is filed.
        assert_eq!(
            verdict(&entries, "[10.0.0.9]:2222", &key(K2)),
            Verdict::Revoked { line: 6 }
        );
        // The CA line is no host key.
        assert_eq!(verdict(&entries, "other", &key(K1)), Verdict::Unknown);
        // A type that disagrees with its key is skipped.
        assert_eq!(verdict(&entries, "web9", &key(K1)), Verdict::Unknown);
    }

    #[test]
    fn a_host_known_by_another_type_only_has_changed() {
        let rsa_blob = {
            let mut blob = vec![0, 0, 0, 7];
            blob.extend_from_slice(b"ssh-rsa");
            blob.extend_from_slice(&[0, 0, 0, 1, 1]);
            blob
        };
        let text = format!("web1 ssh-rsa {}\n", BASE64.encode(&rsa_blob));
        let entries = parse(&text);
        assert_eq!(
            verdict(&entries, "web1", &key(K1)),
            Verdict::OtherTypes {
                known: vec![(1, "ssh-rsa".into())]
            }
        );
    }

    #[test]
    fn known_types_come_first() {
        let supported = [
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "ssh-ed25519",
            "rsa-sha2-256",
            "rsa-sha2-512",
            "ssh-rsa",
            "ssh-dss",
        ];
        assert_eq!(
            algorithm_preference(&[], &supported),
            "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256"
        );
        assert_eq!(
            algorithm_preference(&["ssh-rsa".into(), "ecdsa-sha2-nistp384".into()], &supported),
            "ecdsa-sha2-nistp384,rsa-sha2-512,rsa-sha2-256,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp521"
        );
    }

    fn target() -> SshTarget {
        SshTarget::new("web1", "127.0.0.1", 2222, "root", None)
    }

    #[test]
    fn accept_new_appends_and_strict_refuses() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("sub/known_hosts");
        let strict = KnownHosts::new(&path, HostKeyPolicy::Strict);
        let e = strict.verify(&target(), &key(K1)).expect_err("unknown");
        assert_eq!(e.kind(), SshErrorKind::HostKeyUnknown);
        let message = e.to_string();
        for part in [
            "web1: ",
            "[127.0.0.1]:2222",
            "ssh-ed25519 SHA256:PS8s+M6n9oeaE2IYZ1iTiCQ701UKR/3AMAIY9iuc2Og",
            &path.display().to_string(),
        ] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }

        let accept = KnownHosts::new(&path, HostKeyPolicy::AcceptNew);
        accept.verify(&target(), &key(K1)).expect("added");
        accept.verify(&target(), &key(K1)).expect("known now");
        let text = fs::read_to_string(&path).expect("written");
        assert_eq!(text, format!("[127.0.0.1]:2222 ssh-ed25519 {K1}\n"));
        strict
            .verify(&target(), &key(K1))
            .expect("known to strict too");

        // A changed key is refused under both policies.
        for known_hosts in [&strict, &accept] {
            let e = known_hosts
                .verify(&target(), &key(K2))
                .expect_err("changed");
            assert_eq!(e.kind(), SshErrorKind::HostKeyChanged);
            assert!(
                e.to_string().contains(":1 holds ssh-ed25519 SHA256:PS8s"),
                "{e}"
            );
        }
        assert_eq!(fs::read_to_string(&path).expect("unchanged"), text);
    }

    #[test]
    fn appending_after_a_last_line_without_newline() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("known_hosts");
        fs::write(&path, format!("other ssh-ed25519 {K2}")).expect("write");
        let accept = KnownHosts::new(&path, HostKeyPolicy::AcceptNew);
        accept.verify(&target(), &key(K1)).expect("added");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            format!("other ssh-ed25519 {K2}\n[127.0.0.1]:2222 ssh-ed25519 {K1}\n")
        );
        assert_eq!(KnownHosts::host_name("h", 22), "h");
    }
}

//! The run journal on disk: open, repair a torn tail, append with fsync.
//!
//! The record format is [`plan_core::journal`]; this module is the file that
//! holds it (`<plan>.journal`, mode 0600, next to the plan). A run opens it
//! with [`JournalFile::open`], which returns what earlier runs recorded, and
//! then [`JournalFile::append`]s one record per event. `status` reads it
//! without changing it, with [`JournalFile::read`].
//!
//! One writer at a time: [`JournalFile::open`] takes an exclusive OS lock
//! (`flock`) on `<journal>.lock` before it reads the journal, holds it for
//! the life of the [`JournalFile`], and writes who holds it (user@host, pid,
//! start) into that file, so a second `run` or `resume` is refused with the
//! holder's name. The kernel releases the lock when the process dies, so a
//! `kill -9` needs nothing cleaned by hand before `resume`.
//!
//! Every append first makes sure the path still names the file being
//! written: a journal deleted or replaced under a live run stops the run at
//! its next record, and what the run had written is saved beside it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use plan_core::journal::{self, Journal, JournalError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The permissions a journal file is given: it can name hosts, paths and
/// commands, so only its owner may read it.
const MODE: u32 = 0o600;

/// An open journal, positioned to append, and the lock that makes its
/// holder the only writer.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    /// The journal and its (device, inode); `None` until the first append
    /// creates it, so a run refused before it records anything leaves no
    /// file behind.
    file: Option<(File, (u64, u64))>,
    plan_hash: u64,
    next_seq: u64,
    /// Set when an append failed: the file may end in part of a record.
    broken: bool,
    _lock: JournalLock,
}

/// Who holds a journal's lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Holder {
    /// The user the holding process runs as.
    pub user: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lock (RFC 3339).
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}, pid {}, since {}",
            self.user, self.host, self.pid, self.since
        )
    }
}

impl Holder {
    /// This process, now.
    pub fn me() -> Holder {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name);
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown-host".into());
        Holder {
            user,
            host,
            pid: std::process::id(),
            since: jiff::Timestamp::now().to_string(),
        }
    }
}

/// The exclusive lock on `<journal>.lock`, held while this value lives.
#[derive(Debug)]
struct JournalLock {
    path: PathBuf,
    file: Flock<File>,
}

impl JournalLock {
    /// Takes the lock of the journal at `journal`, or says who holds it.
    fn acquire(journal: &Path) -> Result<JournalLock, JournalFileErrorKind> {
        let path = lock_path(journal);
        // Another holder may remove the file between our open and our lock:
        // the lock is ours only if the path still names the file we locked.
        for _ in 0..8 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(MODE)
                .open(&path)?;
            let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(file) => file,
                Err((_, Errno::EWOULDBLOCK)) => {
                    let holder = fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Holder>(&b).ok());
                    return Err(JournalFileErrorKind::Locked { holder });
                }
                Err((_, errno)) => return Err(io::Error::from(errno).into()),
            };
            if identity(&fs::metadata(&path)?) != identity(&file.metadata()?) {
                continue;
            }
            let mut lock = JournalLock { path, file };
            let holder = serde_json::to_vec(&Holder::me()).map_err(io::Error::other)?;
            lock.file.set_len(0)?;
            lock.file.write_all(&holder)?;
            lock.file.sync_data()?;
            return Ok(lock);
        }
        Err(io::Error::other(format!(
            "the lock file {} keeps being replaced",
            path.display()
        ))
        .into())
    }
}

impl Drop for JournalLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock (it is released when
        // the file closes, right after), and only if it is still ours.
        let ours = match (fs::metadata(&self.path), self.file.metadata()) {
            (Ok(on_disk), Ok(held)) => identity(&on_disk) == identity(&held),
            _ => false,
        };
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The lock file of the journal at `journal`: `<journal>.lock`.
pub fn lock_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Who holds the lock of the journal at `journal` now, if anyone does.
pub fn holder(journal: &Path) -> Option<Holder> {
    let path = lock_path(journal);
    let file = File::open(&path).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err(_) => fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
    }
}

/// Whether a process still runs a journal: [`liveness`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Its holder, alive (or on another machine, where this one cannot tell).
    Held(Holder),
    /// Nobody: no lock file, or its holder's process is gone.
    Gone,
    /// The lock file cannot be read (another user's, or being written).
    Unknown,
}

/// Whether a process still runs the journal at `journal`, without
/// touching its lock, unlike [`holder`] (a watcher must never make a
/// starting `run` or `resume` find the lock taken): the lock file names its
/// holder while one holds it and is removed when it ends, but stays behind
/// a killed one, whose pid this machine no longer has.
pub fn liveness(journal: &Path) -> Liveness {
    let path = lock_path(journal);
    match fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Gone,
        Err(_) => Liveness::Unknown,
        Ok(bytes) => match serde_json::from_slice::<Holder>(&bytes) {
            Ok(holder) => {
                let here = Holder::me().host == holder.host;
                if here && !Path::new(&format!("/proc/{}", holder.pid)).exists() {
                    Liveness::Gone
                } else {
                    Liveness::Held(holder)
                }
            }
            Err(_) => Liveness::Unknown,
        },
    }
}

fn identity(metadata: &fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

/// A journal file could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("journal `{}`: {kind}", path.display())]
pub struct JournalFileError {
    /// The journal's path, as given.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: JournalFileErrorKind,
}

/// What went wrong with a journal file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalFileErrorKind {
    /// There is no journal (only from [`JournalFile::read`]; `open` creates
    /// one).
    #[error("no such file")]
    NotFound,
    /// The path is not a regular file.
    #[error("it is not a regular file")]
    NotAFile,
    /// The content is not a valid journal: it is left as it is.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal was written for a different plan (the plan file or its
    /// settings changed since).
    #[error(
        "it was written for another version of the plan (plan hash {journal_hash:016x}, \
         the plan is now {plan_hash:016x})"
    )]
    PlanChanged {
        /// The plan hash the journal's records carry.
        journal_hash: u64,
        /// The hash of the plan being run.
        plan_hash: u64,
    },
    /// An earlier append failed, so the file may end in part of a record;
    /// open it again (which trims a torn tail) before appending more.
    #[error("an earlier write failed; reopen the journal before writing to it again")]
    Broken,
    /// Another process holds the journal: a run or resume of it is live.
    #[error("{}", match holder {
        Some(h) => format!("another run is writing it ({h})"),
        None => "another run is writing it".to_owned(),
    })]
    Locked {
        /// Who holds it, when its lock file says.
        holder: Option<Holder>,
    },
    /// The journal was deleted or replaced while the run was writing it;
    /// what the run had written is saved in `saved` (when it could be).
    #[error("{}", match saved {
        Some(saved) => format!(
            "it was deleted or replaced while the run was writing it; what the run had \
             journaled is saved in {}: put it back at the journal's path before resuming",
            saved.display()
        ),
        None => "it was deleted or replaced while the run was writing it, and what the run \
                 had journaled could not be saved".to_owned(),
    })]
    Vanished {
        /// Where the run's records were saved.
        saved: Option<PathBuf>,
    },
    /// Any other I/O error.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl JournalFile {
    /// Takes the journal at `path` for a run of the plan with `plan_hash`:
    /// locks it against every other writer, then reads it.
    ///
    /// Returns the file, ready to append, and what it already holds. A
    /// journal that does not exist yet is created (mode 0600) by the first
    /// append, not here. If its permissions let anyone but the owner in,
    /// they are tightened to 0600. If its last line was torn by a crash, the
    /// file is truncated to the records before it, so the next append starts
    /// on a clean line, and the [`TornTail`](plan_core::journal::TornTail)
    /// is still returned so the caller can say so. A journal that another
    /// process holds ([`JournalFileErrorKind::Locked`]), or that does not
    /// decode, is refused and left as it is. Records written for another
    /// version of the plan are returned as they are (each carries its plan
    /// hash; new ones get `plan_hash`): whether a run may go on in this
    /// journal is the caller's to decide (see
    /// [`plan_core::machine::attempts`]).
    pub fn open<P: DeserializeOwned>(
        path: &Path,
        plan_hash: u64,
    ) -> Result<(JournalFile, Journal<P>), JournalFileError> {
        let err = |kind| JournalFileError {
            path: path.to_owned(),
            kind,
        };
        let io_err = |e| err(JournalFileErrorKind::Io(e));
        if path.is_dir() {
            return Err(err(JournalFileErrorKind::NotAFile));
        }
        let lock = JournalLock::acquire(path).map_err(err)?;
        let mut file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
                return Err(err(JournalFileErrorKind::NotAFile))
            }
            Err(e) => return Err(io_err(e)),
        };
        let mut bytes = Vec::new();
        let mut id = (0, 0);
        if let Some(file) = &mut file {
            let metadata = file.metadata().map_err(io_err)?;
            if !metadata.is_file() {
                return Err(err(JournalFileErrorKind::NotAFile));
            }
            id = identity(&metadata);
            if metadata.permissions().mode() & 0o077 != 0 {
                file.set_permissions(Permissions::from_mode(MODE))
                    .map_err(io_err)?;
            }
            file.read_to_end(&mut bytes).map_err(io_err)?;
        }
        let journal = journal::decode_bytes::<P>(&bytes).map_err(|e| err(e.into()))?;
        if let (Some(torn), Some(file)) = (&journal.torn_tail, &file) {
            // Drop the partial record, durably, before anything is appended
            // after it: otherwise it would become a corrupt middle line.
            file.set_len(torn.offset as u64).map_err(io_err)?;
            file.sync_data().map_err(io_err)?;
        }
        let journal_file = JournalFile {
            path: path.to_owned(),
            file: file.map(|f| (f, id)),
            plan_hash,
            next_seq: journal::next_seq(&journal),
            broken: false,
            _lock: lock,
        };
        Ok((journal_file, journal))
    }

    /// Reads and decodes the journal at `path` without changing it (for
    /// `status`). A torn tail is reported in the journal, not repaired, and
    /// the plan hash is not checked.
    pub fn read<P: DeserializeOwned>(path: &Path) -> Result<Journal<P>, JournalFileError> {
        let err = |kind| JournalFileError {
            path: path.to_owned(),
            kind,
        };
        let bytes = fs::read(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => err(JournalFileErrorKind::NotFound),
            io::ErrorKind::IsADirectory => err(JournalFileErrorKind::NotAFile),
            _ => err(JournalFileErrorKind::Io(e)),
        })?;
        journal::decode_bytes(&bytes).map_err(|e| err(e.into()))
    }

    /// Appends one record and waits until it is on disk; returns its
    /// sequence number.
    ///
    /// After an error the journal refuses further appends
    /// ([`JournalFileErrorKind::Broken`]): the run must stop, since it can no
    /// longer record what it does.
    pub fn append<P: Serialize>(&mut self, time: &str, entry: &P) -> Result<u64, JournalFileError> {
        let path = self.path.clone();
        let err = |kind| JournalFileError {
            path: path.clone(),
            kind,
        };
        if self.broken {
            return Err(err(JournalFileErrorKind::Broken));
        }
        let seq = self.next_seq;
        let line = journal::encode(seq, time, self.plan_hash, entry).map_err(|e| err(e.into()))?;
        let file = match self.writable() {
            Ok(file) => file,
            Err(kind) => {
                self.broken = true;
                return Err(err(kind));
            }
        };
        // One write of the whole line (the file is in append mode), then
        // fsync after every record: a record must be on disk before the
        // remote action it announces starts, or a crash in the middle of
        // that action would leave no trace that it began, and `resume` could
        // not know the step is in doubt.
        let written = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            self.broken = true;
            return Err(err(JournalFileErrorKind::Io(e)));
        }
        self.next_seq = seq.saturating_add(1);
        Ok(seq)
    }

    /// The journal's path, as given to [`JournalFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file to append to: created by the first append; afterwards, still
    /// the file at the journal's path, or the run must stop.
    fn writable(&mut self) -> Result<&mut File, JournalFileErrorKind> {
        let on_disk = fs::metadata(&self.path);
        let existed = self.file.is_some();
        let (file, id) = match &mut self.file {
            Some(entry) => entry,
            slot @ None => {
                let (file, created) = open_or_create(&self.path)?;
                if !created {
                    // Someone else put a file there since the journal was read.
                    return Err(JournalFileErrorKind::Vanished { saved: None });
                }
                // The file's name is part of its parent directory: sync that
                // too, or a crash could lose the new journal with its records.
                sync_parent(&self.path)?;
                let id = identity(&file.metadata()?);
                slot.insert((file, id))
            }
        };
        if !existed || on_disk.is_ok_and(|m| identity(&m) == *id) {
            Ok(file)
        } else {
            Err(JournalFileErrorKind::Vanished {
                saved: rescue(&self.path, file).ok(),
            })
        }
    }
}

/// Copies what the run wrote into the journal that vanished from `path` to a
/// new file beside it; returns that file.
fn rescue(path: &Path, file: &mut File) -> io::Result<PathBuf> {
    let mut bytes = Vec::new();
    file.seek(io::SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    for n in 1..100 {
        let mut name = path.as_os_str().to_owned();
        name.push(if n == 1 {
            ".saved".to_owned()
        } else {
            format!(".saved.{n}")
        });
        let saved = PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&saved)
        {
            Ok(mut out) => {
                out.write_all(&bytes)?;
                out.sync_all()?;
                return Ok(saved);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free name to save the journal under"))
}

/// Opens `path` to read and append, creating it with mode 0600 if need be;
/// says whether it was created.
fn open_or_create(path: &Path) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).mode(MODE);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((options.open(path)?, false)),
        Err(e) => Err(e),
    }
}

/// Makes the directory entry of a newly created `path` durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plan_core::journal::{TornTail, FIRST_SEQ};
    use serde_json::{json, Value};

    const PLAN: u64 = 0xfeed_f00d_0000_0001;
    const TIME: &str = "2025-06-01T02:00:00Z";

    fn open(path: &Path) -> (JournalFile, Journal<Value>) {
        JournalFile::open(path, PLAN).unwrap_or_else(|e| panic!("{e}"))
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    #[test]
    fn the_first_append_creates_the_file_with_mode_0600() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, journal) = open(&path);
        assert_eq!(file.path(), path);
        assert!(journal.records.is_empty());
        assert_eq!(journal.torn_tail, None);
        // A run refused before its first record leaves no journal behind.
        assert!(!path.exists());
        file.append(TIME, &json!("one")).expect("appends");
        assert_eq!(mode(&path), 0o600);
        drop(file);
        assert!(!lock_path(&path).exists(), "the lock file is removed");
    }

    #[test]
    fn a_second_writer_is_refused_and_told_who_holds_the_journal() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut first, _) = open(&path);
        first.append(TIME, &json!("one")).expect("appends");
        let before = fs::read(&path).expect("reads");

        let error = JournalFile::open::<Value>(&path, PLAN).expect_err("held");
        let JournalFileErrorKind::Locked {
            holder: Some(holder),
        } = &error.kind
        else {
            panic!("not refused as locked: {error:?}");
        };
        assert_eq!(holder.pid, std::process::id());
        assert!(
            error
                .to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        assert_eq!(holder, &super::holder(&path).expect("held"));
        assert_eq!(fs::read(&path).expect("reads"), before, "untouched");

        drop(first);
        assert_eq!(super::holder(&path), None);
        let (_, journal) = open(&path);
        assert_eq!(journal.records.len(), 1);
    }

    #[test]
    fn a_journal_deleted_under_a_run_stops_it_and_its_records_are_saved() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, _) = open(&path);
        file.append(TIME, &json!("one")).expect("appends");
        file.append(TIME, &json!("two")).expect("appends");
        let written = fs::read(&path).expect("reads");
        fs::remove_file(&path).expect("deletes");

        let error = file.append(TIME, &json!("three")).expect_err("noticed");
        let JournalFileErrorKind::Vanished { saved: Some(saved) } = &error.kind else {
            panic!("not noticed as vanished: {error:?}");
        };
        assert_eq!(fs::read(saved).expect("saved"), written);
        assert!(
            matches!(
                file.append(TIME, &json!("four")).expect_err("stopped").kind,
                JournalFileErrorKind::Broken
            ),
            "nothing more is written"
        );
        assert!(!path.exists());
    }

    #[test]
    fn a_journal_replaced_under_a_run_stops_it() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, _) = open(&path);
        file.append(TIME, &json!("one")).expect("appends");
        let other = dir.path().join("other");
        fs::write(&other, "").expect("writes");
        fs::rename(&other, &path).expect("replaces");
        let error = file.append(TIME, &json!("two")).expect_err("noticed");
        assert!(
            matches!(error.kind, JournalFileErrorKind::Vanished { .. }),
            "{error:?}"
        );
        assert_eq!(
            fs::read(&path).expect("reads"),
            b"",
            "the new file is left alone"
        );
    }

    #[test]
    fn tightens_looser_permissions() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        fs::write(&path, "").expect("writes");
        fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        let _held = open(&path);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn append_then_reopen_continues_the_sequence() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, _) = open(&path);
        assert_eq!(
            file.append(TIME, &json!({"n": 1})).expect("appends"),
            FIRST_SEQ
        );
        assert_eq!(
            file.append(TIME, &json!({"n": 2})).expect("appends"),
            FIRST_SEQ + 1
        );
        drop(file);

        let (mut file, journal) = open(&path);
        let entries: Vec<_> = journal.records.iter().map(|r| r.entry.clone()).collect();
        assert_eq!(entries, [json!({"n": 1}), json!({"n": 2})]);
        assert_eq!(
            file.append(TIME, &json!({"n": 3})).expect("appends"),
            FIRST_SEQ + 2
        );
        drop(file);

        let journal = JournalFile::read::<Value>(&path).expect("reads");
        assert_eq!(journal.records.len(), 3);
        assert_eq!(journal.records[2].seq, FIRST_SEQ + 2);
    }

    #[test]
    fn a_torn_tail_is_truncated_on_open_and_reported() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, _) = open(&path);
        file.append(TIME, &json!("one")).expect("appends");
        file.append(TIME, &json!("two")).expect("appends");
        drop(file);
        let whole = fs::read(&path).expect("reads");
        let torn = journal::encode(FIRST_SEQ + 2, TIME, PLAN, &json!("thrée")).expect("encodes");
        // Cut inside the `é`, as a crash may: the file is no longer UTF-8.
        let cut = torn.find('é').expect("has é") + 1;
        let mut damaged = whole.clone();
        damaged.extend_from_slice(&torn.as_bytes()[..cut]);
        fs::write(&path, &damaged).expect("writes");

        // `read` reports the tear but leaves the file alone.
        let journal = JournalFile::read::<Value>(&path).expect("reads");
        assert_eq!(journal.torn_tail.map(|t| t.line), Some(3));
        assert_eq!(fs::read(&path).expect("reads"), damaged);

        let (mut file, journal) = open(&path);
        assert_eq!(journal.records.len(), 2);
        let TornTail { line, offset, .. } = journal.torn_tail.expect("reported");
        assert_eq!((line, offset), (3, whole.len()));
        assert_eq!(fs::read(&path).expect("reads"), whole);

        assert_eq!(
            file.append(TIME, &json!("three")).expect("appends"),
            FIRST_SEQ + 2
        );
        let journal = JournalFile::read::<Value>(&path).expect("reads");
        assert_eq!(journal.torn_tail, None);
        assert_eq!(journal.records[2].entry, json!("three"));
    }

    #[test]
    fn a_journal_of_another_plan_version_is_opened_and_new_records_carry_the_new_hash() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, _) = open(&path);
        file.append(TIME, &json!("one")).expect("appends");
        drop(file);

        let (mut file, journal) = JournalFile::open::<Value>(&path, PLAN + 1).expect("opens");
        assert_eq!(journal.records[0].plan_hash, PLAN);
        file.append(TIME, &json!("two")).expect("appends");
        let journal = JournalFile::read::<Value>(&path).expect("reads");
        let hashes: Vec<u64> = journal.records.iter().map(|r| r.plan_hash).collect();
        assert_eq!(hashes, [PLAN, PLAN + 1]);
    }

    #[test]
    fn a_corrupt_middle_is_an_error_and_the_file_is_untouched() {
        let dir = dir();
        let path = dir.path().join("plan.journal");
        let (mut file, _) = open(&path);
        for n in 0..3 {
            file.append(TIME, &json!({"n": n})).expect("appends");
        }
        drop(file);
        let mut bytes = fs::read(&path).expect("reads");
        let second = bytes.iter().position(|b| *b == b'\n').expect("lines") + 1;
        bytes[second + 20] ^= 0x04;
        // Leave a torn tail too: a refused journal is not repaired either.
        bytes.extend_from_slice(b"{\"v\":1,\"se");
        fs::write(&path, &bytes).expect("writes");

        let error = JournalFile::open::<Value>(&path, PLAN).expect_err("corrupt");
        let JournalFileErrorKind::Journal(inner) = &error.kind else {
            panic!("not a journal error: {error:?}");
        };
        assert_eq!(inner.line(), Some(2), "{error}");
        assert_eq!(fs::read(&path).expect("reads"), bytes);
    }

    #[test]
    fn reading_a_missing_journal_says_so() {
        let dir = dir();
        let error = JournalFile::read::<Value>(&dir.path().join("none")).expect_err("missing");
        assert!(
            matches!(error.kind, JournalFileErrorKind::NotFound),
            "{error:?}"
        );
    }

    #[test]
    fn a_directory_is_not_a_journal() {
        let dir = dir();
        let error = JournalFile::open::<Value>(dir.path(), PLAN).expect_err("a directory");
        assert!(
            matches!(error.kind, JournalFileErrorKind::NotAFile),
            "{error:?}"
        );
        let error = JournalFile::read::<Value>(dir.path()).expect_err("a directory");
        assert!(
            matches!(error.kind, JournalFileErrorKind::NotAFile),
            "{error:?}"
        );
    }
}

//! The run journal's on-disk format: encoding and decoding only, no I/O.
//!
//! A run records what it does in an append-only journal next to the plan, so
//! `resume` can replay it after a crash. This module turns records into lines
//! and lines back into records; opening, appending to and syncing the file is
//! `plan_steps::journal_file`. The format is generic over the payload `P` (the
//! run machine's event type), so it does not depend on the machine.
//!
//! # Format, version 1
//!
//! The journal is UTF-8 text, one record per line, each line ending in `\n`.
//! A record is one compact JSON object, with its keys in this order:
//!
//! ```text
//! {"v":1,"seq":7,"time":"2025-06-01T02:00:03Z","plan":"00c0ffee00c0ffee","entry":{...},"crc":"1a2b3c4d"}
//! ```
//!
//! | key     | value |
//! |---------|-------|
//! | `v`     | the format version, [`FORMAT_VERSION`] (a JSON integer) |
//! | `seq`   | sequence number: [`FIRST_SEQ`] for the first record written, then each record one more than the line before |
//! | `time`  | when the record was written, an RFC 3339 string supplied by the caller (this module has no clock and does not interpret it) |
//! | `plan`  | the hash of the plan the run executes, 16 lowercase hex digits |
//! | `entry` | the payload `P`, as serde_json serializes it |
//! | `crc`   | CRC-32 (IEEE, as `crc32fast` computes it), 8 lowercase hex digits |
//!
//! The CRC covers the *body*: the object as it is without the `crc` key. To
//! write a line, serialize the body (`{"v":1,...,"entry":...}`), compute the
//! CRC of its exact bytes, then splice `,"crc":"xxxxxxxx"` in before its final
//! `}`. To check a line, do the reverse: the line must end with the 18 bytes
//! `,"crc":"xxxxxxxx"}`; removing them and putting back `}` gives the body.
//! Finding the CRC by position from the end means nothing inside the payload
//! can be mistaken for it.
//!
//! # Reading rules
//!
//! [`decode`] checks every line, in order, and stops at the first problem:
//!
//! 1. *Envelope*: the line ends in `\n` and in a well-formed CRC that matches
//!    the body. A line that fails this was not completely written. If it is
//!    the last line, it is a *torn tail*: the writer crashed mid-append, so it
//!    is reported in [`Journal::torn_tail`] and the records before it are
//!    kept. Anywhere else it is [`JournalErrorKind::Corrupt`]: a damaged
//!    middle is never skipped, because replaying a journal with a hole in it
//!    could repeat or skip a remote action.
//! 2. *Version*: `v` must be a version this code knows. A larger `v` is
//!    [`JournalErrorKind::NewerVersion`], so an older `cutover` refuses a
//!    newer journal instead of misreading it.
//! 3. *Record*: the body must parse as a version-1 record with exactly the
//!    keys above and an `entry` that deserializes as `P`. A line that passed
//!    its CRC was written whole, so a failure here is `Corrupt` even on the
//!    last line: it is not a tear, and dropping it would lose a record.
//! 4. *Sequence*: each `seq` is exactly one more than the one before
//!    (the first may be any number).
//! 5. *Plan*: each record carries the hash of the plan it was written
//!    for. It may change from one record to the next: after a run ended, a
//!    changed plan (the fix of what failed) goes on in the same journal as a
//!    new *attempt* (see [`crate::machine::attempts`], which decides where
//!    a change is allowed; this layer knows nothing of runs). Older builds
//!    refused such a journal as mixed.
//!
//! Line numbers in errors are 1-based.
//!
//! # Versioning
//!
//! Any change to what a record contains, however small, bumps
//! [`FORMAT_VERSION`]; version-1 readers accept exactly the keys above. What
//! never changes, in any version, is the *envelope*: one JSON object per
//! `\n`-terminated line, an integer `v` key, and the CRC suffix computed as
//! above over the rest. That is what lets every reader check integrity first
//! and then dispatch on `v`. A version-2 reader keeps the version-1 record
//! type and decodes each line by its own `v`, so a journal written by an
//! older `cutover` (or one that an upgrade interrupted, mixing versions)
//! stays readable; the fixture `tests/fixtures/journal-v1.jsonl` holds this
//! code to that, and must only ever be added to, never regenerated.
//!
//! # Example
//!
//! ```
//! use plan_core::journal::{decode, encode, next_seq};
//!
//! let mut text = String::new();
//! text += &encode(1, "2025-06-01T02:00:00Z", 0xc0ffee, &"run started")?;
//! text += &encode(2, "2025-06-01T02:00:01Z", 0xc0ffee, &"step started")?;
//! let journal = decode::<String>(&text)?;
//! assert_eq!(journal.records[1].entry, "step started");
//! assert_eq!(next_seq(&journal), 3);
//! # Ok::<(), plan_core::journal::JournalError>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the record format that [`encode`] writes and the newest
/// that [`decode`] reads.
pub const FORMAT_VERSION: u32 = 1;

/// The sequence number of the first record of a new journal.
pub const FIRST_SEQ: u64 = 1;

/// What ends every line: `,"crc":"` then 8 hex digits then `"}`.
const CRC_KEY: &[u8] = b",\"crc\":\"";
/// The length of the CRC suffix, `,"crc":"xxxxxxxx"}`.
const CRC_SUFFIX_LEN: usize = CRC_KEY.len() + 8 + 2;

/// A decoded journal: the records that are whole, and a torn last line if
/// there was one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal<P> {
    /// Every whole record, in file order.
    pub records: Vec<Record<P>>,
    /// The last line, when it was not completely written (a crash during an
    /// append). The caller should say so; the records above are good.
    pub torn_tail: Option<TornTail>,
}

/// One record of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<P> {
    /// The format version the record was written in (`v`).
    pub version: u32,
    /// Its sequence number.
    pub seq: u64,
    /// When it was written, as the writer gave it (RFC 3339).
    pub time: String,
    /// The hash of the plan the run was executing.
    pub plan_hash: u64,
    /// The payload.
    pub entry: P,
}

/// A last line that was not completely written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Its line number, 1-based.
    pub line: usize,
    /// Why it is not a whole record.
    pub reason: String,
    /// The byte offset at which it starts: truncating the journal to this
    /// length leaves exactly the whole records.
    pub offset: usize,
}

/// A journal could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct JournalError {
    /// What went wrong.
    pub kind: JournalErrorKind,
}

impl JournalError {
    /// The 1-based line the problem is on, if it is about a line.
    pub fn line(&self) -> Option<usize> {
        match self.kind {
            JournalErrorKind::Corrupt { line, .. }
            | JournalErrorKind::NewerVersion { line, .. } => Some(line),
            JournalErrorKind::Encode(_) => None,
        }
    }
}

impl From<JournalErrorKind> for JournalError {
    fn from(kind: JournalErrorKind) -> Self {
        JournalError { kind }
    }
}

/// What went wrong with a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalErrorKind {
    /// A line before the last is damaged, or a whole line is not a valid
    /// record, or the sequence numbers do not follow on.
    #[error("journal line {line} is corrupt: {reason}")]
    Corrupt {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A record was written by a newer `cutover` in a format this one cannot
    /// read.
    #[error(
        "journal line {line} is in format version {found}, newer than this cutover reads \
         (version {FORMAT_VERSION}); use the cutover that wrote it, or a newer one"
    )]
    NewerVersion {
        /// The 1-based line number.
        line: usize,
        /// The version it carries.
        found: u32,
    },
    /// The payload could not be serialized as JSON.
    #[error("cannot encode a journal record: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The record as written: the body, before the CRC is spliced in. The field
/// order is the key order on disk.
#[derive(Serialize)]
struct BodyOut<'a, P> {
    v: u32,
    seq: u64,
    time: &'a str,
    plan: String,
    entry: &'a P,
}

/// Just the version, read before deciding how to read the rest.
#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

/// A version-1 body as read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyV1<P> {
    v: u32,
    seq: u64,
    time: String,
    plan: String,
    entry: P,
}

/// Encodes one record as a journal line, including its trailing `\n`.
///
/// `time` should be an RFC 3339 timestamp; it is stored as given.
pub fn encode<P: Serialize>(
    seq: u64,
    time: &str,
    plan_hash: u64,
    entry: &P,
) -> Result<String, JournalError> {
    let body = serde_json::to_string(&BodyOut {
        v: FORMAT_VERSION,
        seq,
        time,
        plan: format!("{plan_hash:016x}"),
        entry,
    })
    .map_err(JournalErrorKind::Encode)?;
    // Compact serde_json output escapes every control character inside
    // strings and adds no whitespace, so `body` holds no `\n` and the record
    // is one line.
    let Some(open) = body.strip_suffix('}') else {
        // A struct always serializes as a JSON object; this is unreachable,
        // but an error is cheaper to reason about than a panic.
        let error = <serde_json::Error as serde::ser::Error>::custom(
            "the record did not serialize as a JSON object",
        );
        return Err(JournalErrorKind::Encode(error).into());
    };
    let crc = crc32fast::hash(body.as_bytes());
    Ok(format!("{open},\"crc\":\"{crc:08x}\"}}\n"))
}

/// Decodes a whole journal; see the [module docs](self) for the rules.
///
/// Empty text is a journal with no records.
pub fn decode<P: DeserializeOwned>(text: &str) -> Result<Journal<P>, JournalError> {
    decode_bytes(text.as_bytes())
}

/// Like [`decode`], for the raw bytes of a journal file.
///
/// A crash can cut the last line in the middle of a multi-byte character, so
/// the file as a whole need not be UTF-8; this checks each line instead,
/// after its CRC.
pub fn decode_bytes<P: DeserializeOwned>(bytes: &[u8]) -> Result<Journal<P>, JournalError> {
    let mut records: Vec<Record<P>> = Vec::new();
    let mut offset = 0;
    let mut line = 0;
    while offset < bytes.len() {
        line += 1;
        let rest = &bytes[offset..];
        let newline = rest.iter().position(|b| *b == b'\n');
        let (text, next) = match newline {
            Some(end) => (&rest[..end], offset + end + 1),
            None => (rest, bytes.len()),
        };
        let is_last = next == bytes.len();
        let envelope = match newline {
            Some(_) => check_envelope(text),
            None => Err("the line has no newline at its end: it was not completely written".into()),
        };
        let body = match envelope {
            Ok(body) => body,
            Err(reason) if is_last => {
                return Ok(Journal {
                    records,
                    torn_tail: Some(TornTail {
                        line,
                        reason,
                        offset,
                    }),
                });
            }
            Err(reason) => return Err(JournalErrorKind::Corrupt { line, reason }.into()),
        };
        let record = parse_body::<P>(body, line)?;
        if let Some(previous) = records.last() {
            check_follows(previous, &record, line)?;
        }
        records.push(record);
        offset = next;
    }
    Ok(Journal {
        records,
        torn_tail: None,
    })
}

/// The sequence number the next record appended to `journal` should carry.
pub fn next_seq<P>(journal: &Journal<P>) -> u64 {
    // Saturating: 2^64 records will not happen, and should they, `decode`
    // refuses the repeated number rather than anything panicking.
    journal
        .records
        .last()
        .map_or(FIRST_SEQ, |record| record.seq.saturating_add(1))
}

/// Checks the CRC suffix of a line (without its `\n`) and returns the body
/// it covers, without its final `}`.
fn check_envelope(line: &[u8]) -> Result<&[u8], String> {
    let Some(split) = line.len().checked_sub(CRC_SUFFIX_LEN) else {
        return Err("the line is too short to be a record".into());
    };
    let (open, suffix) = line.split_at(split);
    let (key, rest) = suffix.split_at(CRC_KEY.len());
    let (digits, close) = rest.split_at(8);
    if key != CRC_KEY || close != b"\"}" || !open.starts_with(b"{") {
        return Err("the line does not end in a `\"crc\"` key".into());
    }
    let Some(expected) = parse_hex(digits) else {
        return Err("the crc is not 8 lowercase hex digits".into());
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(open);
    hasher.update(b"}");
    let actual = hasher.finalize();
    if u64::from(actual) != expected {
        return Err(format!(
            "crc mismatch (the line says {expected:08x}, its content has {actual:08x})"
        ));
    }
    Ok(open)
}

/// Reads a body that passed its CRC (`open` lacks its final `}`): version
/// first, then the record.
fn parse_body<P: DeserializeOwned>(open: &[u8], line: usize) -> Result<Record<P>, JournalError> {
    let corrupt = |reason: String| JournalError::from(JournalErrorKind::Corrupt { line, reason });
    // The writer computed the CRC over these bytes, so it wrote them as they
    // are: not UTF-8 here is damage from before the CRC was taken, not a tear.
    let mut body = std::str::from_utf8(open)
        .map_err(|e| corrupt(format!("not UTF-8 at byte {}", e.valid_up_to() + 1)))?
        .to_owned();
    body.push('}');
    let body = body.as_str();
    let probe: VersionProbe =
        serde_json::from_str(body).map_err(|e| corrupt(format!("no format version (`v`): {e}")))?;
    if probe.v > FORMAT_VERSION {
        return Err(JournalErrorKind::NewerVersion {
            line,
            found: probe.v,
        }
        .into());
    }
    if probe.v != 1 {
        return Err(corrupt(format!("unknown format version {}", probe.v)));
    }
    let raw: BodyV1<P> =
        serde_json::from_str(body).map_err(|e| corrupt(format!("not a version-1 record: {e}")))?;
    let plan_hash = match raw.plan.len() {
        16 => parse_hex(raw.plan.as_bytes()),
        _ => None,
    }
    .ok_or_else(|| {
        corrupt(format!(
            "the plan hash `{}` is not 16 lowercase hex digits",
            raw.plan.escape_debug()
        ))
    })?;
    Ok(Record {
        version: raw.v,
        seq: raw.seq,
        time: raw.time,
        plan_hash,
        entry: raw.entry,
    })
}

/// Checks that `record` (on `line`) continues the journal after `previous`.
fn check_follows<P>(
    previous: &Record<P>,
    record: &Record<P>,
    line: usize,
) -> Result<(), JournalError> {
    let (before, found) = (previous.seq, record.seq);
    match before.checked_add(1) {
        Some(expected) if found == expected => {}
        Some(expected) if found > expected => {
            let reason = format!(
                "sequence number {found} follows {before}: {} record(s) are missing",
                found - expected
            );
            return Err(JournalErrorKind::Corrupt { line, reason }.into());
        }
        _ => {
            let reason = format!(
                "sequence number {found} follows {before}: records are repeated or out of order"
            );
            return Err(JournalErrorKind::Corrupt { line, reason }.into());
        }
    }
    Ok(())
}

/// Parses 1 to 16 lowercase hex digits, strictly: no sign, no uppercase.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |value, digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u64::from(nibble))
    })
}

#[cfg(test)]
mod tests;

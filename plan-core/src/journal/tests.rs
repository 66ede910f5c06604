//! Tests of the journal's line format: round trips, torn tails, corrupt records, old versions.

use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const PLAN: u64 = 0x0123_4567_89ab_cdef;

fn line(seq: u64, entry: &Value) -> String {
    encode(seq, "2025-06-01T02:00:00Z", PLAN, entry).expect("test payloads encode")
}

fn journal_of(entries: &[Value]) -> String {
    entries
        .iter()
        .zip(FIRST_SEQ..)
        .map(|(entry, seq)| line(seq, entry))
        .collect()
}

fn entries() -> Vec<Value> {
    vec![
        json!({"type": "RunStarted", "phase": "window"}),
        json!({"type": "StepStarted", "step": "stop-old ✓ é"}),
        json!({"type": "StepSucceeded", "step": "stop-old ✓ é"}),
        json!({"type": "StepStarted", "step": "dns"}),
    ]
}

fn corrupt_line(error: &JournalError) -> Option<usize> {
    match error.kind {
        JournalErrorKind::Corrupt { line, .. } => Some(line),
        _ => None,
    }
}

#[test]
fn encodes_the_documented_layout() {
    let text = encode(7, "2025-06-01T02:00:03Z", 0xc0ffee, &json!({"a": 1})).expect("encodes");
    let body = r#"{"v":1,"seq":7,"time":"2025-06-01T02:00:03Z","plan":"0000000000c0ffee","entry":{"a":1}}"#;
    let crc = crc32fast::hash(body.as_bytes());
    let expected = format!("{},\"crc\":\"{crc:08x}\"}}\n", &body[..body.len() - 1]);
    assert_eq!(text, expected);
}

#[test]
fn round_trips() {
    let text = journal_of(&entries());
    let journal = decode::<Value>(&text).expect("decodes");
    assert_eq!(journal.torn_tail, None);
    let got: Vec<_> = journal.records.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(got, entries());
    assert_eq!(journal.records[0].seq, FIRST_SEQ);
    assert!(journal.records.iter().all(|r| r.plan_hash == PLAN
        && r.version == FORMAT_VERSION
        && r.time == "2025-06-01T02:00:00Z"));
    assert_eq!(next_seq(&journal), FIRST_SEQ + 4);
}

#[test]
fn empty_text_is_an_empty_journal() {
    let journal = decode::<Value>("").expect("decodes");
    assert!(journal.records.is_empty());
    assert_eq!(journal.torn_tail, None);
    assert_eq!(next_seq(&journal), FIRST_SEQ);
}

#[test]
fn a_torn_last_line_is_reported_and_the_rest_kept() {
    let entries = entries();
    let whole = journal_of(&entries[..3]);
    let last = line(4, &entries[3]);
    // Cut the last record after every byte but its final newline; the
    // bytes are cut, not characters, as a crash would.
    let bytes = [whole.as_bytes(), last.as_bytes()].concat();
    for cut in whole.len() + 1..bytes.len() {
        let journal =
            decode_bytes::<Value>(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(journal.records.len(), 3, "cut at {cut}");
        let torn = journal.torn_tail.expect("a torn tail");
        assert_eq!(torn.line, 4);
        assert_eq!(torn.offset, whole.len());
    }
    let journal = decode_bytes::<Value>(&bytes[..whole.len()]).expect("decodes");
    assert_eq!((journal.records.len(), journal.torn_tail), (3, None));
    let journal = decode_bytes::<Value>(&bytes).expect("decodes");
    assert_eq!((journal.records.len(), journal.torn_tail), (4, None));
}

#[test]
fn a_whole_last_line_with_a_bad_crc_is_torn() {
    let mut text = journal_of(&entries());
    let at = text.len() - 10;
    text.replace_range(at..=at, if &text[at..=at] == "0" { "1" } else { "0" });
    let journal = decode::<Value>(&text).expect("decodes");
    assert_eq!(journal.records.len(), 3);
    assert!(journal.torn_tail.expect("torn").reason.contains("crc"));
}

#[test]
fn a_flipped_bit_in_a_middle_line_is_corrupt_with_its_line_number() {
    let text = journal_of(&entries());
    let start = text.find('\n').expect("several lines") + 1;
    let end = start + text[start..].find('\n').expect("several lines");
    // Every byte of line 2, its newline included: CRC-32 catches any
    // single-bit error, and losing the newline joins lines 2 and 3, which
    // is still not the last line.
    for at in start..=end {
        for bit in 0..8 {
            let mut bytes = text.clone().into_bytes();
            bytes[at] ^= 1 << bit;
            let error = decode_bytes::<Value>(&bytes).expect_err("corrupt");
            assert_eq!(
                corrupt_line(&error),
                Some(2),
                "byte {at} bit {bit}: {error}"
            );
        }
    }
}

#[test]
fn a_missing_newline_before_the_end_is_corrupt() {
    let text = journal_of(&entries()).replacen('\n', "", 1);
    let error = decode::<Value>(&text).expect_err("corrupt");
    assert_eq!(corrupt_line(&error), Some(1));
}

#[test]
fn an_empty_middle_line_is_corrupt() {
    let text = journal_of(&entries()).replacen('\n', "\n\n", 1);
    let error = decode::<Value>(&text).expect_err("corrupt");
    assert_eq!(corrupt_line(&error), Some(2));
}

#[test]
fn a_sequence_gap_is_corrupt() {
    let entries = entries();
    let text = [
        line(1, &entries[0]),
        line(2, &entries[1]),
        line(4, &entries[2]),
    ]
    .concat();
    let error = decode::<Value>(&text).expect_err("gap");
    assert_eq!(corrupt_line(&error), Some(3));
    assert!(
        error.to_string().contains("1 record(s) are missing"),
        "{error}"
    );

    let text = [line(5, &entries[0]), line(5, &entries[1])].concat();
    let error = decode::<Value>(&text).expect_err("repeat");
    assert_eq!(corrupt_line(&error), Some(2));
    assert!(error.to_string().contains("repeated"), "{error}");

    let text = [line(u64::MAX, &entries[0]), line(0, &entries[1])].concat();
    let error = decode::<Value>(&text).expect_err("wraps");
    assert_eq!(corrupt_line(&error), Some(2));
}

#[test]
fn a_journal_may_start_at_any_sequence_number() {
    let entries = entries();
    let text = [line(41, &entries[0]), line(42, &entries[1])].concat();
    let journal = decode::<Value>(&text).expect("decodes");
    assert_eq!(next_seq(&journal), 43);
}

/// A line as a future version might write it, with a valid envelope.
fn future_line(v: u32, seq: u64) -> String {
    let body = format!(
        r#"{{"v":{v},"seq":{seq},"time":"2030-01-01T00:00:00Z","plan":"{PLAN:016x}","new":[1,2]}}"#
    );
    let crc = crc32fast::hash(body.as_bytes());
    format!("{},\"crc\":\"{crc:08x}\"}}\n", &body[..body.len() - 1])
}

#[test]
fn a_newer_version_is_refused_not_misread() {
    let text = [line(1, &entries()[0]), future_line(2, 2)].concat();
    let error = decode::<Value>(&text).expect_err("newer");
    assert!(
        matches!(
            error.kind,
            JournalErrorKind::NewerVersion { line: 2, found: 2 }
        ),
        "{error:?}"
    );
    // Even as the last line: it was written whole, so it is no tear.
    let error = decode::<Value>(&future_line(9, 1)).expect_err("newer");
    assert!(matches!(
        error.kind,
        JournalErrorKind::NewerVersion { line: 1, found: 9 }
    ));
    let error = decode::<Value>(&future_line(0, 1)).expect_err("version 0");
    assert_eq!(corrupt_line(&error), Some(1));
}

/// Attempts (issue 11): a changed plan goes on in the same journal, so a
/// record's plan hash may differ from the one before it.
#[test]
fn records_of_two_plan_versions_are_read_each_with_its_hash() {
    let entries = entries();
    let other = encode(3, "2025-06-01T02:00:00Z", PLAN ^ 1, &entries[2]).expect("encodes");
    let text = [line(1, &entries[0]), line(2, &entries[1]), other].concat();
    let journal = decode::<Value>(&text).expect("read");
    let hashes: Vec<u64> = journal.records.iter().map(|r| r.plan_hash).collect();
    assert_eq!(hashes, [PLAN, PLAN, PLAN ^ 1]);
}

#[test]
fn a_whole_record_with_the_wrong_payload_is_corrupt_even_last() {
    let text = journal_of(&[json!("not a number")]);
    let error = decode::<u32>(&text).expect_err("wrong payload");
    assert_eq!(corrupt_line(&error), Some(1));
}

#[test]
fn the_crc_key_inside_a_payload_is_not_the_crc() {
    let tricky = json!({"s": ",\"crc\":\"00000000\"}\n"});
    let journal = decode::<Value>(&journal_of(std::slice::from_ref(&tricky))).expect("decodes");
    assert_eq!(journal.records[0].entry, tricky);
}

#[test]
fn hex_is_strict() {
    assert_eq!(parse_hex(b"00c0ffee"), Some(0xc0ffee));
    assert_eq!(parse_hex(b"ffffffffffffffff"), Some(u64::MAX));
    for bad in [
        &b""[..],
        b"+1",
        b"C0FFEE",
        b"0x1",
        b"1 ",
        b"11111111111111111",
    ] {
        assert_eq!(parse_hex(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}

/// The payload of the checked-in fixture, as the run machine's events
/// looked when it was written. Defined here, not taken from the machine,
/// so the fixture tests the format alone.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Payload {
    RunStarted { phase: String },
    StepStarted { step: String },
    StepSucceeded { step: String },
}

/// Old journals stay readable: `journal-v1.jsonl` was written by the
/// first version of this module. Never regenerate it; add new fixtures
/// beside it when the format changes.
#[test]
fn reads_the_v1_fixture() {
    let text = include_str!("../../tests/fixtures/journal-v1.jsonl");
    let journal = decode::<Payload>(text).expect("the v1 fixture decodes");
    assert_eq!(journal.torn_tail, None);
    let step = |s: &str| s.to_owned();
    let expected = [
        (
            1,
            "2025-06-01T02:00:00Z",
            Payload::RunStarted {
                phase: step("window"),
            },
        ),
        (
            2,
            "2025-06-01T02:00:01.250Z",
            Payload::StepStarted {
                step: step("stop-old"),
            },
        ),
        (
            3,
            "2025-06-01T02:00:04Z",
            Payload::StepSucceeded {
                step: step("stop-old"),
            },
        ),
        (
            4,
            "2025-06-01T02:00:04.5+02:00",
            Payload::StepStarted {
                step: step("dns \"é\" ✓"),
            },
        ),
        (
            5,
            "2025-06-01T02:01:00Z",
            Payload::StepSucceeded {
                step: step("dns \"é\" ✓"),
            },
        ),
    ];
    assert_eq!(journal.records.len(), expected.len());
    for (record, (seq, time, entry)) in journal.records.iter().zip(expected) {
        assert_eq!(record.version, 1);
        assert_eq!(record.seq, seq);
        assert_eq!(record.time, time);
        assert_eq!(record.plan_hash, 0x9e37_79b9_7f4a_7c15);
        assert_eq!(record.entry, entry);
    }
    // While version 1 is what `encode` writes, it writes these very bytes.
    // (Once it writes version 2, drop this half and keep the half above.)
    let again: String = journal
        .records
        .iter()
        .map(|r| encode(r.seq, &r.time, r.plan_hash, &r.entry).expect("encodes"))
        .collect();
    assert_eq!(again, text);
}

/// A JSON payload made of the things runs record: text and numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Arbitrary {
    text: String,
    signed: i64,
    unsigned: u64,
    list: Vec<String>,
}

fn arbitrary() -> impl Strategy<Value = Arbitrary> {
    (
        any::<String>(),
        any::<i64>(),
        any::<u64>(),
        prop::collection::vec(any::<String>(), 0..4),
    )
        .prop_map(|(text, signed, unsigned, list)| Arbitrary {
            text,
            signed,
            unsigned,
            list,
        })
}

proptest! {
    #[test]
    fn encode_decode_round_trips(
        start in 0..u64::MAX - 8,
        time in any::<String>(),
        plan in any::<u64>(),
        entries in prop::collection::vec(arbitrary(), 1..5),
    ) {
        let mut text = String::new();
        for (i, entry) in entries.iter().enumerate() {
            let seq = start + i as u64;
            let line = encode(seq, &time, plan, entry).expect("encodes");
            prop_assert!(line.ends_with('\n'));
            prop_assert_eq!(line.matches('\n').count(), 1);
            text += &line;
        }
        let journal = decode::<Arbitrary>(&text).expect("decodes");
        prop_assert_eq!(journal.torn_tail, None);
        prop_assert_eq!(journal.records.len(), entries.len());
        for (i, (record, entry)) in journal.records.iter().zip(&entries).enumerate() {
            prop_assert_eq!(record.seq, start + i as u64);
            prop_assert_eq!(&record.time, &time);
            prop_assert_eq!(record.plan_hash, plan);
            prop_assert_eq!(&record.entry, entry);
        }
    }

    #[test]
    fn decoding_arbitrary_text_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode::<Value>(&String::from_utf8_lossy(&bytes));
        let _ = decode_bytes::<Value>(&bytes);
    }

    #[test]
    fn decoding_a_damaged_journal_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = journal_of(&entries()).into_bytes();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let cut = cut.index(bytes.len() + 1);
        let _ = decode_bytes::<Value>(&bytes[..cut]);
    }
}

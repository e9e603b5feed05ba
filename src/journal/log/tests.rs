//! The codec and the slice reader: every record round-trips, card data
//! never appears in clear, every malformed input is a typed error, and a
//! torn tail (cut, garbage, zeroed pages, flipped bytes) never costs a
//! whole entry before it nor yields a damaged one.

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::reader::{SliceError, TORN_WINDOW_BYTES, TailReason, scan_slice};
use super::record::*;
use super::seal::{SEAL_MESSAGE, SEAL_PAN, Sealer};
use crate::journal::crypto::Keyring;
use crate::journal::record::{Accepted, Answered, Forwarded, Record, SafQueued};

pub(super) const PAN: &[u8] = b"4761739001010010";

pub(super) fn keys() -> Keyring {
    Keyring::from_env_value(&format!("t1:{}", "5a".repeat(32))).unwrap()
}

pub(super) fn accepted(id: u64, pan: bool, route: bool) -> Record {
    Record::Accepted(Box::new(Accepted {
        id,
        received_at_ms: 1_700_000_000_000 + id as i64,
        acquirer: "pos".into(),
        request_mti: "0100".into(),
        processing_code: Some("000000".into()),
        amount_minor: Some(1500),
        transmission_at: Some("1202133005".into()),
        stan: Some(format!("{:06}", id % 1_000_000)),
        local_time: Some("133005".into()),
        local_date: Some("1202".into()),
        mcc: Some("5411".into()),
        pos_entry_mode: Some("051".into()),
        acquirer_inst: Some("1234567".into()),
        rrn: Some("123456789012".into()),
        terminal_id: Some("TERM0001".into()),
        merchant_id: Some("MERCHANT0000001".into()),
        merchant_name_loc: Some("Café Zürich".into()),
        currency: Some("978".into()),
        original_data: Some("0100".into()),
        replacement_amount: Some(-1),
        pan: pan.then(|| Zeroizing::new(PAN.to_vec())),
        route: route.then(|| Forwarded {
            issuer: "issuer-a".into(),
            issuer_stan: "000042".into(),
            message: Zeroizing::new(b"0100 forwarded".to_vec()),
        }),
    }))
}

/// One record of every variant, and both shapes of the optional parts.
pub(super) fn every_variant(id: u64) -> Vec<Record> {
    vec![
        accepted(id, true, true),
        accepted(id + 1, false, false),
        Record::Answered(Answered {
            id,
            response_code: Some("00".into()),
            approval_code: None,
            outcome: crate::journal::TxnOutcome::Approved,
            response_at_ms: Some(5),
            sent_at_ms: None,
        }),
        Record::Delivery {
            id,
            at_ms: -3,
            delivered: true,
        },
        Record::Event {
            txn_id: Some(id),
            at_ms: 7,
            kind: "timeout",
            detail: "no answer in 30 s".into(),
        },
        Record::Event {
            txn_id: None,
            at_ms: i64::MIN,
            kind: "start",
            detail: String::new(),
        },
        Record::SafQueued(SafQueued {
            id: 9,
            txn_id: Some(id),
            kind: "timeout_reversal",
            issuer: "issuer-a".into(),
            message: Zeroizing::new(b"0420 reversal".to_vec()),
            queued_at_ms: 11,
        }),
        Record::SafAttempted {
            id: 9,
            attempts: u32::MAX,
        },
        Record::SafDone {
            id: 9,
            delivered: false,
            attempts: 3,
            at_ms: 12,
        },
    ]
}

/// Encodes `records` from sequence 1; returns the bytes, each entry's
/// end offset, and the log's form of each.
pub(super) fn encode_all(
    keys: &Keyring,
    records: &[Record],
) -> (Vec<u8>, Vec<usize>, Vec<LogRecord>) {
    let mut sealer = Sealer::new(keys);
    let (mut buf, mut ends, mut logs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, r) in records.iter().enumerate() {
        let log = sealer.seal(r.clone());
        encode_entry(i as u64 + 1, &log, &mut buf).unwrap();
        ends.push(buf.len());
        logs.push(log);
    }
    (buf, ends, logs)
}

#[test]
fn every_variant_round_trips() {
    let keys = keys();
    let records = every_variant(100);
    let (buf, ends, logs) = encode_all(&keys, &records);
    let mut start = 0;
    for (i, end) in ends.iter().enumerate() {
        let (entry, n) = decode_entry(&buf[start..]).unwrap();
        assert_eq!(n, end - start);
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(entry.record, logs[i]);
        start = *end;
    }
    // Every variant's tag is there.
    let tags: std::collections::HashSet<_> = logs.iter().map(std::mem::discriminant).collect();
    assert_eq!(tags.len(), 7);
}

/// The sealed blobs of `from` put into `to` (nonces are random).
fn copy_sealed(from: &LogRecord, to: &mut LogRecord) {
    match (from, to) {
        (LogRecord::Accepted(f), LogRecord::Accepted(t)) => {
            if let (Some(f), Some(t)) = (&f.pan, &mut t.pan) {
                t.sealed = f.sealed.clone();
            }
            if let (Some(f), Some(t)) = (&f.route, &mut t.route) {
                t.message = f.message.clone();
            }
        }
        (LogRecord::SafQueued(f), LogRecord::SafQueued(t)) => t.message = f.message.clone(),
        _ => {}
    }
}

#[test]
fn the_hot_path_writes_what_seal_writes() {
    let keys = keys();
    let mut sealer = Sealer::new(&keys);
    for (i, r) in every_variant(5).iter().enumerate() {
        let mut buf = Vec::new();
        sealer.encode(i as u64, r, &mut buf).unwrap();
        let (entry, n) = decode_entry(&buf).unwrap();
        assert_eq!((entry.seq, n), (i as u64, buf.len()));
        let mut expected = sealer.seal(r.clone());
        copy_sealed(&entry.record, &mut expected);
        assert_eq!(entry.record, expected, "{i}");
        if let LogRecord::Accepted(a) = &entry.record
            && let Some(p) = &a.pan
        {
            assert_eq!(&keys.open(SEAL_PAN, "t1", &p.sealed.blob).unwrap()[..], PAN);
        }
    }
}

#[test]
fn card_data_is_sealed_hashed_and_masked_never_clear() {
    let keys = keys();
    let (buf, _, logs) = encode_all(&keys, &every_variant(1));
    assert!(!buf.windows(PAN.len()).any(|w| w == PAN), "PAN in clear");
    assert!(
        !buf.windows(9).any(|w| w == b"forwarded"),
        "message in clear"
    );
    let LogRecord::Accepted(a) = &logs[0] else {
        panic!("not accepted")
    };
    let pan = a.pan.as_ref().unwrap();
    assert_eq!(pan.masked, "476173******0010");
    assert_eq!(pan.hash, keys.pan_hash(PAN));
    assert_eq!(pan.sealed.key_id, "t1");
    let opened = keys.open(SEAL_PAN, "t1", &pan.sealed.blob).unwrap();
    assert_eq!(&opened[..], PAN);
    let route = a.route.as_ref().unwrap();
    let message = keys.open(SEAL_MESSAGE, "t1", &route.message.blob).unwrap();
    assert_eq!(&message[..], b"0100 forwarded");
    // The purposes are the SQLite store's, so either opens the other's.
    assert_eq!(SEAL_PAN, crate::journal::sqlite::SEAL_PAN);
    assert_eq!(SEAL_MESSAGE, crate::journal::sqlite::SEAL_MESSAGE);
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let keys = keys();
    let (buf, ends, _) = encode_all(&keys, &every_variant(1)[..1]);
    assert_eq!(ends[0], buf.len());
    for cut in 0..buf.len() {
        match decode_entry(&buf[..cut]) {
            Err(DecodeError::Truncated { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    for i in 0..buf.len() {
        let mut bad = buf.clone();
        bad[i] ^= 0x10;
        let e = decode_entry(&bad).unwrap_err();
        assert!(!matches!(e, DecodeError::Malformed { .. }), "{i}: {e}");
    }
    assert_eq!(decode_entry(&[0; 40]).unwrap_err(), DecodeError::Zeroes);
    assert_eq!(
        decode_entry(&[7; 40]).unwrap_err(),
        DecodeError::BadMagic(7)
    );
    let mut long = buf.clone();
    long[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode_entry(&long).unwrap_err(),
        DecodeError::LengthOverLimit(u32::MAX)
    );
}

/// An entry with a good checksum over `payload`.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![MAGIC, 0, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[5..]);
    out[1..5].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn a_checksummed_payload_that_does_not_decode_is_malformed() {
    let cases: [(&[u8], &str); 6] = [
        (&[], "record tag"),
        (&[99], "record tag"),
        (
            &[3, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2],
            "delivered",
        ),
        (&[6, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xAA], "payload"),
        (&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xFF, 0xFE], "event kind"),
        (
            &[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0],
            "event detail",
        ),
    ];
    for (payload, field) in cases {
        match decode_entry(&framed(payload)) {
            Err(DecodeError::Malformed { field: f, .. }) => assert_eq!(f, field, "{payload:?}"),
            other => panic!("{payload:?}: {other:?}"),
        }
    }
    let (_, ends, _) = encode_all(&keys(), &every_variant(1));
    assert!(ends.len() > 1);
}

#[test]
fn a_field_over_its_limit_does_not_encode_and_leaves_the_buffer() {
    let record = LogRecord::Answered(LogAnswered {
        outcome: "x".repeat(SHORT_BYTES_MAX + 1).into(),
        ..LogAnswered::default()
    });
    let mut out = vec![1, 2, 3];
    let e = encode_entry(1, &record, &mut out).unwrap_err();
    assert_eq!(e.field, "outcome");
    assert_eq!(out, [1, 2, 3]);
    // A long detail is cut by the sealer, on a character boundary.
    let keys = keys();
    let mut sealer = Sealer::new(&keys);
    let detail = "é".repeat(DETAIL_BYTES_MAX);
    let log = sealer.seal(Record::Event {
        txn_id: None,
        at_ms: 0,
        kind: "k",
        detail,
    });
    let LogRecord::Event { detail, .. } = &log else {
        panic!()
    };
    assert_eq!(detail.len(), DETAIL_BYTES_MAX);
    encode_entry(1, &log, &mut out).unwrap();
}

fn scan(bytes: &[u8]) -> (Result<super::reader::SliceEnd, SliceError>, Vec<Entry>) {
    let mut got = Vec::new();
    let r = scan_slice(bytes, 1, &mut |e| got.push(e));
    (r, got)
}

#[test]
fn preallocated_zeros_end_the_log_cleanly_and_a_cut_is_a_torn_tail() {
    let (mut buf, ends, _) = encode_all(&keys(), &every_variant(1));
    buf.resize(buf.len() + 8192, 0);
    let (r, got) = scan(&buf);
    let end = r.unwrap();
    assert_eq!((end.records, end.damage, got.len()), (9, None, 9));
    let cut = ends[7] + 5;
    let (r, got) = scan(&buf[..cut]);
    let d = r.unwrap().damage.unwrap();
    assert_eq!(
        (d.offset, d.dropped_bytes, d.reason),
        (ends[7], 5, TailReason::Cut)
    );
    assert_eq!(got.len(), 8);
}

#[test]
fn a_sequence_gap_is_damage_and_dropped() {
    let keys = keys();
    let (mut buf, ends, logs) = encode_all(&keys, &every_variant(1)[..3]);
    buf.truncate(ends[1]);
    encode_entry(7, &logs[2], &mut buf).unwrap();
    let (r, got) = scan(&buf);
    let d = r.unwrap().damage.unwrap();
    assert_eq!(
        d.reason,
        TailReason::SequenceGap {
            expected: 3,
            found: 7
        }
    );
    assert_eq!((got.len(), d.dropped_records), (2, 1));
}

#[test]
fn damage_followed_by_entries_beyond_the_window_is_corruption() {
    let keys = keys();
    let detail = "d".repeat(DETAIL_BYTES_MAX);
    let n = TORN_WINDOW_BYTES / DETAIL_BYTES_MAX + 10;
    let records: Vec<Record> = (0..n)
        .map(|i| Record::Event {
            txn_id: Some(i as u64),
            at_ms: 0,
            kind: "k",
            detail: detail.clone(),
        })
        .collect();
    let (mut buf, ends, _) = encode_all(&keys, &records);
    buf[ends[3] + 30] ^= 1;
    let (r, got) = scan(&buf);
    match r {
        Err(SliceError::Corrupt { offset, later, .. }) => {
            assert_eq!(offset, ends[3]);
            assert!(later - offset >= TORN_WINDOW_BYTES);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got.len(), 4);
    // The same damage near the end is a torn tail.
    buf[ends[3] + 30] ^= 1;
    buf[ends[n - 3] + 30] ^= 1;
    let (r, got) = scan(&buf);
    assert_eq!(r.unwrap().damage.unwrap().dropped_records, 1);
    assert_eq!(got.len(), n - 2);
}

/// A torn tail as a crash leaves one.
#[derive(Debug, Clone)]
enum Tear {
    /// Cut at a byte, then the preallocation's zeros.
    Cut(usize),
    /// Cut at a byte, then random bytes.
    Garbage(usize, Vec<u8>),
    /// A 4 KiB page zeroed (some pages of a write never landed).
    ZeroPage(usize),
    /// One byte changed.
    Flip(usize, u8),
}

fn tear(buf: &[u8], t: &Tear) -> Vec<u8> {
    let mut out = buf.to_vec();
    match t {
        Tear::Cut(at) => {
            let at = at % (buf.len() + 1);
            out[at..].fill(0);
            out.resize(buf.len() + 4096, 0);
        }
        Tear::Garbage(at, junk) => {
            out.truncate(at % (buf.len() + 1));
            out.extend_from_slice(junk);
        }
        Tear::ZeroPage(page) => {
            let start = (page * 4096) % (buf.len() + 1) / 4096 * 4096;
            let end = (start + 4096).min(out.len());
            out[start..end].fill(0);
        }
        Tear::Flip(at, x) => {
            let at = at % buf.len();
            out[at] ^= (*x).max(1);
        }
    }
    out
}

pub(super) fn any_record() -> impl Strategy<Value = Record> {
    (0u8..10, any::<u64>(), ".{0,40}").prop_map(|(k, id, text)| match k {
        0..=2 => accepted(id, k != 1, k != 2),
        3 => Record::Event {
            txn_id: Some(id),
            at_ms: id as i64,
            kind: "note",
            detail: text,
        },
        _ => every_variant(id).swap_remove(usize::from(k) - 1),
    })
}

fn any_tear() -> impl Strategy<Value = Tear> {
    prop_oneof![
        any::<usize>().prop_map(Tear::Cut),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(a, j)| Tear::Garbage(a, j)),
        (0usize..64).prop_map(Tear::ZeroPage),
        (any::<usize>(), any::<u8>()).prop_map(|(a, x)| Tear::Flip(a, x)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the tear, the reader keeps every entry that ends before
    /// the first damaged byte, yields only entries as written, and never
    /// fails (the damage lies within the torn window).
    #[test]
    fn a_torn_tail_keeps_every_entry_before_it(
        records in prop::collection::vec(any_record(), 1..40),
        t in any_tear(),
    ) {
        let keys = keys();
        let (buf, ends, logs) = encode_all(&keys, &records);
        let torn = tear(&buf, &t);
        let first_damage = buf.iter().zip(&torn).position(|(a, b)| a != b)
            .unwrap_or(buf.len().min(torn.len()));
        let whole = ends.iter().filter(|&&e| e <= first_damage).count();
        let (r, got) = scan(&torn);
        let end = r.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert!(got.len() >= whole, "kept {} of {whole}", got.len());
        for (i, e) in got.iter().enumerate() {
            prop_assert_eq!(e.seq, i as u64 + 1);
            prop_assert_eq!(&e.record, &logs[i]);
        }
        prop_assert_eq!(end.records as usize, got.len());
        prop_assert_eq!(end.end, if got.is_empty() { 0 } else { ends[got.len() - 1] });
    }

    /// Arbitrary bytes never panic the decoder or the reader.
    #[test]
    fn arbitrary_bytes_are_errors_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_entry(&bytes);
        let mut framed_bytes = framed(&bytes);
        let _ = decode_entry(&framed_bytes);
        framed_bytes.extend_from_slice(&bytes);
        let (_, got) = scan(&framed_bytes);
        prop_assert!(got.len() <= 1);
    }
}

const FUZZ_SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fuzz/seeds/journal_log_record/every-variant"
);

/// The fuzz target's committed seed is a whole log of every variant, so
/// fuzzing starts from valid entries (regenerate: `cargo test --lib
/// write_fuzz_seed -- --ignored` after a format change).
#[test]
fn the_fuzz_seed_is_a_log_of_every_variant() {
    let bytes = std::fs::read(FUZZ_SEED).unwrap();
    let (r, got) = scan(&bytes);
    let end = r.unwrap();
    assert_eq!((end.records, end.damage, end.end), (9, None, bytes.len()));
    let kinds: std::collections::HashSet<_> = got
        .iter()
        .map(|e| std::mem::discriminant(&e.record))
        .collect();
    assert_eq!(kinds.len(), 7);
}

#[test]
#[ignore = "writes the fuzz seed"]
fn write_fuzz_seed() {
    let (buf, _, _) = encode_all(&keys(), &every_variant(1));
    std::fs::write(FUZZ_SEED, buf).unwrap();
}

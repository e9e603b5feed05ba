//! IPM clearing files: what the writer produces reads back with every check
//! passing, in both layouts; each kind of damage is refused with its own
//! error and the file offset; no damage makes the reader panic.

use bytes::BytesMut;
use cardswitch::clearing::blocking::{BLOCK_BYTES, Blocker, PAD};
use cardswitch::clearing::ipm_reader::{IpmReadError, ipm_spec, read};
use cardswitch::clearing::ipm_writer::{FileParams, IpmWriter, Presentment};
use cardswitch::message::{Message, MessageError, Mti, Part, pds};
use proptest::prelude::*;

mod support;

const FILE_ID: &str = "0012611230000001234500001";

fn pan(i: u64) -> String {
    cardswitch::clearing::seed::test_pan("545400", i)
}

fn written(count: u64, blocked: bool) -> (Vec<u8>, u64) {
    let params = FileParams {
        ipm_file_id: FILE_ID.into(),
        production: false,
        blocked,
        originator_id: "00000012345".into(),
    };
    let mut w = IpmWriter::start(Vec::new(), params).unwrap();
    let mut sum = 0;
    for i in 0..count {
        let amount = 1 + i * 1013;
        sum += amount;
        let arn = cardswitch::clearing::arn::arn(7, "545400", 2026, 327, i + 1).unwrap();
        let p = pan(i);
        w.presentment(&Presentment {
            pan: p.as_bytes(),
            processing_code: "000000",
            amount_minor: amount,
            local_date_time: "261123120000",
            pos_data_code: "510101C00141",
            mcc: "5411",
            arn: &arn,
            approval_code: "A12345",
            merchant_id: "MERCHANT0000001",
            name_location: "CORNER GROCERY\\BERLIN DE",
            currency: "978",
        })
        .unwrap();
    }
    let (totals, bytes) = w.finish().unwrap();
    assert_eq!(totals.message_count, count + 2);
    assert_eq!(totals.amount_sum, sum);
    assert_eq!(totals.bytes as usize, bytes.len());
    (bytes, sum)
}

#[test]
fn written_files_read_back_with_every_field_in_both_layouts() {
    let spec = ipm_spec().unwrap();
    for blocked in [true, false] {
        let (bytes, sum) = written(40, blocked);
        if blocked {
            assert_eq!(bytes.len() % BLOCK_BYTES, 0);
            assert!(bytes.len() > 4 * BLOCK_BYTES, "spans several blocks");
        }
        let file = read(&bytes, blocked, &spec).unwrap();
        assert_eq!(file.records.len(), 42);
        assert_eq!((file.amount_sum, file.message_count), (sum, 42));
        assert_eq!(file.ipm_file_id, FILE_ID);
        for (i, r) in file.records.iter().enumerate() {
            assert_eq!(r.message.get_u64(71), Some(i as u64 + 1));
        }
        let p = &file.records[5].message;
        assert_eq!(p.mti().as_str(), "1240");
        assert_eq!(p.get_str(2), Some(pan(4).as_str()));
        assert_eq!(p.get_u64(4), Some(1 + 4 * 1013));
        assert_eq!(p.get_str(24), Some("200"));
        assert!(cardswitch::clearing::arn::is_valid(p.get(31).unwrap()));
        let de48 = pds::parse(p.get(48).unwrap()).unwrap();
        let tags: Vec<u16> = de48.iter().map(|x| x.tag).collect();
        assert_eq!(tags, vec![23, 158, 165]);
        // EBCDIC on disk: the MTI "1240" is F1 F2 F4 F0.
        let at = file.records[1].offset;
        assert_eq!(&bytes[at + 4..at + 8], &[0xF1, 0xF2, 0xF4, 0xF0]);
        // The other layout is refused.
        assert!(read(&bytes, !blocked, &spec).is_err());
    }
}

/// Builds a file from messages as given (no fixing of DE71 or totals).
fn file_of(msgs: &[Message], blocked: bool, eof: bool) -> Vec<u8> {
    let spec = ipm_spec().unwrap();
    let mut stream = Vec::new();
    for m in msgs {
        let rec = spec.build(m).unwrap();
        stream.extend_from_slice(&(rec.len() as u32).to_be_bytes());
        stream.extend_from_slice(&rec);
    }
    if eof {
        stream.extend_from_slice(&[0, 0, 0, 0]);
    }
    if !blocked {
        return stream;
    }
    let mut out = Vec::new();
    let mut b = Blocker::default();
    b.push(&stream, &mut out);
    b.finish(&mut out);
    out
}

fn control(function: &str, n: u64, pds_items: &[(u16, &str)]) -> Message {
    let mut m = Message::new(Mti::from_digits(*b"1644").unwrap());
    m.set_str(24, function).unwrap();
    let mut de48 = BytesMut::new();
    for (tag, v) in pds_items {
        pds::write(*tag, v.as_bytes(), &mut de48).unwrap();
    }
    m.set(48, de48.freeze()).unwrap();
    m.set_num(71, n, 8).unwrap();
    m
}

fn presentment(n: u64, amount: u64) -> Message {
    let mut m = Message::new(Mti::from_digits(*b"1240").unwrap());
    m.set_str(2, &pan(n)).unwrap();
    m.set_num(4, amount, 12).unwrap();
    m.set_str(24, "200").unwrap();
    m.set_num(71, n, 8).unwrap();
    m
}

fn good_messages() -> Vec<Message> {
    vec![
        control("697", 1, &[(105, FILE_ID), (122, "T")]),
        presentment(2, 500),
        presentment(3, 700),
        control(
            "695",
            4,
            &[(105, FILE_ID), (301, "0000000000001200"), (306, "00000004")],
        ),
    ]
}

fn err(bytes: &[u8], blocked: bool) -> IpmReadError {
    read(bytes, blocked, &ipm_spec().unwrap()).unwrap_err()
}

#[test]
fn hand_built_file_passes_and_each_fault_is_named_with_its_offset() {
    let spec = ipm_spec().unwrap();
    let good = good_messages();
    read(&file_of(&good, true, true), true, &spec).unwrap();
    let unblocked = file_of(&good, false, true);
    let file = read(&unblocked, false, &spec).unwrap();
    let offsets: Vec<usize> = file.records.iter().map(|r| r.offset).collect();

    // Truncated: a blocked file loses whole-block alignment; an unblocked one ends mid-record.
    let blocked = file_of(&good, true, true);
    assert_eq!(
        err(&blocked[..blocked.len() - 1], true),
        IpmReadError::Blocking(
            cardswitch::clearing::blocking::BlockingError::PartialBlock {
                length: blocked.len() - 1
            }
        )
    );
    let cut = offsets[2] + 10;
    assert_eq!(
        err(&unblocked[..cut], false),
        IpmReadError::TruncatedRecord {
            offset: offsets[2],
            length: (offsets[3] - offsets[2]) - 4,
            available: 6
        }
    );
    assert_eq!(
        err(&unblocked[..offsets[2] + 2], false),
        IpmReadError::TruncatedRdw {
            offset: offsets[2],
            available: 2
        }
    );

    // No end-of-file record; bytes after it; non-0x40 padding.
    assert!(matches!(
        err(&file_of(&good, false, false), false),
        IpmReadError::NoEndOfFile { .. }
    ));
    assert!(matches!(
        err(&file_of(&good, true, false), true),
        IpmReadError::NoEndOfFile { .. }
    ));
    let mut trailing = unblocked.clone();
    trailing.push(0x40);
    assert_eq!(
        err(&trailing, false),
        IpmReadError::TrailingBytes {
            offset: unblocked.len(),
            length: 1
        }
    );
    let mut padded = blocked.clone();
    let pad_at = unblocked.len() + 3; // inside the padding of the single block
    assert_eq!(padded[pad_at], PAD);
    padded[pad_at] = 0x00;
    assert_eq!(
        err(&padded, true),
        IpmReadError::Padding {
            offset: pad_at,
            found: 0
        }
    );
    let mut trailer = blocked.clone();
    trailer[1013] = 0x41;
    assert!(matches!(err(&trailer, true), IpmReadError::Blocking(_)));

    // A record length beyond the limit.
    let mut long = unblocked.clone();
    long[offsets[1]..offsets[1] + 4].copy_from_slice(&1_000_000u32.to_be_bytes());
    assert_eq!(
        err(&long, false),
        IpmReadError::RecordTooLong {
            offset: offsets[1],
            length: 1_000_000
        }
    );

    // A bitmap announcing a field that is not there: the record is refused.
    let mut bitmap = unblocked.clone();
    bitmap[offsets[1] + 8 + 1] |= 0x80; // RDW 4 + MTI 4, second bitmap byte: DE9
    assert!(
        matches!(err(&bitmap, false), IpmReadError::Record { record: 2, offset, .. } if offset == offsets[1])
    );

    // DE71 out of order.
    let mut seq = good.clone();
    seq[2].set_num(71, 7, 8).unwrap();
    assert!(matches!(
        err(&file_of(&seq, false, true), false),
        IpmReadError::Sequence { record: 3, expected: 3, offset, .. } if offset == offsets[2]
    ));

    // Header first, trailer last, one file id.
    let mut headless = good[1..].to_vec();
    for (i, m) in headless.iter_mut().enumerate() {
        m.set_num(71, i as u64 + 1, 8).unwrap();
    }
    assert!(matches!(
        err(&file_of(&headless, false, true), false),
        IpmReadError::NoHeader { offset: 0 }
    ));
    assert!(matches!(
        err(&file_of(&good[..3], false, true), false),
        IpmReadError::NoTrailer { .. }
    ));
    let mut other_id = good.clone();
    other_id[3] = control(
        "695",
        4,
        &[
            (105, "0012611230000001234500002"),
            (301, "0000000000001200"),
            (306, "00000004"),
        ],
    );
    assert_eq!(
        err(&file_of(&other_id, false, true), false),
        IpmReadError::FileIdMismatch { offset: offsets[3] }
    );

    // Trailer totals.
    let mut amount = good.clone();
    amount[3] = control(
        "695",
        4,
        &[(105, FILE_ID), (301, "0000000000001201"), (306, "00000004")],
    );
    assert_eq!(
        err(&file_of(&amount, false, true), false),
        IpmReadError::AmountTotal {
            offset: offsets[3],
            stated: 1201,
            computed: 1200
        }
    );
    let mut count = good.clone();
    count[3] = control(
        "695",
        4,
        &[(105, FILE_ID), (301, "0000000000001200"), (306, "00000005")],
    );
    assert_eq!(
        err(&file_of(&count, false, true), false),
        IpmReadError::CountTotal {
            offset: offsets[3],
            stated: 5,
            computed: 4
        }
    );
    let mut missing = good.clone();
    missing[3] = control("695", 4, &[(105, FILE_ID), (301, "0000000000001200")]);
    assert!(matches!(
        err(&file_of(&missing, false, true), false),
        IpmReadError::MissingPds { tag: 306, .. }
    ));

    // A PDS whose length runs past DE48: the spec's parse refuses it
    // (DE48 is `structure = "pds"`), naming the field.
    let mut bad_pds = good.clone();
    bad_pds[1].set_str(48, "0023009POI").unwrap();
    assert!(matches!(
        err(&file_of(&bad_pds, false, true), false),
        IpmReadError::Record {
            record: 2,
            offset,
            source: MessageError::BadSubElement { part: Part::Field(48), .. },
            ..
        } if offset == offsets[1]
    ));

    // Blocked offsets are file offsets: the second block's trailer.
    let (big, _) = written(20, true);
    let mut damaged = big.clone();
    damaged[2 * BLOCK_BYTES - 1] = 0;
    assert_eq!(
        err(&damaged, true).to_string(),
        format!(
            "block at offset {}: bytes 1013-1014 are [40, 00], not 40 40",
            BLOCK_BYTES + 1012
        )
    );
}

#[test]
fn errors_never_carry_the_pan() {
    let mut msgs = good_messages();
    msgs[2].set_num(71, 9, 8).unwrap();
    let text = err(&file_of(&msgs, false, true), false).to_string();
    assert!(!text.contains(&pan(2)) && !text.contains(&pan(3)), "{text}");
}

#[test]
fn the_read_command_reports_the_offset_and_fails() {
    let dir = support::certs::temp_dir("clearing-read-cli");
    let (bytes, _) = written(10, true);
    let path = dir.join("f.ipm");
    std::fs::write(&path, &bytes[..bytes.len() - BLOCK_BYTES / 2]).unwrap();
    let (code, _, err) = support::process::run(&["clearing", "read", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a multiple of 1014"), "{err}");
    std::fs::write(&path, &bytes).unwrap();
    let (code, out, err) =
        support::process::run(&["clearing", "read", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["summary"]["messages"], 12);
    // Masked unless --reveal.
    assert!(
        !out.contains(&pan(3)) && out.contains("545400******"),
        "PAN shown in clear"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn damaged_files_are_refused_or_read_never_a_panic(
        blocked in any::<bool>(), cut in 0usize..20_000, flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 0..4)
    ) {
        let (bytes, _) = written(12, blocked);
        let spec = ipm_spec().unwrap();
        let mut damaged = bytes.clone();
        for (at, v) in &flips {
            let at = at % damaged.len();
            damaged[at] ^= v | 1;
        }
        let _ = read(&damaged, blocked, &spec);
        let cut = cut % bytes.len();
        // Every proper prefix lacks at least the end-of-file record.
        prop_assert!(read(&bytes[..cut], blocked, &spec).is_err());
    }
}

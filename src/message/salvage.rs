//! What can be read of a malformed message: its MTI and the fields that
//! can be trusted, to address a format-error reject (DE39 = 30) to its
//! sender, whose STAN-matching multiplexer (jPOS QMUX, iso8583sim) needs
//! DE11 and DE41 back to see its answer.
//!
//! A fault seldom shows where it is: a bitmap that claims an absent field,
//! or a length prefix that is wrong, shifts every later field, and the
//! parser only stumbles some fields on, having read shifted bytes as valid
//! values (a STAN made of an RRN's digits). So no field is trusted for
//! having been read before the first error. The rule:
//!
//! - A *reading* of the message takes one claimed field `k`, at or before
//!   the field where the strict parse failed (any field, when the fault is
//!   trailing bytes), as the faulty one: the fields before it as the strict
//!   parse read them from the start, field `k` as bytes of unknown extent
//!   (absent, bad length, bad content), and the fields after it read by
//!   their rules from some offset `o` after `k`'s start. A reading is
//!   *consistent* when those fields end exactly at the end of the frame.
//!   When the strict parse ran out of bytes, the frame may also have been
//!   cut: the fields before the one that ran short, as read, are then one
//!   more consistent reading.
//! - A field is kept when every consistent reading gives it the same value
//!   (so none takes it for the faulty field). A shifted STAN is a value only
//!   in readings that put the fault after it, and the reading that puts the
//!   fault where it is gives the STAN another value (or none): it is
//!   dropped. With no consistent reading (two faults, or more), no field
//!   is kept.
//!
//! A bad DE2 (its prefix or its digits) thus still gives DE11 and DE41: the
//! reading with DE2 faulty finds them where the rest of the message puts
//! them. The scan costs at most [`SCAN_READS_MAX`] field reads, beyond
//! which nothing is kept: a hostile frame costs a bounded time.

use bytes::Bytes;

use super::bitmap::Bitmap;
use super::error::MessageError;
use super::iso_message::Message;
use super::parse::{self, Fields, MESSAGE_BYTES_MAX, Reader};
use super::spec::Spec;

/// Field reads one salvage may spend on its readings at most: what a
/// hostile frame can cost, whatever its size.
pub const SCAN_READS_MAX: usize = 16_384;

/// Field values by number, ascending.
type Values = Vec<(u16, Bytes)>;

/// What can be read of a malformed message (see the module's rule).
/// `None` when not even the MTI can be read, or the message is valid.
pub fn salvage(spec: &Spec, input: &Bytes) -> Option<Message> {
    let mti = parse::read_mti_only(spec, input)?;
    if parse::parse_checked(spec, input).is_ok() {
        return None;
    }
    let mut msg = Message::new(mti);
    for (n, value) in agreed_values(spec, input).unwrap_or_default() {
        let _ = msg.set(n, value);
    }
    Some(msg)
}

/// The values every consistent reading agrees on; `None` when there is no
/// consistent reading, or the scan ran out of reads.
fn agreed_values(spec: &Spec, input: &Bytes) -> Option<Values> {
    if input.len() > MESSAGE_BYTES_MAX {
        return None;
    }
    let mut r = Reader { input, offset: 0 };
    parse::read_mti(spec, &mut r).ok()?;
    let (_, present) = parse::read_bitmaps(spec, &mut r).ok()?;
    let order: Vec<u16> = present.iter().collect();
    // The strict reading: where each field starts, up to the first fault.
    let mut strict = Fields::default();
    let mut starts = Vec::with_capacity(order.len());
    let mut cut = false;
    for &n in &order {
        starts.push(r.offset);
        let Some(layout) = spec.layout(n) else {
            break;
        };
        match parse::read_field(n, layout, &mut r, &mut strict.decoded) {
            Ok(slot) => strict.slots.push(slot),
            Err(e) => {
                cut = matches!(e, MessageError::Truncated { .. });
                break;
            }
        }
    }
    let strict = values(spec, input, strict);
    // Bytes the fields after each one take at least.
    let mut after = vec![0usize; order.len()];
    for i in (0..order.len().saturating_sub(1)).rev() {
        let next = spec.layout(order[i + 1]).map_or(0, |l| {
            if l.is_variable() {
                usize::from(l.prefix_bytes)
            } else {
                l.fixed_wire_bytes as usize
            }
        });
        after[i] = after[i + 1] + next;
    }
    let mut scan = Scan {
        spec,
        input,
        reads: 0,
        agreed: None,
    };
    if cut {
        scan.agree(strict.clone());
    }
    // `starts` runs up to the field that failed (all, for trailing bytes).
    for (k, &start) in starts.iter().enumerate() {
        let before = &strict[..k.min(strict.len())];
        // No room for the fields after `k`: no reading with this `k`.
        let Some(last) = input.len().checked_sub(after[k]) else {
            continue;
        };
        for o in start..=last {
            if let Some(suffix) = scan.suffix(&order[k + 1..], o)? {
                scan.agree(before.iter().cloned().chain(suffix).collect());
            }
        }
    }
    scan.agreed
}

/// A parsed run of fields as values.
fn values(spec: &Spec, input: &Bytes, fields: Fields) -> Values {
    let mut present = Bitmap::default();
    for slot in &fields.slots {
        present.set(slot.number());
    }
    let mti = parse::read_mti_only(spec, input).unwrap_or_else(|| "0000".parse().expect("MTI"));
    let msg = fields.into_message(spec, mti, present, input);
    msg.fields().map(|(n, v)| (n, v.clone())).collect()
}

/// The readings tried so far and what they agree on.
struct Scan<'a> {
    spec: &'a Spec,
    input: &'a Bytes,
    reads: usize,
    agreed: Option<Values>,
}

impl Scan<'_> {
    /// `fields` read from `at`: their values if they end exactly at the end
    /// of the frame, `Some(None)` if not, `None` once the reads run out.
    fn suffix(&mut self, fields: &[u16], at: usize) -> Option<Option<Values>> {
        let mut r = Reader {
            input: self.input,
            offset: at,
        };
        let mut got = Fields::default();
        for &n in fields {
            self.reads += 1;
            if self.reads > SCAN_READS_MAX {
                return None;
            }
            let Some(layout) = self.spec.layout(n) else {
                return Some(None);
            };
            match parse::read_field(n, layout, &mut r, &mut got.decoded) {
                Ok(slot) => got.slots.push(slot),
                Err(_) => return Some(None),
            }
        }
        if r.offset != self.input.len() {
            return Some(None);
        }
        Some(Some(values(self.spec, self.input, got)))
    }

    /// Keeps, of what the readings so far agree on, what `reading` agrees with.
    fn agree(&mut self, reading: Values) {
        self.agreed = Some(match self.agreed.take() {
            None => reading,
            Some(mut agreed) => {
                agreed.retain(|(n, v)| reading.iter().any(|(m, w)| m == n && w == v));
                agreed
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An iso87-ascii 0100 with the given fields, built.
    fn wire(fields: &[(u16, &str)]) -> Vec<u8> {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let mut m = Message::new("0100".parse().expect("mti"));
        for &(n, v) in fields {
            m.set_str(n, v).expect("set");
        }
        spec.build(&m).expect("build").to_vec()
    }

    const AUTH: &[(u16, &str)] = &[
        (2, "4761739001010119"),
        (3, "000000"),
        (4, "000000012500"),
        (7, "1123143005"),
        (11, "123456"),
        (37, "532798765400"),
        (41, "TERM0001"),
    ];

    fn salvaged(bytes: Vec<u8>) -> Message {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        salvage(&spec, &Bytes::from(bytes)).expect("salvaged")
    }

    #[test]
    fn a_claimed_but_absent_field_never_yields_a_shifted_stan() {
        // DE7 claimed in the bitmap but left out: DE11 would be read from
        // the RRN's digits.
        let mut bytes = wire(AUTH);
        let at = bytes
            .windows(10)
            .position(|w| w == b"1123143005")
            .expect("DE7");
        bytes.drain(at..at + 10);
        let m = salvaged(bytes);
        assert_ne!(
            m.get_str(11),
            Some("987654"),
            "a STAN from the RRN's digits"
        );
        assert!(m.get_str(11).is_none_or(|s| s == "123456"));
        assert_eq!(m.mti().to_string(), "0100");
    }

    #[test]
    fn a_bad_pan_still_gives_the_stan_and_terminal() {
        // A letter in the PAN.
        let mut bad = wire(AUTH);
        let at = bad
            .windows(16)
            .position(|w| w == b"4761739001010119")
            .expect("PAN");
        bad[at + 3] = b'X';
        let m = salvaged(bad);
        assert_eq!(m.get_str(11), Some("123456"));
        assert_eq!(m.get_str(41), Some("TERM0001"));
        assert!(!m.has(2));
        // A PAN length prefix past DE2's maximum (19), and one that is not
        // digits.
        for prefix in [b"25", b"1X"] {
            let mut bytes = wire(AUTH);
            let at = bytes
                .windows(2)
                .position(|w| w == b"16")
                .expect("DE2 prefix");
            bytes[at..at + 2].copy_from_slice(prefix);
            let m = salvaged(bytes);
            assert_eq!(m.get_str(11), Some("123456"));
            assert_eq!(m.get_str(41), Some("TERM0001"));
            assert!(!m.has(2));
        }
        // One that says 18 where 16 are: the strict parse reads two digits
        // of DE3 into DE2 and runs short at the end, as a frame cut short
        // would; the readings disagree on DE11, which is dropped.
        let mut bytes = wire(AUTH);
        let at = bytes.windows(2).position(|w| w == b"16").expect("prefix");
        bytes[at..at + 2].copy_from_slice(b"18");
        let m = salvaged(bytes);
        assert!(m.get_str(11).is_none_or(|s| s == "123456"), "{m:?}");
    }

    #[test]
    fn a_cut_frame_keeps_what_precedes_the_cut_and_invents_nothing() {
        // The frame cut inside DE37: DE41 is gone, and the bytes left must
        // not be read as a DE41.
        let mut bytes = wire(AUTH);
        bytes.truncate(bytes.len() - 12);
        let m = salvaged(bytes);
        assert!(!m.has(41), "{m:?}");
        // Numeric fields shift easily: a reading with DE2 faulty and every
        // later field moved ends at the end too, and gives another DE11.
        assert!(m.get_str(11).is_none_or(|s| s == "123456"), "{m:?}");
        // Where the field before the cut is text, no such reading exists.
        let mut bytes = wire(&[(11, "123456"), (41, "TERM0001"), (48, "SHOP")]);
        bytes.truncate(bytes.len() - 1);
        let m = salvaged(bytes);
        assert_eq!(m.get_str(11), Some("123456"));
        assert_eq!(m.get_str(41), Some("TERM0001"));
    }

    #[test]
    fn a_golden_request_cut_short_keeps_its_stan() {
        // Cut inside DE37: the fields after it cannot fit in what is left,
        // so no reading takes an earlier field as faulty; the cut one keeps
        // what precedes the cut.
        let golden = include_str!("../../fixtures/golden/iso87-ascii/0100-auth-request.hex");
        let mut bytes = hex::decode(golden.trim()).expect("hex");
        bytes.truncate(150);
        let m = salvaged(bytes);
        assert_eq!(m.get_str(11), Some("123456"));
        assert_eq!(m.get_str(32), Some("1234567"));
        assert!(!m.has(37) && !m.has(41));
    }

    #[test]
    fn no_consistent_reading_keeps_no_field() {
        // Two faults: DE7 left out and DE41 cut short.
        let mut bytes = wire(AUTH);
        let at = bytes
            .windows(10)
            .position(|w| w == b"1123143005")
            .expect("DE7");
        bytes.drain(at..at + 10);
        bytes.truncate(bytes.len() - 3);
        let m = salvaged(bytes);
        assert!(!m.has(11) && !m.has(41), "{m:?}");
        assert!(
            salvage(
                &Spec::resolve("iso87-ascii").expect("spec"),
                &Bytes::from(wire(AUTH))
            )
            .is_none()
        );
    }
}

//! Dialect translation between an acquirer's spec and an issuer's: the MTI
//! version (1987 <-> 1993), fields whose number or form differs between the
//! versions, and a check of every value against the target spec. Fields the
//! target cannot carry are dropped and reported (by number only).
//!
//! Cross-version mappings (documented approximations where the versions
//! disagree in meaning):
//! - DE12 + DE13 (1987 time hhmmss, date MMDD) <-> DE12 (1993 YYMMDDhhmmss);
//!   the year comes from `now`.
//! - DE18 merchant type (1987) <-> DE26 card acceptor business code (1993).
//! - DE22: 1987 POS entry mode `MMP` <-> 1993 POS data code: the card data
//!   input mode (position 7) and PIN capability (position 2), other
//!   positions 0 (unspecified).
//! - DE24 (1987 NII, 1993 function code), DE25 (1987 POS condition, 1993
//!   message reason) do not cross; 1993 requests get the function code of
//!   their class (100 authorization, 200 financial, 400 reversal).
//! - DE39: two-character response codes <-> three-digit action codes.
//! - DE43: fixed 40 (1987) <-> LL..99 (1993): padded or cut to 40.
//!
//! A MAC (DE64, DE128) is never carried: it covers the message as its
//! sender built it, and the switch changes what it forwards (DE11, DE33,
//! the dialect), so a carried MAC would be stale. Every message the switch
//! makes from another goes through here (or through [`strip_mac`]); a
//! security module may later verify the sender's MAC and make a new one.

use std::time::SystemTime;

use bytes::Bytes;

use crate::message::iso_message::Carry;
use crate::message::mti::MessageClass;
use crate::message::response_codes::{from_action_code, to_action_code};
use crate::message::time::utc_date;
use crate::message::{Message, Spec};

/// A translated message and the fields that could not be carried.
#[derive(Debug)]
pub struct Translated {
    pub message: Message,
    pub dropped: Vec<u16>,
}

/// Fields whose meaning differs between 1987 and 1993 under one number.
const VERSION_SPECIFIC: &[u16] = &[
    12, 13, 18, 22, 24, 25, 26, 30, 39, 43, 44, 53, 54, 56, 90, 95,
];

/// The message authentication code fields (primary and secondary bitmap).
pub const MAC_FIELDS: [u16; 2] = [64, 128];

/// Removes the MACs of a message made from another (see the module's
/// note). With DE128 gone the builder sends no secondary bitmap unless
/// another field above 64 remains.
pub fn strip_mac(msg: &mut Message) {
    for n in MAC_FIELDS {
        msg.unset(n);
    }
}

/// [`translate`] of a message no longer needed as it is (an issuer's
/// answer becoming the acquirer's reply): where every field crosses as it
/// is, the message itself becomes the translation, its values not copied.
pub fn translate_owned(from: &Spec, to: &Spec, msg: Message, now: SystemTime) -> Translated {
    let whole = from.id == to.id && msg.parsed_by(to.id) && !MAC_FIELDS.iter().any(|&n| msg.has(n));
    if !whole {
        return translate(from, to, &msg, now);
    }
    let mti = msg.mti().with_version(to.version.digit());
    Translated {
        message: msg.rederived(mti, from.id, to.id),
        dropped: Vec::new(),
    }
}

/// Translates `msg` from `from`'s dialect to `to`'s. `now` gives the year
/// for the 1987 -> 1993 date mapping.
pub fn translate(from: &Spec, to: &Spec, msg: &Message, now: SystemTime) -> Translated {
    let from_v = from.version.digit();
    let to_v = to.version.digit();
    let mut dropped = Vec::new();
    let cross = (from_v == 0) != (to_v == 0);
    // One spec on both sides (an acquirer and an issuer of one dialect):
    // every field it defines crosses with its check, without comparing
    // the two definitions; the slots are copied whole when none is dropped
    // (no MAC, nothing undefined: the usual message).
    let same = from.id == to.id;
    let mti = msg.mti().with_version(to_v);
    if same {
        // Parsed by that spec and unchanged, without a MAC: every field
        // crosses, with no decision per field.
        let whole = msg.parsed_by(to.id) && !MAC_FIELDS.iter().any(|&n| msg.has(n));
        let carried = |n| whole || (!MAC_FIELDS.contains(&n) && to.layout(n).is_some());
        if let Some(message) = msg.derive_all(mti, from.id, to.id, carried) {
            return Translated {
                message,
                dropped: Vec::new(),
            };
        }
    }
    let mut out = msg.derive(mti, from.id, to.id, |n, value, checked| {
        if MAC_FIELDS.contains(&n) {
            return Carry::Drop;
        }
        if same {
            return match (to.layout(n), checked) {
                (None, _) => {
                    dropped.push(n);
                    Carry::Drop
                }
                (Some(_), true) => Carry::Checked,
                (Some(_), false) => Carry::Unchecked,
            };
        }
        if cross && VERSION_SPECIFIC.contains(&n) {
            return Carry::Drop;
        }
        let Some(target) = to.field(n) else {
            dropped.push(n);
            return Carry::Drop;
        };
        // A value valid under an identical field rule needs no new check.
        let same_rule = from
            .field(n)
            .is_some_and(|a| a.class == target.class && a.length == target.length);
        if same_rule {
            return if checked {
                Carry::Checked
            } else {
                Carry::Unchecked
            };
        }
        if fits(to, n, value) {
            Carry::Checked
        } else {
            dropped.push(n);
            Carry::Drop
        }
    });
    if cross {
        if from_v == 0 {
            to_1993(msg, &mut out, now, to, &mut dropped);
        } else {
            to_1987(msg, &mut out, to, &mut dropped);
        }
    }
    dropped.sort_unstable();
    Translated {
        message: out,
        dropped,
    }
}

/// Sets a field if the target spec defines it and the value fits.
fn put_checked(to: &Spec, out: &mut Message, n: u16, value: Bytes, dropped: &mut Vec<u16>) {
    if fits(to, n, &value) && out.set(n, value).is_ok() {
        return;
    }
    dropped.push(n);
}

/// Whether the target spec defines field `n` and `value` passes its rule.
fn fits(to: &Spec, n: u16, value: &[u8]) -> bool {
    to.layout(n).is_some_and(|l| l.check(n, value, 0).is_ok())
}

fn to_1993(msg: &Message, out: &mut Message, now: SystemTime, to: &Spec, dropped: &mut Vec<u16>) {
    if let (Some(time), Some(date)) = (msg.get_str(12), msg.get_str(13)) {
        let yy = utc_date(now).0.rem_euclid(100);
        put_checked(
            to,
            out,
            12,
            Bytes::from(format!("{yy:02}{date}{time}")),
            dropped,
        );
    }
    if let Some(mcc) = msg.value_bytes(18) {
        put_checked(to, out, 26, mcc, dropped);
    }
    if let Some(mode) = msg.get_str(22).filter(|m| m.len() == 3) {
        let input = match &mode[..2] {
            "01" => '1',
            "02" | "90" => '2',
            "05" => '5',
            "07" => 'M',
            _ => '0',
        };
        let pin = if &mode[2..] == "1" { '1' } else { '0' };
        put_checked(
            to,
            out,
            22,
            Bytes::from(format!("0{pin}0000{input}00000")),
            dropped,
        );
    }
    if let Some(code) = msg.get_str(39) {
        put_checked(
            to,
            out,
            39,
            Bytes::from_static(to_action_code(code).as_bytes()),
            dropped,
        );
    }
    if let Some(name) = msg.value_bytes(43) {
        put_checked(to, out, 43, name, dropped);
    }
    if msg.mti().expects_response() && !msg.mti().is_response() {
        let function: &'static [u8] = match msg.mti().class() {
            MessageClass::Authorization => b"100",
            MessageClass::Financial => b"200",
            MessageClass::Reversal => b"400",
            _ => b"",
        };
        if !function.is_empty() {
            put_checked(to, out, 24, Bytes::from_static(function), dropped);
        }
    }
}

fn to_1987(msg: &Message, out: &mut Message, to: &Spec, dropped: &mut Vec<u16>) {
    if let Some(dt) = msg.get_str(12).filter(|d| d.len() == 12) {
        put_checked(
            to,
            out,
            13,
            Bytes::copy_from_slice(&dt.as_bytes()[2..6]),
            dropped,
        );
        put_checked(
            to,
            out,
            12,
            Bytes::copy_from_slice(&dt.as_bytes()[6..]),
            dropped,
        );
    }
    if let Some(mcc) = msg.value_bytes(26) {
        put_checked(to, out, 18, mcc, dropped);
    }
    if let Some(code) = msg.get_str(22).filter(|c| c.len() == 12) {
        let mode = match code.as_bytes()[6] {
            b'1' => "01",
            b'2' => "02",
            b'5' | b'M' => "05",
            _ => "00",
        };
        let pin = if code.as_bytes()[1] == b'1' { '1' } else { '0' };
        put_checked(to, out, 22, Bytes::from(format!("{mode}{pin}")), dropped);
    }
    if let Some(action) = msg.get_str(39) {
        put_checked(
            to,
            out,
            39,
            Bytes::from_static(from_action_code(action).as_bytes()),
            dropped,
        );
    }
    if let Some(name) = msg.value_bytes(43) {
        let mut fixed = name.to_vec();
        fixed.resize(40, b' ');
        put_checked(to, out, 43, Bytes::from(fixed), dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth87() -> Message {
        let mut m = Message::new("0100".parse().expect("mti"));
        for (n, v) in [
            (2, "4761739001010119"),
            (3, "000000"),
            (4, "000000012500"),
            (7, "1123143005"),
            (11, "123456"),
            (12, "143005"),
            (13, "1123"),
            (18, "5411"),
            (22, "051"),
            (24, "001"),
            (25, "00"),
            (37, "532714123456"),
            (41, "TERM0001"),
            (43, "ACME HARDWARE          SPRINGFIELD  ILUS"),
            (49, "840"),
        ] {
            m.set_str(n, v).expect("set");
        }
        m
    }

    fn nov_23_2026() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(20_780 * 86_400)
    }

    #[test]
    fn binary_and_ascii_1987_carry_every_field() {
        let bin = Spec::resolve("iso87-binary").expect("spec");
        let ascii = Spec::resolve("iso87-ascii").expect("spec");
        let t = translate(&bin, &ascii, &auth87(), nov_23_2026());
        assert!(t.dropped.is_empty(), "{:?}", t.dropped);
        assert_eq!(t.message, auth87());
    }

    #[test]
    fn from_1987_to_1993_and_back() {
        let v87 = Spec::resolve("iso87-ascii").expect("spec");
        let v93 = Spec::resolve("iso93-ascii").expect("spec");
        let t = translate(&v87, &v93, &auth87(), nov_23_2026());
        let m = &t.message;
        assert_eq!(m.mti().to_string(), "1100");
        assert_eq!(m.get_str(12), Some("261123143005"));
        assert_eq!(m.get_str(26), Some("5411"));
        assert_eq!(m.get_str(22), Some("010000500000"));
        assert_eq!(m.get_str(24), Some("100"));
        assert!(!m.has(25) && !m.has(18) && !m.has(13));
        spec_builds(&v93, m);

        let mut resp = m.clone();
        resp.set_mti("1110".parse().expect("mti"));
        resp.set_str(39, "116").expect("set");
        let back = translate(&v93, &v87, &resp, nov_23_2026()).message;
        assert_eq!(back.mti().to_string(), "0110");
        assert_eq!(back.get_str(39), Some("51"));
        assert_eq!(back.get_str(12), Some("143005"));
        assert_eq!(back.get_str(13), Some("1123"));
        assert_eq!(back.get_str(18), Some("5411"));
        assert_eq!(back.get_str(22), Some("051"));
        assert_eq!(back.get(43).map(|v| v.len()), Some(40));
        assert!(!back.has(24));
        spec_builds(&v87, &back);
    }

    #[test]
    fn macs_are_never_carried_and_the_secondary_bitmap_goes_with_de128() {
        let v87 = Spec::resolve("iso87-ascii").expect("spec");
        let v93 = Spec::resolve("iso93-ascii").expect("spec");
        let bin = Spec::resolve("iso87-binary").expect("spec");
        let mut maced = auth87();
        maced.set(64, Bytes::from_static(&[0xA5; 8])).expect("set");
        maced.set(128, Bytes::from_static(&[0x5A; 8])).expect("set");
        for (from, to) in [(&v87, &v87), (&v87, &v93), (&bin, &v87), (&v93, &v87)] {
            let t = translate(from, to, &maced, nov_23_2026());
            assert!(
                !t.message.has(64) && !t.message.has(128),
                "{} -> {}",
                from.name,
                to.name
            );
            assert!(!t.dropped.contains(&64) && !t.dropped.contains(&128));
        }
        let wire = v87
            .build(&translate(&v87, &v87, &maced, nov_23_2026()).message)
            .expect("build");
        // MTI, then the hex primary bitmap: bit 1 (a secondary follows) clear.
        let first = char::from(wire[4]).to_digit(16).expect("hex");
        assert_eq!(
            first & 0x8,
            0,
            "no secondary bitmap without fields above 64"
        );
        let mut local = maced.clone();
        strip_mac(&mut local);
        assert_eq!(local, auth87());
    }

    /// A message translated in place is the translation of its copy, and
    /// builds to the same bytes, parsed or not, MAC or none, any dialects.
    #[test]
    fn translating_in_place_equals_translating_a_copy() {
        let specs =
            ["iso87-ascii", "iso87-binary", "iso93-ascii"].map(|n| Spec::resolve(n).expect("spec"));
        for from in &specs {
            let native = translate(&specs[0], from, &auth87(), nov_23_2026()).message;
            let mut maced = native.clone();
            maced.set(64, Bytes::from_static(&[0xA5; 8])).expect("set");
            let parsed = from
                .parse(&from.build(&native).expect("build"))
                .expect("parse");
            let mut changed = parsed.clone();
            changed.set_str(39, "00").expect("set");
            for msg in [native, maced, parsed, changed] {
                for to in &specs {
                    let copy = translate(from, to, &msg, nov_23_2026()).message;
                    let moved = translate_owned(from, to, msg.clone(), nov_23_2026()).message;
                    assert!(moved == copy, "{} -> {}", from.name, to.name);
                    assert_eq!(to.build(&moved).ok(), to.build(&copy).ok());
                }
            }
        }
    }

    fn spec_builds(spec: &Spec, m: &Message) {
        spec.build(m)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    }
}

//! Where a message's MAC sits on the wire. ISO 8583 puts it in the last
//! field: DE64 when the message has no field above 64, else DE128; it is
//! computed over every byte before that field, from the MTI on. Making a
//! MAC is therefore: set the field to eight zero bytes, build, compute
//! over [`covered`], and write the MAC over the placeholder with
//! [`write_mac`]; checking one is [`covered`] and [`read_mac`] on the
//! frame as received. Pure: the MAC itself is an HSM's or a terminal's.

use super::spec::{Class, Encoding, Length};
use super::{Message, Spec};

/// Bytes in a MAC (DE64, DE128: b 8).
pub const MAC_BYTES: usize = 8;

/// The field a MAC of `message` goes in: 128 when any field above 64 is
/// present (the secondary bitmap is), else 64.
pub fn mac_field(message: &Message) -> u16 {
    // `values` borrows; `fields` would make a shared `Bytes` per field.
    if message.values().any(|(n, _)| (65..128).contains(&n)) {
        128
    } else {
        64
    }
}

/// The wire size of field `field` holding a MAC, when the dialect defines
/// it as 8 fixed binary bytes (raw, or as 16 hex characters).
pub fn mac_wire_len(spec: &Spec, field: u16) -> Option<usize> {
    let f = spec.field(field)?;
    if f.class != Class::B || f.length != Length::Fixed(MAC_BYTES) {
        return None;
    }
    match f.encoding {
        Encoding::Binary => Some(MAC_BYTES),
        Encoding::Hex => Some(2 * MAC_BYTES),
        _ => None,
    }
}

/// The bytes a MAC in `field` covers: all of `frame` before it (the
/// field is last). `None` when the dialect cannot hold a MAC there or the
/// frame is shorter than the field.
pub fn covered<'a>(spec: &Spec, frame: &'a [u8], field: u16) -> Option<&'a [u8]> {
    let len = mac_wire_len(spec, field)?;
    frame.get(..frame.len().checked_sub(len)?)
}

/// The MAC at the end of `frame`, decoded from the wire (`None` when
/// it is not there or not valid hex).
pub fn read_mac(spec: &Spec, frame: &[u8], field: u16) -> Option<[u8; MAC_BYTES]> {
    let len = mac_wire_len(spec, field)?;
    let tail = frame.get(frame.len().checked_sub(len)?..)?;
    let mut mac = [0u8; MAC_BYTES];
    if len == MAC_BYTES {
        mac.copy_from_slice(tail);
    } else {
        hex::decode_to_slice(tail, &mut mac).ok()?;
    }
    Some(mac)
}

/// `message` with a zero MAC in its MAC field, built in `spec`, and how
/// many bytes of the frame the MAC covers (`None`: it cannot be built, or
/// the dialect cannot hold a MAC there). The first step of making a MAC;
/// [`write_mac`] is the last.
pub fn with_placeholder(spec: &Spec, message: &mut Message) -> Option<(Vec<u8>, usize)> {
    let field = mac_field(message);
    message.set(field, vec![0u8; MAC_BYTES]).ok()?;
    let frame = spec.build(message).ok()?;
    let covered = covered(spec, &frame, field)?.len();
    Some((frame.to_vec(), covered))
}

/// Writes `mac` over the placeholder at the end of `frame`; `false` when
/// the dialect cannot hold it there.
pub fn write_mac(spec: &Spec, frame: &mut [u8], field: u16, mac: &[u8; MAC_BYTES]) -> bool {
    let Some(len) = mac_wire_len(spec, field) else {
        return false;
    };
    let Some(start) = frame.len().checked_sub(len) else {
        return false;
    };
    let tail = &mut frame[start..];
    if len == MAC_BYTES {
        tail.copy_from_slice(mac);
    } else {
        let text = hex::encode_upper(mac);
        tail.copy_from_slice(text.as_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Mti;

    fn purchase(version: u8, extra: Option<u16>) -> Message {
        let mut m = Message::new(Mti::from_digits([b'0' + version, b'2', b'0', b'0']).unwrap());
        m.set(3, "000000").unwrap();
        m.set(11, "000123").unwrap();
        if let Some(n) = extra {
            m.set(n, "1").unwrap();
        }
        m
    }

    /// For each shipped dialect: the placeholder built, a MAC written over
    /// it parses back as the field's value, and the covered bytes are the
    /// frame without it.
    #[test]
    fn a_mac_written_over_the_placeholder_parses_back() {
        for name in ["iso87-ascii", "iso87-binary", "iso93-ascii"] {
            let spec = Spec::resolve(name).unwrap();
            for extra in [None, Some(100)] {
                let version = spec.version.digit();
                let mut m = purchase(version, extra.filter(|_| spec.field(100).is_some()));
                let field = mac_field(&m);
                m.set(field, vec![0u8; MAC_BYTES]).unwrap();
                let mut frame = spec.build(&m).unwrap().to_vec();
                let mac = [0xA5, 1, 2, 3, 4, 5, 6, 0xFF];
                assert!(write_mac(&spec, &mut frame, field, &mac), "{name}");
                let parsed = spec.parse_slice(&frame).unwrap();
                assert_eq!(parsed.value(field), Some(&mac[..]), "{name} DE{field}");
                assert_eq!(read_mac(&spec, &frame, field), Some(mac));
                let covered = covered(&spec, &frame, field).unwrap();
                assert_eq!(
                    covered.len() + mac_wire_len(&spec, field).unwrap(),
                    frame.len()
                );
            }
        }
    }

    #[test]
    fn the_field_follows_the_secondary_bitmap() {
        assert_eq!(mac_field(&purchase(0, None)), 64);
        assert_eq!(mac_field(&purchase(0, Some(100))), 128);
        let spec = Spec::resolve("iso87-ascii").unwrap();
        assert_eq!(mac_wire_len(&spec, 2), None);
        assert_eq!(covered(&spec, b"short", 64), None);
        assert_eq!(read_mac(&spec, b"0200ZZZZZZZZZZZZZZZZ", 64), None);
    }
}

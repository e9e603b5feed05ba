//! Arbitrary text through the spec loader: it refuses bad specs with an
//! error and never panics. A spec it accepts must then be usable: for each
//! defined field, a message holding only that field builds and parses back
//! to itself, and a raw message announcing that field parses (to anything)
//! without panicking.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use cardswitch::message::spec::{BitmapEncoding, Class, Length, Structure};
use cardswitch::message::{Bitmap, Encoding, FieldSpec, Message, Mti, Spec};
use libfuzzer_sys::fuzz_target;

/// Longest value the probes build; larger fields are only probed raw.
const PROBE_VALUE_BYTES_MAX: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spec = match Spec::from_toml(text, "fuzz.toml", None) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for fs in spec.fields() {
        let _ = fs.value_len_max();
        let _ = fs.check_value(b"", 0);
        probe_built(&spec, fs);
        probe_raw(&spec, fs.number);
    }
});

/// A valid value for `fs` of a modest length, if there is one. TLV and PDS
/// fields get none: the parser checks their structure, and a filler of
/// one byte repeated is not a valid structure.
fn sample_value(fs: &FieldSpec) -> Option<Vec<u8>> {
    if matches!(fs.structure, Structure::Tlv | Structure::Pds) {
        return None;
    }
    let units = match fs.length {
        Length::Fixed(size) => size,
        Length::Variable { max, .. } => max.min(8),
    };
    if units > PROBE_VALUE_BYTES_MAX {
        return None;
    }
    let value = match fs.class {
        Class::N | Class::Z => vec![b'1'; units],
        Class::A | Class::An | Class::Ans => vec![b'A'; units],
        Class::B => vec![0xA5; units],
        Class::Xn => std::iter::once(b'C')
            .chain(std::iter::repeat_n(b'1', units))
            .collect(),
    };
    Some(value)
}

fn probe_built(spec: &Spec, fs: &FieldSpec) {
    let Some(value) = sample_value(fs) else {
        return;
    };
    let mti = [b'0' + spec.version.digit(), b'1', b'0', b'0'];
    let mut msg = Message::new(Mti::from_digits(mti).expect("digits"));
    if msg.set(fs.number, value).is_err() {
        return;
    }
    let Ok(wire) = spec.build(&msg) else {
        return;
    };
    let back = spec
        .parse(&wire)
        .unwrap_or_else(|e| panic!("field {}: built message does not parse: {e}", fs.number));
    assert_eq!(
        back, msg,
        "field {}: build/parse changed the message",
        fs.number
    );
}

fn probe_raw(spec: &Spec, n: u16) {
    let mut present = Bitmap::default();
    present.set(n);
    if n > 64 {
        present.set(1);
    }
    if n > 128 {
        present.set(65);
    }
    for with_secondary in [false, true] {
        let mut bitmap = present;
        if with_secondary {
            bitmap.set(1);
        }
        for filler in [b'0', 0xF0, 0x01] {
            let mut wire = BytesMut::new();
            match spec.mti_encoding {
                Encoding::Bcd => wire.put_slice(&[0x01, 0x00]),
                Encoding::Ebcdic => wire.put_slice(&[0xF0, 0xF1, 0xF0, 0xF0]),
                _ => wire.put_slice(b"0100"),
            }
            let words = if bitmap.get(65) {
                3
            } else if bitmap.get(1) {
                2
            } else {
                1
            };
            for i in 0..words {
                let word = bitmap.word(i);
                match spec.bitmap_encoding {
                    BitmapEncoding::Binary => wire.put_u64(word),
                    BitmapEncoding::Hex => wire.put_slice(format!("{word:016X}").as_bytes()),
                }
            }
            wire.put_bytes(filler, 64);
            let _ = spec.parse(&Bytes::from(wire));
        }
    }
}

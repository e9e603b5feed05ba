//! Frame decoders: the first byte picks a framing (length header, TPDU,
//! static header) and a split point; the rest is fed to the decoder in two
//! chunks, as a socket would deliver it. Decoding never panics, never yields
//! a frame over the limit, and every frame re-encodes to exactly the bytes
//! it was decoded from.
#![no_main]

use bytes::{Bytes, BytesMut};
use cardswitch::link::framing::{FrameCodec, Framing, LengthHeader};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

const FRAME_BYTES_MAX: usize = 512;

fn framing(selector: u8) -> Framing {
    let length = match selector % 3 {
        0 => LengthHeader::Binary2,
        1 => LengthHeader::Binary2Inclusive,
        _ => LengthHeader::Ascii4,
    };
    let mut f = Framing::new(length).with_frame_bytes_max(FRAME_BYTES_MAX);
    if selector & 0x04 != 0 {
        f = f.with_tpdu();
    }
    if selector & 0x08 != 0 {
        f = f.with_static_header(Bytes::from_static(b"ISO0"));
    }
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut codec = FrameCodec::new(framing(selector));
    let split = usize::from(selector >> 4) * rest.len() / 16;
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    for chunk in [&rest[..split], &rest[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.message.len() <= FRAME_BYTES_MAX);
                    let used = before - buf.len();
                    let mut again = BytesMut::new();
                    codec.encode(frame, &mut again).expect("a decoded frame re-encodes");
                    assert_eq!(&again[..], &rest[consumed..consumed + used], "re-encoding differs");
                    consumed += used;
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    return;
                }
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);
});

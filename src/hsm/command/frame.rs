//! Host-command framing: a 2-byte big-endian length (of what follows),
//! then a fixed-length header the HSM returns unchanged (its length is
//! configured on both sides, so it cannot be read from the frame), then
//! the command or response message.

use super::error::CodecError;

/// The largest frame body the length field can say (and we accept).
pub const FRAME_BYTES_MAX: usize = u16::MAX as usize;
/// The longest header we take (payShield's header is a few characters).
pub const HEADER_BYTES_MAX: usize = 255;

/// One decoded frame, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header, to echo back or to match against the request's.
    pub header: &'a [u8],
    /// The message: a 2-character code and the fields.
    pub message: &'a [u8],
}

/// Appends one frame to `out`.
pub fn encode(header: &[u8], message: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_with(header, out, |o| {
        o.extend_from_slice(message);
        Ok(())
    })
}

/// Appends one frame whose message `write` appends, without building the
/// message apart first (the client's path: one buffer a command).
pub fn encode_with(
    header: &[u8],
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    if header.len() > HEADER_BYTES_MAX {
        return Err(CodecError::Encode {
            field: "header",
            why: "too long",
        });
    }
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(header);
    let written = write(out);
    let n = out.len() - start - 2;
    let len = written.and_then(|()| {
        u16::try_from(n).map_err(|_| CodecError::FrameLength {
            got: n,
            max: FRAME_BYTES_MAX,
        })
    });
    match len {
        Ok(len) => {
            out[start..start + 2].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        // A refused frame leaves `out` as it was.
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Reads one frame from the front of `buf`: `Ok(None)` when more bytes
/// are needed, else the frame and the bytes it took.
pub fn decode(buf: &[u8], header_len: usize) -> Result<Option<(Frame<'_>, usize)>, CodecError> {
    let Some(len_bytes) = buf.get(..2) else {
        return Ok(None);
    };
    let n = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    if n < header_len + 2 {
        return Err(CodecError::FrameShort {
            got: n,
            header: header_len,
        });
    }
    let Some(body) = buf.get(2..2 + n) else {
        return Ok(None);
    };
    let (header, message) = body.split_at(header_len);
    Ok(Some((Frame { header, message }, 2 + n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_input() {
        let mut out = Vec::new();
        encode(b"0001", b"NC", &mut out).unwrap();
        assert_eq!(out, b"\x00\x060001NC");
        let (f, used) = decode(&out, 4).unwrap().unwrap();
        assert_eq!((f.header, f.message, used), (&b"0001"[..], &b"NC"[..], 8));
        for cut in 0..out.len() {
            assert_eq!(decode(&out[..cut], 4).unwrap(), None);
        }
        assert!(decode(b"\x00\x03000", 4).is_err());
    }
}

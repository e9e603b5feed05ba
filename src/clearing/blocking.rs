//! The IPM file framing around records: a 4-byte big-endian record length
//! (RDW, not counting itself), a zero-length record at the end, and the
//! 1014-byte blocked layout (1012 data bytes then `40 40`, the last block
//! padded with 0x40), or unblocked (the RDW stream as is).

/// Data bytes per block.
pub const BLOCK_DATA_BYTES: usize = 1012;
/// Bytes per block on disk.
pub const BLOCK_BYTES: usize = 1014;
/// The pad byte: an EBCDIC space.
pub const PAD: u8 = 0x40;

/// Why a file's framing is wrong; offsets are file offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockingError {
    #[error("blocked file of {length} bytes is not a multiple of {BLOCK_BYTES}")]
    PartialBlock { length: usize },
    #[error("block at offset {offset}: bytes 1013-1014 are {found:02X?}, not 40 40")]
    BlockTrailer { offset: usize, found: [u8; 2] },
}

/// Appends `data` to a blocked output, tracking the position in the block.
#[derive(Debug, Default)]
pub struct Blocker {
    filled: usize,
}

impl Blocker {
    /// Writes `data` into `out`, inserting `40 40` after every 1012 bytes.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            let room = BLOCK_DATA_BYTES - self.filled;
            let take = room.min(data.len());
            out.extend_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == BLOCK_DATA_BYTES {
                out.extend_from_slice(&[PAD, PAD]);
                self.filled = 0;
            }
        }
    }

    /// Pads the last block with 0x40 and closes it (nothing if it is empty).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.filled > 0 {
            out.resize(out.len() + (BLOCK_BYTES - self.filled), PAD);
            self.filled = 0;
        }
    }
}

/// Removes the blocking: checks every block's two trailing bytes and returns
/// the data bytes (file offset of data byte `i` is [`file_offset`]`(i)`).
pub fn unblock(file: &[u8]) -> Result<Vec<u8>, BlockingError> {
    if !file.len().is_multiple_of(BLOCK_BYTES) {
        return Err(BlockingError::PartialBlock { length: file.len() });
    }
    let mut out = Vec::with_capacity(file.len() / BLOCK_BYTES * BLOCK_DATA_BYTES);
    for (i, block) in file.chunks_exact(BLOCK_BYTES).enumerate() {
        let tail = [block[BLOCK_DATA_BYTES], block[BLOCK_DATA_BYTES + 1]];
        if tail != [PAD, PAD] {
            return Err(BlockingError::BlockTrailer {
                offset: i * BLOCK_BYTES + BLOCK_DATA_BYTES,
                found: tail,
            });
        }
        out.extend_from_slice(&block[..BLOCK_DATA_BYTES]);
    }
    Ok(out)
}

/// The file offset of unblocked data offset `data_offset`.
pub fn file_offset(data_offset: usize, blocked: bool) -> usize {
    if blocked {
        data_offset + 2 * (data_offset / BLOCK_DATA_BYTES)
    } else {
        data_offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blocking_round_trips_in_pieces(data in proptest::collection::vec(any::<u8>(), 0..5000), cut in 0usize..5000) {
            let cut = cut.min(data.len());
            let mut out = Vec::new();
            let mut b = Blocker::default();
            b.push(&data[..cut], &mut out);
            b.push(&data[cut..], &mut out);
            b.finish(&mut out);
            prop_assert_eq!(out.len() % BLOCK_BYTES, 0);
            let back = unblock(&out).unwrap();
            prop_assert_eq!(&back[..data.len()], &data[..]);
            prop_assert!(back[data.len()..].iter().all(|&p| p == PAD));
            for i in (0..data.len()).step_by(97) {
                prop_assert_eq!(out[file_offset(i, true)], data[i]);
            }
        }
    }

    #[test]
    fn refuses_partial_blocks_and_bad_block_trailers() {
        let mut out = Vec::new();
        let mut b = Blocker::default();
        b.push(&[1u8; 1500], &mut out);
        b.finish(&mut out);
        assert_eq!(out.len(), 2 * BLOCK_BYTES);
        assert_eq!(
            unblock(&out[..2000]),
            Err(BlockingError::PartialBlock { length: 2000 })
        );
        out[BLOCK_BYTES + 1013] = 0;
        assert_eq!(
            unblock(&out),
            Err(BlockingError::BlockTrailer {
                offset: BLOCK_BYTES + 1012,
                found: [PAD, 0]
            })
        );
    }
}

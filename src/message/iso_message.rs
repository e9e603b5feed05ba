//! The `Message` value: an MTI and data elements by number. Values are kept
//! in their logical form (text as Latin-1 characters, binary as raw bytes),
//! independent of any dialect, so one message can be built in another spec.

use bytes::Bytes;

use super::bitmap::Bitmap;
use super::error::MessageError;
use super::mti::Mti;
use super::spec::FIELD_NUMBER_MAX;

/// An ISO 8583 message: MTI plus fields 2..=192 (bitmaps are derived).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    mti: Mti,
    present: Bitmap,
    /// Sorted by field number; the same set as `present`.
    fields: Vec<(u16, Bytes)>,
}

impl Message {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Message {
        Message {
            mti,
            present: Bitmap::default(),
            fields: Vec::with_capacity(24),
        }
    }

    /// Used by the parser, which delivers fields in ascending order.
    pub(crate) fn from_sorted(mti: Mti, present: Bitmap, fields: Vec<(u16, Bytes)>) -> Message {
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert_eq!(present.count(), fields.len());
        Message {
            mti,
            present,
            fields,
        }
    }

    pub fn mti(&self) -> Mti {
        self.mti
    }

    pub fn set_mti(&mut self, mti: Mti) {
        self.mti = mti;
    }

    /// Whether field `n` is present.
    #[inline]
    pub fn has(&self, n: u16) -> bool {
        (2..=FIELD_NUMBER_MAX).contains(&n) && self.present.get(n)
    }

    fn index(&self, n: u16) -> Result<usize, usize> {
        self.fields.binary_search_by_key(&n, |(k, _)| *k)
    }

    /// The value of field `n`.
    #[inline]
    pub fn get(&self, n: u16) -> Option<&Bytes> {
        if !self.has(n) {
            return None;
        }
        self.index(n).ok().map(|i| &self.fields[i].1)
    }

    /// The value of field `n` as text, if it is valid UTF-8 (ASCII text is).
    pub fn get_str(&self, n: u16) -> Option<&str> {
        self.get(n).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of a numeric field as an integer.
    pub fn get_u64(&self, n: u16) -> Option<u64> {
        let v = self.get(n)?;
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(v.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
    }

    /// Sets field `n` (2..=192) to a logical value; the spec checks it on build.
    pub fn set(&mut self, n: u16, value: impl Into<Bytes>) -> Result<(), MessageError> {
        if !(2..=FIELD_NUMBER_MAX).contains(&n) {
            return Err(MessageError::BadFieldNumber { field: n });
        }
        let value = value.into();
        // Fields are mostly set in ascending order: append without a search.
        if self.fields.last().is_none_or(|(last, _)| *last < n) {
            self.fields.push((n, value));
            self.present.set(n);
            return Ok(());
        }
        match self.index(n) {
            Ok(i) => self.fields[i].1 = value,
            Err(i) => {
                self.fields.insert(i, (n, value));
                self.present.set(n);
            }
        }
        Ok(())
    }

    /// Sets a text field.
    pub fn set_str(&mut self, n: u16, value: &str) -> Result<(), MessageError> {
        self.set(n, Bytes::copy_from_slice(value.as_bytes()))
    }

    /// Sets a numeric field to `value`, zero-padded on the left to `width` digits.
    pub fn set_num(&mut self, n: u16, value: u64, width: usize) -> Result<(), MessageError> {
        self.set(n, Bytes::from(format!("{value:0width$}")))
    }

    /// Removes field `n`, returning its value.
    pub fn remove(&mut self, n: u16) -> Option<Bytes> {
        if !self.has(n) {
            return None;
        }
        let i = self.index(n).ok()?;
        self.present.clear(n);
        Some(self.fields.remove(i).1)
    }

    /// Present fields in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = (u16, &Bytes)> {
        self.fields.iter().map(|(n, v)| (*n, v))
    }

    /// Number of present fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The presence bitmap of the data elements (bits 1 and 65 not included).
    pub fn presence(&self) -> Bitmap {
        self.present
    }
}

/// Debug output never shows values: a message may carry card data.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let numbers: Vec<u16> = self.fields.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Message")
            .field("mti", &self.mti)
            .field("fields", &numbers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_keep_order_and_presence() {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(11, "000001").expect("set");
        m.set_str(2, "4111111111111111").expect("set");
        m.set_num(4, 1250, 12).expect("set");
        assert_eq!(
            m.fields().map(|(n, _)| n).collect::<Vec<_>>(),
            vec![2, 4, 11]
        );
        assert_eq!(m.get_str(4), Some("000000001250"));
        assert_eq!(m.get_u64(4), Some(1250));
        assert_eq!(m.remove(2).as_deref(), Some(&b"4111111111111111"[..]));
        assert!(!m.has(2));
        assert_eq!(m.len(), 2);
        assert!(m.set_str(1, "x").is_err());
        assert!(m.set_str(193, "x").is_err());
    }

    #[test]
    fn debug_does_not_show_values() {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(2, "4111111111111111").expect("set");
        let shown = format!("{m:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(shown.contains("0100"));
    }
}

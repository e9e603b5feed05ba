//! Masking of captured messages: what a capture file holds unless
//! `--capture-unmasked` is given. The message stays a valid message of its
//! spec so that a masked capture can still be replayed and decoded by
//! Wireshark:
//! - the PAN keeps its first 6 and last 4 digits; the digits between become
//!   `0`, except the one before the last four, chosen so that the Luhn check
//!   passes exactly when it passed on the clear PAN (an issuer's Luhn rule
//!   then decides a replayed request as it decided the original);
//! - the fields a response never echoes (track data DE35, DE36, DE45, the
//!   PIN block DE52, the ICC data DE55) are removed;
//! - any other field the spec marks sensitive (CVV, secrets) is removed too,
//!   and so is any other TLV field that holds card data by
//!   [`crate::message::sensitive::emv_tag_sensitivity`] (or cannot be walked).
//!
//! A pcap holds the frame's bytes as masked here: the same rule, since a
//! capture file never holds what `decode` would not show.
//!
//! A message that does not parse cannot be masked: its content is withheld.

use bytes::Bytes;

use crate::message::sensitive::{NEVER_ECHOED, luhn_valid, tlv_holds_card_data};
use crate::message::spec::{Sensitivity, Structure};
use crate::message::{MessageError, Spec};

/// A masked copy of the PAN digits (see the module doc).
pub fn mask_pan_digits(pan: &[u8]) -> Vec<u8> {
    let len = pan.len();
    if len < 13 || !pan.iter().all(u8::is_ascii_digit) {
        // Too short to show 6 + 4 (see `mask_pan`), or not digits: zeros.
        return vec![b'0'; len];
    }
    let mut out = pan.to_vec();
    for d in &mut out[6..len - 4] {
        *d = b'0';
    }
    let adjust = len - 5;
    let want_valid = luhn_valid(pan);
    for digit in b'0'..=b'9' {
        out[adjust] = digit;
        if luhn_valid(&out) == want_valid {
            break;
        }
    }
    out
}

/// The message re-built with card data masked; an error when it does not
/// parse or cannot be re-built (then nothing of it may be stored).
pub fn mask_message(spec: &Spec, message: &Bytes) -> Result<Bytes, MessageError> {
    let mut msg = spec.parse(message)?;
    let present: Vec<u16> = msg.fields().map(|(n, _)| n).collect();
    for n in present {
        let fs = spec.field(n);
        let kind = fs.and_then(|f| f.sensitivity);
        let tlv_card_data = fs.is_some_and(|f| matches!(f.structure, Structure::Tlv))
            && msg.get(n).is_some_and(|v| tlv_holds_card_data(v));
        if NEVER_ECHOED.contains(&n) || tlv_card_data {
            msg.remove(n);
            continue;
        }
        match kind {
            Some(Sensitivity::Pan) => {
                let masked = msg.get(n).map(|v| mask_pan_digits(v)).unwrap_or_default();
                msg.set(n, Bytes::from(masked))?;
            }
            Some(_) => {
                msg.remove(n);
            }
            None => {}
        }
    }
    spec.build(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::sensitive::luhn_check_digit;
    use proptest::prelude::*;

    #[test]
    fn keeps_six_and_four_and_the_luhn_outcome() {
        let masked = mask_pan_digits(b"4761739001010119");
        assert_eq!(&masked[..6], b"476173");
        assert_eq!(&masked[12..], b"0119");
        assert_eq!(&masked[6..11], b"00000");
        assert!(luhn_valid(b"4761739001010119"));
        assert!(luhn_valid(&masked));
        let bad = mask_pan_digits(b"4761739001010118");
        assert!(!luhn_valid(&bad));
        assert_eq!(mask_pan_digits(b"12345"), b"00000");
    }

    proptest! {
        #[test]
        fn luhn_status_is_kept_and_middle_digits_hidden(
            body in proptest::collection::vec(b'0'..=b'9', 12..=18),
            valid in any::<bool>(),
        ) {
            let mut pan = body.clone();
            let check = luhn_check_digit(&body);
            pan.push(if valid { check } else { b'0' + (check - b'0' + 1) % 10 });
            let masked = mask_pan_digits(&pan);
            prop_assert_eq!(masked.len(), pan.len());
            prop_assert_eq!(luhn_valid(&masked), valid);
            prop_assert_eq!(&masked[..6], &pan[..6]);
            prop_assert_eq!(&masked[pan.len() - 4..], &pan[pan.len() - 4..]);
            prop_assert!(masked[6..pan.len() - 5].iter().all(|&d| d == b'0'));
        }
    }
}

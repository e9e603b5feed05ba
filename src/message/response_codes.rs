//! The one place that maps outcomes to response codes: DE39 as two
//! characters (1987) and as three-digit action codes (1993), with the one
//! table between the two forms. It is in the message layer so that the
//! link (network management answers), the switch and the simulators all
//! read the same table instead of keeping copies.

/// Why the switch answers an acquirer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 00: approved (stand-in, or an advice acknowledged).
    Approved,
    /// 03: the acquirer or merchant is not allowed.
    InvalidMerchant,
    /// 12: a message the switch does not process.
    InvalidTransaction,
    /// 15: no route for the card.
    NoSuchIssuer,
    /// 30: the request cannot be parsed or translated.
    FormatError,
    /// 05: a card check (CVV, chip cryptogram) failed: do not honour.
    DoNotHonour,
    /// 55: the security module says the PIN block holds no valid PIN.
    IncorrectPin,
    /// 58: not permitted to this terminal.
    NotPermittedToTerminal,
    /// 63: security violation (a MAC did not verify).
    SecurityViolation,
    /// 91: the issuer is down or did not answer in time.
    IssuerUnavailable,
    /// 94: a duplicate transmission.
    Duplicate,
    /// 96: the switch failed.
    SystemMalfunction,
}

impl Outcome {
    /// DE39 in the 1987 two-character form.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Approved => "00",
            Outcome::InvalidMerchant => "03",
            Outcome::InvalidTransaction => "12",
            Outcome::NoSuchIssuer => "15",
            Outcome::FormatError => "30",
            Outcome::DoNotHonour => "05",
            Outcome::IncorrectPin => "55",
            Outcome::NotPermittedToTerminal => "58",
            Outcome::SecurityViolation => "63",
            Outcome::IssuerUnavailable => "91",
            Outcome::Duplicate => "94",
            Outcome::SystemMalfunction => "96",
        }
    }

    /// DE39 in the form of MTI version `version` (the MTI's first digit):
    /// the two-character code in 1987, the action code from 1993 on.
    pub fn code_in(self, version: u8) -> &'static str {
        match version {
            0 => self.code(),
            _ => to_action_code(self.code()),
        }
    }
}

/// A DE39 = 30 (format error) response to a request that cannot be
/// parsed, carrying the matching fields that could be read (see
/// `parse::salvage`: only fields every one-fault reading of the message
/// agrees on, so never a STAN read from misaligned bytes). DE39 is the
/// spec's form: `30` in 1987, the action code `904` in later versions.
/// `None` when not even the MTI is readable, the MTI gets no response, or
/// not even the bare reject (MTI and DE39) can be built.
pub fn format_error_reject(
    spec: &crate::message::Spec,
    raw: &bytes::Bytes,
) -> Option<bytes::Bytes> {
    let broken = crate::message::parse::salvage(spec, raw)?;
    let code = Outcome::FormatError.code_in(spec.version.digit());
    let mut reject = crate::message::Message::new(broken.mti().response()?);
    let _ = reject.set_str(39, code);
    let bare = reject.clone();
    for n in [3, 4, 7, 11, 32, 37, 41, 42] {
        if let Some(v) = broken.get(n) {
            let _ = reject.set(n, v.clone());
        }
    }
    spec.build(&reject).or_else(|_| spec.build(&bare)).ok()
}

/// 1987 response codes and the 1993 action codes with the same meaning.
const CODE_PAIRS: &[(&str, &str)] = &[
    ("00", "000"),
    ("01", "107"),
    ("03", "109"),
    ("04", "200"),
    ("05", "100"),
    ("12", "902"),
    ("13", "110"),
    ("14", "111"),
    ("15", "908"),
    ("30", "904"),
    ("41", "208"),
    ("43", "209"),
    ("51", "116"),
    ("54", "101"),
    ("55", "117"),
    ("57", "119"),
    ("58", "120"),
    ("61", "121"),
    ("62", "104"),
    // 916: MAC incorrect, the 1993 action code nearest 1987's 63.
    ("63", "916"),
    ("65", "123"),
    ("75", "106"),
    ("91", "911"),
    ("92", "908"),
    ("94", "913"),
    ("96", "909"),
];

/// A 1987 response code as a 1993 action code (unknown codes: 909).
pub fn to_action_code(code: &str) -> &'static str {
    CODE_PAIRS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("909", |(_, a)| a)
}

/// A 1993 action code as a 1987 response code. Unknown approvals (0xx)
/// become 00, other unknown declines 05, unknown system errors (9xx) 96.
pub fn from_action_code(action: &str) -> &'static str {
    if let Some((c, _)) = CODE_PAIRS.iter().find(|(_, a)| *a == action) {
        return c;
    }
    match action.as_bytes().first() {
        Some(b'0') => "00",
        Some(b'9') => "96",
        _ => "05",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, Spec};

    /// A request with a letter in its PAN, built in `spec`.
    fn bad_pan(spec: &Spec, mti: &str) -> bytes::Bytes {
        let mut m = Message::new(mti.parse().expect("mti"));
        m.set_str(2, "4761739001010119").expect("set");
        m.set_str(11, "000042").expect("set");
        m.set_str(41, "TERM0001").expect("set");
        let mut wire = spec.build(&m).expect("build").to_vec();
        let at = wire.windows(4).position(|w| w == b"0119").expect("PAN");
        wire[at + 3] = b'X';
        bytes::Bytes::from(wire)
    }

    #[test]
    fn format_error_rejects_use_the_dialects_code() {
        for (name, mti, response, code) in [
            ("iso87-ascii", "0100", "0110", "30"),
            ("iso93-ascii", "1100", "1110", "904"),
        ] {
            let spec = Spec::resolve(name).expect("spec");
            let reject = format_error_reject(&spec, &bad_pan(&spec, mti)).expect(name);
            let m = spec.parse(&reject).expect("the reject parses");
            assert_eq!(m.mti().to_string(), response);
            assert_eq!(m.get_str(39), Some(code), "{name}");
            assert_eq!(m.get_str(11), Some("000042"), "{name}");
            assert_eq!(m.get_str(41), Some("TERM0001"), "{name}");
        }
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        assert!(format_error_reject(&spec, &bytes::Bytes::from_static(b"01")).is_none());
        assert!(format_error_reject(&spec, &bad_pan(&spec, "0110")).is_none());
    }

    #[test]
    fn codes_map_both_ways() {
        for (c, a) in CODE_PAIRS {
            assert_eq!(to_action_code(c), *a);
            if *c != "92" {
                assert_eq!(from_action_code(a), *c, "{a}");
            }
        }
        assert_eq!(from_action_code("001"), "00");
        assert_eq!(from_action_code("199"), "05");
        assert_eq!(from_action_code("999"), "96");
        assert_eq!(Outcome::IssuerUnavailable.code(), "91");
        assert_eq!(Outcome::IssuerUnavailable.code_in(0), "91");
        assert_eq!(Outcome::IssuerUnavailable.code_in(1), "911");
        assert_eq!(to_action_code("zz"), "909");
    }
}

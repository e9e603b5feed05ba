//! Network management messages (MTI class 8): echo (DE70 = 301), sign-on
//! (001) and sign-off (002), and the automatic answer to a peer's request,
//! which approves only what this side does: a key change it never made is
//! never acknowledged.

use std::time::SystemTime;

use crate::message::response_codes::Outcome;
use crate::message::time::transmission_time;
use crate::message::{Message, Mti};

/// DE70 network management information codes.
pub const ECHO: &str = "301";
pub const SIGN_ON: &str = "001";
pub const SIGN_OFF: &str = "002";

/// A network management request with the given DE70 code, in the MTI
/// version of the link's spec.
pub fn request(version: u8, code: &str, stan: u32, now: SystemTime) -> Message {
    let mti: Mti = "0800".parse().expect("constant MTI");
    let mut m = Message::new(mti.with_version(version));
    let _ = m.set_str(7, &transmission_time(now));
    let _ = m.set_num(11, u64::from(stan % 1_000_000), 6);
    let _ = m.set_str(70, code);
    m
}

/// DE70 code of a new key, and its DE24 function code (1993 and later).
pub const NEW_KEY: &str = "161";
pub const NEW_KEY_FUNCTION: &str = "811";

/// An 0800 bringing a new key (`de48`: its key type, the key under the
/// zone master key and its check value), in `version`, without DE70 when
/// the dialect has none (`has_de70`).
pub fn new_key_request(
    version: u8,
    stan: u32,
    now: SystemTime,
    has_de70: bool,
    de48: &str,
) -> Option<Message> {
    let mut m = request(version, NEW_KEY, stan, now);
    if version > 0 {
        m.set_str(24, NEW_KEY_FUNCTION).ok()?;
    }
    if !has_de70 {
        m.remove(70);
    }
    m.set_str(48, de48).ok()?;
    Some(m)
}

/// DE70 codes of key exchanges (101 key change, 161 new key): the
/// automatic answer declines them; an issuer's new key (161) goes to the
/// switch's core instead where keys are exchanged ([`brings_new_key`]).
pub const KEY_CHANGES: &[&str] = &["101", NEW_KEY];

/// How a network management request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Echo, sign-on or sign-off: approved (00).
    Approved,
    /// A key change, or a code this side does not know: 12.
    NotPerformed,
    /// No network management code at all: format error (30).
    NoCode,
}

/// The network management code of `msg`: DE70, or in a 1993 or later
/// message without DE70, the 8xx function code of DE24 as the DE70 code
/// of the same meaning (801 sign-on, 802 sign-off, 811 key change, 831
/// echo; other 8xx codes as themselves, so unknown).
fn code_of(msg: &Message) -> Option<&str> {
    if let Some(code) = msg.get_str(70) {
        return Some(code);
    }
    if msg.mti().version() == 0 {
        return None;
    }
    Some(match msg.get_str(24)? {
        "801" => SIGN_ON,
        "802" => SIGN_OFF,
        "811" => KEY_CHANGES[0],
        "831" => ECHO,
        other => other,
    })
}

/// Whether `msg` brings a new key (DE70 = 161): the switch performs that
/// one itself where keys are exchanged, rather than the automatic answer.
pub fn brings_new_key(msg: &Message) -> bool {
    msg.mti().class() == crate::message::mti::MessageClass::NetworkManagement
        && msg.mti().expects_response()
        && msg.get_str(70) == Some(NEW_KEY)
}

/// What `msg`'s network management code asks for (see [`Verdict`]).
pub fn verdict(msg: &Message) -> Verdict {
    match code_of(msg) {
        None => Verdict::NoCode,
        Some(ECHO | SIGN_ON | SIGN_OFF) => Verdict::Approved,
        Some(_) => Verdict::NotPerformed,
    }
}

/// The answer to a peer's network management request: same fields, the
/// response MTI and DE39 by [`verdict`] (00, 12 or 30; in 1993 and later
/// the action codes 000, 902 and 904). A MAC (DE64, DE128) is not echoed:
/// it covered the request, not this answer. `None` when `msg` is not such
/// a request.
pub fn answer(msg: &Message) -> Option<Message> {
    let mti = msg.mti();
    if mti.class() != crate::message::mti::MessageClass::NetworkManagement {
        return None;
    }
    let mut resp = msg.clone();
    resp.set_mti(mti.response()?);
    resp.remove(64);
    resp.remove(128);
    let outcome = match verdict(msg) {
        Verdict::Approved => Outcome::Approved,
        Verdict::NotPerformed => Outcome::InvalidTransaction,
        Verdict::NoCode => Outcome::FormatError,
    };
    let _ = resp.set_str(39, outcome.code_in(mti.version()));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn echo_messages() {
        let t = UNIX_EPOCH + Duration::from_secs(20_415 * 86_400 + 14 * 3600 + 30 * 60 + 5);
        let echo = request(0, ECHO, 1_000_001, t);
        assert_eq!(echo.get_str(7), Some("1123143005"));
        let echo = request(0, ECHO, 1_000_001, t);
        assert_eq!(echo.mti().to_string(), "0800");
        assert_eq!(echo.get_str(11), Some("000001"));
        assert_eq!(echo.get_str(70), Some("301"));
        let resp = answer(&echo).expect("answer");
        assert_eq!(resp.mti().to_string(), "0810");
        assert_eq!(resp.get_str(39), Some("00"));
        assert_eq!(request(1, SIGN_ON, 2, t).mti().to_string(), "1800");
        assert!(answer(&resp).is_none());
    }

    #[test]
    fn only_echo_sign_on_and_sign_off_are_approved() {
        let t = UNIX_EPOCH + Duration::from_secs(20_415 * 86_400);
        let code = |m: &Message| answer(m).expect("answer").get_str(39).map(str::to_owned);
        for ok in [ECHO, SIGN_ON, SIGN_OFF] {
            assert_eq!(code(&request(0, ok, 1, t)).as_deref(), Some("00"), "{ok}");
        }
        for declined in ["101", "161", "999", "201"] {
            assert_eq!(
                code(&request(0, declined, 1, t)).as_deref(),
                Some("12"),
                "{declined}"
            );
        }
        let mut none = request(0, ECHO, 1, t);
        none.remove(70);
        assert_eq!(code(&none).as_deref(), Some("30"));
        // 1993: the function code in DE24, action codes in DE39.
        let mut v93 = Message::new("1804".parse().expect("mti"));
        v93.set_str(11, "000002").expect("set");
        for (function, action) in [
            ("831", "000"),
            ("801", "000"),
            ("811", "902"),
            ("899", "902"),
        ] {
            v93.set_str(24, function).expect("set");
            assert_eq!(code(&v93).as_deref(), Some(action), "{function}");
        }
        v93.remove(24);
        assert_eq!(code(&v93).as_deref(), Some("904"));
        // A MAC is never echoed.
        let mut maced = request(0, ECHO, 1, t);
        maced
            .set(64, bytes::Bytes::from_static(&[1; 8]))
            .expect("set");
        assert!(!answer(&maced).expect("answer").has(64));
    }
}

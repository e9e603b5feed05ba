//! The issuer simulator's decisions: pure functions from a request (and
//! the date, passed in) to a response. The wiring to sockets is in
//! `cli::issuer_sim`.

use serde::Deserialize;

use crate::message::Message;
use crate::message::mti::{Function, MessageClass};
use crate::message::response_codes::to_action_code;
use crate::message::sensitive::{NEVER_ECHOED, luhn_valid};

/// How the simulated issuer decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerRules {
    /// Approve (00) up to this amount in minor units; above it, 51.
    pub approve_limit: u64,
    /// Decline PANs failing the Luhn check with 14.
    pub check_luhn: bool,
    /// Decline expired cards (DE14 YYMM before today) with 54.
    pub check_expiry: bool,
    /// Refuse key exchanges (0800 with DE70 101 or 161, DE24 811) with 12.
    pub refuse_key_exchange: bool,
}

impl Default for IssuerRules {
    fn default() -> IssuerRules {
        IssuerRules {
            approve_limit: 100_000,
            check_luhn: true,
            check_expiry: true,
            refuse_key_exchange: false,
        }
    }
}

/// What the simulator answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub response_code: &'static str,
    pub approved: bool,
}

/// Decides an authorization or financial request. `today` is (year, month).
pub fn decide(rules: &IssuerRules, request: &Message, today: (i64, u32)) -> Decision {
    let code = decline_reason(rules, request, today).unwrap_or("00");
    Decision {
        response_code: code,
        approved: code == "00",
    }
}

fn decline_reason(
    rules: &IssuerRules,
    request: &Message,
    today: (i64, u32),
) -> Option<&'static str> {
    let Some(amount) = request.get_u64(4) else {
        return Some("13");
    };
    if let Some(pan) = request.get(2)
        && rules.check_luhn
        && !luhn_valid(pan)
    {
        return Some("14");
    }
    if let Some(exp) = request.get_u64(14).filter(|_| rules.check_expiry) {
        let (yy, mm) = (exp / 100, exp % 100);
        let (year, month) = (2000 + yy as i64, mm as u32);
        if !(1..=12).contains(&month) || (year, month) < today {
            return Some("54");
        }
    }
    if amount > rules.approve_limit {
        return Some("51");
    }
    None
}

/// Whether a network management request asks for a key change.
fn is_key_exchange(request: &Message) -> bool {
    let de70 = request.get_str(70);
    de70.is_some_and(|c| crate::message::netmgmt::KEY_CHANGES.contains(&c))
        || request.get_str(24) == Some("811")
}

/// The response to `request`, or `None` for messages that get none.
/// `auth_code` is used for approvals (DE38).
pub fn respond(
    rules: &IssuerRules,
    request: &Message,
    today: (i64, u32),
    auth_code: &str,
) -> Option<(Message, Option<Decision>)> {
    let mti = request.mti();
    let response_mti = mti.response()?;
    let mut resp = request.clone();
    resp.set_mti(response_mti);
    for &f in NEVER_ECHOED {
        resp.remove(f);
    }
    // 1993 and later carry three-digit action codes in DE39.
    let code = |c: &'static str| {
        if mti.version() == 0 {
            c
        } else {
            to_action_code(c)
        }
    };
    let decision = match (mti.class(), mti.function()) {
        (MessageClass::Authorization | MessageClass::Financial, Function::Request) => {
            let d = decide(rules, request, today);
            if d.approved {
                let _ = resp.set_str(38, auth_code);
            }
            let _ = resp.set_str(39, code(d.response_code));
            Some(d)
        }
        (MessageClass::NetworkManagement, _)
            if rules.refuse_key_exchange && is_key_exchange(request) =>
        {
            let _ = resp.set_str(39, code("12"));
            None
        }
        // Advices, reversals and network management are acknowledged.
        (
            MessageClass::Authorization
            | MessageClass::Financial
            | MessageClass::Reversal
            | MessageClass::NetworkManagement,
            _,
        ) => {
            let _ = resp.set_str(39, code("00"));
            None
        }
        _ => {
            let _ = resp.set_str(39, code("12"));
            None
        }
    };
    Some((resp, decision))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(pan: &str, amount: u64, expiry: &str) -> Message {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(2, pan).expect("set");
        m.set_num(4, amount, 12).expect("set");
        m.set_str(11, "000001").expect("set");
        m.set_str(14, expiry).expect("set");
        m.set_str(35, "4761739001010119=27121011234").expect("set");
        m
    }

    #[test]
    fn rules_decide_the_response_code() {
        let rules = IssuerRules::default();
        let today = (2026, 11);
        let code = |m: &Message| decide(&rules, m, today).response_code;
        assert_eq!(code(&auth("4761739001010119", 5_000, "2712")), "00");
        assert_eq!(code(&auth("4761739001010119", 100_001, "2712")), "51");
        assert_eq!(code(&auth("4761739001010118", 5_000, "2712")), "14");
        assert_eq!(code(&auth("4761739001010119", 5_000, "2610")), "54");
        assert_eq!(code(&auth("4761739001010119", 5_000, "2611")), "00");
    }

    #[test]
    fn responses_drop_card_secrets_and_carry_auth_codes() {
        let rules = IssuerRules::default();
        let (resp, d) = respond(
            &rules,
            &auth("4761739001010119", 5_000, "2712"),
            (2026, 11),
            "A1B2C3",
        )
        .expect("response");
        assert_eq!(resp.mti().to_string(), "0110");
        assert_eq!(resp.get_str(38), Some("A1B2C3"));
        assert_eq!(resp.get_str(39), Some("00"));
        assert!(!resp.has(35));
        assert!(d.expect("decision").approved);
        let mut rev = auth("4761739001010119", 5_000, "2712");
        rev.set_mti("0420".parse().expect("mti"));
        let (resp, d) = respond(&rules, &rev, (2026, 11), "X").expect("response");
        assert_eq!(resp.mti().to_string(), "0430");
        assert_eq!(resp.get_str(39), Some("00"));
        assert!(d.is_none());
        let mut resp_in = auth("4761739001010119", 5_000, "2712");
        resp_in.set_mti("0110".parse().expect("mti"));
        assert!(respond(&rules, &resp_in, (2026, 11), "X").is_none());
    }
}

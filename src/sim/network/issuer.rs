//! A simulated issuer: it approves purchases up to a limit and holds the
//! amount, takes advices as holds, and cancels holds on reversals (a
//! reversal advice names its original by DE90 or DE56; a reversal request
//! from an acquirer, whose DE90 names the acquirer's STAN, cancels every
//! hold of its retrieval reference). Messages it saw twice (the network
//! duplicates) change nothing. Faults are the world's business.

use std::collections::{HashMap, HashSet};

use crate::message::Message;
use crate::message::mti::{Function, MessageClass};
use crate::message::response_codes::to_action_code;
use crate::message::sensitive::NEVER_ECHOED;

/// Purchases above this amount (minor units) are declined with 51.
pub const APPROVE_LIMIT: u64 = 50_000;

#[derive(Default)]
pub struct Issuer {
    /// Holds by RRN: the STAN each came with, and whether it is cancelled.
    holds: HashMap<String, Vec<(u32, bool)>>,
    /// Originals reversed before they arrived.
    voided: HashSet<(String, u32)>,
    /// RRNs an acquirer reversed: every hold of theirs is cancelled.
    reversed: HashSet<String>,
    /// RRNs of the advices received.
    pub advised: HashSet<String>,
    auth_codes: u32,
}

/// The original a reversal advice names: MTI and STAN, the first ten
/// digits of DE90 (1987) or DE56 (1993).
fn original_of(m: &Message) -> Option<(String, u32)> {
    let data = m.get_str(90).or_else(|| m.get_str(56))?;
    let mti = data.get(..4)?.to_string();
    let stan = data.get(4..10)?.parse().ok()?;
    Some((mti, stan))
}

impl Issuer {
    /// Whether any approval of `rrn` stands.
    pub fn holds(&self, rrn: &str) -> bool {
        self.holds
            .get(rrn)
            .is_some_and(|hs| hs.iter().any(|&(_, cancelled)| !cancelled))
    }

    /// The correct answer to `m` (issuer's dialect), if it gets one.
    pub fn receive(&mut self, m: &Message) -> Option<Message> {
        let mti = m.mti();
        if mti.is_answer() {
            return None;
        }
        let rrn = m.get_str(37).unwrap_or("").to_string();
        let stan = m
            .get_u64(11)
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0);
        let code = match (mti.class(), mti.function()) {
            (MessageClass::Authorization | MessageClass::Financial, Function::Request) => {
                self.authorize(m, rrn, stan)
            }
            (MessageClass::Authorization | MessageClass::Financial, Function::Advice) => {
                self.advised.insert(rrn.clone());
                self.hold(rrn, stan);
                "00"
            }
            (MessageClass::Reversal, Function::Request) => {
                self.reverse_all(&rrn);
                "00"
            }
            (MessageClass::Reversal, Function::Advice) => {
                // A reversal advice of a reversal (the switch's, for an
                // acquirer's 0400 it could not finish) reverses it all.
                match original_of(m) {
                    Some((omti, ostan)) if omti.as_bytes().get(1) != Some(&b'4') => {
                        self.reverse_one(&rrn, ostan)
                    }
                    _ => self.reverse_all(&rrn),
                }
                "00"
            }
            _ => "00",
        };
        let mut resp = m.clone();
        resp.set_mti(mti.response()?);
        for &f in NEVER_ECHOED {
            resp.remove(f);
        }
        let code = if mti.version() == 0 {
            code
        } else {
            to_action_code(code)
        };
        let _ = resp.set_str(39, code);
        if code == "00" || code == "000" {
            self.auth_codes += 1;
            let _ = resp.set_str(38, &format!("A{:05}", self.auth_codes % 100_000));
        }
        Some(resp)
    }

    fn authorize(&mut self, m: &Message, rrn: String, stan: u32) -> &'static str {
        let seen = self
            .holds
            .get(&rrn)
            .and_then(|hs| hs.iter().find(|h| h.0 == stan));
        if let Some(&(_, cancelled)) = seen {
            // Seen before (a copy from the network): the same answer.
            return if cancelled { "12" } else { "00" };
        }
        if m.get_u64(4).is_none_or(|a| a > APPROVE_LIMIT) {
            return "51";
        }
        if self.voided.contains(&(rrn.clone(), stan)) || self.reversed.contains(&rrn) {
            return "12";
        }
        self.hold(rrn, stan);
        "00"
    }

    fn hold(&mut self, rrn: String, stan: u32) {
        let cancelled = self.reversed.contains(&rrn) || self.voided.contains(&(rrn.clone(), stan));
        let holds = self.holds.entry(rrn).or_default();
        if !holds.iter().any(|h| h.0 == stan) {
            holds.push((stan, cancelled));
        }
    }

    fn reverse_one(&mut self, rrn: &str, stan: u32) {
        let hold = self
            .holds
            .get_mut(rrn)
            .and_then(|hs| hs.iter_mut().find(|h| h.0 == stan));
        match hold {
            Some(h) => h.1 = true,
            None => {
                self.voided.insert((rrn.to_string(), stan));
            }
        }
    }

    fn reverse_all(&mut self, rrn: &str) {
        if let Some(hs) = self.holds.get_mut(rrn) {
            for h in hs {
                h.1 = true;
            }
        }
        self.reversed.insert(rrn.to_string());
    }
}

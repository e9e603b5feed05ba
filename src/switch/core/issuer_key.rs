//! A key exchange the issuer starts (issue 21): its 0800 with DE70 = 161
//! carries a new working key in DE48, laid out as the switch's own
//! exchange lays it out (`key_exchange.rs`): the 3H key type, the key
//! under the zone master key (tagged: `U` + 32H and the like) and its
//! check value. The HSM imports the key (A6) from under the ZMK to under
//! the LMK; only when the check value it computes is the one stated does
//! the key replace the old one, and the switch answers 00 with the check
//! value in DE48. Anything else keeps the old key, answers with a decline
//! (30 for a DE48 that is not a key, 12 for a key the switch does not
//! take, 96 when the HSM fails or the check value differs) and raises the
//! exchange alarm.

use super::{Action, Core, PeerRequest, Question, Wait};
use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::message::Message;
use crate::message::netmgmt;
use crate::message::response_codes::Outcome;
use crate::switch::security::{HsmOp, HsmReply, HsmResult};

/// A key an issuer sent, while the HSM imports it.
#[derive(Debug)]
pub(super) struct Importing {
    issuer: usize,
    id: PeerRequest,
    request: Message,
    kcv: String,
}

/// What an issuer's DE48 states: the key type, the key under the ZMK and
/// its check value (6 or 16 hex digits).
#[derive(Debug, PartialEq, Eq)]
struct SentKey {
    key_type: String,
    key: KeyCryptogram,
    kcv: String,
}

/// Reads DE48 of an issuer's new-key request; `None` when it is not one.
fn sent_key(de48: &str) -> Option<SentKey> {
    let key_type = de48.get(..3)?;
    let scheme = KeyScheme::from_tag(*de48.as_bytes().get(3)?)?;
    let hex_len = scheme.hex_len()?;
    let hex = de48.get(4..4 + hex_len)?;
    let kcv = de48.get(4 + hex_len..)?;
    let hex_ok = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = key_type.bytes().all(|b| b.is_ascii_digit())
        && hex_ok(hex)
        && matches!(kcv.len(), 6 | 16)
        && hex_ok(kcv);
    ok.then(|| SentKey {
        key_type: key_type.to_string(),
        key: KeyCryptogram::new(scheme, hex),
        kcv: kcv.to_ascii_uppercase(),
    })
}

impl Core {
    /// Issuer `issuer` sent its new key (request `id`): asked of the HSM,
    /// or declined at once.
    pub(super) fn issuer_key(&mut self, issuer: usize, id: PeerRequest, request: Message) {
        let Some(target) = self.cfg.issuers.get(issuer) else {
            return;
        };
        let Some(sent) = request.get_str(48).and_then(sent_key) else {
            return self.answer_issuer_key(issuer, id, &request, Outcome::FormatError, None);
        };
        let takes = super::key_exchange::working_key(&target.keys)
            .filter(|(key_type, _)| *key_type == sent.key_type);
        let (Some(zmk), Some((key_type, _)), None) =
            (target.keys.zmk.clone(), takes, &self.exchanges[issuer])
        else {
            // No zone master key, another key type, or the switch's own
            // exchange under way: not performed.
            return self.answer_issuer_key(issuer, id, &request, Outcome::InvalidTransaction, None);
        };
        let op = HsmOp::ImportKey {
            zmk,
            key_type,
            key: sent.key,
        };
        let importing = Importing {
            issuer,
            id,
            request,
            kcv: sent.kcv,
        };
        let token = self.token(Wait::KeyImported(Box::new(importing)));
        self.push(Action::Ask {
            token,
            question: Question::Hsm(vec![op]),
        });
    }

    /// The HSM imported the issuer's key (or failed to): used when its
    /// check value is the one stated.
    pub(super) fn key_imported(&mut self, importing: Importing, results: Vec<HsmResult>) {
        let Importing {
            issuer,
            id,
            request,
            kcv,
        } = importing;
        let lmk = match results.into_iter().next() {
            Some(Ok(HsmReply::ImportedKey { lmk, kcv: computed }))
                if kcv.len() <= computed.len()
                    && computed[..kcv.len()].eq_ignore_ascii_case(&kcv) =>
            {
                lmk
            }
            _ => {
                self.exchange_failed(issuer);
                return self.answer_issuer_key(
                    issuer,
                    id,
                    &request,
                    Outcome::SystemMalfunction,
                    None,
                );
            }
        };
        self.use_key(issuer, lmk);
        self.answer_issuer_key(issuer, id, &request, Outcome::Approved, Some(&kcv));
    }

    /// The answer to an issuer's new-key request, in its dialect.
    fn answer_issuer_key(
        &mut self,
        issuer: usize,
        id: PeerRequest,
        request: &Message,
        outcome: Outcome,
        kcv: Option<&str>,
    ) {
        let spec = &self.cfg.issuers[issuer].spec;
        let Some(mut answer) = netmgmt::answer(request) else {
            return;
        };
        let code = outcome.code_in(request.mti().version());
        let built = answer.set_str(39, code).ok().and_then(|()| {
            match kcv {
                Some(k) => answer.set_str(48, k).ok()?,
                None => {
                    answer.remove(48);
                }
            }
            spec.build(&answer).ok()
        });
        match built {
            Some(frame) => self.push(Action::AnswerIssuer { issuer, id, frame }),
            None => self.counters.unbuildable += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn de48_is_read_as_key_type_key_and_check_value() {
        let key = "U".to_string() + &"0123456789ABCDEF".repeat(2);
        let sent = sent_key(&format!("001{key}abc123")).expect("a key");
        assert_eq!(sent.key_type, "001");
        assert_eq!(sent.key.to_field(), key);
        assert_eq!(sent.kcv, "ABC123");
        for bad in [
            "",
            "001",
            "00AU0123",
            &format!("001Q{}ABC123", "0".repeat(32)),
            &format!("001U{}ABC123", "0".repeat(31)),
            &format!("001U{}ABC12", "0".repeat(32)),
            &format!("001U{}ABC12G", "0".repeat(32)),
            &format!("001U{}", "0".repeat(32)),
        ] {
            assert_eq!(sent_key(bad), None, "{bad}");
        }
    }
}

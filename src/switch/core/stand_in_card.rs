//! What stand-in must know of the card before it approves: a chip card's
//! ARQC verified (the ARPC then goes back in DE55), a card-not-present
//! card's CVV2 verified where its issuer configured a CVK. The HSM checks
//! both; without the key or the data to check with, stand-in does not
//! approve (91), and a card that fails the check is not honoured (05).

use super::request::reject_of;
use super::{Action, Core, Question, State, Time, TxnId, Wait};
use crate::journal::TxnOutcome;
use crate::message::response_codes::Outcome;
use crate::switch::security::{HsmOp, HsmReply, HsmResult};
use crate::switch::{chip, cvv2};

impl Core {
    /// Whether transaction `id` needs its card checked before `issuer`'s
    /// stand-in may approve it.
    pub(super) fn card_check_needed(&self, id: TxnId, issuer: usize) -> bool {
        let Some(txn) = self.txns.get(&id) else {
            return false;
        };
        chip::is_chip(&txn.request)
            || (self.cfg.issuers[issuer].keys.cvv.is_some() && cvv2::card_not_present(&txn.request))
    }

    /// Asks the HSM to check the card of transaction `id` for stand-in;
    /// declines it (91) when there is no key or no data to check with.
    pub(super) fn check_card_for_stand_in(
        &mut self,
        now: Time,
        id: TxnId,
        issuer: usize,
        outcome: TxnOutcome,
    ) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let keys = &self.cfg.issuers[issuer].keys;
        let op = if chip::is_chip(&txn.request) {
            keys.chip
                .clone()
                .zip(chip::cryptogram(&txn.request))
                .map(|(key, cryptogram)| HsmOp::VerifyArqc {
                    key,
                    cryptogram,
                    arc: super::stand_in::APPROVED_ARC,
                })
        } else {
            let field = self.cfg.acquirers[txn.from.acquirer].keys.cvv2_field;
            let card = field.and_then(|f| cvv2::cvv2_of(&txn.request, f));
            keys.cvv
                .clone()
                .zip(card)
                .map(|(key, card)| HsmOp::VerifyCvv2 { key, card })
        };
        let Some(op) = op else {
            let decline = reject_of(txn, Outcome::IssuerUnavailable);
            return self.decide(now, id, decline, outcome);
        };
        if let Some(txn) = self.txns.get_mut(&id) {
            txn.state = State::Answering;
        }
        let token = self.token(Wait::StandInCard(id, issuer, outcome));
        self.push(Action::Ask {
            token,
            question: Question::Hsm(vec![op]),
        });
    }

    /// The card checked: stand-in decides by its rules (a chip card's
    /// ARPC in the reply). It did not: declined, 05 when the HSM said the
    /// card is wrong, 91 when the HSM could not say.
    pub(super) fn card_checked(
        &mut self,
        now: Time,
        id: TxnId,
        issuer: usize,
        outcome: TxnOutcome,
        results: Vec<HsmResult>,
    ) {
        let Some(txn) = self.txns.get(&id).filter(|t| t.state == State::Answering) else {
            return;
        };
        let is_chip = chip::is_chip(&txn.request);
        match (is_chip, results.into_iter().next()) {
            (true, Some(Ok(HsmReply::Arpc(arpc)))) => {
                self.stand_in_checked(now, id, issuer, outcome, Some(arpc))
            }
            (false, Some(Ok(HsmReply::Verified))) => {
                self.stand_in_checked(now, id, issuer, outcome, None)
            }
            (_, other) => {
                let why = match other {
                    Some(Err(Outcome::SystemMalfunction)) | Some(Ok(_)) | None => {
                        Outcome::IssuerUnavailable
                    }
                    Some(Err(_)) => Outcome::DoNotHonour,
                };
                let decline = reject_of(txn, why);
                let event = if is_chip {
                    "stand_in_arqc_failed"
                } else {
                    "stand_in_cvv2_failed"
                };
                self.event(now, id, event, why.code());
                self.decide(now, id, decline, outcome);
            }
        }
    }
}

//! Stand-in: when its issuer is down or did not answer, a purchase may be
//! approved by the issuer's stand-in rules (per-card limits per calendar
//! day); the approval goes to the issuer later as an 0120 advice.

use super::request::reject;
use super::{Core, Time, TxnId};
use crate::journal::TxnOutcome;
use crate::message::mti::{Function, MessageClass};
use crate::message::response_codes::Outcome;
use crate::switch::records::pan_of;
use crate::switch::saf::SafKind;
use crate::switch::translate::translate;

/// The authorisation response code an ARPC is made for: approved.
pub(super) const APPROVED_ARC: [u8; 2] = *b"00";

/// Milliseconds in a calendar day (UTC).
const DAY_MS: i64 = 86_400_000;

impl Core {
    /// Approves transaction `id` by its issuer's (`issuer`) stand-in
    /// rules, or declines it with 91; `outcome` is the journal's word for
    /// the decline.
    pub(super) fn stand_in_or_decline(
        &mut self,
        now: Time,
        id: TxnId,
        issuer: usize,
        outcome: TxnOutcome,
    ) {
        let has_rules = matches!(self.stand_in.get(issuer), Some(Some(_)));
        let check = !self.mutated(super::Mutation::NoStandInCardCheck);
        if has_rules && check && self.card_check_needed(id, issuer) {
            return self.check_card_for_stand_in(now, id, issuer, outcome);
        }
        self.stand_in_checked(now, id, issuer, outcome, None);
    }

    /// [`Core::stand_in_or_decline`] once the card checked (`arpc`: a chip
    /// card's, the reply carries it in DE55) or for a card not checked.
    pub(super) fn stand_in_checked(
        &mut self,
        now: Time,
        id: TxnId,
        issuer: usize,
        outcome: TxnOutcome,
        arpc: Option<[u8; 8]>,
    ) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let mti = txn.request.mti();
        let is_purchase = matches!(
            mti.class(),
            MessageClass::Authorization | MessageClass::Financial
        ) && mti.function() == Function::Request;
        let amount = txn.request.get_u64(4).unwrap_or(u64::MAX);
        let day = u32::try_from(now.wall_ms().div_euclid(DAY_MS)).unwrap_or(0);
        let pan = pan_of(&txn.request);
        let approved = match (self.stand_in.get_mut(issuer), is_purchase, pan) {
            (Some(Some(rules)), true, Some(pan)) => rules.approve(pan, amount, day),
            _ => false,
        };
        if !approved {
            let decline = reject(&txn.request, Outcome::IssuerUnavailable);
            return self.decide(now, id, decline, outcome);
        }
        self.counters.stood_in += 1;
        self.auth_counter = self.auth_counter % 100_000 + 1;
        let txn = self.txns.get_mut(&id).expect("looked up above");
        let mut resp = reject(&txn.request, Outcome::Approved);
        let _ = resp.set_str(38, &format!("S{:05}", self.auth_counter % 100_000));
        if let Some(arpc) = arpc {
            let _ = resp.set(
                55,
                crate::switch::chip::issuer_authentication(arpc, APPROVED_ARC),
            );
        }
        txn.reply = Some((resp, TxnOutcome::StandIn));
        self.event(now, id, "stand_in", "");
        self.queue_stand_in_advice(now, id, issuer);
        self.answer(now, id);
    }

    /// An 0120 (issuer dialect) of transaction `id`'s stand-in approval.
    fn queue_stand_in_advice(&mut self, now: Time, id: TxnId, issuer: usize) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let Some((response, _)) = &txn.reply else {
            return;
        };
        let mut advice = txn.request.clone();
        advice.set_mti("0120".parse().expect("constant MTI"));
        for n in [38, 39] {
            if let Some(v) = response.value_bytes(n) {
                let _ = advice.set(n, v);
            }
        }
        let acq = &self.cfg.acquirers[txn.from.acquirer];
        let target = &self.cfg.issuers[issuer];
        let mut out = translate(&acq.spec, &target.spec, &advice, now.wall).message;
        let _ = out.set_copy(33, &self.cfg.institution_id);
        let stan = self.next_stan(issuer);
        let _ = out.set_num(11, u64::from(stan), 6);
        if let Some(t) = self.txns.get_mut(&id) {
            t.advice = Some(Box::new((issuer, out.clone())));
        }
        self.queue(now, SafKind::StandInAdvice, issuer, out, Some(id.0), None);
    }
}

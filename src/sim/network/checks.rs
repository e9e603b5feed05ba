//! The invariants: those checked as each action comes out of the core
//! (replies, sends, acknowledgements, stand-in), and those checked once
//! everything has settled (agreement of journal, acquirers and issuers).

use std::collections::{HashMap, HashSet};

use super::Invariant;
use super::acquirer::{Acquirers, Reversal};
use super::issuer::Issuer;
use super::journal::{Journal, SafState, TxnState};
use super::setup::STAND_IN;
use crate::journal::{Record, TxnOutcome};
use crate::message::Message;
use crate::message::mti::{Function, MessageClass};
use crate::switch::core::{Origin, Outgoing, TxnId};

pub type Broken = (Invariant, String);

/// Milliseconds in a calendar day.
const DAY_MS: i64 = 86_400_000;

/// What the step checks remember.
#[derive(Default)]
pub struct Checks {
    /// Originals sent to issuers: (issuer, RRN, MTI class and function,
    /// the original a reversal names).
    originals: HashSet<(usize, String, [u8; 2], u32)>,
    /// Store-and-forward entries with an attempt out.
    pub saf_out: HashSet<u64>,
    /// PAN and amount of each transaction of this incarnation.
    txns: HashMap<u64, (Vec<u8>, u64)>,
    /// Stand-in approvals per (PAN, day): count and amount.
    stand_in: HashMap<(Vec<u8>, i64), (u32, u64)>,
}

fn is_approval(m: &Message) -> bool {
    matches!(m.get_str(39), Some("00" | "000"))
}

impl Checks {
    /// A new incarnation of the core: what it keeps in memory starts over
    /// (stand-in counters are not journaled; see docs/testing.md).
    pub fn restarted(&mut self) {
        self.saf_out.clear();
        self.txns.clear();
        self.stand_in.clear();
    }

    /// Exactly one reply per request, with that request's own fields;
    /// an acknowledgement only of what is durable.
    pub fn reply(
        &self,
        acq: &mut Acquirers,
        journal: &Journal,
        to: Origin,
        message: Option<&Message>,
        confirm: Option<TxnId>,
    ) -> Result<(), Broken> {
        let Some(sent) = acq.sent.get_mut(&to.tag) else {
            return Err((
                Invariant::ExactlyOneReply,
                format!("a reply to tag {}, never sent", to.tag),
            ));
        };
        if sent.replied {
            return Err((
                Invariant::ExactlyOneReply,
                format!("a second reply to tag {}", to.tag),
            ));
        }
        sent.replied = true;
        let Some(m) = message else {
            return Ok(());
        };
        let request = &sent.request;
        if request.mti().response() != Some(m.mti()) {
            return Err((
                Invariant::ForeignAnswer,
                format!("request {} answered with {}", request.mti(), m.mti()),
            ));
        }
        for n in [2, 4, 11, 37, 41] {
            if let (Some(a), Some(b)) = (request.value(n), m.value(n))
                && a != b
            {
                return Err((
                    Invariant::ForeignAnswer,
                    format!(
                        "tag {}: DE{n} of the reply differs from the request's ({})",
                        to.tag, sent.rrn
                    ),
                ));
            }
        }
        let stood_in = m.get_str(38).is_some_and(|c| c.starts_with('S'));
        if is_approval(m)
            && stood_in
            && request.get_str(super::acquirer::SIM_CVV2_FIELD) == Some(super::acquirer::WRONG_CVV2)
        {
            return Err((
                Invariant::StandInCardUnchecked,
                format!("tag {}: stood in with a wrong CVV2 ({})", to.tag, sent.rrn),
            ));
        }
        match confirm {
            Some(id) if is_approval(m) => acknowledged(journal, request, id.0),
            _ => Ok(()),
        }
    }

    /// What goes to an issuer is durable first, goes once as an
    /// original, and an entry is out at most once at a time.
    pub fn sent_to_issuer(
        &mut self,
        journal: &Journal,
        issuer: usize,
        what: Outgoing,
        m: &Message,
    ) -> Result<(), Broken> {
        let durable = match what {
            Outgoing::Txn(id) => journal.kept_txn(id.0).is_some(),
            Outgoing::Saf(id) => journal.saf.contains_key(&id),
            // Network management: nothing to journal.
            Outgoing::KeyExchange(_) => true,
        };
        if !durable {
            return Err((
                Invariant::ForwardedBeforeDurable,
                format!("{what:?} ({}) sent before its record was durable", m.mti()),
            ));
        }
        if m.value(52)
            .is_some_and(|b| b.first() != Some(&super::acquirer::PIN_TRANSLATED))
        {
            return Err((
                Invariant::PinUntranslated,
                format!(
                    "{what:?} ({}) carries a PIN block the HSM did not translate",
                    m.mti()
                ),
            ));
        }
        if let Outgoing::Saf(id) = what
            && !self.saf_out.insert(id)
        {
            return Err((
                Invariant::SafAttemptsOverlap,
                format!("entry {id} sent while an attempt was out"),
            ));
        }
        let mti = m.mti();
        if mti.is_repeat() {
            return Ok(());
        }
        let d = mti.digits();
        let named = match mti.class() {
            // A reversal of a reversal may be made again after a restart.
            MessageClass::Reversal => match original_named(m) {
                Some((class, stan)) if class != b'4' => stan,
                _ => return Ok(()),
            },
            _ => 0,
        };
        let rrn = m.get_str(37).unwrap_or("").to_string();
        if !self
            .originals
            .insert((issuer, rrn.clone(), [d[1], d[2]], named))
        {
            return Err((
                Invariant::ForwardedTwice,
                format!("{mti} of {rrn} sent to issuer {issuer} twice as an original"),
            ));
        }
        Ok(())
    }

    /// Records as they are appended: the stand-in limits hold.
    pub fn appended(&mut self, records: &[Record], wall_ms: i64) -> Result<(), Broken> {
        for r in records {
            match r {
                Record::Accepted(a) => {
                    let pan = a.pan.as_ref().map(|p| p.to_vec()).unwrap_or_default();
                    let amount = a
                        .amount_minor
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(0);
                    self.txns.insert(a.id, (pan, amount));
                }
                Record::Answered(a) if a.outcome == TxnOutcome::StandIn => {
                    self.stood_in(a.id, wall_ms)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn stood_in(&mut self, id: u64, wall_ms: i64) -> Result<(), Broken> {
        let Some((pan, amount)) = self.txns.get(&id).cloned() else {
            return Err((
                Invariant::StandInLimits,
                format!("stand-in for unknown transaction {id}"),
            ));
        };
        let day = wall_ms.div_euclid(DAY_MS);
        let tally = self.stand_in.entry((pan, day)).or_default();
        tally.0 += 1;
        tally.1 += amount;
        let r = STAND_IN;
        if amount > r.per_transaction_max
            || tally.0 > r.per_card_daily_count
            || tally.1 > r.per_card_daily_amount
        {
            return Err((
                Invariant::StandInLimits,
                format!(
                    "transaction {id}: stand-in number {} for the card today, {} in all",
                    tally.0, tally.1
                ),
            ));
        }
        Ok(())
    }
}

/// The class digit and STAN of the original a reversal names.
fn original_named(m: &Message) -> Option<(u8, u32)> {
    let data = m.get_str(90).or_else(|| m.get_str(56))?;
    let class = *data.as_bytes().get(1)?;
    Some((class, data.get(4..10)?.parse().ok()?))
}

/// An approval (00) the switch confirms is durable: a purchase's approval
/// journaled, an advice queued, a reversal answered or queued.
fn acknowledged(journal: &Journal, request: &Message, id: u64) -> Result<(), Broken> {
    let answered = journal
        .kept_txn(id)
        .and_then(|t| t.outcome)
        .is_some_and(TxnOutcome::approves);
    let mti = request.mti();
    let ok = match (mti.class(), mti.function()) {
        (MessageClass::Reversal, _) => answered || journal.kept_saf_of(id, "timeout_reversal"),
        (_, Function::Advice) => journal.kept_saf_of(id, "acquirer_advice"),
        _ => answered,
    };
    if ok {
        return Ok(());
    }
    Err((
        Invariant::AcknowledgedBeforeDurable,
        format!("transaction {id} ({mti}) acknowledged with 00 before that was durable"),
    ))
}

/// What the final checks counted as allowed.
#[derive(Default)]
pub struct Settled {
    pub presumed: u64,
    pub given_up: u64,
}

/// After the quiet period: the journal closed everything, and acquirers
/// and issuers agree on every approval.
pub fn settled(acq: &Acquirers, issuers: &[Issuer], journal: &Journal) -> Result<Settled, Broken> {
    for (id, t) in &journal.txns {
        if matches!(t.state, TxnState::Received | TxnState::Forwarded) {
            return Err((
                Invariant::JournalComplete,
                format!("transaction {id} left {:?}", t.state),
            ));
        }
    }
    if let Some((id, s)) = journal
        .saf
        .iter()
        .find(|(_, s)| s.state == SafState::Pending)
    {
        return Err((
            Invariant::JournalComplete,
            format!("entry {id} ({}) still pending", s.kind),
        ));
    }
    let mut out = Settled::default();
    let mut rrns: Vec<&String> = acq.logical.keys().collect();
    rrns.sort();
    for rrn in rrns {
        let l = &acq.logical[rrn];
        let issuer_holds = issuers.iter().any(|i| i.holds(rrn));
        if l.advice {
            if l.advice_acked && !issuers.iter().any(|i| i.advised.contains(rrn)) {
                if journal.given_up_for(rrn) {
                    out.given_up += 1;
                    continue;
                }
                return Err((
                    Invariant::AdviceDelivered,
                    format!("advice {rrn} acknowledged, never delivered"),
                ));
            }
            continue;
        }
        let acquirer_holds = l.approved && l.reversal != Reversal::Acked;
        if issuer_holds == acquirer_holds {
            continue;
        }
        if journal.given_up_for(rrn) {
            out.given_up += 1;
            continue;
        }
        if issuer_holds && presumed_delivered(journal, rrn) {
            out.presumed += 1;
            continue;
        }
        let detail = if issuer_holds {
            "the issuer holds an approval the acquirer never got, and it was not reversed"
        } else {
            "the acquirer holds an approval the issuer does not (reversed, or never made)"
        };
        return Err((Invariant::ApprovalAgreement, format!("{rrn}: {detail}")));
    }
    Ok(out)
}

/// Whether the journal holds an approval of `rrn` whose delivery it does
/// not know (the switch died between journaling it and writing it): by
/// the journal's rule it is presumed delivered, and the acquirer's own
/// reversal settles it (docs/journal.md, "Crash recovery").
fn presumed_delivered(journal: &Journal, rrn: &str) -> bool {
    // In any state: a stand-in approval's transaction is `reversed` (its
    // request was, on the time-out) while its advice stands.
    journal
        .txns_of(rrn)
        .any(|(_, t)| t.outcome.is_some_and(TxnOutcome::approves))
}

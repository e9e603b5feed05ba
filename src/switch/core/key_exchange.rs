//! Key exchange with an issuer by network management (issue 21): on its
//! schedule or on demand, the HSM makes a new working key (the issuer's
//! ZPK, else its ZAK) under the LMK and under the zone master key; an
//! 0800 with DE70 = 161 (DE24 = 811 from 1993 on) carries it in DE48 as
//! its key type (3H), the key under the ZMK and its check value; when the
//! issuer approves (and echoes the same check value in DE48, if it
//! echoes one) the new key is used from then on. Any failure (the HSM,
//! no answer in time, a refusal, another check value) keeps the old key
//! and counts a failed exchange, which the node raises as an alarm.

use bytes::Bytes;

use super::{Action, Core, Outgoing, Question, Time, TimerId, Wait};
use crate::hsm::command::KeyCryptogram;
use crate::message::Message;
use crate::message::netmgmt;
use crate::switch::security::{HsmOp, HsmReply, HsmResult};

/// Where an issuer's exchange is.
#[derive(Debug, Clone)]
pub(super) enum Exchange {
    /// The HSM is making the new key.
    Generating,
    /// Sent under `stan`: the new key under the LMK and its check value,
    /// waiting for the issuer.
    Sent {
        stan: u32,
        key: KeyCryptogram,
        kcv: String,
    },
}

/// Which working key an issuer's exchanges replace, and its 3H type.
pub(super) fn working_key(
    keys: &crate::switch::security::IssuerKeys,
) -> Option<(&'static str, bool)> {
    if keys.pin.is_some() {
        Some(("001", true))
    } else if keys.mac.as_ref().is_some_and(|m| m.zone) {
        Some(("008", false))
    } else {
        None
    }
}

impl Core {
    /// Starts a key exchange with `issuer`, unless one is under way or it
    /// has no zone master key or working key.
    pub(super) fn exchange_keys(&mut self, issuer: usize) {
        let Some(target) = self.cfg.issuers.get(issuer) else {
            return;
        };
        let (Some(zmk), Some((key_type, _))) = (target.keys.zmk.clone(), working_key(&target.keys))
        else {
            return;
        };
        if self.exchanges[issuer].is_some() {
            return;
        }
        self.exchanges[issuer] = Some(Exchange::Generating);
        let token = self.token(Wait::KeyGenerated(issuer));
        self.push(Action::Ask {
            token,
            question: Question::Hsm(vec![HsmOp::GenerateKey { zmk, key_type }]),
        });
    }

    /// The schedule's timer: an exchange, and the next one armed.
    pub(super) fn exchange_due(&mut self, now: Time, issuer: usize) {
        self.exchange_keys(issuer);
        self.arm_exchange(now, issuer);
    }

    /// Arms `issuer`'s next scheduled exchange, if it has a schedule.
    pub(super) fn arm_exchange(&mut self, now: Time, issuer: usize) {
        if let Some(every) = self
            .cfg
            .issuers
            .get(issuer)
            .and_then(|i| i.keys.exchange_every)
        {
            self.push(Action::Arm {
                timer: TimerId::KeyExchange(issuer),
                at: now.mono + every,
            });
        }
    }

    /// The HSM's new key: sent to the issuer under its ZMK.
    pub(super) fn key_generated(&mut self, now: Time, issuer: usize, results: Vec<HsmResult>) {
        let Some(Exchange::Generating) = self.exchanges[issuer] else {
            return;
        };
        let (key_type, _) = working_key(&self.cfg.issuers[issuer].keys).unwrap_or(("001", true));
        let Some(Ok(HsmReply::NewKey { lmk, zmk, kcv })) = results.into_iter().next() else {
            return self.exchange_failed(issuer);
        };
        let stan = self.next_stan(issuer);
        let frame = self.exchange_request(now, issuer, stan, key_type, &zmk, &kcv);
        let Some(frame) = frame else {
            return self.exchange_failed(issuer);
        };
        self.exchanges[issuer] = Some(Exchange::Sent {
            stan,
            key: lmk,
            kcv,
        });
        let what = Outgoing::KeyExchange(issuer);
        self.in_flight.insert((issuer, stan), what);
        self.push(Action::ToIssuer {
            issuer,
            what,
            stan,
            frame,
        });
        self.push(Action::Arm {
            timer: TimerId::KeyExchangeAnswer(issuer),
            at: now.mono + self.cfg.saf_response_wait,
        });
    }

    /// The 0800 of a key exchange, built in the issuer's dialect.
    fn exchange_request(
        &self,
        now: Time,
        issuer: usize,
        stan: u32,
        key_type: &str,
        zmk_form: &KeyCryptogram,
        kcv: &str,
    ) -> Option<Bytes> {
        let spec = &self.cfg.issuers[issuer].spec;
        let de48 = format!("{key_type}{}{kcv}", zmk_form.to_field());
        let has_de70 = spec.field(70).is_some();
        let m = netmgmt::new_key_request(spec.version.digit(), stan, now.wall, has_de70, &de48)?;
        spec.build(&m).ok()
    }

    /// The issuer's answer to the exchange sent under `stan`.
    pub(super) fn exchange_answered(&mut self, issuer: usize, answer: &Message) {
        let Some(Exchange::Sent { stan, key, kcv }) = self.exchanges[issuer].clone() else {
            return;
        };
        self.in_flight.remove(&(issuer, stan));
        self.push(Action::Disarm {
            timer: TimerId::KeyExchangeAnswer(issuer),
        });
        let approved = matches!(answer.get_str(39), Some("00" | "000" | "800"));
        // An issuer that states a check value (alone, or at the end of the
        // request's DE48 it echoes) must state the new key's.
        let echoed = answer.get_str(48).is_none_or(|k| {
            k.len() >= kcv.len() && k[k.len() - kcv.len()..].eq_ignore_ascii_case(&kcv)
        });
        if !(approved && echoed) {
            return self.exchange_failed(issuer);
        }
        self.exchanges[issuer] = None;
        self.use_key(issuer, key);
    }

    /// `key` (under the LMK) is `issuer`'s working key from now on: its
    /// ZPK, else its ZAK. The alarm clears.
    pub(super) fn use_key(&mut self, issuer: usize, key: KeyCryptogram) {
        let keys = &mut self.cfg.issuers[issuer].keys;
        match (&mut keys.pin, &mut keys.mac) {
            (Some((zpk, _)), _) => *zpk = key,
            (None, Some(zak)) => zak.key = key,
            (None, None) => {}
        }
        self.exchange_failing[issuer] = false;
        self.counters.key_exchanges += 1;
    }

    /// No answer in time, or the link lost it: the old key stays.
    pub(super) fn exchange_lost(&mut self, issuer: usize) {
        if let Some(Exchange::Sent { stan, .. }) = self.exchanges[issuer] {
            self.in_flight.remove(&(issuer, stan));
            self.push(Action::Forget { issuer, stan });
            self.push(Action::Disarm {
                timer: TimerId::KeyExchangeAnswer(issuer),
            });
            self.exchange_failed(issuer);
        }
    }

    /// Counted, and the issuer marked failing until an exchange succeeds
    /// (the alarm).
    pub(super) fn exchange_failed(&mut self, issuer: usize) {
        self.exchanges[issuer] = None;
        self.exchange_failing[issuer] = true;
        self.counters.key_exchanges_failed += 1;
    }

    /// Issuers whose last key exchange failed (they keep their old key).
    pub fn key_exchange_failing(&self) -> usize {
        self.exchange_failing.iter().filter(|&&f| f).count()
    }
}

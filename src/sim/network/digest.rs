//! The trace digest: a fixed-key hash (FNV-1a, 64 bits) over every input
//! and action of a run, so that the same seed gives the same digest on
//! any machine. Instants enter as offsets from the run's start; messages
//! as their MTI and field values.

use std::fmt::Write as _;
use std::time::Instant;

use crate::journal::Record;
use bytes::Bytes;

use super::setup::Setup;
use crate::message::{Message, Spec};
use crate::switch::core::{Action, Input, Question};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone, Copy)]
pub struct Digest(pub u64);

impl Default for Digest {
    fn default() -> Digest {
        Digest(OFFSET)
    }
}

impl std::fmt::Write for Digest {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

impl Digest {
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn message(&mut self, m: &Message) {
        self.bytes(m.mti().as_str().as_bytes());
        for (n, v) in m.values() {
            self.u64(u64::from(n));
            self.bytes(v);
        }
    }

    fn record(&mut self, r: &Record) {
        match r {
            Record::Accepted(a) => {
                let _ = write!(self, "A{} {:?} {:?}", a.id, a.stan, a.rrn);
                if let Some(route) = &a.route {
                    self.bytes(&route.message);
                }
            }
            Record::SafQueued(q) => {
                let _ = write!(self, "Q{} {:?} {}", q.id, q.txn_id, q.kind);
                self.bytes(&q.message);
            }
            other => {
                let _ = write!(self, "{other:?}");
            }
        }
    }

    /// An input at `t_us` microseconds of virtual time.
    pub fn input(&mut self, t_us: u64, input: &Input) {
        self.u64(t_us);
        match input {
            Input::Request { from, message } => {
                let _ = write!(self, "R{:?}", from);
                self.message(message);
            }
            Input::FromIssuer { issuer, message } => {
                let _ = write!(self, "F{issuer}");
                self.message(message);
            }
            Input::Answer { token, answer } => {
                let _ = write!(self, "N{token:?}");
                match answer {
                    Ok(m) => self.message(m),
                    Err(o) => {
                        let _ = write!(self, "{o:?}");
                    }
                }
            }
            other => {
                let _ = write!(self, "{other:?}");
            }
        }
    }

    /// An action; its instants as offsets from `base`.
    pub fn action(&mut self, base: Instant, action: &Action) {
        match action {
            Action::Append { records, durable } => {
                let _ = write!(self, "P{durable:?}");
                for r in records {
                    self.record(r);
                }
            }
            Action::ToIssuer {
                issuer,
                what,
                stan,
                frame,
            } => {
                let _ = write!(self, "T{issuer}{what:?}{stan}");
                self.bytes(frame);
            }
            Action::AnswerIssuer { issuer, id, frame } => {
                let _ = write!(self, "A{issuer}{id:?}");
                self.bytes(frame);
            }
            Action::Reply { to, frame, confirm } => {
                let _ = write!(self, "Y{to:?}{confirm:?}");
                if let Some(frame) = frame {
                    self.bytes(frame);
                }
            }
            Action::Arm { timer, at } => {
                let us = at.saturating_duration_since(base).as_micros();
                let _ = write!(self, "M{timer:?}{us}");
            }
            Action::Disarm { timer } => {
                let _ = write!(self, "D{timer:?}");
            }
            Action::Forget { issuer, stan } => {
                let _ = write!(self, "F{issuer}.{stan}");
            }
            Action::Ask { token, question } => {
                let _ = write!(self, "K{token:?}");
                match question {
                    Question::BatchClose(m) => self.message(m),
                    Question::Hsm(ops) => {
                        let _ = write!(self, "H{}", ops.len());
                    }
                }
            }
        }
    }
}

/// A message in one line without card data: MTI, STAN, RRN, DE39.
pub fn brief(m: &Message) -> String {
    format!(
        "{} stan={} rrn={} de39={}",
        m.mti(),
        m.get_str(11).unwrap_or("-"),
        m.get_str(37).unwrap_or("-"),
        m.get_str(39).unwrap_or("-")
    )
}

/// An input for the trace.
pub fn describe_input(input: &Input) -> String {
    match input {
        Input::Request { from, message } => {
            format!(
                "request conn={} tag={} {}",
                from.conn.0,
                from.tag,
                brief(message)
            )
        }
        Input::FromIssuer { issuer, message } => {
            format!("from issuer {issuer}: {}", brief(message))
        }
        Input::Answer { token, answer } => match answer {
            Ok(m) => format!("answer {token:?}: {}", brief(m)),
            Err(o) => format!("answer {token:?}: {o:?}"),
        },
        other => format!("{other:?}"),
    }
}

/// An action for the trace.
pub fn describe_action(base: Instant, setup: &Setup, action: &Action) -> String {
    let read = |spec: &Spec, frame: &Bytes| {
        spec.parse(frame)
            .map_or_else(|e| format!("unreadable: {e}"), |m| brief(&m))
    };
    match action {
        Action::Append { records, durable } => {
            let kinds: Vec<String> = records.iter().map(record_kind).collect();
            format!("append {} durable={durable:?}", kinds.join(","))
        }
        Action::ToIssuer {
            issuer,
            what,
            frame,
            ..
        } => format!(
            "to issuer {issuer} {what:?}: {}",
            read(&setup.issuer_specs[*issuer], frame)
        ),
        Action::AnswerIssuer { issuer, id, frame } => format!(
            "answer issuer {issuer} {id:?}: {}",
            read(&setup.issuer_specs[*issuer], frame)
        ),
        Action::Forget { issuer, stan } => format!("forget issuer {issuer} stan {stan}"),
        Action::Reply { to, frame, confirm } => format!(
            "reply tag={} confirm={confirm:?}: {}",
            to.tag,
            frame
                .as_ref()
                .map_or("none".to_string(), |f| read(&setup.acquirer_spec, f))
        ),
        Action::Arm { timer, at } => format!(
            "arm {timer:?} at +{}ms",
            at.saturating_duration_since(base).as_millis()
        ),
        Action::Disarm { timer } => format!("disarm {timer:?}"),
        Action::Ask { token, .. } => format!("ask {token:?}: batch close"),
    }
}

fn record_kind(r: &Record) -> String {
    match r {
        Record::Accepted(a) => format!("accepted({})", a.id),
        Record::Answered(a) => format!("answered({} {})", a.id, a.outcome),
        Record::Delivery { id, delivered, .. } => format!("delivery({id} {delivered})"),
        Record::Event { txn_id, kind, .. } => format!("event({txn_id:?} {kind})"),
        Record::SafQueued(q) => format!("saf_queued({} {:?} {})", q.id, q.txn_id, q.kind),
        Record::SafAttempted { id, attempts } => format!("saf_attempted({id} {attempts})"),
        Record::SafDone { id, delivered, .. } => format!("saf_done({id} {delivered})"),
    }
}

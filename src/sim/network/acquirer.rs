//! The acquirers: terminals on one to three connections sending
//! purchases (0100 / 0200), copies of earlier requests, repeats (0101),
//! reversals of approvals they hold (0400, repeated as 0401 until
//! answered), advices (0120 / 0220), batch closes (0500) and echoes
//! (0800); and what each acquirer believes it holds, from the replies it
//! got.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use fastrand::Rng;

use crate::message::Message;
use crate::message::Spec;
use crate::message::time::transmission_time;
use crate::sim::reversal::{ReversalMti, reversal_of};

/// The cards: six per issuer BIN, and one no route knows.
const CARDS: [&str; 13] = [
    "4761739001010119",
    "4761739001010127",
    "4761739001010135",
    "4761739001010143",
    "4761739001010150",
    "4761739001010168",
    "5454000000000016",
    "5454000000000024",
    "5454000000000032",
    "5454000000000040",
    "5454000000000057",
    "5454000000000065",
    "9999990000000017",
];

/// What a request is, for reading its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Purchase,
    Reversal,
    Advice,
    Other,
}

/// A request sent, by the node's tag.
#[derive(Debug)]
pub struct Sent {
    pub acquirer: usize,
    pub conn: u64,
    pub request: Message,
    pub kind: Kind,
    pub rrn: String,
    pub replied: bool,
    /// Sent at (virtual microseconds), for copies.
    pub at_us: u64,
}

/// What the acquirer believes of one logical transaction (by RRN).
#[derive(Debug, Default)]
pub struct Logical {
    pub acquirer: usize,
    pub advice: bool,
    /// An approval reached the acquirer.
    pub approved: bool,
    /// The original request, to reverse it.
    pub original: Option<Message>,
    pub reversal: Reversal,
    /// Its advice was acknowledged with 00.
    pub advice_acked: bool,
}

/// Where the acquirer's reversal of an approval is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Reversal {
    #[default]
    None,
    /// Sent (`tag` the last attempt), not yet answered.
    Pending {
        message: Box<Message>,
        tag: u64,
        attempts: u32,
    },
    /// Answered 00: the acquirer holds nothing.
    Acked,
}

/// Attempts of one reversal at most.
pub const REVERSAL_ATTEMPTS_MAX: u32 = 30;

struct Terminal {
    conn: u64,
    stan: u32,
    /// Tags of its recent requests (copies are made of these).
    recent: VecDeque<u64>,
    /// RRNs of the approvals it holds (reversals are made of these).
    approvals: VecDeque<String>,
}

pub struct Acquirers {
    terminals: Vec<Terminal>,
    pub sent: HashMap<u64, Sent>,
    pub logical: HashMap<String, Logical>,
    next_tag: u64,
    next_conn: u64,
    next_rrn: u64,
    pub requests: u64,
    spec: std::sync::Arc<Spec>,
    /// How many of the cards are used (one issuer's, or both).
    cards: usize,
    /// Purchases carry a PIN block (DE52, first byte `PIN_FROM_TERMINAL`).
    pub pin: bool,
}

/// The first byte of a PIN block as the simulated terminals make it; the
/// simulated HSM's translation makes it `PIN_TRANSLATED`, so a block that
/// reaches an issuer untranslated is seen.
pub const PIN_FROM_TERMINAL: u8 = 0xAC;
pub const PIN_TRANSLATED: u8 = 0x15;
/// The field keyed-in requests of seeds with an HSM carry a CVV2 in.
pub const SIM_CVV2_FIELD: u16 = 48;
/// The CVV2 the simulated HSM refuses (3% of keyed-in requests carry it).
pub const WRONG_CVV2: &str = "999";

fn approved(m: &Message) -> bool {
    matches!(m.get_str(39), Some("00" | "000"))
}

impl Acquirers {
    pub fn new(n: usize, issuers: usize, spec: std::sync::Arc<Spec>) -> Acquirers {
        let mut a = Acquirers {
            terminals: Vec::new(),
            sent: HashMap::new(),
            logical: HashMap::new(),
            next_tag: 0,
            next_conn: 0,
            next_rrn: 0,
            requests: 0,
            spec,
            cards: 6 * issuers + 1,
            pin: false,
        };
        for _ in 0..n {
            let conn = a.conn();
            a.terminals.push(Terminal {
                conn,
                stan: 0,
                recent: VecDeque::new(),
                approvals: VecDeque::new(),
            });
        }
        a
    }

    fn conn(&mut self) -> u64 {
        self.next_conn += 1;
        self.next_conn
    }

    pub fn conn_of(&self, acquirer: usize) -> u64 {
        self.terminals[acquirer].conn
    }

    /// Acquirer `a`'s connection broke (a failed write): it connects
    /// again; replies to the old one are lost.
    pub fn reconnect(&mut self, a: usize) {
        let conn = self.conn();
        self.terminals[a].conn = conn;
        self.terminals[a].recent.clear();
    }

    /// The switch died: every connection is gone with the replies it
    /// waited for; the reversals among them are to be repeated.
    pub fn switch_died(&mut self) -> Vec<String> {
        for a in 0..self.terminals.len() {
            self.reconnect(a);
        }
        let mut retry = Vec::new();
        for s in self.sent.values_mut().filter(|s| !s.replied) {
            s.replied = true;
            if s.kind == Kind::Reversal {
                retry.push(s.rrn.clone());
            }
        }
        retry.sort();
        retry.dedup();
        retry
    }

    fn base(&mut self, a: usize, mti: &str, wall: SystemTime, rng: &mut Rng) -> (Message, String) {
        let t = &mut self.terminals[a];
        t.stan = t.stan % 999_999 + 1;
        self.next_rrn += 1;
        let rrn = format!("{:02}{:010}", a, self.next_rrn);
        let mut m = Message::new(mti.parse().expect("constant MTI"));
        // With one issuer, its cards and the unrouted one only.
        let card = match rng.usize(..self.cards) {
            i if i + 1 == self.cards => CARDS[CARDS.len() - 1],
            i => CARDS[i],
        };
        let amount = rng.u64(100..80_000);
        let when = transmission_time(wall);
        for (n, v) in [
            (2, card),
            (3, "000000"),
            (7, when.as_str()),
            (12, &when[4..]),
            (13, &when[..4]),
            (14, "2812"),
            (18, "5999"),
            (22, "051"),
            (25, "00"),
            (32, "123456"),
            (37, rrn.as_str()),
            (41, &format!("TERM{a:04}")),
            (42, "MERCHANT0000001"),
            (49, "978"),
        ] {
            let _ = m.set_str(n, v);
        }
        let _ = m.set_num(4, amount, 12);
        let _ = m.set_num(11, u64::from(t.stan), 6);
        if self.pin && mti.ends_with("00") && (mti.starts_with("01") || mti.starts_with("02")) {
            let s = t.stan.to_be_bytes();
            let block = [PIN_FROM_TERMINAL, 1, 2, 3, s[0], s[1], s[2], s[3]];
            let _ = m.set(52, bytes::Bytes::copy_from_slice(&block));
            // Keyed in: stand-in checks the CVV2 with the simulated HSM.
            let cvv2 = if rng.u32(0..100) < 3 {
                WRONG_CVV2
            } else {
                "123"
            };
            let _ = m.set_str(SIM_CVV2_FIELD, cvv2);
        }
        (m, rrn)
    }

    /// Registers request `m` of acquirer `a`: its tag.
    fn register(
        &mut self,
        a: usize,
        m: Message,
        kind: Kind,
        rrn: String,
        now_us: u64,
    ) -> (u64, u64, Message) {
        self.next_tag += 1;
        self.requests += 1;
        let tag = self.next_tag;
        let conn = self.terminals[a].conn;
        self.sent.insert(
            tag,
            Sent {
                acquirer: a,
                conn,
                request: m.clone(),
                kind,
                rrn,
                replied: false,
                at_us: now_us,
            },
        );
        let recent = &mut self.terminals[a].recent;
        recent.push_back(tag);
        if recent.len() > 16 {
            recent.pop_front();
        }
        (tag, conn, m)
    }

    /// Acquirer `a`'s next request at `now_us` (wall time `wall`): its
    /// tag, connection and message.
    pub fn next(
        &mut self,
        a: usize,
        now_us: u64,
        wall: SystemTime,
        rng: &mut Rng,
    ) -> (u64, u64, Message) {
        let roll = rng.u32(..100);
        if roll < 10
            && let Some(r) = self.copy(a, now_us, rng, false)
        {
            return r;
        }
        if roll < 15
            && let Some(r) = self.copy(a, now_us, rng, true)
        {
            return r;
        }
        if roll < 22
            && let Some(r) = self.reverse(a, now_us, wall)
        {
            return r;
        }
        let (mti, kind) = match roll {
            22..=29 => (if rng.bool() { "0120" } else { "0220" }, Kind::Advice),
            30..=31 => ("0500", Kind::Other),
            32..=35 => ("0800", Kind::Other),
            _ => (if rng.bool() { "0100" } else { "0200" }, Kind::Purchase),
        };
        let (mut m, rrn) = self.base(a, mti, wall, rng);
        if mti == "0800" {
            m = Message::new(m.mti());
            let _ = m.set_str(7, &transmission_time(wall));
            let _ = m.set_num(11, u64::from(self.terminals[a].stan), 6);
            let _ = m.set_str(70, "301");
        }
        // Now and then a terminal reuses a STAN and DE7 of one of its
        // recent requests for another card or amount: another transaction.
        if kind == Kind::Purchase && roll >= 96 {
            self.reuse_stan(a, &mut m);
        }
        if kind != Kind::Other {
            self.logical.insert(
                rrn.clone(),
                Logical {
                    acquirer: a,
                    advice: kind == Kind::Advice,
                    original: Some(m.clone()),
                    ..Logical::default()
                },
            );
        }
        self.register(a, m, kind, rrn, now_us)
    }

    fn reuse_stan(&mut self, a: usize, m: &mut Message) {
        let t = &self.terminals[a];
        let Some(prev) = t.recent.back().and_then(|tag| self.sent.get(tag)) else {
            return;
        };
        for n in [7, 11, 12, 13] {
            if let Some(v) = prev.request.value_bytes(n) {
                let _ = m.set(n, v);
            }
        }
    }

    /// A copy of a recent request (the same content), or with `repeat`
    /// its repeat (0101, 0201...), sent again on the same connection.
    fn copy(
        &mut self,
        a: usize,
        now_us: u64,
        rng: &mut Rng,
        repeat: bool,
    ) -> Option<(u64, u64, Message)> {
        let t = &self.terminals[a];
        if t.recent.is_empty() {
            return None;
        }
        let tag = t.recent[rng.usize(..t.recent.len())];
        let prev = self.sent.get(&tag)?;
        // Copies come soon after the original, within the switch's window.
        if prev.kind != Kind::Purchase || now_us.saturating_sub(prev.at_us) > 30_000_000 {
            return None;
        }
        let mut m = prev.request.clone();
        if repeat {
            m.set_mti(m.mti().as_repeat());
        }
        let rrn = prev.rrn.clone();
        Some(self.register(a, m, Kind::Purchase, rrn, now_us))
    }

    /// A reversal of an approval acquirer `a` holds.
    fn reverse(&mut self, a: usize, now_us: u64, wall: SystemTime) -> Option<(u64, u64, Message)> {
        let rrn = self.terminals[a].approvals.pop_front()?;
        let l = self.logical.get(&rrn)?;
        if l.reversal != Reversal::None {
            return None;
        }
        let original = l.original.as_ref()?;
        let t = &mut self.terminals[a];
        t.stan = t.stan % 999_999 + 1;
        let stan = t.stan;
        let m = reversal_of(
            &self.spec,
            original,
            ReversalMti::Request,
            stan,
            &transmission_time(wall),
        );
        let r = self.register(a, m.clone(), Kind::Reversal, rrn.clone(), now_us);
        if let Some(l) = self.logical.get_mut(&rrn) {
            l.reversal = Reversal::Pending {
                message: Box::new(m),
                tag: r.0,
                attempts: 1,
            };
        }
        Some(r)
    }

    /// The reversal of `rrn` again, as a repeat, if it is still
    /// unanswered and its last attempt is over.
    pub fn retry_reversal(&mut self, rrn: &str, now_us: u64) -> Option<(usize, u64, u64, Message)> {
        let l = self.logical.get(rrn)?;
        let Reversal::Pending {
            message,
            tag,
            attempts,
        } = &l.reversal
        else {
            return None;
        };
        if self.sent.get(tag).is_some_and(|s| !s.replied) || *attempts >= REVERSAL_ATTEMPTS_MAX {
            return None;
        }
        let first = message.clone();
        let mut m = (**message).clone();
        m.set_mti(m.mti().as_repeat());
        let (a, attempts) = (l.acquirer, attempts + 1);
        let (tag, conn, m) = self.register(a, m, Kind::Reversal, rrn.to_string(), now_us);
        if let Some(l) = self.logical.get_mut(rrn) {
            l.reversal = Reversal::Pending {
                message: first,
                tag,
                attempts,
            };
        }
        Some((a, tag, conn, m))
    }

    /// A reply reached the acquirer of request `tag`: what it now
    /// believes. True when it must repeat a reversal (refused: a reversal
    /// is repeated until it is taken).
    pub fn delivered(&mut self, tag: u64, reply: &Message) -> bool {
        let Some(s) = self.sent.get(&tag) else {
            return false;
        };
        let (kind, rrn, a) = (s.kind, s.rrn.clone(), s.acquirer);
        let Some(l) = self.logical.get_mut(&rrn) else {
            return false;
        };
        match kind {
            Kind::Purchase if approved(reply) && !l.approved => {
                l.approved = true;
                self.terminals[a].approvals.push_back(rrn);
            }
            Kind::Reversal if approved(reply) => l.reversal = Reversal::Acked,
            Kind::Reversal => return matches!(l.reversal, Reversal::Pending { .. }),
            Kind::Advice if approved(reply) => l.advice_acked = true,
            _ => {}
        }
        false
    }
}

//! Capture, derived from the journal's `transactions` rows (it is never
//! stored apart from them): an approved 0200 (or a stand-in approval), or an
//! approved 0100 followed by its 0220 completion, is a captured transaction;
//! a reversal (0400 / 0420) voids it, or with a replacement amount (DE95)
//! lowers its amount. Declined, timed-out and rejected requests are never
//! captured. Rows are matched to their original by DE90 / DE56 (original
//! MTI and STAN) on the same terminal, else by RRN on the same terminal;
//! the latest original with that key wins (STANs wrap). A row whose
//! stored outcome this build does not know is skipped, and reported.

use std::collections::HashMap;

use crate::journal::capture_rows::CaptureRow;
use crate::journal::outcome::{TxnOutcome, UnknownOutcome};

/// What a journal row is to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0100: authorization only, captured once completed.
    PreAuth,
    /// 0200: financial, captured when approved.
    Financial,
    /// 0220: completion of an earlier 0100.
    Completion,
    /// 0400 / 0420: reversal of an earlier request.
    Reversal,
    Other,
}

/// The columns of a journal row capture needs, without heap allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    pub kind: Kind,
    pub repeat: bool,
    /// Processing code starts with "20": a refund (credit to the cardholder).
    pub credit: bool,
    pub amount_minor: Option<u64>,
    pub stan: Option<u32>,
    pub rrn: Option<[u8; 12]>,
    pub terminal: [u8; 8],
    /// Original MTI's class digit and STAN from DE90 / DE56.
    pub original: Option<(u8, u32)>,
    pub replacement_minor: Option<u64>,
    /// The request was approved (outcome approved, or stand-in with DE39 00).
    pub approved: bool,
    /// The request was refused outright (outcome declined or rejected).
    pub refused: bool,
}

fn digits(v: &[u8]) -> Option<u32> {
    (!v.is_empty() && v.len() <= 9 && v.iter().all(u8::is_ascii_digit))
        .then(|| v.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
}

fn fixed<const N: usize>(v: &[u8]) -> [u8; N] {
    let mut out = [b' '; N];
    let v = &v[..v.len().min(N)];
    out[..v.len()].copy_from_slice(v);
    out
}

/// Rows capture skipped because their stored outcome is unknown: neither
/// captured nor applied as a reversal, since guessing either moves money.
#[derive(Debug, Default)]
pub struct Skipped {
    pub count: u64,
    /// The first one, for the warning.
    pub first: Option<(i64, UnknownOutcome)>,
}

impl Skipped {
    /// The row to derive from, or `None` (noted) when it is skipped.
    pub fn admit(&mut self, row: &CaptureRow<'_>) -> Option<JournalRow> {
        match JournalRow::from_journal(row) {
            Ok(r) => Some(r),
            Err(e) => {
                self.count += 1;
                self.first.get_or_insert((row.id, e));
                None
            }
        }
    }

    /// One warning for all the rows skipped (a journal full of them
    /// would otherwise flood the log).
    pub fn warn(&self, during: &str) {
        if let Some((id, e)) = &self.first {
            tracing::warn!(
                skipped = self.count,
                first_txn_id = id,
                "{during}: journal rows skipped: {e}"
            );
        }
    }
}

impl JournalRow {
    /// What capture makes of a request as the journal read it; an error
    /// when its stored outcome is not one [`TxnOutcome`] knows.
    pub fn from_journal(row: &CaptureRow<'_>) -> Result<JournalRow, UnknownOutcome> {
        let id = row.id;
        let mti = row.request_mti;
        let (kind, repeat) = match mti {
            b"0100" => (Kind::PreAuth, false),
            b"0101" => (Kind::PreAuth, true),
            b"0200" => (Kind::Financial, false),
            b"0201" => (Kind::Financial, true),
            b"0220" => (Kind::Completion, false),
            b"0221" => (Kind::Completion, true),
            b"0400" | b"0420" => (Kind::Reversal, false),
            b"0401" | b"0421" => (Kind::Reversal, true),
            _ => (Kind::Other, false),
        };
        let credit = row.processing_code.is_some_and(|p| p.starts_with(b"20"));
        let amount_minor = row.amount_minor.and_then(|a| u64::try_from(a).ok());
        let stan = row.stan.and_then(digits);
        let rrn = row.rrn.map(fixed::<12>);
        let terminal = fixed::<8>(row.terminal_id.unwrap_or_default());
        let original = row.original_data.and_then(|o| {
            let class = *o.get(1)?;
            Some((class, digits(o.get(4..10)?)?))
        });
        let replacement_minor = row.replacement_amount.and_then(|a| u64::try_from(a).ok());
        let outcome = row.outcome.map(TxnOutcome::from_stored).transpose()?;
        let code = row.response_code.unwrap_or_default();
        let approved = match outcome {
            Some(TxnOutcome::Approved) => true,
            Some(TxnOutcome::StandIn) => code == b"00",
            _ => false,
        };
        let refused = matches!(outcome, Some(TxnOutcome::Declined | TxnOutcome::Rejected));
        Ok(JournalRow {
            id,
            kind,
            repeat,
            credit,
            amount_minor,
            stan,
            rrn,
            terminal,
            original,
            replacement_minor,
            approved,
            refused,
        })
    }
}

/// One captured transaction (or one that was captured, then voided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The original request's row (0200, or the 0100 of a completion).
    pub txn_id: i64,
    pub credit: bool,
    /// Amount as captured (the completion's DE4 for an 0100 + 0220).
    pub captured_minor: u64,
    /// Amount after partial reversals; 0 once voided.
    pub amount_minor: u64,
    pub voided: bool,
    /// Reversals applied (full or partial).
    pub reversals: u32,
    /// Rows folded into this one: its completion, reversals, repeats.
    pub folded: Vec<i64>,
    /// An 0100 still waiting for its 0220: not captured yet.
    pub awaiting_completion: bool,
    pub terminal: [u8; 8],
}

/// The result of deriving capture from a run of journal rows.
#[derive(Debug, Default)]
pub struct Derived {
    /// In row order of the original.
    pub items: Vec<Captured>,
    /// Completions, reversals and repeats whose original is not among the rows.
    pub unmatched: Vec<i64>,
}

impl Derived {
    /// Captured, not voided and complete: what a clearing file presents.
    pub fn presentable(&self) -> impl Iterator<Item = &Captured> {
        self.items
            .iter()
            .filter(|c| !c.voided && !c.awaiting_completion && c.amount_minor > 0)
    }
}

type Key = ([u8; 8], u32);
type Fast = foldhash::fast::RandomState;

/// Derives capture from rows in ascending id order.
pub fn derive(rows: impl IntoIterator<Item = JournalRow>) -> Derived {
    let mut out = Derived::default();
    // (terminal, STAN) and (terminal, RRN) -> index in out.items, per kind.
    // foldhash (seeded per map) rather than SipHash, which took a tenth of
    // a 1,000,000-row cut-off.
    let rows = rows.into_iter();
    let expected = rows.size_hint().0;
    let mut by_stan: HashMap<(Key, u8), usize, Fast> =
        HashMap::with_capacity_and_hasher(expected, Fast::default());
    let mut by_rrn: HashMap<([u8; 8], [u8; 12]), usize, Fast> =
        HashMap::with_capacity_and_hasher(expected, Fast::default());
    out.items.reserve(expected);
    for row in rows {
        match row.kind {
            Kind::PreAuth | Kind::Financial => {
                if !row.approved {
                    continue;
                }
                let class = if row.kind == Kind::PreAuth {
                    b'1'
                } else {
                    b'2'
                };
                let key = row.stan.map(|s| ((row.terminal, s), class));
                // A repeat of a request already captured is the same transaction.
                if row.repeat
                    && let Some(&i) = key.as_ref().and_then(|k| by_stan.get(k))
                {
                    out.items[i].folded.push(row.id);
                    continue;
                }
                let amount = row.amount_minor.unwrap_or(0);
                let index = out.items.len();
                out.items.push(Captured {
                    txn_id: row.id,
                    credit: row.credit,
                    captured_minor: amount,
                    amount_minor: amount,
                    voided: false,
                    reversals: 0,
                    folded: Vec::new(),
                    awaiting_completion: row.kind == Kind::PreAuth,
                    terminal: row.terminal,
                });
                if let Some(k) = key {
                    by_stan.insert(k, index);
                }
                if let Some(rrn) = row.rrn {
                    by_rrn.insert((row.terminal, rrn), index);
                }
            }
            Kind::Completion | Kind::Reversal => {
                if row.refused {
                    continue;
                }
                let by_original = row
                    .original
                    .and_then(|(class, stan)| by_stan.get(&((row.terminal, stan), class)));
                let found = by_original
                    .or_else(|| row.rrn.and_then(|r| by_rrn.get(&(row.terminal, r))))
                    .copied();
                let Some(i) = found else {
                    out.unmatched.push(row.id);
                    continue;
                };
                let item = &mut out.items[i];
                item.folded.push(row.id);
                if row.kind == Kind::Completion {
                    if item.awaiting_completion && !item.voided {
                        item.awaiting_completion = false;
                        let amount = row.amount_minor.unwrap_or(item.captured_minor);
                        item.captured_minor = amount;
                        item.amount_minor = amount;
                    }
                    continue;
                }
                if item.voided {
                    continue;
                }
                match row.replacement_minor {
                    Some(r) if r > 0 && r < item.amount_minor => {
                        item.amount_minor = r;
                        item.reversals += 1;
                    }
                    Some(r) if r > 0 => {} // not a reduction: nothing to reverse
                    _ => {
                        item.voided = true;
                        item.amount_minor = 0;
                        item.reversals += 1;
                    }
                }
            }
            Kind::Other => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, kind: Kind, stan: u32, amount: u64) -> JournalRow {
        JournalRow {
            id,
            kind,
            repeat: false,
            credit: false,
            amount_minor: Some(amount),
            stan: Some(stan),
            rrn: Some(fixed(format!("RRN{stan:09}").as_bytes())),
            terminal: fixed(b"TERM0001"),
            original: None,
            replacement_minor: None,
            approved: true,
            refused: false,
        }
    }

    fn of(orig: &JournalRow, id: i64, kind: Kind, stan: u32) -> JournalRow {
        let class = if orig.kind == Kind::PreAuth {
            b'1'
        } else {
            b'2'
        };
        JournalRow {
            original: Some((class, orig.stan.unwrap())),
            rrn: None,
            ..row(id, kind, stan, orig.amount_minor.unwrap())
        }
    }

    #[test]
    fn purchases_completions_and_reversals() {
        let sale = row(1, Kind::Financial, 1, 1000);
        let declined = JournalRow {
            approved: false,
            ..row(2, Kind::Financial, 2, 500)
        };
        let auth = row(3, Kind::PreAuth, 3, 8000);
        let completion = JournalRow {
            amount_minor: Some(7500),
            ..of(&auth, 4, Kind::Completion, 4)
        };
        let sale2 = row(5, Kind::Financial, 5, 2000);
        let partial = JournalRow {
            replacement_minor: Some(1200),
            ..of(&sale2, 6, Kind::Reversal, 6)
        };
        let sale3 = row(7, Kind::Financial, 7, 3000);
        // Matched by RRN (no DE90), full reversal.
        let full = JournalRow {
            original: None,
            rrn: sale3.rrn,
            ..row(8, Kind::Reversal, 8, 3000)
        };
        let repeat = JournalRow {
            repeat: true,
            ..full
        };
        let repeat = JournalRow { id: 9, ..repeat };
        let lone_auth = row(10, Kind::PreAuth, 10, 100);
        let orphan = JournalRow {
            original: Some((b'2', 999)),
            rrn: None,
            ..row(11, Kind::Reversal, 11, 1)
        };
        let d = derive([
            sale, declined, auth, completion, sale2, partial, sale3, full, repeat, lone_auth,
            orphan,
        ]);
        let presented: Vec<(i64, u64)> = d
            .presentable()
            .map(|c| (c.txn_id, c.amount_minor))
            .collect();
        assert_eq!(presented, vec![(1, 1000), (3, 7500), (5, 1200)]);
        let voided = d.items.iter().find(|c| c.txn_id == 7).unwrap();
        assert!(voided.voided);
        assert_eq!(voided.folded, vec![8, 9]);
        assert_eq!(voided.reversals, 1);
        assert!(
            d.items
                .iter()
                .any(|c| c.txn_id == 10 && c.awaiting_completion)
        );
        assert_eq!(d.unmatched, vec![11]);
    }

    #[test]
    fn a_reversal_of_an_authorization_before_completion_voids_it() {
        let auth = row(1, Kind::PreAuth, 1, 5000);
        let rev = of(&auth, 2, Kind::Reversal, 2);
        let completion = of(&auth, 3, Kind::Completion, 3);
        let d = derive([auth, rev, completion]);
        assert_eq!(d.presentable().count(), 0);
        assert_eq!(d.items[0].folded, vec![2, 3]);
    }

    fn stored(
        id: i64,
        mti: &'static [u8],
        outcome: &'static [u8],
        code: &'static [u8],
    ) -> CaptureRow<'static> {
        CaptureRow {
            id,
            request_mti: mti,
            terminal_id: Some(b"TERM0001"),
            outcome: Some(outcome),
            response_code: Some(code),
            ..CaptureRow::default()
        }
    }

    #[test]
    fn stored_outcomes_decide_approved_and_refused() {
        let cases: [(&[u8], &[u8], bool, bool); 7] = [
            (b"approved", b"00", true, false),
            (b"stand_in", b"00", true, false),
            (b"stand_in", b"91", false, false),
            (b"declined", b"05", false, true),
            (b"rejected", b"96", false, true),
            (b"timed_out", b"91", false, false),
            (b"advice_acked", b"00", false, false),
        ];
        for (outcome, code, approved, refused) in cases {
            let r = JournalRow::from_journal(&stored(1, b"0200", outcome, code)).unwrap();
            assert_eq!((r.approved, r.refused), (approved, refused), "{outcome:?}");
        }
        let never_answered = CaptureRow {
            outcome: None,
            ..stored(1, b"0200", b"", b"")
        };
        let r = JournalRow::from_journal(&never_answered).unwrap();
        assert!(!r.approved && !r.refused);
    }

    #[test]
    fn a_row_with_an_unknown_outcome_is_skipped_and_reported() {
        let mut skipped = Skipped::default();
        let rows: Vec<JournalRow> = [
            stored(1, b"0200", b"approved", b"00"),
            stored(2, b"0400", b"Approved", b"00"),
            stored(3, b"0200", b"\xff\xfe", b"00"),
        ]
        .iter()
        .filter_map(|r| skipped.admit(r))
        .collect();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
        assert_eq!(skipped.count, 2);
        let (id, e) = skipped.first.as_ref().expect("the first is kept");
        assert_eq!((*id, e.stored.as_str()), (2, "Approved"));
    }
}

//! Terminal batch close: a 0500 carries the terminal's own counts and
//! amounts since its last close (1987 layout: DE74 credits, DE75 credit
//! reversals, DE76 debits, DE77 debit reversals numbers; DE86-DE89 the same
//! amounts); the host counts the same from the journal and answers 0510
//! with its own totals, DE97 net settlement amount, DE66 settlement code
//! (1 in balance, 2 out of balance) and DE39 00 or 95 (reconcile error).
//! Either way the batch is closed: the journal, not the terminal, is what
//! gets cleared. Also the `AcquirerRules` the switch consults.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::capture::{self, Skipped};
use super::registry::{self, RegistryError, Snapshot};
use crate::journal::capture_rows::CaptureRows;
use crate::journal::{JournalError, JournalQueries};
use crate::message::Message;
use crate::message::sensitive::NEVER_ECHOED;
use crate::switch::hooks::{AcquirerRules, Admission};

/// Fields a 0510 carries the host's totals in.
const TOTAL_FIELDS: [u16; 8] = [74, 75, 76, 77, 86, 87, 88, 89];

/// Counts and amounts of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTotals {
    pub credits: u64,
    pub credit_reversals: u64,
    pub debits: u64,
    pub debit_reversals: u64,
    pub credits_minor: u64,
    pub credit_reversals_minor: u64,
    pub debits_minor: u64,
    pub debit_reversals_minor: u64,
}

impl BatchTotals {
    /// In the order of [`TOTAL_FIELDS`].
    fn values(&self) -> [u64; 8] {
        [
            self.credits,
            self.credit_reversals,
            self.debits,
            self.debit_reversals,
            self.credits_minor,
            self.credit_reversals_minor,
            self.debits_minor,
            self.debit_reversals_minor,
        ]
    }

    /// As the terminal sent them (an absent or malformed field counts 0,
    /// and so shows as out of balance when the host counted something).
    pub fn from_message(msg: &Message) -> BatchTotals {
        let v = TOTAL_FIELDS.map(|f| msg.get_u64(f).unwrap_or(0));
        BatchTotals {
            credits: v[0],
            credit_reversals: v[1],
            debits: v[2],
            debit_reversals: v[3],
            credits_minor: v[4],
            credit_reversals_minor: v[5],
            debits_minor: v[6],
            debit_reversals_minor: v[7],
        }
    }

    /// Net to the merchant: debits less credits, reversals taken out.
    pub fn net_minor(&self) -> i128 {
        i128::from(self.debits_minor)
            - i128::from(self.debit_reversals_minor)
            - i128::from(self.credits_minor)
            + i128::from(self.credit_reversals_minor)
    }

    /// Counts the host's totals from captured (and reversed) transactions.
    pub fn from_capture(derived: &capture::Derived) -> BatchTotals {
        let mut t = BatchTotals::default();
        for c in derived
            .items
            .iter()
            .filter(|c| !c.awaiting_completion || c.voided)
        {
            if c.awaiting_completion {
                continue; // an authorization reversed before completion moved no money
            }
            let reversed = c.captured_minor - c.amount_minor;
            if c.credit {
                t.credits += 1;
                t.credits_minor += c.captured_minor;
                t.credit_reversals += u64::from(c.reversals);
                t.credit_reversals_minor += reversed;
            } else {
                t.debits += 1;
                t.debits_minor += c.captured_minor;
                t.debit_reversals += u64::from(c.reversals);
                t.debit_reversals_minor += reversed;
            }
        }
        t
    }
}

/// Why a batch could not be reconciled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("0500 without a terminal id (DE41)")]
    NoTerminal,
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("0510: {0}")]
    Build(#[from] crate::message::MessageError),
}

/// The host's totals of `terminal` since its last close (in `conn`,
/// clearing's own `terminal_batches`), counted from the journal, and the
/// last journal row they cover.
pub fn host_totals(
    conn: &Connection,
    journal: &dyn JournalQueries,
    terminal: &str,
) -> Result<(BatchTotals, i64), BatchError> {
    let trimmed = terminal.trim_end();
    let after: i64 = conn
        .query_row(
            "SELECT MAX(up_to_txn_id) FROM terminal_batches WHERE terminal_id = ?1",
            params![trimmed],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten()
        .unwrap_or(0);
    let up_to = journal.last_of_terminal(terminal, after)?;
    let mut rows = Vec::new();
    let mut skipped = Skipped::default();
    let of_terminal = CaptureRows::OfTerminal {
        terminal,
        after_id: after,
        through_id: up_to,
    };
    journal.for_each_capture_row(of_terminal, &mut |r| {
        rows.extend(skipped.admit(r));
        ControlFlow::Continue(())
    })?;
    skipped.warn("batch totals");
    Ok((BatchTotals::from_capture(&capture::derive(rows)), up_to))
}

/// Answers a 0500 and records the close.
pub fn reconcile(
    conn: &Connection,
    journal: &dyn JournalQueries,
    request: &Message,
    now_ms: i64,
) -> Result<Message, BatchError> {
    let terminal = request
        .get_str(41)
        .ok_or(BatchError::NoTerminal)?
        .to_string();
    let (host, up_to) = host_totals(conn, journal, &terminal)?;
    let sent = BatchTotals::from_message(request);
    let in_balance = host == sent;
    let mut out = Message::new(request.mti().response().unwrap_or(request.mti()));
    for (n, v) in request.fields() {
        if !NEVER_ECHOED.contains(&n) && !TOTAL_FIELDS.contains(&n) && ![39, 66, 97].contains(&n) {
            out.set(n, v.clone())?;
        }
    }
    out.set_str(39, if in_balance { "00" } else { "95" })?;
    out.set_str(66, if in_balance { "1" } else { "2" })?;
    for (f, v) in TOTAL_FIELDS.iter().zip(host.values()) {
        out.set_num(*f, v, if *f < 80 { 10 } else { 16 })?;
    }
    let net = host.net_minor();
    let sign = if net >= 0 { 'C' } else { 'D' };
    out.set_str(97, &format!("{sign}{:016}", net.unsigned_abs()))?;
    conn.execute(
        "INSERT INTO terminal_batches (terminal_id, closed_at_ms, up_to_txn_id, in_balance, host_totals, terminal_totals)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![terminal.trim_end(), now_ms, up_to, in_balance, format!("{:?}", host.values()), format!("{:?}", sent.values())],
    )?;
    Ok(out)
}

/// The acquirer's rules: the registry snapshot for admission, the journal
/// (read through its queries) and clearing's own tables for batch close.
pub struct ClearingRules {
    snapshot: RwLock<Arc<Snapshot>>,
    conn: Mutex<Connection>,
    journal: Mutex<Box<dyn JournalQueries>>,
    /// The registry version the snapshot was read at.
    version: std::sync::atomic::AtomicI64,
}

/// How often a watching `ClearingRules` looks for registry changes.
pub const REGISTRY_POLL_MS: u64 = 500;

impl ClearingRules {
    /// Loads the registry from `conn` (already migrated) and keeps `conn`
    /// and `journal` for batch close.
    pub fn new(
        conn: Connection,
        journal: Box<dyn JournalQueries>,
    ) -> Result<ClearingRules, RegistryError> {
        let version = registry::version(&conn)?;
        let snapshot = Snapshot::load(&conn)?;
        Ok(ClearingRules {
            snapshot: RwLock::new(Arc::new(snapshot)),
            conn: Mutex::new(conn),
            journal: Mutex::new(journal),
            version: std::sync::atomic::AtomicI64::new(version),
        })
    }

    /// Re-reads the registry if it changed since the last read (after
    /// `clearing merchants load|block|unblock`). Returns whether it did.
    pub fn reload_if_changed(&self) -> Result<bool, RegistryError> {
        use std::sync::atomic::Ordering;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let now = registry::version(&conn)?;
        if now == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        let fresh = Arc::new(Snapshot::load(&conn)?);
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.version.store(now, Ordering::Release);
        Ok(true)
    }

    /// Starts a thread that applies registry changes every
    /// [`REGISTRY_POLL_MS`]; it ends when the last `Arc` is dropped.
    pub fn watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(REGISTRY_POLL_MS));
                let Some(rules) = weak.upgrade() else { return };
                match rules.reload_if_changed() {
                    Ok(true) => tracing::info!("merchant registry reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("merchant registry not reloaded: {e}"),
                }
            }
        });
    }
}

impl AcquirerRules for ClearingRules {
    fn admit(&self, terminal_id: Option<&[u8]>, merchant_id: Option<&[u8]>) -> Admission {
        let snap = self
            .snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        snap.admit(terminal_id, merchant_id)
    }

    fn reconcile(&self, request: &Message) -> Option<Message> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        match reconcile(&conn, &**journal, request, now_ms) {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!("batch close refused: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::schema::migrate_all;
    use crate::clearing::seed::{SeedRow, insert_rows, test_pan};
    use crate::journal::TxnOutcome;
    use crate::journal::crypto::Keyring;
    use crate::message::Mti;

    fn keyring() -> Arc<Keyring> {
        Arc::new(Keyring::from_env_value(&format!("k1:{}", hex::encode([3u8; 32]))).unwrap())
    }

    fn row<'a>(mti: &'a str, pc: &'a str, amount: u64, stan: u32, pan: &'a str) -> SeedRow<'a> {
        SeedRow {
            received_at_ms: 1_000,
            request_mti: mti,
            processing_code: pc,
            amount_minor: amount,
            stan,
            rrn: Some(format!("{stan:012}")),
            terminal_id: "TERM0001",
            merchant_id: "MERCHANT0000001",
            currency: "978",
            pan,
            outcome: TxnOutcome::Approved,
            response_code: "00",
            original_data: None,
            replacement_minor: None,
        }
    }

    fn close(
        debits: u64,
        debits_minor: u64,
        reversals: u64,
        reversed_minor: u64,
        credits: u64,
        credits_minor: u64,
    ) -> Message {
        let mut m = Message::new(Mti::from_digits(*b"0500").unwrap());
        m.set_str(3, "920000").unwrap();
        m.set_str(11, "000099").unwrap();
        m.set_str(41, "TERM0001").unwrap();
        for (f, v) in [(74, credits), (75, 0), (76, debits), (77, reversals)] {
            m.set_num(f, v, 10).unwrap();
        }
        for (f, v) in [
            (86, credits_minor),
            (87, 0),
            (88, debits_minor),
            (89, reversed_minor),
        ] {
            m.set_num(f, v, 16).unwrap();
        }
        m
    }

    #[test]
    fn batch_close_in_balance_then_out_of_balance() {
        let dir = crate::test_dir::TempDir::new("batch");
        let db = dir.join("j.db");
        let mut conn = Connection::open(&db).unwrap();
        migrate_all(&mut conn).unwrap();
        let k = keyring();
        let pan = test_pan("545400", 1);
        let rows = vec![
            row("0200", "000000", 1000, 1, &pan),
            row("0200", "000000", 2000, 2, &pan),
            SeedRow {
                replacement_minor: Some(1500),
                original_data: Some("0200000002".into()),
                rrn: None,
                ..row("0400", "000000", 2000, 3, &pan)
            },
            row("0200", "200000", 300, 4, &pan),
            SeedRow {
                outcome: TxnOutcome::Declined,
                response_code: "51",
                ..row("0200", "000000", 9999, 5, &pan)
            },
        ];
        insert_rows(&db, &k, rows).unwrap();
        let journal = crate::journal::open_queries(&db, crate::journal::Access::ReadOnly).unwrap();
        let answer = reconcile(&conn, &*journal, &close(2, 3000, 1, 500, 1, 300), 5).unwrap();
        assert_eq!(answer.mti().as_str(), "0510");
        assert_eq!(answer.get_str(39), Some("00"));
        assert_eq!(answer.get_str(66), Some("1"));
        // Net: 3000 - 500 - 300 = 2200, credited.
        assert_eq!(answer.get_str(97), Some("C0000000000002200"));
        assert_eq!(answer.get_str(41), Some("TERM0001"));
        // The next batch starts after the close: one new sale, the terminal claims two.
        insert_rows(&db, &k, [row("0200", "000000", 700, 6, &pan)]).unwrap();
        let answer = reconcile(&conn, &*journal, &close(2, 1400, 0, 0, 0, 0), 6).unwrap();
        assert_eq!(answer.get_str(39), Some("95"));
        assert_eq!(answer.get_str(66), Some("2"));
        assert_eq!(answer.get_u64(76), Some(1));
        assert_eq!(answer.get_u64(88), Some(700));
        let closes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM terminal_batches WHERE in_balance = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(closes, 1);
    }
}

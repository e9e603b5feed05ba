//! Synthetic journal rows and a matching registry, for the cut-off bench,
//! the tests and demonstrations: records appended through the journal's
//! store as the switch's writer appends them (the store seals, masks and
//! hashes the PAN), all test card numbers.

use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::registry::{Fee, MerchantEntry, RegistryFile};
use crate::journal::crypto::Keyring;
use crate::journal::record::{Accepted, Answered, Record};
use crate::journal::{JournalError, TxnOutcome, open_store};
use crate::message::sensitive::luhn_check_digit;

/// One journal row to insert; `None` columns stay NULL.
#[derive(Debug, Clone)]
pub struct SeedRow<'a> {
    pub received_at_ms: i64,
    pub request_mti: &'a str,
    pub processing_code: &'a str,
    pub amount_minor: u64,
    pub stan: u32,
    pub rrn: Option<String>,
    pub terminal_id: &'a str,
    pub merchant_id: &'a str,
    pub currency: &'a str,
    pub pan: &'a str,
    pub original_data: Option<String>,
    pub replacement_minor: Option<u64>,
    pub outcome: TxnOutcome,
    pub response_code: &'a str,
}

/// A Luhn-valid 16-digit test PAN from a 6-digit BIN and a serial.
pub fn test_pan(bin: &str, serial: u64) -> String {
    let body = format!("{bin}{:09}", serial % 1_000_000_000);
    let check = luhn_check_digit(body.as_bytes());
    format!("{body}{}", char::from(check))
}

/// Journal rows appended per group (one commit each).
const ROWS_PER_GROUP: usize = 4_096;

/// Appends rows to the journal at `db` through its store, as the switch's
/// writer would (PAN sealed, hashed and masked by the store), with ids
/// following the journal's last. The journal must not be in use by a
/// running switch (it numbers requests itself).
pub fn insert_rows<'a>(
    db: &Path,
    keyring: &Arc<Keyring>,
    rows: impl IntoIterator<Item = SeedRow<'a>>,
) -> Result<usize, JournalError> {
    let mut store = open_store(db, keyring.clone())?;
    let first = store.recover()?.next_txn_id;
    let mut n = 0;
    let mut group = Vec::with_capacity(2 * ROWS_PER_GROUP);
    for (id, r) in (first..).zip(rows) {
        group.extend(records(id, &r));
        n += 1;
        if group.len() >= 2 * ROWS_PER_GROUP {
            store.append(&group)?;
            group.clear();
        }
    }
    if !group.is_empty() {
        store.append(&group)?;
    }
    Ok(n)
}

/// A seed row as the records the switch journals: accepted, then answered.
fn records(id: u64, r: &SeedRow<'_>) -> [Record; 2] {
    let text = |v: &str| Some(v.to_string());
    let accepted = Accepted {
        id,
        received_at_ms: r.received_at_ms,
        acquirer: "seed".into(),
        request_mti: r.request_mti.into(),
        processing_code: text(r.processing_code),
        amount_minor: Some(r.amount_minor as i64),
        stan: Some(format!("{:06}", r.stan)),
        local_time: text("120000"),
        local_date: text("1123"),
        mcc: text("5411"),
        pos_entry_mode: text("051"),
        rrn: r.rrn.clone(),
        terminal_id: text(r.terminal_id),
        merchant_id: text(r.merchant_id),
        currency: text(r.currency),
        original_data: r.original_data.clone(),
        replacement_amount: r.replacement_minor.map(|v| v as i64),
        pan: Some(Zeroizing::new(r.pan.as_bytes().to_vec())),
        ..Accepted::default()
    };
    let approval = (r.response_code == "00").then(|| format!("A{:05}", r.stan % 100_000));
    let answered = Answered {
        id,
        response_code: text(r.response_code),
        approval_code: approval,
        outcome: r.outcome,
        response_at_ms: Some(r.received_at_ms),
        sent_at_ms: Some(r.received_at_ms),
    };
    [
        Record::Accepted(Box::new(accepted)),
        Record::Answered(answered),
    ]
}

/// A registry of `merchants` merchants with `terminals_each` terminals
/// each: merchant `MERCH{i:010}`, terminals `T{i:03}{j:04}`.
pub fn registry(merchants: usize, terminals_each: usize) -> RegistryFile {
    let mut plans = std::collections::HashMap::new();
    plans.insert(
        "standard".to_string(),
        [
            (
                "mastercard",
                Fee {
                    mdr_bp: 150,
                    fixed_minor: 10,
                },
            ),
            (
                "visa",
                Fee {
                    mdr_bp: 175,
                    fixed_minor: 10,
                },
            ),
            (
                "other",
                Fee {
                    mdr_bp: 250,
                    fixed_minor: 0,
                },
            ),
        ]
        .into_iter()
        .map(|(b, f)| (b.to_string(), f))
        .collect(),
    );
    RegistryFile {
        fee_plans: plans,
        merchants: (0..merchants)
            .map(|i| MerchantEntry {
                id: format!("MERCH{i:010}"),
                name: format!("SEED SHOP {i}"),
                location: "BERLIN DE".into(),
                mcc: "5411".into(),
                settlement_account: format!("DE00SEED{i:010}"),
                fee_plan: "standard".into(),
                terminals: (0..terminals_each)
                    .map(|j| format!("T{i:03}{j:04}"))
                    .collect(),
                blocked: false,
            })
            .collect(),
    }
}

/// `count` approved 0200 purchases spread over the registry's terminals,
/// received within the day starting at `day_start_ms`.
pub fn approved_purchases(
    db: &Path,
    keyring: &Arc<Keyring>,
    registry: &RegistryFile,
    count: usize,
    day_start_ms: i64,
) -> Result<u64, JournalError> {
    let terminals: Vec<(&str, &str)> = registry
        .merchants
        .iter()
        .flat_map(|m| m.terminals.iter().map(move |t| (t.as_str(), m.id.as_str())))
        .collect();
    let pans: Vec<String> = (0..64)
        .map(|i| test_pan(if i % 2 == 0 { "545400" } else { "476173" }, i))
        .collect();
    let mut sum = 0u64;
    let rows = (0..count).map(|i| {
        let (terminal_id, merchant_id) = terminals[i % terminals.len()];
        let amount = 100 + (i as u64 * 7919) % 100_000;
        sum += amount;
        SeedRow {
            received_at_ms: day_start_ms + (i as i64 % 86_000_000),
            request_mti: "0200",
            processing_code: "000000",
            amount_minor: amount,
            stan: (i % 999_999) as u32 + 1,
            rrn: Some(format!("{i:012}")),
            terminal_id,
            merchant_id,
            currency: "978",
            pan: &pans[i % pans.len()],
            original_data: None,
            replacement_minor: None,
            outcome: TxnOutcome::Approved,
            response_code: "00",
        }
    });
    insert_rows(db, keyring, rows)?;
    Ok(sum)
}

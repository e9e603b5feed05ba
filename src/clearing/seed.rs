//! Synthetic journal rows and a matching registry, for the cut-off bench,
//! the tests and demonstrations: rows as the switch's journal writer fills
//! them (PAN sealed, masked and hashed), all test card numbers.

use rusqlite::{Connection, params};

use super::registry::{Fee, MerchantEntry, RegistryFile};
use crate::journal::crypto::Keyring;
use crate::message::sensitive::{luhn_check_digit, mask_pan};

/// One journal row to insert; `None` columns stay NULL.
#[derive(Debug, Clone, Default)]
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
    pub outcome: &'a str,
    pub response_code: &'a str,
}

/// A Luhn-valid 16-digit test PAN from a 6-digit BIN and a serial.
pub fn test_pan(bin: &str, serial: u64) -> String {
    let body = format!("{bin}{:09}", serial % 1_000_000_000);
    let check = luhn_check_digit(body.as_bytes());
    format!("{body}{}", char::from(check))
}

/// Inserts rows in one transaction (ids follow insertion order).
pub fn insert_rows<'a>(
    conn: &mut Connection,
    keyring: &Keyring,
    rows: impl IntoIterator<Item = SeedRow<'a>>,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let mut n = 0;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO transactions (received_at_ms, acquirer, request_mti, processing_code, amount_minor, stan,
                local_time, local_date, mcc, pos_entry_mode, rrn, terminal_id, merchant_id, currency, original_data,
                replacement_amount, pan_key_id, pan_sealed, pan_hmac, pan_masked, response_code, approval_code,
                outcome, state)
             VALUES (?1, 'seed', ?2, ?3, ?4, ?5, '120000', '1123', '5411', '051', ?6, ?7, ?8, ?9, ?10, ?11,
                ?12, ?13, ?14, ?15, ?16, ?17, ?18, 'answered')",
        )?;
        for r in rows {
            let sealed = keyring.seal(b"pan", r.pan.as_bytes());
            let approval = (r.response_code == "00").then(|| format!("A{:05}", r.stan % 100_000));
            stmt.execute(params![
                r.received_at_ms,
                r.request_mti,
                r.processing_code,
                r.amount_minor as i64,
                format!("{:06}", r.stan),
                r.rrn,
                r.terminal_id,
                r.merchant_id,
                r.currency,
                r.original_data,
                r.replacement_minor.map(|v| v as i64),
                sealed.key_id,
                sealed.blob,
                &keyring.pan_hash(r.pan.as_bytes())[..],
                mask_pan(r.pan.as_bytes()),
                r.response_code,
                approval,
                r.outcome,
            ])?;
            n += 1;
        }
    }
    tx.commit()?;
    Ok(n)
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
    conn: &mut Connection,
    keyring: &Keyring,
    registry: &RegistryFile,
    count: usize,
    day_start_ms: i64,
) -> rusqlite::Result<u64> {
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
            outcome: "approved",
            response_code: "00",
        }
    });
    insert_rows(conn, keyring, rows)?;
    Ok(sum)
}

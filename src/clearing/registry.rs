//! Merchants, their terminals and fee plans, kept in the journal's database
//! (component "clearing"), loaded from a TOML file, and an in-memory
//! snapshot the switch consults on every request (`AcquirerRules::admit`).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, params};
use serde::Deserialize;

use crate::switch::hooks::Admission;

/// Limits on a registry file.
pub const REGISTRY_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Basis points above 100% make no sense for a discount rate.
pub const MDR_BP_MAX: u32 = 10_000;

/// Why a registry file or table is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("registry file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("merchant {merchant}: {reason}")]
    Merchant { merchant: String, reason: String },
    #[error("fee plan {plan}: {reason}")]
    FeePlan { plan: String, reason: String },
    #[error("no terminal {0}")]
    UnknownTerminal(String),
    #[error("no merchant {0}")]
    UnknownMerchant(String),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A card brand, by the PAN's leading digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Brand {
    Mastercard,
    Visa,
    Other,
}

impl Brand {
    /// Mastercard 51-55 and 2221-2720, Visa 4, anything else Other.
    pub fn of_pan(pan: &[u8]) -> Brand {
        let lead = |n: usize| {
            pan.get(..n)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .map(|d| d.iter().fold(0u32, |a, b| a * 10 + u32::from(b - b'0')))
        };
        match (lead(1), lead(2), lead(4)) {
            (Some(4), _, _) => Brand::Visa,
            (_, Some(51..=55), _) => Brand::Mastercard,
            (_, _, Some(2221..=2720)) => Brand::Mastercard,
            _ => Brand::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Mastercard => "mastercard",
            Brand::Visa => "visa",
            Brand::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Brand> {
        match text {
            "mastercard" => Some(Brand::Mastercard),
            "visa" => Some(Brand::Visa),
            "other" => Some(Brand::Other),
            _ => None,
        }
    }
}

/// A fee for one brand: a rate in basis points of the amount, plus a fixed
/// amount per transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    pub mdr_bp: u32,
    pub fixed_minor: u64,
}

/// The registry file (TOML):
///
/// ```toml
/// [fee_plans.standard]
/// mastercard = { mdr_bp = 150, fixed_minor = 10 }
/// visa = { mdr_bp = 175, fixed_minor = 10 }
/// other = { mdr_bp = 250, fixed_minor = 0 }
///
/// [[merchants]]
/// id = "MERCHANT0000001"
/// name = "CORNER GROCERY"
/// location = "BERLIN DE"
/// mcc = "5411"
/// settlement_account = "DE89370400440532013000"
/// fee_plan = "standard"
/// terminals = ["TERM0001", "TERM0002"]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    #[serde(default)]
    pub fee_plans: HashMap<String, HashMap<String, Fee>>,
    #[serde(default)]
    pub merchants: Vec<MerchantEntry>,
}

/// One merchant of a registry file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantEntry {
    pub id: String,
    pub name: String,
    pub location: String,
    pub mcc: String,
    pub settlement_account: String,
    pub fee_plan: String,
    pub terminals: Vec<String>,
    #[serde(default)]
    pub blocked: bool,
}

fn check_text(what: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let ok = (min..=max).contains(&value.len()) && value.bytes().all(|b| (0x20..0x7F).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} must be {min}-{max} printable ASCII characters"
        ))
    }
}

impl RegistryFile {
    /// Reads and checks a registry file.
    pub fn load(path: &Path) -> Result<RegistryFile, RegistryError> {
        let fail = |reason: String| RegistryError::File {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if meta.len() > REGISTRY_FILE_BYTES_MAX {
            return Err(fail(format!("larger than {REGISTRY_FILE_BYTES_MAX} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: RegistryFile = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        file.check()?;
        Ok(file)
    }

    /// Checks every entry (sizes of the ISO fields they fill, known plans).
    pub fn check(&self) -> Result<(), RegistryError> {
        for (plan, fees) in &self.fee_plans {
            let fail = |reason: String| RegistryError::FeePlan {
                plan: plan.clone(),
                reason,
            };
            for (brand, fee) in fees {
                Brand::parse(brand).ok_or_else(|| {
                    fail(format!("unknown brand '{brand}' (mastercard, visa, other)"))
                })?;
                if fee.mdr_bp > MDR_BP_MAX {
                    return Err(fail(format!("{brand}: mdr_bp above {MDR_BP_MAX}")));
                }
            }
        }
        for m in &self.merchants {
            let fail = |reason: String| RegistryError::Merchant {
                merchant: m.id.clone(),
                reason,
            };
            check_text("id (DE42)", &m.id, 1, 15).map_err(fail)?;
            check_text("name", &m.name, 1, 40).map_err(fail)?;
            check_text("location", &m.location, 1, 50).map_err(fail)?;
            check_text("settlement_account", &m.settlement_account, 1, 34).map_err(fail)?;
            if m.mcc.len() != 4 || !m.mcc.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail("mcc must be 4 digits".into()));
            }
            if !self.fee_plans.contains_key(&m.fee_plan) {
                return Err(fail(format!("fee plan '{}' is not defined", m.fee_plan)));
            }
            for t in &m.terminals {
                check_text("terminal id (DE41)", t, 1, 8).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Inserts or updates every entry in one transaction (an update keeps
    /// nothing of the old entry; terminals not listed stay as they were).
    pub fn store(&self, conn: &mut Connection) -> Result<(usize, usize), RegistryError> {
        let tx = conn.transaction()?;
        let mut terminals = 0;
        {
            let mut plan = tx.prepare(
                "INSERT INTO fee_plans (plan, brand, mdr_bp, fixed_minor) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (plan, brand) DO UPDATE SET mdr_bp = excluded.mdr_bp, fixed_minor = excluded.fixed_minor",
            )?;
            for (name, fees) in &self.fee_plans {
                for (brand, fee) in fees {
                    plan.execute(params![name, brand, fee.mdr_bp, fee.fixed_minor as i64])?;
                }
            }
            let mut merchant = tx.prepare(
                "INSERT INTO merchants (merchant_id, name, location, mcc, settlement_account, fee_plan, blocked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (merchant_id) DO UPDATE SET name = excluded.name, location = excluded.location,
                   mcc = excluded.mcc, settlement_account = excluded.settlement_account,
                   fee_plan = excluded.fee_plan, blocked = excluded.blocked",
            )?;
            let mut terminal = tx.prepare(
                "INSERT INTO terminals (terminal_id, merchant_id) VALUES (?1, ?2)
                 ON CONFLICT (terminal_id) DO UPDATE SET merchant_id = excluded.merchant_id",
            )?;
            for m in &self.merchants {
                merchant.execute(params![
                    m.id,
                    m.name,
                    m.location,
                    m.mcc,
                    m.settlement_account,
                    m.fee_plan,
                    m.blocked
                ])?;
                for t in &m.terminals {
                    terminal.execute(params![t, m.id])?;
                    terminals += 1;
                }
            }
        }
        bump_version(&tx)?;
        tx.commit()?;
        Ok((self.merchants.len(), terminals))
    }
}

fn bump_version(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE registry_version SET version = version + 1 WHERE id = 1",
        [],
    )
    .map(|_| ())
}

/// The registry's change counter.
pub fn version(conn: &Connection) -> Result<i64, RegistryError> {
    Ok(conn.query_row(
        "SELECT version FROM registry_version WHERE id = 1",
        [],
        |r| r.get(0),
    )?)
}

/// Blocks or unblocks a terminal.
pub fn set_terminal_blocked(
    conn: &Connection,
    terminal: &str,
    blocked: bool,
) -> Result<(), RegistryError> {
    let n = conn.execute(
        "UPDATE terminals SET blocked = ?2 WHERE terminal_id = ?1",
        params![terminal, blocked],
    )?;
    if n == 0 {
        return Err(RegistryError::UnknownTerminal(terminal.to_string()));
    }
    Ok(bump_version(conn)?)
}

/// Blocks or unblocks a merchant (and so all its terminals).
pub fn set_merchant_blocked(
    conn: &Connection,
    merchant: &str,
    blocked: bool,
) -> Result<(), RegistryError> {
    let n = conn.execute(
        "UPDATE merchants SET blocked = ?2 WHERE merchant_id = ?1",
        params![merchant, blocked],
    )?;
    if n == 0 {
        return Err(RegistryError::UnknownMerchant(merchant.to_string()));
    }
    Ok(bump_version(conn)?)
}

/// A merchant as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub location: String,
    pub mcc: String,
    pub settlement_account: String,
    pub fee_plan: String,
    pub blocked: bool,
    pub terminals: Vec<(String, bool)>,
}

/// Every merchant with its terminals, ordered by id.
pub fn merchants(conn: &Connection) -> Result<Vec<Merchant>, RegistryError> {
    let mut out: Vec<Merchant> = conn
        .prepare(
            "SELECT merchant_id, name, location, mcc, settlement_account, fee_plan, blocked
             FROM merchants ORDER BY merchant_id",
        )?
        .query_map([], |r| {
            Ok(Merchant {
                id: r.get(0)?,
                name: r.get(1)?,
                location: r.get(2)?,
                mcc: r.get(3)?,
                settlement_account: r.get(4)?,
                fee_plan: r.get(5)?,
                blocked: r.get(6)?,
                terminals: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let index: HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    let mut stmt = conn
        .prepare("SELECT terminal_id, merchant_id, blocked FROM terminals ORDER BY terminal_id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
        ))
    })?;
    for row in rows {
        let (t, m, blocked) = row?;
        if let Some(&i) = index.get(&m) {
            out[i].terminals.push((t, blocked));
        }
    }
    Ok(out)
}

/// Fee plans: (plan, brand) -> fee.
pub fn fee_plans(conn: &Connection) -> Result<HashMap<(String, Brand), Fee>, RegistryError> {
    let mut stmt = conn.prepare("SELECT plan, brand, mdr_bp, fixed_minor FROM fee_plans")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (plan, brand, mdr_bp, fixed) = row?;
        let brand = Brand::parse(&brand).ok_or_else(|| RegistryError::FeePlan {
            plan: plan.clone(),
            reason: format!("unknown brand '{brand}'"),
        })?;
        out.insert(
            (plan, brand),
            Fee {
                mdr_bp,
                fixed_minor: fixed.max(0) as u64,
            },
        );
    }
    Ok(out)
}

/// Who a terminal belongs to and whether it may transact.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TerminalEntry {
    merchant_id: String,
    terminal_blocked: bool,
    merchant_blocked: bool,
}

/// The registry in memory, for the switch's hot path.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    terminals: HashMap<Vec<u8>, TerminalEntry>,
}

/// DE41 / DE42 are fixed-width and space-padded.
fn trim(id: &[u8]) -> &[u8] {
    let end = id.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &id[..end]
}

impl Snapshot {
    /// Reads the registry tables.
    pub fn load(conn: &Connection) -> Result<Snapshot, RegistryError> {
        let mut stmt = conn.prepare(
            "SELECT t.terminal_id, t.merchant_id, t.blocked, COALESCE(m.blocked, 1)
             FROM terminals t LEFT JOIN merchants m ON m.merchant_id = t.merchant_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                TerminalEntry {
                    merchant_id: r.get(1)?,
                    terminal_blocked: r.get(2)?,
                    merchant_blocked: r.get(3)?,
                },
            ))
        })?;
        let mut terminals = HashMap::new();
        for row in rows {
            let (t, entry) = row?;
            terminals.insert(t.into_bytes(), entry);
        }
        Ok(Snapshot { terminals })
    }

    /// Unknown or blocked terminal: 58; blocked merchant, or a DE42 that is
    /// not the terminal's merchant: 03.
    pub fn admit(&self, terminal_id: Option<&[u8]>, merchant_id: Option<&[u8]>) -> Admission {
        let Some(entry) = terminal_id.and_then(|t| self.terminals.get(trim(t))) else {
            return Admission::Decline("58");
        };
        if entry.terminal_blocked {
            return Admission::Decline("58");
        }
        if entry.merchant_blocked {
            return Admission::Decline("03");
        }
        match merchant_id {
            Some(m) if trim(m) != entry.merchant_id.as_bytes() => Admission::Decline("03"),
            _ => Admission::Admit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[fee_plans.standard]
mastercard = { mdr_bp = 150, fixed_minor = 10 }
other = { mdr_bp = 250, fixed_minor = 0 }

[[merchants]]
id = "MERCHANT0000001"
name = "CORNER GROCERY"
location = "BERLIN DE"
mcc = "5411"
settlement_account = "DE89370400440532013000"
fee_plan = "standard"
terminals = ["TERM0001", "TERM0002"]

[[merchants]]
id = "MERCHANT0000002"
name = "CLOSED SHOP"
location = "PARIS FR"
mcc = "5999"
settlement_account = "FR7630006000011234567890189"
fee_plan = "standard"
terminals = ["TERM0009"]
blocked = true
"#;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate_all(&mut conn).unwrap();
        let file: RegistryFile = toml::from_str(FILE).unwrap();
        file.check().unwrap();
        assert_eq!(file.store(&mut conn).unwrap(), (2, 3));
        conn
    }

    #[test]
    fn admits_known_terminals_and_declines_unknown_or_blocked() {
        let conn = db();
        let snap = Snapshot::load(&conn).unwrap();
        assert_eq!(
            snap.admit(Some(b"TERM0001"), Some(b"MERCHANT0000001")),
            Admission::Admit
        );
        assert_eq!(snap.admit(Some(b"TERM0002"), None), Admission::Admit);
        assert_eq!(
            snap.admit(Some(b"TERM7777"), None),
            Admission::Decline("58")
        );
        assert_eq!(snap.admit(None, None), Admission::Decline("58"));
        assert_eq!(
            snap.admit(Some(b"TERM0009"), None),
            Admission::Decline("03")
        );
        assert_eq!(
            snap.admit(Some(b"TERM0001"), Some(b"MERCHANT0000002")),
            Admission::Decline("03")
        );
        let before = version(&conn).unwrap();
        set_terminal_blocked(&conn, "TERM0002", true).unwrap();
        assert_eq!(version(&conn).unwrap(), before + 1);
        let snap = Snapshot::load(&conn).unwrap();
        assert_eq!(
            snap.admit(Some(b"TERM0002"), None),
            Admission::Decline("58")
        );
        assert!(matches!(
            set_terminal_blocked(&conn, "NOPE", true),
            Err(RegistryError::UnknownTerminal(_))
        ));
        set_merchant_blocked(&conn, "MERCHANT0000002", false).unwrap();
        assert_eq!(
            Snapshot::load(&conn)
                .unwrap()
                .admit(Some(b"TERM0009"), None),
            Admission::Admit
        );
        let all = merchants(&conn).unwrap();
        assert_eq!(
            all[0].terminals,
            vec![
                ("TERM0001".to_string(), false),
                ("TERM0002".to_string(), true)
            ]
        );
        let plans = fee_plans(&conn).unwrap();
        assert_eq!(
            plans[&("standard".to_string(), Brand::Mastercard)],
            Fee {
                mdr_bp: 150,
                fixed_minor: 10
            }
        );
    }

    #[test]
    fn refuses_bad_entries_with_the_reason() {
        let bad = FILE.replace("\"5411\"", "\"54A1\"");
        let file: RegistryFile = toml::from_str(&bad).unwrap();
        let err = file.check().unwrap_err().to_string();
        assert!(
            err.contains("MERCHANT0000001") && err.contains("mcc"),
            "{err}"
        );
        let bad = FILE.replace(
            "fee_plan = \"standard\"\nterminals = [\"TERM0009\"]",
            "fee_plan = \"gold\"\nterminals = [\"TERM0009\"]",
        );
        let err = toml::from_str::<RegistryFile>(&bad)
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("gold"), "{err}");
        assert_eq!(Brand::of_pan(b"5454000000000001"), Brand::Mastercard);
        assert_eq!(Brand::of_pan(b"2221000000000009"), Brand::Mastercard);
        assert_eq!(Brand::of_pan(b"4761730000000001"), Brand::Visa);
        assert_eq!(Brand::of_pan(b"6011000000000004"), Brand::Other);
    }
}

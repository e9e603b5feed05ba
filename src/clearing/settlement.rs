//! Merchant settlement: per merchant and currency, the count, the gross
//! amount presented, the fee (merchant discount rate plus a fixed fee per
//! transaction, by card brand) and the net amount to pay. Integer minor
//! units only.
//!
//! Rounding rule: the rate part of the fee is computed per transaction as
//! `amount * mdr_bp / 10000` rounded half up to the minor unit (so 0.5 of a
//! cent rounds up, 0.4999 down); the fixed fee is added per transaction;
//! a merchant's fee is the sum of its transactions' fees. Net = gross - fee
//! and may be negative (fixed fees above tiny amounts): it is reported as
//! is, never clamped, so the report always adds up.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::registry::Fee;

/// The rate part of one transaction's fee, rounded half up.
pub fn rate_fee(amount_minor: u64, mdr_bp: u32) -> u64 {
    let exact = u128::from(amount_minor) * u128::from(mdr_bp);
    ((exact + 5_000) / 10_000) as u64
}

/// One transaction's whole fee.
pub fn transaction_fee(amount_minor: u64, fee: Fee) -> u64 {
    rate_fee(amount_minor, fee.mdr_bp).saturating_add(fee.fixed_minor)
}

/// One line of the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub settlement_account: String,
    pub count: u64,
    pub gross_minor: u64,
    pub fee_minor: u64,
}

impl Line {
    pub fn net_minor(&self) -> i128 {
        i128::from(self.gross_minor) - i128::from(self.fee_minor)
    }
}

/// The settlement of one clearing file, keyed by (merchant id, currency).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    pub lines: BTreeMap<(String, String), Line>,
}

impl Settlement {
    /// Adds one presented transaction.
    pub fn add(
        &mut self,
        merchant_id: &str,
        account: &str,
        currency: &str,
        amount_minor: u64,
        fee: Fee,
    ) {
        let line = self
            .lines
            .entry((merchant_id.to_string(), currency.to_string()))
            .or_insert_with(|| Line {
                settlement_account: account.to_string(),
                ..Line::default()
            });
        line.count += 1;
        line.gross_minor += amount_minor;
        line.fee_minor += transaction_fee(amount_minor, fee);
    }

    /// Adds transactions already summed (count, gross, fee) to a line.
    pub fn add_line(
        &mut self,
        merchant_id: &str,
        account: &str,
        currency: &str,
        count: u64,
        gross_minor: u64,
        fee_minor: u64,
    ) {
        let line = self
            .lines
            .entry((merchant_id.to_string(), currency.to_string()))
            .or_insert_with(|| Line {
                settlement_account: account.to_string(),
                ..Line::default()
            });
        line.count += count;
        line.gross_minor += gross_minor;
        line.fee_minor += fee_minor;
    }

    /// Total count and gross over every line (equal to the clearing file's
    /// presentment count and PDS 0301).
    pub fn totals(&self) -> (u64, u64) {
        self.lines
            .values()
            .fold((0, 0), |(c, g), l| (c + l.count, g + l.gross_minor))
    }

    /// The CSV report.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "merchant_id,currency,settlement_account,count,gross_minor,fee_minor,net_minor\n",
        );
        for ((merchant, currency), l) in &self.lines {
            let _ = writeln!(
                out,
                "{merchant},{currency},{},{},{},{},{}",
                l.settlement_account,
                l.count,
                l.gross_minor,
                l.fee_minor,
                l.net_minor()
            );
        }
        out
    }

    /// The plain-text summary: one line per merchant and currency, then the
    /// totals per currency and over the file.
    pub fn summary(&self, title: &str) -> String {
        let mut out = format!("{title}\n\n");
        let _ = writeln!(
            out,
            "{:<15} {:>3} {:>8} {:>16} {:>14} {:>16}",
            "merchant", "cur", "count", "gross", "fee", "net"
        );
        let mut per_currency: BTreeMap<&str, (u64, u64, u64, i128)> = BTreeMap::new();
        for ((merchant, currency), l) in &self.lines {
            let _ = writeln!(
                out,
                "{merchant:<15} {currency:>3} {:>8} {:>16} {:>14} {:>16}",
                l.count,
                l.gross_minor,
                l.fee_minor,
                l.net_minor()
            );
            let t = per_currency.entry(currency).or_default();
            t.0 += l.count;
            t.1 += l.gross_minor;
            t.2 += l.fee_minor;
            t.3 += l.net_minor();
        }
        out.push('\n');
        for (currency, (c, g, f, n)) in &per_currency {
            let _ = writeln!(
                out,
                "{:<15} {currency:>3} {c:>8} {g:>16} {f:>14} {n:>16}",
                "total"
            );
        }
        let (count, gross) = self.totals();
        let _ = writeln!(
            out,
            "\nfile total: {count} presentments, DE4 sum {gross} (minor units, all currencies)"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rate_fee_rounds_half_up_per_transaction() {
        // 1.50% of 1.00: exactly 1.5 cents -> 2.
        assert_eq!(rate_fee(100, 150), 2);
        // 1.50% of 0.99: 1.485 -> 1.
        assert_eq!(rate_fee(99, 150), 1);
        // 1.75% of 2.00: 3.5 -> 4; of 1.99: 3.4825 -> 3.
        assert_eq!(rate_fee(200, 175), 4);
        assert_eq!(rate_fee(199, 175), 3);
        assert_eq!(rate_fee(0, 150), 0);
        assert_eq!(rate_fee(u64::MAX, 10_000), u64::MAX);
        assert_eq!(
            transaction_fee(
                100,
                Fee {
                    mdr_bp: 150,
                    fixed_minor: 10
                }
            ),
            12
        );
    }

    #[test]
    fn per_transaction_rounding_differs_from_rounding_the_sum() {
        // Two transactions of 1.00 at 1.50%: 2 + 2 = 4, not round(3.0) = 3.
        let fee = Fee {
            mdr_bp: 150,
            fixed_minor: 0,
        };
        let mut s = Settlement::default();
        s.add("M1", "ACC", "978", 100, fee);
        s.add("M1", "ACC", "978", 100, fee);
        let line = &s.lines[&("M1".to_string(), "978".to_string())];
        assert_eq!(
            (
                line.count,
                line.gross_minor,
                line.fee_minor,
                line.net_minor()
            ),
            (2, 200, 4, 196)
        );
        // A fixed fee above the amount makes the net negative, not zero.
        s.add(
            "M2",
            "ACC2",
            "978",
            5,
            Fee {
                mdr_bp: 0,
                fixed_minor: 10,
            },
        );
        assert_eq!(
            s.lines[&("M2".to_string(), "978".to_string())].net_minor(),
            -5
        );
        assert!(s.csv().contains("M2,978,ACC2,1,5,10,-5\n"));
        assert!(
            s.summary("t")
                .contains("file total: 3 presentments, DE4 sum 205")
        );
    }

    proptest! {
        #[test]
        fn lines_add_up_and_fees_match_exact_arithmetic(
            txns in proptest::collection::vec((0usize..3, 0usize..2, 0u64..10_000_000, 0u32..500, 0u64..100), 0..200)
        ) {
            let mut s = Settlement::default();
            let mut gross = 0u64;
            for (m, c, amount, bp, fixed) in &txns {
                s.add(&format!("M{m}"), "A", ["978", "840"][*c], *amount, Fee { mdr_bp: *bp, fixed_minor: *fixed });
                gross += amount;
                // Half up: fee*10000 is within (exact - 5000, exact + 5000].
                let f = rate_fee(*amount, *bp) as i128 * 10_000;
                let exact = i128::from(*amount) * i128::from(*bp);
                prop_assert!(f - exact > -5_000 && f - exact <= 5_000);
            }
            prop_assert_eq!(s.totals(), (txns.len() as u64, gross));
            let net: i128 = s.lines.values().map(Line::net_minor).sum();
            let fee: u64 = s.lines.values().map(|l| l.fee_minor).sum();
            prop_assert_eq!(net, i128::from(gross) - i128::from(fee));
        }
    }
}

//! Field-by-field comparison of a captured response with a replayed one.
//! Volatile fields (times, STAN, RRN, authorization code: they change from
//! run to run by design) are left out by a per-run rule. Values are shown
//! as `decode --json` shows them: card data masked.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::message::sensitive::show_field;
use crate::message::{Message, Spec};

/// Fields ignored unless the run says otherwise: DE7 transmission time,
/// DE11 STAN, DE12/DE13 local time and date, DE37 RRN, DE38 auth code.
pub const VOLATILE_DEFAULT: &[u16] = &[7, 11, 12, 13, 37, 38];

/// One field that differs; `None` where the field is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    /// `mti` or the field number.
    pub field: String,
    pub captured: Option<String>,
    pub replayed: Option<String>,
}

/// A volatile-field rule: field numbers separated by commas, or `none`.
pub fn parse_volatile(rule: &str) -> Result<BTreeSet<u16>, String> {
    let rule = rule.trim();
    if rule.eq_ignore_ascii_case("none") || rule.is_empty() {
        return Ok(BTreeSet::new());
    }
    rule.split(',')
        .map(|t| {
            let t = t.trim();
            t.parse::<u16>()
                .ok()
                .filter(|n| (2..=192).contains(n))
                .ok_or_else(|| format!("'{t}' is not a field number 2-192"))
        })
        .collect()
}

/// The differences outside `volatile`, MTI first, then by field number.
pub fn diff(
    spec: &Spec,
    captured: &Message,
    replayed: &Message,
    volatile: &BTreeSet<u16>,
) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    if captured.mti() != replayed.mti() {
        out.push(FieldDiff {
            field: "mti".into(),
            captured: Some(captured.mti().to_string()),
            replayed: Some(replayed.mti().to_string()),
        });
    }
    let numbers: BTreeSet<u16> = captured
        .fields()
        .chain(replayed.fields())
        .map(|(n, _)| n)
        .filter(|n| !volatile.contains(n))
        .collect();
    for n in numbers {
        let (a, b) = (captured.get(n), replayed.get(n));
        if a != b {
            out.push(FieldDiff {
                field: n.to_string(),
                captured: a.map(|v| show(spec, n, v)),
                replayed: b.map(|v| show(spec, n, v)),
            });
        }
    }
    out
}

/// A value for display, as `decode --json` shows it: card data masked,
/// inside TLV fields too; hex when binary.
pub fn show(spec: &Spec, n: u16, value: &[u8]) -> String {
    show_field(spec.field(n), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(mti: &str, fields: &[(u16, &str)]) -> Message {
        let mut m = Message::new(mti.parse().expect("mti"));
        for (n, v) in fields {
            m.set_str(*n, v).expect("set");
        }
        m
    }

    #[test]
    fn volatile_fields_are_ignored_and_pans_masked() {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let a = msg(
            "0110",
            &[(2, "4761739001010119"), (11, "000001"), (39, "00")],
        );
        let b = msg(
            "0110",
            &[
                (2, "4761739001010127"),
                (11, "000002"),
                (39, "51"),
                (44, "X"),
            ],
        );
        let volatile = parse_volatile("7,11").expect("rule");
        let d = diff(&spec, &a, &b, &volatile);
        let fields: Vec<&str> = d.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, vec!["2", "39", "44"]);
        assert_eq!(d[0].captured.as_deref(), Some("476173******0119"));
        assert_eq!(d[2].captured, None);
        assert!(diff(&spec, &a, &a, &BTreeSet::new()).is_empty());
        let d = diff(
            &spec,
            &a,
            &msg(
                "0130",
                &[(2, "4761739001010119"), (11, "000001"), (39, "00")],
            ),
            &volatile,
        );
        assert_eq!(d[0].field, "mti");
        assert_eq!(parse_volatile("none").expect("none"), BTreeSet::new());
        assert!(parse_volatile("7,x").is_err());
        assert!(parse_volatile("1").is_err());
    }
}

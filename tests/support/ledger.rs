//! The money ledger of a crash run, by RRN, from the three sides' own
//! records: the acquirer's (`cardswitch load --record`), the issuer's
//! (`cardswitch issuer-sim --record`) and the journal's rows. Each side's
//! net outcome of a request is "approved and kept" or not; a split is a
//! request whose sides disagree.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

/// MTIs of original requests (authorizations and financial requests).
const ORIGINALS: &[&str] = &["0100", "0101", "0200", "0201"];
/// MTIs of reversals, requests and advices, first sends and repeats.
const REVERSALS: &[&str] = &["0400", "0401", "0420", "0421"];

pub fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

/// What the terminals saw.
#[derive(Debug, Default)]
pub struct AcquirerSide {
    /// Approved in time and not reversed by the terminal: goods handed over.
    pub kept: HashSet<String>,
    /// Timed out (no answer in time, or the connection ended first).
    pub timed_out: HashSet<String>,
    /// Reversals the terminal sent, and those the switch acknowledged.
    pub reversal_sent: HashSet<String>,
    pub reversal_answered: HashSet<String>,
}

impl AcquirerSide {
    pub fn add_record(&mut self, path: &Path) {
        let mut approved_in_time = HashSet::new();
        for line in read_lines(path) {
            let rrn = text(&line, "rrn").to_string();
            match text(&line, "kind") {
                "response" if text(&line, "response_code") == "00" && line["late"] == false => {
                    approved_in_time.insert(rrn);
                }
                "timed_out" => {
                    self.timed_out.insert(rrn);
                }
                "reversal" => match text(&line, "event") {
                    "sent" => {
                        self.reversal_sent.insert(rrn);
                    }
                    "answered" => {
                        self.reversal_answered.insert(rrn);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        self.kept.extend(
            approved_in_time
                .into_iter()
                .filter(|rrn| !self.timed_out.contains(rrn)),
        );
    }

    /// Timed-out requests whose reversal the switch never acknowledged.
    pub fn unsettled(&self) -> Vec<&String> {
        self.timed_out
            .iter()
            .filter(|rrn| !self.reversal_answered.contains(*rrn))
            .collect()
    }
}

/// What the issuer decided.
#[derive(Debug, Default)]
pub struct IssuerSide {
    pub approved: HashSet<String>,
    pub reversed: HashSet<String>,
    /// Original requests received, per RRN (repeats included).
    pub received: HashMap<String, usize>,
}

impl IssuerSide {
    pub fn from_record(path: &Path) -> IssuerSide {
        let mut side = IssuerSide::default();
        for line in read_lines(path) {
            let rrn = text(&line, "rrn").to_string();
            let mti = text(&line, "mti");
            if ORIGINALS.contains(&mti) {
                *side.received.entry(rrn.clone()).or_default() += 1;
                if text(&line, "response_code") == "00" {
                    side.approved.insert(rrn);
                }
            } else if REVERSALS.contains(&mti) {
                side.reversed.insert(rrn);
            }
        }
        side
    }

    /// Approved and never reversed: what the issuer will settle.
    pub fn kept(&self) -> HashSet<String> {
        self.approved.difference(&self.reversed).cloned().collect()
    }
}

/// One journal row: (rrn, request MTI, state, response code, outcome).
pub type JournalRow = (String, String, String, String, String);

/// What the journal says, read from its rows.
#[derive(Debug, Default)]
pub struct JournalSide {
    /// Original requests answered 00 (approved or stood in) whose row
    /// ended `answered`: the switch neither reversed them nor saw the
    /// acquirer reverse them.
    pub kept: HashSet<String>,
    /// Rows not in a final state.
    pub open: Vec<JournalRow>,
}

impl JournalSide {
    pub fn from_rows(rows: &[JournalRow]) -> JournalSide {
        let mut side = JournalSide::default();
        let mut reversed_by_acquirer = HashSet::new();
        let mut approved = HashSet::new();
        for row in rows {
            let (rrn, mti, state, code, outcome) = row;
            if matches!(state.as_str(), "received" | "forwarded" | "reversal_queued") {
                side.open.push(row.clone());
            }
            if REVERSALS.contains(&mti.as_str())
                && matches!(state.as_str(), "answered" | "reversed")
            {
                reversed_by_acquirer.insert(rrn.clone());
            }
            if ORIGINALS.contains(&mti.as_str())
                && state == "answered"
                && code == "00"
                && matches!(outcome.as_str(), "approved" | "stand_in")
            {
                approved.insert(rrn.clone());
            }
        }
        side.kept = approved
            .into_iter()
            .filter(|rrn| !reversed_by_acquirer.contains(rrn))
            .collect();
        side
    }
}

/// Where the three sides disagree.
#[derive(Debug, Default)]
pub struct Splits {
    /// The terminal kept an approval the issuer does not (reversed, or
    /// never gave): the merchant handed goods over and is not paid.
    pub acquirer_only: Vec<String>,
    /// The issuer kept an approval the terminal does not hold: the
    /// cardholder pays for nothing.
    pub issuer_only: Vec<String>,
    /// The journal's net outcome differs from the issuer's.
    pub journal_disagrees: Vec<String>,
}

impl Splits {
    pub fn find(acq: &AcquirerSide, iss: &IssuerSide, journal: &JournalSide) -> Splits {
        let issuer_kept = iss.kept();
        let sorted = |set: HashSet<&String>| {
            let mut v: Vec<String> = set.into_iter().cloned().collect();
            v.sort();
            v
        };
        Splits {
            acquirer_only: sorted(acq.kept.difference(&issuer_kept).collect()),
            issuer_only: sorted(issuer_kept.difference(&acq.kept).collect()),
            journal_disagrees: sorted(journal.kept.symmetric_difference(&issuer_kept).collect()),
        }
    }

    pub fn total(&self) -> usize {
        self.acquirer_only.len() + self.issuer_only.len() + self.journal_disagrees.len()
    }
}

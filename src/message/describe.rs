//! A human-readable, masked view of a message (like jPOS's dump or moov-io's
//! Describe): one line per field with its number, name and value, sensitive
//! values masked, and the inside of TLV, PDS and subfield structures.

use std::fmt::Write;

use super::iso_message::Message;
use super::mti::{Function, MessageClass};
use super::sensitive::{mask, plain, walk_tlv};
use super::spec::{FieldSpec, Spec, Structure};
use super::{pds, tlv};

/// Names of the EMV tags commonly found in DE55.
pub fn emv_tag_name(tag: u32) -> &'static str {
    match tag {
        0x4F => "Application identifier (AID)",
        0x50 => "Application label",
        0x56 => "Track 1 equivalent data",
        0x57 => "Track 2 equivalent data",
        0x5A => "Application PAN",
        0x5F20 => "Cardholder name",
        0x5F24 => "Application expiration date",
        0x5F2A => "Transaction currency code",
        0x5F34 => "PAN sequence number",
        0x70 => "Record template",
        0x77 => "Response message template format 2",
        0x82 => "Application interchange profile",
        0x84 => "Dedicated file name",
        0x8A => "Authorisation response code",
        0x91 => "Issuer authentication data",
        0x95 => "Terminal verification results",
        0x99 => "Transaction PIN data",
        0x9A => "Transaction date",
        0x9C => "Transaction type",
        0x9F02 => "Amount, authorised",
        0x9F03 => "Amount, other",
        0x9F09 => "Application version number",
        0x9F0B => "Cardholder name extended",
        0x9F10 => "Issuer application data",
        0x9F1A => "Terminal country code",
        0x9F1E => "Interface device serial number",
        0x9F1F => "Track 1 discretionary data",
        0x9F20 => "Track 2 discretionary data",
        0x9F26 => "Application cryptogram",
        0x9F27 => "Cryptogram information data",
        0x9F33 => "Terminal capabilities",
        0x9F34 => "Cardholder verification method results",
        0x9F35 => "Terminal type",
        0x9F36 => "Application transaction counter",
        0x9F37 => "Unpredictable number",
        0x9F41 => "Transaction sequence counter",
        0x9F4B => "Signed dynamic application data",
        0x9F53 => "Transaction category code",
        0x9F6B => "Track 2 data (contactless)",
        0x9F6E => "Form factor indicator",
        _ => "",
    }
}

fn mti_meaning(msg: &Message) -> String {
    let m = msg.mti();
    let version = match m.version() {
        0 => "1987",
        1 => "1993",
        2 => "2003",
        _ => "private",
    };
    let class = match m.class() {
        MessageClass::Authorization => "authorization",
        MessageClass::Financial => "financial",
        MessageClass::FileAction => "file action",
        MessageClass::Reversal => "reversal",
        MessageClass::Reconciliation => "reconciliation",
        MessageClass::Administrative => "administrative",
        MessageClass::FeeCollection => "fee collection",
        MessageClass::NetworkManagement => "network management",
        MessageClass::Other(_) => "other",
    };
    let function = match m.function() {
        Function::Request => "request",
        Function::RequestResponse => "response",
        Function::Advice => "advice",
        Function::AdviceResponse => "advice response",
        Function::Notification => "notification",
        Function::Other(_) => "other function",
    };
    let origin = match m.origin() {
        0 => "acquirer",
        1 => "acquirer repeat",
        2 => "issuer",
        3 => "issuer repeat",
        _ => "other",
    };
    format!("{class} {function}, {version}, from {origin}")
}

/// The masked description of `msg`, one field per line.
pub fn describe(spec: &Spec, msg: &Message) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "MTI   {}  ({})", msg.mti(), mti_meaning(msg));
    let _ = writeln!(out, "spec  {}", spec.name);
    for (n, value) in msg.values() {
        let fs = spec.field(n);
        let name = fs.map_or("(not in spec)", |f| f.name.as_str());
        let shown = match fs.and_then(|f| f.sensitivity) {
            Some(kind) => mask(kind, value),
            // The raw TLV would show the cryptograms its tags hide below.
            None if fs.is_some_and(|f| matches!(f.structure, Structure::Tlv)) => {
                format!("[{} bytes of TLV]", value.len())
            }
            None => plain(fs, value),
        };
        let _ = writeln!(out, "  {n:>3}  {name:<44} {shown}");
        if let Some(fs) = fs.filter(|f| f.sensitivity.is_none()) {
            describe_inner(fs, value, &mut out);
        }
    }
    out
}

fn describe_inner(fs: &FieldSpec, value: &[u8], out: &mut String) {
    match &fs.structure {
        // Templates are walked into, so card data inside them is masked too.
        Structure::Tlv => match walk_tlv(value) {
            Ok(objects) => {
                for o in objects {
                    let indent = 2 * o.depth;
                    let tag = format!("{:indent$}{}", "", tlv::tag_hex(o.tag));
                    let _ = writeln!(
                        out,
                        "         {tag:<6} {:<37} {}",
                        emv_tag_name(o.tag),
                        o.shown.as_deref().unwrap_or("(template)")
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "         (not valid TLV, not shown: {e})");
            }
        },
        Structure::Pds => match pds::parse(value) {
            Ok(items) => {
                for p in items {
                    let text: String = p.value.iter().map(|&b| char::from(b)).collect();
                    let _ = writeln!(out, "         PDS {:04}  {text}", p.tag);
                }
            }
            Err(e) => {
                let _ = writeln!(out, "         (not valid PDS: {e})");
            }
        },
        Structure::Subfields(list) => {
            for (i, s) in list.iter().enumerate() {
                if let Some(part) = value.get(s.offset..s.offset + s.size) {
                    let text: String = part.iter().map(|&b| char::from(b)).collect();
                    let _ = writeln!(out, "         .{:<5} {:<37} {text}", i + 1, s.name);
                }
            }
        }
        Structure::None => {}
    }
}

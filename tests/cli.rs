//! The `decode` / `encode` subcommands, run as a user would.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cardswitch");
const AUTH_HEX: &str = include_str!("../fixtures/golden/iso87-ascii/0100-auth-request.hex");
const AUTH_JSON: &str = include_str!("../fixtures/golden/iso87-ascii/0100-auth-request.json");

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cardswitch");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decode_prints_a_masked_description() {
    let (code, out, _) = run(&["decode", "--spec", "iso87-ascii", AUTH_HEX.trim()], "");
    assert_eq!(code, 0);
    assert!(out.contains("476173******0119"), "{out}");
    assert!(!out.contains("4761739001010119"), "full PAN shown:\n{out}");
    assert!(out.contains("Application cryptogram"), "{out}");
    // The cryptogram (9F26) is masked, also in the line of DE55 itself.
    assert!(out.contains("[secret, 8 bytes]"), "{out}");
    assert!(
        !out.contains("8A1F2C3D4E5F6071"),
        "cryptogram shown:\n{out}"
    );
    assert!(out.contains("[PIN block, 8 bytes]"), "{out}");
}

#[test]
fn decode_json_is_masked_unless_revealed() {
    let (code, out, _) = run(
        &["decode", "--spec", "iso87-ascii", "--json", "-"],
        AUTH_HEX,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["fields"]["2"], "476173******0119");
    let (code, out, err) = run(
        &["decode", "--spec", "iso87-ascii", "--json", "--reveal", "-"],
        AUTH_HEX,
    );
    assert_eq!(code, 0);
    assert!(err.contains("card data"), "no warning: {err}");
    let got: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let want: serde_json::Value = serde_json::from_str(AUTH_JSON).expect("json");
    assert_eq!(got, want);
}

#[test]
fn encode_builds_the_golden_image() {
    let (code, out, err) = run(&["encode", "--spec", "iso87-ascii"], AUTH_JSON);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), AUTH_HEX.trim());
}

#[test]
fn a_bad_message_names_field_and_offset_and_fails() {
    let wire = hex::decode(AUTH_HEX.trim()).expect("hex");
    let cut = hex::encode(&wire[..wire.len() - 3]);
    let (code, _, err) = run(&["decode", "--spec", "iso87-ascii", &cut], "");
    assert_ne!(code, 0);
    assert!(err.contains("field 55 at offset"), "{err}");
    assert!(err.contains("truncated"), "{err}");
    let (code, _, err) = run(
        &["encode", "--spec", "iso87-ascii"],
        r#"{"mti":"0100","fields":{"3":"12"}}"#,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("field 3") && err.contains("fixed size 6"),
        "{err}"
    );
}

#[test]
fn unknown_spec_fails_with_the_list_of_shipped_specs() {
    let (code, _, err) = run(&["decode", "--spec", "nope", "00"], "");
    assert_ne!(code, 0);
    assert!(err.contains("mastercard-ipm"), "{err}");
}

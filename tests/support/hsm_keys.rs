//! Keys for the switch's configuration, formed by `cardswitch hsm-sim
//! form-key` from a clear test component, as an HSM console would.

use super::process::run;

/// The key under the test LMK and its check value; the clear key must not
/// be printed.
pub fn form_key(key_type: &str, clear: &str) -> (String, String) {
    let args = [
        "hsm-sim",
        "form-key",
        "--type",
        key_type,
        "--component",
        clear,
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(clear), "the clear key printed");
    let mut it = out.split_whitespace();
    let key = it.next().expect("key").to_string();
    (key, it.next().expect("check value").to_string())
}

/// The configuration's table for that key in `role`.
pub fn key_table(role: &str, key_type: &str, clear: &str) -> String {
    let (key, kcv) = form_key(key_type, clear);
    format!("{{ role = \"{role}\", key = \"{key}\", check_value = \"{kcv}\" }}")
}

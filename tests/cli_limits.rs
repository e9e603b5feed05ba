//! The command line's numeric options are checked like the configuration's
//! keys (tests/config_limits.rs): out of range, the argument parser refuses
//! them with their range, and nothing panics later.

/// Runs `cardswitch ARGS`, which must refuse them: (exit code, stderr).
fn cli_refused(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardswitch"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run cardswitch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Numeric options that size tasks, buffers or timers are refused by the
/// argument parser (exit 2, the range named) instead of panicking later
/// (`--frame-bytes-max 0` and `--connections-max 0` panicked, a huge
/// `--delay-ms` overflowed a `Duration` sum per answer).
#[test]
fn numeric_cli_options_out_of_range_are_refused_with_their_range() {
    let huge = "2305843009213693952";
    let cases: &[(&[&str], &str)] = &[
        (&["issuer-sim", "--connections-max", "0"], "1..=100000"),
        (&["issuer-sim", "--connections-max", huge], "1..=100000"),
        (&["issuer-sim", "--frame-bytes-max", "0"], "1..=65535"),
        (&["issuer-sim", "--delay-ms", huge], "0..=600000"),
        (&["issuer-sim", "--jitter-ms", huge], "0..=600000"),
        (&["issuer-sim", "--drain-ms", huge], "0..=600000"),
        (&["issuer-sim", "--frame-timeout-ms", "0"], "1..=600000"),
        (&["issuer-sim", "--idle-timeout-s", huge], "1..=86400"),
        (&["load", "--timeout-ms", huge], "1..=600000"),
        (&["load", "--frame-bytes-max", "70000"], "1..=65535"),
        (&["demo", "--connections", "100000000"], "1..=10000"),
        (&["demo", "--in-flight", "0"], "1..=10000"),
    ];
    for (args, range) in cases {
        let (code, stderr) = cli_refused(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(range), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

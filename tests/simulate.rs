//! `cardswitch simulate` as a process: seeds pass, the same seed gives
//! the same digest, and each mutation of the core is caught (issue 20,
//! point 4). The 10,000-seed run (profile `sim`) is a step of
//! scripts/test-all.sh.

use std::process::{Command, Output};

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardswitch"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("cardswitch runs")
}

fn digest(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_string()
}

#[test]
fn two_hundred_seeds_pass() {
    // Few seeds, and fewer steps per seed than the default, to keep a
    // debug build quick: the 10,000-seed run is scripts/test-all.sh's.
    let out = simulate(&["--seeds", "200", "--steps", "400"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("seeds 200 "), "{stdout}");
    assert!(stdout.contains("all invariants held"), "{stdout}");
}

#[test]
fn the_same_seed_gives_the_same_digest() {
    let first = simulate(&["--seed", "7", "--seeds", "3", "--threads", "2"]);
    let again = simulate(&["--seed", "7", "--seeds", "3", "--threads", "1"]);
    let other = simulate(&["--seed", "8", "--seeds", "3"]);
    assert!(first.status.success() && again.status.success() && other.status.success());
    assert_eq!(digest(&first), digest(&again));
    assert_ne!(digest(&first), digest(&other));
}

#[test]
fn a_trace_prints_every_step_of_one_seed() {
    let out = simulate(&["--seed", "3", "--seeds", "1", "--steps", "100", "--trace"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains(" in  request "), "{stdout}");
    assert!(stdout.contains(" out reply "), "{stdout}");
    // Masked: no card number of the simulated cards in full.
    assert!(!stdout.contains("4761739001010119"));
}

#[test]
fn each_mutation_is_caught_within_a_few_hundred_seeds() {
    for (mutation, invariant) in [
        ("no-reversal-on-timeout", "approval-delivered-or-reversed"),
        ("no-duplicate-content-check", "no-foreign-answer"),
        ("no-durability-wait", "durable-before-forwarded"),
        ("no-pin-translation", "pin-translated"),
        ("no-stand-in-card-check", "stand-in-card-checked"),
    ] {
        let out = simulate(&["--seeds", "300", "--mutation", mutation]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mutation} not caught");
        assert!(
            stderr.contains(&format!("invariant {invariant}")),
            "{mutation}: {stderr}"
        );
        let replay = format!("--seeds 1 --mutation {mutation} --trace");
        assert!(
            stderr.contains("replay: cardswitch simulate --seed "),
            "{stderr}"
        );
        assert!(stderr.contains(&replay), "{stderr}");
    }
}

#[test]
fn an_unknown_mutation_is_refused() {
    let out = simulate(&["--mutation", "no-such-thing"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-reversal-on-timeout"));
}

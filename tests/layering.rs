//! The switch's core is pure (issue 20, docs/core.md): its files import
//! nothing from tokio, the link layer, the node, the journal's SQLite
//! store or writer, and read no clock. This reads the sources and fails
//! on the first file that does, so the rule cannot quietly lapse.

use std::path::{Path, PathBuf};

/// What the core may not name (comments included: a comment that names
/// one is as misleading as code).
const FORBIDDEN: &[&str] = &[
    "tokio",
    "crate::link",
    "crate::node",
    "journal::sqlite",
    "journal::writer",
    "rusqlite",
    "Instant::now",
    "SystemTime::now",
    "std::net",
    "std::thread",
    "std::fs",
    "RandomState",
];

/// The core's own folder, and the pure leaves it decides with.
const PURE: &[&str] = &[
    "src/switch/core",
    "src/switch/routing",
    "src/switch/translate.rs",
    "src/switch/saf.rs",
    "src/switch/duplicates",
    "src/switch/standin.rs",
    "src/switch/reversal.rs",
    "src/switch/records.rs",
    "src/switch/responses.rs",
    "src/switch/hooks.rs",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .expect("read dir")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            rust_files(&p, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// A file's text without its `#[cfg(test)] mod tests { .. }` tail: tests
/// may read a clock to start their virtual time.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[test]
fn the_core_and_its_leaves_do_no_io_and_read_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for p in PURE {
        rust_files(&root.join(p), &mut files);
    }
    // Test files drive the core from outside; they are not the core.
    files.retain(|f| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !name.starts_with("tests")
    });
    assert!(
        files.len() >= 15,
        "the core's files were not found: {files:?}"
    );
    let mut faults = Vec::new();
    for f in &files {
        let code = code_of(f);
        for (n, line) in code.lines().enumerate() {
            for word in FORBIDDEN {
                if line.contains(word) {
                    faults.push(format!("{}:{}: {word}: {line}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        faults.is_empty(),
        "the core is not pure:\n{}",
        faults.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // The check itself can fail: a file that names a clock is caught.
    let sample = "fn f() { let t = std::time::Instant::now(); }";
    assert!(FORBIDDEN.iter().any(|w| sample.contains(w)));
}

/// The switch never does PIN, MAC or cryptogram work in software (issue
/// 21): only the simulator, test terminals and tests may name the software
/// HSM. The switch and the node ask an HSM through `hsm::command`.
#[test]
fn the_switch_and_node_never_name_the_software_hsm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for p in [
        "src/switch",
        "src/node",
        "src/link",
        "src/message",
        "src/hsm/command",
    ] {
        rust_files(&root.join(p), &mut files);
    }
    assert!(files.len() >= 30, "the switch's files were not found");
    let faults: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("read source");
            text.contains("hsm::soft") || text.contains("soft::") || names_the_simulator(&text)
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(faults.is_empty(), "software HSM named in: {faults:?}");
}

/// The software HSM's dispatcher (`hsm::sim`, behind `hsm-sim`) is as
/// off limits as `hsm::soft`: the switch talks to an HSM over the wire.
fn names_the_simulator(text: &str) -> bool {
    text.contains("hsm::sim") || text.contains("sim::lmk") || text.contains("sim::Hsm")
}

#[test]
fn the_simulator_check_finds_what_it_looks_for() {
    assert!(names_the_simulator("use crate::hsm::sim::Hsm;"));
    assert!(names_the_simulator("use super::sim::lmk::Lmk;"));
    assert!(!names_the_simulator("use crate::sim::issuer;"));
}

/// The security module's layer is pure too (issue 21): the codec, the
/// software cryptography and the simulator's dispatcher do no I/O, read
/// no clock and draw no randomness of their own (the caller passes random
/// bytes in); `hsm-sim`'s sockets live in `src/cli/hsm_sim/`.
#[test]
fn the_hsm_layer_does_no_io_and_reads_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/hsm"), &mut files);
    files.retain(|f| f.file_name().and_then(|n| n.to_str()) != Some("tests.rs"));
    assert!(files.len() >= 25, "the hsm files were not found: {files:?}");
    let mut words: Vec<&str> = FORBIDDEN.to_vec();
    words.extend(["crate::cli", "OsRng", "getrandom"]);
    let faults: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let code = code_of(f);
            words
                .iter()
                .filter(|w| code.contains(**w))
                .map(|w| format!("{}: {w}", f.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        faults.is_empty(),
        "the hsm layer is not pure:\n{}",
        faults.join("\n")
    );
}

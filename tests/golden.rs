//! Golden fixtures: hand-checked hex images (fixtures/golden/<spec>/*.hex)
//! with their expected content (*.json). Every image must parse to exactly
//! its JSON and every JSON must build to exactly its image.

use std::path::Path;

use bytes::Bytes;
use cardswitch::message::Spec;
use cardswitch::message::json::{Reveal, from_json, to_json};

fn cases() -> Vec<(String, std::path::PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
    let mut out = Vec::new();
    for spec_dir in std::fs::read_dir(&root).expect("fixtures/golden") {
        let spec_dir = spec_dir.expect("dir entry").path();
        if !spec_dir.is_dir() {
            continue;
        }
        let spec = spec_dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for f in std::fs::read_dir(&spec_dir).expect("spec dir") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "hex") {
                out.push((spec.clone(), f));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shipped_spec_has_golden_messages() {
    let cases = cases();
    for name in cardswitch::message::spec_file::builtin_names() {
        let n = cases.iter().filter(|(s, _)| s == name).count();
        assert!(n >= 2, "spec {name} has {n} golden messages");
    }
}

#[test]
fn golden_images_parse_to_their_json_and_build_back() {
    let cases = cases();
    assert!(cases.len() >= 10, "only {} golden cases", cases.len());
    for (spec_name, hex_path) in cases {
        let spec = Spec::resolve(&spec_name).expect("spec");
        let hex_text = std::fs::read_to_string(&hex_path).expect("hex file");
        let wire = Bytes::from(hex::decode(hex_text.trim()).expect("valid hex"));
        let json_path = hex_path.with_extension("json");
        let json_text = std::fs::read_to_string(&json_path).expect("json file");
        let expected: serde_json::Value = serde_json::from_str(&json_text).expect("json");

        let msg = spec
            .parse(&wire)
            .unwrap_or_else(|e| panic!("{}: {e}", hex_path.display()));
        let got = to_json(&spec, &msg, Reveal::Clear);
        assert_eq!(
            got,
            expected,
            "{}: decoded content differs",
            hex_path.display()
        );

        let from = from_json(&spec, &expected).expect("json message");
        let built = spec
            .build(&from)
            .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        assert_eq!(
            hex::encode(&built),
            hex::encode(&wire),
            "{}: built image differs",
            json_path.display()
        );
    }
}

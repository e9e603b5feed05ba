//! Malformed spec files (fixtures/specs-bad) are refused with the file, the
//! line and the field named in each file's `# expected-error:` header.

use std::path::Path;

use cardswitch::message::{Spec, SpecError};

fn expected_field(text: &str) -> Option<u16> {
    let header = text
        .lines()
        .next()?
        .strip_prefix("# expected-error: field ")?;
    header.split(':').next()?.trim().parse().ok()
}

#[test]
fn every_bad_spec_is_refused_naming_file_line_and_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/specs-bad");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/specs-bad") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let err = Spec::load_file(&path).expect_err("a bad spec must be refused");
        let shown = err.to_string();
        let file = path.display().to_string();
        assert!(shown.starts_with(&file), "{shown}: does not name {file}");
        let (line, field) = match &err {
            SpecError::Field { line, field, .. } => (*line, Some(*field)),
            SpecError::Syntax { line, field, .. } => (*line, *field),
            other => panic!("{}: unexpected error kind {other}", path.display()),
        };
        assert!(line > 0, "{shown}: no line");
        if let Some(want) = expected_field(&text) {
            assert_eq!(field, Some(want), "{shown}");
            assert!(shown.contains(&format!("field {want}")), "{shown}");
        }
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} bad specs");
}

#[test]
fn unknown_spec_names_list_the_shipped_ones() {
    let err = Spec::resolve("no-such-spec").expect_err("unknown");
    assert!(err.to_string().contains("iso87-ascii"), "{err}");
}

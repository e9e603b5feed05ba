//! Loading specs from TOML: syntax, inheritance (`base`), defaults and the
//! checks that make a spec usable. A malformed file is refused with the file
//! name, the line, the field number and what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

mod field;

use super::layout;
use super::spec::{BitmapEncoding, Class, Encoding, Padding, Spec, Version};
use field::{FieldFile, field_spec};

/// The specs shipped inside the binary, by name.
const BUILTIN_SPECS: &[(&str, &str)] = &[
    (
        "iso87-ascii",
        include_str!("../../../specs/iso87-ascii.toml"),
    ),
    (
        "iso87-binary",
        include_str!("../../../specs/iso87-binary.toml"),
    ),
    (
        "iso93-ascii",
        include_str!("../../../specs/iso93-ascii.toml"),
    ),
    (
        "mastercard-ipm",
        include_str!("../../../specs/mastercard-ipm.toml"),
    ),
];

/// The largest size of a fixed field: no message holds more (a 4-digit
/// length prefix ends at 9999 too). Keeps every size computation in range.
const FIELD_SIZE_MAX: usize = 9999;

/// How deep `base` chains may go; guards against cycles.
const BASE_DEPTH_MAX: usize = 4;

/// A spec file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {reason}")]
    Io { file: String, reason: String },
    /// The file is not valid TOML or has keys of the wrong type; `field`
    /// names the field definition on that line, when there is one.
    #[error("{file}:{line}:{column}: {}{reason}", field.map(|n| format!("field {n}: ")).unwrap_or_default())]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        field: Option<u16>,
        reason: String,
    },
    /// A field definition is inconsistent.
    #[error("{file}:{line}: field {field}: {reason}")]
    Field {
        file: String,
        line: usize,
        field: u16,
        reason: String,
    },
    /// A spec-wide setting is inconsistent.
    #[error("{file}: {reason}")]
    Spec { file: String, reason: String },
    /// No shipped spec and no file has that name.
    #[error("unknown spec '{name}': not a shipped spec ({known}) and no such file")]
    Unknown { name: String, known: String },
}

/// When the secondary bitmap is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SecondaryBitmap {
    /// Only when a field above 64 is present (bit 1 tells).
    WhenNeeded,
    /// In every message.
    Always,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: String,
    description: Option<String>,
    version: Option<Version>,
    base: Option<String>,
    mti_encoding: Option<Encoding>,
    bitmap_encoding: Option<BitmapEncoding>,
    tertiary_bitmap: Option<bool>,
    secondary_bitmap: Option<SecondaryBitmap>,
    length_encoding: Option<Encoding>,
    data_encoding: Option<BTreeMap<Class, Encoding>>,
    bcd_padding: Option<Padding>,
    #[serde(default)]
    fields: Vec<Spanned<FieldFile>>,
}

/// A field as read, with where it came from (for error messages).
struct SourcedField {
    file: String,
    line: usize,
    field: FieldFile,
}

/// A spec file merged with its bases, before defaults are applied.
struct Merged {
    file: String,
    raw: SpecFile,
    fields: BTreeMap<u16, SourcedField>,
}

impl Spec {
    /// Resolves a spec by shipped name (`iso87-ascii`) or by file path.
    pub fn resolve(name_or_path: &str) -> Result<Arc<Spec>, SpecError> {
        if let Some(text) = builtin_text(name_or_path) {
            return Spec::from_toml(text, &format!("<builtin>/{name_or_path}.toml"), None)
                .map(Arc::new);
        }
        let path = Path::new(name_or_path);
        if path.is_file() {
            return Spec::load_file(path).map(Arc::new);
        }
        Err(SpecError::Unknown {
            name: name_or_path.to_string(),
            known: builtin_names().collect::<Vec<_>>().join(", "),
        })
    }

    /// Loads a spec from a TOML file; `base` names resolve to shipped specs
    /// or to files next to it.
    pub fn load_file(path: &Path) -> Result<Spec, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Spec::from_toml(&text, &file, path.parent())
    }

    /// Parses and validates spec text; `file` is used in error messages and
    /// `dir` is where `base` files are looked for.
    pub fn from_toml(text: &str, file: &str, dir: Option<&Path>) -> Result<Spec, SpecError> {
        let merged = merge(text, file, dir, 0)?;
        finish(merged)
    }
}

/// Names of the shipped specs.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN_SPECS.iter().map(|(name, _)| *name)
}

/// The TOML text of a shipped spec.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN_SPECS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

fn line_of(text: &str, byte: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..byte.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// The `number = N` of a one-line field definition, to name it in errors.
fn field_number_on_line(text: &str, line: usize) -> Option<u16> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let after = &l[l.find("number")? + "number".len()..];
    let digits: String = after
        .trim_start_matches([' ', '='])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn merge(text: &str, file: &str, dir: Option<&Path>, depth: usize) -> Result<Merged, SpecError> {
    let raw: SpecFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_of(text, s.start));
        SpecError::Syntax {
            file: file.to_string(),
            line,
            column,
            field: field_number_on_line(text, line),
            reason: e.message().trim().to_string(),
        }
    })?;
    let mut fields = BTreeMap::new();
    let mut parent_raw = None;
    if let Some(base) = &raw.base {
        if depth >= BASE_DEPTH_MAX {
            return Err(SpecError::Spec {
                file: file.to_string(),
                reason: format!("base chain deeper than {BASE_DEPTH_MAX} (a cycle?)"),
            });
        }
        let parent = load_base(base, file, dir, depth)?;
        fields = parent.fields;
        parent_raw = Some(parent.raw);
    }
    let mut own = BTreeMap::new();
    for spanned in &raw.fields {
        let (line, _) = line_of(text, spanned.span().start);
        let field = spanned.get_ref().clone();
        if own.insert(field.number, line).is_some() {
            return Err(SpecError::Field {
                file: file.to_string(),
                line,
                field: field.number,
                reason: "defined twice".to_string(),
            });
        }
        fields.insert(
            field.number,
            SourcedField {
                file: file.to_string(),
                line,
                field,
            },
        );
    }
    let mut raw = raw;
    if let Some(p) = parent_raw {
        inherit(&mut raw, p);
    }
    Ok(Merged {
        file: file.to_string(),
        raw,
        fields,
    })
}

fn load_base(
    base: &str,
    file: &str,
    dir: Option<&Path>,
    depth: usize,
) -> Result<Merged, SpecError> {
    if let Some(text) = builtin_text(base) {
        return merge(text, &format!("<builtin>/{base}.toml"), None, depth + 1);
    }
    // Text without a directory (built-in or in memory) may only build on
    // shipped specs: it must not make the loader read files.
    let Some(d) = dir else {
        return Err(SpecError::Spec {
            file: file.to_string(),
            reason: format!("base spec '{base}' is not a shipped spec"),
        });
    };
    let candidate: PathBuf = d.join(format!("{base}.toml"));
    let text = std::fs::read_to_string(&candidate).map_err(|_| SpecError::Spec {
        file: file.to_string(),
        reason: format!("base spec '{base}' is neither shipped nor found next to this file"),
    })?;
    merge(
        &text,
        &candidate.display().to_string(),
        candidate.parent(),
        depth + 1,
    )
}

/// Fills the unset spec-wide settings of `child` from `parent`.
fn inherit(child: &mut SpecFile, parent: SpecFile) {
    child.description = child.description.take().or(parent.description);
    child.version = child.version.or(parent.version);
    child.mti_encoding = child.mti_encoding.or(parent.mti_encoding);
    child.bitmap_encoding = child.bitmap_encoding.or(parent.bitmap_encoding);
    child.tertiary_bitmap = child.tertiary_bitmap.or(parent.tertiary_bitmap);
    child.secondary_bitmap = child.secondary_bitmap.or(parent.secondary_bitmap);
    child.length_encoding = child.length_encoding.or(parent.length_encoding);
    child.bcd_padding = child.bcd_padding.or(parent.bcd_padding);
    let mut classes = parent.data_encoding.unwrap_or_default();
    classes.extend(child.data_encoding.take().unwrap_or_default());
    child.data_encoding = Some(classes);
}

fn finish(merged: Merged) -> Result<Spec, SpecError> {
    let Merged { file, raw, fields } = merged;
    let spec_err = |reason: String| SpecError::Spec {
        file: file.clone(),
        reason,
    };
    let mti_encoding = raw.mti_encoding.unwrap_or(Encoding::Ascii);
    if matches!(mti_encoding, Encoding::Binary | Encoding::Hex) {
        return Err(spec_err(format!(
            "mti_encoding {mti_encoding} is not one of ascii, ebcdic, bcd"
        )));
    }
    let length_encoding = raw.length_encoding.unwrap_or(Encoding::Ascii);
    if length_encoding == Encoding::Hex {
        return Err(spec_err("length_encoding hex is not supported".into()));
    }
    let tertiary_bitmap = raw.tertiary_bitmap.unwrap_or(false);
    let classes = raw.data_encoding.unwrap_or_default();
    let default_padding = raw.bcd_padding.unwrap_or_default();
    let mut list = Vec::with_capacity(fields.len());
    for sourced in fields.into_values() {
        list.push(field_spec(
            sourced,
            &classes,
            length_encoding,
            default_padding,
            tertiary_bitmap,
        )?);
    }
    if list.is_empty() {
        return Err(spec_err("defines no fields".into()));
    }
    let (fields, layouts) = Spec::index_fields(list);
    let decoded_per_wire_byte = layout::decoded_per_wire_byte(&layouts);
    Ok(Spec {
        name: raw.name,
        description: raw.description.unwrap_or_default(),
        version: raw.version.unwrap_or(Version::V1987),
        mti_encoding,
        bitmap_encoding: raw.bitmap_encoding.unwrap_or(BitmapEncoding::Binary),
        tertiary_bitmap,
        secondary_bitmap_always: raw.secondary_bitmap == Some(SecondaryBitmap::Always),
        fields,
        layouts,
        decoded_per_wire_byte,
        id: layout::next_spec_id(),
        plans: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::spec::Length;

    fn err(text: &str) -> SpecError {
        Spec::from_toml(text, "t.toml", None).expect_err("spec should be refused")
    }

    #[test]
    fn shipped_specs_load() {
        for name in builtin_names() {
            let spec = Spec::resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(spec.name, name);
            assert!(spec.fields().count() > 20, "{name} has few fields");
        }
    }

    #[test]
    fn a_bad_field_is_named_with_its_line() {
        let e = err(
            "name = \"x\"\nfields = [\n { number = 2, name = \"PAN\", class = \"n\", length = \"fixed\" },\n]\n",
        );
        assert_eq!(
            e,
            SpecError::Field {
                file: "t.toml".into(),
                line: 3,
                field: 2,
                reason: "a fixed field needs size > 0".into()
            }
        );
    }

    #[test]
    fn bcd_on_text_and_unknown_class_are_refused() {
        let e = err(
            "name = \"x\"\nfields = [{ number = 43, name = \"N\", class = \"ans\", length = \"fixed\", size = 4, encoding = \"bcd\" }]",
        );
        assert!(
            e.to_string().contains("field 43: class ans cannot use bcd"),
            "{e}"
        );
        let e = err(
            "name = \"x\"\nfields = [{ number = 4, name = \"N\", class = \"q\", length = \"fixed\", size = 4 }]",
        );
        assert!(matches!(e, SpecError::Syntax { line: 2, .. }), "{e}");
    }

    #[test]
    fn absurd_sizes_are_refused_not_overflowed() {
        // Found by the spec_load fuzz target: a size of u64::MAX overflowed.
        let e = err(
            "name = \"x\"\nfields = [{ number = 28, name = \"x\", class = \"xn\", length = \"fixed\", size = 18446744073709551615 }]",
        );
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
        let e = err(
            "name = \"x\"\nfields = [{ number = 90, name = \"x\", class = \"n\", length = \"LLL\", max = 999, subfields = [{ name = \"a\", size = 18446744073709551615 }, { name = \"b\", size = 2 }] }]",
        );
        assert!(e.to_string().contains("exceed the limit"), "{e}");
    }

    #[test]
    fn duplicates_and_oversized_max_are_refused() {
        let e = err(
            "name = \"x\"\nfields = [\n{ number = 4, name = \"A\", class = \"n\", length = \"fixed\", size = 4 },\n{ number = 4, name = \"B\", class = \"n\", length = \"fixed\", size = 4 }]",
        );
        assert!(
            matches!(
                e,
                SpecError::Field {
                    field: 4,
                    line: 4,
                    ..
                }
            ),
            "{e}"
        );
        let e = err(
            "name = \"x\"\nfields = [{ number = 2, name = \"A\", class = \"n\", length = \"LL\", max = 100 }]",
        );
        assert!(e.to_string().contains("2-digit prefix"), "{e}");
    }

    #[test]
    fn base_fields_are_inherited_and_overridden() {
        let text = "name = \"child\"\nbase = \"iso87-ascii\"\nmti_encoding = \"bcd\"\ndata_encoding = { n = \"bcd\" }\nfields = [{ number = 4, name = \"Amount\", class = \"n\", length = \"fixed\", size = 10 }]";
        let spec = Spec::from_toml(text, "child.toml", None).expect("child spec");
        assert_eq!(spec.mti_encoding, Encoding::Bcd);
        assert_eq!(spec.field(4).map(|f| f.length), Some(Length::Fixed(10)));
        assert_eq!(spec.field(3).map(|f| f.encoding), Some(Encoding::Bcd));
        assert_eq!(spec.field(41).map(|f| f.encoding), Some(Encoding::Ascii));
    }
}

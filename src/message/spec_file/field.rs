//! One field's declaration in a spec file: its TOML form, and the checks
//! and defaults (class against encoding, lengths, padding, structure,
//! subfields) that make it a usable [`FieldSpec`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{FIELD_SIZE_MAX, SourcedField, SpecError};
use crate::message::spec::{
    Class, Encoding, FieldSpec, Length, Padding, Sensitivity, Structure, Subfield,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum LengthKind {
    #[serde(rename = "fixed")]
    Fixed,
    #[serde(rename = "LL")]
    Ll,
    #[serde(rename = "LLL")]
    Lll,
    #[serde(rename = "LLLL")]
    Llll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StructureKind {
    Tlv,
    Pds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubfieldFile {
    name: String,
    size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldFile {
    pub(super) number: u16,
    name: String,
    class: Class,
    length: LengthKind,
    size: Option<usize>,
    max: Option<usize>,
    encoding: Option<Encoding>,
    length_encoding: Option<Encoding>,
    padding: Option<Padding>,
    sensitive: Option<Sensitivity>,
    structure: Option<StructureKind>,
    subfields: Option<Vec<SubfieldFile>>,
}

/// A field's declaration checked and completed with the spec's defaults.
pub(super) fn field_spec(
    sourced: SourcedField,
    classes: &BTreeMap<Class, Encoding>,
    default_length_encoding: Encoding,
    default_padding: Padding,
    tertiary_bitmap: bool,
) -> Result<FieldSpec, SpecError> {
    let SourcedField {
        file,
        line,
        field: f,
    } = sourced;
    let fail = |reason: String| SpecError::Field {
        file: file.clone(),
        line,
        field: f.number,
        reason,
    };
    let number_max = if tertiary_bitmap { 192 } else { 128 };
    if f.number < 2 || f.number > number_max {
        return Err(fail(format!(
            "number must be in 2..={number_max} (1 is the bitmap)"
        )));
    }
    if tertiary_bitmap && f.number == 65 {
        return Err(fail("field 65 is the tertiary bitmap in this spec".into()));
    }
    if f.name.trim().is_empty() {
        return Err(fail("name is empty".into()));
    }
    let default_encoding = if f.class == Class::B {
        Encoding::Binary
    } else {
        Encoding::Ascii
    };
    let encoding = f
        .encoding
        .or_else(|| classes.get(&f.class).copied())
        .unwrap_or(default_encoding);
    match (f.class, encoding) {
        (Class::B, Encoding::Binary | Encoding::Hex) => {}
        (Class::B, e) => return Err(fail(format!("class b cannot use {e} encoding"))),
        (_, Encoding::Binary | Encoding::Hex) => {
            return Err(fail(format!(
                "class {} cannot use {encoding} encoding",
                f.class
            )));
        }
        (Class::N | Class::Z | Class::Xn, Encoding::Bcd) => {}
        (c, Encoding::Bcd) => return Err(fail(format!("class {c} cannot use bcd encoding"))),
        _ => {}
    }
    let length_encoding = f.length_encoding.unwrap_or(default_length_encoding);
    if length_encoding == Encoding::Hex {
        return Err(fail("length_encoding hex is not supported".into()));
    }
    let length = match (f.length, f.size, f.max) {
        (LengthKind::Fixed, Some(size), None) if size > FIELD_SIZE_MAX => {
            return Err(fail(format!(
                "size {size} exceeds the limit of {FIELD_SIZE_MAX}"
            )));
        }
        (LengthKind::Fixed, Some(size), None) if size > 0 => Length::Fixed(size),
        (LengthKind::Fixed, _, Some(_)) => {
            return Err(fail("a fixed field takes size, not max".into()));
        }
        (LengthKind::Fixed, _, None) => return Err(fail("a fixed field needs size > 0".into())),
        (_, Some(_), _) => return Err(fail("a variable field takes max, not size".into())),
        (_, None, None) | (_, None, Some(0)) => {
            return Err(fail("a variable field needs max > 0".into()));
        }
        (kind, None, Some(max)) => {
            let digits = match kind {
                LengthKind::Ll => 2,
                LengthKind::Lll => 3,
                _ => 4,
            };
            if f.class == Class::Xn {
                return Err(fail("class x+n must be fixed length".into()));
            }
            let units = if encoding == Encoding::Hex {
                max.saturating_mul(2)
            } else {
                max
            };
            let limit = 10usize.pow(u32::from(digits)) - 1;
            let limit = if length_encoding == Encoding::Binary && digits == 2 {
                255
            } else {
                limit
            };
            if units > limit {
                return Err(fail(format!(
                    "max {max} needs a length of {units}, more than a {digits}-digit prefix holds"
                )));
            }
            Length::Variable { digits, max }
        }
    };
    let padding = match f.padding {
        Some(_) if encoding != Encoding::Bcd => {
            return Err(fail("padding applies only to bcd encoding".into()));
        }
        Some(p) => p,
        None => default_padding,
    };
    let structure = match (f.structure, f.subfields) {
        (Some(_), Some(_)) => return Err(fail("structure and subfields are exclusive".into())),
        (Some(StructureKind::Tlv), None) if f.class != Class::B => {
            return Err(fail("tlv structure needs class b".into()));
        }
        (Some(StructureKind::Tlv), None) => Structure::Tlv,
        (Some(StructureKind::Pds), None) if !matches!(f.class, Class::Ans | Class::An) => {
            return Err(fail("pds structure needs class ans".into()));
        }
        (Some(StructureKind::Pds), None) => Structure::Pds,
        (None, Some(subs)) => Structure::Subfields(subfields(&subs, length, &fail)?),
        (None, None) => Structure::None,
    };
    Ok(FieldSpec {
        number: f.number,
        name: f.name,
        class: f.class,
        length,
        encoding,
        length_encoding,
        padding,
        sensitivity: f.sensitive,
        structure,
    })
}

fn subfields(
    subs: &[SubfieldFile],
    length: Length,
    fail: &dyn Fn(String) -> SpecError,
) -> Result<Vec<Subfield>, SpecError> {
    let mut out = Vec::with_capacity(subs.len());
    let mut offset = 0;
    for s in subs {
        if s.size == 0 || s.name.trim().is_empty() {
            return Err(fail(format!(
                "subfield '{}' needs a name and size > 0",
                s.name
            )));
        }
        out.push(Subfield {
            name: s.name.clone(),
            offset,
            size: s.size,
        });
        offset = match offset.checked_add(s.size) {
            Some(o) if o <= FIELD_SIZE_MAX => o,
            _ => {
                return Err(fail(format!(
                    "subfield sizes exceed the limit of {FIELD_SIZE_MAX}"
                )));
            }
        };
    }
    let total = match length {
        Length::Fixed(size) => size,
        Length::Variable { max, .. } => max,
    };
    if out.is_empty() || offset > total || (matches!(length, Length::Fixed(_)) && offset != total) {
        return Err(fail(format!(
            "subfield sizes add up to {offset}, the field holds {total}"
        )));
    }
    Ok(out)
}

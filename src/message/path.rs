//! Access to sub-elements by path: `55.9F26` (an EMV tag in DE55),
//! `48.0023` (a PDS in DE48), `90.2` (the second fixed subfield of DE90).
//! Which kind of path applies is decided by the field's spec.

use bytes::{Bytes, BytesMut};

use super::iso_message::Message;
use super::spec::{Spec, Structure};
use super::{pds, tlv};

/// A path that cannot be resolved, or a field whose inner structure is bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("path '{path}': expected FIELD.SUB")]
    Syntax { path: String },
    #[error("path '{path}': field {field} is not defined by the spec")]
    UndefinedField { path: String, field: u16 },
    #[error("path '{path}': field {field} has no sub-structure")]
    NoStructure { path: String, field: u16 },
    #[error("path '{path}': '{sub}' is not a valid sub-element name here")]
    BadSub { path: String, sub: String },
    #[error("field {field}: {source}")]
    Tlv { field: u16, source: tlv::TlvError },
    #[error("field {field}: {source}")]
    Pds { field: u16, source: pds::PdsError },
}

enum Sub {
    Tag(u32),
    Pds(u16),
    Index(usize),
}

fn resolve(spec: &Spec, path: &str) -> Result<(u16, Sub), PathError> {
    let syntax = || PathError::Syntax {
        path: path.to_string(),
    };
    let (field, sub) = path.split_once('.').ok_or_else(syntax)?;
    let field: u16 = field.parse().map_err(|_| syntax())?;
    let fs = spec.field(field).ok_or(PathError::UndefinedField {
        path: path.to_string(),
        field,
    })?;
    let bad = || PathError::BadSub {
        path: path.to_string(),
        sub: sub.to_string(),
    };
    let sub = match &fs.structure {
        Structure::Tlv => Sub::Tag(tlv::parse_tag_hex(sub).ok_or_else(bad)?),
        Structure::Pds => {
            if sub.len() != 4 {
                return Err(bad());
            }
            Sub::Pds(sub.parse().map_err(|_| bad())?)
        }
        Structure::Subfields(list) => {
            let i: usize = sub.parse().map_err(|_| bad())?;
            if i == 0 || i > list.len() {
                return Err(bad());
            }
            Sub::Index(i - 1)
        }
        Structure::None => {
            return Err(PathError::NoStructure {
                path: path.to_string(),
                field,
            });
        }
    };
    Ok((field, sub))
}

/// The value at `path`, or `None` when the field or sub-element is absent.
pub fn get(spec: &Spec, msg: &Message, path: &str) -> Result<Option<Bytes>, PathError> {
    let (field, sub) = resolve(spec, path)?;
    let Some(value) = msg.get(field) else {
        return Ok(None);
    };
    let slice_of = |inner: &[u8]| value.slice_ref(inner);
    Ok(match sub {
        Sub::Tag(tag) => tlv::parse(value)
            .map_err(|source| PathError::Tlv { field, source })?
            .into_iter()
            .find(|t| t.tag == tag)
            .map(|t| slice_of(t.value)),
        Sub::Pds(tag) => pds::parse(value)
            .map_err(|source| PathError::Pds { field, source })?
            .into_iter()
            .find(|p| p.tag == tag)
            .map(|p| slice_of(p.value)),
        Sub::Index(i) => {
            let Some(Structure::Subfields(list)) = spec.field(field).map(|f| &f.structure) else {
                return Ok(None);
            };
            let s = &list[i];
            value.get(s.offset..s.offset + s.size).map(slice_of)
        }
    })
}

/// Sets the value at `path`, replacing the sub-element or appending it.
/// The field is created if absent (for TLV and PDS fields).
pub fn set(spec: &Spec, msg: &mut Message, path: &str, new: &[u8]) -> Result<(), PathError> {
    let (field, sub) = resolve(spec, path)?;
    let old = msg.value(field).unwrap_or_default();
    let mut out = BytesMut::with_capacity(old.len() + new.len() + 8);
    match sub {
        Sub::Tag(tag) => {
            let items = tlv::parse(old).map_err(|source| PathError::Tlv { field, source })?;
            let mut done = false;
            for t in &items {
                let value = if t.tag == tag {
                    done = true;
                    new
                } else {
                    t.value
                };
                tlv::write(t.tag, value, &mut out);
            }
            if !done {
                tlv::write(tag, new, &mut out);
            }
        }
        Sub::Pds(tag) => {
            let items = pds::parse(old).map_err(|source| PathError::Pds { field, source })?;
            let mut done = false;
            let put = |t: u16, v: &[u8], out: &mut BytesMut| {
                pds::write(t, v, out).map_err(|source| PathError::Pds { field, source })
            };
            for p in &items {
                let value = if p.tag == tag {
                    done = true;
                    new
                } else {
                    p.value
                };
                put(p.tag, value, &mut out)?;
            }
            if !done {
                put(tag, new, &mut out)?;
            }
        }
        Sub::Index(i) => {
            let Some(Structure::Subfields(list)) = spec.field(field).map(|f| &f.structure) else {
                return Ok(());
            };
            let s = &list[i];
            if new.len() != s.size {
                return Err(PathError::BadSub {
                    path: path.to_string(),
                    sub: format!(
                        "value of {} bytes for a {}-byte subfield",
                        new.len(),
                        s.size
                    ),
                });
            }
            let total: usize = list.iter().map(|s| s.size).sum();
            let mut whole = old.to_vec();
            whole.resize(total.max(whole.len()), b'0');
            whole[s.offset..s.offset + s.size].copy_from_slice(new);
            out.extend_from_slice(&whole);
        }
    }
    msg.set(field, out.freeze())
        .map_err(|_| PathError::UndefinedField {
            path: path.to_string(),
            field,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_pds_and_subfield_paths() {
        let ascii = Spec::resolve("iso87-ascii").expect("spec");
        let mut m = Message::new("0100".parse().expect("mti"));
        set(&ascii, &mut m, "55.9F26", &[1, 2, 3, 4, 5, 6, 7, 8]).expect("set tag");
        set(&ascii, &mut m, "55.9F27", &[0x80]).expect("set tag");
        set(&ascii, &mut m, "55.9F26", &[9; 8]).expect("replace tag");
        assert_eq!(
            get(&ascii, &m, "55.9F26").expect("get").as_deref(),
            Some(&[9u8; 8][..])
        );
        assert_eq!(
            get(&ascii, &m, "55.9F27").expect("get").as_deref(),
            Some(&[0x80u8][..])
        );
        assert_eq!(get(&ascii, &m, "55.9F37").expect("get"), None);
        assert_eq!(&m.get(55).expect("DE55")[..3], &[0x9F, 0x26, 0x08]);

        set(&ascii, &mut m, "90.2", b"123456").expect("set subfield");
        assert_eq!(
            get(&ascii, &m, "90.2").expect("get").as_deref(),
            Some(&b"123456"[..])
        );
        assert_eq!(m.get(90).map(|v| v.len()), Some(42));
        assert!(set(&ascii, &mut m, "90.2", b"12").is_err());
        assert!(matches!(
            get(&ascii, &m, "90.9"),
            Err(PathError::BadSub { .. })
        ));
        assert!(matches!(
            get(&ascii, &m, "4.1"),
            Err(PathError::NoStructure { field: 4, .. })
        ));
        assert!(matches!(
            get(&ascii, &m, "x"),
            Err(PathError::Syntax { .. })
        ));

        let ipm = Spec::resolve("mastercard-ipm").expect("spec");
        let mut r = Message::new("1240".parse().expect("mti"));
        set(&ipm, &mut r, "48.0023", b"POI").expect("pds");
        set(&ipm, &mut r, "48.0165", b"M").expect("pds");
        assert_eq!(r.get_str(48), Some("0023003POI0165001M"));
        assert_eq!(
            get(&ipm, &r, "48.0165").expect("get").as_deref(),
            Some(&b"M"[..])
        );
        assert!(matches!(
            get(&ipm, &r, "48.23"),
            Err(PathError::BadSub { .. })
        ));
    }
}

//! The key-management commands' requests: A0 (generate a key), BU (its
//! check value) and A6 (import a key from under a zone master key), split
//! from `request` to keep each file to one screenful of layouts.

use super::error::CodecError;
use super::fields::{Reader, check_hex, put_number};
use super::key::{KeyCryptogram, KeyScheme, Untagged};
use super::request::{flag, read_scheme};

/// A0: generate a key, optionally also under a ZMK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateKey {
    /// 0 generate, 1 generate and encrypt under the ZMK.
    pub mode: u8,
    pub key_type: String,
    pub lmk_scheme: KeyScheme,
    /// Mode 1: the ZMK (tagged, or 16H untagged) and the export scheme.
    pub zmk: Option<(KeyCryptogram, KeyScheme)>,
}

/// BU: the check value of a key under the LMK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// 2H: the LMK pair code (`FF`: use `key_type`).
    pub key_type_code: String,
    /// 0 single, 1 double, 2 triple.
    pub length_flag: u8,
    pub key: KeyCryptogram,
    /// After `;`: the 3H key type.
    pub key_type: Option<String>,
}

/// A6: import a key from under a ZMK to under the LMK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportKey {
    pub key_type: String,
    pub zmk: KeyCryptogram,
    pub key: KeyCryptogram,
    pub lmk_scheme: KeyScheme,
}

impl GenerateKey {
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mode = flag(r, 1, "mode")?;
        let key_type = r.hex(3, "key type")?;
        let lmk_scheme = read_scheme(r, "key scheme (LMK)")?;
        let zmk = if mode == 1 {
            let k = KeyCryptogram::read(r, Untagged::Single, "ZMK")?;
            Some((k, read_scheme(r, "key scheme (ZMK)")?))
        } else {
            None
        };
        Ok(GenerateKey {
            mode,
            key_type,
            lmk_scheme,
            zmk,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        put_number(out, self.mode.into(), 1, "mode")?;
        check_hex(&self.key_type, 3, "key type")?;
        out.extend_from_slice(self.key_type.as_bytes());
        out.push(self.lmk_scheme.field_letter());
        match (&self.zmk, self.mode) {
            (Some((k, s)), 1) => {
                k.write(out, Untagged::Single, "ZMK")?;
                out.push(s.field_letter());
            }
            (None, 0) => {}
            _ => {
                return Err(CodecError::Encode {
                    field: "ZMK",
                    why: "needed for mode 1 only",
                });
            }
        }
        Ok(())
    }
}

impl KeyCheck {
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let key_type_code = r.hex(2, "key type code")?;
        let length_flag = flag(r, 2, "key length flag")?;
        let key = KeyCryptogram::read(r, Untagged::Single, "key")?;
        let key_type = if r.peek() == Some(b';') {
            r.take(1, "delimiter")?;
            Some(r.hex(3, "key type")?)
        } else {
            None
        };
        Ok(KeyCheck {
            key_type_code,
            length_flag,
            key,
            key_type,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        check_hex(&self.key_type_code, 2, "key type code")?;
        out.extend_from_slice(self.key_type_code.as_bytes());
        put_number(out, self.length_flag.into(), 1, "key length flag")?;
        self.key.write(out, Untagged::Single, "key")?;
        if let Some(t) = &self.key_type {
            check_hex(t, 3, "key type")?;
            out.push(b';');
            out.extend_from_slice(t.as_bytes());
        }
        Ok(())
    }
}

impl ImportKey {
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(ImportKey {
            key_type: r.hex(3, "key type")?,
            zmk: KeyCryptogram::read(r, Untagged::Single, "ZMK")?,
            key: KeyCryptogram::read(r, Untagged::Single, "key (ZMK)")?,
            lmk_scheme: read_scheme(r, "key scheme (LMK)")?,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        check_hex(&self.key_type, 3, "key type")?;
        out.extend_from_slice(self.key_type.as_bytes());
        self.zmk.write(out, Untagged::Single, "ZMK")?;
        self.key.write(out, Untagged::Single, "key (ZMK)")?;
        out.push(self.lmk_scheme.field_letter());
        Ok(())
    }
}

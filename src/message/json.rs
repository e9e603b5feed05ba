//! JSON import and export of messages, for fixtures and tools:
//! `{"mti": "0100", "fields": {"2": "4111...", "52": "0123ABCD..."}}`.
//! Text fields are strings of their characters; binary fields are uppercase
//! hex. Export masks card data unless asked to reveal it, as
//! [`super::sensitive::show_field`] decides: sensitive fields, and the card
//! data inside TLV fields (DE55), whose masked form is a list of
//! `TAG=value` objects rather than hex (it cannot be imported back).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::iso_message::Message;
use super::mti::Mti;
use super::sensitive::{plain, show_field};
use super::spec::{Class, Spec};

/// Whether sensitive fields are masked in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// PAN as first 6 / last 4, other card data replaced by a placeholder.
    Masked,
    /// Clear values: the output then holds card data.
    Clear,
}

/// JSON that does not describe a message of the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    #[error("not a JSON object with \"mti\" and \"fields\"")]
    Shape,
    #[error("\"mti\" is not four decimal digits")]
    Mti,
    #[error("field key '{key}' is not a field number")]
    Key { key: String },
    #[error("field {field}: not defined by spec {spec}")]
    UndefinedField { field: u16, spec: String },
    #[error("field {field}: value must be a string")]
    NotString { field: u16 },
    #[error("field {field}: binary value is not hexadecimal")]
    NotHex { field: u16 },
    #[error("field {field}: character outside Latin-1")]
    NotLatin1 { field: u16 },
}

/// The message as JSON.
pub fn to_json(spec: &Spec, msg: &Message, reveal: Reveal) -> Value {
    let mut fields = Map::new();
    for (n, value) in msg.values() {
        let fs = spec.field(n);
        let text = match reveal {
            Reveal::Masked => show_field(fs, value),
            Reveal::Clear => plain(fs, value),
        };
        fields.insert(n.to_string(), Value::String(text));
    }
    let mut root = Map::new();
    root.insert("mti".into(), Value::String(msg.mti().to_string()));
    root.insert("fields".into(), Value::Object(fields));
    Value::Object(root)
}

/// A message from JSON; values are checked against the spec only on build.
pub fn from_json(spec: &Spec, json: &Value) -> Result<Message, JsonError> {
    let obj = json.as_object().ok_or(JsonError::Shape)?;
    let mti: Mti = obj
        .get("mti")
        .and_then(Value::as_str)
        .ok_or(JsonError::Shape)?
        .parse()
        .map_err(|_| JsonError::Mti)?;
    let fields = obj
        .get("fields")
        .and_then(Value::as_object)
        .ok_or(JsonError::Shape)?;
    let mut msg = Message::new(mti);
    for (key, value) in fields {
        let field: u16 = key
            .parse()
            .map_err(|_| JsonError::Key { key: key.clone() })?;
        let fs = spec.field(field).ok_or(JsonError::UndefinedField {
            field,
            spec: spec.name.clone(),
        })?;
        let text = value.as_str().ok_or(JsonError::NotString { field })?;
        let bytes = if fs.class == Class::B {
            hex::decode(text).map_err(|_| JsonError::NotHex { field })?
        } else {
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| JsonError::NotLatin1 { field }))
                .collect::<Result<Vec<u8>, _>>()?
        };
        msg.set(field, Bytes::from(bytes))
            .map_err(|_| JsonError::UndefinedField {
                field,
                spec: spec.name.clone(),
            })?;
    }
    Ok(msg)
}

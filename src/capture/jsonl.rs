//! cardswitch's own capture format: JSON lines, one frame per line:
//! `{"time":"2025-01-02T03:04:05.123456Z","link":"terminals","connection":3,
//! "side":"accepted","direction":"in","mti":"0100","tpdu":"6000010002",
//! "hex":"30313030...","masked":true}`. `side` says who opened the TCP
//! connection (`accepted`: the writer was the server), `direction` is seen
//! from the writer. `mti` is the MTI as four digits, decoded with the
//! link's spec (ASCII, EBCDIC or BCD), on every frame it can be read from,
//! withheld ones included; readers do not need it (captures written before
//! it was there read the same). A frame whose content was withheld (it
//! could not be masked) has `"hex": null` and is skipped on reading.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::record::{Capture, CapturedFrame, Position, tpdu_from, tpdu_hex};
use crate::link::framing::Tpdu;

/// Longest line read, in bytes (a 64 KiB frame in hex plus metadata).
pub const LINE_BYTES_MAX: usize = 160 * 1024;

/// One line of the format.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub time: String,
    pub link: String,
    pub connection: u64,
    pub side: LineSide,
    pub direction: LineDirection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpdu: Option<String>,
    pub hex: Option<String>,
    pub masked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineSide {
    Accepted,
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineDirection {
    In,
    Out,
}

/// A line that is not a frame of this format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonLineError {
    #[error("line {line}: longer than {max} bytes")]
    TooLong { line: u64, max: usize },
    #[error("line {line}, column {column}: not a capture line: {reason}")]
    Json {
        line: u64,
        column: usize,
        reason: String,
    },
    #[error("line {line}: \"time\" is not an RFC 3339 time")]
    Time { line: u64 },
    #[error("line {line}: \"hex\" is not hexadecimal (at character {at})")]
    Hex { line: u64, at: usize },
    #[error("line {line}: \"tpdu\" is not 10 hex digits")]
    Tpdu { line: u64 },
}

/// The line for one frame; `hex` None when the content is withheld. The
/// MTI is given decoded (see [`super::record::mti_text`]): the frame's
/// bytes alone do not say whether it is ASCII, EBCDIC or BCD.
#[allow(clippy::too_many_arguments)]
pub fn line(
    time: SystemTime,
    link: &str,
    connection: u64,
    side: LineSide,
    direction: LineDirection,
    mti: Option<String>,
    tpdu: Option<&Tpdu>,
    message: Option<&[u8]>,
    masked: bool,
) -> String {
    let line = Line {
        time: humantime::format_rfc3339_micros(time).to_string(),
        link: link.to_string(),
        connection,
        side,
        direction,
        mti,
        tpdu: tpdu.map(tpdu_hex),
        hex: message.map(hex::encode_upper),
        masked,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Reads a whole JSON-lines capture; bad lines become problems.
pub fn read(text: &str) -> Capture {
    let mut capture = Capture::default();
    for (i, raw) in text.lines().enumerate() {
        let number = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match parse_line(raw, number) {
            Ok(Some(frame)) => capture.frames.push(frame),
            Ok(None) => {}
            Err(e) => capture.problems.push(e.to_string()),
        }
    }
    capture
}

/// One line: a frame, `None` for a withheld one, or why it is not a line.
pub fn parse_line(raw: &str, number: u64) -> Result<Option<CapturedFrame>, JsonLineError> {
    if raw.len() > LINE_BYTES_MAX {
        return Err(JsonLineError::TooLong {
            line: number,
            max: LINE_BYTES_MAX,
        });
    }
    let line: Line = serde_json::from_str(raw).map_err(|e| JsonLineError::Json {
        line: number,
        column: e.column(),
        reason: e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or("")
            .to_string(),
    })?;
    let time = humantime::parse_rfc3339_weak(&line.time)
        .map_err(|_| JsonLineError::Time { line: number })?;
    let time_us = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64;
    let Some(hex_text) = &line.hex else {
        return Ok(None);
    };
    let message = hex::decode(hex_text).map_err(|e| JsonLineError::Hex {
        line: number,
        at: match e {
            hex::FromHexError::InvalidHexCharacter { index, .. } => index,
            _ => hex_text.len(),
        },
    })?;
    let tpdu = match &line.tpdu {
        None => None,
        Some(t) => {
            let b = hex::decode(t).map_err(|_| JsonLineError::Tpdu { line: number })?;
            let b: [u8; 5] = b
                .try_into()
                .map_err(|_| JsonLineError::Tpdu { line: number })?;
            Some(tpdu_from(&b))
        }
    };
    let from_client = matches!(
        (line.side, line.direction),
        (LineSide::Accepted, LineDirection::In) | (LineSide::Connected, LineDirection::Out)
    );
    Ok(Some(CapturedFrame {
        time_us,
        link: line.link,
        connection: line.connection,
        from_client,
        tpdu,
        message: Bytes::from(message),
        position: Position::Line { number },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let tpdu = Tpdu {
            id: 0x60,
            destination: 1,
            source: 2,
        };
        let l = line(
            t,
            "pos",
            7,
            LineSide::Connected,
            LineDirection::Out,
            Some("0800".into()),
            Some(&tpdu),
            Some(b"0800\x82"),
            true,
        );
        let f = parse_line(&l, 1).expect("parses").expect("a frame");
        assert_eq!(f.time_us, 1_700_000_000_123_456);
        assert_eq!(f.link, "pos");
        assert!(f.from_client);
        assert_eq!(f.tpdu, Some(tpdu));
        assert_eq!(&f.message[..], b"0800\x82");
        assert!(l.contains("\"mti\":\"0800\""));
    }

    #[test]
    fn bad_lines_name_line_and_place() {
        let c = read("{\"time\": 5}\n\n{nope\n");
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        assert!(c.problems[0].starts_with("line 1"), "{}", c.problems[0]);
        assert!(
            c.problems[1].starts_with("line 3, column 2"),
            "{}",
            c.problems[1]
        );
        let t = "{\"time\":\"2025-01-01T00:00:00Z\",\"link\":\"a\",\"connection\":1,\"side\":\"accepted\",\"direction\":\"in\",\"hex\":\"30G1\",\"masked\":true}";
        let e = parse_line(t, 4).unwrap_err().to_string();
        assert_eq!(e, "line 4: \"hex\" is not hexadecimal (at character 2)");
    }
}

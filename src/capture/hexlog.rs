//! Plain hex logs: one message per line, as hex from the MTI on, optionally
//! preceded by a time and a direction:
//!
//! ```text
//! # comment
//! 2025-01-02T03:04:05.123Z > 0100723A...
//! 1735787045.456 < 0110...
//! 0800822000...
//! ```
//!
//! A time is RFC 3339 or Unix seconds with a fraction. A direction is `>`
//! (`out`, `tx`, `send`: sent by the client, usually a request) or `<`
//! (`in`, `rx`, `recv`); without one, a response MTI (third digit odd) is
//! taken as coming from the server. Lines that do not parse are reported
//! with their line and column and skipped.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;

use super::record::{Capture, CapturedFrame, Position};

/// Longest line read, in characters.
pub const LINE_CHARS_MAX: usize = 140 * 1024;

/// A line that is not a logged message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexLineError {
    #[error("line {line}: longer than {max} characters")]
    TooLong { line: u64, max: usize },
    #[error("line {line}, column {column}: '{found}' is not a hex digit")]
    NotHex {
        line: u64,
        column: usize,
        found: char,
    },
    #[error("line {line}, column {column}: odd number of hex digits ({digits})")]
    OddLength {
        line: u64,
        column: usize,
        digits: usize,
    },
    #[error("line {line}, column {column}: expected a time, a direction (> or <) or hex")]
    UnknownToken { line: u64, column: usize },
    #[error("line {line}, column {column}: message of {bytes} bytes is shorter than an MTI")]
    TooShort {
        line: u64,
        column: usize,
        bytes: usize,
    },
}

/// Reads a whole hex log; bad lines become problems.
pub fn read(text: &str) -> Capture {
    let mut capture = Capture::default();
    for (i, raw) in text.lines().enumerate() {
        match parse_line(raw, i as u64 + 1) {
            Ok(Some(f)) => capture.frames.push(f),
            Ok(None) => {}
            Err(e) => capture.problems.push(e.to_string()),
        }
    }
    capture
}

/// One line: a frame, `None` for a blank or comment line, or an error.
pub fn parse_line(raw: &str, line: u64) -> Result<Option<CapturedFrame>, HexLineError> {
    if raw.len() > LINE_CHARS_MAX {
        return Err(HexLineError::TooLong {
            line,
            max: LINE_CHARS_MAX,
        });
    }
    let trimmed = raw.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let tokens: Vec<(usize, &str)> = tokens(raw).collect();
    let Some((&(hex_col, hex_text), leading)) = tokens.split_last() else {
        return Ok(None);
    };
    let mut time_us = 0;
    let mut from_client = None;
    for &(column, token) in leading {
        if let Some(dir) = direction(token) {
            from_client = Some(dir);
        } else if let Some(t) = time(token) {
            time_us = t;
        } else {
            return Err(HexLineError::UnknownToken { line, column });
        }
    }
    let message = decode_hex(hex_text, line, hex_col)?;
    if message.len() < 4 {
        return Err(HexLineError::TooShort {
            line,
            column: hex_col,
            bytes: message.len(),
        });
    }
    let from_client = from_client.unwrap_or_else(|| !is_response_mti(&message));
    Ok(Some(CapturedFrame {
        time_us,
        link: "hexlog".into(),
        connection: 1,
        from_client,
        tpdu: None,
        message: Bytes::from(message),
        position: Position::Line { number: line },
    }))
}

/// Whitespace-separated tokens with their 1-based columns.
fn tokens(raw: &str) -> impl Iterator<Item = (usize, &str)> {
    raw.split_whitespace().map(move |t| {
        let offset = t.as_ptr() as usize - raw.as_ptr() as usize;
        (raw[..offset].chars().count() + 1, t)
    })
}

/// `Some(true)` for a client-to-server direction token.
fn direction(token: &str) -> Option<bool> {
    match token.to_ascii_lowercase().as_str() {
        ">" | "->" | "out" | "tx" | "send" | "sent" => Some(true),
        "<" | "<-" | "in" | "rx" | "recv" | "received" => Some(false),
        _ => None,
    }
}

/// Microseconds since the epoch from RFC 3339 or Unix seconds.
fn time(token: &str) -> Option<u64> {
    if let Ok(t) = humantime::parse_rfc3339_weak(token) {
        return t
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_micros() as u64);
    }
    let (secs, frac) = token.split_once('.').unwrap_or((token, ""));
    if secs.is_empty()
        || secs.len() > 12
        || frac.len() > 9
        || !secs.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    Some(Duration::new(secs, nanos).as_micros() as u64)
}

fn decode_hex(text: &str, line: u64, column: usize) -> Result<Vec<u8>, HexLineError> {
    if let Some((i, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        return Err(HexLineError::NotHex {
            line,
            column: column + i,
            found: c,
        });
    }
    if !text.len().is_multiple_of(2) {
        return Err(HexLineError::OddLength {
            line,
            column,
            digits: text.len(),
        });
    }
    hex::decode(text).map_err(|_| HexLineError::OddLength {
        line,
        column,
        digits: text.len(),
    })
}

/// A response MTI (third digit odd), in ASCII or BCD.
fn is_response_mti(message: &[u8]) -> bool {
    let third = if message[..4].iter().all(u8::is_ascii_digit) {
        message[2] - b'0'
    } else {
        message[1] >> 4
    };
    third % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_directions_and_bare_lines() {
        let c = read(
            "# a log\n2025-01-02T03:04:05.5Z > 30313030\n1735787045.25 < 30313130\n30383130\n\n",
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.frames.len(), 3);
        assert_eq!(c.frames[0].time_us, 1_735_787_045_500_000);
        assert!(c.frames[0].from_client);
        assert_eq!(c.frames[1].time_us, 1_735_787_045_250_000);
        assert!(!c.frames[1].from_client);
        assert!(!c.frames[2].from_client, "0810 is a response");
        assert_eq!(c.frames[2].position, Position::Line { number: 4 });
    }

    #[test]
    fn errors_name_line_and_column() {
        let c = read("30313030\n> 3031Z030\nnoon > 30313030\n> 303130\n  > 3031303\n");
        assert_eq!(c.frames.len(), 1);
        assert_eq!(
            c.problems,
            vec![
                "line 2, column 7: 'Z' is not a hex digit",
                "line 3, column 1: expected a time, a direction (> or <) or hex",
                "line 4, column 3: message of 3 bytes is shorter than an MTI",
                "line 5, column 5: odd number of hex digits (7)",
            ]
        );
    }
}

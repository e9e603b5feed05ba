//! The load generator's `--record` file: what the terminals saw, as JSON
//! lines without card data, for tests that check a run end to end (that
//! the acquirer kept only what it was told was approved, and that what it
//! reversed was not kept). Every line has a `kind`:
//!
//! - `response`: a response to a request: `rrn`, `stan`, `terminal`,
//!   `response_code`, `late` (true when it came after the request's time-out).
//! - `timed_out`: a request got no answer in time: `rrn`, `stan`,
//!   `terminal`, `reversed` (whether a reversal was sent for it).
//! - `reversal`: one step of a timed-out request's reversal, `event` being
//!   `sent` (first send), `answered` (with `reversal_response_code`) or
//!   `unanswered` (given up after the last repeat, or its connection
//!   ended); with the original's `rrn`, `stan` and `terminal`, and the
//!   reversal's own `reversal_mti` (as last sent) and `reversal_stan`.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::load::Expected;
use super::reversal::Original;

/// The open record file, shared by the connections.
#[derive(Debug)]
pub struct RecordFile {
    out: Mutex<BufWriter<std::fs::File>>,
}

/// One step of a reversal, for [`RecordFile::reversal`].
#[derive(Debug, Clone, Copy)]
pub enum ReversalEvent<'a> {
    Sent,
    /// With the response code of the answer.
    Answered(&'a str),
    Unanswered,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl RecordFile {
    pub fn create(path: &Path) -> std::io::Result<RecordFile> {
        Ok(RecordFile {
            out: Mutex::new(BufWriter::new(std::fs::File::create(path)?)),
        })
    }

    fn write(&self, line: Value) {
        let mut w = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(w, "{line}");
    }

    /// Writes what is buffered (also done when the file is dropped).
    pub fn flush(&self) {
        let mut w = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = w.flush();
    }

    /// A response to the request `expected` describes.
    pub fn response(&self, expected: &Expected, response_code: &str, late: bool) {
        self.write(json!({
            "kind": "response",
            "rrn": text(&expected.rrn),
            "stan": text(&expected.stan),
            "terminal": text(&expected.terminal),
            "response_code": response_code,
            "late": late,
        }));
    }

    /// A request timed out.
    pub fn timed_out(&self, expected: &Expected, reversed: bool) {
        self.write(json!({
            "kind": "timed_out",
            "rrn": text(&expected.rrn),
            "stan": text(&expected.stan),
            "terminal": text(&expected.terminal),
            "reversed": reversed,
        }));
    }

    /// A step of the reversal (MTI `mti`, STAN `stan`) of `original`.
    pub fn reversal(&self, original: &Original, mti: &str, stan: &str, event: ReversalEvent) {
        let mut line = json!({
            "kind": "reversal",
            "event": match event {
                ReversalEvent::Sent => "sent",
                ReversalEvent::Answered(_) => "answered",
                ReversalEvent::Unanswered => "unanswered",
            },
            "rrn": text(&original.rrn),
            "stan": text(&original.stan),
            "terminal": text(&original.terminal),
            "reversal_mti": mti,
            "reversal_stan": stan,
        });
        if let ReversalEvent::Answered(code) = event {
            line["reversal_response_code"] = Value::from(code);
        }
        self.write(line);
    }
}

//! Capture writing: the [`FrameTap`] that a command installs for
//! `--capture FILE`. The tap only copies the frame (reference-counted
//! bytes) into a bounded queue; a writer thread masks, encodes and writes.
//! When the queue is full the frame is counted in
//! `cardswitch_capture_frames_dropped_total` and traffic goes on unslowed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Encoder;

use super::jsonl::{self, LineDirection, LineSide};
use super::mask::mask_message;
use super::pcap_write::{PcapFrameWriter, PcapWriteError};
use super::record::mti_text;
use crate::link::framing::{Frame, FrameCodec, Framing};
use crate::link::tap::{Direction, FrameTap, Side, TapFrame};
use crate::message::{Encoding, Spec};
use crate::private_file::create_private;

/// Frames queued for the writer at most.
pub const QUEUE_FRAMES_MAX: usize = 65_536;

/// The file format written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap,
    JsonLines,
}

impl CaptureFormat {
    /// The format a file name implies: `.pcap`, or `.jsonl` / `.json`.
    pub fn from_path(path: &Path) -> Option<CaptureFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "pcap" => Some(CaptureFormat::Pcap),
            "jsonl" | "json" | "ndjson" => Some(CaptureFormat::JsonLines),
            _ => None,
        }
    }
}

/// What to capture and how.
pub struct CaptureOptions {
    pub path: PathBuf,
    pub format: CaptureFormat,
    /// Mask card data (the default); false writes it in clear.
    pub masked: bool,
    /// The spec of each link by name, for masking.
    pub specs: HashMap<String, Arc<Spec>>,
    /// The spec of links not named in `specs`.
    pub default_spec: Option<Arc<Spec>>,
}

/// A capture file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureWriteError {
    #[error("capture file {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("capture file {path}: {reason}")]
    Write { path: String, reason: String },
}

/// Counts of one capture, when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub written: u64,
    /// Frames whose content was withheld because they could not be masked.
    pub withheld: u64,
}

struct Event {
    time: SystemTime,
    link: Arc<str>,
    connection: u64,
    side: Side,
    direction: Direction,
    framing: Framing,
    frame: Frame,
}

enum Command {
    Frame(Box<Event>),
    Stop,
}

/// The tap: hands frames to the writer thread without blocking.
pub struct CaptureSink {
    tx: SyncSender<Command>,
    dropped: metrics::Counter,
}

impl FrameTap for CaptureSink {
    fn frame(&self, seen: &TapFrame<'_>) {
        let event = Event {
            time: SystemTime::now(),
            link: seen.link.clone(),
            connection: seen.connection,
            side: seen.side,
            direction: seen.direction,
            framing: seen.framing.clone(),
            frame: seen.frame.clone(),
        };
        match self.tx.try_send(Command::Frame(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.increment(1);
            }
        }
    }
}

/// Ends the capture: [`CaptureHandle::finish`] writes what is queued and
/// closes the file.
pub struct CaptureHandle {
    tx: SyncSender<Command>,
    thread: std::thread::JoinHandle<Result<CaptureStats, CaptureWriteError>>,
}

impl CaptureHandle {
    pub fn finish(self) -> Result<CaptureStats, CaptureWriteError> {
        let _ = self.tx.send(Command::Stop);
        self.thread.join().unwrap_or(Err(CaptureWriteError::Write {
            path: String::new(),
            reason: "the capture writer stopped unexpectedly".into(),
        }))
    }
}

/// Opens the file and starts the writer thread.
pub fn start(
    options: CaptureOptions,
) -> Result<(Arc<CaptureSink>, CaptureHandle), CaptureWriteError> {
    let path = options.path.display().to_string();
    let file = create_private(&options.path).map_err(|source| CaptureWriteError::Open {
        path: path.clone(),
        source,
    })?;
    let out = BufWriter::new(file);
    let writer = match options.format {
        CaptureFormat::Pcap => {
            Writer::Pcap(
                PcapFrameWriter::new(out).map_err(|e| CaptureWriteError::Write {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            )
        }
        CaptureFormat::JsonLines => Writer::Json(out),
    };
    let (tx, rx) = sync_channel(QUEUE_FRAMES_MAX);
    let thread = std::thread::Builder::new()
        .name("capture-writer".into())
        .spawn(move || write_loop(rx, writer, options, path))
        .map_err(|source| CaptureWriteError::Open {
            path: String::new(),
            source,
        })?;
    let sink = Arc::new(CaptureSink {
        tx: tx.clone(),
        dropped: metrics::counter!("cardswitch_capture_frames_dropped_total"),
    });
    Ok((sink, CaptureHandle { tx, thread }))
}

enum Writer {
    Pcap(PcapFrameWriter<BufWriter<File>>),
    Json(BufWriter<File>),
}

fn write_loop(
    rx: Receiver<Command>,
    mut writer: Writer,
    options: CaptureOptions,
    path: String,
) -> Result<CaptureStats, CaptureWriteError> {
    let failed = |reason: String| CaptureWriteError::Write {
        path: path.clone(),
        reason,
    };
    let written = metrics::counter!("cardswitch_capture_frames_written_total");
    let withheld = metrics::counter!("cardswitch_capture_frames_withheld_total");
    let mut stats = CaptureStats::default();
    loop {
        let command = match rx.try_recv() {
            Ok(c) => c,
            Err(TryRecvError::Empty) => {
                flush(&mut writer).map_err(|e| failed(e.to_string()))?;
                match rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let Command::Frame(event) = command else {
            break;
        };
        let spec = link_spec(&options, &event);
        let message = stored_message(&options, spec, &event);
        if message.is_none() {
            stats.withheld += 1;
            withheld.increment(1);
        }
        // From the frame as received, so a withheld frame names its MTI too;
        // a link without a spec is taken as ASCII.
        let mti = mti_text(
            spec.map_or(Encoding::Ascii, |s| s.mti_encoding),
            &event.frame.message,
        );
        let stored = Stored {
            message: message.as_ref(),
            mti,
            masked: options.masked,
        };
        write_event(&mut writer, &event, stored).map_err(|e| failed(e.to_string()))?;
        stats.written += 1;
        written.increment(1);
    }
    flush(&mut writer).map_err(|e| failed(e.to_string()))?;
    Ok(stats)
}

/// The spec of the event's link, if the capture knows one.
fn link_spec<'a>(options: &'a CaptureOptions, event: &Event) -> Option<&'a Spec> {
    options
        .specs
        .get(&*event.link)
        .or(options.default_spec.as_ref())
        .map(|s| &**s)
}

/// The message as stored: masked unless unmasked was asked for; `None`
/// when it cannot be masked (no spec for the link, or it does not parse).
fn stored_message(options: &CaptureOptions, spec: Option<&Spec>, event: &Event) -> Option<Bytes> {
    if !options.masked {
        return Some(event.frame.message.clone());
    }
    mask_message(spec?, &event.frame.message).ok()
}

/// What is written of one frame.
struct Stored<'a> {
    /// The message as stored, `None` when withheld.
    message: Option<&'a Bytes>,
    /// Its MTI decoded with the link's spec.
    mti: Option<String>,
    masked: bool,
}

fn write_event(
    writer: &mut Writer,
    event: &Event,
    stored: Stored<'_>,
) -> Result<(), PcapWriteError> {
    let Stored {
        message,
        mti,
        masked,
    } = stored;
    let from_client = matches!(
        (event.side, event.direction),
        (Side::Accepted, Direction::In) | (Side::Connected, Direction::Out)
    );
    match writer {
        Writer::Json(out) => {
            let line = jsonl::line(
                event.time,
                &event.link,
                event.connection,
                match event.side {
                    Side::Accepted => LineSide::Accepted,
                    Side::Connected => LineSide::Connected,
                },
                match event.direction {
                    Direction::In => LineDirection::In,
                    Direction::Out => LineDirection::Out,
                },
                mti,
                event.frame.tpdu.as_ref(),
                message.map(|m| &m[..]),
                masked,
            );
            writeln!(out, "{line}")?;
        }
        Writer::Pcap(pcap) => {
            let Some(message) = message else {
                return Ok(());
            };
            let mut wire = BytesMut::new();
            let mut codec = FrameCodec::new(event.framing.clone());
            let frame = Frame {
                tpdu: event.frame.tpdu,
                message: message.clone(),
            };
            if codec.encode(frame, &mut wire).is_err() {
                return Ok(());
            }
            let time_us = event
                .time
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0);
            pcap.write_frame(time_us, &event.link, event.connection, from_client, &wire)?;
        }
    }
    Ok(())
}

fn flush(writer: &mut Writer) -> std::io::Result<()> {
    match writer {
        Writer::Json(out) => out.flush(),
        Writer::Pcap(p) => p.flush(),
    }
}

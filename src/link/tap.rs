//! A capture hook: every frame a connection reads or queues can be shown
//! to a [`FrameTap`] (the capture writer of `crate::capture`). The tap is
//! installed once per process by the command line, before links open, so
//! that the switch's wiring needs no change; a connection opened without a
//! tap costs one `Option` check per frame.
//!
//! A tap must not block: it runs on the traffic path (the capture sink
//! hands frames to a bounded channel and counts what does not fit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::framing::{Frame, Framing};

/// Which way a frame went, seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Read from the peer.
    In,
    /// Queued for the peer.
    Out,
}

/// Who opened the TCP connection: the peer (we accepted) or us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A listener accepted it: this process is the server.
    Accepted,
    /// This process connected: it is the client.
    Connected,
}

/// One frame seen on a connection.
pub struct TapFrame<'a> {
    pub link: &'a Arc<str>,
    /// Unique per process, in the order connections opened.
    pub connection: u64,
    pub side: Side,
    pub direction: Direction,
    pub framing: &'a Framing,
    pub frame: &'a Frame,
}

/// Receives every frame of every tapped connection; must not block.
pub trait FrameTap: Send + Sync + 'static {
    fn frame(&self, seen: &TapFrame<'_>);
}

static INSTALLED: OnceLock<Arc<dyn FrameTap>> = OnceLock::new();
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Installs the process's tap; false when one is already installed.
pub fn install(tap: Arc<dyn FrameTap>) -> bool {
    INSTALLED.set(tap).is_ok()
}

/// The installed tap, if any.
pub fn installed() -> Option<Arc<dyn FrameTap>> {
    INSTALLED.get().cloned()
}

/// The tap of one connection, with what it reports besides the frame.
#[derive(Clone)]
pub struct ConnectionTap {
    tap: Arc<dyn FrameTap>,
    link: Arc<str>,
    connection: u64,
    side: Side,
    framing: Framing,
}

impl ConnectionTap {
    /// A tap for a new connection of `link` (numbered here).
    pub fn new(tap: Arc<dyn FrameTap>, link: &str, side: Side, framing: Framing) -> ConnectionTap {
        ConnectionTap {
            tap,
            link: Arc::from(link),
            connection: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            side,
            framing,
        }
    }

    /// Shows one frame to the tap.
    pub fn see(&self, direction: Direction, frame: &Frame) {
        self.tap.frame(&TapFrame {
            link: &self.link,
            connection: self.connection,
            side: self.side,
            direction,
            framing: &self.framing,
            frame,
        });
    }
}

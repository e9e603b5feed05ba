//! Replies whose delivery the core waits for, confirmed by the loop itself:
//! after each turn it reads how far each connection's writer has got and
//! reports the replies written (or never to be: the writer stopped), then
//! releases their requests' permits. A connection whose replies are still
//! queued is armed: its writer's next write sends one `Event::Written`,
//! which brings the loop round again. One wake-up a write, where a task a
//! connection cost two channel hops a reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use super::event_loop::{Conn, Event, Node};
use crate::link::connection::WrittenHook;
use crate::switch::core::{Core, Input, Time};

/// The hook a connection's writer calls after each write: wakes the loop
/// when it is armed, once.
pub(super) fn wake_on_write(
    armed: Arc<AtomicBool>,
    own: mpsc::UnboundedSender<Event>,
) -> WrittenHook {
    Arc::new(move || {
        if armed.swap(false, Ordering::AcqRel) {
            let _ = own.send(Event::Written);
        }
    })
}

impl Node {
    /// Reports the replies written since the last look; true when any was
    /// (the core may then have actions to perform). Connections with
    /// replies still queued stay listed, armed.
    pub(super) fn confirm_written(&mut self, now: Time) -> bool {
        let Node {
            conns,
            confirming,
            core,
            ..
        } = self;
        let mut reported = false;
        confirming.retain(|id| {
            let Some(conn) = conns.get_mut(id) else {
                return false;
            };
            reported |= settle(conn, core, now);
            !conn.confirms.is_empty()
        });
        reported
    }
}

/// Reports `conn`'s replies written, in order; with some still queued,
/// arms the connection, then looks once more (a write between the look
/// and the arm would otherwise wake nobody).
fn settle(conn: &mut Conn, core: &mut Core, now: Time) -> bool {
    let mut reported = false;
    loop {
        while let Some(delivered) = conn
            .confirms
            .front()
            .and_then(|c| conn.written.reached_now(c.end))
        {
            let Some(confirm) = conn.confirms.pop_front() else {
                break;
            };
            core.handle(
                now,
                Input::Written {
                    txn: confirm.txn,
                    delivered,
                },
            );
            drop(confirm.permit);
            reported = true;
        }
        if conn.confirms.is_empty() || conn.armed.swap(true, Ordering::AcqRel) {
            return reported;
        }
    }
}

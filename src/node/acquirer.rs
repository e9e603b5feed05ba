//! One acquirer connection: its frames are sorted (`inbound.rs`), each
//! request goes to the loop with a permit for one more in flight (reading
//! pauses at the connection's limit), and its replies come back through
//! the loop. On close or shutdown, reading stops and the requests in
//! flight are still answered before the connection closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::event_loop::{Event, NodeHandle};
use super::in_flight::InFlight;
use super::inbound::{Inbound, inbound};
use crate::link::listener::Accepted;
use crate::message::Spec;
use crate::switch::core::ConnId;

/// What a connection needs to know of its listener.
pub struct AcquirerPort {
    pub index: usize,
    pub name: String,
    pub spec: Arc<Spec>,
    pub in_flight_max: u32,
    pub node: NodeHandle,
    pub next_conn: Arc<AtomicU64>,
}

pub async fn serve_acquirer(port: Arc<AcquirerPort>, mut conn: Accepted) {
    let id = ConnId(port.next_conn.fetch_add(1, Ordering::Relaxed));
    let limit = InFlight::new(port.in_flight_max);
    // Set once the acquirer has closed its side: a response written after
    // that is accepted by the kernel but never read, so it counts as not
    // delivered (an approval is then reversed).
    let peer_gone = Arc::new(AtomicBool::new(false));
    // Reading also stops when the loop cannot frame a reply (the sender
    // is told by the close instead of waiting).
    let stop = conn.shutdown.child_token();
    conn.shutdown = stop.clone();
    let connected = Event::Connected {
        conn: id,
        sender: conn.sender.clone(),
        peer_gone: peer_gone.clone(),
        stop,
    };
    if port.node.events.send(connected).await.is_err() {
        return;
    }
    loop {
        let Some(frame) = conn.next_frame(&port.name).await else {
            // Stopped (a shutdown, a reply that cannot be framed) or sent
            // a frame that cannot be read: the acquirer still reads, so
            // the requests in flight are answered. Closed: they are not.
            if conn.peer_closed() {
                peer_gone.store(true, Ordering::Relaxed);
            }
            break;
        };
        let permit = limit.take().await;
        // A frame nothing can answer ends the reading; the requests in
        // flight are still answered below, then the connection closes.
        let message = match inbound(&port.spec, &frame, &conn.sender, &port.name).await {
            Inbound::Request(m) => m,
            Inbound::Rejected => continue,
            Inbound::Close(_) => break,
        };
        let request = Event::Request {
            conn: id,
            acquirer: port.index,
            tpdu: frame.tpdu,
            permit,
            message,
        };
        if port.node.events.send(request).await.is_err() {
            break;
        }
    }
    // Requests in flight hold permits: wait for them (bounded by their
    // time-outs).
    limit.all_back().await;
    let _ = port.node.events.send(Event::Closed { conn: id }).await;
}

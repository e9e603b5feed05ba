//! Requests an issuer sends that the switch answers itself after a while
//! (a new key it sends, imported by the HSM first): each is held here with
//! the connection it came on, under an id, until its answer is written
//! there. At most [`PEER_REQUESTS_MAX`] wait at once: a peer that sends
//! more is answered by the link at once, as any request it does not
//! perform. No business rules.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::connection::FrameSender;
use super::framing::{Frame, Tpdu};

/// Requests of one link waiting for their answers, at most.
pub const PEER_REQUESTS_MAX: usize = 16;

/// The requests waiting, by id.
#[derive(Default)]
pub struct PeerRequests {
    next: u64,
    waiting: HashMap<u64, (FrameSender, Option<Tpdu>)>,
}

impl PeerRequests {
    /// Holds a request that came on `sender`'s connection in `frame`: its
    /// id, or `None` when [`PEER_REQUESTS_MAX`] wait already.
    pub fn hold(&mut self, sender: &FrameSender, frame: &Frame) -> Option<u64> {
        if self.waiting.len() >= PEER_REQUESTS_MAX {
            return None;
        }
        self.next += 1;
        let reply_tpdu = frame.tpdu.map(|t| t.reply());
        self.waiting.insert(self.next, (sender.clone(), reply_tpdu));
        Some(self.next)
    }

    /// Writes the answer to request `id` on the connection it came on:
    /// whether it was queued (not when the connection closed, or `id`
    /// waits no more).
    pub fn answer(&mut self, id: u64, message: Bytes) -> bool {
        let Some((sender, tpdu)) = self.waiting.remove(&id) else {
            return false;
        };
        sender.try_send(Frame { tpdu, message }).unwrap_or(false)
    }
}

/// A lock over a link's [`PeerRequests`].
pub type SharedPeerRequests = Mutex<PeerRequests>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::connection::open;
    use crate::link::framing::{FrameCodec, Framing, LengthHeader};

    #[tokio::test]
    async fn requests_wait_up_to_the_limit_and_answers_go_back_on_their_connection() {
        let codec = FrameCodec::new(Framing::new(LengthHeader::Binary2));
        let (ours, theirs) = tokio::io::duplex(4096);
        let (_reader, sender, _writer) = open(ours, codec.clone());
        let (mut peer, _peer_sender, _peer_writer) = open(theirs, codec);
        let mut waiting = PeerRequests::default();
        let request = Frame::new(Bytes::from_static(b"0800"));
        let ids: Vec<u64> = (0..PEER_REQUESTS_MAX)
            .map(|_| waiting.hold(&sender, &request).expect("room"))
            .collect();
        assert_eq!(waiting.hold(&sender, &request), None, "over the limit");
        assert!(waiting.answer(ids[3], Bytes::from_static(b"0810")));
        assert!(
            !waiting.answer(ids[3], Bytes::from_static(b"0810")),
            "answered once"
        );
        assert!(
            !waiting.answer(999, Bytes::from_static(b"0810")),
            "never held"
        );
        let answer = peer.next().await.expect("read").expect("a frame");
        assert_eq!(&answer.message[..], b"0810");
        assert!(waiting.hold(&sender, &request).is_some(), "room again");
    }
}

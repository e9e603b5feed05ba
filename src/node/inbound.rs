//! A frame from an acquirer, sorted: a request for the core, a malformed
//! request answered with a format error, or a frame nothing can answer,
//! which closes the connection.

use tracing::warn;

use crate::link::connection::{FrameSender, SendError};
use crate::link::framing::Frame;
use crate::message::response_codes::format_error_reject;
use crate::message::{Message, Spec};

/// Parses a request; one that cannot be parsed is logged, counted and
/// answered with a format-error reject (DE39 = 30) where its MTI is readable.
/// Any message that parses is handed back, whatever its MTI (the issuer
/// simulator answers by its own rules); acquirer connections go through
/// [`inbound`], which also refuses what cannot be answered.
pub async fn parse_or_reject(
    spec: &Spec,
    frame: &Frame,
    sender: &FrameSender,
    link: &str,
) -> Option<Message> {
    match spec.parse(&frame.message) {
        Ok(m) => Some(m),
        Err(e) => {
            warn!(error = %e, "undecodable request");
            count_decode_error(link, &e);
            if let Some(reject) = format_error_reject(spec, &frame.message)
                && let Err(e) = sender.reply(frame, reject).await
            {
                warn!(error = %e, "format-error reject not sent");
            }
            None
        }
    }
}

fn count_decode_error(link: &str, e: &crate::message::MessageError) {
    metrics::counter!("cardswitch_link_decode_errors_total", "link" => link.to_string(), "kind" => e.kind())
        .increment(1);
}

/// What becomes of one frame from an acquirer.
#[derive(Debug)]
pub enum Inbound {
    /// A message of a known MTI that is not itself an answer: the core's.
    Request(Box<Message>),
    /// A malformed request, answered with a format error (DE39 = 30).
    Rejected,
    /// Nothing can answer it: an MTI that cannot be read or has reserved
    /// digits, a response or acknowledgement (the switch sends acquirers
    /// no requests), a malformed message that expects no answer, or a
    /// reject that cannot be built or framed. The connection stops
    /// reading and is closed once the requests in flight on it are
    /// answered, so that the sender sees a close instead of waiting for
    /// an answer that never comes. The reason is a metric label.
    Close(&'static str),
}

/// Sorts one frame from an acquirer (see [`Inbound`]); answers a
/// malformed request, and logs and counts a frame that closes the
/// connection (once per connection: reading stops there).
pub async fn inbound(spec: &Spec, frame: &Frame, sender: &FrameSender, link: &str) -> Inbound {
    let outcome = match spec.parse(&frame.message) {
        Ok(m) if !m.mti().is_known() => Inbound::Close("reserved_mti"),
        Ok(m) if m.mti().is_answer() => {
            warn!(mti = %m.mti(), "an acquirer sent an answer: nothing answers it");
            Inbound::Close("answer_from_acquirer")
        }
        Ok(m) => Inbound::Request(Box::new(m)),
        Err(e) => {
            warn!(error = %e, "undecodable request");
            count_decode_error(link, &e);
            let mti = crate::message::parse::read_mti_only(spec, &frame.message);
            match mti {
                None => Inbound::Close("unreadable_mti"),
                Some(m) if !m.is_known() => Inbound::Close("reserved_mti"),
                Some(m) if m.is_answer() => Inbound::Close("answer_from_acquirer"),
                Some(m) if m.response().is_none() => Inbound::Close("malformed_unanswerable"),
                Some(_) => match format_error_reject(spec, &frame.message) {
                    Some(reject) => match sender.reply(frame, reject).await {
                        // Gone: the reader sees the close by itself.
                        Ok(()) | Err(SendError::Closed) => Inbound::Rejected,
                        // Larger than the link's frame limit: the sender
                        // would wait for it forever.
                        Err(_) => Inbound::Close("reject_too_large"),
                    },
                    None => Inbound::Close("reject_not_built"),
                },
            }
        }
    };
    if let Inbound::Close(reason) = outcome {
        warn!(
            reason,
            "closing the connection once its requests in flight are answered"
        );
        metrics::counter!("cardswitch_link_closed_on_input_total", "link" => link.to_string(), "reason" => reason)
            .increment(1);
    }
    outcome
}

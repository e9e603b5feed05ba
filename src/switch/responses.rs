//! The responses the switch makes itself: a local answer to a request
//! (its own response code, nothing the acquirer must not see echoed) and
//! the 96 that replaces a response that cannot be built.

use crate::message::Message;
use crate::message::response_codes::Outcome;
use crate::message::sensitive::NEVER_ECHOED;

/// A response that cannot be built for the acquirer, cut down to its key
/// fields with DE39 = 96 (system malfunction).
pub fn malfunction(response: &Message) -> Message {
    let mut out = Message::new(response.mti());
    for n in [3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49] {
        if let Some(v) = response.value_bytes(n) {
            let _ = out.set(n, v);
        }
    }
    let code = Outcome::SystemMalfunction.code_in(response.mti().version());
    let _ = out.set_str(39, code);
    out
}

/// The response the switch makes itself for `request`.
pub fn local_response(request: &Message, code: &str) -> Option<Message> {
    let mut resp = request.clone();
    resp.set_mti(request.mti().response()?);
    for &f in NEVER_ECHOED {
        resp.remove(f);
    }
    super::translate::strip_mac(&mut resp);
    let _ = resp.set_str(39, code);
    Some(resp)
}

//! The simulator's server: payShield frames (2-byte length, a header
//! echoed back, the command) on the link layer's listener (plain or TLS,
//! bounded connections, idle and frame time-outs), one task per
//! connection. Commands on a connection are answered in order, pipelined
//! requests included: a writer sends each answer at its due time (now +
//! `--delay-ms`) in arrival order; a peer that leaves its answers unread
//! for the idle time-out is closed. Logs name command and error codes
//! only: never a key, PIN block or account number.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ServeArgs;
use super::entropy::Entropy;
use crate::cli::{CliError, observe};
use crate::hsm::command::response::response_code;
use crate::hsm::command::{CodecError, ErrorCode, Request, Response, frame};
use crate::hsm::sim::{Hsm, Lmk};
use crate::link::connection::ReadLimits;
use crate::link::framing::{Frame, FrameCodec, Framing, LengthHeader};
use crate::link::listener::{self, Accepted, ListenerSettings};
use crate::link::tls::TlsServer;

/// Answers queued on one connection before its reader waits.
const PIPELINE_MAX: usize = 64;
/// How long in-flight answers may take on shutdown.
const DRAIN_MS: u64 = 2000;

/// What the server holds for every connection.
struct Sim {
    hsm: Hsm,
    header_len: usize,
    delay: Duration,
    errors: Vec<([u8; 2], ErrorCode)>,
    silent_after: Option<u64>,
    commands: AtomicU64,
    /// How long a peer may leave its answers unread before it is closed
    /// (the idle time-out): one that writes and never reads must not hold
    /// a connection slot.
    unread: Duration,
    entropy: Entropy,
}

/// What one frame gets.
enum Outcome {
    /// This message (header included) goes back.
    Reply(Vec<u8>),
    /// Nothing (`--silent-after`).
    Silent,
    /// The connection ends, for this reason (logged).
    Close(String),
}

pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    observe::init_logging("info");
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(
            TlsServer::from_files(c, k, args.tls_ca.as_deref())
                .map_err(|e| CliError::Input(e.to_string()))?,
        ),
        _ => None,
    };
    let sim = Arc::new(Sim {
        hsm: Hsm::new(Lmk::test()),
        header_len: args.header_len,
        delay: Duration::from_millis(args.delay_ms),
        errors: args.errors.clone(),
        silent_after: args.silent_after,
        commands: AtomicU64::new(0),
        unread: Duration::from_secs(args.idle_timeout_s),
        entropy: Entropy::new(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::Input(format!("listen {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::Input(e.to_string()))?;
        println!("hsm-sim listening on {local}");
        let _ = std::io::stdout().flush();
        let shutdown = CancellationToken::new();
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                observe::termination().await;
                info!("terminating: no new connections, draining");
                shutdown.cancel();
            });
        }
        let framing =
            Framing::new(LengthHeader::Binary2).with_frame_bytes_max(frame::FRAME_BYTES_MAX);
        let settings = ListenerSettings {
            name: "hsm-sim".into(),
            codec: FrameCodec::new(framing),
            tls,
            connections_max: args.connections_max,
            drain_deadline: Duration::from_millis(DRAIN_MS),
            limits: Default::default(),
            read_limits: ReadLimits {
                idle: Some(Duration::from_secs(args.idle_timeout_s)),
                frame: Some(Duration::from_millis(args.frame_timeout_ms)),
            },
        };
        listener::serve(listener, settings, shutdown, move |conn| {
            serve_connection(sim.clone(), conn)
        })
        .await;
        Ok(())
    })
}

async fn serve_connection(sim: Arc<Sim>, mut conn: Accepted) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(PIPELINE_MAX);
    let sender = conn.sender.clone();
    let unread = sim.unread;
    let writer = async move {
        while let Some((due, message)) = rx.recv().await {
            // Only a configured delay waits: a timer per answer would hold
            // each one to the timer's next tick.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            let sent = tokio::time::timeout(unread, sender.send(Frame::new(message))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
    };
    let reader = async move {
        while let Some(frame) = conn.next_frame("hsm-sim").await {
            match sim.answer(&frame.message) {
                Outcome::Reply(m) => {
                    let due = Instant::now() + sim.delay;
                    // Room frees as delayed answers come due: wait for that too.
                    let wait = sim.unread + sim.delay;
                    let queued = tokio::time::timeout(wait, tx.send((due, Bytes::from(m))));
                    if !matches!(queued.await, Ok(Ok(()))) {
                        if let Some(suppressed) = conn.log_admit() {
                            warn!(suppressed, "closing connection: answers not read");
                        }
                        break;
                    }
                }
                Outcome::Silent => debug!("silent: not answered"),
                Outcome::Close(why) => {
                    if let Some(suppressed) = conn.log_admit() {
                        warn!(reason = %why, suppressed, "closing connection");
                    }
                    break;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

impl Sim {
    /// The answer to one frame's body (header and message).
    fn answer(&self, body: &[u8]) -> Outcome {
        if body.len() < self.header_len + 2 {
            let e = CodecError::FrameShort {
                got: body.len(),
                header: self.header_len,
            };
            return Outcome::Close(e.to_string());
        }
        let (header, message) = body.split_at(self.header_len);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        if self.silent_after.is_some_and(|max| n >= max) {
            return Outcome::Silent;
        }
        let code = [message[0], message[1]];
        let response = match self.respond(&code, message) {
            Ok(r) => r,
            Err(why) => return Outcome::Close(why),
        };
        debug!(response = %String::from_utf8_lossy(&response.code), error = response.error.number(), "answered");
        let mut out = Vec::with_capacity(header.len() + 64);
        out.extend_from_slice(header);
        match response.encode(&mut out) {
            Ok(()) => Outcome::Reply(out),
            Err(e) => Outcome::Close(format!("cannot encode the answer: {e}")),
        }
    }

    /// The response to `message`: a fault, the HSM's answer, or error 15
    /// for a known command whose fields do not decode.
    fn respond(&self, code: &[u8; 2], message: &[u8]) -> Result<Response, String> {
        if let Some((_, e)) = self.errors.iter().find(|(c, _)| c == code) {
            return Response::error(code, *e).ok_or_else(|| "fault on unknown code".into());
        }
        match Request::decode(message) {
            Ok(request) => Ok(self.hsm.handle(&request, &self.entropy.next())),
            Err(e @ CodecError::UnknownCommand { .. }) => Err(e.to_string()),
            Err(e) => match response_code(code) {
                Some(_) => {
                    // The field is named, never its value.
                    debug!(error = %e, "malformed command: 15");
                    Response::error(code, ErrorCode::InputData).ok_or_else(|| e.to_string())
                }
                None => Err(e.to_string()),
            },
        }
    }
}

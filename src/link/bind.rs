//! Binding a listener with a chosen accept backlog. Thousands of terminals
//! reconnect at once after an outage; the kernel queues the handshakes it
//! has completed until the accept loop takes them, and a queue shorter than
//! the storm drops SYNs (each dropped one costs the terminal a 1 s, then
//! 2 s, 4 s ... retransmission). `TcpListener::bind` fixes the backlog at
//! 1024, so the socket is built by hand with `TcpSocket::listen(backlog)`.
//!
//! Linux caps the backlog at `net.core.somaxconn` (4096 on these
//! machines): a larger value is accepted but has no effect beyond it, so
//! it is logged at start.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tracing::warn;

/// Where Linux keeps the cap on every listen backlog.
const SOMAXCONN_PATH: &str = "/proc/sys/net/core/somaxconn";

/// Listens on `address` (`host:port`; the first resolved address that can
/// be bound) with room for `backlog` completed connections not yet
/// accepted. `link` names the listener in the warning given when the
/// kernel caps the backlog below `backlog`.
pub async fn listen(address: &str, backlog: u32, link: &str) -> io::Result<TcpListener> {
    warn_if_capped(backlog, link);
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        match listen_on(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

fn listen_on(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restart can bind while the old
    // process's connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The kernel's cap on listen backlogs, when it can be read.
pub fn somaxconn() -> Option<u32> {
    std::fs::read_to_string(SOMAXCONN_PATH)
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn warn_if_capped(backlog: u32, link: &str) {
    if let Some(cap) = somaxconn()
        && backlog > cap
    {
        warn!(
            link,
            listen_backlog = backlog,
            somaxconn = cap,
            "listen_backlog is above net.core.somaxconn: the kernel uses {cap}"
        );
    }
}

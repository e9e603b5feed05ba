//! Starting the client with the node: the pool, and one NC at start so
//! that a switch configured with an HSM it cannot reach (or that speaks
//! another header) refuses to start rather than fail every PIN later.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::payshield::PayShield;
use super::pool::Pool;
use super::settings::HsmSettings;
use crate::node::link_settings::tls_client;
use crate::node::start_error::StartError;

/// The start-up NC's own wait: a start is not a hot path, and a machine
/// busy starting answers slower than the configured command time-out.
const STARTUP_CHECK_WAIT: Duration = Duration::from_secs(5);
/// The shortest wait for a first connection at start.
const STARTUP_CONNECT_WAIT_MIN: Duration = Duration::from_secs(1);

/// Starts the pool (running until `stop`) and checks the HSM with NC.
pub(crate) async fn start_hsm(
    file: &str,
    settings: &HsmSettings,
    stop: CancellationToken,
) -> Result<PayShield, StartError> {
    let tls = settings
        .tls
        .as_ref()
        .map(|t| tls_client(file, "hsm".to_string(), t))
        .transpose()?
        .map(|c| c.with_handshake_timeout(settings.handshake_timeout));
    let fail = |reason: String| StartError::Hsm {
        file: file.to_string(),
        line: settings.line,
        address: settings.address.clone(),
        reason,
    };
    let tls_on = tls.is_some();
    let pool = Pool::start(settings.clone(), tls, stop.clone());
    // A connect (and a handshake) in time, and at least a second, so that
    // a refused first attempt is retried.
    let handshake = if tls_on {
        settings.handshake_timeout
    } else {
        Duration::ZERO
    };
    let wait = (settings.connect_timeout + handshake).max(STARTUP_CONNECT_WAIT_MIN);
    if !pool.wait_up(wait).await {
        stop.cancel();
        return Err(fail(format!("not reachable within {wait:?}")));
    }
    let hsm = PayShield::new(pool);
    match hsm.diagnostics_within(STARTUP_CHECK_WAIT).await {
        Ok(d) => {
            info!(address = %settings.address, firmware = %d.firmware, lmk_check = %d.lmk_check, connections = settings.connections, "HSM answers");
            Ok(hsm)
        }
        Err(e) => {
            stop.cancel();
            Err(fail(format!("NC at start: {e}")))
        }
    }
}

//! Logs and metrics for long-running commands: tracing to stderr (filter
//! with RUST_LOG) and, when asked, a Prometheus endpoint.

use std::net::SocketAddr;

use super::CliError;

/// Starts logging; `default` is the filter when RUST_LOG is not set.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Serves metrics at http://ADDR/metrics in the Prometheus text format.
/// Must run inside a tokio runtime.
pub fn serve_metrics(addr: SocketAddr) -> Result<(), CliError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&[
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
            0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .map_err(|e| CliError::Input(format!("metrics: {e}")))?
        .install()
        .map_err(|e| CliError::Input(format!("metrics endpoint {addr}: {e}")))
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `cardswitch run --config F`: the switch. Prints one line per acquirer
//! listener ("acquirer NAME listening on ADDR"), reloads routes on SIGHUP
//! without dropping traffic, and shuts down cleanly on SIGTERM or Ctrl-C.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::capture_args::{self, CaptureArgs};
use super::{CliError, observe};
use crate::node as server;
use crate::node::config::SwitchConfig;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The switch configuration (see fixtures/switch/example.toml).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Consult the merchant registry in the journal's database: requests
    /// from unknown or blocked terminals are declined (58 / 03), and 0500
    /// batch closes are answered from the journal (see `cardswitch clearing`).
    #[arg(long)]
    merchant_registry: bool,
}

pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let config = SwitchConfig::load(&args.config).map_err(|e| CliError::Input(e.to_string()))?;
    observe::init_logging("info");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    runtime.block_on(async {
        if let Some(addr) = &config.switch.metrics {
            let addr = addr.parse().map_err(|_| {
                CliError::Input(format!("metrics address '{addr}' is not host:port"))
            })?;
            observe::serve_metrics(addr)?;
        }
        let specs = config
            .acquirers
            .iter()
            .map(|a| (a.name.clone(), a.spec.clone()))
            .chain(
                config
                    .issuers
                    .iter()
                    .map(|i| (i.name.clone(), i.spec.clone())),
            )
            .collect();
        let capture = args.capture.start(specs, None)?;
        let shutdown = CancellationToken::new();
        let rules = match args.merchant_registry {
            true => Some(super::clearing::acquirer_rules(&config)?),
            false => None,
        };
        let running = server::start_with_rules(&config, shutdown.clone(), rules)
            .await
            .map_err(|e| CliError::Input(e.to_string()))?;
        // Registered before the switch says it listens: a SIGUSR1 sent
        // on that word would otherwise meet its default action (exit).
        #[cfg(unix)]
        let usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
        for (name, addr) in &running.acquirers {
            println!("acquirer {name} listening on {addr}");
        }
        let _ = std::io::stdout().flush();
        let switch = running.node.clone();
        let path = args.config.clone();
        let issuer_names: Vec<String> = config.issuers.iter().map(|i| i.name.clone()).collect();
        #[cfg(unix)]
        tokio::spawn(exchange_keys_on_usr1(
            usr1,
            config.issuers.len(),
            switch.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(reload_on_hangup(
            path,
            issuer_names,
            switch,
            shutdown.clone(),
        ));
        observe::termination().await;
        info!("terminating: no new connections, draining requests in flight");
        shutdown.cancel();
        running.stopped().await;
        capture_args::finish(capture)
    })
}

/// Exchanges working keys with every issuer that has a zone master key
/// on every SIGUSR1 (an operator's demand; the schedule runs anyway).
#[cfg(unix)]
async fn exchange_keys_on_usr1(
    usr1: Option<tokio::signal::unix::Signal>,
    issuers: usize,
    switch: crate::node::NodeHandle,
    shutdown: CancellationToken,
) {
    let Some(mut usr1) = usr1 else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = usr1.recv() => if r.is_none() { return },
        }
        info!("key exchange asked for (SIGUSR1)");
        for issuer in 0..issuers {
            switch.exchange_keys(issuer);
        }
    }
}

/// Rebuilds the route table from the file on every SIGHUP. A file that no
/// longer loads, or that changes the issuers (which needs a restart), is
/// refused and the current routes stay.
async fn reload_on_hangup(
    path: PathBuf,
    issuers: Vec<String>,
    switch: crate::node::NodeHandle,
    shutdown: CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = hup.recv() => if r.is_none() { return },
            }
            match SwitchConfig::load(&path) {
                Ok(new) => {
                    let names: Vec<String> = new.issuers.iter().map(|i| i.name.clone()).collect();
                    if names != issuers {
                        error!("reload refused: the issuers changed (restart to change issuers)");
                        continue;
                    }
                    let table = new.route_table();
                    info!(routes = table.describe().len(), "routes reloaded");
                    switch.replace_routes(table);
                }
                Err(e) => error!(error = %e, "reload refused; keeping the current routes"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, issuers, switch);
        shutdown.cancelled().await;
    }
}

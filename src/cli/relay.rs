//! `cardswitch relay`: a bare loopback TCP relay, the reference the switch's
//! throughput is compared with (issue 4's load goal). Each client connection
//! gets its own upstream connection and bytes are copied both ways without
//! framing or parsing: the cost floor of one hop.

use clap::Args;
use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

use super::{CliError, observe};

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on (port 0 picks one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Upstream host:port.
    #[arg(long)]
    target: String,
}

pub fn run(args: &RelayArgs) -> Result<(), CliError> {
    observe::init_logging("warn");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::Input(format!("listen {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::Input(e.to_string()))?;
        println!("relay listening on {local}");
        let accept = async {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let target = args.target.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    match TcpStream::connect(&target).await {
                        Ok(mut upstream) => {
                            let _ = upstream.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                        Err(e) => warn!(error = %e, "upstream connect failed"),
                    }
                });
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = observe::termination() => {}
        }
        Ok(())
    })
}

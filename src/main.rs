//! The livechart server binary: read the configuration, bind, serve until SIGINT/SIGTERM.

use clap::Parser;
use livechart::server::config::{Cli, Config};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,livechart=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = match Config::from_cli(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livechart: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = config.leptos.site_addr;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("livechart: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        // Scripts and the end-to-end tests read this line to find a port chosen with :0.
        Ok(bound) => println!("livechart listening on http://{bound}"),
        Err(e) => eprintln!("livechart: listening, but cannot read the address: {e}"),
    }
    if let Err(e) =
        livechart::server::run(listener, config, livechart::server::ops::shutdown_signal()).await
    {
        eprintln!("livechart: server error: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

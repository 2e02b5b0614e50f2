//! The livechart binary: `livechart [serve] [flags]` runs the server until SIGINT/SIGTERM;
//! `livechart push --series NAME` pipes numbers from stdin into a server.

use clap::{Parser, Subcommand};
use livechart::push::PushArgs;
use livechart::server::config::{Cli, Config};
use std::io::Write as _;
use std::process::ExitCode;

/// Self-hosted real-time charts: push points over HTTP, watch them live in the browser.
#[derive(Debug, Parser)]
#[command(
    name = "livechart",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Top {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command: `serve` with these flags.
    #[command(flatten)]
    serve: Cli,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the app, the API and the live feed (the default).
    Serve(Box<Cli>),
    /// Read numbers, `timestamp,value` CSV or line protocol from stdin and push them to a
    /// server as they come, e.g. `vmstat 1 | awk 'NR>2 {print $15; fflush()}' | livechart
    /// push -s cpu.idle`.
    Push(PushArgs),
}

fn main() -> ExitCode {
    // The config file's values become LIVECHART_* variables the environment does not already
    // set, before anything else runs (one thread: setting variables is sound only here).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Only the server reads it: `push` has its own few flags.
    let pushing = args.get(1).is_some_and(|a| a == "push");
    if let Some(path) = livechart::server::config_file::path_from(&args).filter(|_| !pushing) {
        match livechart::server::config_file::read(&path) {
            Ok(vars) => {
                for (name, value) in vars {
                    std::env::set_var(name, value);
                }
            }
            Err(e) => {
                eprintln!("livechart: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let top = Top::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("livechart: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match top.command {
            Some(Command::Push(args)) => push(args).await,
            Some(Command::Serve(cli)) => serve(*cli).await,
            None => serve(top.serve).await,
        }
    })
}

async fn push(args: PushArgs) -> ExitCode {
    let s = livechart::push::run(args).await;
    let counts = format!(
        "{} sent, {} lines skipped as unreadable, {} refused by the server",
        s.sent, s.bad_lines, s.refused
    );
    let (line, code) = match &s.stopped {
        Some(why) => (format!("stopped: {why} ({counts})"), ExitCode::from(2)),
        None if s.bad_lines + s.refused > 0 => (counts, ExitCode::FAILURE),
        None => return ExitCode::SUCCESS,
    };
    let _ = writeln!(std::io::stderr(), "livechart push: {line}");
    code
}

async fn serve(cli: Cli) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,livechart=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = match Config::from_cli(cli) {
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

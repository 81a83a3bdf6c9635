//! The `cloudconnexa_exporter` binary: parse configuration, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use cloudconnexa_exporter::config::{Cli, Command, Config, LogFormat, LogLevel};
use cloudconnexa_exporter::{Listeners, logging, simulate};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudconnexa_exporter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Simulate(args)) = cli.command {
        logging::init(LogLevel::Info, LogFormat::Logfmt);
        return match runtime.block_on(simulate::run_simulate(args, shutdown_signal())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cloudconnexa_exporter simulate: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_args(cli.exporter) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cloudconnexa_exporter: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_level, config.log_format);
    runtime.block_on(async {
        let listeners = match bind(&config).await {
            Ok(l) => l,
            Err((address, e)) => {
                tracing::error!(%address, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        match cloudconnexa_exporter::run(config, listeners, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "exporter stopped");
                ExitCode::FAILURE
            }
        }
    })
}

/// Binds the main address and, if configured, the probe address.
async fn bind(config: &Config) -> Result<Listeners, (String, std::io::Error)> {
    let listen = |address: String| async move {
        TcpListener::bind(&address).await.map_err(|e| (address, e))
    };
    let main = listen(config.listen_address.clone()).await?;
    let probes = match &config.probe_listen_address {
        Some(address) => Some(listen(address.clone()).await?),
        None => None,
    };
    Ok(Listeners { main, probes })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received; shutting down"),
        _ = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

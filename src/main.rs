//! The `cloudconnexa_exporter` binary: parse configuration, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use cloudconnexa_exporter::config::{Cli, Command, Config, LogFormat, LogLevel};
use cloudconnexa_exporter::{logging, simulate};

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
        let listener = match tokio::net::TcpListener::bind(&config.listen_address).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(address = %config.listen_address, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        match cloudconnexa_exporter::run(config, listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "exporter stopped");
                ExitCode::FAILURE
            }
        }
    })
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

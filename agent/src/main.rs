//! `cloudgov-agent` binary: parses the command line, loads the configuration and hands over to
//! the library (one-shot collection/printing/sending, or the long-running pipeline).
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. the one-shot send failed), 2 bad usage or
//! configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use cloudgov_agent::{AgentConfig, ConfigError, PartialConfig, Sender, TokenSource, wire};

/// How long the runtime waits for blocking work (a collection stuck on a mount) at exit.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Parser)]
#[command(name = "cloudgov-agent", version, about)]
struct Cli {
    /// TOML config file [default: /etc/cloudgov/agent.toml if it exists]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Daemon base URL, e.g. https://cloudgov.example (overrides `server`)
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// File holding the bearer token (overrides `token`/`token_file`)
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Collection interval in seconds (overrides `interval_secs`)
    #[arg(long, value_name = "SECS")]
    interval: Option<u64>,
    /// Collect one report, send it and exit
    #[arg(long)]
    once: bool,
    /// With --once: print the report as JSON to stdout instead of sending it (needs no server)
    #[arg(long, requires = "once")]
    print: bool,
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudgov-agent: {}", cloudgov_agent::error_chain(&*e));
            if e.chain().any(|c| c.is::<ConfigError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    if cli.print {
        // Printing needs no server or token, so the default config file is not read (it may be
        // root-only); an explicitly given one is still checked so mistakes surface.
        if let Some(path) = &cli.config {
            PartialConfig::from_file(path)?;
        }
        let report = cloudgov_agent::collect_once().context("collecting the report")?;
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        println!("{json}");
        return Ok(());
    }

    let cli_layer = PartialConfig {
        server: cli.server,
        token: cli.token_file.map(TokenSource::File),
        interval_secs: cli.interval,
        ..PartialConfig::default()
    };
    let config = PartialConfig::load(cli.config.as_deref(), |k| std::env::var(k).ok(), cli_layer)?
        .validate()?;
    tracing::debug!(?config, "configuration loaded");

    cloudgov_agent::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = if cli.once {
        runtime.block_on(send_once(&config))
    } else {
        runtime
            .block_on(cloudgov_agent::run(config, shutdown_signal()))
            .map(drop)
            .context("running the agent")
    };
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    result
}

async fn send_once(config: &AgentConfig) -> anyhow::Result<()> {
    let sender = Sender::new(config).context("setting up the HTTP client")?;
    let report = tokio::task::spawn_blocking(cloudgov_agent::collect_once)
        .await
        .context("collection task failed")?
        .context("collecting the report")?;
    let seq = report.seq;
    let batch = wire::IngestBatch::new(vec![report]);
    let ack = sender.send(&batch).await.context("sending the report")?;
    match ack {
        Some(ack) => tracing::info!(
            seq,
            accepted = ack.accepted,
            duplicates = ack.duplicates,
            "report delivered"
        ),
        None => tracing::warn!(seq, "report delivered, but the answer is not an IngestAck"),
    }
    Ok(())
}

/// Completes on SIGTERM (systemd stop) or Ctrl-C. If a handler cannot be installed, that signal
/// is logged and ignored rather than stopping the agent at once.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

/// Logs go to stderr (stdout is reserved for `--print`), level from `RUST_LOG`, default info.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in journald or log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

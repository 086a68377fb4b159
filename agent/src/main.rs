//! `cloudgov-agent` binary: parses the command line, loads the configuration and hands over to
//! the library (one-shot collection/printing/sending, or the long-running pipeline).
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. the one-shot send failed), 2 bad usage or
//! configuration.
//!
//! The command line is parsed by hand ([`Cli::parse`]): six options do not need clap, whose
//! parser and help machinery were about 150 KiB of the binary, and in a binary this small
//! nearly every code page stays resident (see BENCHMARKS.md, agent footprint).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cloudgov_agent::{AgentConfig, ConfigError, PartialConfig, Sender, TokenSource, wire};

/// How long the runtime waits for blocking work (a collection stuck on a mount) at exit.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

const USAGE: &str = "Usage: cloudgov-agent [OPTIONS]";

const HELP: &str = concat!(
    "Per-VM agent for cloudgov: collects CPU, memory, disk and network identity and reports it\n",
    "\n",
    "Usage: cloudgov-agent [OPTIONS]\n",
    "\n",
    "Options:\n",
    "      --config <FILE>      TOML config file [default: /etc/cloudgov/agent.toml if it exists]\n",
    "      --server <URL>       Daemon base URL, e.g. https://cloudgov.example (overrides `server`)\n",
    "      --token-file <FILE>  File holding the bearer token (overrides `token`/`token_file`)\n",
    "      --interval <SECS>    Collection interval in seconds (overrides `interval_secs`)\n",
    "      --once               Collect one report, send it and exit\n",
    "      --print              With --once: print the report as JSON to stdout instead of sending it (needs no server)\n",
    "  -h, --help               Print help\n",
    "  -V, --version            Print version\n",
);

#[derive(Debug, Default, PartialEq, Eq)]
struct Cli {
    /// TOML config file [default: /etc/cloudgov/agent.toml if it exists]
    config: Option<PathBuf>,
    /// Daemon base URL (overrides `server`)
    server: Option<String>,
    /// File holding the bearer token (overrides `token`/`token_file`)
    token_file: Option<PathBuf>,
    /// Collection interval in seconds (overrides `interval_secs`)
    interval: Option<u64>,
    /// Collect one report, send it and exit
    once: bool,
    /// With --once: print the report as JSON to stdout instead of sending it (needs no server)
    print: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Cli),
    Help,
    Version,
}

impl Cli {
    /// Parses the arguments after the program name: `--name VALUE` or `--name=VALUE`; each
    /// option at most once. An error is the message to print (exit code 2).
    fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Command, String> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg
                .into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = |what: &str| match inline
                .clone()
                .or_else(|| args.next().and_then(|v| v.into_string().ok()))
            {
                Some(v) => Ok(v),
                None => Err(format!(
                    "a value is required for '{name} <{what}>' but none was supplied"
                )),
            };
            match name {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                "--config" => set(&mut cli.config, name, PathBuf::from(value("FILE")?))?,
                "--server" => set(&mut cli.server, name, value("URL")?)?,
                "--token-file" => set(&mut cli.token_file, name, PathBuf::from(value("FILE")?))?,
                "--interval" => {
                    let v = value("SECS")?;
                    let secs = v
                        .parse()
                        .map_err(|e| format!("invalid value '{v}' for '--interval <SECS>': {e}"))?;
                    set(&mut cli.interval, name, secs)?;
                }
                "--once" | "--print" if inline.is_some() => {
                    return Err(format!("unexpected value for '{name}'"));
                }
                "--once" => cli.once = true,
                "--print" => cli.print = true,
                _ => return Err(format!("unexpected argument '{arg}' found")),
            }
        }
        if cli.print && !cli.once {
            return Err("'--print' can only be used with '--once'".into());
        }
        Ok(Command::Run(cli))
    }
}

/// Sets an option given at most once.
fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), String> {
    if slot.replace(value).is_some() {
        return Err(format!(
            "the argument '{name}' cannot be used multiple times"
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(cli)) => cli,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("cloudgov-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
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
        // The agent has a socket or two; tokio's default is room for 1024 events (12 KiB).
        .max_io_events_per_tick(32)
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

/// Logs go to stderr (stdout is reserved for `--print`), levels from `RUST_LOG` (`debug`, or per
/// target: `info,cloudgov_agent=debug`), default info; an unreadable `RUST_LOG` means info.
fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    tracing_subscriber::fmt()
        // The builder's own filter (INFO by default) lets everything through; `filter` decides.
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        // No colour codes in journald or log files.
        .with_ansi(std::io::stderr().is_terminal())
        .finish()
        .with(filter)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::parse(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn options_with_separate_or_inline_values() {
        let cli = parse(&[
            "--config",
            "/etc/a.toml",
            "--server=https://x.example",
            "--token-file",
            "/t",
            "--interval=30",
            "--once",
        ])
        .expect("parses");
        assert_eq!(
            cli,
            Command::Run(Cli {
                config: Some("/etc/a.toml".into()),
                server: Some("https://x.example".into()),
                token_file: Some("/t".into()),
                interval: Some(30),
                once: true,
                print: false,
            })
        );
        assert_eq!(parse(&[]), Ok(Command::Run(Cli::default())));
        // A value may contain '='.
        let Ok(Command::Run(cli)) = parse(&["--server", "http://h/?a=b"]) else {
            panic!("parses");
        };
        assert_eq!(cli.server.as_deref(), Some("http://h/?a=b"));
    }

    #[test]
    fn help_version_and_errors() {
        assert_eq!(parse(&["--once", "-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
        for (args, needle) in [
            (&["--bogus"][..], "unexpected argument '--bogus'"),
            (&["--print"][..], "only be used with '--once'"),
            (
                &["--interval", "abc"][..],
                "invalid value 'abc' for '--interval <SECS>'",
            ),
            (&["--interval", "-1"][..], "invalid value '-1'"),
            (
                &["--config"][..],
                "a value is required for '--config <FILE>'",
            ),
            (&["--once=yes"][..], "unexpected value for '--once'"),
            (
                &["--server", "a", "--server", "b"][..],
                "cannot be used multiple times",
            ),
            (&["once"][..], "unexpected argument 'once'"),
        ] {
            let err = parse(args).expect_err("an error");
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        assert!(HELP.contains("--token-file <FILE>") && HELP.contains(USAGE));
    }
}

//! `cloudgov`: the daemon and admin CLI. All logic lives in the library; this only starts it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cloudgov::cli::Cli::parse();
    cloudgov::telemetry::init();
    // reqwest (the demo's agent) and sqlx use rustls without a built-in provider: pick ring once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cloudgov::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

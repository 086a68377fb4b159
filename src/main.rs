//! `cloudgov`: the daemon and admin CLI. All logic lives in the library; this only starts it.

use clap::Parser;

/// mimalloc rather than the system allocator: ingest allocates and frees many small values per
/// report (parsed text, checked rows), and glibc's malloc took a quarter of the daemon's CPU
/// there (BENCHMARKS.md, issue 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

//! cloudgov-agent: runs on every government-cloud VM, collects CPU, memory, disk usage and
//! network identity, and reports them to the cloudgov daemon.
//!
//! Entry points:
//! - [`run`]: the long-running pipeline (collect every interval → bounded queue or on-disk
//!   [`spool`] → HTTP sink),
//!   until a shutdown future completes; usable in-process from any tokio runtime.
//! - [`collect_once`]: one blocking collection, e.g. for `--once --print`.
//! - [`Sender`]: one POST of a batch, e.g. for `--once`.
//!
//! Configuration is built through [`PartialConfig`] (file/env/CLI layers) or
//! [`AgentConfig::new`], and is validated before anything runs.

pub mod collect;
pub mod config;
pub mod connections;
pub mod interfaces;
pub mod neighbours;
pub mod netconfig;
#[cfg(target_os = "linux")]
pub mod netlink;
pub mod pipeline;
pub mod queue;
mod ratelimit;
pub mod send;
pub mod spool;
pub mod wire;

pub use collect::{CollectError, Collector, collect_once};
pub use config::{AgentConfig, ConfigError, PartialConfig, Token, TokenSource};
pub use pipeline::{RunError, RunSummary, run};
pub use send::{Disposition, SendError, Sender};

/// Installs rustls' ring provider as the process default if no provider is installed yet.
///
/// reqwest is built with `rustls-no-provider` (no aws-lc, no OpenSSL) and panics when building a
/// client without a default provider. Calling this more than once, or after the host process
/// installed its own provider, is harmless: the existing provider is kept.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only if another thread installed one in between, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// An error and its sources as one line, "outer: inner: root", for log fields and messages.
/// Sources whose text the line already contains are left out (many errors repeat their source).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

//! `cloudgov serve`: the daemon, with its flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::Session;
use crate::daemon::scheduler::CronExpr;
use crate::daemon::{Daemon, Schedule, termination_signal};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "CLOUDGOV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// When to evaluate (cron with seconds, Asia/Shanghai, e.g. "0 0 9 * * Mon-Fri").
    #[arg(long, env = "CLOUDGOV_EVALUATE_CRON", default_value = crate::daemon::DEFAULT_EVALUATE_CRON)]
    pub evaluate_cron: CronExpr,
    /// When to check deadlines, send reminders and escalations, and flag silent agents.
    #[arg(long, env = "CLOUDGOV_DEADLINES_CRON", default_value = crate::daemon::DEFAULT_DEADLINES_CRON)]
    pub deadlines_cron: CronExpr,
    /// When to fold new samples into the per-VM-day aggregates (the fold's lag is at most this
    /// period; `cloudgov_usage_fold_pending` on /metrics shows it).
    #[arg(long, env = "CLOUDGOV_FOLD_CRON", default_value = crate::daemon::DEFAULT_FOLD_CRON)]
    pub fold_cron: CronExpr,
    /// When to review the previous year (art. 10) and e-mail the results.
    #[arg(long, env = "CLOUDGOV_REVIEW_CRON", default_value = crate::daemon::DEFAULT_REVIEW_CRON)]
    pub review_cron: CronExpr,
    /// Review rules for the scheduled review; default: the built-in rules/review.toml.
    #[arg(long, env = "CLOUDGOV_REVIEW_RULES")]
    pub review_rules: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "CLOUDGOV_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "CLOUDGOV_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// An agent clock off by more than this many seconds raises a `clock_skew` alert.
    #[arg(long, env = "CLOUDGOV_MAX_CLOCK_SKEW_SECS", default_value_t = 120)]
    pub max_clock_skew_secs: u32,
    /// Ingest requests each VM may send per minute (more get 429 with Retry-After).
    #[arg(
        long,
        env = "CLOUDGOV_AGENT_REQUESTS_PER_MINUTE",
        default_value_t = 120
    )]
    pub agent_requests_per_minute: u32,
    /// Also serve `/metrics` here, without signing in (e.g. 10.0.0.5:9464 for Prometheus on an
    /// internal network). On the main listener `/metrics` needs a staff API token.
    #[arg(long, env = "CLOUDGOV_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Require client certificates signed by this PEM CA (mutual TLS for agents).
    #[arg(long, env = "CLOUDGOV_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub kubernetes: super::kubernetes::ServeKubernetesArgs,
    #[command(flatten)]
    pub prometheus: super::sources::ServePrometheusArgs,
    #[command(flatten)]
    pub snmp: super::sources::ServeSnmpArgs,
}

pub(super) async fn run(s: &Session<'_>, args: ServeArgs) -> anyhow::Result<()> {
    let ctx = s.ctx;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::http::tls::server_config(
            &crate::http::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
            },
        )?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (kubernetes, elector) = args.kubernetes.setup().await?;
    let mut daemon = Daemon::start_with_tls(
        ctx.clone(),
        args.listen,
        Schedule {
            evaluate: args.evaluate_cron,
            deadlines: args.deadlines_cron,
            fold: args.fold_cron,
            review: Some((
                args.review_cron,
                Arc::new(super::load::review_rules(args.review_rules.as_deref())?),
            )),
            kubernetes,
            prometheus: args.prometheus.job()?,
            snmp: args.snmp.job()?,
            elector,
        },
        tls,
        crate::http::IngestLimits {
            requests_per_minute: args.agent_requests_per_minute.max(1),
            max_clock_skew: chrono::TimeDelta::seconds(i64::from(args.max_clock_skew_secs)),
        },
    )
    .await?;
    println!("cloudgov listening on {scheme}://{}", daemon.addr);
    if let Some(listen) = args.metrics_listen {
        let addr = daemon.start_metrics_listener(listen).await?;
        println!("metrics on http://{addr}/metrics");
    }
    termination_signal().await;
    tracing::info!("stopping");
    daemon.stop().await
}

//! `cloudgov sources ...`: usage sources besides the agent. `sources prometheus pull` reads the
//! mapped VMs' usage from Prometheus; `serve --prometheus-url` does the same on a schedule, and
//! `serve --snmp-targets` polls switches' ARP tables (`network poll-snmp` polls one).

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use clap::{Args, Subcommand};

use super::Session;
use super::output::{Format, print_json, print_table};
use crate::daemon::sources::PrometheusJob;
use crate::jobs::prometheus::{PrometheusSource, PullOptions, pull};

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Prometheus with node_exporter: VMs named by `prometheus_instance` or
    /// `prometheus_selector` in the inventory.
    #[command(subcommand)]
    Prometheus(PrometheusCommand),
}

#[derive(Debug, Subcommand)]
pub enum PrometheusCommand {
    /// Read usage through the HTTP API (`query_range`) and store it as samples. Without
    /// --start, each VM is read from where its last pull stopped (or --lookback-secs back).
    Pull(PullArgs),
}

/// The reading settings `pull` and `serve` share.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Seconds between points: one sample per step (the agent's default interval is 60).
    #[arg(long = "step-secs", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub step_secs: u32,
    /// Seconds over which CPU and traffic counters are averaged; default twice the step (two
    /// scrapes must fall in it).
    #[arg(long = "rate-window-secs", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub rate_window_secs: Option<u32>,
    /// How far back a VM never pulled before is read.
    #[arg(long = "lookback-secs", default_value_t = 3600)]
    pub lookback_secs: u32,
}

impl StepArgs {
    fn options(&self) -> PullOptions {
        PullOptions {
            step: self.step_secs,
            rate_window: self
                .rate_window_secs
                .unwrap_or(self.step_secs.saturating_mul(2)),
            lookback: chrono::Duration::seconds(i64::from(self.lookback_secs)),
            ..PullOptions::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Prometheus's base URL, e.g. http://10.0.0.9:9090. Credentials from the environment:
    /// CLOUDGOV_PROMETHEUS_BEARER_TOKEN, or CLOUDGOV_PROMETHEUS_USERNAME and _PASSWORD.
    #[arg(long, env = "CLOUDGOV_PROMETHEUS_URL")]
    url: String,
    /// Read from this instant (RFC 3339), e.g. to backfill; with --end.
    #[arg(long)]
    start: Option<DateTime<FixedOffset>>,
    /// Read up to this instant (default now).
    #[arg(long)]
    end: Option<DateTime<FixedOffset>>,
    /// Only this VM.
    #[arg(long)]
    vm: Option<String>,
    /// Read and print, store nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    step: StepArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// `serve --prometheus-url URL`: the scheduled pull.
#[derive(Debug, Args)]
pub struct ServePrometheusArgs {
    /// Pull usage from this Prometheus on the leader (see `sources prometheus pull`).
    #[arg(long, env = "CLOUDGOV_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// Seconds between scheduled pulls.
    #[arg(long, env = "CLOUDGOV_PROMETHEUS_INTERVAL_SECS", default_value_t = 300)]
    prometheus_interval_secs: u64,
    #[arg(long = "prometheus-step-secs", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    prometheus_step_secs: u32,
}

impl ServePrometheusArgs {
    pub fn job(&self) -> anyhow::Result<Option<PrometheusJob>> {
        let Some(url) = &self.prometheus_url else {
            return Ok(None);
        };
        let source = PrometheusSource::new(url, super::load::prometheus_auth()?)?;
        let step = StepArgs {
            step_secs: self.prometheus_step_secs,
            rate_window_secs: None,
            lookback_secs: 3600,
        };
        Ok(Some(PrometheusJob {
            source,
            options: step.options(),
            every: Duration::from_secs(self.prometheus_interval_secs.max(10)),
        }))
    }
}

/// `serve --snmp-targets FILE`: the switches polled on a schedule.
#[derive(Debug, Args)]
pub struct ServeSnmpArgs {
    /// Poll these switches' ARP tables on the leader (TOML `[[target]]` entries; see README).
    #[arg(long, env = "CLOUDGOV_SNMP_TARGETS")]
    snmp_targets: Option<std::path::PathBuf>,
    /// Seconds between polls.
    #[arg(long, env = "CLOUDGOV_SNMP_INTERVAL_SECS", default_value_t = 900)]
    snmp_interval_secs: u64,
}

impl ServeSnmpArgs {
    /// Reads the targets file and every secret it names, once, at start.
    pub fn job(&self) -> anyhow::Result<Option<crate::daemon::sources::SnmpJob>> {
        let Some(path) = &self.snmp_targets else {
            return Ok(None);
        };
        let targets = super::network::load_snmp_targets(path)?;
        if targets.is_empty() {
            anyhow::bail!("--snmp-targets {} lists no [[target]]", path.display());
        }
        Ok(Some(crate::daemon::sources::SnmpJob {
            targets,
            every: Duration::from_secs(self.snmp_interval_secs.max(10)),
        }))
    }
}

pub(super) async fn run(s: &Session<'_>, cmd: SourcesCommand) -> anyhow::Result<()> {
    let SourcesCommand::Prometheus(PrometheusCommand::Pull(args)) = cmd;
    let source = PrometheusSource::new(&args.url, super::load::prometheus_auth()?)?;
    let now = Utc::now();
    let utc = |t: DateTime<FixedOffset>| t.with_timezone(&Utc);
    let options = PullOptions {
        start: args.start.map(utc),
        end: args.end.map(utc),
        vm: args.vm.clone(),
        ..args.step.options()
    };
    if let (Some(start), Some(end)) = (options.start, options.end)
        && start > end
    {
        anyhow::bail!("--start {start} is after --end {end}");
    }
    let report = pull(&s.ctx.store, &source, &options, now, !args.dry_run).await?;
    let stored: u64 = report.vms.iter().map(|v| v.stored).sum();
    let summary = format!(
        "pulled {} VMs from {}: {} samples stored, {} failed",
        report.vms.len(),
        report.prometheus,
        stored,
        report.failed()
    );
    if !args.dry_run {
        s.audit(
            "prometheus_pull",
            report.prometheus.clone(),
            summary.clone(),
        )
        .await?;
    }
    match args.format {
        Format::Json => print_json(&report)?,
        Format::Table => {
            let time = |t: Option<DateTime<Utc>>| t.map_or("-".into(), |t| t.to_rfc3339());
            print_table(
                &[
                    "VM", "SELECTOR", "FROM", "TO", "SAMPLES", "STORED", "GAPS", "ERROR",
                ],
                report.vms.iter().map(|v| {
                    vec![
                        v.vm.clone(),
                        v.selector.clone(),
                        time(v.from),
                        time(v.to),
                        v.samples.to_string(),
                        v.stored.to_string(),
                        v.gaps.to_string(),
                        v.error.clone().unwrap_or_default(),
                    ]
                }),
            );
            println!("{summary}");
        }
    }
    if report.failed() > 0 {
        anyhow::bail!(
            "{} of {} VMs could not be pulled",
            report.failed(),
            report.vms.len()
        );
    }
    Ok(())
}

//! Usage and network sources the daemon polls on the leader: Prometheus (usage pulled as
//! samples) and switches over SNMP (ARP tables as sightings).

use std::time::Duration;

use tokio::sync::watch;

use super::scheduler::run_every;
use crate::jobs::prometheus::{PrometheusSource, PullOptions, pull};

/// A scheduled Prometheus pull: every `every`, each mapped VM from where its pull stopped.
#[derive(Debug, Clone)]
pub struct PrometheusJob {
    pub source: PrometheusSource,
    pub options: PullOptions,
    pub every: Duration,
}

pub async fn run_prometheus(
    job: PrometheusJob,
    store: crate::store::Store,
    shutdown: watch::Receiver<bool>,
    leader: watch::Receiver<bool>,
) {
    let every = job.every;
    run_every("prometheus", every, shutdown, leader, move |at| {
        let (job, store) = (job.clone(), store.clone());
        async move {
            let report = pull(&store, &job.source, &job.options, at, true).await?;
            tracing::info!(
                vms = report.vms.len(),
                failed = report.failed(),
                stored = report.vms.iter().map(|v| v.stored).sum::<u64>(),
                "prometheus pull done"
            );
            Ok(())
        }
    })
    .await;
}

/// Scheduled SNMP polls of the switches in `serve --snmp-targets FILE`: every `every`, each
/// target's ARP table becomes sightings under its source name.
#[derive(Debug, Clone)]
pub struct SnmpJob {
    pub targets: Vec<crate::jobs::snmp::SnmpTarget>,
    pub every: Duration,
}

pub async fn run_snmp(
    job: SnmpJob,
    store: crate::store::Store,
    shutdown: watch::Receiver<bool>,
    leader: watch::Receiver<bool>,
) {
    let every = job.every;
    run_every("snmp", every, shutdown, leader, move |at| {
        let (job, store) = (job.clone(), store.clone());
        async move {
            // One switch failing (down, wrong credentials) does not stop the others.
            let mut failed = 0;
            for target in &job.targets {
                match crate::jobs::snmp::poll(&store, target, at, true).await {
                    Ok(report) => tracing::info!(
                        source = target.source(),
                        entries = report.entries.len(),
                        table = %report.table,
                        "switch ARP table polled"
                    ),
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(source = target.source(), error = %e, "switch poll failed");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} switches could not be polled",
                    job.targets.len()
                );
            }
            Ok(())
        }
    })
    .await;
}

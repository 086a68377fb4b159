//! `cloudgov kubernetes ...` and the `serve` flags for Kubernetes: discovery and Lease election.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::output::{Format, print_json, print_table};
use crate::core::kubernetes as model;
use crate::daemon::kubernetes::DiscoveryJob;
use crate::daemon::lease::{self, LeaseElector};
use crate::jobs::kubernetes::{DiscoveryOptions, KubeError, MappingKeys, connect};

/// Flags shared by `serve` and `kubernetes discover`.
#[derive(Debug, Clone, clap::Args)]
pub struct KubernetesArgs {
    /// Kubeconfig file; default: KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "CLOUDGOV_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces to discover (repeat or comma-separate); default: all namespaces.
    #[arg(
        long = "kubernetes-namespace",
        env = "CLOUDGOV_KUBERNETES_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Annotation or label naming a workload's department (the annotation wins).
    #[arg(
        long = "kubernetes-department-key",
        env = "CLOUDGOV_KUBERNETES_DEPARTMENT_KEY",
        default_value = model::DEFAULT_DEPARTMENT_KEY
    )]
    pub department_key: String,
    /// Annotation or label naming a workload's project (default project: the namespace).
    #[arg(
        long = "kubernetes-project-key",
        env = "CLOUDGOV_KUBERNETES_PROJECT_KEY",
        default_value = model::DEFAULT_PROJECT_KEY
    )]
    pub project_key: String,
}

impl KubernetesArgs {
    pub fn options(&self) -> DiscoveryOptions {
        DiscoveryOptions {
            namespaces: self
                .namespaces
                .iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            keys: MappingKeys {
                department: self.department_key.clone(),
                project: self.project_key.clone(),
            },
        }
    }
}

/// How `serve` elects its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ElectionKind {
    /// PostgreSQL advisory lock (with SQLite the one process leads).
    Database,
    /// A Kubernetes Lease (`--lease-name`, `--lease-namespace`).
    Lease,
}

/// `serve` flags for Kubernetes: periodic discovery and Lease election.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeKubernetesArgs {
    /// Discover Kubernetes workloads periodically (on the leader) and evaluate them like VMs.
    #[arg(long, env = "CLOUDGOV_KUBERNETES_DISCOVERY")]
    pub kubernetes_discovery: bool,
    /// Seconds between discovery passes; each pass stores one sample per workload.
    #[arg(long, env = "CLOUDGOV_KUBERNETES_INTERVAL_SECS", default_value_t = 300)]
    pub kubernetes_interval_secs: u64,
    #[command(flatten)]
    pub kube: KubernetesArgs,
    /// Leader election: the database (default) or a Kubernetes Lease.
    #[arg(long, env = "CLOUDGOV_LEADER_ELECTION", value_enum, default_value_t = ElectionKind::Database)]
    pub leader_election: ElectionKind,
    #[arg(long, env = "CLOUDGOV_LEASE_NAME", default_value = "cloudgov")]
    pub lease_name: String,
    /// Namespace of the Lease; default: POD_NAMESPACE, else `default`.
    #[arg(long, env = "CLOUDGOV_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds a holder that stops renewing keeps the Lease.
    #[arg(long, env = "CLOUDGOV_LEASE_DURATION_SECS", default_value_t = 15)]
    pub lease_duration_secs: u64,
}

impl ServeKubernetesArgs {
    /// The discovery job and the elector these flags ask for; one client serves both.
    pub async fn setup(&self) -> Result<(Option<DiscoveryJob>, crate::daemon::Elector), KubeError> {
        let wants_lease = self.leader_election == ElectionKind::Lease;
        if !self.kubernetes_discovery && !wants_lease {
            return Ok((None, crate::daemon::Elector::Database));
        }
        let client = connect(self.kube.kubeconfig.as_deref()).await?;
        let job = self.kubernetes_discovery.then(|| DiscoveryJob {
            client: client.clone(),
            options: self.kube.options(),
            every: Duration::from_secs(self.kubernetes_interval_secs.max(10)),
        });
        let elector = if wants_lease {
            let namespace = self
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "default".to_owned());
            crate::daemon::Elector::Lease(Arc::new(LeaseElector::new(
                client,
                &namespace,
                &self.lease_name,
                &lease::default_identity(),
                Duration::from_secs(self.lease_duration_secs),
            )))
        } else {
            crate::daemon::Elector::Database
        };
        Ok((job, elector))
    }
}

/// `cloudgov kubernetes ...`
#[derive(Debug, clap::Subcommand)]
pub enum KubernetesCommand {
    /// One discovery pass: map workloads to departments and projects, write them to the
    /// inventory with one sample each, and print what was mapped.
    Discover {
        /// The pass's instant, RFC 3339 (default: now); the sample is stored at it.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Read and map, but write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = super::output::Format::Table)]
        format: super::output::Format,
        #[command(flatten)]
        kube: KubernetesArgs,
    },
}

pub(super) async fn run(
    ctx: &crate::jobs::JobContext,
    command: KubernetesCommand,
) -> anyhow::Result<()> {
    let KubernetesCommand::Discover {
        at,
        dry_run,
        format,
        kube,
    } = command;
    let at = at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let client = crate::jobs::kubernetes::connect(kube.kubeconfig.as_deref()).await?;
    let report =
        crate::jobs::kubernetes::discover(&client, &ctx.store, &kube.options(), at, !dry_run)
            .await?;
    if format == Format::Json {
        return print_json(&report);
    }
    let pct = |p: Option<f64>| p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}"));
    print_table(
        &[
            "VM",
            "DEPARTMENT",
            "PROJECT",
            "KIND",
            "PODS",
            "CPU_REQ",
            "MEM_REQ_GIB",
            "CPU%",
            "MEM%",
            "NOTE",
        ],
        report.workloads.iter().map(|w| {
            vec![
                w.vm.clone(),
                w.department.clone(),
                w.project.clone(),
                w.kind.clone(),
                w.pods.to_string(),
                format!("{:.3}", w.cpu_request),
                format!("{:.3}", w.memory_request_gib),
                pct(w.cpu_pct),
                pct(w.mem_pct),
                w.note.clone(),
            ]
        }),
    );
    for (pod, reason) in &report.skipped {
        println!("skipped {pod}: {reason}");
    }
    let written = report.written.as_ref();
    for (vm, reason) in written.map(|w| w.rejected.as_slice()).unwrap_or_default() {
        println!("not written {vm}: {reason}");
    }
    println!(
        "{} nodes, {} running pods, {} workloads, {} pods skipped, {} samples written{}",
        report.nodes,
        report.pods,
        report.workloads.len(),
        report.skipped.len(),
        written.map_or(0, |w| w.samples_inserted),
        if report.metrics_available {
            ""
        } else {
            " (no metrics API)"
        }
    );
    Ok(())
}

//! Kubernetes: workloads discovered as inventory and evaluated like VMs (rightsizing requests,
//! as KRR/VPA do, with the Pingdu thresholds and deadlines), and a Lease for leader election.
//!
//! - `model`: the pure mapping (quantities, labels, workload grouping, percentages).
//! - `discovery`: lists the cluster with kube and writes through the store.
//! - `lease`: the `coordination.k8s.io/v1` Lease elector.
//!
//! The kube client uses rustls with the process's crypto provider: `main` installs ring before
//! anything builds a client (kube is built without aws-lc).

pub mod discovery;
pub mod lease;
pub mod model;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use discovery::{DiscoveryOptions, DiscoveryReport, discover};
pub use lease::LeaseElector;
pub use model::MappingKeys;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("no Kubernetes configuration: {0} (set KUBECONFIG, or run in a cluster)")]
    Config(String),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot list {what} from the Kubernetes API: {source}")]
    List {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("Kubernetes API error on the {what}: {source}")]
    Api {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("lease: {0}")]
    Lease(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A client from `kubeconfig` if given, else inferred: `KUBECONFIG` / `~/.kube/config`, or the
/// in-cluster service account.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<kube::Client, KubeError> {
    // kube's rustls has no built-in provider choice here (ring only, no aws-lc): without a
    // process default it would panic. `main` installs ring already; this covers library callers.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| KubeError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| KubeError::Config(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| KubeError::Config(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(KubeError::Client)
}

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

/// Periodic discovery in the daemon, run by the leader only.
#[derive(Clone)]
pub struct DiscoveryJob {
    pub client: kube::Client,
    pub options: DiscoveryOptions,
    pub every: Duration,
}

impl std::fmt::Debug for DiscoveryJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryJob")
            .field("options", &self.options)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// Runs a discovery pass every `job.every` while this replica leads, and at once when it
/// becomes the leader, until shutdown. A failed pass is logged and retried at the next tick;
/// the daemon keeps serving.
pub async fn run_discovery(
    job: DiscoveryJob,
    store: crate::store::Store,
    mut shutdown: watch::Receiver<bool>,
    mut leader: watch::Receiver<bool>,
) {
    loop {
        if *leader.borrow_and_update() {
            let at = chrono::Utc::now();
            if let Err(e) = discover(&job.client, &store, &job.options, at, true).await {
                tracing::error!(error = %e, "kubernetes discovery failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(job.every) => {}
            changed = leader.changed() => {
                // The elector is gone (shutting down): wait for the tick rather than spin.
                if changed.is_err() {
                    tokio::time::sleep(job.every).await;
                }
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Holds leadership through a Lease: renews while held, tries again while not, and releases it
/// at shutdown. Publishes whether this replica leads. A failed renewal gives leadership up at
/// once (another replica may take the Lease once it lapses), and the next round re-acquires it.
pub async fn hold_lease(
    elector: Arc<LeaseElector>,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held = false;
    loop {
        let now_held = match elector.try_acquire_or_renew(chrono::Utc::now()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, identity = elector.identity(), "lease round failed");
                false
            }
        };
        if now_held != held {
            held = now_held;
            if held {
                tracing::info!(
                    identity = elector.identity(),
                    "this replica holds the lease: scheduled jobs and e-mail run here"
                );
            } else {
                tracing::warn!(identity = elector.identity(), "lease lost");
            }
            let _ = leader.send(held);
        }
        tokio::select! {
            _ = tokio::time::sleep(elector.renew_every()) => {}
            _ = shutdown.changed() => break,
        }
    }
    if held {
        let _ = leader.send(false);
        if let Err(e) = elector.release().await {
            tracing::warn!(error = %e, "cannot release the lease at shutdown");
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
    pub async fn setup(&self) -> Result<(Option<DiscoveryJob>, crate::serve::Elector), KubeError> {
        let wants_lease = self.leader_election == ElectionKind::Lease;
        if !self.kubernetes_discovery && !wants_lease {
            return Ok((None, crate::serve::Elector::Database));
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
            crate::serve::Elector::Lease(Arc::new(LeaseElector::new(
                client,
                &namespace,
                &self.lease_name,
                &lease::default_identity(),
                Duration::from_secs(self.lease_duration_secs),
            )))
        } else {
            crate::serve::Elector::Database
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
        #[arg(long, value_enum, default_value_t = crate::cli::Format::Table)]
        format: crate::cli::Format,
        #[command(flatten)]
        kube: KubernetesArgs,
    },
}

//! Kubernetes: workloads discovered as inventory and evaluated like VMs (rightsizing requests,
//! as KRR/VPA do, with the Pingdu thresholds and deadlines).
//!
//! - `core::kubernetes`: the pure mapping (quantities, labels, workload grouping, percentages).
//! - `discovery`: lists the cluster with kube and writes through the store.
//! - `daemon::lease`: the `coordination.k8s.io/v1` Lease elector; `daemon::kubernetes` runs
//!   discovery on the leader.
//!
//! The kube client uses rustls with the process's crypto provider: `main` installs ring before
//! anything builds a client (kube is built without aws-lc).

pub mod discovery;

use std::path::Path;

pub use crate::core::kubernetes::MappingKeys;
pub use discovery::{DiscoveryOptions, DiscoveryReport, discover};

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

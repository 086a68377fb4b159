//! Kubernetes in the daemon: discovery passes on the leader, and leadership held through a Lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::lease::LeaseElector;
use crate::jobs::kubernetes::{DiscoveryOptions, discover};

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

/// Runs a discovery pass every `job.every` while this replica leads (see
/// [`super::scheduler::run_every`]).
pub async fn run_discovery(
    job: DiscoveryJob,
    store: crate::store::Store,
    shutdown: watch::Receiver<bool>,
    leader: watch::Receiver<bool>,
) {
    let every = job.every;
    super::scheduler::run_every("kubernetes", every, shutdown, leader, move |at| {
        let (job, store) = (job.clone(), store.clone());
        async move {
            discover(&job.client, &store, &job.options, at, true).await?;
            Ok(())
        }
    })
    .await;
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

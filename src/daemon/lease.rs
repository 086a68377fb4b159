//! Leader election on a `coordination.k8s.io/v1` Lease, the alternative to the database's
//! advisory lock when replicas run in a cluster.
//!
//! A replica takes the Lease when it is absent, released, or expired, and renews it while it
//! holds it. Every write carries the `resourceVersion` it read, so the API server rejects (409)
//! the second of two replicas that read the same version: two replicas cannot both win.
//!
//! "Expired" is judged as client-go does, on this replica's own clock: the Lease has not changed
//! (same `resourceVersion`) for `leaseDurationSeconds` since this replica first saw that version.
//! The holder's `renewTime` is written for people and tools, but never compared with another
//! machine's clock, so clock skew between nodes cannot hand the Lease over early.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::jobs::kubernetes::KubeError;

/// A Lease version (`resourceVersion`) and when this replica first saw it.
type Observed = (String, DateTime<Utc>);

/// One replica's view of one Lease.
#[derive(Clone)]
pub struct LeaseElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
    observed: Arc<Mutex<Option<Observed>>>,
}

impl std::fmt::Debug for LeaseElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseElector")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish()
    }
}

fn micro_time(at: DateTime<Utc>) -> Result<MicroTime, KubeError> {
    k8s_openapi::jiff::Timestamp::from_microsecond(at.timestamp_micros())
        .map(MicroTime)
        .map_err(|e| KubeError::Lease(format!("instant {at} cannot be written: {e}")))
}

/// Whether an API error means "someone else wrote first".
fn lost_race(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaseElector {
    /// `duration` is how long a holder that stops renewing keeps the Lease (at least 1 s).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> LeaseElector {
        LeaseElector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration: duration.max(Duration::from_secs(1)),
            observed: Arc::new(Mutex::new(None)),
        }
    }

    /// When this replica first saw `version` (now, if it is new to it).
    fn first_seen(&self, version: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut observed = self
            .observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match observed.as_ref() {
            Some((v, at)) if v == version => *at,
            _ => {
                *observed = Some((version.to_owned(), now));
                now
            }
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often a holder renews: a third of the duration, so two renewals can fail before the
    /// Lease lapses.
    pub fn renew_every(&self) -> Duration {
        (self.duration / 3).max(Duration::from_millis(200))
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One election round as of `now`: creates, takes over or renews the Lease. Returns whether
    /// this replica holds it afterwards. Losing a race (409) is `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self, now: DateTime<Utc>) -> Result<bool, KubeError> {
        let pp = PostParams::default();
        let api_error = |source| KubeError::Api {
            what: "lease",
            source,
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await.map_err(api_error)? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(micro_time(now)?),
                    renew_time: Some(micro_time(now)?),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&pp, &lease).await {
                Ok(_) => Ok(true),
                Err(e) if lost_race(&e) => Ok(false),
                Err(e) => Err(api_error(e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() == Some(self.identity.as_str()) {
            spec.renew_time = Some(micro_time(now)?);
            spec.lease_duration_seconds = Some(self.duration_secs());
        } else {
            let version = lease.metadata.resource_version.clone().unwrap_or_default();
            let seen = self.first_seen(&version, now);
            let lapsed = seen
                + TimeDelta::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(0)))
                < now;
            let free = holder.is_none() || lapsed;
            if !free {
                return Ok(false);
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(micro_time(now)?);
            spec.renew_time = Some(micro_time(now)?);
            spec.lease_duration_seconds = Some(self.duration_secs());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        // `lease.metadata.resource_version` is the one read: a concurrent write makes this 409.
        match self.api.replace(&self.name, &pp, &lease).await {
            Ok(_) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(api_error(e)),
        }
    }

    /// Gives the Lease up if this replica holds it, so another takes over at once rather than
    /// after the duration (on shutdown).
    pub async fn release(&self) -> Result<(), KubeError> {
        let api_error = |source| KubeError::Api {
            what: "lease",
            source,
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await.map_err(api_error)? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if lost_race(&e) => Ok(()),
            Err(e) => Err(api_error(e)),
        }
    }

    /// The current holder, if any (for status and tests).
    pub async fn holder(&self) -> Result<Option<String>, KubeError> {
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| KubeError::Api {
                what: "lease",
                source,
            })?;
        Ok(lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty()))
    }
}

/// This replica's identity: `POD_NAME` in a cluster (the Downward API), else hostname and
/// process id, so two processes on one host are different holders.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.trim().is_empty()
    {
        return pod.trim().to_owned();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cloudgov".to_owned());
    format!("{host}-{}", std::process::id())
}

//! The art. 14 checks as a job: the registry against what agents and ARP exports saw.

use chrono::{DateTime, Utc};

use super::JobContext;
use crate::core::network::NetworkFinding;
use crate::store::StoreError;

/// The art. 14 checks as of `at`: registry against sightings. With `persist`, new findings
/// open (and are queued for e-mail), findings no longer raised clear. Returns the findings and
/// how many opened now.
pub async fn network_check(
    ctx: &JobContext,
    at: DateTime<Utc>,
    persist: bool,
) -> Result<(Vec<NetworkFinding>, u64), StoreError> {
    let registry = ctx.store.registry_entries().await?;
    let sightings = ctx.store.sightings().await?;
    let findings = crate::core::network::check(
        &registry,
        &sightings,
        ctx.rules.network(),
        &ctx.calendar,
        at,
    );
    let opened = if persist {
        ctx.store
            .record_network_findings(&findings, at)
            .await?
            .len() as u64
    } else {
        0
    };
    Ok((findings, opened))
}

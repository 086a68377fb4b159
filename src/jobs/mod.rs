//! The scheduled work as one pass (`cloudgov tick --at`, and the daemon's cron jobs): evaluate,
//! keep the working-day deadlines, detect deployment and completion, remind, escalate, and flag
//! silent agents. Every step is idempotent: running a pass twice for the same instant changes
//! nothing the second time.

pub mod actions;
pub mod alerts;
pub mod context;
pub mod evaluation;
pub mod kubernetes;
pub mod network;
pub mod notify;
pub mod obligations;
pub mod prometheus;
pub mod requests;
pub mod review;
pub mod snmp;
pub mod usage;
pub mod views;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use context::JobContext;
pub use network::network_check;
pub use obligations::{check_deadlines, sync_deadlines};
pub use usage::{fold, fold_and_expire};

use crate::jobs::evaluation::evaluate;
use crate::jobs::notify::{DeliverySummary, NotifyError, deliver_pending};
use crate::store::StoreError;

/// What one pass did, for the CLI and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TickSummary {
    pub evaluated_vms: usize,
    pub notices_opened: u64,
    pub deadlines_created: u64,
    pub due_dates_recomputed: u64,
    pub deployments_inferred: u64,
    pub deadlines_done: u64,
    pub reminders: u64,
    pub escalations: u64,
    pub silent_agents: u64,
    pub network_findings_opened: u64,
    /// VM-days folded into their aggregates (and compacted), raw samples deleted by retention.
    pub days_folded: u64,
    pub samples_expired: u64,
    pub emails: DeliverySummary,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// Every scheduled job once, as of `at`; e-mails go out at once (backoff is for the daemon).
pub async fn tick(ctx: &JobContext, at: DateTime<Utc>) -> Result<TickSummary, JobError> {
    let mut summary = TickSummary::default();
    // The aggregates current first: the evaluation reads them.
    let folded = fold(ctx, at).await?;
    summary.days_folded = folded.days();
    let report = evaluate(&ctx.store, &ctx.rules, at, true).await?;
    summary.evaluated_vms = report.vms;
    summary.notices_opened = report.notices_opened;
    check_deadlines(ctx, at, &mut summary).await?;
    summary.network_findings_opened = network_check(ctx, at, true).await?.1;
    let (folded_later, expired) = fold_and_expire(ctx, at).await?;
    summary.days_folded += folded_later;
    summary.samples_expired = expired + folded.expired;
    summary.emails = deliver_pending(ctx, at, true, &|| true).await?;
    tracing::info!(at = %at, ?summary, "tick done");
    Ok(summary)
}

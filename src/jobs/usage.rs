//! Keeping usage current and bounded: the fold (marked VM-days into their aggregates, completed
//! days compacted into blocks), the samples' partitions (PostgreSQL), and retention.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::JobContext;
use crate::core::calendar::shanghai_day;
use crate::store::{FoldRequest, Folded, StoreError};

/// Marked days read and folded per transaction: one commit (one fsync on SQLite) for many.
const FOLD_BATCH: i64 = 500;

/// What one fold did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FoldSummary {
    /// Days whose new samples were added to their aggregate.
    pub added: u64,
    /// Days rebuilt from all their samples (a sample older than the aggregate's last came).
    pub rebuilt: u64,
    /// Days compacted into blocks: completed days, and today's once its head holds an hour.
    pub compacted: u64,
    /// Raw samples that arrived past raw retention: folded into their day's aggregate, not kept.
    pub expired: u64,
}

impl FoldSummary {
    pub fn days(&self) -> u64 {
        self.added + self.rebuilt + self.compacted
    }
}

/// The first day whose raw samples the rules keep, as of `today`.
fn raw_before(ctx: &JobContext, today: chrono::NaiveDate) -> chrono::NaiveDate {
    today - chrono::TimeDelta::days(i64::from(ctx.rules.retention().raw_samples_days))
}

/// Folds every marked day as of `at`: a day before `at`'s (Asia/Shanghai) is complete and is
/// compacted (also when its last samples were folded before midnight and left no mark);
/// today's gets its new samples, and is compacted too once its head holds
/// `HEAD_ROWS_TO_COMPACT` rows. Marks written while it runs wait for the next
/// fold (it reads at most the backlog it found, so it ends under any ingest rate).
pub async fn fold(ctx: &JobContext, at: DateTime<Utc>) -> Result<FoldSummary, StoreError> {
    let today = shanghai_day(at);
    let raw_before = raw_before(ctx, today);
    ctx.store
        .mark_past_head_days(
            crate::core::samples::shanghai_day_start(today),
            at.timestamp(),
        )
        .await?;
    let (backlog, _) = ctx.store.fold_backlog().await?;
    let mut budget = backlog;
    let mut summary = FoldSummary::default();
    while budget > 0 {
        let marks = ctx.store.dirty_days(FOLD_BATCH.min(budget)).await?;
        if marks.is_empty() {
            break;
        }
        budget -= marks.len() as i64;
        let days: Vec<_> = marks
            .iter()
            .map(|&mark| FoldRequest {
                mark,
                closed: mark.day < today,
                keep_raw: mark.day >= raw_before,
            })
            .collect();
        for outcome in ctx.store.fold_days(&days).await? {
            match outcome {
                Folded::Added => summary.added += 1,
                Folded::Rebuilt => summary.rebuilt += 1,
                Folded::Compacted { expired } => {
                    summary.compacted += 1;
                    summary.expired += expired;
                }
                Folded::Empty => {}
            }
        }
    }
    tracing::debug!(at = %at, ?summary, "usage folded");
    Ok(summary)
}

/// Folds, keeps the samples' partitions (PostgreSQL), then applies the rules' retention: raw
/// samples older than `raw_samples_days` (once folded) and aggregates older than
/// `rollup_days` go. Returns (days folded, raw samples deleted).
pub async fn fold_and_expire(
    ctx: &JobContext,
    at: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let folded = fold(ctx, at).await?;
    let today = shanghai_day(at);
    let raw_before = raw_before(ctx, today);
    let aggregates_before =
        today - chrono::TimeDelta::days(i64::from(ctx.rules.retention().rollup_days));
    // PostgreSQL: this month's and the next months' partitions exist before their samples come.
    ctx.store.maintain_sample_partitions(at, raw_before).await?;
    let (samples, _) = ctx
        .store
        .apply_retention(raw_before, aggregates_before)
        .await?;
    Ok((folded.days(), samples + folded.expired))
}

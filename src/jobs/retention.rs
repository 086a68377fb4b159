//! Daily rollups and retention: what the review keeps after the raw samples are gone.

use chrono::{DateTime, NaiveDate, Utc};

use super::JobContext;
use crate::core::calendar::shanghai_day;
use crate::store::StoreError;

/// Most days rolled up together: one read of their samples and one transaction instead of one
/// per day (a backfill brings hundreds), with the samples held in memory bounded (a quarter of one VM).
const ROLLUP_RUN_DAYS: usize = 92;

/// Rolls up every day whose samples changed since its last rollup (new reports, backfill,
/// replays: the samples' own transaction marked them). Returns the days written.
pub async fn roll_up(ctx: &JobContext, _at: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut written = 0;
    for run in consecutive_days(&ctx.store.dirty_days().await?) {
        let (Some(&(vm_key, first, _)), Some(&(_, last, _))) = (run.first(), run.last()) else {
            continue;
        };
        written += ctx.store.roll_up_days(vm_key, first, last).await? as u64;
        ctx.store.clear_dirty_days(run).await?;
    }
    Ok(written)
}

/// Dirty days (ordered by VM, then day) cut into runs of one VM's consecutive days, each at
/// most [`ROLLUP_RUN_DAYS`] long.
fn consecutive_days(dirty: &[(i64, NaiveDate, i64)]) -> Vec<&[(i64, NaiveDate, i64)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=dirty.len() {
        let ends = i == dirty.len()
            || dirty[i].0 != dirty[i - 1].0
            || dirty[i - 1].1.succ_opt() != Some(dirty[i].1)
            || i - start == ROLLUP_RUN_DAYS;
        if ends {
            runs.push(&dirty[start..i]);
            start = i;
        }
    }
    runs
}

/// Rolls up, keeps the samples' partitions (PostgreSQL), then applies the rules' retention: raw
/// samples older than `raw_samples_days` (once rolled up; on PostgreSQL whole months are dropped
/// as partitions) and rollups older than `rollup_days` go. Returns (days rolled up, samples deleted).
pub async fn roll_up_and_expire(
    ctx: &JobContext,
    at: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let rolled = roll_up(ctx, at).await?;
    let today = shanghai_day(at);
    let keep = ctx.rules.retention();
    let raw_before = today - chrono::TimeDelta::days(i64::from(keep.raw_samples_days));
    let rollups_before = today - chrono::TimeDelta::days(i64::from(keep.rollup_days));
    // PostgreSQL: this month's and the next months' partitions exist before their samples come.
    ctx.store.maintain_sample_partitions(at, raw_before).await?;
    let (samples, _) = ctx
        .store
        .apply_retention(raw_before, rollups_before)
        .await?;
    Ok((rolled, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_days_roll_up_in_runs_of_one_vms_consecutive_days() {
        let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2025, m, day).expect("date");
        let mut dirty = vec![(1, d(1, 30), 5), (1, d(1, 31), 6), (1, d(2, 1), 7)];
        dirty.push((1, d(2, 3), 8)); // a gap
        dirty.push((2, d(2, 4), 9)); // another VM
        let runs = consecutive_days(&dirty);
        let lengths: Vec<usize> = runs.iter().map(|r| r.len()).collect();
        assert_eq!(lengths, [3, 1, 1]);
        assert_eq!(runs[0].last().map(|r| r.1), Some(d(2, 1)));
        // A long run is cut, so one read never holds more than a quarter of samples.
        let year: Vec<_> = (0..100)
            .map(|i| (3, d(1, 1) + chrono::TimeDelta::days(i), 1))
            .collect();
        let lengths: Vec<usize> = consecutive_days(&year).iter().map(|r| r.len()).collect();
        assert_eq!(lengths, [92, 8]);
        assert!(consecutive_days(&[]).is_empty());
    }
}

//! Daily rollups: written from raw samples, read by the annual review; and retention of both.

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Asia::Shanghai;
use sqlx::Row;

use super::inventory::parse_date;
use super::{Backend, BeginWrite, Result, Store, StoreError, on_pool};
use crate::core::rollup::{DayRollup, Histogram, roll_up};

/// The first instant of a Shanghai day, as Unix seconds.
fn day_start(day: NaiveDate) -> i64 {
    Shanghai
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(0, |t| t.timestamp())
}

impl Store {
    /// Days whose samples changed since they were rolled up: (vm_key, day, marked_at).
    pub async fn dirty_days(&self) -> Result<Vec<(i64, NaiveDate, i64)>> {
        let rows: Vec<(i64, String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT vm_key, day, marked_at FROM rollup_dirty ORDER BY vm_key, day").fetch_all(p).await)?;
        rows.into_iter()
            .map(|(k, d, m)| Ok((k, parse_date(&d)?, m)))
            .collect()
    }

    /// Clears a dirty day once rolled up, unless samples arrived after `marked_at` (then it
    /// stays dirty for the next rollup).
    pub async fn clear_dirty(&self, vm_key: i64, day: NaiveDate, marked_at: i64) -> Result<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM rollup_dirty WHERE vm_key = $1 AND day = $2 AND marked_at <= $3")
            .bind(vm_key).bind(day.to_string()).bind(marked_at).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// [`Store::clear_dirty`] of several days in one transaction (after rolling up a run of
    /// days together), each against its own `marked_at`.
    pub async fn clear_dirty_days(&self, days: &[(i64, NaiveDate, i64)]) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (vm_key, day, marked_at) in days {
                sqlx::query("DELETE FROM rollup_dirty WHERE vm_key = $1 AND day = $2 AND marked_at <= $3")
                    .bind(vm_key).bind(day.to_string()).bind(marked_at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Rolls up a VM's raw samples of the days `from..=to` (replacing those days' rollups) in
    /// one transaction. Returns the days written.
    pub async fn roll_up_days(&self, vm_key: i64, from: NaiveDate, to: NaiveDate) -> Result<usize> {
        let start = DateTime::from_timestamp(day_start(from) - 1, 0).unwrap_or_default();
        let end = DateTime::from_timestamp(day_start(to.succ_opt().unwrap_or(to)) - 1, 0)
            .unwrap_or_default();
        let samples = self.samples_between(vm_key, start, end).await?;
        let days = roll_up(&samples);
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for d in &days {
                sqlx::query(
                    "INSERT INTO sample_days (vm_key, day, samples, cpu_sum, cpu_max, cpu_p95, cpu_hist, mem_sum, mem_max, \
                     mem_hist, disk_samples, disk_sum, disk_max, disk_last, disk_hist) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                     ON CONFLICT (vm_key, day) DO UPDATE SET samples = excluded.samples, cpu_sum = excluded.cpu_sum, \
                     cpu_max = excluded.cpu_max, cpu_p95 = excluded.cpu_p95, cpu_hist = excluded.cpu_hist, \
                     mem_sum = excluded.mem_sum, mem_max = excluded.mem_max, mem_hist = excluded.mem_hist, \
                     disk_samples = excluded.disk_samples, disk_sum = excluded.disk_sum, disk_max = excluded.disk_max, \
                     disk_last = excluded.disk_last, disk_hist = excluded.disk_hist")
                    .bind(vm_key).bind(d.day.to_string()).bind(i64::from(d.samples))
                    .bind(d.cpu_sum).bind(d.cpu_max).bind(d.cpu_p95).bind(d.cpu_hist.encode())
                    .bind(d.mem_sum).bind(d.mem_max).bind(d.mem_hist.encode())
                    .bind(i64::from(d.disk_samples)).bind(d.disk_sum).bind(d.disk_max).bind(d.disk_last)
                    .bind(d.disk_hist.encode())
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(days.len())
        })
    }

    /// A VM's rollups for the days `from..=to`, oldest first.
    pub async fn day_rollups(
        &self,
        vm_key: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayRollup>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT day, samples, cpu_sum, cpu_max, cpu_p95, cpu_hist, mem_sum, mem_max, mem_hist, disk_samples, \
                 disk_sum, disk_max, disk_last, disk_hist FROM sample_days \
                 WHERE vm_key = $1 AND day >= $2 AND day <= $3 ORDER BY day")
                .bind(vm_key).bind(from.to_string()).bind(to.to_string())
                .fetch_all(p).await?;
            let hist = |s: String| Histogram::decode(&s).map_err(StoreError::Invalid);
            rows.into_iter()
                .map(|r| Ok(DayRollup {
                    day: parse_date(&r.try_get::<String, _>(0)?)?,
                    samples: r.try_get::<i64, _>(1)? as u32,
                    cpu_sum: r.try_get(2)?,
                    cpu_max: r.try_get(3)?,
                    cpu_p95: r.try_get(4)?,
                    cpu_hist: hist(r.try_get(5)?)?,
                    mem_sum: r.try_get(6)?,
                    mem_max: r.try_get(7)?,
                    mem_hist: hist(r.try_get(8)?)?,
                    disk_samples: r.try_get::<i64, _>(9)? as u32,
                    disk_sum: r.try_get(10)?,
                    disk_max: r.try_get(11)?,
                    disk_last: r.try_get(12)?,
                    disk_hist: hist(r.try_get(13)?)?,
                }))
                .collect()
        })
    }

    /// Deletes raw samples before `raw_before` that are rolled up, and rollups before
    /// `rollups_before`. Returns (samples deleted, rollup days deleted).
    pub async fn apply_retention(
        &self,
        raw_before: NaiveDate,
        rollups_before: NaiveDate,
    ) -> Result<(u64, u64)> {
        let raw_cut = day_start(raw_before);
        // PostgreSQL: whole months before the cut go as partitions (a catalog change, not a scan);
        // the delete below then only meets the boundary month and the default partition.
        let dropped = match &self.backend {
            Backend::Postgres(pool) => super::partitions::drop_expired(pool, raw_cut).await?,
            Backend::Sqlite(_) => 0,
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Only rolled-up samples go: a VM with a day still waiting for its rollup keeps its
            // raw samples, so nothing is lost to retention.
            let samples = sqlx::query(
                "DELETE FROM samples WHERE ts < $1 AND NOT EXISTS \
                 (SELECT 1 FROM rollup_dirty d WHERE d.vm_key = samples.vm_key)")
                .bind(raw_cut)
                .execute(&mut *tx).await?.rows_affected();
            let rollups = sqlx::query("DELETE FROM sample_days WHERE day < $1")
                .bind(rollups_before.to_string()).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok((dropped + samples, rollups))
        })
    }
}

/// A stored review: (project, score, grade, verdict, the whole review as JSON).
pub type StoredReview = (String, f64, String, String, String);

impl Store {
    /// Stores a year's reviews (the latest replaces an earlier run's) in one transaction, and
    /// queues each project's review e-mail the first time that project is reviewed for the year.
    /// `reviews`: (project, department, score, grade, verdict, JSON). Returns the e-mails queued.
    pub async fn record_reviews(
        &self,
        year: i32,
        reviews: &[(String, String, f64, String, String, String)],
        at: i64,
    ) -> Result<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut queued = 0;
            for (project, department, score, grade, verdict, json) in reviews {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO reviews (year, project_id, score, grade, verdict, review, reviewed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (year, project_id) DO UPDATE SET \
                     score = excluded.score, grade = excluded.grade, verdict = excluded.verdict, \
                     review = excluded.review, reviewed_at = excluded.reviewed_at RETURNING id")
                    .bind(i64::from(year)).bind(project).bind(score).bind(grade).bind(verdict).bind(json).bind(at)
                    .fetch_one(&mut *tx).await?;
                let sent: Option<(i64,)> = sqlx::query_as("SELECT outbox_id FROM outbox_reviews WHERE review_id = $1")
                    .bind(id).fetch_optional(&mut *tx).await?;
                if sent.is_none() {
                    let (outbox_id,): (i64,) = sqlx::query_as(
                        "INSERT INTO outbox (kind, department_id, state, attempts, next_attempt_at, created_at) \
                         VALUES ('review', $1, 'pending', 0, $2, $2) RETURNING id")
                        .bind(department).bind(at).fetch_one(&mut *tx).await?;
                    sqlx::query("INSERT INTO outbox_reviews (outbox_id, review_id) VALUES ($1, $2)")
                        .bind(outbox_id).bind(id).execute(&mut *tx).await?;
                    queued += 1;
                }
            }
            tx.commit().await?;
            Ok(queued)
        })
    }

    /// The stored reviews of a year, or the one an outbox job announces.
    pub async fn reviews(
        &self,
        year: Option<i32>,
        outbox_id: Option<i64>,
    ) -> Result<Vec<StoredReview>> {
        self.reviews_in(year, outbox_id, None).await
    }

    /// [`Store::reviews`] of one department's projects (`None`: all).
    pub async fn reviews_in(
        &self,
        year: Option<i32>,
        outbox_id: Option<i64>,
        department: Option<&str>,
    ) -> Result<Vec<StoredReview>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT r.project_id, r.score, r.grade, r.verdict, r.review FROM reviews r \
             JOIN projects pr ON pr.id = r.project_id \
             WHERE ($1 IS NULL OR r.year = $1) \
             AND ($2 IS NULL OR r.id IN (SELECT review_id FROM outbox_reviews WHERE outbox_id = $2)) \
             AND ($3 IS NULL OR pr.department_id = $3) \
             ORDER BY r.score DESC, r.project_id")
            .bind(year.map(i64::from)).bind(outbox_id).bind(department).fetch_all(p).await)?)
    }
}

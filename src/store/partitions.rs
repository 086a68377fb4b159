//! Monthly partitions of `samples` on PostgreSQL (migration 0008): created ahead of time, filled
//! from the default partition when a month that already has rows there gets its own partition,
//! and dropped whole by retention. SQLite keeps one plain table and none of this applies.
//!
//! A partition `samples_yYYYYmMM` holds the UTC month [first second, first second of the next
//! month) of `ts`. Everything outside the created months lands in `samples_default`, so no sample
//! is ever refused. Only partitions named this way are managed; the default one never is.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::PgPool;

use super::{Backend, BeginWrite, Result, Store};

/// Months created ahead of the current one, so a month's partition exists before its first sample.
pub const MONTHS_AHEAD: u32 = 2;

/// SQLSTATE of a lock not granted within `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// A managed partition: its table name and the UTC month it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePartition {
    pub name: String,
    pub year: i32,
    pub month: u32,
    /// Unix seconds: `from <= ts < to`.
    pub from: i64,
    pub to: i64,
}

/// What one upkeep pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionUpkeep {
    /// Partitions created, by name.
    pub created: Vec<String>,
    /// Rows moved out of the default partition into a created one.
    pub rows_moved: u64,
}

/// The (year, month) `months` after (year, month); `months` may be negative.
fn add_months(year: i32, month: u32, months: i32) -> (i32, u32) {
    let index = year * 12 + month as i32 - 1 + months;
    (index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
}

/// The partition of a UTC month, or `None` for a month chrono cannot represent.
fn partition(year: i32, month: u32) -> Option<SamplePartition> {
    let start = |(y, m): (i32, u32)| {
        Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .map(|t| t.timestamp())
    };
    Some(SamplePartition {
        name: format!("samples_y{year:04}m{month:02}"),
        year,
        month,
        from: start((year, month))?,
        to: start(add_months(year, month, 1))?,
    })
}

/// The month a managed partition's name stands for.
fn parse_name(name: &str) -> Option<SamplePartition> {
    let rest = name.strip_prefix("samples_y")?;
    let (year, month) = rest.split_once('m')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let (year, month) = (year.parse().ok()?, month.parse().ok()?);
    if !(1..=12).contains(&month) {
        return None;
    }
    partition(year, month)
}

/// The UTC month of an instant.
fn month_of(ts: i64) -> Option<(i32, u32)> {
    let t = DateTime::from_timestamp(ts, 0)?;
    Some((t.year(), t.month()))
}

impl Store {
    /// The managed partitions of `samples`, oldest first (empty on SQLite).
    pub async fn sample_partitions(&self) -> Result<Vec<SamplePartition>> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Vec::new()),
            Backend::Postgres(pool) => list(pool).await,
        }
    }

    /// Creates the partitions of the month of `at` and [`MONTHS_AHEAD`] months after it, and of
    /// every month from the one of `keep_from` on that has rows waiting in the default partition
    /// (moving them in). Rows of months before `keep_from` stay in the default partition until
    /// retention deletes them (after their fold); rows of months after the ones created ahead
    /// (an agent with a wrong clock) stay there for good. A no-op on SQLite.
    pub async fn maintain_sample_partitions(
        &self,
        at: DateTime<Utc>,
        keep_from: NaiveDate,
    ) -> Result<PartitionUpkeep> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(PartitionUpkeep::default());
        };
        let (year, month) = (at.year(), at.month());
        let last = add_months(year, month, MONTHS_AHEAD as i32);
        let mut wanted: Vec<(i32, u32)> = (0..=MONTHS_AHEAD as i32)
            .map(|n| add_months(year, month, n))
            .collect();
        let first = (keep_from.year(), keep_from.month());
        if let (Some(from), Some(to)) = (partition(first.0, first.1), partition(last.0, last.1)) {
            // The default partition is small (rows outside every created month), so this scan is too.
            let waiting: Vec<(i64,)> = sqlx::query_as(
                "SELECT DISTINCT (ts - ts % 86400) FROM samples_default WHERE ts >= $1 AND ts < $2",
            )
            .bind(from.from)
            .bind(to.to)
            .fetch_all(pool)
            .await?;
            wanted.extend(waiting.into_iter().filter_map(|(day,)| month_of(day)));
        }
        wanted.sort_unstable();
        wanted.dedup();
        let existing = list(pool).await?;
        let mut upkeep = PartitionUpkeep::default();
        for (y, m) in wanted {
            let Some(p) = partition(y, m) else { continue };
            if existing.iter().any(|e| e.name == p.name) {
                continue;
            }
            if let Some(moved) = create(pool, &p).await? {
                tracing::info!(partition = %p.name, rows_moved = moved, "samples partition created");
                upkeep.created.push(p.name);
                upkeep.rows_moved += moved;
            }
        }
        Ok(upkeep)
    }
}

async fn list(pool: &PgPool) -> Result<Vec<SamplePartition>> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'samples'::regclass",
    )
    .fetch_all(pool)
    .await?;
    let mut partitions: Vec<SamplePartition> =
        names.iter().filter_map(|(n,)| parse_name(n)).collect();
    partitions.sort_by_key(|p| p.from);
    Ok(partitions)
}

/// Creates one month's partition, moving that month's rows out of the default partition in the
/// same transaction (attaching a range the default partition still has rows of would fail).
/// Returns the rows moved, or `None` if another process created it first.
async fn create(pool: &PgPool, p: &SamplePartition) -> Result<Option<u64>> {
    let mut tx = pool.begin_write().await?;
    // Serializes with other creators and with inserts routed to the default partition, so no
    // row of this month can arrive there between the move and the attach. Inserts into the other
    // partitions go on.
    sqlx::query("LOCK TABLE samples_default IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
        .bind(&p.name)
        .fetch_one(&mut *tx)
        .await?;
    if exists {
        return Ok(None);
    }
    // Names come from `partition` (digits only) and bounds are integers: nothing user-supplied.
    sqlx::query(&format!(
        "CREATE TABLE {} (LIKE samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        p.name
    ))
    .execute(&mut *tx)
    .await?;
    let moved = sqlx::query(&format!(
        "WITH moved AS (DELETE FROM samples_default WHERE ts >= $1 AND ts < $2 \
         RETURNING vm_key, ts, cpu_pct, mem_pct, disk_pct) \
         INSERT INTO {} (vm_key, ts, cpu_pct, mem_pct, disk_pct) SELECT * FROM moved",
        p.name
    ))
    .bind(p.from)
    .bind(p.to)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(&format!(
        "ALTER TABLE samples ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})",
        p.name, p.from, p.to
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(moved))
}

/// Retention's first step on PostgreSQL: drops every managed partition that lies wholly before
/// `raw_cut` and holds no sample of a VM with a day still waiting for its fold (the same rule
/// the row-by-row delete follows). Returns the rows dropped; the caller then deletes the rest
/// of the expired rows (the boundary partition, the default one, and kept partitions' rows once
/// their VMs are folded) row by row.
pub(super) async fn drop_expired(pool: &PgPool, raw_cut: i64) -> Result<u64> {
    let mut dropped = 0;
    for p in list(pool).await?.into_iter().filter(|p| p.to <= raw_cut) {
        // Counted before the lock, so the lock is held for catalog work only. A sample backfilled
        // into this month in between is dropped uncounted (after its fold, by the check below).
        let (rows,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {}", p.name))
            .fetch_one(pool)
            .await?;
        let mut tx = pool.begin_write().await?;
        // Ingest and reads queue behind this lock, so it is not waited for long: a busy moment
        // leaves the month for the next pass.
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await?;
        // The parent first, then the partition: the order an insert takes them, so no deadlock.
        // While this holds, no insert can add a row (and its fold mark) to the partition.
        let locked = sqlx::query("LOCK TABLE ONLY samples IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await;
        if let Err(sqlx::Error::Database(e)) = &locked
            && e.code().as_deref() == Some(LOCK_NOT_AVAILABLE)
        {
            tracing::warn!(partition = %p.name, "expired samples partition kept for the next pass: samples stayed busy for 5 s");
            continue;
        }
        locked?;
        let (pending,): (bool,) = sqlx::query_as(&format!(
            "SELECT EXISTS (SELECT 1 FROM usage_dirty d \
             WHERE EXISTS (SELECT 1 FROM {} s WHERE s.vm_key = d.vm_key))",
            p.name
        ))
        .fetch_one(&mut *tx)
        .await?;
        if pending {
            tracing::info!(partition = %p.name, "expired samples partition kept: a VM in it awaits its fold");
            tx.rollback().await?;
            continue;
        }
        sqlx::query(&format!("DROP TABLE {}", p.name))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(partition = %p.name, rows, "expired samples partition dropped");
        dropped += rows as u64;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_years_both_ways() {
        assert_eq!(add_months(2025, 11, 2), (2026, 1));
        assert_eq!(add_months(2025, 1, -1), (2024, 12));
        assert_eq!(add_months(2025, 12, 0), (2025, 12));
    }

    #[test]
    fn a_partition_holds_its_utc_month_and_its_name_parses_back() {
        let p = partition(2025, 1).expect("representable");
        assert_eq!(p.name, "samples_y2025m01");
        assert_eq!((p.from, p.to), (1_735_689_600, 1_738_368_000));
        assert_eq!(parse_name(&p.name), Some(p));
        assert_eq!(parse_name("samples_default"), None);
        assert_eq!(parse_name("samples_y2025m13"), None);
        assert_eq!(parse_name("samples_y25m01"), None);
    }
}

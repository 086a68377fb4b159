//! Usage samples: bulk inserts from imports and agents, and reads for the evaluation window.

use chrono::{DateTime, Utc};

use super::network::{SightingRow, collapse_sightings, upsert_sighting};
use super::{BeginWrite, Result, Store, now_secs, on_pool};
use crate::core::rules::evaluate::SamplePoint;
use crate::core::samples::SampleRow;

/// An agent report reduced to what the store keeps: the sample, plus the agent's view of itself.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub sample: SampleRow,
    pub seq: i64,
    pub hostname: String,
    pub machine_id: Option<String>,
    pub os: String,
    pub agent_version: String,
    pub vcpus: i64,
    pub memory_bytes: i64,
    pub disk_bytes: i64,
    pub filesystems_json: String,
    pub interfaces_json: String,
    /// The report's own addresses and neighbours, for the network checks.
    pub sightings: Vec<SightingRow>,
}

/// Marks a VM's Shanghai day for re-rolling, inside the samples' transaction.
pub(super) const MARK_DIRTY: &str = "INSERT INTO rollup_dirty (vm_key, day, marked_at) VALUES ($1, $2, $3) \
                          ON CONFLICT (vm_key, day) DO UPDATE SET marked_at = excluded.marked_at";

/// The distinct (VM, Shanghai day) pairs of some samples.
fn dirty_days<'a>(
    rows: impl Iterator<Item = &'a SampleRow>,
) -> std::collections::BTreeSet<(i64, String)> {
    rows.filter_map(|r| {
        DateTime::from_timestamp(r.ts, 0).map(|t| {
            (
                r.vm_key,
                t.with_timezone(&chrono_tz::Asia::Shanghai)
                    .date_naive()
                    .to_string(),
            )
        })
    })
    .collect()
}

pub(super) const INSERT_SAMPLE: &str = "INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// Rows per multi-row INSERT: 5 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
const SAMPLES_PER_STATEMENT: usize = 1000;

/// Inserts `rows` into `samples` inside the open transaction `tx`, a multi-row statement per
/// chunk; evaluates to how many were new (a replayed sample is skipped by the primary key).
macro_rules! insert_sample_rows {
    ($tx:expr, $rows:expr) => {{
        let mut inserted = 0u64;
        for chunk in $rows.chunks(SAMPLES_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct) ",
            );
            query.push_values(chunk, |mut row, s: &&SampleRow| {
                row.push_bind(s.vm_key)
                    .push_bind(s.ts)
                    .push_bind(s.cpu_pct)
                    .push_bind(s.mem_pct)
                    .push_bind(s.disk_pct);
            });
            query.push(" ON CONFLICT DO NOTHING");
            inserted += query.build().execute(&mut *$tx).await?.rows_affected();
        }
        inserted
    }};
}

impl Store {
    /// Inserts samples in one transaction; a sample already stored for the same VM and instant
    /// is skipped. Returns (inserted, duplicates).
    pub async fn insert_samples(&self, rows: &[SampleRow]) -> Result<(u64, u64)> {
        let now = now_secs();
        let dirty = dirty_days(rows.iter());
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let refs: Vec<&SampleRow> = rows.iter().collect();
            let inserted = insert_sample_rows!(tx, refs);
            for (vm_key, day) in &dirty {
                sqlx::query(MARK_DIRTY).bind(vm_key).bind(day).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            inserted
        });
        Ok((inserted, rows.len() as u64 - inserted))
    }

    /// Stores one agent batch atomically: its samples and the agent's latest self-description.
    /// Returns (inserted, duplicates). Nothing is written if any statement fails.
    pub async fn ingest_reports(&self, reports: &[StoredReport]) -> Result<(u64, u64)> {
        let now = now_secs();
        let dirty = dirty_days(reports.iter().map(|r| &r.sample));
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let samples: Vec<&SampleRow> = reports.iter().map(|r| &r.sample).collect();
            let inserted = insert_sample_rows!(tx, samples);
            for (sighting, first_seen) in collapse_sightings(reports.iter().flat_map(|r| &r.sightings)) {
                upsert_sighting!(tx, sighting, first_seen);
            }
            for (vm_key, day) in &dirty {
                sqlx::query(MARK_DIRTY).bind(vm_key).bind(day).bind(now).execute(&mut *tx).await?;
            }
            // The newest report describes the agent; an older replayed one must not overwrite it.
                    if let Some(r) = reports.iter().max_by_key(|r| r.sample.ts) {
                        sqlx::query(
                            "INSERT INTO agents (vm_key, hostname, machine_id, os, agent_version, last_seq, \
                             last_collected_at, last_seen_at, vcpus, memory_bytes, disk_bytes, filesystems, interfaces) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                             ON CONFLICT (vm_key) DO UPDATE SET hostname = excluded.hostname, \
                             machine_id = excluded.machine_id, os = excluded.os, agent_version = excluded.agent_version, \
                             last_seq = excluded.last_seq, last_collected_at = excluded.last_collected_at, \
                             vcpus = excluded.vcpus, memory_bytes = excluded.memory_bytes, disk_bytes = excluded.disk_bytes, \
                             filesystems = excluded.filesystems, interfaces = excluded.interfaces \
                             WHERE excluded.last_collected_at >= agents.last_collected_at")
                            .bind(r.sample.vm_key).bind(&r.hostname).bind(&r.machine_id).bind(&r.os)
                            .bind(&r.agent_version).bind(r.seq).bind(r.sample.ts).bind(now)
                            .bind(r.vcpus).bind(r.memory_bytes).bind(r.disk_bytes)
                            .bind(&r.filesystems_json).bind(&r.interfaces_json)
                            .execute(&mut *tx).await?;
                        sqlx::query("UPDATE agents SET last_seen_at = $2 WHERE vm_key = $1")
                            .bind(r.sample.vm_key).bind(now)
        .execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    inserted
                });
        Ok((inserted, reports.len() as u64 - inserted))
    }

    /// Samples of one VM with `from < ts <= to`, oldest first.
    pub async fn samples_between(
        &self,
        vm_key: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SamplePoint>> {
        let rows: Vec<(i64, f64, f64, Option<f64>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT ts, cpu_pct, mem_pct, disk_pct FROM samples \
             WHERE vm_key = $1 AND ts > $2 AND ts <= $3 ORDER BY ts")
            .bind(vm_key).bind(from.timestamp()).bind(to.timestamp())
            .fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(ts, cpu, mem, disk)| {
                Some(SamplePoint {
                    at: DateTime::from_timestamp(ts, 0)?,
                    cpu,
                    mem,
                    disk,
                })
            })
            .collect())
    }

    /// Number of stored samples, in all or for one VM.
    pub async fn count_samples(&self, vm_key: Option<i64>) -> Result<i64> {
        // Two statements, not `$1 IS NULL OR vm_key = $1`: a prepared plan of that form cannot
        // use the (vm_key, ts) key and reads every partition in full.
        let (n,): (i64,) = match vm_key {
            Some(key) => on_pool!(self, p => sqlx::query_as(
                "SELECT COUNT(*) FROM samples WHERE vm_key = $1").bind(key).fetch_one(p).await)?,
            None => on_pool!(self, p => sqlx::query_as("SELECT COUNT(*) FROM samples")
                .fetch_one(p).await)?,
        };
        Ok(n)
    }
}

//! Usage samples as they arrive: bulk inserts from imports and agents into the head table
//! (`samples`), each marking its VM-days for the fold (`usage_dirty`) in the same transaction.
//! A sample of a day already compacted into a block is checked against the block, so a replay
//! stays a no-op there too.

use std::collections::{BTreeMap, HashMap};

use super::network::{SightingRow, collapse_sightings, upsert_sightings};
use super::{Backend, BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::samples::{Hundredths, Sample, SampleRow, shanghai_day_of};

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

/// Marks a VM-day for the fold, inside the samples' transaction: `$3` is the earliest sample of
/// the day just written. Each marking bumps `version`, so a fold clears only what it read.
pub(super) const MARK_DIRTY: &str = "INSERT INTO usage_dirty (vm_key, day, min_ts, marked_at, version) \
     VALUES ($1, $2, $3, $4, 1) ON CONFLICT (vm_key, day) DO UPDATE SET version = usage_dirty.version + 1, \
     min_ts = CASE WHEN excluded.min_ts < usage_dirty.min_ts THEN excluded.min_ts ELSE usage_dirty.min_ts END";

/// The columns of a head row, in the order [`sample_of_row`] reads them.
pub(super) const SAMPLE_COLUMNS: &str =
    "ts, cpu_pct, mem_pct, disk_pct, net_rx_bps, net_tx_bps, inbound_connections";

/// The (VM, Shanghai day) pairs of some samples, each with its earliest sample.
pub(super) fn dirty_days<'a>(
    rows: impl Iterator<Item = &'a SampleRow>,
) -> BTreeMap<(i64, String), i64> {
    let mut out: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for r in rows {
        let key = (r.vm_key, shanghai_day_of(r.sample.ts).to_string());
        let min = out.entry(key).or_insert(r.sample.ts);
        *min = (*min).min(r.sample.ts);
    }
    out
}

/// A head row with its VM's key first, as read with `vm_key, ` and [`SAMPLE_COLUMNS`].
pub(super) type KeyedSampleTuple = (
    i64,
    i64,
    f64,
    f64,
    Option<f64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A head row as read with [`SAMPLE_COLUMNS`].
pub(super) type SampleTuple = (
    i64,
    f64,
    f64,
    Option<f64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A head row read back: percentages are stored as `hundredths / 100`, so they round back exactly.
pub(super) fn sample_of(row: SampleTuple) -> Result<Sample> {
    let (ts, cpu, mem, disk, rx, tx, inbound) = row;
    let pct = |v: f64| {
        Hundredths::new((v * 100.0).round() as u16)
            .filter(|_| (0.0..=100.0).contains(&v))
            .ok_or_else(|| StoreError::Invalid(format!("stored percentage {v} is outside 0..=100")))
    };
    let count = |v: Option<i64>| v.map(|v| v.max(0) as u64);
    Ok(Sample {
        ts,
        cpu: pct(cpu)?,
        mem: pct(mem)?,
        disk: disk.map(pct).transpose()?,
        net_rx_bps: count(rx),
        net_tx_bps: count(tx),
        inbound_connections: inbound.map(|v| v.clamp(0, i64::from(u32::MAX)) as u32),
    })
}

/// Rows per multi-row INSERT: 8 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
pub(super) const SAMPLES_PER_STATEMENT: usize = 1000;

/// Agent rows per upsert statement: 13 parameters each.
const AGENTS_PER_STATEMENT: usize = 500;

/// Inserts `rows` into the head inside the open transaction `tx`, a multi-row statement per
/// chunk, marks their days for the fold, and evaluates to how many were new. A sample stored
/// already (in the head by the primary key, or in its day's block) is skipped.
macro_rules! insert_sample_rows {
    ($tx:expr, $rows:expr, $now:expr) => {{
        let rows: Vec<&$crate::core::samples::SampleRow> = $rows;
        // Samples compacted already are in their day's block, which the primary key cannot
        // see: a completed day's, and today's once the fold has moved its first hours there.
        let mut compacted: std::collections::HashSet<(i64, i64)> = std::collections::HashSet::new();
        for ((vm_key, day), earliest) in $crate::store::samples::dirty_days(rows.iter().copied()) {
            // A day's block is always inside its aggregate: when every row is newer than the
            // aggregate's last sample (an agent's usual batch), none can be in the block, and
            // the block is not read.
            let stored: Option<(Vec<u8>,)> = sqlx::query_as(
                "SELECT block FROM sample_blocks WHERE vm_key = $1 AND day = $2 AND NOT EXISTS \
                 (SELECT 1 FROM usage_days WHERE vm_key = $1 AND day = $2 AND last_ts < $3)",
            )
            .bind(vm_key)
            .bind(&day)
            .bind(earliest)
            .fetch_optional(&mut *$tx)
            .await?;
            if let Some((bytes,)) = stored {
                let instants = $crate::core::usage::block::timestamps(&bytes).map_err(|e| {
                    $crate::store::StoreError::Invalid(format!("VM {vm_key} day {day}: {e}"))
                })?;
                compacted.extend(instants.into_iter().map(|ts| (vm_key, ts)));
            }
        }
        let fresh: Vec<&$crate::core::samples::SampleRow> = rows
            .into_iter()
            .filter(|r| !compacted.contains(&(r.vm_key, r.sample.ts)))
            .collect();
        let mut inserted = 0u64;
        for chunk in fresh.chunks($crate::store::samples::SAMPLES_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct, net_rx_bps, net_tx_bps, inbound_connections) ",
            );
            query.push_values(chunk, |mut row, r: &&$crate::core::samples::SampleRow| {
                let s = &r.sample;
                row.push_bind(r.vm_key)
                    .push_bind(s.ts)
                    .push_bind(s.cpu.percent())
                    .push_bind(s.mem.percent())
                    .push_bind(s.disk.map($crate::core::samples::Hundredths::percent))
                    .push_bind(s.net_rx_bps.map(|v| v as i64))
                    .push_bind(s.net_tx_bps.map(|v| v as i64))
                    .push_bind(s.inbound_connections.map(i64::from));
            });
            query.push(" ON CONFLICT DO NOTHING");
            inserted += query.build().execute(&mut *$tx).await?.rows_affected();
        }
        for ((vm_key, day), min_ts) in $crate::store::samples::dirty_days(fresh.iter().copied()) {
            sqlx::query($crate::store::samples::MARK_DIRTY)
                .bind(vm_key)
                .bind(day)
                .bind(min_ts)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        }
        inserted
    }};
}
pub(super) use insert_sample_rows;

/// An import of samples in one transaction, fed a chunk at a time: nothing is visible until
/// [`SampleImport::commit`], and dropping it (a bad row later in the file) keeps nothing.
pub struct SampleImport {
    tx: ImportTx,
    now: i64,
    inserted: u64,
    offered: u64,
}

enum ImportTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl SampleImport {
    /// Adds rows to the import; a sample stored already is skipped.
    pub async fn add(&mut self, rows: &[SampleRow]) -> Result<()> {
        let now = self.now;
        let inserted = match &mut self.tx {
            ImportTx::Sqlite(tx) => insert_sample_rows!(*tx, rows.iter().collect(), now),
            ImportTx::Postgres(tx) => insert_sample_rows!(*tx, rows.iter().collect(), now),
        };
        self.inserted += inserted;
        self.offered += rows.len() as u64;
        Ok(())
    }

    /// Commits everything added. Returns (inserted, duplicates).
    pub async fn commit(self) -> Result<(u64, u64)> {
        match self.tx {
            ImportTx::Sqlite(tx) => tx.commit().await?,
            ImportTx::Postgres(tx) => tx.commit().await?,
        }
        Ok((self.inserted, self.offered - self.inserted))
    }
}

impl Store {
    /// Starts an import of samples (one write transaction; SQLite's other writers wait).
    pub async fn begin_sample_import(&self) -> Result<SampleImport> {
        let tx = match &self.backend {
            Backend::Sqlite(pool) => ImportTx::Sqlite(pool.begin_write().await?),
            Backend::Postgres(pool) => ImportTx::Postgres(pool.begin_write().await?),
        };
        Ok(SampleImport {
            tx,
            now: now_secs(),
            inserted: 0,
            offered: 0,
        })
    }

    /// Inserts samples in one transaction; a sample already stored for the same VM and instant
    /// is skipped. Returns (inserted, duplicates).
    pub async fn insert_samples(&self, rows: &[SampleRow]) -> Result<(u64, u64)> {
        let now = now_secs();
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted = insert_sample_rows!(tx, rows.iter().collect(), now);
            tx.commit().await?;
            inserted
        });
        Ok((inserted, rows.len() as u64 - inserted))
    }

    /// Stores one agent batch atomically: its samples and the agent's latest self-description.
    /// Returns (inserted, duplicates). Nothing is written if any statement fails.
    pub async fn ingest_reports(&self, reports: &[StoredReport]) -> Result<(u64, u64)> {
        let counts = self.ingest_groups(&[reports]).await?;
        Ok(counts.first().copied().unwrap_or((0, 0)))
    }

    /// Stores several agent batches in one transaction (group commit): each batch's samples
    /// and its agent's latest self-description, as [`Store::ingest_reports`] would one by one.
    /// Returns (inserted, duplicates) per batch, in order; nothing is written if any statement
    /// fails, so no batch is acknowledged that the commit does not hold.
    pub async fn ingest_groups(&self, groups: &[&[StoredReport]]) -> Result<Vec<(u64, u64)>> {
        let now = now_secs();
        // The whole group is written as one transaction: each batch's samples in multi-row
        // statements, each sighting and each VM's agent row upserted once for the group, from
        // the newest report.
        let sightings = collapse_sightings(
            groups
                .iter()
                .flat_map(|g| g.iter().flat_map(|r| &r.sightings)),
        );
        let mut newest: HashMap<i64, &StoredReport> = HashMap::new();
        for r in groups.iter().flat_map(|g| g.iter()) {
            let slot = newest.entry(r.sample.vm_key).or_insert(r);
            if r.sample.sample.ts >= slot.sample.sample.ts {
                *slot = r;
            }
        }
        let mut agents: Vec<&StoredReport> = newest.into_values().collect();
        agents.sort_by_key(|r| r.sample.vm_key);
        let counts = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // A statement per batch gives each batch its own count (a sample offered twice in
            // one group is new for the first batch only) without reading rows back, which
            // costs more than the statements on SQLite's worker thread.
            let mut counts = Vec::with_capacity(groups.len());
            for g in groups {
                let inserted = insert_sample_rows!(tx, g.iter().map(|r| &r.sample).collect(), now);
                counts.push((inserted, g.len() as u64 - inserted));
            }
            upsert_sightings!(tx, sightings);
            for chunk in agents.chunks(AGENTS_PER_STATEMENT) {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO agents (vm_key, hostname, machine_id, os, agent_version, last_seq, \
                     last_collected_at, last_seen_at, vcpus, memory_bytes, disk_bytes, filesystems, interfaces) ");
                query.push_values(chunk, |mut row, r| {
                    row.push_bind(r.sample.vm_key).push_bind(&r.hostname).push_bind(&r.machine_id)
                        .push_bind(&r.os).push_bind(&r.agent_version).push_bind(r.seq)
                        .push_bind(r.sample.sample.ts).push_bind(now).push_bind(r.vcpus)
                        .push_bind(r.memory_bytes).push_bind(r.disk_bytes)
                        .push_bind(&r.filesystems_json).push_bind(&r.interfaces_json);
                });
                // The newest report describes the agent; an older replayed one must not
                // overwrite it, but the agent was seen now either way.
                query.push(
                    " ON CONFLICT (vm_key) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
                     hostname = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.hostname ELSE agents.hostname END, \
                     machine_id = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.machine_id ELSE agents.machine_id END, \
                     os = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.os ELSE agents.os END, \
                     agent_version = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.agent_version ELSE agents.agent_version END, \
                     last_seq = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.last_seq ELSE agents.last_seq END, \
                     vcpus = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.vcpus ELSE agents.vcpus END, \
                     memory_bytes = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.memory_bytes ELSE agents.memory_bytes END, \
                     disk_bytes = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.disk_bytes ELSE agents.disk_bytes END, \
                     filesystems = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.filesystems ELSE agents.filesystems END, \
                     interfaces = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.interfaces ELSE agents.interfaces END, \
                     last_collected_at = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.last_collected_at ELSE agents.last_collected_at END");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            counts
        });
        Ok(counts)
    }
}

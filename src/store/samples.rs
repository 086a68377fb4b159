//! Usage samples as they arrive: bulk inserts from imports and agents into the head table
//! (`samples`), each marking its VM-days for the fold (`usage_dirty`) in the same transaction.
//! A sample of a day already compacted into a block is checked against the block, so a replay
//! stays a no-op there too.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::network::{
    INSERT_SIGHTINGS, SIGHTING_CONFLICT, SightingRow, collapse_sightings, upsert_sightings,
};
use super::{Backend, BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::samples::{Hundredths, Sample, SampleRow, shanghai_day_of};
use crate::core::usage::block;
use sqlx::Row;

/// One agent batch reduced to what the store keeps: the samples of one VM, the agent's view of
/// itself from the newest report, and the (IP, MAC) pairs the reports showed.
#[derive(Debug, Clone)]
pub struct AgentBatch {
    pub samples: Vec<SampleRow>,
    pub agent: AgentSelf,
    /// One per (IP, MAC, kind, source): the latest occurrence, with the earliest time seen.
    pub sightings: Vec<(SightingRow, i64)>,
}

/// What an agent says about itself (its newest report of a batch), and its clock.
#[derive(Debug, Clone)]
pub struct AgentSelf {
    pub vm_key: i64,
    pub seq: i64,
    /// When the newest report was collected (Unix seconds).
    pub collected_at: i64,
    pub hostname: String,
    pub machine_id: Option<String>,
    pub os: String,
    pub agent_version: String,
    pub vcpus: i64,
    pub memory_bytes: i64,
    pub disk_bytes: i64,
    pub filesystems_json: String,
    pub interfaces_json: String,
    /// The clock reading of the request, when the agent stamped it.
    pub clock: Option<ClockReading>,
}

/// How far an agent's clock is off (daemon minus agent, seconds), and whether that is within
/// the limit: a clock back within it clears the VM's open `clock_skew` alert with the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    pub offset_secs: i64,
    pub within_limit: bool,
}

/// Marks VM-days for the fold, inside the samples' transaction: each row is (VM, day, earliest
/// sample of the day just written, now); distinct (VM, day) pairs per statement. Each marking
/// bumps `version`, so a fold clears only what it read.
const MARK_DIRTY_CONFLICT: &str = " ON CONFLICT (vm_key, day) DO UPDATE SET version = usage_dirty.version + 1, \
     min_ts = CASE WHEN excluded.min_ts < usage_dirty.min_ts THEN excluded.min_ts ELSE usage_dirty.min_ts END";
/// VM-day marks per statement: 5 parameters each.
const MARKS_PER_STATEMENT: usize = 1000;

/// The columns of a head row, in the order [`sample_of_row`] reads them.
pub(super) const SAMPLE_COLUMNS: &str =
    "ts, cpu_pct, mem_pct, disk_pct, net_rx_bps, net_tx_bps, inbound_connections";

/// The (VM, Shanghai day) pairs of some samples, each with its earliest sample. Days are
/// grouped by number and spelled once per pair.
pub(super) fn dirty_days<'a>(
    rows: impl Iterator<Item = &'a SampleRow>,
) -> BTreeMap<(i64, String), i64> {
    const SHANGHAI_OFFSET_SECS: i64 = 8 * 3600;
    let mut by_number: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for r in rows {
        let day = (r.sample.ts + SHANGHAI_OFFSET_SECS).div_euclid(86_400);
        let min = by_number.entry((r.vm_key, day)).or_insert(r.sample.ts);
        *min = (*min).min(r.sample.ts);
    }
    by_number
        .into_iter()
        .map(|((vm_key, _), min)| ((vm_key, shanghai_day_of(min).to_string()), min))
        .collect()
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

/// A sample as its head row stores it (the inverse of [`sample_of`], with the VM's key first):
/// percentages as `hundredths / 100`, counts as signed integers.
fn stored_row(r: &SampleRow) -> KeyedSampleTuple {
    let s = &r.sample;
    (
        r.vm_key,
        s.ts,
        s.cpu.percent(),
        s.mem.percent(),
        s.disk.map(Hundredths::percent),
        s.net_rx_bps.map(|v| v as i64),
        s.net_tx_bps.map(|v| v as i64),
        s.inbound_connections.map(i64::from),
    )
}

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
const SAMPLES_PER_STATEMENT: usize = 1000;

/// Agent rows per upsert statement: 14 parameters each.
const AGENTS_PER_STATEMENT: usize = 500;

/// Writes batches of samples into the head inside an open transaction, in each backend's
/// cheapest way, marking their VM-days for the fold. Returns how many of each batch were new,
/// in order. A sample stored already (in the head by the primary key, or in its day's block) is
/// skipped; a sample offered twice is new for the first batch only.
pub(super) trait SampleWriter {
    async fn insert_sample_batches(
        &mut self,
        batches: &[&[SampleRow]],
        now: i64,
    ) -> Result<Vec<u64>>;

    /// [`SampleWriter::insert_sample_batches`] of one batch: how many rows were new.
    async fn insert_sample_rows(&mut self, rows: &[SampleRow], now: i64) -> Result<u64> {
        let counts = self.insert_sample_batches(&[rows], now).await?;
        Ok(counts.first().copied().unwrap_or(0))
    }
}

/// The instants of some VM-days already compacted into blocks, as (VM, instant) pairs, from
/// `(vm_key, day, block)` rows.
fn compacted_instants(
    blocks: impl IntoIterator<Item = (i64, String, Vec<u8>)>,
) -> Result<HashSet<(i64, i64)>> {
    let mut compacted = HashSet::new();
    for (vm_key, day, bytes) in blocks {
        let instants = block::timestamps(&bytes)
            .map_err(|e| StoreError::Invalid(format!("VM {vm_key} day {day}: {e}")))?;
        compacted.extend(instants.into_iter().map(|ts| (vm_key, ts)));
    }
    Ok(compacted)
}

/// SQLite (in-process, so a statement costs little): a multi-row INSERT per chunk of a batch,
/// each batch's count from its statements' changes.
impl SampleWriter for sqlx::SqliteConnection {
    async fn insert_sample_batches(
        &mut self,
        batches: &[&[SampleRow]],
        now: i64,
    ) -> Result<Vec<u64>> {
        // Samples compacted already are in their day's block, which the primary key cannot
        // see: a completed day's, and today's once the fold has moved its first hours there.
        let mut blocks = Vec::new();
        for ((vm_key, day), earliest) in dirty_days(batches.iter().flat_map(|b| b.iter())) {
            let stored: Option<(Vec<u8>,)> = sqlx::query_as(REPLAY_BLOCK)
                .bind(vm_key)
                .bind(&day)
                .bind(earliest)
                .fetch_optional(&mut *self)
                .await?;
            if let Some((bytes,)) = stored {
                blocks.push((vm_key, day, bytes));
            }
        }
        let compacted = compacted_instants(blocks)?;
        let is_fresh = |r: &SampleRow| !compacted.contains(&(r.vm_key, r.sample.ts));
        let mut counts = Vec::with_capacity(batches.len());
        for batch in batches {
            let filtered: Vec<SampleRow>;
            let fresh: &[SampleRow] = if compacted.is_empty() {
                batch
            } else {
                filtered = batch.iter().copied().filter(|r| is_fresh(r)).collect();
                &filtered
            };
            let mut inserted = 0u64;
            for chunk in fresh.chunks(SAMPLES_PER_STATEMENT) {
                let mut query = sqlx::QueryBuilder::new(INSERT_SAMPLES);
                query.push_values(chunk, |mut row, r| {
                    let (vm_key, ts, cpu, mem, disk, rx, tx, inbound) = stored_row(r);
                    row.push_bind(vm_key)
                        .push_bind(ts)
                        .push_bind(cpu)
                        .push_bind(mem)
                        .push_bind(disk)
                        .push_bind(rx)
                        .push_bind(tx)
                        .push_bind(inbound);
                });
                query.push(" ON CONFLICT DO NOTHING");
                inserted += query.build().execute(&mut *self).await?.rows_affected();
            }
            counts.push(inserted);
        }
        let fresh = batches
            .iter()
            .flat_map(|b| b.iter())
            .filter(|r| is_fresh(r));
        let marks: Vec<_> = dirty_days(fresh).into_iter().collect();
        for chunk in marks.chunks(MARKS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO usage_dirty (vm_key, day, min_ts, marked_at, version) ",
            );
            query.push_values(chunk, |mut row, ((vm_key, day), min_ts)| {
                row.push_bind(*vm_key)
                    .push_bind(day.as_str())
                    .push_bind(*min_ts)
                    .push_bind(now)
                    .push_bind(1i64);
            });
            query.push(MARK_DIRTY_CONFLICT);
            query.build().execute(&mut *self).await?;
        }
        Ok(counts)
    }
}

/// PostgreSQL: a statement costs a round trip and an executor start, and `ON CONFLICT` a
/// speculative insertion per row (measured: 1.8x a plain INSERT). So a group takes one read
/// before writing, and its samples go in at most two statements whatever its size: where no
/// row can conflict (a VM whose head holds nothing at or after its earliest offered sample, an
/// agent's usual batch of new samples), by a binary `COPY`, which inserts a partition's rows in
/// batches; the other VMs' rows by an INSERT with `ON CONFLICT`, rows as one array per column
/// (a constant text, so prepared once), read back to count them.
impl SampleWriter for sqlx::PgConnection {
    async fn insert_sample_batches(
        &mut self,
        batches: &[&[SampleRow]],
        now: i64,
    ) -> Result<Vec<u64>> {
        // One read for the two questions before writing: which VM-days offered are compacted
        // into blocks already (their samples are checked against the block, which the primary
        // key cannot see), and which VMs' heads hold samples at or after the earliest offered
        // (only their rows can conflict there, unless another writer commits the same sample
        // meanwhile: see below). The second rows come with no day.
        let (vm_keys, day_names, earliest) =
            day_columns(dirty_days(batches.iter().flat_map(|b| b.iter())));
        let mut earliest_of: HashMap<i64, i64> = HashMap::new();
        for (vm_key, day_earliest) in vm_keys.iter().zip(&earliest) {
            let min = earliest_of.entry(*vm_key).or_insert(*day_earliest);
            *min = (*min).min(*day_earliest);
        }
        let (vms, vm_earliest): (Vec<i64>, Vec<i64>) = earliest_of.into_iter().unzip();
        let found: Vec<(i64, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT w.vm_key, w.day, b.block \
             FROM UNNEST($1::int8[], $2::text[], $3::int8[]) AS w (vm_key, day, earliest) \
             JOIN sample_blocks b ON b.vm_key = w.vm_key AND b.day = w.day \
             WHERE NOT EXISTS (SELECT 1 FROM usage_days u \
                               WHERE u.vm_key = w.vm_key AND u.day = w.day AND u.last_ts < w.earliest) \
             UNION ALL \
             SELECT k.vm_key, NULL, NULL FROM UNNEST($4::int8[], $5::int8[]) AS k (vm_key, earliest) \
             WHERE EXISTS (SELECT 1 FROM samples s WHERE s.vm_key = k.vm_key AND s.ts >= k.earliest)",
        )
        .bind(&vm_keys)
        .bind(&day_names)
        .bind(&earliest)
        .bind(&vms)
        .bind(&vm_earliest)
        .fetch_all(&mut *self)
        .await?;
        let mut seen = HashSet::new();
        let mut blocks = Vec::new();
        for (vm_key, day, block) in found {
            match (day, block) {
                (Some(day), Some(block)) => blocks.push((vm_key, day, block)),
                _ => {
                    seen.insert(vm_key);
                }
            }
        }
        let compacted = compacted_instants(blocks)?;
        // A sample offered twice (by two batches, or twice in one) is the first offer's: later
        // ones are left out here and count as duplicates, so each is written once and the
        // counts stay exact.
        let mut offered: HashMap<(i64, i64), usize> = HashMap::new();
        let mut rows: Vec<(usize, &SampleRow)> = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            for r in batch.iter() {
                let key = (r.vm_key, r.sample.ts);
                if compacted.contains(&key) || offered.contains_key(&key) {
                    continue;
                }
                offered.insert(key, i);
                rows.push((i, r));
            }
        }
        // Every day with a sample not compacted already is marked, written now or not.
        let marks = day_columns(dirty_days(rows.iter().map(|(_, r)| *r)));
        let (mut careful, plain): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|(_, r)| seen.contains(&r.vm_key));
        let mut counts = vec![0u64; batches.len()];
        if !plain.is_empty() {
            // In a savepoint: a sample another writer committed since the check above makes
            // the COPY fail, and its rows are then written as the careful ones are.
            let mut savepoint = sqlx::Connection::begin(&mut *self).await?;
            let data = binary_copy_data(plain.iter().map(|(_, r)| *r));
            let written = copy_in(&mut savepoint, &data).await;
            match written {
                Ok(_) => {
                    savepoint.commit().await?;
                    for (i, _) in &plain {
                        counts[*i] += 1;
                    }
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    savepoint.rollback().await?;
                    tracing::debug!(
                        rows = plain.len(),
                        "another writer committed some of these samples meanwhile: writing them with ON CONFLICT"
                    );
                    careful.extend(plain);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !careful.is_empty() {
            let sql = format!(
                "{INSERT_SAMPLES}{FROM_SAMPLE_ARRAYS} ON CONFLICT DO NOTHING RETURNING vm_key, ts"
            );
            let columns = SampleColumns::of(careful.iter().map(|(_, r)| *r));
            let stored = insert_sample_columns(&sql, &columns)
                .fetch_all(&mut *self)
                .await?;
            for row in stored {
                let key: (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                if let Some(i) = offered.get(&key) {
                    counts[*i] += 1;
                }
            }
        }
        let (vm_keys, day_names, min_ts) = marks;
        if !vm_keys.is_empty() {
            sqlx::query(&format!(
                "INSERT INTO usage_dirty (vm_key, day, min_ts, marked_at, version) \
                 SELECT vm_key, day, min_ts, $4, 1 \
                 FROM UNNEST($1::int8[], $2::text[], $3::int8[]) AS m (vm_key, day, min_ts){MARK_DIRTY_CONFLICT}"
            ))
            .bind(&vm_keys)
            .bind(&day_names)
            .bind(&min_ts)
            .bind(now)
            .execute(&mut *self)
            .await?;
        }
        Ok(counts)
    }
}

/// [`dirty_days`] as one array per column (VM, day, earliest), for PostgreSQL's `UNNEST`.
fn day_columns(days: BTreeMap<(i64, String), i64>) -> (Vec<i64>, Vec<String>, Vec<i64>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for ((vm_key, day), earliest) in days {
        columns.0.push(vm_key);
        columns.1.push(day);
        columns.2.push(earliest);
    }
    columns
}

/// The head's columns in the order [`binary_copy_data`] writes them.
const COPY_SAMPLES: &str = "COPY samples (vm_key, ts, cpu_pct, mem_pct, disk_pct, net_rx_bps, \
     net_tx_bps, inbound_connections) FROM STDIN (FORMAT binary)";

/// Rows for [`COPY_SAMPLES`] in PostgreSQL's binary COPY format: a header, then per row a field
/// count and each field as its length and big-endian bytes (-1 for NULL), then a trailer. COPY
/// inserts rows in batches per partition, where an INSERT routes and inserts them one by one.
fn binary_copy_data<'a>(rows: impl ExactSizeIterator<Item = &'a SampleRow>) -> Vec<u8> {
    const FIELDS: i16 = 8;
    let mut data = Vec::with_capacity(19 + rows.len() * (2 + 8 * 12) + 2);
    data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    data.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    data.extend_from_slice(&0i32.to_be_bytes()); // no header extension
    let int8 = |data: &mut Vec<u8>, v: Option<i64>| match v {
        Some(v) => {
            data.extend_from_slice(&8i32.to_be_bytes());
            data.extend_from_slice(&v.to_be_bytes());
        }
        None => data.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    let float8 = |data: &mut Vec<u8>, v: Option<f64>| match v {
        Some(v) => {
            data.extend_from_slice(&8i32.to_be_bytes());
            data.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        None => data.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    for r in rows {
        let (vm_key, ts, cpu, mem, disk, rx, tx, inbound) = stored_row(r);
        data.extend_from_slice(&FIELDS.to_be_bytes());
        int8(&mut data, Some(vm_key));
        int8(&mut data, Some(ts));
        float8(&mut data, Some(cpu));
        float8(&mut data, Some(mem));
        float8(&mut data, disk);
        int8(&mut data, rx);
        int8(&mut data, tx);
        int8(&mut data, inbound);
    }
    data.extend_from_slice(&(-1i16).to_be_bytes());
    data
}

/// Sends [`binary_copy_data`] through [`COPY_SAMPLES`]: how many rows were written.
async fn copy_in(conn: &mut sqlx::PgConnection, data: &[u8]) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(COPY_SAMPLES).await?;
    copy.send(data).await?;
    copy.finish().await
}

/// The rows of a samples INSERT as one array per column (PostgreSQL).
const FROM_SAMPLE_ARRAYS: &str = "SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::float8[], \
     $4::float8[], $5::float8[], $6::int8[], $7::int8[], $8::int8[])";

/// Samples as one array per column, for PostgreSQL's `UNNEST`.
#[derive(Default)]
struct SampleColumns {
    vm_key: Vec<i64>,
    ts: Vec<i64>,
    cpu: Vec<f64>,
    mem: Vec<f64>,
    disk: Vec<Option<f64>>,
    rx: Vec<Option<i64>>,
    tx: Vec<Option<i64>>,
    inbound: Vec<Option<i64>>,
}

impl SampleColumns {
    fn of<'a>(rows: impl Iterator<Item = &'a SampleRow>) -> SampleColumns {
        let mut c = SampleColumns::default();
        for r in rows {
            let (vm_key, ts, cpu, mem, disk, rx, tx, inbound) = stored_row(r);
            c.vm_key.push(vm_key);
            c.ts.push(ts);
            c.cpu.push(cpu);
            c.mem.push(mem);
            c.disk.push(disk);
            c.rx.push(rx);
            c.tx.push(tx);
            c.inbound.push(inbound);
        }
        c
    }
}

/// A samples INSERT (`sql`) with [`SampleColumns`] bound as `$1..$8` of [`FROM_SAMPLE_ARRAYS`].
fn insert_sample_columns<'q>(
    sql: &'q str,
    c: &'q SampleColumns,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(&c.vm_key)
        .bind(&c.ts)
        .bind(&c.cpu)
        .bind(&c.mem)
        .bind(&c.disk)
        .bind(&c.rx)
        .bind(&c.tx)
        .bind(&c.inbound)
}

/// A VM-day's block, when a sample at or before `$3` may be in it: a day's block is always
/// inside its aggregate, so when every row is newer than the aggregate's last sample (an
/// agent's usual batch) the block is not read.
const REPLAY_BLOCK: &str = "SELECT block FROM sample_blocks WHERE vm_key = $1 AND day = $2 AND NOT EXISTS \
     (SELECT 1 FROM usage_days WHERE vm_key = $1 AND day = $2 AND last_ts < $3)";

const INSERT_SAMPLES: &str = "INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct, \
     net_rx_bps, net_tx_bps, inbound_connections) ";

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
            ImportTx::Sqlite(tx) => tx.insert_sample_rows(rows, now).await?,
            ImportTx::Postgres(tx) => tx.insert_sample_rows(rows, now).await?,
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
            let inserted = tx.insert_sample_rows(rows, now).await?;
            tx.commit().await?;
            inserted
        });
        Ok((inserted, rows.len() as u64 - inserted))
    }

    /// Stores one agent batch atomically: its samples, the agent's latest self-description,
    /// its sightings. Returns (inserted, duplicates). Nothing is written if any statement fails.
    pub async fn ingest_batch(&self, batch: &AgentBatch) -> Result<(u64, u64)> {
        let counts = self.ingest_groups(&[batch]).await?;
        Ok(counts.first().copied().unwrap_or((0, 0)))
    }

    /// Stores several agent batches in one transaction (group commit), as
    /// [`Store::ingest_batch`] would one by one. Returns (inserted, duplicates) per batch, in
    /// order; nothing is written if any statement fails, so no batch is acknowledged that the
    /// commit does not hold.
    pub async fn ingest_groups(&self, batches: &[&AgentBatch]) -> Result<Vec<(u64, u64)>> {
        let now = now_secs();
        let rows = AgentRows::of(batches, now);
        let samples: Vec<&[SampleRow]> = batches.iter().map(|b| b.samples.as_slice()).collect();
        let counts = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted = tx.insert_sample_batches(&samples, now).await?;
            tx.upsert_agent_rows(&rows).await?;
            tx.commit().await?;
            inserted
        });
        Ok(counts
            .into_iter()
            .zip(batches)
            .map(|(inserted, b)| (inserted, b.samples.len() as u64 - inserted))
            .collect())
    }
}

/// An ingest group's rows besides its samples, each once: PostgreSQL refuses to update a row
/// twice in one statement.
pub(super) struct AgentRows<'a> {
    /// One per (IP, MAC, kind, source), with the earliest time seen.
    sightings: Vec<(&'a SightingRow, i64)>,
    /// Each VM's agent row, from its newest report.
    agents: Vec<&'a AgentSelf>,
    /// The VMs whose clock is back within the limit: their open `clock_skew` alert is cleared.
    clock_ok: Vec<i64>,
    now: i64,
}

impl<'a> AgentRows<'a> {
    fn of(batches: &[&'a AgentBatch], now: i64) -> AgentRows<'a> {
        let sightings = collapse_sightings(
            batches
                .iter()
                .flat_map(|b| b.sightings.iter().map(|(row, first)| (row, *first))),
        );
        let mut newest: HashMap<i64, &AgentSelf> = HashMap::new();
        for agent in batches.iter().map(|b| &b.agent) {
            let slot = newest.entry(agent.vm_key).or_insert(agent);
            if agent.collected_at >= slot.collected_at {
                *slot = agent;
            }
        }
        let mut agents: Vec<&AgentSelf> = newest.into_values().collect();
        agents.sort_by_key(|a| a.vm_key);
        let clock_ok = agents
            .iter()
            .filter(|a| a.clock.is_some_and(|c| c.within_limit))
            .map(|a| a.vm_key)
            .collect();
        AgentRows {
            sightings,
            agents,
            clock_ok,
            now,
        }
    }
}

/// Writes [`AgentRows`] inside the group's transaction.
pub(super) trait AgentRowsWriter {
    async fn upsert_agent_rows(&mut self, rows: &AgentRows<'_>) -> Result<()>;
}

/// SQLite: multi-row statements, a statement costing little in-process.
impl AgentRowsWriter for sqlx::SqliteConnection {
    async fn upsert_agent_rows(&mut self, rows: &AgentRows<'_>) -> Result<()> {
        let now = rows.now;
        upsert_sightings!(self, rows.sightings.clone());
        for chunk in rows.agents.chunks(AGENTS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new(UPSERT_AGENTS);
            query.push_values(chunk, |mut row, a| {
                row.push_bind(a.vm_key)
                    .push_bind(&a.hostname)
                    .push_bind(&a.machine_id)
                    .push_bind(&a.os)
                    .push_bind(&a.agent_version)
                    .push_bind(a.seq)
                    .push_bind(a.collected_at)
                    .push_bind(now)
                    .push_bind(a.vcpus)
                    .push_bind(a.memory_bytes)
                    .push_bind(a.disk_bytes)
                    .push_bind(&a.filesystems_json)
                    .push_bind(&a.interfaces_json)
                    .push_bind(a.clock.map(|c| c.offset_secs));
            });
            query.push(UPSERT_AGENTS_CONFLICT);
            query.build().execute(&mut *self).await?;
        }
        for chunk in rows.clock_ok.chunks(AGENTS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new("UPDATE alerts SET cleared_at = ");
            query.push_bind(now);
            query.push(" WHERE kind = 'clock_skew' AND cleared_at IS NULL AND vm_key IN (");
            let mut keys = query.separated(", ");
            for key in chunk {
                keys.push_bind(*key);
            }
            query.push(")");
            query.build().execute(&mut *self).await?;
        }
        Ok(())
    }
}

/// PostgreSQL: one statement whatever the group's size (data-modifying CTEs, rows passed as one
/// array per column), so its text never changes: prepared once per connection, one round trip
/// and one executor start a group.
impl AgentRowsWriter for sqlx::PgConnection {
    async fn upsert_agent_rows(&mut self, rows: &AgentRows<'_>) -> Result<()> {
        let sql = format!(
            "WITH sightings AS ({INSERT_SIGHTINGS}{FROM_SIGHTING_ARRAYS}{SIGHTING_CONFLICT}), \
             agents AS ({UPSERT_AGENTS}{FROM_AGENT_ARRAYS}{UPSERT_AGENTS_CONFLICT}) \
             UPDATE alerts SET cleared_at = $24 WHERE kind = 'clock_skew' AND cleared_at IS NULL \
             AND vm_key = ANY($25::int8[])"
        );
        // One array per column, in the order of the parameters.
        fn column<'r, R: 'r, T>(of: impl Iterator<Item = &'r R>, f: impl Fn(&'r R) -> T) -> Vec<T> {
            of.map(f).collect()
        }
        let sighting = || rows.sightings.iter();
        let agent = || rows.agents.iter().copied();
        sqlx::query(&sql)
            .bind(column(sighting(), |(r, _)| r.ip.as_str()))
            .bind(column(sighting(), |(r, _)| r.mac.as_str()))
            .bind(column(sighting(), |(r, _)| r.kind.as_str()))
            .bind(column(sighting(), |(r, _)| r.source.as_str()))
            .bind(column(sighting(), |(r, _)| r.vm_key))
            .bind(column(sighting(), |(r, _)| r.interface.as_str()))
            .bind(column(sighting(), |(r, _)| r.config.as_str()))
            .bind(column(sighting(), |(r, _)| r.config_source.as_deref()))
            .bind(column(sighting(), |(_, first)| *first))
            .bind(column(sighting(), |(r, _)| r.seen_at))
            .bind(column(agent(), |a| a.vm_key))
            .bind(column(agent(), |a| a.hostname.as_str()))
            .bind(column(agent(), |a| a.machine_id.as_deref()))
            .bind(column(agent(), |a| a.os.as_str()))
            .bind(column(agent(), |a| a.agent_version.as_str()))
            .bind(column(agent(), |a| a.seq))
            .bind(column(agent(), |a| a.collected_at))
            .bind(column(agent(), |a| a.vcpus))
            .bind(column(agent(), |a| a.memory_bytes))
            .bind(column(agent(), |a| a.disk_bytes))
            .bind(column(agent(), |a| a.filesystems_json.as_str()))
            .bind(column(agent(), |a| a.interfaces_json.as_str()))
            .bind(column(agent(), |a| a.clock.map(|c| c.offset_secs)))
            .bind(rows.now)
            .bind(&rows.clock_ok)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}

/// The sightings of [`AgentRowsWriter`] on PostgreSQL, `$1..$10`, in [`INSERT_SIGHTINGS`]'
/// column order.
const FROM_SIGHTING_ARRAYS: &str = "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
     $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[])";

/// The agents' rows of [`AgentRowsWriter`] on PostgreSQL, `$11..$23`, in [`UPSERT_AGENTS`]'
/// column order, last seen now (`$24`).
const FROM_AGENT_ARRAYS: &str = "SELECT a.vm_key, a.hostname, a.machine_id, a.os, a.agent_version, \
     a.seq, a.collected_at, $24, a.vcpus, a.memory_bytes, a.disk_bytes, a.filesystems, \
     a.interfaces, a.clock_offset FROM UNNEST($11::int8[], $12::text[], $13::text[], $14::text[], \
     $15::text[], $16::int8[], $17::int8[], $18::int8[], $19::int8[], $20::int8[], $21::text[], \
     $22::text[], $23::int8[]) AS a (vm_key, hostname, machine_id, os, agent_version, seq, \
     collected_at, vcpus, memory_bytes, disk_bytes, filesystems, interfaces, clock_offset)";

const UPSERT_AGENTS: &str = "INSERT INTO agents (vm_key, hostname, machine_id, os, agent_version, \
     last_seq, last_collected_at, last_seen_at, vcpus, memory_bytes, disk_bytes, filesystems, \
     interfaces, clock_offset_secs) ";

/// The newest report describes the agent; an older replayed one must not overwrite it, but the
/// agent was seen now either way, and its clock is as the latest request showed it.
const UPSERT_AGENTS_CONFLICT: &str = " ON CONFLICT (vm_key) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
     clock_offset_secs = COALESCE(excluded.clock_offset_secs, agents.clock_offset_secs), \
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
     last_collected_at = CASE WHEN excluded.last_collected_at >= agents.last_collected_at THEN excluded.last_collected_at ELSE agents.last_collected_at END";

//! Usage at rest: per-VM-day aggregates (`usage_days`), days' raw samples compressed into
//! blocks (`sample_blocks`: completed days, and today's first hours), and the fold that keeps
//! both current from the head (`samples`) and the marks its writers leave (`usage_dirty`);
//! plus every read of raw samples (head and blocks together) and retention.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::inventory::parse_date;
use super::samples::{KeyedSampleTuple, SAMPLE_COLUMNS, SampleTuple, sample_of};
use super::{Backend, BeginWrite, Result, Store, StoreError, on_pool};
use crate::core::samples::{Sample, shanghai_day_of, shanghai_day_start};
use crate::core::usage::{DayAggregate, block};

/// Head rows of an open day (today) at which the fold compacts them into the day's block: an
/// hour at the agent's default 60-s interval. A head row costs about 45 bytes on SQLite and a
/// block about 6 a sample, so a day left whole in the head until midnight would add a byte a
/// sample to a month's file (BENCHMARKS.md, storage); rewriting the day's block hourly costs
/// one block encode per VM an hour.
pub const HEAD_ROWS_TO_COMPACT: i64 = 60;

/// A VM-day whose aggregate is not current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirtyDay {
    pub vm_key: i64,
    pub day: NaiveDate,
    /// The earliest sample written since the last fold.
    pub min_ts: i64,
    /// When the day was first marked (Unix seconds): the fold's lag.
    pub marked_at: i64,
    pub version: i64,
}

/// One marked day to fold, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldRequest {
    pub mark: DirtyDay,
    /// The day is over (before today, Asia/Shanghai): compact it into its block.
    pub closed: bool,
    /// Its raw samples are within raw retention: keep them (false: only the aggregate keeps
    /// what arrives this late).
    pub keep_raw: bool,
}

/// What folding one day did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// New samples added to the day's aggregate.
    Added,
    /// The aggregate rebuilt from all of the day's samples.
    Rebuilt,
    /// The day compacted: its head rows moved into its block, the aggregate rebuilt; `expired`
    /// head rows were past raw retention, so only the aggregate keeps them.
    Compacted { expired: u64 },
    /// Nothing to fold (the samples went, e.g. to retention).
    Empty,
}

/// A stored aggregate, still encoded.
#[derive(Debug, Clone)]
pub struct StoredDay {
    pub vm_key: i64,
    pub day: NaiveDate,
    pub first_ts: i64,
    pub last_ts: i64,
    pub aggregate: Vec<u8>,
}

type DirtyTuple = (i64, String, i64, i64, i64);

fn dirty_of((vm_key, day, min_ts, marked_at, version): DirtyTuple) -> Result<DirtyDay> {
    Ok(DirtyDay {
        vm_key,
        day: parse_date(&day)?,
        min_ts,
        marked_at,
        version,
    })
}

pub(super) fn malformed(vm_key: i64, day: NaiveDate, e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("stored usage of VM {vm_key} on {day}: {e}"))
}

/// `a` and `b` as one time-ordered list, each instant once (`a`'s sample where both have it).
fn merged(mut a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    let seen: std::collections::HashSet<i64> = a.iter().map(|s| s.ts).collect();
    a.extend(b.into_iter().filter(|s| !seen.contains(&s.ts)));
    a.sort_by_key(|s| s.ts);
    a
}

/// Binds a list of VM keys as one text parameter: `[1,2,3]`, a JSON array on SQLite
/// (`json_each`), and the same list read as a `bigint[]` literal on PostgreSQL (`{1,2,3}`).
fn key_list(backend: &Backend, keys: &[i64]) -> String {
    let joined = keys
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    match backend {
        Backend::Sqlite(_) => format!("[{joined}]"),
        Backend::Postgres(_) => format!("{{{joined}}}"),
    }
}

/// The condition "vm_key is in the list `$n`" for [`key_list`], in a form both planners answer
/// from the primary key (vm_key, day) rather than by scanning a day's rows.
fn in_list(backend: &Backend, column: &str, n: usize) -> String {
    match backend {
        Backend::Sqlite(_) => format!("{column} IN (SELECT value FROM json_each(${n}))"),
        Backend::Postgres(_) => format!("{column} = ANY(CAST(${n} AS bigint[]))"),
    }
}

impl Store {
    /// Marked days, oldest mark first, at most `limit`.
    pub async fn dirty_days(&self, limit: i64) -> Result<Vec<DirtyDay>> {
        let rows: Vec<DirtyTuple> = on_pool!(self, p => sqlx::query_as(
            "SELECT vm_key, day, min_ts, marked_at, version FROM usage_dirty \
             ORDER BY marked_at, vm_key, day LIMIT $1").bind(limit).fetch_all(p).await)?;
        rows.into_iter().map(dirty_of).collect()
    }

    /// How many days wait for the fold, and since when the oldest (Unix seconds).
    pub async fn fold_backlog(&self) -> Result<(i64, Option<i64>)> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MIN(marked_at) FROM usage_dirty").fetch_one(p).await)?)
    }

    /// Marks, for the fold, the earliest past day (before `before`, a day start) of each VM
    /// whose head still holds rows of it unmarked: a day whose last samples were folded while
    /// it was open (today) gets no mark after midnight, so nothing would compact it. One
    /// index probe per VM; a VM with several such days gets the next one marked at the next
    /// fold. Returns how many days were marked.
    pub async fn mark_past_head_days(&self, before: i64, now: i64) -> Result<u64> {
        let rows: Vec<(i64, Option<i64>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT v.key, (SELECT MIN(s.ts) FROM samples s WHERE s.vm_key = v.key AND s.ts < $1) FROM vms v")
            .bind(before).fetch_all(p).await)?;
        let pending: Vec<(i64, String, i64)> = rows
            .into_iter()
            .filter_map(|(key, min_ts)| min_ts.map(|ts| (key, shanghai_day_of(ts).to_string(), ts)))
            .collect();
        if pending.is_empty() {
            return Ok(0);
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut marked = 0;
            for (vm_key, day, min_ts) in &pending {
                marked += sqlx::query(
                    "INSERT INTO usage_dirty (vm_key, day, min_ts, marked_at, version) \
                     VALUES ($1, $2, $3, $4, 1) ON CONFLICT (vm_key, day) DO NOTHING")
                    .bind(vm_key).bind(day).bind(min_ts).bind(now)
                    .execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(marked)
        })
    }

    /// Folds marked days in one transaction. A `closed` day is compacted: its head rows move
    /// into its block, merged with what the block held, and its aggregate is rebuilt; if its
    /// raw samples are past retention (`keep_raw` false) and no block is left, the new samples
    /// are added to the aggregate and not kept raw. An open day (today) is compacted the same
    /// way once its head holds [`HEAD_ROWS_TO_COMPACT`] rows, so the head stays about an hour
    /// of samples (at 60 s) instead of a day of uncompressed rows; otherwise its new samples
    /// are added to its aggregate, or it is rebuilt when a sample older than the aggregate's
    /// last arrived. The mark is cleared only if no sample came since it was read.
    pub async fn fold_days(&self, days: &[FoldRequest]) -> Result<Vec<Folded>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut outcomes = Vec::with_capacity(days.len());
            for &FoldRequest { mark: ref d, closed, keep_raw } in days {
                let (start, end) = (shanghai_day_start(d.day), shanghai_day_start(d.day) + 86_400);
                let day = d.day.to_string();
                let stored: Option<(Vec<u8>,)> = sqlx::query_as(
                    "SELECT aggregate FROM usage_days WHERE vm_key = $1 AND day = $2")
                    .bind(d.vm_key).bind(&day).fetch_optional(&mut *tx).await?;
                let stored = stored
                    .map(|(b,)| DayAggregate::decode(d.day, &b).map_err(|e| malformed(d.vm_key, d.day, e)))
                    .transpose()?;
                let compact = closed || {
                    let (head,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM samples WHERE vm_key = $1 AND ts >= $2 AND ts < $3")
                        .bind(d.vm_key).bind(start).bind(end).fetch_one(&mut *tx).await?;
                    head >= HEAD_ROWS_TO_COMPACT
                };
                // The block is read only where it is needed: a compaction, or a rebuild.
                let needs_block = compact || !matches!(&stored, Some(a) if d.min_ts > a.last_ts);
                let blocked = if needs_block {
                    let bytes: Option<(Vec<u8>,)> = sqlx::query_as(
                        "SELECT block FROM sample_blocks WHERE vm_key = $1 AND day = $2")
                        .bind(d.vm_key).bind(&day).fetch_optional(&mut *tx).await?;
                    bytes
                        .map(|(b,)| block::decode(&b).map_err(|e| malformed(d.vm_key, d.day, e)))
                        .transpose()?
                } else {
                    None
                };
                let (aggregate, outcome) = if compact {
                    // Take the day's head rows out in the same statement that reads them: a row
                    // written meanwhile stays in the head, and its mark brings it to the next fold.
                    let head: Vec<SampleTuple> = sqlx::query_as(&format!(
                        "DELETE FROM samples WHERE vm_key = $1 AND ts >= $2 AND ts < $3 RETURNING {SAMPLE_COLUMNS}"))
                        .bind(d.vm_key).bind(start).bind(end).fetch_all(&mut *tx).await?;
                    let head = head.into_iter().map(sample_of).collect::<Result<Vec<_>>>()?;
                    let expired = if keep_raw { 0 } else { head.len() as u64 };
                    match (blocked, stored) {
                        (None, Some(mut aggregate)) if !keep_raw => {
                            if let Some(new) = DayAggregate::of(d.day, &head) {
                                aggregate.merge(&new);
                            }
                            (Some(aggregate), Folded::Compacted { expired })
                        }
                        (blocked, _) => {
                            let all = merged(blocked.unwrap_or_default(), head);
                            if keep_raw && !all.is_empty() {
                                let bytes = block::encode(&all).map_err(|e| malformed(d.vm_key, d.day, e))?;
                                if closed {
                                    // A closed day's block is written anew rather than updated in
                                    // place: SQLite then appends it at the table's end, where its
                                    // pages stay full, instead of leaving the half-empty pages
                                    // today's hourly rewrites split (a byte a sample otherwise).
                                    sqlx::query("DELETE FROM sample_blocks WHERE vm_key = $1 AND day = $2")
                                        .bind(d.vm_key).bind(&day).execute(&mut *tx).await?;
                                }
                                sqlx::query(
                                    "INSERT INTO sample_blocks (vm_key, day, samples, block) VALUES ($1, $2, $3, $4) \
                                     ON CONFLICT (vm_key, day) DO UPDATE SET samples = excluded.samples, block = excluded.block")
                                    .bind(d.vm_key).bind(&day).bind(all.len() as i64).bind(bytes)
                                    .execute(&mut *tx).await?;
                            }
                            (DayAggregate::of(d.day, &all), Folded::Compacted { expired })
                        }
                    }
                } else {
                    match stored {
                        Some(mut aggregate) if d.min_ts > aggregate.last_ts => {
                            let rows: Vec<SampleTuple> = sqlx::query_as(&format!(
                                "SELECT {SAMPLE_COLUMNS} FROM samples WHERE vm_key = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"))
                                .bind(d.vm_key).bind(d.min_ts).bind(end).fetch_all(&mut *tx).await?;
                            let rows = rows.into_iter().map(sample_of).collect::<Result<Vec<_>>>()?;
                            if let Some(new) = DayAggregate::of(d.day, &rows) {
                                aggregate.merge(&new);
                            }
                            (Some(aggregate), Folded::Added)
                        }
                        _ => {
                            let rows: Vec<SampleTuple> = sqlx::query_as(&format!(
                                "SELECT {SAMPLE_COLUMNS} FROM samples WHERE vm_key = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"))
                                .bind(d.vm_key).bind(start).bind(end).fetch_all(&mut *tx).await?;
                            let rows = rows.into_iter().map(sample_of).collect::<Result<Vec<_>>>()?;
                            (DayAggregate::of(d.day, &merged(blocked.unwrap_or_default(), rows)), Folded::Rebuilt)
                        }
                    }
                };
                let outcome = match aggregate {
                    Some(a) => {
                        sqlx::query(
                            "INSERT INTO usage_days (vm_key, day, samples, first_ts, last_ts, aggregate) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vm_key, day) DO UPDATE SET \
                             samples = excluded.samples, first_ts = excluded.first_ts, last_ts = excluded.last_ts, \
                             aggregate = excluded.aggregate")
                            .bind(d.vm_key).bind(&day).bind(i64::from(a.samples)).bind(a.first_ts).bind(a.last_ts)
                            .bind(a.encode())
                            .execute(&mut *tx).await?;
                        outcome
                    }
                    None => Folded::Empty,
                };
                sqlx::query("DELETE FROM usage_dirty WHERE vm_key = $1 AND day = $2 AND version = $3")
                    .bind(d.vm_key).bind(&day).bind(d.version).execute(&mut *tx).await?;
                outcomes.push(outcome);
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    /// Bulk load of complete past days (a backfill, or a benchmark's fleet): each day's samples
    /// go straight into its block and aggregate in one transaction, without passing through the
    /// head. A day already stored is replaced. Returns the samples written.
    pub async fn load_complete_days(&self, days: &[(i64, NaiveDate, Vec<Sample>)]) -> Result<u64> {
        let mut encoded = Vec::with_capacity(days.len());
        for (vm_key, day, samples) in days {
            let Some(aggregate) = DayAggregate::of(*day, samples) else {
                continue;
            };
            if samples.iter().any(|s| shanghai_day_of(s.ts) != *day) {
                return Err(StoreError::Invalid(format!(
                    "a sample of VM {vm_key} is not on {day}"
                )));
            }
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| s.ts);
            sorted.dedup_by_key(|s| s.ts);
            let block = block::encode(&sorted).map_err(|e| malformed(*vm_key, *day, e))?;
            encoded.push((
                *vm_key,
                day.to_string(),
                sorted.len() as i64,
                block,
                aggregate,
            ));
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (vm_key, day, n, block, a) in &encoded {
                sqlx::query(
                    "INSERT INTO sample_blocks (vm_key, day, samples, block) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (vm_key, day) DO UPDATE SET samples = excluded.samples, block = excluded.block")
                    .bind(vm_key).bind(day).bind(n).bind(block).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO usage_days (vm_key, day, samples, first_ts, last_ts, aggregate) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vm_key, day) DO UPDATE SET \
                     samples = excluded.samples, first_ts = excluded.first_ts, last_ts = excluded.last_ts, \
                     aggregate = excluded.aggregate")
                    .bind(vm_key).bind(day).bind(i64::from(a.samples)).bind(a.first_ts).bind(a.last_ts)
                    .bind(a.encode()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(encoded.iter().map(|e| e.2 as u64).sum())
    }

    /// The stored aggregates of some VMs for the days `from..=to`.
    pub async fn stored_days(
        &self,
        vm_keys: &[i64],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StoredDay>> {
        let sql = format!(
            "SELECT vm_key, day, first_ts, last_ts, aggregate FROM usage_days \
             WHERE {} AND day >= $2 AND day <= $3 ORDER BY vm_key, day",
            in_list(&self.backend, "vm_key", 1)
        );
        let rows: Vec<(i64, String, i64, i64, Vec<u8>)> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(key_list(&self.backend, vm_keys)).bind(from.to_string()).bind(to.to_string()).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(vm_key, day, first_ts, last_ts, aggregate)| {
                Ok(StoredDay {
                    vm_key,
                    day: parse_date(&day)?,
                    first_ts,
                    last_ts,
                    aggregate,
                })
            })
            .collect()
    }

    /// The marks of some VMs for the days `from..=to`.
    pub async fn dirty_between(
        &self,
        vm_keys: &[i64],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DirtyDay>> {
        let sql = format!(
            "SELECT vm_key, day, min_ts, marked_at, version FROM usage_dirty \
             WHERE {} AND day >= $2 AND day <= $3",
            in_list(&self.backend, "vm_key", 1)
        );
        let rows: Vec<DirtyTuple> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(key_list(&self.backend, vm_keys)).bind(from.to_string()).bind(to.to_string()).fetch_all(p).await)?;
        rows.into_iter().map(dirty_of).collect()
    }

    /// The raw samples of some VMs with `from <= ts < to`, a span within one day, for judging:
    /// that day's blocks (without their network figures, which the rules do not read) and the
    /// head rows, read with two statements for all of them.
    pub async fn usage_samples_of(
        &self,
        vm_keys: &[i64],
        from: i64,
        to: i64,
    ) -> Result<HashMap<i64, Vec<Sample>>> {
        let day = shanghai_day_of(from);
        let blocks_sql = format!(
            "SELECT vm_key, block FROM sample_blocks WHERE {} AND day = $2",
            in_list(&self.backend, "vm_key", 1)
        );
        let keys = key_list(&self.backend, vm_keys);
        let blocks: Vec<(i64, Vec<u8>)> = on_pool!(self, p => sqlx::query_as(&blocks_sql)
            .bind(&keys).bind(day.to_string()).fetch_all(p).await)?;
        let mut out: HashMap<i64, Vec<Sample>> = HashMap::new();
        for (vm_key, bytes) in blocks {
            let samples = block::decode_usage(&bytes).map_err(|e| malformed(vm_key, day, e))?;
            out.insert(
                vm_key,
                samples
                    .into_iter()
                    .filter(|s| s.ts >= from && s.ts < to)
                    .collect(),
            );
        }
        for (vm_key, head) in self.head_samples_of(vm_keys, from, to).await? {
            let blocked = out.remove(&vm_key).unwrap_or_default();
            out.insert(vm_key, merged(blocked, head));
        }
        Ok(out)
    }

    /// The head rows (not those in blocks) of some VMs with `from <= ts < to`, oldest first,
    /// read with one statement: what came since the last fold, for instance.
    pub async fn head_samples_of(
        &self,
        vm_keys: &[i64],
        from: i64,
        to: i64,
    ) -> Result<HashMap<i64, Vec<Sample>>> {
        let head_sql = format!(
            "SELECT vm_key, {SAMPLE_COLUMNS} FROM samples WHERE {} AND ts >= $2 AND ts < $3 ORDER BY vm_key, ts",
            in_list(&self.backend, "vm_key", 1)
        );
        let keys = key_list(&self.backend, vm_keys);
        let head: Vec<KeyedSampleTuple> = on_pool!(self, p => sqlx::query_as(&head_sql).bind(&keys).bind(from).bind(to).fetch_all(p).await)?;
        let mut by_vm: HashMap<i64, Vec<Sample>> = HashMap::new();
        for (vm_key, ts, cpu, mem, disk, rx, tx, inbound) in head {
            by_vm
                .entry(vm_key)
                .or_default()
                .push(sample_of((ts, cpu, mem, disk, rx, tx, inbound))?);
        }
        Ok(by_vm)
    }

    /// Head rows of one VM with `from <= ts < to`, oldest first (not those in blocks).
    async fn head_samples(&self, vm_key: i64, from: i64, to: i64) -> Result<Vec<Sample>> {
        let rows: Vec<SampleTuple> = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT {SAMPLE_COLUMNS} FROM samples WHERE vm_key = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"))
            .bind(vm_key).bind(from).bind(to).fetch_all(p).await)?;
        rows.into_iter().map(sample_of).collect()
    }

    /// Every stored raw sample of one VM with `from <= ts < to`: blocks and head, oldest first.
    pub async fn raw_samples(&self, vm_key: i64, from: i64, to: i64) -> Result<Vec<Sample>> {
        let blocks: Vec<(String, Vec<u8>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT day, block FROM sample_blocks WHERE vm_key = $1 AND day >= $2 AND day <= $3 ORDER BY day")
            .bind(vm_key).bind(shanghai_day_of(from).to_string()).bind(shanghai_day_of(to - 1).to_string())
            .fetch_all(p).await)?;
        let mut from_blocks = Vec::new();
        for (day, bytes) in blocks {
            let samples = block::decode(&bytes)
                .map_err(|e| malformed(vm_key, parse_date(&day).unwrap_or_default(), e))?;
            from_blocks.extend(samples.into_iter().filter(|s| s.ts >= from && s.ts < to));
        }
        let head = self.head_samples(vm_key, from, to).await?;
        Ok(merged(from_blocks, head))
    }

    /// Where one VM's stored raw samples begin (Unix seconds; a block's day start), if any.
    pub async fn first_sample_ts(&self, vm_key: i64) -> Result<Option<i64>> {
        let (head, block_day): (Option<i64>, Option<String>) = on_pool!(self, p => sqlx::query_as(
            "SELECT (SELECT MIN(ts) FROM samples WHERE vm_key = $1), \
             (SELECT MIN(day) FROM sample_blocks WHERE vm_key = $1)")
            .bind(vm_key).fetch_one(p).await)?;
        let block = block_day
            .map(|d| parse_date(&d).map(shanghai_day_start))
            .transpose()?;
        Ok(head.into_iter().chain(block).min())
    }

    /// Samples of one VM with `from < ts <= to`, oldest first.
    pub async fn samples_between(
        &self,
        vm_key: i64,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Sample>> {
        self.raw_samples(vm_key, from.timestamp() + 1, to.timestamp() + 1)
            .await
    }

    /// Number of stored samples (head and blocks), in all or for one VM.
    pub async fn count_samples(&self, vm_key: Option<i64>) -> Result<i64> {
        // Two statements each, not `$1 IS NULL OR vm_key = $1`: a prepared plan of that form
        // cannot use the (vm_key, ts) key and reads every partition in full.
        let ((head,), (blocked,)): ((i64,), (Option<i64>,)) = match vm_key {
            Some(key) => on_pool!(self, p => {
                let head = sqlx::query_as("SELECT COUNT(*) FROM samples WHERE vm_key = $1").bind(key).fetch_one(p).await?;
                let blocked = sqlx::query_as("SELECT CAST(SUM(samples) AS BIGINT) FROM sample_blocks WHERE vm_key = $1")
                    .bind(key).fetch_one(p).await?;
                Ok::<_, sqlx::Error>((head, blocked))
            })?,
            None => on_pool!(self, p => {
                let head = sqlx::query_as("SELECT COUNT(*) FROM samples").fetch_one(p).await?;
                let blocked = sqlx::query_as("SELECT CAST(SUM(samples) AS BIGINT) FROM sample_blocks").fetch_one(p).await?;
                Ok::<_, sqlx::Error>((head, blocked))
            })?,
        };
        Ok(head + blocked.unwrap_or(0))
    }

    /// One VM's aggregates for the days `from..=to`, decoded, oldest first.
    pub async fn day_aggregates(
        &self,
        vm_key: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayAggregate>> {
        let rows = self.stored_days(&[vm_key], from, to).await?;
        rows.into_iter()
            .map(|r| {
                DayAggregate::decode(r.day, &r.aggregate).map_err(|e| malformed(vm_key, r.day, e))
            })
            .collect()
    }

    /// Applies retention: raw samples (blocks, and head rows) of days before `raw_before`, and
    /// aggregates of days before `aggregates_before`. A day still waiting for its fold keeps
    /// its raw samples, so nothing is lost unaggregated. Returns (samples, aggregate days) deleted.
    pub async fn apply_retention(
        &self,
        raw_before: NaiveDate,
        aggregates_before: NaiveDate,
    ) -> Result<(u64, u64)> {
        let raw_cut = shanghai_day_start(raw_before);
        // PostgreSQL: whole months of the head before the cut go as partitions.
        let dropped = match &self.backend {
            Backend::Postgres(pool) => super::partitions::drop_expired(pool, raw_cut).await?,
            Backend::Sqlite(_) => 0,
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (blocked,): (Option<i64>,) = sqlx::query_as(
                "SELECT CAST(SUM(samples) AS BIGINT) FROM sample_blocks b WHERE day < $1 AND NOT EXISTS \
                 (SELECT 1 FROM usage_dirty d WHERE d.vm_key = b.vm_key AND d.day = b.day)")
                .bind(raw_before.to_string()).fetch_one(&mut *tx).await?;
            sqlx::query(
                "DELETE FROM sample_blocks WHERE day < $1 AND NOT EXISTS \
                 (SELECT 1 FROM usage_dirty d WHERE d.vm_key = sample_blocks.vm_key AND d.day = sample_blocks.day)")
                .bind(raw_before.to_string()).execute(&mut *tx).await?;
            // Expired head rows are those no fold compacted (their day is marked, or the fold
            // is behind): a VM with a mark on an expired day keeps them until it is folded.
            let head = sqlx::query(
                "DELETE FROM samples WHERE ts < $1 AND NOT EXISTS \
                 (SELECT 1 FROM usage_dirty d WHERE d.vm_key = samples.vm_key AND d.day < $2)")
                .bind(raw_cut).bind(raw_before.to_string()).execute(&mut *tx).await?.rows_affected();
            let days = sqlx::query("DELETE FROM usage_days WHERE day < $1")
                .bind(aggregates_before.to_string()).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok((dropped + head + blocked.unwrap_or(0) as u64, days))
        })
    }
}

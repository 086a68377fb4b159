//! Annual review benchmark (a benchmark, not a timed test: it prints figures and never fails on
//! them): `cloudgov::jobs::review::run` over 1,000 VMs x one year of per-VM-day usage aggregates,
//! in this process, against a throwaway SQLite file.
//!
//! 1. Setup: a fresh SQLite database (`Store::connect`, the daemon's migrations and settings) with
//!    an inventory of 1,000 VMs in 100 projects of 10 departments, delivered 2024-12-20 and
//!    deployed 2024-12-27; 90 projects filed in time, 5 filed late, 5 not filed.
//! 2. Fill: every VM gets a day aggregate (`usage_days` row) for each day of 2025, 365,000 rows,
//!    written by raw sqlx on a separate pool (multi-row INSERTs, one transaction per group of
//!    VMs), not by cloudgov, and timed separately. Each row is `DayAggregate::of` 288 five-minute
//!    samples generated for that day (working-hours peaks, quieter weekends, disks that fill
//!    slowly) in one of three profiles (idle, normal, hot), mixed differently per project, stored
//!    with `DayAggregate::encode()` as the fold stores it. No raw samples are stored (no
//!    `sample_blocks`, nothing in the head or `usage_dirty`: the review reads aggregates; its fold
//!    step finds nothing new), and no notices, deadlines or network findings: the review's usage
//!    side only.
//! 3. Review: `cloudgov::jobs::review::run(persist = true)` for 2025 as of 2026-01-15 09:00 +08:00,
//!    once, with the peak RSS during it (VmHWM, reset just before). Reported: seconds, projects/s,
//!    VM-years/s, aggregate rows read/s, reviews by verdict. Then further passes (the fastest of
//!    three for the reading ones, the machine being shared) split its time:
//!    the fold step alone (`jobs::fold`, nothing to fold), reading every VM's aggregates alone
//!    (`Store::day_aggregates`), the same `usage_days` rows fetched by raw sqlx (with the store's
//!    statement, and by primary-key range) and decoded apart (`DayAggregate::decode`),
//!    `review::gather::gather_year`, scoring, the reviews' JSON, and storing them again
//!    (`Store::record_reviews`, as `run` does; the second time queues no e-mails).
//! 4. Report: `cloudgov::jobs::review::report::write_report_dir` of those reviews into the temporary
//!    directory (the process's chart fonts, as `cloudgov review` uses them), with its peak RSS;
//!    then the charts and the project pages again, apart.
//!
//! Rerun: `cargo bench --bench review`. Knob: `CLOUDGOV_BENCH_SCALE` (default 1.0) scales the
//! VM count (10 VMs per project), e.g. 0.05 for a quick run. The SQLite file goes to a temporary
//! directory (set `TMPDIR` to measure another disk). Figures are recorded in BENCHMARKS.md.

mod common;
use common::{proc_status_mib, reset_peak_rss, show_mib};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use cloudgov::core::calendar::Calendar;
use cloudgov::core::chart::Labels;
use cloudgov::core::inventory::Inventory;
use cloudgov::core::review::rules::ReviewRules;
use cloudgov::core::review::{ProjectReview, score};
use cloudgov::core::rules::RuleSet;
use cloudgov::core::samples::{Hundredths, Sample, shanghai_day_start};
use cloudgov::core::usage::DayAggregate;
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::jobs::review::{gather, report};
use cloudgov::store::{Store, VmRow};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// VMs before scaling; projects hold 10 VMs each, departments 10 projects each (at most 10).
const VMS: f64 = 1000.0;
const VMS_PER_PROJECT: usize = 10;
const DEPARTMENTS: usize = 10;
const YEAR: i32 = 2025;
const AS_OF: &str = "2026-01-15T09:00:00+08:00";
const SAMPLES_PER_DAY: usize = 288;
const SAMPLE_STEP_SECS: i64 = 300;
/// Rows per INSERT statement (6 columns: 12,000 bound values, under SQLite's 32,766).
const ROWS_PER_STATEMENT: usize = 2000;
/// Passes of each part of the review's breakdown; the fastest counts.
const PASSES: usize = 3;
/// VMs whose year of aggregates is written in one transaction.
const VMS_PER_TRANSACTION: usize = 20;
const INSERT_AGGREGATES: &str =
    "INSERT INTO usage_days (vm_key, day, samples, first_ts, last_ts, aggregate) ";

#[tokio::main]
async fn main() -> Result<()> {
    let scale = scale_from_env()?;
    let vm_count = ((VMS * scale).round() as usize).max(2);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("review.db");
    let url = format!("sqlite://{}", path.display());
    println!("cloudgov benchmark: annual review of a year of per-VM-day usage aggregates");
    println!(
        "  machine: {} CPUs; database: SQLite (WAL, synchronous=FULL) file in {}; scale {scale}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display()
    );
    let store = Store::connect(&url).await?;
    let outcome = run_all(&store, dir.path(), vm_count).await;
    store.close().await;
    outcome?;
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  database file size at the end (with WAL): {:.0} MiB",
        mib(bytes)
    );
    println!();
    println!("Rerun: {}", rerun_command(scale));
    Ok(())
}

fn scale_from_env() -> Result<f64> {
    let Ok(text) = std::env::var("CLOUDGOV_BENCH_SCALE") else {
        return Ok(1.0);
    };
    let scale: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("CLOUDGOV_BENCH_SCALE={text:?} is not a number"))?;
    ensure!(
        scale.is_finite() && scale > 0.0,
        "CLOUDGOV_BENCH_SCALE must be positive"
    );
    Ok(scale)
}

fn rerun_command(scale: f64) -> String {
    let knob = if scale == 1.0 {
        String::new()
    } else {
        format!("CLOUDGOV_BENCH_SCALE={scale} ")
    };
    format!("{knob}cargo bench --bench review")
}

async fn run_all(store: &Store, dir: &Path, vm_count: usize) -> Result<()> {
    let url = format!("sqlite://{}", dir.join("review.db").display());
    let started = Instant::now();
    let inventory = Inventory::parse("benchmark inventory", &inventory_toml(vm_count))?;
    store.apply_inventory(&inventory).await?;
    let vm_keys: Vec<i64> = store.vms().await?.iter().map(|v| v.key).collect();
    println!();
    println!(
        "Setup: {} VMs in {} projects of {} departments imported in {:.2} s",
        vm_keys.len(),
        inventory.projects.len(),
        inventory.departments.len(),
        started.elapsed().as_secs_f64()
    );
    fill_year(&url, &vm_keys).await?;
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin()?),
        calendar: Arc::new(Calendar::builtin()?),
        notifier: Arc::new(Notifier::without_smtp()?),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()?.prices,
    };
    let rules = ReviewRules::builtin()?;
    let as_of = DateTime::parse_from_rfc3339(AS_OF)?.with_timezone(&Utc);
    let (reviews, measured) = measured_review(&ctx, &rules, as_of).await?;
    review_breakdown(&ctx, &rules, as_of, &url, measured).await?;
    report_benchmark(&dir.join("report"), &reviews)
}

// ---------------------------------------------------------------------------------------------
// Generated inventory and usage

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Idle,
    Normal,
    Hot,
}

impl Profile {
    /// VM `vm` of the inventory: projects differ in how many idle VMs (0 to 10, in a cycle of
    /// 9 projects) and hot VMs (0 to 2, room permitting) they hold, the rest are normal, so their
    /// utilisation scores spread over the keep and consolidate verdicts.
    fn of(vm: usize) -> Profile {
        const IDLE: [usize; 9] = [0, 1, 2, 3, 5, 7, 8, 9, 10];
        let (project, slot) = (vm / VMS_PER_PROJECT, vm % VMS_PER_PROJECT);
        let idle = IDLE[project % IDLE.len()];
        let hot = ((project / IDLE.len()) % 3).min(VMS_PER_PROJECT - idle);
        if slot < idle {
            Profile::Idle
        } else if slot >= VMS_PER_PROJECT - hot {
            Profile::Hot
        } else {
            Profile::Normal
        }
    }

    /// (cpu, mem, disk) at night, the working-hours extra of cpu and mem, and the jitter.
    fn levels(self) -> ([f64; 3], [f64; 2], f64) {
        match self {
            Profile::Idle => ([4.0, 16.0, 28.0], [9.0, 6.0], 4.0),
            Profile::Normal => ([20.0, 42.0, 55.0], [30.0, 15.0], 10.0),
            Profile::Hot => ([55.0, 70.0, 72.0], [30.0, 15.0], 8.0),
        }
    }
}

/// 10 departments (fewer below 10 projects), projects of 10 VMs `bench-vm-NNNNN`. Every 20th
/// project from the 8th is filed late, every 20th from the 14th not at all.
fn inventory_toml(vms: usize) -> String {
    let projects = vms.div_ceil(VMS_PER_PROJECT);
    let departments = projects.min(DEPARTMENTS);
    let mut toml = String::new();
    for d in 0..departments {
        let _ = write!(
            toml,
            "[[department]]\nid = \"dept-{d:02}\"\nname = \"Department {d}\"\n\n"
        );
    }
    for p in 0..projects {
        let filed = match p % 20 {
            7 => "filed_on = 2025-03-03\n",
            13 => "",
            _ => "filed_on = 2025-01-10\n",
        };
        let _ = write!(
            toml,
            "[[project]]\nid = \"proj-{p:03}\"\nname = \"Project {p}\"\ndepartment = \"dept-{:02}\"\n{filed}\n",
            p % departments
        );
    }
    for v in 0..vms {
        let _ = write!(
            toml,
            "[[vm]]\nid = \"bench-vm-{v:05}\"\nproject = \"proj-{:03}\"\nvcpus = 8\nmemory_gib = 16\n\
             disk_gib = 200\ndelivered_on = 2024-12-20\ndeployed_on = 2024-12-27\n\n",
            v / VMS_PER_PROJECT
        );
    }
    toml
}

/// A deterministic fraction in [0, 1) from two numbers (SplitMix64), so runs are repeatable.
fn noise(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / 2f64.powi(64)
}

/// VM `vm`'s day `day_index` of the year: 288 five-minute samples (Asia/Shanghai time), busier
/// from 09:00 to 18:00 on weekdays, with a per-day swing; the disk fills by about 12 points over
/// the year.
fn day_samples(vm: usize, day: NaiveDate, day_index: u32) -> Vec<Sample> {
    let (base, extra, jitter) = Profile::of(vm).levels();
    let seed = (vm as u64) << 16 | u64::from(day_index);
    let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
    let swing = 0.6 + 0.8 * noise(seed, 0);
    let disk_level = base[2] + 12.0 * f64::from(day_index) / 365.0;
    let midnight = shanghai_day_start(day);
    (0..SAMPLES_PER_DAY)
        .map(|n| {
            let busy = weekday && (9 * 12..18 * 12).contains(&n);
            let peak = if busy { swing } else { 0.0 };
            let sample = |level: f64, salt: u64, spread: f64| {
                let pct =
                    (level + (noise(seed, n as u64 * 3 + salt) - 0.5) * spread).clamp(0.0, 100.0);
                Hundredths::new((pct * 100.0).round() as u16).unwrap_or(Hundredths::MAX)
            };
            Sample::usage(
                midnight + n as i64 * SAMPLE_STEP_SECS,
                sample(base[0] + extra[0] * peak, 1, jitter),
                sample(base[1] + extra[1] * peak, 2, jitter / 2.0),
                Some(sample(disk_level, 3, 0.5)),
            )
        })
        .collect()
}

/// A `usage_days` row as written: VM key, day, samples, first and last instant, aggregate.
type AggregateRow = (i64, String, i64, i64, i64, Vec<u8>);

/// The stored row of VM `vm`'s day: the aggregate of [`day_samples`], encoded as the fold does.
fn aggregate_row(key: i64, vm: usize, day: NaiveDate, day_index: u32) -> Result<AggregateRow> {
    let a = DayAggregate::of(day, &day_samples(vm, day, day_index)).context("no samples")?;
    Ok((
        key,
        day.to_string(),
        i64::from(a.samples),
        a.first_ts,
        a.last_ts,
        a.encode(),
    ))
}

/// Every day of [`YEAR`].
fn days_of_year() -> Vec<NaiveDate> {
    NaiveDate::from_ymd_opt(YEAR, 1, 1)
        .into_iter()
        .flat_map(|first| first.iter_days())
        .take_while(|d| d.year() == YEAR)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Fill: raw sqlx, not cloudgov

/// `url` with the daemon's SQLite settings and one connection: one writer.
async fn open_raw_pool(url: &str) -> Result<SqlitePool> {
    let path = url.strip_prefix("sqlite://").context("not a SQLite URL")?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// Writes a year of day aggregates for every VM (`vm_keys` in inventory order) and prints the
/// time spent generating them and writing them.
async fn fill_year(url: &str, vm_keys: &[i64]) -> Result<()> {
    let pool = open_raw_pool(url).await?;
    let days = days_of_year();
    let (mut generating, mut writing) = (Duration::ZERO, Duration::ZERO);
    let mut bytes = 0usize;
    for (group, keys) in vm_keys.chunks(VMS_PER_TRANSACTION).enumerate() {
        let started = Instant::now();
        let rows: Vec<AggregateRow> = keys
            .iter()
            .enumerate()
            .flat_map(|(i, &key)| {
                let vm = group * VMS_PER_TRANSACTION + i;
                (0u32..)
                    .zip(&days)
                    .map(move |(n, &day)| aggregate_row(key, vm, day, n))
            })
            .collect::<Result<_>>()?;
        bytes += rows.iter().map(|r| r.5.len()).sum::<usize>();
        generating += started.elapsed();
        let started = Instant::now();
        insert_aggregates(&pool, &rows).await?;
        writing += started.elapsed();
    }
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_days")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    ensure!(
        usize::try_from(rows) == Ok(vm_keys.len() * days.len()),
        "stored {rows} aggregate rows, expected {}",
        vm_keys.len() * days.len()
    );
    println!();
    println!(
        "Fill (raw sqlx, not cloudgov): {rows} usage_days rows ({} VMs x {} days, each \
         DayAggregate::of {SAMPLES_PER_DAY} generated samples), {ROWS_PER_STATEMENT}-row INSERTs, \
         one transaction per {VMS_PER_TRANSACTION} VMs",
        vm_keys.len(),
        days.len()
    );
    println!(
        "  generating and encoding {:.1} s ({:.0} bytes per aggregate); writing {:.1} s = {:.0} \
         rows/s",
        generating.as_secs_f64(),
        bytes as f64 / rows.max(1) as f64,
        writing.as_secs_f64(),
        rows as f64 / writing.as_secs_f64()
    );
    Ok(())
}

async fn insert_aggregates(pool: &SqlitePool, rows: &[AggregateRow]) -> Result<()> {
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::new(INSERT_AGGREGATES);
        insert.push_values(
            chunk,
            |mut row, (key, day, samples, first, last, aggregate)| {
                row.push_bind(*key)
                    .push_bind(day.as_str())
                    .push_bind(*samples)
                    .push_bind(*first)
                    .push_bind(*last)
                    .push_bind(aggregate.as_slice());
            },
        );
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The review

/// Runs the review once as the daemon would (persisting), prints its figures; returns its seconds.
async fn measured_review(
    ctx: &JobContext,
    rules: &ReviewRules,
    as_of: DateTime<Utc>,
) -> Result<(Vec<ProjectReview>, f64)> {
    println!();
    println!(
        "Review: cloudgov::jobs::review::run(year {YEAR}, as of {AS_OF}, persist = true), VmHWM reset \
         just before"
    );
    let probe = PeakProbe::start();
    let started = Instant::now();
    let reviews = cloudgov::jobs::review::run(ctx, rules, YEAR, as_of, true, |_, _| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    let memory = probe.finish("the review", "setup and fill");
    let vms: usize = reviews.iter().map(|r| r.facts.vms.len()).sum();
    let rows: u64 = reviews
        .iter()
        .flat_map(|r| &r.facts.vms)
        .map(|v| u64::from(v.days_with_data))
        .sum();
    println!(
        "  {secs:.2} s for {} projects = {:.1} projects/s; {vms} VM-years = {:.0} VM-years/s; \
         {rows} aggregate rows read = {:.0} rows/s",
        reviews.len(),
        reviews.len() as f64 / secs,
        vms as f64 / secs,
        rows as f64 / secs
    );
    let stored = ctx.store.reviews(Some(YEAR), None).await?.len();
    println!(
        "  reviews by verdict: {}; stored {stored}",
        verdict_counts(&reviews)
    );
    println!("  {memory}");
    Ok((reviews, secs))
}

/// The verdict as stored (`not_filed`, ...).
fn verdict_name(review: &ProjectReview) -> String {
    serde_json::to_value(review.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", review.verdict))
}

fn verdict_counts(reviews: &[ProjectReview]) -> String {
    let mut counts = BTreeMap::<String, usize>::new();
    for r in reviews {
        *counts.entry(verdict_name(r)).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    parts.join(", ")
}

/// Where the review's time goes, from passes after the measured one (the fastest of [`PASSES`]
/// each where marked, the machine being shared): the fold step alone (nothing to fold);
/// reading every VM's aggregates through the store, and the same rows by raw sqlx (the store's
/// statement, and a primary-key range) with their aggregates decoded apart; `gather_year` (all of that and the rest); scoring; the reviews'
/// JSON; and storing them again with `Store::record_reviews`, as `run` does.
async fn review_breakdown(
    ctx: &JobContext,
    rules: &ReviewRules,
    as_of: DateTime<Utc>,
    url: &str,
    measured: f64,
) -> Result<()> {
    let (fold, folded) = fastest(async || Ok(cloudgov::jobs::fold(ctx, as_of).await?)).await?;
    let (first, last) = gather::year_span(YEAR, as_of).context("year span")?;
    let vms = ctx.store.vms().await?;
    let (read, ()) = fastest(async || {
        for vm in &vms {
            ctx.store.day_aggregates(vm.key, first, last).await?;
        }
        Ok(())
    })
    .await?;
    let (mut by_list, mut by_key, mut decode) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let mut aggregates = 0;
    for _ in 0..PASSES {
        let read = raw_read(url, &vms, first, last).await?;
        by_list = by_list.min(read.by_list);
        by_key = by_key.min(read.by_key);
        decode = decode.min(read.decode);
        aggregates = read.rows;
    }
    let (gathering, years) =
        fastest(async || Ok(gather::gather_year(ctx, YEAR, as_of, |_, _| {}).await?)).await?;
    let started = Instant::now();
    let reviews: Vec<ProjectReview> = years
        .into_iter()
        .map(|facts| score::review(YEAR, facts, rules))
        .collect();
    let scoring = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let rows = reviews
        .iter()
        .map(|r| {
            let json = serde_json::to_string(r)?;
            let (project, department) = (r.project.clone(), r.department.clone());
            Ok((
                project,
                department,
                r.score,
                r.grade.clone(),
                verdict_name(r),
                json,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let json = started.elapsed().as_secs_f64();
    let json_bytes: usize = rows.iter().map(|r| r.5.len()).sum();
    let started = Instant::now();
    let queued = ctx
        .store
        .record_reviews(YEAR, &rows, Utc::now().timestamp())
        .await?;
    let storing = started.elapsed().as_secs_f64();
    println!(
        "  where the time goes (passes after the measured one; the fastest of {PASSES} where \
         marked *):"
    );
    println!(
        "    gather_year* {gathering:.2} s, of which the fold step (jobs::fold)* {fold:.3} s \
         ({} days folded) and reading the aggregates (Store::day_aggregates, {} calls)* \
         {read:.2} s",
        folded.days(),
        vms.len()
    );
    println!(
        "    the same {aggregates} usage_days rows by raw sqlx (one connection): with the store's \
         statement (Store::stored_days, vm_key in json_each of a key list)* {by_list:.2} s, by primary-key \
         range (vm_key = $1)* {by_key:.2} s; DayAggregate::decode of them* {decode:.2} s"
    );
    println!(
        "    scoring (review::score::review) {scoring:.3} s; the reviews' JSON {json:.2} s \
         ({:.1} MiB); Store::record_reviews of them again {storing:.2} s (replacing the \
         measured run's rows, {queued} e-mails queued this time); measured run {measured:.2} s",
        mib(json_bytes as u64)
    );
    Ok(())
}

/// The fastest of [`PASSES`] runs of `pass`, in seconds, and the last run's result.
async fn fastest<T>(mut pass: impl AsyncFnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..PASSES {
        let started = Instant::now();
        last = Some(pass().await?);
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok((best, last.context("no pass ran")?))
}

/// Seconds of one raw pass over every VM's year of `usage_days` rows.
struct RawRead {
    /// Fetching them with the statement `Store::stored_days` runs on SQLite (`vm_key` in a JSON
    /// list of keys, `json_each`).
    by_list: f64,
    /// Fetching them by primary-key range, `vm_key = $1 AND day BETWEEN ...`.
    by_key: f64,
    /// `DayAggregate::decode` of every fetched aggregate.
    decode: f64,
    rows: usize,
}

/// Fetches the rows `Store::day_aggregates` reads for every VM by raw sqlx, twice (with the
/// store's statement, then by primary-key range), then decodes them; returns the seconds of each.
async fn raw_read(url: &str, vms: &[VmRow], first: NaiveDate, last: NaiveDate) -> Result<RawRead> {
    let pool = open_raw_pool(url).await?;
    let (mut by_list, mut by_key, mut decode) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut count = 0;
    for vm in vms {
        let started = Instant::now();
        let listed: Vec<(i64, String, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT vm_key, day, first_ts, last_ts, aggregate FROM usage_days \
             WHERE vm_key IN (SELECT value FROM json_each($1)) AND day >= $2 AND day <= $3 \
             ORDER BY vm_key, day",
        )
        .bind(format!("[{}]", vm.key))
        .bind(first.to_string())
        .bind(last.to_string())
        .fetch_all(&pool)
        .await?;
        by_list += started.elapsed();
        let started = Instant::now();
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT day, aggregate FROM usage_days \
             WHERE vm_key = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        )
        .bind(vm.key)
        .bind(first.to_string())
        .bind(last.to_string())
        .fetch_all(&pool)
        .await?;
        by_key += started.elapsed();
        ensure!(listed.len() == rows.len(), "the two statements differ");
        let started = Instant::now();
        for (day, bytes) in &rows {
            let day: NaiveDate = day.parse()?;
            DayAggregate::decode(day, bytes).map_err(anyhow::Error::msg)?;
        }
        decode += started.elapsed();
        count += rows.len();
    }
    pool.close().await;
    Ok(RawRead {
        by_list: by_list.as_secs_f64(),
        by_key: by_key.as_secs_f64(),
        decode: decode.as_secs_f64(),
        rows: count,
    })
}

// ---------------------------------------------------------------------------------------------
// The report

/// Writes the report directory of the measured run's reviews as `cloudgov review --out` does
/// (the process's chart fonts, Chinese labels if they can be drawn), then times its parts apart.
fn report_benchmark(dir: &Path, reviews: &[ProjectReview]) -> Result<()> {
    let rules = RuleSet::builtin()?;
    let started = Instant::now();
    let fonts = &cloudgov::cli::load::chart_fonts();
    let loading = started.elapsed().as_secs_f64();
    let labels = fonts.labels(Labels::Chinese);
    println!();
    println!(
        "Report: cloudgov::jobs::review::report::write_report_dir of the {} reviews, labels {labels:?} \
         (fonts loaded first, in {loading:.2} s), VmHWM reset just before",
        reviews.len()
    );
    let probe = PeakProbe::start();
    let started = Instant::now();
    let written = report::write_report_dir(dir, YEAR, reviews, &rules, fonts, labels, |_| {})?;
    let secs = started.elapsed().as_secs_f64();
    let memory = probe.finish("the writing", "everything before");
    let bytes: u64 = written
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  {secs:.2} s for {} files ({:.1} MiB) = {:.1} projects/s",
        written.len(),
        mib(bytes),
        reviews.len() as f64 / secs
    );
    println!("  {memory}");
    let started = Instant::now();
    for r in reviews {
        report::utilisation_chart_png(r, &report::rules_of(&rules, r), fonts, labels)?;
    }
    let charts = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for r in reviews {
        report::project_html(r, "chart.png")?;
    }
    let pages = started.elapsed().as_secs_f64();
    println!(
        "  where the time goes (a second pass, nothing written): the utilisation charts (PNG) \
         {charts:.2} s, the project pages (HTML) {pages:.2} s; the rest (CSV, overview, writing \
         files) ~{:.2} s",
        secs - charts - pages
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory

/// The peak resident set (VmHWM) around one measured step: reset when the step starts.
struct PeakProbe {
    peak_before: Option<f64>,
    reset: bool,
    rss_at_start: Option<f64>,
}

impl PeakProbe {
    fn start() -> PeakProbe {
        let peak_before = proc_status_mib("VmHWM");
        let reset = reset_peak_rss();
        PeakProbe {
            peak_before,
            reset,
            rss_at_start: proc_status_mib("VmRSS"),
        }
    }

    /// One line on RSS at the start of `step` and its peak; `earlier` names what ran before.
    fn finish(self, step: &str, earlier: &str) -> String {
        let peak = show_mib(proc_status_mib("VmHWM"));
        let start = show_mib(self.rss_at_start);
        if self.reset {
            format!(
                "RSS: {start} when {step} started, peak {peak} during it (VmHWM reset before it; \
                 the process's peak before that, {earlier}: {})",
                show_mib(self.peak_before)
            )
        } else {
            format!(
                "RSS: {start} when {step} started; peak of the whole process (VmHWM, could not \
                 be reset) {peak} after it"
            )
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

//! Evaluation and storage at province scale (a benchmark, not a timed test: it prints figures
//! and never fails on them). Everything runs in this process against throwaway databases on
//! this machine.
//!
//! Part 1, the fleet (`CLOUDGOV_BENCH_PART=fleet`): 60 VMs x 30 days, once at 60-s samples and
//! once at 5-min samples (every fifth of the same series), each through the production path:
//! `Store::insert_samples` an hour at a time (the head), each hour followed by `jobs::fold` as
//! the daemon runs it (today's head compacted into its block once it holds an hour, complete
//! days closed, aggregates written). Reported: database growth per stored sample (SQLite: file
//! size after a checkpoint, and after VACUUM; PostgreSQL: the database size with a plain VACUUM
//! after each day, standing in for autovacuum, and after VACUUM FULL), then
//! `jobs::evaluation::evaluate` (persisting) at both intervals (fastest and median of
//! `CLOUDGOV_BENCH_PASSES` passes, default 100) with their ratios, whether the verdicts are
//! identical, and the reference: the raw-sample evaluator (`core::rules::evaluate_vm`) on every
//! raw sample of the same window, read back from the store.
//!
//! Part 2, the province (`CLOUDGOV_BENCH_PART=province`): `CLOUDGOV_BENCH_VMS` VMs (default
//! 10,000) x 30 complete days of 60-s samples plus today so far. Complete days are loaded by
//! the store's bulk path for complete days (`Store::load_complete_days`: block and aggregate
//! per VM-day, the same encoders the fold uses); today's samples go through the head and the
//! fold. With `CLOUDGOV_BENCH_RAW_VMS=N`, only the first N VMs get raw blocks and the others
//! only their aggregates, today's included (written by raw sqlx, one encoded aggregate per
//! profile and day shared by many VMs; their window's first, partial day has no raw samples to
//! read): 100,000 VMs x 30 days of raw samples (4.3 billion) do not fit this machine's disk. Then the production evaluation (persisting findings and notices) with its
//! peak RSS (VmHWM reset before it), and the raw-sample evaluator on a subset for the ratio.
//!
//! Rerun: `cargo bench --bench scale` (both parts, SQLite). Knobs: `CLOUDGOV_BENCH_DB=postgres`
//! (server `CLOUDGOV_BENCH_PG`, default postgres://postgres@127.0.0.1:5432, databases
//! `cloudgov_scale_<pid>_*` dropped at the end), `CLOUDGOV_BENCH_PART=fleet|province`,
//! `CLOUDGOV_BENCH_VMS`, `CLOUDGOV_BENCH_RAW_VMS`, `CLOUDGOV_BENCH_DIR` (where SQLite files go;
//! default a temporary directory; kept), `CLOUDGOV_BENCH_REUSE=1` (part 2 on SQLite: measure the
//! database a previous run left in `CLOUDGOV_BENCH_DIR` instead of filling it again),
//! `CLOUDGOV_BENCH_PASSES` (part 1's evaluation passes, default 100). Figures are recorded in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use cloudgov::core::calendar::Calendar;
use cloudgov::core::domain::Aspect;
use cloudgov::core::inventory::Inventory;
use cloudgov::core::rules::RuleSet;
use cloudgov::core::rules::evaluate::evaluate_vm;
use cloudgov::core::samples::{Hundredths, Sample, SampleRow, shanghai_day_of, shanghai_day_start};
use cloudgov::core::usage::DayAggregate;
use cloudgov::jobs::JobContext;
use cloudgov::jobs::evaluation::{EvaluationReport, evaluate};
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::Store;
use sqlx::Connection;

mod common;
use common::{noise, proc_status_mib, reset_peak_rss, show_mib};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432";
const FLEET_VMS: usize = 60;
const DAYS: i64 = 30;
/// Distinct day profiles whose aggregates VMs without raw samples share (part 2).
const PROFILES: usize = 48;
/// VMs generated and loaded per bulk transaction (part 2).
const LOAD_VMS: usize = 50;
/// VMs the raw-sample evaluator reads in part 2 (the ratio is per VM).
const RAW_REFERENCE_VMS: usize = 200;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let config = Config::from_env()?;
    println!("cloudgov benchmark: evaluation and storage at province scale");
    println!(
        "  machine: {} CPUs; backend {}; rerun: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        config.backend_name(),
        config.rerun()
    );
    let mut dbs = Databases::new(&config)?;
    let result = async {
        if config.part != Some(Part::Province) {
            fleet(&config, &mut dbs).await?;
        }
        if config.part != Some(Part::Fleet) {
            province(&config, &mut dbs).await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    dbs.drop_all().await?;
    result
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Fleet,
    Province,
}

struct Config {
    pg: Option<String>,
    part: Option<Part>,
    vms: usize,
    raw_vms: usize,
    dir: Option<String>,
    /// Part 2 on SQLite: evaluate the database a previous run filled in `dir`.
    reuse: bool,
}

impl Config {
    fn from_env() -> Result<Config> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: usize| -> Result<usize> {
            var(name).map_or(Ok(default), |v| {
                v.parse()
                    .with_context(|| format!("{name}={v} is not a count"))
            })
        };
        let pg = match var("CLOUDGOV_BENCH_DB").as_deref() {
            None | Some("sqlite") => None,
            Some("postgres") => Some(var("CLOUDGOV_BENCH_PG").unwrap_or_else(|| DEFAULT_PG.into())),
            Some(other) => anyhow::bail!("CLOUDGOV_BENCH_DB={other}: use sqlite or postgres"),
        };
        let part = match var("CLOUDGOV_BENCH_PART").as_deref() {
            None | Some("all") => None,
            Some("fleet") => Some(Part::Fleet),
            Some("province") => Some(Part::Province),
            Some(other) => anyhow::bail!("CLOUDGOV_BENCH_PART={other}: use fleet or province"),
        };
        let vms = number("CLOUDGOV_BENCH_VMS", 10_000)?;
        Ok(Config {
            pg,
            part,
            vms,
            raw_vms: number("CLOUDGOV_BENCH_RAW_VMS", vms)?.min(vms),
            dir: var("CLOUDGOV_BENCH_DIR"),
            reuse: var("CLOUDGOV_BENCH_REUSE").as_deref() == Some("1"),
        })
    }

    fn backend_name(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    fn rerun(&self) -> String {
        let mut env = Vec::new();
        if self.pg.is_some() {
            env.push("CLOUDGOV_BENCH_DB=postgres".to_owned());
        }
        match self.part {
            Some(Part::Fleet) => env.push("CLOUDGOV_BENCH_PART=fleet".into()),
            Some(Part::Province) => env.push("CLOUDGOV_BENCH_PART=province".into()),
            None => {}
        }
        if self.part != Some(Part::Fleet) {
            env.push(format!("CLOUDGOV_BENCH_VMS={}", self.vms));
            if self.raw_vms < self.vms {
                env.push(format!("CLOUDGOV_BENCH_RAW_VMS={}", self.raw_vms));
            }
        }
        env.push("cargo bench --bench scale".into());
        env.join(" ")
    }
}

/// Throwaway databases: SQLite files in a directory, or PostgreSQL databases dropped at the end.
struct Databases {
    pg: Option<String>,
    dir: std::path::PathBuf,
    _temp: Option<tempfile::TempDir>,
    created: Vec<String>,
}

impl Databases {
    fn new(config: &Config) -> Result<Databases> {
        let (dir, temp) = match &config.dir {
            Some(d) => (std::path::PathBuf::from(d), None),
            None => {
                let t = tempfile::tempdir()?;
                (t.path().to_owned(), Some(t))
            }
        };
        Ok(Databases {
            pg: config.pg.clone(),
            dir,
            _temp: temp,
            created: Vec::new(),
        })
    }

    async fn fresh(&mut self, name: &str) -> Result<String> {
        match &self.pg {
            None => {
                let path = self.dir.join(format!("{name}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Ok(format!("sqlite://{}", path.display()))
            }
            Some(server) => {
                let db = format!("cloudgov_scale_{}_{name}", std::process::id());
                let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {db}"))
                    .execute(&mut admin)
                    .await?;
                self.created.push(db.clone());
                Ok(format!("{server}/{db}"))
            }
        }
    }

    async fn drop_all(&mut self) -> Result<()> {
        if let Some(server) = &self.pg {
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
            for db in self.created.drain(..) {
                sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Where a SQLite file's pages go, per stored sample: free pages, then the largest tables with
/// the bytes their pages leave unused (dbstat). Empty on PostgreSQL.
async fn sqlite_pages(url: &str, samples: u64) -> Result<String> {
    if !url.starts_with("sqlite://") {
        return Ok(String::new());
    }
    let mut c = sqlx::SqliteConnection::connect(url).await?;
    let per = |bytes: i64| bytes as f64 / samples as f64;
    let (page_size,): (i64,) = sqlx::query_as("PRAGMA page_size").fetch_one(&mut c).await?;
    let (free,): (i64,) = sqlx::query_as("PRAGMA freelist_count")
        .fetch_one(&mut c)
        .await?;
    let tables: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT name, SUM(pgsize), SUM(unused) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 3",
    )
    .fetch_all(&mut c)
    .await?;
    c.close().await?;
    let mut out = format!("free pages {:.2}", per(free * page_size));
    for (name, size, unused) in tables {
        out += &format!(", {name} {:.2} ({:.2} unused)", per(size), per(unused));
    }
    Ok(out)
}

/// PostgreSQL: a plain VACUUM (what autovacuum does many times a day in service; here a month
/// passes in minutes, faster than its naptime), so the dead versions of rewritten blocks and
/// aggregates are reused rather than counted as growth. SQLite reuses freed pages itself.
async fn autovacuum(url: &str) -> Result<()> {
    if !url.starts_with("sqlite://") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query("VACUUM").execute(&mut c).await?;
        c.close().await?;
    }
    Ok(())
}

/// Bytes the database takes: SQLite, the file after a WAL checkpoint (and after VACUUM when
/// asked); PostgreSQL, `pg_database_size` after a CHECKPOINT-free VACUUM-less read.
async fn database_bytes(url: &str, vacuum: bool) -> Result<u64> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        if vacuum {
            sqlx::query("VACUUM").execute(&mut c).await?;
        }
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut c)
            .await?;
        c.close().await?;
        Ok(std::fs::metadata(path)?.len())
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        if vacuum {
            sqlx::query("VACUUM FULL").execute(&mut c).await?;
        }
        let (n,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
            .fetch_one(&mut c)
            .await?;
        c.close().await?;
        Ok(n as u64)
    }
}

/// An inventory of `vms` VMs `vm-NNNNNN` over 20 departments and 200 projects.
fn inventory(vms: usize) -> Result<Inventory> {
    let mut toml = String::new();
    for d in 0..20 {
        toml += &format!("[[department]]\nid = \"dept-{d:02}\"\nname = \"Department {d}\"\n\n");
    }
    for p in 0..200 {
        toml += &format!(
            "[[project]]\nid = \"proj-{p:03}\"\nname = \"Project {p}\"\ndepartment = \"dept-{:02}\"\n\n",
            p % 20
        );
    }
    for v in 0..vms {
        toml += &format!(
            "[[vm]]\nid = \"vm-{v:06}\"\nproject = \"proj-{:03}\"\nvcpus = 8\nmemory_gib = 16\n\
             disk_gib = 200\ndelivered_on = 2025-01-06\ndeployed_on = 2025-01-10\n\n",
            v % 200
        );
    }
    Ok(Inventory::parse("benchmark inventory", &toml)?)
}

async fn store_with_fleet(url: &str, vms: usize) -> Result<(JobContext, Vec<i64>)> {
    let store = Store::connect(url).await?;
    store.apply_inventory(&inventory(vms)?).await?;
    let mut rows = store.vms().await?;
    rows.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let keys = rows.into_iter().map(|v| v.key).collect();
    let ctx = JobContext {
        store,
        rules: Arc::new(RuleSet::builtin()?),
        calendar: Arc::new(Calendar::builtin()?),
        notifier: Arc::new(Notifier::without_smtp()?),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()?.prices,
    };
    Ok((ctx, keys))
}

fn pct(v: f64) -> Hundredths {
    Hundredths::new((v.clamp(0.0, 100.0) * 100.0).round() as u16).unwrap_or(Hundredths::MAX)
}

/// What an agent on a VM of profile `profile` reports at `ts`: CPU with a daily rhythm and
/// noise, memory drifting slowly, disk growing a little a day, traffic following the CPU.
/// Idle, normal and busy profiles take turns, so the verdicts are downsize, ok and expand.
fn sample(profile: u64, ts: i64) -> Sample {
    let (cpu, mem, disk, rate) = match profile % 3 {
        0 => (6.0, 18.0, 30.0, 2_000.0),
        1 => (40.0, 50.0, 60.0, 200_000.0),
        _ => (82.0, 84.0, 80.0, 3_000_000.0),
    };
    let minute = (ts / 60) as u64;
    let hour_of_day = ((ts + 8 * 3600) % 86_400) as f64 / 3600.0;
    let rhythm = (std::f64::consts::TAU * (hour_of_day - 8.0) / 24.0).sin();
    let cpu = cpu * (1.0 + 0.25 * rhythm) + (noise(profile, minute) - 0.5) * 6.0;
    let mem = mem + 2.0 * rhythm + (noise(profile ^ 0xA5, minute / 10) - 0.5) * 0.5;
    let disk = disk + (ts / 86_400 % 365) as f64 * 0.01;
    let traffic = |salt: u64| -> u64 {
        (rate * (1.0 + 0.5 * rhythm) * (0.7 + 0.6 * noise(profile ^ salt, minute))) as u64
    };
    Sample {
        net_rx_bps: Some(traffic(0x11)),
        net_tx_bps: Some(traffic(0x22) / 4),
        ..Sample::usage(ts, pct(cpu), pct(mem), Some(pct(disk)))
    }
}

/// VM `vm`'s samples with `from <= ts < until` on the `interval`-second grid.
fn span_of_samples(vm: usize, from: i64, until: i64, interval: i64) -> Vec<Sample> {
    let first = from + (interval - from.rem_euclid(interval)) % interval;
    (first..until)
        .step_by(interval as usize)
        .map(|ts| sample(vm as u64, ts))
        .collect()
}

/// VM `vm`'s samples of `day` at `interval` seconds, up to `until` (exclusive).
fn day_of_samples(vm: usize, day: NaiveDate, interval: i64, until: i64) -> Vec<Sample> {
    let start = shanghai_day_start(day);
    span_of_samples(vm, start, until.min(start + 86_400), interval)
}

/// The instant of the runs: the last whole minute, and the first complete day of 30.
fn instants() -> Result<(DateTime<Utc>, NaiveDate)> {
    let now = Utc::now().timestamp();
    let at = DateTime::from_timestamp(now - now % 60, 0).context("clock")?;
    Ok((at, shanghai_day_of(at.timestamp()) - TimeDelta::days(DAYS)))
}

fn verdicts(report: &EvaluationReport) -> BTreeMap<(String, Aspect), String> {
    report
        .findings
        .iter()
        .map(|f| ((f.vm.clone(), f.resource), f.verdict.to_string()))
        .collect()
}

fn verdict_counts(report: &EvaluationReport) -> String {
    let mut counts = BTreeMap::<&str, usize>::new();
    for f in &report.findings {
        *counts.entry(f.verdict.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fastest of `passes` runs of the production evaluation (persisting), and its report.
async fn timed_evaluation(
    ctx: &JobContext,
    at: DateTime<Utc>,
    passes: usize,
) -> Result<(f64, f64, EvaluationReport)> {
    let mut times = Vec::with_capacity(passes);
    let mut last = None;
    for _ in 0..passes {
        let started = Instant::now();
        let report = evaluate(&ctx.store, &ctx.rules, at, true).await?;
        times.push(started.elapsed().as_secs_f64());
        last = Some(report);
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    Ok((
        times.first().copied().unwrap_or(f64::NAN),
        median,
        last.context("no pass")?,
    ))
}

/// The two reads of an evaluation whose size depends on the sample rate, timed alone (fastest
/// of `passes`): the window's first day as raw samples, and the window's stored aggregates.
async fn read_times(
    ctx: &JobContext,
    keys: &[i64],
    at: DateTime<Utc>,
    passes: usize,
) -> Result<(f64, f64)> {
    let start = at.timestamp() - 86_400 * i64::from(ctx.rules.window().days);
    let first_day = shanghai_day_of(start + 1);
    let (mut edge, mut stored) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..passes {
        let started = Instant::now();
        std::hint::black_box(
            ctx.store
                .usage_samples_of(keys, start + 1, shanghai_day_start(first_day) + 86_400)
                .await?,
        );
        edge = edge.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        std::hint::black_box(
            ctx.store
                .stored_days(keys, first_day, shanghai_day_of(at.timestamp()))
                .await?,
        );
        stored = stored.min(started.elapsed().as_secs_f64());
    }
    Ok((edge, stored))
}

/// The reference: every raw sample of the window read back (blocks and head) and judged by the
/// raw-sample evaluator. Returns (seconds, samples read) for `keys`.
async fn raw_reference(ctx: &JobContext, keys: &[i64], at: DateTime<Utc>) -> Result<(f64, u64)> {
    let window = ctx.rules.window();
    let rules = ctx.rules.for_vm(
        &"dept-00".parse().context("department")?,
        &"proj-000".parse().context("project")?,
    );
    let (from, to) = (at - TimeDelta::days(i64::from(window.days)), at);
    let started = Instant::now();
    let mut read = 0u64;
    for &key in keys {
        let samples = ctx.store.samples_between(key, from, to).await?;
        read += samples.len() as u64;
        std::hint::black_box(evaluate_vm(&rules, window, at, &samples));
    }
    Ok((started.elapsed().as_secs_f64(), read))
}

// ---------------------------------------------------------------------------------------------
// Part 1: the 60-VM fleet at 60 s and at 5 min

async fn fleet(config: &Config, dbs: &mut Databases) -> Result<()> {
    println!();
    println!(
        "Part 1: {FLEET_VMS} VMs x {DAYS} days through the production path (head, then the fold)"
    );
    let (at, first_day) = instants()?;
    let mut runs = Vec::new();
    for interval in [60i64, 300] {
        let url = dbs.fresh(&format!("fleet_{interval}")).await?;
        let (ctx, keys) = store_with_fleet(&url, FLEET_VMS).await?;
        let empty = database_bytes(&url, false).await?;
        let started = Instant::now();
        let mut stored = 0u64;
        let mut folds = cloudgov::jobs::usage::FoldSummary::default();
        // An hour at a time, each hour followed by the fold as the daemon runs it (it runs
        // every five minutes): today's head is compacted into its block once it holds an hour
        // at 60 s (five hours at 5 min), a day is closed after midnight, and the pages the
        // head and the rewritten blocks free are reused, as in service.
        let mut hour = shanghai_day_start(first_day);
        while hour <= at.timestamp() {
            let until = (hour + 3600).min(at.timestamp() + 1);
            let rows: Vec<SampleRow> = keys
                .iter()
                .enumerate()
                .flat_map(|(vm, &vm_key)| {
                    span_of_samples(vm, hour, until, interval)
                        .into_iter()
                        .map(move |sample| SampleRow { vm_key, sample })
                })
                .collect();
            stored += ctx.store.insert_samples(&rows).await?.0;
            let fold_at =
                DateTime::from_timestamp(until.min(at.timestamp()), 0).context("instant")?;
            let folded = cloudgov::jobs::fold(&ctx, fold_at).await?;
            folds.added += folded.added;
            folds.rebuilt += folded.rebuilt;
            folds.compacted += folded.compacted;
            hour += 3600;
            if (hour - shanghai_day_start(first_day)) % 86_400 == 0 {
                autovacuum(&url).await?;
            }
        }
        let filled = started.elapsed().as_secs_f64();
        let grown = database_bytes(&url, false).await? - empty;
        let pages = sqlite_pages(&url, stored).await?;
        let grown_vacuumed = database_bytes(&url, true).await?.saturating_sub(empty);
        let pages_vacuumed = sqlite_pages(&url, stored).await?;
        println!(
            "  {interval:>3}-s samples: {stored} stored in {filled:.1} s, an hour at a time, each followed by the fold ({} compactions, {} additions)",
            folds.compacted, folds.added
        );
        println!(
            "        database growth {:.1} MB = {:.2} bytes/sample ({:.2} after VACUUM; {} backend)",
            grown as f64 / 1e6,
            grown as f64 / stored as f64,
            grown_vacuumed as f64 / stored as f64,
            config.backend_name()
        );
        if !pages.is_empty() {
            println!("        bytes/sample as grown: {pages}");
            println!("        after VACUUM:          {pages_vacuumed}");
        }
        let passes = std::env::var("CLOUDGOV_BENCH_PASSES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let (secs, median, report) = timed_evaluation(&ctx, at, passes).await?;
        let (raw_secs, raw_read) = raw_reference(&ctx, &keys, at).await?;
        let (edge_secs, stored_secs) = read_times(&ctx, &keys, at, passes).await?;
        println!(
            "        reads alone (fastest of {passes}): the window's first day raw {:.4} s, the stored aggregates {:.4} s",
            edge_secs, stored_secs
        );
        println!(
            "        evaluate(persist = true), {passes} passes: fastest {secs:.4} s, median {median:.4} s ({}); raw-sample evaluator on the same window: {raw_secs:.3} s for {raw_read} samples ({:.1}x the production one's fastest)",
            verdict_counts(&report),
            raw_secs / secs
        );
        runs.push((interval, secs, median, verdicts(&report)));
        ctx.store.close().await;
    }
    let (fine, coarse) = (&runs[0], &runs[1]);
    println!(
        "  60-s vs 5-min: {:.2}x the fastest evaluation, {:.2}x the median; verdicts {}",
        fine.1 / coarse.1,
        fine.2 / coarse.2,
        if fine.3 == coarse.3 {
            "identical".to_owned()
        } else {
            let differ = fine
                .3
                .iter()
                .filter(|(k, v)| coarse.3.get(*k) != Some(*v))
                .count();
            format!("DIFFER for {differ} VM-resources")
        }
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 2: the province

async fn province(config: &Config, dbs: &mut Databases) -> Result<()> {
    let (vms, raw_vms) = (config.vms, config.raw_vms);
    println!();
    println!(
        "Part 2: {vms} VMs x {DAYS} complete days of 60-s samples and today so far; raw blocks for {raw_vms} of them"
    );
    let (at, first_day) = instants()?;
    let today = shanghai_day_of(at.timestamp());
    if config.reuse && config.pg.is_none() {
        let path = dbs.dir.join("province.db");
        anyhow::ensure!(
            path.exists(),
            "CLOUDGOV_BENCH_REUSE: {} does not exist",
            path.display()
        );
        let url = format!("sqlite://{}", path.display());
        let (ctx, keys) = store_with_fleet(&url, vms).await?;
        println!(
            "  reusing the filled database {} ({:.2} GB)",
            path.display(),
            database_bytes(&url, false).await? as f64 / 1e9
        );
        return measure_province(&ctx, &keys, raw_vms, at).await;
    }
    let url = dbs.fresh("province").await?;
    let (ctx, keys) = store_with_fleet(&url, vms).await?;
    let empty = database_bytes(&url, false).await?;

    // Complete days: raw VMs by the bulk path, the others' aggregates by raw sqlx.
    let started = Instant::now();
    let mut loaded = 0u64;
    for (group, chunk) in keys[..raw_vms].chunks(LOAD_VMS).enumerate() {
        let chunk = chunk.to_vec();
        let days = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (i, &key) in chunk.iter().enumerate() {
                let vm = group * LOAD_VMS + i;
                let mut day = first_day;
                while day < today {
                    out.push((key, day, day_of_samples(vm, day, 60, i64::MAX)));
                    day = day.succ_opt().unwrap_or(day);
                }
            }
            out
        })
        .await?;
        loaded += ctx.store.load_complete_days(&days).await?;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    if raw_vms > 0 {
        println!(
            "  fill, raw VMs: {loaded} samples into blocks and aggregates in {raw_secs:.0} s ({:.0} samples/s, Store::load_complete_days)",
            loaded as f64 / raw_secs
        );
    }
    if raw_vms < vms {
        let started = Instant::now();
        let rows = fill_aggregates_only(&url, raw_vms, &keys[raw_vms..], first_day, at).await?;
        println!(
            "  fill, aggregate-only VMs: {rows} aggregates ({} profiles x {DAYS} days, shared) in {:.0} s (raw sqlx)",
            PROFILES,
            started.elapsed().as_secs_f64()
        );
    }
    // Today so far, every raw VM, through the head and the fold (the daemon's path).
    let started = Instant::now();
    let mut today_rows = 0u64;
    for (group, chunk) in keys[..raw_vms].chunks(1000).enumerate() {
        let rows: Vec<SampleRow> = chunk
            .iter()
            .enumerate()
            .flat_map(|(i, &vm_key)| {
                day_of_samples(group * 1000 + i, today, 60, at.timestamp() + 1)
                    .into_iter()
                    .map(move |sample| SampleRow { vm_key, sample })
            })
            .collect();
        today_rows += ctx.store.insert_samples(&rows).await?.0;
    }
    let folded = cloudgov::jobs::fold(&ctx, at).await?;
    println!(
        "  today: {today_rows} samples through the head, folded ({} days) in {:.0} s",
        folded.days(),
        started.elapsed().as_secs_f64()
    );
    let grown = database_bytes(&url, false).await? - empty;
    let samples = loaded + today_rows;
    println!(
        "  database: {:.2} GB for {samples} raw samples kept{} ({:.2} bytes/sample)",
        grown as f64 / 1e9,
        if raw_vms < vms {
            " plus the aggregate-only VMs' aggregates"
        } else {
            ""
        },
        grown as f64 / samples as f64
    );

    measure_province(&ctx, &keys, raw_vms, at).await
}

/// The production evaluation of the filled province, alone in its measurement of memory, and
/// the raw-sample evaluator on a subset.
async fn measure_province(
    ctx: &JobContext,
    keys: &[i64],
    raw_vms: usize,
    at: DateTime<Utc>,
) -> Result<()> {
    let rss_before = proc_status_mib("VmRSS");
    let reset = reset_peak_rss();
    let started = Instant::now();
    let report = evaluate(&ctx.store, &ctx.rules, at, true).await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = proc_status_mib("VmHWM");
    let covered: i64 = report
        .findings
        .iter()
        .filter(|f| f.resource == Aspect::Cpu)
        .map(|f| f.samples)
        .sum();
    println!(
        "  evaluate(persist = true): {secs:.1} s for {} VMs ({:.0} VMs/s), {covered} samples in the windows ({:.1} M samples/s)",
        report.vms,
        report.vms as f64 / secs,
        covered as f64 / secs / 1e6
    );
    println!("  findings: {}", verdict_counts(&report));
    println!(
        "  RSS: {} before, peak {} during the evaluation{}",
        show_mib(rss_before),
        show_mib(peak),
        if reset {
            " (VmHWM reset before it)"
        } else {
            " (whole process: VmHWM could not be reset)"
        }
    );
    let started = Instant::now();
    let again = evaluate(&ctx.store, &ctx.rules, at, false).await?;
    println!(
        "  evaluate(persist = false), second pass: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::hint::black_box(again);
    let subset = &keys[..RAW_REFERENCE_VMS.min(raw_vms)];
    if !subset.is_empty() {
        let (raw, read) = raw_reference(ctx, subset, at).await?;
        let per_vm_raw = raw / subset.len() as f64;
        let per_vm = secs / report.vms as f64;
        println!(
            "  reference, raw-sample evaluator on {} VMs: {raw:.1} s for {read} samples = {:.1} ms/VM vs {:.2} ms/VM here ({:.0}x), so {:.0} s for the whole fleet",
            subset.len(),
            per_vm_raw * 1e3,
            per_vm * 1e3,
            per_vm_raw / per_vm,
            per_vm_raw * report.vms as f64
        );
    }
    ctx.store.close().await;
    Ok(())
}

/// A `usage_days` row without its VM: day, samples, first and last instant, aggregate.
type EncodedDay = (String, i64, i64, i64, Vec<u8>);

/// Writes aggregates directly for VMs without raw samples: `PROFILES` profiles' encoded days
/// (today's up to `at`), each shared by many VMs. Returns the rows written.
async fn fill_aggregates_only(
    url: &str,
    first_index: usize,
    keys: &[i64],
    first_day: NaiveDate,
    at: DateTime<Utc>,
) -> Result<u64> {
    let today = shanghai_day_of(at.timestamp());
    let mut days = Vec::new();
    let mut day = first_day;
    while day <= today {
        days.push(day);
        day = day.succ_opt().context("date")?;
    }
    let encoded: Vec<Vec<EncodedDay>> = (0..PROFILES)
        .map(|profile| {
            days.iter()
                .filter_map(|&day| {
                    let until = at.timestamp() + 1;
                    let a = DayAggregate::of(day, &day_of_samples(profile, day, 60, until))?;
                    Some((
                        day.to_string(),
                        i64::from(a.samples),
                        a.first_ts,
                        a.last_ts,
                        a.encode(),
                    ))
                })
                .collect()
        })
        .collect();
    let rows_of = |chunk: &[(usize, i64)]| -> Vec<(i64, &EncodedDay)> {
        chunk
            .iter()
            .flat_map(|&(index, key)| encoded[index % PROFILES].iter().map(move |r| (key, r)))
            .collect()
    };
    // The profile of the VM at index i is i % PROFILES: its class (i % 3) is the raw VMs'.
    let indexed: Vec<(usize, i64)> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (first_index + i, k))
        .collect();
    let mut written = 0u64;
    macro_rules! load {
        ($conn:expr) => {{
            let mut conn = $conn;
            for chunk in indexed.chunks(200) {
                let mut tx = conn.begin().await?;
                for part in rows_of(chunk).chunks(1000) {
                    let mut b = sqlx::QueryBuilder::new(
                        "INSERT INTO usage_days (vm_key, day, samples, first_ts, last_ts, aggregate) ",
                    );
                    b.push_values(part, |mut r, (key, (day, n, first, last, bytes))| {
                        r.push_bind(*key)
                            .push_bind(day)
                            .push_bind(n)
                            .push_bind(first)
                            .push_bind(last)
                            .push_bind(bytes);
                    });
                    b.build().execute(&mut *tx).await?;
                    written += part.len() as u64;
                }
                tx.commit().await?;
            }
        }};
    }
    if url.starts_with("sqlite") {
        load!(sqlx::SqliteConnection::connect(url).await?);
    } else {
        load!(sqlx::PgConnection::connect(url).await?);
    }
    Ok(written)
}

//! Web dashboard benchmark (a benchmark, not a timed test: it prints figures and never fails on
//! them): how long the fleet, department, project and VM pages take on a fleet of 10,000 VMs (or
//! 100,000, `CLOUDGOV_BENCH_VMS=100000`), against a reference query each, in this process,
//! against a throwaway database; and the p95 of the VM page's 30-day chart and of the staff
//! overview.
//!
//! 1. Setup: a fresh database (`Store::connect`, the daemon's migrations) with 10,000 VMs in 200
//!    projects (50 VMs each) of 10 departments (`Store::apply_inventory`); one evaluation
//!    (`Store::record_evaluation`, the evaluation job's write) giving every VM three findings,
//!    about 20 % CPU downsize, 10 % memory downsize, 5 % expand, 5 % insufficient data, each
//!    downsize/expand opening a notice; an adjustment deadline for every notice (a third of them
//!    overdue) and a deployment deadline for every 10th VM (`Store::create_deadlines`).
//!    Usage: every VM gets a day aggregate (`usage_days` row) for each of the last 31 days up to
//!    today (`CLOUDGOV_BENCH_DAYS`), written by raw sqlx on a separate connection (multi-row
//!    INSERTs, big transactions), not by cloudgov: four day profiles (idle, office hours, busy,
//!    nightly batch), each day's `DayAggregate::of` 288 generated five-minute samples encoded once
//!    and its bytes reused by every VM of the profile (today's only up to the seeding instant).
//!    Then 30 days of 5-minute samples (8,640 each) up to the hour for the first 5 VMs (1 in 2,000
//!    at larger fleets), through cloudgov: `Store::insert_samples` into the head, then
//!    `jobs::fold` (closed days compacted into `sample_blocks`, every day's aggregate rebuilt from
//!    the samples, replacing the filled one). On PostgreSQL the database is then `ANALYZE`d, as
//!    autovacuum would have done for a running daemon.
//! 2. Pages: the dashboard routes served by axum on 127.0.0.1 behind a layer inserting a fixed
//!    staff `Viewer` (or a department one), fetched with reqwest over one kept-alive connection:
//!    `/` as staff and as a department user, `/departments/{id}`, `/projects/{id}`,
//!    `/vms/{id}?days=30` and `?days=365`, `/notices`. Each is fetched once to warm up, then
//!    `RUNS` times; the median and p95 are reported with the page size.
//! 3. Reference: in the same run, the plain query each page's main query needs, by raw sqlx on a
//!    separate pool, timed the same way: `SELECT count(*)` of the findings (fleet), of a
//!    department's VMs (index join), of a project's VMs, of one VM's `usage_days` rows in the
//!    30-day chart's days and in all (primary-key range), of the open notices. The ratio page /
//!    reference says how much the page costs over the cheapest read of the same rows.
//! 4. p95: the staff overview fetched `P95_RUNS` times, and the VM page's 30-day chart of
//!    `P95_RUNS` different VMs spread over the fleet (sampled and filled alike, each fetched once,
//!    after one warm-up fetch of another VM): p50, p95 and maximum of each.
//!
//! Rerun: `cargo bench --bench dashboard`; `CLOUDGOV_BENCH_DB=postgres` runs against PostgreSQL
//! at `CLOUDGOV_BENCH_PG` (default postgres://postgres@127.0.0.1:5432) in a database
//! `cloudgov_bench_dashboard_<pid>`, dropped at the end. `CLOUDGOV_BENCH_VMS` sets the VM count
//! (e.g. 100000), or `CLOUDGOV_BENCH_SCALE` (default 1.0) scales the default 10,000;
//! `CLOUDGOV_BENCH_DAYS` (default 31, at most 366) the days of aggregates every VM gets (the
//! 365-day chart reads them all). Figures are recorded in BENCHMARKS.md.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use cloudgov::core::access::{Role, Scope, Viewer};
use cloudgov::core::calendar::Calendar;
use cloudgov::core::domain::{DepartmentId, Resource, Verdict};
use cloudgov::core::inventory::Inventory;
use cloudgov::core::obligations::ObligationKind;
use cloudgov::core::rules::RuleSet;
use cloudgov::core::rules::evaluate::Finding;
use cloudgov::core::samples::{Hundredths, Sample, SampleRow, shanghai_day_of, shanghai_day_start};
use cloudgov::core::usage::DayAggregate;
use cloudgov::http::{AppState, IngestLimits};
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::{NewDeadline, ObligationStart, Store, VmFindings};
use sqlx::Connection;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432";
const VMS: f64 = 10_000.0;
const VMS_PER_PROJECT: usize = 50;
const DEPARTMENTS: usize = 10;
/// VMs with 30 days of raw samples: at least this many, and 1 in [`VMS_PER_SAMPLED`].
const SAMPLED_VMS: usize = 5;
const VMS_PER_SAMPLED: usize = 2000;
const SAMPLE_STEP_SECS: i64 = 300;
/// Days of aggregates every VM gets, up to today, unless `CLOUDGOV_BENCH_DAYS` says otherwise:
/// the 30-day chart's window (31 Shanghai days).
const DAYS: usize = 31;
/// Distinct day profiles of the filled aggregates.
const PROFILES: usize = 4;
/// Rows per INSERT statement of the fill (6 columns: 12,000 bound values).
const ROWS_PER_STATEMENT: usize = 2000;
/// Rows per transaction of the fill.
const ROWS_PER_TRANSACTION: usize = 200_000;
/// Timed fetches per page; the median (and p95) of them counts.
const RUNS: usize = 21;
/// Fetches for the p95 figures: of the staff overview, and of as many VMs' 30-day pages.
const P95_RUNS: usize = 60;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[tokio::main]
async fn main() -> Result<()> {
    let fixed_vms: Option<usize> = match std::env::var("CLOUDGOV_BENCH_VMS") {
        Ok(text) => Some(
            text.trim()
                .parse()
                .with_context(|| format!("CLOUDGOV_BENCH_VMS={text:?} is not a count"))?,
        ),
        Err(_) => None,
    };
    let days: usize = match std::env::var("CLOUDGOV_BENCH_DAYS") {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("CLOUDGOV_BENCH_DAYS={text:?} is not a count"))?,
        Err(_) => DAYS,
    };
    ensure!(
        (1..=366).contains(&days),
        "CLOUDGOV_BENCH_DAYS must be 1 to 366"
    );
    let scale: f64 = match std::env::var("CLOUDGOV_BENCH_SCALE") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("CLOUDGOV_BENCH_SCALE={text:?} is not a number"))?,
        Err(_) => 1.0,
    };
    ensure!(
        scale.is_finite() && scale > 0.0,
        "CLOUDGOV_BENCH_SCALE must be positive"
    );
    let backend = match std::env::var("CLOUDGOV_BENCH_DB").as_deref() {
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => bail!("CLOUDGOV_BENCH_DB={other}: use sqlite or postgres"),
    };
    let pg_server = std::env::var("CLOUDGOV_BENCH_PG").unwrap_or_else(|_| DEFAULT_PG.into());
    let vms = fixed_vms
        .unwrap_or_else(|| (VMS * scale).round() as usize)
        .max(VMS_PER_PROJECT);
    let dir = tempfile::tempdir()?;
    let pg_db = format!("cloudgov_bench_dashboard_{}", std::process::id());
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("dashboard.db").display()),
        Backend::Postgres => {
            pg_admin(
                &pg_server,
                &[
                    format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"),
                    format!("CREATE DATABASE {pg_db}"),
                ],
            )
            .await?;
            format!("{pg_server}/{pg_db}")
        }
    };
    println!("cloudgov benchmark: web dashboard pages");
    println!(
        "  machine: {} CPUs; database: {}; {vms} VMs, {} departments, {VMS_PER_PROJECT} VMs per project",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        match backend {
            Backend::Sqlite => "SQLite (WAL, synchronous=FULL) file in a temporary directory",
            Backend::Postgres => "PostgreSQL",
        },
        DEPARTMENTS
    );
    let result = run(&url, vms, days).await;
    if backend == Backend::Postgres {
        pg_admin(
            &pg_server,
            &[format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")],
        )
        .await?;
    }
    result?;
    let mut command = String::new();
    if let Some(n) = fixed_vms {
        command += &format!("CLOUDGOV_BENCH_VMS={n} ");
    } else if scale != 1.0 {
        command += &format!("CLOUDGOV_BENCH_SCALE={scale} ");
    }
    if days != DAYS {
        command += &format!("CLOUDGOV_BENCH_DAYS={days} ");
    }
    if backend == Backend::Postgres {
        command += "CLOUDGOV_BENCH_DB=postgres ";
        if pg_server != DEFAULT_PG {
            command += &format!("CLOUDGOV_BENCH_PG={pg_server} ");
        }
    }
    println!("\nrerun: {command}cargo bench --bench dashboard");
    Ok(())
}

async fn pg_admin(server: &str, statements: &[String]) -> Result<()> {
    let url = format!("{server}/postgres");
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    for statement in statements {
        sqlx::query(statement).execute(&mut admin).await?;
    }
    admin.close().await?;
    Ok(())
}

fn inventory_toml(vms: usize) -> String {
    let projects = vms.div_ceil(VMS_PER_PROJECT);
    let mut toml = String::new();
    for d in 0..DEPARTMENTS {
        let _ = write!(
            toml,
            "[[department]]\nid = \"dept-{d:02}\"\nname = \"部门 {d}\"\nemails = [\"it{d}@example.cn\"]\n\n"
        );
    }
    for p in 0..projects {
        let _ = write!(
            toml,
            "[[project]]\nid = \"proj-{p:03}\"\nname = \"项目 {p}\"\ndepartment = \"dept-{:02}\"\nfiled_on = 2025-01-10\n\n",
            p % DEPARTMENTS
        );
    }
    for v in 0..vms {
        let _ = write!(
            toml,
            "[[vm]]\nid = \"vm-{v:05}\"\nproject = \"proj-{:03}\"\nvcpus = {}\nmemory_gib = 16\n\
             disk_gib = 200\ndelivered_on = 2025-12-01\n\n",
            v / VMS_PER_PROJECT,
            [2, 4, 8, 16][v % 4]
        );
    }
    toml
}

fn finding(resource: Resource, verdict: Verdict, value: f64) -> Finding {
    let (threshold, comparison) = match verdict {
        Verdict::Downsize => (Some(25.0), Some("<= 25".to_owned())),
        Verdict::Expand => (Some(75.0), Some(">= 75".to_owned())),
        Verdict::Ok | Verdict::InUse | Verdict::Unused => (Some(25.0), Some("<= 25".to_owned())),
        Verdict::InsufficientData => (None, None),
    };
    Finding {
        resource,
        verdict,
        value: (verdict != Verdict::InsufficientData).then_some(value),
        threshold,
        comparison,
        statistic: "p95".into(),
        samples: 8640,
        days_with_samples: 30,
    }
}

/// The findings of VM number `v`: a fixed mix of verdicts.
fn findings_of(v: usize) -> [Finding; 3] {
    let cpu = match v % 20 {
        0..=3 => finding(Resource::Cpu, Verdict::Downsize, 8.0 + (v % 15) as f64),
        4 => finding(Resource::Cpu, Verdict::Expand, 88.0),
        5 => finding(Resource::Cpu, Verdict::InsufficientData, 0.0),
        _ => finding(Resource::Cpu, Verdict::Ok, 45.0),
    };
    let memory = match v % 10 {
        0 => finding(Resource::Memory, Verdict::Downsize, 20.0),
        _ => finding(Resource::Memory, Verdict::Ok, 55.0),
    };
    let disk = match v % 40 {
        0 => finding(Resource::Disk, Verdict::Expand, 91.0),
        _ => finding(Resource::Disk, Verdict::Ok, 60.0),
    };
    [cpu, memory, disk]
}

/// A deterministic fraction in [0, 1) from two numbers (SplitMix64), so runs are repeatable.
fn noise(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / 2f64.powi(64)
}

fn hundredths(pct: f64) -> Hundredths {
    Hundredths::new((pct.clamp(0.0, 100.0) * 100.0).round() as u16).unwrap_or(Hundredths::MAX)
}

/// Day profile `profile`'s five-minute samples of `day`, up to `until` (Unix seconds): idle,
/// office hours (busy 09:00-18:00 on weekdays), busy (08:00-22:00 on weekdays, high all day),
/// nightly batch (01:00-05:00 every day), with jitter; the disk fills slowly over the year.
fn profile_samples(profile: usize, day: NaiveDate, until: i64) -> Vec<Sample> {
    let (base, extra, hours, every_day): ([f64; 3], [f64; 2], std::ops::Range<i64>, bool) =
        match profile {
            0 => ([3.0, 15.0, 30.0], [4.0, 3.0], 9..18, false),
            1 => ([12.0, 40.0, 55.0], [35.0, 15.0], 9..18, false),
            2 => ([55.0, 70.0, 70.0], [30.0, 15.0], 8..22, false),
            _ => ([8.0, 30.0, 45.0], [70.0, 40.0], 1..5, true),
        };
    let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
    let midnight = shanghai_day_start(day);
    let seed = (profile as u64) << 20 | u64::from(day.ordinal());
    let disk = base[2] + 10.0 * f64::from(day.ordinal()) / 366.0;
    (0..86_400 / SAMPLE_STEP_SECS)
        .map(|i| (i, midnight + i * SAMPLE_STEP_SECS))
        .take_while(|&(_, ts)| ts <= until)
        .map(|(i, ts)| {
            let busy = (weekday || every_day) && hours.contains(&(i * SAMPLE_STEP_SECS / 3600));
            let peak = if busy { 1.0 } else { 0.0 };
            let jitter = |salt: u64, spread: f64| (noise(seed, i as u64 * 3 + salt) - 0.5) * spread;
            Sample::usage(
                ts,
                hundredths(base[0] + extra[0] * peak + jitter(1, 8.0)),
                hundredths(base[1] + extra[1] * peak + jitter(2, 4.0)),
                Some(hundredths(disk + jitter(3, 0.5))),
            )
        })
        .collect()
}

/// A filled `usage_days` row: VM key, day, samples, first and last instant, aggregate.
type AggregateRow<'a> = (i64, &'a str, i64, i64, i64, &'a [u8]);

/// A day profile's stored aggregate on one day: samples, first and last instant, bytes.
type Encoded = (i64, i64, i64, Vec<u8>);

/// A second pool on the benchmark's database, for the fill and the reference queries.
enum RawPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

macro_rules! on_raw {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            RawPool::Sqlite($p) => $body,
            RawPool::Postgres($p) => $body,
        }
    };
}

/// One connection, so the fill is one writer and the references one reader.
async fn raw_pool(url: &str) -> Result<RawPool> {
    Ok(if url.starts_with("sqlite") {
        RawPool::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?,
        )
    } else {
        RawPool::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?,
        )
    })
}

async fn insert_aggregates(pool: &RawPool, rows: &[AggregateRow<'_>]) -> Result<()> {
    const INSERT: &str =
        "INSERT INTO usage_days (vm_key, day, samples, first_ts, last_ts, aggregate) ";
    on_raw!(pool, p => {
        let mut tx = p.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(INSERT);
            insert.push_values(chunk, |mut row, &(key, day, samples, first, last, bytes)| {
                row.push_bind(key)
                    .push_bind(day)
                    .push_bind(samples)
                    .push_bind(first)
                    .push_bind(last)
                    .push_bind(bytes);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Writes a day aggregate for every VM (`keys`, in inventory order) and day of `days` by raw
/// sqlx: [`PROFILES`] day profiles, each day's encoded once (today's up to `until`), VM `v`
/// getting profile `v % PROFILES`. Prints the figures.
async fn fill_aggregates(url: &str, keys: &[i64], days: &[NaiveDate], until: i64) -> Result<()> {
    let t = Instant::now();
    let encoded: Vec<Vec<Option<Encoded>>> = days
        .iter()
        .map(|&day| {
            (0..PROFILES)
                .map(|profile| {
                    DayAggregate::of(day, &profile_samples(profile, day, until))
                        .map(|a| (i64::from(a.samples), a.first_ts, a.last_ts, a.encode()))
                })
                .collect()
        })
        .collect();
    let day_names: Vec<String> = days.iter().map(ToString::to_string).collect();
    let encoding = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let pool = raw_pool(url).await?;
    let (mut written, mut bytes) = (0u64, 0u64);
    let mut rows: Vec<AggregateRow<'_>> = Vec::with_capacity(ROWS_PER_TRANSACTION);
    for (v, &key) in keys.iter().enumerate() {
        for (d, day) in day_names.iter().enumerate() {
            if let Some((samples, first, last, aggregate)) = &encoded[d][v % PROFILES] {
                rows.push((key, day, *samples, *first, *last, aggregate));
                bytes += aggregate.len() as u64;
            }
        }
        if rows.len() >= ROWS_PER_TRANSACTION || v + 1 == keys.len() {
            insert_aggregates(&pool, &rows).await?;
            written += rows.len() as u64;
            rows.clear();
        }
    }
    on_raw!(&pool, p => p.close().await);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  seed: {written} usage_days rows ({} VMs x {} days, {PROFILES} day profiles encoded in \
         {encoding:.2} s, {:.0} bytes per aggregate, {:.0} MiB) by raw sqlx, {ROWS_PER_STATEMENT}-row \
         INSERTs, {ROWS_PER_TRANSACTION} rows per transaction, in {secs:.1} s = {:.0} rows/s",
        keys.len(),
        days.len(),
        bytes as f64 / written.max(1) as f64,
        bytes as f64 / (1024.0 * 1024.0),
        written as f64 / secs
    );
    Ok(())
}

/// The job context the dashboard and the fold run with.
fn context(store: &Store) -> Result<JobContext> {
    Ok(JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin()?),
        calendar: Arc::new(Calendar::builtin()?),
        notifier: Arc::new(Notifier::without_smtp()?),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()?.prices,
    })
}

struct Seeded {
    store: Store,
    /// Every VM's id, in inventory order.
    vm_ids: Vec<String>,
    sampled_vm: String,
    sampled_key: i64,
}

async fn seed(url: &str, vms: usize, days: usize) -> Result<Seeded> {
    let store = Store::connect(url).await?;
    let t = Instant::now();
    let inventory = Inventory::parse("bench", &inventory_toml(vms))?;
    store.apply_inventory(&inventory).await?;
    let rows = store.vms().await?;
    println!(
        "  seed: inventory of {} VMs in {:.1} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let at: DateTime<Utc> = "2026-11-02T01:00:00Z".parse()?;
    let issued_on = NaiveDate::from_ymd_opt(2026, 11, 2).context("date")?;
    let findings: Vec<VmFindings> = rows
        .iter()
        .enumerate()
        .map(|(i, vm)| VmFindings {
            vm_key: vm.key,
            department: vm.department.to_string(),
            allocation_json: format!(
                r#"{{"vcpus":{},"memory_gib":{},"disk_gib":{}}}"#,
                vm.vcpus, vm.memory_gib, vm.disk_gib
            ),
            findings: findings_of(i),
            recommendations: [None; 3],
            // Every VM in use: the dashboard's figures are of the resource findings.
            usage: cloudgov::store::UsageRecord {
                verdict: Verdict::InUse,
                cpu_max: Some(50.0),
                cpu_threshold: 5.0,
                comparison: "<= 5".into(),
                samples: 8640,
                days_observed: 30,
                evidence_json: "{}".into(),
                release_requested: false,
                deployed: true,
            },
        })
        .collect();
    let written = store
        .record_evaluation(at, issued_on, &findings, true)
        .await?;
    println!(
        "  seed: evaluation, {} findings and {} notices in {:.1} s",
        findings.len() * 3,
        written.notices_opened,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let notices = store.notices().await?;
    let keys: std::collections::HashMap<String, i64> =
        rows.iter().map(|v| (v.id.to_string(), v.key)).collect();
    let mut deadlines: Vec<NewDeadline> = notices
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // A third are past due today (issued long ago), the rest still open.
            let due = if i % 3 == 0 {
                NaiveDate::from_ymd_opt(2026, 1, 15)
            } else {
                NaiveDate::from_ymd_opt(2027, 1, 15)
            };
            NewDeadline {
                start: ObligationStart {
                    kind: ObligationKind::Adjustment,
                    vm_key: keys.get(&n.vm).copied(),
                    notice_id: Some(n.id),
                    request_id: None,
                    project: Some(n.project.clone()),
                    department: n.department.clone(),
                    start_on: issued_on,
                    done_on: None,
                    done_source: None,
                },
                working_days: 30,
                due_on: due.unwrap_or(issued_on),
                provisional: false,
            }
        })
        .collect();
    deadlines.extend(rows.iter().step_by(10).map(|vm| NewDeadline {
        start: ObligationStart {
            kind: ObligationKind::Deployment,
            vm_key: Some(vm.key),
            notice_id: None,
            request_id: None,
            project: Some(vm.project.to_string()),
            department: vm.department.to_string(),
            start_on: vm.delivered_on,
            done_on: None,
            done_source: None,
        },
        working_days: 10,
        due_on: vm.delivered_on + TimeDelta::days(14),
        provisional: false,
    }));
    let created = store.create_deadlines(&deadlines, at, issued_on).await?;
    println!(
        "  seed: {created} deadlines in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let now = Utc::now().timestamp();
    let today = shanghai_day_of(now);
    let filled: Vec<NaiveDate> = (0..days as i64)
        .rev()
        .map(|back| today - TimeDelta::days(back))
        .collect();
    let keys: Vec<i64> = rows.iter().map(|v| v.key).collect();
    fill_aggregates(url, &keys, &filled, now).await?;

    let t = Instant::now();
    let to = now / 3600 * 3600;
    let from = to - 30 * 86_400;
    let sampled = (vms / VMS_PER_SAMPLED).max(SAMPLED_VMS);
    let mut samples = 0;
    for (v, vm) in rows.iter().enumerate().take(sampled) {
        let batch: Vec<SampleRow> = (0..(to - from) / SAMPLE_STEP_SECS)
            .map(|i| {
                let ts = from + i * SAMPLE_STEP_SECS;
                let hour = (ts / 3600) % 24;
                let busy = if (1..=10).contains(&hour) { 30.0 } else { 5.0 };
                SampleRow {
                    vm_key: vm.key,
                    sample: Sample::usage(
                        ts,
                        hundredths(busy + ((i + v as i64) % 7) as f64),
                        hundredths(40.0 + (i % 11) as f64),
                        Some(hundredths(55.0 + i as f64 / 1000.0)),
                    ),
                }
            })
            .collect();
        for chunk in batch.chunks(2000) {
            store.insert_samples(chunk).await?;
        }
        samples += batch.len();
    }
    let inserting = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let folded = cloudgov::jobs::fold(&context(&store)?, Utc::now()).await?;
    println!(
        "  seed: {samples} samples for {sampled} VMs (Store::insert_samples) in {inserting:.1} s; \
         jobs::fold: {} days compacted into blocks, {} added, {} rebuilt, in {:.1} s",
        folded.compacted,
        folded.added,
        folded.rebuilt,
        t.elapsed().as_secs_f64()
    );
    if url.starts_with("postgres") {
        // Production tables have statistics (autovacuum analyzes them); a freshly filled one
        // does not until autovacuum gets to it, and plans made without them are not the ones
        // a running daemon gets.
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query("ANALYZE").execute(&mut conn).await?;
        conn.close().await?;
        println!("  seed: ANALYZE (PostgreSQL)");
    }
    let sampled = rows.first().context("no VMs")?;
    Ok(Seeded {
        store,
        vm_ids: rows.iter().map(|v| v.id.to_string()).collect(),
        sampled_vm: sampled.id.to_string(),
        sampled_key: sampled.key,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The nearest-rank `p`th percentile (0 < p <= 100) of some times.
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Serves the dashboard with `viewer` on a free port; returns its base URL.
async fn serve(store: &Store, viewer: Viewer) -> Result<String> {
    let ctx = context(store)?;
    let (_tx, leader) = tokio::sync::watch::channel(true);
    let state = AppState::new(ctx, leader, IngestLimits::default(), Default::default());
    let app = cloudgov::http::web::routes()
        .layer(axum::Extension(viewer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// One fetch of `path`: seconds and size.
async fn fetch(client: &reqwest::Client, base: &str, path: &str) -> Result<(f64, usize)> {
    let t = Instant::now();
    let resp = client.get(format!("{base}{path}")).send().await?;
    ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
    let size = resp.bytes().await?.len();
    Ok((t.elapsed().as_secs_f64(), size))
}

/// `path` fetched once to warm up, then `runs` times: the seconds of each, and the size.
async fn time_page(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    runs: usize,
) -> Result<(Vec<f64>, usize)> {
    let (_, size) = fetch(client, base, path).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(fetch(client, base, path).await?.0);
    }
    Ok((times, size))
}

/// Median seconds of a reference `SELECT count(*) ...` with bound text/integer parameters.
async fn time_reference(pool: &RawPool, sql: &str, binds: &[Bind]) -> Result<(f64, i64)> {
    on_raw!(pool, p => {
        let once = || async {
            let mut q = sqlx::query_scalar::<_, i64>(sql);
            for b in binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            q.fetch_one(p).await
        };
        let n = once().await?;
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            once().await?;
            times.push(t.elapsed().as_secs_f64());
        }
        Ok((median(times), n))
    })
}

/// A reference query: SQL, its parameters, and what it counts.
type Reference = (String, Vec<Bind>, &'static str);

enum Bind {
    Text(String),
    Int(i64),
}

async fn run(url: &str, vms: usize, days: usize) -> Result<()> {
    let seeded = seed(url, vms, days).await?;
    let staff = Viewer {
        user_id: 1,
        username: "ops".into(),
        role: Role::Operator,
        scope: Scope::All,
        csrf: Some("bench".into()),
    };
    let department = Viewer {
        user_id: 2,
        username: "dept".into(),
        role: Role::Department,
        scope: Scope::Department(DepartmentId::try_from("dept-03")?),
        csrf: Some("bench".into()),
    };
    let staff_base = serve(&seeded.store, staff).await?;
    let dept_base = serve(&seeded.store, department).await?;
    // reqwest is built without a default crypto provider (plain HTTP here, but it asks).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build()?;
    let vm = &seeded.sampled_vm;
    // The days the 30-day chart reads (`usage_buckets`: the Shanghai days of now - 30 d ..= now).
    let now = Utc::now().timestamp();
    let (chart_from, chart_to) = (shanghai_day_of(now - 30 * 86_400), shanghai_day_of(now));
    let findings_ref = (
        "SELECT count(*) FROM findings".to_owned(),
        vec![],
        "count(*) of findings",
    );
    let dept_ref = (
        "SELECT count(*) FROM vms v JOIN projects p ON p.id = v.project_id WHERE p.department_id = $1"
            .to_owned(),
        vec![Bind::Text("dept-03".into())],
        "count(*) of the department's VMs",
    );
    let project_ref = (
        "SELECT count(*) FROM vms WHERE project_id = $1".to_owned(),
        vec![Bind::Text("proj-003".into())],
        "count(*) of the project's VMs",
    );
    let chart_ref = (
        "SELECT count(*) FROM usage_days WHERE vm_key = $1 AND day >= $2 AND day <= $3".to_owned(),
        vec![
            Bind::Int(seeded.sampled_key),
            Bind::Text(chart_from.to_string()),
            Bind::Text(chart_to.to_string()),
        ],
        "count(*) of the VM's 30-day usage_days",
    );
    let days_ref = (
        "SELECT count(*) FROM usage_days WHERE vm_key = $1".to_owned(),
        vec![Bind::Int(seeded.sampled_key)],
        "count(*) of the VM's usage_days",
    );
    let notices_ref = (
        "SELECT count(*) FROM notices WHERE closed_at IS NULL".to_owned(),
        vec![],
        "count(*) of open notices",
    );
    let pages: Vec<(&str, &str, String, &Reference)> = vec![
        (
            "fleet overview (staff)",
            &staff_base,
            "/".into(),
            &findings_ref,
        ),
        (
            "fleet overview (department user)",
            &dept_base,
            "/".into(),
            &dept_ref,
        ),
        (
            "department page",
            &staff_base,
            "/departments/dept-03".into(),
            &dept_ref,
        ),
        (
            "project page",
            &staff_base,
            "/projects/proj-003".into(),
            &project_ref,
        ),
        (
            "VM page, 30 days",
            &staff_base,
            format!("/vms/{vm}?days=30"),
            &chart_ref,
        ),
        (
            "VM page, 365 days",
            &staff_base,
            format!("/vms/{vm}?days=365"),
            &days_ref,
        ),
        (
            "notices (open, first 500)",
            &staff_base,
            "/notices".into(),
            &notices_ref,
        ),
    ];
    let reference_pool = raw_pool(url).await?;
    println!(
        "\n  {:<34} {:>10} {:>8} {:>9}   {:<40} {:>10} {:>8} {:>7}",
        "page", "median ms", "p95 ms", "KiB", "reference", "median ms", "rows", "ratio"
    );
    for (name, base, path, (sql, binds, ref_name)) in pages {
        let (times, size) = time_page(&client, base, &path, RUNS).await?;
        let (p95, page_secs) = (percentile(times.clone(), 95.0), median(times));
        let (ref_secs, rows) = time_reference(&reference_pool, sql, binds).await?;
        println!(
            "  {name:<34} {:>10.2} {:>8.2} {:>9.1}   {ref_name:<40} {:>10.3} {rows:>8} {:>7.0}",
            page_secs * 1000.0,
            p95 * 1000.0,
            size as f64 / 1024.0,
            ref_secs * 1000.0,
            page_secs / ref_secs.max(1e-9)
        );
    }
    on_raw!(&reference_pool, p => p.close().await);
    p95_pages(&client, &staff_base, &seeded.vm_ids).await?;
    fleet_breakdown(&seeded.store).await?;
    seeded.store.close().await;
    Ok(())
}

/// The p95 figures: the staff overview fetched [`P95_RUNS`] times, and the 30-day VM page of
/// [`P95_RUNS`] VMs spread evenly over the fleet, once each (after a warm-up of another VM).
async fn p95_pages(client: &reqwest::Client, staff_base: &str, vm_ids: &[String]) -> Result<()> {
    let (overview, _) = time_page(client, staff_base, "/", P95_RUNS).await?;
    let last = vm_ids.last().context("no VMs")?;
    fetch(client, staff_base, &format!("/vms/{last}?days=30")).await?;
    let mut vm_pages = Vec::with_capacity(P95_RUNS);
    for i in 0..P95_RUNS {
        let vm = &vm_ids[i * vm_ids.len() / P95_RUNS];
        vm_pages.push(
            fetch(client, staff_base, &format!("/vms/{vm}?days=30"))
                .await?
                .0,
        );
    }
    println!(
        "\n  p95 at {} VMs ({P95_RUNS} fetches each):          {:>8} {:>8} {:>8}",
        vm_ids.len(),
        "p50 ms",
        "p95 ms",
        "max ms"
    );
    for (name, times) in [
        (
            format!("fleet overview (staff), {P95_RUNS} times"),
            overview,
        ),
        (format!("VM page, 30-day chart, {P95_RUNS} VMs"), vm_pages),
    ] {
        println!(
            "    {name:<46} {:>8.2} {:>8.2} {:>8.2}",
            percentile(times.clone(), 50.0) * 1000.0,
            percentile(times.clone(), 95.0) * 1000.0,
            percentile(times, 100.0) * 1000.0
        );
    }
    Ok(())
}

/// Where the staff fleet overview's time goes: each of its store queries alone, median of `RUNS`.
async fn fleet_breakdown(store: &Store) -> Result<()> {
    let today = cloudgov::core::calendar::shanghai_day(Utc::now());
    println!("\n  fleet overview (staff), its queries alone:");
    macro_rules! part {
        ($name:expr, $call:expr) => {{
            $call.await?;
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                $call.await?;
                times.push(t.elapsed().as_secs_f64());
            }
            println!("    {:<44} {:>8.2} ms", $name, median(times) * 1000.0);
        }};
    }
    part!("verdict_counts", store.verdict_counts(None, None));
    part!("waste", store.waste(None, None, 50.0));
    part!("deadline_counts", store.deadline_counts(None, None, today));
    part!(
        "department_summaries (4 grouped queries)",
        store.department_summaries(None, None, today)
    );
    part!(
        "downsize_candidates (top 20)",
        store.downsize_candidates(None, cloudgov::store::VmFilter::default(), 20)
    );
    Ok(())
}

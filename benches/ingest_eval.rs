//! Ingest and evaluation benchmark (a benchmark, not a timed test: it prints figures and never
//! fails on them). Everything runs in this process against throwaway databases on 127.0.0.1.
//!
//! 1. Ingest: the daemon (`Daemon::start`) serves `POST /api/v1/ingest`; simulated agents (one
//!    token per VM, a fixed number of requests in flight) post batches of realistic reports.
//!    Reported: reports/s, samples/s, request latency p50/p99, errors (should be 0).
//! 2. Reference: the same rows, in the same order, written by raw sqlx into a fresh database with
//!    the daemon's schema and connection settings (SQLite: WAL, synchronous=FULL), from one
//!    writer: once as one multi-row INSERT per transaction of the ingest's batch size, once in
//!    bulk (SQLite: 1000-row INSERTs in one transaction; PostgreSQL: `COPY ... FROM STDIN`).
//!    To show where the ingest's time goes, the same batches also go straight to
//!    `Store::ingest_batch` (what the handler's writer does, one commit a batch, no HTTP), from
//!    one caller and from as many as the ingest had requests in flight.
//!
//! The evaluation at province scale is `benches/scale.rs`.
//!
//! With `CLOUDGOV_BENCH_REPLICAS=N` (PostgreSQL only, N > 1), part 1 runs N real `cloudgov serve`
//! processes on one fresh database instead of the in-process daemon, each agent pinned to replica
//! `agent % N`; part 2 follows with the same rows (COPY among them).
//!
//! Rerun: `cargo bench --bench ingest_eval`. Knobs: `CLOUDGOV_BENCH_SCALE` (default 1.0) scales
//! the VM counts, e.g. 0.05 for a quick run; `CLOUDGOV_BENCH_DB=postgres` runs against PostgreSQL
//! at `CLOUDGOV_BENCH_PG` (default postgres://postgres@127.0.0.1:5432) in databases
//! `cloudgov_bench_<pid>_*`, dropped at the end. Figures are recorded in BENCHMARKS.md.

mod common;
use common::noise;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::body::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use cloudgov::core::calendar::Calendar;
use cloudgov::core::domain::VmId;
use cloudgov::core::inventory::Inventory;
use cloudgov::core::rules::RuleSet;
use cloudgov::core::samples::SampleRow;
use cloudgov::core::token;
use cloudgov::daemon::scheduler::CronExpr;
use cloudgov::daemon::{Daemon, Schedule};
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::{AgentBatch, ClockReading, Store};
use cloudgov_agent::wire::{
    Address, AddressConfig, Capacity, Filesystem, HostIdentity, INGEST_PATH, IngestAck,
    IngestBatch, Interface, Report,
};
use sqlx::postgres::{PgPoolCopyExt, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};

/// VMs (one agent each) in the ingest run, before scaling.
const INGEST_VMS: f64 = 200.0;
/// Reports each agent sends: one a minute, ending now; 25 hours, an agent back after a day's
/// outage. (Until 2026-11-26 it was 500: on PostgreSQL that part ran under a second, and its
/// figure was mostly the daemon's first requests, new connections and statements.)
const REPORTS_PER_VM: usize = 1500;
const REPORT_INTERVAL_SECS: i64 = 60;
/// Reports per request, and rows per transaction in the batch-sized reference.
const REPORTS_PER_BATCH: usize = 100;
/// Requests in flight at once.
const CONCURRENT_AGENTS: usize = 32;
/// The ingest run stops sending after this, whatever is left.
const INGEST_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Rows per statement in SQLite bulk loads.
const BULK_ROWS_PER_STATEMENT: usize = 1000;
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432";
/// The daemon's scheduled jobs must not fire during the measurement.
const NEVER: &str = "0 0 0 1 1 * 2099";
const INSERT_SAMPLES: &str = "INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct, \
     net_rx_bps, net_tx_bps, inbound_connections) ";
const COPY_SAMPLES: &str = "COPY samples (vm_key, ts, cpu_pct, mem_pct, disk_pct, net_rx_bps, \
     net_tx_bps, inbound_connections) FROM STDIN";

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::from_env()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut dbs = Databases::new(&config)?;
    println!("cloudgov benchmark: ingest throughput and evaluation time");
    println!(
        "  machine: {} CPUs; database: {}; scale {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dbs.describe(),
        config.scale
    );
    let outcome = run_all(&config, &mut dbs).await;
    dbs.drop_all().await?;
    outcome?;
    println!();
    println!("Rerun: {}", config.rerun_command());
    Ok(())
}

async fn run_all(config: &Config, dbs: &mut Databases) -> Result<()> {
    let ingest = ingest_benchmark(config, dbs).await?;
    reference_benchmark(dbs, &ingest).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Config {
    scale: f64,
    backend: Backend,
    pg_server: String,
    /// 1: the in-process daemon; more: that many `cloudgov serve` processes on one database.
    replicas: usize,
}

impl Config {
    fn from_env() -> Result<Config> {
        let scale = match std::env::var("CLOUDGOV_BENCH_SCALE") {
            Ok(text) => text
                .trim()
                .parse::<f64>()
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
        let replicas = match std::env::var("CLOUDGOV_BENCH_REPLICAS") {
            Ok(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .with_context(|| {
                    format!(
                        "CLOUDGOV_BENCH_REPLICAS={text:?} is not a number of replicas (1 or more)"
                    )
                })?,
            Err(_) => 1,
        };
        ensure!(
            replicas == 1 || backend == Backend::Postgres,
            "CLOUDGOV_BENCH_REPLICAS={replicas} needs CLOUDGOV_BENCH_DB=postgres: replicas share \
             one PostgreSQL database (a SQLite file belongs to one process)"
        );
        Ok(Config {
            scale,
            backend,
            pg_server,
            replicas,
        })
    }

    /// `base` scaled, at least 2.
    fn scaled(&self, base: f64) -> usize {
        ((base * self.scale).round() as usize).max(2)
    }

    fn rerun_command(&self) -> String {
        let mut command = String::new();
        if self.scale != 1.0 {
            command += &format!("CLOUDGOV_BENCH_SCALE={} ", self.scale);
        }
        if self.backend == Backend::Postgres {
            command += "CLOUDGOV_BENCH_DB=postgres ";
            if self.pg_server != DEFAULT_PG {
                command += &format!("CLOUDGOV_BENCH_PG={} ", self.pg_server);
            }
        }
        if self.replicas > 1 {
            command += &format!("CLOUDGOV_BENCH_REPLICAS={} ", self.replicas);
        }
        command + "cargo bench --bench ingest_eval"
    }
}

/// Throwaway databases: SQLite files in a temporary directory, or PostgreSQL databases that
/// [`Databases::drop_all`] removes.
struct Databases {
    backend: Backend,
    dir: tempfile::TempDir,
    pg_server: String,
    created: Vec<String>,
}

impl Databases {
    fn new(config: &Config) -> Result<Databases> {
        Ok(Databases {
            backend: config.backend,
            dir: tempfile::tempdir()?,
            pg_server: config.pg_server.clone(),
            created: Vec::new(),
        })
    }

    fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!(
                "SQLite (WAL, synchronous=FULL) files in {}",
                self.dir.path().display()
            ),
            Backend::Postgres => format!(
                "PostgreSQL at {}, databases cloudgov_bench_{}_*",
                self.pg_server,
                std::process::id()
            ),
        }
    }

    /// The URL of a new, empty database named after `name`.
    async fn fresh(&mut self, name: &str) -> Result<String> {
        match self.backend {
            Backend::Sqlite => Ok(format!(
                "sqlite://{}",
                self.dir.path().join(format!("{name}.db")).display()
            )),
            Backend::Postgres => {
                let db = format!("cloudgov_bench_{}_{name}", std::process::id());
                self.pg_admin(&[
                    format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                    format!("CREATE DATABASE {db}"),
                ])
                .await?;
                self.created.push(db.clone());
                Ok(format!("{}/{db}", self.pg_server))
            }
        }
    }

    async fn drop_all(&mut self) -> Result<()> {
        let drops: Vec<String> = self
            .created
            .drain(..)
            .map(|db| format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .collect();
        if !drops.is_empty() {
            self.pg_admin(&drops).await?;
        }
        Ok(())
    }

    async fn pg_admin(&self, statements: &[String]) -> Result<()> {
        let url = format!("{}/postgres", self.pg_server);
        let mut admin = sqlx::PgConnection::connect(&url)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        for statement in statements {
            sqlx::query(statement).execute(&mut admin).await?;
        }
        admin.close().await?;
        Ok(())
    }
}

/// A plain sqlx pool, for the reference loads and for filling the evaluated database.
enum RawPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block on whichever pool `RawPool` holds (compiled once per backend).
macro_rules! on_raw_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            RawPool::Sqlite($p) => $body,
            RawPool::Postgres($p) => $body,
        }
    };
}

/// Opens `url` with the daemon's connection settings and a single connection: one writer.
async fn open_raw_pool(url: &str) -> Result<RawPool> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(RawPool::Sqlite(pool))
    } else {
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
        Ok(RawPool::Postgres(pool))
    }
}

/// A fresh database whose schema the daemon's own migrations created, opened as a raw pool.
async fn fresh_raw_pool(dbs: &mut Databases, name: &str) -> Result<RawPool> {
    let url = dbs.fresh(name).await?;
    Store::connect(&url).await?.close().await;
    open_raw_pool(&url).await
}

async fn close_raw_pool(pool: RawPool) {
    on_raw_pool!(pool, p => p.close().await)
}

async fn count_samples(pool: &RawPool) -> Result<i64> {
    let (n,): (i64,) = on_raw_pool!(pool, p => sqlx::query_as("SELECT COUNT(*) FROM samples")
        .fetch_one(p).await)?;
    Ok(n)
}

/// Writes `rows` in one transaction as multi-row INSERTs of at most `per_statement` rows, with
/// the daemon's conflict rule (a sample already stored is skipped).
async fn insert_in_transaction(
    pool: &RawPool,
    rows: &[SampleRow],
    per_statement: usize,
) -> Result<()> {
    on_raw_pool!(pool, p => {
        let mut tx = p.begin().await?;
        for chunk in rows.chunks(per_statement) {
            let mut insert = sqlx::QueryBuilder::new(INSERT_SAMPLES);
            insert.push_values(chunk, |mut row, r| {
                let s = &r.sample;
                row.push_bind(r.vm_key)
                    .push_bind(s.ts)
                    .push_bind(s.cpu.percent())
                    .push_bind(s.mem.percent())
                    .push_bind(s.disk.map(|d| d.percent()))
                    .push_bind(s.net_rx_bps.map(|v| v as i64))
                    .push_bind(s.net_tx_bps.map(|v| v as i64))
                    .push_bind(s.inbound_connections.map(i64::from));
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// The fastest plain load each backend offers: SQLite, one transaction of 1000-row INSERTs;
/// PostgreSQL, one `COPY ... FROM STDIN` (text format).
async fn bulk_load(pool: &RawPool, rows: &[SampleRow]) -> Result<()> {
    match pool {
        RawPool::Sqlite(_) => insert_in_transaction(pool, rows, BULK_ROWS_PER_STATEMENT).await,
        RawPool::Postgres(p) => copy_in(p, rows).await,
    }
}

fn bulk_load_name(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!("{BULK_ROWS_PER_STATEMENT}-row INSERTs in one transaction"),
        Backend::Postgres => "one COPY ... FROM STDIN".into(),
    }
}

async fn copy_in(pool: &PgPool, rows: &[SampleRow]) -> Result<()> {
    let mut copy = pool.copy_in_raw(COPY_SAMPLES).await?;
    let mut text = String::new();
    for chunk in rows.chunks(10_000) {
        text.clear();
        for r in chunk {
            let s = &r.sample;
            let null = |v: Option<String>| v.unwrap_or_else(|| "\\N".to_owned());
            writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.vm_key,
                s.ts,
                s.cpu.percent(),
                s.mem.percent(),
                null(s.disk.map(|d| d.percent().to_string())),
                null(s.net_rx_bps.map(|v| v.to_string())),
                null(s.net_tx_bps.map(|v| v.to_string())),
                null(s.inbound_connections.map(|v| v.to_string())),
            )?;
        }
        copy.send(text.as_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generated inventory and data

/// An inventory of `vms` VMs `bench-vm-NNNNN`, spread over 10 departments and 50 projects.
fn inventory_toml(vms: usize) -> String {
    let mut toml = String::new();
    for d in 0..10 {
        toml += &format!("[[department]]\nid = \"dept-{d:02}\"\nname = \"Department {d}\"\n\n");
    }
    for p in 0..50 {
        toml += &format!(
            "[[project]]\nid = \"proj-{p:02}\"\nname = \"Project {p}\"\ndepartment = \"dept-{:02}\"\n\n",
            p % 10
        );
    }
    for v in 0..vms {
        toml += &format!(
            "[[vm]]\nid = \"bench-vm-{v:05}\"\nproject = \"proj-{:02}\"\nvcpus = 4\nmemory_gib = 8\n\
             disk_gib = 100\ndelivered_on = 2025-01-06\ndeployed_on = 2025-01-10\n\n",
            v % 50
        );
    }
    toml
}

/// Opens `url` (migrating it) and imports an inventory of `vms` VMs; returns the store and the
/// VMs' (id, key) in id order, which is the order they were generated in.
async fn store_with_inventory(url: &str, vms: usize) -> Result<(Store, Vec<(VmId, i64)>)> {
    let store = Store::connect(url).await?;
    let inventory = Inventory::parse("benchmark inventory", &inventory_toml(vms))?;
    store.apply_inventory(&inventory).await?;
    let vms = store
        .vms()
        .await?
        .into_iter()
        .map(|v| (v.id, v.key))
        .collect();
    Ok((store, vms))
}

/// (cpu %, mem %, disk %) of VM `vm` at its `n`th sample. Idle, normal and hot VMs take turns,
/// so an evaluation finds downsize, ok and expand verdicts in equal parts.
fn usage(vm: usize, n: u64) -> (f64, f64, f64) {
    let (cpu, mem, disk) = match vm % 3 {
        0 => (8.0, 20.0, 30.0),
        1 => (45.0, 55.0, 60.0),
        _ => (85.0, 85.0, 80.0),
    };
    let jitter = |base: f64, salt: u64, spread: f64| {
        (base + (noise(vm as u64, n * 4 + salt) - 0.5) * spread).clamp(0.0, 100.0)
    };
    (
        jitter(cpu, 0, 20.0),
        jitter(mem, 1, 10.0),
        jitter(disk, 2, 2.0),
    )
}

/// What a real agent on VM `vm` (index `index`) sends: one root filesystem, a loopback and an
/// Ethernet interface with IPv4 and IPv6 addresses.
fn agent_report(vm: &VmId, index: usize, seq: u64, at: DateTime<Utc>) -> Report {
    const GIB: u64 = 1 << 30;
    let (cpu, mem, disk) = usage(index, seq);
    let disk_total = 100 * GIB;
    let [hi, lo] = (index as u16).to_be_bytes();
    Report {
        seq,
        collected_at: at,
        host: HostIdentity {
            hostname: vm.to_string(),
            machine_id: Some(format!("{:032x}", index as u128 * 0x9E37_79B9_7F4A_7C15)),
            os: "Linux 12 Debian GNU/Linux".into(),
            agent_version: "0.1.0".into(),
        },
        cpu_pct: cpu,
        mem_pct: mem,
        filesystems: vec![Filesystem {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            device: "/dev/vda1".into(),
            total_bytes: disk_total,
            used_bytes: (disk_total as f64 * disk / 100.0) as u64,
        }],
        capacity: Capacity {
            vcpus: 4,
            memory_bytes: 8 * GIB,
            disk_bytes: disk_total,
        },
        interfaces: vec![
            Interface {
                name: "lo".into(),
                mac: None,
                addresses: vec![
                    address(IpAddr::V4(Ipv4Addr::LOCALHOST), 8, AddressConfig::Unknown),
                    address(IpAddr::V6(Ipv6Addr::LOCALHOST), 128, AddressConfig::Unknown),
                ],
            },
            Interface {
                name: "eth0".into(),
                mac: Some(format!("52:54:00:12:{hi:02x}:{lo:02x}")),
                addresses: vec![
                    address(
                        IpAddr::V4(Ipv4Addr::new(10, 20, hi, lo)),
                        16,
                        AddressConfig::Static,
                    ),
                    address(
                        IpAddr::V6(Ipv6Addr::new(
                            0xfe80,
                            0,
                            0,
                            0,
                            0x5054,
                            0xff,
                            0xfe12,
                            u16::from_be_bytes([hi, lo]),
                        )),
                        64,
                        AddressConfig::Unknown,
                    ),
                ],
            },
        ],
        neighbours: Vec::new(),
        net_rx_bps: None,
        net_tx_bps: None,
        inbound_connections: None,
    }
}

fn address(ip: IpAddr, prefix: u8, config: AddressConfig) -> Address {
    Address {
        ip,
        prefix,
        config,
        config_source: (config == AddressConfig::Static).then(|| "/etc/network/interfaces".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Part 1: ingest through the daemon

/// One request of the ingest run: whose token it carries, its JSON body, and what the daemon
/// passes to the store for it.
struct PlannedBatch {
    agent: usize,
    /// Shared, not copied, on every send: the load generator should cost as little as it can.
    body: Bytes,
    stored: AgentBatch,
}

/// Every agent's reports, one a minute up to `now`, cut into batches and ordered round by round
/// (every agent's first batch, then every agent's second, ...), as agents reporting in parallel.
fn plan_ingest(vms: &[(VmId, i64)], now: DateTime<Utc>) -> Result<Vec<PlannedBatch>> {
    let first = now - TimeDelta::seconds(REPORT_INTERVAL_SECS * REPORTS_PER_VM as i64);
    let mut plan = Vec::new();
    for round in 0..REPORTS_PER_VM / REPORTS_PER_BATCH {
        for (agent, (vm, key)) in vms.iter().enumerate() {
            let reports: Vec<Report> = (1..=REPORTS_PER_BATCH)
                .map(|i| {
                    let seq = (round * REPORTS_PER_BATCH + i) as u64;
                    let at = first + TimeDelta::seconds(REPORT_INTERVAL_SECS * seq as i64);
                    agent_report(vm, agent, seq, at)
                })
                .collect();
            // The handler's own check, so the direct store calls store what HTTP would. The
            // batch carries its send time, as an agent stamps it.
            let clock = ClockReading {
                offset_secs: 0,
                within_limit: true,
            };
            let stored = cloudgov::http::check_batch(&reports, *key, vm.as_str(), now, Some(clock))
                .map_err(anyhow::Error::msg)?;
            let mut batch = IngestBatch::new(reports);
            batch.sent_at = Some(now);
            plan.push(PlannedBatch {
                agent,
                body: Bytes::from(serde_json::to_vec(&batch)?),
                stored,
            });
        }
    }
    Ok(plan)
}

/// What the callers of a concurrent run saw.
#[derive(Default)]
struct RunStats {
    latencies: Vec<Duration>,
    errors: usize,
    first_errors: Vec<String>,
    accepted: usize,
    duplicates: usize,
}

impl RunStats {
    fn record_error(&mut self, message: String) {
        self.errors += 1;
        if self.first_errors.len() < 5 {
            self.first_errors.push(message);
        }
    }

    fn merge(&mut self, other: RunStats) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for message in other.first_errors {
            if self.first_errors.len() < 5 {
                self.first_errors.push(message);
            }
        }
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
    }
}

/// What part 2 needs from part 1: what the ingest wrote, batch by batch, and its rate.
struct IngestOutcome {
    vm_count: usize,
    batches: Vec<AgentBatch>,
    samples_per_sec: f64,
    backend: Backend,
}

async fn ingest_benchmark(config: &Config, dbs: &mut Databases) -> Result<IngestOutcome> {
    let vm_count = config.scaled(INGEST_VMS);
    let url = dbs.fresh("ingest").await?;
    let (store, vms) = store_with_inventory(&url, vm_count).await?;
    let mut tokens = Vec::with_capacity(vms.len());
    for (vm, _) in &vms {
        let secret = token::generate()?;
        store.add_agent_token(vm, &token::hash(&secret)).await?;
        tokens.push(secret);
    }
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).context("clock")?;
    let plan = Arc::new(plan_ingest(&vms, now)?);
    let planned_reports = plan.len() * REPORTS_PER_BATCH;
    let body_bytes: usize = plan.iter().map(|b| b.body.len()).sum();

    let mut daemon = None;
    let mut replicas = Vec::new();
    let bases: Vec<String> = if config.replicas > 1 {
        for _ in 0..config.replicas {
            replicas.push(Replica::start(&url)?);
        }
        replicas.iter().map(|r| r.base.clone()).collect()
    } else {
        let started = start_daemon(&store).await?;
        let base = format!("http://{}", started.addr);
        daemon = Some(started);
        vec![base]
    };
    println!();
    if config.replicas > 1 {
        println!(
            "Part 1: ingest through {} `cloudgov serve` processes on one database (POST {INGEST_PATH} \
             on {}); agent i posts to replica i mod {}",
            bases.len(),
            bases.join(", "),
            bases.len()
        );
    } else {
        println!(
            "Part 1: ingest through the daemon (POST {INGEST_PATH} on {})",
            bases[0]
        );
    }
    println!(
        "  {vm_count} VMs with one token each, {planned_reports} reports planned ({REPORTS_PER_VM} per VM, \
         one a minute), {REPORTS_PER_BATCH} per request, {CONCURRENT_AGENTS} requests in flight, \
         stop after {} s; {} bytes of JSON per report",
        INGEST_TIME_LIMIT.as_secs(),
        body_bytes / planned_reports.max(1)
    );
    let (mut stats, sent, elapsed) = run_agents(bases, Arc::new(tokens), plan.clone()).await?;
    if let Some(daemon) = daemon {
        daemon.stop().await?;
    }
    drop(replicas);
    let stored = store.count_samples(None).await?;
    store.close().await;

    let reports = sent * REPORTS_PER_BATCH;
    let secs = elapsed.as_secs_f64();
    let samples_per_sec = stats.accepted as f64 / secs;
    stats.latencies.sort_unstable();
    let limit_note = if sent < plan.len() {
        " (time limit reached)"
    } else {
        ""
    };
    println!(
        "  sent {sent} requests = {reports} reports in {secs:.2} s{limit_note}; accepted {}, \
         duplicates {}, stored {stored}",
        stats.accepted, stats.duplicates
    );
    println!(
        "  throughput: {:.0} reports/s, {samples_per_sec:.0} samples/s",
        reports as f64 / secs
    );
    println!(
        "  request latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        millis(percentile(&stats.latencies, 50.0)),
        millis(percentile(&stats.latencies, 99.0)),
        millis(stats.latencies.last().copied().unwrap_or_default())
    );
    println!("  errors: {}", stats.errors);
    for message in &stats.first_errors {
        println!("    {message}");
    }
    let batches = plan[..sent].iter().map(|b| b.stored.clone()).collect();
    Ok(IngestOutcome {
        vm_count,
        batches,
        samples_per_sec,
        backend: config.backend,
    })
}

/// The daemon on a free port of 127.0.0.1 with the built-in rules and calendar and no SMTP, its
/// scheduled jobs pushed out of the measurement (the outbox sender still polls every 15 s).
async fn start_daemon(store: &Store) -> Result<Daemon> {
    let never = CronExpr::try_from(NEVER).map_err(anyhow::Error::msg)?;
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin()?),
        calendar: Arc::new(Calendar::builtin()?),
        notifier: Arc::new(Notifier::without_smtp()?),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()?.prices,
    };
    let schedule = Schedule {
        evaluate: never.clone(),
        deadlines: never,
        review: None,
        ..Default::default()
    };
    Daemon::start(ctx, "127.0.0.1:0".parse()?, schedule).await
}

/// One `cloudgov serve` process (the real binary) on a free port of 127.0.0.1, its scheduled jobs
/// pushed out of the measurement; killed when dropped.
struct Replica {
    child: Child,
    base: String,
    /// Kept open so the process never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Replica {
    fn start(db_url: &str) -> Result<Replica> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
            .args(["--db", db_url, "serve", "--listen", "127.0.0.1:0"])
            .args(["--evaluate-cron", NEVER, "--deadlines-cron", NEVER])
            .args(["--review-cron", NEVER])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start `cloudgov serve`")?;
        let mut stdout = BufReader::new(child.stdout.take().context("replica stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(base) = line.trim().strip_prefix("cloudgov listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`cloudgov serve` did not start: {line:?}");
        };
        Ok(Replica {
            base: base.to_owned(),
            child,
            _stdout: stdout,
        })
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts the planned batches, as agents would, until all are sent or the time limit passes.
/// Agent `a` posts to `bases[a % bases.len()]`.
async fn run_agents(
    bases: Vec<String>,
    tokens: Arc<Vec<String>>,
    plan: Arc<Vec<PlannedBatch>>,
) -> Result<(RunStats, usize, Duration)> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENT_AGENTS)
        .build()?;
    let urls: Arc<Vec<String>> = Arc::new(
        bases
            .iter()
            .map(|base| format!("{base}{INGEST_PATH}"))
            .collect(),
    );
    let count = plan.len();
    let post = move |i: usize| {
        let (client, urls, tokens, plan) =
            (client.clone(), urls.clone(), tokens.clone(), plan.clone());
        async move {
            let batch = &plan[i];
            let url = &urls[batch.agent % urls.len()];
            let ack = post_batch(&client, url, &tokens[batch.agent], &batch.body).await?;
            Ok((ack.accepted, ack.duplicates))
        }
    };
    Ok(run_concurrently(CONCURRENT_AGENTS, count, post).await)
}

/// Runs `job(0)`, `job(1)`, ... `job(count - 1)` with `in_flight` at a time, until all are done
/// or [`INGEST_TIME_LIMIT`] has passed; each job returns (accepted, duplicates). Returns the
/// statistics, how many jobs were started (always a prefix), and the wall time.
async fn run_concurrently<F, Fut>(
    in_flight: usize,
    count: usize,
    job: F,
) -> (RunStats, usize, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(usize, usize)>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + INGEST_TIME_LIMIT;
    let workers: Vec<_> = (0..in_flight)
        .map(|_| tokio::spawn(run_jobs(job.clone(), next.clone(), count, deadline)))
        .collect();
    let mut stats = RunStats::default();
    for worker in workers {
        match worker.await {
            Ok(worker_stats) => stats.merge(worker_stats),
            Err(e) => stats.record_error(format!("worker panicked: {e}")),
        }
    }
    let elapsed = started.elapsed();
    (stats, next.load(Ordering::Relaxed).min(count), elapsed)
}

/// One caller of [`run_concurrently`]: takes the next job until none is left or time is up.
async fn run_jobs<F, Fut>(
    job: F,
    next: Arc<AtomicUsize>,
    count: usize,
    deadline: Instant,
) -> RunStats
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(usize, usize)>>,
{
    let mut stats = RunStats::default();
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            break;
        }
        let sent = Instant::now();
        let outcome = job(i).await;
        stats.latencies.push(sent.elapsed());
        match outcome {
            Ok((accepted, duplicates)) => {
                stats.accepted += accepted;
                stats.duplicates += duplicates;
            }
            Err(e) => stats.record_error(format!("job {i}: {e:#}")),
        }
    }
    stats
}

async fn post_batch(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Bytes,
) -> Result<IngestAck> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(response.json().await?)
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// Part 2: the same rows without the daemon's HTTP layer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Raw sqlx, one writer: one multi-row INSERT per transaction, batch by batch.
    RawIngestSized,
    /// Raw sqlx, one writer: all rows at once, the backend's fastest way.
    RawBulk,
    /// `Store::ingest_batch` (the handler's writer, one commit a batch) batch by batch, one
    /// caller.
    StoreOneCaller,
    /// The same with as many callers as the ingest had requests in flight.
    StoreConcurrent,
}

impl Load {
    fn label(self, backend: Backend) -> String {
        match self {
            Load::RawIngestSized => {
                format!("raw sqlx, {REPORTS_PER_BATCH} rows per INSERT, one transaction each")
            }
            Load::RawBulk => format!("raw sqlx, {}", bulk_load_name(backend)),
            Load::StoreOneCaller => "cloudgov Store::ingest_batch, 1 caller".into(),
            Load::StoreConcurrent => {
                format!("cloudgov Store::ingest_batch, {CONCURRENT_AGENTS} callers")
            }
        }
    }
}

async fn reference_benchmark(dbs: &mut Databases, ingest: &IngestOutcome) -> Result<()> {
    let rows: usize = ingest.batches.iter().map(|b| b.samples.len()).sum();
    println!();
    println!(
        "Part 2: the same {rows} rows, in the same order, into fresh databases with the daemon's \
         schema and settings"
    );
    for load in [
        Load::RawIngestSized,
        Load::RawBulk,
        Load::StoreOneCaller,
        Load::StoreConcurrent,
    ] {
        let name = format!("{load:?}").to_lowercase();
        let elapsed = match load {
            Load::RawIngestSized | Load::RawBulk => {
                time_raw_load(dbs, &name, load == Load::RawBulk, &ingest.batches).await?
            }
            Load::StoreOneCaller => time_store_load(dbs, &name, 1, ingest).await?,
            Load::StoreConcurrent => time_store_load(dbs, &name, CONCURRENT_AGENTS, ingest).await?,
        };
        let rows_per_sec = rows as f64 / elapsed.as_secs_f64();
        println!(
            "  {}: {:.3} s, {rows_per_sec:.0} rows/s; cloudgov ingest / this = {:.3}",
            load.label(ingest.backend),
            elapsed.as_secs_f64(),
            ingest.samples_per_sec / rows_per_sec
        );
    }
    Ok(())
}

/// Writes the samples of `batches` by raw sqlx into a fresh database, batch by batch or in bulk;
/// returns the time the writing took.
async fn time_raw_load(
    dbs: &mut Databases,
    name: &str,
    bulk: bool,
    batches: &[AgentBatch],
) -> Result<Duration> {
    let pool = fresh_raw_pool(dbs, name).await?;
    let row_batches: Vec<Vec<SampleRow>> = batches.iter().map(|b| b.samples.clone()).collect();
    let all_rows = row_batches.concat();
    let started = Instant::now();
    if bulk {
        bulk_load(&pool, &all_rows).await?;
    } else {
        for rows in &row_batches {
            insert_in_transaction(&pool, rows, rows.len()).await?;
        }
    }
    let elapsed = started.elapsed();
    let stored = count_samples(&pool).await?;
    close_raw_pool(pool).await;
    check_stored(name, stored, all_rows.len())?;
    Ok(elapsed)
}

/// Passes `ingest`'s batches to `Store::ingest_batch` of a fresh database with the same
/// inventory, `in_flight` at a time; returns the time that took.
async fn time_store_load(
    dbs: &mut Databases,
    name: &str,
    in_flight: usize,
    ingest: &IngestOutcome,
) -> Result<Duration> {
    let url = dbs.fresh(name).await?;
    let (store, _) = store_with_inventory(&url, ingest.vm_count).await?;
    let batches = Arc::new(ingest.batches.clone());
    let count = batches.len();
    let job_store = store.clone();
    let ingest_batch = move |i: usize| {
        let (store, batches) = (job_store.clone(), batches.clone());
        async move {
            let (accepted, duplicates) = store.ingest_batch(&batches[i]).await?;
            Ok((accepted as usize, duplicates as usize))
        }
    };
    let (stats, started, elapsed) = run_concurrently(in_flight, count, ingest_batch).await;
    let stored = store.count_samples(None).await?;
    store.close().await;
    ensure!(
        stats.errors == 0 && started == count,
        "{name}: {} errors, {started} of {count} batches started: {:?}",
        stats.errors,
        stats.first_errors
    );
    check_stored(name, stored, count * REPORTS_PER_BATCH)?;
    Ok(elapsed)
}

fn check_stored(name: &str, stored: i64, expected: usize) -> Result<()> {
    ensure!(
        usize::try_from(stored) == Ok(expected),
        "{name} stored {stored} of {expected} rows"
    );
    Ok(())
}

/// The daemon's own allocator (`src/main.rs`), so the in-process daemon allocates as it does in
/// service.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

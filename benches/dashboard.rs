//! Web dashboard benchmark (a benchmark, not a timed test: it prints figures and never fails on
//! them): how long the fleet, department, project and VM pages take on a fleet of 10,000 VMs,
//! against a reference query each, in this process, against a throwaway database.
//!
//! 1. Setup: a fresh database (`Store::connect`, the daemon's migrations) with 10,000 VMs in 200
//!    projects (50 VMs each) of 10 departments (`Store::apply_inventory`); one evaluation
//!    (`Store::record_evaluation`, the evaluation job's write) giving every VM three findings,
//!    about 20 % CPU downsize, 10 % memory downsize, 5 % expand, 5 % insufficient data, each
//!    downsize/expand opening a notice; an adjustment deadline for every notice (a third of them
//!    overdue) and a deployment deadline for every 10th VM (`Store::create_deadlines`); and 30
//!    days of 5-minute samples (8,640 each) for 5 VMs (`Store::insert_samples`), rolled up
//!    (`Store::roll_up_days`). On PostgreSQL the database is then `ANALYZE`d, as autovacuum
//!    would have done for a running daemon.
//! 2. Pages: the dashboard routes served by axum on 127.0.0.1 behind a layer inserting a fixed
//!    staff `Viewer` (or a department one), fetched with reqwest over one kept-alive connection:
//!    `/` as staff and as a department user, `/departments/{id}`, `/projects/{id}`,
//!    `/vms/{id}?days=30` and `?days=365`, `/notices`. Each is fetched once to warm up, then
//!    `RUNS` times; the median is reported with the page size.
//! 3. Reference: in the same run, the plain query each page's main query needs, by raw sqlx on a
//!    separate pool, timed the same way: `SELECT count(*)` of the findings (fleet), of a
//!    department's VMs (index join), of a project's VMs, and of one VM's samples in the 30-day
//!    window (primary-key range). The ratio page / reference says how much the page costs over
//!    the cheapest read of the same rows.
//!
//! Rerun: `cargo bench --bench dashboard`; `CLOUDGOV_BENCH_DB=postgres` runs against PostgreSQL
//! at `CLOUDGOV_BENCH_PG` (default postgres://postgres@127.0.0.1:5432) in a database
//! `cloudgov_bench_dashboard_<pid>`, dropped at the end. `CLOUDGOV_BENCH_SCALE` (default 1.0)
//! scales the VM count. Figures are recorded in BENCHMARKS.md.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use cloudgov::core::access::{Role, Scope, Viewer};
use cloudgov::core::calendar::Calendar;
use cloudgov::core::domain::{DepartmentId, Resource, Verdict};
use cloudgov::core::inventory::Inventory;
use cloudgov::core::obligations::ObligationKind;
use cloudgov::core::rules::RuleSet;
use cloudgov::core::rules::evaluate::Finding;
use cloudgov::core::samples::SampleRow;
use cloudgov::http::{AppState, IngestLimits};
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::{NewDeadline, ObligationStart, Store, VmFindings};
use sqlx::Connection;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432";
const VMS: f64 = 10_000.0;
const VMS_PER_PROJECT: usize = 50;
const DEPARTMENTS: usize = 10;
/// VMs with 30 days of samples.
const SAMPLED_VMS: usize = 5;
const SAMPLE_STEP_SECS: i64 = 300;
/// Timed fetches per page; the median counts.
const RUNS: usize = 21;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[tokio::main]
async fn main() -> Result<()> {
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
    let vms = ((VMS * scale).round() as usize).max(VMS_PER_PROJECT);
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
    let result = run(&url, vms).await;
    if backend == Backend::Postgres {
        pg_admin(
            &pg_server,
            &[format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")],
        )
        .await?;
    }
    result?;
    let mut command = String::new();
    if scale != 1.0 {
        command += &format!("CLOUDGOV_BENCH_SCALE={scale} ");
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
        Verdict::Ok => (Some(25.0), Some("<= 25".to_owned())),
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

struct Seeded {
    store: Store,
    sampled_vm: String,
    window: (i64, i64),
    sampled_key: i64,
}

async fn seed(url: &str, vms: usize) -> Result<Seeded> {
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

    let t = Instant::now();
    let to = Utc::now().timestamp() / 3600 * 3600;
    let from = to - 30 * 86_400;
    let mut samples = 0;
    for vm in rows.iter().take(SAMPLED_VMS) {
        let batch: Vec<SampleRow> = (0..(to - from) / SAMPLE_STEP_SECS)
            .map(|i| {
                let ts = from + i * SAMPLE_STEP_SECS;
                let hour = (ts / 3600) % 24;
                let busy = if (1..=10).contains(&hour) { 30.0 } else { 5.0 };
                SampleRow {
                    vm_key: vm.key,
                    ts,
                    cpu_pct: busy + (i % 7) as f64,
                    mem_pct: 40.0 + (i % 11) as f64,
                    disk_pct: Some(55.0 + i as f64 / 1000.0),
                }
            })
            .collect();
        for chunk in batch.chunks(2000) {
            store.insert_samples(chunk).await?;
        }
        samples += batch.len();
        let first = DateTime::from_timestamp(from, 0)
            .context("time")?
            .date_naive();
        let last = DateTime::from_timestamp(to, 0)
            .context("time")?
            .date_naive();
        store.roll_up_days(vm.key, first, last).await?;
    }
    println!(
        "  seed: {samples} samples for {SAMPLED_VMS} VMs, rolled up, in {:.1} s",
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
        sampled_vm: sampled.id.to_string(),
        sampled_key: sampled.key,
        window: (from, to),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Serves the dashboard with `viewer` on a free port; returns its base URL.
async fn serve(store: &Store, viewer: Viewer) -> Result<String> {
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin()?),
        calendar: Arc::new(Calendar::builtin()?),
        notifier: Arc::new(Notifier::without_smtp()?),
    };
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

/// Median seconds and the size of `path`.
async fn time_page(client: &reqwest::Client, base: &str, path: &str) -> Result<(f64, usize)> {
    let fetch = || async {
        let resp = client.get(format!("{base}{path}")).send().await?;
        ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Ok::<_, anyhow::Error>(resp.bytes().await?.len())
    };
    let size = fetch().await?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        fetch().await?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((median(times), size))
}

/// Median seconds of a reference `SELECT count(*) ...` with bound text/integer parameters.
async fn time_reference(url: &str, sql: &str, binds: &[Bind]) -> Result<(f64, i64)> {
    macro_rules! run {
        ($pool:expr) => {{
            let once = || async {
                let mut q = sqlx::query_scalar::<_, i64>(sql);
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s.clone()),
                        Bind::Int(i) => q.bind(*i),
                    };
                }
                q.fetch_one(&$pool).await
            };
            let n = once().await?;
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                once().await?;
                times.push(t.elapsed().as_secs_f64());
            }
            Ok((median(times), n))
        }};
    }
    if url.starts_with("sqlite") {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        run!(pool)
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        run!(pool)
    }
}

/// A reference query: SQL, its parameters, and what it counts.
type Reference = (String, Vec<Bind>, &'static str);

enum Bind {
    Text(String),
    Int(i64),
}

async fn run(url: &str, vms: usize) -> Result<()> {
    let seeded = seed(url, vms).await?;
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
    let (from, to) = seeded.window;
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
    let samples_ref = (
        "SELECT count(*) FROM samples WHERE vm_key = $1 AND ts >= $2 AND ts < $3".to_owned(),
        vec![
            Bind::Int(seeded.sampled_key),
            Bind::Int(from),
            Bind::Int(to),
        ],
        "count(*) of the VM's 30-day samples",
    );
    let days_ref = (
        "SELECT count(*) FROM sample_days WHERE vm_key = $1".to_owned(),
        vec![Bind::Int(seeded.sampled_key)],
        "count(*) of the VM's rollup days",
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
            &samples_ref,
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
    println!(
        "\n  {:<34} {:>10} {:>9}   {:<38} {:>10} {:>8} {:>7}",
        "page", "median ms", "KiB", "reference", "median ms", "rows", "ratio"
    );
    for (name, base, path, (sql, binds, ref_name)) in pages {
        let (page_secs, size) = time_page(&client, base, &path).await?;
        let (ref_secs, rows) = time_reference(url, sql, binds).await?;
        println!(
            "  {name:<34} {:>10.2} {:>9.1}   {ref_name:<38} {:>10.3} {rows:>8} {:>7.0}",
            page_secs * 1000.0,
            size as f64 / 1024.0,
            ref_secs * 1000.0,
            page_secs / ref_secs.max(1e-9)
        );
    }
    fleet_breakdown(&seeded.store).await?;
    seeded.store.close().await;
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

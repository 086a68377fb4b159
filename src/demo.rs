//! `cloudgov demo`: the whole pipeline on one machine in one command.
//!
//! A fresh SQLite database, the demo inventory (`deploy/demo/inventory.toml`), 30 days of
//! simulated history for the fleet so that downsize and expansion findings exist at once, the
//! daemon, and this machine's own agent reporting to it in-process.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Asia::Shanghai;

use crate::access::Role;
use crate::calendar::Calendar;
use crate::cli::{DemoArgs, print_findings};
use crate::deadlines::DeadlineState;
use crate::domain::VmId;
use crate::evaluation::evaluate;
use crate::inventory::Inventory;
use crate::jobs::{JobContext, TickSummary, check_deadlines};
use crate::notify::Notifier;
use crate::rules::RuleSet;
use crate::serve::{Daemon, Schedule, termination_signal};
use crate::store::{SampleRow, Store};
use crate::views::deadlines_as_of;

pub const DEMO_INVENTORY: &str = include_str!("../deploy/demo/inventory.toml");
/// The demo VM that stands for the machine the demo runs on.
pub const THIS_HOST_VM: &str = "demo-this-host";

/// How a simulated VM behaves: a night-time base, a working-hours rise, and noise.
#[derive(Debug, Clone, Copy)]
struct Profile {
    vm: &'static str,
    cpu: (f64, f64),
    mem: (f64, f64),
    disk: f64,
    /// Days of history (fewer than 7 -> insufficient_data).
    days: i64,
}

const FLEET: &[Profile] = &[
    Profile {
        vm: "his-db-01",
        cpu: (30.0, 25.0),
        mem: (55.0, 15.0),
        disk: 62.0,
        days: 35,
    },
    Profile {
        vm: "his-app-01",
        cpu: (4.0, 10.0),
        mem: (18.0, 8.0),
        disk: 22.0,
        days: 35,
    },
    Profile {
        vm: "his-app-02",
        cpu: (5.0, 12.0),
        mem: (30.0, 15.0),
        disk: 35.0,
        days: 35,
    },
    Profile {
        vm: "vaccine-web-01",
        cpu: (20.0, 65.0),
        mem: (40.0, 20.0),
        disk: 55.0,
        days: 35,
    },
    Profile {
        vm: "vaccine-db-01",
        cpu: (35.0, 20.0),
        mem: (80.0, 8.0),
        disk: 78.0,
        days: 35,
    },
    Profile {
        vm: "enrol-web-01",
        cpu: (3.0, 8.0),
        mem: (20.0, 12.0),
        disk: 40.0,
        days: 35,
    },
    Profile {
        vm: "enrol-web-02",
        cpu: (3.0, 8.0),
        mem: (22.0, 6.0),
        disk: 41.0,
        days: 35,
    },
    Profile {
        vm: "enrol-db-01",
        cpu: (25.0, 20.0),
        mem: (50.0, 15.0),
        disk: 58.0,
        days: 35,
    },
    Profile {
        vm: "video-ingest-01",
        cpu: (80.0, 12.0),
        mem: (60.0, 10.0),
        disk: 86.0,
        days: 35,
    },
    Profile {
        vm: "video-ingest-02",
        cpu: (60.0, 10.0),
        mem: (40.0, 10.0),
        disk: 30.0,
        days: 4,
    },
    Profile {
        vm: "ops-monitor-01",
        cpu: (28.0, 10.0),
        mem: (45.0, 10.0),
        disk: 60.0,
        days: 35,
    },
];

/// A small deterministic generator (xorshift64*), so every demo shows the same fleet.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Simulated samples every 15 minutes for the demo fleet, ending at `now`.
pub fn simulated_history(
    keys: &std::collections::HashMap<String, i64>,
    now: DateTime<Utc>,
) -> Vec<SampleRow> {
    let mut rows = Vec::new();
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    for p in FLEET {
        let Some(&vm_key) = keys.get(p.vm) else {
            continue;
        };
        let steps = p.days * 24 * 4;
        for i in (0..steps).rev() {
            let at = now - TimeDelta::minutes(15 * i);
            let hour = at.with_timezone(&Shanghai).hour();
            // Working hours 9-17 Shanghai carry the load.
            let busy = if (9..17).contains(&hour) { 1.0 } else { 0.0 };
            let clamp = |v: f64| v.clamp(0.0, 100.0);
            rows.push(SampleRow {
                vm_key,
                ts: at.timestamp(),
                cpu_pct: clamp(
                    p.cpu.0 + p.cpu.1 * busy * (0.7 + 0.3 * noise.next()) + 2.0 * noise.next(),
                ),
                mem_pct: clamp(
                    p.mem.0 + p.mem.1 * busy * (0.8 + 0.2 * noise.next()) + 1.0 * noise.next(),
                ),
                disk_pct: Some(clamp(p.disk + 0.5 * noise.next())),
            });
        }
    }
    rows
}

/// The demo's sign-ins (user, password, what they see) and an admin API token.
struct DemoAccounts {
    logins: Vec<(&'static str, String, &'static str)>,
    api_token: String,
}

/// Accounts with fresh random passwords: center staff and one department's user.
async fn demo_accounts(store: &Store) -> anyhow::Result<DemoAccounts> {
    let now = Utc::now().timestamp();
    let mut logins = Vec::new();
    for (user, role, department, what) in [
        ("admin", Role::Admin, None, "center staff, everything"),
        (
            "health",
            Role::Department,
            Some("health"),
            "市卫生健康局 only",
        ),
    ] {
        let password: String = crate::auth::new_secret("")?.chars().take(16).collect();
        let hash = crate::auth::hash_password(&password)?;
        store
            .create_user(user, &hash, role, department, now)
            .await?;
        logins.push((user, password, what));
    }
    let api_token = crate::auth::new_secret(crate::auth::API_TOKEN_PREFIX)?;
    store
        .create_api_token("admin", "demo", &crate::token::hash(&api_token), now)
        .await?;
    Ok(DemoAccounts { logins, api_token })
}

pub async fn run(
    args: DemoArgs,
    rules: RuleSet,
    calendar: Calendar,
    notifier: Notifier,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let db_path = args.data_dir.join("cloudgov.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db_path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot reset {p:?}")),
        }
    }
    let db_url = format!("sqlite://{}", db_path.display());
    let store = Store::connect(&db_url).await?;

    let inventory = Inventory::parse("deploy/demo/inventory.toml", DEMO_INVENTORY)?;
    store.apply_inventory(&inventory).await?;
    let now = Utc::now();
    let history = simulated_history(&store.vm_keys().await?, now);
    store.insert_samples(&history).await?;

    let this_host = VmId::try_from(THIS_HOST_VM)?;
    let token = crate::token::generate().context("no randomness for a token")?;
    store
        .add_agent_token(&this_host, &crate::token::hash(&token))
        .await?;

    let accounts = demo_accounts(&store).await?;

    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(rules),
        calendar: Arc::new(calendar),
        notifier: Arc::new(notifier),
    };
    let daemon = Daemon::start(ctx.clone(), args.listen, Schedule::default()).await?;
    let base = format!("http://{}", daemon.addr);

    let agent_config = cloudgov_agent::config::AgentConfig::new(&base, &token)?
        .with_interval(std::time::Duration::from_secs(args.agent_interval.max(1)))?;
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(cloudgov_agent::run(agent_config, async move {
        let _ = agent_stopped.await;
    }));
    // Give the agent its first report so this machine shows up in the first evaluation.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let now = Utc::now();
    let report = evaluate(&store, &ctx.rules, now, true).await?;
    check_deadlines(&ctx, now, &mut TickSummary::default()).await?;
    let deadlines = deadlines_as_of(&ctx, now, None).await?;
    println!(
        "cloudgov demo: {} VMs, {} simulated samples, database {db_url}",
        report.vms,
        history.len()
    );
    println!();
    print_findings(&report.findings);
    println!();
    let count = |state: DeadlineState| deadlines.iter().filter(|d| d.state == state).count();
    println!(
        "{} notices opened; deadlines (10 working days each, art. 13): {} open, {} overdue, {} done on time, {} done late.",
        report.notices_opened,
        count(DeadlineState::Open),
        count(DeadlineState::Overdue),
        count(DeadlineState::DoneOnTime),
        count(DeadlineState::DoneLate)
    );
    println!("Where to look:");
    println!("  {base}/        the dashboard: sign in as");
    for (user, password, what) in &accounts.logins {
        println!("      {user} / {password}   ({what})");
    }
    println!("  {base}/api/docs/   the REST API (OpenAPI); scripts send the API token:");
    println!("  API token: {}", accounts.api_token);
    println!("  {base}/healthz");
    println!("  {base}/api/v1/findings");
    println!("  {base}/api/v1/notices");
    println!("  {base}/api/v1/deadlines");
    println!(
        "  {base}/api/v1/agents        (this machine reports every {} s as {THIS_HOST_VM})",
        args.agent_interval
    );
    println!("  cloudgov --db {db_url} notices list");
    println!("Press Ctrl-C to stop.");

    termination_signal().await;
    let _ = stop_agent.send(());
    match agent.await {
        Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "demo agent stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "demo agent task failed"),
        Ok(Ok(summary)) => tracing::info!(
            collected = summary.collected,
            delivered = summary.delivered,
            "demo agent stopped"
        ),
    }
    daemon.stop().await?;
    store.close().await;
    Ok(())
}

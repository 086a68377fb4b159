//! `cloudgov demo`: the whole product on one machine in one command, as a real fleet shows it.
//!
//! A fresh SQLite database gets the demo inventory (`deploy/demo/inventory.toml`), samples of
//! the fleet since the start of the previous year ([`fleet`]), the IP registry and a switch's
//! ARP export ([`network`]). The daemon starts; every simulated VM's agent reports to its
//! ingest endpoint ([`agents`]), and so does this machine's own agent, as `demo-this-host`.
//! The jobs then replay the past ([`history`]), the previous year is reviewed, and one pass at
//! the current instant evaluates, keeps deadlines and runs the network checks. A few actions
//! of the demo's users (a contest, a registry entry, a confirmed deployment) fill the audit log.

mod agents;
mod fleet;
mod history;
mod network;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Datelike, Utc};

use crate::cli::output::print_findings;
use crate::core::access::{Role, Scope, Viewer};
use crate::core::calendar::Calendar;
use crate::core::calendar::shanghai_day;
use crate::core::domain::{DepartmentId, VmId};
use crate::core::inventory::Inventory;
use crate::core::obligations::ObligationState;
use crate::core::rules::RuleSet;
use crate::daemon::{Daemon, Schedule, termination_signal};
use crate::jobs::evaluation::evaluate;
use crate::jobs::notify::Notifier;
use crate::jobs::views::deadlines_as_of;
use crate::jobs::{JobContext, TickSummary, check_deadlines, fold_and_expire, network_check};
use crate::store::Store;

pub use fleet::history as simulated_history;

/// `cloudgov demo` flags.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the demo keeps its SQLite database (reset at every start).
    #[arg(long, default_value = "cloudgov-demo")]
    pub data_dir: PathBuf,
    /// Seconds between the local agent's reports.
    #[arg(long, default_value_t = 10)]
    pub agent_interval: u64,
}

pub const DEMO_INVENTORY: &str = include_str!("../../../deploy/demo/inventory.toml");
/// The demo VM that stands for the machine the demo runs on.
pub const THIS_HOST_VM: &str = "demo-this-host";

/// One of the demo's sign-ins.
struct Login {
    user: &'static str,
    password: String,
    what: &'static str,
    /// The same person as the actions see them.
    viewer: Viewer,
}

/// The demo's sign-ins and an admin API token.
struct DemoAccounts {
    admin: Login,
    health: Login,
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
        let password: String = crate::http::auth::new_secret("")?
            .chars()
            .take(16)
            .collect();
        let hash = crate::http::auth::hash_password(&password)?;
        let user_id = store
            .create_user(user, &hash, role, department, now)
            .await?;
        let scope = match department {
            Some(d) => Scope::Department(DepartmentId::try_from(d)?),
            None => Scope::All,
        };
        logins.push(Login {
            user,
            password,
            what,
            viewer: Viewer {
                user_id,
                username: user.to_owned(),
                role,
                scope,
                csrf: None,
            },
        });
    }
    let api_token = crate::http::auth::new_secret(crate::http::auth::API_TOKEN_PREFIX)?;
    store
        .create_api_token("admin", "demo", &crate::core::token::hash(&api_token), now)
        .await?;
    let mut logins = logins.into_iter();
    match (logins.next(), logins.next()) {
        (Some(admin), Some(health)) => Ok(DemoAccounts {
            admin,
            health,
            api_token,
        }),
        _ => anyhow::bail!("the demo accounts were not created"),
    }
}

/// What the demo's people did today, through the same actions as the forms: the health
/// bureau contests a downsize notice and asks for two more servers, staff register a new
/// terminal and confirm that this machine is deployed. These are the audit log's first entries.
async fn demo_actions(ctx: &JobContext, accounts: &DemoAccounts) -> anyhow::Result<()> {
    let today = shanghai_day(Utc::now());
    let contested = ctx.store.notices().await?.into_iter().find(|n| {
        n.vm == "his-app-02"
            && n.resource == crate::core::domain::Aspect::Cpu
            && n.state == crate::core::domain::NoticeState::Open
    });
    match contested {
        Some(n) => {
            crate::jobs::actions::contest_notice(
                ctx,
                &accounts.health.viewer,
                n.id,
                "该平台承担月末医保集中结算，月底CPU峰值明显高于平时，申请暂缓核减，待年度结算后复核。",
            )
            .await?;
        }
        None => tracing::warn!("no open CPU notice of his-app-02 to contest"),
    }
    crate::jobs::actions::set_registry(
        ctx,
        &accounts.admin.viewer,
        &crate::jobs::actions::RegistryEdit {
            ip: "10.30.1.20".into(),
            mac: "52:54:00:30:01:20".into(),
            department: "bigdata".into(),
            holder: "值班室新配笔记本".into(),
            registered_on: None,
            note: "资产编号 BD-2026-031".into(),
            gateway: false,
        },
    )
    .await?;
    crate::jobs::actions::mark_deployed(
        ctx,
        &accounts.admin.viewer,
        &VmId::try_from(THIS_HOST_VM)?,
        today,
    )
    .await?;
    // The health bureau asks for two more HIS application servers (资源申请): staff see them
    // sized from the bureau's own HIS VMs.
    let request = crate::core::requests::RawRequest {
        department: "health".into(),
        project: "his".into(),
        project_name: None,
        purpose: "医院信息系统二期:新增门诊预约与检验报告查询服务".into(),
        expected_load:
            "资源需求分析:日均门诊预约约8000人次,高峰时段并发约300;与现有应用服务器同构部署".into(),
        desired_on: None,
        submitted_on: None,
        vms: ["his-app-03", "his-app-04"]
            .into_iter()
            .map(|id| crate::core::requests::RawRequestVm {
                id: id.into(),
                vcpus: 16.0,
                memory_gib: 64.0,
                disk_gib: 500.0,
            })
            .collect(),
    };
    crate::jobs::actions::submit_request(ctx, &accounts.health.viewer, request).await?;
    Ok(())
}

/// Waits (briefly) until this machine's agent has reported, so it is in today's evaluation.
async fn first_report_of(store: &Store, vm: &str, within: Duration) -> anyhow::Result<bool> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if store.agents().await?.iter().any(|a| a.vm == vm) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

pub async fn run(
    args: DemoArgs,
    rules: RuleSet,
    calendar: Calendar,
    notifier: Notifier,
) -> anyhow::Result<()> {
    let started = Instant::now();
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
    let vms = store
        .vms()
        .await?
        .into_iter()
        .map(|v| (v.id.to_string(), (v.key, v.delivered_on)))
        .collect();
    let history = simulated_history(&vms, now);
    store.insert_samples(&history).await?;
    let (registry, arp_entries) = network::load(&store, now).await?;
    tracing::debug!(elapsed = ?started.elapsed(), samples = history.len(), "demo: data loaded");

    let this_host = VmId::try_from(THIS_HOST_VM)?;
    let token = crate::core::token::generate().context("no randomness for a token")?;
    store
        .add_agent_token(&this_host, &crate::core::token::hash(&token))
        .await?;

    let accounts = demo_accounts(&store).await?;

    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(rules),
        calendar: Arc::new(calendar),
        notifier: Arc::new(notifier),
        prices: crate::cli::load::review_rules(None)?.prices,
    };
    let daemon = Daemon::start(ctx.clone(), args.listen, Schedule::default()).await?;
    let base = format!("http://{}", daemon.addr);

    let interval = Duration::from_secs(args.agent_interval.max(1));
    // The simulated VMs' agents report first, so no VM is silent when the past is replayed.
    let simulators = agents::Simulators::start(&store, &base, interval).await?;
    let agent_config =
        cloudgov_agent::config::AgentConfig::new(&base, &token)?.with_interval(interval)?;
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(cloudgov_agent::run(agent_config, async move {
        let _ = agent_stopped.await;
    }));

    let replay = history::replay(&ctx, now).await?;
    tracing::debug!(elapsed = ?started.elapsed(), ?replay, "demo: past replayed");
    let folded = crate::jobs::fold(&ctx, now).await?;
    tracing::debug!(elapsed = ?started.elapsed(), ?folded, "demo: usage folded");
    let previous_year = shanghai_day(now).year() - 1;
    let review_rules = crate::cli::load::review_rules(None)?;
    let reviews = crate::jobs::review::run(
        &ctx,
        &review_rules,
        previous_year,
        Utc::now(),
        true,
        |_, _| {},
    )
    .await?;
    tracing::debug!(elapsed = ?started.elapsed(), "demo: previous year reviewed");

    // This machine shows up in today's evaluation once its agent has reported.
    if !first_report_of(&store, THIS_HOST_VM, Duration::from_secs(3)).await? {
        tracing::warn!("this machine's agent has not reported yet");
    }
    let now = Utc::now();
    let report = evaluate(&store, &ctx.rules, now, true).await?;
    check_deadlines(&ctx, now, &mut TickSummary::default()).await?;
    let (network_findings, _) = network_check(&ctx, now, true).await?;
    fold_and_expire(&ctx, now).await?;
    demo_actions(&ctx, &accounts).await?;
    let deadlines = deadlines_as_of(&ctx, now, None).await?;
    let ready = started.elapsed();

    println!(
        "cloudgov demo: {} VMs, {} simulated samples since {}-01-01, database {db_url}",
        report.vms,
        history.len(),
        previous_year
    );
    println!();
    print_findings(&report.findings);
    println!();
    let count = |state: ObligationState| deadlines.iter().filter(|d| d.state == state).count();
    println!(
        "{} notices opened now, {} over the replayed past ({} evaluations, {} weekly deadline passes, {} adjustments done); \
         deadlines (10 working days each, art. 13): {} open, {} overdue, {} done on time, {} done late.",
        report.notices_opened,
        replay.notices_opened,
        replay.evaluations,
        replay.passes,
        replay.adjustments_done,
        count(ObligationState::Open),
        count(ObligationState::Overdue),
        count(ObligationState::DoneOnTime),
        count(ObligationState::DoneLate)
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &network_findings {
        *kinds.entry(f.kind.as_str()).or_default() += 1;
    }
    println!(
        "Network registration (art. 14): {} registered addresses ({}), {arp_entries} ARP entries ({}); findings: {}.",
        registry.added,
        network::REGISTRY_FILE,
        network::ARP_FILE,
        kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Annual review {previous_year} (art. 10), stored: {}.",
        reviews
            .iter()
            .map(|r| format!(
                "{} {:.1} {}",
                r.project,
                r.score,
                serde_json::to_value(r.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Agents: {} simulated VMs report every {} s; this machine as {THIS_HOST_VM}. Ready in {:.1} s.",
        simulators.vms,
        interval.as_secs(),
        ready.as_secs_f64()
    );
    println!("Where to look:");
    println!("  {base}/        the dashboard: sign in as");
    for login in [&accounts.admin, &accounts.health] {
        println!(
            "      {} / {}   ({})",
            login.user, login.password, login.what
        );
    }
    println!(
        "  {base}/network   network registration findings;  {base}/reviews   the {previous_year} review"
    );
    println!("  {base}/api/docs/   the REST API (OpenAPI); scripts send the API token:");
    println!("  API token: {}", accounts.api_token);
    println!("  {base}/healthz");
    println!("  {base}/api/v1/findings");
    println!("  {base}/api/v1/notices");
    println!("  {base}/api/v1/deadlines");
    println!("  {base}/api/v1/network/findings");
    println!("  {base}/api/v1/reviews/{previous_year}");
    println!(
        "  {base}/api/v1/agents        (this machine reports every {} s as {THIS_HOST_VM})",
        args.agent_interval
    );
    println!("  cloudgov --db {db_url} notices list");
    println!("Press Ctrl-C to stop.");

    termination_signal().await;
    simulators.stop().await;
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

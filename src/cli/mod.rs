//! The `cloudgov` command line: daemon, imports, evaluation, tokens and the demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::core::access::Viewer;
use crate::core::calendar::shanghai_day;
use crate::core::calendar::{Calendar, WorkingDays};
use crate::core::domain::VmId;
use crate::core::import::{parse_arp, parse_ip_registry, parse_samples};
use crate::core::inventory::Inventory;
use crate::daemon::scheduler::CronExpr;
use crate::daemon::{Daemon, Schedule, termination_signal};
use crate::jobs::evaluation::{FindingOut, evaluate};
use crate::jobs::notify::{Notifier, deliver_pending, preview_notice};
use crate::jobs::views::deadlines_as_of;
use crate::jobs::{JobContext, network_check, tick};
use crate::store::{SightingRow, Store};

pub mod demo;
pub mod kubernetes;
pub mod load;
mod users;

pub const DEFAULT_DB: &str = "sqlite://cloudgov-data/cloudgov.db";

#[derive(Debug, Parser)]
#[command(
    name = "cloudgov",
    version,
    about = "Government-cloud resource governance (Pingdu Measures art. 13)"
)]
pub struct Cli {
    /// Database URL: sqlite://PATH (created with its schema if missing) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "CLOUDGOV_DB", default_value = DEFAULT_DB)]
    pub db: String,
    /// Rules file; without it the built-in Pingdu defaults (rules/pingdu.toml) apply.
    #[arg(long, global = true, env = "CLOUDGOV_RULES")]
    pub rules: Option<PathBuf>,
    /// Directory of working-day calendar files (YYYY.toml), overlaying the built-in 2019-2026.
    /// Default: rules/calendar if it exists.
    #[arg(long, global = true, env = "CLOUDGOV_CALENDAR_DIR")]
    pub calendar_dir: Option<PathBuf>,
    /// Directory of e-mail templates (KIND.LANG.txt) overriding the built-in ones.
    /// Default: rules/templates if it exists.
    #[arg(long, global = true, env = "CLOUDGOV_TEMPLATES_DIR")]
    pub templates_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP API for agents and readers, scheduled evaluation.
    Serve(ServeArgs),
    /// Import an inventory (TOML) or usage samples (CSV).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Evaluate every VM against the rules as of an instant, store findings, open notices.
    Evaluate(EvaluateArgs),
    /// The latest stored findings.
    Findings(FormatArg),
    /// Downsize notices and expansion advice.
    #[command(subcommand)]
    Notices(NoticesCommand),
    /// VMs and their agent tokens.
    #[command(subcommand)]
    Vm(VmCommand),
    /// Projects: record a filing (art. 10).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// What each agent last reported about itself.
    Agents(FormatArg),
    /// One command to see it work: daemon on SQLite, demo fleet with history, an agent on this machine.
    Demo(DemoArgs),
    /// Working-day arithmetic on the Chinese calendar (no database needed).
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Run every scheduled job once as of an instant: evaluate, open notices, keep deadlines,
    /// remind, escalate, flag silent agents.
    Tick(AtArgs),
    /// Deployment and adjustment deadlines with their state as of an instant.
    Deadlines(AtArgs),
    /// VM alerts (e.g. silent agents).
    Alerts(FormatArg),
    /// Backend, calendar coverage and warnings.
    Status,
    /// The e-mail outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Export data as CSV to standard output.
    #[command(subcommand)]
    Export(ExportCommand),
    /// The annual project performance review (art. 10): score, grade and verdict per project.
    Review(ReviewArgs),
    /// Network registration (art. 14): checks, findings and the IP registry.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Accounts: center staff and department users, their API tokens, the audit log.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Kubernetes workloads discovered as inventory and evaluated like VMs.
    #[command(subcommand)]
    Kubernetes(kubernetes::KubernetesCommand),
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[arg(long)]
    pub year: i32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write an HTML report per project, a summary, a CSV of all projects and charts here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Review rules (weights, prices, thresholds); default: the built-in rules/review.toml.
    #[arg(long, env = "CLOUDGOV_REVIEW_RULES")]
    pub review_rules: Option<PathBuf>,
    /// As of this instant (default now); a past year is reviewed whole.
    #[arg(long)]
    pub at: Option<DateTime<chrono::FixedOffset>>,
    /// Compute and print, but store nothing and e-mail nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The IP registry, in the format `import ip-registry` reads.
    IpRegistry,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Compare the registry with what agents and ARP exports saw; findings open and are e-mailed.
    Check {
        #[arg(long)]
        at: Option<DateTime<chrono::FixedOffset>>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print the findings but store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stored network findings, open first.
    Findings(FormatArg),
    /// Edit the IP registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    List(FormatArg),
    /// Register an IP (or change its registration).
    Set {
        ip: std::net::IpAddr,
        #[arg(long)]
        mac: crate::core::domain::MacAddr,
        #[arg(long)]
        department: crate::core::domain::DepartmentId,
        #[arg(long)]
        holder: String,
        #[arg(long, default_value = "")]
        note: String,
        /// A gateway may answer for many addresses without being a suspected router.
        #[arg(long)]
        gateway: bool,
        #[arg(long)]
        registered_on: Option<NaiveDate>,
    },
    Remove {
        ip: std::net::IpAddr,
    },
    /// Every change, of one IP or all.
    History {
        ip: Option<std::net::IpAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Every e-mail job with its state (pending, sent, no_recipient).
    List(FormatArg),
    /// Deliver what is pending now (ignoring backoff).
    Send,
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Print the date N working days after DATE (DATE not counted).
    AddWorkdays { date: NaiveDate, n: i64 },
    /// Print `workday` or `day-off`.
    IsWorkday { date: NaiveDate },
    /// Print the number of working days after A up to and including B.
    Between { a: NaiveDate, b: NaiveDate },
}

#[derive(Debug, Args)]
pub struct AtArgs {
    /// The instant, RFC 3339 (default: now).
    #[arg(long)]
    pub at: Option<DateTime<chrono::FixedOffset>>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl AtArgs {
    fn instant(&self) -> DateTime<Utc> {
        self.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "CLOUDGOV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// When to evaluate (cron with seconds, Asia/Shanghai, e.g. "0 0 9 * * Mon-Fri").
    #[arg(long, env = "CLOUDGOV_EVALUATE_CRON", default_value = crate::daemon::DEFAULT_EVALUATE_CRON)]
    pub evaluate_cron: CronExpr,
    /// When to check deadlines, send reminders and escalations, and flag silent agents.
    #[arg(long, env = "CLOUDGOV_DEADLINES_CRON", default_value = crate::daemon::DEFAULT_DEADLINES_CRON)]
    pub deadlines_cron: CronExpr,
    /// When to review the previous year (art. 10) and e-mail the results.
    #[arg(long, env = "CLOUDGOV_REVIEW_CRON", default_value = crate::daemon::DEFAULT_REVIEW_CRON)]
    pub review_cron: CronExpr,
    /// Review rules for the scheduled review; default: the built-in rules/review.toml.
    #[arg(long, env = "CLOUDGOV_REVIEW_RULES")]
    pub review_rules: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "CLOUDGOV_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "CLOUDGOV_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// An agent clock off by more than this many seconds raises a `clock_skew` alert.
    #[arg(long, env = "CLOUDGOV_MAX_CLOCK_SKEW_SECS", default_value_t = 120)]
    pub max_clock_skew_secs: u32,
    /// Ingest requests each VM may send per minute (more get 429 with Retry-After).
    #[arg(
        long,
        env = "CLOUDGOV_AGENT_REQUESTS_PER_MINUTE",
        default_value_t = 120
    )]
    pub agent_requests_per_minute: u32,
    /// Also serve `/metrics` here, without signing in (e.g. 10.0.0.5:9464 for Prometheus on an
    /// internal network). On the main listener `/metrics` needs a staff API token.
    #[arg(long, env = "CLOUDGOV_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Require client certificates signed by this PEM CA (mutual TLS for agents).
    #[arg(long, env = "CLOUDGOV_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub kubernetes: kubernetes::ServeKubernetesArgs,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Departments, projects and VMs from a TOML file (created or updated by id).
    Inventory { file: PathBuf },
    /// Samples from a CSV file with header `vm,ts,cpu_pct,mem_pct,disk_pct`.
    Samples {
        file: PathBuf,
        /// Accept samples older than ingest does (400 days), back to 2000: a backfill of
        /// history. The future is refused either way.
        #[arg(long)]
        allow_history: bool,
    },
    /// The IP registry from a CSV file with header `ip,mac,department,holder`
    /// (optionally `,registered_on,note,gateway`); created or updated by IP, with history.
    IpRegistry { file: PathBuf },
    /// A switch's or router's ARP/neighbour table: CSV `ip,mac,seen_at,source`.
    Arp {
        file: PathBuf,
        /// Accept entries older than 400 days (never the future).
        #[arg(long)]
        allow_history: bool,
    },
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Evaluation instant, RFC 3339 (default: now).
    #[arg(long)]
    pub at: Option<DateTime<chrono::FixedOffset>>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Compute and print, but store nothing and open no notice.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum NoticesCommand {
    List(FormatArg),
    /// Render the e-mail that announces a notice, without sending it.
    Preview {
        id: i64,
    },
    /// Staff approve held notices (with `require_approval`): they are e-mailed as digests.
    Approve {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Staff confirm that the adjustment a notice asked for is done.
    Complete {
        id: i64,
        /// The day it was done.
        #[arg(long)]
        on: NaiveDate,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Staff record that a project was filed (全口径备案) on a day: its filing deadline is done.
    File {
        project: crate::core::domain::ProjectId,
        #[arg(long)]
        on: NaiveDate,
    },
}

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Issue a new agent token for a VM; it is printed once and stored only as a hash.
    IssueToken { vm: VmId },
    /// Revoke every token of a VM.
    RevokeTokens { vm: VmId },
    /// List VMs with their project, department and allocation.
    List(FormatArg),
    /// Staff or the department confirm the system is deployed.
    MarkDeployed {
        vm: VmId,
        #[arg(long)]
        on: NaiveDate,
    },
    /// The department asks to release a VM that is no longer used.
    RequestRelease {
        vm: VmId,
        #[arg(long)]
        on: NaiveDate,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Staff confirm a release: the VM is no longer evaluated, its notices close.
    ConfirmRelease {
        vm: VmId,
        #[arg(long)]
        on: NaiveDate,
    },
}

#[derive(Debug, Args)]
pub struct FormatArg {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let rules = load::rules(cli.rules.as_deref())?;
    let calendar = load::calendar(cli.calendar_dir.as_deref())?;
    if let Command::Calendar(c) = cli.command {
        return calendar_command(&calendar, c);
    }
    let notifier = Notifier::new(
        load::templates(cli.templates_dir.as_deref())?,
        load::smtp_settings()?.as_ref(),
        load::chart_fonts(),
        load::delivery_settings(),
    )?;
    if let Command::Demo(args) = cli.command {
        return crate::cli::demo::run(args, rules, calendar, notifier).await;
    }
    let store = Store::connect(&cli.db)
        .await
        .with_context(|| format!("database {}", crate::core::token::redact_url(&cli.db)))?;
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(rules),
        calendar: Arc::new(calendar),
        notifier: Arc::new(notifier),
    };
    let result = run_with_store(cli.command, &ctx).await;
    store.close().await;
    result
}

fn calendar_command(calendar: &Calendar, command: CalendarCommand) -> anyhow::Result<()> {
    let warn_provisional = |provisional: bool| {
        if provisional {
            eprintln!(
                "warning: provisional: the answer reaches years without calendar data ({}); \
                 Monday-Friday was assumed there",
                calendar_years_text(calendar)
            );
        }
    };
    match command {
        CalendarCommand::AddWorkdays { date, n } => {
            let n = WorkingDays::try_from(n).map_err(|e| anyhow::anyhow!("N: {e}"))?;
            let due = calendar.add_workdays(date, n);
            warn_provisional(due.provisional);
            println!("{}", due.value.format("%Y-%m-%d"));
        }
        CalendarCommand::IsWorkday { date } => {
            let day = calendar.is_workday(date);
            warn_provisional(day.provisional);
            println!("{}", if day.value { "workday" } else { "day-off" });
        }
        CalendarCommand::Between { a, b } => {
            let n = calendar.between(a, b);
            warn_provisional(n.provisional);
            println!("{}", n.value);
        }
    }
    Ok(())
}

fn calendar_years_text(calendar: &Calendar) -> String {
    match (calendar.years().first(), calendar.years().last()) {
        (Some(first), Some(last)) => format!("data covers {first}-{last}"),
        _ => "no calendar data loaded".into(),
    }
}

/// The instants an import accepts: as ingest does, or any past time with `--allow-history`.
fn arrival_window(allow_history: bool) -> crate::core::domain::ArrivalWindow {
    if allow_history {
        crate::core::domain::ArrivalWindow::with_history(Utc::now())
    } else {
        crate::core::domain::ArrivalWindow::recent(Utc::now())
    }
}

/// The person running the CLI, for the audit log: `cli:` and the operating-system user.
fn local_operator() -> Viewer {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 32 && u.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "operator".into());
    Viewer::local_operator(&user)
}

async fn run_with_store(command: Command, ctx: &JobContext) -> anyhow::Result<()> {
    let store = &ctx.store;
    let operator = local_operator();
    let audit = |action: &'static str, target: String, detail: String| {
        let operator = &operator;
        async move { crate::jobs::actions::record(ctx, operator, action, &target, &detail).await }
    };
    match command {
        Command::Serve(args) => {
            let tls = match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(crate::http::tls::server_config(
                    &crate::http::tls::TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                        client_ca: args.tls_client_ca.clone(),
                    },
                )?),
                _ => None,
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            let (kubernetes, elector) = args.kubernetes.setup().await?;
            let mut daemon = Daemon::start_with_tls(
                ctx.clone(),
                args.listen,
                Schedule {
                    evaluate: args.evaluate_cron,
                    deadlines: args.deadlines_cron,
                    review: Some((
                        args.review_cron,
                        Arc::new(load::review_rules(args.review_rules.as_deref())?),
                    )),
                    kubernetes,
                    elector,
                },
                tls,
                crate::http::IngestLimits {
                    requests_per_minute: args.agent_requests_per_minute.max(1),
                    max_clock_skew: chrono::TimeDelta::seconds(i64::from(args.max_clock_skew_secs)),
                },
            )
            .await?;
            println!("cloudgov listening on {scheme}://{}", daemon.addr);
            if let Some(listen) = args.metrics_listen {
                let addr = daemon.start_metrics_listener(listen).await?;
                println!("metrics on http://{addr}/metrics");
            }
            termination_signal().await;
            tracing::info!("stopping");
            daemon.stop().await
        }
        Command::Import(ImportCommand::Inventory { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let inventory = Inventory::parse(&file.display().to_string(), &text)?;
            inventory.check_not_future(&file.display().to_string(), shanghai_day(Utc::now()))?;
            let summary = store
                .apply_inventory(&inventory)
                .await
                .with_context(|| format!("inventory {}: nothing imported", file.display()))?;
            let text = format!(
                "imported {} departments, {} projects, {} VMs added, {} updated, {} allocation changes",
                summary.departments,
                summary.projects,
                summary.vms_added,
                summary.vms_updated,
                summary.allocations_changed
            );
            audit(
                "import_inventory",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        Command::Import(ImportCommand::Samples {
            file,
            allow_history,
        }) => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let keys = store.vm_keys().await?;
            let rows = parse_samples(
                &file.display().to_string(),
                std::io::BufReader::new(input),
                &keys,
                arrival_window(allow_history),
            )
            .context("nothing imported")?;
            let (inserted, duplicates) = store.insert_samples(&rows).await?;
            let text = format!("imported {inserted} samples ({duplicates} already present)");
            audit(
                "import_samples",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        Command::Import(ImportCommand::IpRegistry { file }) => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let departments = store.department_ids().await?;
            let rows = parse_ip_registry(
                &file.display().to_string(),
                std::io::BufReader::new(input),
                &departments,
                shanghai_day(Utc::now()),
            )
            .context("nothing imported")?;
            let source = format!("import {}", file.display());
            let s = store
                .apply_ip_registry(&rows, &source, shanghai_day(Utc::now()))
                .await?;
            let text = format!(
                "ip registry: {} added, {} changed, {} unchanged",
                s.added, s.changed, s.unchanged
            );
            audit(
                "import_ip_registry",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        Command::Import(ImportCommand::Arp {
            file,
            allow_history,
        }) => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let rows = parse_arp(
                &file.display().to_string(),
                std::io::BufReader::new(input),
                arrival_window(allow_history),
            )
            .context("nothing imported")?;
            let sightings: Vec<SightingRow> = rows.iter().map(SightingRow::from).collect();
            store.record_sightings(&sightings).await?;
            let text = format!("imported {} ARP entries", rows.len());
            audit(
                "import_arp",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        Command::Export(ExportCommand::IpRegistry) => {
            let mut out = csv::Writer::from_writer(std::io::stdout());
            out.write_record(
                crate::core::import::IP_REGISTRY_HEADER
                    .iter()
                    .chain(&crate::core::import::IP_REGISTRY_OPTIONAL),
            )?;
            for r in store.ip_registry().await? {
                out.write_record(crate::core::spreadsheet::record([
                    &r.ip,
                    &r.mac,
                    &r.department,
                    &r.holder,
                    &r.registered_on,
                    &r.note,
                    &r.gateway.to_string(),
                ]))?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Network(NetworkCommand::Check {
            at,
            format,
            dry_run,
        }) => {
            let at = at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
            let (findings, opened) = network_check(ctx, at, !dry_run).await?;
            match format {
                Format::Json => print_json(&findings),
                Format::Table => {
                    print_table(
                        &["KIND", "IP", "MAC", "DEPARTMENT", "EVIDENCE"],
                        findings.iter().map(|f| {
                            vec![
                                f.kind.to_string(),
                                f.ip.clone(),
                                f.mac.clone().unwrap_or_else(|| "-".into()),
                                f.department.clone().unwrap_or_else(|| "-".into()),
                                f.evidence.clone(),
                            ]
                        }),
                    );
                    println!("{} findings, {opened} new", findings.len());
                    Ok(())
                }
            }
        }
        Command::Network(NetworkCommand::Findings(f)) => {
            let rows = store.network_findings(None).await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &["ID", "KIND", "IP", "MAC", "DEPARTMENT", "OPEN", "RAISED"],
                        rows.iter().map(|r| {
                            vec![
                                r.id.to_string(),
                                r.kind.clone(),
                                r.ip.clone(),
                                r.mac.clone().unwrap_or_default(),
                                r.department.clone().unwrap_or_default(),
                                r.open.to_string(),
                                r.raised_at.clone(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Network(NetworkCommand::Registry(RegistryCommand::List(f))) => {
            let rows = store.ip_registry().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &[
                            "IP",
                            "MAC",
                            "DEPARTMENT",
                            "HOLDER",
                            "REGISTERED",
                            "GATEWAY",
                            "NOTE",
                        ],
                        rows.iter().map(|r| {
                            vec![
                                r.ip.clone(),
                                r.mac.clone(),
                                r.department.clone(),
                                r.holder.clone(),
                                r.registered_on.clone(),
                                r.gateway.to_string(),
                                r.note.clone(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Network(NetworkCommand::Registry(RegistryCommand::Set {
            ip,
            mac,
            department,
            holder,
            note,
            gateway,
            registered_on,
        })) => {
            let edit = crate::jobs::actions::RegistryEdit {
                ip: ip.to_string(),
                mac: mac.to_string(),
                department: department.to_string(),
                holder,
                registered_on: registered_on.map(|d| d.to_string()),
                note,
                gateway,
            };
            let done = crate::jobs::actions::set_registry(ctx, &operator, &edit).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Network(NetworkCommand::Registry(RegistryCommand::Remove { ip })) => {
            let done =
                crate::jobs::actions::remove_registry(ctx, &operator, &ip.to_string()).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::User(cmd) => users::run(ctx, &operator, cmd).await,
        Command::Network(NetworkCommand::Registry(RegistryCommand::History { ip })) => {
            print_json(&store.ip_registry_history(ip).await?)
        }
        Command::Review(args) => {
            let rules = load::review_rules(args.review_rules.as_deref())?;
            let at = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "reviewing {pos}/{len} projects {wide_bar} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let reviews = crate::jobs::review::run(
                ctx,
                &rules,
                args.year,
                at,
                !args.dry_run,
                |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                },
            )
            .await?;
            bar.finish_and_clear();
            if let Some(dir) = &args.out {
                write_review_dir(
                    dir,
                    args.year,
                    &reviews,
                    ctx.rules.notices().language,
                    ctx.notifier.fonts(),
                )?;
            }
            match args.format {
                Format::Json => print_json(&reviews),
                Format::Table => {
                    print_table(
                        &[
                            "PROJECT",
                            "DEPARTMENT",
                            "SCORE",
                            "GRADE",
                            "VERDICT",
                            "IDLE COST (YUAN)",
                        ],
                        reviews.iter().map(|r| {
                            vec![
                                r.project.clone(),
                                r.department.clone(),
                                format!("{:.1}", r.score),
                                r.grade.clone(),
                                serde_json::to_value(r.verdict)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                                format!("{:.0}", r.idle_cost_yuan),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Evaluate(args) => {
            let at = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
            let report = evaluate(store, &ctx.rules, at, !args.dry_run).await?;
            match args.format {
                Format::Json => print_json(&report.findings),
                Format::Table => {
                    print_findings(&report.findings);
                    println!(
                        "{} VMs evaluated as of {}; {} new notices",
                        report.vms,
                        at.to_rfc3339(),
                        report.notices_opened
                    );
                    Ok(())
                }
            }
        }
        Command::Findings(f) => {
            let rows = store.findings().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &["VM", "RESOURCE", "VERDICT", "VALUE", "RULE", "EVALUATED"],
                        rows.iter().map(|r| {
                            vec![
                                r.vm.clone(),
                                r.resource.clone(),
                                r.verdict.clone(),
                                r.value.map_or("-".into(), |v| format!("{v:.1}%")),
                                r.comparison.clone().unwrap_or_else(|| "-".into()),
                                r.evaluated_at.clone(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Notices(NoticesCommand::List(f)) => {
            let rows = store.notices().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &[
                            "ID",
                            "VM",
                            "DEPARTMENT",
                            "RESOURCE",
                            "KIND",
                            "STATE",
                            "ISSUED",
                            "VALUE",
                        ],
                        rows.iter().map(|n| {
                            vec![
                                n.id.to_string(),
                                n.vm.clone(),
                                n.department.clone(),
                                n.resource.clone(),
                                n.kind.clone(),
                                n.state.clone(),
                                n.issued_on.clone(),
                                format!("{:.1}% ({} {})", n.value, n.statistic, n.comparison),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Vm(VmCommand::IssueToken { vm }) => {
            let token = crate::core::token::generate().context("no randomness for a token")?;
            store
                .add_agent_token(&vm, &crate::core::token::hash(&token))
                .await?;
            audit("issue_agent_token", format!("vm {vm}"), String::new()).await?;
            println!("{token}");
            Ok(())
        }
        Command::Vm(VmCommand::RevokeTokens { vm }) => {
            let n = store.revoke_agent_tokens(&vm).await?;
            audit(
                "revoke_agent_tokens",
                format!("vm {vm}"),
                format!("{n} revoked"),
            )
            .await?;
            println!("revoked {n} tokens of {vm}");
            Ok(())
        }
        Command::Vm(VmCommand::List(f)) => {
            let vms = store.vms().await?;
            #[derive(Serialize)]
            struct VmOut<'a> {
                id: &'a str,
                project: &'a str,
                department: &'a str,
                vcpus: i64,
                memory_gib: f64,
                disk_gib: f64,
                delivered_on: String,
                deployed_on: Option<String>,
            }
            let out: Vec<VmOut> = vms
                .iter()
                .map(|v| VmOut {
                    id: v.id.as_str(),
                    project: v.project.as_str(),
                    department: v.department.as_str(),
                    vcpus: v.vcpus,
                    memory_gib: v.memory_gib,
                    disk_gib: v.disk_gib,
                    delivered_on: v.delivered_on.to_string(),
                    deployed_on: v.deployed_on.map(|d| d.to_string()),
                })
                .collect();
            match f.format {
                Format::Json => print_json(&out),
                Format::Table => {
                    print_table(
                        &[
                            "VM",
                            "PROJECT",
                            "DEPARTMENT",
                            "VCPUS",
                            "MEM GiB",
                            "DISK GiB",
                            "DELIVERED",
                            "DEPLOYED",
                        ],
                        out.iter().map(|v| {
                            vec![
                                v.id.to_owned(),
                                v.project.to_owned(),
                                v.department.to_owned(),
                                v.vcpus.to_string(),
                                v.memory_gib.to_string(),
                                v.disk_gib.to_string(),
                                v.delivered_on.clone(),
                                v.deployed_on.clone().unwrap_or_else(|| "-".into()),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Agents(f) => {
            let rows = store.agents().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &["VM", "HOSTNAME", "OS", "AGENT", "LAST SEEN"],
                        rows.iter().map(|a| {
                            vec![
                                a.vm.clone(),
                                a.hostname.clone(),
                                a.os.clone(),
                                a.agent_version.clone(),
                                DateTime::from_timestamp(a.last_seen_at, 0)
                                    .map(|t| t.to_rfc3339())
                                    .unwrap_or_default(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Vm(VmCommand::MarkDeployed { vm, on }) => {
            let done = crate::jobs::actions::mark_deployed(ctx, &operator, &vm, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Vm(VmCommand::RequestRelease { vm, on, reason }) => {
            let done =
                crate::jobs::actions::request_release(ctx, &operator, &vm, on, &reason).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Vm(VmCommand::ConfirmRelease { vm, on }) => {
            let done = crate::jobs::actions::confirm_release(ctx, &operator, &vm, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Notices(NoticesCommand::Preview { id }) => {
            let email = preview_notice(ctx, id, Utc::now()).await?;
            println!("Message-ID: {}", email.message_id);
            println!("To: {}", email.to.join(", "));
            if !email.cc.is_empty() {
                println!("Cc: {}", email.cc.join(", "));
            }
            println!("Subject: {}", email.subject);
            println!();
            println!("{}", email.body.trim_end());
            for (name, bytes) in &email.attachments {
                println!("[attachment {name}: image/png, {} bytes]", bytes.len());
            }
            Ok(())
        }
        Command::Notices(NoticesCommand::Approve { ids }) => {
            let done = crate::jobs::actions::approve_notices(ctx, &operator, &ids).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Outbox(OutboxCommand::List(f)) => {
            let rows = store.outbox().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &[
                            "ID",
                            "KIND",
                            "DEPARTMENT",
                            "STATE",
                            "ATTEMPTS",
                            "NOTICES",
                            "SENT",
                            "LAST ERROR",
                        ],
                        rows.iter().map(|o| {
                            vec![
                                o.id.to_string(),
                                o.kind.clone(),
                                o.department.clone().unwrap_or_else(|| "(center)".into()),
                                o.state.clone(),
                                o.attempts.to_string(),
                                format!("{:?}", o.notices),
                                o.sent_at.clone().unwrap_or_else(|| "-".into()),
                                o.last_error.clone().unwrap_or_default(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Outbox(OutboxCommand::Send) => {
            if !ctx.notifier.smtp_configured() {
                bail!("CLOUDGOV_SMTP_URL is not set: e-mails stay in the outbox");
            }
            let summary = deliver_pending(ctx, Utc::now(), true, &|| true).await?;
            print_json(&summary)
        }
        Command::Project(ProjectCommand::File { project, on }) => {
            let done = crate::jobs::actions::file_project(ctx, &operator, &project, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Notices(NoticesCommand::Complete { id, on }) => {
            let done = crate::jobs::actions::complete_notice(ctx, &operator, id, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        Command::Tick(args) => {
            let summary = tick(ctx, args.instant()).await?;
            match args.format {
                Format::Json => print_json(&summary),
                Format::Table => {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(())
                }
            }
        }
        Command::Deadlines(args) => {
            let views = deadlines_as_of(ctx, args.instant(), None).await?;
            match args.format {
                Format::Json => print_json(&views),
                Format::Table => {
                    print_table(
                        &[
                            "ID",
                            "KIND",
                            "VM/PROJECT",
                            "DEPARTMENT",
                            "START",
                            "DUE",
                            "STATE",
                            "DONE",
                            "LAST EVENT",
                        ],
                        views.iter().map(|d| {
                            vec![
                                d.id.to_string(),
                                d.kind.to_string(),
                                d.vm.clone()
                                    .or_else(|| d.project.clone())
                                    .unwrap_or_else(|| "-".into()),
                                d.department.clone(),
                                d.start.clone(),
                                format!(
                                    "{}{}",
                                    d.due,
                                    if d.provisional { " (provisional)" } else { "" }
                                ),
                                d.state.to_string(),
                                d.done_on.clone().unwrap_or_else(|| "-".into()),
                                d.timeline
                                    .last()
                                    .map_or("-".into(), |e| format!("{} {}", e.on, e.event)),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Alerts(f) => {
            let rows = store.alerts().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &["ID", "VM", "DEPARTMENT", "KIND", "RAISED", "OPEN", "DETAIL"],
                        rows.iter().map(|a| {
                            vec![
                                a.id.to_string(),
                                a.vm.clone(),
                                a.department.clone(),
                                a.kind.clone(),
                                a.raised_on.clone(),
                                a.open.to_string(),
                                a.detail.clone(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        Command::Kubernetes(command) => kubernetes_command(ctx, command).await,
        Command::Status => {
            let today = shanghai_day(Utc::now());
            println!("database: {}", store.backend_name());
            println!("calendar: {}", calendar_years_text(&ctx.calendar));
            if let Some(w) = crate::core::calendar::calendar_warning(&ctx.calendar, today) {
                println!("warning: {w}");
            }
            println!("samples: {}", store.count_samples(None).await?);
            println!(
                "e-mail: {}; {} pending in the outbox",
                if ctx.notifier.smtp_configured() {
                    "SMTP configured"
                } else {
                    "CLOUDGOV_SMTP_URL not set"
                },
                store.outbox_pending_count().await?
            );
            Ok(())
        }
        Command::Demo(_) | Command::Calendar(_) => bail!("handled before the database is opened"),
    }
}

/// Writes the review report directory (HTML per project, summary, CSV, charts).
fn write_review_dir(
    dir: &std::path::Path,
    year: i32,
    reviews: &[crate::core::review::ProjectReview],
    language: crate::core::rules::Language,
    fonts: &crate::core::chart::ChartFonts,
) -> anyhow::Result<()> {
    let labels = fonts.labels(match language {
        crate::core::rules::Language::Zh => crate::core::chart::Labels::Chinese,
        crate::core::rules::Language::En => crate::core::chart::Labels::Latin,
    });
    let written =
        crate::jobs::review::report::write_report_dir(dir, year, reviews, fonts, labels, |_| {})?;
    eprintln!("wrote {} files to {}", written.len(), dir.display());
    Ok(())
}

async fn kubernetes_command(
    ctx: &JobContext,
    command: kubernetes::KubernetesCommand,
) -> anyhow::Result<()> {
    let kubernetes::KubernetesCommand::Discover {
        at,
        dry_run,
        format,
        kube,
    } = command;
    let at = at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let client = crate::jobs::kubernetes::connect(kube.kubeconfig.as_deref()).await?;
    let report =
        crate::jobs::kubernetes::discover(&client, &ctx.store, &kube.options(), at, !dry_run)
            .await?;
    if format == Format::Json {
        return print_json(&report);
    }
    let pct = |p: Option<f64>| p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}"));
    print_table(
        &[
            "VM",
            "DEPARTMENT",
            "PROJECT",
            "KIND",
            "PODS",
            "CPU_REQ",
            "MEM_REQ_GIB",
            "CPU%",
            "MEM%",
            "NOTE",
        ],
        report.workloads.iter().map(|w| {
            vec![
                w.vm.clone(),
                w.department.clone(),
                w.project.clone(),
                w.kind.clone(),
                w.pods.to_string(),
                format!("{:.3}", w.cpu_request),
                format!("{:.3}", w.memory_request_gib),
                pct(w.cpu_pct),
                pct(w.mem_pct),
                w.note.clone(),
            ]
        }),
    );
    for (pod, reason) in &report.skipped {
        println!("skipped {pod}: {reason}");
    }
    let written = report.written.as_ref();
    for (vm, reason) in written.map(|w| w.rejected.as_slice()).unwrap_or_default() {
        println!("not written {vm}: {reason}");
    }
    println!(
        "{} nodes, {} running pods, {} workloads, {} pods skipped, {} samples written{}",
        report.nodes,
        report.pods,
        report.workloads.len(),
        report.skipped.len(),
        written.map_or(0, |w| w.samples_inserted),
        if report.metrics_available {
            ""
        } else {
            " (no metrics API)"
        }
    );
    Ok(())
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The findings table people read after an evaluation. For `ok`, RULE shows the nearer threshold.
pub fn print_findings(findings: &[FindingOut]) {
    print_table(
        &[
            "VM",
            "DEPARTMENT",
            "RESOURCE",
            "VERDICT",
            "VALUE",
            "RULE",
            "DAYS",
        ],
        findings.iter().map(|f| {
            vec![
                f.vm.clone(),
                f.department.clone(),
                f.resource.clone(),
                f.verdict.to_string(),
                f.value.map_or("-".into(), |v| format!("{v:.1}%")),
                f.comparison
                    .clone()
                    .map_or("-".into(), |c| format!("{} {c}", f.statistic)),
                f.days_with_samples.to_string(),
            ]
        }),
    );
}

/// Prints rows under a header, columns padded to the widest cell (by characters, so Chinese
/// text lines up as well as a terminal allows).
pub fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {}

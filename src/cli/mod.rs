//! The `cloudgov` command line: one module per command group, this one parses and dispatches.
//!
//! The CLI is the top layer: it reads the world once (rules, calendar, templates, fonts, the
//! environment; see [`load`]), opens the store, and hands commands to the jobs and actions. It
//! acts as a local operator ([`Viewer::local_operator`]), so its writes pass the same checks as
//! the web's and the API's, and each leaves an audit entry.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::core::access::Viewer;
use crate::jobs::JobContext;
use crate::jobs::notify::Notifier;
use crate::store::Store;
use output::{AtArgs, FormatArg};

mod calendar;
pub mod demo;
mod import;
pub mod kubernetes;
pub mod load;
mod network;
mod notices;
pub mod output;
mod reads;
mod requests;
mod review;
mod samples;
mod serve;
mod sources;
mod users;
mod vm;

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
    Serve(serve::ServeArgs),
    /// Import an inventory (TOML) or usage samples (CSV).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Evaluate every VM against the rules as of an instant, store findings, open notices.
    Evaluate(reads::EvaluateArgs),
    /// The latest stored findings.
    Findings(FormatArg),
    /// Downsize notices and expansion advice.
    #[command(subcommand)]
    Notices(notices::NoticesCommand),
    /// VMs and their agent tokens.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Projects: record a filing (art. 10).
    #[command(subcommand)]
    Project(vm::ProjectCommand),
    /// What each agent last reported about itself.
    Agents(FormatArg),
    /// One command to see it work: daemon on SQLite, demo fleet with history, an agent on this machine.
    Demo(demo::DemoArgs),
    /// Working-day arithmetic on the Chinese calendar (no database needed).
    #[command(subcommand)]
    Calendar(calendar::CalendarCommand),
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
    Outbox(notices::OutboxCommand),
    /// Export data as CSV to standard output.
    #[command(subcommand)]
    Export(import::ExportCommand),
    /// The annual project performance review (art. 10): score, grade and verdict per project.
    Review(review::ReviewArgs),
    /// Network registration (art. 14): checks, findings and the IP registry.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Accounts: center staff and department users, their API tokens, the audit log.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Kubernetes workloads discovered as inventory and evaluated like VMs.
    #[command(subcommand)]
    Kubernetes(kubernetes::KubernetesCommand),
    /// Raw usage samples as stored, for audit.
    #[command(subcommand)]
    Samples(samples::SamplesCommand),
    /// Resource requests (资源申请): submit, review with the department's usage, decide, deliver.
    #[command(subcommand)]
    Requests(requests::RequestsCommand),
    /// Usage sources besides the agent: Prometheus with node_exporter.
    #[command(subcommand)]
    Sources(sources::SourcesCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let rules = load::rules(cli.rules.as_deref())?;
    let calendar = load::calendar(cli.calendar_dir.as_deref())?;
    if let Command::Calendar(c) = cli.command {
        return calendar::run(&calendar, c);
    }
    let notifier = Notifier::new(
        load::templates(cli.templates_dir.as_deref())?,
        load::smtp_settings()?.as_ref(),
        load::chart_fonts(),
        load::delivery_settings(),
    )?;
    if let Command::Demo(args) = cli.command {
        return demo::run(args, rules, calendar, notifier).await;
    }
    let store = Store::connect(&cli.db)
        .await
        .with_context(|| format!("database {}", crate::core::token::redact_url(&cli.db)))?;
    // The prices of the review rules the command names (`serve`, `review`), else the built-in.
    let review_rules = match &cli.command {
        Command::Serve(a) => a.review_rules.as_deref(),
        Command::Review(a) => a.review_rules.as_deref(),
        _ => None,
    };
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(rules),
        calendar: Arc::new(calendar),
        notifier: Arc::new(notifier),
        prices: load::review_rules(review_rules)?.prices,
    };
    let session = Session {
        ctx: &ctx,
        operator: local_operator(),
    };
    let result = dispatch(&session, cli.command).await;
    store.close().await;
    result
}

/// What a command works with: the jobs' context, and the operator it acts as.
pub(crate) struct Session<'a> {
    pub ctx: &'a JobContext,
    pub operator: Viewer,
}

impl Session<'_> {
    /// An audit entry for a write that has no action of its own (imports, tokens, accounts).
    async fn audit(&self, action: &str, target: String, detail: String) -> anyhow::Result<()> {
        crate::jobs::actions::record(self.ctx, &self.operator, action, &target, &detail).await?;
        Ok(())
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

async fn dispatch(s: &Session<'_>, command: Command) -> anyhow::Result<()> {
    use reads::Read;
    match command {
        Command::Serve(args) => serve::run(s, args).await,
        Command::Import(cmd) => import::run(s, cmd).await,
        Command::Export(cmd) => import::export(s, cmd).await,
        Command::Evaluate(args) => reads::run(s, Read::Evaluate(args)).await,
        Command::Findings(f) => reads::run(s, Read::Findings(f)).await,
        Command::Tick(args) => reads::run(s, Read::Tick(args)).await,
        Command::Deadlines(args) => reads::run(s, Read::Deadlines(args)).await,
        Command::Alerts(f) => reads::run(s, Read::Alerts(f)).await,
        Command::Agents(f) => reads::run(s, Read::Agents(f)).await,
        Command::Status => reads::run(s, Read::Status).await,
        Command::Notices(cmd) => notices::run(s, cmd).await,
        Command::Outbox(cmd) => notices::outbox(s, cmd).await,
        Command::Vm(cmd) => vm::run(s, cmd).await,
        Command::Project(cmd) => vm::project(s, cmd).await,
        Command::Network(cmd) => network::run(s, cmd).await,
        Command::Review(args) => review::run(s, args).await,
        Command::User(cmd) => users::run(s.ctx, &s.operator, cmd).await,
        Command::Kubernetes(cmd) => kubernetes::run(s.ctx, cmd).await,
        Command::Samples(cmd) => samples::run(s, cmd).await,
        Command::Requests(cmd) => requests::run(s, cmd).await,
        Command::Sources(cmd) => sources::run(s, cmd).await,
        Command::Demo(_) | Command::Calendar(_) => {
            anyhow::bail!("handled before the database is opened")
        }
    }
}

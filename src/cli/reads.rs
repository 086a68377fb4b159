//! The reading commands and the jobs run by hand: `evaluate`, `findings`, `tick`, `deadlines`,
//! `alerts`, `agents`, `status`.

use chrono::{DateTime, Utc};
use clap::Args;

use super::Session;
use super::output::{AtArgs, print_findings};
use super::output::{Format, FormatArg, print_json, print_table};
use crate::core::calendar::shanghai_day;
use crate::jobs::evaluation::evaluate;
use crate::jobs::tick;
use crate::jobs::views::deadlines_as_of;

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

/// The reading commands, one variant each (see [`super::Command`]).
pub(super) enum Read {
    Evaluate(EvaluateArgs),
    Findings(FormatArg),
    Tick(AtArgs),
    Deadlines(AtArgs),
    Alerts(FormatArg),
    Agents(FormatArg),
    Status,
}

pub(super) async fn run(s: &Session<'_>, cmd: Read) -> anyhow::Result<()> {
    let (ctx, store) = (s.ctx, &s.ctx.store);
    match cmd {
        Read::Evaluate(args) => {
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
        Read::Findings(f) => {
            let rows = store.findings().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &["VM", "RESOURCE", "VERDICT", "VALUE", "RULE", "EVALUATED"],
                        rows.iter().map(|r| {
                            vec![
                                r.vm.clone(),
                                r.resource.to_string(),
                                r.verdict.to_string(),
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
        Read::Tick(args) => {
            let summary = tick(ctx, args.instant()).await?;
            match args.format {
                Format::Json => print_json(&summary),
                Format::Table => {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(())
                }
            }
        }
        Read::Deadlines(args) => {
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
        Read::Alerts(f) => {
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
        Read::Agents(f) => {
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
        Read::Status => {
            let today = shanghai_day(Utc::now());
            println!("database: {}", store.backend_name());
            println!("calendar: {}", super::calendar::years_text(&ctx.calendar));
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
    }
}

//! `cloudgov network ...`: the art. 14 checks, their findings, and the IP registry.

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;

use super::Session;
use super::output::{Format, FormatArg, print_json, print_table};
use crate::jobs::network_check;

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

pub(super) async fn run(s: &Session<'_>, cmd: NetworkCommand) -> anyhow::Result<()> {
    let (ctx, store, operator) = (s.ctx, &s.ctx.store, &s.operator);
    match cmd {
        NetworkCommand::Check {
            at,
            format,
            dry_run,
        } => {
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
        NetworkCommand::Findings(f) => {
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
        NetworkCommand::Registry(RegistryCommand::List(f)) => {
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
        NetworkCommand::Registry(RegistryCommand::Set {
            ip,
            mac,
            department,
            holder,
            note,
            gateway,
            registered_on,
        }) => {
            let edit = crate::jobs::actions::RegistryEdit {
                ip: ip.to_string(),
                mac: mac.to_string(),
                department: department.to_string(),
                holder,
                registered_on: registered_on.map(|d| d.to_string()),
                note,
                gateway,
            };
            let done = crate::jobs::actions::set_registry(ctx, operator, &edit).await?;
            println!("{}", done.message);
            Ok(())
        }
        NetworkCommand::Registry(RegistryCommand::Remove { ip }) => {
            let done =
                crate::jobs::actions::remove_registry(ctx, operator, &ip.to_string()).await?;
            println!("{}", done.message);
            Ok(())
        }
        NetworkCommand::Registry(RegistryCommand::History { ip }) => {
            print_json(&store.ip_registry_history(ip).await?)
        }
    }
}

//! `cloudgov requests ...`: resource requests (资源申请) submitted by staff for a department,
//! reviewed with the department's own usage, decided and delivered.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::Subcommand;

use super::Session;
use super::output::{Format, FormatArg, print_json, print_table};
use crate::core::requests::{RawRequest, RawRequestVm, checked_vms};
use crate::jobs::actions;
use crate::jobs::requests::{view, view_in};

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// Submit a request from a TOML file: `department`, `project` (an existing one, or a new
    /// one with `project_name`), `purpose`, `expected_load`, optional `desired_on` and
    /// `submitted_on` (back-dated entry), and `[[vm]]` with `id`, `vcpus`, `memory_gib`, `disk_gib`.
    Submit { file: PathBuf },
    /// Every request, newest first.
    List(FormatArg),
    /// One request with the recommended size of each VM, the reasons and the evidence.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Staff approve (as asked, or with `--amend FILE.toml` of `[[vm]]` sizes) or reject, with
    /// a reason.
    Decide {
        id: i64,
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        #[arg(long)]
        reject: bool,
        /// `[[vm]]` entries (`id`, `vcpus`, `memory_gib`, `disk_gib`) that change the asked sizes.
        #[arg(long, requires = "approve")]
        amend: Option<PathBuf>,
        #[arg(long)]
        reason: String,
        /// The day of the decision (default today): a decision made on paper, entered later.
        #[arg(long)]
        on: Option<NaiveDate>,
    },
    /// Staff record the delivery of an approved request: its VMs are created at the approved
    /// sizes and their 10-working-day deployment deadlines start.
    Deliver {
        id: i64,
        #[arg(long)]
        on: NaiveDate,
    },
}

/// An amendment file: `[[vm]]` entries only.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Amendment {
    #[serde(rename = "vm")]
    vms: Vec<RawRequestVm>,
}

fn read_toml<T: serde::de::DeserializeOwned>(file: &PathBuf) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", file.display()))
}

pub(super) async fn run(s: &Session<'_>, cmd: RequestsCommand) -> anyhow::Result<()> {
    let (ctx, operator) = (s.ctx, &s.operator);
    match cmd {
        RequestsCommand::Submit { file } => {
            let raw: RawRequest = read_toml(&file)?;
            let (_, done) = actions::submit_request(ctx, operator, raw).await?;
            println!("{}", done.message);
            Ok(())
        }
        RequestsCommand::List(f) => {
            let mut views = Vec::new();
            for r in ctx.store.requests_in(None).await? {
                views.push(view(ctx, r).await?);
            }
            match f.format {
                Format::Json => print_json(&views),
                Format::Table => {
                    print_table(
                        &[
                            "ID",
                            "STATE",
                            "DEPARTMENT",
                            "PROJECT",
                            "SUBMITTED",
                            "DUE",
                            "VMS",
                        ],
                        views.iter().map(|r| {
                            vec![
                                r.id.to_string(),
                                r.state.as_str().to_owned(),
                                r.department.clone(),
                                r.project.clone(),
                                r.submitted_on.clone(),
                                r.due.clone().unwrap_or_else(|| "-".into()),
                                r.vms.len().to_string(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        RequestsCommand::Show { id, format } => {
            let Some(r) = view_in(ctx, None, id).await? else {
                bail!("no request {id}");
            };
            match format {
                Format::Json => print_json(&r),
                Format::Table => {
                    println!(
                        "request {} ({}): {} / {}, submitted {}, due {}",
                        r.id,
                        r.state.as_str(),
                        r.department,
                        r.project,
                        r.submitted_on,
                        r.due.as_deref().unwrap_or("-")
                    );
                    for v in &r.vms {
                        println!(
                            "  {}: asked {} vCPU / {} GiB / {} GiB, recommended {} vCPU / {} GiB / {} GiB",
                            v.id,
                            v.vcpus,
                            v.memory_gib,
                            v.disk_gib,
                            v.recommended.vcpus,
                            v.recommended.memory_gib,
                            v.recommended.disk_gib
                        );
                        for reason in &v.reasons {
                            println!("    {reason}");
                        }
                    }
                    Ok(())
                }
            }
        }
        RequestsCommand::Decide {
            id,
            approve,
            reject: _,
            amend,
            reason,
            on,
        } => {
            let amend = match amend {
                Some(file) => {
                    let a: Amendment = read_toml(&file)?;
                    checked_vms(&a.vms).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                }
                None => Vec::new(),
            };
            let done =
                actions::decide_request(ctx, operator, id, approve, &amend, &reason, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        RequestsCommand::Deliver { id, on } => {
            let done = actions::deliver_request(ctx, operator, id, on).await?;
            println!("{}", done.message);
            Ok(())
        }
    }
}

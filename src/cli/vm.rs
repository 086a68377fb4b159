//! `cloudgov vm ...` and `cloudgov project ...`: VMs, their agent tokens, deployment and release;
//! a project's filing.

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;
use serde::Serialize;

use super::Session;
use super::output::{Format, FormatArg, print_json, print_table};
use crate::core::domain::VmId;

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

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Staff record that a project was filed (全口径备案) on a day: its filing deadline is done.
    File {
        project: crate::core::domain::ProjectId,
        #[arg(long)]
        on: NaiveDate,
    },
}

pub(super) async fn run(s: &Session<'_>, cmd: VmCommand) -> anyhow::Result<()> {
    let (ctx, store, operator) = (s.ctx, &s.ctx.store, &s.operator);
    match cmd {
        VmCommand::IssueToken { vm } => {
            let token = crate::core::token::generate().context("no randomness for a token")?;
            store
                .add_agent_token(&vm, &crate::core::token::hash(&token))
                .await?;
            s.audit("issue_agent_token", format!("vm {vm}"), String::new())
                .await?;
            println!("{token}");
            Ok(())
        }
        VmCommand::RevokeTokens { vm } => {
            let n = store.revoke_agent_tokens(&vm).await?;
            s.audit(
                "revoke_agent_tokens",
                format!("vm {vm}"),
                format!("{n} revoked"),
            )
            .await?;
            println!("revoked {n} tokens of {vm}");
            Ok(())
        }
        VmCommand::List(f) => {
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
        VmCommand::MarkDeployed { vm, on } => {
            let done = crate::jobs::actions::mark_deployed(ctx, operator, &vm, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        VmCommand::RequestRelease { vm, on, reason } => {
            let done =
                crate::jobs::actions::request_release(ctx, operator, &vm, on, &reason).await?;
            println!("{}", done.message);
            Ok(())
        }
        VmCommand::ConfirmRelease { vm, on } => {
            let done = crate::jobs::actions::confirm_release(ctx, operator, &vm, on).await?;
            println!("{}", done.message);
            Ok(())
        }
    }
}

pub(super) async fn project(s: &Session<'_>, cmd: ProjectCommand) -> anyhow::Result<()> {
    let (ctx, operator) = (s.ctx, &s.operator);
    match cmd {
        ProjectCommand::File { project, on } => {
            let done = crate::jobs::actions::file_project(ctx, operator, &project, on).await?;
            println!("{}", done.message);
            Ok(())
        }
    }
}

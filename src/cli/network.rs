//! `cloudgov network ...`: the art. 14 checks, their findings, the IP registry, and switch ARP
//! tables polled over SNMP (with the targets file the daemon polls).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};

use super::Session;
use super::output::{Format, FormatArg, print_json, print_table};
use crate::jobs::network_check;
use crate::jobs::snmp::{
    AuthProtocol, PrivProtocol, Secret, SnmpCredentials, SnmpTarget, SnmpTargets,
    parse_auth_protocol, parse_priv_protocol,
};

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
    /// Read a switch's or router's ARP table over SNMP (v2c, or v3 authPriv) and record its
    /// entries as sightings, like `import arp`.
    PollSnmp(PollSnmpArgs),
}

/// `network poll-snmp`: one target from flags, or every target of a targets file. Secrets
/// come from flags, the environment or files, and are never printed or logged.
#[derive(Debug, Args)]
pub struct PollSnmpArgs {
    /// The agent: HOST[:PORT] (port 161 by default; IPv6 as [ADDRESS]:PORT).
    #[arg(long, required_unless_present = "targets", requires = "source")]
    target: Option<String>,
    /// The name the sightings carry (the switch), as the `source` column of an ARP CSV.
    #[arg(long, requires = "target")]
    source: Option<String>,
    /// Poll every target of this file once instead (the file `serve --snmp-targets` reads).
    #[arg(long, conflicts_with_all = ["target", "community", "community_file", "v3_user"])]
    targets: Option<PathBuf>,
    /// SNMPv2c community. Default: the environment variable CLOUDGOV_SNMP_COMMUNITY.
    #[arg(long, conflicts_with_all = ["community_file", "v3_user"])]
    community: Option<String>,
    /// SNMPv2c: read the community from this file (its first line).
    #[arg(long, conflicts_with = "v3_user")]
    community_file: Option<PathBuf>,
    /// SNMPv3 user, polled with authPriv (needs the four options below).
    #[arg(long)]
    v3_user: Option<String>,
    /// SNMPv3 authentication: md5, sha (SHA-1), sha224, sha256, sha384, sha512.
    #[arg(long, requires = "v3_user", value_parser = parse_auth_protocol)]
    auth_protocol: Option<AuthProtocol>,
    /// SNMPv3: read the auth password from this file. Default: CLOUDGOV_SNMP_AUTH_PASSWORD.
    #[arg(long, requires = "v3_user")]
    auth_password_file: Option<PathBuf>,
    /// SNMPv3 privacy: des, 3des, aes (AES-128), aes192, aes256, aes192c, aes256c.
    #[arg(long, requires = "v3_user", value_parser = parse_priv_protocol)]
    priv_protocol: Option<PrivProtocol>,
    /// SNMPv3: read the priv password from this file. Default: CLOUDGOV_SNMP_PRIV_PASSWORD.
    #[arg(long, requires = "v3_user")]
    priv_password_file: Option<PathBuf>,
    /// Seconds to wait for each answer (each request is tried twice; a targets file sets its
    /// own with `timeout_seconds`).
    #[arg(long, default_value_t = 3, conflicts_with = "targets")]
    timeout: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print what the agents show but store nothing.
    #[arg(long)]
    dry_run: bool,
}

const COMMUNITY_ENV: &str = "CLOUDGOV_SNMP_COMMUNITY";
const AUTH_PASSWORD_ENV: &str = "CLOUDGOV_SNMP_AUTH_PASSWORD";
const PRIV_PASSWORD_ENV: &str = "CLOUDGOV_SNMP_PRIV_PASSWORD";

/// A secret from its file when one is named (an explicit flag wins over the environment),
/// else from the environment variable; its first line either way.
fn secret(file: Option<&Path>, env: &str, what: &str) -> anyhow::Result<Option<Secret>> {
    let value = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the {what} file {}", path.display()))?,
        ),
        None => std::env::var(env).ok(),
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.lines().next().unwrap_or("").to_owned();
    anyhow::ensure!(
        !value.is_empty(),
        "the {what} is empty (from {})",
        file.map_or_else(|| env.to_owned(), |p| p.display().to_string())
    );
    Ok(Some(Secret::new(value)))
}

impl PollSnmpArgs {
    /// The targets to poll: the file's, or the one the flags describe.
    fn targets(&self) -> anyhow::Result<Vec<SnmpTarget>> {
        if let Some(file) = &self.targets {
            return load_snmp_targets(file);
        }
        let (Some(address), Some(source)) = (&self.target, &self.source) else {
            anyhow::bail!("give --target and --source, or --targets FILE");
        };
        let credentials = match &self.v3_user {
            None => {
                let community = match &self.community {
                    Some(c) => Secret::new(c.clone()),
                    None => secret(self.community_file.as_deref(), COMMUNITY_ENV, "community")?
                        .with_context(|| {
                            format!(
                                "SNMP target {address}: give --community (or {COMMUNITY_ENV}, or \
                                 --community-file) for SNMPv2c, or --v3-user with its protocols \
                                 and passwords for SNMPv3"
                            )
                        })?,
                };
                SnmpCredentials::V2c { community }
            }
            Some(user) => {
                let missing =
                    |what: &str| format!("SNMP target {address}: SNMPv3 (authPriv) needs {what}");
                SnmpCredentials::V3 {
                    user: user.clone(),
                    auth_protocol: self
                        .auth_protocol
                        .with_context(|| missing("--auth-protocol"))?,
                    auth_password: secret(
                        self.auth_password_file.as_deref(),
                        AUTH_PASSWORD_ENV,
                        "auth password",
                    )?
                    .with_context(|| {
                        missing(&format!("{AUTH_PASSWORD_ENV} or --auth-password-file"))
                    })?,
                    priv_protocol: self
                        .priv_protocol
                        .with_context(|| missing("--priv-protocol"))?,
                    priv_password: secret(
                        self.priv_password_file.as_deref(),
                        PRIV_PASSWORD_ENV,
                        "priv password",
                    )?
                    .with_context(|| {
                        missing(&format!("{PRIV_PASSWORD_ENV} or --priv-password-file"))
                    })?,
                }
            }
        };
        let target = SnmpTarget::new(address, source, credentials)?
            .with_timeout(std::time::Duration::from_secs(self.timeout))?;
        Ok(vec![target])
    }
}

/// An SNMP targets file (`serve --snmp-targets FILE`, `network poll-snmp --targets FILE`):
/// parsed, and every secret read once, now, from its environment variable or file.
pub(super) fn load_snmp_targets(file: &Path) -> anyhow::Result<Vec<SnmpTarget>> {
    let origin = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {origin}"))?;
    let targets = SnmpTargets::parse(&origin, &text)?.resolve(
        |name| std::env::var(name).ok(),
        |path| std::fs::read_to_string(path),
    )?;
    Ok(targets)
}

/// Polls each target in turn: each one's entries are recorded (and audited) on their own, so
/// one switch that does not answer loses nothing of the others; the failures are the error.
async fn poll_snmp(s: &Session<'_>, args: &PollSnmpArgs) -> anyhow::Result<()> {
    let targets = args.targets()?;
    let mut reports = Vec::with_capacity(targets.len());
    let mut failures = Vec::new();
    for target in &targets {
        let report =
            match crate::jobs::snmp::poll(&s.ctx.store, target, Utc::now(), !args.dry_run).await {
                Ok(report) => report,
                Err(e) => {
                    failures.push(e.to_string());
                    continue;
                }
            };
        let summary = format!(
            "polled {} ARP entries from {} ({})",
            report.entries.len(),
            report.target,
            report.table
        );
        if !args.dry_run {
            s.audit(
                "poll_snmp",
                format!("snmp {} v{}", report.target, target.version()),
                format!("{summary} as source {}", report.source),
            )
            .await?;
        }
        reports.push((report, summary));
    }
    match args.format {
        Format::Json if args.targets.is_none() => {
            if let Some((report, _)) = reports.first() {
                print_json(report)?;
            }
        }
        Format::Json => print_json(&reports.iter().map(|(r, _)| r).collect::<Vec<_>>())?,
        Format::Table => {
            for (report, summary) in &reports {
                print_table(
                    &["IP", "MAC"],
                    report
                        .entries
                        .iter()
                        .map(|e| vec![e.ip.to_string(), e.mac.to_string()]),
                );
                println!("{summary}");
                if report.skipped > 0 {
                    println!(
                        "{} rows skipped (invalid, incomplete or without a MAC)",
                        report.skipped
                    );
                }
            }
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 if targets.len() == 1 => Err(anyhow::anyhow!(failures.remove(0))),
        n => Err(anyhow::anyhow!(
            "{n} of {} SNMP targets failed (the others were recorded):\n{}",
            targets.len(),
            failures.join("\n")
        )),
    }
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
        NetworkCommand::PollSnmp(args) => poll_snmp(s, &args).await,
    }
}

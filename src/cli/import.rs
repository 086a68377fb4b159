//! `cloudgov import ...` and `cloudgov export ...`: inventory, samples, the IP registry and ARP
//! tables in; the IP registry out. Each import is checked whole before anything is written.

use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;

use super::Session;
use crate::core::calendar::shanghai_day;
use crate::core::import::{parse_arp, parse_ip_registry, parse_samples};
use crate::core::inventory::Inventory;
use crate::store::SightingRow;

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

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The IP registry, in the format `import ip-registry` reads.
    IpRegistry,
}

/// The instants an import accepts: as ingest does, or any past time with `--allow-history`.
fn arrival_window(allow_history: bool) -> crate::core::domain::ArrivalWindow {
    if allow_history {
        crate::core::domain::ArrivalWindow::with_history(Utc::now())
    } else {
        crate::core::domain::ArrivalWindow::recent(Utc::now())
    }
}

pub(super) async fn run(s: &Session<'_>, cmd: ImportCommand) -> anyhow::Result<()> {
    let store = &s.ctx.store;
    match cmd {
        ImportCommand::Inventory { file } => {
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
            s.audit(
                "import_inventory",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        ImportCommand::Samples {
            file,
            allow_history,
        } => {
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
            s.audit(
                "import_samples",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        ImportCommand::IpRegistry { file } => {
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
            let counts = store
                .apply_ip_registry(&rows, &source, shanghai_day(Utc::now()))
                .await?;
            let text = format!(
                "ip registry: {} added, {} changed, {} unchanged",
                counts.added, counts.changed, counts.unchanged
            );
            s.audit(
                "import_ip_registry",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
        ImportCommand::Arp {
            file,
            allow_history,
        } => {
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
            s.audit(
                "import_arp",
                format!("file {}", file.display()),
                text.clone(),
            )
            .await?;
            println!("{text}");
            Ok(())
        }
    }
}

pub(super) async fn export(s: &Session<'_>, cmd: ExportCommand) -> anyhow::Result<()> {
    let store = &s.ctx.store;
    match cmd {
        ExportCommand::IpRegistry => {
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
    }
}

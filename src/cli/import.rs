//! `cloudgov import ...` and `cloudgov export ...`: inventory, samples, the IP registry and ARP
//! tables in; the IP registry out. Each import is all or nothing; samples stream in bounded
//! memory.

use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use clap::{Subcommand, ValueEnum};

use super::Session;
use crate::core::arp_text::{ArpTextFormat, parse_arp_text};
use crate::core::calendar::shanghai_day;
use crate::core::import::{SampleParser, parse_arp, parse_ip_registry};
use crate::core::inventory::Inventory;
use crate::store::SightingRow;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Departments, projects and VMs from a TOML file (created or updated by id).
    Inventory { file: PathBuf },
    /// Samples from a CSV file with header `vm,ts,cpu_pct,mem_pct,disk_pct` (optionally
    /// followed by `net_rx_bps,net_tx_bps`). Streams in bounded memory, all or nothing.
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
    /// A switch's or router's ARP/neighbour table: CSV `ip,mac,seen_at,source`, or the text of
    /// Huawei/H3C `display arp` or Cisco `show ip arp` (seen now, by --source).
    Arp {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ArpFormat::Csv)]
        format: ArpFormat,
        /// The switch the text came from (huawei and cisco; a CSV's rows name their own).
        #[arg(long)]
        source: Option<String>,
        /// Accept entries older than 400 days (never the future; csv only).
        #[arg(long)]
        allow_history: bool,
    },
}

/// What an ARP file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArpFormat {
    /// CSV `ip,mac,seen_at,source`.
    Csv,
    /// Huawei or H3C `display arp` output.
    Huawei,
    /// Cisco `show ip arp` output (IOS, NX-OS; IOS XR `show arp`).
    Cisco,
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
            // The inventory may deliver approved requests' VMs (art. 13: delivery starts the
            // deployment deadline either way).
            let delivered = store.link_delivered_requests().await?;
            let mut text = format!(
                "imported {} departments, {} projects, {} VMs added, {} updated, {} allocation changes",
                summary.departments,
                summary.projects,
                summary.vms_added,
                summary.vms_updated,
                summary.allocations_changed
            );
            if delivered > 0 {
                text.push_str(&format!("; {delivered} approved requests delivered"));
            }
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
            let keys = store.vm_keys().await?;
            let (inserted, duplicates) =
                import_samples(store, &file, &keys, arrival_window(allow_history)).await?;
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
            format,
            source,
            allow_history,
        } => {
            let origin = file.display().to_string();
            let text_format = match format {
                ArpFormat::Csv => None,
                ArpFormat::Huawei => Some(ArpTextFormat::Huawei),
                ArpFormat::Cisco => Some(ArpTextFormat::Cisco),
            };
            let rows = match (text_format, source) {
                (None, Some(_)) => anyhow::bail!(
                    "--source is for --format huawei or cisco: a CSV's rows carry their own source"
                ),
                (None, None) => {
                    let input = std::fs::File::open(&file)
                        .with_context(|| format!("cannot open {origin}"))?;
                    parse_arp(
                        &origin,
                        std::io::BufReader::new(input),
                        arrival_window(allow_history),
                    )
                    .context("nothing imported")?
                }
                (Some(_), None) => anyhow::bail!(
                    "--format {}: give --source NAME, the switch the table came from",
                    format.name()
                ),
                (Some(text_format), Some(source)) => {
                    anyhow::ensure!(
                        !allow_history,
                        "--allow-history is for CSV files: a {} table is seen now",
                        format.name()
                    );
                    let bytes =
                        std::fs::read(&file).with_context(|| format!("cannot read {origin}"))?;
                    // Terminal logs may carry a stray non-UTF-8 byte (a GBK description): it
                    // is in no column that is read.
                    let text = String::from_utf8_lossy(&bytes);
                    parse_arp_text(&origin, text_format, &text, &source, Utc::now())
                        .context("nothing imported")?
                }
            };
            let sightings: Vec<SightingRow> = rows.iter().map(SightingRow::from).collect();
            store.record_sightings(&sightings).await?;
            let text = format!("imported {} ARP entries", rows.len());
            s.audit("import_arp", format!("file {origin}"), text.clone())
                .await?;
            println!("{text}");
            Ok(())
        }
    }
}

impl ArpFormat {
    fn name(self) -> &'static str {
        match self {
            ArpFormat::Csv => "csv",
            ArpFormat::Huawei => "huawei",
            ArpFormat::Cisco => "cisco",
        }
    }
}

/// Rows checked and written per step of a samples import: memory holds one step.
const IMPORT_CHUNK_ROWS: usize = 20_000;

/// Streams a samples CSV into one transaction, a chunk at a time, with a progress bar on a
/// terminal (rows, rate, bytes, ETA). The first bad row drops the transaction: nothing is kept.
async fn import_samples(
    store: &crate::store::Store,
    file: &std::path::Path,
    keys: &std::collections::HashMap<String, i64>,
    window: crate::core::domain::ArrivalWindow,
) -> anyhow::Result<(u64, u64)> {
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let origin = file.display().to_string();
    let mut parser = SampleParser::new(
        &origin,
        std::io::BufReader::with_capacity(256 * 1024, input),
        keys,
        window,
    )
    .context("nothing imported")?;
    // Hidden unless standard error is a terminal.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {wide_bar} {bytes}/{total_bytes} {elapsed_precise} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut import = store.begin_sample_import().await?;
    let mut rows = 0u64;
    loop {
        let chunk = parser
            .next_chunk(IMPORT_CHUNK_ROWS)
            .context("nothing imported")?;
        if chunk.is_empty() {
            break;
        }
        import.add(&chunk).await.context("nothing imported")?;
        rows += chunk.len() as u64;
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
        bar.set_position(parser.bytes_read());
    }
    let counts = import.commit().await.context("nothing imported")?;
    bar.finish_and_clear();
    Ok(counts)
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

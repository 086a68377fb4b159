//! `cloudgov samples export VM`: the raw samples stored for one VM, for audit, exactly as kept
//! (percentages to 0.01, rates in whole bytes per second), from the head and the compacted
//! blocks alike. The CSV reads back with `cloudgov import samples`.

use std::io::Write as _;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use super::Session;
use crate::core::import::{SAMPLES_HEADER, SAMPLES_OPTIONAL};
use crate::core::samples::{Sample, shanghai_day_start};

#[derive(Debug, Subcommand)]
pub enum SamplesCommand {
    /// Print a VM's stored samples: ts and every field.
    Export {
        /// The VM's id.
        vm: String,
        /// From this instant (RFC 3339) or day (YYYY-MM-DD, Asia/Shanghai), inclusive; default:
        /// the first stored.
        #[arg(long, value_parser = parse_bound)]
        from: Option<i64>,
        /// Up to this instant or the end of this day, exclusive of the instant; default: now.
        #[arg(long, value_parser = parse_end)]
        to: Option<i64>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// An instant (RFC 3339) or the start of a day in Asia/Shanghai, as Unix seconds.
fn parse_bound(text: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(shanghai_day_start)
        .map_err(|_| {
            format!("{text:?} is neither an RFC 3339 time with offset nor a YYYY-MM-DD day")
        })
}

/// As [`parse_bound`], but a day means its end: `--to 2026-01-31` includes that day.
fn parse_end(text: &str) -> Result<i64, String> {
    match DateTime::<FixedOffset>::parse_from_rfc3339(text) {
        Ok(t) => Ok(t.timestamp()),
        Err(_) => parse_bound(text).map(|start| start + 86_400),
    }
}

/// Days read per query: memory holds a week of one VM's samples at a time.
const DAYS_PER_READ: i64 = 7;

#[derive(Serialize)]
struct ExportedSample<'a> {
    vm: &'a str,
    ts: String,
    cpu_pct: f64,
    mem_pct: f64,
    disk_pct: Option<f64>,
    net_rx_bps: Option<u64>,
    net_tx_bps: Option<u64>,
    inbound_connections: Option<u32>,
}

impl<'a> ExportedSample<'a> {
    fn new(vm: &'a str, s: &Sample) -> Self {
        ExportedSample {
            vm,
            ts: shanghai_rfc3339(s.ts),
            cpu_pct: s.cpu.percent(),
            mem_pct: s.mem.percent(),
            disk_pct: s.disk.map(|d| d.percent()),
            net_rx_bps: s.net_rx_bps,
            net_tx_bps: s.net_tx_bps,
            inbound_connections: s.inbound_connections,
        }
    }
}

/// Unix seconds in Asia/Shanghai (+08:00), the offset the regulations' days are counted in.
fn shanghai_rfc3339(ts: i64) -> String {
    let offset = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("a valid offset"));
    DateTime::<Utc>::from_timestamp(ts, 0)
        .map(|t| t.with_timezone(&offset).to_rfc3339())
        .unwrap_or_default()
}

pub(super) async fn run(s: &Session<'_>, cmd: SamplesCommand) -> anyhow::Result<()> {
    let SamplesCommand::Export {
        vm,
        from,
        to,
        format,
    } = cmd;
    let store = &s.ctx.store;
    let key = *store
        .vm_keys()
        .await?
        .get(&vm)
        .with_context(|| format!("unknown VM {vm:?}"))?;
    let to = to.unwrap_or_else(|| Utc::now().timestamp() + 1);
    let from = match from {
        Some(from) => from,
        None => match store.first_sample_ts(key).await? {
            Some(first) => first,
            None => to,
        },
    };
    anyhow::ensure!(from <= to, "--from is after --to");
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(SAMPLES_HEADER.iter().chain(&SAMPLES_OPTIONAL))?;
            let text = |v: Option<String>| v.unwrap_or_default();
            for_each_sample(store, key, from, to, |sample| {
                w.write_record([
                    vm.clone(),
                    shanghai_rfc3339(sample.ts),
                    sample.cpu.to_string(),
                    sample.mem.to_string(),
                    text(sample.disk.map(|d| d.to_string())),
                    text(sample.net_rx_bps.map(|v| v.to_string())),
                    text(sample.net_tx_bps.map(|v| v.to_string())),
                    text(sample.inbound_connections.map(|v| v.to_string())),
                ])?;
                Ok(())
            })
            .await?;
            w.flush()?;
        }
        ExportFormat::Json => {
            let mut out = out;
            let mut first = true;
            write!(out, "[")?;
            for_each_sample(store, key, from, to, |sample| {
                write!(out, "{}\n  ", if first { "" } else { "," })?;
                serde_json::to_writer(&mut out, &ExportedSample::new(&vm, sample))?;
                first = false;
                Ok(())
            })
            .await?;
            writeln!(out, "{}]", if first { "" } else { "\n" })?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Calls `each` with every stored sample of `vm_key` in `from..to`, oldest first, reading a few
/// days at a time.
async fn for_each_sample(
    store: &crate::store::Store,
    vm_key: i64,
    from: i64,
    to: i64,
    mut each: impl FnMut(&Sample) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut start = from;
    while start < to {
        let end = start.saturating_add(DAYS_PER_READ * 86_400).min(to);
        for sample in store.raw_samples(vm_key, start, end).await? {
            each(&sample)?;
        }
        start = end;
    }
    Ok(())
}

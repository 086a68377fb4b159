//! What the commands print: JSON or a table, and the shared flags that choose.

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::store::FindingRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
    pub(super) fn instant(&self) -> DateTime<Utc> {
        self.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc))
    }
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The findings table people read after an evaluation. For `ok`, RULE shows the nearer threshold.
pub fn print_findings(findings: &[FindingRow]) {
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
                f.resource.to_string(),
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

//! The review as CSV: one row per project, every cell spreadsheet-safe.

use super::{ReportError, Totals, fixed, verdict_code};
use crate::core::review::{ProjectReview, ReviewVerdict};

/// The summary CSV's columns. Percentages are of the allocation, with one decimal; an empty
/// cell is a figure that does not exist (no VM with data).
pub(super) const CSV_HEADER: [&str; 17] = [
    "year",
    "project",
    "name",
    "department",
    "department_name",
    "score",
    "grade",
    "verdict",
    "idle_cost_yuan",
    "cpu_p95_pct",
    "memory_p95_pct",
    "coverage_pct",
    "notices_received",
    "notices_on_time",
    "deployments_on_time",
    "network_findings",
    "not_filed",
];

/// The review as CSV, one row per project in the given order, after a header row (see
/// `CSV_HEADER`). `cpu_p95_pct` is the VMs' CPU p95 weighted by their vCPUs, `memory_p95_pct`
/// weighted by their memory; `verdict` is `keep`, `consolidate`, `cancel` or `not_filed`, and
/// `not_filed` is `true` for the last.
pub fn summary_csv(reviews: &[ProjectReview]) -> Result<String, ReportError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER)?;
    for r in reviews {
        let totals = Totals::of(&r.facts.vms);
        let f = &r.facts;
        out.write_record(crate::core::spreadsheet::record([
            r.year.to_string(),
            r.project.clone(),
            r.name.clone(),
            r.department.clone(),
            r.department_name.clone(),
            fixed(r.score, 1),
            r.grade.clone(),
            verdict_code(r.verdict).to_owned(),
            fixed(r.idle_cost_yuan, 2),
            totals.usage[0].1.map_or_else(String::new, |x| fixed(x, 1)),
            totals.usage[1].1.map_or_else(String::new, |x| fixed(x, 1)),
            totals.coverage().map_or_else(String::new, |x| fixed(x, 1)),
            f.notices_received.to_string(),
            f.notices_done_on_time.to_string(),
            f.deployments_on_time.to_string(),
            f.network_findings.to_string(),
            (r.verdict == ReviewVerdict::NotFiled).to_string(),
        ]))?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| {
        ReportError::Csv(csv::Error::from(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e,
        )))
    })
}

//! Output of the annual project performance review (Pingdu art. 10): the summary CSV, a printable
//! HTML page per project and an overview page, each project's yearly utilisation chart, and a
//! report directory holding all of them.
//!
//! - [`csv`]: the summary CSV; [`html`]: the pages, from templates in `templates/`; [`chart`]:
//!   the utilisation chart, its thresholds from the rules.
//! - Everything but [`write_report_dir`] is pure: reviews in, text or PNG bytes out.

pub mod chart;
pub mod csv;
pub mod html;

pub use chart::{UTILISATION_CHART_HEIGHT, UTILISATION_CHART_WIDTH, utilisation_chart_png};
pub use csv::summary_csv;
pub use html::{project_html, summary_html};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::chart::{ChartError, ChartFonts, Labels};
use crate::core::review::{ProjectReview, ReviewVerdict, VmYear};

/// Why a report could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A page template failed to render (a bug in the template or its context).
    #[error("rendering the {template} page failed: {source}")]
    Template {
        template: &'static str,
        #[source]
        source: minijinja::Error,
    },
    /// The summary CSV could not be written.
    #[error("writing the review CSV failed: {0}")]
    Csv(#[from] ::csv::Error),
    /// A project's utilisation chart could not be drawn or encoded.
    #[error("the utilisation chart of project {project}: {source}")]
    Chart {
        project: String,
        #[source]
        source: ChartError,
    },
    /// A file of the report directory could not be written.
    #[error("writing {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Figures shared by the CSV and the pages.

/// The verdict as the CSV writes it (the serde name).
fn verdict_code(v: ReviewVerdict) -> &'static str {
    match v {
        ReviewVerdict::Keep => "keep",
        ReviewVerdict::Consolidate => "consolidate",
        ReviewVerdict::Cancel => "cancel",
        ReviewVerdict::NotFiled => "not_filed",
    }
}

/// The verdict as the pages write it.
fn verdict_word(v: ReviewVerdict) -> &'static str {
    match v {
        ReviewVerdict::Keep => "保留",
        ReviewVerdict::Consolidate => "整合",
        ReviewVerdict::Cancel => "取消",
        ReviewVerdict::NotFiled => "未备案（停止预算）",
    }
}

/// What the verdict means under art. 10.
fn verdict_meaning(v: ReviewVerdict) -> &'static str {
    match v {
        ReviewVerdict::Keep => "评价合格，项目保留",
        ReviewVerdict::Consolidate => "评价不合格，项目予以整合，停止安排运维经费",
        ReviewVerdict::Cancel => "评价不合格，项目予以取消，停止安排运维经费",
        ReviewVerdict::NotFiled => "未按时全口径备案，停止安排运维经费",
    }
}

#[derive(Serialize)]
struct VerdictView {
    /// CSS class suffix: `v-keep`, `v-not_filed`, ...
    code: &'static str,
    word: &'static str,
    /// Longer than the verdict box's large type has room for.
    long: bool,
    meaning: &'static str,
}

fn verdict_view(v: ReviewVerdict) -> VerdictView {
    let word = verdict_word(v);
    VerdictView {
        code: verdict_code(v),
        word,
        long: word.chars().count() > 4,
        meaning: verdict_meaning(v),
    }
}

/// The Chinese name of a score part (the names `review::score` gives), or the name itself.
fn part_label(name: &str) -> &str {
    match name {
        "utilisation" => "资源利用",
        "adjustments" => "资源调整",
        "deployment" => "系统部署",
        "coverage" => "监测覆盖",
        "network" => "网络登记",
        other => other,
    }
}

/// A project's VMs taken together.
#[derive(Debug, Clone, PartialEq)]
struct Totals {
    vcpus: f64,
    memory_gib: f64,
    disk_gib: f64,
    /// (avg, p95) of each resource [cpu, memory, disk], weighted by the VMs' allocation of it
    /// (vCPUs, GiB), over the VMs with data; `None` without such VMs.
    usage: [(Option<f64>, Option<f64>); 3],
    days_in_service: u32,
    days_with_data: u32,
    downsize_days: [u32; 3],
    expand_days: [u32; 3],
}

impl Totals {
    fn of(vms: &[VmYear]) -> Totals {
        let with_data: Vec<&VmYear> = vms.iter().filter(|v| v.days_with_data > 0).collect();
        let usage = |alloc: fn(&VmYear) -> f64,
                     usage: fn(&VmYear) -> crate::core::review::Usage| {
            (
                weighted(&with_data, alloc, |v| usage(v).avg),
                weighted(&with_data, alloc, |v| usage(v).p95),
            )
        };
        let sum3 = |f: fn(&VmYear) -> [u32; 3]| {
            vms.iter().map(f).fold([0u32; 3], |acc, d| {
                [
                    acc[0].saturating_add(d[0]),
                    acc[1].saturating_add(d[1]),
                    acc[2].saturating_add(d[2]),
                ]
            })
        };
        Totals {
            vcpus: vms.iter().map(|v| v.vcpus).sum(),
            memory_gib: vms.iter().map(|v| v.memory_gib).sum(),
            disk_gib: vms.iter().map(|v| v.disk_gib).sum(),
            usage: [
                usage(|v| v.vcpus, |v| v.cpu),
                usage(|v| v.memory_gib, |v| v.memory),
                usage(|v| v.disk_gib, |v| v.disk),
            ],
            days_in_service: vms
                .iter()
                .fold(0u32, |a, v| a.saturating_add(v.days_in_service)),
            days_with_data: vms
                .iter()
                .fold(0u32, |a, v| a.saturating_add(v.days_with_data)),
            downsize_days: sum3(|v| v.downsize_days),
            expand_days: sum3(|v| v.expand_days),
        }
    }

    /// Share of the in-service days with data, as `review::score` computes it for the score.
    fn coverage(&self) -> Option<f64> {
        coverage(self.days_in_service, self.days_with_data)
    }
}

/// The `weight`-weighted mean of `value` over `vms` with a positive finite weight and a finite
/// value; `None` if there is none.
fn weighted(
    vms: &[&VmYear],
    weight: impl Fn(&VmYear) -> f64,
    value: impl Fn(&VmYear) -> f64,
) -> Option<f64> {
    let (mut sum, mut total) = (0.0, 0.0);
    for vm in vms {
        let (w, v) = (weight(vm), value(vm));
        if w.is_finite() && w > 0.0 && v.is_finite() {
            sum += w * v;
            total += w;
        }
    }
    (total > 0.0).then(|| sum / total)
}

/// Percent of the in-service days with data, at most 100; `None` without in-service days.
fn coverage(days_in_service: u32, days_with_data: u32) -> Option<f64> {
    (days_in_service > 0)
        .then(|| (100.0 * f64::from(days_with_data) / f64::from(days_in_service)).min(100.0))
}

/// `x` with `decimals` decimals, never `-0.0`; empty if not finite.
fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_owned(),
        _ => s,
    }
}

/// `fixed`, or an em dash for a missing or non-finite figure (for the pages).
fn shown(x: Option<f64>, decimals: usize) -> String {
    match x.map(|x| fixed(x, decimals)) {
        Some(s) if !s.is_empty() => s,
        _ => "—".to_owned(),
    }
}

/// A weight or allocation: whole numbers without decimals, others with one.
fn plain(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 {
        fixed(x, 0)
    } else {
        fixed(x, 1)
    }
}

/// Whole yuan with thousands separators: `12,345`; an em dash if not finite.
fn yuan(x: f64) -> String {
    let whole = fixed(x.round(), 0);
    if whole.is_empty() {
        return "—".to_owned();
    }
    let (sign, digits) = match whole.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", whole.as_str()),
    };
    let mut out = String::with_capacity(whole.len() + digits.len() / 3);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The report directory.

/// A file name stem for `project`: letters, digits, `-`, `_` and `.` kept, anything else
/// (path separators included) made `_`; no leading or trailing dot; at most 80 characters.
fn file_stem(project: &str) -> String {
    let kept: String = project
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let trimmed = kept.trim_matches('.');
    if trimmed.is_empty() {
        "project".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A distinct stem per review (case-insensitively, and never `index`): `-2`, `-3`, ... added to
/// a stem already taken.
fn file_stems(reviews: &[ProjectReview]) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::from(["index".to_owned()]);
    reviews
        .iter()
        .map(|r| {
            let base = file_stem(&r.project);
            let mut stem = base.clone();
            let mut n = 2;
            while !taken.insert(stem.to_lowercase()) {
                stem = format!("{base}-{n}");
                n += 1;
            }
            stem
        })
        .collect()
}

fn write_file(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    match std::fs::write(&path, bytes) {
        Ok(()) => Ok(path),
        Err(source) => Err(ReportError::Io { path, source }),
    }
}

/// The rules a project's VMs were judged by: the defaults with its department's and its own
/// overrides.
pub fn rules_of(
    rules: &crate::core::rules::RuleSet,
    review: &ProjectReview,
) -> crate::core::rules::ResourceRules {
    match (
        crate::core::domain::DepartmentId::try_from(review.department.as_str()),
        crate::core::domain::ProjectId::try_from(review.project.as_str()),
    ) {
        (Ok(d), Ok(p)) => rules.for_vm(&d, &p),
        _ => *rules.defaults(),
    }
}

/// Writes the year's report into `dir` (created if missing; files of the same names are
/// replaced): per project `{project}-utilisation.png` and `{project}.html`, then
/// `review-{year}.csv` and `index.html` (the overview, linking the project pages). `{project}`
/// is the project id made safe as a file name (see `file_stem`). Calls `progress(n)` after the
/// n-th project (n from 1). Returns the paths written, in that order.
pub fn write_report_dir(
    dir: &Path,
    year: i32,
    reviews: &[ProjectReview],
    rules: &crate::core::rules::RuleSet,
    fonts: &ChartFonts,
    labels: Labels,
    progress: impl Fn(usize),
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let stems = file_stems(reviews);
    let mut written = Vec::with_capacity(2 * reviews.len() + 2);
    for (i, (review, stem)) in reviews.iter().zip(&stems).enumerate() {
        let chart_file = format!("{stem}-utilisation.png");
        let png = utilisation_chart_png(review, &rules_of(rules, review), fonts, labels)?;
        written.push(write_file(dir.join(&chart_file), &png)?);
        let html = project_html(review, &chart_file)?;
        written.push(write_file(
            dir.join(format!("{stem}.html")),
            html.as_bytes(),
        )?);
        progress(i + 1);
    }
    let csv = summary_csv(reviews)?;
    written.push(write_file(
        dir.join(format!("review-{year}.csv")),
        csv.as_bytes(),
    )?);
    let index = summary_html(year, reviews, |r| {
        reviews
            .iter()
            .position(|x| std::ptr::eq(x, r))
            .and_then(|i| stems.get(i))
            .map_or_else(|| file_stem(&r.project), Clone::clone)
            + ".html"
    })?;
    written.push(write_file(dir.join("index.html"), index.as_bytes())?);
    Ok(written)
}

#[cfg(test)]
mod tests;

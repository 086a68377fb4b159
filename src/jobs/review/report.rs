//! Output of the annual project performance review (Pingdu art. 10): the summary CSV, a printable
//! HTML page per project and an overview page, each project's yearly utilisation chart, and a
//! report directory holding all of them.
//!
//! - Everything but [`write_report_dir`] is pure: reviews in, text or PNG bytes out.
//! - The pages are self-contained (inline CSS, no JavaScript, no external resources), Chinese,
//!   and HTML-escaped throughout: names and explanation lines come from departments and the
//!   store. The templates are the `*_TEMPLATE` constants below.
//! - The chart draws its text with the [`Pen`] of `crate::core::chart`, from the fonts of
//!   [`ChartFonts`]: only glyphs a font has (never tofu boxes), Latin labels when the fonts cannot
//!   draw the Chinese ones, and no text at all without a font.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use plotters::backend::BitMapBackend;
use plotters::prelude::{
    ChartBuilder, Circle, DashedLineSeries, IntoDrawingArea, LineSeries, PathElement, Rectangle,
};
use plotters::style::{Color, RGBColor, ShapeStyle, WHITE};
use serde::Serialize;

use crate::core::chart::{
    ChartError, ChartFonts, HAlign, Labels, Pen, Root, Stroke, VAlign, draw_err, draw_legend,
    encode_png,
};
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
    Csv(#[from] csv::Error),
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
// CSV.

/// The summary CSV's columns. Percentages are of the allocation, with one decimal; an empty
/// cell is a figure that does not exist (no VM with data).
const CSV_HEADER: [&str; 17] = [
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

// ---------------------------------------------------------------------------------------------
// HTML.

/// The layout and style every page extends: A4-printable, inline CSS only.
const BASE_TEMPLATE: &str = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #f3f4f6; color: #1f2328;
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
    "PingFang SC", "DejaVu Sans", sans-serif;
  font-size: 14px; line-height: 1.6; }
main { max-width: 1080px; margin: 24px auto; padding: 32px 40px; background: #fff;
  border: 1px solid #d8dbe0; }
header.head { border-bottom: 3px solid #b71c1c; padding-bottom: 10px; margin-bottom: 18px; }
.kicker { margin: 0; color: #b71c1c; font-size: 13px; letter-spacing: 0.12em; }
h1 { margin: 4px 0 2px; font-size: 24px; letter-spacing: 0.04em; }
.subtitle { margin: 0; font-size: 17px; color: #333; word-break: break-all; }
h2 { font-size: 16px; margin: 26px 0 8px; padding-left: 8px; border-left: 4px solid #b71c1c;
  break-after: avoid; page-break-after: avoid; }
.muted { color: #6a717b; font-size: 12px; }
.num, td.r, th.r { font-variant-numeric: tabular-nums; }
.r { text-align: right; }
.c { text-align: center; }
table { border-collapse: collapse; width: 100%; }
table.grid th, table.grid td { border: 1px solid #c9ced6; padding: 4px 6px; vertical-align: top; }
table.grid thead th { background: #eef1f5; font-weight: 600; text-align: center;
  white-space: nowrap; }
table.grid tfoot th, table.grid tfoot td { background: #f7f8fa; font-weight: 600; }
table.grid tr { break-inside: avoid; page-break-inside: avoid; }
table.small { font-size: 12px; }
table.small th, table.small td { padding: 3px 4px; }
table.small thead th { white-space: normal; }
table.small td:first-child { word-break: break-all; }
.overview { display: flex; gap: 18px; align-items: stretch; }
.overview table.facts { flex: 1; }
table.facts th, table.facts td { border: 1px solid #c9ced6; padding: 5px 8px; text-align: left;
  overflow-wrap: break-word; }
table.facts th { background: #eef1f5; width: 7.5em; white-space: nowrap; font-weight: 600; }
.result { flex: none; width: 230px; border: 2px solid; padding: 10px 14px; text-align: center;
  display: flex; flex-direction: column; justify-content: center; }
.result .score { font-size: 40px; font-weight: 700; line-height: 1.1; }
.result .score .unit { font-size: 16px; font-weight: 400; margin-left: 2px; }
.result .grade { font-size: 15px; margin: 2px 0 8px; }
.result .verdict { font-size: 24px; font-weight: 700; letter-spacing: 0.1em; }
.result .verdict.long { font-size: 18px; letter-spacing: 0; white-space: nowrap; }
.result .meaning { font-size: 12px; margin-top: 4px; }
.v-keep { color: #1b6e37; border-color: #1b6e37; background: #edf7f0; }
.v-consolidate { color: #9a5200; border-color: #c77700; background: #fff5e6; }
.v-cancel { color: #b71c1c; border-color: #b71c1c; background: #fdeeee; }
.v-not_filed { color: #fff; border-color: #6d0f0f; background: #8e1414; }
.badge { display: inline-block; padding: 0 8px; border: 1px solid; border-radius: 3px;
  font-size: 12px; font-weight: 600; white-space: nowrap; }
ol.explanation { margin: 0; padding-left: 1.8em; }
ol.explanation li { margin: 2px 0; word-break: break-all; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0 6px; }
.card { flex: 1 1 130px; border: 1px solid #c9ced6; padding: 8px 12px; }
.card .n { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .w { font-size: 12px; }
.card.v-not_filed .w, .card.v-not_filed .n { color: #fff; }
figure { margin: 6px 0 0; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; width: 100%; height: auto; border: 1px solid #d8dbe0; }
figcaption { font-size: 12px; color: #6a717b; margin-top: 4px; }
footer { margin-top: 28px; padding-top: 8px; border-top: 1px solid #d8dbe0; font-size: 12px;
  color: #6a717b; }
a { color: #0b4fa8; text-decoration: none; }
th.nowrap { white-space: nowrap; }
@media print, (max-width: 800px) {
  .result { width: 180px; }
}
@media print {
  body { background: #fff; font-size: 12px; }
  table.small { font-size: 10.5px; }
  main { margin: 0; padding: 0; border: 0; max-width: none; }
  a { color: inherit; }
}
</style>
</head>
<body>
<main>
{% block body %}{% endblock %}
<footer>依据《平度市电子政务和政务数据管理办法（暂行）》第十条：市大数据发展中心会同市财政局对已备案项目开展年度绩效评价；评价不合格的项目予以整合或取消；未按时备案或评价不合格的，停止安排运维经费。{% block footer %}{% endblock %}</footer>
</main>
</body>
</html>
"#;

/// One project's page; context: [`ProjectPage`].
const PROJECT_TEMPLATE: &str = r#"{% extends "base.html" %}
{% block body %}
<header class="head">
  <p class="kicker">平度市政务信息化项目年度绩效评价</p>
  <h1>{{ year }}年度政务信息化项目绩效评价报告</h1>
  <p class="subtitle">{{ name }}</p>
</header>

<section class="overview">
  <table class="facts">
    <tr><th>项目编号</th><td>{{ project }}</td><th>评价年度</th><td>{{ year }}年度</td></tr>
    <tr><th>项目名称</th><td colspan="3">{{ name }}</td></tr>
    <tr><th>主管部门</th><td colspan="3">{{ department_name }}<span class="muted">（{{ department }}）</span></td></tr>
    <tr><th>备案日期</th><td>{{ filing.filed_on }}</td><th>备案期限</th><td>{{ filing.due }}{% if filing.provisional %}(暂定){% endif %}</td></tr>
    <tr><th>首台部署</th><td colspan="3">{{ filing.first_deployed_on }}</td></tr>
  </table>
  <div class="result v-{{ verdict.code }}">
    <div class="score"><span class="num">{{ score }}</span><span class="unit">分</span></div>
    <div class="grade">等级 <b>{{ grade }}</b></div>
    <div class="verdict{% if verdict.long %} long{% endif %}">{{ verdict.word }}</div>
    <div class="meaning">{{ verdict.meaning }}</div>
  </div>
</section>

<h2>一、评价说明</h2>
<ol class="explanation">
{% for line in explanation %}
  <li>{{ line }}</li>
{% else %}
  <li class="muted">无</li>
{% endfor %}
</ol>

<h2>二、得分构成</h2>
<table class="grid">
  <thead><tr><th style="width: 46%">评价项</th><th>权重</th><th>得分率</th><th>得分</th></tr></thead>
  <tbody>
{% for p in parts %}
    <tr><td>{{ p.label }}{% if p.label != p.name %} <span class="muted">{{ p.name }}</span>{% endif %}</td><td class="r">{{ p.weight }}%</td><td class="r">{{ p.value }}</td><td class="r">{{ p.points }}</td></tr>
{% endfor %}
  </tbody>
  <tfoot><tr><th>合计</th><td class="r">{{ parts_weight }}%</td><td></td><td class="r">{{ parts_points }}</td></tr></tfoot>
</table>

<h2>三、年度资源利用率</h2>
<figure>
  <img src="{{ chart_file }}" width="1000" height="400" alt="{{ year }}年度资源利用率图：{{ name }}">
  <figcaption>当日有监测数据的云主机的 CPU P95、内存峰值与硬盘使用率的平均值，无数据的日子不连线；虚线为第十三条的核减阈值（CPU ≤25%、内存 ≤30%、硬盘 &lt;50%）与扩容阈值（&gt;75%）。</figcaption>
</figure>

<h2>四、云主机资源使用</h2>
<table class="grid small">
  <thead>
    <tr><th rowspan="2">云主机</th><th colspan="3">配置</th><th colspan="2">CPU使用率 %</th><th colspan="2">内存使用率 %</th><th colspan="2">硬盘使用率 %</th><th rowspan="2">在用<br>天数</th><th rowspan="2">监测<br>覆盖率</th><th colspan="3">核减区间天数</th><th colspan="3">扩容区间天数</th></tr>
    <tr><th>vCPU</th><th>内存 GiB</th><th>硬盘 GiB</th><th>均值</th><th>P95</th><th>均值</th><th>P95</th><th>均值</th><th>P95</th><th>CPU</th><th>内存</th><th>硬盘</th><th>CPU</th><th>内存</th><th>硬盘</th></tr>
  </thead>
  <tbody>
{% for vm in vms %}
    <tr><td>{{ vm.vm }}</td><td class="r">{{ vm.vcpus }}</td><td class="r">{{ vm.memory_gib }}</td><td class="r">{{ vm.disk_gib }}</td>{% for u in vm.usage %}<td class="r">{{ u[0] }}</td><td class="r">{{ u[1] }}</td>{% endfor %}<td class="r">{{ vm.days_in_service }}</td><td class="r">{{ vm.coverage }}</td>{% for d in vm.downsize_days %}<td class="r">{{ d }}</td>{% endfor %}{% for d in vm.expand_days %}<td class="r">{{ d }}</td>{% endfor %}</tr>
{% else %}
    <tr><td colspan="18" class="c muted">本年度无云主机</td></tr>
{% endfor %}
  </tbody>
{% if vms %}
  <tfoot>
    <tr><th>合计（加权）</th><td class="r">{{ total.vcpus }}</td><td class="r">{{ total.memory_gib }}</td><td class="r">{{ total.disk_gib }}</td>{% for u in total.usage %}<td class="r">{{ u[0] }}</td><td class="r">{{ u[1] }}</td>{% endfor %}<td class="r">{{ total.days_in_service }}</td><td class="r">{{ total.coverage }}</td>{% for d in total.downsize_days %}<td class="r">{{ d }}</td>{% endfor %}{% for d in total.expand_days %}<td class="r">{{ d }}</td>{% endfor %}</tr>
  </tfoot>
{% endif %}
</table>
<p class="muted">使用率为占配置的百分比；合计行的使用率按各云主机的配置（vCPU 数、内存与硬盘容量）加权，只计有监测数据的云主机。核减区间：CPU 日 P95 ≤25%、内存日峰值 ≤30%、硬盘 &lt;50%；扩容区间：&gt;75%（第十三条）。</p>

<h2>五、闲置资源</h2>
<div class="cards">
  <div class="card"><div class="n">{{ idle.vcpus }}</div><div class="w">闲置 vCPU（核）</div></div>
  <div class="card"><div class="n">{{ idle.memory_gib }}</div><div class="w">闲置内存（GiB）</div></div>
  <div class="card"><div class="n">{{ idle.disk_gib }}</div><div class="w">闲置硬盘（GiB）</div></div>
  <div class="card"><div class="n">¥{{ idle.cost_yuan }}</div><div class="w">闲置资源折合费用（元）</div></div>
</div>
<p class="muted">闲置资源：配置中超出全年 P95 使用率在目标使用率下所需的部分，按在用月数与云资源单价折算费用。</p>

<h2>六、资源调整、系统部署与网络登记</h2>
<table class="grid">
  <tbody>
    <tr><th class="c nowrap">资源调整通知</th><td>收到 {{ facts.notices_received }} 份；按期完成 {{ facts.notices_done_on_time }} 份，逾期完成 {{ facts.notices_done_late }} 份，逾期未完成 {{ facts.notices_overdue }} 份</td></tr>
    <tr><th class="c nowrap">系统部署</th><td>按期部署 {{ facts.deployments_on_time }} 台，逾期部署 {{ facts.deployments_late }} 台，未部署 {{ facts.deployments_missing }} 台（云资源交付后 10 个工作日内应完成部署）</td></tr>
    <tr><th class="c nowrap">网络登记问题</th><td>{{ facts.network_findings }} 项（第十四条）</td></tr>
  </tbody>
</table>

{% endblock %}
{% block footer %}<br>项目编号 {{ project }} · {{ year }}年度{% endblock %}
"#;

/// The overview page; context: [`SummaryPage`].
const SUMMARY_TEMPLATE: &str = r#"{% extends "base.html" %}
{% block body %}
<header class="head">
  <p class="kicker">平度市政务信息化项目年度绩效评价</p>
  <h1>{{ year }}年度政务信息化项目绩效评价汇总</h1>
  <p class="subtitle">共评价 {{ rows | length }} 个项目</p>
</header>

<h2>评价结论</h2>
<div class="cards">
{% for c in counts %}
  <div class="card v-{{ c.verdict.code }}"><div class="n">{{ c.count }}</div><div class="w">{{ c.verdict.word }}</div></div>
{% endfor %}
  <div class="card"><div class="n">¥{{ idle_cost }}</div><div class="w">闲置资源折合费用合计（元）</div></div>
</div>

<h2>项目得分（按得分从高到低）</h2>
<table class="grid">
  <thead><tr><th>序号</th><th>项目</th><th>主管部门</th><th>得分</th><th>等级</th><th>结论</th><th>CPU P95 %</th><th>内存 P95 %</th><th>监测覆盖率 %</th><th>闲置费用（元）</th></tr></thead>
  <tbody>
{% for r in rows %}
    <tr><td class="r">{{ loop.index }}</td><td><a href="{{ r.link }}">{{ r.name }}</a><br><span class="muted">{{ r.project }}</span></td><td>{{ r.department_name }}</td><td class="r">{{ r.score }}</td><td class="c">{{ r.grade }}</td><td class="c"><span class="badge v-{{ r.verdict.code }}">{{ r.verdict.word }}</span></td><td class="r">{{ r.cpu_p95 }}</td><td class="r">{{ r.memory_p95 }}</td><td class="r">{{ r.coverage }}</td><td class="r">{{ r.idle_cost }}</td></tr>
{% else %}
    <tr><td colspan="10" class="c muted">本年度无评价项目</td></tr>
{% endfor %}
  </tbody>
</table>
<p class="muted">CPU P95 按各云主机 vCPU 数加权，内存 P95 按内存容量加权，只计有监测数据的云主机。</p>
{% endblock %}
"#;

#[derive(Serialize)]
struct PartRow<'a> {
    name: &'a str,
    label: &'a str,
    weight: String,
    value: String,
    points: String,
}

/// A row of the VM table, every figure formatted.
#[derive(Serialize)]
struct VmRow<'a> {
    vm: &'a str,
    vcpus: String,
    memory_gib: String,
    disk_gib: String,
    /// (avg, p95) of [cpu, memory, disk].
    usage: [(String, String); 3],
    days_in_service: u32,
    coverage: String,
    downsize_days: [u32; 3],
    expand_days: [u32; 3],
}

impl<'a> VmRow<'a> {
    fn of(vm: &'a VmYear) -> VmRow<'a> {
        let has_data = vm.days_with_data > 0;
        let usage = |u: crate::core::review::Usage| {
            if has_data {
                (shown(Some(u.avg), 1), shown(Some(u.p95), 1))
            } else {
                ("—".to_owned(), "—".to_owned())
            }
        };
        VmRow {
            vm: &vm.vm,
            vcpus: plain(vm.vcpus),
            memory_gib: plain(vm.memory_gib),
            disk_gib: plain(vm.disk_gib),
            usage: [usage(vm.cpu), usage(vm.memory), usage(vm.disk)],
            days_in_service: vm.days_in_service,
            coverage: percent(coverage(vm.days_in_service, vm.days_with_data)),
            downsize_days: vm.downsize_days,
            expand_days: vm.expand_days,
        }
    }

    fn total(t: &Totals) -> VmRow<'static> {
        let u = |i: usize| (shown(t.usage[i].0, 1), shown(t.usage[i].1, 1));
        VmRow {
            vm: "",
            vcpus: plain(t.vcpus),
            memory_gib: plain(t.memory_gib),
            disk_gib: plain(t.disk_gib),
            usage: [u(0), u(1), u(2)],
            days_in_service: t.days_in_service,
            coverage: percent(t.coverage()),
            downsize_days: t.downsize_days,
            expand_days: t.expand_days,
        }
    }
}

fn percent(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{}%", fixed(x, 1)),
        _ => "—".to_owned(),
    }
}

#[derive(Serialize)]
struct FilingView<'a> {
    filed_on: &'a str,
    due: &'a str,
    provisional: bool,
    first_deployed_on: &'a str,
}

#[derive(Serialize)]
struct IdleView {
    vcpus: String,
    memory_gib: String,
    disk_gib: String,
    cost_yuan: String,
}

/// The context of `PROJECT_TEMPLATE`.
#[derive(Serialize)]
struct ProjectPage<'a> {
    title: String,
    year: i32,
    project: &'a str,
    name: &'a str,
    department: &'a str,
    department_name: &'a str,
    score: String,
    grade: &'a str,
    verdict: VerdictView,
    filing: FilingView<'a>,
    explanation: &'a [String],
    parts: Vec<PartRow<'a>>,
    parts_weight: String,
    parts_points: String,
    vms: Vec<VmRow<'a>>,
    total: VmRow<'static>,
    idle: IdleView,
    facts: &'a crate::core::review::ProjectYear,
    chart_file: &'a str,
}

/// The page title of a project's report.
fn project_title(review: &ProjectReview) -> String {
    format!(
        "{}年度政务信息化项目绩效评价报告 — {}",
        review.year, review.name
    )
}

/// A printable, self-contained HTML page (Chinese) of one project's review: header with the
/// score, grade and verdict, the explanation, the score parts, the VM table, idle capacity,
/// notices/deployments/network facts, and `<img src="{chart_file}">` (the caller writes
/// [`utilisation_chart_png`] there). Every value is HTML-escaped.
pub fn project_html(review: &ProjectReview, chart_file: &str) -> Result<String, ReportError> {
    let f = &review.facts;
    let totals = Totals::of(&f.vms);
    let page = ProjectPage {
        title: project_title(review),
        year: review.year,
        project: &review.project,
        name: &review.name,
        department: &review.department,
        department_name: &review.department_name,
        score: shown(Some(review.score), 1),
        grade: &review.grade,
        verdict: verdict_view(review.verdict),
        filing: FilingView {
            filed_on: f.filed_on.as_deref().unwrap_or("未备案"),
            due: f.filing_due.as_deref().unwrap_or("—"),
            provisional: f.filing_due_provisional,
            first_deployed_on: f.first_deployed_on.as_deref().unwrap_or("未部署"),
        },
        explanation: &review.explanation,
        parts: review
            .parts
            .iter()
            .map(|p| PartRow {
                name: &p.name,
                label: part_label(&p.name),
                weight: plain(p.weight),
                value: shown(Some(p.value), 1),
                points: shown(Some(p.points), 1),
            })
            .collect(),
        parts_weight: plain(review.parts.iter().map(|p| p.weight).sum()),
        parts_points: shown(Some(review.parts.iter().map(|p| p.points).sum()), 1),
        vms: f.vms.iter().map(VmRow::of).collect(),
        total: VmRow::total(&totals),
        idle: IdleView {
            vcpus: shown(Some(review.idle_vcpus), 1),
            memory_gib: shown(Some(review.idle_memory_gib), 1),
            disk_gib: shown(Some(review.idle_disk_gib), 0),
            cost_yuan: yuan(review.idle_cost_yuan),
        },
        facts: f,
        chart_file,
    };
    render("project.html", &page)
}

#[derive(Serialize)]
struct CountView {
    verdict: VerdictView,
    count: usize,
}

#[derive(Serialize)]
struct SummaryRow<'a> {
    link: String,
    project: &'a str,
    name: &'a str,
    department_name: &'a str,
    score: String,
    grade: &'a str,
    verdict: VerdictView,
    cpu_p95: String,
    memory_p95: String,
    coverage: String,
    idle_cost: String,
}

/// The context of `SUMMARY_TEMPLATE`.
#[derive(Serialize)]
struct SummaryPage<'a> {
    title: String,
    year: i32,
    counts: Vec<CountView>,
    idle_cost: String,
    rows: Vec<SummaryRow<'a>>,
}

/// The overview page of a year's review: the number of projects per verdict, the total cost of
/// idle capacity, and every project sorted by score (best first, then by project), each linked
/// to `project_link(review)`. Every value is HTML-escaped.
pub fn summary_html(
    year: i32,
    reviews: &[ProjectReview],
    project_link: impl Fn(&ProjectReview) -> String,
) -> Result<String, ReportError> {
    let mut sorted: Vec<&ProjectReview> = reviews.iter().collect();
    sorted.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.project.cmp(&b.project))
    });
    let counts = [
        ReviewVerdict::Keep,
        ReviewVerdict::Consolidate,
        ReviewVerdict::Cancel,
        ReviewVerdict::NotFiled,
    ]
    .into_iter()
    .map(|v| CountView {
        verdict: verdict_view(v),
        count: reviews.iter().filter(|r| r.verdict == v).count(),
    })
    .collect();
    let idle_cost: f64 = reviews
        .iter()
        .map(|r| r.idle_cost_yuan)
        .filter(|c| c.is_finite())
        .sum();
    let rows = sorted
        .into_iter()
        .map(|r| {
            let totals = Totals::of(&r.facts.vms);
            SummaryRow {
                link: project_link(r),
                project: &r.project,
                name: &r.name,
                department_name: &r.department_name,
                score: shown(Some(r.score), 1),
                grade: &r.grade,
                verdict: verdict_view(r.verdict),
                cpu_p95: shown(totals.usage[0].1, 1),
                memory_p95: shown(totals.usage[1].1, 1),
                coverage: shown(totals.coverage(), 1),
                idle_cost: yuan(r.idle_cost_yuan),
            }
        })
        .collect();
    let page = SummaryPage {
        title: format!("{year}年度政务信息化项目绩效评价汇总"),
        year,
        counts,
        idle_cost: yuan(idle_cost),
        rows,
    };
    render("summary.html", &page)
}

/// Renders one of the page templates with HTML auto-escaping on (whatever the name) and
/// undefined values as errors.
fn render(template: &'static str, context: &impl Serialize) -> Result<String, ReportError> {
    let err = |source| ReportError::Template { template, source };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("base.html", BASE_TEMPLATE).map_err(err)?;
    env.add_template("project.html", PROJECT_TEMPLATE)
        .map_err(err)?;
    env.add_template("summary.html", SUMMARY_TEMPLATE)
        .map_err(err)?;
    env.get_template(template)
        .and_then(|t| t.render(context))
        .map_err(err)
}

// ---------------------------------------------------------------------------------------------
// The yearly utilisation chart.

/// Width of the utilisation chart in pixels.
pub const UTILISATION_CHART_WIDTH: u32 = 1000;
/// Height of the utilisation chart in pixels.
pub const UTILISATION_CHART_HEIGHT: u32 = 400;

/// Art. 13's downsize thresholds of [cpu, memory, disk] as `rules/pingdu.toml` writes them, and
/// the expansion threshold of all three.
const DOWNSIZE_THRESHOLDS: [f64; 3] = [25.0, 30.0, 50.0];
const EXPAND_THRESHOLD: f64 = 75.0;

const RESOURCE_COLORS: [RGBColor; 3] = [
    RGBColor(25, 90, 220),  // CPU: blue
    RGBColor(225, 120, 0),  // memory: orange
    RGBColor(135, 65, 175), // disk: purple
];
const EXPAND_COLOR: RGBColor = RGBColor(215, 40, 40);
const GRID_COLOR: RGBColor = RGBColor(232, 232, 232);
const AXIS_COLOR: RGBColor = RGBColor(150, 150, 150);
const TEXT_COLOR: RGBColor = RGBColor(30, 30, 30);
const MUTED_TEXT_COLOR: RGBColor = RGBColor(90, 90, 90);

const TITLE_SIZE: f32 = 19.0;
const TEXT_SIZE: f32 = 14.0;
const TICK_SIZE: f32 = 13.0;
const PLOT_LEFT: i32 = 52;
const PLOT_RIGHT: i32 = 18;
const PLOT_BOTTOM: i32 = 28;
/// The space between two legend entries.
const LEGEND_SPACING: i32 = 20;

/// The fixed words of the chart in one language.
struct Words {
    title: fn(&ProjectReview) -> String,
    /// The characters of `title` that are not the project's (checked against the fonts).
    title_words: &'static str,
    series: [&'static str; 3],
    downsize: [&'static str; 3],
    expand: &'static str,
    months: [&'static str; 12],
    no_data: &'static str,
}

impl Words {
    /// Every fixed character, for the font check.
    fn text(&self) -> String {
        let mut all = vec![self.title_words, self.expand, self.no_data];
        all.extend(self.series);
        all.extend(self.downsize);
        all.extend(self.months);
        all.concat()
    }
}

const CHINESE: Words = Words {
    title: |r| format!("{} {}：{}年度资源利用率", r.project, r.name, r.year),
    title_words: "：年度资源利用率0123456789",
    series: ["CPU（日P95）", "内存（日峰值）", "硬盘"],
    downsize: ["CPU核减 ≤25%", "内存核减 ≤30%", "硬盘核减 <50%"],
    expand: "扩容 >75%",
    months: [
        "1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月",
    ],
    no_data: "全年无监测数据",
};

const LATIN: Words = Words {
    title: |r| format!("{} {}: utilisation in {}", r.project, r.name, r.year),
    title_words: ": utilisation in 0123456789",
    series: ["CPU (daily p95)", "memory (daily peak)", "disk"],
    downsize: [
        "CPU downsize <= 25%",
        "memory downsize <= 30%",
        "disk downsize < 50%",
    ],
    expand: "expansion > 75%",
    months: [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
    no_data: "no monitoring data this year",
};

/// What the subtitle under the title says, in each language.
fn subtitle(labels: Labels) -> &'static str {
    match labels {
        Labels::Chinese => "各云主机每日统计值的平均",
        Labels::Latin => "daily statistics, mean over the VMs",
    }
}

/// The year's utilisation of `review`'s VMs as a 1000x400 PNG: per day, the mean over the VMs of
/// the CPU p95, the memory peak and the disk usage (from [`VmYear::daily`]), with art. 13's
/// downsize thresholds (25/30/50%) and the expansion threshold (75%) dashed, and month ticks.
/// Days without data break the lines. `labels` is the wanted language: Chinese only if the
/// fonts have every glyph of the Chinese labels, else Latin; with no font, no text.
pub fn utilisation_chart_png(
    review: &ProjectReview,
    fonts: &ChartFonts,
    labels: Labels,
) -> Result<Vec<u8>, ReportError> {
    let chart_err = |source| ReportError::Chart {
        project: review.project.clone(),
        source,
    };
    let (start, days) = year_span(review.year).map_err(chart_err)?;
    let series = daily_means(start, days, &review.facts.vms);

    let mut pen = fonts.pen(labels);
    if let Some((p, Labels::Chinese)) = &pen
        && !p.covers(&CHINESE.text())
    {
        pen = fonts.pen(Labels::Latin);
    }

    let (w, h) = (UTILISATION_CHART_WIDTH, UTILISATION_CHART_HEIGHT);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err).map_err(chart_err)?;
        let text = pen.as_ref().map(|(p, labels)| {
            let words = match labels {
                Labels::Chinese => &CHINESE,
                Labels::Latin => &LATIN,
            };
            (p, words, *labels)
        });
        draw_utilisation(&root, review, text, start, days, &series).map_err(chart_err)?;
        root.present().map_err(draw_err).map_err(chart_err)?;
    }
    encode_png(&rgb, w, h).map_err(chart_err)
}

/// 1 January of `year` and the number of days of the year.
fn year_span(year: i32) -> Result<(NaiveDate, i64), ChartError> {
    let first = |y| NaiveDate::from_ymd_opt(y, 1, 1);
    match (first(year), year.checked_add(1).and_then(first)) {
        (Some(start), Some(next)) => Ok((start, (next - start).num_days())),
        _ => Err(ChartError::Draw(format!(
            "{year} is not a year a date can have"
        ))),
    }
}

/// Per resource [cpu, memory, disk], the days of the year (index from `start`) with a finite
/// value on at least one VM, and the mean of those VMs' values, sorted by day. A VM's duplicate
/// day counts as another value; days outside the year and unreadable dates are left out.
fn daily_means(start: NaiveDate, days: i64, vms: &[VmYear]) -> [Vec<(i64, f64)>; 3] {
    let len = usize::try_from(days).unwrap_or(0);
    let mut sums = vec![[(0.0f64, 0u32); 3]; len];
    for vm in vms {
        for (day, cpu, memory, disk) in &vm.daily {
            let Ok(date) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
                continue;
            };
            let Ok(i) = usize::try_from((date - start).num_days()) else {
                continue;
            };
            let Some(slot) = sums.get_mut(i) else {
                continue;
            };
            for (k, v) in [*cpu, *memory, *disk].into_iter().enumerate() {
                if v.is_finite() {
                    slot[k].0 += v;
                    slot[k].1 += 1;
                }
            }
        }
    }
    let series = |k: usize| -> Vec<(i64, f64)> {
        sums.iter()
            .enumerate()
            .filter(|(_, s)| s[k].1 > 0)
            .map(|(i, s)| (i as i64, s[k].0 / f64::from(s[k].1)))
            .collect()
    };
    [series(0), series(1), series(2)]
}

/// Splits day-sorted points where a day is missing.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > 1 {
            out.push(&points[from..i]);
            from = i;
        }
    }
    if from < points.len() {
        out.push(&points[from..]);
    }
    out
}

fn draw_utilisation(
    root: &Root<'_>,
    review: &ProjectReview,
    text: Option<(&Pen, &Words, Labels)>,
    start: NaiveDate,
    days: i64,
    series: &[Vec<(i64, f64)>; 3],
) -> Result<(), ChartError> {
    let width = UTILISATION_CHART_WIDTH as i32;
    let x1 = days as f64;

    // Header: the title (cut to fit), a subtitle on the right, then the legend.
    let mut top = 40;
    if let Some((pen, words, labels)) = text {
        let baseline = 27;
        let note = subtitle(labels);
        let note_width = pen.width(TEXT_SIZE, note);
        let title = pen.fit(
            &(words.title)(review),
            TITLE_SIZE,
            width - PLOT_RIGHT - 14 - note_width - 24,
        );
        pen.draw(
            root,
            &title,
            TITLE_SIZE,
            (14, baseline),
            HAlign::Left,
            VAlign::Baseline,
            TEXT_COLOR,
        )?;
        pen.draw(
            root,
            note,
            TEXT_SIZE,
            (width - PLOT_RIGHT, baseline),
            HAlign::Right,
            VAlign::Baseline,
            MUTED_TEXT_COLOR,
        )?;
        let mut legend: Vec<(&str, Stroke)> = (0..3)
            .map(|k| (words.series[k], Stroke::Solid(RESOURCE_COLORS[k], 2)))
            .collect();
        legend.extend((0..3).map(|k| (words.downsize[k], Stroke::Dashed(RESOURCE_COLORS[k], 2))));
        legend.push((words.expand, Stroke::Dashed(EXPAND_COLOR, 2)));
        let right = width - PLOT_RIGHT;
        top = draw_legend(root, pen, &legend, (top, right), LEGEND_SPACING)?;
    }
    let top = top + 6;

    let mut chart = ChartBuilder::on(root)
        .margin_top(top)
        .margin_right(PLOT_RIGHT)
        .margin_left(PLOT_LEFT)
        .margin_bottom(PLOT_BOTTOM)
        .build_cartesian_2d(0f64..x1, 0f64..100f64)
        .map_err(draw_err)?;

    // Grid: every 10%, and the first of each month.
    let months: Vec<f64> = (1..=12)
        .filter_map(|m| NaiveDate::from_ymd_opt(start.year(), m, 1))
        .map(|d| (d - start).num_days() as f64)
        .collect();
    let grid = ShapeStyle::from(GRID_COLOR).stroke_width(1);
    chart
        .draw_series((1..10).map(|i| {
            let y = f64::from(i) * 10.0;
            PathElement::new(vec![(0.0, y), (x1, y)], grid)
        }))
        .map_err(draw_err)?;
    chart
        .draw_series(
            months
                .iter()
                .map(|&x| PathElement::new(vec![(x, 0.0), (x, 100.0)], grid)),
        )
        .map_err(draw_err)?;
    let (left, upper) = chart.backend_coord(&(0.0, 100.0));
    let (right, lower) = chart.backend_coord(&(x1, 0.0));
    root.draw(&Rectangle::new(
        [(left, upper), (right, lower)],
        ShapeStyle::from(AXIS_COLOR).stroke_width(1),
    ))
    .map_err(draw_err)?;

    // Thresholds, dashed, under the data.
    let thresholds = (0..3)
        .map(|k| (DOWNSIZE_THRESHOLDS[k], RESOURCE_COLORS[k]))
        .chain(std::iter::once((EXPAND_THRESHOLD, EXPAND_COLOR)));
    for (value, color) in thresholds {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, value), (x1, value)],
                9,
                5,
                ShapeStyle::from(color).stroke_width(2),
            ))
            .map_err(draw_err)?;
    }

    // The data, a day in the middle of its slot, disk first so that CPU is on top.
    let pixel = |&(day, v): &(i64, f64)| (day as f64 + 0.5, v.clamp(0.0, 100.0));
    for k in [2, 1, 0] {
        let color = RESOURCE_COLORS[k];
        for run in runs(&series[k]) {
            if let [only] = run {
                chart
                    .draw_series(std::iter::once(Circle::new(pixel(only), 2, color.filled())))
                    .map_err(draw_err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(
                        run.iter().map(pixel),
                        ShapeStyle::from(color).stroke_width(2),
                    ))
                    .map_err(draw_err)?;
            }
        }
    }

    let tick = ShapeStyle::from(AXIS_COLOR).stroke_width(1);
    for &x in &months {
        let (px, _) = chart.backend_coord(&(x, 0.0));
        root.draw(&PathElement::new(vec![(px, lower), (px, lower + 4)], tick))
            .map_err(draw_err)?;
    }
    let Some((pen, words, _)) = text else {
        return Ok(());
    };
    if series.iter().all(Vec::is_empty) {
        pen.draw(
            root,
            words.no_data,
            TEXT_SIZE + 2.0,
            ((left + right) / 2, (upper + lower) / 2),
            HAlign::Center,
            VAlign::Center,
            MUTED_TEXT_COLOR,
        )?;
    }
    // Axis labels: percent on the left, the months below, each in the middle of its month.
    for pct in (0..=100).step_by(20) {
        let (_, y) = chart.backend_coord(&(0.0, f64::from(pct)));
        pen.draw(
            root,
            &format!("{pct}%"),
            TICK_SIZE,
            (left - 6, y),
            HAlign::Right,
            VAlign::Center,
            MUTED_TEXT_COLOR,
        )?;
    }
    for (m, &x) in months.iter().enumerate() {
        let next = months.get(m + 1).copied().unwrap_or(x1);
        let (px, _) = chart.backend_coord(&((x + next) / 2.0, 0.0));
        pen.draw(
            root,
            words.months.get(m).copied().unwrap_or_default(),
            TICK_SIZE,
            (px, lower + 6),
            HAlign::Center,
            VAlign::Top,
            MUTED_TEXT_COLOR,
        )?;
    }
    Ok(())
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

/// Writes the year's report into `dir` (created if missing; files of the same names are
/// replaced): per project `{project}-utilisation.png` and `{project}.html`, then
/// `review-{year}.csv` and `index.html` (the overview, linking the project pages). `{project}`
/// is the project id made safe as a file name (see `file_stem`). Calls `progress(n)` after the
/// n-th project (n from 1). Returns the paths written, in that order.
pub fn write_report_dir(
    dir: &Path,
    year: i32,
    reviews: &[ProjectReview],
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
        let png = utilisation_chart_png(review, fonts, labels)?;
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
mod tests {
    use super::*;
    use crate::core::review::{ProjectYear, ScorePart, Usage};

    use crate::core::chart::tests::{CJK_FONT, LATIN_FONT, font};

    /// A daily point of [`VmYear::daily`].
    type Day = (String, f64, f64, f64);

    fn no_fonts() -> ChartFonts {
        ChartFonts::register(None, None).expect("register nothing")
    }

    /// A deterministic noise source in 0..1.
    struct Noise(u32);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            f64::from((self.0 >> 16) & 0x7fff) / 32_768.0
        }
    }

    /// A VM of 2025 in service from `from` (day of the year, 0-based) with daily points: `cpu`
    /// and `memory` are (base, seasonal swing, noise), disk grows from `disk.0` to `disk.1`;
    /// days in `silent` have no data.
    #[allow(clippy::too_many_arguments)]
    fn vm(
        name: &str,
        alloc: (f64, f64, f64),
        from: u32,
        cpu: (f64, f64, f64),
        memory: (f64, f64, f64),
        disk: (f64, f64),
        silent: std::ops::Range<u32>,
        seed: u32,
    ) -> VmYear {
        let start = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
        let mut noise = Noise(seed);
        let mut daily = Vec::new();
        for d in from..365 {
            if silent.contains(&d) {
                continue;
            }
            let season = (f64::from(d) / 365.0 * std::f64::consts::TAU).sin();
            let weekly = if d % 7 >= 5 { 0.85 } else { 1.0 };
            let c = (cpu.0 + cpu.1 * season) * weekly + cpu.2 * noise.next();
            let m = memory.0 + memory.1 * season + memory.2 * noise.next();
            let k = disk.0 + (disk.1 - disk.0) * f64::from(d - from) / f64::from(365 - from);
            let date = start + chrono::TimeDelta::days(i64::from(d));
            daily.push((date.format("%Y-%m-%d").to_string(), c, m, k));
        }
        let stats = |f: fn(&Day) -> f64| {
            let mut v: Vec<f64> = daily.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            let avg = v.iter().sum::<f64>() / v.len() as f64;
            let p95 = v[(v.len() * 95).div_ceil(100) - 1];
            Usage {
                avg: (avg * 10.0).round() / 10.0,
                p95: (p95 * 10.0).round() / 10.0,
            }
        };
        let count = |f: &dyn Fn(&Day) -> bool| daily.iter().filter(|p| f(p)).count() as u32;
        VmYear {
            vm: name.to_owned(),
            vcpus: alloc.0,
            memory_gib: alloc.1,
            disk_gib: alloc.2,
            cpu: stats(|p| p.1),
            memory: stats(|p| p.2),
            disk: stats(|p| p.3),
            days_in_service: 365 - from,
            days_with_data: daily.len() as u32,
            downsize_days: [
                count(&|p| p.1 <= 25.0),
                count(&|p| p.2 <= 30.0),
                count(&|p| p.3 < 50.0),
            ],
            expand_days: [
                count(&|p| p.1 > 75.0),
                count(&|p| p.2 > 75.0),
                count(&|p| p.3 > 75.0),
            ],
            daily,
        }
    }

    fn parts(values: [f64; 5]) -> Vec<ScorePart> {
        let names = [
            ("utilisation", 40.0),
            ("adjustments", 20.0),
            ("deployment", 15.0),
            ("coverage", 15.0),
            ("network", 10.0),
        ];
        names
            .iter()
            .zip(values)
            .map(|(&(name, weight), value)| ScorePart {
                name: name.to_owned(),
                weight,
                value,
                points: (weight * value / 10.0).round() / 10.0,
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn facts(
        project: &str,
        name: &str,
        department: (&str, &str),
        filed_on: Option<&str>,
        deployed: (&str, &str),
        vms: Vec<VmYear>,
        notices: [u32; 4],
        deployments: [u32; 3],
        network_findings: u32,
    ) -> ProjectYear {
        ProjectYear {
            project: project.to_owned(),
            name: name.to_owned(),
            department: department.0.to_owned(),
            department_name: department.1.to_owned(),
            filed_on: filed_on.map(str::to_owned),
            first_deployed_on: Some(deployed.0.to_owned()),
            filing_due: Some(deployed.1.to_owned()),
            filing_due_provisional: false,
            vms,
            notices_received: notices[0],
            notices_done_on_time: notices[1],
            notices_done_late: notices[2],
            notices_overdue: notices[3],
            deployments_on_time: deployments[0],
            deployments_late: deployments[1],
            deployments_missing: deployments[2],
            network_findings,
        }
    }

    fn review(
        facts: ProjectYear,
        score: f64,
        grade: &str,
        verdict: ReviewVerdict,
        part_values: [f64; 5],
        idle: (f64, f64, f64, f64),
        explanation: &[&str],
    ) -> ProjectReview {
        ProjectReview {
            year: 2025,
            project: facts.project.clone(),
            name: facts.name.clone(),
            department: facts.department.clone(),
            department_name: facts.department_name.clone(),
            score,
            grade: grade.to_owned(),
            verdict,
            explanation: explanation.iter().map(|s| (*s).to_owned()).collect(),
            parts: parts(part_values),
            idle_vcpus: idle.0,
            idle_memory_gib: idle.1,
            idle_disk_gib: idle.2,
            idle_cost_yuan: idle.3,
            facts,
        }
    }

    /// A kept project, a cancelled one, and one not filed whose names carry `<script>`.
    fn reviews() -> Vec<ProjectReview> {
        let keep = review(
            facts(
                "GA-2025-001",
                "平度市公安局视频联网共享平台",
                ("pdgaj", "平度市公安局"),
                Some("2024-03-02"),
                ("2024-02-20", "2024-03-19"),
                vec![
                    vm(
                        "vm-ga-video-01",
                        (16.0, 64.0, 2000.0),
                        0,
                        (48.0, 12.0, 14.0),
                        (62.0, 8.0, 10.0),
                        (58.0, 74.0),
                        0..0,
                        7,
                    ),
                    vm(
                        "vm-ga-db-01",
                        (8.0, 32.0, 1000.0),
                        0,
                        (34.0, 6.0, 10.0),
                        (55.0, 5.0, 6.0),
                        (52.0, 57.0),
                        200..203,
                        11,
                    ),
                ],
                [1, 1, 0, 0],
                [2, 0, 0],
                0,
            ),
            95.7,
            "A",
            ReviewVerdict::Keep,
            [89.6, 100.0, 100.0, 99.6, 100.0],
            (3.7, 10.2, 0.0, 3_904.0),
            &[
                "资源利用:2 台云主机 CPU/内存处于合理区间的天数占比 89.6%(核减区间 14 台·天,扩容区间 62 台·天) → 89.6 × 40% = 35.8 分",
                "资源调整:收到调整通知 1 份,按期完成 1,逾期完成 0,逾期未完成 0 → 100.0 × 20% = 20.0 分",
                "系统部署:2 台云主机中按期(交付后10个工作日内)部署 2,逾期 0,未部署 0 → 100.0 × 15% = 15.0 分",
                "监测覆盖:在用 730 台·天中有监测数据 727 台·天 → 99.6 × 15% = 14.9 分",
                "网络登记:全年网络登记问题 0 项(每项扣10) → 100.0 × 10% = 10.0 分",
                "闲置资源:按 p95 使用率达到 50% 计,闲置 3.7 vCPU、10.2 GiB 内存、0 GiB 硬盘,折合费用 3904 元",
                "结论:总分 95.7(等级 A)不低于保留线 60,保留",
            ],
        );
        let cancel = review(
            facts(
                "ZJ-2025-007",
                "城乡建设档案管理系统",
                ("pdzjj", "平度市住房和城乡建设局"),
                Some("2023-05-10"),
                ("2023-04-24", "2023-05-23"),
                vec![
                    vm(
                        "vm-zj-app-01",
                        (8.0, 32.0, 500.0),
                        0,
                        (4.0, 1.0, 4.0),
                        (17.0, 3.0, 6.0),
                        (14.0, 19.0),
                        0..0,
                        3,
                    ),
                    vm(
                        "vm-zj-app-02",
                        (8.0, 32.0, 500.0),
                        0,
                        (3.0, 1.0, 3.0),
                        (15.0, 2.0, 5.0),
                        (12.0, 16.0),
                        40..120,
                        5,
                    ),
                    vm(
                        "vm-zj-db-01",
                        (4.0, 16.0, 1000.0),
                        0,
                        (6.0, 2.0, 5.0),
                        (24.0, 3.0, 6.0),
                        (21.0, 27.0),
                        0..0,
                        9,
                    ),
                ],
                [3, 0, 1, 2],
                [2, 1, 0],
                2,
            ),
            31.9,
            "D",
            ReviewVerdict::Cancel,
            [0.0, 0.0, 66.7, 92.7, 80.0],
            (16.4, 64.3, 1563.0, 24_186.0),
            &[
                "资源利用:3 台云主机 CPU/内存处于合理区间的天数占比 0.0%(核减区间 2030 台·天,扩容区间 0 台·天) → 0.0 × 40% = 0.0 分",
                "资源调整:收到调整通知 3 份,按期完成 0,逾期完成 1,逾期未完成 2 → 0.0 × 20% = 0.0 分",
                "系统部署:3 台云主机中按期(交付后10个工作日内)部署 2,逾期 1,未部署 0 → 66.7 × 15% = 10.0 分",
                "监测覆盖:在用 1095 台·天中有监测数据 1015 台·天 → 92.7 × 15% = 13.9 分",
                "网络登记:全年网络登记问题 2 项(每项扣10) → 80.0 × 10% = 8.0 分",
                "闲置资源:按 p95 使用率达到 50% 计,闲置 16.4 vCPU、64.3 GiB 内存、1563 GiB 硬盘,折合费用 24186 元",
                "结论:总分 31.9(等级 D)低于整合线 40,予以取消",
            ],
        );
        let not_filed = review(
            facts(
                "JY-2025-013",
                "<script>alert('备案')</script>移动办公平台",
                ("pdjyj", "平度市教育和体育局<script>x</script>"),
                None,
                ("2025-03-10", "2025-04-08"),
                vec![vm(
                    "vm-jy-oa-01\"><img src=x onerror=alert(1)>",
                    (4.0, 16.0, 200.0),
                    68,
                    (22.0, 8.0, 12.0),
                    (38.0, 6.0, 8.0),
                    (30.0, 46.0),
                    210..232,
                    13,
                )],
                [0, 0, 0, 0],
                [0, 1, 0],
                1,
            ),
            67.8,
            "C",
            ReviewVerdict::NotFiled,
            [62.3, 100.0, 0.0, 92.6, 90.0],
            (1.2, 4.1, 96.0, 1_311.0),
            &[
                "资源利用:1 台云主机 CPU/内存处于合理区间的天数占比 62.3% → 62.3 × 40% = 24.9 分",
                "结论:项目已部署(首台云主机部署于 2025-03-10)但未全口径备案,依第十条停止安排运维经费 <script>alert(1)</script>",
            ],
        );
        vec![keep, cancel, not_filed]
    }

    #[test]
    fn a_provisional_filing_due_date_is_marked_in_the_verdict_and_the_page() {
        let mut f = reviews().remove(0).facts;
        f.filed_on = None;
        f.filing_due_provisional = true;
        let rules = crate::core::review::rules::ReviewRules::builtin().expect("review rules");
        let r = crate::core::review::score::review(2025, f, &rules);
        assert!(
            r.explanation.iter().any(|l| l.contains("暂定")),
            "{:?}",
            r.explanation
        );
        let page = project_html(&r, "chart.png").expect("page");
        assert!(page.contains("(暂定)"), "the page marks the due date");
    }

    #[test]
    fn spreadsheet_formulas_in_names_are_text_in_the_csv() {
        let mut reviews = reviews();
        reviews[0].name = "=HYPERLINK(\"http://x\",\"y\")".into();
        reviews[0].department_name = "@SUM(1+1)".into();
        let text = summary_csv(&reviews).expect("csv");
        assert!(
            text.contains("'=HYPERLINK") && text.contains("'@SUM(1+1)"),
            "{text}"
        );
    }

    #[test]
    fn csv_has_the_header_and_a_row_per_project() {
        let reviews = reviews();
        let text = summary_csv(&reviews).expect("csv");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, CSV_HEADER);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 3);
        let col = |row: &csv::StringRecord, name: &str| {
            let i = CSV_HEADER.iter().position(|h| *h == name).expect("column");
            row[i].to_owned()
        };
        assert_eq!(col(&rows[0], "year"), "2025");
        assert_eq!(col(&rows[0], "project"), "GA-2025-001");
        assert_eq!(col(&rows[0], "name"), "平度市公安局视频联网共享平台");
        assert_eq!(col(&rows[0], "verdict"), "keep");
        assert_eq!(col(&rows[0], "score"), "95.7");
        assert_eq!(col(&rows[0], "grade"), "A");
        assert_eq!(col(&rows[0], "idle_cost_yuan"), "3904.00");
        assert_eq!(col(&rows[0], "not_filed"), "false");
        assert_eq!(col(&rows[1], "verdict"), "cancel");
        assert_eq!(col(&rows[1], "notices_received"), "3");
        assert_eq!(col(&rows[1], "notices_on_time"), "0");
        assert_eq!(col(&rows[1], "deployments_on_time"), "2");
        assert_eq!(col(&rows[1], "network_findings"), "2");
        assert_eq!(col(&rows[2], "verdict"), "not_filed");
        assert_eq!(col(&rows[2], "not_filed"), "true");
        // A name with quotes and markup comes back as it was.
        assert_eq!(col(&rows[2], "name"), reviews[2].name);

        // CPU p95 weighted by vCPUs, memory p95 by GiB, coverage over all in-service days.
        let vms = &reviews[0].facts.vms;
        let cpu = (16.0 * vms[0].cpu.p95 + 8.0 * vms[1].cpu.p95) / 24.0;
        let memory = (64.0 * vms[0].memory.p95 + 32.0 * vms[1].memory.p95) / 96.0;
        assert_eq!(col(&rows[0], "cpu_p95_pct"), format!("{cpu:.1}"));
        assert_eq!(col(&rows[0], "memory_p95_pct"), format!("{memory:.1}"));
        assert_eq!(
            col(&rows[0], "coverage_pct"),
            format!("{:.1}", 100.0 * 727.0 / 730.0)
        );
    }

    #[test]
    fn csv_of_nothing_is_the_header_and_missing_figures_are_empty() {
        let text = summary_csv(&[]).expect("csv");
        assert_eq!(text.trim_end(), CSV_HEADER.join(","));

        let mut r = reviews().remove(0);
        r.facts.vms.clear();
        let text = summary_csv(&[r]).expect("csv");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().expect("a row").expect("parses");
        for name in ["cpu_p95_pct", "memory_p95_pct", "coverage_pct"] {
            let i = CSV_HEADER.iter().position(|h| *h == name).expect("column");
            assert_eq!(&row[i], "", "{name}");
        }
    }

    #[test]
    fn weighting_leaves_out_vms_without_data() {
        let mut a = reviews().remove(0).facts.vms.remove(0);
        let mut b = a.clone();
        a.vcpus = 2.0;
        a.cpu.p95 = 80.0;
        b.vcpus = 6.0;
        b.cpu.p95 = 20.0;
        let mut idle = b.clone();
        idle.days_with_data = 0;
        idle.cpu.p95 = 0.0;
        idle.vcpus = 100.0;
        let t = Totals::of(&[a, b, idle]);
        assert_eq!(t.usage[0].1, Some((2.0 * 80.0 + 6.0 * 20.0) / 8.0));
        assert_eq!(t.vcpus, 108.0, "allocation counts every VM");
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(yuan(24_186.4), "24,186");
        assert_eq!(yuan(1_234_567.0), "1,234,567");
        assert_eq!(yuan(999.5), "1,000");
        assert_eq!(yuan(-1_500.0), "-1,500");
        assert_eq!(yuan(f64::NAN), "—");
        assert_eq!(fixed(-0.01, 1), "0.0");
        assert_eq!(fixed(f64::INFINITY, 1), "");
        assert_eq!(plain(40.0), "40");
        assert_eq!(plain(12.5), "12.5");
        assert_eq!(shown(None, 1), "—");
    }

    /// `text` as the templates' auto-escaping writes it.
    fn escaped(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
            .replace('/', "&#x2f;")
    }

    /// No markup from the data: no tag a name carried survives unescaped.
    fn assert_no_injected_markup(html: &str) {
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "raw <script> in the page");
        assert!(!lower.contains("<img src=x"), "raw <img> in the page");
        assert!(!lower.contains("javascript"), "no JavaScript");
    }

    /// No external resources: the only `src` is the chart, there are no stylesheets or URLs.
    fn assert_self_contained(html: &str) {
        let lower = html.to_lowercase();
        for bad in ["http://", "https://", "<link", "@import", "url("] {
            assert!(!lower.contains(bad), "{bad} in the page");
        }
    }

    #[test]
    fn project_pages_show_the_verdict_explanation_and_facts() {
        let reviews = reviews();
        for (r, word) in reviews.iter().zip(["保留", "取消", "未备案（停止预算）"]) {
            let html = project_html(r, "chart.png").expect("render");
            assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
            assert!(html.contains(word), "verdict {word}");
            assert!(
                html.contains(&format!("class=\"result v-{}\"", verdict_code(r.verdict))),
                "coloured verdict"
            );
            assert!(html.contains("<img src=\"chart.png\""), "the chart");
            for line in &r.explanation {
                let li = format!("<li>{}</li>", escaped(line));
                assert!(html.contains(&li), "explanation line {li}");
            }
            for vm in &r.facts.vms {
                let td = format!("<td>{}</td>", escaped(&vm.vm));
                assert!(html.contains(&td), "{td}");
            }
            for label in ["资源利用", "资源调整", "系统部署", "监测覆盖", "网络登记"]
            {
                assert!(html.contains(label), "part {label}");
            }
            assert_no_injected_markup(&html);
            assert_self_contained(&html);
        }
        let keep = project_html(&reviews[0], "GA-2025-001-utilisation.png").expect("render");
        assert!(keep.contains(
            "<title>2025年度政务信息化项目绩效评价报告 — 平度市公安局视频联网共享平台</title>"
        ));
        assert!(keep.contains("¥3,904"), "idle cost");
        assert!(keep.contains("<td class=\"r\">16</td>"), "vCPUs");
        assert!(keep.contains("99.6%"), "coverage of the VMs together");
        assert!(keep.contains("收到 1 份；按期完成 1 份"), "notices");
        assert!(
            keep.contains("<td class=\"r\">100%</td>"),
            "sum of the weights"
        );
        assert!(
            keep.contains("<td class=\"r\">95.7</td></tr></tfoot>"),
            "sum of the points"
        );
    }

    #[test]
    fn names_with_markup_are_escaped() {
        let r = &reviews()[2];
        let html = project_html(r, "x\"><script>.png").expect("render");
        assert_no_injected_markup(&html);
        assert!(
            html.contains("&lt;script&gt;alert(&#x27;备案&#x27;)&lt;&#x2f;script&gt;移动办公平台")
        );
        assert!(html.contains("平度市教育和体育局&lt;script&gt;"));
        assert!(html.contains("vm-jy-oa-01&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<img src=\"x&quot;&gt;&lt;script&gt;.png\""));
        assert!(html.contains("未备案"), "filed_on missing");
        assert!(html.contains("依第十条停止安排运维经费 &lt;script&gt;"));
    }

    #[test]
    fn a_project_without_vms_still_renders() {
        let mut r = reviews().remove(1);
        r.facts.vms.clear();
        r.explanation.clear();
        let html = project_html(&r, "c.png").expect("render");
        assert!(html.contains("本年度无云主机"));
        assert!(!html.contains("合计（加权）"), "no totals row");
    }

    #[test]
    fn summary_counts_verdicts_and_sorts_by_score() {
        let mut reviews = reviews();
        let mut second_keep = reviews[0].clone();
        second_keep.project = "GA-2025-002".into();
        second_keep.name = "平度市公安局警务云".into();
        second_keep.score = 72.0;
        second_keep.idle_cost_yuan = 1_000.0;
        reviews.push(second_keep);
        let html =
            summary_html(2025, &reviews, |r| format!("p/{}.html", r.project)).expect("render");
        assert_no_injected_markup(&html);
        assert_self_contained(&html);
        assert!(html.contains("<title>2025年度政务信息化项目绩效评价汇总</title>"));
        assert!(html.contains("共评价 4 个项目"));
        let count = |code: &str, n: usize, word: &str| {
            format!(
                "<div class=\"card v-{code}\"><div class=\"n\">{n}</div><div class=\"w\">{word}</div></div>"
            )
        };
        assert!(html.contains(&count("keep", 2, "保留")), "{html}");
        assert!(html.contains(&count("consolidate", 0, "整合")));
        assert!(html.contains(&count("cancel", 1, "取消")));
        assert!(html.contains(&count("not_filed", 1, "未备案（停止预算）")));
        assert!(html.contains("¥30,401"), "3904 + 24186 + 1311 + 1000");
        // By score: 95.7, 72.0, 67.8, 31.9.
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in the page"));
        let order = [
            at("GA-2025-001"),
            at("GA-2025-002"),
            at("JY-2025-013"),
            at("ZJ-2025-007"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(
            html.contains("href=\"p&#x2f;GA-2025-001.html\""),
            "the link"
        );
    }

    #[test]
    fn summary_of_no_projects() {
        let html = summary_html(2025, &[], |_| String::new()).expect("render");
        assert!(html.contains("本年度无评价项目"));
        assert!(html.contains("¥0"));
    }

    /// Decodes a PNG and checks its size.
    fn decode(png: &[u8]) -> image::RgbImage {
        let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("decodes as PNG")
            .to_rgb8();
        assert_eq!(
            img.dimensions(),
            (UTILISATION_CHART_WIDTH, UTILISATION_CHART_HEIGHT)
        );
        img
    }

    /// Whether `color` is drawn inside the plot (below the legend, inside the frame).
    fn in_plot(img: &image::RgbImage, color: RGBColor) -> bool {
        (PLOT_LEFT as u32 + 3..UTILISATION_CHART_WIDTH - PLOT_RIGHT as u32 - 3)
            .flat_map(|x| {
                (110..UTILISATION_CHART_HEIGHT - PLOT_BOTTOM as u32 - 3).map(move |y| (x, y))
            })
            .any(|(x, y)| img.get_pixel(x, y).0 == [color.0, color.1, color.2])
    }

    /// Pixels that are not white in the title band.
    fn title_ink(img: &image::RgbImage) -> usize {
        (0..UTILISATION_CHART_WIDTH)
            .flat_map(|x| (0..32).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255])
            .count()
    }

    #[test]
    fn chart_is_a_1000x400_png_with_lines_and_thresholds() {
        let r = &reviews()[0];
        let img = decode(&utilisation_chart_png(r, &no_fonts(), Labels::Chinese).expect("chart"));
        for color in RESOURCE_COLORS.into_iter().chain([EXPAND_COLOR]) {
            assert!(in_plot(&img, color), "{color:?} drawn");
        }
        assert_eq!(title_ink(&img), 0, "no font, no text");
    }

    #[test]
    fn chart_text_with_a_cjk_font_and_latin_fallback() {
        let r = &reviews()[2];
        if let Some(cjk) = font(CJK_FONT) {
            let fonts = ChartFonts::register(Some(cjk), None).expect("register");
            let chinese = decode(&utilisation_chart_png(r, &fonts, Labels::Chinese).expect("zh"));
            let latin = decode(&utilisation_chart_png(r, &fonts, Labels::Latin).expect("en"));
            assert!(title_ink(&chinese) > 300, "a title");
            assert_ne!(chinese, latin);
        }
        if let Some(latin) = font(LATIN_FONT) {
            let fonts = ChartFonts::register(None, Some(latin)).expect("register");
            let img = decode(&utilisation_chart_png(r, &fonts, Labels::Chinese).expect("chart"));
            assert!(title_ink(&img) > 300, "a Latin title");
        }
    }

    #[test]
    fn chart_without_data_or_with_odd_dates_still_renders() {
        let mut r = reviews().remove(1);
        for vm in &mut r.facts.vms {
            vm.daily = vec![
                ("not a date".into(), 10.0, 10.0, 10.0),
                ("2024-12-31".into(), 10.0, 10.0, 10.0),
                ("2026-01-01".into(), 10.0, 10.0, 10.0),
            ];
        }
        let img = decode(&utilisation_chart_png(&r, &no_fonts(), Labels::Latin).expect("chart"));
        assert!(in_plot(&img, EXPAND_COLOR), "thresholds still drawn");
        let (start, days) = year_span(2025).expect("a year");
        assert!(
            daily_means(start, days, &r.facts.vms)
                .iter()
                .all(Vec::is_empty)
        );
    }

    #[test]
    fn daily_means_average_the_vms_and_gaps_break_the_line() {
        let day = |d: &str, v: f64| (d.to_owned(), v, v + 1.0, f64::NAN);
        let mut a = reviews().remove(0).facts.vms.remove(0);
        let mut b = a.clone();
        a.daily = vec![
            day("2024-01-01", 10.0),
            day("2024-01-02", 20.0),
            day("2024-01-05", 5.0),
        ];
        b.daily = vec![day("2024-01-02", 40.0)];
        let (start, days) = year_span(2024).expect("a year");
        assert_eq!(days, 366, "2024 is a leap year");
        let [cpu, memory, disk] = daily_means(start, days, &[a, b]);
        assert_eq!(cpu, vec![(0, 10.0), (1, 30.0), (4, 5.0)]);
        assert_eq!(memory[1], (1, 31.0));
        assert!(disk.is_empty(), "NaN left out");
        let r = runs(&cpu);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), 2);
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn file_stems_are_safe_and_distinct() {
        assert_eq!(file_stem("GA-2025-001"), "GA-2025-001");
        assert_eq!(file_stem("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_stem("..."), "project");
        assert_eq!(file_stem("教育/OA 平台"), "教育_OA_平台");
        let mut reviews = reviews();
        reviews[1].project = "ga-2025-001".into();
        reviews[2].project = "index".into();
        assert_eq!(
            file_stems(&reviews),
            vec!["GA-2025-001", "ga-2025-001-2", "index-2"]
        );
    }

    #[test]
    fn report_dir_has_every_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("review-2025");
        let reviews = reviews();
        let calls = std::cell::RefCell::new(Vec::new());
        let written = write_report_dir(&dir, 2025, &reviews, &no_fonts(), Labels::Chinese, |i| {
            calls.borrow_mut().push(i)
        })
        .expect("written");
        assert_eq!(calls.into_inner(), vec![1, 2, 3]);
        let names: Vec<String> = written
            .iter()
            .map(|p| {
                assert!(p.is_file(), "{} exists", p.display());
                assert_eq!(p.parent(), Some(dir.as_path()));
                p.file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "GA-2025-001-utilisation.png",
                "GA-2025-001.html",
                "ZJ-2025-007-utilisation.png",
                "ZJ-2025-007.html",
                "JY-2025-013-utilisation.png",
                "JY-2025-013.html",
                "review-2025.csv",
                "index.html",
            ]
        );
        let index = std::fs::read_to_string(dir.join("index.html")).expect("index");
        for r in &reviews {
            assert!(index.contains(&format!("href=\"{}.html\"", r.project)));
        }
        let page = std::fs::read_to_string(dir.join("ZJ-2025-007.html")).expect("page");
        assert!(page.contains("<img src=\"ZJ-2025-007-utilisation.png\""));
        decode(&std::fs::read(dir.join("JY-2025-013-utilisation.png")).expect("png"));
        let csv = std::fs::read_to_string(dir.join("review-2025.csv")).expect("csv");
        assert_eq!(csv.lines().count(), 4);
    }

    #[test]
    fn an_unwritable_dir_names_the_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "x").expect("write");
        let err = write_report_dir(&file, 2025, &reviews(), &no_fonts(), Labels::Latin, |_| {})
            .expect_err("not a directory");
        assert!(matches!(err, ReportError::Io { ref path, .. } if path == &file));
        assert!(err.to_string().contains("a-file"), "{err}");
    }

    /// Writes a sample project page with its chart into target/review-sample when
    /// CLOUDGOV_WRITE_DOCS=1, for the screenshot docs/sample-review-report.png.
    #[test]
    fn write_sample_for_docs() {
        if std::env::var("CLOUDGOV_WRITE_DOCS").as_deref() != Ok("1") {
            return;
        }
        let cjk = font(CJK_FONT).expect("the sample needs the CJK font");
        let fonts = ChartFonts::register(Some(cjk), None).expect("register");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/review-sample");
        let written = write_report_dir(&dir, 2025, &reviews(), &fonts, Labels::Chinese, |_| {})
            .expect("write");
        for p in written {
            eprintln!("wrote {}", p.display());
        }
    }
}

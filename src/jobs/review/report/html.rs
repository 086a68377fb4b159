//! The review's HTML: a printable page per project and an overview page. Self-contained (inline
//! CSS, no JavaScript, no external resources), Chinese, HTML-escaped throughout: names and
//! explanation lines come from departments and the store. The templates are files in
//! `templates/` (embedded at build time), as the dashboard's are.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::{
    ReportError, Totals, VerdictView, coverage, fixed, part_label, plain, shown, verdict_view, yuan,
};
use crate::core::review::{ProjectReview, ReviewVerdict, VmYear};

/// The page templates: the layout every page extends, a project's page, the overview.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("project.html", include_str!("templates/project.html")),
    ("summary.html", include_str!("templates/summary.html")),
];

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
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(err)?;
    }
    env.get_template(template)
        .and_then(|t| t.render(context))
        .map_err(err)
}

//! The report's tests: the CSV, the pages, the chart, the directory.

use super::chart::*;
use super::csv::*;
use super::html::*;
use super::*;
use crate::core::review::{ProjectYear, ScorePart, Usage};
use crate::core::rules::RuleSet;
use chrono::NaiveDate;
use plotters::style::RGBColor;

use crate::core::chart::tests::{CJK_FONT, LATIN_FONT, font};

/// A daily point of [`VmYear::daily`].
type Day = (String, f64, f64, f64);

/// The built-in rules' defaults, which the charts draw their threshold lines from.
fn default_rules() -> crate::core::rules::ResourceRules {
    *RuleSet::builtin().expect("built-in rules").defaults()
}

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
        unused_days: 0,
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
        requested: None,
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
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let rows: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 3);
    let col = |row: &::csv::StringRecord, name: &str| {
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
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
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
    assert!(html.contains("&lt;script&gt;alert(&#x27;备案&#x27;)&lt;&#x2f;script&gt;移动办公平台"));
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
    let html = summary_html(2025, &reviews, |r| format!("p/{}.html", r.project)).expect("render");
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
        .flat_map(|x| (110..UTILISATION_CHART_HEIGHT - PLOT_BOTTOM as u32 - 3).map(move |y| (x, y)))
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
    let img = decode(
        &utilisation_chart_png(r, &default_rules(), &no_fonts(), Labels::Chinese).expect("chart"),
    );
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
        let chinese = decode(
            &utilisation_chart_png(r, &default_rules(), &fonts, Labels::Chinese).expect("zh"),
        );
        let latin =
            decode(&utilisation_chart_png(r, &default_rules(), &fonts, Labels::Latin).expect("en"));
        assert!(title_ink(&chinese) > 300, "a title");
        assert_ne!(chinese, latin);
    }
    if let Some(latin) = font(LATIN_FONT) {
        let fonts = ChartFonts::register(None, Some(latin)).expect("register");
        let img = decode(
            &utilisation_chart_png(r, &default_rules(), &fonts, Labels::Chinese).expect("chart"),
        );
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
    let img = decode(
        &utilisation_chart_png(&r, &default_rules(), &no_fonts(), Labels::Latin).expect("chart"),
    );
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
    let written = write_report_dir(
        &dir,
        2025,
        &reviews,
        &RuleSet::builtin().expect("rules"),
        &no_fonts(),
        Labels::Chinese,
        |i| calls.borrow_mut().push(i),
    )
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
    let err = write_report_dir(
        &file,
        2025,
        &reviews(),
        &RuleSet::builtin().expect("rules"),
        &no_fonts(),
        Labels::Latin,
        |_| {},
    )
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
    let written = write_report_dir(
        &dir,
        2025,
        &reviews(),
        &RuleSet::builtin().expect("rules"),
        &fonts,
        Labels::Chinese,
        |_| {},
    )
    .expect("write");
    for p in written {
        eprintln!("wrote {}", p.display());
    }
}

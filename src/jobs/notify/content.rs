//! What the e-mail templates are given: notices, deadlines and departments in words, with
//! dates in both `YYYY-MM-DD` and `YYYY年M月D日`, and a recommended new size.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::core::calendar::shanghai_day;
use crate::core::domain::{DepartmentId, Direction, Language, ProjectId, Resource};
use crate::core::obligations::ObligationKind;
use crate::core::rules::ResourceRules;
use crate::core::rules::recommend::{NoRecommendation, recommend, size_text, smallest};
use crate::jobs::JobContext;
use crate::store::{DeadlineRow, DepartmentContact, NoticeDetail};

pub use crate::core::calendar::zh_date;

/// The stored resource's name in formal Chinese (an unknown one reads as the disk, as before
/// notices named their resource by type).
fn resource_zh(r: &str) -> &'static str {
    r.parse::<Resource>()
        .unwrap_or(Resource::Disk)
        .title(Language::Zh)
}

fn resource_en(r: &str) -> &'static str {
    r.parse::<Resource>()
        .unwrap_or(Resource::Disk)
        .title(Language::En)
}

/// "p95" -> "第95百分位数", "daily_peak.max" -> "日峰值的最大值", ...
fn statistic_zh(statistic: &str) -> String {
    fn part(s: &str) -> String {
        match s {
            "latest" => "最新值".into(),
            "max" => "最大值".into(),
            "mean" => "平均值".into(),
            p => match p.strip_prefix('p') {
                Some(n) => format!("第{n}百分位数"),
                None => p.to_owned(),
            },
        }
    }
    match statistic.strip_prefix("daily_peak.") {
        Some(agg) => format!("周期性(日)峰值的{}", part(agg)),
        None => part(statistic),
    }
}

/// "<= 25" -> "未超过25%" (the article's words).
fn comparison_zh(comparison: &str) -> String {
    let (op, rest) = if let Some(r) = comparison.strip_prefix("<=") {
        ("未超过", r)
    } else if let Some(r) = comparison.strip_prefix(">=") {
        ("不低于", r)
    } else if let Some(r) = comparison.strip_prefix('<') {
        ("不到", r)
    } else if let Some(r) = comparison.strip_prefix('>') {
        ("超过", r)
    } else {
        ("", comparison)
    };
    format!("{op}{}%", rest.trim())
}

/// Why no size is recommended, in formal Chinese.
fn note_zh(note: NoRecommendation, resource: Resource) -> String {
    match note {
        NoRecommendation::BelowSmallestSize => format!(
            "无可建议的配置:即使调整为最小配置({}),使用率仍处于核减范围。建议评估该系统是否可整合或释放资源。",
            size_text(resource, smallest(resource))
        ),
        NoRecommendation::NoSizeInBand => {
            "无可建议的配置:按现有调整步长,无法使使用率落入规则的合理区间。".into()
        }
        NoRecommendation::NoAllocation => "无可建议的配置:未登记该资源的配置。".into(),
    }
}

/// `第十三条` for 13: article numbers in Chinese numerals (1..=99).
pub fn article_zh(n: u32) -> String {
    const DIGITS: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    let (tens, ones) = ((n / 10) as usize, (n % 10) as usize);
    let number = match tens {
        0 => DIGITS[ones].to_owned(),
        1 => format!("十{}", DIGITS[ones]),
        t if t < 10 => format!("{}十{}", DIGITS[t], DIGITS[ones]),
        _ => n.to_string(),
    };
    format!("第{number}条")
}

pub fn rules_for_notice(ctx: &JobContext, n: &NoticeDetail) -> ResourceRules {
    match (
        DepartmentId::try_from(n.department.as_str()),
        ProjectId::try_from(n.project.as_str()),
    ) {
        (Ok(d), Ok(p)) => ctx.rules.for_vm(&d, &p),
        _ => *ctx.rules.defaults(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeContext {
    pub id: i64,
    pub vm: String,
    pub project: String,
    pub project_name: String,
    pub resource: String,
    pub resource_zh: &'static str,
    pub resource_en: &'static str,
    pub direction: String,
    pub direction_zh: &'static str,
    pub direction_en: &'static str,
    pub statistic: String,
    pub statistic_zh: String,
    pub value: String,
    pub comparison: String,
    pub rule_zh: String,
    pub current: String,
    /// The recommended size, empty where no size settles (then the note says why).
    pub recommended: String,
    /// The statistic at the recommended size, `48.0`.
    pub projected: String,
    pub recommendation_note_zh: String,
    pub recommendation_note_en: String,
    pub due: String,
    pub due_zh: String,
    #[serde(skip)]
    pub due_date: NaiveDate,
    pub provisional: bool,
    /// File name of the attached evidence chart.
    pub chart: String,
}

impl NoticeContext {
    pub fn new(ctx: &JobContext, n: &NoticeDetail) -> NoticeContext {
        let resource: Resource = n.resource.parse().unwrap_or(Resource::Cpu);
        let downsize = n.direction == "downsize";
        let allocation: serde_json::Value =
            serde_json::from_str(&n.allocation_json).unwrap_or_default();
        let field = match resource {
            Resource::Cpu => "vcpus",
            Resource::Memory => "memory_gib",
            Resource::Disk => "disk_gib",
        };
        // The recommendation fixed at issue; notices issued before it was stored get it now.
        let direction = if downsize {
            Direction::Downsize
        } else {
            Direction::Expand
        };
        let recommendation = n.recommendation.unwrap_or_else(|| {
            let rules = rules_for_notice(ctx, n);
            recommend(
                resource,
                rules.get(resource),
                direction,
                allocation[field].as_f64().unwrap_or(0.0),
                n.value,
            )
        });
        let current = recommendation.allocated;
        // The due date is computed the way the deadline job stores it, so an e-mail sent before
        // that job ran says the same date.
        let (due, provisional) = match n.due_on {
            Some(d) => (d, n.provisional),
            None => {
                let c = ctx.calendar.add_workdays(
                    n.issued_on,
                    ctx.rules.deadlines().period(ObligationKind::Adjustment),
                );
                (c.value, c.provisional)
            }
        };
        let (direction_zh, rule_kind) = if downsize {
            ("核减", "核减条件")
        } else {
            ("扩容", "扩容条件")
        };
        NoticeContext {
            id: n.id,
            vm: n.vm.clone(),
            project: n.project.clone(),
            project_name: n.project_name.clone(),
            resource: n.resource.clone(),
            resource_zh: resource_zh(&n.resource),
            resource_en: resource_en(&n.resource),
            direction: n.direction.clone(),
            direction_zh,
            direction_en: if downsize { "downsize" } else { "expand" },
            statistic: n.statistic.clone(),
            statistic_zh: format!(
                "{}使用率{}",
                resource_zh(&n.resource),
                statistic_zh(&n.statistic)
            ),
            value: format!("{:.1}", n.value),
            comparison: n.comparison.clone(),
            rule_zh: format!("{rule_kind}为“{}”", comparison_zh(&n.comparison)),
            current: size_text(resource, current),
            recommended: recommendation
                .recommended
                .map(|s| size_text(resource, s))
                .unwrap_or_default(),
            projected: recommendation
                .projected
                .map(|p| format!("{p:.1}"))
                .unwrap_or_default(),
            recommendation_note_zh: recommendation
                .note
                .map(|note| note_zh(note, resource))
                .unwrap_or_default(),
            recommendation_note_en: recommendation
                .note
                .map(|note| note.text(resource))
                .unwrap_or_default(),
            due: due.to_string(),
            due_zh: zh_date(due),
            due_date: due,
            provisional,
            chart: format!("notice-{}-{}.png", n.id, n.resource),
        }
    }
}

/// Release advice (释放建议) in words: the usage evidence, what the idle allocation costs, when
/// the answer is due.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseContext {
    pub id: i64,
    pub vm: String,
    pub project: String,
    pub project_name: String,
    pub lookback_days: u32,
    pub days_observed: u32,
    pub cpu_max: String,
    pub cpu_rule: String,
    /// The busiest day's traffic, e.g. `4.3 MB`; empty where the agent reports none.
    pub network_max: String,
    pub network_rule: String,
    pub network_reported: bool,
    pub memory_growth: String,
    pub current: String,
    pub current_en: String,
    /// Yuan a month for the whole allocation, `1,480.00`.
    pub monthly_cost: String,
    pub due: String,
    pub due_zh: String,
    #[serde(skip)]
    pub due_date: NaiveDate,
    pub provisional: bool,
}

/// Bytes in decimal units: `4.3 MB`, `1.7 GB`, `850 B`.
pub fn bytes_text(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// `1480` -> `1,480.00`.
pub fn yuan_text(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{frac:02}")
}

/// What the allocation a notice keeps (its JSON: `vcpus`, `memory_gib`, `disk_gib`) costs a
/// month at `prices`.
pub fn monthly_cost(
    prices: &crate::core::review::rules::Prices,
    allocation: &serde_json::Value,
) -> f64 {
    let f = |k: &str| allocation[k].as_f64().unwrap_or(0.0);
    prices.monthly(f("vcpus"), f("memory_gib"), f("disk_gib"))
}

impl ReleaseContext {
    pub fn new(ctx: &JobContext, n: &NoticeDetail) -> ReleaseContext {
        let allocation: serde_json::Value =
            serde_json::from_str(&n.allocation_json).unwrap_or_default();
        let evidence: serde_json::Value = n
            .evidence
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or_default();
        let rule = match (
            DepartmentId::try_from(n.department.as_str()),
            ProjectId::try_from(n.project.as_str()),
        ) {
            (Ok(d), Ok(p)) => ctx.rules.unused_for(&d, &p),
            _ => ctx.rules.unused_default(),
        };
        let (due, provisional) = match n.due_on {
            Some(d) => (d, n.provisional),
            None => {
                let c = ctx.calendar.add_workdays(
                    n.issued_on,
                    ctx.rules.deadlines().period(ObligationKind::Release),
                );
                (c.value, c.provisional)
            }
        };
        let network = evidence["network_bytes_per_day"].as_u64();
        let f = |k: &str| allocation[k].as_f64().unwrap_or(0.0);
        ReleaseContext {
            id: n.id,
            vm: n.vm.clone(),
            project: n.project.clone(),
            project_name: n.project_name.clone(),
            lookback_days: rule.lookback_days,
            days_observed: evidence["days_observed"].as_u64().unwrap_or(0) as u32,
            cpu_max: format!("{:.2}", n.value),
            cpu_rule: format!("{}", rule.cpu_max),
            network_max: network.map(bytes_text).unwrap_or_default(),
            network_rule: bytes_text(rule.network_max_bytes_per_day),
            network_reported: network.is_some(),
            memory_growth: format!(
                "{:.1}",
                evidence["memory_growth_points"].as_f64().unwrap_or(0.0)
            ),
            current: format!(
                "{} vCPU / {} GiB 内存 / {} GiB 硬盘",
                f("vcpus"),
                f("memory_gib"),
                f("disk_gib")
            ),
            current_en: format!(
                "{} vCPU / {} GiB memory / {} GiB disk",
                f("vcpus"),
                f("memory_gib"),
                f("disk_gib")
            ),
            monthly_cost: yuan_text(monthly_cost(&ctx.prices, &allocation)),
            due: due.to_string(),
            due_zh: zh_date(due),
            due_date: due,
            provisional,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Department {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DigestContext {
    pub department: Department,
    /// Downsize notices and expansion advice.
    pub notices: Vec<NoticeContext>,
    /// Release advice for systems that look no longer used.
    pub releases: Vec<ReleaseContext>,
    pub release_working_days: u32,
    pub window_days: u32,
    pub working_days: u32,
    pub earliest_due: String,
    pub earliest_due_zh: String,
    pub issued: String,
    pub issued_zh: String,
}

impl DigestContext {
    pub fn new(
        ctx: &JobContext,
        department: &DepartmentContact,
        notices: Vec<NoticeContext>,
        releases: Vec<ReleaseContext>,
        issued: DateTime<Utc>,
    ) -> DigestContext {
        let issued_day = shanghai_day(issued);
        let earliest = notices
            .iter()
            .map(|n| n.due_date)
            .chain(releases.iter().map(|r| r.due_date))
            .min()
            .unwrap_or(issued_day);
        DigestContext {
            department: Department {
                id: department.id.clone(),
                name: department.name.clone(),
            },
            notices,
            releases,
            release_working_days: ctx.rules.deadlines().period(ObligationKind::Release).get(),
            window_days: ctx.rules.window().days,
            working_days: ctx
                .rules
                .deadlines()
                .period(ObligationKind::Adjustment)
                .get(),
            earliest_due: earliest.to_string(),
            earliest_due_zh: zh_date(earliest),
            issued: issued_day.to_string(),
            issued_zh: zh_date(issued_day),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadlineFacts {
    pub kind: String,
    pub kind_zh: &'static str,
    pub kind_en: &'static str,
    pub rule_zh: String,
    pub rule_en: String,
    /// `第十三条`, `Article 13`: the article the obligation comes from.
    pub article_zh: String,
    pub article_en: String,
    /// What it is about: `云主机:vm-01(项目:his)`, or `项目:his` for a filing.
    pub subject_zh: String,
    pub subject_en: String,
    /// The VM it concerns, else the project (for subjects in e-mail subject lines).
    pub vm: String,
    pub project: String,
    pub notice_id: Option<i64>,
    pub start: String,
    pub start_zh: String,
    pub due: String,
    pub due_zh: String,
    pub provisional: bool,
    pub days_left: u32,
    pub days_late: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadlineContext {
    pub department: Department,
    pub deadline: DeadlineFacts,
    pub issued: String,
    pub issued_zh: String,
}

impl DeadlineContext {
    pub fn new(
        ctx: &JobContext,
        department: &DepartmentContact,
        d: &DeadlineRow,
        issued: DateTime<Utc>,
    ) -> DeadlineContext {
        let today = shanghai_day(issued);
        let n = u32::try_from(d.working_days).unwrap_or(0);
        let article = d.kind.article();
        DeadlineContext {
            department: Department {
                id: department.id.clone(),
                name: department.name.clone(),
            },
            deadline: DeadlineFacts {
                kind: d.kind.to_string(),
                kind_zh: d.kind.title(Language::Zh),
                kind_en: d.kind.title(Language::En),
                rule_zh: d.kind.rule(Language::Zh, n),
                rule_en: d.kind.rule(Language::En, n),
                article_zh: article_zh(article.number),
                article_en: format!("Article {}", article.number),
                subject_zh: subject_words(d, Language::Zh),
                subject_en: subject_words(d, Language::En),
                vm: d.subject().to_owned(),
                project: d.project.clone().unwrap_or_default(),
                notice_id: d.notice_id,
                start: d.start_on.to_string(),
                start_zh: zh_date(d.start_on),
                due: d.due_on.to_string(),
                due_zh: zh_date(d.due_on),
                provisional: d.provisional,
                days_left: ctx.calendar.between(today, d.due_on).value,
                days_late: ctx.calendar.between(d.due_on, today).value,
            },
            issued: today.to_string(),
            issued_zh: zh_date(today),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_follow_the_article() {
        assert_eq!(comparison_zh("<= 25"), "未超过25%");
        assert_eq!(comparison_zh("< 50"), "不到50%");
        assert_eq!(comparison_zh("> 75"), "超过75%");
        assert_eq!(statistic_zh("p95"), "第95百分位数");
        assert_eq!(article_zh(13), "第十三条");
        assert_eq!(article_zh(10), "第十条");
        assert_eq!(article_zh(23), "第二十三条");
        assert_eq!(article_zh(9), "第九条");
        assert_eq!(statistic_zh("daily_peak.max"), "周期性(日)峰值的最大值");
        assert_eq!(
            zh_date(NaiveDate::from_ymd_opt(2025, 10, 6).expect("date")),
            "2025年10月6日"
        );
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkFindingContext {
    pub kind: String,
    pub kind_zh: &'static str,
    pub ip: String,
    pub mac: String,
    pub evidence: String,
}

/// What an obligation is about, in words: `云主机:vm-1(项目:p)`, `Project: p`.
fn subject_words(d: &crate::store::DeadlineRow, language: Language) -> String {
    use crate::core::obligations::Subject;
    let zh = language == Language::Zh;
    let vm = |vm: &str| {
        if zh {
            format!("云主机:{vm}")
        } else {
            format!("VM: {vm}")
        }
    };
    let project = |p: &str| {
        if zh {
            format!("项目:{p}")
        } else {
            format!("Project: {p}")
        }
    };
    let department = || {
        if zh {
            format!("部门:{}", d.department)
        } else {
            format!("Department: {}", d.department)
        }
    };
    match (d.kind.subject(), d.vm.as_deref(), d.project.as_deref()) {
        (Subject::Request, ..) => {
            let id = d.request_id.unwrap_or_default();
            if zh {
                format!("资源申请:第{id}号(部门:{})", d.department)
            } else {
                format!("Resource request {id} (department: {})", d.department)
            }
        }
        (Subject::Vm | Subject::Notice, Some(v), Some(p)) if zh => format!("云主机:{v}(项目:{p})"),
        (Subject::Vm | Subject::Notice, Some(v), Some(p)) => format!("VM: {v} (project: {p})"),
        (Subject::Vm | Subject::Notice, Some(v), None) => vm(v),
        (Subject::Vm | Subject::Notice | Subject::Project, None, Some(p))
        | (Subject::Project, Some(_), Some(p)) => project(p),
        (Subject::Project, Some(v), None) => vm(v),
        (Subject::Vm | Subject::Notice | Subject::Project, None, None) | (Subject::Address, ..) => {
            department()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkContext {
    pub department: Department,
    pub findings: Vec<NetworkFindingContext>,
    pub issued: String,
    pub issued_zh: String,
}

fn network_kind_zh(kind: &str) -> &'static str {
    match kind {
        "unregistered_ip" => "IP地址未备案",
        "mac_mismatch" => "IP与MAC绑定不符",
        "ip_conflict" => "IP地址冲突",
        "dhcp_address" => "未使用静态IP(DHCP)",
        "suspected_router" => "疑似私接路由设备",
        "stale_registration" => "备案IP长期未使用",
        _ => "网络登记问题",
    }
}

impl NetworkContext {
    pub fn new(
        department: &DepartmentContact,
        findings: Vec<crate::store::NetworkFindingRow>,
        issued: DateTime<Utc>,
    ) -> NetworkContext {
        let day = shanghai_day(issued);
        NetworkContext {
            department: Department {
                id: department.id.clone(),
                name: department.name.clone(),
            },
            findings: findings
                .into_iter()
                .map(|f| NetworkFindingContext {
                    kind_zh: network_kind_zh(&f.kind),
                    kind: f.kind,
                    ip: f.ip,
                    mac: f.mac.unwrap_or_default(),
                    evidence: f.evidence,
                })
                .collect(),
            issued: day.to_string(),
            issued_zh: zh_date(day),
        }
    }
}

/// A resource request in an e-mail: its receipt, or the center's decision.
#[derive(Debug, Clone, Serialize)]
pub struct RequestContext {
    pub department: Department,
    pub request: crate::jobs::requests::RequestView,
    pub approved: bool,
    pub rejected: bool,
    pub submitted_zh: String,
    pub due_zh: String,
    pub decided_zh: String,
    pub issued: String,
    pub issued_zh: String,
}

impl RequestContext {
    pub fn new(
        department: &DepartmentContact,
        request: crate::jobs::requests::RequestView,
        issued: DateTime<Utc>,
    ) -> RequestContext {
        let today = shanghai_day(issued);
        let zh = |d: Option<&str>| {
            d.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .map(zh_date)
                .unwrap_or_default()
        };
        use crate::core::requests::RequestState;
        RequestContext {
            department: Department {
                id: department.id.clone(),
                name: department.name.clone(),
            },
            approved: matches!(
                request.state,
                RequestState::Approved | RequestState::Delivered
            ),
            rejected: request.state == RequestState::Rejected,
            submitted_zh: zh(Some(&request.submitted_on)),
            due_zh: zh(request.due.as_deref()),
            decided_zh: zh(request.decided_on.as_deref()),
            request,
            issued: today.to_string(),
            issued_zh: zh_date(today),
        }
    }
}

//! What the e-mail templates are given: notices, deadlines and departments in words, with
//! dates in both `YYYY-MM-DD` and `YYYY年M月D日`, and a recommended new size.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{DepartmentId, ProjectId, Resource};
use crate::jobs::{JobContext, shanghai_day};
use crate::rules::ResourceRules;
use crate::store::{DeadlineRow, DepartmentContact, NoticeDetail};

pub fn zh_date(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

fn resource_zh(r: &str) -> &'static str {
    match r {
        "cpu" => "CPU",
        "memory" => "内存",
        _ => "硬盘",
    }
}

fn resource_en(r: &str) -> &'static str {
    match r {
        "cpu" => "CPU",
        "memory" => "memory",
        _ => "disk",
    }
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

/// The size that brings the statistic to `target` percent: `current * value / target`, rounded
/// up to whole vCPUs, whole GiB of memory or 10 GiB of disk, and at least one step in the asked
/// direction.
pub fn recommend(resource: Resource, downsize: bool, current: f64, value: f64, target: f64) -> f64 {
    let step = match resource {
        Resource::Cpu | Resource::Memory => 1.0,
        Resource::Disk => 10.0,
    };
    let ideal = (current * value / target / step).ceil() * step;
    if downsize {
        ideal.min(current - step).max(step)
    } else {
        ideal.max(current + step)
    }
}

fn size_text(resource: Resource, v: f64) -> String {
    match resource {
        Resource::Cpu => format!("{v} vCPU"),
        Resource::Memory | Resource::Disk => format!("{v} GiB"),
    }
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
    pub recommended: String,
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
        let current = allocation[field].as_f64().unwrap_or(0.0);
        let target = ctx.rules.notices().target_utilisation.get();
        // The due date is computed the way the deadline job stores it, so an e-mail sent before
        // that job ran says the same date.
        let (due, provisional) = match n.due_on {
            Some(d) => (d, n.provisional),
            None => {
                let c = ctx
                    .calendar
                    .add_workdays(n.issued_on, ctx.rules.deadlines().adjustment);
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
            recommended: size_text(
                resource,
                recommend(resource, downsize, current, n.value, target),
            ),
            due: due.to_string(),
            due_zh: zh_date(due),
            due_date: due,
            provisional,
            chart: format!("notice-{}-{}.png", n.id, n.resource),
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
    pub notices: Vec<NoticeContext>,
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
        issued: DateTime<Utc>,
    ) -> DigestContext {
        let issued_day = shanghai_day(issued);
        let earliest = notices
            .iter()
            .map(|n| n.due_date)
            .min()
            .unwrap_or(issued_day);
        DigestContext {
            department: Department {
                id: department.id.clone(),
                name: department.name.clone(),
            },
            notices,
            window_days: ctx.rules.window().days,
            working_days: ctx.rules.deadlines().adjustment.get(),
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
        let deployment = d.kind == crate::deadlines::DeadlineKind::Deployment;
        let n = d.working_days;
        let (kind_zh, kind_en, rule_zh, rule_en) = if deployment {
            (
                "系统部署",
                "deployment",
                format!("各部门应在云资源交付后{n}个工作日内完成系统部署。"),
                format!(
                    "a department deploys its system within {n} working days after the cloud resources are delivered."
                ),
            )
        } else {
            (
                "资源调整",
                "adjustment",
                format!("各部门收到云资源调整通知后,应在{n}个工作日内完成资源调整。"),
                format!(
                    "a department completes a resource adjustment within {n} working days of receiving the notice."
                ),
            )
        };
        DeadlineContext {
            department: Department {
                id: department.id.clone(),
                name: department.name.clone(),
            },
            deadline: DeadlineFacts {
                kind: d.kind.to_string(),
                kind_zh,
                kind_en,
                rule_zh,
                rule_en,
                vm: d.vm.clone(),
                project: d.project.clone(),
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
    fn recommendations_move_at_least_one_step_the_asked_way() {
        // p95 CPU 12% of 8 vCPUs at a 50% target: 8 * 12 / 50 = 1.92 -> 2 vCPUs.
        assert_eq!(recommend(Resource::Cpu, true, 8.0, 12.0, 50.0), 2.0);
        // Disk 49% of 500 GiB: ideal 490 GiB, a step below the current size.
        assert_eq!(recommend(Resource::Disk, true, 500.0, 49.9, 50.0), 490.0);
        // Never below one step.
        assert_eq!(recommend(Resource::Memory, true, 4.0, 1.0, 50.0), 1.0);
        // Memory peak 90% of 8 GiB: 8 * 90 / 50 = 14.4 -> 15 GiB.
        assert_eq!(recommend(Resource::Memory, false, 8.0, 90.0, 50.0), 15.0);
    }

    #[test]
    fn words_follow_the_article() {
        assert_eq!(comparison_zh("<= 25"), "未超过25%");
        assert_eq!(comparison_zh("< 50"), "不到50%");
        assert_eq!(comparison_zh("> 75"), "超过75%");
        assert_eq!(statistic_zh("p95"), "第95百分位数");
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

//! Scoring a project's year: five weighted parts, a grade, a verdict, and the explanation of
//! each from the numbers. Pure.

use chrono::NaiveDate;

use super::rules::ReviewRules;
use super::{ProjectReview, ProjectYear, ReviewVerdict, ScorePart, VmYear};

/// More unused VM-days than this share of the days with data: "unused for most of the year".
pub const MOSTLY_UNUSED_PCT: f64 = 50.0;

fn verdict_zh(v: ReviewVerdict) -> &'static str {
    match v {
        ReviewVerdict::Keep => "保留",
        ReviewVerdict::Consolidate => "整合",
        ReviewVerdict::Cancel => "取消",
        ReviewVerdict::NotFiled => "未备案",
    }
}

/// Marks a date counted into a year without calendar data (Monday-Friday assumed).
pub const PROVISIONAL_ZH: &str = "(暂定:该年度节假日安排尚未公布,按周一至周五计算)";

fn pct(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| 100.0 * part / whole)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Share (0..=100) of a VM's days with data whose CPU and memory were in neither territory.
fn in_range_share(vm: &VmYear) -> Option<f64> {
    let days = f64::from(vm.days_with_data);
    let out_cpu = f64::from(vm.downsize_days[0] + vm.expand_days[0]);
    let out_mem = f64::from(vm.downsize_days[1] + vm.expand_days[1]);
    pct(2.0 * days - out_cpu - out_mem, 2.0 * days)
}

/// Whether the project was filed in time: not deployed -> nothing to file yet.
pub fn filed_in_time(facts: &ProjectYear) -> bool {
    match (&facts.first_deployed_on, &facts.filed_on, &facts.filing_due) {
        (None, _, _) => true,
        (Some(_), None, _) => false,
        (Some(_), Some(filed), Some(due)) => {
            let (Ok(filed), Ok(due)) = (
                NaiveDate::parse_from_str(filed, "%Y-%m-%d"),
                NaiveDate::parse_from_str(due, "%Y-%m-%d"),
            ) else {
                return false;
            };
            filed <= due
        }
        (Some(_), Some(_), None) => true,
    }
}

/// Reviews one project's year.
pub fn review(year: i32, facts: ProjectYear, rules: &ReviewRules) -> ProjectReview {
    let w = rules.weights;
    let mut explanation = Vec::new();
    let mut parts = Vec::new();
    let mut part = |name: &str, weight: f64, value: f64, line: String| {
        let points = weight * value / 100.0;
        explanation.push(format!(
            "{line} → {:.1} × {weight}% = {:.1} 分",
            value, points
        ));
        parts.push(ScorePart {
            name: name.to_owned(),
            weight,
            value: round1(value),
            points: round1(points),
        });
    };

    let shares: Vec<f64> = facts.vms.iter().filter_map(in_range_share).collect();
    let utilisation = if shares.is_empty() {
        0.0
    } else {
        shares.iter().sum::<f64>() / shares.len() as f64
    };
    let downsize_days: u32 = facts
        .vms
        .iter()
        .map(|v| v.downsize_days[0] + v.downsize_days[1])
        .sum();
    let expand_days: u32 = facts
        .vms
        .iter()
        .map(|v| v.expand_days[0] + v.expand_days[1])
        .sum();
    part(
        "utilisation",
        w.utilisation,
        utilisation,
        if shares.is_empty() {
            "资源利用:全年无监测数据,得 0".to_owned()
        } else {
            format!(
                "资源利用:{} 台云主机 CPU/内存处于合理区间的天数占比 {:.1}%(核减区间 {downsize_days} 台·天,扩容区间 {expand_days} 台·天)",
                shares.len(),
                utilisation
            )
        },
    );

    // Only deadlines already decided count: a notice still within its 10 working days is neither.
    let decided = facts.notices_done_on_time + facts.notices_done_late + facts.notices_overdue;
    let adjustments =
        pct(f64::from(facts.notices_done_on_time), f64::from(decided)).unwrap_or(100.0);
    part(
        "adjustments",
        w.adjustments,
        adjustments,
        format!(
            "资源调整:收到调整通知 {} 份,按期完成 {},逾期完成 {},逾期未完成 {}",
            facts.notices_received,
            facts.notices_done_on_time,
            facts.notices_done_late,
            facts.notices_overdue
        ),
    );

    let deployments =
        facts.deployments_on_time + facts.deployments_late + facts.deployments_missing;
    let deployment =
        pct(f64::from(facts.deployments_on_time), f64::from(deployments)).unwrap_or(100.0);
    part(
        "deployment",
        w.deployment,
        deployment,
        format!(
            "系统部署:{deployments} 台云主机中按期(交付后10个工作日内)部署 {},逾期 {},未部署 {}",
            facts.deployments_on_time, facts.deployments_late, facts.deployments_missing
        ),
    );

    let in_service: u32 = facts.vms.iter().map(|v| v.days_in_service).sum();
    let with_data: u32 = facts.vms.iter().map(|v| v.days_with_data).sum();
    let coverage = pct(f64::from(with_data), f64::from(in_service))
        .unwrap_or(0.0)
        .min(100.0);
    part(
        "coverage",
        w.coverage,
        coverage,
        format!("监测覆盖:在用 {in_service} 台·天中有监测数据 {with_data} 台·天"),
    );

    let network = (100.0 - 10.0 * f64::from(facts.network_findings)).max(0.0);
    part(
        "network",
        w.network,
        network,
        format!(
            "网络登记:全年网络登记问题 {} 项(每项扣10)",
            facts.network_findings
        ),
    );

    let score = round1(parts.iter().map(|p| p.points).sum::<f64>());
    let grade = rules
        .grades
        .iter()
        .find(|(_, from)| score >= *from)
        .map_or_else(|| "D".to_owned(), |(g, _)| g.clone());

    // Idle capacity: what is allocated beyond what the year's p95 needs at the target.
    let target = rules.target_utilisation;
    let idle = |allocated: f64, p95: f64| (allocated - allocated * p95 / target).max(0.0);
    let months = |vm: &VmYear| f64::from(vm.days_in_service) / 365.0 * 12.0;
    let (mut idle_vcpus, mut idle_memory, mut idle_disk, mut idle_cost) = (0.0, 0.0, 0.0, 0.0);
    for vm in facts.vms.iter().filter(|v| v.days_with_data > 0) {
        let (c, m, d) = (
            idle(vm.vcpus, vm.cpu.p95),
            idle(vm.memory_gib, vm.memory.p95),
            idle(vm.disk_gib, vm.disk.p95),
        );
        idle_vcpus += c;
        idle_memory += m;
        idle_disk += d;
        idle_cost += months(vm) * rules.prices.monthly(c, m, d);
    }
    explanation.push(format!(
        "闲置资源:按 p95 使用率达到 {target}% 计,闲置 {idle_vcpus:.1} vCPU、{idle_memory:.1} GiB 内存、{idle_disk:.0} GiB 硬盘,折合费用 {idle_cost:.0} 元"
    ));

    if facts.filing_due_provisional
        && let Some(due) = &facts.filing_due
    {
        explanation.push(format!("备案期限 {due}{PROVISIONAL_ZH}"));
    }
    let verdict = if !filed_in_time(&facts) {
        explanation.push(match (&facts.filed_on, &facts.filing_due) {
            (None, _) => format!(
                "结论:项目已部署(首台云主机部署于 {})但未全口径备案,依第十条停止安排运维经费",
                facts.first_deployed_on.as_deref().unwrap_or("-")
            ),
            (Some(filed), due) => format!(
                "结论:项目备案于 {filed},晚于备案期限 {}{},依第十条停止安排运维经费",
                due.as_deref().unwrap_or("-"),
                if facts.filing_due_provisional {
                    PROVISIONAL_ZH
                } else {
                    ""
                }
            ),
        });
        ReviewVerdict::NotFiled
    } else if score >= rules.keep_from {
        explanation.push(format!(
            "结论:总分 {score:.1}(等级 {grade})不低于保留线 {},保留",
            rules.keep_from
        ));
        ReviewVerdict::Keep
    } else if score >= rules.consolidate_from {
        explanation.push(format!(
            "结论:总分 {score:.1}(等级 {grade})低于保留线 {}、不低于整合线 {},予以整合",
            rules.keep_from, rules.consolidate_from
        ));
        ReviewVerdict::Consolidate
    } else {
        explanation.push(format!(
            "结论:总分 {score:.1}(等级 {grade})低于整合线 {},予以取消",
            rules.consolidate_from
        ));
        ReviewVerdict::Cancel
    };
    if let Some(r) = &facts.requested {
        explanation.push(format!(
            "资源申请:本年度交付申请 {} 项、云主机 {} 台;申请 {:.0} vCPU、{:.0} GiB 内存、{:.0} GiB 硬盘,批准 {:.0} vCPU、{:.0} GiB 内存、{:.0} GiB 硬盘,实际使用(p95)约 {:.1} vCPU、{:.1} GiB 内存、{:.0} GiB 硬盘",
            r.requests,
            r.vms,
            r.asked.vcpus,
            r.asked.memory_gib,
            r.asked.disk_gib,
            r.approved.vcpus,
            r.approved.memory_gib,
            r.approved.disk_gib,
            r.used.vcpus,
            r.used.memory_gib,
            r.used.disk_gib
        ));
    }
    // A project unused for most of the year moves one step toward cancel (art. 13: a system no
    // longer used is released; Jilin art. 12: systems little and rarely used are cleaned up).
    let unused_days: u32 = facts.vms.iter().map(|v| v.unused_days).sum();
    let unused_share = pct(f64::from(unused_days), f64::from(with_data));
    if let Some(share) = unused_share {
        explanation.push(format!(
            "闲置判定:有监测数据的 {with_data} 台·天中疑似闲置(未见使用迹象){unused_days} 台·天,占 {share:.1}%"
        ));
    }
    let verdict = match (verdict, unused_share) {
        (ReviewVerdict::Keep | ReviewVerdict::Consolidate, Some(share))
            if share > MOSTLY_UNUSED_PCT =>
        {
            let moved = if verdict == ReviewVerdict::Keep {
                ReviewVerdict::Consolidate
            } else {
                ReviewVerdict::Cancel
            };
            explanation.push(format!(
                "结论调整:项目全年多数时间疑似闲置({share:.1}% 超过 {MOSTLY_UNUSED_PCT}%),依第十三条“系统不再使用时应及时释放资源”,结论由{}调整为{}",
                verdict_zh(verdict),
                verdict_zh(moved)
            ));
            moved
        }
        (v, _) => v,
    };

    ProjectReview {
        year,
        project: facts.project.clone(),
        name: facts.name.clone(),
        department: facts.department.clone(),
        department_name: facts.department_name.clone(),
        score,
        grade,
        verdict,
        explanation,
        parts,
        idle_vcpus: round1(idle_vcpus),
        idle_memory_gib: round1(idle_memory),
        idle_disk_gib: round1(idle_disk),
        idle_cost_yuan: idle_cost.round(),
        facts,
    }
}

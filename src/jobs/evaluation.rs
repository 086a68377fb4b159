//! The evaluation job: each VM's window of samples through the rules, then findings and notices stored.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use crate::core::domain::Resource;
use crate::core::rules::RuleSet;
use crate::core::rules::evaluate::{evaluate_vm, window_bounds};
use crate::core::rules::recommend::recommend;
use crate::store::{FindingRow, Store, StoreError, VmFindings, rfc3339};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationReport {
    pub at: DateTime<Utc>,
    pub vms: usize,
    pub findings: Vec<FindingRow>,
    /// Notices opened by this run (0 with `persist = false`).
    pub notices_opened: u64,
}

/// Evaluates every VM that is not released as of `at`. With `persist`, the findings replace the
/// stored ones and downsize/expand findings open notices (never a second open one).
pub async fn evaluate(
    store: &Store,
    rules: &RuleSet,
    at: DateTime<Utc>,
    persist: bool,
) -> Result<EvaluationReport, StoreError> {
    let window = rules.window();
    let (from, to) = window_bounds(window, at);
    let today = at.with_timezone(&Shanghai).date_naive();
    let vms: Vec<_> = store
        .vms()
        .await?
        .into_iter()
        .filter(|v| v.released_on.is_none_or(|r| r > today))
        .collect();
    // The agents' own view of their capacity is part of each notice's baseline, so completion
    // can be read from what the VM reports as well as from the inventory.
    let agents: std::collections::HashMap<String, (i64, i64, i64)> = store
        .agents()
        .await?
        .into_iter()
        .map(|a| (a.vm, (a.vcpus, a.memory_bytes, a.disk_bytes)))
        .collect();
    // After an adjustment the percentages mean something else: the VM is measured afresh from
    // the day the adjustment was completed, so a new window must fill before the next verdict.
    let adjusted = store.last_adjustment_done().await?;
    let mut findings = Vec::with_capacity(vms.len() * 3);
    let mut to_store = Vec::with_capacity(vms.len());
    for vm in &vms {
        let since = adjusted
            .get(&vm.key)
            .and_then(|day| {
                Shanghai
                    .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc) - chrono::TimeDelta::seconds(1))
            .map_or(from, |t| t.max(from));
        let samples = store.samples_between(vm.key, since, to).await?;
        let vm_rules = rules.for_vm(&vm.department, &vm.project);
        let result = evaluate_vm(&vm_rules, window, at, &samples);
        // What each notice would recommend, fixed when it is issued.
        let recommendations = result.clone().map(|f| {
            let direction = f.verdict.direction()?;
            let allocated = match f.resource {
                Resource::Cpu => vm.vcpus as f64,
                Resource::Memory => vm.memory_gib,
                Resource::Disk => vm.disk_gib,
            };
            Some(recommend(
                f.resource,
                vm_rules.get(f.resource),
                direction,
                allocated,
                f.value?,
            ))
        });
        findings.extend(result.iter().map(|f| FindingRow {
            vm: vm.id.to_string(),
            project: vm.project.to_string(),
            department: vm.department.to_string(),
            resource: f.resource,
            verdict: f.verdict,
            value: f.value,
            threshold: f.threshold,
            comparison: f.comparison.clone(),
            statistic: f.statistic.clone(),
            samples: f.samples as i64,
            days_with_samples: f.days_with_samples as i64,
            evaluated_at: rfc3339(at.timestamp()),
        }));
        to_store.push(VmFindings {
            vm_key: vm.key,
            department: vm.department.to_string(),
            allocation_json: serde_json::json!({
                "vcpus": vm.vcpus, "memory_gib": vm.memory_gib, "disk_gib": vm.disk_gib,
                "agent": agents.get(vm.id.as_str()).map(|&(vcpus, memory_bytes, disk_bytes)| serde_json::json!({
                    "vcpus": vcpus, "memory_bytes": memory_bytes, "disk_bytes": disk_bytes,
                })),
            })
            .to_string(),
            findings: result,
            recommendations,
        });
    }
    let notices_opened = if persist {
        let written = store
            .record_evaluation(at, today, &to_store, !rules.notices().require_approval)
            .await?;
        tracing::info!(
            evaluation_id = written.evaluation_id,
            vms = vms.len(),
            notices_opened = written.notices_opened,
            at = %at,
            "evaluation stored"
        );
        written.notices_opened
    } else {
        0
    };
    Ok(EvaluationReport {
        at,
        vms: vms.len(),
        findings,
        notices_opened,
    })
}

//! The evaluation job: each VM's window of samples through the rules, then findings and notices stored.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use crate::core::domain::{Aspect, Resource};
use crate::core::rules::evaluate::window_bounds;
use crate::core::rules::recommend::recommend;
use crate::core::rules::{RuleSet, Window};
use crate::core::samples::{Sample, shanghai_day_of, shanghai_day_start};
use crate::core::usage::idle::judge_usage;
use crate::core::usage::window::{DayInput, evaluate_days};
use crate::core::usage::{DayAggregate, DayView};
use crate::store::{FindingRow, Store, StoreError, UsageRecord, VmFindings, VmRow, rfc3339};

/// VMs whose windows are read together: a few statements per batch instead of per VM, and a
/// bounded amount in memory (about 256 x 31 aggregates and 256 edge days of raw samples).
const WINDOW_BATCH: usize = 256;

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
    // A batch's windows are read, judged and dropped before the next batch is read: memory
    // holds one batch of windows, whatever the fleet.
    for batch in vms.chunks(WINDOW_BATCH) {
        let windows = load_windows(store, batch, &adjusted, window, at).await?;
        for (vm, days) in batch.iter().zip(windows) {
            let vm_rules = rules.for_vm(&vm.department, &vm.project);
            let inputs = days
                .inputs()
                .map_err(|e| StoreError::Invalid(format!("VM {}: {e}", vm.id)))?;
            let result = evaluate_days(&vm_rules, window, at, &inputs)
                .map_err(|e| StoreError::Invalid(format!("VM {}: {e}", vm.id)))?;
            let unused_rule = rules.unused_for(&vm.department, &vm.project);
            let usage = judge_usage(&unused_rule, at, &inputs);
            let evidence = serde_json::to_value(&usage.evidence)
                .map_err(|e| StoreError::Invalid(format!("VM {}: {e}", vm.id)))?;
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
                resource: f.resource.into(),
                verdict: f.verdict,
                value: f.value,
                threshold: f.threshold,
                comparison: f.comparison.clone(),
                statistic: f.statistic.clone(),
                samples: f.samples as i64,
                days_with_samples: f.days_with_samples as i64,
                evaluated_at: rfc3339(at.timestamp()),
                evidence: None,
            }));
            findings.push(FindingRow {
                vm: vm.id.to_string(),
                project: vm.project.to_string(),
                department: vm.department.to_string(),
                resource: Aspect::Usage,
                verdict: usage.verdict,
                value: usage.evidence.cpu_max_pct,
                threshold: Some(unused_rule.cpu_max.get()),
                comparison: Some(unused_rule.comparison()),
                statistic: crate::core::usage::idle::STATISTIC.to_owned(),
                samples: usage.evidence.samples as i64,
                days_with_samples: i64::from(usage.evidence.days_observed),
                evaluated_at: rfc3339(at.timestamp()),
                evidence: Some(evidence.clone()),
            });
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
                usage: UsageRecord {
                    verdict: usage.verdict,
                    cpu_max: usage.evidence.cpu_max_pct,
                    cpu_threshold: unused_rule.cpu_max.get(),
                    comparison: unused_rule.comparison(),
                    samples: usage.evidence.samples as i64,
                    days_observed: i64::from(usage.evidence.days_observed),
                    evidence_json: evidence.to_string(),
                    release_requested: vm.release_requested_on.is_some(),
                    deployed: vm.deployed_on.is_some_and(|d| d <= today),
                },
            });
        }
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

/// One day of a VM's window as read: its stored aggregate, or raw samples.
enum LoadedDay {
    Stored(NaiveDate, Vec<u8>),
    Raw(Vec<Sample>),
}

/// A VM's window as read from the store, ready to evaluate.
struct LoadedWindow(Vec<LoadedDay>);

impl LoadedWindow {
    fn inputs(&self) -> Result<Vec<DayInput<'_>>, crate::core::usage::histogram::Malformed> {
        self.0
            .iter()
            .map(|d| {
                Ok(match d {
                    LoadedDay::Stored(day, bytes) => {
                        DayInput::Aggregated(DayView::parse(*day, bytes)?)
                    }
                    LoadedDay::Raw(samples) => DayInput::Raw(samples),
                })
            })
            .collect()
    }
}

/// Reads the windows of some VMs: each whole day inside the window as its aggregate (with the
/// samples that came since the last fold added), the edge days and any day not yet folded as
/// raw samples. A VM adjusted since the window began is read from the day of its adjustment.
async fn load_windows(
    store: &Store,
    vms: &[VmRow],
    adjusted: &HashMap<i64, NaiveDate>,
    window: Window,
    at: DateTime<Utc>,
) -> Result<Vec<LoadedWindow>, StoreError> {
    let (start, end) = window_bounds(window, at);
    let (start, end) = (start.timestamp(), end.timestamp());
    let (first_day, last_day) = (shanghai_day_of(start + 1), shanghai_day_of(end));
    let keys: Vec<i64> = vms.iter().map(|v| v.key).collect();
    let mut stored: HashMap<(i64, NaiveDate), crate::store::StoredDay> = store
        .stored_days(&keys, first_day, last_day)
        .await?
        .into_iter()
        .map(|d| ((d.vm_key, d.day), d))
        .collect();
    let dirty: HashMap<(i64, NaiveDate), crate::store::DirtyDay> = store
        .dirty_between(&keys, first_day, last_day)
        .await?
        .into_iter()
        .map(|d| ((d.vm_key, d.day), d))
        .collect();
    // The first day of the window, raw, for every VM at once: it rarely starts at midnight.
    // Without network figures: the rules judge percentages, and the unused-system lookback
    // (at most the window's days, checked when the rules load) never reaches this day.
    let mut first_raw = store
        .usage_samples_of(&keys, start + 1, shanghai_day_start(first_day) + 86_400)
        .await?;
    // Samples since the last fold of the last day (usually today), for every VM at once. They
    // are all in the head: whatever the fold moved into the day's block, its aggregate holds.
    let since = dirty
        .values()
        .filter(|d| d.day == last_day)
        .map(|d| d.min_ts)
        .min();
    let mut fresh = match since {
        Some(since) => {
            store
                .head_samples_of(&keys, since, shanghai_day_start(last_day) + 86_400)
                .await?
        }
        None => HashMap::new(),
    };
    let mut out = Vec::with_capacity(vms.len());
    for vm in vms {
        let from_day = adjusted
            .get(&vm.key)
            .map_or(first_day, |&d| d.max(first_day));
        let mut days = Vec::new();
        let mut day = from_day;
        while day <= last_day {
            let (day_start, day_end) = (shanghai_day_start(day), shanghai_day_start(day) + 86_400);
            let mark = dirty.get(&(vm.key, day));
            let aggregate = stored.remove(&(vm.key, day));
            let loaded = match (aggregate, mark) {
                _ if day == first_day && from_day == first_day => Some(LoadedDay::Raw(
                    first_raw.remove(&vm.key).unwrap_or_default(),
                )),
                (Some(a), None) if a.first_ts > start && a.last_ts <= end => {
                    Some(LoadedDay::Stored(day, a.aggregate))
                }
                // Samples came after the last fold, all later than what it holds: add them.
                (Some(a), Some(m))
                    if m.min_ts > a.last_ts && a.first_ts > start && day == last_day =>
                {
                    let new: Vec<Sample> = fresh
                        .remove(&vm.key)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| s.ts >= m.min_ts)
                        .collect();
                    if new.iter().all(|s| s.ts <= end) {
                        let mut aggregate = DayAggregate::decode(day, &a.aggregate)
                            .map_err(|e| StoreError::Invalid(format!("VM {}: {e}", vm.id)))?;
                        if let Some(n) = DayAggregate::of(day, &new) {
                            aggregate.merge(&n);
                        }
                        Some(LoadedDay::Stored(day, aggregate.encode()))
                    } else {
                        Some(LoadedDay::Raw(
                            store.raw_samples(vm.key, day_start, day_end).await?,
                        ))
                    }
                }
                (None, None) => None,
                _ => Some(LoadedDay::Raw(
                    store.raw_samples(vm.key, day_start, day_end).await?,
                )),
            };
            days.extend(loaded);
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        out.push(LoadedWindow(days));
    }
    Ok(out)
}

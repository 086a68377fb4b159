//! The scheduled work as one pass (`cloudgov tick --at`, and the daemon's cron jobs): evaluate,
//! keep the working-day deadlines, detect deployment and completion, remind, escalate, and flag
//! silent agents. Every step is idempotent: running a pass twice for the same instant changes
//! nothing the second time.

pub mod actions;
pub mod evaluation;
pub mod kubernetes;
pub mod notify;
pub mod review;
pub mod views;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use crate::core::calendar::{Calendar, WorkingDays};
use crate::core::details::{AlertFacts, DeadlineFacts};
use crate::core::network::NetworkFinding;
use crate::core::obligations::{Action, action_due, due_date};
use crate::core::rules::RuleSet;
use crate::jobs::evaluation::evaluate;
use crate::jobs::notify::{DeliverySummary, Notifier, NotifyError, deliver_pending};
use crate::store::{NewDeadline, OpenAdjustment, Store, StoreError};

/// What the jobs work with; cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub rules: Arc<RuleSet>,
    pub calendar: Arc<Calendar>,
    pub notifier: Arc<Notifier>,
}

/// What one pass did, for the CLI and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TickSummary {
    pub evaluated_vms: usize,
    pub notices_opened: u64,
    pub deadlines_created: u64,
    pub due_dates_recomputed: u64,
    pub deployments_inferred: u64,
    pub deadlines_done: u64,
    pub reminders: u64,
    pub escalations: u64,
    pub silent_agents: u64,
    /// VMs newly flagged because their project is not filed in time (art. 10).
    pub not_filed: u64,
    pub network_findings_opened: u64,
    /// Days of samples rolled up, raw samples and rollup days deleted by retention.
    pub days_rolled_up: u64,
    pub samples_expired: u64,
    pub emails: DeliverySummary,
}

pub fn shanghai_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Shanghai).date_naive()
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// Every scheduled job once, as of `at`; e-mails go out at once (backoff is for the daemon).
pub async fn tick(ctx: &JobContext, at: DateTime<Utc>) -> Result<TickSummary, JobError> {
    let mut summary = TickSummary::default();
    let report = evaluate(&ctx.store, &ctx.rules, at, true).await?;
    summary.evaluated_vms = report.vms;
    summary.notices_opened = report.notices_opened;
    check_deadlines(ctx, at, &mut summary).await?;
    summary.network_findings_opened = network_check(ctx, at, true).await?.1;
    let (rolled, expired) = roll_up_and_expire(ctx, at).await?;
    summary.days_rolled_up = rolled;
    summary.samples_expired = expired;
    summary.emails = deliver_pending(ctx, true, &|| true).await?;
    tracing::info!(at = %at, ?summary, "tick done");
    Ok(summary)
}

/// Most days rolled up together: one read of their samples and one transaction instead of one
/// per day (a backfill brings hundreds), with the samples held in memory bounded (a quarter of one VM).
const ROLLUP_RUN_DAYS: usize = 92;

/// Rolls up every day whose samples changed since its last rollup (new reports, backfill,
/// replays: the samples' own transaction marked them). Returns the days written.
pub async fn roll_up(ctx: &JobContext, _at: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut written = 0;
    for run in consecutive_days(&ctx.store.dirty_days().await?) {
        let (Some(&(vm_key, first, _)), Some(&(_, last, _))) = (run.first(), run.last()) else {
            continue;
        };
        written += ctx.store.roll_up_days(vm_key, first, last).await? as u64;
        ctx.store.clear_dirty_days(run).await?;
    }
    Ok(written)
}

/// Dirty days (ordered by VM, then day) cut into runs of one VM's consecutive days, each at
/// most [`ROLLUP_RUN_DAYS`] long.
fn consecutive_days(dirty: &[(i64, NaiveDate, i64)]) -> Vec<&[(i64, NaiveDate, i64)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=dirty.len() {
        let ends = i == dirty.len()
            || dirty[i].0 != dirty[i - 1].0
            || dirty[i - 1].1.succ_opt() != Some(dirty[i].1)
            || i - start == ROLLUP_RUN_DAYS;
        if ends {
            runs.push(&dirty[start..i]);
            start = i;
        }
    }
    runs
}

/// Rolls up, keeps the samples' partitions (PostgreSQL), then applies the rules' retention: raw
/// samples older than `raw_samples_days` (once rolled up; on PostgreSQL whole months are dropped
/// as partitions) and rollups older than `rollup_days` go. Returns (days rolled up, samples deleted).
pub async fn roll_up_and_expire(
    ctx: &JobContext,
    at: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let rolled = roll_up(ctx, at).await?;
    let today = shanghai_day(at);
    let keep = ctx.rules.retention();
    let raw_before = today - chrono::TimeDelta::days(i64::from(keep.raw_samples_days));
    let rollups_before = today - chrono::TimeDelta::days(i64::from(keep.rollup_days));
    // PostgreSQL: this month's and the next months' partitions exist before their samples come.
    ctx.store.maintain_sample_partitions(at, raw_before).await?;
    let (samples, _) = ctx
        .store
        .apply_retention(raw_before, rollups_before)
        .await?;
    Ok((rolled, samples))
}

/// The art. 14 checks as of `at`: registry against sightings. With `persist`, new findings
/// open (and are queued for e-mail), findings no longer raised clear. Returns the findings and
/// how many opened now.
pub async fn network_check(
    ctx: &JobContext,
    at: DateTime<Utc>,
    persist: bool,
) -> Result<(Vec<NetworkFinding>, u64), StoreError> {
    let registry = ctx.store.registry_entries().await?;
    let sightings = ctx.store.sightings().await?;
    let findings = crate::core::network::check(
        &registry,
        &sightings,
        ctx.rules.network(),
        &ctx.calendar,
        at,
    );
    let opened = if persist {
        ctx.store
            .record_network_findings(&findings, at)
            .await?
            .len() as u64
    } else {
        0
    };
    Ok((findings, opened))
}

/// The deadline part of a pass, without evaluation (the daemon runs it on its own schedule).
pub async fn check_deadlines(
    ctx: &JobContext,
    at: DateTime<Utc>,
    summary: &mut TickSummary,
) -> Result<(), StoreError> {
    let (created, recomputed) = sync_deadlines(ctx, at).await?;
    summary.deadlines_created += created;
    summary.due_dates_recomputed += recomputed;
    summary.deployments_inferred += infer_deployments(ctx, at).await?;
    summary.deadlines_done += close_done_deadlines(ctx, at).await?;
    let (reminders, escalations) = remind_and_escalate(ctx, at).await?;
    summary.reminders += reminders;
    summary.escalations += escalations;
    summary.silent_agents += flag_silent_agents(ctx, at).await?;
    summary.not_filed += flag_unfiled_projects(ctx, at).await?;
    Ok(())
}

/// Creates the deadlines that are missing (a deployment deadline per VM, an adjustment deadline
/// per notice) and recomputes provisional due dates with the calendar as loaded now.
/// Returns (created, recomputed).
pub async fn sync_deadlines(ctx: &JobContext, at: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
    let periods = ctx.rules.deadlines();
    let new: Vec<NewDeadline> = ctx
        .store
        .deadlines_to_create()
        .await?
        .into_iter()
        .map(
            |(kind, vm_key, notice_id, start_on, done_on, done_source)| {
                let n = periods.period(kind);
                let due = due_date(&ctx.calendar, start_on, n);
                NewDeadline {
                    kind,
                    vm_key,
                    notice_id,
                    start_on,
                    working_days: n.get(),
                    due_on: due.value,
                    provisional: due.provisional,
                    done_on,
                    done_source,
                }
            },
        )
        .collect();
    let created = ctx
        .store
        .create_deadlines(&new, at, shanghai_day(at))
        .await?;
    let mut recomputed = 0;
    for (id, start, n) in ctx.store.provisional_open_deadlines().await? {
        let Ok(n) = WorkingDays::try_from(n) else {
            continue;
        };
        let due = due_date(&ctx.calendar, start, n);
        if !due.provisional {
            ctx.store.update_due(id, due.value, false).await?;
            recomputed += 1;
        }
    }
    Ok((created, recomputed))
}

/// Records deployment for VMs whose samples show use (the rules file's inference rule).
async fn infer_deployments(ctx: &JobContext, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let Some(rule) = ctx.rules.deployment_inference() else {
        return Ok(0);
    };
    let mut inferred = 0;
    for (_deadline, vm, vm_key, delivered_on) in ctx.store.undeployed_vms().await? {
        let from = Shanghai
            .from_local_datetime(&delivered_on.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(0, |t| t.timestamp());
        let busy = ctx
            .store
            .busy_sample_times(vm_key, from, at.timestamp(), rule.cpu_above.get())
            .await?;
        let mut per_day: BTreeMap<NaiveDate, u32> = BTreeMap::new();
        for ts in busy {
            if let Some(t) = DateTime::from_timestamp(ts, 0) {
                *per_day.entry(shanghai_day(t)).or_default() += 1;
            }
        }
        if let Some((&day, _)) = per_day.iter().find(|&(_, &n)| n >= rule.min_samples) {
            ctx.store.mark_deployed(&vm, day, "inferred").await?;
            tracing::info!(vm = %vm, deployed_on = %day, "deployment inferred from agent evidence");
            inferred += 1;
        }
    }
    Ok(inferred)
}

/// Marks deadlines done: deployments with a deployment record, adjustments whose allocation
/// moved the way the notice asked.
async fn close_done_deadlines(ctx: &JobContext, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut done = 0;
    for (id, deployed_on, source) in ctx.store.deployments_to_close().await? {
        done += u64::from(
            ctx.store
                .complete_deadline(id, deployed_on, &source, at)
                .await?,
        );
    }
    let today = shanghai_day(at);
    for adjustment in ctx.store.open_adjustments().await? {
        if let Some(source) = adjustment_source(&adjustment) {
            done += u64::from(
                ctx.store
                    .complete_deadline(adjustment.deadline_id, today, source, at)
                    .await?,
            );
        }
    }
    Ok(done)
}

/// Where the evidence of a completed adjustment comes from, if the allocation moved in the
/// asked direction: the inventory, or the agent's own report (allowing 5% for what the OS
/// reserves, since an agent sees slightly less memory and disk than was allocated).
pub fn adjustment_source(a: &OpenAdjustment) -> Option<&'static str> {
    let baseline: serde_json::Value = serde_json::from_str(&a.baseline_json).ok()?;
    let downsize = a.direction == "downsize";
    let moved = |before: f64, now: f64, tolerance: f64| {
        if downsize {
            now < before * (1.0 - tolerance)
        } else {
            now > before * (1.0 + tolerance)
        }
    };
    let (field, now, agent_field, agent_index) = match a.resource.as_str() {
        "cpu" => ("vcpus", a.vcpus as f64, "vcpus", 0),
        "memory" => ("memory_gib", a.memory_gib, "memory_bytes", 1),
        "disk" => ("disk_gib", a.disk_gib, "disk_bytes", 2),
        _ => return None,
    };
    if baseline[field]
        .as_f64()
        .is_some_and(|before| moved(before, now, 0.0))
    {
        return Some("inventory");
    }
    let agent_before = baseline["agent"][agent_field].as_f64()?;
    let (vcpus, memory, disk) = a.agent?;
    let agent_now = [vcpus, memory, disk][agent_index] as f64;
    let tolerance = if agent_index == 0 { 0.0 } else { 0.05 };
    moved(agent_before, agent_now, tolerance).then_some("agent")
}

/// Sends (records) each deadline's reminder and escalation once. Returns (reminders, escalations).
async fn remind_and_escalate(
    ctx: &JobContext,
    at: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let today = shanghai_day(at);
    let before = ctx.rules.deadlines().reminder_before;
    let (mut reminders, mut escalations) = (0, 0);
    for d in ctx.store.deadlines().await? {
        if d.done_on.is_some_and(|done| done <= today) {
            continue;
        }
        let facts = match action_due(&ctx.calendar, d.due_on, before, today) {
            Some(Action::Remind) => DeadlineFacts::Reminder {
                due_on: d.due_on,
                provisional: d.provisional,
                working_days_left: ctx.calendar.between(today, d.due_on).value,
            },
            Some(Action::Escalate) => DeadlineFacts::Escalation {
                due_on: d.due_on,
                provisional: d.provisional,
                working_days_late: ctx.calendar.between(d.due_on, today).value,
            },
            None => continue,
        };
        let detail = facts.english(d.kind.as_str(), &d.vm);
        let recorded = ctx
            .store
            .record_deadline_event(d.id, &facts, &detail, at, today)
            .await?;
        match facts {
            DeadlineFacts::Reminder { .. } => reminders += u64::from(recorded),
            _ => escalations += u64::from(recorded),
        }
    }
    Ok((reminders, escalations))
}

/// Raises `not_filed` on every VM of a project deployed but not filed (全口径备案) within the
/// rules' working days of its first deployment (art. 10), and clears it once the project is filed.
async fn flag_unfiled_projects(ctx: &JobContext, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let today = shanghai_day(at);
    let vms = ctx.store.vms().await?;
    let mut raised = 0;
    for (project, _, _, _, filed_on) in ctx.store.projects().await? {
        let mine: Vec<_> = vms
            .iter()
            .filter(|v| v.project.as_str() == project && v.released_on.is_none())
            .collect();
        let Some(first) = mine.iter().filter_map(|v| v.deployed_on).min() else {
            continue;
        };
        let due = ctx
            .calendar
            .add_workdays(first, ctx.rules.deadlines().filing);
        let filed = filed_on.is_some_and(|f| f <= today);
        for vm in &mine {
            if !filed && today > due.value {
                let facts = AlertFacts::NotFiled {
                    project: project.clone(),
                    first_deployed_on: first,
                    filing_due: due.value,
                    provisional: due.provisional,
                };
                raised += u64::from(ctx.store.raise_alert(vm.key, &facts, at, today).await?);
            } else if filed {
                ctx.store.clear_alert(vm.key, "not_filed", at).await?;
            }
        }
    }
    Ok(raised)
}

/// Raises `silent_agent` for deployed VMs not heard from for the rules' number of working days
/// (a system that may no longer be used, art. 13), and clears it when the agent speaks again.
async fn flag_silent_agents(ctx: &JobContext, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let today = shanghai_day(at);
    let limit = ctx.rules.deadlines().silent_agent.get();
    let mut raised = 0;
    for (vm_key, deployed_on, last) in ctx.store.deployed_vms_last_heard().await? {
        let last_day = last
            .and_then(|ts| DateTime::from_timestamp(ts, 0))
            .map(shanghai_day)
            .unwrap_or(deployed_on);
        let silent = ctx.calendar.between(last_day, today).value;
        if silent >= limit {
            let facts = AlertFacts::SilentAgent {
                last_report_on: last.is_some().then_some(last_day),
                deployed_on,
                working_days: silent,
            };
            raised += u64::from(ctx.store.raise_alert(vm_key, &facts, at, today).await?);
        } else {
            ctx.store.clear_alert(vm_key, "silent_agent", at).await?;
        }
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_days_roll_up_in_runs_of_one_vms_consecutive_days() {
        let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2025, m, day).expect("date");
        let mut dirty = vec![(1, d(1, 30), 5), (1, d(1, 31), 6), (1, d(2, 1), 7)];
        dirty.push((1, d(2, 3), 8)); // a gap
        dirty.push((2, d(2, 4), 9)); // another VM
        let runs = consecutive_days(&dirty);
        let lengths: Vec<usize> = runs.iter().map(|r| r.len()).collect();
        assert_eq!(lengths, [3, 1, 1]);
        assert_eq!(runs[0].last().map(|r| r.1), Some(d(2, 1)));
        // A long run is cut, so one read never holds more than a quarter of samples.
        let year: Vec<_> = (0..100)
            .map(|i| (3, d(1, 1) + chrono::TimeDelta::days(i), 1))
            .collect();
        let lengths: Vec<usize> = consecutive_days(&year).iter().map(|r| r.len()).collect();
        assert_eq!(lengths, [92, 8]);
        assert!(consecutive_days(&[]).is_empty());
    }
}

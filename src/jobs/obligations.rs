//! Obligations as a job: start the clocks that started, recompute provisional due dates,
//! infer deployment, close what the evidence shows done, remind and escalate, for every kind
//! of [`ObligationKind`] through exhaustive matches.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;

use super::{JobContext, TickSummary};
use crate::core::calendar::{WorkingDays, shanghai_day};
use crate::core::details::DeadlineFacts;
use crate::core::obligations::{Action, Evidence, ObligationKind, action_due, due_date};
use crate::store::{NewDeadline, OpenAdjustment, StoreError};

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
    summary.silent_agents += super::alerts::flag_silent_agents(ctx, at).await?;
    Ok(())
}

/// Stores the obligations whose clock started (a deployment per delivered VM, an adjustment
/// per received notice, a filing per deployed project), each due its kind's period after the
/// start, and recomputes provisional due dates with the calendar as loaded now.
/// Returns (created, recomputed).
pub async fn sync_deadlines(ctx: &JobContext, at: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
    let periods = ctx.rules.deadlines();
    let new: Vec<NewDeadline> = ctx
        .store
        .obligations_to_start()
        .await?
        .into_iter()
        .map(|start| {
            let n = periods.period(start.kind);
            let due = due_date(&ctx.calendar, start.start_on, n);
            NewDeadline {
                start,
                working_days: n.get(),
                due_on: due.value,
                provisional: due.provisional,
            }
        })
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

/// Marks obligations done from their evidence, kind by kind: a deployment record, an
/// allocation that moved the way the notice asked, a filing date.
async fn close_done_deadlines(ctx: &JobContext, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut done = 0;
    let today = shanghai_day(at);
    for kind in ObligationKind::ALL {
        match kind.evidence() {
            Evidence::Deployed => {
                for (id, deployed_on, source) in ctx.store.deployments_to_close().await? {
                    done += u64::from(
                        ctx.store
                            .complete_deadline(id, deployed_on, &source, at)
                            .await?,
                    );
                }
            }
            Evidence::AllocationMoved => {
                for adjustment in ctx.store.open_adjustments().await? {
                    if let Some(source) = adjustment_source(&adjustment) {
                        done += u64::from(
                            ctx.store
                                .complete_deadline(adjustment.deadline_id, today, source, at)
                                .await?,
                        );
                    }
                }
            }
            Evidence::Filed => {
                for (id, filed_on) in ctx.store.filings_to_close().await? {
                    done += u64::from(
                        ctx.store
                            .complete_deadline(id, filed_on, "inventory", at)
                            .await?,
                    );
                }
            }
            // Recomputed from the sightings by every network check (`jobs::network`).
            Evidence::SeenOrChanged => {}
            Evidence::Answered => {
                for (id, on) in ctx.store.requests_answered_to_close().await? {
                    done += u64::from(ctx.store.complete_deadline(id, on, "answered", at).await?);
                }
            }
            Evidence::ReleaseRequested => {
                for (id, on, source) in ctx.store.releases_to_close().await? {
                    done += u64::from(ctx.store.complete_deadline(id, on, source, at).await?);
                }
            }
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
    let contested = ctx.store.undecided_contests().await?;
    for d in ctx.store.deadlines().await? {
        if d.done_on.is_some_and(|done| done <= today) || !d.kind.reminded_and_escalated() {
            continue;
        }
        if d.kind.held_while_contested() && d.notice_id.is_some_and(|n| contested.contains(&n)) {
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
        let detail = facts.english(d.kind.as_str(), d.subject());
        let recorded = ctx
            .store
            .record_deadline_event(
                d.id,
                &facts,
                &detail,
                at,
                today,
                d.kind.party() == crate::core::obligations::Party::Center,
            )
            .await?;
        match facts {
            DeadlineFacts::Reminder { .. } => reminders += u64::from(recorded),
            _ => escalations += u64::from(recorded),
        }
    }
    Ok((reminders, escalations))
}

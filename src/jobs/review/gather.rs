//! Gathering a project's year from the store: usage aggregates, deadlines, notices, network findings.
//! (The IO half of the review; `score` is the pure half.)

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::core::calendar::shanghai_day;
use crate::core::obligations::{ObligationKind, ObligationState, state};
use crate::core::review::{ProjectYear, RequestedVsUsed, Usage, VmYear};
use crate::core::rules::Percentile;
use crate::core::usage::DayView;
use crate::core::usage::histogram::Counts;
use crate::jobs::JobContext;
use crate::store::{StoreError, VmRow};

/// The days of `year` up to `as_of` (the whole year once it is over).
pub fn year_span(year: i32, as_of: DateTime<Utc>) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let last = NaiveDate::from_ymd_opt(year, 12, 31)?.min(shanghai_day(as_of));
    (last >= first).then_some((first, last))
}

async fn vm_year(
    ctx: &JobContext,
    vm: &VmRow,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<VmYear, StoreError> {
    let start = vm.delivered_on.max(first);
    let end = vm
        .released_on
        .and_then(|r| r.pred_opt())
        .map_or(last, |r| r.min(last));
    let days_in_service = if end >= start {
        (end - start).num_days() as u32 + 1
    } else {
        0
    };
    // Read in place: the histograms' segments go straight into the year's counts, and a day's
    // p95 decodes only the bucket it falls in.
    let stored = ctx.store.stored_days(&[vm.key], first, last).await?;
    let malformed = |day: NaiveDate, e: crate::core::usage::histogram::Malformed| {
        StoreError::Invalid(format!("stored usage of VM {} on {day}: {e}", vm.id))
    };
    let rules = ctx.rules.for_vm(&vm.department, &vm.project);
    let unused_rule = ctx.rules.unused_for(&vm.department, &vm.project);
    let mut unused_days = 0u32;
    let (mut cpu_h, mut mem_h, mut disk_h) =
        (Counts::default(), Counts::default(), Counts::default());
    let (mut n, mut cpu_sum, mut mem_sum, mut disk_n, mut disk_sum) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut downsize = [0u32; 3];
    let mut expand = [0u32; 3];
    let mut daily = Vec::with_capacity(stored.len());
    let mut scratch = Vec::new();
    let pct = |h: u16| f64::from(h) / 100.0;
    for s in &stored {
        let d = DayView::parse(s.day, &s.aggregate).map_err(|e| malformed(s.day, e))?;
        let cpu = d.cpu.histogram().map_err(|e| malformed(s.day, e))?;
        cpu_h
            .add_view(&cpu, &mut scratch)
            .map_err(|e| malformed(s.day, e))?;
        for (counts, r) in [(&mut mem_h, &d.mem), (&mut disk_h, &d.disk)] {
            let h = r.histogram().map_err(|e| malformed(s.day, e))?;
            counts
                .add_view(&h, &mut scratch)
                .map_err(|e| malformed(s.day, e))?;
        }
        n += u64::from(d.samples);
        cpu_sum += d.cpu.sum;
        mem_sum += d.mem.sum;
        disk_n += u64::from(d.disk.count);
        disk_sum += d.disk.sum;
        // The day's own statistics against the article's thresholds, as the evaluation reads them.
        let cpu_p95 = pct(cpu
            .percentile(Percentile::P95)
            .map_err(|e| malformed(s.day, e))?
            .unwrap_or(0));
        let mem_max = pct(d.mem.max);
        if crate::core::usage::idle::day_shows_no_use(&unused_rule, &d) {
            unused_days += 1;
        }
        let disk_last = (d.disk.count > 0).then(|| pct(d.disk.latest));
        let stats = [Some(cpu_p95), Some(mem_max), disk_last];
        for (i, (stat, rule)) in stats
            .iter()
            .zip([rules.cpu, rules.memory, rules.disk])
            .enumerate()
        {
            let Some(v) = stat else { continue };
            if rule.downsize.matches(*v) {
                downsize[i] += 1;
            } else if rule.expand.matches(*v) {
                expand[i] += 1;
            }
        }
        daily.push((
            d.day.to_string(),
            cpu_p95,
            mem_max,
            disk_last.unwrap_or(0.0),
        ));
    }
    let usage = |sum: u64, count: u64, h: &Counts| Usage {
        avg: if count > 0 {
            sum as f64 / count as f64 / 100.0
        } else {
            0.0
        },
        p95: h.percentile(Percentile::P95).map_or(0.0, pct),
    };
    Ok(VmYear {
        vm: vm.id.to_string(),
        vcpus: vm.vcpus as f64,
        memory_gib: vm.memory_gib,
        disk_gib: vm.disk_gib,
        cpu: usage(cpu_sum, n, &cpu_h),
        memory: usage(mem_sum, n, &mem_h),
        disk: usage(disk_sum, disk_n, &disk_h),
        days_in_service,
        days_with_data: stored.len() as u32,
        downsize_days: downsize,
        expand_days: expand,
        daily,
        unused_days,
    })
}

/// Every project's year as of `as_of`, with the usage aggregates folded up to date first.
pub async fn gather_year(
    ctx: &JobContext,
    year: i32,
    as_of: DateTime<Utc>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<ProjectYear>, StoreError> {
    let Some((first, last)) = year_span(year, as_of) else {
        return Ok(Vec::new());
    };
    crate::jobs::fold(ctx, as_of).await?;
    let vms = ctx.store.vms().await?;
    let deadlines = ctx.store.deadlines().await?;
    let notices = ctx.store.notices().await?;
    let findings = ctx.store.network_findings(None).await?;
    let sightings = ctx.store.sightings().await?;
    let vm_of_ip: HashMap<String, String> = sightings
        .iter()
        .filter(|s| s.kind == crate::core::network::SightingKind::Interface)
        .map(|s| (s.ip.to_string(), s.source.clone()))
        .collect();
    let projects = ctx.store.projects().await?;
    let requests = ctx.store.requests_in(None).await?;
    let total = projects.len();
    let year_prefix = format!("{year}-");
    let mut out = Vec::with_capacity(projects.len());
    for (i, project) in projects.into_iter().enumerate() {
        let crate::store::ProjectListing {
            id,
            name,
            department,
            department_name,
            filed_on,
        } = project;
        let project_vms: Vec<&VmRow> = vms
            .iter()
            .filter(|v| v.project.as_str() == id && v.delivered_on <= last)
            .collect();
        let mut years = Vec::with_capacity(project_vms.len());
        for vm in &project_vms {
            years.push(vm_year(ctx, vm, first, last).await?);
        }
        // A project with nothing in service this year has nothing to review (rather than a
        // zero score and a `cancel`).
        if years.iter().all(|v| v.days_in_service == 0) {
            progress(i + 1, total);
            continue;
        }
        let vm_ids: std::collections::HashSet<&str> =
            project_vms.iter().map(|v| v.id.as_str()).collect();
        let mine = |vm: &str| vm_ids.contains(vm);
        let (mut on_time, mut late, mut missing) = (0, 0, 0);
        let (mut n_on_time, mut n_late, mut n_overdue) = (0, 0, 0);
        for d in deadlines.iter().filter(|d| d.due_on.year() == year) {
            let s = state(d.due_on, d.done_on, last);
            // Every kind is named: a new kind must say here what it counts for.
            match d.kind {
                ObligationKind::Deployment if d.vm.as_deref().is_some_and(mine) => match s {
                    ObligationState::DoneOnTime => on_time += 1,
                    ObligationState::DoneLate => late += 1,
                    ObligationState::Overdue => missing += 1,
                    ObligationState::Open => {}
                },
                ObligationKind::Adjustment if d.vm.as_deref().is_some_and(mine) => match s {
                    ObligationState::DoneOnTime => n_on_time += 1,
                    ObligationState::DoneLate => n_late += 1,
                    ObligationState::Overdue => n_overdue += 1,
                    ObligationState::Open => {}
                },
                ObligationKind::Deployment | ObligationKind::Adjustment => {}
                // The filing verdict rests on the project's `filed_on` against its due date
                // (`filing_due` below), the same facts the filing obligation holds.
                ObligationKind::Filing => {}
                // Registration staleness counts as a network finding (`network` below).
                ObligationKind::Registration => {}
                // Unused systems count as unused VM-days (`unused_days` below).
                ObligationKind::Release => {}
                // The center's duty, not the project's: requests are reported as requested
                // against used (`requested` below).
                ObligationKind::RequestAnswer => {}
            }
        }
        // Adjustment notices only: release advice is counted as unused VM-days.
        let received = notices
            .iter()
            .filter(|n| n.kind != crate::core::domain::Direction::Release)
            .filter(|n| mine(&n.vm) && n.issued_on.starts_with(&year_prefix))
            .count() as u32;
        // Requests of the project delivered this year: what was asked and approved against
        // what the delivered VMs used (their year's p95 times their allocation).
        let delivered: Vec<&crate::store::RequestRow> = requests
            .iter()
            .filter(|r| r.project == id)
            .filter(|r| {
                r.delivered_on
                    .as_deref()
                    .is_some_and(|d| d.starts_with(&year_prefix))
            })
            .collect();
        let requested = (!delivered.is_empty()).then(|| {
            let mut rv = RequestedVsUsed {
                requests: delivered.len() as u32,
                ..Default::default()
            };
            for v in delivered.iter().flat_map(|r| &r.vms) {
                rv.vms += 1;
                rv.asked = rv.asked.plus(v.vcpus, v.memory_gib, v.disk_gib);
                if let Some(a) = v.approved {
                    rv.approved = rv.approved.plus(a.vcpus, a.memory_gib, a.disk_gib);
                }
                if let Some(y) = years.iter().find(|y| y.vm == v.id) {
                    rv.used = rv.used.plus(
                        y.cpu.p95 / 100.0 * y.vcpus,
                        y.memory.p95 / 100.0 * y.memory_gib,
                        y.disk.p95 / 100.0 * y.disk_gib,
                    );
                }
            }
            rv
        });
        let network = findings
            .iter()
            .filter(|f| f.raised_at.starts_with(&year_prefix))
            .filter(|f| vm_of_ip.get(&f.ip).is_some_and(|vm| mine(vm)))
            .count() as u32;
        let first_deployed = project_vms.iter().filter_map(|v| v.deployed_on).min();
        let filing_due = first_deployed.map(|d| {
            ctx.calendar
                .add_workdays(d, ctx.rules.deadlines().period(ObligationKind::Filing))
        });
        out.push(ProjectYear {
            project: id,
            name,
            department,
            department_name,
            filed_on: filed_on.map(|d| d.to_string()),
            first_deployed_on: first_deployed.map(|d| d.to_string()),
            filing_due: filing_due.map(|d| d.value.to_string()),
            filing_due_provisional: filing_due.is_some_and(|d| d.provisional),
            vms: years,
            notices_received: received,
            notices_done_on_time: n_on_time,
            notices_done_late: n_late,
            notices_overdue: n_overdue,
            deployments_on_time: on_time,
            deployments_late: late,
            deployments_missing: missing,
            network_findings: network,
            requested,
        });
        progress(i + 1, total);
    }
    Ok(out)
}

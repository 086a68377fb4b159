//! Read models of the web dashboard: counts, waste, deadlines, lists and usage series, every one
//! filtered by the viewer's department in the query itself.
//!
//! Every function takes `scope: Option<&str>`, the viewer's department (`None` for center
//! staff), and adds `($1 IS NULL OR department = $1)` to its WHERE clause, so rows of other
//! departments never leave the database. Lists are bounded (`LIMIT`), and the fleet and
//! department pages are built from grouped queries, never from one query per VM.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::Row;

use super::usage::malformed;
use super::{Result, Store, on_pool};
use crate::core::obligations::{Keeping, ObligationKind};
use crate::core::samples::{shanghai_day_of, shanghai_day_start};
use crate::core::usage::{DayView, HourSummary};

/// How many VMs of one (resource, verdict) pair the latest findings hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictCount {
    pub resource: String,
    pub verdict: String,
    pub vms: i64,
}

/// The capacity allocated to VMs with a downsize finding for one resource, and how much of it
/// would be returned by bringing each to the target utilisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WasteRow {
    pub resource: String,
    pub vms: i64,
    /// vCPUs, or GiB of memory or disk.
    pub allocated: f64,
    /// `sum(allocated * (1 - value / target))`, before rounding to whole sizes.
    pub reclaimable: f64,
}

/// Deadlines not done, and of those the ones past their due date, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeadlineCounts {
    /// One line per stored kind of obligation, in [`ObligationKind::ALL`]'s order.
    pub kinds: Vec<KindCount>,
}

/// Obligations of one kind not done yet, and how many of those are overdue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindCount {
    pub kind: String,
    pub open: i64,
    pub overdue: i64,
}

/// One department's line on the fleet overview.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DepartmentSummary {
    pub id: String,
    pub name: String,
    pub projects: i64,
    pub vms: i64,
    pub downsize_vms: i64,
    pub expand_vms: i64,
    pub open_notices: i64,
    pub overdue_deadlines: i64,
}

/// One project's line on a department page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    pub department: String,
    pub department_name: String,
    pub filed_on: Option<String>,
    pub vms: i64,
    pub downsize_vms: i64,
    pub expand_vms: i64,
    pub open_notices: i64,
}

/// Which VMs a list shows: all visible ones, one department's or one project's.
#[derive(Debug, Clone, Copy, Default)]
pub struct VmFilter<'a> {
    pub department: Option<&'a str>,
    pub project: Option<&'a str>,
}

/// One VM in a list, with its latest verdict per resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmListRow {
    pub id: String,
    pub project: String,
    pub department: String,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub disk: Option<String>,
    pub open_notices: i64,
}

/// A downsize finding worth acting on, largest allocation first (the rightsizing list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub vm: String,
    pub project: String,
    pub department: String,
    pub resource: String,
    pub value: f64,
    pub threshold: Option<f64>,
    pub statistic: String,
    /// The resource's current size (vCPUs or GiB).
    pub allocated: f64,
}

/// A VM with everything its page header shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmDetail {
    pub key: i64,
    pub id: String,
    pub project: String,
    pub project_name: String,
    pub department: String,
    pub department_name: String,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    pub delivered_on: String,
    pub deployed_on: Option<String>,
    pub deployed_source: Option<String>,
    pub released_on: Option<String>,
    pub release_requested_on: Option<String>,
    pub release_reason: Option<String>,
    pub agent_hostname: Option<String>,
    pub agent_version: Option<String>,
    pub agent_last_seen_at: Option<i64>,
}

/// One allocation a VM had.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocationRow {
    pub recorded_at: i64,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    pub source: String,
}

/// Usage in one time bucket (an hour-range of raw samples, or one rolled-up day).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageBucket {
    /// Start of the bucket, Unix seconds.
    pub ts: i64,
    pub cpu_avg: f64,
    pub cpu_max: f64,
    pub mem_avg: f64,
    pub mem_max: f64,
    pub disk_avg: Option<f64>,
    pub disk_max: Option<f64>,
}

/// A notice in a list or on its own page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeView {
    pub id: i64,
    pub vm: String,
    pub project: String,
    pub department: String,
    pub resource: String,
    pub direction: String,
    pub open: bool,
    pub issued_at: i64,
    pub issued_on: String,
    pub value: f64,
    pub threshold: f64,
    pub comparison: String,
    pub statistic: String,
    pub allocation_json: String,
    pub approved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub closed_reason: Option<String>,
    pub deadline_id: Option<i64>,
    pub due_on: Option<String>,
    pub provisional: bool,
    pub done_on: Option<String>,
    pub done_source: Option<String>,
    /// The allocation at issue and what the notice recommends (see `rules::recommend`).
    pub allocated: Option<f64>,
    pub recommended: Option<f64>,
    pub projected: Option<f64>,
    /// `below_smallest_size`, `no_size_in_band` or `no_allocation` where nothing is recommended.
    pub recommendation_note: Option<String>,
    /// Release advice: the usage evidence it was issued on (JSON).
    pub evidence: Option<String>,
}

/// A VM whose latest `usage` finding is `unused`, with its evidence and allocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusedSystem {
    pub vm: String,
    pub project: String,
    pub project_name: String,
    pub department: String,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    /// `UsageEvidence` as JSON.
    pub evidence: Option<serde_json::Value>,
    /// The open release advice, if any.
    pub notice_id: Option<i64>,
    /// Every VM of the project in service is unused: the project is flagged as a whole.
    pub project_unused: bool,
}

/// An e-mail job as a timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailEntry {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub recipients: Option<String>,
    pub last_error: Option<String>,
}

/// One event of a deadline's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    pub event: String,
    pub at: i64,
    pub on: String,
    /// The English sentence.
    pub detail: String,
    /// [`crate::core::details::DeadlineFacts`] as JSON; `None` for rows older than the facts.
    pub facts: Option<String>,
}

/// A VM's deadline (deployment or adjustment) as its page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmDeadline {
    pub id: i64,
    pub kind: String,
    pub notice_id: Option<i64>,
    pub start_on: String,
    pub due_on: String,
    pub provisional: bool,
    pub done_on: Option<String>,
    pub done_source: Option<String>,
}

/// A VM-level alert as a page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub kind: String,
    pub raised_on: String,
    /// The English sentence.
    pub detail: String,
    /// [`crate::core::details::AlertFacts`] as JSON; `None` for rows older than the facts.
    pub facts: Option<String>,
    pub open: bool,
}

/// A network finding visible to the viewer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkFindingView {
    pub id: i64,
    pub kind: String,
    pub ip: String,
    pub mac: String,
    pub department: Option<String>,
    /// The English sentence.
    pub evidence: String,
    /// [`crate::core::network::Evidence`] as JSON; `None` for rows older than the facts.
    pub facts: Option<String>,
    pub raised_at: i64,
    pub last_raised_at: i64,
    pub open: bool,
}

/// A stored annual review of one project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewListRow {
    pub year: i64,
    pub project: String,
    pub project_name: String,
    pub department: String,
    pub score: f64,
    pub grade: String,
    pub verdict: String,
}

/// (id, name, department, department name, filed_on, VMs)
type ProjectTuple = (String, String, String, String, Option<String>, i64);

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The SELECT list and joins of [`NoticeView`], shared by the list and the one-notice query.
const NOTICE_COLUMNS: &str = "SELECT n.id, v.id, v.project_id, p.department_id, n.resource, n.direction, \
     n.closed_at IS NULL, n.issued_at, n.issued_on, n.value, n.threshold, n.comparison, n.statistic, \
     n.allocation, n.approved_at, n.closed_at, n.closed_reason, d.id, d.due_on, d.provisional, d.done_on, \
     d.done_source, n.allocated, n.recommended, n.projected, n.recommendation_note, n.evidence \
     FROM notices n JOIN vms v ON v.key = n.vm_key JOIN projects p ON p.id = v.project_id \
     LEFT JOIN deadlines d ON d.notice_id = n.id ";

macro_rules! notice_view {
    ($r:expr) => {
        NoticeView {
            id: $r.try_get(0)?,
            vm: $r.try_get(1)?,
            project: $r.try_get(2)?,
            department: $r.try_get(3)?,
            resource: $r.try_get(4)?,
            direction: $r.try_get(5)?,
            open: $r.try_get(6)?,
            issued_at: $r.try_get(7)?,
            issued_on: $r.try_get(8)?,
            value: $r.try_get(9)?,
            threshold: $r.try_get(10)?,
            comparison: $r.try_get(11)?,
            statistic: $r.try_get(12)?,
            allocation_json: $r.try_get(13)?,
            approved_at: $r.try_get(14)?,
            closed_at: $r.try_get(15)?,
            closed_reason: $r.try_get(16)?,
            deadline_id: $r.try_get(17)?,
            due_on: $r.try_get(18)?,
            provisional: $r.try_get::<Option<bool>, _>(19)?.unwrap_or(false),
            done_on: $r.try_get(20)?,
            done_source: $r.try_get(21)?,
            allocated: $r.try_get(22)?,
            recommended: $r.try_get(23)?,
            projected: $r.try_get(24)?,
            recommendation_note: $r.try_get(25)?,
            evidence: $r.try_get(26)?,
        }
    };
}

impl Store {
    /// VMs per (resource, verdict) of the latest findings, for the viewer's scope.
    pub async fn verdict_counts(
        &self,
        scope: Option<&str>,
        department: Option<&str>,
    ) -> Result<Vec<VerdictCount>> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT f.resource, f.verdict, COUNT(*) FROM findings f \
             WHERE ($1 IS NULL AND $2 IS NULL) OR f.vm_key IN (SELECT v.key FROM vms v \
             JOIN projects p ON p.id = v.project_id \
             WHERE ($1 IS NULL OR p.department_id = $1) AND ($2 IS NULL OR p.department_id = $2)) \
             GROUP BY f.resource, f.verdict")
            .bind(scope).bind(department).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(resource, verdict, vms)| VerdictCount {
                resource,
                verdict,
                vms,
            })
            .collect())
    }

    /// Capacity allocated to VMs with a downsize finding, per resource, and the estimate of
    /// what bringing them to `target` percent would return.
    pub async fn waste(
        &self,
        scope: Option<&str>,
        department: Option<&str>,
        target: f64,
    ) -> Result<Vec<WasteRow>> {
        let rows: Vec<(String, i64, f64, f64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT resource, COUNT(*), COALESCE(SUM(alloc), 0.0), COALESCE(SUM(alloc * value), 0.0) FROM ( \
             SELECT f.resource AS resource, COALESCE(f.value, 0.0) AS value, \
             CAST(CASE f.resource WHEN 'cpu' THEN v.vcpus WHEN 'memory' THEN v.memory_gib ELSE v.disk_gib END \
             AS DOUBLE PRECISION) AS alloc \
             FROM findings f JOIN vms v ON v.key = f.vm_key JOIN projects p ON p.id = v.project_id \
             WHERE f.verdict = 'downsize' AND ($1 IS NULL OR p.department_id = $1) \
             AND ($2 IS NULL OR p.department_id = $2)) w GROUP BY resource")
            .bind(scope).bind(department).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(resource, vms, allocated, used)| WasteRow {
                resource,
                vms,
                allocated,
                reclaimable: (allocated - used / target).max(0.0),
            })
            .collect())
    }

    /// Deadlines not done and overdue (due before `today`), by kind.
    pub async fn deadline_counts(
        &self,
        scope: Option<&str>,
        department: Option<&str>,
        today: NaiveDate,
    ) -> Result<DeadlineCounts> {
        let rows: Vec<(String, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT d.kind, COUNT(*), SUM(CASE WHEN d.due_on < $3 THEN 1 ELSE 0 END) FROM deadlines d \
             WHERE d.done_on IS NULL AND ($1 IS NULL OR d.department_id = $1) \
             AND ($2 IS NULL OR d.department_id = $2) GROUP BY d.kind")
            .bind(scope).bind(department).bind(day(today)).fetch_all(p).await)?;
        // Every stored kind has its line, zero where there is nothing open.
        let kinds = ObligationKind::ALL
            .into_iter()
            .filter(|k| k.keeping() == Keeping::Stored)
            .map(|kind| {
                let (open, overdue) = rows
                    .iter()
                    .find(|(k, ..)| k == kind.as_str())
                    .map_or((0, 0), |&(_, open, overdue)| (open, overdue));
                KindCount {
                    kind: kind.as_str().to_owned(),
                    open,
                    overdue,
                }
            })
            .collect();
        Ok(DeadlineCounts { kinds })
    }

    /// One line per visible department (or the one `department`), in three grouped queries.
    pub async fn department_summaries(
        &self,
        scope: Option<&str>,
        department: Option<&str>,
        today: NaiveDate,
    ) -> Result<Vec<DepartmentSummary>> {
        let (base, flagged, notices, overdue) = on_pool!(self, p => {
            let base: Vec<(String, String, i64, i64)> = sqlx::query_as(
                // Per department (a few dozen), counted through the department and project indexes.
                "SELECT d.id, d.name, \
                 (SELECT COUNT(*) FROM projects pr WHERE pr.department_id = d.id), \
                 (SELECT COUNT(*) FROM vms v JOIN projects pr ON pr.id = v.project_id \
                  WHERE pr.department_id = d.id) \
                 FROM departments d WHERE ($1 IS NULL OR d.id = $1) AND ($2 IS NULL OR d.id = $2) \
                 ORDER BY d.id")
                .bind(scope).bind(department).fetch_all(p).await?;
            // Only flagged findings are read (the verdict index), not every VM's three.
            let flagged: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT pr.department_id, f.verdict, COUNT(DISTINCT f.vm_key) FROM findings f \
                 JOIN vms v ON v.key = f.vm_key JOIN projects pr ON pr.id = v.project_id \
                 WHERE f.verdict IN ('downsize', 'expand') \
                 AND ($1 IS NULL OR pr.department_id = $1) AND ($2 IS NULL OR pr.department_id = $2) \
                 GROUP BY pr.department_id, f.verdict")
                .bind(scope).bind(department).fetch_all(p).await?;
            let notices: Vec<(String, i64)> = sqlx::query_as(
                "SELECT pr.department_id, COUNT(*) FROM notices n JOIN vms v ON v.key = n.vm_key \
                 JOIN projects pr ON pr.id = v.project_id WHERE n.closed_at IS NULL \
                 AND ($1 IS NULL OR pr.department_id = $1) AND ($2 IS NULL OR pr.department_id = $2) \
                 GROUP BY pr.department_id")
                .bind(scope).bind(department).fetch_all(p).await?;
            let overdue: Vec<(String, i64)> = sqlx::query_as(
                // The department's own duties: the center's answer to its request (the one
                // `Party::Center` kind) is not the department's lateness.
                "SELECT d.department_id, COUNT(*) FROM deadlines d WHERE d.done_on IS NULL AND d.due_on < $3 \
                 AND d.kind <> 'request_answer' \
                 AND ($1 IS NULL OR d.department_id = $1) AND ($2 IS NULL OR d.department_id = $2) \
                 GROUP BY d.department_id")
                .bind(scope).bind(department).bind(day(today)).fetch_all(p).await?;
            (base, flagged, notices, overdue)
        });
        let flagged_count = |id: &str, verdict: &str| {
            flagged
                .iter()
                .find(|(d, v, _)| d == id && v == verdict)
                .map_or(0, |(.., n)| *n)
        };
        let notices: std::collections::HashMap<_, _> = notices.into_iter().collect();
        let overdue: std::collections::HashMap<_, _> = overdue.into_iter().collect();
        Ok(base
            .into_iter()
            .map(|(id, name, projects, vms)| DepartmentSummary {
                open_notices: notices.get(&id).copied().unwrap_or(0),
                overdue_deadlines: overdue.get(&id).copied().unwrap_or(0),
                downsize_vms: flagged_count(&id, "downsize"),
                expand_vms: flagged_count(&id, "expand"),
                id,
                name,
                projects,
                vms,
            })
            .collect())
    }

    /// One line per visible project of `department`, or the one `project`.
    pub async fn project_summaries(
        &self,
        scope: Option<&str>,
        filter: VmFilter<'_>,
    ) -> Result<Vec<ProjectSummary>> {
        let (base, flagged, notices) = on_pool!(self, p => {
            let base: Vec<ProjectTuple> = sqlx::query_as(
                "SELECT pr.id, pr.name, pr.department_id, d.name, pr.filed_on, COUNT(v.key) \
                 FROM projects pr JOIN departments d ON d.id = pr.department_id \
                 LEFT JOIN vms v ON v.project_id = pr.id \
                 WHERE ($1 IS NULL OR pr.department_id = $1) AND ($2 IS NULL OR pr.department_id = $2) \
                 AND ($3 IS NULL OR pr.id = $3) \
                 GROUP BY pr.id, pr.name, pr.department_id, d.name, pr.filed_on ORDER BY pr.id")
                .bind(scope).bind(filter.department).bind(filter.project).fetch_all(p).await?;
            let flagged: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT v.project_id, f.verdict, COUNT(DISTINCT f.vm_key) FROM findings f \
                 JOIN vms v ON v.key = f.vm_key JOIN projects pr ON pr.id = v.project_id \
                 WHERE f.verdict IN ('downsize', 'expand') \
                 AND ($1 IS NULL OR pr.department_id = $1) AND ($2 IS NULL OR pr.department_id = $2) \
                 AND ($3 IS NULL OR pr.id = $3) GROUP BY v.project_id, f.verdict")
                .bind(scope).bind(filter.department).bind(filter.project).fetch_all(p).await?;
            let notices: Vec<(String, i64)> = sqlx::query_as(
                "SELECT v.project_id, COUNT(*) FROM notices n JOIN vms v ON v.key = n.vm_key \
                 JOIN projects pr ON pr.id = v.project_id WHERE n.closed_at IS NULL \
                 AND ($1 IS NULL OR pr.department_id = $1) AND ($2 IS NULL OR pr.department_id = $2) \
                 AND ($3 IS NULL OR pr.id = $3) GROUP BY v.project_id")
                .bind(scope).bind(filter.department).bind(filter.project).fetch_all(p).await?;
            (base, flagged, notices)
        });
        let flagged_count = |id: &str, verdict: &str| {
            flagged
                .iter()
                .find(|(p, v, _)| p == id && v == verdict)
                .map_or(0, |(.., n)| *n)
        };
        let notices: std::collections::HashMap<_, _> = notices.into_iter().collect();
        Ok(base
            .into_iter()
            .map(
                |(id, name, department, department_name, filed_on, vms)| ProjectSummary {
                    open_notices: notices.get(&id).copied().unwrap_or(0),
                    downsize_vms: flagged_count(&id, "downsize"),
                    expand_vms: flagged_count(&id, "expand"),
                    id,
                    name,
                    department,
                    department_name,
                    filed_on,
                    vms,
                },
            )
            .collect())
    }

    /// How many visible VMs match `filter` (for paging).
    pub async fn vm_count(&self, scope: Option<&str>, filter: VmFilter<'_>) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*) FROM vms v JOIN projects p ON p.id = v.project_id \
             WHERE ($1 IS NULL OR p.department_id = $1) AND ($2 IS NULL OR p.department_id = $2) \
             AND ($3 IS NULL OR v.project_id = $3)")
            .bind(scope).bind(filter.department).bind(filter.project).fetch_one(p).await)?;
        Ok(n)
    }

    /// A page of visible VMs matching `filter`, by id, with their verdicts and open notices.
    pub async fn vm_list(
        &self,
        scope: Option<&str>,
        filter: VmFilter<'_>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<VmListRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.id, v.project_id, p.department_id, v.vcpus, v.memory_gib, v.disk_gib, \
                 (SELECT f.verdict FROM findings f WHERE f.vm_key = v.key AND f.resource = 'cpu'), \
                 (SELECT f.verdict FROM findings f WHERE f.vm_key = v.key AND f.resource = 'memory'), \
                 (SELECT f.verdict FROM findings f WHERE f.vm_key = v.key AND f.resource = 'disk'), \
                 (SELECT COUNT(*) FROM notices n WHERE n.vm_key = v.key AND n.closed_at IS NULL) \
                 FROM vms v JOIN projects p ON p.id = v.project_id \
                 WHERE ($1 IS NULL OR p.department_id = $1) AND ($2 IS NULL OR p.department_id = $2) \
                 AND ($3 IS NULL OR v.project_id = $3) ORDER BY v.id LIMIT $4 OFFSET $5")
                .bind(scope).bind(filter.department).bind(filter.project).bind(limit).bind(offset)
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(VmListRow {
                    id: r.try_get(0)?,
                    project: r.try_get(1)?,
                    department: r.try_get(2)?,
                    vcpus: r.try_get(3)?,
                    memory_gib: r.try_get(4)?,
                    disk_gib: r.try_get(5)?,
                    cpu: r.try_get(6)?,
                    memory: r.try_get(7)?,
                    disk: r.try_get(8)?,
                    open_notices: r.try_get(9)?,
                }))
                .collect()
        })
    }

    /// The largest allocations with a downsize finding (the rightsizing list), at most `limit`.
    pub async fn downsize_candidates(
        &self,
        scope: Option<&str>,
        filter: VmFilter<'_>,
        limit: i64,
    ) -> Result<Vec<Candidate>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.id, v.project_id, p.department_id, f.resource, COALESCE(f.value, 0.0), f.threshold, \
                 f.statistic, CAST(CASE f.resource WHEN 'cpu' THEN v.vcpus WHEN 'memory' THEN v.memory_gib \
                 ELSE v.disk_gib END AS DOUBLE PRECISION) AS alloc \
                 FROM findings f JOIN vms v ON v.key = f.vm_key JOIN projects p ON p.id = v.project_id \
                 WHERE f.verdict = 'downsize' AND ($1 IS NULL OR p.department_id = $1) \
                 AND ($2 IS NULL OR p.department_id = $2) AND ($3 IS NULL OR v.project_id = $3) \
                 ORDER BY CASE f.resource WHEN 'cpu' THEN 0 WHEN 'memory' THEN 1 ELSE 2 END, alloc DESC, v.id \
                 LIMIT $4")
                .bind(scope).bind(filter.department).bind(filter.project).bind(limit)
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(Candidate {
                    vm: r.try_get(0)?,
                    project: r.try_get(1)?,
                    department: r.try_get(2)?,
                    resource: r.try_get(3)?,
                    value: r.try_get(4)?,
                    threshold: r.try_get(5)?,
                    statistic: r.try_get(6)?,
                    allocated: r.try_get(7)?,
                }))
                .collect()
        })
    }

    /// A visible VM by id; `None` if it does not exist or belongs to another department.
    pub async fn vm_detail(&self, scope: Option<&str>, id: &str) -> Result<Option<VmDetail>> {
        on_pool!(self, p => {
            let row = sqlx::query(
                "SELECT v.key, v.id, v.project_id, pr.name, pr.department_id, d.name, v.vcpus, v.memory_gib, \
                 v.disk_gib, v.delivered_on, v.deployed_on, v.deployed_source, v.released_on, \
                 v.release_requested_on, v.release_reason, a.hostname, a.agent_version, a.last_seen_at \
                 FROM vms v JOIN projects pr ON pr.id = v.project_id JOIN departments d ON d.id = pr.department_id \
                 LEFT JOIN agents a ON a.vm_key = v.key \
                 WHERE v.id = $2 AND ($1 IS NULL OR pr.department_id = $1)")
                .bind(scope).bind(id).fetch_optional(p).await?;
            row.map(|r| Ok(VmDetail {
                key: r.try_get(0)?,
                id: r.try_get(1)?,
                project: r.try_get(2)?,
                project_name: r.try_get(3)?,
                department: r.try_get(4)?,
                department_name: r.try_get(5)?,
                vcpus: r.try_get(6)?,
                memory_gib: r.try_get(7)?,
                disk_gib: r.try_get(8)?,
                delivered_on: r.try_get(9)?,
                deployed_on: r.try_get(10)?,
                deployed_source: r.try_get(11)?,
                released_on: r.try_get(12)?,
                release_requested_on: r.try_get(13)?,
                release_reason: r.try_get(14)?,
                agent_hostname: r.try_get(15)?,
                agent_version: r.try_get(16)?,
                agent_last_seen_at: r.try_get(17)?,
            }))
            .transpose()
        })
    }

    /// Every allocation a VM had, newest first.
    pub async fn vm_allocations(&self, vm_key: i64) -> Result<Vec<AllocationRow>> {
        let rows: Vec<(i64, i64, f64, f64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT recorded_at, vcpus, memory_gib, disk_gib, source FROM allocations \
             WHERE vm_key = $1 ORDER BY recorded_at DESC, id DESC")
            .bind(vm_key).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(recorded_at, vcpus, memory_gib, disk_gib, source)| AllocationRow {
                    recorded_at,
                    vcpus,
                    memory_gib,
                    disk_gib,
                    source,
                },
            )
            .collect())
    }

    /// A VM's deadlines, newest first.
    pub async fn vm_deadlines(&self, vm_key: i64) -> Result<Vec<VmDeadline>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, kind, notice_id, start_on, due_on, provisional, done_on, done_source \
                 FROM deadlines WHERE vm_key = $1 ORDER BY id DESC")
                .bind(vm_key).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(VmDeadline {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    notice_id: r.try_get(2)?,
                    start_on: r.try_get(3)?,
                    due_on: r.try_get(4)?,
                    provisional: r.try_get(5)?,
                    done_on: r.try_get(6)?,
                    done_source: r.try_get(7)?,
                }))
                .collect()
        })
    }

    /// A VM's alerts, open first, newest first.
    pub async fn vm_alerts(&self, vm_key: i64) -> Result<Vec<AlertView>> {
        let rows: Vec<(String, String, String, bool, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT kind, raised_on, detail, cleared_at IS NULL, facts FROM alerts WHERE vm_key = $1 \
             ORDER BY cleared_at IS NULL DESC, id DESC")
            .bind(vm_key).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(kind, raised_on, detail, open, facts)| AlertView {
                kind,
                raised_on,
                detail,
                facts,
                open,
            })
            .collect())
    }

    /// Usage of one VM in buckets of `bucket_secs` (whole hours) from `from` to `to`, from the
    /// hourly sums of its day aggregates: each bucket's mean and maximum per resource.
    pub async fn usage_buckets(
        &self,
        vm_key: i64,
        from: i64,
        to: i64,
        bucket_secs: i64,
    ) -> Result<Vec<UsageBucket>> {
        let bucket_secs = bucket_secs.max(3600);
        let days = self
            .stored_days(&[vm_key], shanghai_day_of(from), shanghai_day_of(to))
            .await?;
        let mut buckets: BTreeMap<i64, HourSummary> = BTreeMap::new();
        for d in &days {
            let view =
                DayView::parse(d.day, &d.aggregate).map_err(|e| malformed(vm_key, d.day, e))?;
            let midnight = shanghai_day_start(d.day);
            for h in &view.hours {
                let ts = midnight + i64::from(h.hour) * 3600;
                if ts + 3600 <= from || ts >= to {
                    continue;
                }
                let b = (ts - from).div_euclid(bucket_secs);
                buckets.entry(b).or_default().merge(h);
            }
        }
        Ok(buckets
            .into_iter()
            .filter(|(_, h)| h.samples > 0)
            .map(|(b, h)| usage_bucket(from + b * bucket_secs, &h))
            .collect())
    }

    /// One bucket per day of one VM, `from..=to` (the 365-day chart), from its day aggregates.
    pub async fn usage_days(
        &self,
        vm_key: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, UsageBucket)>> {
        let days = self.stored_days(&[vm_key], from, to).await?;
        days.iter()
            .map(|d| {
                let view =
                    DayView::parse(d.day, &d.aggregate).map_err(|e| malformed(vm_key, d.day, e))?;
                let whole = HourSummary {
                    hour: 0,
                    samples: view.samples,
                    cpu_sum: view.cpu.sum,
                    cpu_max: view.cpu.max,
                    mem_sum: view.mem.sum,
                    mem_max: view.mem.max,
                    disk_samples: view.disk.count,
                    disk_sum: view.disk.sum,
                    disk_max: view.disk.max,
                };
                Ok((d.day, usage_bucket(0, &whole)))
            })
            .collect()
    }

    /// Visible notices, newest first: open ones, closed ones or both; optionally of one VM.
    pub async fn notice_list(
        &self,
        scope: Option<&str>,
        open: Option<bool>,
        vm: Option<&str>,
        limit: i64,
    ) -> Result<Vec<NoticeView>> {
        let sql = format!(
            "{NOTICE_COLUMNS} WHERE ($1 IS NULL OR p.department_id = $1) \
             AND ($2 IS NULL OR (n.closed_at IS NULL) = $2) AND ($3 IS NULL OR v.id = $3) \
             ORDER BY n.id DESC LIMIT $4"
        );
        on_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(scope).bind(open).bind(vm).bind(limit).fetch_all(p).await?;
            rows.into_iter().map(|r| Ok(notice_view!(r))).collect()
        })
    }

    /// A visible notice by id; `None` if it does not exist or belongs to another department.
    pub async fn notice_view(&self, scope: Option<&str>, id: i64) -> Result<Option<NoticeView>> {
        let sql =
            format!("{NOTICE_COLUMNS} WHERE n.id = $2 AND ($1 IS NULL OR p.department_id = $1)");
        on_pool!(self, p => {
            let row = sqlx::query(&sql).bind(scope).bind(id).fetch_optional(p).await?;
            row.map(|r| Ok(notice_view!(r))).transpose()
        })
    }

    /// The e-mails about a notice: the digest that announced it, and the reminders and
    /// escalations of its deadline, oldest first.
    pub async fn notice_mail(
        &self,
        notice_id: i64,
        deadline_id: Option<i64>,
    ) -> Result<Vec<MailEntry>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT o.id, o.kind, o.state, o.attempts, o.created_at, o.sent_at, o.recipients, o.last_error \
                 FROM outbox o WHERE o.id IN (SELECT outbox_id FROM outbox_notices WHERE notice_id = $1) \
                 OR ($2 IS NOT NULL AND o.deadline_id = $2) ORDER BY o.id")
                .bind(notice_id).bind(deadline_id).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(MailEntry {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    state: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    sent_at: r.try_get(5)?,
                    recipients: r.try_get(6)?,
                    last_error: r.try_get(7)?,
                }))
                .collect()
        })
    }

    /// The timeline of one deadline, in order.
    pub async fn deadline_timeline(&self, deadline_id: i64) -> Result<Vec<TimelineEvent>> {
        let rows: Vec<(String, i64, String, String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT event, at, on_date, detail, facts FROM deadline_events WHERE deadline_id = $1 ORDER BY id")
            .bind(deadline_id).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(event, at, on, detail, facts)| TimelineEvent {
                event,
                at,
                on,
                detail,
                facts,
            })
            .collect())
    }

    /// Visible network findings, open first, newest first. Findings of no known department are
    /// the center's: only staff (no scope) see them.
    pub async fn network_finding_list(
        &self,
        scope: Option<&str>,
        limit: i64,
    ) -> Result<Vec<NetworkFindingView>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, kind, ip, mac, department_id, evidence, raised_at, last_raised_at, cleared_at IS NULL, facts \
                 FROM network_findings WHERE ($1 IS NULL OR department_id = $1) \
                 ORDER BY cleared_at IS NULL DESC, id DESC LIMIT $2")
                .bind(scope).bind(limit).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(NetworkFindingView {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    ip: r.try_get(2)?,
                    mac: r.try_get(3)?,
                    department: r.try_get(4)?,
                    evidence: r.try_get(5)?,
                    facts: r.try_get(9)?,
                    raised_at: r.try_get(6)?,
                    last_raised_at: r.try_get(7)?,
                    open: r.try_get(8)?,
                }))
                .collect()
        })
    }

    /// Stored annual reviews of visible projects, newest year first, best score first.
    pub async fn review_list(&self, scope: Option<&str>) -> Result<Vec<ReviewListRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT r.year, r.project_id, pr.name, pr.department_id, r.score, r.grade, r.verdict \
                 FROM reviews r JOIN projects pr ON pr.id = r.project_id \
                 WHERE ($1 IS NULL OR pr.department_id = $1) ORDER BY r.year DESC, r.score DESC, r.project_id")
                .bind(scope).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(ReviewListRow {
                    year: r.try_get(0)?,
                    project: r.try_get(1)?,
                    project_name: r.try_get(2)?,
                    department: r.try_get(3)?,
                    score: r.try_get(4)?,
                    grade: r.try_get(5)?,
                    verdict: r.try_get(6)?,
                }))
                .collect()
        })
    }
}

/// A chart bucket from summed hours: means from the exact sums, maxima as they are.
fn usage_bucket(ts: i64, h: &HourSummary) -> UsageBucket {
    let mean = |sum: u64, n: u32| sum as f64 / f64::from(n.max(1)) / 100.0;
    let has_disk = h.disk_samples > 0;
    UsageBucket {
        ts,
        cpu_avg: mean(h.cpu_sum, h.samples),
        cpu_max: f64::from(h.cpu_max) / 100.0,
        mem_avg: mean(h.mem_sum, h.samples),
        mem_max: f64::from(h.mem_max) / 100.0,
        disk_avg: has_disk.then(|| mean(h.disk_sum, h.disk_samples)),
        disk_max: has_disk.then(|| f64::from(h.disk_max) / 100.0),
    }
}

impl Store {
    /// VMs in service whose latest `usage` finding is `unused`, of one department (`None`: all),
    /// by project and VM; each says whether its whole project is unused.
    pub async fn unused_systems(&self, department: Option<&str>) -> Result<Vec<UnusedSystem>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.id, v.project_id, p.name, p.department_id, v.vcpus, v.memory_gib, v.disk_gib, f.evidence, \
                 (SELECT MIN(n.id) FROM notices n WHERE n.vm_key = v.key AND n.direction = 'release' AND n.closed_at IS NULL), \
                 (SELECT COUNT(*) FROM vms o WHERE o.project_id = v.project_id AND o.released_on IS NULL) \
                 FROM findings f JOIN vms v ON v.key = f.vm_key JOIN projects p ON p.id = v.project_id \
                 WHERE f.resource = 'usage' AND f.verdict = 'unused' AND v.released_on IS NULL \
                 AND ($1 IS NULL OR p.department_id = $1) ORDER BY v.project_id, v.id")
                .bind(department).fetch_all(p).await?;
            let mut out: Vec<UnusedSystem> = Vec::with_capacity(rows.len());
            let mut in_service = std::collections::HashMap::new();
            for r in rows {
                let evidence: Option<String> = r.try_get(7)?;
                let project: String = r.try_get(1)?;
                in_service.insert(project.clone(), r.try_get::<i64, _>(9)?);
                out.push(UnusedSystem {
                    vm: r.try_get(0)?,
                    project,
                    project_name: r.try_get(2)?,
                    department: r.try_get(3)?,
                    vcpus: r.try_get(4)?,
                    memory_gib: r.try_get(5)?,
                    disk_gib: r.try_get(6)?,
                    evidence: super::notices::evidence_json(evidence)?,
                    notice_id: r.try_get(8)?,
                    project_unused: false,
                });
            }
            let mut unused_per_project = std::collections::HashMap::new();
            for u in &out {
                *unused_per_project.entry(u.project.clone()).or_insert(0i64) += 1;
            }
            for u in &mut out {
                u.project_unused = unused_per_project.get(&u.project) == in_service.get(&u.project);
            }
            Ok(out)
        })
    }
}

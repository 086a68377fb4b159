//! Evaluation results: the latest finding per VM and resource, and the notices findings open.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{BeginWrite, Result, Store, now_secs, on_pool, stored};
use crate::core::domain::{Aspect, Direction, NoticeState, Verdict};
use crate::core::rules::evaluate::Finding;
use crate::core::rules::recommend::{NoRecommendation, Recommendation};

/// Findings per multi-row upsert: 10 parameters each stays below SQLite's 32,766.
const FINDINGS_PER_STATEMENT: usize = 1000;

/// A stored finding, joined with its VM's place in the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FindingRow {
    pub vm: String,
    pub project: String,
    pub department: String,
    /// `cpu`, `memory`, `disk`, or `usage` (whether the system is used at all).
    #[schema(value_type = String, example = "cpu")]
    pub resource: Aspect,
    /// `downsize`, `expand`, `ok`, `insufficient_data`; for `usage`: `unused`, `in_use`,
    /// `insufficient_data`.
    #[schema(value_type = String, example = "downsize")]
    pub verdict: Verdict,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub comparison: Option<String>,
    pub statistic: String,
    pub samples: i64,
    pub days_with_samples: i64,
    /// The evaluation instant, RFC 3339.
    pub evaluated_at: String,
    /// What a `usage` finding rests on (CPU maximum, network bytes per day, days observed,
    /// ...; see `UsageEvidence`); `null` for the resources.
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<serde_json::Value>,
}

/// A downsize notice or expansion advice.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NoticeRow {
    pub id: i64,
    pub vm: String,
    pub project: String,
    pub department: String,
    /// `cpu`, `memory`, `disk`; `usage` for release advice.
    #[schema(value_type = String, example = "cpu")]
    pub resource: Aspect,
    /// `downsize`, `expand` or `release` (release advice for a system that looks unused).
    #[schema(value_type = String, example = "downsize")]
    pub kind: Direction,
    /// `open` until the adjustment is done or the notice is withdrawn, then `closed`.
    #[schema(value_type = String, example = "open")]
    pub state: NoticeState,
    pub issued_on: String,
    pub value: f64,
    pub threshold: f64,
    pub comparison: String,
    pub statistic: String,
    /// The adjustment deadline, `YYYY-MM-DD`, once the deadline job has created it.
    pub due: Option<String>,
    /// Approved for sending (always, unless the rules require approval).
    pub approved: bool,
    /// The allocation when the notice was issued, in `unit`.
    pub allocated: Option<f64>,
    /// The recommended allocation, in `unit`: the size whose projected statistic lies inside
    /// the rule's ok band, nearest its target; `null` where no size can (see
    /// `recommendation_note`).
    pub recommended: Option<f64>,
    /// The statistic at the recommended allocation, in percent.
    pub projected: Option<f64>,
    /// `vcpu` (CPU) or `gib` (memory, disk).
    pub unit: String,
    /// Why nothing is recommended, where nothing is.
    pub recommendation_note: Option<String>,
    /// Release advice: the usage evidence it was issued on (see `FindingRow::evidence`).
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<serde_json::Value>,
}

/// One VM's findings from an evaluation, with what the notices need to know of the VM.
#[derive(Debug, Clone)]
pub struct VmFindings {
    pub vm_key: i64,
    pub department: String,
    /// The allocation when evaluated, stored with each notice as its baseline (JSON).
    pub allocation_json: String,
    pub findings: [Finding; 3],
    /// What a notice of each finding recommends (`None` for findings that open none).
    pub recommendations: [Option<Recommendation>; 3],
    /// Whether the system is used at all.
    pub usage: UsageRecord,
}

/// The `usage` finding of one VM as stored: `unused` opens release advice, unless the VM's
/// release is already requested or its last advice was withdrawn and it has not been seen in
/// use since; `in_use` ends such a withdrawal.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub verdict: Verdict,
    /// The CPU maximum over the lookback, and the rule it is held against.
    pub cpu_max: Option<f64>,
    pub cpu_threshold: f64,
    /// The comparison stated, e.g. `<= 5` (`UnusedRule::comparison`).
    pub comparison: String,
    pub samples: i64,
    pub days_observed: i64,
    /// `UsageEvidence` as JSON.
    pub evidence_json: String,
    /// The VM's release was requested already: no advice.
    pub release_requested: bool,
    /// The system is deployed: a VM still within its deployment period is idle by nature and
    /// gets no advice.
    pub deployed: bool,
}

/// What one evaluation wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationWritten {
    pub evaluation_id: i64,
    pub notices_opened: u64,
}

/// Writes one digest e-mail job for `notices` of `department` inside the open transaction `tx`.
macro_rules! enqueue_digest {
    ($tx:expr, $department:expr, $notices:expr, $now:expr) => {{
        let (outbox_id,): (i64,) = sqlx::query_as(
            "INSERT INTO outbox (kind, department_id, state, attempts, next_attempt_at, created_at) \
             VALUES ('digest', $1, 'pending', 0, $2, $2) RETURNING id",
        )
        .bind($department)
        .bind($now)
        .fetch_one(&mut **$tx)
        .await?;
        for notice in $notices {
            sqlx::query("INSERT INTO outbox_notices (outbox_id, notice_id) VALUES ($1, $2)")
                .bind(outbox_id)
                .bind(*notice)
                .execute(&mut **$tx)
                .await?;
        }
        outbox_id
    }};
}
pub(crate) use enqueue_digest;

/// A stored evidence column back as JSON, naming a malformed one.
pub(super) fn evidence_json(text: Option<String>) -> Result<Option<serde_json::Value>> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| super::StoreError::Invalid(format!("stored evidence {t:?}: {e}")))
    })
    .transpose()
}

/// Unix seconds as RFC 3339 in UTC, as findings show their evaluation instant.
pub fn rfc3339(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

impl Store {
    /// Stores an evaluation in one transaction: the latest findings replace the previous ones,
    /// and each downsize/expand finding opens a notice unless one is already open for the same
    /// VM, resource and direction (the partial unique index makes that race-free). An `unused`
    /// usage finding opens release advice (see [`UsageRecord`]); a VM being released gets no
    /// downsize notice.
    /// With `approve_now` (no approval required), the new notices are approved at once and each
    /// department's new notices get one digest e-mail in the outbox, in the same transaction.
    pub async fn record_evaluation(
        &self,
        at: DateTime<Utc>,
        issued_on: NaiveDate,
        vms: &[VmFindings],
        approve_now: bool,
    ) -> Result<EvaluationWritten> {
        let ran_at = now_secs();
        let issued_on = issued_on.format("%Y-%m-%d").to_string();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (evaluation_id,): (i64,) = sqlx::query_as(
                "INSERT INTO evaluations (at, ran_at, vms, notices_opened) VALUES ($1, $2, $3, 0) RETURNING id")
                .bind(at.timestamp()).bind(ran_at).bind(vms.len() as i64)
                .fetch_one(&mut *tx).await?;
            // Every finding replaces its VM's and resource's previous one, many rows a statement.
            let rows: Vec<(i64, &Finding)> = vms
                .iter()
                .flat_map(|vm| vm.findings.iter().map(move |f| (vm.vm_key, f)))
                .collect();
            for chunk in rows.chunks(FINDINGS_PER_STATEMENT) {
                let mut upsert = sqlx::QueryBuilder::new(
                    "INSERT INTO findings (vm_key, resource, evaluation_id, verdict, value, threshold, \
                     comparison, statistic, samples, days_with_samples) ");
                upsert.push_values(chunk, |mut row, (vm_key, f)| {
                    row.push_bind(*vm_key).push_bind(f.resource.as_str()).push_bind(evaluation_id)
                        .push_bind(f.verdict.as_str()).push_bind(f.value).push_bind(f.threshold)
                        .push_bind(&f.comparison).push_bind(&f.statistic)
                        .push_bind(f.samples as i64).push_bind(f.days_with_samples as i64);
                });
                upsert.push(" ON CONFLICT (vm_key, resource) DO UPDATE SET evaluation_id = excluded.evaluation_id, \
                     verdict = excluded.verdict, value = excluded.value, threshold = excluded.threshold, \
                     comparison = excluded.comparison, statistic = excluded.statistic, \
                     samples = excluded.samples, days_with_samples = excluded.days_with_samples");
                upsert.build().execute(&mut *tx).await?;
            }
            for chunk in vms.chunks(FINDINGS_PER_STATEMENT) {
                let mut upsert = sqlx::QueryBuilder::new(
                    "INSERT INTO findings (vm_key, resource, evaluation_id, verdict, value, threshold, \
                     comparison, statistic, samples, days_with_samples, evidence) ");
                upsert.push_values(chunk, |mut row, vm| {
                    let u = &vm.usage;
                    row.push_bind(vm.vm_key).push_bind(Aspect::Usage.as_str()).push_bind(evaluation_id)
                        .push_bind(u.verdict.as_str()).push_bind(u.cpu_max).push_bind(u.cpu_threshold)
                        .push_bind(&u.comparison).push_bind(crate::core::usage::idle::STATISTIC)
                        .push_bind(u.samples).push_bind(u.days_observed).push_bind(&u.evidence_json);
                });
                upsert.push(" ON CONFLICT (vm_key, resource) DO UPDATE SET evaluation_id = excluded.evaluation_id, \
                     verdict = excluded.verdict, value = excluded.value, threshold = excluded.threshold, \
                     comparison = excluded.comparison, statistic = excluded.statistic, \
                     samples = excluded.samples, days_with_samples = excluded.days_with_samples, \
                     evidence = excluded.evidence");
                upsert.build().execute(&mut *tx).await?;
            }
            // Seen in use: a withdrawn advice may be raised again, and open advice closes (its
            // obligation is then answered by the evidence, see `releases_to_close`).
            let in_use: Vec<i64> = vms.iter().filter(|v| v.usage.verdict == Verdict::InUse).map(|v| v.vm_key).collect();
            for chunk in in_use.chunks(FINDINGS_PER_STATEMENT) {
                let mut delete = sqlx::QueryBuilder::new("DELETE FROM release_withdrawals WHERE vm_key IN ");
                delete.push_tuples(chunk, |mut t, key| { t.push_bind(*key); });
                delete.build().execute(&mut *tx).await?;
                let mut close = sqlx::QueryBuilder::new("UPDATE notices SET closed_at = ");
                close.push_bind(at.timestamp());
                close.push(", closed_reason = 'in_use' WHERE direction = 'release' AND closed_at IS NULL AND vm_key IN ");
                close.push_tuples(chunk, |mut t, key| { t.push_bind(*key); });
                close.build().execute(&mut *tx).await?;
            }
            let withdrawn: std::collections::HashSet<i64> = sqlx::query_as::<_, (i64,)>(
                "SELECT vm_key FROM release_withdrawals").fetch_all(&mut *tx).await?
                .into_iter().map(|(k,)| k).collect();
            // A notice opens only where none is open (the partial unique index decides; reading
            // the open ones first spares a statement per finding that would change nothing).
            let open: std::collections::HashSet<(i64, String, String)> = sqlx::query_as(
                "SELECT vm_key, resource, direction FROM notices WHERE closed_at IS NULL")
                .fetch_all(&mut *tx).await?.into_iter().collect();
            let mut opened = 0;
            let mut new_by_department: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
            let release_open = |key: i64| {
                open.contains(&(key, Aspect::Usage.as_str().to_owned(), Direction::Release.as_str().to_owned()))
            };
            for vm in vms {
                // A system to be released is not told to downsize: releasing it is the
                // adjustment (unless staff withdrew the advice: then it is used, and sized).
                let releasing = vm.usage.release_requested
                    || release_open(vm.vm_key)
                    || (vm.usage.verdict == Verdict::Unused && vm.usage.deployed
                        && !withdrawn.contains(&vm.vm_key));
                for (f, recommendation) in vm.findings.iter().zip(&vm.recommendations) {
                    let (Some(direction), Some(value), Some(threshold), Some(comparison)) =
                        (f.verdict.direction(), f.value, f.threshold, &f.comparison) else { continue };
                    if open.contains(&(vm.vm_key, f.resource.as_str().to_owned(), direction.as_str().to_owned()))
                        || (releasing && direction == Direction::Downsize) {
                        continue;
                    }
                    let notice: Option<(i64,)> = sqlx::query_as(
                        "INSERT INTO notices (vm_key, resource, direction, evaluation_id, issued_at, issued_on, \
                         value, threshold, comparison, statistic, allocation, approved_at, \
                         allocated, recommended, projected, recommendation_note) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                         ON CONFLICT DO NOTHING RETURNING id")
                        .bind(vm.vm_key).bind(f.resource.as_str()).bind(direction.as_str())
                        .bind(evaluation_id).bind(at.timestamp()).bind(&issued_on)
                        .bind(value).bind(threshold).bind(comparison).bind(&f.statistic)
                        .bind(&vm.allocation_json).bind(approve_now.then_some(at.timestamp()))
                        .bind(recommendation.map(|r| r.allocated))
                        .bind(recommendation.and_then(|r| r.recommended))
                        .bind(recommendation.and_then(|r| r.projected))
                        .bind(recommendation.and_then(|r| r.note).map(|n| n.as_str()))
                        .fetch_optional(&mut *tx).await?;
                    if let Some((id,)) = notice {
                        opened += 1;
                        new_by_department.entry(vm.department.as_str()).or_default().push(id);
                    }
                }
            }
            for vm in vms {
                let u = &vm.usage;
                let advise = u.verdict == Verdict::Unused && u.deployed && !u.release_requested
                    && !withdrawn.contains(&vm.vm_key) && !release_open(vm.vm_key);
                let Some(cpu_max) = u.cpu_max.filter(|_| advise) else { continue };
                let notice: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO notices (vm_key, resource, direction, evaluation_id, issued_at, issued_on, \
                     value, threshold, comparison, statistic, allocation, approved_at, evidence) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT DO NOTHING RETURNING id")
                    .bind(vm.vm_key).bind(Aspect::Usage.as_str()).bind(Direction::Release.as_str())
                    .bind(evaluation_id).bind(at.timestamp()).bind(&issued_on)
                    .bind(cpu_max).bind(u.cpu_threshold).bind(&u.comparison)
                    .bind(crate::core::usage::idle::STATISTIC).bind(&vm.allocation_json)
                    .bind(approve_now.then_some(at.timestamp())).bind(&u.evidence_json)
                    .fetch_optional(&mut *tx).await?;
                if let Some((id,)) = notice {
                    opened += 1;
                    new_by_department.entry(vm.department.as_str()).or_default().push(id);
                }
            }
            if approve_now {
                for (department, notices) in &new_by_department {
                    enqueue_digest!(&mut tx, department, notices, ran_at);
                }
            }
            sqlx::query("UPDATE evaluations SET notices_opened = $2 WHERE id = $1")
                .bind(evaluation_id).bind(opened as i64).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(EvaluationWritten { evaluation_id, notices_opened: opened })
        })
    }

    /// The latest finding of every VM and resource, ordered by VM then resource.
    pub async fn findings(&self) -> Result<Vec<FindingRow>> {
        self.findings_in(None).await
    }

    /// [`Store::findings`] of one department's VMs (`None`: all).
    pub async fn findings_in(&self, department: Option<&str>) -> Result<Vec<FindingRow>> {
        self.findings_where(department, None, None).await
    }

    /// [`Store::findings_in`] of one resource, or `usage` (`None`: all).
    pub async fn findings_of(
        &self,
        department: Option<&str>,
        resource: Option<Aspect>,
    ) -> Result<Vec<FindingRow>> {
        self.findings_where(department, None, resource).await
    }

    /// The latest findings of one VM (by key, already scope-checked): cpu, memory, disk.
    pub async fn vm_findings(&self, vm_key: i64) -> Result<Vec<FindingRow>> {
        self.findings_where(None, Some(vm_key), None).await
    }

    async fn findings_where(
        &self,
        department: Option<&str>,
        vm_key: Option<i64>,
        resource: Option<Aspect>,
    ) -> Result<Vec<FindingRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
            "SELECT v.id, v.project_id, p.department_id, f.resource, f.verdict, f.value, f.threshold, \
             f.comparison, f.statistic, f.samples, f.days_with_samples, e.at, f.evidence \
             FROM findings f JOIN vms v ON v.key = f.vm_key JOIN projects p ON p.id = v.project_id \
             JOIN evaluations e ON e.id = f.evaluation_id \
             WHERE ($1 IS NULL OR p.department_id = $1) AND ($2 IS NULL OR f.vm_key = $2) \
             AND ($3 IS NULL OR f.resource = $3) \
             ORDER BY v.id, CASE f.resource WHEN 'cpu' THEN 0 WHEN 'memory' THEN 1 WHEN 'disk' THEN 2 ELSE 3 END")
            .bind(department).bind(vm_key).bind(resource.map(Aspect::as_str)).fetch_all(p).await?;
            rows.into_iter()
            .map(|r| {
                Ok(FindingRow {
                    vm: r.try_get(0)?,
                    project: r.try_get(1)?,
                    department: r.try_get(2)?,
                    resource: stored(r.try_get::<String, _>(3)?)?,
                    verdict: stored(r.try_get::<String, _>(4)?)?,
                    value: r.try_get(5)?,
                    threshold: r.try_get(6)?,
                    comparison: r.try_get(7)?,
                    statistic: r.try_get(8)?,
                    samples: r.try_get(9)?,
                    days_with_samples: r.try_get(10)?,
                    evaluated_at: rfc3339(r.try_get(11)?),
                    evidence: evidence_json(r.try_get(12)?)?,
                })
            })
            .collect()
        })
    }

    /// All notices, newest first.
    pub async fn notices(&self) -> Result<Vec<NoticeRow>> {
        self.notices_in(None).await
    }

    /// [`Store::notices`] of one department's VMs (`None`: all).
    pub async fn notices_in(&self, department: Option<&str>) -> Result<Vec<NoticeRow>> {
        self.notices_where(department, None).await
    }

    /// One notice of one department's VMs (`None`: any); `None` if it is not there.
    pub async fn notice_in(&self, department: Option<&str>, id: i64) -> Result<Option<NoticeRow>> {
        Ok(self
            .notices_where(department, Some(id))
            .await?
            .into_iter()
            .next())
    }

    async fn notices_where(
        &self,
        department: Option<&str>,
        id: Option<i64>,
    ) -> Result<Vec<NoticeRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
            "SELECT n.id, v.id, v.project_id, p.department_id, n.resource, n.direction, \
             n.closed_at IS NULL, n.issued_on, n.value, n.threshold, n.comparison, n.statistic, d.due_on, \
             n.approved_at IS NOT NULL, n.allocated, n.recommended, n.projected, n.recommendation_note, n.evidence \
             FROM notices n JOIN vms v ON v.key = n.vm_key JOIN projects p ON p.id = v.project_id \
             LEFT JOIN deadlines d ON d.notice_id = n.id \
             WHERE ($1 IS NULL OR p.department_id = $1) AND ($2 IS NULL OR n.id = $2) ORDER BY n.id DESC")
            .bind(department).bind(id).fetch_all(p).await?;
            rows.into_iter()
            .map(|r| {
                let resource: Aspect = stored(r.try_get::<String, _>(4)?)?;
                let note: Option<String> = r.try_get(17)?;
                Ok(NoticeRow {
                    id: r.try_get(0)?,
                    vm: r.try_get(1)?,
                    project: r.try_get(2)?,
                    department: r.try_get(3)?,
                    resource,
                    kind: stored(r.try_get::<String, _>(5)?)?,
                    state: if r.try_get::<bool, _>(6)? { NoticeState::Open } else { NoticeState::Closed },
                    issued_on: r.try_get(7)?,
                    value: r.try_get(8)?,
                    threshold: r.try_get(9)?,
                    comparison: r.try_get(10)?,
                    statistic: r.try_get(11)?,
                    due: r.try_get(12)?,
                    approved: r.try_get(13)?,
                    allocated: r.try_get(14)?,
                    recommended: r.try_get(15)?,
                    projected: r.try_get(16)?,
                    unit: match resource {
                        Aspect::Cpu => "vcpu",
                        Aspect::Memory | Aspect::Disk => "gib",
                        Aspect::Usage => "",
                    }
                    .to_owned(),
                    recommendation_note: note
                        .as_deref()
                        .and_then(NoRecommendation::parse)
                        .zip(resource.resource())
                        .map(|(n, r)| n.text(r)),
                    evidence: evidence_json(r.try_get(18)?)?,
                })
            })
            .collect()
        })
    }
}

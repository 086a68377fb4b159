//! Resource requests: submission (with its receipt e-mail), the center's decision (with its
//! e-mail), delivery of the approved VMs, and what a request's evidence reads: the usage of the
//! department's VMs in service.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::inventory::parse_date;
use super::{BeginWrite, Result, Store, StoreError, now_secs, on_pool, stored};
use crate::core::requests::{Comparable, RequestForm, RequestState, RequestedVm, Size};

/// One requested VM as stored: as asked, and as approved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestVmRow {
    pub id: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    /// The approved size (amended or as asked); `None` until approved.
    pub approved: Option<Size>,
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRow {
    pub id: i64,
    pub department: String,
    pub project: String,
    /// The new project's name; `None` for an existing project.
    pub project_name: Option<String>,
    pub purpose: String,
    pub expected_load: String,
    pub desired_on: Option<String>,
    pub submitted_on: String,
    pub submitted_by: String,
    pub state: RequestState,
    pub decided_on: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub delivered_on: Option<String>,
    /// The center's answer is due (the `request_answer` obligation), once created.
    pub due: Option<String>,
    pub vms: Vec<RequestVmRow>,
}

/// The department's VMs in service as evidence: per VM its allocation and latest statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepartmentUsage {
    pub comparables: Vec<Comparable>,
    /// Open downsize notices of the department's VMs.
    pub open_downsize_notices: i64,
    /// VMs whose latest usage finding is `unused`.
    pub unused_vms: Vec<String>,
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl Store {
    /// Stores a request and queues its receipt e-mail, in one transaction. The department must
    /// exist; the project must be the department's, or be new with a name; no requested VM id
    /// may exist already.
    pub async fn submit_request(
        &self,
        form: &RequestForm,
        submitted_on: NaiveDate,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let invalid = |m: String| StoreError::Invalid(m);
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let department: Option<(String,)> = sqlx::query_as("SELECT id FROM departments WHERE id = $1")
                .bind(form.department().as_str()).fetch_optional(&mut *tx).await?;
            if department.is_none() {
                return Err(invalid(format!("department {} is not in the inventory", form.department())));
            }
            let project: Option<(String,)> = sqlx::query_as("SELECT department_id FROM projects WHERE id = $1")
                .bind(form.project().as_str()).fetch_optional(&mut *tx).await?;
            match (project, form.project_name()) {
                (Some((owner,)), _) if owner != form.department().as_str() => {
                    return Err(invalid(format!("project {} is not a project of department {}", form.project(), form.department())));
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(format!("project {} exists already: leave out project_name, or name a new project id", form.project())));
                }
                (None, None) => {
                    return Err(invalid(format!("project {} is not in the inventory: a new project needs project_name", form.project())));
                }
                _ => {}
            }
            for vm in form.vms() {
                let exists: Option<(i64,)> = sqlx::query_as("SELECT key FROM vms WHERE id = $1")
                    .bind(vm.id.as_str()).fetch_optional(&mut *tx).await?;
                if exists.is_some() {
                    return Err(invalid(format!("vm {} exists already: a request names new VMs", vm.id)));
                }
                let requested: Option<(i64,)> = sqlx::query_as(
                    "SELECT q.request_id FROM request_vms q JOIN requests r ON r.id = q.request_id \
                     WHERE q.vm_id = $1 AND r.state IN ('submitted', 'approved')")
                    .bind(vm.id.as_str()).fetch_optional(&mut *tx).await?;
                if let Some((other,)) = requested {
                    return Err(invalid(format!("vm {} is named by request {other} already", vm.id)));
                }
            }
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO requests (department_id, project_id, project_name, purpose, expected_load, desired_on, \
                 submitted_on, submitted_at, submitted_by, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'submitted') \
                 RETURNING id")
                .bind(form.department().as_str()).bind(form.project().as_str()).bind(form.project_name())
                .bind(form.purpose()).bind(form.expected_load()).bind(form.desired_on().map(day))
                .bind(day(submitted_on)).bind(at.timestamp()).bind(by)
                .fetch_one(&mut *tx).await?;
            for (i, vm) in form.vms().iter().enumerate() {
                sqlx::query(
                    "INSERT INTO request_vms (request_id, vm_id, position, vcpus, memory_gib, disk_gib) \
                     VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(id).bind(vm.id.as_str()).bind(i as i64).bind(vm.size.vcpus)
                    .bind(vm.size.memory_gib).bind(vm.size.disk_gib).execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO outbox (kind, department_id, request_id, state, attempts, next_attempt_at, created_at) \
                 VALUES ('request_receipt', $1, $2, 'pending', 0, $3, $3)")
                .bind(form.department().as_str()).bind(id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Staff's decision, with its e-mail, in one transaction: approved (each VM at its amended
    /// size, or as asked) or rejected. Only a submitted request is decided; an amendment names
    /// only the request's own VMs.
    pub async fn decide_request(
        &self,
        id: i64,
        approve: bool,
        amend: &[RequestedVm],
        by: &str,
        reason: &str,
        on: NaiveDate,
    ) -> Result<()> {
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(String, String)> = sqlx::query_as("SELECT state, department_id FROM requests WHERE id = $1")
                .bind(id).fetch_optional(&mut *tx).await?;
            let Some((state, department)) = row else {
                return Err(StoreError::Invalid(format!("no request {id}")));
            };
            if state != RequestState::Submitted.as_str() {
                return Err(StoreError::Invalid(format!("request {id} is {state}, not submitted: it was decided already")));
            }
            let vms: Vec<(String,)> = sqlx::query_as("SELECT vm_id FROM request_vms WHERE request_id = $1")
                .bind(id).fetch_all(&mut *tx).await?;
            if let Some(stranger) = amend.iter().find(|a| !vms.iter().any(|(v,)| v == a.id.as_str())) {
                return Err(StoreError::Invalid(format!("request {id} names no VM {}: an amendment changes the request's own VMs", stranger.id)));
            }
            if approve {
                sqlx::query("UPDATE request_vms SET approved_vcpus = vcpus, approved_memory_gib = memory_gib, \
                             approved_disk_gib = disk_gib WHERE request_id = $1")
                    .bind(id).execute(&mut *tx).await?;
                for a in amend {
                    sqlx::query("UPDATE request_vms SET approved_vcpus = $3, approved_memory_gib = $4, approved_disk_gib = $5 \
                                 WHERE request_id = $1 AND vm_id = $2")
                        .bind(id).bind(a.id.as_str()).bind(a.size.vcpus).bind(a.size.memory_gib)
                        .bind(a.size.disk_gib).execute(&mut *tx).await?;
                }
            }
            let state = if approve { RequestState::Approved } else { RequestState::Rejected };
            // Decided once, whoever else decides at the same moment (PostgreSQL reads committed).
            let decided = sqlx::query("UPDATE requests SET state = $2, decided_on = $3, decided_by = $4, decision_reason = $5 \
                                       WHERE id = $1 AND state = 'submitted'")
                .bind(id).bind(state.as_str()).bind(day(on)).bind(by).bind(reason).execute(&mut *tx).await?;
            if decided.rows_affected() != 1 {
                return Err(StoreError::Invalid(format!("request {id} was decided already")));
            }
            sqlx::query(
                "INSERT INTO outbox (kind, department_id, request_id, state, attempts, next_attempt_at, created_at) \
                 VALUES ('request_decision', $1, $2, 'pending', 0, $3, $3)")
                .bind(&department).bind(id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Delivers an approved request on `on`, in one transaction: the new project (if any) and
    /// the VMs at their approved sizes, each naming the request; their deployment obligations
    /// start from `on` (art. 13). Returns the VMs delivered.
    pub async fn deliver_request(&self, id: i64, on: NaiveDate) -> Result<u64> {
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // (state, department, project, new project's name, decided on)
            type Row = (String, String, String, Option<String>, Option<String>);
            let row: Option<Row> = sqlx::query_as(
                "SELECT state, department_id, project_id, project_name, decided_on FROM requests WHERE id = $1")
                .bind(id).fetch_optional(&mut *tx).await?;
            let Some((state, department, project, project_name, decided)) = row else {
                return Err(StoreError::Invalid(format!("no request {id}")));
            };
            if state != RequestState::Approved.as_str() {
                return Err(StoreError::Invalid(format!("request {id} is {state}: only an approved request is delivered")));
            }
            if let Some(decided) = decided.filter(|d| on < parse_date(d).unwrap_or(on)) {
                return Err(StoreError::Invalid(format!("request {id} was approved on {decided}: it cannot be delivered on {on}, before it")));
            }
            // Delivered once, whoever else delivers at the same moment.
            let claimed = sqlx::query("UPDATE requests SET state = 'delivered', delivered_on = $2 WHERE id = $1 AND state = 'approved'")
                .bind(id).bind(day(on)).execute(&mut *tx).await?;
            if claimed.rows_affected() != 1 {
                return Err(StoreError::Invalid(format!("request {id} was delivered already")));
            }
            if let Some(name) = &project_name {
                sqlx::query("INSERT INTO projects (id, name, department_id) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                    .bind(&project).bind(name).bind(&department).execute(&mut *tx).await?;
            }
            // The project may have been created or moved since the request: it must still be
            // the requesting department's.
            let (owner,): (String,) = sqlx::query_as("SELECT department_id FROM projects WHERE id = $1")
                .bind(&project).fetch_one(&mut *tx).await?;
            if owner != department {
                return Err(StoreError::Invalid(format!(
                    "project {project} is now another department's: the request's VMs are not delivered into it")));
            }
            let vms: Vec<(String, f64, f64, f64)> = sqlx::query_as(
                "SELECT vm_id, approved_vcpus, approved_memory_gib, approved_disk_gib FROM request_vms \
                 WHERE request_id = $1 ORDER BY position")
                .bind(id).fetch_all(&mut *tx).await?;
            for (vm, vcpus, memory, disk) in &vms {
                let exists: Option<(i64,)> = sqlx::query_as("SELECT key FROM vms WHERE id = $1")
                    .bind(vm).fetch_optional(&mut *tx).await?;
                if exists.is_some() {
                    return Err(StoreError::Invalid(format!("vm {vm} exists already (delivered through the inventory?)")));
                }
                let (key,): (i64,) = sqlx::query_as(
                    "INSERT INTO vms (id, project_id, vcpus, memory_gib, disk_gib, delivered_on, updated_at, request_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING key")
                    .bind(vm).bind(&project).bind(*vcpus as i64).bind(memory).bind(disk)
                    .bind(day(on)).bind(now).bind(id).fetch_one(&mut *tx).await?;
                sqlx::query("INSERT INTO allocations (vm_key, recorded_at, vcpus, memory_gib, disk_gib, source) \
                             VALUES ($1, $2, $3, $4, $5, 'request')")
                    .bind(key).bind(now).bind(*vcpus as i64).bind(memory).bind(disk)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(vms.len() as u64)
        })
    }

    /// Approved requests whose every VM the inventory now holds: the inventory delivered them.
    /// Links the VMs to their request and marks it delivered on their earliest delivery day.
    /// Returns the requests so delivered.
    pub async fn link_delivered_requests(&self) -> Result<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let ready: Vec<(i64, String)> = sqlx::query_as(
                "SELECT r.id, MIN(v.delivered_on) FROM requests r JOIN request_vms q ON q.request_id = r.id \
                 JOIN vms v ON v.id = q.vm_id AND v.project_id = r.project_id AND v.request_id IS NULL \
                 WHERE r.state = 'approved' GROUP BY r.id \
                 HAVING COUNT(*) = (SELECT COUNT(*) FROM request_vms o WHERE o.request_id = r.id)")
                .fetch_all(&mut *tx).await?;
            for (id, delivered) in &ready {
                sqlx::query("UPDATE vms SET request_id = $1 WHERE id IN (SELECT vm_id FROM request_vms WHERE request_id = $1)")
                    .bind(id).execute(&mut *tx).await?;
                sqlx::query("UPDATE requests SET state = 'delivered', delivered_on = $2 WHERE id = $1")
                    .bind(id).bind(delivered).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(ready.len() as u64)
        })
    }

    /// Requests of one department (`None`: all), newest first.
    pub async fn requests_in(&self, department: Option<&str>) -> Result<Vec<RequestRow>> {
        self.requests_where(department, None).await
    }

    /// One request of one department (`None`: any); `None` if it is not there.
    pub async fn request_in(
        &self,
        department: Option<&str>,
        id: i64,
    ) -> Result<Option<RequestRow>> {
        Ok(self
            .requests_where(department, Some(id))
            .await?
            .into_iter()
            .next())
    }

    async fn requests_where(
        &self,
        department: Option<&str>,
        id: Option<i64>,
    ) -> Result<Vec<RequestRow>> {
        let mut out: Vec<RequestRow> = on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT r.id, r.department_id, r.project_id, r.project_name, r.purpose, r.expected_load, r.desired_on, \
                 r.submitted_on, r.submitted_by, r.state, r.decided_on, r.decided_by, r.decision_reason, r.delivered_on, d.due_on \
                 FROM requests r LEFT JOIN deadlines d ON d.request_id = r.id \
                 WHERE ($1 IS NULL OR r.department_id = $1) AND ($2 IS NULL OR r.id = $2) ORDER BY r.id DESC")
                .bind(department).bind(id).fetch_all(p).await?;
            rows.into_iter().map(|r| Ok(RequestRow {
                id: r.try_get(0)?,
                department: r.try_get(1)?,
                project: r.try_get(2)?,
                project_name: r.try_get(3)?,
                purpose: r.try_get(4)?,
                expected_load: r.try_get(5)?,
                desired_on: r.try_get(6)?,
                submitted_on: r.try_get(7)?,
                submitted_by: r.try_get(8)?,
                state: stored(r.try_get::<String, _>(9)?)?,
                decided_on: r.try_get(10)?,
                decided_by: r.try_get(11)?,
                decision_reason: r.try_get(12)?,
                delivered_on: r.try_get(13)?,
                due: r.try_get(14)?,
                vms: Vec::new(),
            })).collect::<Result<Vec<_>>>()
        })?;
        // Every listed request's VMs in one query, with the same filters.
        // (request, vm, asked vcpus, memory, disk, approved vcpus, memory, disk)
        type Row = (
            i64,
            String,
            f64,
            f64,
            f64,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        );
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT q.request_id, q.vm_id, q.vcpus, q.memory_gib, q.disk_gib, q.approved_vcpus, \
             q.approved_memory_gib, q.approved_disk_gib FROM request_vms q JOIN requests r ON r.id = q.request_id \
             WHERE ($1 IS NULL OR r.department_id = $1) AND ($2 IS NULL OR r.id = $2) \
             ORDER BY q.request_id, q.position")
            .bind(department).bind(id).fetch_all(p).await)?;
        let mut vms: std::collections::HashMap<i64, Vec<RequestVmRow>> = Default::default();
        for (request, id, vcpus, memory_gib, disk_gib, av, am, ad) in rows {
            vms.entry(request).or_default().push(RequestVmRow {
                id,
                vcpus,
                memory_gib,
                disk_gib,
                approved: match (av, am, ad) {
                    (Some(vcpus), Some(memory_gib), Some(disk_gib)) => Some(Size {
                        vcpus,
                        memory_gib,
                        disk_gib,
                    }),
                    _ => None,
                },
            });
        }
        for r in &mut out {
            r.vms = vms.remove(&r.id).unwrap_or_default();
        }
        Ok(out)
    }

    /// The usage evidence of a department's VMs in service (a request's own VMs left out):
    /// allocations and the latest findings' statistics, open downsize notices, unused VMs.
    pub async fn department_usage(
        &self,
        department: &str,
        project: &str,
        request: i64,
    ) -> Result<DepartmentUsage> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.id, v.project_id, v.vcpus, v.memory_gib, v.disk_gib, \
                 (SELECT f.value FROM findings f WHERE f.vm_key = v.key AND f.resource = 'cpu' AND f.verdict <> 'insufficient_data'), \
                 (SELECT f.value FROM findings f WHERE f.vm_key = v.key AND f.resource = 'memory' AND f.verdict <> 'insufficient_data'), \
                 (SELECT f.value FROM findings f WHERE f.vm_key = v.key AND f.resource = 'disk' AND f.verdict <> 'insufficient_data'), \
                 (SELECT f.verdict FROM findings f WHERE f.vm_key = v.key AND f.resource = 'usage') \
                 FROM vms v JOIN projects pr ON pr.id = v.project_id \
                 WHERE pr.department_id = $1 AND v.released_on IS NULL AND (v.request_id IS NULL OR v.request_id <> $2) \
                 ORDER BY v.id")
                .bind(department).bind(request).fetch_all(p).await?;
            let mut comparables = Vec::with_capacity(rows.len());
            let mut unused_vms = Vec::new();
            for r in rows {
                let vm: String = r.try_get(0)?;
                let vm_project: String = r.try_get(1)?;
                let vcpus: i64 = r.try_get(2)?;
                if r.try_get::<Option<String>, _>(8)?.as_deref() == Some("unused") {
                    unused_vms.push(vm.clone());
                }
                comparables.push(Comparable {
                    vm,
                    same_project: vm_project == project,
                    size: Size { vcpus: vcpus as f64, memory_gib: r.try_get(3)?, disk_gib: r.try_get(4)? },
                    cpu: r.try_get(5)?,
                    memory: r.try_get(6)?,
                    disk: r.try_get(7)?,
                });
            }
            let (open_downsize_notices,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM notices n JOIN vms v ON v.key = n.vm_key JOIN projects pr ON pr.id = v.project_id \
                 WHERE pr.department_id = $1 AND n.direction = 'downsize' AND n.closed_at IS NULL")
                .bind(department).fetch_one(p).await?;
            Ok(DepartmentUsage { comparables, open_downsize_notices, unused_vms })
        })
    }

    /// The request a VM was delivered for, if any.
    pub async fn vm_request(&self, vm: &str) -> Result<Option<i64>> {
        let row: Option<(Option<i64>,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT request_id FROM vms WHERE id = $1").bind(vm).fetch_optional(p).await)?;
        Ok(row.and_then(|(r,)| r))
    }
}

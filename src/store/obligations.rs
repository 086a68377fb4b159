//! Obligations (duties with a working-day deadline, stored in `deadlines`) and their timelines:
//! when each kind's clock starts, the evidence that completes it, deployment, filing and release
//! records; and VM alerts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::inventory::parse_date;
use super::{BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::details::{AlertFacts, DeadlineFacts};
use crate::core::domain::{Direction, VmId};
use crate::core::obligations::{ClockStart, ObligationKind};

/// A stored obligation with its place in the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineRow {
    pub id: i64,
    pub kind: ObligationKind,
    /// The VM it concerns; a filing names the project's first deployed VM.
    pub vm_key: Option<i64>,
    pub vm: Option<String>,
    pub project: Option<String>,
    pub department: String,
    pub notice_id: Option<i64>,
    pub start_on: NaiveDate,
    pub working_days: i64,
    pub due_on: NaiveDate,
    pub provisional: bool,
    pub done_on: Option<NaiveDate>,
    pub done_source: Option<String>,
    /// The resource request it answers (`request_answer`).
    pub request_id: Option<i64>,
}

impl DeadlineRow {
    /// What it is about, for people: the VM, else the project, else the department.
    pub fn subject(&self) -> &str {
        self.vm
            .as_deref()
            .or(self.project.as_deref())
            .unwrap_or(&self.department)
    }
}

/// One entry of a deadline's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadlineEvent {
    pub deadline_id: i64,
    pub event: String,
    pub on: String,
    pub detail: String,
}

/// An obligation whose clock has started but which is not stored yet (see
/// [`Store::obligations_to_start`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ObligationStart {
    pub kind: ObligationKind,
    pub vm_key: Option<i64>,
    pub notice_id: Option<i64>,
    pub request_id: Option<i64>,
    pub project: Option<String>,
    pub department: String,
    pub start_on: NaiveDate,
    /// Already done when it starts (e.g. `deployed_on` in the inventory, a project filed
    /// before it was deployed), with the source of that record.
    pub done_on: Option<NaiveDate>,
    pub done_source: Option<String>,
}

/// An obligation to create, its due date computed by the caller (the calendar is not the
/// store's business).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadline {
    pub start: ObligationStart,
    pub working_days: u32,
    pub due_on: NaiveDate,
    pub provisional: bool,
}

/// What the completion check needs of an open adjustment.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAdjustment {
    pub deadline_id: i64,
    pub notice_id: i64,
    pub vm_key: i64,
    pub resource: String,
    pub direction: String,
    /// The allocation when the notice was issued (JSON, see `evaluation`).
    pub baseline_json: String,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    /// The agent's current view of its capacity: (vcpus, memory_bytes, disk_bytes).
    pub agent: Option<(i64, i64, i64)>,
}

/// A VM-level alert (e.g. `silent_agent`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertRow {
    pub id: i64,
    pub vm: String,
    pub department: String,
    pub kind: String,
    pub raised_on: String,
    pub detail: String,
    pub open: bool,
}

/// Inserts a timeline event (its English sentence for the CLI and API, its facts as JSON for
/// the pages) once per deadline and event kind; evaluates to `Result<bool>`, true if inserted.
/// A macro, so the one statement compiles against either backend's connection.
macro_rules! insert_event {
    ($conn:expr, $deadline_id:expr, $facts:expr, $detail:expr, $at:expr, $on:expr) => {{
        let facts: &DeadlineFacts = $facts;
        match facts_json(facts) {
            Err(e) => Err(e),
            Ok(json) => sqlx::query(
                "INSERT INTO deadline_events (deadline_id, event, at, on_date, detail, facts) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind($deadline_id)
            .bind(facts.event())
            .bind($at.timestamp())
            .bind(day($on))
            .bind($detail)
            .bind(json)
            .execute($conn)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(StoreError::from),
        }
    }};
}

/// Facts as the JSON a `facts` column holds.
pub(super) fn facts_json(facts: &impl Serialize) -> Result<String> {
    serde_json::to_string(facts).map_err(|e| StoreError::Invalid(format!("facts: {e}")))
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn opt_date(s: Option<String>) -> Result<Option<NaiveDate>> {
    s.as_deref().map(parse_date).transpose()
}

impl Store {
    /// The obligations whose clock has started but which are not stored yet, of every kind
    /// that is stored: the query that starts each clock is chosen by the kind's [`ClockStart`].
    pub async fn obligations_to_start(&self) -> Result<Vec<ObligationStart>> {
        let mut out = Vec::new();
        for kind in ObligationKind::ALL {
            match kind.starts() {
                ClockStart::Delivered => {
                    out.extend(self.deliveries_without_obligation(kind).await?)
                }
                ClockStart::NoticeReceived => {
                    out.extend(self.notices_without_obligation(kind).await?)
                }
                ClockStart::FirstDeployment => {
                    out.extend(self.deployed_projects_without_obligation(kind).await?)
                }
                // Recomputed from the sightings by every network check, never stored.
                ClockStart::LastSeen => {}
                ClockStart::RequestSubmitted => {
                    out.extend(self.requests_without_obligation(kind).await?)
                }
            }
        }
        Ok(out)
    }

    /// VMs delivered (and not released) without an obligation of `kind`; done already if the
    /// inventory says they are deployed.
    async fn deliveries_without_obligation(
        &self,
        kind: ObligationKind,
    ) -> Result<Vec<ObligationStart>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.key, v.delivered_on, v.deployed_on, v.deployed_source, v.project_id, pr.department_id \
                 FROM vms v JOIN projects pr ON pr.id = v.project_id \
                 WHERE v.released_on IS NULL AND NOT EXISTS \
                 (SELECT 1 FROM deadlines d WHERE d.vm_key = v.key AND d.kind = $1)")
                .bind(kind.as_str()).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(ObligationStart {
                    kind,
                    vm_key: Some(r.try_get(0)?),
                    notice_id: None,
                    request_id: None,
                    project: Some(r.try_get(4)?),
                    department: r.try_get(5)?,
                    start_on: parse_date(&r.try_get::<String, _>(1)?)?,
                    done_on: opt_date(r.try_get(2)?)?,
                    done_source: r.try_get(3)?,
                }))
                .collect()
        })
    }

    /// Approved, open notices without an obligation: the period runs from the day the
    /// department receives the notice, when it is approved (at issue unless the rules require
    /// approval). Closed notices and released VMs get none.
    async fn notices_without_obligation(
        &self,
        kind: ObligationKind,
    ) -> Result<Vec<ObligationStart>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT n.id, n.vm_key, n.approved_at, v.project_id, pr.department_id, n.direction \
                 FROM notices n JOIN vms v ON v.key = n.vm_key JOIN projects pr ON pr.id = v.project_id \
                 WHERE n.approved_at IS NOT NULL AND n.closed_at IS NULL AND v.released_on IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM deadlines d WHERE d.notice_id = n.id AND d.kind = $1)")
                .bind(kind.as_str()).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                // Each notice is the clock of one kind: release advice of `release`, the
                // others of `adjustment`.
                let direction: Direction = super::stored(r.try_get::<String, _>(5)?)?;
                if direction.obligation() != kind {
                    continue;
                }
                let approved_at: i64 = r.try_get(2)?;
                let Some(received) = DateTime::from_timestamp(approved_at, 0) else { continue };
                out.push(ObligationStart {
                    kind,
                    vm_key: Some(r.try_get(1)?),
                    notice_id: Some(r.try_get(0)?),
                    request_id: None,
                    project: Some(r.try_get(3)?),
                    department: r.try_get(4)?,
                    start_on: received.with_timezone(&chrono_tz::Asia::Shanghai).date_naive(),
                    done_on: None,
                    done_source: None,
                });
            }
            Ok(out)
        })
    }

    /// Requests without an obligation of `kind`: the clock starts the day it was submitted; a
    /// request decided already (entered late by staff) is done on its decision day.
    async fn requests_without_obligation(
        &self,
        kind: ObligationKind,
    ) -> Result<Vec<ObligationStart>> {
        // (request, department, project if it exists, submitted on, decided on)
        type Row = (i64, String, Option<String>, String, Option<String>);
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT r.id, r.department_id, pr.id, r.submitted_on, r.decided_on FROM requests r \
             LEFT JOIN projects pr ON pr.id = r.project_id \
             WHERE NOT EXISTS (SELECT 1 FROM deadlines d WHERE d.request_id = r.id AND d.kind = $1)")
            .bind(kind.as_str()).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(id, department, project, submitted, decided)| {
                Ok(ObligationStart {
                    kind,
                    vm_key: None,
                    notice_id: None,
                    request_id: Some(id),
                    project,
                    department,
                    start_on: parse_date(&submitted)?,
                    done_on: opt_date(decided.clone())?,
                    done_source: decided.map(|_| "answered".to_owned()),
                })
            })
            .collect()
    }

    /// Request obligations whose request staff have decided: (deadline id, decided on).
    pub async fn requests_answered_to_close(&self) -> Result<Vec<(i64, NaiveDate)>> {
        let rows: Vec<(i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT d.id, r.decided_on FROM deadlines d JOIN requests r ON r.id = d.request_id \
             WHERE d.kind = 'request_answer' AND d.done_on IS NULL AND r.decided_on IS NOT NULL")
            .fetch_all(p).await)?;
        rows.into_iter()
            .map(|(id, on)| Ok((id, parse_date(&on)?)))
            .collect()
    }

    /// Projects with a deployed VM but no obligation of `kind`: the clock starts at the first
    /// deployment, and the obligation names that VM; a project filed already is done then.
    async fn deployed_projects_without_obligation(
        &self,
        kind: ObligationKind,
    ) -> Result<Vec<ObligationStart>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT pr.id, pr.department_id, pr.filed_on, MIN(v.deployed_on) \
                 FROM projects pr JOIN vms v ON v.project_id = pr.id \
                 WHERE v.deployed_on IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM deadlines d WHERE d.project_id = pr.id AND d.kind = $1) \
                 GROUP BY pr.id, pr.department_id, pr.filed_on")
                .bind(kind.as_str()).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let project: String = r.try_get(0)?;
                let first: String = r.try_get(3)?;
                let first_vm: Option<(i64,)> = sqlx::query_as(
                    "SELECT key FROM vms WHERE project_id = $1 AND deployed_on = $2 ORDER BY key LIMIT 1")
                    .bind(&project).bind(&first).fetch_optional(p).await?;
                let filed = opt_date(r.try_get(2)?)?;
                out.push(ObligationStart {
                    kind,
                    vm_key: first_vm.map(|(k,)| k),
                    notice_id: None,
                    request_id: None,
                    project: Some(project),
                    department: r.try_get(1)?,
                    start_on: parse_date(&first)?,
                    done_on: filed,
                    done_source: filed.map(|_| "inventory".to_owned()),
                });
            }
            Ok(out)
        })
    }

    /// Creates deadlines (a second one for the same VM deployment or notice is skipped) with a
    /// `created` event each. Returns how many were created.
    pub async fn create_deadlines(
        &self,
        new: &[NewDeadline],
        at: DateTime<Utc>,
        on: NaiveDate,
    ) -> Result<u64> {
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut created = 0;
            for d in new {
                let s = &d.start;
                let id: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO deadlines (kind, vm_key, notice_id, project_id, department_id, start_on, \
                     working_days, due_on, provisional, done_on, done_source, created_at, request_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT DO NOTHING RETURNING id")
                    .bind(s.kind.as_str()).bind(s.vm_key).bind(s.notice_id).bind(&s.project)
                    .bind(&s.department).bind(day(s.start_on))
                    .bind(i64::from(d.working_days)).bind(day(d.due_on)).bind(d.provisional)
                    .bind(s.done_on.map(day)).bind(&s.done_source).bind(now).bind(s.request_id)
                    .fetch_optional(&mut *tx).await?;
                let Some((id,)) = id else { continue };
                created += 1;
                let facts = DeadlineFacts::Created {
                    working_days: d.working_days,
                    start_on: s.start_on,
                    due_on: d.due_on,
                    provisional: d.provisional,
                };
                // Created and done sentences name neither kind nor VM.
                insert_event!(&mut *tx, id, &facts, &facts.english("", ""), at, on)?;
                if let Some(done) = s.done_on {
                    let facts = DeadlineFacts::Done {
                        done_on: done,
                        source: s.done_source.clone().unwrap_or_else(|| "inventory".into()),
                    };
                    insert_event!(&mut *tx, id, &facts, &facts.english("", ""), at, on)?;
                }
            }
            tx.commit().await?;
            Ok(created)
        })
    }

    /// Open deadlines whose due date was provisional: recomputed when calendar years are added.
    pub async fn provisional_open_deadlines(&self) -> Result<Vec<(i64, NaiveDate, i64)>> {
        on_pool!(self, p => {
            let rows = sqlx::query("SELECT id, start_on, working_days FROM deadlines WHERE provisional AND done_on IS NULL")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get(0)?, parse_date(&r.try_get::<String, _>(1)?)?, r.try_get(2)?)))
                .collect()
        })
    }

    pub async fn update_due(&self, id: i64, due: NaiveDate, provisional: bool) -> Result<()> {
        on_pool!(self, p => sqlx::query("UPDATE deadlines SET due_on = $2, provisional = $3 WHERE id = $1")
            .bind(id).bind(day(due)).bind(provisional).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Every deadline, ordered by due date then id.
    pub async fn deadlines(&self) -> Result<Vec<DeadlineRow>> {
        self.deadlines_where(None, None).await
    }

    /// [`Store::deadlines`] of one department's VMs (`None`: all).
    pub async fn deadlines_in(&self, department: Option<&str>) -> Result<Vec<DeadlineRow>> {
        self.deadlines_where(None, department).await
    }

    /// One deadline by id.
    pub async fn deadline(&self, id: i64) -> Result<Option<DeadlineRow>> {
        Ok(self
            .deadlines_where(Some(id), None)
            .await?
            .into_iter()
            .next())
    }

    /// Deadlines, all or the one with `id`, ordered by due date then id.
    async fn deadlines_where(
        &self,
        id: Option<i64>,
        department: Option<&str>,
    ) -> Result<Vec<DeadlineRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT d.id, d.kind, d.vm_key, v.id, d.project_id, d.department_id, d.notice_id, d.start_on, \
                 d.working_days, d.due_on, d.provisional, d.done_on, d.done_source, d.request_id \
                 FROM deadlines d LEFT JOIN vms v ON v.key = d.vm_key \
                 WHERE ($1 IS NULL OR d.id = $1) AND ($2 IS NULL OR d.department_id = $2) \
                 ORDER BY d.due_on, d.id")
                .bind(id).bind(department).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| {
                    let kind: String = r.try_get(1)?;
                    Ok(DeadlineRow {
                        id: r.try_get(0)?,
                        kind: super::stored(kind)?,
                        vm_key: r.try_get(2)?,
                        vm: r.try_get(3)?,
                        project: r.try_get(4)?,
                        department: r.try_get(5)?,
                        notice_id: r.try_get(6)?,
                        start_on: parse_date(&r.try_get::<String, _>(7)?)?,
                        working_days: r.try_get(8)?,
                        due_on: parse_date(&r.try_get::<String, _>(9)?)?,
                        provisional: r.try_get(10)?,
                        done_on: opt_date(r.try_get(11)?)?,
                        done_source: r.try_get(12)?,
                        request_id: r.try_get(13)?,
                    })
                })
                .collect()
        })
    }

    /// The timelines of all deadlines, in order.
    pub async fn deadline_events(&self) -> Result<Vec<DeadlineEvent>> {
        on_pool!(self, p => {
            let rows = sqlx::query("SELECT deadline_id, event, on_date, detail FROM deadline_events ORDER BY deadline_id, id")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(DeadlineEvent {
                    deadline_id: r.try_get(0)?,
                    event: r.try_get(1)?,
                    on: r.try_get(2)?,
                    detail: r.try_get(3)?,
                }))
                .collect()
        })
    }

    /// Records the event `facts` describe for a deadline unless it was recorded before; true if
    /// this call did. `detail` is its English sentence. A reminder or escalation also writes its
    /// e-mail job in the same transaction.
    pub async fn record_deadline_event(
        &self,
        deadline_id: i64,
        facts: &DeadlineFacts,
        detail: &str,
        at: DateTime<Utc>,
        on: NaiveDate,
        to_center: bool,
    ) -> Result<bool> {
        let now = now_secs();
        let event = facts.event();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted = insert_event!(&mut *tx, deadline_id, facts, detail, at, on)?;
            // The e-mail that announces a reminder or an escalation is written with it.
            if inserted && (event == "reminder" || event == "escalation") {
                sqlx::query(
                    "INSERT INTO outbox (kind, department_id, deadline_id, state, attempts, next_attempt_at, created_at) \
                     SELECT $2, CASE WHEN $4 THEN NULL ELSE d.department_id END, d.id, 'pending', 0, $3, $3 \
                     FROM deadlines d WHERE d.id = $1")
                    .bind(deadline_id).bind(event).bind(now).bind(to_center).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// Marks a deadline done (first completion wins) and records the event; for an adjustment,
    /// closes its notice too. True if this call completed it.
    pub async fn complete_deadline(
        &self,
        deadline_id: i64,
        done_on: NaiveDate,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query("UPDATE deadlines SET done_on = $2, done_source = $3 WHERE id = $1 AND done_on IS NULL")
                .bind(deadline_id).bind(day(done_on)).bind(source)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if done {
                sqlx::query("UPDATE notices SET closed_at = $2, closed_reason = $3 WHERE closed_at IS NULL \
                             AND id = (SELECT notice_id FROM deadlines WHERE id = $1)")
                    .bind(deadline_id).bind(at.timestamp()).bind(format!("completed ({source})"))
                    .execute(&mut *tx).await?;
                let facts = DeadlineFacts::Done { done_on, source: source.to_owned() };
                insert_event!(&mut *tx, deadline_id, &facts, &facts.english("", ""), at, done_on)?;
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The deadline of a notice, if it has one yet.
    pub async fn deadline_of_notice(&self, notice_id: i64) -> Result<Option<i64>> {
        let row: Option<(i64,)> = on_pool!(self, p => sqlx::query_as("SELECT id FROM deadlines WHERE notice_id = $1")
            .bind(notice_id).fetch_optional(p).await)?;
        Ok(row.map(|(id,)| id))
    }

    /// Records that `vm` is deployed. A confirmation replaces an inferred date; otherwise the
    /// first record stands. Returns the VM's deployment deadline id if it is not done yet.
    pub async fn mark_deployed(
        &self,
        vm: &VmId,
        on: NaiveDate,
        source: &str,
    ) -> Result<Option<i64>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(i64, String, Option<String>)> = sqlx::query_as("SELECT key, delivered_on, deployed_source FROM vms WHERE id = $1")
                .bind(vm.as_str()).fetch_optional(&mut *tx).await?;
            let Some((key, delivered, current_source)) = row else {
                return Err(StoreError::Invalid(format!("no VM with id {vm}")));
            };
            if on < parse_date(&delivered)? {
                return Err(StoreError::Invalid(format!("{vm} cannot be deployed on {on}, before its delivery on {delivered}")));
            }
            let replace = current_source.is_none() || (source == "confirmed" && current_source.as_deref() == Some("inferred"));
            if replace {
                sqlx::query("UPDATE vms SET deployed_on = $2, deployed_source = $3 WHERE key = $1")
                    .bind(key).bind(day(on)).bind(source).execute(&mut *tx).await?;
                if current_source.as_deref() == Some("inferred") {
                    // The confirmed date replaces the inferred one on the deadline as well.
                    sqlx::query("UPDATE deadlines SET done_on = $2, done_source = $3 WHERE vm_key = $1 AND kind = 'deployment'")
                        .bind(key).bind(day(on)).bind(source).execute(&mut *tx).await?;
                }
            }
            let open: Option<(i64,)> = sqlx::query_as("SELECT id FROM deadlines WHERE vm_key = $1 AND kind = 'deployment' AND done_on IS NULL")
                .bind(key).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            Ok(open.map(|(id,)| id))
        })
    }

    /// Open deployment deadlines of VMs with no deployment record: (deadline id, vm id, vm key, delivered_on).
    pub async fn undeployed_vms(&self) -> Result<Vec<(i64, VmId, i64, NaiveDate)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT d.id, v.id, v.key, v.delivered_on FROM deadlines d JOIN vms v ON v.key = d.vm_key \
                 WHERE d.kind = 'deployment' AND d.done_on IS NULL AND v.deployed_on IS NULL AND v.released_on IS NULL")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok((
                    r.try_get(0)?,
                    VmId::try_from(r.try_get::<String, _>(1)?).map_err(|e| StoreError::Invalid(format!("stored {e}")))?,
                    r.try_get(2)?,
                    parse_date(&r.try_get::<String, _>(3)?)?,
                )))
                .collect()
        })
    }

    /// Filing obligations not done whose project is filed (the inventory's `filed_on`, or a
    /// staff action): (deadline id, filed_on).
    pub async fn filings_to_close(&self) -> Result<Vec<(i64, NaiveDate)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT d.id, pr.filed_on FROM deadlines d JOIN projects pr ON pr.id = d.project_id \
                 WHERE d.kind = 'filing' AND d.done_on IS NULL AND pr.filed_on IS NOT NULL")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get(0)?, parse_date(&r.try_get::<String, _>(1)?)?)))
                .collect()
        })
    }

    /// Records that `project` was filed on `on` (staff, art. 10). Returns its filing obligation
    /// if that is not done yet. Filing twice is refused with the first date.
    pub async fn file_project(&self, project: &str, on: NaiveDate) -> Result<Option<i64>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(Option<String>,)> = sqlx::query_as("SELECT filed_on FROM projects WHERE id = $1")
                .bind(project).fetch_optional(&mut *tx).await?;
            match row {
                None => return Err(StoreError::Invalid(format!("no project {project}"))),
                Some((Some(filed),)) => {
                    return Err(StoreError::Invalid(format!("project {project} was already filed on {filed}")));
                }
                Some((None,)) => {}
            }
            sqlx::query("UPDATE projects SET filed_on = $2 WHERE id = $1")
                .bind(project).bind(day(on)).execute(&mut *tx).await?;
            let open: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM deadlines WHERE project_id = $1 AND kind = 'filing' AND done_on IS NULL")
                .bind(project).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            Ok(open.map(|(id,)| id))
        })
    }

    /// Deployment deadlines not done whose VM has a deployment record (set after the deadline
    /// was created): (deadline id, deployed_on, source).
    pub async fn deployments_to_close(&self) -> Result<Vec<(i64, NaiveDate, String)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT d.id, v.deployed_on, v.deployed_source FROM deadlines d JOIN vms v ON v.key = d.vm_key \
                 WHERE d.kind = 'deployment' AND d.done_on IS NULL AND v.deployed_on IS NOT NULL")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok((
                    r.try_get(0)?,
                    parse_date(&r.try_get::<String, _>(1)?)?,
                    r.try_get::<Option<String>, _>(2)?.unwrap_or_else(|| "inventory".into()),
                )))
                .collect()
        })
    }

    /// Sample instants with CPU above `cpu_above` for one VM in `from..=to` (Unix seconds), from
    /// the head and the compacted blocks alike.
    pub async fn busy_sample_times(
        &self,
        vm_key: i64,
        from: i64,
        to: i64,
        cpu_above: f64,
    ) -> Result<Vec<i64>> {
        Ok(self
            .raw_samples(vm_key, from, to + 1)
            .await?
            .into_iter()
            .filter(|s| s.cpu.percent() > cpu_above)
            .map(|s| s.ts)
            .collect())
    }

    /// Adjustment deadlines not done, with the VM's allocation now and at the notice.
    pub async fn open_adjustments(&self) -> Result<Vec<OpenAdjustment>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT d.id, n.id, v.key, n.resource, n.direction, n.allocation, v.vcpus, v.memory_gib, v.disk_gib, \
                 a.vcpus, a.memory_bytes, a.disk_bytes \
                 FROM deadlines d JOIN notices n ON n.id = d.notice_id JOIN vms v ON v.key = d.vm_key \
                 LEFT JOIN agents a ON a.vm_key = v.key \
                 WHERE d.kind = 'adjustment' AND d.done_on IS NULL")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| {
                    let agent_vcpus: Option<i64> = r.try_get(9)?;
                    let agent_mem: Option<i64> = r.try_get(10)?;
                    let agent_disk: Option<i64> = r.try_get(11)?;
                    Ok(OpenAdjustment {
                        deadline_id: r.try_get(0)?,
                        notice_id: r.try_get(1)?,
                        vm_key: r.try_get(2)?,
                        resource: r.try_get(3)?,
                        direction: r.try_get(4)?,
                        baseline_json: r.try_get(5)?,
                        vcpus: r.try_get(6)?,
                        memory_gib: r.try_get(7)?,
                        disk_gib: r.try_get(8)?,
                        agent: match (agent_vcpus, agent_mem, agent_disk) {
                            (Some(c), Some(m), Some(d)) => Some((c, m, d)),
                            _ => None,
                        },
                    })
                })
                .collect()
        })
    }

    /// For each VM, the last day an adjustment of it was completed (not by release).
    pub async fn last_adjustment_done(&self) -> Result<std::collections::HashMap<i64, NaiveDate>> {
        on_pool!(self, p => {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT vm_key, MAX(done_on) FROM deadlines WHERE kind = 'adjustment' AND done_on IS NOT NULL \
                 AND done_source <> 'released' GROUP BY vm_key")
                .fetch_all(p).await?;
            rows.into_iter().map(|(k, d)| Ok((k, parse_date(&d)?))).collect()
        })
    }

    /// A department asks to release a VM (the system is no longer used).
    pub async fn request_release(&self, vm: &VmId, on: NaiveDate, reason: &str) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE vms SET release_requested_on = $2, release_reason = $3 WHERE id = $1 AND released_on IS NULL")
            .bind(vm.as_str()).bind(day(on)).bind(reason).execute(p).await.map(|r| r.rows_affected()))?;
        if n == 0 {
            let exists: Option<(i64,)> = on_pool!(self, p => sqlx::query_as("SELECT key FROM vms WHERE id = $1")
                .bind(vm.as_str()).fetch_optional(p).await)?;
            return Err(StoreError::Invalid(if exists.is_some() {
                format!("{vm} is already released")
            } else {
                format!("no VM with id {vm}")
            }));
        }
        Ok(())
    }

    /// Staff confirm a release: the VM stops being evaluated, its open notices are closed and
    /// their deadlines done (source `released`). Returns the deadlines closed.
    pub async fn confirm_release(
        &self,
        vm: &VmId,
        on: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let key: Option<(i64,)> = sqlx::query_as("SELECT key FROM vms WHERE id = $1")
                .bind(vm.as_str()).fetch_optional(&mut *tx).await?;
            let Some((key,)) = key else {
                return Err(StoreError::Invalid(format!("no VM with id {vm}")));
            };
            sqlx::query("UPDATE vms SET released_on = $2, release_requested_on = COALESCE(release_requested_on, $2) WHERE key = $1")
                .bind(key).bind(day(on)).execute(&mut *tx).await?;
            sqlx::query("UPDATE notices SET closed_at = $2, closed_reason = 'released' WHERE vm_key = $1 AND closed_at IS NULL")
                .bind(key).bind(at.timestamp()).execute(&mut *tx).await?;
            let open: Vec<(i64,)> = sqlx::query_as("SELECT id FROM deadlines WHERE vm_key = $1 AND done_on IS NULL")
                .bind(key).fetch_all(&mut *tx).await?;
            for (id,) in &open {
                sqlx::query("UPDATE deadlines SET done_on = $2, done_source = 'released' WHERE id = $1")
                    .bind(id).bind(day(on)).execute(&mut *tx).await?;
                let facts = DeadlineFacts::Released { released_on: on };
                insert_event!(&mut *tx, *id, &facts, &facts.english("", ""), at, on)?;
            }
            sqlx::query("UPDATE alerts SET cleared_at = $2 WHERE vm_key = $1 AND cleared_at IS NULL")
                .bind(key).bind(at.timestamp()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(open.len() as u64)
        })
    }

    /// Deployed VMs that are not released, with when their agent was last heard from:
    /// (vm key, deployed_on, last_collected_at).
    pub async fn deployed_vms_last_heard(&self) -> Result<Vec<(i64, NaiveDate, Option<i64>)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.key, v.deployed_on, a.last_collected_at FROM vms v LEFT JOIN agents a ON a.vm_key = v.key \
                 WHERE v.deployed_on IS NOT NULL AND v.released_on IS NULL")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok((r.try_get(0)?, parse_date(&r.try_get::<String, _>(1)?)?, r.try_get(2)?)))
                .collect()
        })
    }

    /// Raises the alert `facts` describe unless one of its kind is open for the VM, with its
    /// English sentence and its facts; true if raised now.
    pub async fn raise_alert(
        &self,
        vm_key: i64,
        facts: &AlertFacts,
        at: DateTime<Utc>,
        on: NaiveDate,
    ) -> Result<bool> {
        let json = facts_json(facts)?;
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO alerts (vm_key, kind, raised_at, raised_on, detail, facts) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING")
            .bind(vm_key).bind(facts.kind()).bind(at.timestamp()).bind(day(on)).bind(facts.english()).bind(&json)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Clears the open alert of a kind for a VM (e.g. the agent spoke again).
    pub async fn clear_alert(&self, vm_key: i64, kind: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET cleared_at = $3 WHERE vm_key = $1 AND kind = $2 AND cleared_at IS NULL")
            .bind(vm_key).bind(kind).bind(at.timestamp()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// All alerts, open first, newest first.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>> {
        self.alerts_in(None).await
    }

    /// [`Store::alerts`] of one department's VMs (`None`: all).
    pub async fn alerts_in(&self, department: Option<&str>) -> Result<Vec<AlertRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT a.id, v.id, pr.department_id, a.kind, a.raised_on, a.detail, a.cleared_at IS NULL \
                 FROM alerts a JOIN vms v ON v.key = a.vm_key JOIN projects pr ON pr.id = v.project_id \
                 WHERE $1 IS NULL OR pr.department_id = $1 \
                 ORDER BY a.cleared_at IS NULL DESC, a.id DESC")
                .bind(department).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(AlertRow {
                    id: r.try_get(0)?,
                    vm: r.try_get(1)?,
                    department: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    raised_on: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    open: r.try_get(6)?,
                }))
                .collect()
        })
    }
}

/// A staff decision on a contested notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContestDecision {
    /// The advice stands: the department requests the release by the due date.
    Upheld,
    /// The advice is withdrawn: the notice closes, and for release advice the VM is not advised
    /// again until it is seen in use.
    Withdrawn,
}

impl ContestDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ContestDecision::Upheld => "upheld",
            ContestDecision::Withdrawn => "withdrawn",
        }
    }
}

impl Store {
    /// Release obligations the evidence shows answered: the VM's release was requested (done on
    /// that day, or the day the clock started if the request came first), staff withdrew the
    /// advice, or an evaluation saw the VM in use (done on the day the notice closed).
    /// (deadline id, done on, source).
    pub async fn releases_to_close(&self) -> Result<Vec<(i64, NaiveDate, &'static str)>> {
        // (deadline, clock start, release requested on, notice closed reason, closed at)
        type Row = (i64, String, Option<String>, Option<String>, Option<i64>);
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT d.id, d.start_on, v.release_requested_on, n.closed_reason, n.closed_at \
             FROM deadlines d JOIN vms v ON v.key = d.vm_key JOIN notices n ON n.id = d.notice_id \
             WHERE d.kind = 'release' AND d.done_on IS NULL \
             AND (v.release_requested_on IS NOT NULL OR n.closed_reason IN ('withdrawn', 'in_use'))")
            .fetch_all(p).await)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, start, requested, reason, closed_at) in rows {
            let start = parse_date(&start)?;
            match (requested, reason.as_deref(), closed_at) {
                (Some(requested), _, _) => {
                    out.push((id, parse_date(&requested)?.max(start), "release_requested"))
                }
                (None, Some(reason @ ("withdrawn" | "in_use")), Some(at)) => {
                    let on = DateTime::from_timestamp(at, 0)
                        .map_or(start, crate::core::calendar::shanghai_day);
                    let source = if reason == "withdrawn" {
                        "withdrawn"
                    } else {
                        "seen_in_use"
                    };
                    out.push((id, on.max(start), source));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Notices with a contest staff have not decided yet.
    pub async fn undecided_contests(&self) -> Result<std::collections::HashSet<i64>> {
        let rows: Vec<(i64,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT DISTINCT notice_id FROM notice_contests WHERE decision IS NULL")
            .fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Records staff's decision on the undecided contests of an open notice, in one transaction;
    /// a withdrawal closes the notice (reason `withdrawn`) and, for release advice, holds the VM
    /// back from new advice until it is seen in use. False if the notice has no undecided
    /// contest or is closed.
    pub async fn decide_contest(
        &self,
        notice_id: i64,
        decision: ContestDecision,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let open: Option<(i64, String)> = sqlx::query_as(
                "SELECT vm_key, direction FROM notices WHERE id = $1 AND closed_at IS NULL")
                .bind(notice_id).fetch_optional(&mut *tx).await?;
            let Some((vm_key, direction)) = open else { return Ok(false) };
            let decided = sqlx::query(
                "UPDATE notice_contests SET decision = $2, decided_by = $3, decided_at = $4, decision_reason = $5 \
                 WHERE notice_id = $1 AND decision IS NULL")
                .bind(notice_id).bind(decision.as_str()).bind(by).bind(at.timestamp()).bind(reason)
                .execute(&mut *tx).await?.rows_affected();
            if decided == 0 {
                return Ok(false);
            }
            if decision == ContestDecision::Withdrawn {
                sqlx::query("UPDATE notices SET closed_at = $2, closed_reason = 'withdrawn' WHERE id = $1")
                    .bind(notice_id).bind(at.timestamp()).execute(&mut *tx).await?;
                if direction == crate::core::domain::Direction::Release.as_str() {
                    sqlx::query(
                        "INSERT INTO release_withdrawals (vm_key, notice_id, withdrawn_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (vm_key) DO UPDATE SET notice_id = excluded.notice_id, withdrawn_at = excluded.withdrawn_at")
                        .bind(vm_key).bind(notice_id).bind(at.timestamp()).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}

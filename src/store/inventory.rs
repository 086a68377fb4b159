//! Inventory rows: departments, projects, VMs with their allocation history, and agent tokens.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::Row;

use super::{Backend, BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::domain::{DepartmentId, ProjectId, VmId};
use crate::core::inventory::Inventory;

/// A VM as the evaluation and the reports need it.
#[derive(Debug, Clone, PartialEq)]
pub struct VmRow {
    pub key: i64,
    pub id: VmId,
    pub project: ProjectId,
    pub department: DepartmentId,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    pub delivered_on: NaiveDate,
    pub deployed_on: Option<NaiveDate>,
    pub released_on: Option<NaiveDate>,
    /// A release was requested (art. 13), not yet confirmed by staff.
    pub release_requested_on: Option<NaiveDate>,
}

/// What a VM's agent last reported about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AgentRow {
    pub vm: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub last_seq: i64,
    pub last_collected_at: i64,
    pub last_seen_at: i64,
    pub vcpus: i64,
    pub memory_bytes: i64,
    pub disk_bytes: i64,
}

/// Counts of what an inventory import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InventorySummary {
    pub departments: usize,
    pub projects: usize,
    pub vms_added: usize,
    pub vms_updated: usize,
    pub allocations_changed: usize,
}

/// A project as [`Store::projects`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectListing {
    pub id: String,
    pub name: String,
    pub department: String,
    pub department_name: String,
    /// When its system was filed (art. 10), if it has been.
    pub filed_on: Option<NaiveDate>,
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| StoreError::Invalid(format!("stored date {s:?} is malformed: {e}")))
}

fn parse_id<T: TryFrom<String, Error = crate::core::domain::InvalidValue>>(s: String) -> Result<T> {
    T::try_from(s).map_err(|e| StoreError::Invalid(format!("stored {e}")))
}

impl Store {
    /// Writes an inventory in one transaction: departments, projects and VMs are created or
    /// updated by id; an allocation change is recorded in the VM's history. References to
    /// departments and projects not in the file must already be stored, or nothing is written.
    pub async fn apply_inventory(&self, inv: &Inventory) -> Result<InventorySummary> {
        let file_departments: HashSet<&str> =
            inv.departments.iter().map(|d| d.id.as_str()).collect();
        let file_projects: HashSet<&str> = inv.projects.iter().map(|p| p.id.as_str()).collect();
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for p in &inv.projects {
                if !file_departments.contains(p.department.as_str()) {
                    let known: Option<(String,)> = sqlx::query_as("SELECT id FROM departments WHERE id = $1")
                        .bind(p.department.as_str()).fetch_optional(&mut *tx).await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid(format!(
                            "project {}: department {} is neither in the file nor in the inventory",
                            p.id, p.department
                        )));
                    }
                }
            }
            for v in &inv.vms {
                if !file_projects.contains(v.project.as_str()) {
                    let known: Option<(String,)> = sqlx::query_as("SELECT id FROM projects WHERE id = $1")
                        .bind(v.project.as_str()).fetch_optional(&mut *tx).await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid(format!(
                            "vm {}: project {} is neither in the file nor in the inventory",
                            v.id, v.project
                        )));
                    }
                }
            }
            let mut summary = InventorySummary::default();
            if let Some(center) = &inv.center {
                for (key, list) in [("emails", &center.emails), ("finance_emails", &center.finance_emails)] {
                    let json = serde_json::to_string(list).map_err(|e| StoreError::Invalid(e.to_string()))?;
                    sqlx::query("INSERT INTO center_settings (key, value) VALUES ($1, $2) \
                                 ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                        .bind(key).bind(json).execute(&mut *tx).await?;
                }
            }
            for d in &inv.departments {
                let emails = serde_json::to_string(&d.emails).map_err(|e| StoreError::Invalid(e.to_string()))?;
                sqlx::query("INSERT INTO departments (id, name, emails) VALUES ($1, $2, $3) \
                             ON CONFLICT (id) DO UPDATE SET name = excluded.name, emails = excluded.emails")
                    .bind(d.id.as_str()).bind(&d.name).bind(emails).execute(&mut *tx).await?;
                summary.departments += 1;
            }
            for p in &inv.projects {
                sqlx::query("INSERT INTO projects (id, name, department_id, filed_on) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                             department_id = excluded.department_id, filed_on = excluded.filed_on")
                    .bind(p.id.as_str()).bind(&p.name).bind(p.department.as_str())
                    .bind(p.filed_on.map(date_text)).execute(&mut *tx).await?;
                summary.projects += 1;
            }
            for v in &inv.vms {
                let existing: Option<(i64, i64, f64, f64)> = sqlx::query_as(
                    "SELECT key, vcpus, memory_gib, disk_gib FROM vms WHERE id = $1")
                    .bind(v.id.as_str()).fetch_optional(&mut *tx).await?;
                let vcpus = i64::from(v.vcpus);
                // Stored as written (the instance) or in the canonical form (the selector); the
                // file was checked by `Inventory::parse`.
                let prometheus_instance = v.prometheus_instance.clone();
                let prometheus_selector = v.prometheus()
                    .map_err(|e| StoreError::Invalid(format!("vm {}: {e}", v.id)))?
                    .filter(|_| v.prometheus_selector.is_some())
                    .map(|s| s.to_string());
                let (key, changed) = match existing {
                    None => {
                        let (key,): (i64,) = sqlx::query_as(
                            "INSERT INTO vms (id, project_id, vcpus, memory_gib, disk_gib, delivered_on, \
                             deployed_on, deployed_source, updated_at, prometheus_instance, prometheus_selector) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING key")
                            .bind(v.id.as_str()).bind(v.project.as_str()).bind(vcpus)
                            .bind(v.memory_gib).bind(v.disk_gib).bind(date_text(v.delivered_on))
                            .bind(v.deployed_on.map(date_text))
                            .bind(v.deployed_on.map(|_| "inventory"))
                            .bind(now).bind(&prometheus_instance).bind(&prometheus_selector)
                            .fetch_one(&mut *tx).await?;
                        summary.vms_added += 1;
                        (key, true)
                    }
                    Some((key, old_vcpus, old_mem, old_disk)) => {
                        sqlx::query(
                            "UPDATE vms SET project_id = $2, vcpus = $3, memory_gib = $4, disk_gib = $5, \
                             delivered_on = $6, \
                             deployed_on = COALESCE($7, deployed_on), \
                             deployed_source = CASE WHEN $7 IS NULL THEN deployed_source ELSE 'inventory' END, \
                             updated_at = $8, prometheus_instance = $9, prometheus_selector = $10 WHERE key = $1")
                            .bind(key).bind(v.project.as_str()).bind(vcpus).bind(v.memory_gib)
                            .bind(v.disk_gib).bind(date_text(v.delivered_on))
                            .bind(v.deployed_on.map(date_text)).bind(now)
                            .bind(&prometheus_instance).bind(&prometheus_selector)
                            .execute(&mut *tx).await?;
                        summary.vms_updated += 1;
                        (key, old_vcpus != vcpus || old_mem != v.memory_gib || old_disk != v.disk_gib)
                    }
                };
                if changed {
                    sqlx::query("INSERT INTO allocations (vm_key, recorded_at, vcpus, memory_gib, disk_gib, source) \
                                 VALUES ($1, $2, $3, $4, $5, 'inventory')")
                        .bind(key).bind(now).bind(vcpus).bind(v.memory_gib).bind(v.disk_gib)
                        .execute(&mut *tx).await?;
                    summary.allocations_changed += 1;
                }
            }
            tx.commit().await?;
            Ok(summary)
        })
    }

    /// All VMs with their project and department, ordered by id.
    pub async fn vms(&self) -> Result<Vec<VmRow>> {
        let rows = on_pool!(self, pool => {
            sqlx::query(
                "SELECT v.key, v.id, v.project_id, p.department_id, v.vcpus, v.memory_gib, v.disk_gib, \
                 v.delivered_on, v.deployed_on, v.released_on, v.release_requested_on \
                 FROM vms v JOIN projects p ON p.id = v.project_id ORDER BY v.id")
                .fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok(VmRow {
                    key: r.try_get(0)?,
                    id: parse_id(r.try_get(1)?)?,
                    project: parse_id(r.try_get(2)?)?,
                    department: parse_id(r.try_get(3)?)?,
                    vcpus: r.try_get(4)?,
                    memory_gib: r.try_get(5)?,
                    disk_gib: r.try_get(6)?,
                    delivered_on: parse_date(&r.try_get::<String, _>(7)?)?,
                    deployed_on: r.try_get::<Option<String>, _>(8)?.as_deref().map(parse_date).transpose()?,
                    released_on: r.try_get::<Option<String>, _>(9)?.as_deref().map(parse_date).transpose()?,
                    release_requested_on: r.try_get::<Option<String>, _>(10)?.as_deref().map(parse_date).transpose()?,
                }))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(rows)
    }

    /// Every project with its department, ordered by id.
    pub async fn projects(&self) -> Result<Vec<ProjectListing>> {
        let rows: Vec<(String, String, String, String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT p.id, p.name, p.department_id, d.name, p.filed_on FROM projects p \
             JOIN departments d ON d.id = p.department_id ORDER BY p.id")
            .fetch_all(p).await)?;
        rows.into_iter()
            .map(|(id, name, department, department_name, filed)| {
                Ok(ProjectListing {
                    id,
                    name,
                    department,
                    department_name,
                    filed_on: filed.as_deref().map(parse_date).transpose()?,
                })
            })
            .collect()
    }

    /// The ids of all departments.
    pub async fn department_ids(&self) -> Result<HashSet<String>> {
        let rows: Vec<(String,)> =
            on_pool!(self, p => sqlx::query_as("SELECT id FROM departments").fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// VM id -> internal key, for importers that resolve many rows.
    pub async fn vm_keys(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> =
            on_pool!(self, p => sqlx::query_as("SELECT id, key FROM vms").fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// Stores the hash of a new agent token for `vm`. Older tokens of the VM stay valid until
    /// revoked, so an agent can be rolled over without a gap.
    pub async fn add_agent_token(&self, vm: &VmId, token_hash: &str) -> Result<()> {
        let now = now_secs();
        let inserted = on_pool!(self, p => sqlx::query(
            "INSERT INTO agent_tokens (token_hash, vm_key, created_at) SELECT $1, key, $2 FROM vms WHERE id = $3")
            .bind(token_hash).bind(now).bind(vm.as_str()).execute(p).await.map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Err(StoreError::Invalid(format!("no VM with id {vm}")));
        }
        Ok(())
    }

    /// Revokes every token of `vm`; returns how many were revoked.
    pub async fn revoke_agent_tokens(&self, vm: &VmId) -> Result<u64> {
        let now = now_secs();
        let done = on_pool!(self, p => sqlx::query(
            "UPDATE agent_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND vm_key = (SELECT key FROM vms WHERE id = $2)")
            .bind(now).bind(vm.as_str()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// The VM (key, id) a token hash belongs to, if the token is valid.
    pub async fn vm_for_token(&self, token_hash: &str) -> Result<Option<(i64, String)>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT v.key, v.id FROM agent_tokens t JOIN vms v ON v.key = t.vm_key \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL")
            .bind(token_hash).fetch_optional(p).await)?)
    }

    /// Which of `token_hashes` are valid, each with its VM's key: one statement for them all
    /// (ingest's group commit checks its batches' tokens so).
    pub async fn valid_agent_tokens(&self, token_hashes: &[&str]) -> Result<HashMap<String, i64>> {
        const VALID: &str = "SELECT t.token_hash, t.vm_key FROM agent_tokens t \
             JOIN vms v ON v.key = t.vm_key WHERE t.revoked_at IS NULL AND t.token_hash ";
        let rows: Vec<(String, i64)> = match &self.backend {
            Backend::Sqlite(p) => {
                let hashes = serde_json::to_string(token_hashes)
                    .map_err(|e| StoreError::Invalid(format!("token hashes: {e}")))?;
                sqlx::query_as(&format!("{VALID}IN (SELECT value FROM json_each($1))"))
                    .bind(hashes)
                    .fetch_all(p)
                    .await?
            }
            Backend::Postgres(p) => {
                sqlx::query_as(&format!("{VALID}= ANY($1::text[])"))
                    .bind(token_hashes)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows.into_iter().collect())
    }

    /// What every agent last said, ordered by VM id.
    pub async fn agents(&self) -> Result<Vec<AgentRow>> {
        self.agents_in(None).await
    }

    /// [`Store::agents`] of one department's VMs (`None`: all).
    pub async fn agents_in(&self, department: Option<&str>) -> Result<Vec<AgentRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
            "SELECT v.id, a.hostname, a.os, a.agent_version, a.last_seq, a.last_collected_at, \
             a.last_seen_at, a.vcpus, a.memory_bytes, a.disk_bytes \
             FROM agents a JOIN vms v ON v.key = a.vm_key JOIN projects pr ON pr.id = v.project_id \
             WHERE $1 IS NULL OR pr.department_id = $1 ORDER BY v.id")
            .bind(department).fetch_all(p).await?;
            rows.into_iter()
            .map(|r| {
                Ok(AgentRow {
                    vm: r.try_get(0)?,
                    hostname: r.try_get(1)?,
                    os: r.try_get(2)?,
                    agent_version: r.try_get(3)?,
                    last_seq: r.try_get(4)?,
                    last_collected_at: r.try_get(5)?,
                    last_seen_at: r.try_get(6)?,
                    vcpus: r.try_get(7)?,
                    memory_bytes: r.try_get(8)?,
                    disk_bytes: r.try_get(9)?,
                })
            })
            .collect()
        })
    }
}

//! Kubernetes workloads written as inventory: one VM-like row per workload, its allocation
//! history, a synthetic agent row and one sample per discovery pass, all in one transaction.

use chrono::{DateTime, Utc};

use super::samples::SampleWriter;
use super::{BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::domain::{DepartmentId, ProjectId, VmId};
use crate::core::samples::{Hundredths, Sample, SampleRow};

/// A workload as the store keeps it (mapped and summed by `kubernetes::model`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredVm {
    pub id: VmId,
    pub department: DepartmentId,
    pub project: ProjectId,
    pub vcpus: i64,
    pub memory_gib: f64,
    pub memory_bytes: i64,
    /// Shown as the "hostname" of its agent row, e.g. `k8s Deployment shop/web`.
    pub description: String,
    /// (cpu_pct, mem_pct) measured at the pass's instant; `None` without usage or requests.
    pub sample: Option<(f64, f64)>,
}

/// What a discovery pass changed; workloads that could not be written are listed with why.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DiscoveryWritten {
    pub vms_added: usize,
    pub vms_updated: usize,
    pub allocations_changed: usize,
    pub projects_created: usize,
    pub samples_inserted: u64,
    /// (VM id, reason): unknown department, or a project of another department.
    pub rejected: Vec<(String, String)>,
}

impl Store {
    /// Upserts discovered workloads as of `at`, in one transaction. Departments must already be
    /// in the inventory (they carry the e-mail addresses notices go to, so a mistyped label must
    /// not invent one); a missing project is created under the mapped department with its id as
    /// name. A new workload is delivered and deployed on the Shanghai day of `at` (it runs).
    pub async fn record_discovery(
        &self,
        at: DateTime<Utc>,
        vms: &[DiscoveredVm],
    ) -> Result<DiscoveryWritten> {
        let now = now_secs();
        let ts = at.timestamp();
        let today = at
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        let agent_version = concat!("cloudgov-kubernetes-discovery/", env!("CARGO_PKG_VERSION"));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut written = DiscoveryWritten::default();
            for v in vms {
                let department: Option<(String,)> = sqlx::query_as("SELECT id FROM departments WHERE id = $1")
                    .bind(v.department.as_str()).fetch_optional(&mut *tx).await?;
                if department.is_none() {
                    written.rejected.push((v.id.to_string(), format!(
                        "department {} is not in the inventory", v.department)));
                    continue;
                }
                let project: Option<(String,)> = sqlx::query_as("SELECT department_id FROM projects WHERE id = $1")
                    .bind(v.project.as_str()).fetch_optional(&mut *tx).await?;
                match project {
                    None => {
                        sqlx::query("INSERT INTO projects (id, name, department_id) VALUES ($1, $2, $3)")
                            .bind(v.project.as_str()).bind(v.project.as_str()).bind(v.department.as_str())
                            .execute(&mut *tx).await?;
                        written.projects_created += 1;
                    }
                    Some((owner,)) if owner != v.department.as_str() => {
                        written.rejected.push((v.id.to_string(), format!(
                            "project {} belongs to department {owner}, not {}", v.project, v.department)));
                        continue;
                    }
                    Some(_) => {}
                }
                let existing: Option<(i64, i64, f64)> = sqlx::query_as(
                    "SELECT key, vcpus, memory_gib FROM vms WHERE id = $1")
                    .bind(v.id.as_str()).fetch_optional(&mut *tx).await?;
                let (key, changed) = match existing {
                    None => {
                        let (key,): (i64,) = sqlx::query_as(
                            "INSERT INTO vms (id, project_id, vcpus, memory_gib, disk_gib, delivered_on, \
                             deployed_on, deployed_source, updated_at) \
                             VALUES ($1, $2, $3, $4, 0, $5, $5, 'kubernetes', $6) RETURNING key")
                            .bind(v.id.as_str()).bind(v.project.as_str()).bind(v.vcpus)
                            .bind(v.memory_gib).bind(&today).bind(now)
                            .fetch_one(&mut *tx).await?;
                        written.vms_added += 1;
                        (key, true)
                    }
                    Some((key, vcpus, memory_gib)) => {
                        sqlx::query("UPDATE vms SET project_id = $2, vcpus = $3, memory_gib = $4, updated_at = $5 \
                                     WHERE key = $1")
                            .bind(key).bind(v.project.as_str()).bind(v.vcpus).bind(v.memory_gib).bind(now)
                            .execute(&mut *tx).await?;
                        written.vms_updated += 1;
                        (key, vcpus != v.vcpus || (memory_gib - v.memory_gib).abs() > 1e-9)
                    }
                };
                if changed {
                    sqlx::query("INSERT INTO allocations (vm_key, recorded_at, vcpus, memory_gib, disk_gib, source) \
                                 VALUES ($1, $2, $3, $4, 0, 'kubernetes')")
                        .bind(key).bind(now).bind(v.vcpus).bind(v.memory_gib)
                        .execute(&mut *tx).await?;
                    written.allocations_changed += 1;
                }
                // The discovery is the workload's "agent": the silent-agent check then flags a
                // workload that disappeared from the cluster, as it flags a VM that went quiet.
                sqlx::query(
                    "INSERT INTO agents (vm_key, hostname, os, agent_version, last_seq, last_collected_at, \
                     last_seen_at, vcpus, memory_bytes, disk_bytes, filesystems, interfaces) \
                     VALUES ($1, $2, 'kubernetes', $3, 0, $4, $5, $6, $7, 0, '[]', '[]') \
                     ON CONFLICT (vm_key) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, \
                     agent_version = excluded.agent_version, last_collected_at = excluded.last_collected_at, \
                     last_seen_at = excluded.last_seen_at, vcpus = excluded.vcpus, \
                     memory_bytes = excluded.memory_bytes \
                     WHERE excluded.last_collected_at >= agents.last_collected_at")
                    .bind(key).bind(&v.description).bind(agent_version).bind(ts).bind(now)
                    .bind(v.vcpus).bind(v.memory_bytes)
                    .execute(&mut *tx).await?;
                if let Some((cpu, mem)) = v.sample {
                    let pct = |what, value| Hundredths::from_percent(what, value)
                        .map_err(|e| StoreError::Invalid(format!("workload {}: {e}", v.id)));
                    let row = SampleRow { vm_key: key, sample: Sample::usage(ts, pct("cpu", cpu)?, pct("memory", mem)?, None) };
                    written.samples_inserted += tx.insert_sample_rows(std::slice::from_ref(&row), now).await?;
                }
            }
            tx.commit().await?;
            Ok(written)
        })
    }
}

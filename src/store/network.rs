//! Network registration rows: the IP registry with its history, sightings, network findings.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::inventory::parse_date;
use super::{BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::domain::MacAddr;
use crate::core::domain::RegistryRow;
use crate::core::import::ArpRow;
use crate::core::network::{NetworkFinding, RegistryEntry, Sighting, SightingKind};

/// A sighting to record: (ip, mac) seen at `seen_at` by `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct SightingRow {
    pub ip: String,
    pub mac: String,
    pub kind: SightingKind,
    pub source: String,
    pub vm_key: Option<i64>,
    pub interface: String,
    pub config: String,
    pub config_source: Option<String>,
    pub seen_at: i64,
}

impl From<&ArpRow> for SightingRow {
    /// An ARP export's entry: seen by a switch, so no VM and no address configuration.
    fn from(r: &ArpRow) -> SightingRow {
        SightingRow {
            ip: r.ip.to_string(),
            mac: r.mac.to_string(),
            kind: SightingKind::Arp,
            source: r.source.clone(),
            vm_key: None,
            interface: String::new(),
            config: "unknown".into(),
            config_source: None,
            seen_at: r.seen_at.timestamp(),
        }
    }
}

/// A registry entry as listed and exported.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RegistryListing {
    pub ip: String,
    pub mac: String,
    pub department: String,
    pub holder: String,
    pub registered_on: String,
    pub note: String,
    pub gateway: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryChange {
    pub ip: String,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub source: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NetworkFindingRow {
    pub id: i64,
    pub kind: String,
    pub ip: String,
    pub mac: Option<String>,
    pub department: Option<String>,
    pub evidence: String,
    pub raised_at: String,
    pub open: bool,
}

/// What an import or edit of the registry changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RegistrySummary {
    pub added: u64,
    pub changed: u64,
    pub unchanged: u64,
}

/// (ip, action, before_json, after_json, source, at)
type HistoryTuple = (String, String, Option<String>, Option<String>, String, i64);
/// (id, kind, ip, mac, department, evidence, raised_at, open)
type FindingTuple = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    bool,
);

fn time_text(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

fn listing_json(l: &RegistryListing) -> Result<String> {
    serde_json::to_string(l).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Records one history row inside a transaction (a macro so it compiles for either backend).
macro_rules! registry_history {
    ($tx:expr, $ip:expr, $action:expr, $before:expr, $after:expr, $source:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO ip_registry_history (ip, action, before_json, after_json, source, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($ip)
        .bind($action)
        .bind($before)
        .bind($after)
        .bind($source)
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}

/// Upserts one sighting inside a transaction, widening its interval.
macro_rules! upsert_sightings {
    ($tx:expr, $collapsed:expr) => {{
        let collapsed: Vec<(&$crate::store::SightingRow, i64)> = $collapsed;
        // Collapsed rows are distinct by key, so one statement may upsert many of them
        // (PostgreSQL refuses to update the same row twice in one statement).
        for chunk in collapsed.chunks($crate::store::network::SIGHTINGS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new($crate::store::network::INSERT_SIGHTINGS);
            query.push_values(chunk, |mut row, (r, first_seen)| {
                row.push_bind(&r.ip)
                    .push_bind(&r.mac)
                    .push_bind(r.kind.as_str())
                    .push_bind(&r.source)
                    .push_bind(r.vm_key)
                    .push_bind(&r.interface)
                    .push_bind(&r.config)
                    .push_bind(&r.config_source)
                    .push_bind(*first_seen)
                    .push_bind(r.seen_at);
            });
            query.push($crate::store::network::SIGHTING_CONFLICT);
            query.build().execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use upsert_sightings;

/// The columns of a sightings upsert, in the order its rows are bound.
pub(crate) const INSERT_SIGHTINGS: &str = "INSERT INTO ip_sightings (ip, mac, kind, source, vm_key, \
     interface, config, config_source, first_seen, last_seen) ";

/// A sighting seen again widens its interval; its interface and configuration are the latest
/// occurrence's.
pub(crate) const SIGHTING_CONFLICT: &str = " ON CONFLICT (ip, mac, kind, source) DO UPDATE SET \
     first_seen = CASE WHEN excluded.first_seen < ip_sightings.first_seen THEN excluded.first_seen ELSE ip_sightings.first_seen END, \
     last_seen = CASE WHEN excluded.last_seen > ip_sightings.last_seen THEN excluded.last_seen ELSE ip_sightings.last_seen END, \
     config = CASE WHEN excluded.last_seen >= ip_sightings.last_seen THEN excluded.config ELSE ip_sightings.config END, \
     config_source = CASE WHEN excluded.last_seen >= ip_sightings.last_seen THEN excluded.config_source ELSE ip_sightings.config_source END, \
     interface = excluded.interface, vm_key = excluded.vm_key";

/// Sightings per upsert statement: 10 parameters each.
pub(crate) const SIGHTINGS_PER_STATEMENT: usize = 500;

/// Sightings, one per (IP, MAC, kind, source): the latest occurrence (its `seen_at` is the last
/// time seen) with the earliest time seen. Each input is a sighting with the earliest time it
/// stands for (its own `seen_at`, or earlier when it was collapsed already). Upserting these
/// gives the same rows as upserting every occurrence in order, with one statement per pair
/// instead of one per report.
pub(super) fn collapse_sightings<'a>(
    rows: impl Iterator<Item = (&'a SightingRow, i64)>,
) -> Vec<(&'a SightingRow, i64)> {
    let mut by_key: std::collections::HashMap<(&str, &str, &str, &str), (&SightingRow, i64)> =
        std::collections::HashMap::new();
    let mut order = Vec::new();
    for (r, first_seen) in rows {
        let key = (
            r.ip.as_str(),
            r.mac.as_str(),
            r.kind.as_str(),
            r.source.as_str(),
        );
        match by_key.get_mut(&key) {
            Some((latest, first)) => {
                *first = (*first).min(first_seen);
                if r.seen_at >= latest.seen_at {
                    *latest = r;
                }
            }
            None => {
                order.push(key);
                by_key.insert(key, (r, first_seen));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .collect()
}

impl Store {
    /// Creates or updates registry entries (by IP) in one transaction, with a history row for
    /// every change. `today` is the registration date of entries that do not give one.
    pub async fn apply_ip_registry(
        &self,
        rows: &[RegistryRow],
        source: &str,
        today: NaiveDate,
    ) -> Result<RegistrySummary> {
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut summary = RegistrySummary::default();
            for r in rows {
                let ip = r.ip().to_string();
                let existing: Option<(String, String, String, String, String, bool)> = sqlx::query_as(
                    "SELECT mac, department_id, holder, registered_on, note, gateway FROM ip_registry WHERE ip = $1")
                    .bind(&ip).fetch_optional(&mut *tx).await?;
                let after = RegistryListing {
                    ip: ip.clone(),
                    mac: r.mac().to_string(),
                    department: r.department().to_string(),
                    holder: r.holder().to_owned(),
                    registered_on: r.registered_on()
                        .or_else(|| existing.as_ref().and_then(|e| parse_date(&e.3).ok()))
                        .unwrap_or(today)
                        .to_string(),
                    note: r.note().to_owned(),
                    gateway: r.gateway(),
                };
                let before = existing.map(|(mac, department, holder, registered_on, note, gateway)| RegistryListing {
                    ip: ip.clone(), mac, department, holder, registered_on, note, gateway,
                });
                if before.as_ref() == Some(&after) {
                    summary.unchanged += 1;
                    continue;
                }
                sqlx::query(
                    "INSERT INTO ip_registry (ip, mac, department_id, holder, registered_on, note, gateway, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, \
                     department_id = excluded.department_id, holder = excluded.holder, registered_on = excluded.registered_on, \
                     note = excluded.note, gateway = excluded.gateway, updated_at = excluded.updated_at, \
                     mac_changed_at = CASE WHEN ip_registry.mac <> excluded.mac THEN excluded.updated_at ELSE ip_registry.mac_changed_at END")
                    .bind(&ip).bind(&after.mac).bind(&after.department).bind(&after.holder)
                    .bind(&after.registered_on).bind(&after.note).bind(after.gateway).bind(now)
                    .execute(&mut *tx).await?;
                let action = if before.is_some() { "changed" } else { "added" };
                let before_json = before.as_ref().map(listing_json).transpose()?;
                registry_history!(tx, &ip, action, before_json, Some(listing_json(&after)?), source, now);
                if before.is_some() { summary.changed += 1 } else { summary.added += 1 }
            }
            tx.commit().await?;
            Ok(summary)
        })
    }

    /// Removes an entry (with history); false if there was none.
    pub async fn remove_ip_registration(&self, ip: IpAddr, source: &str) -> Result<bool> {
        let now = now_secs();
        let ip = ip.to_string();
        let current = self.ip_registry().await?.into_iter().find(|l| l.ip == ip);
        let Some(current) = current else {
            return Ok(false);
        };
        let before = listing_json(&current)?;
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM ip_registry WHERE ip = $1").bind(&ip).execute(&mut *tx).await?;
            registry_history!(tx, &ip, "removed", Some(before), None::<String>, source, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The registry, ordered by IP text.
    pub async fn ip_registry(&self) -> Result<Vec<RegistryListing>> {
        self.ip_registry_in(None, None).await
    }

    /// [`Store::ip_registry`] of one department (`None`: all), the first `limit` entries
    /// (`None`: every one).
    pub async fn ip_registry_in(
        &self,
        department: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<RegistryListing>> {
        let rows: Vec<(String, String, String, String, String, String, bool)> = on_pool!(self, p => sqlx::query_as(
            "SELECT ip, mac, department_id, holder, registered_on, note, gateway FROM ip_registry \
             WHERE $1 IS NULL OR department_id = $1 ORDER BY ip LIMIT $2")
            .bind(department).bind(limit.unwrap_or(i64::MAX)).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(ip, mac, department, holder, registered_on, note, gateway)| RegistryListing {
                    ip,
                    mac,
                    department,
                    holder,
                    registered_on,
                    note,
                    gateway,
                },
            )
            .collect())
    }

    /// The registry as the checks need it.
    pub async fn registry_entries(&self) -> Result<Vec<RegistryEntry>> {
        let changed: Vec<(String, Option<i64>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT ip, mac_changed_at FROM ip_registry").fetch_all(p).await)?;
        let changed: std::collections::HashMap<String, Option<i64>> = changed.into_iter().collect();
        self.ip_registry()
            .await?
            .into_iter()
            .map(|l| {
                let bad = |what: &str| {
                    StoreError::Invalid(format!("stored registry entry {}: bad {what}", l.ip))
                };
                Ok(RegistryEntry {
                    ip: l.ip.parse().map_err(|_| bad("ip"))?,
                    mac: l.mac.parse::<MacAddr>().map_err(|_| bad("mac"))?,
                    department: l.department.clone(),
                    holder: l.holder.clone(),
                    registered_on: parse_date(&l.registered_on)?,
                    gateway: l.gateway,
                    mac_since: changed
                        .get(&l.ip)
                        .copied()
                        .flatten()
                        .and_then(|t| DateTime::from_timestamp(t, 0)),
                })
            })
            .collect()
    }

    /// Changes to the registry, oldest first; of one IP if given.
    pub async fn ip_registry_history(&self, ip: Option<IpAddr>) -> Result<Vec<RegistryChange>> {
        let ip = ip.map(|i| i.to_string());
        let rows: Vec<HistoryTuple> = on_pool!(self, p => sqlx::query_as(
            "SELECT ip, action, before_json, after_json, source, at FROM ip_registry_history \
             WHERE $1 IS NULL OR ip = $1 ORDER BY id")
            .bind(ip).fetch_all(p).await)?;
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(rows
            .into_iter()
            .map(|(ip, action, before, after, source, at)| RegistryChange {
                ip,
                action,
                before: json(before),
                after: json(after),
                source,
                at: time_text(at),
            })
            .collect())
    }

    /// Records sightings in one transaction: a known (ip, mac, kind, source) widens its
    /// first/last seen interval.
    pub async fn record_sightings(&self, rows: &[SightingRow]) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            upsert_sightings!(tx, collapse_sightings(rows.iter().map(|r| (r, r.seen_at))));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every sighting, with the department of the reporting VM where there is one.
    pub async fn sightings(&self) -> Result<Vec<Sighting>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT s.ip, s.mac, s.kind, s.source, pr.department_id, s.config, s.config_source, s.first_seen, s.last_seen \
                 FROM ip_sightings s LEFT JOIN vms v ON v.key = s.vm_key LEFT JOIN projects pr ON pr.id = v.project_id")
                .fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let ip: String = r.try_get(0)?;
                let mac: String = r.try_get(1)?;
                let kind: String = r.try_get(2)?;
                let (Ok(ip), Ok(mac)) = (ip.parse(), mac.parse()) else { continue };
                let kind = match kind.as_str() {
                    "interface" => SightingKind::Interface,
                    "neighbour" => SightingKind::Neighbour,
                    _ => SightingKind::Arp,
                };
                let (Some(first_seen), Some(last_seen)) = (
                    DateTime::from_timestamp(r.try_get(7)?, 0),
                    DateTime::from_timestamp(r.try_get(8)?, 0),
                ) else { continue };
                out.push(Sighting {
                    ip,
                    mac,
                    kind,
                    source: r.try_get(3)?,
                    department: r.try_get(4)?,
                    config: r.try_get(5)?,
                    config_source: r.try_get(6)?,
                    first_seen,
                    last_seen,
                });
            }
            Ok(out)
        })
    }

    /// Stores the findings of a check at `at` in one transaction: new ones open and are queued
    /// for e-mail (one job per department; no department -> the center), ones still raised are
    /// refreshed, and open ones no longer raised are cleared. Returns the ids opened now.
    pub async fn record_network_findings(
        &self,
        findings: &[NetworkFinding],
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        let now = now_secs();
        let at = at.timestamp();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let open: Vec<(i64, String, String, String)> = sqlx::query_as(
                "SELECT id, kind, ip, mac FROM network_findings WHERE cleared_at IS NULL")
                .fetch_all(&mut *tx).await?;
            let mut opened: std::collections::BTreeMap<Option<String>, Vec<i64>> = Default::default();
            let mut still = std::collections::HashSet::new();
            for f in findings {
                let facts = super::obligations::facts_json(&f.facts)?;
                let mac = f.mac.clone().unwrap_or_default();
                let key = (f.kind.as_str().to_owned(), f.ip.clone(), mac.clone());
                still.insert(key.clone());
                if let Some((id, ..)) = open.iter().find(|(_, k, i, m)| (k, i, m) == (&key.0, &key.1, &key.2)) {
                    sqlx::query("UPDATE network_findings SET last_raised_at = $2, evidence = $3, facts = $4 WHERE id = $1")
                        .bind(id).bind(at).bind(&f.evidence).bind(&facts).execute(&mut *tx).await?;
                    continue;
                }
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO network_findings (kind, ip, mac, department_id, evidence, raised_at, last_raised_at, facts) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id")
                    .bind(&key.0).bind(&f.ip).bind(&mac).bind(&f.department).bind(&f.evidence).bind(at).bind(&facts)
                    .fetch_one(&mut *tx).await?;
                opened.entry(f.department.clone()).or_default().push(id);
            }
            for (id, kind, ip, mac) in &open {
                if !still.contains(&(kind.clone(), ip.clone(), mac.clone())) {
                    sqlx::query("UPDATE network_findings SET cleared_at = $2 WHERE id = $1")
                        .bind(id).bind(at).execute(&mut *tx).await?;
                }
            }
            for (department, ids) in &opened {
                let (outbox_id,): (i64,) = sqlx::query_as(
                    "INSERT INTO outbox (kind, department_id, state, attempts, next_attempt_at, created_at) \
                     VALUES ('network', $1, 'pending', 0, $2, $2) RETURNING id")
                    .bind(department).bind(now).fetch_one(&mut *tx).await?;
                for id in ids {
                    sqlx::query("INSERT INTO outbox_network_findings (outbox_id, finding_id) VALUES ($1, $2)")
                        .bind(outbox_id).bind(id).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(opened.into_values().flatten().collect())
        })
    }

    /// Network findings, open first, newest first; of one outbox job if given.
    pub async fn network_findings(&self, outbox_id: Option<i64>) -> Result<Vec<NetworkFindingRow>> {
        self.network_findings_in(outbox_id, None).await
    }

    /// [`Store::network_findings`] that name one department (`None`: all, including findings
    /// about addresses no department claims).
    pub async fn network_findings_in(
        &self,
        outbox_id: Option<i64>,
        department: Option<&str>,
    ) -> Result<Vec<NetworkFindingRow>> {
        let rows: Vec<FindingTuple> = on_pool!(self, p => sqlx::query_as(
            "SELECT f.id, f.kind, f.ip, f.mac, f.department_id, f.evidence, f.raised_at, f.cleared_at IS NULL \
             FROM network_findings f WHERE ($1 IS NULL OR f.id IN (SELECT finding_id FROM outbox_network_findings WHERE outbox_id = $1)) \
             AND ($2 IS NULL OR f.department_id = $2) \
             ORDER BY f.cleared_at IS NULL DESC, f.id DESC")
            .bind(outbox_id).bind(department).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, ip, mac, department, evidence, raised_at, open)| NetworkFindingRow {
                    id,
                    kind,
                    ip,
                    mac: (!mac.is_empty()).then_some(mac),
                    department,
                    evidence,
                    raised_at: time_text(raised_at),
                    open,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(ip: &str, config: &str, seen_at: i64) -> SightingRow {
        SightingRow {
            ip: ip.into(),
            mac: "52:54:00:00:00:01".into(),
            kind: SightingKind::Interface,
            source: "vm-1".into(),
            vm_key: Some(1),
            interface: "eth0".into(),
            config: config.into(),
            config_source: None,
            seen_at,
        }
    }

    #[test]
    fn a_batch_collapses_to_one_sighting_per_pair_with_first_and_last_seen() {
        let rows = [
            sighting("10.0.0.1", "dhcp", 200),
            sighting("10.0.0.2", "static", 150),
            sighting("10.0.0.1", "static", 300),
            sighting("10.0.0.1", "dhcp", 100),
        ];
        let collapsed = collapse_sightings(rows.iter().map(|r| (r, r.seen_at)));
        assert_eq!(collapsed.len(), 2);
        let (latest, first) = collapsed[0];
        assert_eq!(
            (latest.ip.as_str(), latest.seen_at, first),
            ("10.0.0.1", 300, 100)
        );
        assert_eq!(
            latest.config, "static",
            "the latest report's configuration wins"
        );
        assert_eq!(
            (collapsed[1].0.ip.as_str(), collapsed[1].1),
            ("10.0.0.2", 150)
        );
    }
}

//! The VMs whose usage is pulled from Prometheus, and how far each has been read.

use super::{Result, Store, on_pool};

/// A VM that names its node_exporter series, with the instant its pull has reached.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusTarget {
    pub vm_key: i64,
    pub vm_id: String,
    /// As written in the inventory (`HOST:PORT`), or `None` when a selector is given.
    pub instance: Option<String>,
    /// The canonical selector text, or `None` when an instance is given.
    pub selector: Option<String>,
    /// Unix seconds of the newest step read so far; `None`: never pulled.
    pub pulled_until: Option<i64>,
}

impl Store {
    /// Every VM that names a Prometheus instance or selector, ordered by id (`only`: that VM).
    pub async fn prometheus_targets(&self, only: Option<&str>) -> Result<Vec<PrometheusTarget>> {
        type Row = (i64, String, Option<String>, Option<String>, Option<i64>);
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(
            "SELECT key, id, prometheus_instance, prometheus_selector, prometheus_pulled_until FROM vms \
             WHERE (prometheus_instance IS NOT NULL OR prometheus_selector IS NOT NULL) \
             AND ($1 IS NULL OR id = $1) ORDER BY id")
            .bind(only).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(vm_key, vm_id, instance, selector, pulled_until)| PrometheusTarget {
                    vm_key,
                    vm_id,
                    instance,
                    selector,
                    pulled_until,
                },
            )
            .collect())
    }

    /// Moves a VM's pull forward to `until` (never back: a backfill of older data leaves it).
    pub async fn advance_prometheus_pull(&self, vm_key: i64, until: i64) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE vms SET prometheus_pulled_until = $2 WHERE key = $1 \
             AND (prometheus_pulled_until IS NULL OR prometheus_pulled_until < $2)")
            .bind(vm_key).bind(until).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}

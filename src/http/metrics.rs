//! `/metrics` in the Prometheus text format: fleet state read from the store at scrape time, plus
//! ingest counters kept in memory since start.
//!
//! Every metric name the daemon exports is in [`METRIC_NAMES`]; the Grafana dashboards in
//! `dashboards/` may use only those (a test checks it).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::calendar::shanghai_day;
use crate::core::domain::NoticeState;
use crate::jobs::JobContext;
use crate::store::StoreError;

/// Names of every metric `/metrics` exports.
pub const METRIC_NAMES: &[&str] = &[
    "cloudgov_findings",
    "cloudgov_notices_open",
    "cloudgov_deadlines",
    "cloudgov_outbox_messages",
    "cloudgov_network_findings_open",
    "cloudgov_alerts_open",
    "cloudgov_agent_last_seen_timestamp_seconds",
    "cloudgov_vms",
    "cloudgov_calendar_years_missing",
    "cloudgov_usage_fold_pending",
    "cloudgov_usage_fold_lag_seconds",
    "cloudgov_ingest_requests_total",
    "cloudgov_ingest_reports_total",
    "cloudgov_ingest_duplicates_total",
    "cloudgov_ingest_rejected_total",
];

/// Ingest counters since the process started.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub requests: AtomicU64,
    pub reports: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
}

impl IngestCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Renders the exposition.
pub async fn render(ctx: &JobContext, counters: &IngestCounters) -> Result<String, StoreError> {
    let mut out = Exposition(String::new());
    let now = chrono::Utc::now();

    out.family(
        "cloudgov_findings",
        "gauge",
        "Latest findings by resource and verdict (art. 13).",
    );
    let mut counts: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for f in ctx.store.findings().await? {
        *counts
            .entry((f.resource.as_str(), f.verdict.as_str()))
            .or_default() += 1;
    }
    for ((resource, verdict), n) in &counts {
        out.sample(
            "cloudgov_findings",
            &[("resource", resource), ("verdict", verdict)],
            *n as f64,
        );
    }

    out.family(
        "cloudgov_notices_open",
        "gauge",
        "Open downsize notices and expansion advice by resource.",
    );
    let mut open: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for n in ctx
        .store
        .notices()
        .await?
        .into_iter()
        .filter(|n| n.state == NoticeState::Open)
    {
        *open
            .entry((n.kind.as_str(), n.resource.as_str()))
            .or_default() += 1;
    }
    for ((kind, resource), n) in &open {
        out.sample(
            "cloudgov_notices_open",
            &[("kind", kind), ("resource", resource)],
            *n as f64,
        );
    }

    out.family(
        "cloudgov_deadlines",
        "gauge",
        "Obligations (deadlines) by kind and state as of now, counted in working days.",
    );
    let today = shanghai_day(now);
    let mut states: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for d in ctx.store.deadlines().await? {
        let state = crate::core::obligations::state(d.due_on, d.done_on, today);
        *states
            .entry((d.kind.to_string(), state.to_string()))
            .or_default() += 1;
    }
    for ((kind, state), n) in &states {
        out.sample(
            "cloudgov_deadlines",
            &[("kind", kind), ("state", state)],
            *n as f64,
        );
    }

    out.family("cloudgov_outbox_messages", "gauge", "E-mail jobs by state.");
    let mut outbox: std::collections::BTreeMap<String, u64> = Default::default();
    for o in ctx.store.outbox().await? {
        *outbox.entry(o.state).or_default() += 1;
    }
    for (state, n) in &outbox {
        out.sample("cloudgov_outbox_messages", &[("state", state)], *n as f64);
    }

    out.family(
        "cloudgov_network_findings_open",
        "gauge",
        "Open network registration findings by kind (art. 14).",
    );
    let mut network: std::collections::BTreeMap<String, u64> = Default::default();
    for f in ctx
        .store
        .network_findings(None)
        .await?
        .into_iter()
        .filter(|f| f.open)
    {
        *network.entry(f.kind).or_default() += 1;
    }
    for (kind, n) in &network {
        out.sample(
            "cloudgov_network_findings_open",
            &[("kind", kind)],
            *n as f64,
        );
    }

    out.family(
        "cloudgov_alerts_open",
        "gauge",
        "Open VM alerts by kind (silent_agent, clock_skew, reports_dropped).",
    );
    let mut alerts: std::collections::BTreeMap<String, u64> = Default::default();
    for a in ctx.store.alerts().await?.into_iter().filter(|a| a.open) {
        *alerts.entry(a.kind).or_default() += 1;
    }
    for (kind, n) in &alerts {
        out.sample("cloudgov_alerts_open", &[("kind", kind)], *n as f64);
    }

    out.family(
        "cloudgov_agent_last_seen_timestamp_seconds",
        "gauge",
        "When each VM's agent last reported (Unix seconds).",
    );
    for a in ctx.store.agents().await? {
        out.sample(
            "cloudgov_agent_last_seen_timestamp_seconds",
            &[("vm", &a.vm)],
            a.last_seen_at as f64,
        );
    }

    out.family(
        "cloudgov_vms",
        "gauge",
        "VMs in the inventory by department.",
    );
    let mut vms: std::collections::BTreeMap<String, u64> = Default::default();
    for v in ctx
        .store
        .vms()
        .await?
        .into_iter()
        .filter(|v| v.released_on.is_none())
    {
        *vms.entry(v.department.to_string()).or_default() += 1;
    }
    for (department, n) in &vms {
        out.sample("cloudgov_vms", &[("department", department)], *n as f64);
    }

    let (backlog, oldest_mark) = ctx.store.fold_backlog().await?;
    out.family(
        "cloudgov_usage_fold_pending",
        "gauge",
        "VM-days with samples not yet folded into their aggregates.",
    );
    out.sample("cloudgov_usage_fold_pending", &[], backlog as f64);
    out.family(
        "cloudgov_usage_fold_lag_seconds",
        "gauge",
        "Age of the oldest sample not yet folded into its VM-day's aggregate (0: none waits).",
    );
    out.sample(
        "cloudgov_usage_fold_lag_seconds",
        &[],
        oldest_mark.map_or(0, |t| (now.timestamp() - t).max(0)) as f64,
    );

    out.family(
        "cloudgov_calendar_years_missing",
        "gauge",
        "Of this year and next, how many have no working-day calendar file.",
    );
    out.sample(
        "cloudgov_calendar_years_missing",
        &[],
        ctx.calendar
            .missing_around(chrono::Datelike::year(&today))
            .len() as f64,
    );

    for (name, help, counter) in [
        (
            "cloudgov_ingest_requests_total",
            "Ingest requests answered since start.",
            &counters.requests,
        ),
        (
            "cloudgov_ingest_reports_total",
            "Agent reports stored since start.",
            &counters.reports,
        ),
        (
            "cloudgov_ingest_duplicates_total",
            "Agent reports already stored (replays) since start.",
            &counters.duplicates,
        ),
        (
            "cloudgov_ingest_rejected_total",
            "Ingest requests refused (4xx) since start.",
            &counters.rejected,
        ),
    ] {
        out.family(name, "counter", help);
        out.sample(name, &[], counter.load(Ordering::Relaxed) as f64);
    }
    Ok(out.0)
}

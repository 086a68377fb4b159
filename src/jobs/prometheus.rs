//! Pulling usage from Prometheus: for every VM that names its node_exporter target, one
//! `query_range` per piece of the range (`core::prometheus` builds the query and reads the
//! answer), stored as an agent's reports are, so evaluation, notices, deadlines and completion
//! detection see the same samples and allocation whichever source measured them.
//!
//! Each VM remembers how far it has been read (`vms.prometheus_pulled_until`); a pull starts
//! after it, on the step grid, so repeated pulls write nothing twice. Credentials come in as
//! [`PromAuth`] (the CLI reads them from the environment) and are never logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudgov_agent::wire::Filesystem;
use serde::Serialize;

use crate::core::domain::ArrivalWindow;
use crate::core::prometheus::{
    PromError, Pulled, Selector, align_up, parse_answer, pieces, samples_from, split_by_instance,
    usage_query, usage_query_for_instances,
};
use crate::core::samples::SampleRow;
use crate::core::token::redact_url;
use crate::store::{AgentBatch, AgentSelf, PrometheusTarget, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("Prometheus URL {0:?} must start with http:// or https://")]
    Url(String),
    #[error("cannot query Prometheus at {url}: {message}")]
    Http { url: String, message: String },
    #[error(transparent)]
    Prometheus(#[from] PromError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Range(String),
}

/// How the Prometheus HTTP API is authenticated (never printed: `Debug` names the kind only).
#[derive(Clone, Default)]
pub enum PromAuth {
    #[default]
    None,
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for PromAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PromAuth::None => "PromAuth::None",
            PromAuth::Bearer(_) => "PromAuth::Bearer(***)",
            PromAuth::Basic { .. } => "PromAuth::Basic(***)",
        })
    }
}

/// A Prometheus server to read from.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    /// The base URL without a trailing slash, e.g. `http://10.0.0.9:9090`.
    url: String,
    auth: PromAuth,
    client: reqwest::Client,
}

impl PrometheusSource {
    pub fn new(url: &str, auth: PromAuth) -> Result<PrometheusSource, PullError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PullError::Url(redact_url(url)));
        }
        let client = reqwest::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .build()
            .map_err(|e| PullError::Http {
                url: redact_url(url),
                message: e.to_string(),
            })?;
        Ok(PrometheusSource {
            url: url.trim_end_matches('/').to_owned(),
            auth,
            client,
        })
    }

    /// The URL as it may be logged (a password in it is masked).
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    /// One `query_range` (POST, so long selectors fit), answered as series.
    async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: u32,
    ) -> Result<Vec<crate::core::prometheus::Series>, PullError> {
        let url = format!("{}/api/v1/query_range", self.url);
        let form = [
            ("query", query.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        let mut request = self.client.post(&url).form(&form);
        request = match &self.auth {
            PromAuth::None => request,
            PromAuth::Bearer(token) => request.bearer_auth(token),
            PromAuth::Basic { username, password } => request.basic_auth(username, Some(password)),
        };
        let failed = |message: String| PullError::Http {
            url: redact_url(&url),
            message,
        };
        // reqwest's errors carry the URL, never the headers: the credentials stay out of them.
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        match status.as_u16() {
            200 => Ok(parse_answer(&body)?),
            // Prometheus explains bad queries in its JSON error body.
            400 | 422 | 503 => match parse_answer(&body) {
                Err(e @ PromError::Answer { .. }) => Err(e.into()),
                _ => Err(failed(format!("HTTP {status}"))),
            },
            401 | 403 => Err(failed(format!(
                "HTTP {status}: check CLOUDGOV_PROMETHEUS_BEARER_TOKEN or CLOUDGOV_PROMETHEUS_USERNAME/PASSWORD"
            ))),
            _ => Err(failed(format!("HTTP {status}"))),
        }
    }
}

/// One query's time limit: a slow Prometheus fails this VM's pull, not the daemon.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Queries in flight at once: enough to hide latency, few enough to spare Prometheus.
const CONCURRENT_QUERIES: usize = 4;

/// How far back a pull may leave trailing gaps open: the newest steps without data are read
/// again next time (a scrape may still be on its way), older gaps are gaps.
const SETTLE_SECS: i64 = 300;

/// What a pull reads.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Seconds between points: one sample per step.
    pub step: u32,
    /// Seconds over which counters (CPU, traffic) are averaged; at least two scrapes must fall
    /// in it. Defaults to twice the step.
    pub rate_window: u32,
    /// A VM never pulled before (and without `start`) is read back this far.
    pub lookback: chrono::Duration,
    /// Read exactly this range (a backfill); otherwise from where each VM's pull stopped.
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Only this VM.
    pub vm: Option<String>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            step: 60,
            rate_window: 120,
            lookback: chrono::Duration::hours(1),
            start: None,
            end: None,
            vm: None,
        }
    }
}

/// One VM's pull, as printed and logged.
#[derive(Debug, Clone, Serialize)]
pub struct VmPull {
    pub vm: String,
    pub selector: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Samples read (steps with CPU and memory).
    pub samples: usize,
    /// Of those, newly stored (the rest were stored already).
    pub stored: u64,
    /// Steps of the range without CPU or memory: gaps.
    pub gaps: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub at: DateTime<Utc>,
    pub prometheus: String,
    pub step: u32,
    pub vms: Vec<VmPull>,
}

impl PullReport {
    pub fn failed(&self) -> usize {
        self.vms.iter().filter(|v| v.error.is_some()).count()
    }
}

/// Pulls every mapped VM's usage (or `options.vm`'s) up to `at`, storing it when `persist`.
/// VMs named by `prometheus_instance` whose ranges match are read in batches of
/// [`INSTANCES_PER_QUERY`]; a VM with its own selector is read alone. A VM whose pull fails is
/// reported with its error; the others go on.
pub async fn pull(
    store: &Store,
    source: &PrometheusSource,
    options: &PullOptions,
    at: DateTime<Utc>,
    persist: bool,
) -> Result<PullReport, PullError> {
    if options.step == 0 || options.rate_window == 0 {
        return Err(PullError::Range(
            "step and rate window must be positive".into(),
        ));
    }
    let targets = store.prometheus_targets(options.vm.as_deref()).await?;
    if let Some(vm) = &options.vm
        && targets.is_empty()
    {
        return Err(PullError::Range(format!(
            "VM {vm} does not exist or names no prometheus_instance / prometheus_selector"
        )));
    }
    // Work units: batches of instances sharing a range, and single VMs with selectors; each
    // target's selector is parsed and its range computed here, once.
    let mut lines: Vec<VmPull> = Vec::with_capacity(targets.len());
    let mut batches: BTreeMap<(i64, i64), Vec<(usize, PrometheusTarget)>> = BTreeMap::new();
    let mut units: Vec<Unit> = Vec::new();
    for (i, target) in targets.into_iter().enumerate() {
        let mut line = VmPull::new(&target.vm_id);
        match selector_of(&target) {
            Err(e) => line.error = Some(e.to_string()),
            Ok(selector) => {
                line.selector = selector.to_string();
                match (range_of(&target, options, at), &target.instance) {
                    (None, _) => {}
                    (Some(range), Some(_)) => batches.entry(range).or_default().push((i, target)),
                    (Some(range), None) => units.push(Unit {
                        range,
                        query: usage_query(&selector, options.rate_window),
                        batched: false,
                        members: vec![(i, target)],
                    }),
                }
            }
        }
        lines.push(line);
    }
    for (range, batch) in batches {
        units.extend(batch.chunks(INSTANCES_PER_QUERY).map(|members| {
            let instances: Vec<&str> = members
                .iter()
                .filter_map(|(_, t)| t.instance.as_deref())
                .collect();
            Unit {
                range,
                query: usage_query_for_instances(&instances, options.rate_window),
                batched: true,
                members: members.to_vec(),
            }
        }));
    }
    let shared = Arc::new((store.clone(), source.clone(), options.clone()));
    let mut running = tokio::task::JoinSet::new();
    let mut done = Vec::new();
    for unit in units {
        if running.len() >= CONCURRENT_QUERIES
            && let Some(finished) = running.join_next().await
        {
            done.extend(
                finished.map_err(|e| PullError::Range(format!("a pull task failed: {e}")))?,
            );
        }
        let shared = shared.clone();
        let shown: Vec<String> = unit
            .members
            .iter()
            .map(|(i, _)| lines[*i].selector.clone())
            .collect();
        running.spawn(async move {
            let (store, source, options) = &*shared;
            pull_unit(store, source, options, &unit, &shown, at, persist).await
        });
    }
    while let Some(finished) = running.join_next().await {
        done.extend(finished.map_err(|e| PullError::Range(format!("a pull task failed: {e}")))?);
    }
    for (i, line) in done {
        lines[i] = line;
    }
    let report = PullReport {
        at,
        prometheus: source.shown_url(),
        step: options.step,
        vms: lines,
    };
    for v in &report.vms {
        match &v.error {
            None => {
                tracing::info!(vm = %v.vm, samples = v.samples, stored = v.stored, gaps = v.gaps, "prometheus pull")
            }
            Some(e) => tracing::warn!(vm = %v.vm, error = %e, "prometheus pull failed"),
        }
    }
    Ok(report)
}

/// Targets per batched query: the query text stays a few kilobytes and one slow answer holds
/// up few VMs.
const INSTANCES_PER_QUERY: usize = 50;

/// One query: its range, its PromQL, and the VMs (with their indexes in the report) it reads.
struct Unit {
    range: (i64, i64),
    query: String,
    /// Series kept per `instance` (a batch), or all of one VM's.
    batched: bool,
    members: Vec<(usize, PrometheusTarget)>,
}

impl VmPull {
    fn new(vm: &str) -> VmPull {
        VmPull {
            vm: vm.to_owned(),
            selector: String::new(),
            from: None,
            to: None,
            samples: 0,
            stored: 0,
            gaps: 0,
            error: None,
        }
    }
}

/// The target's selector as stored (an instance, or a selector text).
fn selector_of(target: &PrometheusTarget) -> Result<Selector, PullError> {
    match (&target.instance, &target.selector) {
        (Some(instance), _) => Ok(Selector::instance(instance)?),
        (None, Some(selector)) => Ok(Selector::parse(selector)?),
        (None, None) => Err(PullError::Range("no selector".into())),
    }
}

/// The steps a VM's pull covers: from its cursor (or `options.start`, or the lookback) to
/// `options.end` or `at`, on the step grid, never older than ingest accepts; `None`: nothing.
fn range_of(
    target: &PrometheusTarget,
    options: &PullOptions,
    at: DateTime<Utc>,
) -> Option<(i64, i64)> {
    let step = i64::from(options.step);
    let start = match (options.start, target.pulled_until) {
        (Some(start), _) => start.timestamp(),
        (None, Some(until)) => until + step,
        (None, None) => (at - options.lookback).timestamp(),
    };
    let end = options.end.unwrap_or(at).timestamp().min(at.timestamp());
    let oldest = align_up((at - chrono::Duration::days(400)).timestamp(), step);
    let (start, end) = (
        align_up(start, step).max(oldest),
        end.div_euclid(step) * step,
    );
    (start <= end).then_some((start, end))
}

/// One query unit (a batch of instances, or one VM with a selector) over its range, piece by
/// piece; each VM's samples stored as they come. Returns each VM's line by its index.
async fn pull_unit(
    store: &Store,
    source: &PrometheusSource,
    options: &PullOptions,
    unit: &Unit,
    shown: &[String],
    at: DateTime<Utc>,
    persist: bool,
) -> Vec<(usize, VmPull)> {
    let (start, end) = unit.range;
    let mut lines: Vec<(usize, VmPull, Option<i64>)> = unit
        .members
        .iter()
        .zip(shown)
        .map(|((i, t), selector)| {
            let mut line = VmPull::new(&t.vm_id);
            line.selector = selector.clone();
            line.from = DateTime::from_timestamp(start, 0);
            line.to = DateTime::from_timestamp(end, 0);
            (*i, line, None)
        })
        .collect();
    let (query, batched) = (&unit.query, unit.batched);
    let window = ArrivalWindow::recent(at);
    let step = i64::from(options.step);
    'pieces: for (from, to) in pieces(start, end, step) {
        let series = match source.query_range(query, from, to, options.step).await {
            Ok(series) => series,
            Err(e) => {
                for (_, line, _) in &mut lines {
                    line.error = Some(e.to_string());
                }
                break 'pieces;
            }
        };
        let mut by_instance = if batched {
            split_by_instance(series)
        } else {
            BTreeMap::from([(String::new(), series)])
        };
        // Every VM of the piece is read first, then all are stored in one transaction.
        let mut vm_batches: Vec<(usize, AgentBatch)> = Vec::new();
        let mut bare: Vec<(usize, Vec<SampleRow>)> = Vec::new();
        for (n, ((_, target), (_, line, newest))) in
            unit.members.iter().zip(lines.iter_mut()).enumerate()
        {
            if line.error.is_some() {
                continue;
            }
            let key = if batched {
                target.instance.clone().unwrap_or_default()
            } else {
                String::new()
            };
            // Two VMs naming the same instance both get its series.
            let series = by_instance.get(&key).map_or(&[][..], Vec::as_slice);
            match read_piece(target, &line.selector, series, (from, to, step), &window) {
                Ok((pulled, vm_batch)) => {
                    line.samples += pulled.samples.len();
                    line.gaps += pulled.gaps;
                    *newest = pulled.samples.last().map(|s| s.ts).or(*newest);
                    if let Some(vm_batch) = vm_batch.filter(|_| persist) {
                        vm_batches.push((n, vm_batch));
                    } else if persist && !pulled.samples.is_empty() {
                        // No allocation shown: samples without an agent row.
                        let rows = pulled.samples.iter().map(|s| SampleRow {
                            vm_key: target.vm_key,
                            sample: *s,
                        });
                        bare.push((n, rows.collect::<Vec<_>>()));
                    }
                }
                Err(e) => line.error = Some(e.to_string()),
            }
        }
        if !vm_batches.is_empty() {
            let batches: Vec<&AgentBatch> = vm_batches.iter().map(|(_, b)| b).collect();
            match store.ingest_groups(&batches).await {
                Ok(counts) => {
                    for ((n, _), (inserted, _)) in vm_batches.iter().zip(counts) {
                        lines[*n].1.stored += inserted;
                    }
                }
                Err(e) => {
                    for (n, _) in &vm_batches {
                        lines[*n].1.error = Some(e.to_string());
                    }
                }
            }
        }
        for (n, rows) in bare {
            match store.insert_samples(&rows).await {
                Ok((inserted, _)) => lines[n].1.stored += inserted,
                Err(e) => lines[n].1.error = Some(e.to_string()),
            }
        }
        by_instance.clear();
    }
    let mut out = Vec::with_capacity(lines.len());
    for ((_, target), (i, mut line, newest)) in unit.members.iter().zip(lines) {
        if persist && line.error.is_none() {
            // Trailing gaps younger than SETTLE_SECS are read again next time; a backfill
            // (`--start`) moves the cursor only to what it found.
            let until = if options.start.is_none() {
                Some((end - SETTLE_SECS).max(newest.unwrap_or(i64::MIN))).filter(|u| *u >= start)
            } else {
                newest
            };
            if let Some(until) = until
                && let Err(e) = store.advance_prometheus_pull(target.vm_key, until).await
            {
                line.error = Some(e.to_string());
            }
        }
        out.push((i, line));
    }
    out
}

/// One VM's series of one piece: its samples, and the batch that stores them.
fn read_piece(
    target: &PrometheusTarget,
    shown_selector: &str,
    series: &[crate::core::prometheus::Series],
    (from, to, step): (i64, i64, i64),
    window: &ArrivalWindow,
) -> Result<(Pulled, Option<AgentBatch>), PullError> {
    let pulled = samples_from(series, from, to, step)?;
    let batch = batch_of(target, shown_selector, &pulled, window)?;
    Ok((pulled, batch))
}

/// The pulled samples as an agent's batch (the allocation it shows, the filesystems of the
/// newest step); none when Prometheus showed no allocation or no sample (the caller then stores
/// the samples without an agent row).
fn batch_of(
    target: &PrometheusTarget,
    shown_selector: &str,
    pulled: &Pulled,
    window: &ArrivalWindow,
) -> Result<Option<AgentBatch>, PullError> {
    let (Some(capacity), Some(newest)) = (&pulled.capacity, pulled.samples.last()) else {
        return Ok(None);
    };
    let samples = pulled
        .samples
        .iter()
        .map(|s| {
            let ts = DateTime::from_timestamp(s.ts, 0).unwrap_or_default();
            window
                .check("prometheus sample", ts)
                .map_err(PullError::Range)?;
            Ok(SampleRow {
                vm_key: target.vm_key,
                sample: *s,
            })
        })
        .collect::<Result<_, PullError>>()?;
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let agent = AgentSelf {
        vm_key: target.vm_key,
        seq: 0,
        collected_at: newest.ts,
        hostname: target
            .instance
            .clone()
            .unwrap_or_else(|| shown_selector.to_owned()),
        machine_id: None,
        os: "prometheus node_exporter".into(),
        agent_version: concat!("cloudgov-prometheus/", env!("CARGO_PKG_VERSION")).into(),
        vcpus: i64::from(capacity.vcpus),
        memory_bytes: as_i64(capacity.memory_bytes),
        disk_bytes: as_i64(capacity.disk_bytes),
        filesystems_json: filesystems_json(&pulled.filesystems)?,
        interfaces_json: "[]".into(),
        clock: None,
    };
    Ok(Some(AgentBatch {
        samples,
        agent,
        sightings: Vec::new(),
    }))
}

fn filesystems_json(filesystems: &[Filesystem]) -> Result<String, PullError> {
    serde_json::to_string(filesystems).map_err(|e| PullError::Range(e.to_string()))
}

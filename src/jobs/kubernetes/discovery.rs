//! The IO half of Kubernetes discovery: lists nodes, pods, ReplicaSets and pod metrics with
//! kube, hands them to the pure [`super::model`], and writes the result through the store.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectList};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::KubeError;
use crate::core::domain::Percent;
use crate::core::kubernetes::{
    ContainerSpec, Mapped, MappingKeys, Owner, PodSpec, PodUsage, ReplicaSetOwners, Usage,
    aggregate, parse_quantity,
};
use crate::store::{DiscoveredVm, DiscoveryWritten, Store};

/// What to look at and how to map it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiscoveryOptions {
    /// Namespaces to list; empty: all namespaces.
    pub namespaces: Vec<String>,
    pub keys: MappingKeys,
}

/// The cluster as one pass saw it, before mapping.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    pub nodes: usize,
    /// Allocatable CPU (cores) and memory (bytes) summed over nodes.
    pub node_cpu: f64,
    pub node_memory: f64,
    pub pods: Vec<PodSpec>,
    pub replica_sets: ReplicaSetOwners,
    pub usage: PodUsage,
    /// False when `metrics.k8s.io` did not answer (no metrics-server): no samples this pass.
    pub metrics_available: bool,
}

/// One discovery pass: what was seen, mapped, and written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiscoveryReport {
    pub at: DateTime<Utc>,
    pub nodes: usize,
    pub node_cpu: f64,
    pub node_memory_gib: f64,
    pub pods: usize,
    pub metrics_available: bool,
    pub workloads: Vec<WorkloadLine>,
    /// Pods left out: (namespace/pod, reason). Not errors: unlabelled pods are normal.
    pub skipped: Vec<(String, String)>,
    pub written: Option<DiscoveryWritten>,
}

/// One workload as printed by `cloudgov kubernetes discover`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkloadLine {
    pub vm: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub department: String,
    pub project: String,
    pub pods: usize,
    pub cpu_request: f64,
    pub memory_request_gib: f64,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    /// Why no sample was written, or which containers cannot be evaluated.
    pub note: String,
}

/// Lists everything with pages of 500, so a large cluster is not one huge response.
async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page: ObjectList<K> = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// `Api::all` or one `Api::namespaced` per configured namespace.
fn apis<K>(client: &Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    }
}

fn quantity(what: &str, text: &str) -> Option<f64> {
    match parse_quantity(text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(what, error = %e, "ignoring an unreadable quantity");
            None
        }
    }
}

/// Reads the cluster: nodes, running pods, ReplicaSet owners and pod metrics.
pub async fn snapshot(
    client: &Client,
    options: &DiscoveryOptions,
) -> Result<ClusterSnapshot, KubeError> {
    let list = |what: &'static str| move |source| KubeError::List { what, source };
    let nodes = list_all(&Api::<Node>::all(client.clone()))
        .await
        .map_err(list("nodes"))?;
    let mut snap = ClusterSnapshot {
        nodes: nodes.len(),
        ..Default::default()
    };
    for node in &nodes {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        if let Some(a) = allocatable {
            snap.node_cpu += a
                .get("cpu")
                .and_then(|q| quantity("node cpu", &q.0))
                .unwrap_or(0.0);
            snap.node_memory += a
                .get("memory")
                .and_then(|q| quantity("node memory", &q.0))
                .unwrap_or(0.0);
        }
    }
    for api in apis::<ReplicaSet>(client, &options.namespaces) {
        for rs in list_all(&api).await.map_err(list("replicasets"))? {
            let (Some(ns), Some(name)) = (rs.metadata.namespace.clone(), rs.metadata.name.clone())
            else {
                continue;
            };
            let deployment = controller(&rs.metadata)
                .filter(|o| o.kind == "Deployment")
                .map(|o| o.name);
            snap.replica_sets.insert((ns, name), deployment);
        }
    }
    for api in apis::<Pod>(client, &options.namespaces) {
        for pod in list_all(&api).await.map_err(list("pods"))? {
            // Only running pods hold their requests; finished and pending ones are not measured.
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && let Some(p) = pod_spec(&pod) {
                snap.pods.push(p);
            }
        }
    }
    match pod_metrics(client, &options.namespaces).await {
        Ok(usage) => {
            snap.usage = usage;
            snap.metrics_available = true;
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics.k8s.io did not answer (is metrics-server installed?): no samples this pass");
        }
    }
    Ok(snap)
}

fn controller(meta: &kube::api::ObjectMeta) -> Option<Owner> {
    let owners = meta.owner_references.as_ref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
        .map(|o| Owner {
            kind: o.kind.clone(),
            name: o.name.clone(),
        })
}

fn pod_spec(pod: &Pod) -> Option<PodSpec> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref()?;
    let containers = spec
        .containers
        .iter()
        .map(|c| {
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let request = |key: &str| {
                requests
                    .and_then(|r| r.get(key))
                    .and_then(|q| quantity(key, &q.0))
            };
            ContainerSpec {
                name: c.name.clone(),
                cpu_request: request("cpu"),
                memory_request: request("memory"),
            }
        })
        .collect();
    Some(PodSpec {
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        owner: controller(meta),
        containers,
    })
}

/// The `metrics.k8s.io/v1beta1` PodMetrics resource; there is no typed crate for it, so it is
/// read as a dynamic object.
fn pod_metrics_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    )
}

#[derive(serde::Deserialize)]
struct MetricsContainer {
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, String>,
}

async fn pod_metrics(client: &Client, namespaces: &[String]) -> Result<PodUsage, kube::Error> {
    let resource = pod_metrics_resource();
    let apis: Vec<Api<DynamicObject>> = if namespaces.is_empty() {
        vec![Api::all_with(client.clone(), &resource)]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, &resource))
            .collect()
    };
    let mut usage = PodUsage::new();
    for api in apis {
        for item in list_all(&api).await? {
            let (Some(ns), Some(name)) = (item.metadata.namespace, item.metadata.name) else {
                continue;
            };
            let containers: Vec<MetricsContainer> = match serde_json::from_value(
                item.data["containers"].clone(),
            ) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(namespace = %ns, pod = %name, error = %e, "unreadable pod metrics");
                    continue;
                }
            };
            let by_container: HashMap<String, Usage> = containers
                .into_iter()
                .filter_map(|c| {
                    let cpu = quantity("cpu usage", c.usage.get("cpu")?)?;
                    let memory = quantity("memory usage", c.usage.get("memory")?)?;
                    Some((c.name, Usage { cpu, memory }))
                })
                .collect();
            usage.insert((ns, name), by_container);
        }
    }
    Ok(usage)
}

/// One discovery pass as of `at`: read the cluster, map it, and (with `persist`) write the
/// workloads, their allocations and one sample each.
pub async fn discover(
    client: &Client,
    store: &Store,
    options: &DiscoveryOptions,
    at: DateTime<Utc>,
    persist: bool,
) -> Result<DiscoveryReport, KubeError> {
    let snap = snapshot(client, options).await?;
    let mapped = aggregate(&snap.pods, &snap.replica_sets, &snap.usage, &options.keys);
    let to_store = storable(&mapped);
    let written = if persist {
        Some(store.record_discovery(at, &to_store).await?)
    } else {
        None
    };
    let report = report(at, &snap, &mapped, written);
    tracing::info!(
        nodes = report.nodes,
        pods = report.pods,
        workloads = report.workloads.len(),
        skipped = report.skipped.len(),
        samples = report.written.as_ref().map_or(0, |w| w.samples_inserted),
        "kubernetes discovery pass"
    );
    for w in &report.workloads {
        if !w.note.is_empty() {
            tracing::info!(vm = %w.vm, note = %w.note, "kubernetes workload not fully evaluable");
        }
    }
    if let Some(written) = &report.written {
        for (vm, reason) in &written.rejected {
            tracing::warn!(vm = %vm, reason = %reason, "kubernetes workload not written");
        }
    }
    Ok(report)
}

/// Workloads that can be inventory rows: a workload with no CPU or no memory request has no
/// allocation to judge, so it is reported but not stored.
fn storable(mapped: &Mapped) -> Vec<DiscoveredVm> {
    mapped
        .workloads
        .iter()
        .filter(|w| w.cpu_request > 0.0 && w.memory_request > 0.0)
        .map(|w| DiscoveredVm {
            id: w.vm_id.clone(),
            department: w.department.clone(),
            project: w.project.clone(),
            vcpus: w.vcpus(),
            memory_gib: w.memory_gib(),
            memory_bytes: w.memory_request.round() as i64,
            description: format!(
                "k8s {} {}/{}",
                w.workload.kind, w.workload.namespace, w.workload.name
            ),
            sample: w.sample(),
        })
        .collect()
}

fn report(
    at: DateTime<Utc>,
    snap: &ClusterSnapshot,
    mapped: &Mapped,
    written: Option<DiscoveryWritten>,
) -> DiscoveryReport {
    let workloads = mapped
        .workloads
        .iter()
        .map(|w| {
            let mut notes = Vec::new();
            if w.cpu_request <= 0.0 || w.memory_request <= 0.0 {
                notes.push("no CPU or memory request: cannot be evaluated, not stored".to_owned());
            } else if !snap.metrics_available {
                notes.push("no metrics API: no sample".to_owned());
            } else if w.sample().is_none() {
                notes.push("no usage measured for containers with requests: no sample".to_owned());
            }
            if !w.without_requests.is_empty() {
                notes.push(format!(
                    "without requests, not evaluated: {}",
                    w.without_requests.join(", ")
                ));
            }
            WorkloadLine {
                vm: w.vm_id.to_string(),
                namespace: w.workload.namespace.clone(),
                kind: w.workload.kind.clone(),
                name: w.workload.name.clone(),
                department: w.department.to_string(),
                project: w.project.to_string(),
                pods: w.pods,
                cpu_request: w.cpu_request,
                memory_request_gib: w.memory_gib(),
                cpu_pct: w.cpu_pct.map(Percent::get),
                mem_pct: w.memory_pct.map(Percent::get),
                note: notes.join("; "),
            }
        })
        .collect();
    DiscoveryReport {
        at,
        nodes: snap.nodes,
        node_cpu: snap.node_cpu,
        node_memory_gib: snap.node_memory / 1024f64.powi(3),
        pods: snap.pods.len(),
        metrics_available: snap.metrics_available,
        workloads,
        skipped: mapped
            .skipped
            .iter()
            .map(|s| (format!("{}/{}", s.namespace, s.pod), s.reason.to_string()))
            .collect(),
        written,
    }
}

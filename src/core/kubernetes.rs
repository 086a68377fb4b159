//! The pure half of Kubernetes discovery: quantities, label mapping, workload grouping and the
//! percentages a discovery pass stores, over plain structs the IO half fills from the API.
//!
//! Architecture Invariant: no IO and no kube types here. The caller lists pods, ReplicaSets and
//! pod metrics and passes them in, so every rule below is testable without a cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use crate::core::domain::{DepartmentId, Percent, ProjectId, VmId};

/// A Kubernetes quantity that cannot be read (e.g. `"12x"`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("quantity {0:?} is not a Kubernetes quantity (e.g. 250m, 1.5, 128974848, 1Gi, 1e3)")]
pub struct BadQuantity(pub String);

/// Parses a Kubernetes quantity into a plain number: CPU in cores (`250m` = 0.25), memory in
/// bytes (`1Gi` = 1073741824). Decimal (`n u m k M G T P E`), binary (`Ki Mi Gi Ti Pi Ei`) and
/// exponent (`1e3`) forms are accepted, as the API server writes them.
pub fn parse_quantity(text: &str) -> Result<f64, BadQuantity> {
    let s = text.trim();
    let bad = || BadQuantity(text.to_owned());
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let base: f64 = number.parse().map_err(|_| bad())?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| bad())?;
            10f64.powi(e)
        }
        _ => return Err(bad()),
    };
    let value = base * factor;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// Which labels or annotations name a workload's department and project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingKeys {
    pub department: String,
    pub project: String,
}

pub const DEFAULT_DEPARTMENT_KEY: &str = "cloudgov.io/department";
pub const DEFAULT_PROJECT_KEY: &str = "cloudgov.io/project";

impl Default for MappingKeys {
    fn default() -> Self {
        MappingKeys {
            department: DEFAULT_DEPARTMENT_KEY.into(),
            project: DEFAULT_PROJECT_KEY.into(),
        }
    }
}

/// One container of a pod: its requests (cores, bytes), `None` where it has none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub cpu_request: Option<f64>,
    pub memory_request: Option<f64>,
}

/// The controller that owns an object (`ownerReferences` with `controller: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// A running pod as discovery needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner: Option<Owner>,
    pub containers: Vec<ContainerSpec>,
}

/// Measured usage of one container (cores, bytes), from `metrics.k8s.io`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    pub cpu: f64,
    pub memory: f64,
}

/// Usage by (namespace, pod) and container name.
pub type PodUsage = HashMap<(String, String), HashMap<String, Usage>>;

/// ReplicaSet (namespace, name) -> its owning Deployment, if any.
pub type ReplicaSetOwners = HashMap<(String, String), Option<String>>;

/// A workload as KRR groups pods: the Deployment behind a ReplicaSet, a StatefulSet, a
/// DaemonSet, another controller, or the bare pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadRef {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl WorkloadRef {
    /// The inventory id: `k8s.<namespace>.<name>` for a Deployment (the common case), and
    /// `k8s.<namespace>.<kind>.<name>` for other kinds, so a StatefulSet and a Deployment of the
    /// same name stay apart. Longer than 64 characters: cut, with a hash of the whole id.
    pub fn vm_id(&self) -> VmId {
        let full = if self.kind == "Deployment" {
            format!("k8s.{}.{}", self.namespace, self.name)
        } else {
            format!(
                "k8s.{}.{}.{}",
                self.namespace,
                self.kind.to_ascii_lowercase(),
                self.name
            )
        };
        shorten_vm_id(&full)
    }
}

/// Makes `full` a valid VM id: characters outside `A-Za-z0-9._-` become `-`, and an id over 64
/// characters keeps its first 55 and ends with `-` and 8 hex digits of the SHA-256 of the whole,
/// so two long names that share a prefix still get different ids.
pub fn shorten_vm_id(full: &str) -> VmId {
    let clean: String = full
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = if clean.len() <= 64 && clean == full {
        clean
    } else if clean.len() <= 64 {
        // Characters were replaced: add the hash so `a/b` and `a-b` do not meet.
        let hash = short_hash(full);
        let keep = clean.len().min(64 - 9);
        format!("{}-{hash}", &clean[..keep])
    } else {
        format!("{}-{}", &clean[..55], short_hash(full))
    };
    // Non-empty and only allowed ASCII characters by construction.
    VmId::try_from(id).unwrap_or_else(|e| unreachable!("{e}"))
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..4])
}

/// Where a pod's owner chain ends, the way KRR groups pods.
pub fn workload_of(pod: &PodSpec, replica_sets: &ReplicaSetOwners) -> WorkloadRef {
    let (kind, name) = match &pod.owner {
        None => ("Pod".to_owned(), pod.name.clone()),
        Some(o) if o.kind == "ReplicaSet" => {
            match replica_sets.get(&(pod.namespace.clone(), o.name.clone())) {
                Some(Some(deployment)) => ("Deployment".to_owned(), deployment.clone()),
                _ => ("ReplicaSet".to_owned(), o.name.clone()),
            }
        }
        Some(o) => (o.kind.clone(), o.name.clone()),
    };
    WorkloadRef {
        namespace: pod.namespace.clone(),
        kind,
        name,
    }
}

/// Why a pod or workload was left out of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Neither an annotation nor a label names the department.
    NoDepartment,
    /// The label or annotation is not a valid id.
    BadId { key: String, value: String },
    /// The pods of one workload disagree about their department or project.
    Conflict { detail: String },
    /// A Job's pod (also of a CronJob): batch work runs and ends, so there is no standing
    /// allocation to rightsize, and each run would otherwise become a new inventory entry.
    Batch { job: String },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NoDepartment => write!(f, "no department label or annotation"),
            SkipReason::BadId { key, value } => {
                write!(
                    f,
                    "{key}={value:?} is not a valid id (1-64 of A-Za-z0-9._-)"
                )
            }
            SkipReason::Conflict { detail } => write!(f, "{detail}"),
            SkipReason::Batch { job } => {
                write!(f, "pod of Job {job}: batch work is not evaluated")
            }
        }
    }
}

/// The department and project of a pod. An annotation wins over a label of the same key
/// (annotations are where operators put governance data that must not affect selectors). Without
/// a project key the project is the namespace.
pub fn map_pod(pod: &PodSpec, keys: &MappingKeys) -> Result<(DepartmentId, ProjectId), SkipReason> {
    let lookup = |key: &str| {
        pod.annotations
            .get(key)
            .or_else(|| pod.labels.get(key))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let department = lookup(&keys.department).ok_or(SkipReason::NoDepartment)?;
    let department =
        DepartmentId::try_from(department.as_str()).map_err(|_| SkipReason::BadId {
            key: keys.department.clone(),
            value: department.clone(),
        })?;
    let (project_key, project) = match lookup(&keys.project) {
        Some(p) => (keys.project.clone(), p),
        None => ("namespace".to_owned(), pod.namespace.clone()),
    };
    let project = ProjectId::try_from(project.as_str()).map_err(|_| SkipReason::BadId {
        key: project_key,
        value: project.clone(),
    })?;
    Ok((department, project))
}

/// One workload, summed over its running pods: what the inventory and the sample need.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub workload: WorkloadRef,
    pub vm_id: VmId,
    pub department: DepartmentId,
    pub project: ProjectId,
    pub pods: usize,
    /// Sum of CPU requests (cores) and memory requests (bytes) over all containers.
    pub cpu_request: f64,
    pub memory_request: f64,
    /// Sum of usage over the containers that have both a request and a measurement.
    pub cpu_usage: Option<f64>,
    pub memory_usage: Option<f64>,
    /// `usage / request * 100` over the same containers, clamped to 0..=100.
    pub cpu_pct: Option<Percent>,
    pub memory_pct: Option<Percent>,
    /// `pod/container` names without a CPU or memory request: they cannot be evaluated.
    pub without_requests: Vec<String>,
}

impl Workload {
    /// Whether a sample can be stored: both percentages exist (a sample row has both).
    pub fn sample(&self) -> Option<(f64, f64)> {
        Some((self.cpu_pct?.get(), self.memory_pct?.get()))
    }

    /// Whole vCPUs for the inventory row (which counts whole vCPUs): requests rounded up, at
    /// least 1.
    pub fn vcpus(&self) -> i64 {
        (self.cpu_request.ceil() as i64).max(1)
    }

    pub fn memory_gib(&self) -> f64 {
        self.memory_request / 1024f64.powi(3)
    }
}

/// A pod that was left out, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub namespace: String,
    pub pod: String,
    pub reason: SkipReason,
}

/// What one pass mapped: workloads to store, and pods left out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    pub workloads: Vec<Workload>,
    pub skipped: Vec<Skipped>,
}

/// `usage / request * 100`, clamped to 0..=100 (a container may use more than it requested;
/// over 100% means "at least all of it", which is what the expand rule needs to see).
pub fn percent(usage: f64, request: f64) -> Option<Percent> {
    if !(request > 0.0 && usage.is_finite()) {
        return None;
    }
    Percent::try_from((usage / request * 100.0).clamp(0.0, 100.0)).ok()
}

/// Groups running pods into workloads, maps them to departments and projects, and computes the
/// percentages. Output is ordered by VM id, so passes are comparable.
pub fn aggregate(
    pods: &[PodSpec],
    replica_sets: &ReplicaSetOwners,
    usage: &PodUsage,
    keys: &MappingKeys,
) -> Mapped {
    struct Acc {
        department: DepartmentId,
        project: ProjectId,
        pods: usize,
        cpu_request: f64,
        memory_request: f64,
        cpu_measured: (f64, f64),
        memory_measured: (f64, f64),
        any_cpu: bool,
        any_memory: bool,
        without_requests: BTreeSet<String>,
        pod_names: Vec<String>,
    }
    let mut skipped = Vec::new();
    let mut groups: BTreeMap<WorkloadRef, Acc> = BTreeMap::new();
    let mut conflicts: BTreeMap<WorkloadRef, String> = BTreeMap::new();
    for pod in pods {
        if let Some(job) = pod.owner.as_ref().filter(|o| o.kind == "Job") {
            skipped.push(Skipped {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                reason: SkipReason::Batch {
                    job: job.name.clone(),
                },
            });
            continue;
        }
        let (department, project) = match map_pod(pod, keys) {
            Ok(m) => m,
            Err(reason) => {
                skipped.push(Skipped {
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    reason,
                });
                continue;
            }
        };
        let workload = workload_of(pod, replica_sets);
        let acc = groups.entry(workload.clone()).or_insert_with(|| Acc {
            department: department.clone(),
            project: project.clone(),
            pods: 0,
            cpu_request: 0.0,
            memory_request: 0.0,
            cpu_measured: (0.0, 0.0),
            memory_measured: (0.0, 0.0),
            any_cpu: false,
            any_memory: false,
            without_requests: BTreeSet::new(),
            pod_names: Vec::new(),
        });
        if acc.department != department || acc.project != project {
            conflicts.entry(workload.clone()).or_insert_with(|| {
                format!(
                    "pods of {}/{} {} disagree: {}/{} and {}/{}",
                    workload.namespace,
                    workload.kind,
                    workload.name,
                    acc.department,
                    acc.project,
                    department,
                    project
                )
            });
        }
        acc.pods += 1;
        acc.pod_names.push(pod.name.clone());
        let measured = usage.get(&(pod.namespace.clone(), pod.name.clone()));
        for c in &pod.containers {
            let used = measured.and_then(|m| m.get(&c.name));
            if c.cpu_request.is_none() || c.memory_request.is_none() {
                acc.without_requests
                    .insert(format!("{}/{}", pod.name, c.name));
            }
            if let Some(req) = c.cpu_request.filter(|r| *r > 0.0) {
                acc.cpu_request += req;
                if let Some(u) = used {
                    acc.cpu_measured.0 += u.cpu;
                    acc.cpu_measured.1 += req;
                    acc.any_cpu = true;
                }
            }
            if let Some(req) = c.memory_request.filter(|r| *r > 0.0) {
                acc.memory_request += req;
                if let Some(u) = used {
                    acc.memory_measured.0 += u.memory;
                    acc.memory_measured.1 += req;
                    acc.any_memory = true;
                }
            }
        }
    }
    let mut workloads = Vec::with_capacity(groups.len());
    for (workload, acc) in groups {
        if let Some(detail) = conflicts.remove(&workload) {
            skipped.extend(acc.pod_names.into_iter().map(|pod| Skipped {
                namespace: workload.namespace.clone(),
                pod,
                reason: SkipReason::Conflict {
                    detail: detail.clone(),
                },
            }));
            continue;
        }
        let cpu_usage = acc.any_cpu.then_some(acc.cpu_measured.0);
        let memory_usage = acc.any_memory.then_some(acc.memory_measured.0);
        workloads.push(Workload {
            vm_id: workload.vm_id(),
            department: acc.department,
            project: acc.project,
            pods: acc.pods,
            cpu_request: acc.cpu_request,
            memory_request: acc.memory_request,
            cpu_pct: cpu_usage.and_then(|u| percent(u, acc.cpu_measured.1)),
            memory_pct: memory_usage.and_then(|u| percent(u, acc.memory_measured.1)),
            cpu_usage,
            memory_usage,
            without_requests: acc.without_requests.into_iter().collect(),
            workload,
        });
    }
    workloads.sort_by(|a, b| a.vm_id.cmp(&b.vm_id));
    Mapped { workloads, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_in_every_form_the_api_writes() {
        let close = |text: &str, want: f64| {
            let got = parse_quantity(text).expect(text);
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{text}: {got} != {want}"
            );
        };
        close("250m", 0.25);
        close("1Gi", 1073741824.0);
        close("128974848", 128974848.0);
        close("1.5", 1.5);
        close("2", 2.0);
        close("100Mi", 104857600.0);
        close("512Ki", 524288.0);
        close("1G", 1e9);
        close("12345678n", 0.012345678);
        close("1500u", 0.0015);
        close("1e3", 1000.0);
        close("0", 0.0);
        for bad in ["", "m", "12x", "1..5", "-1", "Gi", "1e", "1.5.2Gi"] {
            let e = parse_quantity(bad).expect_err(bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    fn pod(ns: &str, name: &str, owner: Option<(&str, &str)>) -> PodSpec {
        PodSpec {
            namespace: ns.into(),
            name: name.into(),
            owner: owner.map(|(kind, name)| Owner {
                kind: kind.into(),
                name: name.into(),
            }),
            containers: vec![ContainerSpec {
                name: "app".into(),
                cpu_request: Some(1.0),
                memory_request: Some(1024f64.powi(3)),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn annotation_wins_over_label_and_project_defaults_to_namespace() {
        let keys = MappingKeys::default();
        let mut p = pod("shop", "web-1", None);
        assert_eq!(map_pod(&p, &keys), Err(SkipReason::NoDepartment));
        p.labels.insert(DEFAULT_DEPARTMENT_KEY.into(), "edu".into());
        let (d, pr) = map_pod(&p, &keys).expect("mapped");
        assert_eq!((d.as_str(), pr.as_str()), ("edu", "shop"));
        p.annotations
            .insert(DEFAULT_DEPARTMENT_KEY.into(), "health".into());
        p.labels.insert(DEFAULT_PROJECT_KEY.into(), "his".into());
        let (d, pr) = map_pod(&p, &keys).expect("mapped");
        assert_eq!((d.as_str(), pr.as_str()), ("health", "his"));
        p.annotations
            .insert(DEFAULT_PROJECT_KEY.into(), "bad value".into());
        assert!(
            matches!(map_pod(&p, &keys), Err(SkipReason::BadId { value, .. }) if value == "bad value")
        );
        let custom = MappingKeys {
            department: "team".into(),
            project: "app".into(),
        };
        let mut q = pod("ns", "x", None);
        q.labels.insert("team".into(), "edu".into());
        q.labels.insert("app".into(), "enrol".into());
        let (d, pr) = map_pod(&q, &custom).expect("mapped");
        assert_eq!((d.as_str(), pr.as_str()), ("edu", "enrol"));
    }

    #[test]
    fn pods_group_by_their_controller_like_krr() {
        let mut rs = ReplicaSetOwners::new();
        rs.insert(("shop".into(), "web-7d9f".into()), Some("web".into()));
        rs.insert(("shop".into(), "lonely-rs".into()), None);
        let w = |p: &PodSpec| {
            let r = workload_of(p, &rs);
            (r.kind, r.name)
        };
        assert_eq!(
            w(&pod(
                "shop",
                "web-7d9f-abc",
                Some(("ReplicaSet", "web-7d9f"))
            )),
            ("Deployment".into(), "web".into())
        );
        assert_eq!(
            w(&pod("shop", "x", Some(("ReplicaSet", "lonely-rs")))),
            ("ReplicaSet".into(), "lonely-rs".into())
        );
        // An unknown ReplicaSet (not listed) stays a ReplicaSet rather than a guessed Deployment.
        assert_eq!(
            w(&pod("shop", "y", Some(("ReplicaSet", "gone-rs")))),
            ("ReplicaSet".into(), "gone-rs".into())
        );
        assert_eq!(
            w(&pod("shop", "db-0", Some(("StatefulSet", "db")))),
            ("StatefulSet".into(), "db".into())
        );
        assert_eq!(
            w(&pod("shop", "agent-x", Some(("DaemonSet", "agent")))),
            ("DaemonSet".into(), "agent".into())
        );
        assert_eq!(
            w(&pod("shop", "debug", None)),
            ("Pod".into(), "debug".into())
        );
    }

    #[test]
    fn vm_ids_are_valid_and_long_ones_are_cut_with_a_hash() {
        let r = |kind: &str, name: &str| WorkloadRef {
            namespace: "shop".into(),
            kind: kind.into(),
            name: name.into(),
        };
        assert_eq!(r("Deployment", "web").vm_id().as_str(), "k8s.shop.web");
        assert_eq!(
            r("StatefulSet", "db").vm_id().as_str(),
            "k8s.shop.statefulset.db"
        );
        let long_a = r("Deployment", &format!("{}-a", "x".repeat(70))).vm_id();
        let long_b = r("Deployment", &format!("{}-b", "x".repeat(70))).vm_id();
        assert_eq!(long_a.as_str().len(), 64);
        assert_ne!(long_a, long_b);
        assert!(long_a.as_str().starts_with("k8s.shop.xxx"));
        let odd = shorten_vm_id("k8s.a:b");
        assert!(odd.as_str().starts_with("k8s.a-b-"), "{odd}");
        assert_ne!(odd, shorten_vm_id("k8s.a-b"));
    }

    #[test]
    fn percentages_are_usage_over_request_clamped() {
        let p = |u, r| percent(u, r).map(Percent::get);
        assert_eq!(p(0.05, 1.0), Some(5.0));
        assert_eq!(p(3.0, 1.0), Some(100.0));
        assert_eq!(p(0.0, 2.0), Some(0.0));
        assert_eq!(p(1.0, 0.0), None);
        assert_eq!(p(f64::NAN, 1.0), None);
    }

    #[test]
    fn aggregation_sums_replicas_and_leaves_out_what_cannot_be_evaluated() {
        let mut rs = ReplicaSetOwners::new();
        rs.insert(("shop".into(), "web-1".into()), Some("web".into()));
        let labelled = |name: &str| {
            let mut p = pod("shop", name, Some(("ReplicaSet", "web-1")));
            p.labels.insert(DEFAULT_DEPARTMENT_KEY.into(), "edu".into());
            p.containers.push(ContainerSpec {
                name: "sidecar".into(),
                cpu_request: None,
                memory_request: None,
            });
            p
        };
        let mut no_requests = pod("shop", "bare", None);
        no_requests
            .labels
            .insert(DEFAULT_DEPARTMENT_KEY.into(), "edu".into());
        no_requests.containers[0].cpu_request = None;
        no_requests.containers[0].memory_request = None;
        let mut batch = labelled("report-29170");
        batch.owner = Some(Owner {
            kind: "Job".into(),
            name: "report-29170".into(),
        });
        let pods = vec![
            labelled("web-1-a"),
            labelled("web-1-b"),
            pod("shop", "unlabelled", None),
            no_requests,
            batch,
        ];
        let mut usage = PodUsage::new();
        for name in ["web-1-a", "web-1-b"] {
            usage.insert(
                ("shop".into(), name.into()),
                HashMap::from([
                    (
                        "app".to_owned(),
                        Usage {
                            cpu: 0.1,
                            memory: 0.25 * 1024f64.powi(3),
                        },
                    ),
                    // The sidecar's usage has no request to compare with: not counted.
                    (
                        "sidecar".to_owned(),
                        Usage {
                            cpu: 5.0,
                            memory: 1e12,
                        },
                    ),
                ]),
            );
        }
        let m = aggregate(&pods, &rs, &usage, &MappingKeys::default());
        assert_eq!(m.skipped.len(), 2);
        assert_eq!(m.skipped[0].pod, "unlabelled");
        assert_eq!(
            m.skipped[1].reason.to_string(),
            "pod of Job report-29170: batch work is not evaluated"
        );
        assert_eq!(m.workloads.len(), 2);
        let web = m
            .workloads
            .iter()
            .find(|w| w.vm_id.as_str() == "k8s.shop.web")
            .expect("web");
        assert_eq!(web.pods, 2);
        assert_eq!(web.cpu_request, 2.0);
        assert_eq!(web.vcpus(), 2);
        assert!((web.memory_gib() - 2.0).abs() < 1e-9);
        let (cpu, mem) = web.sample().expect("sample");
        assert!((cpu - 10.0).abs() < 1e-9, "{cpu}");
        assert!((mem - 25.0).abs() < 1e-9, "{mem}");
        assert_eq!(
            web.without_requests,
            vec!["web-1-a/sidecar", "web-1-b/sidecar"]
        );
        let bare = m
            .workloads
            .iter()
            .find(|w| w.vm_id.as_str() == "k8s.shop.pod.bare")
            .expect("bare");
        assert_eq!(bare.sample(), None, "no request: no invented number");
        assert_eq!(bare.without_requests, vec!["bare/app"]);
    }

    #[test]
    fn pods_of_one_workload_that_disagree_are_skipped() {
        let mut a = pod("shop", "db-0", Some(("StatefulSet", "db")));
        a.labels.insert(DEFAULT_DEPARTMENT_KEY.into(), "edu".into());
        let mut b = pod("shop", "db-1", Some(("StatefulSet", "db")));
        b.labels
            .insert(DEFAULT_DEPARTMENT_KEY.into(), "health".into());
        let m = aggregate(
            &[a, b],
            &ReplicaSetOwners::new(),
            &PodUsage::new(),
            &MappingKeys::default(),
        );
        assert!(m.workloads.is_empty());
        assert_eq!(m.skipped.len(), 2);
        assert!(m.skipped[0].reason.to_string().contains("disagree"));
    }
}

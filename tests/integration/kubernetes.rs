//! Kubernetes discovery and Lease election against a fake API server, plus one pass against a
//! real cluster when `KUBECONFIG` is set.
//!
//! The fake server is a mock, the one the standards allow: no Kubernetes cluster can run here.
//! It is axum on 127.0.0.1:0 and serves the JSON the real API server serves for the paths kube
//! calls (nodes, pods, ReplicaSets, `metrics.k8s.io` pod metrics, and Leases with
//! `resourceVersion` checks that answer 409 like the real one). Everything else is real: kube's
//! client over HTTP, the store (SQLite or PostgreSQL), the evaluation and the CLI binary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use cloudgov::core::inventory::Inventory;
use cloudgov::core::rules::RuleSet;
use cloudgov::daemon::lease::LeaseElector;
use cloudgov::jobs::evaluation::evaluate;
use cloudgov::jobs::kubernetes::{DiscoveryOptions, discover};
use serde_json::{Value, json};

use crate::helpers::{INVENTORY, fresh_db, install_crypto_provider, ok, write_file};

#[derive(Default)]
struct FakeCluster {
    pods: Vec<Value>,
    replica_sets: Vec<Value>,
    metrics: Vec<Value>,
    /// (namespace, name) -> Lease object as stored, with its resourceVersion.
    leases: HashMap<(String, String), Value>,
    next_version: u64,
    /// Answer 404 on `metrics.k8s.io`, as a cluster without metrics-server does.
    no_metrics_server: bool,
}

type Shared = Arc<Mutex<FakeCluster>>;

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Json<Value> {
    Json(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }))
}

fn in_namespace(items: &[Value], ns: Option<&str>) -> Vec<Value> {
    items
        .iter()
        .filter(|i| ns.is_none_or(|ns| i["metadata"]["namespace"] == ns))
        .cloned()
        .collect()
}

/// A `Status` body as the API server sends with an error code.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        Json(json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "code": code.as_u16(), "reason": reason, "message": message,
        })),
    )
        .into_response()
}

async fn nodes() -> Json<Value> {
    let node = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
               "status": {"allocatable": {"cpu": "3900m", "memory": "16Gi"}}})
    };
    list("NodeList", "v1", vec![node("node-a"), node("node-b")])
}

async fn pods_all(State(c): State<Shared>) -> Json<Value> {
    let c = c.lock().expect("lock");
    list("PodList", "v1", in_namespace(&c.pods, None))
}

async fn pods_ns(State(c): State<Shared>, Path(ns): Path<String>) -> Json<Value> {
    let c = c.lock().expect("lock");
    list("PodList", "v1", in_namespace(&c.pods, Some(&ns)))
}

async fn replica_sets_all(State(c): State<Shared>) -> Json<Value> {
    let c = c.lock().expect("lock");
    list(
        "ReplicaSetList",
        "apps/v1",
        in_namespace(&c.replica_sets, None),
    )
}

async fn replica_sets_ns(State(c): State<Shared>, Path(ns): Path<String>) -> Json<Value> {
    let c = c.lock().expect("lock");
    list(
        "ReplicaSetList",
        "apps/v1",
        in_namespace(&c.replica_sets, Some(&ns)),
    )
}

async fn metrics_all(State(c): State<Shared>) -> Response {
    let c = c.lock().expect("lock");
    if c.no_metrics_server {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    list(
        "PodMetricsList",
        "metrics.k8s.io/v1beta1",
        in_namespace(&c.metrics, None),
    )
    .into_response()
}

async fn metrics_ns(State(c): State<Shared>, Path(ns): Path<String>) -> Json<Value> {
    let c = c.lock().expect("lock");
    list(
        "PodMetricsList",
        "metrics.k8s.io/v1beta1",
        in_namespace(&c.metrics, Some(&ns)),
    )
}

async fn lease_get(State(c): State<Shared>, Path((ns, name)): Path<(String, String)>) -> Response {
    let c = c.lock().expect("lock");
    match c.leases.get(&(ns, name.clone())) {
        Some(l) => Json(l.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    }
}

async fn lease_create(
    State(c): State<Shared>,
    Path(ns): Path<String>,
    Json(mut lease): Json<Value>,
) -> Response {
    let mut c = c.lock().expect("lock");
    let name = lease["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if c.leases.contains_key(&(ns.clone(), name.clone())) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("leases.coordination.k8s.io \"{name}\" already exists"),
        );
    }
    c.next_version += 1;
    lease["metadata"]["resourceVersion"] = json!(c.next_version.to_string());
    lease["metadata"]["namespace"] = json!(ns.clone());
    c.leases.insert((ns, name), lease.clone());
    (StatusCode::CREATED, Json(lease)).into_response()
}

async fn lease_replace(
    State(c): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Json(mut lease): Json<Value>,
) -> Response {
    let mut c = c.lock().expect("lock");
    let Some(stored) = c.leases.get(&(ns.clone(), name.clone())) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "lease not found");
    };
    // Optimistic concurrency as the API server does it: the write must name the version read.
    if lease["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            "Operation cannot be fulfilled on leases.coordination.k8s.io: the object has been modified",
        );
    }
    c.next_version += 1;
    lease["metadata"]["resourceVersion"] = json!(c.next_version.to_string());
    c.leases.insert((ns, name), lease.clone());
    Json(lease).into_response()
}

/// Starts the fake API server; returns its base URL and the shared cluster state.
async fn fake_api_server(cluster: FakeCluster) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(cluster));
    let app = axum::Router::new()
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/pods", get(pods_all))
        .route("/api/v1/namespaces/{ns}/pods", get(pods_ns))
        .route("/apis/apps/v1/replicasets", get(replica_sets_all))
        .route(
            "/apis/apps/v1/namespaces/{ns}/replicasets",
            get(replica_sets_ns),
        )
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(metrics_all))
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
            get(metrics_ns),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            axum::routing::post(lease_create),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(lease_get).put(lease_replace),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake API server");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), shared)
}

fn client(base: &str) -> kube::Client {
    install_crypto_provider();
    let config = kube::Config::new(base.parse().expect("server URL"));
    kube::Client::try_from(config).expect("kube client")
}

/// A running pod with the given owner, labels, annotations and per-container requests.
fn pod(
    ns: &str,
    name: &str,
    owner: Option<(&str, &str)>,
    labels: Value,
    annotations: Value,
    containers: Value,
) -> Value {
    let mut meta = json!({"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                          "labels": labels, "annotations": annotations});
    if let Some((kind, owner_name)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": owner_name, "uid": format!("uid-{owner_name}"), "controller": true}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
           "spec": {"containers": containers}, "status": {"phase": "Running"}})
}

fn metrics(ns: &str, name: &str, containers: Value) -> Value {
    json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
           "metadata": {"name": name, "namespace": ns},
           "timestamp": "2025-07-01T00:00:00Z", "window": "30s", "containers": containers})
}

/// Two departments' workloads and one unlabelled pod:
/// - `shop/web`: a Deployment (through ReplicaSet web-6d4cf) of two pods for health/his,
///   each requesting 2 CPUs and 4 GiB and using 50m and 200 MiB: idle. Each pod also has a
///   sidecar without requests.
/// - `school/db`: a StatefulSet pod whose annotation (edu) wins over its label (health), with
///   no project key (project = namespace "school"), requesting 500m and 1 GiB and using 900m
///   and 1000 MiB: hot.
/// - `shop/nightly-report-...`: a Job's pod: batch work, skipped.
/// - `shop/debug`: a bare pod without any mapping: skipped.
fn cluster() -> FakeCluster {
    let web_containers = json!([
        {"name": "app", "image": "shop/web:1", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}},
        {"name": "sidecar", "image": "proxy:1"}
    ]);
    let health = json!({"cloudgov.io/department": "health", "cloudgov.io/project": "his"});
    let mut pending = pod(
        "shop",
        "web-6d4cf-pending",
        Some(("ReplicaSet", "web-6d4cf")),
        health.clone(),
        json!({}),
        web_containers.clone(),
    );
    pending["status"]["phase"] = json!("Pending");
    FakeCluster {
        pods: vec![
            pod(
                "shop",
                "web-6d4cf-a1",
                Some(("ReplicaSet", "web-6d4cf")),
                health.clone(),
                json!({}),
                web_containers.clone(),
            ),
            pod(
                "shop",
                "web-6d4cf-b2",
                Some(("ReplicaSet", "web-6d4cf")),
                health,
                json!({}),
                web_containers,
            ),
            pending,
            pod(
                "school",
                "db-0",
                Some(("StatefulSet", "db")),
                json!({"cloudgov.io/department": "health"}),
                json!({"cloudgov.io/department": "edu"}),
                json!([{"name": "postgres", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]),
            ),
            pod(
                "shop",
                "nightly-report-29170-x7",
                Some(("Job", "nightly-report-29170")),
                json!({"cloudgov.io/department": "health"}),
                json!({}),
                json!([{"name": "report", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]),
            ),
            pod(
                "shop",
                "debug",
                None,
                json!({"run": "debug"}),
                json!({}),
                json!([{"name": "shell", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]),
            ),
        ],
        replica_sets: vec![json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-6d4cf", "namespace": "shop", "uid": "uid-web-6d4cf",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "uid": "uid-web", "controller": true}]},
        })],
        metrics: vec![
            metrics(
                "shop",
                "web-6d4cf-a1",
                json!([{"name": "app", "usage": {"cpu": "50000000n", "memory": "200Mi"}},
                       {"name": "sidecar", "usage": {"cpu": "3", "memory": "1Gi"}}]),
            ),
            metrics(
                "shop",
                "web-6d4cf-b2",
                json!([{"name": "app", "usage": {"cpu": "50m", "memory": "204800Ki"}},
                       {"name": "sidecar", "usage": {"cpu": "3", "memory": "1Gi"}}]),
            ),
            metrics(
                "school",
                "db-0",
                json!([{"name": "postgres", "usage": {"cpu": "900m", "memory": "1000Mi"}}]),
            ),
            metrics(
                "shop",
                "debug",
                json!([{"name": "shell", "usage": {"cpu": "1m", "memory": "1Mi"}}]),
            ),
        ],
        ..Default::default()
    }
}

fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         users:\n- name: fake\n  user: {{}}\ncurrent-context: fake\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_workloads_are_evaluated_like_vms() {
    let (base, _cluster) = fake_api_server(cluster()).await;
    let db = fresh_db().await;
    let store = cloudgov::store::Store::connect(&db.url)
        .await
        .expect("open store");
    store
        .apply_inventory(&Inventory::parse("inventory", INVENTORY).expect("inventory"))
        .await
        .expect("inventory");
    let client = client(&base);
    let options = DiscoveryOptions::default();
    let start: DateTime<Utc> = "2025-07-01T00:00:00Z".parse().expect("instant");

    // Eight days of passes, four a day: past the rules' 7-day minimum.
    let mut last = start;
    for day in 0..8 {
        for hour in [2, 8, 14, 20] {
            last = start + TimeDelta::days(day) + TimeDelta::hours(hour);
            let report = discover(&client, &store, &options, last, true)
                .await
                .expect("discovery pass");
            assert_eq!(report.nodes, 2);
            assert!((report.node_cpu - 7.8).abs() < 1e-9);
            assert_eq!(report.pods, 5, "the pending pod is not counted");
            assert_eq!(report.workloads.len(), 2);
            assert_eq!(
                report.skipped,
                vec![
                    (
                        "shop/nightly-report-29170-x7".to_owned(),
                        "pod of Job nightly-report-29170: batch work is not evaluated".to_owned()
                    ),
                    (
                        "shop/debug".to_owned(),
                        "no department label or annotation".to_owned()
                    ),
                ]
            );
            let written = report.written.expect("persisted");
            assert_eq!(written.samples_inserted, 2);
            assert!(written.rejected.is_empty(), "{:?}", written.rejected);
        }
    }

    let vms = store.vms().await.expect("vms");
    let find = |id: &str| vms.iter().find(|v| v.id.as_str() == id);
    let web = find("k8s.shop.web").expect("web in the inventory");
    assert_eq!(
        (web.department.as_str(), web.project.as_str()),
        ("health", "his")
    );
    assert_eq!(web.vcpus, 4, "two replicas of 2 CPUs");
    assert!((web.memory_gib - 8.0).abs() < 1e-9);
    assert_eq!(
        web.deployed_on,
        Some(chrono::NaiveDate::from_ymd_opt(2025, 7, 1).expect("date"))
    );
    let db_vm = find("k8s.school.statefulset.db").expect("db in the inventory");
    assert_eq!(
        (db_vm.department.as_str(), db_vm.project.as_str()),
        ("edu", "school"),
        "the annotation wins over the label; the project defaults to the namespace"
    );
    assert_eq!(db_vm.vcpus, 1, "500m rounds up to one whole vCPU");
    assert!(
        vms.iter().all(|v| !v.id.as_str().contains("debug")),
        "the unlabelled pod is not in the inventory"
    );
    assert!(
        vms.iter().all(|v| !v.id.as_str().contains("report")),
        "the Job's pod is not in the inventory"
    );
    assert_eq!(store.count_samples(Some(web.key)).await.expect("count"), 32);

    let rules = RuleSet::builtin().expect("rules");
    let report = evaluate(&store, &rules, last, true)
        .await
        .expect("evaluation");
    let verdict = |vm: &str, resource: &str| {
        report
            .findings
            .iter()
            .find(|f| f.vm == vm && f.resource.as_str() == resource)
            .map(|f| f.verdict.to_string())
            .unwrap_or_else(|| panic!("no {resource} finding for {vm}"))
    };
    assert_eq!(verdict("k8s.shop.web", "cpu"), "downsize");
    assert_eq!(verdict("k8s.shop.web", "memory"), "downsize");
    assert_eq!(verdict("k8s.school.statefulset.db", "cpu"), "expand");
    assert_eq!(verdict("k8s.school.statefulset.db", "memory"), "expand");
    assert_eq!(
        verdict("k8s.shop.web", "disk"),
        "insufficient_data",
        "pods have no disk to measure"
    );
    assert!(report.notices_opened >= 4, "{}", report.notices_opened);

    // The CLI pass through a kubeconfig file, restricted to one namespace, prints the table.
    let config = write_file(&db.dir, "kubeconfig.yaml", &kubeconfig(&base));
    let at = (last + TimeDelta::hours(1)).to_rfc3339();
    let db_url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::cloudgov_cmd(
            &db_url,
            &[
                "kubernetes",
                "discover",
                "--kubeconfig",
                &config,
                "--kubernetes-namespace",
                "shop",
                "--at",
                &at,
            ],
        )
    })
    .await
    .expect("join");
    let text = ok(out);
    println!("{text}");
    assert!(text.contains("k8s.shop.web"), "{text}");
    assert!(!text.contains("k8s.school"), "namespace filter: {text}");
    assert!(text.contains("2.5"), "CPU% of web: {text}");
    assert!(
        text.contains("without requests, not evaluated: web-6d4cf-a1/sidecar"),
        "{text}"
    );
    assert!(text.contains("skipped shop/debug"), "{text}");
    assert!(text.contains("1 samples written"), "{text}");
    assert_eq!(store.count_samples(Some(web.key)).await.expect("count"), 33);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_in_an_unknown_department_is_not_written() {
    let (base, _cluster) = fake_api_server(cluster()).await;
    let db = fresh_db().await;
    let store = cloudgov::store::Store::connect(&db.url)
        .await
        .expect("open store");
    let at: DateTime<Utc> = "2025-07-01T00:00:00Z".parse().expect("instant");
    let report = discover(
        &client(&base),
        &store,
        &DiscoveryOptions::default(),
        at,
        true,
    )
    .await
    .expect("discovery pass");
    let written = report.written.expect("persisted");
    assert_eq!(written.vms_added, 0);
    assert_eq!(written.rejected.len(), 2);
    assert!(
        written
            .rejected
            .iter()
            .any(|(vm, why)| vm == "k8s.shop.web"
                && why == "department health is not in the inventory"),
        "{:?}",
        written.rejected
    );
    assert!(store.vms().await.expect("vms").is_empty());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_server_the_inventory_is_kept_but_no_sample_is_invented() {
    let (base, _cluster) = fake_api_server(FakeCluster {
        no_metrics_server: true,
        ..cluster()
    })
    .await;
    let db = fresh_db().await;
    let store = cloudgov::store::Store::connect(&db.url)
        .await
        .expect("open store");
    store
        .apply_inventory(&Inventory::parse("inventory", INVENTORY).expect("inventory"))
        .await
        .expect("inventory");
    let at: DateTime<Utc> = "2025-07-01T00:00:00Z".parse().expect("instant");
    let report = discover(
        &client(&base),
        &store,
        &DiscoveryOptions::default(),
        at,
        true,
    )
    .await
    .expect("a pass without metrics still succeeds");
    assert!(!report.metrics_available);
    let written = report.written.expect("persisted");
    assert_eq!(written.vms_added, 2);
    assert_eq!(written.samples_inserted, 0);
    assert!(
        report
            .workloads
            .iter()
            .all(|w| w.cpu_pct.is_none() && w.note.contains("no metrics API")),
        "{:?}",
        report.workloads
    );
    assert_eq!(store.count_samples(None).await.expect("count"), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_holder_and_takeover_after_expiry() {
    let (base, cluster) = fake_api_server(FakeCluster::default()).await;
    let c = client(&base);
    let duration = Duration::from_secs(2);
    let a = LeaseElector::new(c.clone(), "ops", "cloudgov", "replica-a", duration);
    let b = LeaseElector::new(c.clone(), "ops", "cloudgov", "replica-b", duration);
    let t0: DateTime<Utc> = "2025-07-01T00:00:00Z".parse().expect("instant");

    // Both race for the absent Lease: the API server accepts one create.
    let (won_a, won_b) = tokio::join!(a.try_acquire_or_renew(t0), b.try_acquire_or_renew(t0));
    let (won_a, won_b) = (won_a.expect("a"), won_b.expect("b"));
    assert!(won_a ^ won_b, "exactly one wins: a={won_a} b={won_b}");
    let (holder, other) = if won_a { (&a, &b) } else { (&b, &a) };
    assert_eq!(
        holder.holder().await.expect("holder").as_deref(),
        Some(holder.identity())
    );

    // The holder renews; the other cannot take a Lease that has not expired.
    let t1 = t0 + TimeDelta::seconds(1);
    assert!(holder.try_acquire_or_renew(t1).await.expect("renew"));
    assert!(!other.try_acquire_or_renew(t1).await.expect("try"));
    let t2 = t1 + TimeDelta::milliseconds(1900);
    assert!(
        !other.try_acquire_or_renew(t2).await.expect("try"),
        "renewed at t1: valid until t1 + 2 s"
    );

    // The holder stops renewing: after the duration the other takes over, and the old holder
    // cannot come back while the new one holds it.
    let t3 = t1 + TimeDelta::milliseconds(2100);
    assert!(other.try_acquire_or_renew(t3).await.expect("take over"));
    assert!(!holder.try_acquire_or_renew(t3).await.expect("try"));
    {
        let c = cluster.lock().expect("lock");
        let lease = &c.leases[&("ops".to_owned(), "cloudgov".to_owned())];
        assert_eq!(lease["spec"]["holderIdentity"], other.identity());
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);
    }

    // Two replicas racing for an expired Lease: one write names a stale resourceVersion (409).
    // Expiry is judged on each replica's own clock from when it first saw the Lease's version,
    // so the latecomer must have seen it before the race.
    let late = LeaseElector::new(c.clone(), "ops", "cloudgov", "replica-c", duration);
    assert!(!late.try_acquire_or_renew(t3).await.expect("first look"));
    let t4 = t3 + TimeDelta::seconds(10);
    let (h, l) = tokio::join!(
        holder.try_acquire_or_renew(t4),
        late.try_acquire_or_renew(t4)
    );
    let (h, l) = (h.expect("holder"), l.expect("late"));
    assert!(h ^ l, "exactly one takes the expired lease: {h} {l}");

    // Releasing hands over at once, without waiting for the duration.
    let (winner, loser) = if h { (holder, &late) } else { (&late, holder) };
    winner.release().await.expect("release");
    assert_eq!(winner.holder().await.expect("holder"), None);
    assert!(loser.try_acquire_or_renew(t4).await.expect("acquire"));

    // A holder whose clock is an hour behind writes a renewTime that looks stale; another
    // replica still waits the duration from its own first sight of that version.
    let skewed = LeaseElector::new(c.clone(), "ops", "skew", "replica-slow-clock", duration);
    let watcher = LeaseElector::new(c.clone(), "ops", "skew", "replica-watcher", duration);
    assert!(
        skewed
            .try_acquire_or_renew(t4 - TimeDelta::hours(1))
            .await
            .expect("create")
    );
    assert!(!watcher.try_acquire_or_renew(t4).await.expect("first look"));
    assert!(
        !watcher
            .try_acquire_or_renew(t4 + TimeDelta::milliseconds(1900))
            .await
            .expect("within the duration")
    );
    assert!(
        watcher
            .try_acquire_or_renew(t4 + TimeDelta::milliseconds(2100))
            .await
            .expect("after the duration")
    );
}

/// In real time: a holder that dies without releasing (its task aborted) is replaced once the
/// Lease lapses, within the duration plus a renewal period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_stops_renewing_is_replaced_after_the_duration() {
    use cloudgov::daemon::kubernetes::hold_lease;
    use tokio::sync::watch;
    let (base, _cluster) = fake_api_server(FakeCluster::default()).await;
    let c = client(&base);
    let duration = Duration::from_secs(2);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let (a_tx, a_leads) = watch::channel(false);
    let a = Arc::new(LeaseElector::new(
        c.clone(),
        "ops",
        "cloudgov",
        "a",
        duration,
    ));
    let a_task = tokio::spawn(hold_lease(a, a_tx, stop_rx.clone()));
    let t = Instant::now();
    while !*a_leads.borrow() {
        assert!(t.elapsed() < Duration::from_secs(5), "a never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (b_tx, b_leads) = watch::channel(false);
    let b = Arc::new(LeaseElector::new(
        c.clone(),
        "ops",
        "cloudgov",
        "b",
        duration,
    ));
    let b_task = tokio::spawn(hold_lease(b.clone(), b_tx, stop_rx.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!*b_leads.borrow(), "b must not lead while a renews");
    a_task.abort();
    let died = Instant::now();
    while !*b_leads.borrow() {
        assert!(
            died.elapsed() < Duration::from_secs(6),
            "b did not take over after a stopped renewing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        died.elapsed() >= Duration::from_millis(1000),
        "b took over before the lease could lapse: {:?}",
        died.elapsed()
    );
    assert_eq!(b.holder().await.expect("holder").as_deref(), Some("b"));
    b_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_elect_one_leader_through_the_lease_and_hand_over() {
    use cloudgov::daemon::{Daemon, Elector, Schedule};
    let (base, _cluster) = fake_api_server(FakeCluster::default()).await;
    let c = client(&base);
    let start = |identity: &'static str| {
        let c = c.clone();
        async move {
            let db = fresh_db().await;
            let store = cloudgov::store::Store::connect(&db.url)
                .await
                .expect("store");
            let ctx = cloudgov::jobs::JobContext {
                store,
                rules: Arc::new(RuleSet::builtin().expect("rules")),
                calendar: Arc::new(
                    cloudgov::core::calendar::Calendar::builtin().expect("calendar"),
                ),
                notifier: Arc::new(
                    cloudgov::jobs::notify::Notifier::without_smtp().expect("notifier"),
                ),
                prices: cloudgov::core::review::rules::ReviewRules::builtin()
                    .expect("review rules")
                    .prices,
            };
            let elector = Arc::new(LeaseElector::new(
                c,
                "ops",
                "cloudgov",
                identity,
                Duration::from_secs(3),
            ));
            let daemon = Daemon::start(
                ctx,
                "127.0.0.1:0".parse().expect("addr"),
                Schedule {
                    elector: Elector::Lease(elector),
                    ..Schedule::default()
                },
            )
            .await
            .expect("daemon");
            (daemon, db)
        }
    };
    let (first, _db1) = start("replica-1").await;
    let (second, _db2) = start("replica-2").await;
    let leads = |addr: std::net::SocketAddr| async move {
        let v: Value = reqwest::get(format!("http://{addr}/api/v1/status"))
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        v["leader"].as_bool().expect("leader field")
    };
    let wait_until = |what: &'static str, deadline: Duration| {
        let first = first.addr;
        let second = second.addr;
        async move {
            let t = Instant::now();
            loop {
                let state = (leads(first).await, leads(second).await);
                if let Some(s) = match what {
                    "one" => (state.0 ^ state.1).then_some(state),
                    _ => (!state.0 && state.1).then_some(state),
                } {
                    return s;
                }
                assert!(t.elapsed() < deadline, "{what}: still {state:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (first_leads, _) = wait_until("one", Duration::from_secs(10)).await;
    // Stop whichever leads: it releases the Lease and the other takes over.
    let (leader, follower) = if first_leads {
        (first, second)
    } else {
        (second, first)
    };
    leader.stop().await.expect("stop leader");
    let t = Instant::now();
    loop {
        if leads(follower.addr).await {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the follower never took over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    follower.stop().await.expect("stop follower");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leading_daemon_discovers_periodically() {
    use cloudgov::daemon::kubernetes::DiscoveryJob;
    use cloudgov::daemon::{Daemon, Schedule};
    let (base, _cluster) = fake_api_server(cluster()).await;
    let db = fresh_db().await;
    let store = cloudgov::store::Store::connect(&db.url)
        .await
        .expect("store");
    store
        .apply_inventory(&Inventory::parse("inventory", INVENTORY).expect("inventory"))
        .await
        .expect("inventory");
    let ctx = cloudgov::jobs::JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin().expect("rules")),
        calendar: Arc::new(cloudgov::core::calendar::Calendar::builtin().expect("calendar")),
        notifier: Arc::new(cloudgov::jobs::notify::Notifier::without_smtp().expect("notifier")),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()
            .expect("review rules")
            .prices,
    };
    let daemon = Daemon::start(
        ctx,
        "127.0.0.1:0".parse().expect("addr"),
        Schedule {
            kubernetes: Some(DiscoveryJob {
                client: client(&base),
                options: DiscoveryOptions::default(),
                every: Duration::from_millis(300),
            }),
            ..Schedule::default()
        },
    )
    .await
    .expect("daemon");
    let t = Instant::now();
    let web_samples = loop {
        let keys = store.vm_keys().await.expect("keys");
        if let Some(&key) = keys.get("k8s.shop.web") {
            let n = store.count_samples(Some(key)).await.expect("count");
            // Samples are unique per second: two passes a second apart prove the loop runs.
            if n >= 2 {
                break n;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no periodic discovery"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(web_samples >= 2);
    daemon.stop().await.expect("stop");
    store.close().await;
}

/// Runs only with `KUBECONFIG` set: one real discovery pass (dry run) and a Lease acquired and
/// released in `CLOUDGOV_TEST_LEASE_NAMESPACE` (default `default`).
/// No cluster can run on the test machine, so this test is marked ignored (never a silent pass):
/// `KUBECONFIG=FILE cargo test --test integration -- --ignored kubernetes::real_cluster`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: KUBECONFIG=FILE cargo test --test integration -- --ignored kubernetes::real_cluster"]
async fn real_cluster_when_kubeconfig_is_set() {
    let path = std::env::var_os("KUBECONFIG")
        .filter(|p| !p.is_empty())
        .expect("KUBECONFIG names the cluster's kubeconfig file");
    install_crypto_provider();
    let path = std::path::PathBuf::from(path);
    let client = cloudgov::jobs::kubernetes::connect(Some(&path))
        .await
        .expect("client from KUBECONFIG");
    let db = fresh_db().await;
    let store = cloudgov::store::Store::connect(&db.url)
        .await
        .expect("store");
    let report = discover(
        &client,
        &store,
        &DiscoveryOptions::default(),
        Utc::now(),
        false,
    )
    .await
    .expect("discovery on the real cluster");
    assert!(report.nodes > 0, "a cluster has nodes");
    println!(
        "real cluster: {} nodes, {} pods, {} workloads, metrics: {}",
        report.nodes,
        report.pods,
        report.workloads.len(),
        report.metrics_available
    );
    let namespace =
        std::env::var("CLOUDGOV_TEST_LEASE_NAMESPACE").unwrap_or_else(|_| "default".into());
    let name = format!("cloudgov-test-{}", std::process::id());
    let elector = LeaseElector::new(
        client.clone(),
        &namespace,
        &name,
        "cloudgov-test",
        Duration::from_secs(5),
    );
    assert!(
        elector
            .try_acquire_or_renew(Utc::now())
            .await
            .expect("acquire")
    );
    assert_eq!(
        elector.holder().await.expect("holder").as_deref(),
        Some("cloudgov-test")
    );
    elector.release().await.expect("release");
    assert_eq!(elector.holder().await.expect("holder"), None);
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, &namespace);
    api.delete(&name, &Default::default())
        .await
        .expect("delete the test lease");
    store.close().await;
}

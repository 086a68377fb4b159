//! Agent -> daemon: the real agent process reporting to the daemon, and the ingest API's checks.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{INVENTORY, TestApp, agent_binary, ok, spawn_app, write_file};
use serde_json::{Value, json};

async fn app_with_token(vm: &str) -> (TestApp, String) {
    let app = spawn_app().await;
    let inv = write_file(&app.db.dir, "inventory.toml", INVENTORY);
    ok(app.cloudgov(&["import", "inventory", &inv]));
    let token = ok(app.cloudgov(&["vm", "issue-token", vm]))
        .trim()
        .to_owned();
    assert!(token.starts_with("cgv_"), "{token}");
    (app, token)
}

/// A JSON `POST /api/v1/ingest` with `token`, its body still to be set.
fn ingest_request(client: &reqwest::Client, app: &TestApp, token: &str) -> reqwest::RequestBuilder {
    client
        .post(app.url("/api/v1/ingest"))
        .bearer_auth(token)
        .header("content-type", "application/json")
}

async fn vm_key(app: &TestApp, vm: &str) -> i64 {
    app.store.vm_keys().await.expect("keys")[vm]
}

fn agent(app: &TestApp, token: &str) -> Command {
    let mut cmd = Command::new(agent_binary());
    cmd.env("CLOUDGOV_AGENT_SERVER", &app.base)
        .env("CLOUDGOV_AGENT_TOKEN", token)
        // Each test its own spool: the default is a system directory shared by every agent.
        .env("CLOUDGOV_AGENT_SPOOL_DIR", app.db.dir.path().join("spool"))
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_agent_reports_and_the_daemon_stores_it() {
    let (app, token) = app_with_token("agent-01").await;
    let key = vm_key(&app, "agent-01").await;

    let out = agent(&app, &token)
        .arg("--once")
        .output()
        .expect("run agent");
    assert!(
        out.status.success(),
        "agent --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.store.count_samples(Some(key)).await.expect("count"), 1);

    let agents = app.store.agents().await.expect("agents");
    assert_eq!(agents.len(), 1);
    let a = &agents[0];
    assert_eq!(a.vm, "agent-01");
    assert!(
        !a.hostname.is_empty() && a.vcpus >= 1 && a.memory_bytes > 0,
        "{a:?}"
    );
    assert_eq!(a.last_seq, 1);

    // The long-running pipeline: reports keep arriving at the configured interval.
    let mut child = agent(&app, &token)
        .args(["--interval", "1"])
        .spawn()
        .expect("spawn agent");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stored = 0;
    while Instant::now() < deadline {
        stored = app.store.count_samples(Some(key)).await.expect("count");
        if stored >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        stored >= 4,
        "only {stored} samples arrived from the running agent"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused_by_the_agent_and_the_api() {
    let (app, _token) = app_with_token("agent-01").await;
    let out = agent(&app, "cgv_wrong")
        .arg("--once")
        .output()
        .expect("run agent");
    assert!(!out.status.success(), "agent must fail with a wrong token");

    let resp = ingest_request(&reqwest::Client::new(), &app, "cgv_wrong")
        .json(&json!({"reports": []}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json error");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(app.store.count_samples(None).await.expect("count"), 0);
    app.stop().await;
}

pub(crate) fn report(seq: u64, collected_at: &str, cpu: Value) -> Value {
    json!({
        "seq": seq, "collected_at": collected_at,
        "host": {"hostname": "h", "machine_id": null, "os": "Linux", "agent_version": "test"},
        "cpu_pct": cpu, "mem_pct": 40.0,
        "filesystems": [{"mount_point": "/", "fs_type": "ext4", "device": "/dev/vda1",
                         "total_bytes": 1000, "used_bytes": 250}],
        "capacity": {"vcpus": 2, "memory_bytes": 4_294_967_296u64, "disk_bytes": 1000},
        "interfaces": []
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_validates_the_whole_batch_before_writing() {
    let (app, token) = app_with_token("agent-01").await;
    let key = vm_key(&app, "agent-01").await;
    let client = reqwest::Client::new();
    let now = chrono::Utc::now();
    let t = |secs: i64| (now - chrono::TimeDelta::seconds(secs)).to_rfc3339();
    let post = |body: String| ingest_request(&client, &app, &token).body(body).send();

    // A good report followed by one with cpu 101: 422 naming the report, nothing stored.
    let batch =
        json!({"reports": [report(1, &t(120), json!(10.0)), report(2, &t(60), json!(101.0))]});
    let resp = post(batch.to_string()).await.expect("post");
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.expect("json");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("reports[1]") && msg.contains("cpu_pct") && msg.contains("101"),
        "{msg}"
    );
    assert_eq!(app.store.count_samples(Some(key)).await.expect("count"), 0);

    // Malformed JSON and unknown fields: 400 with the reason.
    let resp = post("{\"reports\": [".into()).await.expect("post");
    assert_eq!(resp.status(), 400);
    let mut unknown = report(1, &t(60), json!(10.0));
    unknown["cpu_percent"] = json!(3);
    let resp = post(json!({"reports": [unknown]}).to_string())
        .await
        .expect("post");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cpu_percent"),
        "{body}"
    );

    // A report an hour in the future: the agent's clock is wrong.
    let future = (now + chrono::TimeDelta::hours(1)).to_rfc3339();
    let resp = post(json!({"reports": [report(1, &future, json!(10.0))]}).to_string())
        .await
        .expect("post");
    assert_eq!(resp.status(), 422);

    // A good batch is stored; sending it again stores nothing twice.
    let good =
        json!({"reports": [report(1, &t(120), json!(10.0)), report(2, &t(60), json!(20.0))]})
            .to_string();
    let ack: Value = post(good.clone())
        .await
        .expect("post")
        .json()
        .await
        .expect("ack");
    assert_eq!(ack, json!({"accepted": 2, "duplicates": 0}));
    let ack: Value = post(good).await.expect("post").json().await.expect("ack");
    assert_eq!(ack, json!({"accepted": 0, "duplicates": 2}));
    assert_eq!(app.store.count_samples(Some(key)).await.expect("count"), 2);

    // Disk usage is derived from the filesystems: 250 of 1000 bytes.
    let samples = app
        .store
        .samples_between(key, now - chrono::TimeDelta::days(1), now)
        .await
        .expect("samples");
    assert_eq!(
        samples
            .iter()
            .map(|s| s.disk.map(|d| d.percent()))
            .collect::<Vec<_>>(),
        vec![Some(25.0), Some(25.0)]
    );

    // A revoked token is refused, and nothing of its batch stored: the daemon knew the token
    // (from its cache, as valid) and the revocation came from another process, so it is the
    // group commit's own check of the token that refuses it. Then the token is forgotten.
    ok(app.cloudgov(&["vm", "revoke-tokens", "agent-01"]));
    for _ in 0..2 {
        let resp = post(json!({"reports": [report(3, &t(30), json!(10.0))]}).to_string())
            .await
            .expect("post");
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(app.store.count_samples(Some(key)).await.expect("count"), 2);

    // A new token, cached by a good batch, then revoked: a request that fails before the group
    // commit (here a malformed body) is the last the cache vouches for; the next is checked
    // against the database before its body is read.
    let token = ok(app.cloudgov(&["vm", "issue-token", "agent-01"]))
        .trim()
        .to_owned();
    let post = |body: String| ingest_request(&client, &app, &token).body(body).send();
    let resp = post(json!({"reports": [report(4, &t(20), json!(10.0))]}).to_string())
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    ok(app.cloudgov(&["vm", "revoke-tokens", "agent-01"]));
    let resp = post("{\"reports\": [".into()).await.expect("post");
    assert_eq!(resp.status(), 400, "the token was still cached as valid");
    let resp = post("{\"reports\": [".into()).await.expect("post");
    assert_eq!(
        resp.status(),
        401,
        "a failed request makes the cache forget the token"
    );
    assert_eq!(app.store.count_samples(Some(key)).await.expect("count"), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_with_the_backend() {
    let app = spawn_app().await;
    let body: Value = reqwest::get(app.url("/healthz"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "ok");
    assert!(body["database"] == "sqlite" || body["database"] == "postgres");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_clear_4xx_and_skewed_clocks_are_flagged() {
    let (app, token) = app_with_token("agent-01").await;
    let client = reqwest::Client::new();

    // A body far over the limit: 413 with the JSON error, not the framework's text.
    let huge = vec![b' '; 6 * 1024 * 1024];
    let resp = ingest_request(&client, &app, &token)
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.expect("JSON error");
    assert_eq!(body["error"], "payload_too_large");

    // Posts a batch (accepted) and reads the alerts after it.
    let post_then_alerts = async |batch: &Value| {
        let resp = ingest_request(&client, &app, &token)
            .json(batch)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200);
        let alerts = ok(app.cloudgov(&["alerts", "--format", "json"]));
        serde_json::from_str::<Vec<Value>>(&alerts).expect("json")
    };

    // An agent whose clock is 10 minutes behind: accepted, offset recorded, alert raised.
    let now = chrono::Utc::now();
    let batch = json!({
        "reports": [report(1, &(now - chrono::TimeDelta::minutes(11)).to_rfc3339(), json!(10.0))],
        "sent_at": (now - chrono::TimeDelta::minutes(10)).to_rfc3339(),
    });
    let alerts = post_then_alerts(&batch).await;
    let skew = alerts
        .iter()
        .find(|a| a["kind"] == "clock_skew")
        .expect("clock_skew alert");
    assert!(
        skew["detail"].as_str().unwrap_or("").contains("behind"),
        "{skew}"
    );
    assert_eq!(skew["open"], true, "{skew}");

    // The clock back within the limit: the alert is cleared with the batch that shows it.
    let batch = json!({
        "reports": [report(2, &now.to_rfc3339(), json!(10.0))],
        "sent_at": now.to_rfc3339(),
    });
    let alerts = post_then_alerts(&batch).await;
    assert!(
        alerts
            .iter()
            .any(|a| a["kind"] == "clock_skew" && a["open"] == false),
        "the skew alert is cleared: {alerts:?}"
    );
    assert!(
        !alerts
            .iter()
            .any(|a| a["kind"] == "clock_skew" && a["open"] == true),
        "{alerts:?}"
    );

    // More than the per-VM rate in one minute: 429 with Retry-After. Bounded at 250 requests:
    // the one-minute window may roll over once while they run.
    let mut limited = None;
    for i in 0..250 {
        let resp = ingest_request(&client, &app, &token)
            .json(&json!({"reports": []}))
            .send()
            .await
            .expect("post");
        if resp.status() == 429 {
            limited = Some((
                i,
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ));
            break;
        }
    }
    let (after, retry) = limited.expect("rate limited within 250 requests");
    assert!(after >= 100, "limited only after the allowance: {after}");
    assert!(
        retry
            .and_then(|r| r.parse::<u32>().ok())
            .is_some_and(|s| (1..=60).contains(&s))
    );
    app.stop().await;
}

/// Group commit under a held database: the writer waits, its queue fills, and the requests past
/// it get 503 with `Retry-After` at once; once the database is free, every acknowledged batch is
/// stored exactly once and nothing refused is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ingest_queue_answers_503_and_loses_nothing_acknowledged() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let inv = write_file(&app.db.dir, "inventory.toml", INVENTORY);
    ok(app.cloudgov(&["import", "inventory", &inv]));
    let vms = ["idle-01", "hot-01", "edge-01", "new-01", "agent-01"];
    let tokens: Vec<String> = vms
        .iter()
        .map(|vm| {
            ok(app.cloudgov(&["vm", "issue-token", vm]))
                .trim()
                .to_owned()
        })
        .collect();
    // Hold the database: SQLite's write lock, PostgreSQL's lock on the samples table.
    let hold: Box<dyn std::any::Any + Send> = if app.db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&app.db.url)
            .await
            .expect("connect");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .expect("lock");
        Box::new(c)
    } else {
        let mut c = sqlx::PgConnection::connect(&app.db.url)
            .await
            .expect("connect");
        sqlx::query("BEGIN").execute(&mut c).await.expect("begin");
        sqlx::query("LOCK TABLE samples IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut c)
            .await
            .expect("lock");
        Box::new(c)
    };
    let base = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    // 5 agents x 80 requests of one report each: more than the queue holds (256).
    for (agent, token) in tokens.iter().enumerate() {
        for n in 0..80i64 {
            let (client, token, url) = (client.clone(), token.clone(), app.url("/api/v1/ingest"));
            let ts = base + chrono::TimeDelta::seconds(n);
            tasks.push(tokio::spawn(async move {
                let body = json!({"reports": [{
                    "seq": n + 1, "collected_at": ts.to_rfc3339(),
                    "host": {"hostname": "h", "machine_id": null, "os": "Linux", "agent_version": "t"},
                    "cpu_pct": 10.0, "mem_pct": 20.0, "filesystems": [],
                    "capacity": {"vcpus": 2, "memory_bytes": 1024, "disk_bytes": 0}, "interfaces": []
                }]});
                let r = client
                    .post(url)
                    .bearer_auth(&token)
                    .json(&body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .expect("answered");
                let retry = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (agent, ts.timestamp(), r.status().as_u16(), retry)
            }));
        }
    }
    // The refused ones are answered while the database is still held (well inside the
    // daemon's 10 s busy timeout).
    tokio::time::sleep(Duration::from_millis(3000)).await;
    drop(hold);
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    let busy: Vec<_> = answers.iter().filter(|a| a.2 == 503).collect();
    assert!(
        !busy.is_empty(),
        "the queue filled: {} answers",
        answers.len()
    );
    assert!(
        busy.iter().all(|a| a.3.as_deref() == Some("1")),
        "503 carries Retry-After: {busy:?}"
    );
    let acked: std::collections::BTreeSet<(String, i64)> = answers
        .iter()
        .filter(|a| a.2 == 200)
        .map(|a| (vms[a.0].to_owned(), a.1))
        .collect();
    assert!(
        acked.len() >= 200,
        "the queue's batches were stored: {}",
        acked.len()
    );
    assert_eq!(
        answers.iter().filter(|a| a.2 != 200 && a.2 != 503).count(),
        0,
        "only stored or refused: {answers:?}"
    );
    let keys = app.store.vm_keys().await.expect("keys");
    let mut stored = std::collections::BTreeSet::new();
    for vm in vms {
        for s in app
            .store
            .raw_samples(keys[vm], 0, i64::MAX / 2)
            .await
            .expect("samples")
        {
            assert!(stored.insert((vm.to_owned(), s.ts)), "stored once");
        }
    }
    assert_eq!(stored, acked, "exactly the acknowledged samples are stored");
}

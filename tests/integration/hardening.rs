//! Hostile and careless input against the real daemon: recommendations that settle, dates of
//! actions, the CLI in the audit log, spreadsheet formulas, JSON errors, a sweep of every route
//! with extreme parameters, bounds on what agents and the registry send, headers and messages.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};

use crate::accounts::{client, sign_in};
use crate::helpers::{TestApp, ok, spawn_app, write_file};
use cloudgov::core::access::Role;

const FLEET: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "health"
name = "市卫健局"
emails = ["it@health.example.cn"]

[[department]]
id = "edu"
name = "市教体局"
emails = ["it@edu.example.cn"]

[[project]]
id = "his"
name = "医院信息系统"
department = "health"
filed_on = 2024-03-01

[[project]]
id = "enrol"
name = "招生系统"
department = "edu"
filed_on = 2024-03-01

[[vm]]
id = "cpu-low"
project = "his"
vcpus = 8
memory_gib = 16
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "cpu-high"
project = "his"
vcpus = 4
memory_gib = 16
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "mem-low"
project = "his"
vcpus = 4
memory_gib = 32
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "mem-high"
project = "his"
vcpus = 4
memory_gib = 8
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "disk-low"
project = "enrol"
vcpus = 4
memory_gib = 16
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "disk-high"
project = "enrol"
vcpus = 4
memory_gib = 16
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "tiny"
project = "enrol"
vcpus = 1
memory_gib = 2
disk_gib = 20
delivered_on = 2025-01-06
deployed_on = 2025-01-10
"#;

/// (VM, CPU %, memory %, disk %): each VM is low or high on one resource, ok on the others.
const USAGE: &[(&str, f64, f64, f64)] = &[
    ("cpu-low", 12.0, 50.0, 60.0),
    ("cpu-high", 90.0, 50.0, 60.0),
    ("mem-low", 50.0, 20.0, 60.0),
    ("mem-high", 50.0, 90.0, 60.0),
    ("disk-low", 50.0, 50.0, 40.2),
    ("disk-high", 50.0, 50.0, 85.0),
    ("tiny", 10.0, 50.0, 60.0),
];

/// The fleet with ten days of samples up to now, evaluated: one notice per low or high resource.
async fn fleet() -> TestApp {
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", FLEET),
    ]));
    let now = chrono::Utc::now();
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for day in 0..10 {
        for hour in [2, 10, 15] {
            let ts = now - chrono::TimeDelta::days(day) - chrono::TimeDelta::hours(hour);
            for (vm, cpu, mem, disk) in USAGE {
                csv.push_str(&format!("{vm},{},{cpu},{mem},{disk}\n", ts.to_rfc3339()));
            }
        }
    }
    ok(app.cloudgov(&["import", "samples", &write_file(&app.db.dir, "s.csv", &csv)]));
    ok(app.cloudgov(&["tick", "--at", &now.to_rfc3339()]));
    app
}

fn notices_json(app: &TestApp) -> Vec<Value> {
    serde_json::from_str::<Value>(&ok(app.cloudgov(&["notices", "list", "--format", "json"])))
        .expect("notices JSON")
        .as_array()
        .expect("array")
        .clone()
}

fn notice_of<'a>(notices: &'a [Value], vm: &str) -> &'a Value {
    notices
        .iter()
        .find(|n| n["vm"] == vm)
        .unwrap_or_else(|| panic!("a notice of {vm}: {notices:?}"))
}

/// The built-in rules' ok band of each resource: (lower, lower inclusive, upper).
fn band(resource: &str) -> (f64, bool, f64) {
    match resource {
        "cpu" => (25.0, false, 75.0),
        "memory" => (30.0, false, 75.0),
        _ => (50.0, true, 75.0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recommendation_lands_inside_its_rules_ok_band() {
    let app = fleet().await;
    let notices = notices_json(&app);
    let mut seen = std::collections::BTreeSet::new();
    for n in &notices {
        let resource = n["resource"].as_str().expect("resource");
        let kind = n["kind"].as_str().expect("kind");
        for field in ["allocated", "recommended", "projected", "unit"] {
            assert!(n.get(field).is_some(), "{field} missing: {n}");
        }
        if n["vm"] == "tiny" {
            continue;
        }
        seen.insert((resource.to_owned(), kind.to_owned()));
        let (allocated, recommended, projected) = (
            n["allocated"].as_f64().expect("allocated"),
            n["recommended"].as_f64().expect("recommended"),
            n["projected"].as_f64().expect("projected"),
        );
        let (low, low_inclusive, high) = band(resource);
        let above_low = if low_inclusive {
            projected >= low
        } else {
            projected > low
        };
        assert!(
            above_low && projected <= high,
            "{} {resource} {kind}: {recommended} gives {projected}%, outside the band",
            n["vm"]
        );
        let value = n["value"].as_f64().expect("value");
        assert!(
            (projected - value * allocated / recommended).abs() < 1e-9,
            "projected is the statistic scaled to the new size: {n}"
        );
        match kind {
            "downsize" => assert!(recommended < allocated, "{n}"),
            _ => assert!(recommended > allocated, "{n}"),
        }
    }
    for resource in ["cpu", "memory", "disk"] {
        for kind in ["downsize", "expand"] {
            assert!(
                seen.contains(&(resource.to_owned(), kind.to_owned())),
                "no {kind} notice of {resource}: {notices:?}"
            );
        }
    }
    // The disk the issue names: 40.2% of 100 GiB gets 70 GiB (57.4%), not 90 GiB (44.7%).
    let disk = notice_of(&notices, "disk-low");
    assert_eq!(disk["recommended"], 70.0);
    assert_eq!(disk["unit"], "gib");
    // 1 vCPU at 10%: no size settles; the notice says so.
    let tiny = notice_of(&notices, "tiny");
    assert_eq!(tiny["recommended"], Value::Null);
    assert_eq!(tiny["projected"], Value::Null);
    assert!(
        tiny["recommendation_note"]
            .as_str()
            .is_some_and(|s| s.contains("smallest")),
        "{tiny}"
    );
    // The API gives the same fields, list and one notice.
    let token = app.staff_token().await;
    let api = app.get_json(&token, "/api/v1/notices").await;
    let api_disk = api
        .as_array()
        .expect("array")
        .iter()
        .find(|n| n["vm"] == "disk-low")
        .expect("disk notice");
    assert_eq!(api_disk["recommended"], 70.0);
    let one = app
        .get_json(&token, &format!("/api/v1/notices/{}", tiny["id"]))
        .await;
    assert!(one["recommendation_note"].is_string(), "{one}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_dates_are_checked_the_same_for_api_forms_and_cli_and_the_cli_is_audited() {
    let app = fleet().await;
    let notices = notices_json(&app);
    let id = notice_of(&notices, "cpu-low")["id"].to_string();
    let issued = notice_of(&notices, "cpu-low")["issued_on"]
        .as_str()
        .expect("issued_on")
        .to_owned();
    let token = app.staff_token().await;
    let c = reqwest::Client::new();
    let complete = |on: &str| {
        c.post(app.url(&format!("/api/v1/notices/{id}/complete")))
            .bearer_auth(&token)
            .json(&json!({ "on": on }))
            .send()
    };
    // Before the notice was issued, and in the future: refused with the reason.
    for (on, why) in [("2020-01-01", "issued on"), ("2999-01-01", "future")] {
        let resp = complete(on).await.expect("post");
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{on}");
        let body: Value = resp.json().await.expect("json");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(why)),
            "{on}: {body}"
        );
        let cli = app.cloudgov(&["notices", "complete", &id, "--on", on]);
        assert!(!cli.status.success(), "the CLI refuses {on} too");
        assert!(
            String::from_utf8_lossy(&cli.stderr).contains(why),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
    }
    // The deadline is untouched by the refusals.
    let deadlines = app.get_json(&token, "/api/v1/deadlines").await;
    assert!(
        deadlines
            .as_array()
            .expect("array")
            .iter()
            .filter(
                |d| d["notice_id"].as_i64().map(|n| n.to_string()).as_deref() == Some(id.as_str())
            )
            .all(|d| d["done_on"].is_null()),
        "{deadlines}"
    );
    // Through the CLI on the issue day: done, and audited under the operator.
    ok(app.cloudgov(&["notices", "complete", &id, "--on", &issued]));
    // Deployment before delivery, release before the request: refused everywhere.
    let early = app.cloudgov(&["vm", "mark-deployed", "cpu-high", "--on", "2024-12-31"]);
    assert!(String::from_utf8_lossy(&early.stderr).contains("delivered on 2025-01-06"));
    let resp = c
        .post(app.url("/api/v1/vms/cpu-high/deployed"))
        .bearer_auth(&token)
        .json(&json!({"on": "2024-12-31"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    ok(app.cloudgov(&[
        "vm",
        "request-release",
        "tiny",
        "--on",
        "2025-06-02",
        "--reason",
        "migrated",
    ]));
    let release = app.cloudgov(&["vm", "confirm-release", "tiny", "--on", "2025-06-01"]);
    assert!(
        String::from_utf8_lossy(&release.stderr).contains("requested on 2025-06-02"),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    ok(app.cloudgov(&["vm", "confirm-release", "tiny", "--on", "2025-06-03"]));
    ok(app.cloudgov(&[
        "network",
        "registry",
        "set",
        "10.9.0.1",
        "--mac",
        "52:54:00:00:09:01",
        "--department",
        "health",
        "--holder",
        "PC-1",
    ]));
    ok(app.cloudgov(&["network", "registry", "remove", "10.9.0.1"]));
    let audit: Vec<Value> = serde_json::from_str(&ok(
        app.cloudgov(&["user", "audit", "--format", "json", "--limit", "100"])
    ))
    .expect("audit JSON");
    for action in [
        "import_inventory",
        "import_samples",
        "complete_notice",
        "request_release",
        "confirm_release",
        "set_registry",
        "remove_registry",
    ] {
        let entry = audit
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no audit entry {action}: {audit:?}"));
        assert!(
            entry["username"]
                .as_str()
                .is_some_and(|u| u.starts_with("cli:")),
            "{entry}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreadsheet_formulas_come_back_as_text_and_the_registry_keeps_what_was_given() {
    let app = fleet().await;
    let token = app.staff_token().await;
    let c = reqwest::Client::new();
    for (ip, holder) in [
        ("10.9.0.2", "=HYPERLINK(\"http://evil.example\",\"x\")"),
        ("10.9.0.3", "@SUM(1+1)"),
        ("10.9.0.4", "-2+3"),
    ] {
        let resp = c
            .put(app.url("/api/v1/network/registry"))
            .bearer_auth(&token)
            .json(&json!({"ip": ip, "mac": "52:54:00:00:09:02", "department": "health", "holder": holder}))
            .send()
            .await
            .expect("put");
        assert_eq!(resp.status(), StatusCode::OK, "{holder}");
    }
    let csv = ok(app.cloudgov(&["export", "ip-registry"]));
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(csv.contains("'@SUM(1+1)") && csv.contains("'-2+3"), "{csv}");
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains(",\"=HYPERLINK"));
    // The registry itself keeps what was given; only the spreadsheet sees text.
    let registry = app.get_json(&token, "/api/v1/network/registry").await;
    assert!(
        registry
            .as_array()
            .expect("array")
            .iter()
            .any(|r| r["holder"] == "@SUM(1+1)"),
        "{registry}"
    );
    app.stop().await;
}

/// Every error under `/api/v1` is `{"error": code, "message": text}` with a JSON content type.
async fn assert_json_error(resp: reqwest::Response, status: StatusCode, code: &str) -> String {
    assert_eq!(resp.status(), status, "{}", resp.url());
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{body}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_is_json_with_a_code_and_a_message() {
    let app = fleet().await;
    let token = app.staff_token().await;
    let c = reqwest::Client::new();
    let id = notice_of(&notices_json(&app), "cpu-low")["id"].to_string();
    let url = app.url(&format!("/api/v1/notices/{id}/complete"));
    let malformed = c
        .post(&url)
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"on\": ")
        .send()
        .await
        .expect("post");
    assert_json_error(malformed, StatusCode::BAD_REQUEST, "bad_request").await;
    let no_type = c
        .post(&url)
        .bearer_auth(&token)
        .body("{\"on\": \"2025-01-01\"}")
        .send()
        .await
        .expect("post");
    assert_json_error(
        no_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let missing = c
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    let message =
        assert_json_error(missing, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    assert!(message.contains("on"), "{message}");
    let bad_id = c
        .get(app.url("/api/v1/reviews/abc"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_json_error(bad_id, StatusCode::BAD_REQUEST, "bad_request").await;
    let unknown = c
        .get(app.url("/api/v1/no-such-route"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_json_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let method = c
        .delete(app.url("/api/v1/findings"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_json_error(method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    // The `bearer` scheme in any case (RFC 7235): accepted.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let resp = c
            .get(app.url("/api/v1/me"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_query_or_path_value_makes_any_route_fail_or_hang() {
    let app = fleet().await;
    let password = app.add_user("sweeper", Role::Admin, None).await;
    let session = sign_in(&app, "sweeper", &password).await;
    let token = app.staff_token().await;
    let notice = notice_of(&notices_json(&app), "cpu-low")["id"].to_string();
    let numbers = [
        "0",
        "-1",
        "-9223372036854775808",
        "9223372036854775807",
        "99999999999999999999999",
        "1e309",
        "NaN",
        "abc",
        "%00",
        "%FF%FE",
        "",
    ];
    let dates = [
        "-262143-01-01",
        "+262142-12-31",
        "0000-00-00",
        "9999-12-31",
        "1900-02-29",
        "2025-13-01",
        "2025-02-30",
        "yesterday",
        "%0A",
    ];
    let long = "x".repeat(10_000);
    let mut paths: Vec<String> = Vec::new();
    for n in numbers.iter().chain([&long.as_str()]) {
        paths.extend([
            format!("/?page={n}"),
            format!("/departments/health?page={n}"),
            format!("/projects/his?page={n}"),
            format!("/vms/cpu-low?days={n}"),
            format!("/notices/{n}"),
            format!("/notices?state={n}"),
            format!("/reviews/{n}/"),
            format!("/reviews/{n}/his.html"),
            format!("/vms/{n}"),
            format!("/departments/{n}"),
            format!("/projects/{n}"),
            format!("/api/v1/notices/{n}"),
            format!("/api/v1/reviews/{n}"),
            format!("/lang/{n}?next={n}"),
            format!("/login?next={n}&error={n}"),
        ]);
    }
    for d in dates {
        paths.extend([
            format!("/vms/cpu-low?days=365&end={d}"),
            format!("/vms/cpu-low?days=7&end={d}"),
            format!("/vms/cpu-low?days=30&end={d}"),
        ]);
    }
    paths.push(format!("/notices/{notice}?state=closed"));
    let c = client();
    for path in &paths {
        let resp = c
            .get(app.url(path))
            .header(COOKIE, &session)
            .bearer_auth(&token)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: the connection failed: {e}"));
        let status = resp.status();
        assert!(
            !status.is_server_error(),
            "GET {}: {status}",
            &path[..path.len().min(120)]
        );
        if status == StatusCode::BAD_REQUEST {
            let body = resp.text().await.expect("body");
            assert!(!body.trim().is_empty(), "GET {path}: 400 without a reason");
        }
    }
    // The daemon still answers.
    assert_eq!(
        reqwest::get(app.url("/healthz"))
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_agents_and_the_registry_send_is_bounded() {
    let app = fleet().await;
    let agent = ok(app.cloudgov(&["vm", "issue-token", "cpu-low"]))
        .trim()
        .to_owned();
    let c = reqwest::Client::new();
    let at = (chrono::Utc::now() - chrono::TimeDelta::seconds(30)).to_rfc3339();
    let mut neighbour = crate::ingest::report(1, &at, json!(10.0));
    neighbour["neighbours"] =
        json!([{"ip": "10.0.0.9", "mac": "52:54:00:00:00:09", "interface": "x".repeat(1 << 20)}]);
    let mut source = crate::ingest::report(2, &at, json!(10.0));
    source["interfaces"] = json!([{"name": "eth0", "mac": "52:54:00:00:00:01", "addresses": [
        {"ip": "10.0.0.1", "prefix": 24, "config": "static", "config_source": "y".repeat(1 << 20)}]}]);
    let mut prefix = crate::ingest::report(3, &at, json!(10.0));
    prefix["interfaces"] = json!([{"name": "eth0", "mac": "52:54:00:00:00:01", "addresses": [
        {"ip": "10.0.0.1", "prefix": 200}]}]);
    let mut nul = crate::ingest::report(4, &at, json!(10.0));
    nul["host"]["hostname"] = json!("vm\u{0}1");
    for (report, what) in [
        (neighbour, "neighbours[0]"),
        (source, "config_source"),
        (prefix, "prefix"),
        (nul, "host.hostname"),
    ] {
        let resp = c
            .post(app.url("/api/v1/ingest"))
            .bearer_auth(&agent)
            .json(&json!({ "reports": [report] }))
            .send()
            .await
            .expect("post");
        let message =
            assert_json_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_report").await;
        assert!(message.contains(what), "{what}: {message}");
    }
    // Without a token, a 50 MB body is refused as unauthenticated, before it is read.
    let started = std::time::Instant::now();
    let resp = c
        .post(app.url("/api/v1/ingest"))
        .header(CONTENT_TYPE, "application/json")
        .body(vec![b' '; 50 << 20])
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A registry holder of 3 MB: refused, and nothing stored.
    let token = app.staff_token().await;
    let resp = c
        .put(app.url("/api/v1/network/registry"))
        .bearer_auth(&token)
        .json(&json!({"ip": "10.9.0.5", "mac": "52:54:00:00:09:05", "department": "health", "holder": "z".repeat(3 << 20)}))
        .send()
        .await
        .expect("put");
    assert!(
        resp.status() == StatusCode::UNPROCESSABLE_ENTITY
            || resp.status() == StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        resp.status()
    );
    // Text with a NUL (which PostgreSQL cannot store) is refused as text, never a 500.
    let resp = c
        .put(app.url("/api/v1/network/registry"))
        .bearer_auth(&token)
        .json(&json!({"ip": "10.9.0.6", "mac": "52:54:00:00:09:06", "department": "health", "holder": "PC\u{0}"}))
        .send()
        .await
        .expect("put");
    assert_json_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    let notice = notice_of(&notices_json(&app), "cpu-low")["id"].to_string();
    let resp = c
        .post(app.url(&format!("/api/v1/notices/{notice}/contest")))
        .bearer_auth(&token)
        .json(&json!({"reason": "\u{0}\u{1b}[2J"}))
        .send()
        .await
        .expect("post");
    assert_json_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    let registry = app.get_json(&token, "/api/v1/network/registry").await;
    assert_eq!(registry, json!([]));
    // Imports keep the ingest window: a sample or an ARP entry from the year 9999 is refused.
    let future = write_file(
        &app.db.dir,
        "future.csv",
        "vm,ts,cpu_pct,mem_pct,disk_pct\ncpu-low,9999-01-01T00:00:00Z,1,2,3\n",
    );
    let out = app.cloudgov(&["import", "samples", "--allow-history", &future]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("future"));
    let arp = write_file(
        &app.db.dir,
        "arp.csv",
        "ip,mac,seen_at,source\n10.0.0.5,52:54:00:ab:cd:ef,9999-01-01T00:00:00Z,sw\n",
    );
    assert!(!app.cloudgov(&["import", "arp", &arp]).status.success());
    let inventory = write_file(
        &app.db.dir,
        "later.toml",
        &FLEET.replace(
            "delivered_on = 2025-01-06\ndeployed_on = 2025-01-10\n\n[[vm]]\nid = \"cpu-high\"",
            "delivered_on = 9999-01-01\n\n[[vm]]\nid = \"cpu-high\"",
        ),
    );
    let out = app.cloudgov(&["import", "inventory", &inventory]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("delivered_on 9999-01-01 is in the future"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cannot_be_framed_or_made_to_say_anything() {
    let app = fleet().await;
    let password = app.add_user("viewer", Role::Admin, None).await;
    let session = sign_in(&app, "viewer", &password).await;
    let c = client();
    for path in ["/", "/api/v1/status", "/login"] {
        let resp = c
            .get(app.url(path))
            .header(COOKIE, &session)
            .send()
            .await
            .expect("get");
        let h = resp.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .expect("a script-src directive");
        assert!(!script_src.contains("unsafe-inline"), "{csp}");
    }
    // Free text in `?done=` or `?error=` shows nothing; a known code shows its words.
    let spoof = c
        .get(app.url("/?done=Your%20account%20is%20suspended"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(!spoof.contains("account is suspended") && !spoof.contains("data-testid=\"flash\""));
    let known = c
        .get(app.url("/?done=registry_removed"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        known.contains("IP备案已删除"),
        "the code's words in the page's language"
    );
    let login = c
        .get(app.url("/login?error=Call%20000-1234%20now"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(!login.contains("000-1234"));
    let wrong = c
        .get(app.url("/login?error=wrong"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(wrong.contains("用户名或密码错误"));
    // No page carries inline script.
    for path in ["/", "/notices", "/network", "/vms/cpu-low"] {
        let html = c
            .get(app.url(path))
            .header(COOKIE, &session)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        assert!(
            !html.contains("<script>")
                && !html.contains("javascript:")
                && !html.contains(" onclick="),
            "{path} has inline script"
        );
    }
    app.stop().await;
}

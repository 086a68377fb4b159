//! Resource requests (资源申请) against the real daemon and a real SMTP server: sized from the
//! department's own usage, answered within 5 working days (an obligation of the center), decided
//! and delivered, e-mailed, scoped to the department and audited.

use serde_json::Value;

use crate::email::{SmtpSink, cloudgov};
use crate::helpers::{TestDb, ok, spawn_app, write_file};

const INVENTORY: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "web"
name = "市政务服务管理办公室"
emails = ["it@web.example.cn"]

[[department]]
id = "sci"
name = "市科学技术局"
emails = ["it@sci.example.cn"]

[[project]]
id = "portal"
name = "政务服务门户"
department = "web"
filed_on = 2025-01-01

[[project]]
id = "compute"
name = "科研计算平台"
department = "sci"
filed_on = 2025-01-01
"#;

fn vm(id: &str, project: &str) -> String {
    format!(
        "\n[[vm]]\nid = \"{id}\"\nproject = \"{project}\"\nvcpus = 8\nmemory_gib = 16\ndisk_gib = 200\n\
         delivered_on = 2025-01-06\ndeployed_on = 2025-01-10\n"
    )
}

/// Ten days of hourly samples before Fri 2025-09-26 noon: `cpu(hour)`, memory, disk.
fn samples(vm: &str, cpu: impl Fn(u32) -> f64, mem: f64, disk: f64) -> String {
    let mut csv = String::new();
    for day in 16..=25 {
        for hour in 0..24 {
            csv.push_str(&format!(
                "{vm},2025-09-{day}T{hour:02}:00:00+08:00,{},{mem},{disk}\n",
                cpu(hour)
            ));
        }
    }
    csv
}

fn request_toml(department: &str, project: &str, vms: &[&str], vcpus: u32) -> String {
    let mut t = format!(
        "department = \"{department}\"\nproject = \"{project}\"\npurpose = \"门户二期扩容\"\n\
         expected_load = \"资源需求分析:日均访问2万次,峰值并发500\"\nsubmitted_on = 2025-09-26\n"
    );
    for id in vms {
        t.push_str(&format!(
            "\n[[vm]]\nid = \"{id}\"\nvcpus = {vcpus}\nmemory_gib = 16\ndisk_gib = 200\n"
        ));
    }
    t
}

fn show(db: &TestDb, smtp: &str, id: i64) -> Value {
    serde_json::from_str(&ok(cloudgov(
        db,
        smtp,
        &["requests", "show", &id.to_string(), "--format", "json"],
    )))
    .expect("request JSON")
}

fn submit(db: &TestDb, smtp: &str, file: &str, text: &str) -> i64 {
    let out = ok(cloudgov(
        db,
        smtp,
        &["requests", "submit", &write_file(&db.dir, file, text)],
    ));
    let id = out
        .trim()
        .strip_prefix("request ")
        .and_then(|r| r.strip_suffix(" submitted"))
        .unwrap_or_else(|| panic!("prints `request N submitted`: {out}"));
    id.parse().expect("a request number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_sized_by_usage_answered_in_time_delivered_mailed_scoped_and_audited() {
    let app = spawn_app().await;
    let db = &app.db;
    let sink = SmtpSink::start();
    let smtp = sink.url();
    let mut inventory = INVENTORY.to_owned();
    for id in ["web-01", "web-02", "web-03", "web-04"] {
        inventory += &vm(id, "portal");
    }
    for id in ["app-01", "app-02"] {
        inventory += &vm(id, "compute");
    }
    ok(cloudgov(
        db,
        &smtp,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", &inventory),
        ],
    ));
    // The web VMs run at about 12% p95 CPU, 22% memory peak and 30% disk; the science VMs at 85%.
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for (i, id) in ["web-01", "web-02", "web-03", "web-04"].iter().enumerate() {
        let base = 8.0 + i as f64 * 0.2;
        csv += &samples(
            id,
            |h| {
                if (9..18).contains(&h) {
                    base + 4.0
                } else {
                    base
                }
            },
            22.0,
            30.0,
        );
    }
    for id in ["app-01", "app-02"] {
        csv += &samples(id, |h| if h % 2 == 0 { 85.0 } else { 80.0 }, 60.0, 60.0);
    }
    ok(cloudgov(
        db,
        &smtp,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &csv),
        ],
    ));
    ok(cloudgov(
        db,
        &smtp,
        &["evaluate", "--at", "2025-09-26T12:00:00+08:00"],
    ));

    // Two more web VMs like the others, submitted (back-dated by staff) on Fri 2025-09-26.
    let web = submit(
        db,
        &smtp,
        "web.toml",
        &request_toml("web", "portal", &["web-05", "web-06"], 8),
    );
    let r = show(db, &smtp, web);
    assert_eq!(r["state"], "submitted");
    assert_eq!(r["submitted_on"], "2025-09-26");
    assert_eq!(
        r["due"], "2025-10-10",
        "5 working days, the National Day holiday between"
    );
    assert_eq!(r["department"], "web");
    assert_eq!(r["project"], "portal");
    for v in r["vms"].as_array().expect("vms") {
        let rec = &v["recommended"];
        for (field, asked) in [("vcpus", 8.0), ("memory_gib", 16.0), ("disk_gib", 200.0)] {
            let got = rec[field].as_f64().expect(field);
            assert!(
                got < asked,
                "{field}: {got} recommended for {asked} asked: {v}"
            );
        }
        let reasons = v["reasons"].as_array().expect("reasons");
        assert_eq!(reasons.len(), 3, "one reason per resource: {v}");
        assert!(
            reasons[0]
                .as_str()
                .is_some_and(|l| l.contains("web-0") && l.contains("建议核减为")),
            "{reasons:?}"
        );
        assert_eq!(v["comparables"].as_array().map(Vec::len), Some(4));
    }
    // A busy department asking for 8 vCPUs is not cut.
    let sci = submit(
        db,
        &smtp,
        "sci.toml",
        &request_toml("sci", "compute", &["app-03"], 8),
    );
    let s = show(db, &smtp, sci);
    assert!(
        s["vms"][0]["recommended"]["vcpus"].as_f64().expect("vcpus") >= 8.0,
        "{s}"
    );

    // Bad input is named and nothing is stored.
    let twice = cloudgov(
        db,
        &smtp,
        &[
            "requests",
            "submit",
            &write_file(
                &db.dir,
                "bad.toml",
                &request_toml("web", "portal", &["web-01"], 8),
            ),
        ],
    );
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("web-01 exists already"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );

    // A VM another open request names is refused.
    let named = cloudgov(
        db,
        &smtp,
        &[
            "requests",
            "submit",
            &write_file(
                &db.dir,
                "named.toml",
                &request_toml("web", "portal", &["web-05"], 4),
            ),
        ],
    );
    assert!(
        String::from_utf8_lossy(&named.stderr).contains("named by request"),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );

    // Receipts go to each department.
    ok(cloudgov(db, &smtp, &["outbox", "send"]));
    // (The evaluation's digests went out too.)
    let mail: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|m| m.subject.contains("资源申请受理回执"))
        .collect();
    assert_eq!(mail.len(), 2, "two receipts");
    let receipt = mail
        .iter()
        .find(|m| m.rcpt == vec!["it@web.example.cn"])
        .expect("web's receipt");
    assert!(
        receipt.subject.contains("资源申请受理回执"),
        "{}",
        receipt.subject
    );
    assert!(receipt.body.contains("2025年10月10日") && receipt.body.contains("web-05"));

    // Staff approve with web-06 amended to the recommendation on Mon 2025-10-13, a working day
    // after the answer was due (the center's obligation is done late).
    let amend = write_file(
        &db.dir,
        "amend.toml",
        "[[vm]]\nid = \"web-06\"\nvcpus = 2\nmemory_gib = 7\ndisk_gib = 100\n",
    );
    ok(cloudgov(
        db,
        &smtp,
        &[
            "requests",
            "decide",
            &web.to_string(),
            "--approve",
            "--amend",
            &amend,
            "--reason",
            "参照同项目4台云主机的实际使用核定配置",
            "--on",
            "2025-10-13",
        ],
    ));
    let again = cloudgov(
        db,
        &smtp,
        &[
            "requests",
            "decide",
            &web.to_string(),
            "--reject",
            "--reason",
            "x",
        ],
    );
    assert!(!again.status.success(), "decided once");
    ok(cloudgov(
        db,
        &smtp,
        &[
            "requests",
            "decide",
            &sci.to_string(),
            "--reject",
            "--reason",
            "请先完成现有资源扩容评估",
        ],
    ));
    let r = show(db, &smtp, web);
    assert_eq!(r["state"], "approved");
    assert_eq!(r["vms"][1]["approved"]["vcpus"], 2.0);
    assert_eq!(r["vms"][0]["approved"]["vcpus"], 8.0, "as asked");
    ok(cloudgov(db, &smtp, &["outbox", "send"]));
    let decision = sink
        .received()
        .into_iter()
        .find(|m| m.subject.contains("资源申请审核结果") && m.rcpt == vec!["it@web.example.cn"])
        .expect("web's decision mail");
    assert!(decision.subject.contains("已批准"), "{}", decision.subject);
    assert!(
        decision.body.contains("参照同项目4台云主机"),
        "{}",
        decision.body
    );

    // Delivered on Mon 2025-10-13: deployment due 10 working days later, 2025-10-27.
    ok(cloudgov(
        db,
        &smtp,
        &[
            "requests",
            "deliver",
            &web.to_string(),
            "--on",
            "2025-10-13",
        ],
    ));
    let deadlines: Vec<Value> = serde_json::from_str(&ok(cloudgov(
        db,
        &smtp,
        &[
            "deadlines",
            "--at",
            "2025-10-14T09:00:00+08:00",
            "--format",
            "json",
        ],
    )))
    .expect("deadlines JSON");
    for id in ["web-05", "web-06"] {
        let d = deadlines
            .iter()
            .find(|d| d["kind"] == "deployment" && d["vm"] == id)
            .unwrap_or_else(|| panic!("no deployment deadline for {id}"));
        assert_eq!(d["due"], "2025-10-27", "{d}");
    }
    let answer = deadlines
        .iter()
        .find(|d| d["kind"] == "request_answer" && d["project"] == "portal")
        .expect("the center's answer obligation");
    assert_eq!(answer["due"], "2025-10-10");
    assert_eq!(answer["state"], "done_late", "{answer}");
    assert_eq!(answer["done_on"], "2025-10-13");

    // Through the API: staff see both, a department only its own; another department's is 404.
    let staff = app.staff_token().await;
    let all = app.get_json(&staff, "/api/v1/requests").await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let delivered = app
        .get_json(&staff, &format!("/api/v1/requests/{web}"))
        .await;
    assert_eq!(delivered["state"], "delivered");
    assert_eq!(delivered["delivered_on"], "2025-10-13");
    app.add_user(
        "sci-it",
        cloudgov::core::access::Role::Department,
        Some("sci"),
    )
    .await;
    let sci_token = app.api_token("sci-it").await;
    let theirs = app.get_json(&sci_token, "/api/v1/requests").await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(1), "{theirs}");
    let client = reqwest::Client::new();
    let foreign = client
        .get(app.url(&format!("/api/v1/requests/{web}")))
        .bearer_auth(&sci_token)
        .send()
        .await
        .expect("GET");
    assert_eq!(foreign.status(), reqwest::StatusCode::NOT_FOUND);
    // A department submits for itself through the API, not for another.
    let body = |department: &str| {
        serde_json::json!({
            "department": department, "project": "compute", "purpose": "扩容",
            "expected_load": "同现有", "vm": [{"id": "app-09", "vcpus": 4, "memory_gib": 8, "disk_gib": 100}],
        })
    };
    let own = client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&sci_token)
        .json(&body("sci"))
        .send()
        .await
        .expect("POST");
    assert_eq!(own.status(), reqwest::StatusCode::OK);
    let own: Value = own.json().await.expect("JSON");
    assert!(
        own["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("submitted")),
        "{own}"
    );
    let other = client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&sci_token)
        .json(&body("web"))
        .send()
        .await
        .expect("POST");
    assert_eq!(other.status(), reqwest::StatusCode::FORBIDDEN);
    let decide = client
        .post(app.url(&format!("/api/v1/requests/{}/decide", own["id"])))
        .bearer_auth(&sci_token)
        .json(&serde_json::json!({"decision": "approve", "reason": "自批"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        decide.status(),
        reqwest::StatusCode::FORBIDDEN,
        "staff decide"
    );

    let audit: Vec<Value> = serde_json::from_str(&ok(cloudgov(
        db,
        &smtp,
        &["user", "audit", "--format", "json"],
    )))
    .expect("audit JSON");
    for action in [
        "submit_request",
        "approve_request",
        "reject_request",
        "deliver_request",
    ] {
        assert!(
            audit.iter().any(|a| a["action"] == action),
            "{action} not audited"
        );
    }
    // The delivered VMs link back to their request; the review reports requested against used.
    let new_vm = app.store.vm_request("web-06").await.expect("store");
    assert_eq!(new_vm, Some(web));
    let facts = app
        .store
        .vm_facts("web-06")
        .await
        .expect("store")
        .expect("web-06");
    assert_eq!(facts.delivered_on.to_string(), "2025-10-13");
    let reviews: Vec<Value> = serde_json::from_str(&ok(cloudgov(
        db,
        &smtp,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2025-11-01T12:00:00+08:00",
            "--dry-run",
            "--format",
            "json",
        ],
    )))
    .expect("review JSON");
    let portal = reviews
        .iter()
        .find(|r| r["project"] == "portal")
        .expect("portal reviewed");
    assert_eq!(portal["facts"]["requested"]["vms"], 2, "{portal}");
    assert_eq!(portal["facts"]["requested"]["approved"]["vcpus"], 10.0);
    assert!(
        portal["explanation"]
            .as_array()
            .expect("lines")
            .iter()
            .any(|l| l
                .as_str()
                .is_some_and(|l| l.contains("资源申请") && l.contains("批准 10 vCPU"))),
        "{portal}"
    );
    app.stop().await;
}

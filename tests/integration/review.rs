//! The annual review (art. 10) through the binary: a year of data for five projects (healthy,
//! bursty, idle, ignoring its notices, not filed), verdicts and explanations, and rollups that
//! agree with the raw samples.

use serde_json::Value;

use crate::helpers::{TestDb, cloudgov_cmd, fresh_db, ok, write_file};

const INVENTORY: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]
finance_emails = ["budget@finance.example.cn"]

[[department]]
id = "health"
name = "市卫健局"
emails = ["it@health.example.cn"]

[[project]]
id = "healthy"
name = "运行良好的系统"
department = "health"
filed_on = 2024-12-30

[[project]]
id = "bursty"
name = "突发负载系统"
department = "health"
filed_on = 2024-12-30

[[project]]
id = "idle"
name = "闲置系统"
department = "health"
filed_on = 2024-12-30

[[project]]
id = "ignoring"
name = "不整改系统"
department = "health"
filed_on = 2024-12-30

[[project]]
id = "unfiled"
name = "未备案系统"
department = "health"
"#;

fn vm(id: &str) -> String {
    format!(
        "[[vm]]\nid = \"{id}-01\"\nproject = \"{id}\"\nvcpus = 8\nmemory_gib = 32\ndisk_gib = 500\ndelivered_on = 2024-12-20\ndeployed_on = 2024-12-25\n\n"
    )
}

/// Hourly samples for all of 2025: (cpu, mem, disk) for an hour of a day.
fn year_csv(vm: &str, f: impl Fn(u32, u32) -> (f64, f64, f64)) -> String {
    let mut csv = String::new();
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let mut n = 0;
    while day.to_string().starts_with("2025") {
        for hour in 0..24 {
            let (cpu, mem, disk) = f(n, hour);
            csv.push_str(&format!(
                "{vm},{day}T{hour:02}:00:00+08:00,{cpu},{mem},{disk}\n"
            ));
        }
        n += 1;
        day = day.succ_opt().expect("next day");
    }
    csv
}

fn setup(db: &TestDb) {
    let inventory = format!(
        "{INVENTORY}\n{}",
        ["healthy", "bursty", "idle", "ignoring", "unfiled"]
            .map(vm)
            .concat()
    );
    ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", &inventory),
        ],
    ));
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    csv += &year_csv("healthy-01", |d, h| {
        (45.0 + f64::from((d + h) % 10), 55.0, 60.0)
    });
    // A daily burst to 95% for one hour: the p95 of 24 hourly samples does not see it.
    csv += &year_csv("bursty-01", |_, h| {
        (if h == 14 { 95.0 } else { 40.0 }, 50.0, 60.0)
    });
    csv += &year_csv("idle-01", |d, h| {
        (2.0 + f64::from((d * 7 + h) % 5), 12.0, 20.0)
    });
    // A nightly job at 7%: low, but used (the unused-system rule's CPU maximum is 5%), so it
    // gets downsize notices, which it ignores.
    csv += &year_csv("ignoring-01", |_, h| {
        (if h == 3 { 7.0 } else { 3.0 }, 10.0, 20.0)
    });
    csv += &year_csv("unfiled-01", |_, _| (50.0, 50.0, 60.0));
    ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &csv),
        ],
    ));
}

fn find<'a>(all: &'a [Value], project: &str) -> &'a Value {
    all.iter()
        .find(|r| r["project"] == project)
        .unwrap_or_else(|| panic!("no review of {project}"))
}

#[tokio::test]
async fn a_year_of_five_projects_gets_the_right_verdicts_with_reasons() {
    let db = fresh_db().await;
    setup(&db);
    // Notices on 2025-03-03: the idle project completes them in time, the other ignores them.
    ok(cloudgov_cmd(
        &db.url,
        &["tick", "--at", "2025-03-03T10:00:00+08:00"],
    ));
    let notices: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &["notices", "list", "--format", "json"],
    )))
    .expect("json");
    assert_eq!(notices.len(), 6, "{notices:?}");
    // The unfiled project, deployed 2024-12-25, has an overdue filing obligation (art. 10)
    // since its 20 working days ended; the filed projects' filings are done.
    let deadlines: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &[
            "deadlines",
            "--at",
            "2025-03-03T10:00:00+08:00",
            "--format",
            "json",
        ],
    )))
    .expect("json");
    let filings: Vec<&Value> = deadlines.iter().filter(|d| d["kind"] == "filing").collect();
    let overdue: Vec<&Value> = filings
        .iter()
        .copied()
        .filter(|d| d["state"] == "overdue")
        .collect();
    assert_eq!(overdue.len(), 1, "{filings:?}");
    assert_eq!(overdue[0]["project"], "unfiled");
    assert_eq!(overdue[0]["vm"], "unfiled-01");
    for n in notices.iter().filter(|n| n["vm"] == "idle-01") {
        let id = n["id"].as_i64().expect("id").to_string();
        ok(cloudgov_cmd(
            &db.url,
            &["notices", "complete", &id, "--on", "2025-03-05"],
        ));
    }

    let out = ok(cloudgov_cmd(
        &db.url,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2026-01-15T09:00:00+08:00",
            "--format",
            "json",
        ],
    ));
    let all: Vec<Value> = serde_json::from_str(&out).expect("review prints a JSON array");
    assert_eq!(all.len(), 5);
    let verdict = |p: &str| {
        find(&all, p)["verdict"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(verdict("healthy"), "keep");
    assert_eq!(verdict("bursty"), "keep");
    assert_eq!(verdict("idle"), "consolidate");
    assert_eq!(verdict("ignoring"), "cancel");
    assert_eq!(verdict("unfiled"), "not_filed");
    assert_eq!(find(&all, "healthy")["score"].as_f64(), Some(100.0));
    assert_eq!(find(&all, "idle")["score"].as_f64(), Some(60.0));
    assert_eq!(find(&all, "ignoring")["score"].as_f64(), Some(40.0));

    let lines = |p: &str| {
        find(&all, p)["explanation"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l.as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ignoring = lines("ignoring");
    assert!(
        ignoring.contains("收到调整通知 3 份,按期完成 0,逾期完成 0,逾期未完成 3"),
        "{ignoring}"
    );
    assert!(ignoring.contains("低于整合线 50"), "{ignoring}");
    let idle = lines("idle");
    assert!(
        idle.contains("按期完成 3") && idle.contains("予以整合"),
        "{idle}"
    );
    assert!(idle.contains("闲置") && idle.contains("vCPU"), "{idle}");
    let unfiled = lines("unfiled");
    assert!(
        unfiled.contains("未全口径备案") && unfiled.contains("2024-12-25"),
        "{unfiled}"
    );
    let bursty = find(&all, "bursty");
    assert_eq!(
        bursty["facts"]["vms"][0]["cpu"]["p95"].as_f64(),
        Some(40.0),
        "the burst is 1 hour in 24: below the p95, exact at 0.01"
    );
    assert_eq!(bursty["facts"]["vms"][0]["days_with_data"], 365);

    // Idle capacity is priced: 8 vCPUs at p95 ~6% need 1, so about 7 are idle.
    let idle_cost = find(&all, "idle")["idle_cost_yuan"].as_f64().expect("cost");
    assert!(idle_cost > 5000.0, "{idle_cost}");

    // --out writes the report directory.
    let out_dir = db.dir.path().join("report");
    ok(cloudgov_cmd(
        &db.url,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2026-01-15T09:00:00+08:00",
            "--out",
            &out_dir.display().to_string(),
            "--dry-run",
        ],
    ));
    for file in [
        "index.html",
        "review-2025.csv",
        "healthy.html",
        "healthy-utilisation.png",
        "unfiled.html",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(out_dir.join("review-2025.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 6, "{csv}");

    // The review e-mails are queued once per project, for the department and the finance bureau.
    let outbox: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &["outbox", "list", "--format", "json"],
    )))
    .expect("json");
    assert_eq!(outbox.iter().filter(|o| o["kind"] == "review").count(), 5);
    ok(cloudgov_cmd(
        &db.url,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2026-01-16T09:00:00+08:00",
            "--format",
            "json",
        ],
    ));
    let outbox: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &["outbox", "list", "--format", "json"],
    )))
    .expect("json");
    assert_eq!(
        outbox.iter().filter(|o| o["kind"] == "review").count(),
        5,
        "a re-run queues nothing new"
    );
}

#[tokio::test]
async fn review_numbers_from_rollups_agree_with_the_raw_samples() {
    let db = fresh_db().await;
    setup(&db);
    let all: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2026-01-15T09:00:00+08:00",
            "--format",
            "json",
            "--dry-run",
        ],
    )))
    .expect("json");
    // The raw year of idle-01, computed here the way the evaluation does (nearest rank).
    let mut cpu: Vec<f64> = Vec::new();
    let csv = year_csv("idle-01", |d, h| {
        (2.0 + f64::from((d * 7 + h) % 5), 12.0, 20.0)
    });
    for line in csv.lines() {
        cpu.push(
            line.split(',')
                .nth(2)
                .and_then(|v| v.parse().ok())
                .expect("cpu"),
        );
    }
    let avg = cpu.iter().sum::<f64>() / cpu.len() as f64;
    cpu.sort_by(f64::total_cmp);
    let p95 = cpu[(cpu.len() * 95).div_ceil(100) - 1];
    let vm = &find(&all, "idle")["facts"]["vms"][0];
    let rolled_avg = vm["cpu"]["avg"].as_f64().expect("avg");
    let rolled_p95 = vm["cpu"]["p95"].as_f64().expect("p95");
    assert!(
        (rolled_avg - avg).abs() < 1e-9,
        "avg {rolled_avg} vs raw {avg}"
    );
    assert!(
        (rolled_p95 - p95).abs() <= 0.5,
        "p95 {rolled_p95} vs raw {p95}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_stored_review() {
    let app = crate::helpers::spawn_app().await;
    setup(&app.db);
    ok(app.cloudgov(&[
        "review",
        "--year",
        "2025",
        "--at",
        "2026-01-15T09:00:00+08:00",
        "--format",
        "json",
    ]));
    let token = app.staff_token().await;
    let served: Vec<Value> =
        serde_json::from_value(app.get_json(&token, "/api/v1/reviews/2025").await).expect("array");
    assert_eq!(served.len(), 5);
    assert_eq!(served[0]["score"].as_f64(), Some(100.0), "best first");
    assert!(
        served
            .iter()
            .any(|r| r["verdict"] == "not_filed" && r["project"] == "unfiled")
    );
    let none: Vec<Value> =
        serde_json::from_value(app.get_json(&token, "/api/v1/reviews/2024").await).expect("array");
    assert!(none.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn backfilled_samples_are_rolled_up_before_retention_removes_them() {
    let db = fresh_db().await;
    let inventory = format!("{INVENTORY}\n{}", vm("healthy"));
    ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", &inventory),
        ],
    ));
    ok(cloudgov_cmd(
        &db.url,
        &["tick", "--at", "2025-10-13T09:00:00+08:00"],
    ));
    // Backfill after that tick: a June day (older than the 90 days raw samples are kept) and an
    // October day.
    let csv = "vm,ts,cpu_pct,mem_pct,disk_pct\n\
               healthy-01,2025-06-28T10:00:00+08:00,40,50,60\n\
               healthy-01,2025-06-28T11:00:00+08:00,60,50,60\n\
               healthy-01,2025-10-03T10:00:00+08:00,45,50,60\n";
    ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "b.csv", csv),
        ],
    ));
    let t: Value = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &[
            "tick",
            "--at",
            "2025-10-14T09:00:00+08:00",
            "--format",
            "json",
        ],
    )))
    .expect("json");
    assert_eq!(t["days_folded"], 2, "{t}");
    assert_eq!(
        t["samples_expired"], 2,
        "the June samples go, once rolled up: {t}"
    );
    let all: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2026-01-15T09:00:00+08:00",
            "--format",
            "json",
            "--dry-run",
        ],
    )))
    .expect("json");
    let vm = &find(&all, "healthy")["facts"]["vms"][0];
    assert_eq!(
        vm["days_with_data"], 2,
        "both backfilled days are in the rollups: {vm}"
    );
    let avg = vm["cpu"]["avg"].as_f64().expect("cpu avg");
    assert!(
        (avg - (40.0 + 60.0 + 45.0) / 3.0).abs() < 1e-9,
        "the exact mean of the three samples: {avg}"
    );
}

//! Systems no longer used (Pingdu art. 13, Jilin art. 12): the `usage` verdict from samples
//! imported with network rates, release advice e-mailed to a real SMTP server, its deadline,
//! reminder, escalation, contest, uphold and withdrawal, and the review's unused VM-days.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Weekday};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;

use crate::email::{SmtpSink, cloudgov, tick};
use crate::helpers::{TestDb, fresh_db, ok, spawn_app, write_file};

const HEADER: &str = "vm,ts,cpu_pct,mem_pct,disk_pct,net_rx_bps,net_tx_bps\n";

/// Samples every 10 minutes from `from` (inclusive, Asia/Shanghai midnight) up to `to`:
/// `f(instant) -> (cpu, mem, rx, tx)`, the disk at 60% (in its ok band).
fn series(
    vm: &str,
    from: NaiveDate,
    to: DateTime<chrono_tz::Tz>,
    f: impl Fn(DateTime<chrono_tz::Tz>) -> (f64, f64, u64, u64),
) -> String {
    let mut out = String::new();
    let mut t = Shanghai
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("instant");
    while t <= to {
        let (cpu, mem, rx, tx) = f(t);
        out.push_str(&format!(
            "{vm},{},{cpu:.2},{mem:.2},60,{rx},{tx}\n",
            t.to_rfc3339()
        ));
        t += Duration::minutes(10);
    }
    out
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn at(s: &str) -> DateTime<chrono_tz::Tz> {
    DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .with_timezone(&Shanghai)
}

/// 0.3-0.6% CPU and about 50 B/s of traffic.
fn idle(t: DateTime<chrono_tz::Tz>) -> (f64, f64, u64, u64) {
    let wobble = f64::from(t.minute() / 10 % 4) * 0.1;
    (0.3 + wobble, 21.0, 24 + u64::from(t.minute() % 3), 25)
}

const FLEET_INVENTORY: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "agri"
name = "市农业农村局"
emails = ["it@agri.example.cn"]

[[department]]
id = "edu"
name = "市教育和体育局"
emails = ["it@edu.example.cn"]

[[project]]
id = "portal"
name = "农业信息门户"
department = "agri"
filed_on = 2025-01-01

[[project]]
id = "enrol"
name = "招生系统"
department = "edu"
filed_on = 2025-01-01

[[vm]]
id = "dead-01"
project = "portal"
vcpus = 8
memory_gib = 16
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "api-01"
project = "portal"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "batch-01"
project = "portal"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "fresh-01"
project = "portal"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-09-01

[[vm]]
id = "new-01"
project = "enrol"
vcpus = 2
memory_gib = 4
disk_gib = 50
delivered_on = 2025-09-20
deployed_on = 2025-09-23
"#;

/// The held-out style fleet, all imported with `net_rx_bps,net_tx_bps`, up to Fri 2025-09-26 16:00.
fn fleet_csv() -> String {
    let end = at("2025-09-26T16:00:00+08:00");
    let mut csv = String::from(HEADER);
    csv += &series("dead-01", day("2025-09-07"), end, idle);
    // A quiet API server: 1% CPU, 20-30 kB/s.
    csv += &series("api-01", day("2025-09-07"), end, |t| {
        let extra = u64::from(t.hour()) * 200;
        (1.0, 35.0, 12_000 + extra, 8_000 + extra)
    });
    // A weekly batch: one hour at 60% every Monday, idle otherwise.
    csv += &series("batch-01", day("2025-09-07"), end, |t| {
        let cpu = if t.weekday() == Weekday::Mon && t.hour() == 2 {
            60.0
        } else {
            0.5
        };
        (cpu, 25.0, 30, 20)
    });
    // Three days of data.
    csv += &series("new-01", day("2025-09-24"), end, idle);
    // Delivered, its agent running, the system not deployed yet: idle by nature.
    csv += &series("fresh-01", day("2025-09-07"), end, idle);
    csv
}

fn usage_of<'a>(findings: &'a [Value], vm: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["vm"] == vm && f["resource"] == "usage")
        .unwrap_or_else(|| panic!("no usage finding for {vm}: {findings:?}"))
}

#[tokio::test]
async fn a_fleet_gets_its_usage_verdicts_and_one_release_notice() {
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", FLEET_INVENTORY),
    ]));
    ok(app.cloudgov(&[
        "import",
        "samples",
        "--allow-history",
        &write_file(&app.db.dir, "s.csv", &fleet_csv()),
    ]));
    let evaluated: Value = serde_json::from_str(&ok(app.cloudgov(&[
        "evaluate",
        "--at",
        "2025-09-26T16:00:00+08:00",
        "--format",
        "json",
    ])))
    .expect("evaluation JSON");
    let findings = evaluated.as_array().expect("findings");
    let dead = usage_of(findings, "dead-01");
    assert_eq!(dead["verdict"], "unused", "{dead}");
    let evidence = &dead["evidence"];
    assert_eq!(evidence["days_observed"], 14, "{dead}");
    assert!(evidence["cpu_max_pct"].as_f64().expect("cpu max") <= 0.6);
    let bytes = evidence["network_bytes_per_day"]
        .as_u64()
        .expect("bytes a day");
    assert!(
        (4_000_000..=4_700_000).contains(&bytes),
        "about 50 B/s: {bytes}"
    );
    assert_eq!(evidence["network_reported"], true);
    assert_eq!(dead["threshold"], 5.0);

    let api = usage_of(findings, "api-01");
    assert_eq!(api["verdict"], "in_use", "{api}");
    assert_eq!(api["evidence"]["used_by"], serde_json::json!(["network"]));
    let batch = usage_of(findings, "batch-01");
    assert_eq!(batch["verdict"], "in_use", "{batch}");
    assert_eq!(batch["evidence"]["used_by"], serde_json::json!(["cpu"]));
    assert_eq!(batch["evidence"]["cpu_max_pct"], 60.0);
    let fresh = usage_of(findings, "fresh-01");
    assert_eq!(fresh["verdict"], "unused", "{fresh}");
    let new = usage_of(findings, "new-01");
    assert_eq!(new["verdict"], "insufficient_data", "{new}");
    assert_eq!(new["evidence"]["days_observed"], 3);

    // One release notice, for dead-01 only; a second evaluation opens none.
    let notices = |app: &crate::helpers::TestApp| -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&ok(
            app.cloudgov(&["notices", "list", "--format", "json"])
        ))
        .expect("notices JSON")
        .into_iter()
        .filter(|n| n["kind"] == "release")
        .collect()
    };
    // fresh-01 is not deployed: no advice while it is within its deployment period.
    let release = notices(&app);
    assert_eq!(release.len(), 1, "{release:?}");
    assert_eq!(release[0]["vm"], "dead-01");
    assert_eq!(release[0]["resource"], "usage");
    assert_eq!(release[0]["evidence"]["days_observed"], 14);
    ok(app.cloudgov(&["evaluate", "--at", "2025-09-26T17:00:00+08:00"]));
    assert_eq!(notices(&app).len(), 1, "no second release notice");

    // The API lists usage findings, scoped to the viewer's department.
    let staff = app.staff_token().await;
    let usage = app
        .get_json(&staff, "/api/v1/findings?resource=usage")
        .await;
    let usage = usage.as_array().expect("array");
    assert_eq!(usage.len(), 5, "{usage:?}");
    assert!(usage.iter().all(|f| f["resource"] == "usage"));
    let unused = app
        .get_json(&staff, "/api/v1/findings?resource=usage&verdict=unused")
        .await;
    assert_eq!(unused.as_array().map(Vec::len), Some(2), "{unused}");
    app.add_user(
        "edu-it",
        cloudgov::core::access::Role::Department,
        Some("edu"),
    )
    .await;
    let edu = app.api_token("edu-it").await;
    let theirs = app.get_json(&edu, "/api/v1/findings?resource=usage").await;
    let theirs = theirs.as_array().expect("array");
    assert_eq!(theirs.len(), 1, "only edu's VM: {theirs:?}");
    assert_eq!(theirs[0]["vm"], "new-01");
    let resp = reqwest::Client::new()
        .get(app.url("/api/v1/findings?resource=network"))
        .bearer_auth(&staff)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("JSON error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("network")),
        "{body}"
    );
    app.stop().await;
}

const LIFECYCLE_INVENTORY: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "agri"
name = "市农业农村局"
emails = ["it@agri.example.cn"]

[[project]]
id = "portal"
name = "农业信息门户"
department = "agri"
filed_on = 2025-01-01

[[project]]
id = "archive"
name = "档案备份系统"
department = "agri"
filed_on = 2025-01-01

[[vm]]
id = "dead-01"
project = "portal"
vcpus = 8
memory_gib = 16
disk_gib = 200
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "web-01"
project = "portal"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "dead-02"
project = "archive"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "dead-03"
project = "archive"
vcpus = 2
memory_gib = 4
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10
"#;

fn lifecycle_csv() -> String {
    let mut csv = String::from(HEADER);
    let end = at("2025-11-05T16:00:00+08:00");
    csv += &series(
        "dead-01",
        day("2025-09-07"),
        at("2025-10-26T16:00:00+08:00"),
        idle,
    );
    csv += &series(
        "dead-02",
        day("2025-09-07"),
        at("2025-10-26T16:00:00+08:00"),
        idle,
    );
    csv += &series("web-01", day("2025-09-07"), end, |t| {
        (30.0 + f64::from(t.hour()), 50.0, 40_000, 90_000)
    });
    // Idle, but busy for an hour on Wed 2025-10-22.
    csv += &series("dead-03", day("2025-09-07"), end, |t| {
        if t.date_naive() == day("2025-10-22") && t.hour() == 10 {
            (55.0, 40.0, 300_000, 200_000)
        } else {
            idle(t)
        }
    });
    csv
}

fn json(db: &TestDb, smtp: &str, args: &[&str]) -> Vec<Value> {
    serde_json::from_str(&ok(cloudgov(db, smtp, args))).expect("JSON")
}

fn release_notice(db: &TestDb, smtp: &str, vm: &str) -> Vec<Value> {
    json(db, smtp, &["notices", "list", "--format", "json"])
        .into_iter()
        .filter(|n| n["kind"] == "release" && n["vm"] == vm)
        .collect()
}

fn deadline_of(db: &TestDb, smtp: &str, notice: i64) -> Value {
    json(
        db,
        smtp,
        &[
            "deadlines",
            "--at",
            "2025-12-31T12:00:00+08:00",
            "--format",
            "json",
        ],
    )
    .into_iter()
    .find(|d| d["notice_id"] == notice)
    .unwrap_or_else(|| panic!("no deadline of notice {notice}"))
}

#[tokio::test]
async fn release_advice_is_mailed_reminded_escalated_contested_upheld_and_withdrawn() {
    let db = fresh_db().await;
    let sink = SmtpSink::start();
    let smtp = sink.url();
    ok(cloudgov(
        &db,
        &smtp,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", LIFECYCLE_INVENTORY),
        ],
    ));
    ok(cloudgov(
        &db,
        &smtp,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &lifecycle_csv()),
        ],
    ));

    // Fri 2025-09-26: three VMs look unused; one digest with three release advices, and no
    // downsize notice for them (releasing is the adjustment).
    let t = tick(&db, &smtp, "2025-09-26T16:00:00+08:00");
    assert_eq!(t["notices_opened"], 3, "{t}");
    let all = json(&db, &smtp, &["notices", "list", "--format", "json"]);
    assert!(all.iter().all(|n| n["kind"] == "release"), "{all:?}");
    let mail = sink.received();
    assert_eq!(mail.len(), 1, "one digest");
    let digest = &mail[0];
    assert!(
        digest.subject.contains("闲置资源释放建议"),
        "{}",
        digest.subject
    );
    assert!(
        digest.subject.contains("2025年10月16日"),
        "{}",
        digest.subject
    );
    assert_eq!(digest.rcpt, vec!["it@agri.example.cn"]);
    for needle in [
        "第十三条",
        "当系统不再使用时,使用部门应当及时通知市大数据发展中心释放资源",
        "dead-01",
        "dead-02",
        "dead-03",
        "未超过5%",
        // 8 vCPU x 60 + 16 GiB x 20 + 200 GiB x 0.5 yuan a month (rules/review.toml).
        "900.00 元",
        "申请释放资源",
        "提出异议",
        "2025年10月16日",
    ] {
        assert!(
            digest.body.contains(needle),
            "{needle} missing:\n{}",
            digest.body
        );
    }
    assert!(
        digest.pngs.is_empty(),
        "release advice carries no resource chart"
    );
    let id = |vm: &str| -> i64 {
        let n = release_notice(&db, &smtp, vm);
        assert_eq!(n.len(), 1, "{vm}: {n:?}");
        assert_eq!(
            n[0]["due"], "2025-10-16",
            "10 working days after Fri 2025-09-26"
        );
        n[0]["id"].as_i64().expect("id")
    };
    let (n1, n2, n3) = (id("dead-01"), id("dead-02"), id("dead-03"));

    // The archive project's every VM is unused: flagged as a whole.
    let staff_scope: Vec<Value> = json(&db, &smtp, &["findings", "--format", "json"]);
    assert_eq!(
        staff_scope
            .iter()
            .filter(|f| f["resource"] == "usage" && f["verdict"] == "unused")
            .count(),
        3
    );

    // The archive department contests two advices: both are held from reminders.
    for (n, reason) in [(n2, "灾备备用系统,平时不运行业务"), (n3, "每季度使用一次")]
    {
        ok(cloudgov(
            &db,
            &smtp,
            &["notices", "contest", &n.to_string(), "--reason", reason],
        ));
    }
    let t = tick(&db, &smtp, "2025-10-13T09:00:00+08:00");
    assert_eq!(t["reminders"], 1, "dead-01 only: {t}");
    let reminder = sink.received().into_iter().nth(1).expect("reminder mail");
    assert!(reminder.body.contains("dead-01"), "{}", reminder.body);
    assert!(!reminder.body.contains("dead-02"));
    let t = tick(&db, &smtp, "2025-10-17T09:00:00+08:00");
    assert_eq!(t["escalations"], 1, "dead-01 only: {t}");
    let escalation = sink.received().into_iter().nth(2).expect("escalation mail");
    assert!(escalation.body.contains("dead-01"), "{}", escalation.body);
    assert_eq!(escalation.cc, "ops@bigdata.example.cn");

    // A department user cannot decide; staff uphold dead-02's advice: the clock is pressed again.
    let refused = cloudgov(
        &db,
        &smtp,
        &["notices", "uphold", &n1.to_string(), "--reason", "x"],
    );
    assert!(!refused.status.success(), "no contest to decide on n1");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no undecided contest"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(cloudgov(
        &db,
        &smtp,
        &[
            "notices",
            "uphold",
            &n2.to_string(),
            "--reason",
            "灾备系统应纳入统一灾备资源池",
        ],
    ));
    let again = cloudgov(
        &db,
        &smtp,
        &[
            "notices",
            "contest",
            &n2.to_string(),
            "--reason",
            "再次异议",
        ],
    );
    assert!(
        !again.status.success(),
        "upheld advice is not contested again"
    );
    let complete = cloudgov(
        &db,
        &smtp,
        &["notices", "complete", &n1.to_string(), "--on", "2025-10-20"],
    );
    assert!(
        String::from_utf8_lossy(&complete.stderr).contains("release advice"),
        "release advice is answered, not completed: {}",
        String::from_utf8_lossy(&complete.stderr)
    );
    let t = tick(&db, &smtp, "2025-10-20T09:00:00+08:00");
    assert_eq!(
        (t["reminders"].as_u64(), t["escalations"].as_u64()),
        (Some(0), Some(1)),
        "{t}"
    );
    let escalation = sink
        .received()
        .into_iter()
        .nth(3)
        .expect("second escalation");
    assert!(escalation.body.contains("dead-02"), "{}", escalation.body);

    // Staff withdraw dead-03's advice: the notice closes, its obligation is answered.
    ok(cloudgov(
        &db,
        &smtp,
        &[
            "notices",
            "withdraw",
            &n3.to_string(),
            "--reason",
            "季度报表系统,确有使用",
        ],
    ));
    let withdrawn = &release_notice(&db, &smtp, "dead-03")[0];
    assert_eq!(withdrawn["state"], "closed", "{withdrawn}");
    assert_eq!(deadline_of(&db, &smtp, n3)["done_source"], "withdrawn");
    let again = cloudgov(
        &db,
        &smtp,
        &["notices", "withdraw", &n3.to_string(), "--reason", "x"],
    );
    assert!(!again.status.success(), "decided once");

    // dead-01's department requests the release: its obligation is done, late.
    ok(cloudgov(
        &db,
        &smtp,
        &[
            "vm",
            "request-release",
            "dead-01",
            "--on",
            "2025-10-20",
            "--reason",
            "门户旧版已停用",
        ],
    ));
    // Withdrawn, dead-03 is not advised again; it is used, so it is sized: CPU and memory
    // downsize notices (its disk is in band). (The withdrawal itself is dated today, by the wall
    // clock: a replay of 2025-10-21 does not count it as done yet.)
    let t = tick(&db, &smtp, "2025-10-21T09:00:00+08:00");
    assert_eq!(t["notices_opened"], 2, "{t}");
    assert_eq!(release_notice(&db, &smtp, "dead-03").len(), 1);
    let d1 = deadline_of(&db, &smtp, n1);
    assert_eq!(d1["done_source"], "release_requested", "{d1}");
    assert_eq!(d1["done_on"], "2025-10-20");
    assert_eq!(d1["state"], "done_late", "{d1}");
    assert_eq!(release_notice(&db, &smtp, "dead-01")[0]["state"], "closed");

    // dead-03 is busy on 10-22: seen in use, the withdrawal ends; idle for 14 more days, it is
    // advised again.
    let t = tick(&db, &smtp, "2025-10-22T20:00:00+08:00");
    assert_eq!(t["notices_opened"], 0, "{t}");
    let findings = json(&db, &smtp, &["findings", "--format", "json"]);
    assert_eq!(usage_of(&findings, "dead-03")["verdict"], "in_use");
    let t = tick(&db, &smtp, "2025-11-05T16:00:00+08:00");
    assert_eq!(t["notices_opened"], 1, "{t}");
    let advices = release_notice(&db, &smtp, "dead-03");
    assert_eq!(advices.len(), 2, "{advices:?}");
    assert_eq!(advices.iter().filter(|n| n["state"] == "open").count(), 1);
    // Used again the next day: the open advice closes, its obligation answered by the evidence.
    let busy = format!("{HEADER}dead-03,2025-11-06T10:00:00+08:00,60,40,60,200000,300000\n");
    ok(cloudgov(
        &db,
        &smtp,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "busy.csv", &busy),
        ],
    ));
    tick(&db, &smtp, "2025-11-06T20:00:00+08:00");
    let advices = release_notice(&db, &smtp, "dead-03");
    assert!(
        advices.iter().all(|n| n["state"] == "closed"),
        "{advices:?}"
    );
    let newest = advices[0]["id"].as_i64().expect("id");
    assert_eq!(
        deadline_of(&db, &smtp, newest)["done_source"],
        "seen_in_use"
    );

    // Every decision is in the audit log.
    let audit: Vec<Value> = json(&db, &smtp, &["user", "audit", "--format", "json"]);
    for action in [
        "contest_notice",
        "contest_upheld",
        "contest_withdrawn",
        "request_release",
    ] {
        assert!(
            audit.iter().any(|a| a["action"] == action),
            "{action} not audited: {audit:?}"
        );
    }

    // The annual review names the unused VM-days.
    let reviews: Vec<Value> = json(
        &db,
        &smtp,
        &[
            "review",
            "--year",
            "2025",
            "--at",
            "2025-11-06T12:00:00+08:00",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    let archive = reviews
        .iter()
        .find(|r| r["project"] == "archive")
        .expect("archive reviewed");
    let lines: Vec<&str> = archive["explanation"]
        .as_array()
        .expect("explanation")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("疑似闲置") && l.contains("台·天")),
        "{lines:?}"
    );
    let portal = reviews
        .iter()
        .find(|r| r["project"] == "portal")
        .expect("portal reviewed");
    assert!(
        portal["facts"]["vms"]
            .as_array()
            .expect("vms")
            .iter()
            .any(|v| v["vm"] == "web-01" && v["unused_days"] == 0),
        "{portal}"
    );
}

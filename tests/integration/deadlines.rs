//! Working-day deadlines through the binary: `tick --at` at chosen instants, `deadlines --at`.
//! The VMs are delivered on Friday 2025-09-26, the working day before National Day 2025:
//! 10 working days later is Thursday 2025-10-16 (09-28 and 10-11 are adjusted workdays,
//! 10-01..08 are off).

use serde_json::Value;

use crate::helpers::{TestDb, cloudgov_cmd, fresh_db, ok, write_file};

const INVENTORY: &str = r#"
[[department]]
id = "health"
name = "市卫健局"
emails = ["it@health.example.cn"]

[[project]]
id = "his"
name = "医院信息系统"
department = "health"
filed_on = 2025-01-01

[[vm]]
id = "on-time"
project = "his"
vcpus = 8
memory_gib = 32
disk_gib = 500
delivered_on = 2025-09-26

[[vm]]
id = "late"
project = "his"
vcpus = 8
memory_gib = 32
disk_gib = 500
delivered_on = 2025-09-26

[[vm]]
id = "never"
project = "his"
vcpus = 8
memory_gib = 32
disk_gib = 500
delivered_on = 2025-09-26

[[vm]]
id = "busy"
project = "his"
vcpus = 8
memory_gib = 32
disk_gib = 500
delivered_on = 2025-09-26
"#;

fn cg(db: &TestDb, args: &[&str]) -> String {
    ok(cloudgov_cmd(&db.url, args))
}

fn deadlines(db: &TestDb, at: &str) -> Vec<Value> {
    serde_json::from_str(&cg(db, &["deadlines", "--at", at, "--format", "json"]))
        .expect("deadlines JSON")
}

fn one<'a>(all: &'a [Value], kind: &str, vm: &str) -> &'a Value {
    all.iter()
        .find(|d| d["kind"] == kind && d["vm"] == vm)
        .unwrap_or_else(|| panic!("no {kind} deadline for {vm}: {all:?}"))
}

fn events<'a>(d: &'a Value, event: &str) -> Vec<&'a Value> {
    d["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["event"] == event)
        .collect()
}

#[tokio::test]
async fn deployment_on_time_late_never_and_inferred() {
    let db = fresh_db().await;
    let inv = write_file(&db.dir, "inv.toml", INVENTORY);
    cg(&db, &["import", "inventory", &inv]);
    // "busy" shows use on 2025-10-09 (3 samples with CPU above 5%): deployment is inferred.
    let csv = "vm,ts,cpu_pct,mem_pct,disk_pct\n\
               busy,2025-10-09T10:00:00+08:00,40,50,60\n\
               busy,2025-10-09T11:00:00+08:00,40,50,60\n\
               busy,2025-10-09T12:00:00+08:00,40,50,60\n";
    cg(
        &db,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", csv),
        ],
    );

    let all = deadlines(&db, "2025-09-26T18:00:00+08:00");
    for vm in ["on-time", "late", "never", "busy"] {
        let d = one(&all, "deployment", vm);
        assert_eq!(d["due"], "2025-10-16", "{d}");
        assert_eq!(d["start"], "2025-09-26");
        assert_eq!(d["state"], "open");
        assert_eq!(d["provisional"], false);
    }

    cg(
        &db,
        &["vm", "mark-deployed", "on-time", "--on", "2025-10-16"],
    );
    cg(&db, &["vm", "mark-deployed", "late", "--on", "2025-10-17"]);
    let bad = cloudgov_cmd(
        &db.url,
        &["vm", "mark-deployed", "late", "--on", "2025-09-01"],
    );
    assert!(
        !bad.status.success(),
        "deployed before delivery must be refused"
    );

    // 2025-10-13 is 3 working days before the due date: the reminder for "never".
    let tick = |at: &str| -> Value {
        serde_json::from_str(&cg(&db, &["tick", "--at", at, "--format", "json"]))
            .expect("tick JSON")
    };
    let first = tick("2025-10-13T09:00:00+08:00");
    assert_eq!(first["deployments_inferred"], 1, "{first}");
    let again = tick("2025-10-13T15:00:00+08:00");
    assert_eq!(again["reminders"], 0, "a reminder is sent once: {again}");
    // The day after the due date: escalation, once.
    let overdue = tick("2025-10-17T09:00:00+08:00");
    assert!(overdue["escalations"].as_u64() >= Some(1), "{overdue}");
    let overdue_again = tick("2025-10-20T09:00:00+08:00");
    assert_eq!(overdue_again["escalations"], 0, "{overdue_again}");

    let all = deadlines(&db, "2025-10-20T12:00:00+08:00");
    let on_time = one(&all, "deployment", "on-time");
    assert_eq!(
        (on_time["state"].as_str(), on_time["done_source"].as_str()),
        (Some("done_on_time"), Some("confirmed"))
    );
    assert_eq!(one(&all, "deployment", "late")["state"], "done_late");
    let busy = one(&all, "deployment", "busy");
    assert_eq!(busy["state"], "done_on_time");
    assert_eq!(busy["done_on"], "2025-10-09");
    assert_eq!(busy["done_source"], "inferred");
    let never = one(&all, "deployment", "never");
    assert_eq!(never["state"], "overdue");
    assert_eq!(events(never, "reminder").len(), 1, "{never}");
    assert_eq!(events(never, "reminder")[0]["on"], "2025-10-13");
    assert_eq!(events(never, "escalation").len(), 1, "{never}");
    assert_eq!(events(never, "escalation")[0]["on"], "2025-10-17");
    // As of the due day itself the deadline is still open (it ends at the end of that day).
    assert_eq!(
        one(
            &deadlines(&db, "2025-10-16T23:00:00+08:00"),
            "deployment",
            "never"
        )["state"],
        "open"
    );
    // The late VM was not deployed as of 2025-10-16.
    assert_eq!(
        one(
            &deadlines(&db, "2025-10-16T23:00:00+08:00"),
            "deployment",
            "late"
        )["state"],
        "open"
    );
}

/// 10 days of low samples before 2025-09-26 for `vm`: every resource in downsize territory,
/// but 8% CPU is use (the unused-system rule's maximum is 5%), so the notices are downsize ones.
fn idle_samples(vm: &str) -> String {
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for day in 17..=26 {
        for hour in [10, 15] {
            csv.push_str(&format!("{vm},2025-09-{day}T{hour}:00:00+08:00,8,10,20\n"));
        }
    }
    csv
}

#[tokio::test]
async fn adjustment_reminder_completion_and_escalation_happen_once() {
    let db = fresh_db().await;
    let inv = write_file(&db.dir, "inv.toml", INVENTORY);
    cg(&db, &["import", "inventory", &inv]);
    cg(
        &db,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &idle_samples("on-time")),
        ],
    );

    // The notice is issued on Friday 2025-09-26: due 10 working days later, 2025-10-16.
    let t = cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-09-26T16:00:00+08:00",
            "--format",
            "json",
        ],
    );
    let t: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(
        t["notices_opened"], 3,
        "cpu, memory and disk are all low: {t}"
    );
    let all = deadlines(&db, "2025-09-26T18:00:00+08:00");
    let adjustments: Vec<&Value> = all.iter().filter(|d| d["kind"] == "adjustment").collect();
    assert_eq!(adjustments.len(), 3);
    assert!(
        adjustments
            .iter()
            .all(|d| d["due"] == "2025-10-16" && d["state"] == "open" && d["vm"] == "on-time")
    );

    // Reminder window opens on 2025-10-13; a second tick that day sends nothing new.
    let r: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-13T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(
        r["reminders"],
        3 + 4,
        "3 adjustments and 4 undeployed VMs: {r}"
    );
    let r: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-14T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(r["reminders"], 0, "{r}");
    assert_eq!(
        r["notices_opened"], 0,
        "open notices are never duplicated: {r}"
    );

    // The department reduces the vCPUs in the inventory: the CPU adjustment is complete.
    let reduced = INVENTORY.replacen(
        "id = \"on-time\"\nproject = \"his\"\nvcpus = 8",
        "id = \"on-time\"\nproject = \"his\"\nvcpus = 4",
        1,
    );
    cg(
        &db,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv2.toml", &reduced),
        ],
    );
    let c: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-15T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(c["deadlines_done"], 1, "{c}");

    // Overdue: memory and disk escalate once; the completed CPU adjustment does not.
    let e: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-17T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(
        e["escalations"],
        2 + 4,
        "2 adjustments and 4 undeployed VMs: {e}"
    );
    assert_eq!(
        e["notices_opened"], 0,
        "the adjusted VM is re-measured from scratch: {e}"
    );
    let e: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-20T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(e["escalations"], 0, "{e}");

    let all = deadlines(&db, "2025-10-20T12:00:00+08:00");
    let notices: Vec<Value> =
        serde_json::from_str(&cg(&db, &["notices", "list", "--format", "json"])).expect("json");
    let notice_of = |resource: &str| {
        notices
            .iter()
            .find(|n| n["resource"] == resource)
            .expect("notice")["id"]
            .clone()
    };
    let adjustment = |resource: &str| {
        all.iter()
            .find(|d| d["kind"] == "adjustment" && d["notice_id"] == notice_of(resource))
            .expect("adjustment deadline")
    };
    let cpu = adjustment("cpu");
    assert_eq!(
        (cpu["state"].as_str(), cpu["done_on"].as_str()),
        (Some("done_on_time"), Some("2025-10-15"))
    );
    assert_eq!(cpu["done_source"], "inventory");
    assert_eq!(events(cpu, "reminder").len(), 1);
    assert_eq!(events(cpu, "escalation").len(), 0);
    for resource in ["memory", "disk"] {
        let d = adjustment(resource);
        assert_eq!(d["state"], "overdue", "{d}");
        assert_eq!(events(d, "reminder").len(), 1, "{d}");
        assert_eq!(events(d, "escalation").len(), 1, "{d}");
    }
    let cpu_notice = notices
        .iter()
        .find(|n| n["resource"] == "cpu")
        .expect("cpu notice");
    assert_eq!(cpu_notice["state"], "closed");

    // Staff confirm the memory adjustment late: done_late.
    let memory_id = notice_of("memory").as_i64().expect("id").to_string();
    cg(
        &db,
        &["notices", "complete", &memory_id, "--on", "2025-10-21"],
    );
    let all = deadlines(&db, "2025-10-22T12:00:00+08:00");
    let memory = all
        .iter()
        .find(|d| d["notice_id"].as_i64().map(|i| i.to_string()) == Some(memory_id.clone()))
        .expect("memory deadline");
    assert_eq!(memory["state"], "done_late");
}

#[tokio::test]
async fn release_stops_evaluation_and_silent_agents_are_flagged() {
    let db = fresh_db().await;
    let inv = write_file(&db.dir, "inv.toml", INVENTORY);
    cg(&db, &["import", "inventory", &inv]);
    cg(
        &db,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &idle_samples("on-time")),
        ],
    );
    cg(
        &db,
        &["vm", "mark-deployed", "on-time", "--on", "2025-10-09"],
    );
    cg(&db, &["tick", "--at", "2025-10-10T09:00:00+08:00"]);
    // Never heard from since deployment on Thursday 10-09: 10-10, Saturday 10-11 (an adjusted
    // workday), 10-13, 10-14 make 4 working days; on 10-15 it is 5, and the VM is silent.
    let t: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-14T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(t["silent_agents"], 0, "{t}");
    let t: Value = serde_json::from_str(&cg(
        &db,
        &[
            "tick",
            "--at",
            "2025-10-15T09:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert_eq!(t["silent_agents"], 1, "{t}");
    let alerts: Vec<Value> =
        serde_json::from_str(&cg(&db, &["alerts", "--format", "json"])).expect("json");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0]["vm"].as_str(), alerts[0]["kind"].as_str()),
        (Some("on-time"), Some("silent_agent"))
    );

    cg(
        &db,
        &[
            "vm",
            "request-release",
            "on-time",
            "--on",
            "2025-10-16",
            "--reason",
            "系统已停用",
        ],
    );
    let out = cg(
        &db,
        &["vm", "confirm-release", "on-time", "--on", "2025-10-17"],
    );
    assert!(out.contains("released"), "{out}");
    let findings: Vec<Value> = serde_json::from_str(&cg(
        &db,
        &[
            "evaluate",
            "--at",
            "2025-10-17T12:00:00+08:00",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    assert!(
        findings.iter().all(|f| f["vm"] != "on-time"),
        "a released VM is not evaluated"
    );
    let alerts: Vec<Value> =
        serde_json::from_str(&cg(&db, &["alerts", "--format", "json"])).expect("json");
    assert!(alerts.iter().all(|a| a["open"] == false), "{alerts:?}");
}

#[test]
fn calendar_cli_prints_exactly_the_answer() {
    let run = |args: &[&str]| ok(cloudgov_cmd("sqlite:///nonexistent/never-opened.db", args));
    assert_eq!(
        run(&["calendar", "add-workdays", "2025-09-26", "10"]),
        "2025-10-16\n"
    );
    assert_eq!(run(&["calendar", "is-workday", "2025-09-28"]), "workday\n");
    assert_eq!(run(&["calendar", "is-workday", "2025-10-01"]), "day-off\n");
    assert_eq!(run(&["calendar", "is-workday", "2025-10-11"]), "workday\n");
    assert_eq!(
        run(&["calendar", "between", "2025-09-26", "2025-10-16"]),
        "10\n"
    );
    // Spring Festival 2026: Saturday 02-14 is an adjusted workday, 02-15..23 are off.
    assert_eq!(
        run(&["calendar", "add-workdays", "2026-02-13", "1"]),
        "2026-02-14\n"
    );
    assert_eq!(
        run(&["calendar", "add-workdays", "2026-02-13", "2"]),
        "2026-02-24\n"
    );
    // Past the data: still answered, with a warning on stderr.
    let out = cloudgov_cmd(
        "sqlite:///nonexistent/x.db",
        &["calendar", "add-workdays", "2026-12-28", "5"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("provisional"));
}

#[test]
fn a_new_calendar_year_is_a_file_not_a_rebuild() {
    let dir = tempfile::tempdir().expect("dir");
    // A made-up 2027 in which 2027-01-04 (Monday) is a day off.
    std::fs::write(
        dir.path().join("2027.toml"),
        "year = 2027\n[[holiday]]\nname = \"New Year's Day\"\ndays_off = [\"2027-01-01\", \"2027-01-04\"]\nadjusted_workdays = []\n",
    )
    .expect("write");
    let out = ok(std::process::Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args(["--calendar-dir"])
        .arg(dir.path())
        .args(["calendar", "is-workday", "2027-01-04"])
        .output()
        .expect("run"));
    assert_eq!(out, "day-off\n");
}

const FILING_INVENTORY: &str = r#"
[[department]]
id = "edu"
name = "市教体局"
emails = ["it@edu.example.cn"]

[[project]]
id = "enrol"
name = "招生系统"
department = "edu"

[[project]]
id = "oa"
name = "办公系统"
department = "edu"

[[vm]]
id = "enrol-01"
project = "enrol"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-09-10
deployed_on = 2025-09-19

[[vm]]
id = "enrol-02"
project = "enrol"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-09-10
deployed_on = 2025-09-24

[[vm]]
id = "oa-01"
project = "oa"
vcpus = 2
memory_gib = 4
disk_gib = 50
delivered_on = 2025-09-10
deployed_on = 2025-09-19
"#;

fn filing<'a>(all: &'a [Value], project: &str) -> &'a Value {
    all.iter()
        .find(|d| d["kind"] == "filing" && d["project"] == project)
        .unwrap_or_else(|| panic!("a filing deadline of {project}: {all:?}"))
}

/// Art. 10 as an obligation: a project first deployed on Fri 2025-09-19 is due to be filed
/// 20 working days later, Thu 2025-10-23 (National Day and its adjusted workdays counted); it
/// is reminded and escalated once each like every other deadline, by e-mail through the
/// outbox, and closed by filing: from the inventory's `filed_on`, or a staff action.
#[tokio::test]
async fn filing_is_an_obligation_due_20_working_days_after_the_first_deployment() {
    let db = fresh_db().await;
    cg(
        &db,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", FILING_INVENTORY),
        ],
    );
    let all = deadlines(&db, "2025-10-20T10:00:00+08:00");
    let enrol = filing(&all, "enrol");
    assert_eq!(enrol["due"], "2025-10-23");
    assert_eq!(
        enrol["start"], "2025-09-19",
        "the first deployment starts the clock"
    );
    assert_eq!(enrol["vm"], "enrol-01", "it names the first deployed VM");
    assert_eq!(enrol["department"], "edu");
    assert_eq!(enrol["state"], "open");
    assert_eq!(enrol["working_days"], 20);
    assert_eq!(filing(&all, "oa")["due"], "2025-10-23");

    // Three working days before: the reminder, once.
    cg(&db, &["tick", "--at", "2025-10-20T10:00:00+08:00"]);
    cg(&db, &["tick", "--at", "2025-10-21T10:00:00+08:00"]);
    // The day after the due date: the escalation, once.
    cg(&db, &["tick", "--at", "2025-10-24T10:00:00+08:00"]);
    cg(&db, &["tick", "--at", "2025-10-27T10:00:00+08:00"]);
    let all = deadlines(&db, "2025-10-27T10:00:00+08:00");
    let enrol = filing(&all, "enrol");
    assert_eq!(enrol["state"], "overdue");
    let events: Vec<&str> = enrol["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["created", "reminder", "escalation"], "{enrol}");
    let outbox: Vec<Value> =
        serde_json::from_str(&cg(&db, &["outbox", "list", "--format", "json"])).expect("json");
    let kinds = |kind: &str| outbox.iter().filter(|o| o["kind"] == kind).count();
    assert_eq!(
        (kinds("reminder"), kinds("escalation")),
        (2, 2),
        "{outbox:?}"
    );

    // Filed through the inventory (late), and by a staff action (on time).
    let filed = FILING_INVENTORY.replace(
        "name = \"招生系统\"\ndepartment = \"edu\"",
        "name = \"招生系统\"\ndepartment = \"edu\"\nfiled_on = 2025-10-28",
    );
    cg(
        &db,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "filed.toml", &filed),
        ],
    );
    let early = cloudgov_cmd(&db.url, &["project", "file", "oa", "--on", "2999-01-01"]);
    assert!(!early.status.success(), "a filing in the future is refused");
    cg(&db, &["project", "file", "oa", "--on", "2025-10-22"]);
    let again = cloudgov_cmd(&db.url, &["project", "file", "oa", "--on", "2025-10-23"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already filed on 2025-10-22"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    cg(&db, &["tick", "--at", "2025-10-29T10:00:00+08:00"]);
    let all = deadlines(&db, "2025-10-29T10:00:00+08:00");
    assert_eq!(filing(&all, "enrol")["state"], "done_late");
    assert_eq!(filing(&all, "enrol")["done_on"], "2025-10-28");
    assert_eq!(filing(&all, "oa")["state"], "done_on_time");
    assert_eq!(filing(&all, "oa")["done_source"], "confirmed");
    let audit: Vec<Value> =
        serde_json::from_str(&cg(&db, &["user", "audit", "--format", "json"])).expect("json");
    assert!(
        audit.iter().any(|e| e["action"] == "file_project"),
        "{audit:?}"
    );
}

//! `cloudgov import` and `cloudgov evaluate` through the binary, against a real database.

use crate::helpers::{INVENTORY, cloudgov_cmd, fresh_db, ok, write_file};
use serde_json::Value;

const AT: &str = "2025-06-30T12:00:00+08:00";

/// Samples at 10:00 Shanghai on each of `days` days before 2025-06-30, plus one at 16:00.
fn rows(vm: &str, days: u32, cpu: f64, mem: f64, disk: f64) -> String {
    let mut out = String::new();
    for d in 0..days {
        let day = 30 - d;
        for hour in [10, 16] {
            out.push_str(&format!(
                "{vm},2025-06-{day:02}T{hour}:00:00+08:00,{cpu},{mem},{disk}\n"
            ));
        }
    }
    out
}

fn samples_csv() -> String {
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    csv += &rows("idle-01", 10, 25.0, 30.0, 49.9);
    csv += &rows("hot-01", 10, 75.1, 75.1, 75.1);
    csv += &rows("edge-01", 10, 25.1, 30.1, 50.0);
    csv += &rows("new-01", 6, 5.0, 5.0, 5.0);
    // Exactly 30 days before the evaluation instant: outside the window, must not count.
    csv += "idle-01,2025-05-31T12:00:00+08:00,99,99,99\n";
    csv
}

fn findings(out: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(out).expect("evaluate prints a JSON array")
}

fn find<'a>(all: &'a [Value], vm: &str, resource: &str) -> &'a Value {
    all.iter()
        .find(|f| f["vm"] == vm && f["resource"] == resource)
        .unwrap_or_else(|| panic!("no finding for {vm} {resource}"))
}

#[tokio::test]
async fn evaluate_applies_the_pingdu_thresholds_exactly() {
    let db = fresh_db().await;
    let inv = write_file(&db.dir, "inventory.toml", INVENTORY);
    let csv = write_file(&db.dir, "samples.csv", &samples_csv());
    let out = ok(cloudgov_cmd(&db.url, &["import", "inventory", &inv]));
    assert!(out.contains("5 VMs added"), "{out}");
    let out = ok(cloudgov_cmd(
        &db.url,
        &["import", "samples", "--allow-history", &csv],
    ));
    assert!(out.contains("imported 73 samples"), "{out}");

    let all = findings(&ok(cloudgov_cmd(
        &db.url,
        &["evaluate", "--at", AT, "--format", "json"],
    )));
    assert_eq!(
        all.len(),
        20,
        "3 resource findings and the usage finding for each of 5 VMs"
    );
    // None is idle enough to be unused (25% CPU and more); new-01 has 6 days of data.
    for (vm, verdict) in [
        ("idle-01", "in_use"),
        ("hot-01", "in_use"),
        ("new-01", "insufficient_data"),
    ] {
        assert_eq!(find(&all, vm, "usage")["verdict"], verdict, "{vm}");
    }
    let expect = [
        ("idle-01", "cpu", "downsize", 25.0, 25.0),
        ("idle-01", "memory", "downsize", 30.0, 30.0),
        ("idle-01", "disk", "downsize", 49.9, 50.0),
        ("hot-01", "cpu", "expand", 75.1, 75.0),
        ("hot-01", "memory", "expand", 75.1, 75.0),
        ("hot-01", "disk", "expand", 75.1, 75.0),
        ("edge-01", "cpu", "ok", 25.1, 25.0),
        ("edge-01", "memory", "ok", 30.1, 30.0),
        ("edge-01", "disk", "ok", 50.0, 50.0),
    ];
    for (vm, resource, verdict, value, threshold) in expect {
        let f = find(&all, vm, resource);
        assert_eq!(f["verdict"], verdict, "{vm} {resource}: {f}");
        assert_eq!(f["value"].as_f64(), Some(value), "{vm} {resource}: {f}");
        assert_eq!(
            f["threshold"].as_f64(),
            Some(threshold),
            "{vm} {resource}: {f}"
        );
    }
    for resource in ["cpu", "memory", "disk"] {
        assert_eq!(
            find(&all, "new-01", resource)["verdict"],
            "insufficient_data"
        );
        assert_eq!(
            find(&all, "agent-01", resource)["verdict"],
            "insufficient_data"
        );
    }
    // 10 days x 2 samples, less the one at 16:00 on the evaluation day (after `at`), and the
    // one exactly 30 days old (outside the window).
    assert_eq!(find(&all, "idle-01", "cpu")["samples"], 19);

    // Findings that call for action are notices, one per VM, resource and direction.
    let notices = |db_url: &str| -> Vec<Value> {
        serde_json::from_str(&ok(cloudgov_cmd(
            db_url,
            &["notices", "list", "--format", "json"],
        )))
        .expect("notices JSON")
    };
    let first = notices(&db.url);
    assert_eq!(first.len(), 6, "{first:?}");
    assert_eq!(
        first
            .iter()
            .filter(|n| n["kind"] == "downsize" && n["vm"] == "idle-01")
            .count(),
        3
    );
    assert_eq!(
        first
            .iter()
            .filter(|n| n["kind"] == "expand" && n["vm"] == "hot-01")
            .count(),
        3
    );
    assert!(
        first
            .iter()
            .all(|n| n["state"] == "open" && n["issued_on"] == "2025-06-30")
    );

    // A second evaluation, a day later, opens nothing new while the notices are open.
    ok(cloudgov_cmd(
        &db.url,
        &[
            "evaluate",
            "--at",
            "2025-07-01T12:00:00+08:00",
            "--format",
            "json",
        ],
    ));
    assert_eq!(notices(&db.url).len(), 6, "no duplicate notices");

    // The stored findings are what the last evaluation said.
    let stored: Vec<Value> = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &["findings", "--format", "json"],
    )))
    .expect("json");
    assert_eq!(stored.len(), 20);
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let db = fresh_db().await;
    let inv = write_file(&db.dir, "inventory.toml", INVENTORY);
    let csv = write_file(&db.dir, "samples.csv", &samples_csv());
    ok(cloudgov_cmd(&db.url, &["import", "inventory", &inv]));
    ok(cloudgov_cmd(
        &db.url,
        &["import", "samples", "--allow-history", &csv],
    ));
    let all = findings(&ok(cloudgov_cmd(
        &db.url,
        &["evaluate", "--at", AT, "--format", "json", "--dry-run"],
    )));
    assert_eq!(all.len(), 20);
    let notices = ok(cloudgov_cmd(
        &db.url,
        &["notices", "list", "--format", "json"],
    ));
    assert_eq!(notices.trim(), "[]");
}

#[tokio::test]
async fn a_bad_samples_file_names_the_line_and_imports_nothing() {
    let db = fresh_db().await;
    let inv = write_file(&db.dir, "inventory.toml", INVENTORY);
    ok(cloudgov_cmd(&db.url, &["import", "inventory", &inv]));
    let csv = "vm,ts,cpu_pct,mem_pct,disk_pct\n\
               idle-01,2025-06-30T10:00:00+08:00,10,10,10\n\
               idle-01,2025-06-30T11:00:00+08:00,10,101,10\n";
    let path = write_file(&db.dir, "bad.csv", csv);
    let out = cloudgov_cmd(&db.url, &["import", "samples", "--allow-history", &path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("mem_pct"), "{err}");

    let unknown = write_file(
        &db.dir,
        "unknown.csv",
        "vm,ts,cpu_pct,mem_pct,disk_pct\nghost,2025-06-30T10:00:00Z,1,1,1\n",
    );
    let err = String::from_utf8_lossy(
        &cloudgov_cmd(&db.url, &["import", "samples", "--allow-history", &unknown]).stderr,
    )
    .to_string();
    assert!(
        err.contains("line 2") && err.contains("unknown VM \"ghost\""),
        "{err}"
    );

    let all = findings(&ok(cloudgov_cmd(
        &db.url,
        &["evaluate", "--at", AT, "--format", "json", "--dry-run"],
    )));
    assert_eq!(
        find(&all, "idle-01", "cpu")["samples"],
        0,
        "nothing from the rejected file was stored"
    );
}

#[tokio::test]
async fn a_bad_inventory_is_refused_whole() {
    let db = fresh_db().await;
    let bad = INVENTORY.replace("project = \"enrol\"\nvcpus = 2\nmemory_gib = 4\ndisk_gib = 50\ndelivered_on = 2025-06-20\n", "project = \"nope\"\nvcpus = 2\nmemory_gib = 4\ndisk_gib = 50\ndelivered_on = 2025-06-20\n");
    let path = write_file(&db.dir, "bad.toml", &bad);
    let out = cloudgov_cmd(&db.url, &["import", "inventory", &path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("project nope"), "{err}");
    let vms = ok(cloudgov_cmd(&db.url, &["vm", "list", "--format", "json"]));
    assert_eq!(vms.trim(), "[]", "nothing half-written");
}

#[test]
fn an_unknown_database_scheme_fails_loudly() {
    let out = cloudgov_cmd("mysql://root@127.0.0.1/test", &["findings"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL") && err.contains("sqlite://"),
        "{err}"
    );
}

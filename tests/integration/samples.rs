//! Samples in and out for audit: a streamed import with network rates (all or nothing, the
//! first bad line named), compaction into blocks by the fold, and `cloudgov samples export`
//! printing exactly what was imported, before and after compaction (today's head too, once it
//! holds an hour).

use serde_json::Value;

use crate::helpers::{cloudgov_cmd, fresh_db_with_inventory, ok, write_file};

/// Three days of 5-minute samples for two VMs, some without disk or rates; values with two
/// decimals, as stored.
fn csv_rows() -> Vec<String> {
    let mut rows = Vec::new();
    for vm in ["idle-01", "hot-01"] {
        for step in 0..(3 * 288) {
            let ts = chrono::DateTime::parse_from_rfc3339("2025-09-01T00:00:00+08:00").expect("ts")
                + chrono::TimeDelta::seconds(300 * step);
            let cpu = format!("{}.{:02}", step % 100, step % 97);
            let disk = if step % 50 == 7 {
                String::new()
            } else {
                "61.50".into()
            };
            let (rx, tx) = if step % 40 == 3 {
                (String::new(), String::new())
            } else {
                ((step * 1013).to_string(), (step * 7).to_string())
            };
            let inbound = if step % 3 == 0 {
                (step % 11).to_string()
            } else {
                String::new()
            };
            rows.push(format!(
                "{vm},{},{cpu},33.25,{disk},{rx},{tx},{inbound}",
                ts.to_rfc3339()
            ));
        }
    }
    rows
}

const HEADER: &str = "vm,ts,cpu_pct,mem_pct,disk_pct,net_rx_bps,net_tx_bps,inbound_connections";

fn export(url: &str, vm: &str, format: &str) -> String {
    ok(cloudgov_cmd(
        url,
        &[
            "samples",
            "export",
            vm,
            "--from",
            "2025-09-01",
            "--to",
            "2025-09-03",
            "--format",
            format,
        ],
    ))
}

#[tokio::test]
async fn imported_samples_export_unchanged_before_and_after_compaction() {
    let db = fresh_db_with_inventory().await;
    let rows = csv_rows();

    // A bad last line: nothing of the file is kept, and the error names the line.
    let mut bad = format!("{HEADER}\r\n{}\r\n", rows.join("\r\n"));
    bad += "idle-01,2025-09-04T00:00:00+08:00,101,1,1,,,\r\n";
    let out = cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "bad.csv", &bad),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last_line = rows.len() + 2;
    assert!(
        err.contains(&format!("line {last_line}")) && err.contains("cpu_pct"),
        "names the line and the field: {err}"
    );
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(
        export(&db.url, "idle-01", "csv").lines().count(),
        1,
        "only the header"
    );

    let good = format!("{HEADER}\n{}\n", rows.join("\n"));
    let text = ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "good.csv", &good),
        ],
    ));
    assert!(
        text.contains(&format!("imported {} samples", rows.len())),
        "{text}"
    );

    let expected = |vm: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.starts_with(&format!("{vm},")))
            .filter(|r| {
                r.contains("2025-09-01T") || r.contains("2025-09-02T") || r.contains("2025-09-03T")
            })
            .cloned()
            .collect()
    };
    let exported = |vm: &str| -> Vec<String> {
        let csv = export(&db.url, vm, "csv");
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(HEADER));
        lines.map(str::to_owned).collect()
    };
    // In the head (not folded yet), then compacted into blocks by a tick a few days later.
    assert_eq!(exported("idle-01"), expected("idle-01"));
    let tick: Value = serde_json::from_str(&ok(cloudgov_cmd(
        &db.url,
        &[
            "tick",
            "--at",
            "2025-09-10T09:00:00+08:00",
            "--format",
            "json",
        ],
    )))
    .expect("tick json");
    assert_eq!(tick["days_folded"], 6, "3 days x 2 VMs compacted: {tick}");
    assert_eq!(exported("idle-01"), expected("idle-01"), "after compaction");
    assert_eq!(exported("hot-01"), expected("hot-01"));

    // JSON carries the same values as numbers, and empty fields as null.
    let json: Vec<Value> = serde_json::from_str(&export(&db.url, "hot-01", "json")).expect("json");
    assert_eq!(json.len(), expected("hot-01").len());
    let third = &json[3];
    assert_eq!(third["vm"], "hot-01");
    assert_eq!(third["ts"], "2025-09-01T00:15:00+08:00");
    assert_eq!(third["cpu_pct"].as_f64(), Some(3.03));
    assert_eq!(third["net_rx_bps"], Value::Null, "step 3 has no rates");
    assert_eq!(third["inbound_connections"], 3);
    assert_eq!(json[7]["disk_pct"], Value::Null);

    // A replay of the whole file after compaction stores nothing twice.
    let again = ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "good.csv", &good),
        ],
    ));
    assert!(
        again.contains(&format!(
            "imported 0 samples ({} already present)",
            rows.len()
        )),
        "{again}"
    );
    assert_eq!(exported("idle-01"), expected("idle-01"));

    let unknown = cloudgov_cmd(&db.url, &["samples", "export", "nope-01"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown VM \"nope-01\""));
}

/// `rows` minutes of one VM from 2025-09-01 00:00 (Asia/Shanghai), starting at minute `from`.
fn minutes(vm: &str, from: i64, rows: i64) -> Vec<String> {
    (from..from + rows)
        .map(|m| {
            let ts = chrono::DateTime::parse_from_rfc3339("2025-09-01T00:00:00+08:00").expect("ts")
                + chrono::TimeDelta::minutes(m);
            format!(
                "{vm},{},{}.{:02},40.50,61.00,{},{},",
                ts.to_rfc3339(),
                m % 90,
                m % 89,
                m * 17,
                m * 3
            )
        })
        .collect()
}

/// Today's head does not wait for midnight: once it holds an hour of samples the fold moves
/// them into today's block (a head row costs several times a block's sample). What is exported
/// stays exactly what came, a replay of compacted samples stores nothing, and the head then
/// holds only what came since.
#[tokio::test]
async fn todays_head_is_compacted_once_it_holds_an_hour() {
    let db = fresh_db_with_inventory().await;
    let import = |name: &str, rows: &[String]| -> String {
        let text = format!("{HEADER}\n{}\n", rows.join("\n"));
        ok(cloudgov_cmd(
            &db.url,
            &[
                "import",
                "samples",
                "--allow-history",
                &write_file(&db.dir, name, &text),
            ],
        ))
    };
    let tick = |at: &str| -> Value {
        serde_json::from_str(&ok(cloudgov_cmd(
            &db.url,
            &["tick", "--at", at, "--format", "json"],
        )))
        .expect("tick json")
    };
    let (store, key) = store_and_key(&db.url, "idle-01").await;
    let day_start = chrono::DateTime::parse_from_rfc3339("2025-09-01T00:00:00+08:00")
        .expect("ts")
        .timestamp();
    let head_rows = || async {
        store
            .head_samples_of(&[key], day_start, day_start + 86_400)
            .await
            .expect("head")
            .get(&key)
            .map_or(0, Vec::len)
    };
    let exported = || -> Vec<String> {
        export(&db.url, "idle-01", "csv")
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect()
    };

    let first = minutes("idle-01", 0, 90);
    assert!(import("first.csv", &first).contains("imported 90 samples"));
    assert_eq!(head_rows().await, 90);
    let folded = tick("2025-09-01T01:30:00+08:00");
    assert_eq!(folded["days_folded"], 1, "{folded}");
    assert_eq!(
        head_rows().await,
        0,
        "90 rows of today moved into its block"
    );
    assert_eq!(exported(), first);

    // The first 90 again with 30 new ones: only the new are stored, and stay in the head.
    let all = minutes("idle-01", 0, 120);
    let again = import("again.csv", &all);
    assert!(
        again.contains("imported 30 samples (90 already present)"),
        "{again}"
    );
    tick("2025-09-01T02:00:00+08:00");
    assert_eq!(head_rows().await, 30, "fewer than an hour's rows wait");
    assert_eq!(exported(), all);
    assert_eq!(
        store.count_samples(Some(key)).await.expect("count"),
        120,
        "head and block together, each sample once"
    );

    // After midnight the rest goes to the block too.
    tick("2025-09-02T00:10:00+08:00");
    assert_eq!(head_rows().await, 0);
    assert_eq!(exported(), all);
    store.close().await;
}

/// Two writers offering the same samples at once: the second waits for the first and stores
/// only what the first did not, counting the rest as duplicates. On PostgreSQL this is the
/// race its COPY guards against (its check cannot see the first writer's uncommitted rows, so
/// it copies without `ON CONFLICT`, fails once they commit, and falls back).
#[tokio::test]
async fn a_sample_another_writer_commits_meanwhile_counts_as_a_duplicate() {
    use cloudgov::core::samples::{Hundredths, Sample, SampleRow};
    let db = fresh_db_with_inventory().await;
    let (store, vm_key) = store_and_key(&db.url, "idle-01").await;
    let start = chrono::DateTime::parse_from_rfc3339("2025-09-01T10:00:00+08:00")
        .expect("ts")
        .timestamp();
    let pct = |h| Hundredths::new(h).expect("percentage");
    let rows = |from: i64, to: i64| -> Vec<SampleRow> {
        (from..to)
            .map(|i| SampleRow {
                vm_key,
                sample: Sample::usage(start + 60 * i, pct(1000), pct(2000), None),
            })
            .collect()
    };
    // The first writer holds its transaction open with ten samples written.
    let mut first = store.begin_sample_import().await.expect("begin");
    first.add(&rows(0, 10)).await.expect("add");
    // The second offers the same ten and five more.
    let second = {
        let store = store.clone();
        let offered = rows(0, 15);
        tokio::spawn(async move { store.insert_samples(&offered).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !second.is_finished(),
        "the second writer waits for the first"
    );
    assert_eq!(first.commit().await.expect("commit"), (10, 0));
    let counts = second.await.expect("join").expect("second writer");
    assert_eq!(counts, (5, 10), "(inserted, duplicates)");
    assert_eq!(store.count_samples(None).await.expect("count"), 15);
    store.close().await;
}

/// The store at `url` and the key of VM `id`.
async fn store_and_key(url: &str, id: &str) -> (cloudgov::store::Store, i64) {
    let store = cloudgov::store::Store::connect(url)
        .await
        .expect("open store");
    let key = store
        .vms()
        .await
        .expect("vms")
        .into_iter()
        .find(|v| v.id.as_str() == id)
        .unwrap_or_else(|| panic!("VM {id}"))
        .key;
    (store, key)
}

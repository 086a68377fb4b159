//! Samples at scale on PostgreSQL: monthly partitions of `samples` (migration 0008). Rows land
//! in their month's partition, replays stay no-ops across the partitioned table, retention drops
//! old months whole but only once they are folded, and a sample outside every created month
//! lands in the default partition and is kept. The migration carries rows already stored over.
//! PostgreSQL only (`CLOUDGOV_TEST_DB=postgres`); with SQLite `samples` is one plain table and
//! these tests say so and return.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cloudgov::core::inventory::Inventory;
use cloudgov::core::samples::{Hundredths, Sample, SampleRow};
use cloudgov::store::{FoldRequest, MONTHS_AHEAD, Store};
use sqlx::{Connection, PgConnection};

use crate::helpers::{INVENTORY, fresh_db};

fn on_postgres() -> bool {
    if std::env::var("CLOUDGOV_TEST_DB").as_deref() == Ok("postgres") {
        return true;
    }
    eprintln!("samples are partitioned on PostgreSQL only; run with CLOUDGOV_TEST_DB=postgres");
    false
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid")
}

fn pct(v: f64) -> Hundredths {
    Hundredths::from_percent("test", v).expect("percentage")
}

fn sample(vm_key: i64, at: DateTime<Utc>, cpu: f64) -> SampleRow {
    SampleRow {
        vm_key,
        sample: Sample::usage(at.timestamp(), pct(cpu), pct(40.0), Some(pct(50.0))),
    }
}

/// Folds every marked day as the job does: these days are long past, so each is compacted
/// (its head rows move into its block) and its aggregate written.
async fn fold_all(store: &Store) {
    let today = Utc::now().date_naive();
    let marks = store.dirty_days(10_000).await.expect("dirty days");
    let days: Vec<_> = marks
        .into_iter()
        .map(|mark| FoldRequest {
            mark,
            closed: mark.day < today,
            keep_raw: true,
        })
        .collect();
    store.fold_days(&days).await.expect("fold");
}

/// A migrated store with the test inventory, its first VM's key, and a raw connection for the
/// catalog queries.
async fn store_with_vm(url: &str) -> (Store, i64, PgConnection) {
    let store = Store::connect(url).await.expect("connect");
    store
        .apply_inventory(&Inventory::parse("test", INVENTORY).expect("inventory"))
        .await
        .expect("inventory");
    let key = store.vms().await.expect("vms")[0].key;
    let conn = PgConnection::connect(url).await.expect("raw connection");
    (store, key, conn)
}

/// (partition, ts) of every stored sample, by ts.
async fn placement(conn: &mut PgConnection) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT tableoid::regclass::text, ts FROM samples ORDER BY ts")
        .fetch_all(conn)
        .await
        .expect("placement")
}

async fn partitions(conn: &mut PgConnection) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'samples'::regclass ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("partitions");
    rows.into_iter().map(|(n,)| n).collect()
}

async fn table_exists(conn: &mut PgConnection, name: &str) -> bool {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pg_class WHERE relname = $1")
        .bind(name)
        .fetch_one(conn)
        .await
        .expect("pg_class");
    n > 0
}

#[tokio::test]
async fn samples_land_in_their_month_and_replays_stay_no_ops() {
    if !on_postgres() {
        return;
    }
    let db = fresh_db().await;
    let (store, vm, mut conn) = store_with_vm(&db.url).await;
    // The migration created this month and the ones ahead.
    let now = Utc::now();
    let current = format!("samples_y{}", now.format("%Ym%m"));
    let created = partitions(&mut conn).await;
    assert!(created.contains(&current), "{created:?}");
    assert!(
        created.contains(&"samples_default".to_owned()),
        "{created:?}"
    );
    assert_eq!(created.len(), MONTHS_AHEAD as usize + 2, "{created:?}");

    // January to March 2025 have no partitions yet: the rows wait in the default partition.
    let rows: Vec<SampleRow> = [(1, 10), (1, 31), (2, 14), (3, 1), (3, 31)]
        .iter()
        .map(|&(m, d)| sample(vm, utc(2025, m, d, 12), 30.0))
        .collect();
    assert_eq!(store.insert_samples(&rows).await.expect("insert"), (5, 0));
    assert!(
        placement(&mut conn)
            .await
            .iter()
            .all(|(p, _)| p == "samples_default")
    );

    // Upkeep as of 2025-03-15, keeping raw samples from 2025-01-01: March to May are created
    // ahead, January and February for the rows waiting in the default partition.
    let upkeep = store
        .maintain_sample_partitions(utc(2025, 3, 15, 0), day(2025, 1, 1))
        .await
        .expect("upkeep");
    assert_eq!(upkeep.rows_moved, 5, "{upkeep:?}");
    assert_eq!(
        upkeep.created,
        [
            "samples_y2025m01",
            "samples_y2025m02",
            "samples_y2025m03",
            "samples_y2025m04",
            "samples_y2025m05"
        ],
    );
    let placed = placement(&mut conn).await;
    let months: Vec<&str> = placed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        months,
        [
            "samples_y2025m01",
            "samples_y2025m01",
            "samples_y2025m02",
            "samples_y2025m03",
            "samples_y2025m03"
        ]
    );
    // A second pass has nothing to do.
    let again = store
        .maintain_sample_partitions(utc(2025, 3, 15, 0), day(2025, 1, 1))
        .await
        .expect("upkeep");
    assert!(
        again.created.is_empty() && again.rows_moved == 0,
        "{again:?}"
    );

    // A replay (same VM and instants, other values) is a no-op in every partition; a new
    // instant in April goes to April's partition.
    let mut replay: Vec<SampleRow> = rows
        .iter()
        .map(|r| SampleRow {
            sample: Sample {
                cpu: pct(99.0),
                ..r.sample
            },
            ..*r
        })
        .collect();
    replay.push(sample(vm, utc(2025, 4, 2, 8), 31.0));
    assert_eq!(store.insert_samples(&replay).await.expect("replay"), (1, 5));
    assert_eq!(store.count_samples(Some(vm)).await.expect("count"), 6);
    let (max_cpu,): (f64,) = sqlx::query_as("SELECT MAX(cpu_pct) FROM samples")
        .fetch_one(&mut conn)
        .await
        .expect("max");
    assert_eq!(max_cpu, 31.0, "a replay never overwrites a stored sample");
    assert_eq!(
        placement(&mut conn).await.last().map(|(p, _)| p.clone()),
        Some("samples_y2025m04".to_owned())
    );
    // The evaluation's read spans partitions.
    let window = store
        .samples_between(vm, utc(2025, 1, 1, 0), utc(2025, 4, 30, 0))
        .await
        .expect("window");
    assert_eq!(window.len(), 6);
    store.close().await;
}

#[tokio::test]
async fn retention_drops_old_months_only_once_rolled_up_and_keeps_the_rollups() {
    if !on_postgres() {
        return;
    }
    let db = fresh_db().await;
    let (store, vm, mut conn) = store_with_vm(&db.url).await;
    store
        .maintain_sample_partitions(utc(2025, 3, 1, 0), day(2025, 1, 1))
        .await
        .expect("upkeep");
    store
        .maintain_sample_partitions(utc(2025, 1, 1, 0), day(2025, 1, 1))
        .await
        .expect("upkeep");
    let rows: Vec<SampleRow> = [(1, 10), (1, 20), (2, 14), (3, 10), (3, 25)]
        .iter()
        .map(|&(m, d)| sample(vm, utc(2025, m, d, 4), 20.0 + f64::from(d)))
        .collect();
    store.insert_samples(&rows).await.expect("insert");
    // Raw samples kept from 2025-03-20 (Shanghai): January and February lie wholly before.
    let raw_before = day(2025, 3, 20);
    let long_ago = day(2020, 1, 1);

    // Nothing is rolled up yet: every day is marked, so nothing may go.
    let (expired, _) = store
        .apply_retention(raw_before, long_ago)
        .await
        .expect("retention");
    assert_eq!(expired, 0);
    assert!(table_exists(&mut conn, "samples_y2025m01").await);
    assert!(table_exists(&mut conn, "samples_y2025m02").await);
    assert_eq!(store.count_samples(None).await.expect("count"), 5);

    // Fold what is marked, as the job does: the days are over, so their head rows move into
    // blocks. Retention then drops the two old months whole (empty now) and the blocks of the
    // expired days, and keeps March 25.
    fold_all(&store).await;
    assert!(
        placement(&mut conn).await.is_empty(),
        "compacted out of the head"
    );
    assert_eq!(store.count_samples(None).await.expect("count"), 5);
    let (expired, _) = store
        .apply_retention(raw_before, long_ago)
        .await
        .expect("retention");
    assert_eq!(expired, 4, "2 in January, 1 in February, 1 of March");
    assert!(!table_exists(&mut conn, "samples_y2025m01").await);
    assert!(!table_exists(&mut conn, "samples_y2025m02").await);
    assert!(table_exists(&mut conn, "samples_y2025m03").await);
    let left = store
        .samples_between(vm, utc(2025, 1, 1, 0), utc(2025, 4, 1, 0))
        .await
        .expect("left");
    assert_eq!(
        left.iter().map(|s| s.ts).collect::<Vec<_>>(),
        [utc(2025, 3, 25, 4).timestamp()]
    );
    // The day aggregates of the dropped months stay for the review.
    let kept = store
        .day_aggregates(vm, day(2025, 1, 1), day(2025, 3, 31))
        .await
        .expect("aggregates");
    let days: Vec<NaiveDate> = kept.iter().map(|d| d.day).collect();
    assert_eq!(
        days,
        [
            day(2025, 1, 10),
            day(2025, 1, 20),
            day(2025, 2, 14),
            day(2025, 3, 10),
            day(2025, 3, 25)
        ]
    );
    assert_eq!(kept[0].cpu.max, 3000, "30.00%");
    store.close().await;
}

#[tokio::test]
async fn a_sample_outside_every_month_lands_in_the_default_partition_and_is_kept() {
    if !on_postgres() {
        return;
    }
    let db = fresh_db().await;
    let (store, vm, mut conn) = store_with_vm(&db.url).await;
    // An agent whose clock says 2200: no partition covers it, and upkeep does not create one.
    let far = utc(2200, 6, 1, 0);
    assert_eq!(
        store
            .insert_samples(&[sample(vm, far, 12.0)])
            .await
            .expect("insert"),
        (1, 0)
    );
    let keep_from = (Utc::now() - chrono::TimeDelta::days(90)).date_naive();
    let upkeep = store
        .maintain_sample_partitions(Utc::now(), keep_from)
        .await
        .expect("upkeep");
    assert_eq!(upkeep.rows_moved, 0, "{upkeep:?}");
    store
        .apply_retention(keep_from, day(2020, 1, 1))
        .await
        .expect("retention");
    assert_eq!(
        placement(&mut conn).await,
        [("samples_default".to_owned(), far.timestamp())]
    );
    let read = store
        .samples_between(vm, far - chrono::TimeDelta::days(1), far)
        .await
        .expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].cpu.percent(), 12.0);
    // A replay of it is still a no-op in the default partition.
    assert_eq!(
        store
            .insert_samples(&[sample(vm, far, 80.0)])
            .await
            .expect("replay"),
        (0, 1)
    );
    store.close().await;
}

#[tokio::test]
async fn the_migration_carries_samples_stored_before_it_into_their_months() {
    if !on_postgres() {
        return;
    }
    let db = fresh_db().await;
    // The schema as it was before partitioning: migrations up to 0006 only.
    let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/postgres"
    )))
    .await
    .expect("migrations");
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 7)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    migrator.run(&mut conn).await.expect("migrate to 0006");
    let (kind,): (String,) =
        sqlx::query_as("SELECT relkind::text FROM pg_class WHERE relname = 'samples'")
            .fetch_one(&mut conn)
            .await
            .expect("samples");
    assert_eq!(kind, "r", "a plain table before 0008");
    let old = [utc(2024, 12, 31, 23), utc(2025, 1, 1, 0)];
    for at in old {
        sqlx::query("INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct) VALUES (1, $1, 5, 6, NULL)")
            .bind(at.timestamp())
            .execute(&mut conn)
            .await
            .expect("old row");
    }
    // The daemon's own connect runs the rest, 0008 among them.
    let store = Store::connect(&db.url).await.expect("migrate the rest");
    let (kind,): (String,) =
        sqlx::query_as("SELECT relkind::text FROM pg_class WHERE relname = 'samples'")
            .fetch_one(&mut conn)
            .await
            .expect("samples");
    assert_eq!(kind, "p", "partitioned after 0008");
    assert_eq!(
        placement(&mut conn).await,
        [
            ("samples_y2024m12".to_owned(), old[0].timestamp()),
            ("samples_y2025m01".to_owned(), old[1].timestamp())
        ]
    );
    assert!(!table_exists(&mut conn, "samples_before_0008").await);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_pass_creates_its_month_and_the_next_ones() {
    if !on_postgres() {
        return;
    }
    let db = fresh_db().await;
    let (store, _, mut conn) = store_with_vm(&db.url).await;
    crate::helpers::ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &["tick", "--at", "2025-11-20T09:00:00+08:00"],
    ));
    let created = partitions(&mut conn).await;
    for month in ["samples_y2025m11", "samples_y2025m12", "samples_y2026m01"] {
        assert!(created.iter().any(|p| p == month), "{month}: {created:?}");
    }
    assert!(
        !created.iter().any(|p| p == "samples_y2026m02"),
        "{created:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_busy_samples_table_leaves_the_expired_month_for_the_next_pass() {
    if !on_postgres() {
        return;
    }
    let db = fresh_db().await;
    let (store, vm, mut conn) = store_with_vm(&db.url).await;
    store
        .maintain_sample_partitions(utc(2025, 1, 1, 0), day(2025, 1, 1))
        .await
        .expect("upkeep");
    store
        .insert_samples(&[sample(vm, utc(2025, 1, 10, 4), 20.0)])
        .await
        .expect("insert");
    fold_all(&store).await;
    // A long reader holds samples: retention gives up the month's lock after 5 s, without error,
    // and falls back to deleting its expired rows one by one.
    let mut reader = PgConnection::connect(&db.url).await.expect("reader");
    sqlx::query("BEGIN")
        .execute(&mut reader)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE samples IN ACCESS SHARE MODE")
        .execute(&mut reader)
        .await
        .expect("lock");
    let (expired, _) = store
        .apply_retention(day(2025, 3, 1), day(2020, 1, 1))
        .await
        .expect("retention succeeds while samples is busy");
    assert_eq!(expired, 1);
    assert!(table_exists(&mut conn, "samples_y2025m01").await);
    assert!(placement(&mut conn).await.is_empty());
    // The next pass drops the month, now empty.
    sqlx::query("COMMIT")
        .execute(&mut reader)
        .await
        .expect("commit");
    let (expired, _) = store
        .apply_retention(day(2025, 3, 1), day(2020, 1, 1))
        .await
        .expect("retention");
    assert_eq!(expired, 0);
    assert!(!table_exists(&mut conn, "samples_y2025m01").await);
    store.close().await;
}

//! Several daemon processes on one PostgreSQL: one leads (scheduled jobs and e-mail), the others
//! ingest and serve; killing the leader with SIGKILL hands the jobs over, and no notice is
//! e-mailed twice. PostgreSQL only (`CLOUDGOV_TEST_DB=postgres`); with SQLite one process owns
//! the file and this test says so and returns.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::Value;

use crate::helpers::{KillOnDrop, fresh_db, install_crypto_provider, ok, write_file};

fn idle_samples(vm: &str) -> String {
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for d in 0..10 {
        for h in [1, 7, 13, 19] {
            let at = Utc::now() - TimeDelta::days(d) - TimeDelta::hours(h);
            csv.push_str(&format!("{vm},{},3,10,20\n", at.to_rfc3339()));
        }
    }
    csv
}

struct Replica {
    /// Killed (SIGKILL) when dropped.
    _process: KillOnDrop,
    base: String,
}

fn start_replica(db_url: &str, smtp: &str) -> Replica {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args(["--db", db_url, "serve", "--listen", "127.0.0.1:0"])
        .args([
            "--evaluate-cron",
            "*/2 * * * * *",
            "--deadlines-cron",
            "0 0 0 1 1 * 2099",
        ])
        .env("CLOUDGOV_SMTP_URL", smtp)
        .env("CLOUDGOV_SMTP_FROM", "cloudgov@bigdata.example.cn")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start replica");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let base = line
        .trim()
        .strip_prefix("cloudgov listening on ")
        .expect("address printed")
        .to_owned();
    Replica {
        _process: KillOnDrop(child),
        base,
    }
}

async fn leads(base: &str) -> Option<bool> {
    let status: Value = reqwest::get(format!("{base}/api/v1/status"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    status["leader"].as_bool()
}

async fn leaders(replicas: &[Replica]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, r) in replicas.iter().enumerate() {
        if leads(&r.base).await == Some(true) {
            out.push(i);
        }
    }
    out
}

async fn wait_for<F: AsyncFnMut() -> bool>(limit: Duration, mut done: F) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_the_jobs_over_and_sends_nothing_twice() {
    if std::env::var("CLOUDGOV_TEST_DB").as_deref() != Ok("postgres") {
        eprintln!("replicas share PostgreSQL only; run with CLOUDGOV_TEST_DB=postgres");
        return;
    }
    install_crypto_provider();
    let db = fresh_db().await;
    let sink = crate::email::SmtpSink::start();
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", crate::helpers::INVENTORY),
        ],
    ));
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s1.csv", &idle_samples("idle-01")),
        ],
    ));

    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| start_replica(&db.url, &sink.url()))
        .collect();
    assert!(
        wait_for(Duration::from_secs(15), async || leaders(&replicas)
            .await
            .len()
            == 1)
        .await,
        "one leader"
    );
    let leader = leaders(&replicas).await[0];
    // The leader evaluates and e-mails the health department's digest.
    assert!(
        wait_for(Duration::from_secs(40), async || sink.received().len() == 1).await,
        "first digest"
    );

    // SIGKILL the leader; another replica takes over within a bounded time.
    drop(replicas.remove(leader));
    let started = Instant::now();
    assert!(
        wait_for(Duration::from_secs(20), async || leaders(&replicas)
            .await
            .len()
            == 1)
        .await,
        "a new leader"
    );
    eprintln!("leadership moved in {:?}", started.elapsed());

    // New work after the failover: another idle VM's notices go out from the new leader.
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s2.csv", &idle_samples("edge-01")),
        ],
    ));
    assert!(
        wait_for(Duration::from_secs(40), async || sink.received().len() >= 2).await,
        "second digest"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mail = sink.received();
    let ids: BTreeSet<&str> = mail.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), mail.len(), "no e-mail twice");
    assert_eq!(mail.len(), 2, "one digest per department with new notices");
}

//! Durability with real processes: a daemon killed with SIGKILL under ingest load keeps every
//! sample it acknowledged, and a daemon stopped for a while and restarted gets every sample of a
//! running agent exactly once.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use cloudgov::store::Store;
use serde_json::json;

use crate::helpers::{
    INVENTORY, KillOnDrop, agent_binary, fresh_db, install_crypto_provider, ok, write_file,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// Starts `cloudgov serve` on `port` and waits until it listens.
fn start_daemon(db_url: &str, port: u16) -> KillOnDrop {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args([
            "--db",
            db_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start daemon");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    assert!(line.contains("listening"), "{line}");
    KillOnDrop(child)
}

fn report(ts: chrono::DateTime<Utc>, seq: u64) -> serde_json::Value {
    json!({
        "seq": seq, "collected_at": ts.to_rfc3339(),
        "host": {"hostname": "h", "machine_id": null, "os": "Linux", "agent_version": "t"},
        "cpu_pct": 10.0, "mem_pct": 20.0, "filesystems": [],
        "capacity": {"vcpus": 2, "memory_bytes": 1024, "disk_bytes": 0}, "interfaces": []
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_ingest_load_loses_no_acknowledged_sample() {
    install_crypto_provider();
    let db = fresh_db().await;
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", INVENTORY),
        ],
    ));
    let vms = ["idle-01", "hot-01", "edge-01", "new-01", "agent-01"];
    let tokens: Vec<String> = vms
        .iter()
        .map(|vm| {
            ok(crate::helpers::cloudgov_cmd(
                &db.url,
                &["vm", "issue-token", vm],
            ))
            .trim()
            .to_owned()
        })
        .collect();
    let port = free_port();
    let daemon = start_daemon(&db.url, port);
    let acked: Arc<Mutex<Vec<(usize, i64)>>> = Arc::default();
    let base = Utc::now() - TimeDelta::hours(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tasks = Vec::new();
    for (agent, token) in tokens.iter().enumerate() {
        let (token, acked) = (token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            // Bounded: at most 400 batches per agent, stopping at the first failure (the kill).
            for batch in 0..400u64 {
                let times: Vec<_> = (0..5).map(|i| base + TimeDelta::seconds((batch * 5 + i) as i64)).collect();
                let body = json!({"reports": times.iter().enumerate().map(|(i, t)| report(*t, batch * 5 + i as u64 + 1)).collect::<Vec<_>>()});
                let sent = client
                    .post(format!("http://127.0.0.1:{port}/api/v1/ingest"))
                    .bearer_auth(&token)
                    .json(&body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        let mut a = acked.lock().expect("lock");
                        a.extend(times.iter().map(|t| (agent, t.timestamp())));
                    }
                    _ => return,
                }
                if Instant::now() > deadline {
                    return;
                }
            }
        }));
    }
    // Let the load run, then SIGKILL the daemon mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(daemon);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 50,
        "the load did run: {} samples acknowledged",
        acked.len()
    );

    let store = Store::connect(&db.url)
        .await
        .expect("reopen after the kill");
    let keys = store.vm_keys().await.expect("keys");
    for (agent, vm) in vms.iter().enumerate() {
        let stored: std::collections::HashSet<i64> = store
            .samples_between(keys[*vm], base - TimeDelta::seconds(1), Utc::now())
            .await
            .expect("samples")
            .iter()
            .map(|s| s.ts)
            .collect();
        let missing: Vec<_> = acked
            .iter()
            .filter(|(a, ts)| *a == agent && !stored.contains(ts))
            .collect();
        assert!(
            missing.is_empty(),
            "{vm}: {} acknowledged samples missing after SIGKILL",
            missing.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_down_for_a_while_gets_every_sample_exactly_once() {
    install_crypto_provider();
    let db = fresh_db().await;
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", INVENTORY),
        ],
    ));
    let token = ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &["vm", "issue-token", "agent-01"],
    ))
    .trim()
    .to_owned();
    let port = free_port();
    let daemon = start_daemon(&db.url, port);
    let store = Store::connect(&db.url).await.expect("store");
    let key = store.vm_keys().await.expect("keys")["agent-01"];
    let agent = KillOnDrop(
        Command::new(agent_binary())
            .env("CLOUDGOV_AGENT_SERVER", format!("http://127.0.0.1:{port}"))
            .env("CLOUDGOV_AGENT_TOKEN", &token)
            .env("CLOUDGOV_AGENT_SPOOL_DIR", db.dir.path().join("spool"))
            .env("RUST_LOG", "error")
            .args(["--interval", "1"])
            .spawn()
            .expect("agent"),
    );
    let wait_for = |n: i64, limit: Duration| {
        let store = store.clone();
        async move {
            let end = Instant::now() + limit;
            while Instant::now() < end {
                if store.count_samples(Some(key)).await.unwrap_or(0) >= n {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            false
        }
    };
    assert!(
        wait_for(2, Duration::from_secs(20)).await,
        "the agent reports"
    );
    // Stop the daemon for a while; the agent keeps collecting and queues.
    drop(daemon);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _daemon = start_daemon(&db.url, port);
    // The agent's backoff is at most 8 s here; then everything queued arrives.
    tokio::time::sleep(Duration::from_secs(12)).await;
    drop(agent);
    let agents = store.agents().await.expect("agents");
    let last_seq = agents[0].last_seq;
    let stored = store.count_samples(Some(key)).await.expect("count");
    assert!(
        last_seq >= 10,
        "the agent ran through the outage: seq {last_seq}"
    );
    // Every collection is stored once: as many samples as the agent's sequence numbers, minus
    // at most the one collected as it was killed.
    assert!(
        stored == last_seq || stored + 1 == last_seq,
        "{stored} samples for {last_seq} collections"
    );
}

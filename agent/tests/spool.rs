//! The on-disk spool end to end, with the real binary: the server is down (connections refused
//! on 127.0.0.1), reports pile up in the spool, the agent is SIGKILLed and restarted, the server
//! comes back on the same port, and every spooled report arrives exactly once, in order.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cloudgov_agent::spool::Spool;
use common::{TOKEN, ack, serve_on, temp_file};

const SPOOL_MAX: u64 = 1 << 20;

fn spawn_agent(server: &str, config: &Path, spool: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudgov-agent"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CLOUDGOV_AGENT_") || key.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("RUST_LOG", "info")
        .env("CLOUDGOV_AGENT_SERVER", server)
        .env("CLOUDGOV_AGENT_TOKEN", TOKEN)
        .env("CLOUDGOV_AGENT_SPOOL_DIR", spool)
        .env("CLOUDGOV_AGENT_SPOOL_MAX_BYTES", SPOOL_MAX.to_string())
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent")
}

/// Records in the spool's segment files (length headers only; the agent may be writing).
fn records_on_disk(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "seg") {
            continue;
        }
        let data = std::fs::read(&path).unwrap_or_default();
        let mut at = 0;
        while let Some(h) = data.get(at..at + 4) {
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            at += 8 + len;
            if at <= data.len() {
                n += 1;
            }
        }
    }
    n
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The spooled reports' collection times, oldest first (the agent must not be running).
fn spooled(dir: &Path) -> Vec<DateTime<Utc>> {
    let mut spool = Spool::open(dir, SPOOL_MAX).expect("open spool");
    spool
        .batch(usize::MAX)
        .expect("read spool")
        .map(|(b, _)| b.reports.iter().map(|r| r.collected_at).collect())
        .unwrap_or_default()
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    child.wait().expect("reap");
}

#[test]
fn spooled_reports_survive_outage_and_sigkill_and_arrive_exactly_once_in_order() {
    let config = temp_file("spool-e2e", "agent.toml", "interval_secs = 1\n");
    let spool_dir: PathBuf = config.with_file_name("spool");
    let _ = std::fs::remove_dir_all(&spool_dir);

    // A port with nothing listening: every connection is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let server = format!("http://{addr}/");

    // First life: the server is down; reports pile up in the spool; then SIGKILL.
    let mut agent = spawn_agent(&server, &config, &spool_dir);
    wait_until("3 reports spooled", || records_on_disk(&spool_dir) >= 3);
    sigkill(&mut agent);
    let after_kill = spooled(&spool_dir);
    assert!(after_kill.len() >= 3, "{after_kill:?}");

    // Second life, server still down: the old reports are kept, new ones are added after them.
    let mut agent = spawn_agent(&server, &config, &spool_dir);
    let target = after_kill.len() + 2;
    wait_until("2 more reports spooled", || {
        records_on_disk(&spool_dir) >= target
    });
    sigkill(&mut agent);
    let before_server = spooled(&spool_dir);
    assert_eq!(before_server[..after_kill.len()], after_kill[..]);
    assert!(before_server.len() >= target);

    // Third life: the server comes back on the same port.
    let listener = TcpListener::bind(addr).expect("rebind the same port");
    let (_, log) = serve_on(listener, vec![(200, ack(1))]);
    let mut agent = spawn_agent(&server, &config, &spool_dir);
    let delivered = || -> Vec<DateTime<Utc>> {
        log.lock()
            .expect("log lock")
            .iter()
            .flat_map(|r| r.batch().reports.into_iter().map(|rep| rep.collected_at))
            .collect()
    };
    // Everything spooled plus at least one report of this life.
    wait_until("the spool to be replayed", || {
        delivered().len() > before_server.len()
    });
    let stopped = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .expect("run kill");
    assert!(stopped.success());
    let status = agent.wait().expect("wait");
    assert!(status.success(), "agent exited with {status}");

    let delivered = delivered();
    // Exactly once and in order: collection times strictly increase over all requests.
    assert!(
        delivered.windows(2).all(|w| w[0] < w[1]),
        "duplicates or reordering: {delivered:?}"
    );
    assert_eq!(delivered[..before_server.len()], before_server[..]);
    for r in log.lock().expect("log lock").iter() {
        assert_eq!(r.batch().dropped_reports, 0);
    }
    // Acknowledged reports are gone from the spool; the final flush sent the rest.
    assert!(spooled(&spool_dir).is_empty());
    std::fs::remove_dir_all(&spool_dir).ok();
}

//! The library entry point [`cloudgov_agent::run`] used in-process the way the daemon's demo
//! does: spawned on a multi-thread runtime, stopped by a shutdown future.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudgov_agent::AgentConfig;
use common::{Request, TOKEN, ack, serve};

/// Completes once the server has seen `n` requests (or panics after 20 s).
async fn after_requests(log: Arc<Mutex<Vec<Request>>>, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while log.lock().expect("log lock").len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server saw fewer than {n} requests in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(addr: std::net::SocketAddr) -> AgentConfig {
    AgentConfig::new(&format!("http://{addr}"), TOKEN)
        .expect("valid config")
        .with_interval(Duration::from_secs(1))
        .expect("valid interval")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_reports_and_flushes_on_shutdown() {
    let (addr, log) = serve(vec![(200, ack(1))]);
    let shutdown = after_requests(Arc::clone(&log), 2);
    // Spawned like the daemon would: the future must be Send + 'static.
    let summary = tokio::spawn(cloudgov_agent::run(config(addr), shutdown))
        .await
        .expect("task did not panic")
        .expect("run succeeds");

    assert!(summary.collected >= 2, "{summary:?}");
    assert_eq!(summary.delivered, summary.collected, "{summary:?}");
    assert_eq!(
        (summary.rejected, summary.dropped, summary.unsent),
        (0, 0, 0)
    );
    let requests = log.lock().expect("log lock");
    let seqs: Vec<u64> = requests
        .iter()
        .flat_map(|r| r.batch().reports.into_iter().map(|rep| rep.seq))
        .collect();
    assert_eq!(seqs, (1..=summary.collected).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_drops_and_counts_batches_the_server_rejects() {
    let (addr, log) = serve(vec![(400, r#"{"error": "bad report"}"#.to_owned())]);
    let shutdown = after_requests(Arc::clone(&log), 2);
    let summary = cloudgov_agent::run(config(addr), shutdown)
        .await
        .expect("run succeeds");

    assert_eq!(summary.delivered, 0, "{summary:?}");
    assert!(summary.rejected >= 2, "{summary:?}");
    // Rejected reports are not retried: each was sent exactly once.
    let requests = log.lock().expect("log lock");
    let mut seqs: Vec<u64> = requests
        .iter()
        .flat_map(|r| r.batch().reports.into_iter().map(|rep| rep.seq))
        .collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a rejected report was resent: {seqs:?}");
    assert_eq!(summary.rejected, n as u64, "{summary:?}");
}

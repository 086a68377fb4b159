//! A database outage is answered, not waited out: with PostgreSQL unreachable, ingest answers
//! 503 with `Retry-After` within about a second, and works again once the database is back.
//!
//! The outage is real to the daemon: it reaches the real PostgreSQL (`CLOUDGOV_TEST_PG`)
//! through a TCP relay on loopback that the test cuts (every connection reset, the port
//! closed) and restores. This test always runs on PostgreSQL, whatever `CLOUDGOV_TEST_DB`
//! says: SQLite has no server to lose.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudgov::core::calendar::Calendar;
use cloudgov::core::rules::RuleSet;
use cloudgov::daemon::{Daemon, Schedule};
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::Store;
use serde_json::json;
use sqlx::Connection;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{INVENTORY, cloudgov_cmd, ok, write_file};

/// A TCP relay to PostgreSQL that can be cut and restored on the same port.
struct Relay {
    addr: SocketAddr,
    upstream: String,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: &str) -> Relay {
        let mut relay = Relay {
            addr: "127.0.0.1:0".parse().expect("addr"),
            upstream: upstream.to_owned(),
            tasks: Default::default(),
            acceptor: None,
        };
        relay.restore().await;
        relay
    }

    async fn restore(&mut self) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(self.addr).expect("bind the relay's port");
        let listener = socket.listen(64).expect("listen");
        self.addr = listener.local_addr().expect("addr");
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(task);
            }
        }));
    }

    /// The database "goes away": the port closes and every open connection is reset.
    fn cut(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_503_at_once_while_postgresql_is_down_and_recovers() {
    crate::helpers::install_crypto_provider();
    let server = std::env::var("CLOUDGOV_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let hostport = server
        .rsplit('@')
        .next()
        .expect("host:port")
        .trim_end_matches('/')
        .to_owned();
    let name = format!(
        "cloudgov_test_outage_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!("no PostgreSQL at {server} ({e}): run tests/run, which starts one")
        });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let mut relay = Relay::start(&hostport).await;
    let url = format!("postgres://postgres@{}/{name}", relay.addr);
    let dir = tempfile::tempdir().expect("dir");
    ok(cloudgov_cmd(
        &url,
        &[
            "import",
            "inventory",
            &write_file(&dir, "inv.toml", INVENTORY),
        ],
    ));
    let token = ok(cloudgov_cmd(&url, &["vm", "issue-token", "agent-01"]))
        .trim()
        .to_owned();
    let store = Store::connect(&url).await.expect("store through the relay");
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin().expect("rules")),
        calendar: Arc::new(Calendar::builtin().expect("calendar")),
        notifier: Arc::new(Notifier::without_smtp().expect("templates")),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()
            .expect("review rules")
            .prices,
    };
    let daemon = Daemon::start(
        ctx,
        "127.0.0.1:0".parse().expect("addr"),
        Schedule::default(),
    )
    .await
    .expect("daemon");
    let base = format!("http://{}", daemon.addr);
    let client = reqwest::Client::new();
    let mut seq = 0;
    let mut post = || {
        seq += 1;
        let at = (chrono::Utc::now() - chrono::TimeDelta::seconds(60 - seq)).to_rfc3339();
        client
            .post(format!("{base}/api/v1/ingest"))
            .bearer_auth(&token)
            .json(&json!({ "reports": [crate::ingest::report(seq as u64, &at, json!(10.0))] }))
            .send()
    };
    assert_eq!(post().await.expect("post").status(), 200);

    relay.cut();
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let resp = post().await.expect("the daemon answers");
        slowest = slowest.max(started.elapsed());
        assert_eq!(resp.status(), 503);
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(retry.is_some_and(|s| s > 0), "Retry-After: {retry:?}");
        let body: serde_json::Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"], "unavailable", "{body}");
    }
    eprintln!("503 answered within {slowest:?} while the database was down");
    assert!(
        slowest < Duration::from_millis(1500),
        "a request waited {slowest:?} for a database that is gone"
    );

    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    while Instant::now() < deadline {
        status = post().await.expect("post").status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "ingest works again once the database is back");
    daemon.stop().await.expect("stop");
    store.close().await;
    relay.cut();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}

//! Test harness: a fresh database per test (SQLite file, or PostgreSQL when
//! `CLOUDGOV_TEST_DB=postgres`), the daemon on a free port, and the real binaries.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use cloudgov::core::access::Role;
use cloudgov::core::calendar::Calendar;
use cloudgov::core::rules::RuleSet;
use cloudgov::daemon::{Daemon, Schedule};
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::Store;
use sqlx::Connection;

/// PostgreSQL server used when `CLOUDGOV_TEST_DB=postgres` (override with `CLOUDGOV_TEST_PG`).
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432";

pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// A new, empty database for one test.
pub async fn fresh_db() -> TestDb {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match std::env::var("CLOUDGOV_TEST_DB").as_deref() {
        Ok("postgres") => {
            let server = std::env::var("CLOUDGOV_TEST_PG").unwrap_or_else(|_| DEFAULT_PG.into());
            let name = format!(
                "cloudgov_test_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                chrono::Utc::now().timestamp_micros()
            );
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                .await
                .expect("connect to the PostgreSQL test server");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create test database");
            format!("{server}/{name}")
        }
        Ok("sqlite") | Err(_) => format!("sqlite://{}", dir.path().join("cloudgov.db").display()),
        Ok(other) => panic!("CLOUDGOV_TEST_DB={other}: use sqlite or postgres"),
    };
    TestDb { url, dir }
}

/// A new database holding the shared inventory ([`INVENTORY`]), imported by the CLI.
pub async fn fresh_db_with_inventory() -> TestDb {
    let db = fresh_db().await;
    ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", INVENTORY),
        ],
    ));
    db
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub db: TestDb,
    daemon: Option<Daemon>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs the `cloudgov` binary against this app's database.
    pub fn cloudgov(&self, args: &[&str]) -> Output {
        cloudgov_cmd(&self.db.url, args)
    }

    /// Starts the unauthenticated `/metrics` listener (`serve --metrics-listen`); its base URL.
    pub async fn metrics_listener(&mut self) -> String {
        let daemon = self.daemon.as_mut().expect("daemon running");
        let addr = daemon
            .start_metrics_listener("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("metrics listener");
        format!("http://{addr}")
    }

    /// Adds an account with a fresh password, which it returns.
    pub async fn add_user(&self, username: &str, role: Role, department: Option<&str>) -> String {
        let password = format!("pw-{username}-{}", std::process::id());
        let hash = cloudgov::http::auth::hash_password(&password).expect("hash");
        self.store
            .create_user(
                username,
                &hash,
                role,
                department,
                chrono::Utc::now().timestamp(),
            )
            .await
            .expect("create user");
        password
    }

    /// A new API token of `username`.
    pub async fn api_token(&self, username: &str) -> String {
        let token = cloudgov::http::auth::new_secret(cloudgov::http::auth::API_TOKEN_PREFIX)
            .expect("random");
        self.store
            .create_api_token(username, "test", &cloudgov::core::token::hash(&token), 0)
            .await
            .expect("create API token");
        token
    }

    /// An admin's API token (the admin `test-admin` is created on first use).
    pub async fn staff_token(&self) -> String {
        if self
            .store
            .credentials("test-admin")
            .await
            .expect("lookup")
            .is_none()
        {
            self.add_user("test-admin", Role::Admin, None).await;
        }
        self.api_token("test-admin").await
    }

    /// GET `path` with `token`, as JSON.
    pub async fn get_json(&self, token: &str, path: &str) -> serde_json::Value {
        let resp = reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.expect("JSON body")
    }

    pub async fn stop(mut self) {
        self.stop_daemon().await;
    }

    /// Stops the in-process daemon but keeps the database, e.g. so that a `cloudgov serve`
    /// child can take the leadership (on PostgreSQL the in-process daemon holds it).
    pub async fn stop_daemon(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().await.expect("daemon stops cleanly");
        }
    }
}

/// The daemon in-process on 127.0.0.1:0 with a fresh database and the built-in rules.
/// A test that blocks on a child process while the daemon serves must use a multi-thread
/// runtime (`#[tokio::test(flavor = "multi_thread")]`), or the daemon cannot answer.
pub async fn spawn_app() -> TestApp {
    install_crypto_provider();
    let db = fresh_db().await;
    let store = Store::connect(&db.url).await.expect("open test database");
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin().expect("built-in rules")),
        calendar: Arc::new(Calendar::builtin().expect("built-in calendar")),
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
    .expect("daemon starts");
    TestApp {
        base: format!("http://{}", daemon.addr),
        store,
        db,
        daemon: Some(daemon),
    }
}

/// reqwest is built without a default crypto provider: every test that makes a client calls this.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Kills the child process when dropped, so a failing test leaves no process behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn cloudgov_cmd(db_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .arg("--db")
        .arg(db_url)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run cloudgov")
}

/// Runs `cloudgov` and returns stdout, failing the test with stderr if it failed.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The `cloudgov-agent` binary of this workspace (built by `cargo test --workspace`, which
/// builds every package's binaries before any test runs).
pub fn agent_binary() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_cloudgov"));
    let path = exe.with_file_name(format!("cloudgov-agent{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "cloudgov-agent", "--bin", "cloudgov-agent"])
            .status()
            .expect("run cargo build for the agent");
        assert!(status.success(), "building cloudgov-agent failed");
    }
    path
}

/// Writes `text` to a file in the test's directory and returns its path as a string.
pub fn write_file(app_dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = app_dir.path().join(name);
    std::fs::write(&path, text).expect("write test file");
    path.display().to_string()
}

pub const INVENTORY: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "health"
name = "市卫健局"
emails = ["it@health.example.cn"]

[[department]]
id = "edu"
name = "市教体局"
emails = ["it@edu.example.cn"]

[[project]]
id = "his"
name = "医院信息系统"
department = "health"
filed_on = 2024-03-01

[[project]]
id = "enrol"
name = "招生系统"
department = "edu"

[[vm]]
id = "idle-01"
project = "his"
vcpus = 8
memory_gib = 32
disk_gib = 500
delivered_on = 2025-01-06
deployed_on = 2025-01-10

[[vm]]
id = "hot-01"
project = "his"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-01-06

[[vm]]
id = "edge-01"
project = "enrol"
vcpus = 2
memory_gib = 4
disk_gib = 50
delivered_on = 2025-01-06

[[vm]]
id = "new-01"
project = "enrol"
vcpus = 2
memory_gib = 4
disk_gib = 50
delivered_on = 2025-06-20

[[vm]]
id = "agent-01"
project = "enrol"
vcpus = 2
memory_gib = 4
disk_gib = 50
delivered_on = 2025-06-20
"#;

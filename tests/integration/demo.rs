//! `cloudgov demo`: the one command a new user runs shows the whole product, as a real fleet
//! would: usage findings of every verdict, network findings of every art. 14 kind, a stored
//! review of the previous year with every verdict, and simulated VMs whose agents report (so
//! none is a silent agent).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chrono::Datelike;
use serde_json::Value;

use crate::helpers::KillOnDrop;

/// The simulated VMs of the demo inventory: every VM but this machine.
pub const SIMULATED_VMS: &[&str] = &[
    "edu-oa-01",
    "enrol-db-01",
    "enrol-web-01",
    "enrol-web-02",
    "his-app-01",
    "his-app-02",
    "his-db-01",
    "ops-monitor-01",
    "vaccine-db-01",
    "vaccine-web-01",
    "video-ingest-01",
    "video-ingest-02",
];

/// A running `cloudgov demo` and what it printed.
pub struct RunningDemo {
    pub text: String,
    pub base: String,
    pub api_token: String,
    /// (user, password) of the printed sign-ins: admin first, then the health bureau's user.
    pub logins: Vec<(String, String)>,
    dir: tempfile::TempDir,
    _child: KillOnDrop,
}

impl RunningDemo {
    /// Starts the demo on a free port with agents reporting every `agent_interval` seconds, and
    /// waits until it has printed `Press Ctrl-C` (it is serving then).
    pub fn start(agent_interval: u64) -> RunningDemo {
        crate::helpers::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
            .args(["demo", "--listen", "127.0.0.1:0", "--agent-interval"])
            .arg(agent_interval.to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start demo");
        let stdout = child.stdout.take().expect("stdout");
        let child = KillOnDrop(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut text = String::new();
        // A debug build loads and replays nearly two years of the fleet: give it time.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(180)) {
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        let find = |f: &dyn Fn(&str) -> Option<String>| {
            text.lines()
                .find_map(|l| f(l.trim()))
                .unwrap_or_else(|| panic!("the demo did not print what was expected:\n{text}"))
        };
        let base = find(&|l| l.strip_suffix("/healthz").map(str::to_owned));
        let api_token = find(&|l| l.strip_prefix("API token: ").map(str::to_owned));
        let logins = ["admin", "health"]
            .iter()
            .map(|user| {
                let password = find(&|l| {
                    l.strip_prefix(&format!("{user} / "))
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_owned)
                });
                (user.to_string(), password)
            })
            .collect();
        RunningDemo {
            text,
            base,
            api_token,
            logins,
            dir,
            _child: child,
        }
    }

    /// The demo's data directory (its database), also a place for test files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.api_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// The year the demo reviewed: the one before today's (Shanghai).
    pub fn review_year() -> i32 {
        chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .year()
            - 1
    }
}

/// The first element of `list` whose `field` is `value`.
fn find<'a>(list: &'a Value, field: &str, value: &str) -> &'a Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|v| v[field] == value)
        .unwrap_or_else(|| panic!("no {field} = {value} in {list}"))
}

fn strings<'a>(list: &'a Value, field: &str) -> BTreeSet<&'a str> {
    list.as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v[field].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_whole_product_as_a_real_fleet_would() {
    let demo = RunningDemo::start(1);
    let text = &demo.text;
    for verdict in [" downsize ", " expand ", " ok ", " insufficient_data "] {
        assert!(
            text.contains(verdict),
            "demo output lacks {verdict:?}:\n{text}"
        );
    }
    assert!(text.contains("demo-this-host"), "{text}");
    assert!(text.contains("Ready in "), "start-up time printed:\n{text}");

    let unauthenticated = reqwest::get(format!("{}/api/v1/findings", demo.base))
        .await
        .expect("GET")
        .status();
    assert_eq!(unauthenticated, reqwest::StatusCode::UNAUTHORIZED);

    // Usage findings: every VM and resource, every verdict.
    let findings = demo.get("/api/v1/findings").await;
    assert_eq!(
        findings.as_array().expect("array").len(),
        56,
        "14 VMs x (3 resources + usage)"
    );
    let resources = demo.get("/api/v1/findings?resource=cpu").await;
    assert_eq!(resources.as_array().map(Vec::len), Some(14));
    assert_eq!(
        strings(&findings, "verdict"),
        BTreeSet::from([
            "downsize",
            "expand",
            "in_use",
            "insufficient_data",
            "ok",
            "unused"
        ])
    );
    // Systems no longer used: the demo's archive VM, with release advice.
    let unused = demo
        .get("/api/v1/findings?resource=usage&verdict=unused")
        .await;
    assert_eq!(
        strings(&unused, "vm"),
        BTreeSet::from(["edu-oa-02"]),
        "{unused}"
    );
    let notices = demo.get("/api/v1/notices").await;
    assert!(
        notices
            .as_array()
            .expect("array")
            .iter()
            .any(|n| n["kind"] == "release" && n["vm"] == "edu-oa-02"),
        "release advice for edu-oa-02"
    );

    // Network registration: every art. 14 kind, a router by both signs.
    let network = demo.get("/api/v1/network/findings").await;
    assert_eq!(
        strings(&network, "kind"),
        BTreeSet::from([
            "dhcp_address",
            "ip_conflict",
            "mac_mismatch",
            "stale_registration",
            "suspected_router",
            "unregistered_ip",
        ]),
        "{network}"
    );
    let routers: Vec<&str> = network
        .as_array()
        .expect("array")
        .iter()
        .filter(|f| f["kind"] == "suspected_router")
        .filter_map(|f| f["evidence"].as_str())
        .collect();
    assert!(
        routers
            .iter()
            .any(|e| e.contains("answers for 3 addresses"))
            && routers.iter().any(|e| e.contains("TP-Link")),
        "one MAC for many addresses and a consumer router's OUI: {routers:?}"
    );
    let dhcp = find(&network, "kind", "dhcp_address");
    assert!(
        dhcp["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("VM enrol-web-02")),
        "the DHCP address is a simulated VM's, reported by its agent: {dhcp}"
    );

    // The previous year's review is stored, with every verdict.
    let year = RunningDemo::review_year();
    let reviews = demo.get(&format!("/api/v1/reviews/{year}")).await;
    assert_eq!(
        strings(&reviews, "verdict"),
        BTreeSet::from(["cancel", "consolidate", "keep", "not_filed"]),
        "{reviews}"
    );
    for review in reviews.as_array().expect("array") {
        let facts = &review["facts"];
        let days: u64 = facts["vms"]
            .as_array()
            .expect("vms")
            .iter()
            .filter_map(|v| v["days_with_data"].as_u64())
            .sum();
        assert!(days > 0, "{} has a year of rollups", review["project"]);
    }
    let his = find(&reviews, "project", "his");
    assert!(
        his["facts"]["notices_done_on_time"].as_u64() > Some(0),
        "notices of the previous year, answered on time: {his}"
    );
    let vaccine = find(&reviews, "project", "vaccine");
    assert!(
        vaccine["facts"]["notices_done_late"].as_u64() > Some(0),
        "and late: {vaccine}"
    );

    // Every simulated VM's agent reports: none is silent, and the agents list them with the
    // capacity of their allocation.
    let alerts = demo.get("/api/v1/alerts").await;
    let silent: Vec<&Value> = alerts
        .as_array()
        .expect("array")
        .iter()
        .filter(|a| a["kind"] == "silent_agent")
        .collect();
    assert!(silent.is_empty(), "silent agents: {silent:?}");
    let agents = demo.get("/api/v1/agents").await;
    let listed = strings(&agents, "vm");
    for vm in SIMULATED_VMS.iter().chain(&["demo-this-host"]) {
        assert!(listed.contains(vm), "{vm} reports: {agents}");
    }
    let first = find(&agents, "vm", "his-db-01").clone();
    assert_eq!(first["vcpus"], 16, "its allocation: {first}");
    let memory = first["memory_bytes"].as_f64().expect("memory");
    assert!(
        memory > 0.9 * 64.0 * 1024f64.powi(3) && memory <= 64.0 * 1024f64.powi(3),
        "64 GiB as the VM sees it: {first}"
    );
    // They keep reporting, every agent interval (1 s here).
    let mut later = first.clone();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        later = find(&demo.get("/api/v1/agents").await, "vm", "his-db-01").clone();
        if later["last_seq"].as_i64() > first["last_seq"].as_i64() {
            break;
        }
    }
    assert!(
        later["last_seq"].as_i64() > first["last_seq"].as_i64(),
        "the simulated agent reports again: {first} then {later}"
    );
}

//! Prometheus as a usage source, against the real things on loopback: Debian's
//! `prometheus-node-exporter` on this host, scraped every second by Debian's `prometheus`, and
//! 9 days of node_exporter history backfilled into the same Prometheus with its own `promtool`.
//! `cloudgov sources prometheus pull` reads both; the samples agree with `cloudgov-agent --once
//! --print` on the same host, and evaluation, notices and deadlines work on them.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    KillOnDrop, agent_binary, install_crypto_provider, ok, spawn_app, write_file,
};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} not found: run tests/run, which installs Debian's prometheus and \
         prometheus-node-exporter (apt-get install prometheus prometheus-node-exporter)"
    );
}

/// The backfilled VM: 1 vCPU at 10 % busy, 20 % of 8 GiB memory, 30 % of its disk, 1000 B/s in
/// and 500 B/s out, every minute for 9 days up to 10 minutes ago. Below every downsize threshold.
fn backfill_openmetrics(now: i64) -> String {
    let (start, end, step) = (now - 9 * 86_400, now - 600, 60);
    let series = |out: &mut String, name: &str, labels: &str, value: &dyn Fn(i64) -> f64| {
        for t in (start..=end).step_by(step as usize) {
            let _ = writeln!(
                out,
                "{name}{{instance=\"backfill:9100\",job=\"node\"{labels}}} {} {t}",
                value(t - start)
            );
        }
    };
    let mut out = String::new();
    out.push_str("# TYPE node_cpu_seconds_total counter\n");
    series(
        &mut out,
        "node_cpu_seconds_total",
        ",cpu=\"0\",mode=\"idle\"",
        &|s| s as f64 * 0.9,
    );
    series(
        &mut out,
        "node_cpu_seconds_total",
        ",cpu=\"0\",mode=\"user\"",
        &|s| s as f64 * 0.1,
    );
    out.push_str("# TYPE node_memory_MemTotal_bytes gauge\n");
    series(&mut out, "node_memory_MemTotal_bytes", "", &|_| {
        8_589_934_592.0
    });
    out.push_str("# TYPE node_memory_MemAvailable_bytes gauge\n");
    series(&mut out, "node_memory_MemAvailable_bytes", "", &|_| {
        6_871_947_673.6
    });
    let fs = ",device=\"/dev/vda1\",fstype=\"ext4\",mountpoint=\"/\"";
    out.push_str("# TYPE node_filesystem_size_bytes gauge\n");
    series(&mut out, "node_filesystem_size_bytes", fs, &|_| 100e9);
    out.push_str("# TYPE node_filesystem_free_bytes gauge\n");
    series(&mut out, "node_filesystem_free_bytes", fs, &|_| 70e9);
    out.push_str("# TYPE node_filesystem_avail_bytes gauge\n");
    series(&mut out, "node_filesystem_avail_bytes", fs, &|_| 70e9);
    out.push_str("# TYPE node_network_receive_bytes_total counter\n");
    series(
        &mut out,
        "node_network_receive_bytes_total",
        ",device=\"eth0\"",
        &|s| s as f64 * 1000.0,
    );
    out.push_str("# TYPE node_network_transmit_bytes_total counter\n");
    series(
        &mut out,
        "node_network_transmit_bytes_total",
        ",device=\"eth0\"",
        &|s| s as f64 * 500.0,
    );
    out.push_str("# EOF\n");
    out
}

/// Prometheus with the backfilled blocks, scraping the node_exporter at `exporter` every second.
fn start_prometheus(dir: &Path, port: u16, exporter: &str) -> KillOnDrop {
    let data = dir.join("tsdb");
    std::fs::create_dir_all(&data).expect("tsdb dir");
    let history = dir.join("history.om");
    std::fs::write(
        &history,
        backfill_openmetrics(chrono::Utc::now().timestamp()),
    )
    .expect("write history");
    let out = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history)
        .arg(&data)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1m\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['{exporter}']\n"
        ),
    )
    .expect("write config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    KillOnDrop(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    )
}

fn start_node_exporter(port: u16) -> KillOnDrop {
    KillOnDrop(
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    )
}

/// An instant query's single value, or `None` while Prometheus has none.
async fn instant(client: &reqwest::Client, base: &str, query: &str) -> Option<f64> {
    let body: Value = client
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", query)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}

/// Waits (bounded) until `query` has a value at least `min`.
async fn wait_for(client: &reqwest::Client, base: &str, query: &str, min: f64, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if instant(client, base, query).await.is_some_and(|v| v >= min) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "Prometheus never answered {query} >= {min}; its log:\n{}",
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
    );
}

fn inventory(exporter: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    let day = |ago: i64| (today - chrono::Duration::days(ago)).to_string();
    format!(
        r#"
[[department]]
id = "health"
name = "市卫健局"
emails = ["it@health.example.cn"]

[[project]]
id = "his"
name = "医院信息系统"
department = "health"

[[vm]]
id = "live-01"
project = "his"
vcpus = 2
memory_gib = 8
disk_gib = 100
delivered_on = {delivered}
deployed_on = {deployed}
prometheus_instance = "{exporter}"

[[vm]]
id = "history-01"
project = "his"
vcpus = 1
memory_gib = 8
disk_gib = 100
delivered_on = {delivered}
deployed_on = {deployed}
prometheus_selector = '{{job="node", instance="backfill:9100"}}'

[[vm]]
id = "agent-01"
project = "his"
vcpus = 1
memory_gib = 1
disk_gib = 10
delivered_on = {delivered}
"#,
        delivered = day(30),
        deployed = day(20),
    )
}

fn exported(app: &crate::helpers::TestApp, vm: &str) -> Vec<Value> {
    serde_json::from_str(&ok(
        app.cloudgov(&["samples", "export", vm, "--format", "json"])
    ))
    .expect("export JSON")
}

fn pull(app: &crate::helpers::TestApp, url: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "sources",
        "prometheus",
        "pull",
        "--url",
        url,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(app.cloudgov(&args))).expect("pull JSON")
}

fn line<'a>(report: &'a Value, vm: &str) -> &'a Value {
    report["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .find(|v| v["vm"] == vm)
        .unwrap_or_else(|| panic!("{vm} not in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_node_exporter_usage_agrees_with_the_agent_and_drives_notices() {
    for path in [PROMETHEUS, PROMTOOL, NODE_EXPORTER] {
        require(path);
    }
    install_crypto_provider();
    let mut app = spawn_app().await;
    let dir = app.db.dir.path().to_owned();
    let exporter = format!("127.0.0.1:{}", free_port());
    let mut node_exporter = start_node_exporter(
        exporter
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port"),
    );
    let prom_port = free_port();
    let _prometheus = start_prometheus(&dir, prom_port, &exporter);
    let url = format!("http://127.0.0.1:{prom_port}");
    let client = reqwest::Client::new();
    // Eight scrapes of the live node, so rates over a 4-second window have two points.
    wait_for(
        &client,
        &url,
        "count_over_time(up{job=\"node\"}[1m])",
        8.0,
        &dir,
    )
    .await;

    let inv = write_file(&app.db.dir, "inventory.toml", &inventory(&exporter));
    ok(app.cloudgov(&["import", "inventory", &inv]));

    // A bad selector in the inventory is refused with the VM and the reason.
    let bad = write_file(
        &app.db.dir,
        "bad.toml",
        &inventory(&exporter).replace(&exporter, "no-port"),
    );
    let out = app.cloudgov(&["import", "inventory", &bad]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("live-01") && err.contains("HOST:PORT"),
        "{err}"
    );

    // The live node: 2-second steps over the last 20 seconds.
    let report = pull(
        &app,
        &url,
        &[
            "--vm",
            "live-01",
            "--step-secs",
            "2",
            "--rate-window-secs",
            "4",
            "--lookback-secs",
            "20",
        ],
    );
    let live = line(&report, "live-01");
    assert!(live["error"].is_null(), "{live}");
    assert_eq!(live["selector"], format!("{{instance=\"{exporter}\"}}"));
    let stored = live["stored"].as_u64().expect("stored");
    assert!(stored >= 3, "{live}");
    let samples = exported(&app, "live-01");
    assert_eq!(samples.len() as u64, stored);

    // The same host through the agent.
    let agent = Command::new(agent_binary())
        .args(["--once", "--print"])
        .output()
        .expect("run the agent");
    assert!(
        agent.status.success(),
        "{}",
        String::from_utf8_lossy(&agent.stderr)
    );
    let agent: Value = serde_json::from_slice(&agent.stdout).expect("agent JSON");
    let report = agent
        .get("reports")
        .and_then(|r| r.get(0))
        .unwrap_or(&agent);
    let newest = samples.last().expect("a sample");
    let pct = |v: &Value, key: &str| v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"));
    let agent_mem = pct(report, "mem_pct");
    let total: f64 = report["filesystems"]
        .as_array()
        .expect("filesystems")
        .iter()
        .map(|f| pct(f, "total_bytes"))
        .sum();
    let used: f64 = report["filesystems"]
        .as_array()
        .expect("filesystems")
        .iter()
        .map(|f| pct(f, "used_bytes"))
        .sum();
    let agent_disk = used * 100.0 / total;
    assert!(
        (pct(newest, "mem_pct") - agent_mem).abs() <= 5.0,
        "memory: {newest} vs agent {agent_mem}"
    );
    assert!(
        (pct(newest, "disk_pct") - agent_disk).abs() <= 2.0,
        "disk: {newest} vs agent {agent_disk}"
    );
    assert!(
        samples.iter().all(|s| s["net_rx_bps"].is_u64()),
        "traffic on every sample"
    );
    // The allocation, as the agent would report it: vCPUs and memory exactly.
    let agents: Vec<Value> =
        serde_json::from_str(&ok(app.cloudgov(&["agents", "--format", "json"]))).expect("agents");
    let row = agents
        .iter()
        .find(|a| a["vm"] == "live-01")
        .expect("agent row for live-01");
    assert_eq!(row["vcpus"], report["capacity"]["vcpus"], "{row}");
    let mem_total = report["capacity"]["memory_bytes"].as_f64().expect("memory");
    assert!(
        (row["memory_bytes"].as_f64().expect("memory") - mem_total).abs() / mem_total < 0.01,
        "{row}"
    );

    // Pulled again: only what is new, nothing twice.
    let again = pull(
        &app,
        &url,
        &[
            "--vm",
            "live-01",
            "--step-secs",
            "2",
            "--rate-window-secs",
            "4",
        ],
    );
    let again = line(&again, "live-01");
    let samples = exported(&app, "live-01");
    let mut ts: Vec<&str> = samples.iter().filter_map(|s| s["ts"].as_str()).collect();
    ts.dedup();
    assert_eq!(ts.len(), samples.len(), "no sample twice");
    assert_eq!(
        samples.len() as u64,
        stored + again["stored"].as_u64().expect("stored")
    );

    // The daemon pulls on its own (leader only, at start and every interval), from where the
    // last pull stopped: a few seconds later, so there is something new.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Only the leader pulls: the in-process daemon steps down so `serve` leads.
    app.stop_daemon().await;
    let before = exported(&app, "live-01").len();
    let serve = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cloudgov"))
            .args(["--db", &app.db.url, "serve", "--listen", "127.0.0.1:0"])
            .args(["--prometheus-url", &url, "--prometheus-step-secs", "1"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("serve.log")).expect("serve log"))
            .spawn()
            .expect("start cloudgov serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while exported(&app, "live-01").len() <= before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(serve);
    assert!(
        exported(&app, "live-01").len() > before,
        "serve --prometheus-url pulled nothing: {}",
        std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
    );

    // CPU: every core kept busy for 12 seconds, so whatever else this machine runs, both read
    // the machine as (nearly) saturated over the same seconds: the agent in the ninth second,
    // Prometheus's points from the fifth on.
    let burn_start = chrono::Utc::now();
    let burners: Vec<_> = (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
        .map(|_| {
            std::thread::spawn(|| {
                let end = Instant::now() + Duration::from_secs(12);
                let mut x = 0u64;
                while Instant::now() < end {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let busy = Command::new(agent_binary())
        .args(["--once", "--print"])
        .output()
        .expect("run the agent");
    let busy: Value = serde_json::from_slice(&busy.stdout).expect("agent JSON");
    let agent_cpu = pct(
        busy.get("reports").and_then(|r| r.get(0)).unwrap_or(&busy),
        "cpu_pct",
    );
    let from = (burn_start + chrono::Duration::seconds(5)).to_rfc3339();
    let to = (burn_start + chrono::Duration::seconds(10)).to_rfc3339();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A dry run reads and stores nothing.
    let before = exported(&app, "live-01").len();
    let window = [
        "--vm",
        "live-01",
        "--step-secs",
        "1",
        "--rate-window-secs",
        "3",
        "--start",
        &from,
        "--end",
        &to,
    ];
    let dry = pull(&app, &url, &[&window[..], &["--dry-run"]].concat());
    assert!(
        line(&dry, "live-01")["samples"].as_u64().expect("samples") >= 3,
        "{dry}"
    );
    assert_eq!(exported(&app, "live-01").len(), before);
    for b in burners {
        b.join().expect("burner");
    }
    let burn_json = pull(&app, &url, &window);
    let burned: Vec<f64> = exported(&app, "live-01")
        .iter()
        .filter(|s| {
            let ts = chrono::DateTime::parse_from_rfc3339(s["ts"].as_str().unwrap_or(""))
                .map(|t| t.timestamp());
            ts.is_ok_and(|t| t >= burn_start.timestamp() + 5 && t <= burn_start.timestamp() + 10)
        })
        .map(|s| pct(s, "cpu_pct"))
        .collect();
    assert!(burned.len() >= 3, "{burn_json}");
    for cpu in &burned {
        assert!(
            (cpu - agent_cpu).abs() <= 15.0,
            "cpu under load: Prometheus {burned:?} vs agent {agent_cpu}"
        );
    }

    // node_exporter stops: the steps after it are gaps, not zeros.
    let _ = node_exporter.0.kill();
    let _ = node_exporter.0.wait();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = pull(
        &app,
        &url,
        &[
            "--vm",
            "live-01",
            "--step-secs",
            "2",
            "--rate-window-secs",
            "4",
        ],
    );
    let after = line(&after, "live-01");
    assert!(after["gaps"].as_u64().expect("gaps") >= 2, "{after}");
    let samples = exported(&app, "live-01");
    assert!(
        samples.iter().all(|s| pct(s, "mem_pct") > 0.0),
        "no zero memory stored for the gap"
    );

    // Nine days of history: a VM measured only by Prometheus is evaluated, noticed and given its
    // deadline like an agent's.
    let start =
        (chrono::Utc::now() - chrono::Duration::days(9) - chrono::Duration::hours(1)).to_rfc3339();
    let history = pull(&app, &url, &["--vm", "history-01", "--start", &start]);
    let history = line(&history, "history-01");
    assert!(history["error"].is_null(), "{history}");
    assert!(
        history["stored"].as_u64().expect("stored") > 12_000,
        "{history}"
    );
    let samples = exported(&app, "history-01");
    let mid = &samples[samples.len() / 2];
    assert_eq!(
        (
            pct(mid, "cpu_pct"),
            pct(mid, "mem_pct"),
            pct(mid, "disk_pct")
        ),
        (10.0, 20.0, 30.0),
        "{mid}"
    );
    assert_eq!(
        (mid["net_rx_bps"].as_u64(), mid["net_tx_bps"].as_u64()),
        (Some(1000), Some(500)),
        "{mid}"
    );

    let findings: Vec<Value> =
        serde_json::from_str(&ok(app.cloudgov(&["evaluate", "--format", "json"])))
            .expect("findings");
    for resource in ["cpu", "memory", "disk"] {
        let f = findings
            .iter()
            .find(|f| f["vm"] == "history-01" && f["resource"] == resource)
            .unwrap_or_else(|| panic!("no {resource} finding: {findings:?}"));
        assert_eq!(f["verdict"], "downsize", "{f}");
    }
    let notices: Vec<Value> =
        serde_json::from_str(&ok(app.cloudgov(&["notices", "list", "--format", "json"])))
            .expect("notices");
    assert!(
        notices
            .iter()
            .any(|n| n["vm"] == "history-01" && n["kind"] == "downsize"),
        "{notices:?}"
    );
    let deadlines: Vec<Value> =
        serde_json::from_str(&ok(app.cloudgov(&["deadlines", "--format", "json"])))
            .expect("deadlines");
    assert!(
        deadlines
            .iter()
            .any(|d| d["vm"] == "history-01" && d["kind"] == "adjustment"),
        "{deadlines:?}"
    );
    // The agent-only VM was never asked of Prometheus.
    let all = pull(&app, &url, &["--step-secs", "60"]);
    assert!(
        all["vms"]
            .as_array()
            .expect("vms")
            .iter()
            .all(|v| v["vm"] != "agent-01")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_prometheus_that_refuses_or_is_absent_fails_the_pull_naming_it() {
    install_crypto_provider();
    let app = spawn_app().await;
    let inv = write_file(&app.db.dir, "inventory.toml", &inventory("127.0.0.1:9"));
    ok(app.cloudgov(&["import", "inventory", &inv]));
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = app.cloudgov(&["sources", "prometheus", "pull", "--url", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stdout.contains(&url) && stderr.contains("2 of 2 VMs could not be pulled"),
        "{stdout}\n{stderr}"
    );
    assert!(exported(&app, "live-01").is_empty());
    let out = app.cloudgov(&["sources", "prometheus", "pull", "--url", "ftp://x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with http://"));
    let out = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args([
            "--db",
            &app.db.url,
            "sources",
            "prometheus",
            "pull",
            "--url",
            &url,
        ])
        .env("CLOUDGOV_PROMETHEUS_USERNAME", "u")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("without CLOUDGOV_PROMETHEUS_PASSWORD"));
    app.stop().await;
}

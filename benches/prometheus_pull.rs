//! Prometheus pull benchmark (a benchmark, not a timed test: it prints figures and fails only on
//! errors): `cloudgov::jobs::prometheus::pull` over a fleet of node_exporter targets held by a
//! real Debian `prometheus` on 127.0.0.1.
//!
//! 1. History: N targets (`instance="vm-NNNNN:9100"`, default 1,000) x an hour at 60 s of the
//!    series a pull reads (2 CPU modes, MemTotal, MemAvailable, one filesystem's size, free and
//!    avail, receive and transmit counters), written as OpenMetrics and turned into TSDB blocks
//!    by `promtool tsdb create-blocks-from openmetrics` (timed apart).
//! 2. Prometheus serves those blocks (no scraping). A fresh SQLite store holds N VMs, each
//!    naming its instance.
//! 3. Reference: the same pull without storing (`persist = false`): the queries and the parsing.
//!    Then the pull that stores (`persist = true`). Reported: seconds, VMs/s, samples/s, queries,
//!    and the stored pull against the reference.
//!
//! Rerun: `cargo bench --bench prometheus_pull`; `CLOUDGOV_BENCH_VMS=5000` for another fleet size,
//! `CLOUDGOV_BENCH_MINUTES=5` (default 60) for the range a scheduled pull reads.
//! Needs Debian's prometheus (`tests/run` installs it).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use cloudgov::core::inventory::Inventory;
use cloudgov::jobs::prometheus::{PromAuth, PrometheusSource, PullOptions, pull};
use cloudgov::store::Store;

const STEP: i64 = 60;

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let vms: usize = std::env::var("CLOUDGOV_BENCH_VMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    for tool in ["/usr/bin/prometheus", "/usr/bin/promtool"] {
        ensure!(
            Path::new(tool).exists(),
            "{tool} missing: apt-get install prometheus (tests/run installs it)"
        );
    }
    let dir = tempfile::tempdir()?;
    let now = Utc::now().timestamp() / STEP * STEP;
    let minutes: i64 = std::env::var("CLOUDGOV_BENCH_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let (start, end) = (now - 600 - minutes * 60, now - 600);

    // 1. History.
    let history = dir.path().join("history.om");
    let started = Instant::now();
    std::fs::write(&history, openmetrics(vms, start, end))?;
    let tsdb = dir.path().join("tsdb");
    let out = Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history)
        .arg(&tsdb)
        .output()?;
    ensure!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "cloudgov benchmark: Prometheus pull\n  {vms} targets x {} steps of 60 s, blocks made in {:.1} s",
        (end - start) / STEP + 1,
        started.elapsed().as_secs_f64()
    );

    // 2. Prometheus and the store.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
    )?;
    let mut prometheus = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=30d")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start prometheus")?;
    let result =
        tokio::runtime::Runtime::new()?.block_on(measure(dir.path(), port, vms, start, end));
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    result
}

async fn measure(dir: &Path, port: u16, vms: usize, start: i64, end: i64) -> Result<()> {
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{url}/-/ready"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        ensure!(Instant::now() < deadline, "prometheus did not get ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let store = Store::connect(&format!("sqlite://{}", dir.join("cloudgov.db").display())).await?;
    let inventory = Inventory::parse("bench", &inventory(vms))?;
    store.apply_inventory(&inventory).await?;
    let source = PrometheusSource::new(&url, PromAuth::None)?;
    // Rates need two points in their window: the pull starts two steps into the history.
    let start = start + 2 * STEP;
    let options = PullOptions {
        start: chrono::DateTime::from_timestamp(start, 0),
        end: chrono::DateTime::from_timestamp(end, 0),
        ..PullOptions::default()
    };
    let queries = vms.div_ceil(50);
    let mut seconds = Vec::new();
    for persist in [false, true] {
        let started = Instant::now();
        let report = pull(&store, &source, &options, Utc::now(), persist).await?;
        let took = started.elapsed().as_secs_f64();
        ensure!(
            report.failed() == 0,
            "failed pulls: {:?}",
            report.vms.iter().find(|v| v.error.is_some())
        );
        let samples: usize = report.vms.iter().map(|v| v.samples).sum();
        let stored: u64 = report.vms.iter().map(|v| v.stored).sum();
        ensure!(
            samples == vms * ((end - start) / STEP + 1) as usize,
            "{samples} samples read"
        );
        println!(
            "  {}: {took:.2} s, {:.0} VMs/s, {:.0} samples/s, {queries} queries; stored {stored}",
            if persist {
                "pull, stored"
            } else {
                "pull, not stored (reference)"
            },
            vms as f64 / took,
            samples as f64 / took,
        );
        seconds.push(took);
    }
    println!(
        "  storing costs {:.2}x the reading\n\nRerun: cargo bench --bench prometheus_pull",
        seconds[1] / seconds[0]
    );
    Ok(())
}

fn inventory(vms: usize) -> String {
    let mut text = String::from(
        "[[department]]\nid = \"d\"\nname = \"D\"\n[[project]]\nid = \"p\"\nname = \"P\"\ndepartment = \"d\"\n",
    );
    for i in 0..vms {
        let _ = write!(
            text,
            "[[vm]]\nid = \"vm-{i:05}\"\nproject = \"p\"\nvcpus = 2\nmemory_gib = 8\ndisk_gib = 100\n\
             delivered_on = 2026-01-05\nprometheus_instance = \"vm-{i:05}:9100\"\n"
        );
    }
    text
}

/// The series a pull reads, per target, as OpenMetrics (one family after the other).
fn openmetrics(vms: usize, start: i64, end: i64) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, labels: &str, value: &dyn Fn(usize, i64) -> f64| {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for i in 0..vms {
            for t in (start..=end).step_by(STEP as usize) {
                let _ = writeln!(
                    out,
                    "{name}{{instance=\"vm-{i:05}:9100\",job=\"node\"{labels}}} {} {t}",
                    value(i, t - start)
                );
            }
        }
    };
    let busy = |i: usize| 0.05 + (i % 10) as f64 * 0.05;
    family(
        "node_cpu_seconds_total",
        "counter",
        ",cpu=\"0\",mode=\"idle\"",
        &|i, s| s as f64 * (1.0 - busy(i)),
    );
    family(
        "node_cpu_seconds_total",
        "counter",
        ",cpu=\"0\",mode=\"user\"",
        &|i, s| s as f64 * busy(i),
    );
    family("node_memory_MemTotal_bytes", "gauge", "", &|_, _| 8e9);
    family("node_memory_MemAvailable_bytes", "gauge", "", &|i, _| {
        8e9 * (0.9 - (i % 7) as f64 * 0.1)
    });
    let fs = ",device=\"/dev/vda1\",fstype=\"ext4\",mountpoint=\"/\"";
    family("node_filesystem_size_bytes", "gauge", fs, &|_, _| 100e9);
    family("node_filesystem_free_bytes", "gauge", fs, &|i, _| {
        100e9 * (0.8 - (i % 5) as f64 * 0.1)
    });
    family("node_filesystem_avail_bytes", "gauge", fs, &|i, _| {
        95e9 * (0.8 - (i % 5) as f64 * 0.1)
    });
    family(
        "node_network_receive_bytes_total",
        "counter",
        ",device=\"eth0\"",
        &|i, s| (s * (i as i64 + 1) * 100) as f64,
    );
    family(
        "node_network_transmit_bytes_total",
        "counter",
        ",device=\"eth0\"",
        &|i, s| (s * (i as i64 + 1) * 10) as f64,
    );
    out.push_str("# EOF\n");
    out
}

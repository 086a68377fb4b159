//! End-to-end tests of the `cloudgov-agent` binary: one-shot printing, config errors, and sending
//! to a minimal HTTP server on 127.0.0.1 that records what it receives.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cloudgov_agent::wire::Report;
use common::{TOKEN, ack, serve, temp_file};

/// The agent binary with an environment that cannot leak in from the machine running the tests.
fn agent() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudgov-agent"));
    for (key, _) in std::env::vars() {
        let k = key.to_ascii_lowercase();
        if key.starts_with("CLOUDGOV_AGENT_") || k.ends_with("_proxy") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("RUST_LOG", "info");
    // Never the machine's /var/lib/cloudgov-agent/spool: a fresh spool for every run.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let spool = std::env::temp_dir().join(format!(
        "cloudgov-agent-{}-cli-spool-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&spool);
    cmd.env("CLOUDGOV_AGENT_SPOOL_DIR", spool);
    cmd
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("agent did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn once_print_outputs_a_plausible_report() {
    let out = agent()
        .args(["--once", "--print"])
        .output()
        .expect("run agent");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let report: Report = serde_json::from_slice(&out.stdout).expect("stdout is a wire::Report");
    assert_eq!(report.seq, 1);
    assert!(
        (0.0..=100.0).contains(&report.cpu_pct),
        "cpu_pct {}",
        report.cpu_pct
    );
    assert!(
        report.mem_pct > 0.0 && report.mem_pct <= 100.0,
        "mem_pct {}",
        report.mem_pct
    );
    assert!(report.capacity.vcpus >= 1);
    assert!(report.capacity.memory_bytes > 0);
    assert!(!report.host.hostname.is_empty());
    assert_eq!(report.host.agent_version, env!("CARGO_PKG_VERSION"));
    assert!(report.interfaces.iter().all(|i| i.name != "lo"));
    assert!(
        report
            .filesystems
            .iter()
            .all(|f| !["tmpfs", "proc", "sysfs", "devtmpfs"].contains(&f.fs_type.as_str())),
        "{:?}",
        report.filesystems
    );
    assert_root_usage_matches_df(&report);
}

/// The agent's used/total for "/" is df's "Use%" (reserved blocks left out), within 2 points:
/// df rounds up, and the disk may change between the two readings.
fn assert_root_usage_matches_df(report: &Report) {
    let root = report
        .filesystems
        .iter()
        .find(|f| f.mount_point == "/")
        .unwrap_or_else(|| panic!("no \"/\" in {:?}", report.filesystems));
    assert!(
        root.total_bytes > 0 && root.used_bytes <= root.total_bytes,
        "{root:?}"
    );
    let agent_pct = root.used_bytes as f64 * 100.0 / root.total_bytes as f64;

    let out = match Command::new("df").args(["--output=pcent", "/"]).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("note: `df` not found; not comparing \"/\" usage ({agent_pct:.1} %) with df");
            return;
        }
        Err(e) => panic!("cannot run df: {e}"),
    };
    if !out.status.success() {
        // e.g. busybox df, which has no --output
        println!(
            "note: `df --output=pcent /` failed ({}): {}; not comparing",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let df_pct = parse_df_pcent(&text).unwrap_or_else(|| panic!("cannot parse df output {text:?}"));
    assert!(
        (agent_pct - df_pct).abs() <= 2.0,
        "agent reports {agent_pct:.2} % used for \"/\", df {df_pct} % ({root:?})"
    );
}

/// Parses `df --output=pcent`: a "Use%" header, then e.g. " 20%".
fn parse_df_pcent(text: &str) -> Option<f64> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines.next()?; // header
    lines.next()?.strip_suffix('%')?.trim().parse().ok()
}

#[test]
fn df_pcent_parsing() {
    assert_eq!(parse_df_pcent("Use%\n 20%\n"), Some(20.0));
    assert_eq!(parse_df_pcent("Use%\n100%\n"), Some(100.0));
    assert_eq!(parse_df_pcent("Use%\n  -\n"), None);
    assert_eq!(parse_df_pcent(""), None);
}

#[test]
fn bad_config_key_exits_2_and_names_the_key() {
    let path = temp_file(
        "badkey",
        "agent.toml",
        "server = \"http://127.0.0.1:1\"\ntoken = \"t\"\nintervall_secs = 5\n",
    );
    for args in [&["--once"][..], &["--once", "--print"][..], &[][..]] {
        let out = agent()
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .expect("run agent");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("intervall_secs"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn invalid_values_exit_2_with_a_clear_message() {
    let path = temp_file("badvalues", "agent.toml", "token = \"t\"\n");
    for (args, needle) in [
        (&["--once"][..], "`server` is not set"),
        (
            &["--once", "--server", "ftp://x"][..],
            "scheme must be http or https",
        ),
        (
            &[
                "--once",
                "--server",
                "http://127.0.0.1:1",
                "--interval",
                "0",
            ][..],
            "interval_secs",
        ),
    ] {
        let out = agent()
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .expect("run agent");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("\"t\""), "token leaked: {err}");
    }
}

#[test]
fn once_sends_one_report_with_the_bearer_token() {
    let (addr, log) = serve(vec![(200, ack(1))]);
    let token_file = temp_file("once", "token", &format!("{TOKEN}\n"));
    let config = temp_file(
        "once",
        "agent.toml",
        &format!("server = \"http://{addr}\"\ntimeout_secs = 5\n"),
    );
    let out = agent()
        .arg("--config")
        .arg(&config)
        .arg("--token-file")
        .arg(&token_file)
        .arg("--once")
        .output()
        .expect("run agent");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains(TOKEN),
        "token leaked into the logs"
    );

    let requests = log.lock().expect("log lock");
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, cloudgov_agent::wire::INGEST_PATH);
    assert_eq!(
        req.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        req.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let batch = req.batch();
    assert_eq!(batch.reports.len(), 1);
    assert_eq!(batch.reports[0].seq, 1);
    assert!(batch.reports[0].capacity.vcpus >= 1);
}

#[test]
fn once_fails_with_the_servers_error_message_on_4xx() {
    let (addr, log) = serve(vec![(
        422,
        r#"{"error": "report from the future", "field": "collected_at"}"#.to_owned(),
    )]);
    let out = agent()
        .env("CLOUDGOV_AGENT_SERVER", format!("http://{addr}"))
        .env("CLOUDGOV_AGENT_TOKEN", TOKEN)
        .arg("--config")
        .arg(temp_file("reject", "agent.toml", ""))
        .arg("--once")
        .output()
        .expect("run agent");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("422"), "{err}");
    assert!(err.contains("report from the future"), "{err}");
    assert_eq!(log.lock().expect("log lock").len(), 1);
}

#[test]
fn once_fails_when_the_server_is_unreachable() {
    // Bind and drop a listener to get a port on which nothing listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let out = agent()
        .env("CLOUDGOV_AGENT_SERVER", format!("http://127.0.0.1:{port}"))
        .env("CLOUDGOV_AGENT_TOKEN", TOKEN)
        .arg("--config")
        .arg(temp_file("unreachable", "agent.toml", ""))
        .arg("--once")
        .output()
        .expect("run agent");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sending the report"), "{err}");
}

#[test]
fn pipeline_retries_after_503_delivers_and_stops_on_sigterm() {
    let (addr, log) = serve(vec![
        (503, r#"{"error": "database is starting"}"#.to_owned()),
        (200, ack(1)),
    ]);
    let config = temp_file("pipeline", "agent.toml", "interval_secs = 1\n");
    let mut child = agent()
        .env("CLOUDGOV_AGENT_SERVER", format!("http://{addr}/"))
        .env("CLOUDGOV_AGENT_TOKEN", TOKEN)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent");

    // Wait until the failed attempt and at least one successful one arrived.
    let start = Instant::now();
    while log.lock().expect("log lock").len() < 2 {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("server saw fewer than 2 requests in 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err).expect("read stderr");
    }
    assert!(status.success(), "exit {status}: {err}");
    assert!(err.contains("database is starting"), "{err}");
    assert!(err.contains("agent stopped"), "{err}");

    let requests = log.lock().expect("log lock");
    for r in requests.iter() {
        assert_eq!(r.path, "/api/v1/ingest");
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    // The report refused with 503 was kept and is the first one of the retry.
    let first = requests[0].batch();
    let second = requests[1].batch();
    assert_eq!(first.reports.first().map(|r| r.seq), Some(1));
    assert_eq!(second.reports.first().map(|r| r.seq), Some(1));
    // Across all deliveries, sequence numbers only increase.
    let delivered: Vec<u64> = requests[1..]
        .iter()
        .flat_map(|r| r.batch().reports.into_iter().map(|rep| rep.seq))
        .collect();
    assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{delivered:?}");
}

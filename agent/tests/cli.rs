//! End-to-end tests of the `cloudgov-agent` binary: one-shot printing, config errors, sending
//! to a minimal HTTP server on 127.0.0.1 that records what it receives, and (under strace) that
//! collecting starts no process.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cloudgov_agent::wire::Report;
use common::{TOKEN, ack, serve, temp_file};

/// The agent binary with an environment that cannot leak in from the machine running the tests.
fn agent() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudgov-agent"));
    clean_env(&mut cmd);
    cmd
}

/// [`agent`] under `strace -f`, recording the process-management system calls (`fork`,
/// `vfork`, `clone`, `clone3`, `execve`, `wait4`, `exit`) of it and all its threads to `log`.
fn traced_agent(log: &Path) -> Command {
    let mut cmd = Command::new(STRACE);
    cmd.args(["-f", "-qq", "-e", "trace=process", "-o"])
        .arg(log)
        .arg(env!("CARGO_BIN_EXE_cloudgov-agent"));
    clean_env(&mut cmd);
    cmd
}

fn clean_env(cmd: &mut Command) {
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
    // Traffic rates on the one report of --once, measured over the start-up baseline.
    for bps in [report.net_rx_bps, report.net_tx_bps] {
        let bps = bps.expect("net_rx_bps and net_tx_bps are printed");
        assert!(bps.is_finite() && bps >= 0.0, "{bps}");
    }
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

/// Where Debian installs strace; the no-fork tests need it and fail (never skip) without it.
const STRACE: &str = "/usr/bin/strace";

fn require_strace() {
    assert!(
        Path::new(STRACE).is_file(),
        "{STRACE} is missing: the no-fork tests trace the agent with it; install it with `apt-get install strace`"
    );
}

/// What an `strace -f -e trace=process` log says the traced program started.
#[derive(Debug, Default, PartialEq, Eq)]
struct Started {
    /// `execve` calls (the first is the agent itself).
    execs: Vec<String>,
    /// `clone`/`clone3` with `CLONE_THREAD`: threads of the same process.
    threads: usize,
    /// `fork`, `vfork`, and `clone`/`clone3` without `CLONE_THREAD`: new processes.
    processes: Vec<String>,
}

fn started(log: &str) -> Started {
    let mut s = Started::default();
    for line in log.lines() {
        // "PID call(args) = result"; a call interrupted by another thread's is printed as
        // "PID call(args <unfinished ...>" and then "PID <... call resumed>) = result", so the
        // arguments (the clone flags) are on the first of the two lines.
        let Some((_pid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        if call.starts_with("execve(") {
            s.execs.push(call.to_owned());
        } else if call.starts_with("clone(") || call.starts_with("clone3(") {
            if call.contains("CLONE_THREAD") {
                s.threads += 1;
            } else {
                s.processes.push(call.to_owned());
            }
        } else if call.starts_with("fork(") || call.starts_with("vfork(") {
            s.processes.push(call.to_owned());
        }
    }
    s
}

/// Asserts that the traced agent was one exec and no other process.
fn assert_forked_nothing(log: &Path) -> Started {
    let text = std::fs::read_to_string(log).expect("read strace log");
    let s = started(&text);
    assert_eq!(s.execs.len(), 1, "only the agent's own exec: {:?}", s.execs);
    assert!(
        s.execs[0].contains("cloudgov-agent"),
        "the exec is the agent's: {:?}",
        s.execs
    );
    assert!(
        s.processes.is_empty(),
        "processes started: {:?}",
        s.processes
    );
    s
}

#[test]
fn strace_log_parsing_tells_threads_from_processes() {
    // An agent of the previous version, which ran `ip` on every collection (shortened).
    let log = r#"28203 execve("./cloudgov-agent", ["./cloudgov-agent", "--once", "--print"], 0x7ffe42f866f0 /* 35 vars */) = 0
28203 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f7e9845f000, stack_size=0x9000}, 88 <unfinished ...>
28204 execve("/usr/sbin/ip", ["/usr/sbin/ip", "-j", "addr", "show"], 0x563634a2ae00 /* 36 vars */ <unfinished ...>
28203 <... clone3 resumed>)             = 28204
28204 <... execve resumed>)             = 0
28203 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f7e98467990, parent_tid=0x7f7e98467990, exit_signal=0, stack=0x7f7e98267000, stack_size=0x100000, tls=0x7f7e984676c0} => {parent_tid=[28205]}, 88) = 28205
28203 wait4(28204, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], WNOHANG, NULL) = 28204
28204 exit_group(0)                     = ?
28205 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=28204, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
28207 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f1) = 28208
28209 vfork()                           = 28210
28203 exit_group(0)                     = ?
"#;
    let s = started(log);
    assert_eq!(s.execs.len(), 2);
    assert!(s.execs[1].contains("/usr/sbin/ip"));
    assert_eq!(s.threads, 1);
    assert_eq!(s.processes.len(), 3, "{:?}", s.processes);
    assert!(s.processes[0].contains("CLONE_VFORK"));
}

#[test]
fn once_print_forks_nothing() {
    require_strace();
    let log = std::env::temp_dir().join(format!(
        "cloudgov-agent-{}-strace-once.log",
        std::process::id()
    ));
    let out = traced_agent(&log)
        .args(["--once", "--print"])
        .output()
        .expect("run strace");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let report: Report = serde_json::from_slice(&out.stdout).expect("stdout is a wire::Report");
    // The collection really read the network (the parts that used to need `ip`).
    assert!(report.net_rx_bps.is_some() && report.net_tx_bps.is_some());
    let s = assert_forked_nothing(&log);
    assert_eq!(s.threads, 0, "--print collects on the main thread");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn pipeline_forks_nothing_over_several_collections() {
    require_strace();
    let (addr, log) = serve(vec![(200, ack(1))]);
    let trace = std::env::temp_dir().join(format!(
        "cloudgov-agent-{}-strace-pipeline.log",
        std::process::id()
    ));
    let mut strace = traced_agent(&trace)
        .env("CLOUDGOV_AGENT_SERVER", format!("http://{addr}/"))
        .env("CLOUDGOV_AGENT_TOKEN", TOKEN)
        .env("CLOUDGOV_AGENT_INTERVAL_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strace");
    let start = Instant::now();
    while log.lock().expect("log lock").len() < 3 {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = strace.kill();
            panic!("fewer than 3 reports in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // strace detaches on SIGTERM and leaves the agent running, so the agent is stopped itself.
    let children = format!("/proc/{0}/task/{0}/children", strace.id());
    let agent_pid = std::fs::read_to_string(&children).expect("strace's children");
    let agent_pid = agent_pid.split_whitespace().next().expect("the agent runs");
    let killed = Command::new("kill")
        .args(["-TERM", agent_pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = wait_with_timeout(&mut strace, Duration::from_secs(15));
    assert!(status.success(), "agent under strace: {status}");
    let reports: usize = log
        .lock()
        .expect("log lock")
        .iter()
        .map(|r| r.batch().reports.len())
        .sum();
    assert!(reports >= 3, "{reports} reports");
    let s = assert_forked_nothing(&trace);
    // Collections run on tokio's blocking pool: a thread, not a process.
    assert!(s.threads >= 1, "{s:?}");
    let _ = std::fs::remove_file(&trace);
}

#[test]
fn rust_log_sets_levels_per_target() {
    let token = temp_file("rustlog", "token", TOKEN);
    let run = |rust_log: &str| {
        let out = agent()
            .env("RUST_LOG", rust_log)
            .args(["--once", "--server", "http://127.0.0.1:1", "--token-file"])
            .arg(&token)
            .output()
            .expect("run agent");
        assert_eq!(out.status.code(), Some(1), "unreachable server");
        stderr_of(&out)
    };
    let err = run("warn,cloudgov_agent=debug");
    assert!(err.contains("DEBUG cloudgov_agent"), "{err}");
    assert!(!err.contains("hyper"), "other targets stay at warn: {err}");
    let err = run("debug");
    assert!(err.contains("DEBUG hyper"), "{err}");
    // The default, and what an unreadable RUST_LOG falls back to: info.
    for rust_log in ["info", "cloudgov_agent=[bad"] {
        let err = run(rust_log);
        assert!(!err.contains("DEBUG"), "{rust_log}: {err}");
    }
}

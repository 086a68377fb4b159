//! Switch ARP tables end to end: a real net-snmp `snmpd` on a free loopback UDP port, serving
//! this machine's own ARP table, polled by `cloudgov network poll-snmp` over SNMPv2c and SNMPv3
//! authPriv (SHA + AES) into sightings that `network check` reports; and the text of Huawei/H3C
//! `display arp` and Cisco `show ip arp` through `import arp --format huawei|cisco`.
//!
//! Every packet goes to 127.0.0.1; every wait has a deadline.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{KillOnDrop, TestApp, ok, spawn_app, write_file};

const COMMUNITY: &str = "cg-test-community";
/// A community whose view has only RFC 1213's `ipNetToMediaTable`, as an older agent serves.
const LEGACY_COMMUNITY: &str = "cg-legacy-community";
const V3_USER: &str = "cloudgov";
const AUTH_PASSWORD: &str = "auth-pass-2026";
const PRIV_PASSWORD: &str = "priv-pass-2026";

fn snmpd_binary() -> PathBuf {
    let path = std::env::var_os("SNMPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/snmpd"));
    assert!(
        path.exists(),
        "{} not found: run tests/run, which installs Debian's snmpd (apt-get install snmpd)",
        path.display()
    );
    path
}

/// An `snmpd` of its own: its config only (`-C -c`), its persistent directory (where
/// `createUser` keeps the v3 user) in a temporary directory, no SMUX listener (`-I -smux`: it
/// would take TCP port 199 and collide with the other tests' agents).
struct Snmpd {
    port: u16,
    _process: KillOnDrop,
    _dir: tempfile::TempDir,
}

impl Snmpd {
    fn start() -> Snmpd {
        let binary = snmpd_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let persistent = dir.path().join("persist");
        std::fs::create_dir(&persistent).expect("persistent dir");
        // A port the kernel just handed out and released: free unless another process takes
        // it in between, and then snmpd's log says so below.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "agentAddress udp:127.0.0.1:{port}\n\
                 rocommunity {COMMUNITY} 127.0.0.1\n\
                 view legacy included .1.3.6.1.2.1.4.22\n\
                 rocommunity {LEGACY_COMMUNITY} 127.0.0.1 -V legacy\n\
                 createUser {V3_USER} SHA \"{AUTH_PASSWORD}\" AES \"{PRIV_PASSWORD}\"\n\
                 rouser {V3_USER} priv\n"
            ),
        )
        .expect("write snmpd.conf");
        let log = dir.path().join("snmpd.log");
        let child = Command::new(&binary)
            .arg("-f")
            .arg("-Lf")
            .arg(&log)
            .args(["-C", "-c"])
            .arg(&conf)
            .args(["-I", "-smux"])
            .env("SNMP_PERSISTENT_DIR", &persistent)
            .env("SNMPCONFPATH", &persistent)
            // No MIB files are needed: everything here is numeric.
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snmpd");
        let mut process = KillOnDrop(child);
        // snmpd logs its version once it listens.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("NET-SNMP version") {
                break;
            }
            if let Ok(Some(status)) = process.0.try_wait() {
                panic!("snmpd exited ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "snmpd did not start: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Snmpd {
            port,
            _process: process,
            _dir: dir,
        }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// This machine's complete IPv4 ARP entries (flag ATF_COM, a MAC that is not all zero), as
/// snmpd reads them: `(ip, mac)` with the MAC in lowercase colon form.
fn proc_net_arp() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("/proc/net/arp").expect("read /proc/net/arp");
    let mut entries: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(cols.get(2)?.trim_start_matches("0x"), 16).ok()?;
            let (ip, mac) = (cols.first()?, cols.get(3)?.to_ascii_lowercase());
            let complete = flags & 0x2 != 0 && mac != "00:00:00:00:00:00";
            // Link-local addresses are never checked (nor registrable).
            (complete && !ip.starts_with("169.254.")).then(|| ((*ip).to_owned(), mac))
        })
        .collect();
    entries.sort();
    entries.dedup();
    assert!(
        !entries.is_empty(),
        "this machine's ARP table has no complete entry (not even the default gateway's); \
         the SNMP tests need one: /proc/net/arp is\n{text}"
    );
    entries
}

/// `cloudgov` with extra environment variables (the SNMP secrets), and none inherited.
fn cloudgov_env(app: &TestApp, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .arg("--db")
        .arg(&app.db.url)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("CLOUDGOV_SNMP_COMMUNITY")
        .env_remove("CLOUDGOV_SNMP_AUTH_PASSWORD")
        .env_remove("CLOUDGOV_SNMP_PRIV_PASSWORD")
        .envs(vars.iter().copied())
        .output()
        .expect("run cloudgov")
}

fn network_findings(app: &TestApp) -> Vec<Value> {
    let out = ok(app.cloudgov(&["network", "check", "--format", "json"]));
    serde_json::from_str(&out).expect("network check prints a JSON array")
}

/// The unregistered-address finding for `(ip, mac)`, which must name `source` among the ARP
/// sources that saw it.
fn assert_seen_by(findings: &[Value], ip: &str, mac: &str, source: &str) {
    let finding = findings
        .iter()
        .find(|f| f["kind"] == "unregistered_ip" && f["ip"] == ip && f["mac"] == mac)
        .unwrap_or_else(|| panic!("no unregistered_ip finding for {ip} {mac}: {findings:#?}"));
    let seen_by = finding["facts"]["seen_by"]
        .as_array()
        .expect("facts.seen_by");
    assert!(
        seen_by
            .iter()
            .any(|s| s["kind"] == "arp" && s["source"] == source),
        "{ip} not seen by {source}: {finding:#}"
    );
}

async fn sightings_from(app: &TestApp, source: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = app
        .store
        .sightings()
        .await
        .expect("sightings")
        .into_iter()
        .filter(|s| s.source == source)
        .map(|s| (s.ip.to_string(), s.mac.to_string()))
        .collect();
    rows.sort();
    rows
}

fn entries(report: &Value) -> Vec<(String, String)> {
    report["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["ip"].as_str().expect("ip").to_owned(),
                e["mac"].as_str().expect("mac").to_owned(),
            )
        })
        .collect()
}

fn assert_no_secret(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        for secret in [COMMUNITY, AUTH_PASSWORD, PRIV_PASSWORD] {
            assert!(!text.contains(secret), "a secret was printed: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_snmp_v2c_records_this_hosts_arp_table_as_sightings() {
    let snmpd = Snmpd::start();
    let app = spawn_app().await;
    let expected = proc_net_arp();
    let target = snmpd.target();

    let out = cloudgov_env(
        &app,
        &[
            "network",
            "poll-snmp",
            "--target",
            &target,
            "--source",
            "lab-sw-1",
            "--community",
            COMMUNITY,
            "--format",
            "json",
        ],
        &[],
    );
    assert_no_secret(&out);
    let report: Value = serde_json::from_str(&ok(out)).expect("a JSON report");
    assert_eq!(report["target"], target.as_str());
    assert_eq!(report["source"], "lab-sw-1");
    assert_eq!(report["table"], "ipNetToPhysicalTable");
    let polled = entries(&report);
    for entry in &expected {
        assert!(polled.contains(entry), "{entry:?} missing from {report:#}");
    }
    let stored = sightings_from(&app, "lab-sw-1").await;
    for entry in &expected {
        assert!(stored.contains(entry), "{entry:?} not stored: {stored:?}");
    }
    let findings = network_findings(&app);
    for (ip, mac) in &expected {
        assert_seen_by(&findings, ip, mac, "lab-sw-1");
    }
    let audit = app.store.audit_log(5).await.expect("audit");
    assert!(
        audit.iter().any(|a| a.action == "poll_snmp"
            && a.target.contains(&target)
            && a.detail.contains("lab-sw-1")
            && !a.detail.contains(COMMUNITY)),
        "{audit:#?}"
    );

    // The community from the environment, then from a file; the text summary.
    let out = cloudgov_env(
        &app,
        &[
            "network",
            "poll-snmp",
            "--target",
            &target,
            "--source",
            "lab-sw-env",
        ],
        &[("CLOUDGOV_SNMP_COMMUNITY", COMMUNITY)],
    );
    assert_no_secret(&out);
    let text = ok(out);
    assert!(
        text.contains(&format!(
            "polled {} ARP entries from {target} (ipNetToPhysicalTable)",
            polled.len()
        )),
        "{text}"
    );
    // An agent without ipNetToPhysicalTable: the same entries from ipNetToMediaTable.
    let out = ok(cloudgov_env(
        &app,
        &[
            "network",
            "poll-snmp",
            "--target",
            &target,
            "--source",
            "lab-sw-legacy",
            "--community",
            LEGACY_COMMUNITY,
            "--format",
            "json",
        ],
        &[],
    ));
    let legacy: Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(legacy["table"], "ipNetToMediaTable");
    let legacy_entries = entries(&legacy);
    assert!(
        expected.iter().all(|e| legacy_entries.contains(e)),
        "{legacy:#}"
    );
    let file = write_file(&app.db.dir, "community", &format!("{COMMUNITY}\n"));
    ok(cloudgov_env(
        &app,
        &[
            "network",
            "poll-snmp",
            "--target",
            &target,
            "--source",
            "lab-sw-file",
            "--community-file",
            &file,
        ],
        &[],
    ));
    let from_file = sightings_from(&app, "lab-sw-file").await;
    assert!(
        expected.iter().all(|e| from_file.contains(e)),
        "{from_file:?}"
    );
    // No community anywhere: told how to give one.
    let out = cloudgov_env(
        &app,
        &["network", "poll-snmp", "--target", &target, "--source", "x"],
        &[],
    );
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("CLOUDGOV_SNMP_COMMUNITY"),
        "{out:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_snmp_v3_auth_priv_and_a_targets_file() {
    let snmpd = Snmpd::start();
    let mut app = spawn_app().await;
    let expected = proc_net_arp();
    let target = snmpd.target();
    let priv_file = write_file(&app.db.dir, "priv", PRIV_PASSWORD);

    let v3 = |source: &str, auth_password: &str| -> Output {
        cloudgov_env(
            &app,
            &[
                "network",
                "poll-snmp",
                "--target",
                &target,
                "--source",
                source,
                "--v3-user",
                V3_USER,
                "--auth-protocol",
                "sha",
                "--priv-protocol",
                "aes",
                "--priv-password-file",
                &priv_file,
                "--timeout",
                "1",
                "--format",
                "json",
            ],
            &[("CLOUDGOV_SNMP_AUTH_PASSWORD", auth_password)],
        )
    };
    let out = v3("lab-sw-v3", AUTH_PASSWORD);
    assert_no_secret(&out);
    let report: Value = serde_json::from_str(&ok(out)).expect("a JSON report");
    assert_eq!(report["table"], "ipNetToPhysicalTable");
    let stored = sightings_from(&app, "lab-sw-v3").await;
    for entry in &expected {
        assert!(stored.contains(entry), "{entry:?} not stored: {stored:?}");
    }
    let findings = network_findings(&app);
    for (ip, mac) in &expected {
        assert_seen_by(&findings, ip, mac, "lab-sw-v3");
    }

    // A wrong auth password: the agent is there, the credentials are not right; nothing stored.
    let out = v3("lab-sw-v3-wrong", "not-the-password");
    assert_no_secret(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&target) && err.contains("authentication failed"),
        "{err}"
    );
    assert!(sightings_from(&app, "lab-sw-v3-wrong").await.is_empty());

    // The daemon's targets file, every target polled once: a v2c community from the
    // environment, v3 passwords from the environment and a file.
    let targets = write_file(
        &app.db.dir,
        "snmp-targets.toml",
        &format!(
            r#"
[[target]]
address = "{target}"
source = "file-v2c"
version = "2c"
community_env = "LAB_COMMUNITY"

[[target]]
address = "{target}"
source = "file-v3"
version = "3"
user = "{V3_USER}"
auth_protocol = "sha"
auth_password_env = "LAB_AUTH"
priv_protocol = "aes"
priv_password_file = "{priv_file}"
timeout_seconds = 2
"#
        ),
    );
    let args = ["network", "poll-snmp", "--targets", &targets];
    let out = cloudgov_env(
        &app,
        &args,
        &[("LAB_COMMUNITY", COMMUNITY), ("LAB_AUTH", AUTH_PASSWORD)],
    );
    assert_no_secret(&out);
    let text = ok(out);
    assert_eq!(text.matches("polled ").count(), 2, "{text}");
    for source in ["file-v2c", "file-v3"] {
        let seen = sightings_from(&app, source).await;
        assert!(
            expected.iter().all(|e| seen.contains(e)),
            "{source}: {seen:?}"
        );
    }
    // The daemon polls the same file on its own (leader only, at start and every interval).
    let served = std::fs::read_to_string(&targets)
        .expect("targets file")
        .replace("file-v2c", "served-v2c")
        .replace("file-v3", "served-v3");
    let served = write_file(&app.db.dir, "served-targets.toml", &served);
    // Only the leader pulls: the in-process daemon steps down so `serve` leads.
    app.stop_daemon().await;
    let serve = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cloudgov"))
            .args(["--db", &app.db.url, "serve", "--listen", "127.0.0.1:0"])
            .args(["--snmp-targets", &served])
            .env("RUST_LOG", "warn")
            .env("LAB_COMMUNITY", COMMUNITY)
            .env("LAB_AUTH", AUTH_PASSWORD)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(app.db.dir.path().join("serve.log")).expect("log"))
            .spawn()
            .expect("start cloudgov serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sightings_from(&app, "served-v3").await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(serve);
    for source in ["served-v2c", "served-v3"] {
        let seen = sightings_from(&app, source).await;
        assert!(
            expected.iter().all(|e| seen.contains(e)),
            "serve --snmp-targets, {source}: {seen:?}\n{}",
            std::fs::read_to_string(app.db.dir.path().join("serve.log")).unwrap_or_default()
        );
    }
    // An unset variable is named with its target, before anything is polled.
    let out = cloudgov_env(&app, &args, &[("LAB_COMMUNITY", COMMUNITY)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("LAB_AUTH") && err.contains("file-v3"),
        "{err}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_community_times_out_naming_the_target_and_stores_nothing() {
    let snmpd = Snmpd::start();
    let app = spawn_app().await;
    let target = snmpd.target();
    let started = Instant::now();
    let out = cloudgov_env(
        &app,
        &[
            "network",
            "poll-snmp",
            "--target",
            &target,
            "--source",
            "lab-sw-wrong",
            "--community",
            "not-the-community",
            "--timeout",
            "1",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("SNMP target {target}")) && err.contains("no answer within 2 s"),
        "{err}"
    );
    assert!(!err.contains("not-the-community"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(app.store.sightings().await.expect("sightings").is_empty());
    assert!(network_findings(&app).is_empty());
    assert!(
        app.store
            .audit_log(10)
            .await
            .expect("audit")
            .iter()
            .all(|a| a.action != "poll_snmp")
    );
    app.stop().await;
}

const HUAWEI: &str = "\
<agg-sw-2>display arp
IP ADDRESS      MAC ADDRESS     EXPIRE(M) TYPE        INTERFACE      VPN-INSTANCE
                                          VLAN/CEVLAN PVC
------------------------------------------------------------------------------
10.8.1.1        00e0-fc12-3456            I -         Vlanif10
10.8.1.20       5489-98a1-0b2c  18        D-0         GE0/0/1
                                          10/-
10.8.1.22       Incomplete      1         D-0         GE0/0/3
                                          10/-
------------------------------------------------------------------------------
Total:3         Dynamic:2       Static:0     Interface:1
";

const CISCO: &str = "\
core-rtr#show ip arp
Protocol  Address          Age (min)  Hardware Addr   Type   Interface
Internet  10.9.1.1                -   0050.56ab.cdef  ARPA   Vlan10
Internet  10.9.1.20              12   0050.56AB.0001  ARPA   Vlan10
Internet  10.9.1.30               0   Incomplete      ARPA
core-rtr#
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_and_cisco_arp_text_become_sightings_and_a_bad_line_imports_nothing() {
    let app = spawn_app().await;
    let huawei = write_file(&app.db.dir, "display-arp.txt", HUAWEI);
    let out = ok(app.cloudgov(&[
        "import", "arp", &huawei, "--format", "huawei", "--source", "agg-sw-2",
    ]));
    assert!(out.contains("imported 2 ARP entries"), "{out}");
    let cisco = write_file(&app.db.dir, "show-ip-arp.txt", CISCO);
    let out = ok(app.cloudgov(&[
        "import", "arp", &cisco, "--format", "cisco", "--source", "core-rtr",
    ]));
    assert!(out.contains("imported 2 ARP entries"), "{out}");
    assert_eq!(
        sightings_from(&app, "agg-sw-2").await,
        [
            ("10.8.1.1".to_owned(), "00:e0:fc:12:34:56".to_owned()),
            ("10.8.1.20".to_owned(), "54:89:98:a1:0b:2c".to_owned())
        ]
    );
    let findings = network_findings(&app);
    assert_seen_by(&findings, "10.8.1.20", "54:89:98:a1:0b:2c", "agg-sw-2");
    assert_seen_by(&findings, "10.9.1.20", "00:50:56:ab:00:01", "core-rtr");
    assert!(
        findings
            .iter()
            .all(|f| f["ip"] != "10.8.1.22" && f["ip"] != "10.9.1.30"),
        "incomplete entries are not sightings: {findings:#?}"
    );

    // A mistyped entry names its line; nothing of the file is kept.
    let bad = write_file(
        &app.db.dir,
        "bad.txt",
        &CISCO.replace("0050.56AB.0001", "0050.56AB.001"),
    );
    let out = app.cloudgov(&[
        "import", "arp", &bad, "--format", "cisco", "--source", "bad-rtr",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("line 4")
            && err.contains("MAC address")
            && err.contains("nothing imported"),
        "{err}"
    );
    assert!(sightings_from(&app, "bad-rtr").await.is_empty());

    // The source: required for text, refused for CSV (whose rows name their own).
    let out = app.cloudgov(&["import", "arp", &huawei, "--format", "huawei"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--source"),
        "{out:?}"
    );
    let csv = write_file(
        &app.db.dir,
        "arp.csv",
        &format!(
            "ip,mac,seen_at,source\n10.7.0.1,52:54:00:aa:00:01,{},sw\n",
            chrono::Utc::now().to_rfc3339()
        ),
    );
    let out = app.cloudgov(&["import", "arp", &csv, "--source", "sw"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--source"),
        "{out:?}"
    );
    let out = ok(app.cloudgov(&["import", "arp", &csv]));
    assert!(out.contains("imported 1 ARP entries"), "{out}");
    app.stop().await;
}

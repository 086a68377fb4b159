//! E-mail notices against a real SMTP server on loopback (aiosmtpd, `tests/support/smtp_sink.py`):
//! digests with charts, reminders, escalations, retries, a crash after acceptance, approval.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestDb, fresh_db, ok, write_file};

/// A Python that has aiosmtpd: `CLOUDGOV_TEST_PYTHON`, else `python3`, else Debian's.
fn python() -> String {
    let candidates = std::env::var("CLOUDGOV_TEST_PYTHON")
        .map(|p| vec![p])
        .unwrap_or_else(|_| vec!["python3".into(), "/usr/bin/python3".into()]);
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.clone();
        }
    }
    panic!(
        "no python3 with aiosmtpd: run tests/run, which installs it (or pip install aiosmtpd, and set CLOUDGOV_TEST_PYTHON); tried {candidates:?}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A real SMTP server that stores what it accepts.
pub(crate) struct SmtpSink {
    child: Option<Child>,
    /// Kept open: the sink writes to it, and a closed pipe would kill it.
    _stdout: Option<std::process::ChildStdout>,
    port: u16,
    dir: tempfile::TempDir,
    /// Seconds the server waits before answering each message.
    delay: f64,
}

pub(crate) struct Received {
    pub(crate) rcpt: Vec<String>,
    pub(crate) message_id: String,
    pub(crate) subject: String,
    pub(crate) cc: String,
    pub(crate) body: String,
    pub(crate) pngs: Vec<Vec<u8>>,
}

impl SmtpSink {
    pub(crate) fn start() -> SmtpSink {
        SmtpSink::start_slow(0.0)
    }

    /// A server that answers each message only after `delay` seconds.
    pub(crate) fn start_slow(delay: f64) -> SmtpSink {
        let mut sink = SmtpSink {
            child: None,
            _stdout: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("dir"),
            delay,
        };
        sink.restart();
        sink
    }

    fn restart(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .arg(self.delay.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start SMTP sink");
        let mut out = child.stdout.take().expect("stdout");
        let mut line = [0u8; 5];
        std::io::Read::read_exact(&mut out, &mut line).expect("sink says READY");
        assert_eq!(&line, b"READY");
        self.child = Some(child);
        self._stdout = Some(out);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|path| {
                let raw = std::fs::read(&path).expect("read message");
                let rcpt = std::fs::read_to_string(path.with_extension("rcpt")).expect("rcpt");
                let mail = mailparse::parse_mail(&raw).expect("parse message");
                let header = |name: &str| {
                    mail.headers
                        .iter()
                        .find(|h| h.get_key().eq_ignore_ascii_case(name))
                        .map(|h| h.get_value())
                        .unwrap_or_default()
                };
                let mut body = String::new();
                let mut pngs = Vec::new();
                for part in mail.parts() {
                    if part.ctype.mimetype == "text/plain" {
                        body.push_str(&part.get_body().expect("text body"));
                    } else if part.ctype.mimetype == "image/png" {
                        pngs.push(part.get_body_raw().expect("png body"));
                    }
                }
                Received {
                    rcpt: rcpt.lines().map(str::to_owned).collect(),
                    message_id: header("Message-ID"),
                    subject: header("Subject"),
                    cc: header("Cc"),
                    body,
                    pngs,
                }
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

const INVENTORY: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "health"
name = "市卫生健康局"
emails = ["it@health.example.cn", "head@health.example.cn"]

[[department]]
id = "edu"
name = "市教育和体育局"
emails = ["it@edu.example.cn"]

[[project]]
id = "his"
name = "医院信息系统"
department = "health"
filed_on = 2025-01-01

[[project]]
id = "enrol"
name = "招生系统"
department = "edu"
filed_on = 2025-01-01

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
deployed_on = 2025-01-10

[[vm]]
id = "quiet-01"
project = "enrol"
vcpus = 4
memory_gib = 8
disk_gib = 100
delivered_on = 2025-01-06
deployed_on = 2025-01-10
"#;

/// Ten days of samples before Friday 2025-09-26 (issue day of the notices).
fn samples() -> String {
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for day in 17..=26 {
        for (hour, cpu) in [(3, 2.0), (10, 12.0), (15, 9.0)] {
            csv.push_str(&format!(
                "idle-01,2025-09-{day}T{hour:02}:00:00+08:00,{cpu},20,30\n"
            ));
            csv.push_str(&format!(
                "hot-01,2025-09-{day}T{hour:02}:00:00+08:00,{},90,80\n",
                80.0 + cpu
            ));
            csv.push_str(&format!(
                "quiet-01,2025-09-{day}T{hour:02}:00:00+08:00,{cpu},60,60\n"
            ));
        }
    }
    csv
}

fn setup(db: &TestDb, inventory: &str) {
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", inventory),
        ],
    ));
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &samples()),
        ],
    ));
}

pub(crate) fn cloudgov(db: &TestDb, smtp: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .arg("--db")
        .arg(&db.url)
        .args(args)
        .env("CLOUDGOV_SMTP_URL", smtp)
        .env("CLOUDGOV_SMTP_FROM", "cloudgov@bigdata.example.cn")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run cloudgov")
}

pub(crate) fn tick(db: &TestDb, smtp: &str, at: &str) -> Value {
    serde_json::from_str(&ok(cloudgov(
        db,
        smtp,
        &["tick", "--at", at, "--format", "json"],
    )))
    .expect("tick JSON")
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .expect("attachment decodes as PNG");
    (img.width(), img.height())
}

#[tokio::test]
async fn notices_go_out_once_as_one_digest_per_department_with_charts() {
    let db = fresh_db().await;
    setup(&db, INVENTORY);
    let sink = SmtpSink::start();

    let t = tick(&db, &sink.url(), "2025-09-26T16:00:00+08:00");
    assert_eq!(t["notices_opened"], 3 + 3 + 1, "{t}");
    assert_eq!(t["emails"]["sent"], 2, "one digest per department: {t}");
    let mail = sink.received();
    assert_eq!(mail.len(), 2);

    let health = mail
        .iter()
        .find(|m| m.rcpt.contains(&"it@health.example.cn".to_string()))
        .expect("health digest");
    assert_eq!(
        health.rcpt.iter().collect::<BTreeSet<_>>(),
        ["head@health.example.cn", "it@health.example.cn"]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect()
    );
    assert!(
        health.subject.contains("云资源调整通知") && health.subject.contains("市卫生健康局"),
        "{}",
        health.subject
    );
    // Due 10 working days after Friday 2025-09-26, across National Day: Thursday 2025-10-16.
    assert!(
        health.body.contains("2025年10月16日") && health.body.contains("2025-10-16"),
        "{}",
        health.body
    );
    for needle in [
        "第十三条",
        "idle-01",
        "hot-01",
        "医院信息系统",
        "未超过25%",
        "超过75%",
        "建议调整为",
        "异议",
    ] {
        assert!(
            health.body.contains(needle),
            "digest lacks {needle:?}:\n{}",
            health.body
        );
    }
    assert_eq!(health.pngs.len(), 6, "one chart per notice");
    for png in &health.pngs {
        assert_eq!(png_size(png), (800, 400));
    }
    let edu = mail
        .iter()
        .find(|m| m.rcpt == ["it@edu.example.cn"])
        .expect("edu digest");
    assert_eq!(edu.pngs.len(), 1);

    // The same instant again: nothing new is sent.
    let again = tick(&db, &sink.url(), "2025-09-26T16:30:00+08:00");
    assert_eq!(again["emails"]["sent"], 0, "{again}");
    assert_eq!(sink.received().len(), 2);

    // notices list carries the due date.
    let notices: Vec<Value> = serde_json::from_str(&ok(cloudgov(
        &db,
        &sink.url(),
        &["notices", "list", "--format", "json"],
    )))
    .expect("json");
    assert_eq!(notices.len(), 7);
    assert!(
        notices
            .iter()
            .all(|n| n["due"] == "2025-10-16" && n["state"] == "open"),
        "{notices:?}"
    );

    // Reminders (from 2025-10-13) are single e-mails, once; escalations copy the center.
    let r = tick(&db, &sink.url(), "2025-10-13T09:00:00+08:00");
    assert_eq!(r["reminders"], 7, "{r}");
    assert_eq!(r["emails"]["sent"], 7, "{r}");
    let r = tick(&db, &sink.url(), "2025-10-14T09:00:00+08:00");
    assert_eq!(r["emails"]["sent"], 0, "{r}");
    let e = tick(&db, &sink.url(), "2025-10-17T09:00:00+08:00");
    assert_eq!(e["escalations"], 7, "{e}");
    assert_eq!(e["emails"]["sent"], 7, "{e}");
    let mail = sink.received();
    assert_eq!(mail.len(), 2 + 7 + 7);
    let escalations: Vec<&Received> = mail.iter().filter(|m| m.subject.contains("逾期")).collect();
    assert_eq!(escalations.len(), 7);
    for m in &escalations {
        assert!(
            m.rcpt.contains(&"ops@bigdata.example.cn".to_string())
                && m.cc.contains("ops@bigdata.example.cn"),
            "{:?}",
            m.rcpt
        );
        assert!(m.body.contains("2025年10月16日"), "{}", m.body);
    }
    let ids: BTreeSet<&str> = mail.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), mail.len(), "every e-mail has its own Message-ID");
}

#[tokio::test]
async fn smtp_down_for_a_while_loses_nothing_and_repeats_nothing() {
    let db = fresh_db().await;
    setup(&db, INVENTORY);
    let mut sink = SmtpSink::start();
    sink.stop();

    let down = tick(&db, &sink.url(), "2025-09-26T16:00:00+08:00");
    assert_eq!(down["emails"]["sent"], 0, "{down}");
    assert_eq!(down["emails"]["pending"], 2, "{down}");
    let down = tick(&db, &sink.url(), "2025-09-26T17:00:00+08:00");
    assert_eq!(down["emails"]["pending"], 2, "{down}");
    let outbox: Vec<Value> = serde_json::from_str(&ok(cloudgov(
        &db,
        &sink.url(),
        &["outbox", "list", "--format", "json"],
    )))
    .expect("json");
    assert!(outbox.iter().all(|o| o["state"] == "pending"), "{outbox:?}");
    // A refused connection stops the run: the first job was tried each time, the rest wait.
    assert!(
        outbox.iter().any(|o| o["attempts"].as_i64() >= Some(2)),
        "{outbox:?}"
    );

    sink.restart();
    let up = tick(&db, &sink.url(), "2025-09-26T18:00:00+08:00");
    assert_eq!(up["emails"]["sent"], 2, "{up}");
    assert_eq!(up["emails"]["pending"], 0, "{up}");
    tick(&db, &sink.url(), "2025-09-26T19:00:00+08:00");
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn a_crash_after_the_server_accepted_loses_nothing_and_keeps_the_message_id() {
    let db = fresh_db().await;
    setup(&db, INVENTORY);
    let sink = SmtpSink::start();

    // Die right after the first acceptance, before it is marked sent.
    let crashed = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args(["--db", &db.url, "tick", "--at", "2025-09-26T16:00:00+08:00"])
        .env("CLOUDGOV_SMTP_URL", sink.url())
        .env("CLOUDGOV_FAULT_ABORT_AFTER_SMTP_ACCEPT", "1")
        .env("CLOUDGOV_OUTBOX_CLAIM_SECS", "1")
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    assert!(
        !crashed.status.success(),
        "the fault hook aborts the process"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sink.received().len(),
        1,
        "the first digest was accepted before the crash"
    );

    // Restart: the notices and their e-mail jobs were committed before sending, so nothing is
    // lost; once the dead sender's claim expires (1 s here), the in-doubt message goes again
    // with the same Message-ID.
    std::thread::sleep(Duration::from_millis(2100));
    let t = tick(&db, &sink.url(), "2025-09-26T16:05:00+08:00");
    assert_eq!(t["emails"]["sent"], 2, "{t}");
    let mail = sink.received();
    let ids: BTreeSet<&str> = mail.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "two distinct messages, one per department");
    assert_eq!(
        mail.len(),
        3,
        "only the in-doubt message was delivered twice, under one Message-ID"
    );
    tick(&db, &sink.url(), "2025-09-26T17:00:00+08:00");
    assert_eq!(sink.received().len(), 3, "nothing after that");
}

/// 14 departments, each with one idle VM: one digest each.
fn fourteen_departments() -> (String, String) {
    let mut inventory = String::from("[center]\nemails = [\"ops@bigdata.example.cn\"]\n");
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for d in 1..=14 {
        inventory.push_str(&format!(
            "\n[[department]]\nid = \"d{d}\"\nname = \"部门{d}\"\nemails = [\"it@d{d}.example.cn\"]\n\
             \n[[project]]\nid = \"p{d}\"\nname = \"项目{d}\"\ndepartment = \"d{d}\"\nfiled_on = 2025-01-01\n\
             \n[[vm]]\nid = \"vm-{d}\"\nproject = \"p{d}\"\nvcpus = 8\nmemory_gib = 32\ndisk_gib = 500\n\
             delivered_on = 2025-01-06\ndeployed_on = 2025-01-10\n"
        ));
        for day in 17..=26 {
            csv.push_str(&format!("vm-{d},2025-09-{day}T10:00:00+08:00,5,20,30\n"));
        }
    }
    (inventory, csv)
}

/// A daemon's sender and `cloudgov outbox send` beside it, against a server that takes 1 s per
/// message with a 4 s claim: each digest goes out exactly once. (A claim stamped with the
/// start of the run expired before its message was sent, and the second sender sent it again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_beside_each_other_deliver_each_digest_exactly_once() {
    let db = fresh_db().await;
    let (inventory, csv) = fourteen_departments();
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", &inventory),
        ],
    ));
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &csv),
        ],
    ));
    // Evaluated with no SMTP configured: the digests wait in the outbox.
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &["tick", "--at", "2025-09-26T16:00:00+08:00"],
    ));
    let sink = SmtpSink::start_slow(1.0);
    let sender = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudgov"));
        cmd.arg("--db")
            .arg(&db.url)
            .args(args)
            .env("CLOUDGOV_SMTP_URL", sink.url())
            .env("CLOUDGOV_SMTP_FROM", "cloudgov@bigdata.example.cn")
            .env("CLOUDGOV_OUTBOX_CLAIM_SECS", "4")
            .env("RUST_LOG", "warn");
        cmd
    };
    let daemon = crate::helpers::KillOnDrop(
        sender(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start the daemon"),
    );
    // Let the daemon's sender get going, then start the second one beside it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.received().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(sink.received().len() >= 2, "the daemon sends");
    let beside = sender(&["outbox", "send"]).output().expect("outbox send");
    assert!(
        beside.status.success(),
        "{}",
        String::from_utf8_lossy(&beside.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let sent = || -> usize {
        serde_json::from_str::<Value>(&ok(crate::helpers::cloudgov_cmd(
            &db.url,
            &["outbox", "list", "--format", "json"],
        )))
        .expect("outbox JSON")
        .as_array()
        .expect("array")
        .iter()
        .filter(|o| o["state"] == "sent")
        .count()
    };
    while sent() < 14 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    // A moment more, so a second delivery in flight would arrive too.
    std::thread::sleep(Duration::from_millis(2500));
    drop(daemon);
    let mail = sink.received();
    let ids: BTreeSet<&str> = mail.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 14, "every digest arrived");
    assert_eq!(
        mail.len(),
        14,
        "and none twice: {:?}",
        mail.iter().map(|m| &m.message_id).collect::<Vec<_>>()
    );
    let by_cli: Value = serde_json::from_slice(&beside.stdout).expect("summary JSON");
    assert!(
        by_cli["sent"].as_u64().is_some_and(|n| n > 0),
        "the second sender took part: {by_cli}"
    );
}

#[tokio::test]
async fn a_department_without_address_is_visible_and_served_once_it_has_one() {
    let db = fresh_db().await;
    let no_edu_address = INVENTORY.replace("emails = [\"it@edu.example.cn\"]", "emails = []");
    setup(&db, &no_edu_address);
    let sink = SmtpSink::start();
    let t = tick(&db, &sink.url(), "2025-09-26T16:00:00+08:00");
    assert_eq!(
        (
            t["emails"]["sent"].as_u64(),
            t["emails"]["no_recipient"].as_u64()
        ),
        (Some(1), Some(1)),
        "{t}"
    );
    let outbox: Vec<Value> = serde_json::from_str(&ok(cloudgov(
        &db,
        &sink.url(),
        &["outbox", "list", "--format", "json"],
    )))
    .expect("json");
    let stuck = outbox
        .iter()
        .find(|o| o["department"] == "edu")
        .expect("edu job");
    assert_eq!(stuck["state"], "no_recipient");
    assert!(
        stuck["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("edu"),
        "{stuck}"
    );

    ok(cloudgov(
        &db,
        &sink.url(),
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv2.toml", INVENTORY),
        ],
    ));
    let t = tick(&db, &sink.url(), "2025-09-26T17:00:00+08:00");
    assert_eq!(t["emails"]["sent"], 1, "{t}");
    assert!(
        sink.received()
            .iter()
            .any(|m| m.rcpt == ["it@edu.example.cn"])
    );
}

#[tokio::test]
async fn with_approval_required_notices_wait_for_staff_and_preview_renders() {
    let db = fresh_db().await;
    setup(&db, INVENTORY);
    let sink = SmtpSink::start();
    let rules = cloudgov::core::rules::BUILTIN_RULES
        .replace("require_approval = false", "require_approval = true");
    let rules_path = write_file(&db.dir, "rules.toml", &rules);
    let with_rules = |args: &[&str]| {
        let mut all = vec!["--rules", rules_path.as_str()];
        all.extend_from_slice(args);
        ok(cloudgov(&db, &sink.url(), &all))
    };
    let t: Value = serde_json::from_str(&with_rules(&[
        "tick",
        "--at",
        "2025-09-26T16:00:00+08:00",
        "--format",
        "json",
    ]))
    .expect("json");
    assert_eq!(t["notices_opened"], 7, "{t}");
    assert_eq!(t["emails"]["sent"], 0, "held for approval: {t}");
    // The 10 working days run from receipt: no adjustment deadline before approval.
    let deadlines: Vec<Value> = serde_json::from_str(&with_rules(&[
        "deadlines",
        "--at",
        "2025-09-26T16:30:00+08:00",
        "--format",
        "json",
    ]))
    .expect("json");
    assert!(
        deadlines.iter().all(|d| d["kind"] != "adjustment"),
        "{deadlines:?}"
    );

    let notices: Vec<Value> =
        serde_json::from_str(&with_rules(&["notices", "list", "--format", "json"])).expect("json");
    let quiet = notices
        .iter()
        .find(|n| n["vm"] == "quiet-01")
        .expect("quiet notice");
    let id = quiet["id"].as_i64().expect("id").to_string();
    let preview = with_rules(&["notices", "preview", &id]);
    assert!(
        preview.contains("Subject: 【云资源调整通知】") && preview.contains("2025年10月16日"),
        "{preview}"
    );
    assert!(preview.contains("[attachment notice-"), "{preview}");
    assert!(sink.received().is_empty(), "preview sends nothing");

    with_rules(&["notices", "approve", &id]);
    let t: Value = serde_json::from_str(&with_rules(&[
        "tick",
        "--at",
        "2025-09-26T17:00:00+08:00",
        "--format",
        "json",
    ]))
    .expect("json");
    assert_eq!(t["emails"]["sent"], 1, "{t}");
    let mail = sink.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].rcpt, ["it@edu.example.cn"]);
}

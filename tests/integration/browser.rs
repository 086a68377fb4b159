//! The dashboard in a real browser: Debian's chromium, driven by playwright-core.
//! - `tests/e2e/dashboard.mjs`, against the daemon with seeded data: staff and a department
//!   user sign in and act through the forms; the department user cannot reach another
//!   department's VM or notice by URL or by API.
//! - `tests/e2e/demo.mjs`, against `cloudgov demo`: every page in both languages has content,
//!   and the Chinese pages carry no English sentences.
//!
//! `CLOUDGOV_SCREENSHOTS=docs/screenshots` keeps the demo's screenshots (the README's).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{INVENTORY, ok, spawn_app, write_file};
use cloudgov::core::access::Role;

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} not found: run tests/run, which installs Debian's chromium (apt-get install chromium)",
        path.display()
    );
    path
}

fn e2e_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run tests/run, which runs `npm ci` in tests/e2e"
    );
    dir
}

/// Waits for a browser script and returns its JSON report; fails the test with the script's
/// own words unless it passed.
async fn report_of(
    run: impl std::future::Future<Output = std::io::Result<std::process::Output>>,
) -> Value {
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser test finishes within 4 minutes")
        .expect("run node (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!("no JSON report from the browser test\nstdout: {stdout}\nstderr: {stderr}")
        });
    assert!(
        out.status.success() && report["ok"] == true,
        "browser test failed: {}\nstderr: {stderr}",
        report["error"]
            .as_str()
            .map_or_else(|| report.to_string(), str::to_owned)
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_and_department_users_in_chromium() {
    let (browser, e2e) = (chromium(), e2e_dir());
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", INVENTORY),
    ]));
    // 26 days of history up to now, so the charts of the last 7 and 30 days have data.
    let now = chrono::Utc::now();
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for hours_ago in (1..=26 * 24).rev().step_by(3) {
        let ts = now - chrono::TimeDelta::hours(hours_ago);
        let wave = f64::from(u32::try_from(hours_ago % 24).unwrap_or(0));
        for (vm, cpu, mem) in [
            ("idle-01", 3.0 + wave / 6.0, 9.0 + wave / 4.0),
            ("edge-01", 5.0, 10.0),
            ("hot-01", 70.0 + wave, 80.0 + wave / 2.0),
        ] {
            csv.push_str(&format!(
                "{vm},{},{cpu:.1},{mem:.1},{:.1}\n",
                ts.to_rfc3339(),
                20.0 + wave / 3.0
            ));
        }
    }
    ok(app.cloudgov(&[
        "import",
        "samples",
        "--allow-history",
        &write_file(&app.db.dir, "s.csv", &csv),
    ]));
    ok(app.cloudgov(&["tick", "--at", &now.to_rfc3339()]));
    let staff_password = app.add_user("ops", Role::Operator, None).await;
    let dept_password = app
        .add_user("health-it", Role::Department, Some("health"))
        .await;
    let notices = app
        .get_json(&app.staff_token().await, "/api/v1/notices")
        .await;
    let notice_of = |department: &str| {
        notices
            .as_array()
            .expect("array")
            .iter()
            .find(|n| n["department"] == department)
            .and_then(|n| n["id"].as_i64())
            .unwrap_or_else(|| panic!("a notice of {department}: {notices}"))
            .to_string()
    };
    // The README's screenshots are the demo's (below); these stay with the test.
    let screenshots = app.db.dir.path().join("screenshots");

    let run = tokio::process::Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&e2e)
        .env("CLOUDGOV_URL", &app.base)
        .env("CHROMIUM", &browser)
        .env("STAFF_USER", "ops")
        .env("STAFF_PASSWORD", &staff_password)
        .env("DEPT_USER", "health-it")
        .env("DEPT_PASSWORD", &dept_password)
        .env("OWN_VM", "idle-01")
        .env("OTHER_VM", "edge-01")
        .env("OWN_NOTICE", notice_of("health"))
        .env("OTHER_NOTICE", notice_of("edu"))
        .env("SCREENSHOT_DIR", &screenshots)
        .kill_on_drop(true)
        .output();
    let report = report_of(run).await;
    assert_eq!(report["seen"]["department_api"]["otherNotice"], 404);
    assert_eq!(report["seen"]["contested"], true);
    assert_eq!(report["seen"]["staff_actions"], true);
    let registry = app.store.ip_registry().await.expect("registry");
    assert!(
        registry
            .iter()
            .any(|r| r.ip == "10.20.30.40" && r.mac == "52:54:00:ab:cd:ef" && r.holder == "张三"),
        "{registry:?}"
    );
    for name in ["overview", "vm", "notice", "department-user-overview"] {
        let png = screenshots.join(format!("{name}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{name}.png is a PNG");
    }
    // The contest went through the real form and is stored.
    let contests = app
        .store
        .contests(notice_of("health").parse().expect("id"))
        .await
        .expect("contests");
    assert_eq!(contests.len(), 1);
    assert_eq!(contests[0].username, "health-it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_in_chromium_every_page_in_both_languages() {
    let (browser, e2e) = (chromium(), e2e_dir());
    let demo = crate::demo::RunningDemo::start(5);
    let notices = demo.get("/api/v1/notices").await;
    let notice = |vm: &str, state: &str, resource: Option<&str>| {
        notices
            .as_array()
            .expect("array")
            .iter()
            .filter(|n| n["vm"] == vm && n["state"] == state)
            .filter(|n| resource.is_none_or(|r| n["resource"] == r))
            .filter_map(|n| n["id"].as_i64())
            .max()
            .unwrap_or_else(|| panic!("a {state} notice of {vm}: {notices}"))
            .to_string()
    };
    // A notice answered late has the longest timeline: issued, e-mailed, deadline, reminder
    // or escalation, done, closed.
    let answered_late = notice("vaccine-web-01", "closed", None);
    let contested = notice("his-app-02", "open", Some("cpu"));
    let year = crate::demo::RunningDemo::review_year().to_string();
    // Relative to the repository (the browser script runs in tests/e2e).
    let screenshots = std::env::var_os("CLOUDGOV_SCREENSHOTS")
        .map(|dir| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap_or_else(|| demo.dir().join("screenshots"));
    let (admin, health) = (&demo.logins[0], &demo.logins[1]);
    let run = tokio::process::Command::new("node")
        .arg("demo.mjs")
        .current_dir(&e2e)
        .env("CLOUDGOV_URL", &demo.base)
        .env("CHROMIUM", &browser)
        .env("STAFF_USER", &admin.0)
        .env("STAFF_PASSWORD", &admin.1)
        .env("DEPT_USER", &health.0)
        .env("DEPT_PASSWORD", &health.1)
        .env("NOTICE", &answered_late)
        .env("CONTESTED_NOTICE", &contested)
        .env("REVIEW_YEAR", &year)
        .env("SCREENSHOT_DIR", &screenshots)
        .kill_on_drop(true)
        .output();
    let report = report_of(run).await;
    let seen = &report["seen"];
    assert_eq!(
        seen["network_kinds"].as_array().map(Vec::len),
        Some(6),
        "{seen}"
    );
    assert_eq!(
        seen["review_verdicts"].as_array().map(Vec::len),
        Some(4),
        "{seen}"
    );
    for page in [
        "overview",
        "department",
        "project",
        "vm",
        "notices",
        "notice",
        "network",
        "reviews",
        "audit",
    ] {
        for lang in ["zh", "en"] {
            assert!(
                seen["pages"][format!("{page}-{lang}")].is_object(),
                "{page} visited in {lang}: {seen}"
            );
        }
    }
    for name in ["overview", "network", "reviews", "review-report", "audit"] {
        let png = screenshots.join(format!("{name}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{name}.png is a PNG");
    }
}

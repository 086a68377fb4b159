//! The dashboard in a real browser: Debian's chromium, driven by playwright-core
//! (`tests/e2e/dashboard.mjs`), against the running daemon with seeded data. Staff and a
//! department user sign in; the department user cannot reach another department's VM or
//! notice by URL or by API. `CLOUDGOV_SCREENSHOTS=docs/screenshots` keeps the screenshots.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{INVENTORY, ok, spawn_app, write_file};
use cloudgov::access::Role;

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
    let screenshots = std::env::var_os("CLOUDGOV_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| app.db.dir.path().join("screenshots"));

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
        "browser test failed: {report}\nstderr: {stderr}"
    );
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

//! The web dashboard against the real store: counts match the seeded findings, a department
//! user sees only their department (404 elsewhere), charts carry the rule thresholds, the
//! English switch works, and forms carry the CSRF token.
//!
//! The pages are mounted on a small axum app whose only extra layer inserts a fixed `Viewer`
//! chosen by a test header; the integrator's real login replaces that layer. Requests go through
//! `get_as` only, so switching to real sessions changes one function.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use cloudgov::core::access::{Role, Scope, Viewer};
use cloudgov::core::calendar::Calendar;
use cloudgov::core::domain::DepartmentId;
use cloudgov::core::rules::RuleSet;
use cloudgov::http::{AppState, IngestLimits};
use cloudgov::jobs::JobContext;
use cloudgov::jobs::notify::Notifier;
use cloudgov::store::{NoticeRow, Store};

use crate::helpers::{
    TestDb, cloudgov_cmd, fresh_db_with_inventory, install_crypto_provider, ok, write_file,
};

const AT: &str = "2025-06-30T12:00:00+08:00";

/// Samples at 10:00 and 16:00 Shanghai on each of `days` days before 2025-06-30.
fn rows(vm: &str, days: u32, cpu: f64, mem: f64, disk: f64) -> String {
    let mut out = String::new();
    for d in 0..days {
        let day = 30 - d;
        for hour in [10, 16] {
            out.push_str(&format!(
                "{vm},2025-06-{day:02}T{hour}:00:00+08:00,{cpu},{mem},{disk}\n"
            ));
        }
    }
    out
}

const STAFF_CSRF: &str = "csrf-staff-7f3a";
const EDU_CSRF: &str = "csrf-edu-91bc";

fn staff() -> Viewer {
    Viewer {
        user_id: 1,
        username: "ops".into(),
        role: Role::Operator,
        scope: Scope::All,
        csrf: Some(STAFF_CSRF.into()),
    }
}

fn edu() -> Viewer {
    Viewer {
        user_id: 2,
        username: "edu-it".into(),
        role: Role::Department,
        scope: Scope::Department(DepartmentId::try_from("edu").expect("id")),
        csrf: Some(EDU_CSRF.into()),
    }
}

/// A staff account signed in with an API token: no CSRF token, so no forms.
fn staff_token() -> Viewer {
    Viewer {
        user_id: 3,
        username: "api".into(),
        role: Role::Admin,
        scope: Scope::All,
        csrf: None,
    }
}

struct Web {
    base: String,
    store: Store,
    client: reqwest::Client,
    _db: TestDb,
}

/// Picks the viewer named by the `x-test-viewer` header (the stand-in for the auth layer).
async fn insert_viewer(mut req: Request, next: Next) -> Response {
    let viewers: HashMap<String, Viewer> = [staff(), edu(), staff_token()]
        .into_iter()
        .map(|v| (v.username.clone(), v))
        .collect();
    let name = req
        .headers()
        .get("x-test-viewer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Some(v) = viewers.get(&name) {
        req.extensions_mut().insert(v.clone());
    }
    next.run(req).await
}

/// A fresh database with the shared inventory, ten days of samples and one `tick`, and the
/// dashboard served on a free port.
async fn seeded() -> Web {
    install_crypto_provider();
    let db = fresh_db_with_inventory().await;
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    // Low (downsize) but used: 6% CPU is above the unused-system rule's 5%.
    csv += &rows("idle-01", 10, 6.0, 20.0, 30.0);
    csv += &rows("hot-01", 10, 90.0, 90.0, 90.0);
    csv += &rows("edge-01", 10, 10.0, 60.0, 60.0);
    csv += &rows("new-01", 3, 5.0, 5.0, 5.0);
    ok(cloudgov_cmd(
        &db.url,
        &[
            "import",
            "samples",
            "--allow-history",
            &write_file(&db.dir, "s.csv", &csv),
        ],
    ));
    ok(cloudgov_cmd(&db.url, &["tick", "--at", AT]));
    let store = Store::connect(&db.url).await.expect("open store");
    let ctx = JobContext {
        store: store.clone(),
        rules: Arc::new(RuleSet::builtin().expect("rules")),
        calendar: Arc::new(Calendar::builtin().expect("calendar")),
        notifier: Arc::new(Notifier::without_smtp().expect("templates")),
        prices: cloudgov::core::review::rules::ReviewRules::builtin()
            .expect("review rules")
            .prices,
    };
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let state = AppState::new(ctx, leader, IngestLimits::default(), Default::default());
    let app = cloudgov::http::web::routes()
        .layer(axum::middleware::from_fn(insert_viewer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Web {
        base: format!("http://{addr}"),
        store,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        _db: db,
    }
}

impl Web {
    /// GET `path` as `viewer`, with extra request headers: (status, body, response headers).
    /// The one place that knows how a viewer is signed in.
    async fn get_with(
        &self,
        viewer: &Viewer,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("x-test-viewer", &viewer.username);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.text().await.expect("body"), headers)
    }

    async fn get_as(&self, viewer: &Viewer, path: &str) -> (u16, String) {
        let (status, body, _) = self.get_with(viewer, path, &[]).await;
        (status, body)
    }

    /// GET that must answer 200.
    async fn page(&self, viewer: &Viewer, path: &str) -> String {
        let (status, body) = self.get_as(viewer, path).await;
        assert_eq!(status, 200, "GET {path} as {}: {body}", viewer.username);
        body
    }

    async fn notices_of(&self, department: &str) -> Vec<NoticeRow> {
        self.store
            .notices()
            .await
            .expect("notices")
            .into_iter()
            .filter(|n| n.department == department)
            .collect()
    }
}

/// The verdict counts a viewer of `department` (or all) should see, from the stored findings.
async fn expected_counts(
    store: &Store,
    department: Option<&str>,
) -> HashMap<(String, String), i64> {
    let mut out = HashMap::new();
    for f in store.findings().await.expect("findings") {
        if department.is_none_or(|d| d == f.department) {
            *out.entry((f.resource.to_string(), f.verdict.to_string()))
                .or_insert(0) += 1;
        }
    }
    out
}

fn count_cell(body: &str, resource: &str, verdict: &str) -> i64 {
    let marker = format!("data-testid=\"verdict-count-{resource}-{verdict}\">");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in page"));
    body[at + marker.len()..]
        .split('<')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{marker} is not followed by a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_counts_match_findings_and_a_department_sees_only_its_own() {
    let web = seeded().await;
    for (viewer, department, vms) in [(staff(), None, 5), (edu(), Some("edu"), 3)] {
        let body = web.page(&viewer, "/").await;
        let expected = expected_counts(&web.store, department).await;
        assert!(expected.values().sum::<i64>() > 0, "seeded findings");
        for resource in ["cpu", "memory", "disk"] {
            for verdict in ["downsize", "expand", "ok", "insufficient_data"] {
                let want = expected
                    .get(&(resource.to_owned(), verdict.to_owned()))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    count_cell(&body, resource, verdict),
                    want,
                    "{resource} {verdict} as {}",
                    viewer.username
                );
            }
        }
        assert!(
            body.contains(&format!("data-testid=\"vm-total\">{vms}<")),
            "VM total as {}",
            viewer.username
        );
        // The department table lists only what the viewer may see.
        assert_eq!(
            body.contains("department-row-health"),
            department.is_none(),
            "health row as {}",
            viewer.username
        );
        assert!(body.contains("department-row-edu"));
    }
    // idle-01 (8 vCPU, health) and edge-01 (2 vCPU, edu) are CPU downsize candidates; the
    // waste counts them and staff see both, edu only its own.
    let staff_body = web.page(&staff(), "/").await;
    assert!(staff_body.contains("data-testid=\"waste-cpu-vms\">2<"));
    assert!(
        web.page(&edu(), "/")
            .await
            .contains("data-testid=\"waste-cpu-vms\">1<")
    );
    assert!(staff_body.contains("candidate-idle-01-cpu"));
    assert!(!web.page(&edu(), "/").await.contains("idle-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_user_gets_404_for_another_departments_pages() {
    let web = seeded().await;
    let health_notice = web.notices_of("health").await;
    let health_notice = health_notice.first().expect("a health notice").id;
    let foreign = [
        "/vms/idle-01".to_owned(),
        "/projects/his".to_owned(),
        "/departments/health".to_owned(),
        format!("/notices/{health_notice}"),
    ];
    for path in &foreign {
        let (status, body) = web.get_as(&edu(), path).await;
        assert_eq!(status, 404, "edu GET {path}: {body}");
        assert!(
            !body.contains("idle-01") && !body.contains("医院信息系统"),
            "{body}"
        );
        // Staff see the same pages.
        web.page(&staff(), path).await;
    }
    // The same answer as for things that do not exist.
    for path in [
        "/vms/nope",
        "/projects/nope",
        "/departments/nope",
        "/notices/999999",
    ] {
        assert_eq!(web.get_as(&staff(), path).await.0, 404, "{path}");
    }
    // Their own pages work, and lists hold only their rows.
    for path in [
        "/vms/edge-01",
        "/projects/enrol",
        "/departments/edu",
        "/network",
        "/reviews",
    ] {
        web.page(&edu(), path).await;
    }
    let notices = web.page(&edu(), "/notices?state=all").await;
    assert!(!notices.contains(&format!("notice-row-{health_notice}\"")));
    let staff_notices = web.page(&staff(), "/notices?state=all").await;
    assert!(staff_notices.contains(&format!("notice-row-{health_notice}\"")));
    let department = web.page(&edu(), "/departments/edu").await;
    assert!(department.contains("vm-row-edge-01") && !department.contains("vm-row-idle-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_page_draws_usage_with_the_rule_thresholds() {
    let web = seeded().await;
    let rules = RuleSet::builtin().expect("rules");
    let cpu = rules.defaults().cpu;
    let body = web
        .page(&staff(), "/vms/idle-01?days=30&end=2025-06-30")
        .await;
    assert_eq!(
        body.matches("<svg").count(),
        3,
        "cpu, memory and disk charts"
    );
    assert!(body.contains("data-testid=\"chart-cpu\""));
    assert!(
        body.contains(&format!(
            "class=\"threshold downsize\" data-threshold=\"{}\"",
            cpu.downsize.value()
        )),
        "CPU downsize threshold line"
    );
    assert!(body.contains(&format!(
        "class=\"threshold expand\" data-threshold=\"{}\"",
        cpu.expand.value()
    )));
    // Ten days of samples in the window: lines, not "no data".
    assert!(body.contains("class=\"line avg\""), "usage line");
    assert!(body.contains("finding-cpu"));
    // Today's window has no samples: the charts say so.
    let empty = web.page(&staff(), "/vms/idle-01?days=7").await;
    assert!(empty.contains("class=\"no-data\"") && !empty.contains("class=\"line avg\""));
    // A year comes from the rollups the tick wrote.
    let year = web
        .page(&staff(), "/vms/idle-01?days=365&end=2025-06-30")
        .await;
    assert!(year.contains("class=\"line avg\""), "rollup line");
    assert_eq!(web.get_as(&staff(), "/vms/idle-01?days=5").await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_english_switch_changes_the_strings() {
    let web = seeded().await;
    let zh = web.page(&staff(), "/").await;
    assert!(zh.contains("资源总览") && !zh.contains("Fleet overview"));
    let en = web.page(&staff(), "/?lang=en").await;
    assert!(en.contains("Fleet overview") && !en.contains("资源总览"));
    let (status, cookie_en, _) = web
        .get_with(&staff(), "/notices", &[("cookie", "lang=en")])
        .await;
    assert_eq!(status, 200);
    assert!(cookie_en.contains("Notices") && !cookie_en.contains("通知</h1>"));
    // The switch link sets the cookie and goes back, to local paths only.
    let (status, _, headers) = web
        .get_with(&staff(), "/lang/en?next=/vms/edge-01", &[])
        .await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/vms/edge-01");
    assert!(
        headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .starts_with("lang=en")
    );
    let (_, _, headers) = web
        .get_with(&staff(), "/lang/zh?next=//evil.example", &[])
        .await;
    assert_eq!(headers["location"], "/");
    let (_, _, headers) = web
        .get_with(&staff(), "/lang/en?next=/%09/evil.example", &[])
        .await;
    assert_eq!(
        headers["location"], "/",
        "a tab would make it //evil.example"
    );
    assert_eq!(web.get_as(&staff(), "/lang/fr").await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_carry_the_csrf_token_and_follow_the_role() {
    let web = seeded().await;
    let edu_notice = web.notices_of("edu").await;
    let edu_notice = edu_notice.first().map(|n| n.id);
    let health_notice = web.notices_of("health").await[0].id;

    let staff_page = web
        .page(&staff(), &format!("/notices/{health_notice}"))
        .await;
    for form in ["complete-form", "contest-form"] {
        assert!(
            staff_page.contains(&format!("data-testid=\"{form}\"")),
            "{form}"
        );
    }
    assert!(staff_page.contains(&format!("name=\"csrf\" value=\"{STAFF_CSRF}\"")));
    assert!(staff_page.contains("data-testid=\"logout-form\""));
    assert!(staff_page.contains("data-testid=\"timeline-event_issued\""));
    // Notices are approved at once under the built-in rules: no approve form.
    assert!(!staff_page.contains("approve-form"));

    if let Some(id) = edu_notice {
        let own = web.page(&edu(), &format!("/notices/{id}")).await;
        assert!(own.contains("data-testid=\"contest-form\""));
        assert!(!own.contains("complete-form"), "only staff mark done");
        assert!(own.contains(&format!("value=\"{EDU_CSRF}\"")));
    }

    // hot-01 is not deployed: both staff and its department may confirm it.
    let vm = web.page(&staff(), "/vms/hot-01").await;
    assert!(vm.contains("data-testid=\"deployed-form\""));
    assert!(vm.contains("data-testid=\"release-request-form\""));
    let edge = web.page(&edu(), "/vms/edge-01").await;
    assert!(edge.contains("data-testid=\"deployed-form\"") && edge.contains(EDU_CSRF));

    // Registry edits are staff-only.
    assert!(
        web.page(&staff(), "/network")
            .await
            .contains("data-testid=\"registry-form\"")
    );
    assert!(!web.page(&edu(), "/network").await.contains("registry-form"));

    // Without a CSRF token (API token) no form is rendered at all.
    let token_page = web
        .page(&staff_token(), &format!("/notices/{health_notice}"))
        .await;
    assert!(
        !token_page.contains("<form"),
        "no forms without a CSRF token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notice_lists_filter_by_state_and_reject_unknown_filters() {
    let web = seeded().await;
    let open = web.page(&staff(), "/notices").await;
    let any = web.notices_of("health").await[0].id;
    assert!(open.contains(&format!("notice-row-{any}\"")));
    let closed = web.page(&staff(), "/notices?state=closed").await;
    assert!(!closed.contains(&format!("notice-row-{any}\"")));
    assert_eq!(web.get_as(&staff(), "/notices?state=bogus").await.0, 400);
    let css = web.page(&staff(), "/static/cloudgov.css").await;
    assert!(css.contains("svg .threshold"));
}

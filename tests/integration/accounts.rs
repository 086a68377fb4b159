//! Accounts through HTTP: sign-in with cookies and CSRF, API tokens, agent tokens that only
//! ingest, department scoping of the API and exports, actions with their audit entries, the
//! OpenAPI document, and the `cloudgov user` commands.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{INVENTORY, TestApp, ok, spawn_app, write_file};
use cloudgov::core::access::Role;

/// Two departments with a notice each: health's `idle-01` and edu's `edge-01` are idle.
async fn app_with_notices() -> TestApp {
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", INVENTORY),
    ]));
    // Low (downsize notices) but used: 8% CPU is above the unused-system rule's 5%.
    let mut csv = String::from("vm,ts,cpu_pct,mem_pct,disk_pct\n");
    for vm in ["idle-01", "edge-01"] {
        for day in 17..=26 {
            csv.push_str(&format!("{vm},2025-09-{day}T10:00:00+08:00,8,10,20\n"));
        }
    }
    ok(app.cloudgov(&[
        "import",
        "samples",
        "--allow-history",
        &write_file(&app.db.dir, "s.csv", &csv),
    ]));
    ok(app.cloudgov(&["tick", "--at", "2025-09-26T16:00:00+08:00"]));
    app
}

pub(crate) fn client() -> reqwest::Client {
    crate::helpers::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `name=value` of a `Set-Cookie` header named `name`, with its attributes.
pub(crate) fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..start + html[start..].find('"').expect("end quote")].to_owned()
}

/// Signs in through the form; returns the session cookie (`name=value`).
pub(crate) async fn sign_in(app: &TestApp, user: &str, password: &str) -> String {
    let c = client();
    let page = c
        .get(app.url("/login?next=/api/v1/me"))
        .send()
        .await
        .expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    let login_cookie = set_cookie(&page, "cloudgov_login_csrf").expect("login CSRF cookie");
    let login_cookie = login_cookie.split(';').next().expect("pair").to_owned();
    let html = page.text().await.expect("html");
    let csrf = hidden(&html, "csrf");
    let resp = c
        .post(app.url("/login"))
        .header(COOKIE, &login_cookie)
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf", csrf.as_str()),
            ("next", "/api/v1/me"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/api/v1/me");
    let session = set_cookie(&resp, "cloudgov_session").expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain HTTP: no Secure flag ({session})"
    );
    session.split(';').next().expect("pair").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_csrf_and_sign_out() {
    let app = app_with_notices().await;
    let password = app.add_user("alice", Role::Operator, None).await;
    let c = client();

    // Without a session: pages redirect to sign-in, the API answers 401 in JSON.
    let page = c.get(app.url("/reviews/2025/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/login?next=/reviews/2025/");
    let api = c
        .get(app.url("/api/v1/findings"))
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let body: Value = api.json().await.expect("json");
    assert_eq!(body["error"], "unauthenticated");

    // A wrong password, and a form without its CSRF cookie, do not sign in.
    let login = c.get(app.url("/login")).send().await.expect("login page");
    let csrf = hidden(&login.text().await.expect("html"), "csrf");
    let no_cookie = c
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", password.as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert!(set_cookie(&no_cookie, "cloudgov_session").is_none());
    assert!(
        no_cookie.headers()[LOCATION]
            .to_str()
            .expect("ascii")
            .contains("error=")
    );

    let page = c.get(app.url("/login")).send().await.expect("login page");
    let cookie = set_cookie(&page, "cloudgov_login_csrf").expect("cookie");
    let csrf = hidden(&page.text().await.expect("html"), "csrf");
    let wrong = c
        .post(app.url("/login"))
        .header(COOKIE, cookie.split(';').next().expect("pair"))
        .form(&[
            ("username", "alice"),
            ("password", "not her password"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert!(set_cookie(&wrong, "cloudgov_session").is_none());
    assert!(
        wrong.headers()[LOCATION]
            .to_str()
            .expect("ascii")
            .contains("error=")
    );

    let session = sign_in(&app, "alice", &password).await;
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(
        me,
        json!({"username": "alice", "role": "operator", "department": null})
    );

    // A state-changing API call with the cookie needs X-CSRF-Token; the notice is untouched.
    let notices = app
        .get_json(&app.staff_token().await, "/api/v1/notices")
        .await;
    let id = notices[0]["id"].as_i64().expect("id");
    let forged = c
        .post(app.url(&format!("/api/v1/notices/{id}/contest")))
        .header(COOKIE, &session)
        .json(&json!({"reason": "forged"}))
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The same through a form with a wrong token.
    let forged_form = c
        .post(app.url(&format!("/notices/{id}/contest")))
        .header(COOKIE, &session)
        .form(&[("csrf", "wrong"), ("reason", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged_form.status(), StatusCode::FORBIDDEN);
    assert!(app.store.contests(id).await.expect("contests").is_empty());

    // Sign out ends the session for good.
    let csrf = app_session_csrf(&app, &session).await;
    let out = c
        .post(app.url("/logout"))
        .header(COOKIE, &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = c
        .get(app.url("/api/v1/me"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("me");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    let audit = app.store.audit_log(10).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.action == "login" && a.username == "alice")
    );
    assert!(
        audit
            .iter()
            .any(|a| a.action == "login_failed" && a.username == "alice")
    );
    app.stop().await;
}

/// The CSRF token of a live session, as the pages put it in forms.
async fn app_session_csrf(app: &TestApp, session: &str) -> String {
    let value = session.split_once('=').expect("pair").1;
    app.store
        .session_principal(
            &cloudgov::core::token::hash(value),
            chrono::Utc::now().timestamp(),
        )
        .await
        .expect("lookup")
        .and_then(|p| p.csrf)
        .expect("session has a CSRF token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_users_see_and_act_on_their_own_department_only() {
    let app = app_with_notices().await;
    app.add_user("health-user", Role::Department, Some("health"))
        .await;
    let health = app.api_token("health-user").await;
    let staff = app.staff_token().await;
    let c = client();

    let all = app.get_json(&staff, "/api/v1/notices").await;
    let mine = app.get_json(&health, "/api/v1/notices").await;
    let departments = |v: &Value| -> Vec<String> {
        let mut d: Vec<String> = v
            .as_array()
            .expect("array")
            .iter()
            .map(|n| n["department"].as_str().expect("department").to_owned())
            .collect();
        d.dedup();
        d.sort();
        d.dedup();
        d
    };
    assert_eq!(departments(&all), ["edu", "health"]);
    assert_eq!(departments(&mine), ["health"]);
    for path in ["/api/v1/findings", "/api/v1/deadlines"] {
        let rows = app.get_json(&health, path).await;
        assert!(!rows.as_array().expect("array").is_empty(), "{path}");
        assert_eq!(departments(&rows), ["health"], "{path}");
    }

    let edu_notice = all
        .as_array()
        .expect("array")
        .iter()
        .find(|n| n["department"] == "edu")
        .expect("edu notice")["id"]
        .as_i64()
        .expect("id");
    let health_notice = mine[0]["id"].as_i64().expect("id");

    // Another department's notice and VM are "not found", by URL and by action.
    let get = c
        .get(app.url(&format!("/api/v1/notices/{edu_notice}")))
        .bearer_auth(&health)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
    for (path, body) in [
        (
            format!("/api/v1/notices/{edu_notice}/contest"),
            json!({"reason": "not ours"}),
        ),
        (
            "/api/v1/vms/edge-01/deployed".to_owned(),
            json!({"on": "2025-09-01"}),
        ),
    ] {
        let resp = c
            .post(app.url(&path))
            .bearer_auth(&health)
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let e: Value = resp.json().await.expect("json");
        assert_eq!(e["error"], "not_found");
    }
    assert!(
        app.store
            .contests(edu_notice)
            .await
            .expect("contests")
            .is_empty()
    );

    // Their own: contest with a reason, confirm deployment; staff-only actions are refused.
    let contest = c
        .post(app.url(&format!("/api/v1/notices/{health_notice}/contest")))
        .bearer_auth(&health)
        .json(&json!({"reason": "month-end batch jobs need the headroom"}))
        .send()
        .await
        .expect("contest");
    assert_eq!(contest.status(), StatusCode::OK);
    let one = app
        .get_json(&health, &format!("/api/v1/notices/{health_notice}"))
        .await;
    assert_eq!(
        one["contests"][0]["reason"],
        "month-end batch jobs need the headroom"
    );
    assert_eq!(one["contests"][0]["username"], "health-user");
    let empty = c
        .post(app.url(&format!("/api/v1/notices/{health_notice}/contest")))
        .bearer_auth(&health)
        .json(&json!({"reason": "   "}))
        .send()
        .await
        .expect("contest");
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let deployed = c
        .post(app.url("/api/v1/vms/hot-01/deployed"))
        .bearer_auth(&health)
        .json(&json!({"on": "2025-01-08"}))
        .send()
        .await
        .expect("deployed");
    assert_eq!(deployed.status(), StatusCode::OK);
    let release = c
        .post(app.url("/api/v1/vms/idle-01/release-confirm"))
        .bearer_auth(&health)
        .json(&json!({"on": "2025-10-01"}))
        .send()
        .await
        .expect("release");
    assert_eq!(release.status(), StatusCode::FORBIDDEN);
    let complete = c
        .post(app.url(&format!("/api/v1/notices/{health_notice}/complete")))
        .bearer_auth(&health)
        .json(&json!({"on": "2025-10-01"}))
        .send()
        .await
        .expect("complete");
    assert_eq!(complete.status(), StatusCode::FORBIDDEN);

    // Staff complete it; the audit log has who did what.
    let complete = c
        .post(app.url(&format!("/api/v1/notices/{health_notice}/complete")))
        .bearer_auth(&staff)
        .json(&json!({"on": "2025-10-09"}))
        .send()
        .await
        .expect("complete");
    assert_eq!(complete.status(), StatusCode::OK);
    let audit = app.get_json(&staff, "/api/v1/audit").await;
    let actions: Vec<(String, String)> = audit
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["username"].as_str().unwrap_or("").to_owned(),
                a["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("health-user", "contest_notice"),
        ("health-user", "mark_deployed"),
        ("test-admin", "complete_notice"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {actions:?}"
        );
    }
    let forbidden = c
        .get(app.url("/api/v1/audit"))
        .bearer_auth(&health)
        .send()
        .await
        .expect("audit");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    // Exports are scoped too, and start with a BOM for spreadsheet programs.
    let csv = c
        .get(app.url("/api/v1/export/notices.csv"))
        .bearer_auth(&health)
        .send()
        .await
        .expect("csv")
        .bytes()
        .await
        .expect("bytes");
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]));
    let text = String::from_utf8(csv[3..].to_vec()).expect("utf-8");
    assert!(
        text.lines().count() > 1 && text.lines().skip(1).all(|l| l.contains(",health,")),
        "{text}"
    );
    assert!(!text.contains("edge-01"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_tokens_only_ingest_and_cli_tokens_can_be_revoked() {
    let app = app_with_notices().await;
    let agent = ok(app.cloudgov(&["vm", "issue-token", "agent-01"]));
    let agent = agent
        .split_whitespace()
        .find(|w| w.starts_with("cgv_"))
        .expect("agent token");
    let c = client();
    let resp = c
        .get(app.url("/api/v1/findings"))
        .bearer_auth(agent)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("only ingest"),
        "{body}"
    );
    let unknown = c
        .get(app.url("/api/v1/findings"))
        .bearer_auth("cgu_nope")
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    // The CLI adds a user (password from the environment) and issues a token that works.
    let add = std::process::Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args([
            "--db",
            &app.db.url,
            "user",
            "add",
            "edu-user",
            "--role",
            "department",
            "--department",
            "edu",
        ])
        .env("CLOUDGOV_PASSWORD", "a long enough password")
        .output()
        .expect("run");
    ok(add);
    let bad = app.cloudgov(&["user", "add", "x", "--role", "department"]);
    assert!(!bad.status.success());
    let token = ok(app.cloudgov(&["user", "token", "edu-user", "--name", "script"]));
    let token = token.trim();
    assert!(token.starts_with("cgu_"));
    let me = app.get_json(token, "/api/v1/me").await;
    assert_eq!(me["department"], "edu");
    let list = ok(app.cloudgov(&["user", "list"]));
    assert!(
        list.contains("edu-user") && list.contains("department"),
        "{list}"
    );
    // A new password ends the API tokens made with the old one.
    let token2 = ok(app.cloudgov(&["user", "token", "edu-user", "--name", "second"]));
    let reset = std::process::Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args(["--db", &app.db.url, "user", "set-password", "edu-user"])
        .env("CLOUDGOV_PASSWORD", "another long password")
        .output()
        .expect("run");
    ok(reset);
    let revoked = c
        .get(app.url("/api/v1/me"))
        .bearer_auth(token2.trim())
        .send()
        .await
        .expect("get");
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let token = ok(app.cloudgov(&["user", "token", "edu-user", "--name", "third"]));
    let token = token.trim();
    assert_eq!(
        app.get_json(token, "/api/v1/me").await["username"],
        "edu-user"
    );
    ok(app.cloudgov(&["user", "disable", "edu-user"]));
    let after = c
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_throttled_after_repeated_failures() {
    let app = spawn_app().await;
    app.add_user("bob", Role::Admin, None).await;
    let c = client();
    let mut statuses = Vec::new();
    let mut last = (String::new(), false, String::new());
    for _ in 0..(cloudgov::http::auth::LOGIN_FAILURES_ALLOWED + 1) {
        let page = c.get(app.url("/login")).send().await.expect("page");
        let cookie = set_cookie(&page, "cloudgov_login_csrf").expect("cookie");
        let csrf = hidden(&page.text().await.expect("html"), "csrf");
        let resp = c
            .post(app.url("/login"))
            .header(COOKIE, cookie.split(';').next().expect("pair"))
            .form(&[
                ("username", "bob"),
                ("password", "wrong password"),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await
            .expect("post");
        statuses.push(resp.status());
        last = (
            resp.headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            resp.headers().contains_key(reqwest::header::RETRY_AFTER),
            resp.text().await.expect("body"),
        );
    }
    assert!(
        statuses[..statuses.len() - 1]
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER)
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // A browser gets the sign-in page again, with the reason, not JSON.
    let (content_type, retry_after, body) = last;
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(retry_after, "429 carries Retry-After");
    assert!(
        body.contains("登录失败次数过多") && body.contains("name=\"username\""),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_covers_every_api_route() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    // Every route the API serves (src/api), with its methods.
    for (path, method) in [
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/api/v1/status", "get"),
        ("/api/v1/ingest", "post"),
        ("/api/v1/findings", "get"),
        ("/api/v1/notices", "get"),
        ("/api/v1/notices/{id}", "get"),
        ("/api/v1/agents", "get"),
        ("/api/v1/deadlines", "get"),
        ("/api/v1/alerts", "get"),
        ("/api/v1/network/findings", "get"),
        ("/api/v1/network/registry", "get"),
        ("/api/v1/network/registry", "put"),
        ("/api/v1/network/registry/{ip}", "delete"),
        ("/api/v1/reviews/{year}", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/me", "get"),
        ("/api/v1/export/findings.csv", "get"),
        ("/api/v1/export/notices.csv", "get"),
        ("/api/v1/notices/{id}/approve", "post"),
        ("/api/v1/notices/{id}/complete", "post"),
        ("/api/v1/notices/{id}/contest", "post"),
        ("/api/v1/notices/{id}/decide", "post"),
        ("/api/v1/vms/{id}/deployed", "post"),
        ("/api/v1/vms/{id}/release-request", "post"),
        ("/api/v1/vms/{id}/release-confirm", "post"),
        ("/api/v1/projects/{id}/filed", "post"),
        ("/api/v1/requests", "get"),
        ("/api/v1/requests", "post"),
        ("/api/v1/requests/{id}", "get"),
        ("/api/v1/requests/{id}/decide", "post"),
        ("/api/v1/requests/{id}/deliver", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        paths.len(),
        31,
        "a route was added or removed: update this list"
    );
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    for s in ["api_token", "agent_token", "session"] {
        assert!(schemes.contains_key(s), "{s}");
    }
    // Errors are documented with their JSON shape.
    assert!(doc["components"]["schemas"]["ErrorBody"]["properties"]["error"].is_object());
    let ui = reqwest::get(app.url("/api/docs/")).await.expect("get");
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.expect("html").contains("swagger"));
    app.stop().await;
}

//! Sign-in and sign-out, the HTML forms' POST handlers, the audit page and the review report
//! pages. Every form handler takes [`CsrfForm`], which checks the session's CSRF token first.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::core::access::Viewer;
use crate::http::auth::{self, CsrfForm, HasCsrf};
use crate::http::web::Lang;
use crate::http::{ApiError, AppState};
use crate::jobs::actions::{self, ActionError, RegistryEdit, parse_day, parse_vm};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/logout", post(logout))
        .route("/audit", get(audit_page))
        .route("/notices/{id}/approve", post(approve))
        .route("/notices/{id}/complete", post(complete))
        .route("/notices/{id}/contest", post(contest))
        .route("/notices/{id}/decide", post(decide))
        .route("/requests", post(super::requests::submit))
        .route("/requests/{id}/decide", post(super::requests::decide))
        .route("/requests/{id}/deliver", post(super::requests::deliver))
        .route("/vms/{id}/deployed", post(deployed))
        .route("/vms/{id}/release-request", post(release_request))
        .route("/vms/{id}/release-confirm", post(release_confirm))
        .route("/network/registry", post(registry_set))
        .route("/network/registry/remove", post(registry_remove))
        .route("/reviews/{year}/", get(review_summary_page))
        .route("/reviews/{year}/{file}", get(review_file))
}

fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// The reasons a sign-in page may show (`/login?error=CODE`); any other value shows nothing.
const LOGIN_ERRORS: &[&str] = &["expired", "wrong", "throttled"];

/// The sign-in page. Its CSRF token is also set as a cookie (there is no session yet), and the
/// form must send both (double submit).
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    lang: Lang,
    Query(q): Query<LoginQuery>,
) -> Result<Response, Response> {
    let next = auth::safe_next(q.next.as_deref()).to_owned();
    login_form_page(&state, &headers, lang, &next, q.error.as_deref()).await
}

/// The sign-in form going back to `next`, with the reason of the last failure if it is known.
async fn login_form_page(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    next: &str,
    error: Option<&str>,
) -> Result<Response, Response> {
    let csrf = auth::new_secret("").map_err(|e| ApiError::Internal(e).into_response())?;
    let secure = auth::over_https(state, headers);
    let path = format!("/login?next={}", auth::percent_encode(next));
    let page = crate::http::web::render_page(
        lang,
        "login.html",
        minijinja::context! {
            ..crate::http::web::base_context(None, "", &path),
            ..minijinja::context! {
                csrf => csrf.clone(),
                next => next,
                error => error.filter(|e| LOGIN_ERRORS.contains(e)),
            }
        },
    )
    .map_err(IntoResponse::into_response)?;
    let mut response = html(StatusCode::OK, page);
    if let Ok(v) = auth::set_cookie(auth::LOGIN_CSRF_COOKIE, &csrf, 1800, "/login", secure).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// `POST /login`: checks the form's CSRF against its cookie, then the password (throttled per
/// user name), and starts a session.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    lang: Lang,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, ApiError> {
    let next = auth::safe_next(form.next.as_deref()).to_owned();
    // The reason travels as a code; the sign-in page shows its text in the page's language.
    let retry = |error: &str| {
        Redirect::to(&format!(
            "/login?next={}&error={error}",
            auth::percent_encode(&next)
        ))
        .into_response()
    };
    if !auth::csrf_matches(
        auth::cookie(&headers, auth::LOGIN_CSRF_COOKIE),
        Some(&form.csrf),
    ) {
        return Ok(retry("expired"));
    }
    let now = chrono::Utc::now().timestamp();
    let username = form.username.trim();
    // Names no account can have are refused before they reach the throttle or the audit log.
    let plausible = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !plausible {
        return Ok(retry("wrong"));
    }
    if !state.login_throttle.try_attempt(username, now) {
        tracing::warn!(user = %username, "sign-in throttled");
        // A browser gets the sign-in page with the reason (429, Retry-After), not JSON.
        let mut response = login_form_page(&state, &headers, lang, &next, Some("throttled"))
            .await
            .unwrap_or_else(|r| r);
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(v) = header::HeaderValue::from_str(&auth::LOGIN_WINDOW_SECS.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let Some(principal) =
        auth::check_credentials(&state.ctx.store, username, &form.password).await?
    else {
        state
            .ctx
            .store
            .audit(None, username, "login_failed", "session", "", None, now)
            .await?;
        return Ok(retry("wrong"));
    };
    state.login_throttle.succeeded(username);
    let session = auth::start_session(&state.ctx.store, &principal).await?;
    state
        .ctx
        .store
        .audit(
            Some(principal.user_id),
            username,
            "login",
            "session",
            "",
            None,
            now,
        )
        .await?;
    let secure = auth::over_https(&state, &headers);
    let mut response = Redirect::to(&next).into_response();
    for cookie in [
        auth::set_cookie(
            auth::SESSION_COOKIE,
            &session,
            auth::SESSION_HOURS * 3600,
            "/",
            secure,
        ),
        auth::set_cookie(auth::LOGIN_CSRF_COOKIE, "", 0, "/login", secure),
    ] {
        if let Ok(v) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

impl HasCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /logout`: ends the session.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(viewer, _): CsrfForm<CsrfOnly>,
) -> Result<Response, ApiError> {
    if let Some(session) = auth::cookie(&headers, auth::SESSION_COOKIE) {
        state
            .ctx
            .store
            .delete_session(&crate::core::token::hash(session))
            .await?;
    }
    tracing::info!(user = %viewer.username, "signed out");
    let mut response = Redirect::to("/login").into_response();
    let secure = auth::over_https(&state, &headers);
    if let Ok(v) = auth::set_cookie(auth::SESSION_COOKIE, "", 0, "/", secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct DayForm {
    csrf: String,
    on: String,
}

impl HasCsrf for DayForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ReasonForm {
    csrf: String,
    reason: String,
}

impl HasCsrf for ReasonForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct DecisionForm {
    csrf: String,
    /// `uphold` or `withdraw`.
    decision: String,
    reason: String,
}

impl HasCsrf for DecisionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ReleaseForm {
    csrf: String,
    on: String,
    #[serde(default)]
    reason: String,
}

impl HasCsrf for ReleaseForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct RegistryForm {
    csrf: String,
    ip: String,
    mac: String,
    department: String,
    holder: String,
    #[serde(default)]
    registered_on: Option<String>,
    #[serde(default)]
    note: String,
    /// A checkbox: present ("on") when ticked.
    #[serde(default)]
    gateway: Option<String>,
}

impl HasCsrf for RegistryForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct IpForm {
    csrf: String,
    ip: String,
}

impl HasCsrf for IpForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// After an action: back to the page of what was acted on, with the outcome's code (the page
/// shows its text in its own language; no free text travels in the URL).
pub(super) fn back_to(path: &str, outcome: Result<actions::Outcome, ActionError>) -> Response {
    match outcome {
        Ok(outcome) => Redirect::to(&format!("{path}?done={}", outcome.code)).into_response(),
        Err(e) => action_error_page(e),
    }
}

/// A failed action as a page that says what is wrong.
pub fn action_error_page(e: ActionError) -> Response {
    let api: ApiError = e.into();
    let message = api.to_string();
    let status = api.into_response().status();
    html(
        status,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>cloudgov</title></head><body>\
             <p role=\"alert\" data-testid=\"action-error\">{}</p><p><a href=\"/\">cloudgov</a></p></body></html>",
            crate::core::svg::escape(&message)
        ),
    )
}

async fn approve(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    CsrfForm(viewer, _): CsrfForm<CsrfOnly>,
) -> Response {
    back_to(
        &format!("/notices/{id}"),
        actions::approve_notice(&s.ctx, &viewer, id).await,
    )
}

async fn complete(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    CsrfForm(viewer, form): CsrfForm<DayForm>,
) -> Response {
    let outcome = async {
        let on = parse_day("on", &form.on)?;
        actions::complete_notice(&s.ctx, &viewer, id, on).await
    }
    .await;
    back_to(&format!("/notices/{id}"), outcome)
}

async fn contest(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    CsrfForm(viewer, form): CsrfForm<ReasonForm>,
) -> Response {
    back_to(
        &format!("/notices/{id}"),
        actions::contest_notice(&s.ctx, &viewer, id, &form.reason).await,
    )
}

async fn decide(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    CsrfForm(viewer, form): CsrfForm<DecisionForm>,
) -> Response {
    let outcome = async {
        let decision = actions::parse_decision(&form.decision)?;
        actions::decide_contest(&s.ctx, &viewer, id, decision, &form.reason).await
    }
    .await;
    back_to(&format!("/notices/{id}"), outcome)
}

async fn deployed(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(viewer, form): CsrfForm<DayForm>,
) -> Response {
    let outcome = async {
        let (vm, on) = (parse_vm(&id)?, parse_day("on", &form.on)?);
        actions::mark_deployed(&s.ctx, &viewer, &vm, on).await
    }
    .await;
    back_to(&format!("/vms/{id}"), outcome)
}

async fn release_request(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(viewer, form): CsrfForm<ReleaseForm>,
) -> Response {
    let outcome = async {
        let (vm, on) = (parse_vm(&id)?, parse_day("on", &form.on)?);
        actions::request_release(&s.ctx, &viewer, &vm, on, &form.reason).await
    }
    .await;
    back_to(&format!("/vms/{id}"), outcome)
}

async fn release_confirm(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(viewer, form): CsrfForm<DayForm>,
) -> Response {
    let outcome = async {
        let (vm, on) = (parse_vm(&id)?, parse_day("on", &form.on)?);
        actions::confirm_release(&s.ctx, &viewer, &vm, on).await
    }
    .await;
    back_to(&format!("/vms/{id}"), outcome)
}

async fn registry_set(
    State(s): State<AppState>,
    CsrfForm(viewer, form): CsrfForm<RegistryForm>,
) -> Response {
    let edit = RegistryEdit {
        ip: form.ip,
        mac: form.mac,
        department: form.department,
        holder: form.holder,
        registered_on: form.registered_on,
        note: form.note,
        gateway: form.gateway.is_some(),
    };
    back_to(
        "/network",
        actions::set_registry(&s.ctx, &viewer, &edit).await,
    )
}

async fn registry_remove(
    State(s): State<AppState>,
    CsrfForm(viewer, form): CsrfForm<IpForm>,
) -> Response {
    back_to(
        "/network",
        actions::remove_registry(&s.ctx, &viewer, &form.ip).await,
    )
}

/// `GET /audit`: the newest staff and department actions (center staff).
async fn audit_page(
    State(s): State<AppState>,
    viewer: Viewer,
    lang: Lang,
    uri: axum::http::Uri,
) -> Result<Response, Response> {
    if !viewer.is_staff() {
        return Err(crate::http::web::WebError::NotFound.into_response());
    }
    let rows = s
        .ctx
        .store
        .audit_log(500)
        .await
        .map_err(|e| ApiError::Internal(e).into_response())?;
    // Target and detail in the page's language, from each entry's facts.
    let rows: Vec<minijinja::Value> = rows
        .iter()
        .map(|r| {
            let (target, detail) = crate::http::web::describe::audit(lang, r);
            minijinja::context! {
                target => target,
                detail => detail,
                ..minijinja::Value::from_serialize(r)
            }
        })
        .collect();
    let path = uri.path_and_query().map_or("/audit", |p| p.as_str());
    let page = crate::http::web::render_page(
        lang,
        "audit.html",
        minijinja::context! {
            ..crate::http::web::base_context(Some(&viewer), "audit", path),
            ..minijinja::context! { rows => rows }
        },
    )
    .map_err(IntoResponse::into_response)?;
    Ok(html(StatusCode::OK, page))
}

async fn stored_reviews(
    state: &AppState,
    viewer: &Viewer,
    year: i32,
) -> Result<Vec<crate::core::review::ProjectReview>, ApiError> {
    Ok(crate::http::stored_review_values(state, viewer, year)
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// `GET /reviews/YYYY/`: the summary page of a stored review (the viewer's projects).
async fn review_summary_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(year): Path<i32>,
) -> Result<Response, ApiError> {
    let reviews = stored_reviews(&state, &viewer, year).await?;
    let page = crate::jobs::review::report::summary_html(year, &reviews, |r| {
        format!("{}.html", r.project)
    })
    .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    Ok(html(StatusCode::OK, page))
}

/// `GET /reviews/YYYY/PROJECT.html` and `PROJECT-utilisation.png`.
async fn review_file(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((year, file)): Path<(i32, String)>,
) -> Result<Response, ApiError> {
    let reviews = stored_reviews(&state, &viewer, year).await?;
    let not_found = || ApiError::NotFound(format!("no review file {file} for {year}"));
    if let Some(project) = file.strip_suffix(".html") {
        let review = reviews
            .iter()
            .find(|r| r.project == project)
            .ok_or_else(not_found)?;
        let page = crate::jobs::review::report::project_html(
            review,
            &format!("{project}-utilisation.png"),
        )
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        return Ok(html(StatusCode::OK, page));
    }
    let project = file
        .strip_suffix("-utilisation.png")
        .ok_or_else(not_found)?;
    let review = reviews
        .iter()
        .find(|r| r.project == project)
        .ok_or_else(not_found)?;
    let fonts = state.ctx.notifier.fonts();
    let labels = fonts.labels(crate::core::chart::Labels::Chinese);
    let png = crate::jobs::review::report::utilisation_chart_png(
        review,
        &crate::jobs::review::report::rules_of(&state.ctx.rules, review),
        fonts,
        labels,
    )
    .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

//! HTTP API (axum): agent ingest, health, read endpoints scoped to the viewer's department,
//! actions, sign-in, and the OpenAPI document.
//!
//! Errors leave as JSON `{"error": code, "message": text}`; internal details are logged, never sent.
//! `read`: GET endpoints and CSV exports. `act`: JSON actions. `forms`: sign-in and the HTML
//! forms' POST handlers. `openapi`: the document (utoipa) and Swagger UI.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{TimeDelta, Utc};
use cloudgov_agent::wire::{AddressConfig, IngestAck, IngestBatch, Report};
use serde_json::json;

use crate::core::access::Viewer;
use crate::core::calendar::shanghai_day;
use crate::core::details::AlertFacts;
use crate::core::domain::{ArrivalWindow, MacAddr, Percent};
use crate::core::network::SightingKind;
use crate::core::samples::SampleRow;
use crate::core::token;
use crate::http::metrics::IngestCounters;
use crate::jobs::JobContext;
use crate::store::{SightingRow, StoreError, StoredReport};

mod act;
pub mod auth;
pub mod edge;
pub mod metrics;
mod openapi;
mod read;
pub use read::stored_review_values;
pub mod tls;
pub mod web;

/// Largest accepted request body; a day of 60 s reports with many interfaces fits well inside.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most reports in one batch.
pub const MAX_REPORTS_PER_BATCH: usize = 2000;

/// Longest interface name, MAC text or filesystem type a report may carry.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest path (mount point, device, configuration file) a report may carry.
pub const MAX_PATH_BYTES: usize = 4096;

/// Limits on what one agent may send.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// Requests per VM per minute; more get 429 with Retry-After.
    pub requests_per_minute: u32,
    /// A clock further off than this raises a `clock_skew` alert.
    pub max_clock_skew: TimeDelta,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            requests_per_minute: 120,
            max_clock_skew: TimeDelta::minutes(2),
        }
    }
}

/// Per-VM request counts in fixed one-minute windows.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: std::sync::Mutex<std::collections::HashMap<i64, (i64, u32)>>,
}

impl RateLimiter {
    /// `Err(seconds to wait)` when `vm_key` has used up this minute.
    fn check(&self, vm_key: i64, now: chrono::DateTime<Utc>, limit: u32) -> Result<(), i64> {
        let minute = now.timestamp().div_euclid(60);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = windows.entry(vm_key).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= limit {
            return Err(60 - now.timestamp().rem_euclid(60));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[derive(Clone)]
pub struct AppState {
    pub ctx: JobContext,
    pub counters: std::sync::Arc<IngestCounters>,
    /// Whether this replica leads (runs the scheduled jobs and the e-mail sender).
    pub leader: tokio::sync::watch::Receiver<bool>,
    pub limits: IngestLimits,
    pub rate: std::sync::Arc<RateLimiter>,
    pub web: WebSettings,
    pub login_throttle: std::sync::Arc<crate::http::auth::LoginThrottle>,
}

/// How the daemon is reached by browsers.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebSettings {
    /// The daemon serves HTTPS itself: session cookies get `Secure`.
    pub https: bool,
}

impl AppState {
    pub fn new(
        ctx: JobContext,
        leader: tokio::sync::watch::Receiver<bool>,
        limits: IngestLimits,
        web: WebSettings,
    ) -> AppState {
        AppState {
            ctx,
            counters: Default::default(),
            leader,
            limits,
            rate: Default::default(),
            web,
            login_throttle: Default::default(),
        }
    }
}

/// Every error leaves as this JSON body.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `unauthenticated`, `forbidden`, `bad_request`,
    /// `invalid_report`, `unprocessable`, `payload_too_large`, `unsupported_media_type`,
    /// `method_not_allowed`, `not_found`, `rate_limited`, `internal`, `unavailable`.
    pub error: String,
    /// What is wrong, for people.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown agent token")]
    Unauthorized,
    #[error("sign in, or send a user's API token as `Authorization: Bearer cgu_...`")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// A request a person made that cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("{0}")]
    NotFound(String),
    #[error("too many requests: retry in {0} s")]
    TooManyRequests(i64),
    #[error("{}", internal_message(.0))]
    Internal(#[from] StoreError),
}

/// What a client is told of a store failure: that the database is unavailable (retry), or
/// only "internal error" (details go to the log, never to the client).
fn internal_message(e: &StoreError) -> &'static str {
    if e.is_unavailable() {
        "the database is unavailable: retry after the Retry-After seconds"
    } else {
        "internal error"
    }
}

/// Seconds a client waits before retrying when the database is unavailable.
pub const UNAVAILABLE_RETRY_AFTER_SECS: i64 = 5;

impl From<crate::jobs::actions::ActionError> for ApiError {
    fn from(e: crate::jobs::actions::ActionError) -> Self {
        use crate::jobs::actions::ActionError;
        match e {
            ActionError::NotFound(m) => ApiError::NotFound(m),
            ActionError::Forbidden(m) => ApiError::Forbidden(m),
            ActionError::Invalid(m) | ActionError::Store(StoreError::Invalid(m)) => {
                ApiError::Invalid(m)
            }
            ActionError::Store(e) => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_report"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Internal(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable: answered 503");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut response = (
            status,
            Json(json!({ "error": code, "message": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        let retry_after = match &self {
            ApiError::TooManyRequests(secs) => Some(*secs),
            ApiError::Internal(e) if e.is_unavailable() => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after
            && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub fn router(state: AppState) -> Router {
    // Everything under `api` needs a user's API token or a session; pages need a session and
    // redirect to the sign-in page without one. Ingest has its own (agent) tokens.
    let api = read::routes()
        .merge(act::routes())
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::auth::require_api_viewer,
        ));
    let pages = web::forms::routes()
        .merge(crate::http::web::page_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::auth::require_page_viewer,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route(cloudgov_agent::wire::INGEST_PATH, post(ingest))
        .route("/api/v1/status", get(status))
        .route(
            "/login",
            get(web::forms::login_page).post(web::forms::login),
        )
        .merge(crate::http::web::public_routes())
        .merge(openapi::routes())
        .merge(api)
        .merge(pages)
        .fallback(edge::fallback)
        // Our own limit check gives a JSON error; axum's default limit must not cut in first.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(edge::json_errors))
        .layer(axum::middleware::from_fn(edge::security_headers))
        .with_state(state)
}

/// `GET /healthz`: the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The daemon and its database answer")))]
async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.ctx.store.ping().await?;
    Ok(Json(
        json!({ "status": "ok", "database": state.ctx.store.backend_name() }),
    ))
}

/// `GET /metrics`: Prometheus text format (center staff; or `serve --metrics-listen`).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("api_token" = [])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
              (status = 403, description = "Not center staff", body = ErrorBody)))]
async fn metrics(State(state): State<AppState>, viewer: Viewer) -> Result<Response, ApiError> {
    if !viewer.is_staff() {
        return Err(ApiError::Forbidden("metrics are for center staff".into()));
    }
    metrics_text(&state).await
}

/// The Prometheus exposition, for the authenticated route and the metrics-only listener.
pub async fn metrics_text(state: &AppState) -> Result<Response, ApiError> {
    let body = crate::http::metrics::render(&state.ctx, &state.counters).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// What an operator checks first: backend, calendar coverage and its warning.
#[utoipa::path(get, path = "/api/v1/status", tag = "operations",
    responses((status = 200, description = "Backend, calendar years and warning, leadership, version")))]
async fn status(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let today = shanghai_day(Utc::now());
    Ok(Json(json!({
        "database": state.ctx.store.backend_name(),
        "calendar_years": state.ctx.calendar.years(),
        "calendar_warning": crate::core::calendar::calendar_warning(&state.ctx.calendar, today),
        "leader": *state.leader.borrow(),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// The agent's clock offset and dropped reports, recorded after its batch is stored: a clock
/// off by more than the limit, or reports lost on the agent, raise alerts staff see.
async fn record_agent_health(
    state: &AppState,
    vm_key: i64,
    vm_id: &str,
    batch: &IngestBatch,
    now: chrono::DateTime<Utc>,
) -> Result<(), ApiError> {
    let store = &state.ctx.store;
    let today = shanghai_day(now);
    if let Some(sent_at) = batch.sent_at {
        let offset = now - sent_at;
        store.set_clock_offset(vm_key, offset.num_seconds()).await?;
        if offset.abs() > state.limits.max_clock_skew {
            let facts = AlertFacts::ClockSkew {
                offset_secs: offset.num_seconds(),
                limit_secs: state.limits.max_clock_skew.num_seconds(),
            };
            if store.raise_alert(vm_key, &facts, now, today).await? {
                tracing::warn!(vm = %vm_id, offset_secs = offset.num_seconds(), "agent clock skew");
            }
        } else {
            store.clear_alert(vm_key, "clock_skew", now).await?;
        }
    }
    if batch.dropped_reports > 0 {
        tracing::warn!(vm = %vm_id, dropped = batch.dropped_reports, "agent dropped reports");
        let facts = AlertFacts::ReportsDropped {
            reports: batch.dropped_reports,
        };
        store.raise_alert(vm_key, &facts, now, today).await?;
    }
    Ok(())
}

/// The token of an `Authorization: Bearer TOKEN` header. The scheme is case-insensitive
/// (RFC 7235 section 2.1), so `bearer` and `BEARER` are accepted too.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `POST /api/v1/ingest`: a batch of reports from one agent. The token is checked before the
/// body is read (401 first, whatever the body's size); then the whole batch is validated
/// before anything is written, and stored in one transaction; the answer comes after commit.
#[utoipa::path(post, path = "/api/v1/ingest", tag = "agents", security(("agent_token" = [])),
    request_body = openapi::IngestBatchDoc,
    responses((status = 200, body = openapi::IngestAckDoc),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "Rate limited; see Retry-After"),
              (status = 503, body = ErrorBody, description = "The database is unavailable; see Retry-After")))]
async fn ingest(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Json<IngestAck>, ApiError> {
    let counters = state.counters.clone();
    IngestCounters::add(&counters.requests, 1);
    let result = store_batch(state, request).await;
    match &result {
        Ok(ack) => {
            IngestCounters::add(&counters.reports, ack.accepted as u64);
            IngestCounters::add(&counters.duplicates, ack.duplicates as u64);
        }
        Err(ApiError::Internal(_)) => {}
        Err(_) => IngestCounters::add(&counters.rejected, 1),
    }
    result.map(Json)
}

async fn store_batch(
    state: AppState,
    request: axum::extract::Request,
) -> Result<IngestAck, ApiError> {
    let (parts, body) = request.into_parts();
    let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
    let (vm_key, vm_id) = state
        .ctx
        .store
        .vm_for_token(&token::hash(token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = Utc::now();
    state
        .rate
        .check(vm_key, now, state.limits.requests_per_minute)
        .map_err(ApiError::TooManyRequests)?;
    // Read only now, and at most the limit: an unauthenticated sender never gets the daemon to
    // buffer its body, and an authenticated one not past MAX_BODY_BYTES.
    let body = read_limited(body).await?;
    let batch: IngestBatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not a valid ingest batch: {e}")))?;
    if batch.reports.is_empty() || batch.reports.len() > MAX_REPORTS_PER_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds 1 to {MAX_REPORTS_PER_BATCH} reports, this one {}",
            batch.reports.len()
        )));
    }
    let rows = batch
        .reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            check_report(r, vm_key, &vm_id, now)
                .map_err(|m| ApiError::Unprocessable(format!("reports[{i}]: {m}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (accepted, duplicates) = state.ctx.store.ingest_reports(&rows).await?;
    record_agent_health(&state, vm_key, &vm_id, &batch, now).await?;
    tracing::debug!(vm = %vm_id, accepted, duplicates, "ingested");
    Ok(IngestAck {
        accepted: accepted as usize,
        duplicates: duplicates as usize,
    })
}

/// The most of an over-long body that is read (and dropped) before answering 413, so the
/// sender, still writing, reads the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 4 * MAX_BODY_BYTES;

/// The body, at most [`MAX_BODY_BYTES`] of it. A longer one is drained (up to [`DRAIN_LIMIT`])
/// and refused with 413.
async fn read_limited(mut body: axum::body::Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= MAX_BODY_BYTES {
            buf.extend_from_slice(&data);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(buf)
}

/// Checks one report and turns it into what the store keeps (the ingest handler's own step,
/// public for the benchmark).
pub fn check_report(
    r: &Report,
    vm_key: i64,
    vm_id: &str,
    now: chrono::DateTime<Utc>,
) -> Result<StoredReport, String> {
    let pct = |name: &str, v: f64| {
        Percent::try_from(v)
            .map(Percent::get)
            .map_err(|e| format!("{name}: {e}"))
    };
    let cpu_pct = pct("cpu_pct", r.cpu_pct)?;
    let mem_pct = pct("mem_pct", r.mem_pct)?;
    ArrivalWindow::recent(now).check("collected_at", r.collected_at)?;
    for (name, value, max) in [
        ("host.hostname", r.host.hostname.as_str(), 255),
        ("host.os", r.host.os.as_str(), 255),
        ("host.agent_version", r.host.agent_version.as_str(), 64),
        (
            "host.machine_id",
            r.host.machine_id.as_deref().unwrap_or(""),
            128,
        ),
    ] {
        if value.len() > max {
            return Err(format!("{name} is longer than {max} bytes"));
        }
    }
    if r.host.hostname.is_empty() {
        return Err("host.hostname is empty".into());
    }
    // No stored string may carry a NUL (PostgreSQL text cannot) or other control characters.
    let texts = [
        ("host.hostname", r.host.hostname.as_str()),
        ("host.os", r.host.os.as_str()),
        ("host.agent_version", r.host.agent_version.as_str()),
        (
            "host.machine_id",
            r.host.machine_id.as_deref().unwrap_or(""),
        ),
    ]
    .into_iter()
    .chain(
        r.interfaces
            .iter()
            .map(|n| ("interfaces[].name", n.name.as_str())),
    )
    .chain(r.interfaces.iter().flat_map(|n| {
        n.addresses.iter().map(|a| {
            (
                "interfaces[].addresses[].config_source",
                a.config_source.as_deref().unwrap_or(""),
            )
        })
    }))
    .chain(
        r.neighbours
            .iter()
            .map(|n| ("neighbours[].interface", n.interface.as_str())),
    )
    .chain(r.filesystems.iter().flat_map(|f| {
        [
            ("filesystems[].mount_point", f.mount_point.as_str()),
            ("filesystems[].device", f.device.as_str()),
            ("filesystems[].fs_type", f.fs_type.as_str()),
        ]
    }));
    for (name, text) in texts {
        if text.chars().any(|c| c.is_control()) {
            return Err(format!("{name} contains control characters"));
        }
    }
    if r.filesystems.len() > 256 || r.interfaces.len() > 256 || r.neighbours.len() > 4096 {
        return Err(
            "too many filesystems (max 256), interfaces (max 256) or neighbours (max 4096)".into(),
        );
    }
    for (i, f) in r.filesystems.iter().enumerate() {
        if f.used_bytes > f.total_bytes {
            return Err(format!("filesystems[{i}]: used_bytes exceeds total_bytes"));
        }
        if f.mount_point.len() > MAX_PATH_BYTES
            || f.device.len() > MAX_PATH_BYTES
            || f.fs_type.len() > MAX_NAME_BYTES
        {
            return Err(format!(
                "filesystems[{i}]: mount point or device longer than {MAX_PATH_BYTES} bytes, or type longer than {MAX_NAME_BYTES}"
            ));
        }
    }
    for (i, n) in r.interfaces.iter().enumerate() {
        if n.name.len() > MAX_NAME_BYTES
            || n.mac.as_ref().is_some_and(|m| m.len() > MAX_NAME_BYTES)
            || n.addresses.len() > 256
        {
            return Err(format!(
                "interfaces[{i}]: name or MAC longer than {MAX_NAME_BYTES} bytes, or more than 256 addresses"
            ));
        }
        for (j, a) in n.addresses.iter().enumerate() {
            let max_prefix = if a.ip.is_ipv4() { 32 } else { 128 };
            if a.prefix > max_prefix {
                return Err(format!(
                    "interfaces[{i}].addresses[{j}].prefix {} is outside 0..={max_prefix}",
                    a.prefix
                ));
            }
            if a.config_source
                .as_ref()
                .is_some_and(|s| s.len() > MAX_PATH_BYTES)
            {
                return Err(format!(
                    "interfaces[{i}].addresses[{j}].config_source is longer than {MAX_PATH_BYTES} bytes"
                ));
            }
        }
    }
    for (i, n) in r.neighbours.iter().enumerate() {
        if n.interface.len() > MAX_NAME_BYTES || n.mac.len() > MAX_NAME_BYTES {
            return Err(format!(
                "neighbours[{i}]: interface or MAC longer than {MAX_NAME_BYTES} bytes"
            ));
        }
    }
    if r.capacity.vcpus == 0 {
        return Err("capacity.vcpus is 0".into());
    }
    let as_i64 = |name: &str, v: u64| i64::try_from(v).map_err(|_| format!("{name} is too large"));
    let seq = as_i64("seq", r.seq)?;
    Ok(StoredReport {
        sample: SampleRow {
            vm_key,
            ts: r.collected_at.timestamp(),
            cpu_pct,
            mem_pct,
            disk_pct: r.disk_pct(),
        },
        seq,
        hostname: r.host.hostname.clone(),
        machine_id: r.host.machine_id.clone(),
        os: r.host.os.clone(),
        agent_version: r.host.agent_version.clone(),
        vcpus: i64::from(r.capacity.vcpus),
        memory_bytes: as_i64("capacity.memory_bytes", r.capacity.memory_bytes)?,
        disk_bytes: as_i64("capacity.disk_bytes", r.capacity.disk_bytes)?,
        filesystems_json: serde_json::to_string(&r.filesystems).map_err(|e| e.to_string())?,
        interfaces_json: serde_json::to_string(&r.interfaces).map_err(|e| e.to_string())?,
        sightings: sightings(r, vm_key, vm_id)?,
    })
}

/// The (IP, MAC) pairs a report shows: its own interface addresses (with how each is
/// configured) and its neighbour table. MACs are parsed once here; a malformed one is an error.
fn sightings(r: &Report, vm_key: i64, vm_id: &str) -> Result<Vec<SightingRow>, String> {
    let seen_at = r.collected_at.timestamp();
    let mut out = Vec::new();
    for (i, iface) in r.interfaces.iter().enumerate() {
        let Some(mac) = &iface.mac else { continue };
        let mac: MacAddr = mac
            .parse()
            .map_err(|e| format!("interfaces[{i}].mac: {e}"))?;
        for a in &iface.addresses {
            out.push(SightingRow {
                ip: a.ip.to_string(),
                mac: mac.to_string(),
                kind: SightingKind::Interface,
                source: vm_id.to_owned(),
                vm_key: Some(vm_key),
                interface: iface.name.clone(),
                config: match a.config {
                    AddressConfig::Static => "static",
                    AddressConfig::Dhcp => "dhcp",
                    AddressConfig::Unknown => "unknown",
                }
                .to_owned(),
                config_source: a.config_source.clone(),
                seen_at,
            });
        }
    }
    for (i, n) in r.neighbours.iter().enumerate() {
        let mac: MacAddr = n
            .mac
            .parse()
            .map_err(|e| format!("neighbours[{i}].mac: {e}"))?;
        if mac.is_zero() {
            continue;
        }
        out.push(SightingRow {
            ip: n.ip.to_string(),
            mac: mac.to_string(),
            kind: SightingKind::Neighbour,
            source: vm_id.to_owned(),
            vm_key: Some(vm_key),
            interface: n.interface.clone(),
            config: "unknown".to_owned(),
            config_source: None,
            seen_at,
        });
    }
    Ok(out)
}

/// Bounded fuzzing of the report checks: any number a report carries is accepted exactly when
/// it is a valid percentage; arbitrary bodies never panic the parser.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn report(cpu: f64, mem: f64) -> Report {
        serde_json::from_value(json!({
            "seq": 1, "collected_at": Utc::now().to_rfc3339(),
            "host": {"hostname": "h", "machine_id": null, "os": "Linux", "agent_version": "t"},
            "cpu_pct": 1.0, "mem_pct": 1.0, "filesystems": [],
            "capacity": {"vcpus": 1, "memory_bytes": 1, "disk_bytes": 0}, "interfaces": []
        }))
        .map(|mut r: Report| {
            r.cpu_pct = cpu;
            r.mem_pct = mem;
            r
        })
        .expect("template report")
    }

    proptest! {
        #[test]
        fn percentages_are_accepted_exactly_when_valid(cpu in proptest::num::f64::ANY, mem in -10.0f64..110.0) {
            let ok = check_report(&report(cpu, mem), 1, "vm", Utc::now()).is_ok();
            let valid = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
            prop_assert_eq!(ok, valid(cpu) && valid(mem));
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<IngestBatch>(&body);
        }
    }
}

//! HTTP API (axum): agent ingest, health, read endpoints scoped to the viewer's department,
//! actions, sign-in, and the OpenAPI document.
//!
//! Errors leave as JSON `{"error": code, "message": text}`; internal details are logged, never sent.
//! `read`: GET endpoints and CSV exports. `act`: JSON actions. `forms`: sign-in and the HTML
//! forms' POST handlers. `openapi`: the document (utoipa) and Swagger UI.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use crate::core::access::Viewer;
use crate::core::calendar::shanghai_day;
use crate::http::metrics::IngestCounters;
use crate::jobs::JobContext;
use crate::store::StoreError;

mod act;
pub mod auth;
pub mod edge;
mod ingest;
pub use ingest::{IngestLimits, MAX_BODY_BYTES, RateLimiter, check_batch};
pub mod metrics;
mod openapi;
mod read;
mod requests;
pub use read::stored_review_values;
pub mod tls;
pub mod web;

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
    /// Ingest's group commit: one writer, a bounded queue.
    pub ingest: ingest::group::GroupCommit,
    /// The agent tokens ingest has seen valid (the group commit checks them again).
    pub agent_tokens: std::sync::Arc<ingest::AgentTokens>,
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
            ingest: ingest::group::GroupCommit::start(ctx.store.clone()),
            ctx,
            counters: Default::default(),
            leader,
            limits,
            rate: Default::default(),
            web,
            login_throttle: Default::default(),
            agent_tokens: Default::default(),
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
    /// The ingest queue is full: retry after `Retry-After` seconds.
    #[error("busy: the ingest queue is full; retry after the Retry-After seconds")]
    Busy,
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

/// Seconds a client waits before retrying when the ingest queue is full.
pub const BUSY_RETRY_AFTER_SECS: i64 = 1;

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
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
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
            ApiError::Busy => Some(BUSY_RETRY_AFTER_SECS),
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
        .merge(requests::routes())
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
        .route(cloudgov_agent::wire::INGEST_PATH, post(ingest::ingest))
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

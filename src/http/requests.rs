//! `/api/v1/requests`: resource requests read with their recommendations, submitted, decided and
//! delivered through the same actions as the CLI and the pages ([`crate::jobs::actions`]).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::act::{Done, OnDay};
use super::{ApiError, AppState, ErrorBody};
use crate::core::access::Viewer;
use crate::core::requests::{RawRequest, RawRequestVm};
use crate::jobs::actions::{self, parse_day};
use crate::jobs::requests::{RequestView, view, view_in};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests", get(list_requests).post(submit_request))
        .route("/api/v1/requests/{id}", get(request))
        .route("/api/v1/requests/{id}/decide", post(decide_request))
        .route("/api/v1/requests/{id}/deliver", post(deliver_request))
}

/// A resource request as filed (the fields of `cloudgov requests submit FILE.toml`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the handler parses `core::requests::RawRequest`
pub struct SubmitRequestDoc {
    department: String,
    /// An existing project's id, or a new project's with `project_name`.
    project: String,
    project_name: Option<String>,
    purpose: String,
    expected_load: String,
    /// `YYYY-MM-DD`.
    desired_on: Option<String>,
    /// Back-dated entry by staff, `YYYY-MM-DD`.
    submitted_on: Option<String>,
    /// `[{id, vcpus, memory_gib, disk_gib}]`.
    #[schema(value_type = Vec<Object>)]
    vm: Vec<()>,
}

/// What a submission answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub id: i64,
    pub message: String,
}

/// Staff's decision on a request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct RequestDecision {
    /// `approve` or `reject`.
    pub decision: String,
    pub reason: String,
    /// Amended sizes (approve only): `[{id, vcpus, memory_gib, disk_gib}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub amend: Vec<RawRequestVm>,
    /// The day of the decision, `YYYY-MM-DD` (default today).
    #[serde(default)]
    pub on: Option<String>,
}

/// The requests the viewer may see, newest first, each with its recommendations.
#[utoipa::path(get, path = "/api/v1/requests", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = ErrorBody)))]
async fn list_requests(
    State(s): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let mut out = Vec::new();
    for r in s.ctx.store.requests_in(viewer.scope.department()).await? {
        out.push(view(&s.ctx, r).await?);
    }
    Ok(Json(out))
}

/// One request; another department's is "not found".
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "read", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = ErrorBody)))]
async fn request(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<RequestView>, ApiError> {
    view_in(&s.ctx, viewer.scope.department(), id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no request {id}")))
}

/// Submit a request (a department for itself; staff for any department).
#[utoipa::path(post, path = "/api/v1/requests", tag = "actions", security(("api_token" = []), ("session" = [])),
    request_body = SubmitRequestDoc,
    responses((status = 200, body = Submitted), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_request(
    State(s): State<AppState>,
    viewer: Viewer,
    Json(body): Json<RawRequest>,
) -> Result<Json<Submitted>, ApiError> {
    let (id, done) = actions::submit_request(&s.ctx, &viewer, body).await?;
    Ok(Json(Submitted {
        id,
        message: done.message,
    }))
}

/// Approve (as asked or amended) or reject a request, with a reason (staff).
#[utoipa::path(post, path = "/api/v1/requests/{id}/decide", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)), request_body = RequestDecision,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn decide_request(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Json(body): Json<RequestDecision>,
) -> Result<Json<Done>, ApiError> {
    let approve = actions::parse_request_decision(&body.decision)?;
    let amend = actions::parse_amendment(&body.amend)?;
    let on = body.on.as_deref().map(|d| parse_day("on", d)).transpose()?;
    let done =
        actions::decide_request(&s.ctx, &viewer, id, approve, &amend, &body.reason, on).await?;
    Ok(Json(Done {
        message: done.message,
    }))
}

/// Record the delivery of an approved request (staff): its VMs and deployment deadlines.
#[utoipa::path(post, path = "/api/v1/requests/{id}/deliver", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)), request_body = OnDay,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn deliver_request(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Json(body): Json<OnDay>,
) -> Result<Json<Done>, ApiError> {
    let on = parse_day("on", &body.on)?;
    let done = actions::deliver_request(&s.ctx, &viewer, id, on).await?;
    Ok(Json(Done {
        message: done.message,
    }))
}

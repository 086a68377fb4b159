//! JSON actions for scripts and the browser: the same checks as the forms ([`crate::jobs::actions`]).

use axum::extract::{Path, State};
use axum::routing::{delete, post, put};
use axum::{Json, Router};

use super::{ApiError, AppState, ErrorBody};
use crate::core::access::Viewer;
use crate::jobs::actions::{self, RegistryEdit, parse_day, parse_vm};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notices/{id}/approve", post(approve))
        .route("/api/v1/notices/{id}/complete", post(complete))
        .route("/api/v1/notices/{id}/contest", post(contest))
        .route("/api/v1/notices/{id}/decide", post(decide))
        .route("/api/v1/vms/{id}/deployed", post(deployed))
        .route("/api/v1/vms/{id}/release-request", post(release_request))
        .route("/api/v1/vms/{id}/release-confirm", post(release_confirm))
        .route("/api/v1/projects/{id}/filed", post(project_filed))
        .route("/api/v1/network/registry", put(registry_set))
        .route("/api/v1/network/registry/{ip}", delete(registry_remove))
}

/// What an action did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Done {
    pub message: String,
}

fn done(outcome: actions::Outcome) -> Json<Done> {
    Json(Done {
        message: outcome.message,
    })
}

/// A day an action happened on.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct OnDay {
    /// `YYYY-MM-DD`, not in the future.
    pub on: String,
}

/// Why a department objects to a notice.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct Contest {
    pub reason: String,
}

/// A release request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct ReleaseRequest {
    pub on: String,
    #[serde(default)]
    pub reason: String,
}

/// Approve a notice held for approval (staff).
#[utoipa::path(post, path = "/api/v1/notices/{id}/approve", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn approve(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<Done>, ApiError> {
    Ok(done(actions::approve_notice(&s.ctx, &viewer, id).await?))
}

/// Confirm the adjustment a notice asked for is done (staff).
#[utoipa::path(post, path = "/api/v1/notices/{id}/complete", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)), request_body = OnDay,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn complete(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Json(body): Json<OnDay>,
) -> Result<Json<Done>, ApiError> {
    let on = parse_day("on", &body.on)?;
    Ok(done(
        actions::complete_notice(&s.ctx, &viewer, id, on).await?,
    ))
}

/// Contest a notice with a reason (the notice's department or staff).
#[utoipa::path(post, path = "/api/v1/notices/{id}/contest", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)), request_body = Contest,
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn contest(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Json(body): Json<Contest>,
) -> Result<Json<Done>, ApiError> {
    Ok(done(
        actions::contest_notice(&s.ctx, &viewer, id, &body.reason).await?,
    ))
}

/// Staff's decision on a contested release advice.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// `uphold` or `withdraw`.
    pub decision: String,
    pub reason: String,
}

/// Decide a contested release advice: uphold or withdraw it (staff).
#[utoipa::path(post, path = "/api/v1/notices/{id}/decide", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn decide(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Json(body): Json<Decision>,
) -> Result<Json<Done>, ApiError> {
    let decision = actions::parse_decision(&body.decision)?;
    Ok(done(
        actions::decide_contest(&s.ctx, &viewer, id, decision, &body.reason).await?,
    ))
}

/// Confirm a VM's system is deployed (its department or staff).
#[utoipa::path(post, path = "/api/v1/vms/{id}/deployed", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path)), request_body = OnDay,
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn deployed(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Json(body): Json<OnDay>,
) -> Result<Json<Done>, ApiError> {
    let vm = parse_vm(&id)?;
    let on = parse_day("on", &body.on)?;
    Ok(done(
        actions::mark_deployed(&s.ctx, &viewer, &vm, on).await?,
    ))
}

/// Ask to release a VM (its department or staff).
#[utoipa::path(post, path = "/api/v1/vms/{id}/release-request", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path)), request_body = ReleaseRequest,
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn release_request(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Json(body): Json<ReleaseRequest>,
) -> Result<Json<Done>, ApiError> {
    let vm = parse_vm(&id)?;
    let on = parse_day("on", &body.on)?;
    Ok(done(
        actions::request_release(&s.ctx, &viewer, &vm, on, &body.reason).await?,
    ))
}

/// Confirm a release (staff).
#[utoipa::path(post, path = "/api/v1/vms/{id}/release-confirm", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path)), request_body = OnDay,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn release_confirm(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Json(body): Json<OnDay>,
) -> Result<Json<Done>, ApiError> {
    let vm = parse_vm(&id)?;
    let on = parse_day("on", &body.on)?;
    Ok(done(
        actions::confirm_release(&s.ctx, &viewer, &vm, on).await?,
    ))
}

/// Record that a project was filed (art. 10; staff): its filing deadline is done that day.
#[utoipa::path(post, path = "/api/v1/projects/{id}/filed", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path)), request_body = OnDay,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn project_filed(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Json(body): Json<OnDay>,
) -> Result<Json<Done>, ApiError> {
    let project = crate::core::domain::ProjectId::try_from(id.as_str())
        .map_err(|_| ApiError::NotFound(format!("no project {id}")))?;
    let on = parse_day("on", &body.on)?;
    Ok(done(
        actions::file_project(&s.ctx, &viewer, &project, on).await?,
    ))
}

/// Register an IP or change its registration (staff).
#[utoipa::path(put, path = "/api/v1/network/registry", tag = "actions", security(("api_token" = []), ("session" = [])),
    request_body = RegistryEdit,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn registry_set(
    State(s): State<AppState>,
    viewer: Viewer,
    Json(body): Json<RegistryEdit>,
) -> Result<Json<Done>, ApiError> {
    Ok(done(actions::set_registry(&s.ctx, &viewer, &body).await?))
}

/// Remove an IP from the registry (staff).
#[utoipa::path(delete, path = "/api/v1/network/registry/{ip}", tag = "actions", security(("api_token" = []), ("session" = [])),
    params(("ip" = String, Path)),
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn registry_remove(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(ip): Path<String>,
) -> Result<Json<Done>, ApiError> {
    Ok(done(actions::remove_registry(&s.ctx, &viewer, &ip).await?))
}

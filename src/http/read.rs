//! Read endpoints and CSV exports, each filtered by the viewer's department in its query.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use super::{ApiError, AppState, ErrorBody};
use crate::core::access::Viewer;
use crate::core::domain::{Aspect, Verdict};
use crate::jobs::views::DeadlineView;
use crate::store::{
    AgentRow, AlertRow, AuditRow, ContestRow, FindingRow, NetworkFindingRow, NoticeRow,
    RegistryListing, UserRow,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/notices", get(notices))
        .route("/api/v1/notices/{id}", get(notice))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/deadlines", get(deadlines))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/network/findings", get(network_findings))
        .route("/api/v1/network/registry", get(registry))
        .route("/api/v1/reviews/{year}", get(reviews))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/users", get(users))
        .route("/api/v1/me", get(me))
        .route("/api/v1/export/findings.csv", get(export_findings))
        .route("/api/v1/export/notices.csv", get(export_notices))
}

/// Which findings to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindingsQuery {
    /// `cpu`, `memory`, `disk` or `usage` (whether the system is used at all).
    pub resource: Option<String>,
    /// e.g. `downsize`, `unused`.
    pub verdict: Option<String>,
}

/// The latest finding of every VM and resource the viewer may see; `?resource=usage` lists
/// whether each system is used at all (`unused`, `in_use`, `insufficient_data`, with evidence).
#[utoipa::path(get, path = "/api/v1/findings", tag = "read", security(("api_token" = []), ("session" = [])),
    params(FindingsQuery),
    responses((status = 200, body = Vec<FindingRow>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn findings(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<FindingsQuery>,
) -> Result<Json<Vec<FindingRow>>, ApiError> {
    let bad = |e: crate::core::domain::InvalidValue| ApiError::BadRequest(e.to_string());
    let resource: Option<Aspect> = q
        .resource
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(bad)?;
    let verdict: Option<Verdict> = q
        .verdict
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(bad)?;
    let rows = state
        .ctx
        .store
        .findings_of(viewer.scope.department(), resource)
        .await?;
    Ok(Json(
        rows.into_iter()
            .filter(|f| verdict.is_none_or(|v| f.verdict == v))
            .collect(),
    ))
}

/// Downsize notices and expansion advice, newest first.
#[utoipa::path(get, path = "/api/v1/notices", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<NoticeRow>), (status = 401, body = ErrorBody)))]
async fn notices(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<NoticeRow>>, ApiError> {
    Ok(Json(
        state
            .ctx
            .store
            .notices_in(viewer.scope.department())
            .await?,
    ))
}

/// One notice with the department's contests of it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NoticeWithContests {
    #[serde(flatten)]
    pub notice: NoticeRow,
    pub contests: Vec<ContestRow>,
}

/// One notice; another department's notice is "not found".
#[utoipa::path(get, path = "/api/v1/notices/{id}", tag = "read", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 200, body = NoticeWithContests), (status = 404, body = ErrorBody)))]
async fn notice(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<NoticeWithContests>, ApiError> {
    let notice = state
        .ctx
        .store
        .notice_in(viewer.scope.department(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no notice {id}")))?;
    let contests = state.ctx.store.contests(id).await?;
    Ok(Json(NoticeWithContests { notice, contests }))
}

/// What each agent last reported about itself.
#[utoipa::path(get, path = "/api/v1/agents", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<AgentRow>)))]
async fn agents(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<AgentRow>>, ApiError> {
    Ok(Json(
        state.ctx.store.agents_in(viewer.scope.department()).await?,
    ))
}

/// Deployment and adjustment deadlines with their state as of now.
#[utoipa::path(get, path = "/api/v1/deadlines", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<DeadlineView>)))]
async fn deadlines(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<DeadlineView>>, ApiError> {
    Ok(Json(
        crate::jobs::views::deadlines_as_of(&state.ctx, Utc::now(), viewer.scope.department())
            .await?,
    ))
}

/// VM alerts (silent agents, clock skew, dropped reports).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<AlertRow>)))]
async fn alerts(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<AlertRow>>, ApiError> {
    Ok(Json(
        state.ctx.store.alerts_in(viewer.scope.department()).await?,
    ))
}

/// Network registration findings (art. 14) that concern the viewer's department.
#[utoipa::path(get, path = "/api/v1/network/findings", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<NetworkFindingRow>)))]
async fn network_findings(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<NetworkFindingRow>>, ApiError> {
    Ok(Json(
        state
            .ctx
            .store
            .network_findings_in(None, viewer.scope.department())
            .await?,
    ))
}

/// The IP registry (static IP and IP-MAC registrations).
#[utoipa::path(get, path = "/api/v1/network/registry", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<RegistryListing>)))]
async fn registry(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<RegistryListing>>, ApiError> {
    Ok(Json(
        state
            .ctx
            .store
            .ip_registry_in(viewer.scope.department(), None)
            .await?,
    ))
}

/// Years a review can be asked for.
const REVIEW_YEARS: std::ops::RangeInclusive<i32> = 2000..=2199;

/// The stored annual reviews of a year (the viewer's department's projects), best first.
#[utoipa::path(get, path = "/api/v1/reviews/{year}", tag = "read", security(("api_token" = []), ("session" = [])),
    params(("year" = i32, Path, description = "Review year, 2000 to 2199")),
    responses((status = 200, description = "One review object per project (see `cloudgov review --format json`)")))]
async fn reviews(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(year): Path<i32>,
) -> Result<Response, ApiError> {
    Ok(Json(stored_review_values(&state, &viewer, year).await?).into_response())
}

pub async fn stored_review_values(
    state: &AppState,
    viewer: &Viewer,
    year: i32,
) -> Result<Vec<serde_json::Value>, ApiError> {
    if !(REVIEW_YEARS).contains(&year) {
        return Err(ApiError::BadRequest(format!(
            "year {year} is outside {}..={}",
            REVIEW_YEARS.start(),
            REVIEW_YEARS.end()
        )));
    }
    let rows = state
        .ctx
        .store
        .reviews_in(Some(year), None, viewer.scope.department())
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(.., json)| serde_json::from_str(&json).ok())
        .collect())
}

/// The newest audit log entries (center staff).
#[utoipa::path(get, path = "/api/v1/audit", tag = "accounts", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<AuditRow>), (status = 403, body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    if !viewer.is_staff() {
        return Err(ApiError::Forbidden(
            "the audit log is for center staff".into(),
        ));
    }
    Ok(Json(state.ctx.store.audit_log(500).await?))
}

/// Accounts (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<UserRow>), (status = 403, body = ErrorBody)))]
async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<UserRow>>, ApiError> {
    if viewer.role != crate::core::access::Role::Admin {
        return Err(ApiError::Forbidden("accounts are for admins".into()));
    }
    Ok(Json(state.ctx.store.users().await?))
}

/// Who the caller is.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    pub username: String,
    /// `admin`, `operator` or `department`.
    pub role: String,
    /// The department a department user sees; absent for staff.
    pub department: Option<String>,
}

/// The signed-in user or the API token's owner.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(viewer: Viewer) -> Json<Me> {
    Json(Me {
        username: viewer.username.clone(),
        role: viewer.role.as_str().to_owned(),
        department: viewer.scope.department().map(str::to_owned),
    })
}

/// CSV with a UTF-8 byte order mark, so spreadsheet programs read the Chinese names right.
fn csv_response(file_name: &str, rows: Vec<Vec<String>>) -> Result<Response, ApiError> {
    let mut writer = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    for row in rows {
        writer
            .write_record(crate::core::spreadsheet::record(&row))
            .map_err(|e| ApiError::Internal(crate::store::StoreError::Invalid(e.to_string())))?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(crate::store::StoreError::Invalid(e.to_string())))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_default()
}

/// The findings the viewer may see, as CSV.
#[utoipa::path(get, path = "/api/v1/export/findings.csv", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv")))]
async fn export_findings(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, ApiError> {
    let mut rows = vec![
        [
            "vm",
            "project",
            "department",
            "resource",
            "verdict",
            "value",
            "comparison",
            "statistic",
            "samples",
            "days_with_samples",
            "evaluated_at",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for f in state
        .ctx
        .store
        .findings_in(viewer.scope.department())
        .await?
    {
        rows.push(vec![
            f.vm,
            f.project,
            f.department,
            f.resource.to_string(),
            f.verdict.to_string(),
            opt(f.value),
            f.comparison.unwrap_or_default(),
            f.statistic,
            f.samples.to_string(),
            f.days_with_samples.to_string(),
            f.evaluated_at,
        ]);
    }
    csv_response("findings.csv", rows)
}

/// The notices the viewer may see, as CSV.
#[utoipa::path(get, path = "/api/v1/export/notices.csv", tag = "read", security(("api_token" = []), ("session" = [])),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv")))]
async fn export_notices(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, ApiError> {
    let mut rows = vec![
        [
            "id",
            "vm",
            "project",
            "department",
            "resource",
            "kind",
            "state",
            "issued_on",
            "value",
            "comparison",
            "due",
            "approved",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for n in state
        .ctx
        .store
        .notices_in(viewer.scope.department())
        .await?
    {
        rows.push(vec![
            n.id.to_string(),
            n.vm,
            n.project,
            n.department,
            n.resource.to_string(),
            n.kind.to_string(),
            n.state.to_string(),
            n.issued_on,
            format!("{:.2}", n.value),
            n.comparison,
            n.due.unwrap_or_default(),
            n.approved.to_string(),
        ]);
    }
    csv_response("notices.csv", rows)
}

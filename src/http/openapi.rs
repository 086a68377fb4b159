//! The OpenAPI document, generated from the handlers' annotations (utoipa), and Swagger UI.
//!
//! Served without signing in: `/api/v1/openapi.json` and `/api/docs/`. A test checks that every
//! route of the API appears in the document.

use axum::Router;
use axum::http::StatusCode;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// An agent's batch of reports (the agent's `wire::IngestBatch`; unknown fields are errors).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the handler parses the agent's own type
pub struct IngestBatchDoc {
    /// 1 to 2000 reports: `seq`, `collected_at`, `host`, `cpu_pct`, `mem_pct`, `filesystems`,
    /// `capacity`, `interfaces`, `neighbours`.
    #[schema(value_type = Vec<Object>)]
    reports: Vec<()>,
    /// When the agent sent the batch (RFC 3339, its clock).
    sent_at: Option<String>,
    /// Reports the agent dropped since it last told the daemon.
    dropped_reports: Option<u64>,
}

/// What the daemon stored of a batch.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the handler answers with the agent's own type
pub struct IngestAckDoc {
    accepted: u64,
    duplicates: u64,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A user's API token (`cloudgov user token USER --name NAME`), `cgu_...`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An agent token (`cloudgov vm issue-token VM`), `cgv_...`: ingest only",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::http::auth::SESSION_COOKIE,
                "The browser session from `POST /login`; state-changing calls also need the \
                 `X-CSRF-Token` header",
            ))),
        );
    }
}

/// Every operation's error answers, and a description on every response (OpenAPI requires one).
///
/// The handlers' annotations name their specific answers (403, 404, 422, ...). The answers any
/// route of its kind can give are added here once, all with the [`super::ErrorBody`] JSON:
/// 401 where a token or session is needed, 403 where a state change needs the CSRF header,
/// 404 where a path names an object, 400/413/415/422 where a JSON body is read, 400 where
/// a path or query is parsed, 429 for ingest, and 500/503 everywhere (503: the database does
/// not answer; retry after the `Retry-After` seconds).
struct ErrorResponses;

/// The status codes every operation of a kind can answer with, in addition to its own.
fn common_errors(secured: bool, writes: bool, path_params: bool, body: bool) -> Vec<StatusCode> {
    let mut codes = Vec::new();
    if path_params || body {
        codes.push(StatusCode::BAD_REQUEST);
    }
    if secured {
        codes.push(StatusCode::UNAUTHORIZED);
    }
    if secured && writes {
        codes.push(StatusCode::FORBIDDEN);
    }
    if path_params {
        codes.push(StatusCode::NOT_FOUND);
    }
    if body {
        codes.extend([
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::UNPROCESSABLE_ENTITY,
        ]);
    }
    codes.extend([
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ]);
    codes
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error_body = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let path_params = path.contains('{');
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
            ];
            for (operation, writes) in operations {
                let Some(op) = operation.as_mut() else {
                    continue;
                };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let body = op.request_body.is_some();
                for code in common_errors(secured, writes, path_params, body) {
                    op.responses
                        .responses
                        .entry(code.as_u16().to_string())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(code.canonical_reason().unwrap_or("Error"))
                                    .content("application/json", error_body())
                                    .build(),
                            )
                        });
                }
                for (code, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = code
                            .parse::<u16>()
                            .ok()
                            .and_then(|c| StatusCode::from_u16(c).ok())
                            .and_then(|c| c.canonical_reason())
                            .unwrap_or("Answer")
                            .to_owned();
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cloudgov",
        description = "Government-cloud resource governance (Pingdu Measures): agent ingest, \
                       findings, notices, deadlines, network registration, reviews. Every \
                       error is `{\"error\": code, \"message\": text}`. A department user sees \
                       only their department's rows; anything else is 404."
    ),
    paths(
        super::healthz,
        super::status,
        super::metrics,
        super::ingest::ingest,
        super::read::findings,
        super::read::notices,
        super::read::notice,
        super::read::agents,
        super::read::deadlines,
        super::read::alerts,
        super::read::network_findings,
        super::read::registry,
        super::read::reviews,
        super::read::audit,
        super::read::users,
        super::read::me,
        super::read::export_findings,
        super::read::export_notices,
        super::act::approve,
        super::act::complete,
        super::act::contest,
        super::act::decide,
        super::requests::list_requests,
        super::requests::request,
        super::requests::submit_request,
        super::requests::decide_request,
        super::requests::deliver_request,
        super::act::deployed,
        super::act::release_request,
        super::act::release_confirm,
        super::act::project_filed,
        super::act::registry_set,
        super::act::registry_remove,
    ),
    components(schemas(super::ErrorBody, IngestBatchDoc, IngestAckDoc, super::requests::SubmitRequestDoc)),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "operations", description = "Health, status, metrics"),
        (name = "agents", description = "What agents send"),
        (name = "read", description = "Findings, notices, deadlines, network, reviews, exports"),
        (name = "actions", description = "Approvals, confirmations, contests, registry edits"),
        (name = "accounts", description = "Who is asking; accounts; the audit log"),
    )
)]
pub struct ApiDoc;

/// The document and Swagger UI at `/api/docs/`.
pub(super) fn routes() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/api/docs").url(OPENAPI_PATH, ApiDoc::openapi()))
}

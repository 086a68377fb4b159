//! The OpenAPI document, generated from the handlers' annotations (utoipa), and Swagger UI.
//!
//! Served without signing in: `/api/v1/openapi.json` and `/api/docs/`. A test checks that every
//! route of the API appears in the document.

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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
                crate::auth::SESSION_COOKIE,
                "The browser session from `POST /login`; state-changing calls also need the \
                 `X-CSRF-Token` header",
            ))),
        );
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
        super::ingest,
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
        super::act::deployed,
        super::act::release_request,
        super::act::release_confirm,
        super::act::registry_set,
        super::act::registry_remove,
    ),
    components(schemas(super::ErrorBody, IngestBatchDoc, IngestAckDoc)),
    modifiers(&Security),
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

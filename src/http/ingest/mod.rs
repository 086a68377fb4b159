//! Agent ingest: `POST /api/v1/ingest` authenticates the agent's token before reading its body
//! (`tokens`: known valid tokens are cached, and checked again by the group commit), reads at
//! most [`MAX_BODY_BYTES`], checks every report (`check`) before anything is written, stores
//! the batch in its writer's next group commit (`group`) and records the agent's health (clock
//! skew, dropped reports) after.

use axum::Json;
use axum::extract::State;
use chrono::{TimeDelta, Utc};
use cloudgov_agent::wire::{IngestAck, IngestBatch, Text};

use crate::core::calendar::shanghai_day;
use crate::core::details::AlertFacts;
use crate::core::token;
use crate::http::metrics::IngestCounters;
use crate::http::{ApiError, AppState, ErrorBody};
use crate::store::ClockReading;

mod check;
pub mod group;
mod tokens;
pub use check::check_batch;
pub use tokens::AgentTokens;

/// Largest accepted request body; a day of 60 s reports with many interfaces fits well inside.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most reports in one batch.
pub const MAX_REPORTS_PER_BATCH: usize = 2000;

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
    pub(crate) fn check(
        &self,
        vm_key: i64,
        now: chrono::DateTime<Utc>,
        limit: u32,
    ) -> Result<(), i64> {
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

/// `POST /api/v1/ingest`: a batch of reports from one agent. The token is checked before the
/// body is read (401 first, whatever the body's size); then the whole batch is validated
/// before anything is written, and stored in one transaction; the answer comes after commit.
#[utoipa::path(post, path = "/api/v1/ingest", tag = "agents", security(("agent_token" = [])),
    request_body = crate::http::openapi::IngestBatchDoc,
    responses((status = 200, body = crate::http::openapi::IngestAckDoc),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "Rate limited; see Retry-After"),
              (status = 503, body = ErrorBody, description = "The database is unavailable; see Retry-After")))]
pub(super) async fn ingest(
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
    let token = crate::http::auth::bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
    let token_hash = token::hash(token);
    let (vm_key, vm_id) = state
        .agent_tokens
        .vm_for(&state.ctx.store, &token_hash)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let stored = store_agent_batch(&state, vm_key, &vm_id, &token_hash, body).await;
    if stored.is_err() {
        // The cache vouches for a token only while its requests succeed (a success passed the
        // group commit's own check of the token): after a failure, the next request is checked
        // against the database before its body is read, so a revoked token still cached gets
        // one request at most.
        state.agent_tokens.forget(&token_hash);
    }
    stored
}

/// The rest of [`store_batch`], for the VM whose token the request carries.
async fn store_agent_batch(
    state: &AppState,
    vm_key: i64,
    vm_id: &str,
    token_hash: &str,
    body: axum::body::Body,
) -> Result<IngestAck, ApiError> {
    let now = Utc::now();
    state
        .rate
        .check(vm_key, now, state.limits.requests_per_minute)
        .map_err(ApiError::TooManyRequests)?;
    // Read only now, and at most the limit: an unauthenticated sender never gets the daemon to
    // buffer its body, and an authenticated one not past MAX_BODY_BYTES.
    let body = read_limited(body).await?;
    // UTF-8 is checked once for the whole body: parsing from a `str` then skips checking each
    // string again (a batch holds a thousand or more).
    let body = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not a valid ingest batch: {e}")))?;
    // The reports' text is borrowed from the body, not copied out of it.
    let batch: IngestBatch<Text> = serde_json::from_str(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not a valid ingest batch: {e}")))?;
    if batch.reports.is_empty() || batch.reports.len() > MAX_REPORTS_PER_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds 1 to {MAX_REPORTS_PER_BATCH} reports, this one {}",
            batch.reports.len()
        )));
    }
    let clock = batch.sent_at.map(|sent_at| {
        let offset = now - sent_at;
        ClockReading {
            offset_secs: offset.num_seconds(),
            within_limit: offset.abs() <= state.limits.max_clock_skew,
        }
    });
    let checked =
        check_batch(&batch.reports, vm_key, vm_id, now, clock).map_err(ApiError::Unprocessable)?;
    let stored = state.ingest.store(checked, token_hash.to_owned()).await;
    let (accepted, duplicates) = stored.map_err(|e| match e {
        group::GroupError::Busy => ApiError::Busy,
        group::GroupError::TokenRefused => ApiError::Unauthorized,
        group::GroupError::Store(e) => ApiError::Internal(e),
    })?;
    raise_agent_alerts(state, vm_key, vm_id, &batch, clock, now).await?;
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

/// Alerts an agent's batch raises, after it is stored: a clock off by more than the limit, or
/// reports lost on the agent. (The clock offset itself, and the clearing of a skew alert once
/// the clock is back within the limit, are stored with the batch.)
async fn raise_agent_alerts(
    state: &AppState,
    vm_key: i64,
    vm_id: &str,
    batch: &IngestBatch<Text<'_>>,
    clock: Option<ClockReading>,
    now: chrono::DateTime<Utc>,
) -> Result<(), ApiError> {
    let store = &state.ctx.store;
    let today = shanghai_day(now);
    if let Some(clock) = clock.filter(|c| !c.within_limit) {
        let facts = AlertFacts::ClockSkew {
            offset_secs: clock.offset_secs,
            limit_secs: state.limits.max_clock_skew.num_seconds(),
        };
        if store.raise_alert(vm_key, &facts, now, today).await? {
            tracing::warn!(vm = %vm_id, offset_secs = clock.offset_secs, "agent clock skew");
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

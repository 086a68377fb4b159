//! Read models shared by the CLI and the API: deadlines as of a day, with state and timeline.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::calendar::shanghai_day;
use crate::core::obligations::{ObligationKind, ObligationState, state};
use crate::jobs::{JobContext, sync_deadlines};
use crate::store::{DeadlineEvent, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadlineView {
    pub id: i64,
    /// `deployment`, `adjustment` or `filing`.
    #[schema(value_type = String)]
    pub kind: ObligationKind,
    /// The VM it concerns: for a filing, the project's first deployed VM.
    pub vm: Option<String>,
    pub project: Option<String>,
    pub department: String,
    pub notice_id: Option<i64>,
    /// The day its clock started (delivery, receipt of the notice, first deployment): not
    /// counted.
    pub start: String,
    pub working_days: i64,
    /// The last day to act, `YYYY-MM-DD`.
    pub due: String,
    /// The due date reaches past the loaded calendar years (counted Monday-Friday).
    pub provisional: bool,
    /// `open`, `overdue`, `done_on_time` or `done_late`.
    #[schema(value_type = String)]
    pub state: ObligationState,
    pub done_on: Option<String>,
    pub done_source: Option<String>,
    pub timeline: Vec<DeadlineEvent>,
}

/// Every deadline with its state as of `at` (missing deadlines are created first, so a fresh
/// inventory shows its deployment deadlines at once), of one department or (`None`) all.
pub async fn deadlines_as_of(
    ctx: &JobContext,
    at: DateTime<Utc>,
    department: Option<&str>,
) -> Result<Vec<DeadlineView>, StoreError> {
    sync_deadlines(ctx, at).await?;
    let today = shanghai_day(at);
    let mut events: HashMap<i64, Vec<DeadlineEvent>> = HashMap::new();
    for e in ctx.store.deadline_events().await? {
        events.entry(e.deadline_id).or_default().push(e);
    }
    let rows = ctx.store.deadlines_in(department).await?;
    Ok(rows
        .into_iter()
        .map(|d| {
            let timeline = events.remove(&d.id).unwrap_or_default();
            DeadlineView {
                id: d.id,
                kind: d.kind,
                vm: d.vm,
                project: d.project,
                department: d.department,
                notice_id: d.notice_id,
                start: d.start_on.to_string(),
                working_days: d.working_days,
                due: d.due_on.to_string(),
                provisional: d.provisional,
                state: state(d.due_on, d.done_on, today),
                done_on: d.done_on.map(|x| x.to_string()),
                done_source: d.done_source,
                timeline,
            }
        })
        .collect())
}

//! A resource request as staff review it: the stored request with, per requested VM, the size
//! the department's own measured usage recommends and why (computed when the request is read,
//! from the latest findings), and the evidence it rests on.

use serde::Serialize;

use crate::core::domain::{DepartmentId, ProjectId};
use crate::core::requests::{RequestState, Size, size_request};
use crate::jobs::JobContext;
use crate::store::{RequestRow, StoreError};

/// One requested VM with its recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RequestVmView {
    pub id: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    /// What the department's similar VMs' usage recommends.
    #[schema(value_type = Object)]
    pub recommended: Size,
    /// One line per resource (cpu, memory, disk), in the rules' language (formal Chinese by
    /// default), citing the figures.
    pub reasons: Vec<String>,
    pub reasons_zh: Vec<String>,
    pub reasons_en: Vec<String>,
    /// The VMs the recommendation rests on.
    pub comparables: Vec<String>,
    /// The size approved (amended or as asked); `null` until approved.
    #[schema(value_type = Option<Object>)]
    pub approved: Option<Size>,
}

/// The department's usage as evidence for a request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RequestEvidence {
    /// The department's VMs in service with their latest statistics (percent).
    #[schema(value_type = Vec<Object>)]
    pub vms: Vec<crate::core::requests::Comparable>,
    pub open_downsize_notices: i64,
    pub unused_vms: Vec<String>,
}

/// A request as the API, the CLI and the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: i64,
    /// `submitted`, `approved`, `rejected` or `delivered`.
    #[schema(value_type = String)]
    pub state: RequestState,
    pub department: String,
    pub project: String,
    pub project_name: Option<String>,
    pub purpose: String,
    pub expected_load: String,
    pub desired_on: Option<String>,
    pub submitted_on: String,
    pub submitted_by: String,
    /// The center's answer is due on this day (5 working days after submission by default).
    pub due: Option<String>,
    pub decided_on: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub delivered_on: Option<String>,
    pub vms: Vec<RequestVmView>,
    pub evidence: RequestEvidence,
}

/// The view of a stored request, its recommendations computed now.
pub async fn view(ctx: &JobContext, r: RequestRow) -> Result<RequestView, StoreError> {
    let usage = ctx
        .store
        .department_usage(&r.department, &r.project, r.id)
        .await?;
    let rules = match (
        DepartmentId::try_from(r.department.as_str()),
        ProjectId::try_from(r.project.as_str()),
    ) {
        (Ok(d), Ok(p)) => ctx.rules.for_vm(&d, &p),
        _ => *ctx.rules.defaults(),
    };
    let language = ctx.rules.notices().language;
    let vms = r
        .vms
        .iter()
        .map(|v| {
            let asked = Size {
                vcpus: v.vcpus,
                memory_gib: v.memory_gib,
                disk_gib: v.disk_gib,
            };
            let sizing = size_request(asked, &usage.comparables, &rules);
            RequestVmView {
                id: v.id.clone(),
                vcpus: v.vcpus,
                memory_gib: v.memory_gib,
                disk_gib: v.disk_gib,
                recommended: sizing.recommended,
                reasons: sizing.reasons(language).to_vec(),
                reasons_zh: sizing.reasons_zh.clone(),
                reasons_en: sizing.reasons_en.clone(),
                comparables: sizing.comparables,
                approved: v.approved,
            }
        })
        .collect();
    // Before the deadline job has stored the obligation, its due date is the same arithmetic.
    let due = r.due.or_else(|| {
        let submitted = chrono::NaiveDate::parse_from_str(&r.submitted_on, "%Y-%m-%d").ok()?;
        let period = ctx
            .rules
            .deadlines()
            .period(crate::core::obligations::ObligationKind::RequestAnswer);
        Some(
            ctx.calendar
                .add_workdays(submitted, period)
                .value
                .to_string(),
        )
    });
    Ok(RequestView {
        due,
        id: r.id,
        state: r.state,
        department: r.department,
        project: r.project,
        project_name: r.project_name,
        purpose: r.purpose,
        expected_load: r.expected_load,
        desired_on: r.desired_on,
        submitted_on: r.submitted_on,
        submitted_by: r.submitted_by,
        decided_on: r.decided_on,
        decided_by: r.decided_by,
        decision_reason: r.decision_reason,
        delivered_on: r.delivered_on,
        vms,
        evidence: RequestEvidence {
            vms: usage.comparables,
            open_downsize_notices: usage.open_downsize_notices,
            unused_vms: usage.unused_vms,
        },
    })
}

/// One request the viewer's department may see, as a view.
pub async fn view_in(
    ctx: &JobContext,
    department: Option<&str>,
    id: i64,
) -> Result<Option<RequestView>, StoreError> {
    match ctx.store.request_in(department, id).await? {
        Some(r) => Ok(Some(view(ctx, r).await?)),
        None => Ok(None),
    }
}

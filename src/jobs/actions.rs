//! What people do, checked once: approve and complete notices, contest them, confirm
//! deployment and release, edit the IP registry. The forms, the JSON API and the CLI all call
//! these, so the role, department and date checks and the audit log entry cannot be skipped.
//! The CLI acts as a local operator ([`Viewer::local_operator`], audited as `cli:USER`).
//!
//! Who may do what:
//! - staff (admin, operator): everything;
//! - a department user, for their own department's VMs only: confirm deployment, request a
//!   release, contest a notice. Anything of another department is "not found".
//! - staff decide contests of release advice: uphold or withdraw.
//!
//! Dates people give are checked against what they speak of: an adjustment is done on or after
//! its notice was issued, a deployment on or after delivery, a release on or after its
//! request; none of them in the future.

use chrono::{NaiveDate, Utc};

use crate::core::access::Viewer;
use crate::core::calendar::shanghai_day;
use crate::core::details::AuditFacts;
use crate::core::domain::{
    DepartmentId, Direction, InvalidValue, MacAddr, ProjectId, VmId, check_text,
};
use crate::jobs::{JobContext, sync_deadlines};
use crate::store::{ContestDecision, StoreError, VmFacts};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an action did: a stable code (the dashboard shows its text in the page's language after
/// the redirect, so no free text travels in a URL) and a message for the API and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: &'static str,
    pub message: String,
}

fn outcome(code: &'static str, message: String) -> Result<Outcome> {
    Ok(Outcome { code, message })
}

/// Every outcome code an action can return (each has a `flash_CODE` string in the web's i18n
/// table; a test checks both).
pub const OUTCOME_CODES: &[&str] = &[
    "notice_approved",
    "notice_completed",
    "notice_contested",
    "contest_upheld",
    "contest_withdrawn",
    "vm_deployed",
    "release_requested",
    "vm_released",
    "registry_registered",
    "registry_changed",
    "registry_unchanged",
    "registry_removed",
    "project_filed",
    "request_submitted",
    "request_approved",
    "request_rejected",
    "request_delivered",
];

type Result<T> = std::result::Result<T, ActionError>;

fn staff_only(viewer: &Viewer, what: &str) -> Result<()> {
    if viewer.is_staff() {
        Ok(())
    } else {
        Err(ActionError::Forbidden(format!(
            "only center staff may {what}"
        )))
    }
}

/// The VM's facts if the viewer may see the VM; otherwise "not found".
async fn visible_vm(ctx: &JobContext, viewer: &Viewer, vm: &VmId) -> Result<VmFacts> {
    ctx.store
        .vm_facts(vm.as_str())
        .await?
        .filter(|f| viewer.scope.allows(&f.department))
        .ok_or_else(|| ActionError::NotFound(format!("no VM {vm}")))
}

/// The notice's issue day if the viewer may see the notice; otherwise "not found".
async fn visible_notice(ctx: &JobContext, viewer: &Viewer, id: i64) -> Result<NaiveDate> {
    ctx.store
        .notice_facts(id)
        .await?
        .filter(|f| viewer.scope.allows(&f.department))
        .map(|f| f.issued_on)
        .ok_or_else(|| ActionError::NotFound(format!("no notice {id}")))
}

/// Writes an audit entry for something done outside the actions below (imports, tokens,
/// accounts from the CLI), so every write is in the log.
pub async fn record(
    ctx: &JobContext,
    viewer: &Viewer,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    audit(ctx, viewer, action, target, detail, AuditFacts::default()).await
}

/// Writes the audit entry: `detail` in English (CLI, API), `facts` for the audit page.
async fn audit(
    ctx: &JobContext,
    viewer: &Viewer,
    action: &str,
    target: &str,
    detail: &str,
    facts: AuditFacts,
) -> Result<()> {
    ctx.store
        .audit(
            (viewer.user_id > 0).then_some(viewer.user_id),
            &viewer.username,
            action,
            target,
            detail,
            Some(&facts),
            Utc::now().timestamp(),
        )
        .await?;
    tracing::info!(user = %viewer.username, action, target, detail, "audit");
    Ok(())
}

/// Staff approve notices held for approval; each department's get one digest e-mail.
pub async fn approve_notices(ctx: &JobContext, viewer: &Viewer, ids: &[i64]) -> Result<Outcome> {
    for &id in ids {
        visible_notice(ctx, viewer, id).await?;
    }
    staff_only(viewer, "approve notices")?;
    let approved = ctx.store.approve_notices(ids, Utc::now()).await?;
    if approved.is_empty() {
        return Err(ActionError::Invalid(format!(
            "notices {ids:?} are already approved or closed"
        )));
    }
    for id in &approved {
        audit(
            ctx,
            viewer,
            "approve_notice",
            &format!("notice {id}"),
            "",
            AuditFacts::default(),
        )
        .await?;
    }
    outcome(
        "notice_approved",
        format!(
            "approved {} notices and queued them for e-mail: {approved:?}",
            approved.len()
        ),
    )
}

/// Staff approve one notice held for approval; it is queued for e-mail as a digest.
pub async fn approve_notice(ctx: &JobContext, viewer: &Viewer, id: i64) -> Result<Outcome> {
    approve_notices(ctx, viewer, &[id]).await.map(|_| Outcome {
        code: "notice_approved",
        message: format!("notice {id} approved and queued for e-mail"),
    })
}

/// Staff confirm the adjustment a notice asked for was done on `on`: on or after the notice
/// was issued, and not in the future.
pub async fn complete_notice(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    on: NaiveDate,
) -> Result<Outcome> {
    let issued_on = visible_notice(ctx, viewer, id).await?;
    staff_only(viewer, "confirm that an adjustment is done")?;
    if ctx
        .store
        .notice_in(None, id)
        .await?
        .is_some_and(|n| n.kind == Direction::Release)
    {
        return Err(ActionError::Invalid(format!(
            "notice {id} is release advice: it is answered by a release request (vm request-release) or withdrawn after a contest, not completed"
        )));
    }
    check_not_future("the adjustment", on)?;
    if on < issued_on {
        return Err(ActionError::Invalid(format!(
            "notice {id} was issued on {issued_on}: its adjustment cannot be done on {on}, before it"
        )));
    }
    sync_deadlines(ctx, Utc::now()).await?;
    let deadline = ctx
        .store
        .deadline_of_notice(id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("notice {id} has no deadline")))?;
    if !ctx
        .store
        .complete_deadline(deadline, on, "confirmed", Utc::now())
        .await?
    {
        return Err(ActionError::Invalid(format!(
            "notice {id} was already done"
        )));
    }
    audit(
        ctx,
        viewer,
        "complete_notice",
        &format!("notice {id}"),
        &format!("done on {on}"),
        AuditFacts {
            on: Some(on),
            ..Default::default()
        },
    )
    .await?;
    outcome(
        "notice_completed",
        format!("notice {id}: adjustment done on {on} (confirmed)"),
    )
}

/// The department (or staff) object to a notice, with a reason staff read.
pub async fn contest_notice(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    reason: &str,
) -> Result<Outcome> {
    visible_notice(ctx, viewer, id).await?;
    let reason = required_reason("contest", reason)?;
    let notice = ctx
        .store
        .notice_in(None, id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no notice {id}")))?;
    if notice.state == crate::core::domain::NoticeState::Closed {
        return Err(ActionError::Invalid(format!(
            "notice {id} is closed: there is nothing to contest"
        )));
    }
    // A contest of release advice holds its clock until staff decide; once they upheld it,
    // a second contest would only hold it again.
    if notice.kind == Direction::Release
        && ctx
            .store
            .contests(id)
            .await?
            .iter()
            .any(|c| c.decision.as_deref() == Some(ContestDecision::Upheld.as_str()))
    {
        return Err(ActionError::Invalid(format!(
            "notice {id}: staff upheld the release advice after a contest; request the release, or write to the center"
        )));
    }
    ctx.store
        .add_contest(
            id,
            (viewer.user_id > 0).then_some(viewer.user_id),
            &viewer.username,
            reason,
            Utc::now().timestamp(),
        )
        .await?;
    audit(
        ctx,
        viewer,
        "contest_notice",
        &format!("notice {id}"),
        reason,
        AuditFacts {
            reason: Some(reason.to_owned()),
            ..Default::default()
        },
    )
    .await?;
    outcome("notice_contested", format!("notice {id} contested"))
}

/// Staff decide a contested release advice: uphold it (the department requests the release by
/// the due date; reminders and escalation resume) or withdraw it (the notice closes, its
/// obligation is answered, and the VM is not advised again until it is seen in use).
pub async fn decide_contest(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    decision: ContestDecision,
    reason: &str,
) -> Result<Outcome> {
    visible_notice(ctx, viewer, id).await?;
    staff_only(viewer, "decide a contest")?;
    let reason = required_reason("decision", reason)?;
    let notice = ctx
        .store
        .notice_in(None, id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no notice {id}")))?;
    if notice.kind != Direction::Release {
        return Err(ActionError::Invalid(format!(
            "notice {id} is {} advice: only release advice is upheld or withdrawn (staff complete or leave the others)",
            notice.kind
        )));
    }
    let now = Utc::now();
    if !ctx
        .store
        .decide_contest(id, decision, &viewer.username, reason, now)
        .await?
    {
        return Err(ActionError::Invalid(format!(
            "notice {id} has no undecided contest, or is closed"
        )));
    }
    let action = format!("contest_{}", decision.as_str());
    audit(
        ctx,
        viewer,
        &action,
        &format!("notice {id}"),
        reason,
        AuditFacts {
            reason: Some(reason.to_owned()),
            outcome: Some(decision.as_str().to_owned()),
            ..Default::default()
        },
    )
    .await?;
    // A withdrawal answers the obligation (its evidence): now rather than at the next pass.
    after_write(ctx).await;
    let (code, message) = match decision {
        ContestDecision::Upheld => (
            "contest_upheld",
            format!("notice {id}: the contest is decided, the release advice stands"),
        ),
        ContestDecision::Withdrawn => (
            "contest_withdrawn",
            format!("notice {id}: the release advice is withdrawn"),
        ),
    };
    outcome(code, message)
}

/// The department or staff confirm the system on `vm` was deployed on `on`: on or after its
/// delivery, not in the future.
pub async fn mark_deployed(
    ctx: &JobContext,
    viewer: &Viewer,
    vm: &VmId,
    on: NaiveDate,
) -> Result<Outcome> {
    let facts = visible_vm(ctx, viewer, vm).await?;
    check_not_future("the deployment", on)?;
    if on < facts.delivered_on {
        return Err(ActionError::Invalid(format!(
            "{vm} was delivered on {}: it cannot be deployed on {on}, before it",
            facts.delivered_on
        )));
    }
    // Only this VM's deadline is touched: a full check would act as of the wall clock, which
    // is not the instant a back-dated confirmation speaks of.
    if let Some(deadline) = ctx.store.mark_deployed(vm, on, "confirmed").await? {
        ctx.store
            .complete_deadline(deadline, on, "confirmed", Utc::now())
            .await?;
    }
    audit(
        ctx,
        viewer,
        "mark_deployed",
        &format!("vm {vm}"),
        &format!("deployed on {on}"),
        AuditFacts {
            on: Some(on),
            ..Default::default()
        },
    )
    .await?;
    outcome("vm_deployed", format!("{vm} deployed on {on} (confirmed)"))
}

/// The department (or staff) ask to release a VM no longer used: on or after its delivery,
/// not in the future.
pub async fn request_release(
    ctx: &JobContext,
    viewer: &Viewer,
    vm: &VmId,
    on: NaiveDate,
    reason: &str,
) -> Result<Outcome> {
    let facts = visible_vm(ctx, viewer, vm).await?;
    check_not_future("the release request", on)?;
    if on < facts.delivered_on {
        return Err(ActionError::Invalid(format!(
            "{vm} was delivered on {}: its release cannot be requested on {on}, before it",
            facts.delivered_on
        )));
    }
    check_text("reason", reason.trim(), MAX_REASON_CHARS).map_err(invalid)?;
    ctx.store.request_release(vm, on, reason.trim()).await?;
    audit(
        ctx,
        viewer,
        "request_release",
        &format!("vm {vm}"),
        &format!("on {on}: {}", reason.trim()),
        AuditFacts {
            on: Some(on),
            reason: Some(reason.trim().to_owned()),
            ..Default::default()
        },
    )
    .await?;
    outcome(
        "release_requested",
        format!(
            "release of {vm} requested on {on}; staff confirm with `cloudgov vm confirm-release {vm} --on DATE`"
        ),
    )
}

/// Staff confirm a release: the VM is no longer evaluated and its notices close. The day is
/// on or after the request (or the delivery, without a request), not in the future.
pub async fn confirm_release(
    ctx: &JobContext,
    viewer: &Viewer,
    vm: &VmId,
    on: NaiveDate,
) -> Result<Outcome> {
    let facts = visible_vm(ctx, viewer, vm).await?;
    staff_only(viewer, "confirm a release")?;
    check_not_future("the release", on)?;
    if let Some(released) = facts.released_on {
        return Err(ActionError::Invalid(format!(
            "{vm} was already released on {released}"
        )));
    }
    let (since, what) = match facts.release_requested_on {
        Some(requested) => (requested, "its release was requested"),
        None => (facts.delivered_on, "it was delivered"),
    };
    if on < since {
        return Err(ActionError::Invalid(format!(
            "{vm}: {what} on {since}, so it cannot be released on {on}, before it"
        )));
    }
    let closed = ctx.store.confirm_release(vm, on, Utc::now()).await?;
    audit(
        ctx,
        viewer,
        "confirm_release",
        &format!("vm {vm}"),
        &format!("released on {on}; {closed} deadlines closed"),
        AuditFacts {
            on: Some(on),
            deadlines_closed: Some(closed),
            ..Default::default()
        },
    )
    .await?;
    outcome(
        "vm_released",
        format!("{vm} released on {on}; {closed} open deadlines closed"),
    )
}

/// A department (for itself) or staff (for any department, possibly back-dated) submit a
/// resource request; its receipt is e-mailed and the center's answer is due
/// `request_answer_working_days` later.
pub async fn submit_request(
    ctx: &JobContext,
    viewer: &Viewer,
    raw: crate::core::requests::RawRequest,
) -> Result<(i64, Outcome)> {
    let today = shanghai_day(Utc::now());
    let form =
        crate::core::requests::RequestForm::parse(raw, today).map_err(ActionError::Invalid)?;
    if !viewer.scope.allows(form.department().as_str()) {
        return Err(ActionError::Forbidden(format!(
            "a department user submits requests for their own department, not {}",
            form.department()
        )));
    }
    let submitted_on = match form.submitted_on() {
        Some(d) if d != today => {
            staff_only(viewer, "back-date a request (submitted_on)")?;
            d
        }
        _ => today,
    };
    let id = ctx
        .store
        .submit_request(&form, submitted_on, &viewer.username, Utc::now())
        .await
        .map_err(store_invalid)?;
    audit(
        ctx,
        viewer,
        "submit_request",
        &format!("request {id}"),
        &format!(
            "department {}, project {}, {} VMs, submitted on {submitted_on}",
            form.department(),
            form.project(),
            form.vms().len()
        ),
        AuditFacts {
            on: Some(submitted_on),
            department: Some(form.department().to_string()),
            ..Default::default()
        },
    )
    .await?;
    after_write(ctx).await;
    Ok((
        id,
        Outcome {
            code: "request_submitted",
            message: format!("request {id} submitted"),
        },
    ))
}

/// Staff approve a request (as asked, or with `amend`ed sizes) or reject it, always with a
/// reason, on `on` (default today; a paper decision entered later: on or after the submission,
/// not in the future); the department is e-mailed the decision.
pub async fn decide_request(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    approve: bool,
    amend: &[crate::core::requests::RequestedVm],
    reason: &str,
    on: Option<NaiveDate>,
) -> Result<Outcome> {
    let request = ctx
        .store
        .request_in(viewer.scope.department(), id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no request {id}")))?;
    staff_only(viewer, "decide a resource request")?;
    let reason = required_reason("decision", reason)?;
    if !approve && !amend.is_empty() {
        return Err(ActionError::Invalid(
            "a rejection amends nothing: leave out the amendment".into(),
        ));
    }
    let on = match on {
        Some(on) => {
            check_not_future("the decision", on)?;
            if on.to_string() < request.submitted_on {
                return Err(ActionError::Invalid(format!(
                    "request {id} was submitted on {}: it cannot be decided on {on}, before it",
                    request.submitted_on
                )));
            }
            on
        }
        None => shanghai_day(Utc::now()),
    };
    ctx.store
        .decide_request(id, approve, amend, &viewer.username, reason, on)
        .await
        .map_err(store_invalid)?;
    let (action, code, what) = if approve {
        ("approve_request", "request_approved", "approved")
    } else {
        ("reject_request", "request_rejected", "rejected")
    };
    let amended: Vec<String> = amend.iter().map(|a| a.id.to_string()).collect();
    audit(
        ctx,
        viewer,
        action,
        &format!("request {id}"),
        &if amended.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason} (amended: {})", amended.join(", "))
        },
        AuditFacts {
            reason: Some(reason.to_owned()),
            outcome: Some(what.to_owned()),
            ..Default::default()
        },
    )
    .await?;
    // The center's obligation is answered now, not at the next pass (which would too).
    after_write(ctx).await;
    outcome(code, format!("request {id} {what}"))
}

/// Staff record the delivery of an approved request on `on` (not in the future): its VMs are
/// created at the approved sizes and their deployment deadlines start (art. 13).
pub async fn deliver_request(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    on: NaiveDate,
) -> Result<Outcome> {
    visible_request(ctx, viewer, id).await?;
    staff_only(viewer, "record a delivery")?;
    check_not_future("the delivery", on)?;
    let vms = ctx
        .store
        .deliver_request(id, on)
        .await
        .map_err(store_invalid)?;
    audit(
        ctx,
        viewer,
        "deliver_request",
        &format!("request {id}"),
        &format!("{vms} VMs delivered on {on}"),
        AuditFacts {
            on: Some(on),
            ..Default::default()
        },
    )
    .await?;
    after_write(ctx).await;
    outcome(
        "request_delivered",
        format!("request {id}: {vms} VMs delivered on {on}; their deployment deadlines run"),
    )
}

/// After a write is stored and audited: start the clocks it started and close what it
/// answered, now rather than at the next pass. A failure here loses nothing (the next pass
/// does the same), so it is logged, not returned: the write stands and is audited.
async fn after_write(ctx: &JobContext) {
    let now = Utc::now();
    let result = async {
        sync_deadlines(ctx, now).await?;
        for (deadline, on) in ctx.store.requests_answered_to_close().await? {
            ctx.store
                .complete_deadline(deadline, on, "answered", now)
                .await?;
        }
        for (deadline, on, source) in ctx.store.releases_to_close().await? {
            ctx.store
                .complete_deadline(deadline, on, source, now)
                .await?;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "obligations not brought up to date after an action; the next pass will");
    }
}

/// The request's department if the viewer may see it; otherwise "not found".
async fn visible_request(ctx: &JobContext, viewer: &Viewer, id: i64) -> Result<String> {
    ctx.store
        .request_in(viewer.scope.department(), id)
        .await?
        .map(|r| r.department)
        .ok_or_else(|| ActionError::NotFound(format!("no request {id}")))
}

/// A store refusal (a rule of the data, e.g. a VM that exists) as the caller's mistake.
fn store_invalid(e: StoreError) -> ActionError {
    match e {
        StoreError::Invalid(m) => ActionError::Invalid(m),
        other => ActionError::Store(other),
    }
}

/// A reason someone must give (a contest, a decision): trimmed, 1 to [`MAX_REASON_CHARS`]
/// characters, no control characters.
fn required_reason<'a>(what: &str, reason: &'a str) -> Result<&'a str> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ActionError::Invalid(format!(
            "a {what} needs a reason of 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    check_text("reason", reason, MAX_REASON_CHARS).map_err(invalid)?;
    Ok(reason)
}

/// Longest reason a contest or release request may carry.
pub const MAX_REASON_CHARS: usize = 2000;

/// Staff record that a project was filed (全口径备案, art. 10) on `on`: not in the future. Its
/// filing obligation is done on that day.
pub async fn file_project(
    ctx: &JobContext,
    viewer: &Viewer,
    project: &ProjectId,
    on: NaiveDate,
) -> Result<Outcome> {
    let department = ctx
        .store
        .project_department(project.as_str())
        .await?
        .filter(|d| viewer.scope.allows(d))
        .ok_or_else(|| ActionError::NotFound(format!("no project {project}")))?;
    staff_only(viewer, "record a project's filing")?;
    check_not_future("the filing", on)?;
    if let Some(deadline) = ctx.store.file_project(project.as_str(), on).await? {
        ctx.store
            .complete_deadline(deadline, on, "confirmed", Utc::now())
            .await?;
    }
    audit(
        ctx,
        viewer,
        "file_project",
        &format!("project {project}"),
        &format!("filed on {on} (department {department})"),
        AuditFacts {
            on: Some(on),
            department: Some(department),
            ..Default::default()
        },
    )
    .await?;
    outcome("project_filed", format!("project {project} filed on {on}"))
}

/// One IP registry entry as a person enters it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct RegistryEdit {
    pub ip: String,
    pub mac: String,
    pub department: String,
    pub holder: String,
    /// `YYYY-MM-DD`; default: kept, or today for a new entry.
    #[serde(default)]
    pub registered_on: Option<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub gateway: bool,
}

/// Staff register an IP or change its registration.
pub async fn set_registry(
    ctx: &JobContext,
    viewer: &Viewer,
    edit: &RegistryEdit,
) -> Result<Outcome> {
    staff_only(viewer, "edit the IP registry")?;
    let ip: std::net::IpAddr = edit.ip.trim().parse().map_err(|_| {
        ActionError::Invalid(format!(
            "ip {:?} is not an IPv4 or IPv6 address",
            truncated(&edit.ip)
        ))
    })?;
    let mac: MacAddr = edit.mac.trim().parse().map_err(|_| {
        ActionError::Invalid(format!(
            "mac {:?} is not a MAC address",
            truncated(&edit.mac)
        ))
    })?;
    let department = DepartmentId::try_from(edit.department.trim()).map_err(|_| {
        ActionError::Invalid(format!(
            "department {:?} is not a department id",
            truncated(&edit.department)
        ))
    })?;
    if !ctx
        .store
        .department_ids()
        .await?
        .contains(department.as_str())
    {
        return Err(ActionError::Invalid(format!(
            "department {department} is not in the inventory"
        )));
    }
    let registered_on = match edit.registered_on.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => {
            let day = parse_day("registered_on", d)?;
            check_not_future("registered_on", day)?;
            Some(day)
        }
    };
    let row = crate::core::domain::RegistryRow::new(
        ip,
        mac,
        department,
        edit.holder.trim(),
        registered_on,
        edit.note.trim(),
        edit.gateway,
        shanghai_day(Utc::now()),
    )
    .map_err(invalid)?;
    let source = if viewer.username.starts_with("cli:") {
        viewer.username.clone()
    } else {
        format!("ui:{}", viewer.username)
    };
    let s = ctx
        .store
        .apply_ip_registry(&[row], &source, shanghai_day(Utc::now()))
        .await?;
    let (code, what) = if s.added > 0 {
        ("registry_registered", "registered")
    } else if s.changed > 0 {
        ("registry_changed", "changed")
    } else {
        ("registry_unchanged", "unchanged")
    };
    audit(
        ctx,
        viewer,
        "set_registry",
        &format!("ip {ip}"),
        &format!("{what}: mac {mac}, department {}", edit.department.trim()),
        AuditFacts {
            outcome: Some(what.to_owned()),
            mac: Some(mac.to_string()),
            department: Some(edit.department.trim().to_owned()),
            ..Default::default()
        },
    )
    .await?;
    outcome(code, format!("{ip}: {what}"))
}

/// Staff remove an IP from the registry.
pub async fn remove_registry(ctx: &JobContext, viewer: &Viewer, ip: &str) -> Result<Outcome> {
    staff_only(viewer, "edit the IP registry")?;
    let ip: std::net::IpAddr = ip.trim().parse().map_err(|_| {
        ActionError::Invalid(format!(
            "ip {:?} is not an IPv4 or IPv6 address",
            truncated(ip)
        ))
    })?;
    let source = if viewer.username.starts_with("cli:") {
        viewer.username.clone()
    } else {
        format!("ui:{}", viewer.username)
    };
    if !ctx.store.remove_ip_registration(ip, &source).await? {
        return Err(ActionError::NotFound(format!("{ip} is not registered")));
    }
    audit(
        ctx,
        viewer,
        "remove_registry",
        &format!("ip {ip}"),
        "",
        AuditFacts::default(),
    )
    .await?;
    outcome("registry_removed", format!("{ip}: removed"))
}

fn invalid(e: InvalidValue) -> ActionError {
    ActionError::Invalid(e.to_string())
}

/// At most 64 characters of what someone typed, for an error message about it.
fn truncated(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

fn check_not_future(what: &str, on: NaiveDate) -> Result<()> {
    let today = shanghai_day(Utc::now());
    if on > today {
        return Err(ActionError::Invalid(format!(
            "{what} cannot be on {on}: that is in the future (today is {today})"
        )));
    }
    Ok(())
}

/// Parses a `YYYY-MM-DD` form field.
pub fn parse_day(field: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        ActionError::Invalid(format!(
            "{field} {:?} is not a date (YYYY-MM-DD)",
            truncated(value)
        ))
    })
}

/// Parses a VM id from a path.
pub fn parse_vm(value: &str) -> Result<VmId> {
    VmId::try_from(value).map_err(|e| ActionError::NotFound(e.to_string()))
}

/// Parses a request decision: `approve` -> true, `reject` -> false.
pub fn parse_request_decision(value: &str) -> Result<bool> {
    match value.trim() {
        "approve" => Ok(true),
        "reject" => Ok(false),
        other => Err(ActionError::Invalid(format!(
            "decision {:?} is not approve or reject",
            truncated(other)
        ))),
    }
}

/// Checks the amended sizes of a decision; none given is no amendment.
pub fn parse_amendment(
    raw: &[crate::core::requests::RawRequestVm],
) -> Result<Vec<crate::core::requests::RequestedVm>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    crate::core::requests::checked_vms(raw).map_err(ActionError::Invalid)
}

/// Parses `uphold` or `withdraw`.
pub fn parse_decision(value: &str) -> Result<ContestDecision> {
    match value.trim() {
        "uphold" => Ok(ContestDecision::Upheld),
        "withdraw" => Ok(ContestDecision::Withdrawn),
        other => Err(ActionError::Invalid(format!(
            "decision {:?} is not uphold or withdraw",
            truncated(other)
        ))),
    }
}

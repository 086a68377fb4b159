//! What people do, checked once: approve and complete notices, contest them, confirm
//! deployment and release, edit the IP registry. The forms, the JSON API and the CLI all call
//! these, so the role and department checks and the audit log entry cannot be skipped.
//!
//! Who may do what:
//! - staff (admin, operator): everything;
//! - a department user, for their own department's VMs only: confirm deployment, request a
//!   release, contest a notice. Anything of another department is "not found".

use chrono::{NaiveDate, Utc};

use crate::access::Viewer;
use crate::details::AuditFacts;
use crate::domain::{DepartmentId, MacAddr, VmId};
use crate::jobs::{JobContext, shanghai_day, sync_deadlines};
use crate::store::StoreError;

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

/// The VM's department if the viewer may see the VM; otherwise "not found".
async fn visible_vm(ctx: &JobContext, viewer: &Viewer, vm: &VmId) -> Result<String> {
    ctx.store
        .vm_department(vm.as_str())
        .await?
        .filter(|d| viewer.scope.allows(d))
        .ok_or_else(|| ActionError::NotFound(format!("no VM {vm}")))
}

async fn visible_notice(ctx: &JobContext, viewer: &Viewer, id: i64) -> Result<String> {
    ctx.store
        .notice_department(id)
        .await?
        .filter(|d| viewer.scope.allows(d))
        .ok_or_else(|| ActionError::NotFound(format!("no notice {id}")))
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

/// Staff approve a notice held for approval; it is queued for e-mail as a digest.
pub async fn approve_notice(ctx: &JobContext, viewer: &Viewer, id: i64) -> Result<String> {
    visible_notice(ctx, viewer, id).await?;
    staff_only(viewer, "approve notices")?;
    let approved = ctx.store.approve_notices(&[id], Utc::now()).await?;
    if approved.is_empty() {
        return Err(ActionError::Invalid(format!(
            "notice {id} is already approved or closed"
        )));
    }
    audit(
        ctx,
        viewer,
        "approve_notice",
        &format!("notice {id}"),
        "",
        AuditFacts::default(),
    )
    .await?;
    Ok(format!("notice {id} approved and queued for e-mail"))
}

/// Staff confirm the adjustment a notice asked for was done on `on`.
pub async fn complete_notice(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    on: NaiveDate,
) -> Result<String> {
    visible_notice(ctx, viewer, id).await?;
    staff_only(viewer, "confirm that an adjustment is done")?;
    check_not_future(on)?;
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
    Ok(format!("notice {id}: adjustment done on {on}"))
}

/// The department (or staff) object to a notice, with a reason staff read.
pub async fn contest_notice(
    ctx: &JobContext,
    viewer: &Viewer,
    id: i64,
    reason: &str,
) -> Result<String> {
    visible_notice(ctx, viewer, id).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(ActionError::Invalid(
            "a contest needs a reason of 1 to 2000 characters".into(),
        ));
    }
    ctx.store
        .add_contest(
            id,
            viewer.user_id,
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
    Ok(format!("notice {id} contested"))
}

/// The department or staff confirm the system on `vm` was deployed on `on`.
pub async fn mark_deployed(
    ctx: &JobContext,
    viewer: &Viewer,
    vm: &VmId,
    on: NaiveDate,
) -> Result<String> {
    visible_vm(ctx, viewer, vm).await?;
    check_not_future(on)?;
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
    Ok(format!("{vm} deployed on {on} (confirmed)"))
}

/// The department (or staff) ask to release a VM no longer used.
pub async fn request_release(
    ctx: &JobContext,
    viewer: &Viewer,
    vm: &VmId,
    on: NaiveDate,
    reason: &str,
) -> Result<String> {
    visible_vm(ctx, viewer, vm).await?;
    check_not_future(on)?;
    if reason.trim().chars().count() > 2000 {
        return Err(ActionError::Invalid(
            "a release reason has at most 2000 characters".into(),
        ));
    }
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
    Ok(format!("release of {vm} requested on {on}"))
}

/// Staff confirm a release: the VM is no longer evaluated and its notices close.
pub async fn confirm_release(
    ctx: &JobContext,
    viewer: &Viewer,
    vm: &VmId,
    on: NaiveDate,
) -> Result<String> {
    visible_vm(ctx, viewer, vm).await?;
    staff_only(viewer, "confirm a release")?;
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
    Ok(format!(
        "{vm} released on {on}; {closed} open deadlines closed"
    ))
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
) -> Result<String> {
    staff_only(viewer, "edit the IP registry")?;
    let ip: std::net::IpAddr = edit.ip.trim().parse().map_err(|_| {
        ActionError::Invalid(format!("ip {:?} is not an IPv4 or IPv6 address", edit.ip))
    })?;
    let mac: MacAddr = edit
        .mac
        .trim()
        .parse()
        .map_err(|e| ActionError::Invalid(format!("mac: {e}")))?;
    let department = DepartmentId::try_from(edit.department.trim())
        .map_err(|e| ActionError::Invalid(e.to_string()))?;
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
    if edit.holder.trim().is_empty() {
        return Err(ActionError::Invalid("holder is empty".into()));
    }
    let registered_on = match edit.registered_on.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(parse_day("registered_on", d)?),
    };
    let row = crate::import::RegistryRow {
        ip,
        mac,
        department,
        holder: edit.holder.trim().to_owned(),
        registered_on,
        note: edit.note.trim().to_owned(),
        gateway: edit.gateway,
    };
    let source = format!("ui:{}", viewer.username);
    let s = ctx
        .store
        .apply_ip_registry(&[row], &source, shanghai_day(Utc::now()))
        .await?;
    let outcome = if s.added > 0 {
        "registered"
    } else if s.changed > 0 {
        "changed"
    } else {
        "unchanged"
    };
    audit(
        ctx,
        viewer,
        "set_registry",
        &format!("ip {ip}"),
        &format!(
            "{outcome}: mac {mac}, department {}",
            edit.department.trim()
        ),
        AuditFacts {
            outcome: Some(outcome.to_owned()),
            mac: Some(mac.to_string()),
            department: Some(edit.department.trim().to_owned()),
            ..Default::default()
        },
    )
    .await?;
    Ok(format!("{ip}: {outcome}"))
}

/// Staff remove an IP from the registry.
pub async fn remove_registry(ctx: &JobContext, viewer: &Viewer, ip: &str) -> Result<String> {
    staff_only(viewer, "edit the IP registry")?;
    let ip: std::net::IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| ActionError::Invalid(format!("ip {ip:?} is not an IPv4 or IPv6 address")))?;
    if !ctx
        .store
        .remove_ip_registration(ip, &format!("ui:{}", viewer.username))
        .await?
    {
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
    Ok(format!("{ip}: removed"))
}

fn check_not_future(on: NaiveDate) -> Result<()> {
    if on > shanghai_day(Utc::now()) {
        return Err(ActionError::Invalid(format!("{on} is in the future")));
    }
    Ok(())
}

/// Parses a `YYYY-MM-DD` form field.
pub fn parse_day(field: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| ActionError::Invalid(format!("{field} {value:?} is not a date (YYYY-MM-DD)")))
}

/// Parses a VM id from a path.
pub fn parse_vm(value: &str) -> Result<VmId> {
    VmId::try_from(value).map_err(|e| ActionError::NotFound(e.to_string()))
}

//! The resource request pages: the list, one request with its evidence, recommendations and
//! the decision and delivery forms (staff), and the submission form; the forms' handlers go
//! through [`crate::jobs::actions`] like the API and the CLI.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;

use super::forms::action_error_page;
use super::pages::path_of;
use super::{Lang, WebError, base_context, render_page};
use crate::core::access::Viewer;
use crate::core::calendar::shanghai_day;
use crate::core::requests::{RawRequest, RawRequestVm};
use crate::http::AppState;
use crate::http::auth::{CsrfForm, HasCsrf};
use crate::jobs::actions::{self, ActionError, parse_day};
use crate::jobs::requests::{view, view_in};

/// `GET /requests`: the viewer's requests, newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
) -> Result<Html<String>, WebError> {
    let mut requests = Vec::new();
    for r in state
        .ctx
        .store
        .requests_in(viewer.scope.department())
        .await?
    {
        requests.push(view(&state.ctx, r).await?);
    }
    let ctx = context! { requests => requests, ..base_context(Some(&viewer), "requests", &path_of(&uri)) };
    Ok(Html(render_page(lang, "requests.html", ctx)?))
}

/// `GET /requests/new`: the submission form.
pub(super) async fn new(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
) -> Result<Html<String>, WebError> {
    let mut departments: Vec<String> = match viewer.scope.department() {
        Some(d) => vec![d.to_owned()],
        None => state
            .ctx
            .store
            .department_ids()
            .await?
            .into_iter()
            .collect(),
    };
    departments.sort();
    let ctx = context! {
        departments => departments,
        today => shanghai_day(chrono::Utc::now()).to_string(),
        ..base_context(Some(&viewer), "requests", &path_of(&uri))
    };
    Ok(Html(render_page(lang, "request_new.html", ctx)?))
}

/// `GET /requests/{id}`: one request with evidence and recommendations; another
/// department's is "not found".
pub(super) async fn one(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    let request = view_in(&state.ctx, viewer.scope.department(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    let ctx = context! {
        request => request,
        today => shanghai_day(chrono::Utc::now()).to_string(),
        ..base_context(Some(&viewer), "requests", &path_of(&uri))
    };
    Ok(Html(render_page(lang, "request.html", ctx)?))
}

/// The submission form: one VM a line, `id,vcpus,memory_gib,disk_gib`.
#[derive(Debug, serde::Deserialize)]
pub struct SubmitForm {
    csrf: String,
    department: String,
    project: String,
    #[serde(default)]
    project_name: String,
    purpose: String,
    expected_load: String,
    #[serde(default)]
    desired_on: String,
    vms: String,
}

impl HasCsrf for SubmitForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Parses `id,vcpus,memory_gib,disk_gib` lines.
fn vm_lines(text: &str) -> Result<Vec<RawRequestVm>, ActionError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let number = |s: &str| s.parse::<f64>().ok();
            match (
                f.as_slice(),
                f.get(1).and_then(|s| number(s)),
                f.get(2).and_then(|s| number(s)),
                f.get(3).and_then(|s| number(s)),
            ) {
                ([id, _, _, _], Some(vcpus), Some(memory_gib), Some(disk_gib)) => {
                    Ok(RawRequestVm {
                        id: (*id).to_owned(),
                        vcpus,
                        memory_gib,
                        disk_gib,
                    })
                }
                _ => Err(ActionError::Invalid(format!(
                    "VM line {}: {:?} is not id,vcpus,memory_gib,disk_gib",
                    i + 1,
                    line.chars().take(64).collect::<String>()
                ))),
            }
        })
        .collect()
}

pub(super) async fn submit(
    State(s): State<AppState>,
    CsrfForm(viewer, form): CsrfForm<SubmitForm>,
) -> Response {
    let outcome = async {
        let desired_on = match form.desired_on.trim() {
            "" => None,
            d => Some(parse_day("desired_on", d)?),
        };
        let raw = RawRequest {
            department: form.department,
            project: form.project,
            project_name: Some(form.project_name).filter(|n| !n.trim().is_empty()),
            purpose: form.purpose,
            expected_load: form.expected_load,
            desired_on,
            submitted_on: None,
            vms: vm_lines(&form.vms)?,
        };
        actions::submit_request(&s.ctx, &viewer, raw).await
    }
    .await;
    match outcome {
        Ok((id, o)) => Redirect::to(&format!("/requests/{id}?done={}", o.code)).into_response(),
        Err(e) => action_error_page(e),
    }
}

/// Staff's decision: `approve` or `reject`, a reason, amended sizes as lines.
#[derive(Debug, serde::Deserialize)]
pub struct DecideForm {
    csrf: String,
    decision: String,
    reason: String,
    #[serde(default)]
    amend: String,
}

impl HasCsrf for DecideForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn decide(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    CsrfForm(viewer, form): CsrfForm<DecideForm>,
) -> Response {
    let outcome = async {
        let approve = actions::parse_request_decision(&form.decision)?;
        let amend = actions::parse_amendment(&vm_lines(&form.amend)?)?;
        actions::decide_request(&s.ctx, &viewer, id, approve, &amend, &form.reason, None).await
    }
    .await;
    super::forms::back_to(&format!("/requests/{id}"), outcome)
}

#[derive(Debug, serde::Deserialize)]
pub struct DeliverForm {
    csrf: String,
    on: String,
}

impl HasCsrf for DeliverForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn deliver(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    CsrfForm(viewer, form): CsrfForm<DeliverForm>,
) -> Response {
    let outcome = async {
        let on = parse_day("on", &form.on)?;
        actions::deliver_request(&s.ctx, &viewer, id, on).await
    }
    .await;
    super::forms::back_to(&format!("/requests/{id}"), outcome)
}

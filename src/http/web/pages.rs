//! The page handlers: read the viewer's scope, query the store's dashboard read models, render.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Html;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::{Lang, WebError, base_context, describe, render_page};
use crate::core::access::Viewer;
use crate::core::calendar::shanghai_day;
use crate::core::domain::{DepartmentId, ProjectId, Resource};
use crate::core::obligations::state as deadline_state;
use crate::core::svg::{Chart, Line, ThresholdLine};
use crate::http::AppState;
use crate::store::{UsageBucket, VerdictCount, VmFilter, WasteRow};

/// VMs per page on department and project pages.
const PAGE_SIZE: i64 = 100;
/// Rows of the rightsizing list.
const CANDIDATES: i64 = 20;
/// Most notices, findings or registry rows one list shows.
const LIST_LIMIT: i64 = 500;

type Page = Result<Html<String>, WebError>;

pub(super) fn path_of(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into())
}

fn render(lang: Lang, template: &str, base: Value, page: Value) -> Page {
    let ctx = context! { ..page, ..base };
    Ok(Html(render_page(lang, template, ctx)?))
}

/// One row of the verdict grid: counts per verdict of one resource.
#[derive(Debug, Default, Serialize)]
struct VerdictRow {
    resource: &'static str,
    downsize: i64,
    expand: i64,
    ok: i64,
    insufficient_data: i64,
    total: i64,
}

fn verdict_grid(counts: &[VerdictCount]) -> Vec<VerdictRow> {
    Resource::ALL
        .iter()
        .map(|r| {
            let mut row = VerdictRow {
                resource: r.as_str(),
                ..Default::default()
            };
            for c in counts.iter().filter(|c| c.resource == r.as_str()) {
                match c.verdict.as_str() {
                    "downsize" => row.downsize += c.vms,
                    "expand" => row.expand += c.vms,
                    "ok" => row.ok += c.vms,
                    _ => row.insufficient_data += c.vms,
                }
                row.total += c.vms;
            }
            row
        })
        .collect()
}

/// The waste rows of all three resources, zero where none is flagged.
fn waste_rows(rows: Vec<WasteRow>) -> Vec<WasteRow> {
    Resource::ALL
        .iter()
        .map(|r| {
            rows.iter()
                .find(|w| w.resource == r.as_str())
                .cloned()
                .unwrap_or(WasteRow {
                    resource: r.as_str().to_owned(),
                    vms: 0,
                    allocated: 0.0,
                    reclaimable: 0.0,
                })
        })
        .collect()
}

fn target_utilisation(state: &AppState) -> f64 {
    state.ctx.rules.notices().target_utilisation.get()
}

/// `GET /`: the fleet (or, for a department user, their department) at a glance.
pub(super) async fn overview(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
) -> Page {
    let store = &state.ctx.store;
    let scope = viewer.scope.department();
    let today = shanghai_day(Utc::now());
    let counts = store.verdict_counts(scope, None).await?;
    let waste = store.waste(scope, None, target_utilisation(&state)).await?;
    let deadlines = store.deadline_counts(scope, None, today).await?;
    let departments = store.department_summaries(scope, None, today).await?;
    let candidates = store
        .downsize_candidates(scope, VmFilter::default(), CANDIDATES)
        .await?;
    let vms: i64 = departments.iter().map(|d| d.vms).sum();
    let page = context! {
        vms => vms,
        grid => verdict_grid(&counts),
        waste => waste_rows(waste),
        deadlines => deadlines,
        departments => departments,
        candidates => candidates,
        calendar_years => state.ctx.calendar.years(),
        calendar_missing => state.ctx.calendar.missing_around(chrono::Datelike::year(&today)),
        today => today.to_string(),
    };
    render(
        lang,
        "overview.html",
        base_context(Some(&viewer), "overview", &path_of(&uri)),
        page,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    page: Option<i64>,
}

fn pages(total: i64) -> i64 {
    ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
}

/// `GET /departments/{id}`.
pub(super) async fn department(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Page {
    // Something that cannot be an id is simply not there (and never reaches a query).
    DepartmentId::try_from(id.as_str()).map_err(|_| WebError::NotFound)?;
    let store = &state.ctx.store;
    let scope = viewer.scope.department();
    let today = shanghai_day(Utc::now());
    let summary = store
        .department_summaries(scope, Some(&id), today)
        .await?
        .into_iter()
        .next()
        .ok_or(WebError::NotFound)?;
    let filter = VmFilter {
        department: Some(&id),
        project: None,
    };
    let page_no = q.page.unwrap_or(1).max(1);
    let total = store.vm_count(scope, filter).await?;
    let page = context! {
        department => summary,
        grid => verdict_grid(&store.verdict_counts(scope, Some(&id)).await?),
        waste => waste_rows(store.waste(scope, Some(&id), target_utilisation(&state)).await?),
        deadlines => store.deadline_counts(scope, Some(&id), today).await?,
        projects => store.project_summaries(scope, filter).await?,
        candidates => store.downsize_candidates(scope, filter, CANDIDATES).await?,
        vms => store.vm_list(scope, filter, PAGE_SIZE, (page_no.min(pages(total)).max(1) - 1) * PAGE_SIZE).await?,
        page => page_no,
        pages => pages(total),
        base_path => format!("/departments/{id}"),
    };
    render(
        lang,
        "department.html",
        base_context(Some(&viewer), "overview", &path_of(&uri)),
        page,
    )
}

/// `GET /projects/{id}`.
pub(super) async fn project(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Page {
    ProjectId::try_from(id.as_str()).map_err(|_| WebError::NotFound)?;
    let store = &state.ctx.store;
    let scope = viewer.scope.department();
    let filter = VmFilter {
        department: None,
        project: Some(&id),
    };
    let summary = store
        .project_summaries(scope, filter)
        .await?
        .into_iter()
        .next()
        .ok_or(WebError::NotFound)?;
    let page_no = q.page.unwrap_or(1).max(1);
    let total = store.vm_count(scope, filter).await?;
    let page = context! {
        project => summary,
        candidates => store.downsize_candidates(scope, filter, CANDIDATES).await?,
        vms => store.vm_list(scope, filter, PAGE_SIZE, (page_no.min(pages(total)).max(1) - 1) * PAGE_SIZE).await?,
        page => page_no,
        pages => pages(total),
        base_path => format!("/projects/{id}"),
    };
    render(
        lang,
        "project.html",
        base_context(Some(&viewer), "overview", &path_of(&uri)),
        page,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct VmQuery {
    days: Option<u32>,
    /// The last day shown (`YYYY-MM-DD`, Shanghai); today if absent.
    end: Option<String>,
}

/// The usage charts of one VM over `days` ending at `to`.
async fn usage_charts(
    state: &AppState,
    lang: Lang,
    vm_key: i64,
    department: &str,
    project: &str,
    days: u32,
    to: DateTime<Utc>,
) -> Result<Vec<String>, WebError> {
    let store = &state.ctx.store;
    let span = i64::from(days) * 86_400;
    let (to_ts, from_ts) = (to.timestamp(), to.timestamp() - span);
    let (buckets, bucket_secs): (Vec<UsageBucket>, i64) = if days <= 30 {
        // The hourly sums of the day aggregates, in 1- or 3-hour buckets.
        let bucket = if days <= 7 { 3600 } else { 3 * 3600 };
        (
            store.usage_buckets(vm_key, from_ts, to_ts, bucket).await?,
            bucket,
        )
    } else {
        // A year comes from the day aggregates themselves.
        let to_day = shanghai_day(to);
        let from_day = to_day - chrono::Duration::days(i64::from(days) - 1);
        let rows = store.usage_days(vm_key, from_day, to_day).await?;
        let buckets = rows
            .into_iter()
            .filter_map(|(d, mut b)| {
                let midnight = Shanghai
                    .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .earliest()?;
                b.ts = midnight.timestamp();
                Some(b)
            })
            .collect();
        (buckets, 86_400)
    };
    let rules = match (
        DepartmentId::try_from(department),
        ProjectId::try_from(project),
    ) {
        (Ok(d), Ok(p)) => state.ctx.rules.for_vm(&d, &p),
        _ => *state.ctx.rules.defaults(),
    };
    let offset = chrono::FixedOffset::east_opt(8 * 3600).ok_or(WebError::NotFound)?;
    let charts = Resource::ALL
        .iter()
        .map(|&resource| {
            let pick = |b: &UsageBucket| -> (Option<f64>, Option<f64>) {
                match resource {
                    Resource::Cpu => (Some(b.cpu_avg), Some(b.cpu_max)),
                    Resource::Memory => (Some(b.mem_avg), Some(b.mem_max)),
                    Resource::Disk => (b.disk_avg, b.disk_max),
                }
            };
            let avg: Vec<(i64, f64)> = buckets
                .iter()
                .filter_map(|b| pick(b).0.map(|v| (b.ts, v)))
                .collect();
            let max: Vec<(i64, f64)> = buckets
                .iter()
                .filter_map(|b| pick(b).1.map(|v| (b.ts, v)))
                .collect();
            let rule = rules.get(resource);
            let name = lang.text(&format!("resource_{}", resource.as_str()));
            Chart {
                title: format!("{name} %"),
                id: format!("chart-{}", resource.as_str()),
                from: from_ts,
                to: to_ts,
                max_gap_secs: 2 * bucket_secs,
                lines: vec![
                    Line {
                        label: format!("{name} {}", lang.text("avg")),
                        class: "avg",
                        points: avg,
                    },
                    Line {
                        label: format!("{name} {}", lang.text("max")),
                        class: "max",
                        points: max,
                    },
                ],
                thresholds: vec![
                    ThresholdLine {
                        value: rule.downsize.value(),
                        label: format!("{} {}%", lang.text("verdict_downsize"), rule.downsize),
                        class: "downsize",
                    },
                    ThresholdLine {
                        value: rule.expand.value(),
                        label: format!("{} {}%", lang.text("verdict_expand"), rule.expand),
                        class: "expand",
                    },
                ],
                no_data: lang.text("no_data").to_owned(),
                offset,
            }
            .render()
        })
        .collect();
    Ok(charts)
}

/// `GET /vms/{id}?days=7|30|365&end=YYYY-MM-DD`.
pub(super) async fn vm(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<VmQuery>,
) -> Page {
    crate::core::domain::VmId::try_from(id.as_str()).map_err(|_| WebError::NotFound)?;
    let store = &state.ctx.store;
    let scope = viewer.scope.department();
    let days = q.days.unwrap_or(30);
    if ![7, 30, 365].contains(&days) {
        return Err(WebError::BadRequest(format!(
            "days={days}: use 7, 30 or 365"
        )));
    }
    let now = Utc::now();
    let today = shanghai_day(now);
    let to = match &q.end {
        None => now,
        Some(end) => {
            let day = NaiveDate::parse_from_str(end, "%Y-%m-%d").map_err(|_| {
                WebError::BadRequest(format!(
                    "end={:?} is not a date (YYYY-MM-DD)",
                    end.chars().take(40).collect::<String>()
                ))
            })?;
            // Charts reach back up to a year before `end`: far dates would overflow the
            // arithmetic and show nothing anyway.
            let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
            let latest = today + chrono::TimeDelta::days(366);
            if day < earliest || day > latest {
                return Err(WebError::BadRequest(format!(
                    "end={end}: use a day from {earliest} to {latest}"
                )));
            }
            let next = day.succ_opt().ok_or(WebError::NotFound)?;
            Shanghai
                .from_local_datetime(&next.and_hms_opt(0, 0, 0).ok_or(WebError::NotFound)?)
                .earliest()
                .ok_or(WebError::NotFound)?
                .with_timezone(&Utc)
        }
    };
    let vm = store
        .vm_detail(scope, &id)
        .await?
        .ok_or(WebError::NotFound)?;
    let charts = usage_charts(&state, lang, vm.key, &vm.department, &vm.project, days, to).await?;
    let deadlines: Vec<Value> = store
        .vm_deadlines(vm.key)
        .await?
        .into_iter()
        .map(|d| {
            let st = match (
                NaiveDate::parse_from_str(&d.due_on, "%Y-%m-%d"),
                d.done_on
                    .as_deref()
                    .map(|x| NaiveDate::parse_from_str(x, "%Y-%m-%d"))
                    .transpose(),
            ) {
                (Ok(due), Ok(done)) => deadline_state(due, done, today).as_str(),
                _ => "open",
            };
            context! { state => st, ..Value::from_serialize(&d) }
        })
        .collect();
    let end_param = q
        .end
        .clone()
        .map(|e| format!("&end={e}"))
        .unwrap_or_default();
    let page = context! {
        request_id => store.vm_request(&vm.id).await?,
        vm => vm,
        days => days,
        end_param => end_param,
        charts => charts.into_iter().map(Value::from_safe_string).collect::<Vec<_>>(),
        findings => store.vm_findings(vm.key).await?,
        allocations => store.vm_allocations(vm.key).await?,
        deadlines => deadlines,
        alerts => store
            .vm_alerts(vm.key)
            .await?
            .into_iter()
            .map(|a| context! { detail => describe::alert(lang, &a), ..Value::from_serialize(&a) })
            .collect::<Vec<_>>(),
        notices => store.notice_list(scope, None, Some(&id), LIST_LIMIT).await?,
        today => today.to_string(),
    };
    render(
        lang,
        "vm.html",
        base_context(Some(&viewer), "overview", &path_of(&uri)),
        page,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct NoticesQuery {
    state: Option<String>,
}

/// The deadline state of a notice's adjustment as of `today`, if it has a deadline.
fn notice_deadline_state(
    due: Option<&str>,
    done: Option<&str>,
    today: NaiveDate,
) -> Option<&'static str> {
    let due = NaiveDate::parse_from_str(due?, "%Y-%m-%d").ok()?;
    let done = done.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    Some(deadline_state(due, done, today).as_str())
}

/// `GET /notices?state=open|closed|all`.
pub(super) async fn notices(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
    Query(q): Query<NoticesQuery>,
) -> Page {
    let filter = q.state.as_deref().unwrap_or("open");
    let open = match filter {
        "open" => Some(true),
        "closed" => Some(false),
        "all" => None,
        other => {
            return Err(WebError::BadRequest(format!(
                "state={other:?}: use open, closed or all"
            )));
        }
    };
    let today = shanghai_day(Utc::now());
    let rows: Vec<Value> = state
        .ctx
        .store
        .notice_list(viewer.scope.department(), open, None, LIST_LIMIT)
        .await?
        .into_iter()
        .map(|n| {
            let st = notice_deadline_state(n.due_on.as_deref(), n.done_on.as_deref(), today);
            context! { deadline_state => st, ..Value::from_serialize(&n) }
        })
        .collect();
    let page = context! { notices => rows, filter => filter, limit => LIST_LIMIT };
    render(
        lang,
        "notices.html",
        base_context(Some(&viewer), "notices", &path_of(&uri)),
        page,
    )
}

/// One entry of a notice's timeline.
#[derive(Debug, Serialize)]
struct Entry {
    at: i64,
    /// The i18n key of what happened.
    what: String,
    detail: String,
    /// For e-mails: the outbox state.
    state: Option<String>,
}

/// `GET /notices/{id}`: the notice and everything that happened to it.
pub(super) async fn notice(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
    Path(id): Path<i64>,
) -> Page {
    let store = &state.ctx.store;
    let n = store
        .notice_view(viewer.scope.department(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    let today = shanghai_day(Utc::now());
    let mut timeline = vec![Entry {
        at: n.issued_at,
        what: "event_issued".into(),
        detail: format!("{:.1}% ({}) {}%", n.value, n.statistic, n.comparison),
        state: None,
    }];
    if let Some(at) = n.approved_at {
        timeline.push(Entry {
            at,
            what: "event_approved".into(),
            detail: String::new(),
            state: None,
        });
    }
    for m in store.notice_mail(n.id, n.deadline_id).await? {
        // The mail server's last error is for staff; departments see who it went to.
        let error = m.last_error.filter(|_| viewer.is_staff());
        timeline.push(Entry {
            at: m.sent_at.unwrap_or(m.created_at),
            what: format!("mail_kind_{}", m.kind),
            detail: m.recipients.or(error).unwrap_or_default(),
            state: Some(m.state),
        });
    }
    if let Some(deadline) = n.deadline_id {
        for e in store.deadline_timeline(deadline).await? {
            timeline.push(Entry {
                at: e.at,
                what: format!("event_{}", e.event),
                detail: describe::deadline_event(lang, &e),
                state: None,
            });
        }
    }
    if let Some(at) = n.closed_at {
        // The stored reason is `released` or `completed (SOURCE)`; the deadline has the source.
        let detail = match (n.closed_reason.as_deref(), n.done_source.as_deref()) {
            (Some("released"), _) => lang.text("closed_released").to_owned(),
            (_, Some(source)) => lang.fill(
                "closed_completed",
                &[("source", describe::source(lang, source))],
            ),
            // Every close writes one of the two; nothing else to say.
            (_, None) => String::new(),
        };
        timeline.push(Entry {
            at,
            what: "event_closed".into(),
            detail,
            state: None,
        });
    }
    // Stable: equal instants keep the order above (issued, approved, mail, deadline, closed).
    timeline.sort_by_key(|e| e.at);
    let deadline_state = notice_deadline_state(n.due_on.as_deref(), n.done_on.as_deref(), today);
    let contests = store.contests(id).await?;
    let undecided = contests.iter().any(|c| c.decision.is_none());
    let held = n.open && n.approved_at.is_none();
    let evidence: Option<serde_json::Value> = n
        .evidence
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok());
    let allocation: serde_json::Value =
        serde_json::from_str(&n.allocation_json).unwrap_or_default();
    let monthly_cost = crate::jobs::notify::content::yuan_text(
        crate::jobs::notify::content::monthly_cost(&state.ctx.prices, &allocation),
    );
    let page = context! {
        undecided => undecided,
        evidence => evidence,
        monthly_cost => monthly_cost,
        notice => n,
        timeline => timeline,
        deadline_state => deadline_state,
        held => held,
        require_approval => state.ctx.rules.notices().require_approval,
        contests => contests,
        today => today.to_string(),
    };
    render(
        lang,
        "notice.html",
        base_context(Some(&viewer), "notices", &path_of(&uri)),
        page,
    )
}

/// `GET /network`: network findings and the IP registry of the viewer's scope.
pub(super) async fn network(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
) -> Page {
    let store = &state.ctx.store;
    let scope = viewer.scope.department();
    let findings: Vec<Value> = store
        .network_finding_list(scope, LIST_LIMIT)
        .await?
        .into_iter()
        .map(|f| {
            context! {
                detail => describe::network_evidence(lang, &f),
                ..Value::from_serialize(&f)
            }
        })
        .collect();
    let page = context! {
        findings => findings,
        registry => store.ip_registry_in(scope, Some(LIST_LIMIT)).await?,
        limit => LIST_LIMIT,
        today => shanghai_day(Utc::now()).to_string(),
    };
    render(
        lang,
        "network.html",
        base_context(Some(&viewer), "network", &path_of(&uri)),
        page,
    )
}

/// `GET /reviews`: the stored annual reviews of visible projects, linking to the report pages.
pub(super) async fn reviews(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
) -> Page {
    let rows = state
        .ctx
        .store
        .review_list(viewer.scope.department())
        .await?;
    let mut years: Vec<i64> = rows.iter().map(|r| r.year).collect();
    years.dedup();
    let page = context! { reviews => rows, years => years };
    render(
        lang,
        "reviews.html",
        base_context(Some(&viewer), "reviews", &path_of(&uri)),
        page,
    )
}

/// `GET /unused`: systems that look no longer used (art. 13), with their evidence, what they
/// cost a month, their release advice, and projects unused as a whole.
pub(super) async fn unused(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    lang: Lang,
    uri: Uri,
) -> Page {
    let prices = state.ctx.prices;
    let rows = state
        .ctx
        .store
        .unused_systems(viewer.scope.department())
        .await?;
    let mut total = 0.0;
    let systems: Vec<Value> = rows
        .iter()
        .map(|u| {
            let cost = prices.monthly(u.vcpus as f64, u.memory_gib, u.disk_gib);
            total += cost;
            context! {
                monthly_cost => crate::jobs::notify::content::yuan_text(cost),
                ..Value::from_serialize(u)
            }
        })
        .collect();
    let mut projects: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|u| u.project_unused)
        .map(|u| {
            (
                u.project.as_str(),
                u.project_name.as_str(),
                u.department.as_str(),
            )
        })
        .collect();
    projects.dedup();
    let page = context! {
        systems => systems,
        projects => projects,
        total => crate::jobs::notify::content::yuan_text(total),
    };
    render(
        lang,
        "unused.html",
        base_context(Some(&viewer), "unused", &path_of(&uri)),
        page,
    )
}

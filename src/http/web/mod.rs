//! The server-rendered web dashboard: fleet, department, project and VM pages, notices with
//! their timelines, network findings and reviews, in Chinese by default with an English switch.
//!
//! Handlers take the signed-in [`Viewer`](crate::core::access::Viewer) (inserted by the auth layer)
//! and pass its department scope to the store's dashboard queries, which filter in SQL.
//! Templates are embedded and autoescaped; the only markup inserted unescaped is the SVG that
//! [`svg`] builds, which escapes its own text.

pub mod describe;
pub mod forms;
pub mod i18n;
mod pages;
mod requests;

use std::sync::LazyLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate};
use minijinja::{Environment, Value};

pub use i18n::Lang;

use crate::http::AppState;
use crate::store::StoreError;

/// Errors of a page request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Missing, or outside the viewer's scope: the same answer for both.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("database error: {0}")]
    Store(#[from] StoreError),
    #[error("template error: {0}")]
    Template(#[from] minijinja::Error),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, key, message) = match &self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "not_found", String::new()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            WebError::Store(e) => {
                tracing::error!(error = %e, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    String::new(),
                )
            }
            WebError::Template(e) => {
                tracing::error!(error = %e, "page template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    String::new(),
                )
            }
        };
        // Plain markup built here (not a template), so an error page cannot fail itself.
        let text = |lang: Lang| crate::core::svg::escape(lang.text(key));
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{status}</title>\
             <link rel=\"stylesheet\" href=\"/static/cloudgov.css\"></head><body><main>\
             <h1 data-testid=\"error\">{} / {}</h1><p>{}</p><p><a href=\"/\">{} / {}</a></p></main></body></html>",
            text(Lang::Zh),
            text(Lang::En),
            crate::core::svg::escape(&message),
            crate::core::svg::escape(Lang::Zh.text("back_to_overview")),
            crate::core::svg::escape(Lang::En.text("back_to_overview")),
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("department.html", include_str!("templates/department.html")),
    ("project.html", include_str!("templates/project.html")),
    ("vm.html", include_str!("templates/vm.html")),
    ("notices.html", include_str!("templates/notices.html")),
    ("notice.html", include_str!("templates/notice.html")),
    ("network.html", include_str!("templates/network.html")),
    ("reviews.html", include_str!("templates/reviews.html")),
    ("unused.html", include_str!("templates/unused.html")),
    ("requests.html", include_str!("templates/requests.html")),
    ("request.html", include_str!("templates/request.html")),
    (
        "request_new.html",
        include_str!("templates/request_new.html"),
    ),
    ("login.html", include_str!("templates/login.html")),
    ("audit.html", include_str!("templates/audit.html")),
];

const CSS: &str = include_str!("templates/cloudgov.css");

/// An instant as templates hold it: Unix seconds, or RFC 3339 text (findings' `evaluated_at`).
fn instant(v: &minijinja::Value) -> Option<DateTime<chrono::Utc>> {
    match v.as_i64() {
        Some(t) => DateTime::from_timestamp(t, 0),
        None => v
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc()),
    }
}

/// An instant (see [`instant`]) as a Shanghai date, `2026-11-23`.
fn date_filter(v: minijinja::Value) -> String {
    instant(&v)
        .map(|t| {
            t.with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
}

/// An instant (see [`instant`]) as Shanghai date and minute, `2026-11-23 14:05`.
fn datetime_filter(v: minijinja::Value) -> String {
    instant(&v)
        .map(|t| {
            t.with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// `2026-11-23` as `2026年11月23日`, the form the e-mails use for deadlines.
fn zhdate_filter(d: String) -> String {
    NaiveDate::parse_from_str(&d, "%Y-%m-%d")
        .map(crate::jobs::notify::content::zh_date)
        .unwrap_or(d)
}

fn pct_filter(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "–".into())
}

/// A number without a needless `.0`.
fn num_filter(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.1}"),
        None => "–".into(),
    }
}

/// Bytes in decimal units (`4.3 MB`); `–` for none.
fn bytes_filter(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), crate::jobs::notify::content::bytes_text)
}

fn environment(lang: Lang) -> Environment<'static> {
    let mut env = Environment::new();
    // Autoescape every template as HTML, whatever its name.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // The templates are compiled in; a broken one is a bug the unit tests catch.
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env.add_global("t", Value::from_serialize(lang.table()));
    env.add_global("lang", lang.code());
    env.add_global("version", env!("CARGO_PKG_VERSION"));
    env.add_filter("date", date_filter);
    env.add_filter("datetime", datetime_filter);
    env.add_filter("zhdate", zhdate_filter);
    env.add_filter("pct", pct_filter);
    env.add_filter("num", num_filter);
    env.add_filter("bytes", bytes_filter);
    // Where a date or allocation came from (inventory, confirmed, inferred, ...), in words.
    env.add_filter("source", move |s: String| describe::source(lang, &s));
    env
}

/// One environment per language: `t` (the strings) and `lang` are globals, so macros imported
/// from `macros.html` see them too.
static ENVIRONMENTS: LazyLock<[Environment<'static>; 2]> =
    LazyLock::new(|| [environment(Lang::Zh), environment(Lang::En)]);

/// Renders `template` (e.g. `login.html`) in `lang` with `ctx`. Templates extending
/// `base.html` read `viewer` (username, role, department, csrf; absent when signed out),
/// `nav`, and `lang_en_url` / `lang_zh_url` (see [`base_context`]).
pub fn render_page(lang: Lang, template: &str, ctx: Value) -> Result<String, WebError> {
    let env = &ENVIRONMENTS[match lang {
        Lang::Zh => 0,
        Lang::En => 1,
    }];
    Ok(env.get_template(template)?.render(ctx)?)
}

/// What `base.html` needs besides the page's own data: the viewer (or none), the active nav
/// entry, and the language-switch links back to `path` (the request's path and query).
pub fn base_context(viewer: Option<&crate::core::access::Viewer>, nav: &str, path: &str) -> Value {
    let viewer = viewer.map(|v| {
        minijinja::context! {
            username => v.username.clone(),
            role => v.role.as_str(),
            staff => v.is_staff(),
            department => v.scope.department().map(str::to_owned),
            csrf => v.csrf.clone(),
        }
    });
    // Drop a `lang=` from the query so the cookie decides after the switch.
    let path = match path.split_once('?') {
        Some((p, q)) => {
            let rest: Vec<&str> = q.split('&').filter(|kv| !kv.starts_with("lang=")).collect();
            if rest.is_empty() {
                p.to_owned()
            } else {
                format!("{p}?{}", rest.join("&"))
            }
        }
        None => path.to_owned(),
    };
    let next = crate::http::auth::percent_encode(&path);
    // What an action just did: the form handlers redirect here with `?done=CODE`. Only known
    // codes show, as the i18n string `flash_CODE`; any other text in the URL shows nothing.
    let flash = path.split_once('?').and_then(|(_, q)| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "done")
            .and_then(|(_, v)| {
                crate::jobs::actions::OUTCOME_CODES
                    .iter()
                    .find(|c| **c == v)
                    .map(|c| format!("flash_{c}"))
            })
    });
    minijinja::context! {
        viewer => viewer,
        nav => nav,
        flash => flash,
        lang_en_url => format!("/lang/en?next={next}"),
        lang_zh_url => format!("/lang/zh?next={next}"),
    }
}

/// Every dashboard route: the pages (which need a `Viewer` extension) and the public ones.
pub fn routes() -> Router<AppState> {
    page_routes().merge(public_routes())
}

/// The pages; each needs the `Viewer` extension the auth layer inserts.
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/departments/{id}", get(pages::department))
        .route("/projects/{id}", get(pages::project))
        .route("/vms/{id}", get(pages::vm))
        .route("/notices", get(pages::notices))
        .route("/notices/{id}", get(pages::notice))
        .route("/network", get(pages::network))
        .route("/reviews", get(pages::reviews))
        .route("/unused", get(pages::unused))
        .route("/requests", get(requests::list))
        .route("/requests/new", get(requests::new))
        .route("/requests/{id}", get(requests::one))
}

/// Routes that need no sign-in (the login page uses them too): the stylesheet and the
/// language switch.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/static/cloudgov.css", get(stylesheet))
        .route("/lang/{lang}", get(switch_language))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `GET /lang/{en|zh}?next=/path`: sets the `lang` cookie and goes back to `next` (a local path
/// only, so the switch cannot be used to redirect elsewhere).
async fn switch_language(
    axum::extract::Path(code): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<NextQuery>,
) -> Result<Response, WebError> {
    let lang = Lang::parse(&code)
        .ok_or_else(|| WebError::BadRequest(format!("unknown language {code:?}: use zh or en")))?;
    let next = crate::http::auth::safe_next(q.next.as_deref()).to_owned();
    let location = header::HeaderValue::from_str(&next)
        .map_err(|_| WebError::BadRequest("next is not a valid path".into()))?;
    let cookie = format!(
        "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    let cookie = header::HeaderValue::from_str(&cookie)
        .map_err(|_| WebError::BadRequest("bad cookie".into()))?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_every_string_key_exists() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // Every `t.key` a template reads is in the table (an absent key would render empty).
            for (at, _) in source.match_indices("t.") {
                let before = source[..at].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == '.' {
                    continue;
                }
                let key: String = source[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !key.is_empty() {
                    assert!(
                        i18n::STRINGS.iter().any(|(k, ..)| *k == key),
                        "{name} uses t.{key}, which is not in i18n::STRINGS"
                    );
                }
            }
        }
    }

    #[test]
    fn login_renders_escaped_in_both_languages() {
        let ctx = minijinja::context! {
            error => "wrong",
            csrf => "tok\"en",
            next => "/vms/a\"><script>",
            ..base_context(None, "", "/login")
        };
        let zh = render_page(Lang::Zh, "login.html", ctx.clone()).expect("render");
        assert!(zh.contains("用户名") && zh.contains(r#"name="username""#));
        assert!(zh.contains("用户名或密码错误"), "{zh}");
        assert!(!zh.contains("<script>"), "{zh}");
        assert!(zh.contains("tok&quot;en"));
        let en = render_page(Lang::En, "login.html", ctx).expect("render");
        assert!(
            en.contains("User name") && en.contains("Wrong user name"),
            "{en}"
        );
        assert!(en.contains("lang-zh") && en.contains("zh?next="), "{en}");
    }

    #[test]
    fn filters_show_dates_in_shanghai_and_the_chinese_form() {
        // 2026-11-22T16:30:00Z is 2026-11-23 00:30 in Shanghai.
        let seconds = minijinja::Value::from(1_795_365_000i64);
        assert_eq!(date_filter(seconds.clone()), "2026-11-23");
        assert_eq!(datetime_filter(seconds), "2026-11-23 00:30");
        let text = minijinja::Value::from("2026-11-22T16:30:00+00:00");
        assert_eq!(datetime_filter(text), "2026-11-23 00:30");
        assert_eq!(date_filter(minijinja::Value::from(())), "");
        assert_eq!(zhdate_filter("2026-11-23".into()), "2026年11月23日");
        assert_eq!(num_filter(Some(32.0)), "32");
        assert_eq!(pct_filter(Some(24.96)), "25.0%");
        assert_eq!(
            crate::http::auth::percent_encode("/vms/a b?x=1&y"),
            "/vms/a%20b%3Fx%3D1%26y"
        );
    }
}

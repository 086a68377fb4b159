//! Signing in and knowing who asks: argon2 passwords, cookie sessions with CSRF tokens, API
//! tokens for scripts, and the middleware that puts a [`Viewer`] on every page and API request.
//!
//! - Pages: a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` whenever the daemon serves
//!   HTTPS or sits behind a proxy that says `X-Forwarded-Proto: https`). Every form carries the
//!   session's CSRF token, checked by [`CsrfForm`]; without a session a page redirects to `/login`.
//! - API: `Authorization: Bearer cgu_...` (a user's API token) or the session cookie; a state
//!   changing API call made with the cookie must send the CSRF token in `X-CSRF-Token`.
//! - Agent tokens (`cgv_...`) only ingest: anywhere else they get 403.
//!
//! Tokens and session ids are random 256-bit secrets stored as SHA-256 only (see [`crate::core::token`]).

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::core::access::{Role, Scope, Viewer};
use crate::core::domain::DepartmentId;
use crate::core::token;
use crate::http::{ApiError, AppState};
use crate::store::{Principal, Store, StoreError};

/// The session cookie.
pub const SESSION_COOKIE: &str = "cloudgov_session";
/// The login form's CSRF cookie (double submit: there is no session yet to hold the token).
pub const LOGIN_CSRF_COOKIE: &str = "cloudgov_login_csrf";
/// How long a session lasts from sign-in.
pub const SESSION_HOURS: i64 = 12;
/// Prefix of users' API tokens (agent tokens start with `cgv_`).
pub const API_TOKEN_PREFIX: &str = "cgu_";
/// Failed sign-ins allowed per user name in [`LOGIN_WINDOW_SECS`] before 429.
pub const LOGIN_FAILURES_ALLOWED: u32 = 10;
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least 10 characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hashes a password with argon2id (the crate's default parameters) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < 10 {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fixed hash verified when the user name is unknown, so both answers take as long.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-password-never-used").unwrap_or_default())
}

/// Checks a user name and password; `None` when either is wrong or the account is disabled.
/// The argon2 work runs on the blocking pool, off the async workers.
pub async fn check_credentials(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<Option<Principal>, StoreError> {
    let credentials = store.credentials(username).await?;
    let (phc, found) = match &credentials {
        Some(c) => (c.password_hash.clone(), true),
        None => (decoy_hash().to_owned(), false),
    };
    // A few argon2 checks at a time (19 MiB and tens of ms each): a flood of sign-ins waits
    // here instead of taking every core and the blocking pool's memory.
    static CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
    let _permit = CHECKS
        .acquire()
        .await
        .map_err(|e| StoreError::Invalid(format!("sign-in checks closed: {e}")))?;
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    Ok(credentials.filter(|_| found && matches).map(|c| Principal {
        user_id: c.user_id,
        username: username.to_owned(),
        role: c.role,
        department: c.department,
        csrf: None,
    }))
}

/// Failed sign-ins per user name, in fixed windows: slows password guessing to a crawl.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (i64, u32)>>,
}

impl LoginThrottle {
    /// Takes one attempt for `username` if its window has one left. The attempt is counted
    /// before the password is checked, so parallel guesses cannot all slip through; a
    /// successful sign-in gives the window back ([`LoginThrottle::succeeded`]).
    pub fn try_attempt(&self, username: &str, now: i64) -> bool {
        let mut attempts = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded memory under a spray of user names: forget expired windows first.
        if attempts.len() > 10_000 {
            attempts.retain(|_, (start, _)| now - *start < LOGIN_WINDOW_SECS);
        }
        let entry = attempts.entry(username.to_owned()).or_insert((now, 0));
        if now - entry.0 >= LOGIN_WINDOW_SECS {
            *entry = (now, 0);
        }
        if entry.1 >= LOGIN_FAILURES_ALLOWED {
            return false;
        }
        entry.1 += 1;
        true
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(username);
    }
}

/// A new random secret with `prefix` (session ids, CSRF tokens, API tokens).
pub fn new_secret(prefix: &str) -> Result<String, StoreError> {
    token::generate_prefixed(prefix)
        .map_err(|e| StoreError::Invalid(format!("no randomness available: {e}")))
}

/// Starts a session for `principal`; returns the session id (for the cookie).
pub async fn start_session(store: &Store, principal: &Principal) -> Result<String, StoreError> {
    let session = new_secret("cgs_")?;
    let csrf = new_secret("")?;
    let now = chrono::Utc::now().timestamp();
    store
        .create_session(
            &token::hash(&session),
            principal.user_id,
            &csrf,
            now,
            now + SESSION_HOURS * 3600,
        )
        .await?;
    Ok(session)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the browser reached us over HTTPS (directly or through a proxy that says so).
pub fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.web.https
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the attributes every cloudgov cookie has.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, path: &str, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

fn viewer_of(p: Principal) -> Result<Viewer, StoreError> {
    let scope = match (p.role, p.department) {
        (Role::Department, Some(d)) => Scope::Department(
            DepartmentId::try_from(d).map_err(|e| StoreError::Invalid(format!("stored {e}")))?,
        ),
        (Role::Department, None) => {
            return Err(StoreError::Invalid(format!(
                "department user {} has no department",
                p.username
            )));
        }
        _ => Scope::All,
    };
    Ok(Viewer {
        user_id: p.user_id,
        username: p.username,
        role: p.role,
        scope,
        csrf: p.csrf,
    })
}

/// The viewer of a session cookie, if it is live.
async fn session_viewer(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, StoreError> {
    let Some(session) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    state
        .ctx
        .store
        .session_principal(&token::hash(session), chrono::Utc::now().timestamp())
        .await?
        .map(viewer_of)
        .transpose()
}

/// Pages: the session's viewer, or a redirect to `/login?next=...`.
pub async fn require_page_viewer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match session_viewer(&state, request.headers()).await {
        Ok(Some(viewer)) => {
            request.extensions_mut().insert(viewer);
            next.run(request).await
        }
        Ok(None) => {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            Redirect::to(&format!("/login?next={}", percent_encode(&target))).into_response()
        }
        Err(e) => ApiError::Internal(e).into_response(),
    }
}

/// API: a user's API token or the session cookie (with `X-CSRF-Token` on anything but reads).
pub async fn require_api_viewer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match api_viewer(&state, request.method(), request.headers()).await {
        Ok(viewer) => {
            request.extensions_mut().insert(viewer);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn api_viewer(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Viewer, ApiError> {
    if let Some(bearer) = bearer(headers) {
        if bearer.starts_with(token::AGENT_TOKEN_PREFIX) {
            return Err(ApiError::Forbidden(
                "agent tokens can only ingest: use a user's API token (cloudgov user token)".into(),
            ));
        }
        let principal = state
            .ctx
            .store
            .api_token_principal(&token::hash(bearer), chrono::Utc::now().timestamp())
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        return Ok(viewer_of(principal)?);
    }
    let viewer = session_viewer(state, headers)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !csrf_matches(viewer.csrf.as_deref(), sent) {
            return Err(ApiError::Forbidden(
                "missing or wrong X-CSRF-Token header for a request made with the session cookie"
                    .into(),
            ));
        }
    }
    Ok(viewer)
}

/// Compares CSRF tokens by their hashes, so timing says nothing about the expected token.
pub fn csrf_matches(expected: Option<&str>, sent: Option<&str>) -> bool {
    match (expected, sent) {
        (Some(e), Some(s)) if !e.is_empty() => token::hash(e) == token::hash(s),
        _ => false,
    }
}

/// Form bodies that must carry the session's CSRF token in a `csrf` field.
pub trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// A URL-encoded form whose `csrf` field matched the session's token; the [`Viewer`] comes
/// with it. Handlers that change anything take this, so none can forget the check.
pub struct CsrfForm<T>(pub Viewer, pub T);

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: serde::de::DeserializeOwned + HasCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let viewer = axum::Extension::<Viewer>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?
            .0;
        let request = Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::<T>::from_request(request, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid form: {e}")).into_response())?;
        if !csrf_matches(viewer.csrf.as_deref(), Some(form.csrf())) {
            return Err(ApiError::Forbidden(
                "the form's CSRF token does not match this session: reload the page".into(),
            )
            .into_response());
        }
        Ok(CsrfForm(viewer, form))
    }
}

/// Percent-encodes a path for a query parameter (the `next` of the login redirect).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after signing in or switching language: only a plain local path, never
/// another site. Browsers drop tabs and newlines from URLs and read `\` as `/`, so
/// `/<tab>/evil` or `/\evil` would leave the site: any control, space or backslash is refused.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n
                    .chars()
                    .any(|c| c == '\\' || c.is_control() || c.is_whitespace()) =>
        {
            n
        }
        _ => "/",
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    /// The viewer the auth middleware put on the request.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::Extension::<Viewer>::from_request_parts(parts, state)
            .await
            .map(|e| e.0)
            .map_err(|_| ApiError::Unauthenticated.into_response())
    }
}

/// The token of an `Authorization: Bearer TOKEN` header. The scheme is case-insensitive
/// (RFC 7235 section 2.1), so `bearer` and `BEARER` are accepted too.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("x", "not a phc string"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn cookies_parse_and_next_stays_local() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; cloudgov_session=cgs_x ; lang=en".parse().expect("hv"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("cgs_x"));
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "missing"), None);
        assert_eq!(safe_next(Some("/vms/a?days=7")), "/vms/a?days=7");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "/\t/evil.example",
            "/\n/x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/");
        }
        assert_eq!(percent_encode("/vms/a?days=7"), "/vms/a%3Fdays%3D7");
    }

    #[test]
    fn login_throttle_blocks_after_failures_then_forgets() {
        let t = LoginThrottle::default();
        for _ in 0..LOGIN_FAILURES_ALLOWED {
            assert!(t.try_attempt("u", 100));
        }
        assert!(!t.try_attempt("u", 100));
        assert!(t.try_attempt("other", 100));
        assert!(t.try_attempt("u", 100 + LOGIN_WINDOW_SECS));
        t.succeeded("u");
        assert!(t.try_attempt("u", 101));
    }

    #[test]
    fn csrf_needs_a_match() {
        assert!(csrf_matches(Some("abc"), Some("abc")));
        assert!(!csrf_matches(Some("abc"), Some("abd")));
        assert!(!csrf_matches(Some("abc"), None));
        assert!(!csrf_matches(None, Some("")));
        assert!(!csrf_matches(Some(""), Some("")));
    }
}

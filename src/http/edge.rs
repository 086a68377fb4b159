//! What every answer gets on its way out: JSON errors under `/api/`, the security headers,
//! and the answer for routes that do not exist.
//!
//! axum's own rejections (malformed JSON, a missing `Content-Type`, a path id that is not a
//! number, an unknown route, a wrong method) answer in plain text or with an empty body; the
//! API promises `{"error": code, "message": text}` for every error, so [`json_errors`]
//! rewrites them, keeping their status and their text as the message.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiError;

/// The stable error code of a status, as [`super::ErrorBody`] documents them.
pub fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Rewrites every non-JSON error answer under `/api/` (and `/healthz`, `/metrics`) into the
/// API's JSON error body, keeping the status, the headers that matter (`Allow`,
/// `Retry-After`, `WWW-Authenticate`) and the text as the message.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/v1/") || path == "/healthz" || path == "/metrics";
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Rejection texts are a line or two; anything longer is cut, never buffered whole.
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if text.is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                let allowed = parts
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                format!("this route does not answer that method; it allows: {allowed}")
            }
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        }
    } else {
        text
    };
    let body = json!({ "error": error_code(status), "message": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Unknown routes: a JSON 404 under the API, the dashboard's 404 page elsewhere.
pub async fn fallback(method: Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/healthz" || path == "/metrics" {
        ApiError::NotFound(format!("no route {method} {path}")).into_response()
    } else {
        crate::http::web::WebError::NotFound.into_response()
    }
}

/// The Content-Security-Policy of every answer: no inline or foreign script, no framing, forms
/// post only here. Inline styles stay allowed (the SVG charts and Swagger UI set them).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Headers every answer carries: no framing (clickjacking), no content sniffing, the CSP.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_status_has_a_documented_code() {
        for (status, code) in [
            (StatusCode::BAD_REQUEST, "bad_request"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            (StatusCode::BAD_GATEWAY, "internal"),
        ] {
            assert_eq!(error_code(status), code);
        }
    }
}

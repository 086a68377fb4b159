//! HTTP sink: POSTs one [`IngestBatch`] to the daemon and classifies the answer as
//! delivered, worth retrying, or rejected for good (see [`SendError::disposition`]).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::config::AgentConfig;
use crate::wire::{IngestAck, IngestBatch};

/// At most this much of an answer is read; an ack or error body is a few hundred bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Error messages from the server are cut to this many characters in logs.
const MAX_MESSAGE_CHARS: usize = 500;
/// Connecting should be quick even when the whole request may take longer.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot build HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("token cannot be used in an HTTP header")]
    InvalidToken,
    #[error("TLS file {path}: {message}")]
    TlsFile { path: String, message: String },
    #[error("cannot encode batch as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("request to {url} failed: {}", crate::error_chain(.source))]
    Network {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("server answered {status}: {message}")]
    Status {
        status: StatusCode,
        /// The `error` field of a JSON error body, else the (cut) body text.
        message: String,
        /// From a `Retry-After: <seconds>` header, if any.
        retry_after: Option<Duration>,
    },
}

/// What to do with a batch after a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Keep the batch and send it again after a backoff.
    Retry,
    /// Drop the batch: the server will never accept it.
    Drop,
}

impl SendError {
    /// Network errors, 5xx, 429 and 408 are transient. 401/403 are retried too: they mean the
    /// agent is not (yet) authorised, which an operator fixes on the server without the data
    /// being wrong, so keeping it (bounded by the queue) loses less. 3xx means a wrong server
    /// URL; redirects are not followed because they would turn the POST into a GET. Any other
    /// 4xx rejects this batch's content, and resending the same bytes cannot succeed.
    pub fn disposition(&self) -> Disposition {
        match self {
            SendError::Network { .. }
            | SendError::Client(_)
            | SendError::InvalidToken
            | SendError::TlsFile { .. } => Disposition::Retry,
            SendError::Encode(_) => Disposition::Drop,
            SendError::Status { status, .. } => {
                if status.is_client_error()
                    && !matches!(
                        *status,
                        StatusCode::TOO_MANY_REQUESTS
                            | StatusCode::REQUEST_TIMEOUT
                            | StatusCode::UNAUTHORIZED
                            | StatusCode::FORBIDDEN
                    )
                {
                    Disposition::Drop
                } else {
                    Disposition::Retry
                }
            }
        }
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Proxy variables reqwest reads; any of them could name an https proxy.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether a client posting to `url` may open a TLS connection: the server is https, or a proxy
/// variable is set (`is_set`). Redirects are not followed, so nothing else can lead to TLS.
fn may_use_tls(url: &Url, is_set: impl Fn(&str) -> bool) -> bool {
    url.scheme() != "http" || PROXY_VARIABLES.iter().any(|key| is_set(key))
}

/// Posts batches to `{server}{INGEST_PATH}`. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    url: Url,
    auth: HeaderValue,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(config: &AgentConfig) -> Result<Self, SendError> {
        // reqwest is built without a bundled crypto provider and panics without one.
        crate::install_crypto_provider();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.token().expose()))
            .map_err(|_| SendError::InvalidToken)?;
        // Keeps the value out of the header map's Debug output.
        auth.set_sensitive(true);
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("cloudgov-agent/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(MAX_CONNECT_TIMEOUT))
            .redirect(reqwest::redirect::Policy::none());
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| SendError::TlsFile {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        };
        let bad = |path: &std::path::Path, e: reqwest::Error| SendError::TlsFile {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(path) = config.ca_file() {
            for cert in
                reqwest::Certificate::from_pem_bundle(&read(path)?).map_err(|e| bad(path, e))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(path) = config.client_identity_file() {
            builder = builder
                .identity(reqwest::Identity::from_pem(&read(path)?).map_err(|e| bad(path, e))?);
        }
        if !may_use_tls(config.ingest_url(), |key| std::env::var_os(key).is_some()) {
            // The platform verifier reads and parses every system root certificate when the
            // client is built (on Debian twice: the bundle and the directory), about 300 KiB of
            // heap at start-up and 70 KiB kept, which a plain-http agent never uses.
            builder = builder.tls_certs_only([]);
        }
        let client = builder.build().map_err(SendError::Client)?;
        Ok(Self {
            client,
            url: config.ingest_url().clone(),
            auth,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends one batch. `Ok(Some(ack))` when the server stored it; `Ok(None)` when it answered
    /// 2xx with a body that is not an [`IngestAck`] (still delivered: a retry would duplicate).
    pub async fn send(&self, batch: &IngestBatch) -> Result<Option<IngestAck>, SendError> {
        // Stamped at each attempt: the daemon reads the agent's clock offset from it.
        let mut value = serde_json::to_value(batch).map_err(SendError::Encode)?;
        value["sent_at"] = serde_json::Value::String(chrono::Utc::now().to_rfc3339());
        let body = serde_json::to_vec(&value).map_err(SendError::Encode)?;
        // The URL is in our message already; reqwest would repeat it in every layer.
        let network = |source: reqwest::Error| SendError::Network {
            url: self.url.clone(),
            source: source.without_url(),
        };
        let mut response = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            let room = MAX_RESPONSE_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_RESPONSE_BYTES {
                break;
            }
        }

        if status.is_success() {
            return Ok(serde_json::from_slice::<IngestAck>(&body).ok());
        }
        Err(SendError::Status {
            status,
            message: error_message(&body),
            retry_after,
        })
    }
}

/// The daemon answers errors as `{"error": "<code>", "message": "<text>", ...}` (`message`
/// optional); anything else is shown as text.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        message: Option<String>,
    }
    let text = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error,
            message: Some(message),
        }) => format!("{error}: {message}"),
        Ok(ErrorBody { error, .. }) => error,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_roots_only_where_tls_may_be_used() {
        let url = |u: &str| Url::parse(u).expect("url");
        let none = |_: &str| false;
        assert!(!may_use_tls(
            &url("http://127.0.0.1:8080/api/v1/ingest"),
            none
        ));
        assert!(may_use_tls(
            &url("https://cloudgov.example/api/v1/ingest"),
            none
        ));
        for key in PROXY_VARIABLES {
            assert!(
                may_use_tls(&url("http://cloudgov.example/"), |k| k == key),
                "{key}"
            );
        }
        assert!(!may_use_tls(&url("http://cloudgov.example/"), |k| k == "NO_PROXY"));
    }

    fn status(code: u16) -> SendError {
        SendError::Status {
            status: StatusCode::from_u16(code).expect("valid code"),
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn dispositions() {
        for code in [500, 502, 503, 429, 408, 401, 403, 301, 307] {
            assert_eq!(status(code).disposition(), Disposition::Retry, "{code}");
        }
        for code in [400, 404, 405, 413, 415, 422] {
            assert_eq!(status(code).disposition(), Disposition::Drop, "{code}");
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error": "unknown field `x`", "code": 400}"#),
            "unknown field `x`"
        );
        assert_eq!(
            error_message(br#"{"error": "invalid_report", "message": "cpu_pct out of range"}"#),
            "invalid_report: cpu_pct out of range"
        );
        assert_eq!(error_message(b" plain text \n"), "plain text");
        assert_eq!(error_message(b""), "(empty body)");
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let cut = error_message(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}

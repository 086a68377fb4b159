//! SMTP delivery with lettre (rustls): settings handed in by the caller (the CLI reads them from
//! the environment, `cli::load::smtp_settings`), secrets never logged.
//!
//! `CLOUDGOV_SMTP_URL` takes lettre's forms:
//! - `smtp://host:25`: plain, for a local relay;
//! - `smtp://host:587?tls=required`: STARTTLS;
//! - `smtps://host:465`: implicit TLS.
//!
//! Credentials come from `CLOUDGOV_SMTP_USER` with `CLOUDGOV_SMTP_PASSWORD` or
//! `CLOUDGOV_SMTP_PASSWORD_FILE` (or inside the URL). `CLOUDGOV_SMTP_FROM` is the sender.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("CLOUDGOV_SMTP_URL {url}: {source}")]
    Url {
        url: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("CLOUDGOV_SMTP_FROM {0:?} is not an e-mail address")]
    From(String),
    #[error("cannot read CLOUDGOV_SMTP_PASSWORD_FILE {path}: {source}")]
    PasswordFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where and as whom to send.
#[derive(Clone)]
pub struct SmtpSettings {
    url: String,
    from: Mailbox,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &crate::core::token::redact_url(&self.url))
            .field("from", &self.from.to_string())
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, _)| (user, "***")),
            )
            .finish()
    }
}

impl SmtpSettings {
    /// Settings for `url` sending as `from`, with optional (user, password) credentials.
    pub fn new(url: String, from: Mailbox, credentials: Option<(String, String)>) -> SmtpSettings {
        SmtpSettings {
            url,
            from,
            credentials,
        }
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }
}

/// A connected-on-demand SMTP transport.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, SmtpError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|source| SmtpError::Url {
                url: crate::core::token::redact_url(&settings.url),
                source,
            })?
            .timeout(Some(Duration::from_secs(30)));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
        })
    }

    /// Returns once the server accepted the message (250 after DATA).
    pub async fn send(&self, message: Message) -> Result<(), lettre::transport::smtp::Error> {
        self.transport.send(message).await.map(|_| ())
    }
}

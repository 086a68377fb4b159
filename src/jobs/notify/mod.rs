//! E-mail notices: renders outbox jobs (digests, reminders, escalations) from templates with
//! evidence charts, and delivers them over SMTP, marking a job sent only after the server
//! accepted it.
//!
//! Delivery is at least once with a stable Message-ID per job
//! (`<cloudgov.KIND.ID.CREATED@DOMAIN>`): if the process dies between the server's acceptance
//! and the database update, the job is sent again with the same Message-ID, which mail systems
//! treat as the same message. Nothing accepted into the outbox is ever dropped: a job with no
//! recipient is kept as `no_recipient` and requeued once the department has an address.

pub mod content;
pub mod smtp;
pub mod templates;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use serde::Serialize;

use crate::core::calendar::shanghai_day;
use crate::core::chart::{ChartFonts, ChartInput, Labels, render_png};
use crate::core::domain::{Resource, Verdict};
use crate::core::rules::Language;
use crate::jobs::JobContext;
use crate::store::{OutboxJob, StoreError};
use content::{DeadlineContext, DigestContext, NoticeContext};
use smtp::{Mailer, SmtpSettings};
use templates::{TemplateError, Templates};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot build the message: {0}")]
    Message(String),
    #[error("outbox job {0} refers to nothing to announce")]
    Empty(i64),
}

/// A message ready to send, and what a person previewing it wants to see.
#[derive(Debug, Clone)]
pub struct Email {
    pub message_id: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// (file name, PNG bytes)
    pub attachments: Vec<(String, Vec<u8>)>,
}

/// What one delivery run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliverySummary {
    pub sent: u64,
    pub failed: u64,
    pub no_recipient: u64,
    /// Jobs still pending after the run (e.g. SMTP down or not configured).
    pub pending: u64,
}

/// How a sender behaves, set by its caller (the CLI reads the environment once at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// How long a sender holds a job it is delivering: longer than one SMTP delivery, short
    /// enough that a crashed sender's job goes out soon (`CLOUDGOV_OUTBOX_CLAIM_SECS`).
    pub claim: Duration,
    /// Fault injection for the crash test: abort right after the server accepted a message,
    /// before it is marked sent (`CLOUDGOV_FAULT_ABORT_AFTER_SMTP_ACCEPT`).
    pub abort_after_accept: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            claim: Duration::from_secs(120),
            abort_after_accept: false,
        }
    }
}

/// Templates, chart fonts, delivery settings and (if configured) the SMTP transport: all read
/// by the caller and handed in, so this module reads neither files, nor the environment, nor
/// the clock.
pub struct Notifier {
    templates: Templates,
    mailer: Option<Mailer>,
    from: Mailbox,
    fonts: ChartFonts,
    settings: DeliverySettings,
}

impl Notifier {
    /// With `smtp` absent, e-mails wait in the outbox until SMTP is configured.
    pub fn new(
        templates: Templates,
        smtp: Option<&SmtpSettings>,
        fonts: ChartFonts,
        settings: DeliverySettings,
    ) -> Result<Notifier, smtp::SmtpError> {
        let mailer = smtp.map(Mailer::new).transpose()?;
        let from = match smtp {
            Some(s) => s.from().clone(),
            None => Mailbox::new(
                None,
                lettre::Address::new("cloudgov", "localhost")
                    .map_err(|_| smtp::SmtpError::From("cloudgov@localhost".into()))?,
            ),
        };
        Ok(Notifier {
            templates,
            mailer,
            from,
            fonts,
            settings,
        })
    }

    /// Built-in templates, no SMTP, charts without text (for tests and library callers).
    pub fn without_smtp() -> Result<Notifier, NotifyError> {
        let fonts = ChartFonts::register(None, None)
            .map_err(|e| NotifyError::Message(format!("chart fonts: {e}")))?;
        Notifier::new(
            Templates::builtin()?,
            None,
            fonts,
            DeliverySettings::default(),
        )
        .map_err(|e| NotifyError::Message(e.to_string()))
    }

    pub fn smtp_configured(&self) -> bool {
        self.mailer.is_some()
    }

    /// The fonts charts are drawn with (e-mails, review reports).
    pub fn fonts(&self) -> &ChartFonts {
        &self.fonts
    }
}

fn message_id(job: &OutboxJob, from: &Mailbox) -> String {
    format!(
        "<cloudgov.{}.{}.{}@{}>",
        job.kind,
        job.id,
        job.created_at,
        from.email.domain()
    )
}

/// Renders an outbox job into an e-mail (no sending).
pub async fn render_job(
    ctx: &JobContext,
    job: &OutboxJob,
    now: DateTime<Utc>,
) -> Result<Email, NotifyError> {
    let notifier = &ctx.notifier;
    let language = ctx.rules.notices().language;
    let department = ctx.store.contact(job.department.as_deref()).await?;
    let from = notifier.from.clone();
    let issued = DateTime::from_timestamp(job.created_at, 0).unwrap_or(now);
    let mut cc = Vec::new();
    let (text, attachments) = match job.kind.as_str() {
        "digest" => {
            let ids = ctx.store.outbox_notice_ids(job.id).await?;
            if ids.is_empty() {
                return Err(NotifyError::Empty(job.id));
            }
            let notices = ctx.store.notice_details(&ids).await?;
            digest(ctx, &department, &notices, issued).await?
        }
        kind @ ("reminder" | "escalation") => {
            let id = job.deadline_id.ok_or(NotifyError::Empty(job.id))?;
            let deadline = ctx
                .store
                .deadline(id)
                .await?
                .ok_or(NotifyError::Empty(job.id))?;
            if kind == "escalation" {
                cc = ctx.store.center_emails("emails").await?;
            }
            let context = DeadlineContext::new(ctx, &department, &deadline, issued);
            (
                notifier.templates.render(kind, language, &context)?,
                Vec::new(),
            )
        }
        "network" => {
            let findings = ctx.store.network_findings(Some(job.id)).await?;
            if findings.is_empty() {
                return Err(NotifyError::Empty(job.id));
            }
            if job.department.is_some() {
                cc = ctx.store.center_emails("emails").await?;
            }
            let context = content::NetworkContext::new(&department, findings, issued);
            (
                notifier.templates.render("network", language, &context)?,
                Vec::new(),
            )
        }
        "review" => {
            let review = ctx
                .store
                .reviews(None, Some(job.id))
                .await?
                .into_iter()
                .next()
                .ok_or(NotifyError::Empty(job.id))?;
            cc = ctx.store.center_emails("finance_emails").await?;
            let mut context: serde_json::Value = serde_json::from_str(&review.4)
                .map_err(|e| NotifyError::Message(format!("stored review: {e}")))?;
            let verdict_zh = match review.3.as_str() {
                "keep" => "保留",
                "consolidate" => "整合",
                "cancel" => "取消",
                _ => "未备案,停止安排运维经费",
            };
            context["verdict_zh"] = verdict_zh.into();
            context["issued"] = shanghai_day(issued).to_string().into();
            context["issued_zh"] = content::zh_date(shanghai_day(issued)).into();
            (
                notifier.templates.render("review", language, &context)?,
                Vec::new(),
            )
        }
        kind @ ("request_receipt" | "request_decision") => {
            let id = job.request_id.ok_or(NotifyError::Empty(job.id))?;
            let request = crate::jobs::requests::view_in(ctx, None, id)
                .await?
                .ok_or(NotifyError::Empty(job.id))?;
            let context = content::RequestContext::new(&department, request, issued);
            (
                notifier.templates.render(kind, language, &context)?,
                Vec::new(),
            )
        }
        _ => return Err(NotifyError::Empty(job.id)),
    };
    Ok(Email {
        message_id: message_id(job, &from),
        to: department.emails,
        cc,
        subject: text.subject,
        body: text.body,
        attachments,
    })
}

/// A digest's text and charts for `notices` of one department.
async fn digest(
    ctx: &JobContext,
    department: &crate::store::DepartmentContact,
    notices: &[crate::store::NoticeDetail],
    issued: DateTime<Utc>,
) -> Result<(templates::RenderedText, Vec<(String, Vec<u8>)>), NotifyError> {
    let language = ctx.rules.notices().language;
    let mut contexts = Vec::with_capacity(notices.len());
    let mut releases = Vec::new();
    let mut attachments = Vec::with_capacity(notices.len());
    for n in notices {
        // Release advice rests on usage as a whole, told in words; no resource chart.
        if n.direction == crate::core::domain::Direction::Release.as_str() {
            releases.push(content::ReleaseContext::new(ctx, n));
            continue;
        }
        let c = NoticeContext::new(ctx, n);
        attachments.push((
            c.chart.clone(),
            notice_chart(ctx, n, language, issued).await?,
        ));
        contexts.push(c);
    }
    let context = DigestContext::new(ctx, department, contexts, releases, issued);
    Ok((
        ctx.notifier
            .templates
            .render("digest", language, &context)?,
        attachments,
    ))
}

/// The PNG for a notice: its resource over the window before it was issued, with thresholds.
async fn notice_chart(
    ctx: &JobContext,
    n: &crate::store::NoticeDetail,
    language: Language,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, NotifyError> {
    let issued_at = DateTime::from_timestamp(n.issued_at, 0).unwrap_or(now);
    let window = (
        issued_at - TimeDelta::days(i64::from(ctx.rules.window().days)),
        issued_at,
    );
    let samples = ctx
        .store
        .samples_between(n.vm_key, window.0, window.1)
        .await?;
    let resource: Resource = n.resource.parse().unwrap_or(Resource::Cpu);
    let points: Vec<(DateTime<Utc>, f64)> = samples
        .iter()
        .filter_map(|s| s.value(resource).map(|v| (s.at(), v.percent())))
        .collect();
    let rules = content::rules_for_notice(ctx, n);
    let rule = rules.get(resource);
    let verdict = if n.direction == "expand" {
        Verdict::Expand
    } else {
        Verdict::Downsize
    };
    let input = ChartInput {
        vm: &n.vm,
        resource,
        points: &points,
        window,
        downsize: (rule.downsize.to_string(), rule.downsize.value()),
        expand: (rule.expand.to_string(), rule.expand.value()),
        statistic: (n.statistic.clone(), n.value),
        verdict,
    };
    let fonts = ctx.notifier.fonts();
    let labels = fonts.labels(match language {
        Language::Zh => Labels::Chinese,
        Language::En => Labels::Latin,
    });
    render_png(&input, fonts, labels).map_err(|e| NotifyError::Message(format!("chart: {e}")))
}

/// The RFC 5322 message for an e-mail.
pub fn build_message(email: &Email, from: &Mailbox) -> Result<Message, NotifyError> {
    let bad = |e: &dyn std::fmt::Display| NotifyError::Message(e.to_string());
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()));
    for to in &email.to {
        builder = builder.to(to.parse().map_err(|e| bad(&e))?);
    }
    for cc in &email.cc {
        builder = builder.cc(cc.parse().map_err(|e| bad(&e))?);
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(email.body.clone());
    let message = if email.attachments.is_empty() {
        builder.singlepart(text)
    } else {
        let png = ContentType::parse("image/png").map_err(|e| bad(&e))?;
        let mut parts = MultiPart::mixed().singlepart(text);
        for (name, bytes) in &email.attachments {
            parts =
                parts.singlepart(Attachment::new(name.clone()).body(bytes.clone(), png.clone()));
        }
        builder.multipart(parts)
    };
    message.map_err(|e| bad(&e))
}

/// Delay before the next attempt after `attempts` failures: 30 s doubling, at most 15 min, so
/// a server down for hours gets everything within 15 minutes of coming back.
pub fn backoff(attempts: i64) -> TimeDelta {
    let secs = 30i64.saturating_mul(1i64 << attempts.clamp(0, 10));
    TimeDelta::seconds(secs.min(15 * 60))
}

/// Delivers pending jobs once. `ignore_backoff` (for `tick`) tries every pending job now.
/// A transport error stops the run: the next jobs would meet the same server. `keep_going` is
/// asked before each job: a daemon that lost its leadership stops at once, and the new leader
/// sends the rest.
pub async fn deliver_pending(
    ctx: &JobContext,
    now: DateTime<Utc>,
    ignore_backoff: bool,
    keep_going: &(dyn Fn() -> bool + Send + Sync),
) -> Result<DeliverySummary, NotifyError> {
    let mut summary = DeliverySummary::default();
    let settings = ctx.notifier.settings;
    ctx.store.outbox_requeue_no_recipient().await?;
    let jobs = ctx
        .store
        .outbox_due(now.timestamp(), ignore_backoff, 500)
        .await?;
    if let Some(mailer) = &ctx.notifier.mailer {
        let from = &ctx.notifier.from;
        for job in &jobs {
            if !keep_going() {
                tracing::warn!(
                    outbox = job.id,
                    "e-mail run stopped: this sender no longer leads"
                );
                break;
            }
            // Claim the job first, so a second sender (a `tick` or `outbox send` beside the
            // daemon, or a new leader) skips it. The claim runs from the moment it is taken,
            // not from the start of the run: a long run's later jobs are not claimed already
            // expired.
            if !ctx
                .store
                .outbox_claim(job.id, settings.claim.as_secs() as i64)
                .await?
            {
                continue;
            }
            let email = match render_job(ctx, job, now).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(outbox = job.id, error = %e, "cannot render e-mail");
                    ctx.store
                        .outbox_retry(
                            job.id,
                            (now + backoff(job.attempts)).timestamp(),
                            &e.to_string(),
                        )
                        .await?;
                    summary.failed += 1;
                    continue;
                }
            };
            if email.to.is_empty() && email.cc.is_empty() {
                let reason = match &job.department {
                    Some(d) => format!("department {d} has no e-mail address in the inventory"),
                    None => "the center has no e-mail address ([center] emails in the inventory)"
                        .to_owned(),
                };
                tracing::warn!(outbox = job.id, department = ?job.department, "{reason}");
                ctx.store.outbox_no_recipient(job.id, &reason).await?;
                summary.no_recipient += 1;
                continue;
            }
            let email = Email {
                message_id: ctx
                    .store
                    .outbox_message_id(job.id, &email.message_id)
                    .await?,
                ..email
            };
            let message = build_message(&email, from)?;
            match mailer.send(message).await {
                Ok(()) => {
                    // Fault injection for the crash test: die after acceptance, before marking.
                    if settings.abort_after_accept {
                        std::process::abort();
                    }
                    let recipients: Vec<String> =
                        email.to.iter().chain(&email.cc).cloned().collect();
                    ctx.store.outbox_sent(job.id, &recipients).await?;
                    tracing::info!(outbox = job.id, kind = %job.kind, department = ?job.department, "e-mail sent");
                    summary.sent += 1;
                }
                Err(e) => {
                    tracing::warn!(outbox = job.id, error = %e, attempts = job.attempts + 1, "SMTP delivery failed; will retry");
                    ctx.store
                        .outbox_retry(
                            job.id,
                            (now + backoff(job.attempts)).timestamp(),
                            &e.to_string(),
                        )
                        .await?;
                    summary.failed += 1;
                    // A message the server refused for good must not hold up the others; a
                    // connection or transient error would meet the next ones too.
                    if !e.is_permanent() {
                        break;
                    }
                }
            }
        }
    }
    summary.pending = ctx.store.outbox_pending_count().await?;
    Ok(summary)
}

/// The e-mail a notice is (or would be) announced in, for `cloudgov notices preview`.
pub async fn preview_notice(
    ctx: &JobContext,
    notice_id: i64,
    now: DateTime<Utc>,
) -> Result<Email, NotifyError> {
    if let Some(id) = ctx.store.outbox_of_notice(notice_id).await? {
        let job = ctx
            .store
            .outbox_job(id)
            .await?
            .ok_or(NotifyError::Empty(id))?;
        return render_job(ctx, &job, now).await;
    }
    // Held for approval: shown as the digest of this notice alone.
    let notices = ctx.store.notice_details(&[notice_id]).await?;
    let department = notices
        .first()
        .map(|n| n.department.clone())
        .ok_or(NotifyError::Empty(0))?;
    let contact = ctx.store.department_contact(&department).await?;
    let (text, attachments) = digest(ctx, &contact, &notices, now).await?;
    Ok(Email {
        message_id: "(not queued: awaiting approval)".into(),
        to: contact.emails,
        cc: Vec::new(),
        subject: text.subject,
        body: text.body,
        attachments,
    })
}

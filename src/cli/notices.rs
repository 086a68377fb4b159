//! `cloudgov notices ...` and `cloudgov outbox ...`: notices, their approval and completion,
//! previews, and the e-mail outbox.

use anyhow::bail;
use chrono::{NaiveDate, Utc};
use clap::Subcommand;

use super::Session;
use super::output::{Format, FormatArg, print_json, print_table};
use crate::jobs::notify::{deliver_pending, preview_notice};
use crate::store::ContestDecision;

#[derive(Debug, Subcommand)]
pub enum NoticesCommand {
    List(FormatArg),
    /// Render the e-mail that announces a notice, without sending it.
    Preview {
        id: i64,
    },
    /// Staff approve held notices (with `require_approval`): they are e-mailed as digests.
    Approve {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Staff confirm that the adjustment a notice asked for is done.
    Complete {
        id: i64,
        /// The day it was done.
        #[arg(long)]
        on: NaiveDate,
    },
    /// Record a department's contest of a notice (staff, for a department that wrote in).
    Contest {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Staff uphold a contested release advice: the department requests the release by the
    /// due date.
    Uphold {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Staff withdraw a contested release advice: the notice closes and the VM is not advised
    /// again until it is seen in use.
    Withdraw {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Every e-mail job with its state (pending, sent, no_recipient).
    List(FormatArg),
    /// Deliver what is pending now (ignoring backoff).
    Send,
}

pub(super) async fn run(s: &Session<'_>, cmd: NoticesCommand) -> anyhow::Result<()> {
    let (ctx, store, operator) = (s.ctx, &s.ctx.store, &s.operator);
    match cmd {
        NoticesCommand::List(f) => {
            let rows = store.notices().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &[
                            "ID",
                            "VM",
                            "DEPARTMENT",
                            "RESOURCE",
                            "KIND",
                            "STATE",
                            "ISSUED",
                            "VALUE",
                        ],
                        rows.iter().map(|n| {
                            vec![
                                n.id.to_string(),
                                n.vm.clone(),
                                n.department.clone(),
                                n.resource.to_string(),
                                n.kind.to_string(),
                                n.state.to_string(),
                                n.issued_on.clone(),
                                format!("{:.1}% ({} {})", n.value, n.statistic, n.comparison),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        NoticesCommand::Preview { id } => {
            let email = preview_notice(ctx, id, Utc::now()).await?;
            println!("Message-ID: {}", email.message_id);
            println!("To: {}", email.to.join(", "));
            if !email.cc.is_empty() {
                println!("Cc: {}", email.cc.join(", "));
            }
            println!("Subject: {}", email.subject);
            println!();
            println!("{}", email.body.trim_end());
            for (name, bytes) in &email.attachments {
                println!("[attachment {name}: image/png, {} bytes]", bytes.len());
            }
            Ok(())
        }
        NoticesCommand::Approve { ids } => {
            let done = crate::jobs::actions::approve_notices(ctx, operator, &ids).await?;
            println!("{}", done.message);
            Ok(())
        }
        NoticesCommand::Complete { id, on } => {
            let done = crate::jobs::actions::complete_notice(ctx, operator, id, on).await?;
            println!("{}", done.message);
            Ok(())
        }
        NoticesCommand::Contest { id, reason } => {
            let done = crate::jobs::actions::contest_notice(ctx, operator, id, &reason).await?;
            println!("{}", done.message);
            Ok(())
        }
        NoticesCommand::Uphold { id, reason } => {
            let decision = ContestDecision::Upheld;
            let done =
                crate::jobs::actions::decide_contest(ctx, operator, id, decision, &reason).await?;
            println!("{}", done.message);
            Ok(())
        }
        NoticesCommand::Withdraw { id, reason } => {
            let decision = ContestDecision::Withdrawn;
            let done =
                crate::jobs::actions::decide_contest(ctx, operator, id, decision, &reason).await?;
            println!("{}", done.message);
            Ok(())
        }
    }
}

pub(super) async fn outbox(s: &Session<'_>, cmd: OutboxCommand) -> anyhow::Result<()> {
    let (ctx, store) = (s.ctx, &s.ctx.store);
    match cmd {
        OutboxCommand::List(f) => {
            let rows = store.outbox().await?;
            match f.format {
                Format::Json => print_json(&rows),
                Format::Table => {
                    print_table(
                        &[
                            "ID",
                            "KIND",
                            "DEPARTMENT",
                            "STATE",
                            "ATTEMPTS",
                            "NOTICES",
                            "SENT",
                            "LAST ERROR",
                        ],
                        rows.iter().map(|o| {
                            vec![
                                o.id.to_string(),
                                o.kind.clone(),
                                o.department.clone().unwrap_or_else(|| "(center)".into()),
                                o.state.clone(),
                                o.attempts.to_string(),
                                format!("{:?}", o.notices),
                                o.sent_at.clone().unwrap_or_else(|| "-".into()),
                                o.last_error.clone().unwrap_or_default(),
                            ]
                        }),
                    );
                    Ok(())
                }
            }
        }
        OutboxCommand::Send => {
            if !ctx.notifier.smtp_configured() {
                bail!("CLOUDGOV_SMTP_URL is not set: e-mails stay in the outbox");
            }
            let summary = deliver_pending(ctx, Utc::now(), true, &|| true).await?;
            print_json(&summary)
        }
    }
}

//! `cloudgov user ...`: accounts, API tokens and the audit log, from the command line.
//!
//! Passwords are read from standard input (one line) or `CLOUDGOV_PASSWORD`, never from an
//! argument, so they stay out of shell history and `ps`.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::output::{Format, FormatArg, print_json, print_table};
use crate::core::access::{Role, Viewer};
use crate::core::domain::DepartmentId;
use crate::http::auth;
use crate::jobs::JobContext;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account. The password comes from standard input or CLOUDGOV_PASSWORD.
    Add {
        username: String,
        /// admin, operator (center staff) or department.
        #[arg(long)]
        role: Role,
        /// The department a department user sees (required for --role department).
        #[arg(long)]
        department: Option<DepartmentId>,
    },
    /// Set a new password (standard input or CLOUDGOV_PASSWORD); the user's sessions end.
    SetPassword { username: String },
    /// Disable an account: its sessions end and its API tokens stop working.
    Disable { username: String },
    /// List accounts.
    List(FormatArg),
    /// Issue an API token for scripts; printed once, stored only as a hash.
    Token {
        username: String,
        /// A name to tell tokens apart (e.g. the script using it).
        #[arg(long)]
        name: String,
    },
    /// Revoke a user's API tokens (those named --name, or all).
    RevokeTokens {
        username: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// The newest entries of the audit log.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("CLOUDGOV_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password: pipe it on standard input or set CLOUDGOV_PASSWORD");
    }
    Ok(password)
}

fn check_username(username: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        bail!("user name {username:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ - @");
    }
    Ok(())
}

/// Runs an account command; every change is in the audit log under the CLI's operator.
pub async fn run(ctx: &JobContext, operator: &Viewer, cmd: UserCommand) -> anyhow::Result<()> {
    let store = &ctx.store;
    let now = chrono::Utc::now().timestamp();
    let audit = |action: &'static str, target: String, detail: String| async move {
        crate::jobs::actions::record(ctx, operator, action, &target, &detail).await
    };
    match cmd {
        UserCommand::Add {
            username,
            role,
            department,
        } => {
            check_username(&username)?;
            let hash = auth::hash_password(&read_password()?)?;
            store
                .create_user(
                    &username,
                    &hash,
                    role,
                    department.as_ref().map(|d| d.as_str()),
                    now,
                )
                .await?;
            audit(
                "add_user",
                format!("user {username}"),
                format!("role {role}"),
            )
            .await?;
            println!("user {username} added ({role})");
        }
        UserCommand::SetPassword { username } => {
            let hash = auth::hash_password(&read_password()?)?;
            store.set_password(&username, &hash).await?;
            audit("set_password", format!("user {username}"), String::new()).await?;
            println!("password of {username} changed; their sessions ended");
        }
        UserCommand::Disable { username } => {
            store.disable_user(&username, now).await?;
            audit("disable_user", format!("user {username}"), String::new()).await?;
            println!("user {username} disabled");
        }
        UserCommand::List(f) => {
            let users = store.users().await?;
            match f.format {
                Format::Json => print_json(&users)?,
                Format::Table => print_table(
                    &["USER", "ROLE", "DEPARTMENT", "STATE"],
                    users.iter().map(|u| {
                        vec![
                            u.username.clone(),
                            u.role.clone(),
                            u.department.clone().unwrap_or_else(|| "-".into()),
                            if u.disabled { "disabled" } else { "active" }.into(),
                        ]
                    }),
                ),
            }
        }
        UserCommand::Token { username, name } => {
            let token = auth::new_secret(auth::API_TOKEN_PREFIX)?;
            store
                .create_api_token(&username, &name, &crate::core::token::hash(&token), now)
                .await?;
            audit(
                "issue_api_token",
                format!("user {username}"),
                format!("name {name}"),
            )
            .await?;
            println!("{token}");
            eprintln!("API token {name:?} of {username}: shown once, keep it safe");
        }
        UserCommand::RevokeTokens { username, name } => {
            let n = store
                .revoke_api_tokens(&username, name.as_deref(), now)
                .await?;
            audit(
                "revoke_api_tokens",
                format!("user {username}"),
                format!("{n} revoked"),
            )
            .await?;
            println!("{n} tokens of {username} revoked");
        }
        UserCommand::Audit { limit, format } => {
            let rows = store.audit_log(limit.clamp(1, 10_000)).await?;
            match format {
                Format::Json => print_json(&rows)?,
                Format::Table => print_table(
                    &["AT", "USER", "ACTION", "TARGET", "DETAIL"],
                    rows.iter().map(|r| {
                        vec![
                            chrono::DateTime::from_timestamp(r.at, 0)
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_default(),
                            r.username.clone(),
                            r.action.clone(),
                            r.target.clone(),
                            r.detail.clone(),
                        ]
                    }),
                ),
            }
        }
    }
    Ok(())
}

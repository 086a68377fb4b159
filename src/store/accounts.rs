//! Accounts: users, sessions, API tokens, the audit log of staff actions, and notice contests.
//!
//! Secrets never reach this module in the clear: sessions and API tokens are looked up by their
//! SHA-256, passwords are stored as the argon2 PHC string the caller computed.

use sqlx::Row;

use super::{BeginWrite, Result, Store, StoreError, on_pool};
use crate::core::access::Role;
use crate::core::details::AuditFacts;

/// An account as listed (never with its password hash).
/// A notice's department and issue day, for the checks of an action on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeFacts {
    pub department: String,
    pub issued_on: chrono::NaiveDate,
}

/// A VM's department and dates, for the checks of an action on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFacts {
    pub department: String,
    pub delivered_on: chrono::NaiveDate,
    pub release_requested_on: Option<chrono::NaiveDate>,
    pub released_on: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub department: Option<String>,
    pub created_at: i64,
    pub disabled: bool,
}

/// What signing in needs: the stored hash and who the user is.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: i64,
    pub password_hash: String,
    pub role: Role,
    pub department: Option<String>,
}

/// The account behind a live session or API token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub department: Option<String>,
    /// The session's CSRF token (sessions only).
    pub csrf: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub username: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    /// [`AuditFacts`] as JSON, for the audit page (not part of the API's answer).
    #[serde(skip)]
    pub facts: Option<String>,
}

/// A department's objection to a notice.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ContestRow {
    pub id: i64,
    pub notice_id: i64,
    pub username: String,
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
    /// Staff's decision (release advice): `upheld` or `withdrawn`; `null` while undecided.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

fn role_of(text: &str) -> Result<Role> {
    super::stored(text.to_owned())
}

impl Store {
    /// Adds an account. A department user's department must exist.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        department: Option<&str>,
        now: i64,
    ) -> Result<i64> {
        if (role == Role::Department) != department.is_some() {
            return Err(StoreError::Invalid(
                "a department user needs --department; staff accounts take none".into(),
            ));
        }
        if let Some(d) = department
            && !self.department_ids().await?.contains(d)
        {
            return Err(StoreError::Invalid(format!(
                "unknown department {d:?}: import the inventory first"
            )));
        }
        let result: std::result::Result<(i64,), sqlx::Error> = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO users (username, password_hash, role, department_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(username).bind(password_hash).bind(role.as_str()).bind(department).bind(now)
            .fetch_one(p).await);
        match result {
            Ok((id,)) => Ok(id),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Invalid(
                format!("a user named {username:?} already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a user's password; every session of the user ends and their API tokens are
    /// revoked (whoever knew the old password may have made one).
    pub async fn set_password(&self, username: &str, password_hash: &str) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let updated = sqlx::query("UPDATE users SET password_hash = $2 WHERE username = $1")
                .bind(username).bind(password_hash).execute(&mut *tx).await?.rows_affected();
            if updated == 0 {
                return Err(StoreError::Invalid(format!("no user named {username:?}")));
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)")
                .bind(username).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
                 AND user_id = (SELECT id FROM users WHERE username = $1)")
                .bind(username).bind(super::now_secs()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Disables an account: its sessions end and its API tokens stop working.
    pub async fn disable_user(&self, username: &str, now: i64) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE users SET disabled_at = $2 WHERE username = $1 AND disabled_at IS NULL")
                .bind(username).bind(now).execute(&mut *tx).await?.rows_affected();
            if updated == 0 {
                return Err(StoreError::Invalid(format!(
                    "no enabled user named {username:?}"
                )));
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)")
                .bind(username).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, username, role, department_id, created_at, disabled_at IS NOT NULL \
                 FROM users ORDER BY username")
                .fetch_all(p).await?;
            rows.into_iter().map(|r| Ok(UserRow {
                id: r.try_get(0)?,
                username: r.try_get(1)?,
                role: r.try_get(2)?,
                department: r.try_get(3)?,
                created_at: r.try_get(4)?,
                disabled: r.try_get(5)?,
            })).collect()
        })
    }

    /// The stored hash of an enabled user, for signing in.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row: Option<(i64, String, String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, password_hash, role, department_id FROM users \
             WHERE username = $1 AND disabled_at IS NULL")
            .bind(username).fetch_optional(p).await)?;
        row.map(|(user_id, password_hash, role, department)| {
            Ok(Credentials {
                user_id,
                password_hash,
                role: role_of(&role)?,
                department,
            })
        })
        .transpose()
    }

    /// Starts a session; expired sessions of every user are removed on the way.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash).bind(user_id).bind(csrf).bind(now).bind(expires_at)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// The enabled user behind an unexpired session.
    pub async fn session_principal(&self, token_hash: &str, now: i64) -> Result<Option<Principal>> {
        let row: Option<(i64, String, String, Option<String>, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT u.id, u.username, u.role, u.department_id, s.csrf FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL")
            .bind(token_hash).bind(now).fetch_optional(p).await)?;
        row.map(|(user_id, username, role, department, csrf)| {
            Ok(Principal {
                user_id,
                username,
                role: role_of(&role)?,
                department,
                csrf: Some(csrf),
            })
        })
        .transpose()
    }

    /// Stores a new API token of a user (the token itself is shown once, by the caller).
    pub async fn create_api_token(
        &self,
        username: &str,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<()> {
        let inserted = on_pool!(self, p => sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, name, created_at) \
             SELECT $1, id, $3, $4 FROM users WHERE username = $2 AND disabled_at IS NULL")
            .bind(token_hash).bind(username).bind(name).bind(now).execute(p).await
            .map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Err(StoreError::Invalid(format!(
                "no enabled user named {username:?}"
            )));
        }
        Ok(())
    }

    /// Revokes a user's API tokens named `name` (all of them when `None`); returns how many.
    pub async fn revoke_api_tokens(
        &self,
        username: &str,
        name: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE api_tokens SET revoked_at = $3 WHERE revoked_at IS NULL \
             AND user_id = (SELECT id FROM users WHERE username = $1) AND ($2 IS NULL OR name = $2)")
            .bind(username).bind(name).bind(now).execute(p).await
            .map(|r| r.rows_affected()))?)
    }

    /// The enabled user behind an unrevoked API token; records when it was last used, to the
    /// minute (a script's every request need not be a write).
    pub async fn api_token_principal(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Principal>> {
        let row: Option<(i64, String, String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT u.id, u.username, u.role, u.department_id FROM api_tokens t \
             JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL")
            .bind(token_hash).fetch_optional(p).await)?;
        let Some((user_id, username, role, department)) = row else {
            return Ok(None);
        };
        on_pool!(self, p => sqlx::query(
            "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 \
             AND (last_used_at IS NULL OR last_used_at < $2 - 60)")
            .bind(token_hash).bind(now).execute(p).await.map(|_| ()))?;
        Ok(Some(Principal {
            user_id,
            username,
            role: role_of(&role)?,
            department,
            csrf: None,
        }))
    }

    /// Records a staff or department action: `detail` in English for the CLI and the API,
    /// `facts` (if any) for the audit page in its own language.
    #[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
    pub async fn audit(
        &self,
        user_id: Option<i64>,
        username: &str,
        action: &str,
        target: &str,
        detail: &str,
        facts: Option<&AuditFacts>,
        now: i64,
    ) -> Result<()> {
        let facts = facts.map(super::obligations::facts_json).transpose()?;
        on_pool!(self, p => sqlx::query(
            "INSERT INTO audit_log (at, user_id, username, action, target, detail, facts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(now).bind(user_id).bind(username).bind(action).bind(target).bind(detail).bind(&facts)
            .execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRow>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT id, at, username, action, target, detail, facts FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(limit).fetch_all(p).await)?
        .into_iter()
        .map(|(id, at, username, action, target, detail, facts)| AuditRow {
            id,
            at,
            username,
            action,
            target,
            detail,
            facts,
        })
        .collect())
    }

    pub async fn add_contest(
        &self,
        notice_id: i64,
        user_id: Option<i64>,
        username: &str,
        reason: &str,
        now: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO notice_contests (notice_id, user_id, username, reason, at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(notice_id).bind(user_id).bind(username).bind(reason).bind(now)
            .fetch_one(p).await)?;
        Ok(id)
    }

    /// The contests of one notice, oldest first.
    pub async fn contests(&self, notice_id: i64) -> Result<Vec<ContestRow>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT id, notice_id, username, reason, at, decision, decided_by, decision_reason \
             FROM notice_contests WHERE notice_id = $1 ORDER BY id")
            .bind(notice_id).fetch_all(p).await)?
        .into_iter()
        .map(
            |(id, notice_id, username, reason, at, decision, decided_by, decision_reason)| {
                ContestRow {
                    id,
                    notice_id,
                    username,
                    reason,
                    at,
                    decision,
                    decided_by,
                    decision_reason,
                }
            },
        )
        .collect())
    }

    /// What an action on a notice needs to know: its department and the day it was issued.
    pub async fn notice_facts(&self, notice_id: i64) -> Result<Option<NoticeFacts>> {
        let row: Option<(String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT pr.department_id, n.issued_on FROM notices n JOIN vms v ON v.key = n.vm_key \
             JOIN projects pr ON pr.id = v.project_id WHERE n.id = $1")
            .bind(notice_id).fetch_optional(p).await)?;
        row.map(|(department, issued)| {
            Ok(NoticeFacts {
                department,
                issued_on: super::inventory::parse_date(&issued)?,
            })
        })
        .transpose()
    }

    /// The department a project belongs to, if the project exists.
    pub async fn project_department(&self, project: &str) -> Result<Option<String>> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT department_id FROM projects WHERE id = $1")
            .bind(project).fetch_optional(p).await)?)
    }

    /// What an action on a VM needs to know: its department and the dates of its life.
    pub async fn vm_facts(&self, vm: &str) -> Result<Option<VmFacts>> {
        let row: Option<(String, String, Option<String>, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT pr.department_id, v.delivered_on, v.release_requested_on, v.released_on \
             FROM vms v JOIN projects pr ON pr.id = v.project_id WHERE v.id = $1")
            .bind(vm).fetch_optional(p).await)?;
        row.map(|(department, delivered, requested, released)| {
            let date =
                |s: Option<String>| s.as_deref().map(super::inventory::parse_date).transpose();
            Ok(VmFacts {
                department,
                delivered_on: super::inventory::parse_date(&delivered)?,
                release_requested_on: date(requested)?,
                released_on: date(released)?,
            })
        })
        .transpose()
    }
}

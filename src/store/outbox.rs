//! The e-mail outbox: jobs written with what they announce, claimed by the sender, marked sent
//! only after the SMTP server accepted the message.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::inventory::parse_date;
use super::notices::enqueue_digest;
use super::{BeginWrite, Result, Store, StoreError, now_secs, on_pool};
use crate::core::rules::recommend::{NoRecommendation, Recommendation};

/// An outbox job due for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxJob {
    pub id: i64,
    pub kind: String,
    /// `None`: addressed to the center (e.g. network findings of no known department).
    pub department: Option<String>,
    pub deadline_id: Option<i64>,
    /// The resource request a receipt or decision e-mail is about.
    pub request_id: Option<i64>,
    pub attempts: i64,
    pub created_at: i64,
}

/// An outbox row as the CLI and API list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub department: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub notices: Vec<i64>,
}

/// Everything an e-mail says about one notice.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeDetail {
    pub id: i64,
    pub vm_key: i64,
    pub vm: String,
    pub project: String,
    pub project_name: String,
    pub department: String,
    pub resource: String,
    pub direction: String,
    pub value: f64,
    pub threshold: f64,
    pub comparison: String,
    pub statistic: String,
    pub allocation_json: String,
    pub issued_at: i64,
    pub issued_on: NaiveDate,
    pub due_on: Option<NaiveDate>,
    pub provisional: bool,
    pub closed: bool,
    pub approved: bool,
    /// The recommendation stored at issue (`None` for notices issued before it was stored).
    pub recommendation: Option<Recommendation>,
    /// Release advice: the usage evidence it was issued on (JSON).
    pub evidence: Option<String>,
}

/// A department's name and addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentContact {
    pub id: String,
    pub name: String,
    pub emails: Vec<String>,
}

fn time_text(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

fn json_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s)
        .map_err(|e| StoreError::Invalid(format!("stored address list is not JSON: {e}")))
}

impl Store {
    /// Pending jobs whose next attempt is due at `now` (all pending with `ignore_backoff`),
    /// oldest first.
    pub async fn outbox_due(
        &self,
        now: i64,
        ignore_backoff: bool,
        limit: i64,
    ) -> Result<Vec<OutboxJob>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, kind, department_id, deadline_id, attempts, created_at, request_id FROM outbox \
                 WHERE state = 'pending' AND ($2 OR next_attempt_at <= $1) ORDER BY id LIMIT $3")
                .bind(now).bind(ignore_backoff).bind(limit).fetch_all(p).await?;
            rows.into_iter()
                .map(|r| Ok(OutboxJob {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    department: r.try_get(2)?,
                    deadline_id: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                    created_at: r.try_get(5)?,
                    request_id: r.try_get(6)?,
                }))
                .collect()
        })
    }

    /// One job by id.
    pub async fn outbox_job(&self, id: i64) -> Result<Option<OutboxJob>> {
        on_pool!(self, p => {
            let row = sqlx::query(
                "SELECT id, kind, department_id, deadline_id, attempts, created_at, request_id FROM outbox WHERE id = $1")
                .bind(id).fetch_optional(p).await?;
            row.map(|r| -> Result<OutboxJob> {
                Ok(OutboxJob {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    department: r.try_get(2)?,
                    deadline_id: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                    created_at: r.try_get(5)?,
                    request_id: r.try_get(6)?,
                })
            })
            .transpose()
        })
    }

    /// The job's Message-ID: `candidate` at the first attempt, the stored one ever after, so a
    /// retry after a crash carries the same id even if the sender's settings changed.
    pub async fn outbox_message_id(&self, id: i64, candidate: &str) -> Result<String> {
        let (mid,): (String,) = on_pool!(self, p => sqlx::query_as(
            "UPDATE outbox SET message_id = COALESCE(message_id, $2) WHERE id = $1 RETURNING message_id")
            .bind(id).bind(candidate).fetch_one(p).await)?;
        Ok(mid)
    }

    /// Jobs not yet delivered (pending), whatever their next attempt time.
    pub async fn outbox_pending_count(&self) -> Result<u64> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(p).await)?;
        Ok(n as u64)
    }

    /// Claims a pending job for delivery for `claim_secs`; false if another sender holds it. A
    /// sender that dies mid-delivery loses the claim when it expires, and the job goes again.
    pub async fn outbox_claim(&self, id: i64, claim_secs: i64) -> Result<bool> {
        // The claim is timed on the clock of the moment it is taken (not of the run's start),
        // so a long run's later jobs are not claimed already expired.
        let now = now_secs();
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET claimed_until = $2 WHERE id = $1 AND state = 'pending' \
             AND (claimed_until IS NULL OR claimed_until < $3)")
            .bind(id).bind(now + claim_secs).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The server accepted the message: never send it again.
    pub async fn outbox_sent(&self, id: i64, recipients: &[String]) -> Result<()> {
        let now = now_secs();
        let recipients =
            serde_json::to_string(recipients).map_err(|e| StoreError::Invalid(e.to_string()))?;
        on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_at = $2, recipients = $3, attempts = attempts + 1, last_error = NULL, \
             claimed_until = NULL WHERE id = $1")
            .bind(id).bind(now).bind(recipients).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// A failed attempt: try again at `next_attempt_at`.
    pub async fn outbox_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, claimed_until = NULL \
             WHERE id = $1 AND state = 'pending'")
            .bind(id).bind(next_attempt_at).bind(error).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Nobody to send to: kept, visible, never silently dropped.
    pub async fn outbox_no_recipient(&self, id: i64, reason: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET state = 'no_recipient', last_error = $2, claimed_until = NULL WHERE id = $1 AND state = 'pending'")
            .bind(id).bind(reason).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// After a department gets an address, its undeliverable jobs go out again.
    pub async fn outbox_requeue_no_recipient(&self) -> Result<u64> {
        let now = now_secs();
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1 WHERE state = 'no_recipient' \
             AND (department_id IN (SELECT id FROM departments WHERE emails <> '[]') \
             OR (department_id IS NULL AND EXISTS (SELECT 1 FROM center_settings WHERE key = 'emails' AND value <> '[]')))")
            .bind(now).execute(p).await.map(|r| r.rows_affected()))?)
    }

    /// Every job, newest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxRow>> {
        on_pool!(self, p => {
            let links: Vec<(i64, i64)> = sqlx::query_as("SELECT outbox_id, notice_id FROM outbox_notices ORDER BY notice_id")
                .fetch_all(p).await?;
            let rows = sqlx::query(
                "SELECT id, kind, department_id, state, attempts, last_error, created_at, sent_at FROM outbox ORDER BY id DESC")
                .fetch_all(p).await?;
            rows.into_iter()
                .map(|r| {
                    let id: i64 = r.try_get(0)?;
                    Ok(OutboxRow {
                        id,
                        kind: r.try_get(1)?,
                        department: r.try_get(2)?,
                        state: r.try_get(3)?,
                        attempts: r.try_get(4)?,
                        last_error: r.try_get(5)?,
                        created_at: time_text(r.try_get(6)?),
                        sent_at: r.try_get::<Option<i64>, _>(7)?.map(time_text),
                        notices: links.iter().filter(|(o, _)| *o == id).map(|(_, n)| *n).collect(),
                    })
                })
                .collect()
        })
    }

    /// The notices a digest announces.
    pub async fn outbox_notice_ids(&self, outbox_id: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT notice_id FROM outbox_notices WHERE outbox_id = $1 ORDER BY notice_id")
            .bind(outbox_id).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The digest job that announces a notice, if any.
    pub async fn outbox_of_notice(&self, notice_id: i64) -> Result<Option<i64>> {
        let row: Option<(i64,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT outbox_id FROM outbox_notices WHERE notice_id = $1")
            .bind(notice_id).fetch_optional(p).await)?;
        Ok(row.map(|(id,)| id))
    }

    /// Details of the given notices, with their adjustment due dates, ordered by id.
    pub async fn notice_details(&self, ids: &[i64]) -> Result<Vec<NoticeDetail>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = on_pool!(self, p => {
                let r = sqlx::query(
                    "SELECT n.id, v.key, v.id, pr.id, pr.name, pr.department_id, n.resource, n.direction, n.value, \
                     n.threshold, n.comparison, n.statistic, n.allocation, n.issued_at, n.issued_on, d.due_on, \
                     d.provisional, n.closed_at IS NOT NULL, n.approved_at IS NOT NULL, \
                     n.allocated, n.recommended, n.projected, n.recommendation_note, n.evidence \
                     FROM notices n JOIN vms v ON v.key = n.vm_key JOIN projects pr ON pr.id = v.project_id \
                     LEFT JOIN deadlines d ON d.notice_id = n.id WHERE n.id = $1")
                    .bind(id).fetch_optional(p).await?;
                r.map(|r| -> Result<NoticeDetail> {
                    Ok(NoticeDetail {
                        id: r.try_get(0)?,
                        vm_key: r.try_get(1)?,
                        vm: r.try_get(2)?,
                        project: r.try_get(3)?,
                        project_name: r.try_get(4)?,
                        department: r.try_get(5)?,
                        resource: r.try_get(6)?,
                        direction: r.try_get(7)?,
                        value: r.try_get(8)?,
                        threshold: r.try_get(9)?,
                        comparison: r.try_get(10)?,
                        statistic: r.try_get(11)?,
                        allocation_json: r.try_get(12)?,
                        issued_at: r.try_get(13)?,
                        issued_on: parse_date(&r.try_get::<String, _>(14)?)?,
                        due_on: r.try_get::<Option<String>, _>(15)?.as_deref().map(parse_date).transpose()?,
                        provisional: r.try_get::<Option<bool>, _>(16)?.unwrap_or(false),
                        closed: r.try_get(17)?,
                        approved: r.try_get(18)?,
                        recommendation: r.try_get::<Option<f64>, _>(19)?.map(|allocated| -> Result<Recommendation> {
                            Ok(Recommendation {
                                allocated,
                                recommended: r.try_get(20)?,
                                projected: r.try_get(21)?,
                                note: r.try_get::<Option<String>, _>(22)?.as_deref().and_then(NoRecommendation::parse),
                            })
                        }).transpose()?,
                        evidence: r.try_get(23)?,
                    })
                })
                .transpose()
            })?;
            out.push(row.ok_or_else(|| StoreError::Invalid(format!("no notice {id}")))?);
        }
        Ok(out)
    }

    /// Who an outbox job goes to: a department, or (for `None`) the center itself.
    pub async fn contact(&self, department: Option<&str>) -> Result<DepartmentContact> {
        match department {
            Some(id) => self.department_contact(id).await,
            None => Ok(DepartmentContact {
                id: "center".into(),
                name: "市大数据发展中心".into(),
                emails: self.center_emails("emails").await?,
            }),
        }
    }

    /// A department's name and addresses.
    pub async fn department_contact(&self, id: &str) -> Result<DepartmentContact> {
        let row: Option<(String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT name, emails FROM departments WHERE id = $1").bind(id).fetch_optional(p).await)?;
        let (name, emails) =
            row.ok_or_else(|| StoreError::Invalid(format!("no department {id}")))?;
        Ok(DepartmentContact {
            id: id.to_owned(),
            name,
            emails: json_list(&emails)?,
        })
    }

    /// The center's addresses for `key` (`emails` or `finance_emails`).
    pub async fn center_emails(&self, key: &str) -> Result<Vec<String>> {
        let row: Option<(String,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT value FROM center_settings WHERE key = $1").bind(key).fetch_optional(p).await)?;
        row.map_or(Ok(Vec::new()), |(v,)| json_list(&v))
    }

    /// Staff approve held notices: each department's newly approved notices get one digest,
    /// in the same transaction. Returns the ids actually approved now.
    pub async fn approve_notices(&self, ids: &[i64], at: DateTime<Utc>) -> Result<Vec<i64>> {
        let now = now_secs();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut by_department: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
            for &id in ids {
                let row: Option<(String,)> = sqlx::query_as(
                    "UPDATE notices SET approved_at = $2 WHERE id = $1 AND approved_at IS NULL AND closed_at IS NULL \
                     RETURNING (SELECT pr.department_id FROM vms v JOIN projects pr ON pr.id = v.project_id WHERE v.key = notices.vm_key)")
                    .bind(id).bind(at.timestamp()).fetch_optional(&mut *tx).await?;
                if let Some((department,)) = row {
                    by_department.entry(department).or_default().push(id);
                }
            }
            for (department, notices) in &by_department {
                enqueue_digest!(&mut tx, department, notices, now);
            }
            tx.commit().await?;
            Ok(by_department.into_values().flatten().collect())
        })
    }
}

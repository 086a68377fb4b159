//! Annual reviews at rest: each year's result per project, and the e-mail each queues once.

use super::{BeginWrite, Result, Store, on_pool};

/// A stored review: (project, score, grade, verdict, the whole review as JSON).
pub type StoredReview = (String, f64, String, String, String);

impl Store {
    /// Stores a year's reviews (the latest replaces an earlier run's) in one transaction, and
    /// queues each project's review e-mail the first time that project is reviewed for the year.
    /// `reviews`: (project, department, score, grade, verdict, JSON). Returns the e-mails queued.
    pub async fn record_reviews(
        &self,
        year: i32,
        reviews: &[(String, String, f64, String, String, String)],
        at: i64,
    ) -> Result<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut queued = 0;
            for (project, department, score, grade, verdict, json) in reviews {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO reviews (year, project_id, score, grade, verdict, review, reviewed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (year, project_id) DO UPDATE SET \
                     score = excluded.score, grade = excluded.grade, verdict = excluded.verdict, \
                     review = excluded.review, reviewed_at = excluded.reviewed_at RETURNING id")
                    .bind(i64::from(year)).bind(project).bind(score).bind(grade).bind(verdict).bind(json).bind(at)
                    .fetch_one(&mut *tx).await?;
                let sent: Option<(i64,)> = sqlx::query_as("SELECT outbox_id FROM outbox_reviews WHERE review_id = $1")
                    .bind(id).fetch_optional(&mut *tx).await?;
                if sent.is_none() {
                    let (outbox_id,): (i64,) = sqlx::query_as(
                        "INSERT INTO outbox (kind, department_id, state, attempts, next_attempt_at, created_at) \
                         VALUES ('review', $1, 'pending', 0, $2, $2) RETURNING id")
                        .bind(department).bind(at).fetch_one(&mut *tx).await?;
                    sqlx::query("INSERT INTO outbox_reviews (outbox_id, review_id) VALUES ($1, $2)")
                        .bind(outbox_id).bind(id).execute(&mut *tx).await?;
                    queued += 1;
                }
            }
            tx.commit().await?;
            Ok(queued)
        })
    }

    /// The stored reviews of a year, or the one an outbox job announces.
    pub async fn reviews(
        &self,
        year: Option<i32>,
        outbox_id: Option<i64>,
    ) -> Result<Vec<StoredReview>> {
        self.reviews_in(year, outbox_id, None).await
    }

    /// [`Store::reviews`] of one department's projects (`None`: all).
    pub async fn reviews_in(
        &self,
        year: Option<i32>,
        outbox_id: Option<i64>,
        department: Option<&str>,
    ) -> Result<Vec<StoredReview>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT r.project_id, r.score, r.grade, r.verdict, r.review FROM reviews r \
             JOIN projects pr ON pr.id = r.project_id \
             WHERE ($1 IS NULL OR r.year = $1) \
             AND ($2 IS NULL OR r.id IN (SELECT review_id FROM outbox_reviews WHERE outbox_id = $2)) \
             AND ($3 IS NULL OR pr.department_id = $3) \
             ORDER BY r.score DESC, r.project_id")
            .bind(year.map(i64::from)).bind(outbox_id).bind(department).fetch_all(p).await)?)
    }
}

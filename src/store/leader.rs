//! Leader election on the database, so scheduled jobs and the e-mail sender run on one replica.
//!
//! PostgreSQL: a session-level advisory lock held on a dedicated connection. If the leader dies,
//! its connection closes, the server releases the lock, and another replica takes it on its next
//! attempt. SQLite: one process owns the file, so it is always the leader.

use sqlx::Connection;

use super::{Backend, Result, Store};

/// The advisory lock key: "cloudgov" in ASCII, so it does not collide with other users' locks.
const LOCK_KEY: i64 = 0x636c_6f75_6467_6f76;

/// Held leadership; dropping it (or losing the connection) gives it up.
pub struct Leadership {
    connection: Option<sqlx::PgConnection>,
}

impl Leadership {
    /// Whether this replica still leads: the lock's connection still answers.
    pub async fn still_held(&mut self) -> bool {
        match &mut self.connection {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
        }
    }
}

impl Store {
    /// Tries to become the leader; `None` if another replica leads.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(Leadership { connection: None })),
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?.detach();
                let (won,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if won {
                    Ok(Some(Leadership {
                        connection: Some(conn),
                    }))
                } else {
                    let _ = conn.close().await;
                    Ok(None)
                }
            }
        }
    }
}

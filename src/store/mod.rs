//! Storage: one interface over SQLite (the embedded default) and PostgreSQL, chosen by URL scheme.
//!
//! Each dialect has its own migrations folder (`migrations/sqlite`, `migrations/postgres`),
//! embedded with `sqlx::migrate!` and run at connect time. Queries are written once with `$N`
//! placeholders, which both drivers accept, and run on either pool through [`on_pool!`]; only
//! where the dialects differ is SQL written twice.
//! Architecture Invariant: nothing outside `store` names sqlx types; callers see domain types and
//! plain rows.

mod accounts;
mod dashboard;
mod inventory;
mod kubernetes;
mod leader;
mod network;
mod notices;
mod obligations;
mod outbox;
mod partitions;
mod prometheus;
mod requests;
mod reviews;
mod samples;
mod usage;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use accounts::{AuditRow, ContestRow, Credentials, NoticeFacts, Principal, UserRow, VmFacts};
pub use dashboard::{
    AlertView, AllocationRow, Candidate, DeadlineCounts, DepartmentSummary, MailEntry,
    NetworkFindingView, NoticeView, ProjectSummary, ReviewListRow, TimelineEvent, UnusedSystem,
    UsageBucket, VerdictCount, VmDeadline, VmDetail, VmFilter, VmListRow, WasteRow,
};
pub use inventory::InventorySummary;
pub use inventory::{AgentRow, ProjectListing, VmRow};
pub use kubernetes::{DiscoveredVm, DiscoveryWritten};
pub use leader::Leadership;
pub use network::{
    NetworkFindingRow, RegistryChange, RegistryListing, RegistrySummary, SightingRow,
};
pub use notices::{EvaluationWritten, FindingRow, NoticeRow, UsageRecord, VmFindings, rfc3339};
pub use obligations::{
    AlertRow, ContestDecision, DeadlineEvent, DeadlineRow, NewDeadline, ObligationStart,
    OpenAdjustment,
};
pub use outbox::{DepartmentContact, NoticeDetail, OutboxJob, OutboxRow};
pub use partitions::{MONTHS_AHEAD, PartitionUpkeep, SamplePartition};
pub use prometheus::PrometheusTarget;
pub use requests::{DepartmentUsage, RequestRow, RequestVmRow};
pub use reviews::StoredReview;
pub use samples::{AgentBatch, AgentSelf, ClockReading, SampleImport};
pub use usage::{DirtyDay, FoldRequest, Folded, HEAD_ROWS_TO_COMPACT, StoredDay};

/// Runs the same block on whichever pool the store holds: `on_pool!(self, pool => { ... })`.
/// The block is compiled once per backend, so every query in it must be valid on both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH (created if missing) or postgres://USER@HOST/DB"
    )]
    UnknownScheme(String),
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database does not answer (down, restarting, or every connection busy past the
    /// pool's short wait): callers answer 503 with `Retry-After` instead of waiting it out.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    /// Whether trying again later may succeed: the database was unreachable or busy.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// An error to hand each of several waiters for one failed write (the error itself is
    /// not `Clone`): unavailability stays unavailability (callers answer 503), anything else
    /// becomes its message.
    pub fn for_waiter(&self) -> StoreError {
        if self.is_unavailable() {
            StoreError::Unavailable(sqlx::Error::PoolTimedOut)
        } else {
            StoreError::Invalid(format!("the write failed: {self}"))
        }
    }
}

/// Errors that say the database is not there right now, not that the request was wrong.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: 08xxx connection exceptions, 57P01-57P03 shutdown and start-up,
            // 53300 too many connections. SQLite: 5 SQLITE_BUSY / 6 SQLITE_LOCKED (517
            // SQLITE_BUSY_SNAPSHOT) once the busy timeout has passed.
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "53300" | "5" | "6" | "517"
                )
        }
        _ => false,
    }
}

/// How long a request waits for a pooled connection before the database counts as
/// unavailable (503). Short on purpose: an agent told to retry spools its reports and loses
/// nothing, while a request that hangs ties up the daemon.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(900);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the database; cheap to clone (it holds a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
}

impl Store {
    /// Opens (and for SQLite creates) the database named by `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Store> {
        let backend = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Backend::Sqlite(open_sqlite(path).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::UnknownScheme(url.to_owned()));
        };
        Ok(Store { backend })
    }

    /// "sqlite" or "postgres", for status output.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// A cheap query that proves the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }
}

async fn open_sqlite(path: &str) -> Result<SqlitePool> {
    if path.is_empty() {
        return Err(StoreError::UnknownScheme("sqlite:// with no path".into()));
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // 2 KiB pages, for new files (an existing file keeps its own): a day's sample block
        // (6-11 KiB) then fills its overflow pages, where 4 KiB pages left about a tenth of
        // the blocks' space unused in leaf pages holding one block's local part each
        // (BENCHMARKS.md, storage). Set before the journal mode, as SQLite requires.
        .page_size(2048)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit is on disk before the daemon acknowledges it, even across power loss.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(StoreError::Connect)?;
    migrate_sqlite(&pool).await?;
    Ok(pool)
}

/// Runs the SQLite migrations with foreign keys off, then checks them: a migration that must
/// rebuild a table (SQLite cannot drop a NOT NULL) follows SQLite's documented procedure, which
/// needs foreign keys off outside the migration's transaction. Any violation left fails loudly.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let migrated = sqlx::migrate!("./migrations/sqlite").run(&mut *conn).await;
    let violations = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *conn)
        .await?;
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    migrated?;
    if !violations.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the database has {} rows whose foreign keys point nowhere after migrating",
            violations.len()
        )));
    }
    Ok(())
}

/// Begins a transaction that writes. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads before it writes cannot upgrade once
/// another connection (an agent's ingest, say) has committed since its read, and fails with
/// "database is locked" whatever the busy timeout. Taking the lock first makes it wait for the
/// other writer instead. PostgreSQL locks rows as it goes and needs nothing of the kind.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = sqlx::Result<sqlx::Transaction<'static, Self::Db>>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = sqlx::Result<sqlx::Transaction<'static, Self::Db>>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = sqlx::Result<sqlx::Transaction<'static, Self::Db>>> + Send
    {
        self.begin()
    }
}

/// Current time as stored: Unix seconds.
pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A stored text read back as the domain type it was written from; a value no version wrote
/// is an error naming it, never a silent default.
pub(crate) fn stored<T>(text: String) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| StoreError::Invalid(format!("stored {e}")))
}

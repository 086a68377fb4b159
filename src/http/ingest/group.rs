//! Group commit for ingest: a writer drains a bounded queue of checked batches and stores as
//! many as are waiting in one transaction, then answers each request whose rows the commit
//! holds. A request is acknowledged only after its commit; a full queue answers 503 with
//! `Retry-After` at once, so agents back off and keep spooling instead of piling up.
//!
//! Each batch comes with the hash of the token it was sent with. Before a group is written,
//! its tokens are checked in one lookup: a batch whose token was revoked meanwhile (the
//! handler may have known it from its cache, `tokens`) is refused and nothing of it written.
//! A revocation that commits while the group is being written takes effect with the agent's
//! next batch.
//!
//! SQLite has one writer (the database has one write lock). PostgreSQL commits in parallel, so
//! it gets [`POSTGRES_WRITERS`], each with its own queue; a VM's batches always go to the same
//! writer, so two concurrent commits never touch the same VM's rows (samples, VM-day marks, its
//! agent row, its sightings) and cannot deadlock on them.

use tokio::sync::{mpsc, oneshot};

use crate::store::{AgentBatch, Store, StoreError};

/// Batches waiting for the writers at most (shared among their queues); one more is refused
/// (503).
pub const QUEUE_BATCHES: usize = 256;
/// Writers on PostgreSQL: enough to keep a few commits in flight on a small server.
pub const POSTGRES_WRITERS: usize = 4;
/// Reports one commit holds at most (the writer takes whole batches until it passes this).
pub const MAX_REPORTS_PER_COMMIT: usize = 20_000;

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The queue is full: the daemon is writing as fast as the database takes it.
    #[error("ingest queue full: retry later")]
    Busy,
    /// The batch's token is no longer valid (revoked, or not its VM's): nothing was written.
    #[error("the agent token is no longer valid")]
    TokenRefused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Job {
    batch: AgentBatch,
    token_hash: String,
    done: oneshot::Sender<Result<(u64, u64), GroupError>>,
}

/// The handle the ingest handler sends batches through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queues: Vec<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts the writers for `store` on the current tokio runtime.
    pub fn start(store: Store) -> GroupCommit {
        let writers = if store.backend_name() == "postgres" {
            POSTGRES_WRITERS
        } else {
            1
        };
        let queues = (0..writers)
            .map(|_| {
                let (queue, rx) = mpsc::channel(QUEUE_BATCHES / writers);
                tokio::spawn(writer(store.clone(), rx));
                queue
            })
            .collect();
        GroupCommit { queues }
    }

    /// Stores one agent's batch, sent with the token whose hash is `token_hash`, in the next
    /// group commit of its writer: (inserted, duplicates) once committed.
    pub async fn store(
        &self,
        batch: AgentBatch,
        token_hash: String,
    ) -> Result<(u64, u64), GroupError> {
        let vm_key = batch.agent.vm_key;
        let queue = &self.queues[vm_key.unsigned_abs() as usize % self.queues.len()];
        let (done, answer) = oneshot::channel();
        queue
            .try_send(Job {
                batch,
                token_hash,
                done,
            })
            .map_err(|_| GroupError::Busy)?;
        // A writer that stopped (the runtime shutting down) answers nothing: not stored.
        answer
            .await
            .map_err(|_| StoreError::Invalid("the ingest writer stopped".into()))?
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut reports = first.batch.samples.len();
        let mut jobs = vec![first];
        while reports < MAX_REPORTS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    reports += job.batch.samples.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let jobs = match refuse_revoked(&store, jobs).await {
            Ok(jobs) => jobs,
            Err((e, jobs)) => {
                tracing::warn!(error = %e, batches = jobs.len(), "cannot check the group's tokens: nothing stored");
                fail_all(jobs, &e);
                continue;
            }
        };
        if jobs.is_empty() {
            continue;
        }
        let batches: Vec<&AgentBatch> = jobs.iter().map(|j| &j.batch).collect();
        let result = store.ingest_groups(&batches).await;
        tracing::debug!(
            batches = jobs.len(),
            reports,
            ok = result.is_ok(),
            "group commit"
        );
        match result {
            Ok(counts) => {
                for (job, c) in jobs.into_iter().zip(counts) {
                    // The sender may have gone (client disconnected): the rows are stored, and
                    // a replay is a no-op.
                    let _ = job.done.send(Ok(c));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batches = jobs.len(), "group commit failed: nothing stored");
                fail_all(jobs, &e);
            }
        }
    }
}

/// The jobs whose token is still valid and issued for the batch's VM; the others are answered
/// [`GroupError::TokenRefused`] here. On a failed lookup, the error and every job.
async fn refuse_revoked(store: &Store, jobs: Vec<Job>) -> Result<Vec<Job>, (StoreError, Vec<Job>)> {
    let hashes: Vec<&str> = jobs.iter().map(|j| j.token_hash.as_str()).collect();
    let valid = match store.valid_agent_tokens(&hashes).await {
        Ok(valid) => valid,
        Err(e) => return Err((e, jobs)),
    };
    let (kept, refused): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|j| valid.get(&j.token_hash) == Some(&j.batch.agent.vm_key));
    for job in refused {
        let _ = job.done.send(Err(GroupError::TokenRefused));
    }
    Ok(kept)
}

/// Answers every job with `e`: nothing of theirs was stored.
fn fail_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        let _ = job.done.send(Err(GroupError::Store(e.for_waiter())));
    }
}

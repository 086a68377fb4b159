//! The agent tokens ingest has seen valid, so a request is authenticated without a database
//! round trip of its own. The cache only says whom a token belongs to; whether it is still
//! valid is checked again by the group commit, for all of a group's tokens in one lookup,
//! before anything of the batch is written (`group`). The handler forgets a token whose
//! request failed (refused by that check, or anything else), so the next request with it is
//! checked against the database before its body is read.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::store::{Result, Store};

/// Tokens remembered at most: a province's fleet. Past it the cache starts over, so a flood of
/// distinct valid tokens costs lookups, never memory.
const CAPACITY: usize = 200_000;

/// Token hash -> the VM (key, id) it was issued for. Unknown or revoked tokens are never kept.
#[derive(Debug, Default)]
pub struct AgentTokens {
    known: Mutex<HashMap<String, (i64, String)>>,
}

impl AgentTokens {
    /// The VM `token_hash` was issued for: from the cache, else from the store (and then
    /// remembered when valid). `None`: unknown or revoked.
    pub async fn vm_for(&self, store: &Store, token_hash: &str) -> Result<Option<(i64, String)>> {
        if let Some(vm) = self.lock().get(token_hash) {
            return Ok(Some(vm.clone()));
        }
        let found = store.vm_for_token(token_hash).await?;
        if let Some(vm) = &found {
            let mut known = self.lock();
            if known.len() >= CAPACITY {
                known.clear();
            }
            known.insert(token_hash.to_owned(), vm.clone());
        }
        Ok(found)
    }

    /// Drops a token: its request failed, perhaps because it was revoked.
    pub fn forget(&self, token_hash: &str) {
        self.lock().remove(token_hash);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, String)>> {
        // The map stays consistent whatever panicked while holding it.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

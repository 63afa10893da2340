//! Strata through its public API only: `Db`, `Txn`, `ReadTxn`, `Db::update`.
//!
//! Durability is per database (decision 0004): `Durability::Sync` when opened
//! durable, `Durability::Buffered` otherwise. The cache budget is Strata's
//! `Options::memory_budget` (memtables, transaction buffers and table
//! metadata; a memtable is flushed to a table at a quarter of it; mapped
//! tables are the OS's page cache, as LMDB's pages are). No peer
//! keeps old versions for time travel, so neither does Strata here:
//! `Options::history_retention` is zero (compaction keeps only what live
//! snapshots read), as an application without `begin_read_at` would set it.

use std::path::Path;

use anyhow::{Context, Result};
use strata::{Db, Durability, Options};

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

/// A Strata database.
pub struct StrataEngine {
    db: Db,
}

impl Engine for StrataEngine {
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
        let durability = if config.durable {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        // Strata's memory budget is its cache budget.
        let budget = config.cache_bytes.max(strata::MIN_MEMORY_BUDGET);
        let options = Options::new()
            .durability(durability)
            .memory_budget(budget)
            .history_retention(std::time::Duration::ZERO);
        let db = Db::open(dir, options).context("strata open")?;
        Ok(StrataEngine { db })
    }

    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
        let mut txn = self.db.begin();
        for (key, value) in pairs {
            txn.put(key, value)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.db.sync()?)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
        // The lending cursor, as redb's adapter reads its `AccessGuard`s
        // (borrowed from its pages) without copying them out.
        let snap = self.db.begin_read();
        let mut cursor = snap.cursor(start..)?;
        let mut count = 0;
        while count < n {
            let Some(item) = cursor.next() else { break };
            let (key, value) = item?;
            std::hint::black_box((key, value));
            count += 1;
        }
        Ok(count)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.update(|txn| txn.put(key, value))?)
    }

    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome> {
        let mut txn = self.db.begin();
        let a = txn.get(reads[0])?.unwrap_or_default();
        let b = txn.get(reads[1])?.unwrap_or_default();
        let value = mix(&a, &b, salt);
        txn.put(writes[0], &value)?;
        if writes[1] != writes[0] {
            txn.put(writes[1], &value)?;
        }
        match txn.commit() {
            Ok(_) => Ok(Outcome::Committed),
            Err(e) if e.is_retryable() => Ok(Outcome::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        let mut attempts = 0_u64;
        self.db.update(|txn| {
            attempts += 1;
            let current = txn.get(key)?;
            // A malformed counter is reported as a lost increment by the check.
            let n = counter_value(current.as_deref()).unwrap_or(u64::MAX - 1);
            txn.put(key, &(n + 1).to_le_bytes())
        })?;
        Ok(attempts - 1)
    }

    fn close(self) -> Result<()> {
        Ok(self.db.close()?)
    }
}

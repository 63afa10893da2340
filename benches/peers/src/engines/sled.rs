//! sled: one tree, `Tree::transaction` (which retries conflicts itself).
//!
//! sled's transactions are optimistic and rerun the closure on a conflict,
//! so read-2-write-2 never reports one. A durable commit calls `Db::flush`
//! after the transaction, as sled's documentation tells users to; sled also
//! flushes in the background every 500 ms (its default), for every mode.

use std::cell::Cell;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

/// A sled database (its default tree).
pub struct SledEngine {
    db: sled::Db,
    durable: bool,
}

/// The error of a sled transaction, as anyhow.
fn txn_error(e: TransactionError<String>) -> anyhow::Error {
    match e {
        TransactionError::Abort(msg) => anyhow!("sled transaction aborted: {msg}"),
        TransactionError::Storage(e) => anyhow::Error::new(e).context("sled transaction"),
    }
}

impl SledEngine {
    /// Flushes when the database is durable.
    fn maybe_flush(&self) -> Result<()> {
        if self.durable {
            self.db.flush()?;
        }
        Ok(())
    }
}

impl Engine for SledEngine {
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(config.cache_bytes)
            .open()
            .context("sled open")?;
        Ok(SledEngine {
            db,
            durable: config.durable,
        })
    }

    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
        self.db
            .transaction(|tx| {
                for (key, value) in pairs {
                    tx.insert(key.as_slice(), value.as_slice())?;
                }
                Ok(())
            })
            .map_err(txn_error)
    }

    fn sync(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
        let mut count = 0;
        for item in self.db.range(start..).take(n) {
            let (key, value) = item?;
            std::hint::black_box((key, value));
            count += 1;
        }
        Ok(count)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .transaction(|tx| {
                tx.insert(key, value)?;
                Ok(())
            })
            .map_err(txn_error)?;
        self.maybe_flush()
    }

    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome> {
        self.db
            .transaction(|tx| {
                let a = tx.get(reads[0])?.map(|v| v.to_vec()).unwrap_or_default();
                let b = tx.get(reads[1])?.map(|v| v.to_vec()).unwrap_or_default();
                let value = mix(&a, &b, salt);
                tx.insert(writes[0], value.as_slice())?;
                tx.insert(writes[1], value.as_slice())?;
                Ok(())
            })
            .map_err(txn_error)?;
        self.maybe_flush()?;
        Ok(Outcome::Committed)
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        let attempts = Cell::new(0_u64);
        self.db
            .transaction(|tx| {
                attempts.set(attempts.get() + 1);
                let current = tx.get(key)?;
                let n = counter_value(current.as_deref())
                    .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                tx.insert(key, (n + 1).to_le_bytes().as_slice())?;
                Ok(())
            })
            .map_err(txn_error)?;
        self.maybe_flush()?;
        Ok(attempts.get() - 1)
    }

    fn close(self) -> Result<()> {
        self.db.flush()?;
        drop(self.db);
        Ok(())
    }
}

//! SurrealKV: `Tree::begin` transactions (optimistic, snapshot isolation).
//!
//! Commits are async in SurrealKV (its commit pipeline), so the adapter
//! owns a small multi-threaded tokio runtime and each client thread blocks
//! on its own commit (`Runtime::block_on`), as a synchronous caller would.
//! Durable commits set `Durability::Immediate` (fsync before `commit`
//! returns); everything else uses the default `Durability::Eventual`. The
//! cache budget is its unified block cache.

use std::path::Path;

use anyhow::{Context, Result};
use surrealkv::{Durability, LSMIterator, Mode, Transaction, Tree, TreeBuilder};
use tokio::runtime::Runtime;

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

/// An upper bound above every benchmark key (they all start with ASCII).
const SCAN_END: &[u8] = &[0xFF];

/// A SurrealKV tree and the runtime its commits run on (dropped after it).
pub struct SurrealKvEngine {
    tree: Tree,
    runtime: Runtime,
    durable: bool,
}

impl SurrealKvEngine {
    /// Begins a read-write transaction with the mode's durability.
    fn begin(&self, durable: bool) -> Result<Transaction> {
        let mut txn = self.tree.begin()?;
        if durable {
            txn.set_durability(Durability::Immediate);
        }
        Ok(txn)
    }

    /// Commits `txn`; `Ok(false)` on a write-write conflict.
    fn commit(&self, mut txn: Transaction) -> Result<bool> {
        match self.runtime.block_on(txn.commit()) {
            Ok(()) => Ok(true),
            Err(surrealkv::Error::TransactionWriteConflict) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("surrealkv commit")),
        }
    }
}

impl Engine for SurrealKvEngine {
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let tree = {
            let _context = runtime.enter();
            TreeBuilder::new()
                .with_path(dir.join("surrealkv"))
                .with_block_cache_capacity(config.cache_bytes)
                .build()
                .context("surrealkv open")?
        };
        Ok(SurrealKvEngine {
            tree,
            runtime,
            durable: config.durable,
        })
    }

    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
        let mut txn = self.begin(false)?;
        for (key, value) in pairs {
            txn.set(key.as_slice(), value.as_slice())?;
        }
        anyhow::ensure!(self.commit(txn)?, "surrealkv load conflicted");
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // An Immediate commit syncs the log, and with it every commit before it.
        let mut txn = self.begin(true)?;
        txn.set(b"sync-marker".as_slice(), b"".as_slice())?;
        anyhow::ensure!(self.commit(txn)?, "surrealkv sync marker conflicted");
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.begin_with_mode(Mode::ReadOnly)?.get(key)?)
    }

    fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
        let txn = self.tree.begin_with_mode(Mode::ReadOnly)?;
        let mut iter = txn.range(start, SCAN_END)?;
        let mut count = 0;
        let mut valid = iter.seek_first()?;
        while valid && count < n {
            std::hint::black_box((iter.key().user_key(), iter.value()?));
            count += 1;
            valid = iter.next()?;
        }
        Ok(count)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        loop {
            let mut txn = self.begin(self.durable)?;
            txn.set(key, value)?;
            if self.commit(txn)? {
                return Ok(());
            }
        }
    }

    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome> {
        let mut txn = self.begin(self.durable)?;
        let a = txn.get(reads[0])?.unwrap_or_default();
        let b = txn.get(reads[1])?.unwrap_or_default();
        let value = mix(&a, &b, salt);
        txn.set(writes[0], value.as_slice())?;
        txn.set(writes[1], value.as_slice())?;
        Ok(if self.commit(txn)? {
            Outcome::Committed
        } else {
            Outcome::Conflict
        })
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        // SurrealKV returns the conflict; the caller retries (as SurrealDB does).
        let mut conflicts = 0;
        loop {
            let mut txn = self.begin(self.durable)?;
            let n = counter_value(txn.get(key)?.as_deref())?;
            txn.set(key, (n + 1).to_le_bytes().as_slice())?;
            if self.commit(txn)? {
                return Ok(conflicts);
            }
            conflicts += 1;
        }
    }

    fn close(self) -> Result<()> {
        self.runtime
            .block_on(self.tree.close())
            .context("surrealkv close")?;
        drop(self.tree);
        drop(self.runtime);
        Ok(())
    }
}

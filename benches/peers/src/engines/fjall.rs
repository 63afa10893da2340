//! fjall: its optimistic transactional database (`OptimisticTxDatabase`,
//! fjall 3's name for what fjall 2 called `TxKeyspace`) with one keyspace.
//!
//! Durable commits set `PersistMode::SyncAll` on the write transaction; the
//! load leaves durability unset (written to OS buffers), and
//! [`Engine::sync`] calls `persist(SyncAll)`. The cache budget is fjall's
//! block cache (`cache_size`).

use std::path::Path;

use anyhow::{Context, Result};
use fjall::{
    KeyspaceCreateOptions, OptimisticTxDatabase, OptimisticTxKeyspace, OptimisticWriteTx,
    PersistMode, Readable,
};

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

/// A fjall optimistic transactional database.
pub struct FjallEngine {
    db: OptimisticTxDatabase,
    kv: OptimisticTxKeyspace,
    durable: bool,
}

impl FjallEngine {
    /// Begins a write transaction, synced at commit when the database is durable.
    fn begin(&self) -> Result<OptimisticWriteTx> {
        let mode = self.durable.then_some(PersistMode::SyncAll);
        Ok(self.db.write_tx()?.durability(mode))
    }
}

impl Engine for FjallEngine {
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
        let db = OptimisticTxDatabase::builder(dir.join("fjall"))
            .cache_size(config.cache_bytes)
            .open()
            .context("fjall open")?;
        let kv = db.keyspace("kv", KeyspaceCreateOptions::default)?;
        Ok(FjallEngine {
            db,
            kv,
            durable: config.durable,
        })
    }

    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
        let mut tx = self.db.write_tx()?;
        for (key, value) in pairs {
            tx.insert(&self.kv, key.as_slice(), value.as_slice());
        }
        tx.commit()?.context("fjall load conflicted")?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
        let snapshot = self.db.read_tx();
        let mut count = 0;
        for guard in snapshot.range(&self.kv, start..).take(n) {
            std::hint::black_box(guard.into_inner()?);
            count += 1;
        }
        Ok(count)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        // A blind write has an empty read set, so it cannot conflict.
        let mut tx = self.begin()?;
        tx.insert(&self.kv, key, value);
        tx.commit()?.context("fjall blind write conflicted")?;
        Ok(())
    }

    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome> {
        let mut tx = self.begin()?;
        let a = tx
            .get(&self.kv, reads[0])?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let b = tx
            .get(&self.kv, reads[1])?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let value = mix(&a, &b, salt);
        tx.insert(&self.kv, writes[0], value.as_slice());
        tx.insert(&self.kv, writes[1], value.as_slice());
        Ok(match tx.commit()? {
            Ok(()) => Outcome::Committed,
            Err(fjall::Conflict) => Outcome::Conflict,
        })
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        // fjall returns the conflict to the caller; its examples retry in a loop.
        let mut conflicts = 0;
        loop {
            let mut tx = self.begin()?;
            let n = counter_value(tx.get(&self.kv, key)?.as_deref())?;
            tx.insert(&self.kv, key, (n + 1).to_le_bytes().as_slice());
            match tx.commit()? {
                Ok(()) => return Ok(conflicts),
                Err(fjall::Conflict) => conflicts += 1,
            }
        }
    }

    fn close(self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self.kv);
        drop(self.db);
        Ok(())
    }
}

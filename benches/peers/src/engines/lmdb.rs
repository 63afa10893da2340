//! LMDB through heed: one unnamed database, `write_txn` / `read_txn`.
//!
//! LMDB has a single writer, so transactions never conflict. A durable
//! database commits with LMDB's default sync (`fdatasync` of the data file
//! on every commit); otherwise it is opened with `NO_SYNC` and
//! [`Engine::sync`] calls `mdb_env_sync`. LMDB has no cache of its own (it
//! reads through its memory map, i.e. the page cache), so the budget is
//! ignored; the map is sized to several times the logical data.

use std::ops::Bound;
use std::path::Path;

use anyhow::{Context, Result};
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions};

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

/// Smallest map (virtual address space, not disk).
const MIN_MAP_BYTES: u64 = 1 << 30;

/// An LMDB environment with its one database.
pub struct LmdbEngine {
    env: Env,
    db: Database<Bytes, Bytes>,
}

/// The write transaction's body for read-2-write-2 and increments.
fn read_value(db: Database<Bytes, Bytes>, txn: &heed::RwTxn, key: &[u8]) -> Result<Vec<u8>> {
    Ok(db.get(txn, key)?.map(<[u8]>::to_vec).unwrap_or_default())
}

impl Engine for LmdbEngine {
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
        let path = dir.join("lmdb");
        std::fs::create_dir_all(&path)?;
        let map = usize::try_from(MIN_MAP_BYTES.max(config.logical_bytes.saturating_mul(8)))?;
        let mut options = EnvOpenOptions::new();
        options.map_size(map).max_dbs(1).max_readers(256);
        if !config.durable {
            // SAFETY: NO_SYNC only gives up durability of commits after a
            // crash of the machine; the non-durable modes never rely on it
            // and `sync` flushes explicitly.
            unsafe { options.flags(EnvFlags::NO_SYNC) };
        }
        // SAFETY: the directory is fresh and private to this process, and
        // nothing else truncates or maps the file while it is open.
        let env = unsafe { options.open(&path) }.context("lmdb open")?;
        let mut txn = env.write_txn()?;
        let db = env.create_database(&mut txn, None)?;
        txn.commit()?;
        Ok(LmdbEngine { env, db })
    }

    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        for (key, value) in pairs {
            self.db.put(&mut txn, key.as_slice(), value)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.env.force_sync()?)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.env.read_txn()?;
        Ok(self.db.get(&txn, key)?.map(<[u8]>::to_vec))
    }

    fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
        let txn = self.env.read_txn()?;
        let mut count = 0;
        for item in self
            .db
            .range(&txn, &(Bound::Included(start), Bound::Unbounded))?
            .take(n)
        {
            std::hint::black_box(item?);
            count += 1;
        }
        Ok(count)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        self.db.put(&mut txn, key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome> {
        let mut txn = self.env.write_txn()?;
        let a = read_value(self.db, &txn, reads[0])?;
        let b = read_value(self.db, &txn, reads[1])?;
        let value = mix(&a, &b, salt);
        self.db.put(&mut txn, writes[0], &value)?;
        self.db.put(&mut txn, writes[1], &value)?;
        txn.commit()?;
        Ok(Outcome::Committed)
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        let mut txn = self.env.write_txn()?;
        let current = self.db.get(&txn, key)?.map(<[u8]>::to_vec);
        let n = counter_value(current.as_deref())?;
        self.db.put(&mut txn, key, &(n + 1).to_le_bytes())?;
        txn.commit()?;
        Ok(0)
    }

    fn close(self) -> Result<()> {
        self.env.force_sync()?;
        self.env.prepare_for_closing().wait();
        Ok(())
    }
}

//! RocksDB, both transactional flavours (behind the `rocksdb` feature; its
//! C++ build takes about 30 minutes on two cores).
//!
//! - `rocksdb-optimistic`: `OptimisticTransactionDB`, transactions with a
//!   snapshot set at begin (so a write conflicts with any commit after it,
//!   as under snapshot isolation); a conflict is `Busy` at commit.
//! - `rocksdb-pessimistic`: `TransactionDB`, reads that feed writes take
//!   their locks with `get_for_update`; a lock timeout or a detected
//!   deadlock (`TimedOut`, `Busy`) counts as a conflict.
//!
//! Durable commits use `WriteOptions::set_sync(true)`; the load writes with
//! the default (WAL in OS buffers) and [`Engine::sync`] calls
//! `flush_wal(true)`. The cache budget is the block cache (LRU).
//!
//! Not built in the session that wrote it: check it with
//! `cargo build --release --features rocksdb` before trusting its figures.

use std::path::Path;

use anyhow::{Context, Result};
use rocksdb::{
    BlockBasedOptions, Cache, Direction, ErrorKind, IteratorMode, MultiThreaded,
    OptimisticTransactionDB, OptimisticTransactionOptions, Options, Transaction, TransactionDB,
    TransactionDBOptions, TransactionOptions, WriteOptions,
};

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

/// Options shared by both flavours: create, and the block cache budget.
fn db_options(config: &OpenConfig) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(
        usize::try_from(config.cache_bytes).unwrap_or(usize::MAX),
    ));
    let mut options = Options::default();
    options.create_if_missing(true);
    options.set_block_based_table_factory(&table);
    options
}

/// Write options: synced iff `sync`.
fn write_options(sync: bool) -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(sync);
    options
}

/// Whether a RocksDB error means "this transaction lost; try another".
fn is_conflict(e: &rocksdb::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Busy | ErrorKind::TryAgain | ErrorKind::TimedOut
    )
}

/// Commits `txn`, mapping a conflict to `Outcome::Conflict`.
fn commit<DB>(txn: Transaction<'_, DB>) -> Result<Outcome> {
    match txn.commit() {
        Ok(()) => Ok(Outcome::Committed),
        Err(e) if is_conflict(&e) => Ok(Outcome::Conflict),
        Err(e) => Err(anyhow::Error::new(e).context("rocksdb commit")),
    }
}

/// Reads `key` inside `txn`, locking it for update (exclusive).
fn read_for_update<DB>(
    txn: &Transaction<'_, DB>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, rocksdb::Error> {
    txn.get_for_update(key, true)
}

/// Read-2-write-2 inside `txn`; a conflict in a locking read counts too.
fn r2w2_body<DB>(
    txn: Transaction<'_, DB>,
    reads: [&[u8]; 2],
    writes: [&[u8]; 2],
    salt: u64,
) -> Result<Outcome> {
    let read = |key| match read_for_update(&txn, key) {
        Ok(v) => Ok(Some(v.unwrap_or_default())),
        Err(e) if is_conflict(&e) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e)),
    };
    let (Some(a), Some(b)) = (read(reads[0])?, read(reads[1])?) else {
        return Ok(Outcome::Conflict);
    };
    let value = mix(&a, &b, salt);
    txn.put(writes[0], &value)?;
    txn.put(writes[1], &value)?;
    commit(txn)
}

/// One increment attempt inside `txn`.
fn increment_body<DB>(txn: Transaction<'_, DB>, key: &[u8]) -> Result<Outcome> {
    let current = match read_for_update(&txn, key) {
        Ok(v) => v,
        Err(e) if is_conflict(&e) => return Ok(Outcome::Conflict),
        Err(e) => return Err(e.into()),
    };
    let n = counter_value(current.as_deref())?;
    txn.put(key, (n + 1).to_le_bytes())?;
    commit(txn)
}

/// Implements everything but the transaction constructor for both flavours.
macro_rules! rocks_engine {
    ($name:ident, $db:ty, $open:expr, $begin:expr) => {
        /// A RocksDB transactional database.
        pub struct $name {
            db: $db,
            durable: bool,
        }

        impl Engine for $name {
            fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
                let options = db_options(config);
                let open: fn(&Options, &Path) -> Result<$db, rocksdb::Error> = $open;
                let db = open(&options, &dir.join("rocksdb")).context("rocksdb open")?;
                Ok($name {
                    db,
                    durable: config.durable,
                })
            }

            fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
                let begin: fn(&$db, bool) -> Transaction<'_, $db> = $begin;
                let txn = begin(&self.db, false);
                for (key, value) in pairs {
                    txn.put(key, value)?;
                }
                anyhow::ensure!(
                    commit(txn)? == Outcome::Committed,
                    "rocksdb load conflicted"
                );
                Ok(())
            }

            fn sync(&self) -> Result<()> {
                Ok(self.db.flush_wal(true)?)
            }

            fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
                Ok(self.db.get(key)?)
            }

            fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
                let mut count = 0;
                let mode = IteratorMode::From(start, Direction::Forward);
                for item in self.db.iterator(mode).take(n) {
                    std::hint::black_box(item?);
                    count += 1;
                }
                Ok(count)
            }

            fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
                let begin: fn(&$db, bool) -> Transaction<'_, $db> = $begin;
                loop {
                    let txn = begin(&self.db, self.durable);
                    txn.put(key, value)?;
                    if commit(txn)? == Outcome::Committed {
                        return Ok(());
                    }
                }
            }

            fn read2_write2(
                &self,
                reads: [&[u8]; 2],
                writes: [&[u8]; 2],
                salt: u64,
            ) -> Result<Outcome> {
                let begin: fn(&$db, bool) -> Transaction<'_, $db> = $begin;
                r2w2_body(begin(&self.db, self.durable), reads, writes, salt)
            }

            fn increment(&self, key: &[u8]) -> Result<u64> {
                let begin: fn(&$db, bool) -> Transaction<'_, $db> = $begin;
                let mut conflicts = 0;
                while increment_body(begin(&self.db, self.durable), key)? == Outcome::Conflict {
                    conflicts += 1;
                }
                Ok(conflicts)
            }

            fn close(self) -> Result<()> {
                self.db.flush_wal(true)?;
                drop(self.db);
                Ok(())
            }
        }
    };
}

rocks_engine!(
    RocksOptimistic,
    OptimisticTransactionDB<MultiThreaded>,
    |options, path| OptimisticTransactionDB::open(options, path),
    |db, sync| {
        let mut txn_options = OptimisticTransactionOptions::default();
        txn_options.set_snapshot(true);
        db.transaction_opt(&write_options(sync), &txn_options)
    }
);

rocks_engine!(
    RocksPessimistic,
    TransactionDB<MultiThreaded>,
    |options, path| TransactionDB::open(options, &TransactionDBOptions::default(), path),
    |db, sync| {
        let mut txn_options = TransactionOptions::default();
        txn_options.set_deadlock_detect(true);
        db.transaction_opt(&write_options(sync), &txn_options)
    }
);

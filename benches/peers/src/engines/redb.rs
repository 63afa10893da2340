//! redb: one table, `begin_write` / `begin_read`.
//!
//! redb has a single writer, so transactions never conflict; a writer waits
//! for the one before it. Durable commits use `Durability::Immediate` (the
//! default); load commits use `Durability::None`, and [`Engine::sync`] then
//! commits an empty `Immediate` transaction, which makes them durable.

use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Engine, OpenConfig, Outcome, counter_value};
use crate::keys::mix;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A redb database.
pub struct RedbEngine {
    db: Database,
    durable: bool,
}

impl RedbEngine {
    /// Begins a write transaction with the durability of the database's mode.
    fn begin(&self, durable: bool) -> Result<redb::WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability)?;
        Ok(txn)
    }
}

impl Engine for RedbEngine {
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self> {
        let cache = usize::try_from(config.cache_bytes).unwrap_or(usize::MAX);
        let db = Database::builder()
            .set_cache_size(cache)
            .create(dir.join("redb"))
            .context("redb open")?;
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(RedbEngine {
            db,
            durable: config.durable,
        })
    }

    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()> {
        let txn = self.begin(false)?;
        {
            let mut table = txn.open_table(TABLE)?;
            for (key, value) in pairs {
                table.insert(key.as_slice(), value.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.begin(true)?.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, start: &[u8], n: usize) -> Result<usize> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let mut count = 0;
        for item in table.range(start..)?.take(n) {
            let (key, value) = item?;
            std::hint::black_box((key.value(), value.value()));
            count += 1;
        }
        Ok(count)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let txn = self.begin(self.durable)?;
        txn.open_table(TABLE)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome> {
        let txn = self.begin(self.durable)?;
        {
            let mut table = txn.open_table(TABLE)?;
            let a = table
                .get(reads[0])?
                .map(|v| v.value().to_vec())
                .unwrap_or_default();
            let b = table
                .get(reads[1])?
                .map(|v| v.value().to_vec())
                .unwrap_or_default();
            let value = mix(&a, &b, salt);
            table.insert(writes[0], value.as_slice())?;
            table.insert(writes[1], value.as_slice())?;
        }
        txn.commit()?;
        Ok(Outcome::Committed)
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        let txn = self.begin(self.durable)?;
        {
            let mut table = txn.open_table(TABLE)?;
            let n = counter_value(table.get(key)?.map(|v| v.value().to_vec()).as_deref())?;
            table.insert(key, (n + 1).to_le_bytes().as_slice())?;
        }
        txn.commit()?;
        Ok(0)
    }

    fn close(self) -> Result<()> {
        // Non-durable commits persist only with a later durable one.
        self.sync()?;
        drop(self.db);
        Ok(())
    }
}

//! One adapter per engine, all behind [`Engine`].
//!
//! Each adapter uses its engine's transactional API as that engine's users
//! would. A database is opened either *durable* (every commit of a
//! read-write transaction is synced before it returns: the read-2-write-2
//! and contention workloads) or not (the load, reads, scans and YCSB).
//! Bulk-load transactions are never synced one by one; [`Engine::sync`]
//! makes a finished load durable once. Strata chooses durability per
//! database (decision 0004), so the runner reopens every engine between the
//! two modes, and every adapter takes the mode at open.

use std::path::Path;

use anyhow::{Result, bail};

mod fjall;
mod lmdb;
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
mod sled;
mod strata;
mod surrealkv;

/// Every engine name `--engines` accepts, in report order.
pub const ALL: &[&str] = &[
    "strata",
    "rocksdb-optimistic",
    "rocksdb-pessimistic",
    "fjall",
    "redb",
    "sled",
    "surrealkv",
    "lmdb",
];

/// The engines this build has, run when `--engines` is not given: all but
/// RocksDB unless the `rocksdb` feature is on.
pub fn default_engines() -> Vec<String> {
    ALL.iter()
        .filter(|name| cfg!(feature = "rocksdb") || !name.starts_with("rocksdb"))
        .map(|name| (*name).to_owned())
        .collect()
}

/// How a database is opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenConfig {
    /// The cache budget, for engines that have one (bytes).
    pub cache_bytes: u64,
    /// Sync every read-write commit before it returns.
    pub durable: bool,
    /// Logical bytes the database will hold (LMDB sizes its map from it).
    pub logical_bytes: u64,
}

/// What one attempt at a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It committed.
    Committed,
    /// It lost a write-write conflict (or was chosen as a deadlock victim) and rolled back.
    Conflict,
}

/// An engine under test. Methods take `&self` and are called from many threads.
pub trait Engine: Sized + Send + Sync {
    /// Opens (or creates) the database in `dir`.
    fn open(dir: &Path, config: &OpenConfig) -> Result<Self>;
    /// Writes `pairs` in one transaction, without syncing it.
    fn load(&self, pairs: &[([u8; 16], Vec<u8>)]) -> Result<()>;
    /// Makes everything committed so far durable (once, after a load).
    fn sync(&self) -> Result<()>;
    /// Reads one key in its own read transaction (or snapshot).
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Reads up to `n` entries from `start` on in one read transaction;
    /// returns the number read.
    fn scan(&self, start: &[u8], n: usize) -> Result<usize>;
    /// Writes one key in its own transaction (YCSB update and insert).
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// One transaction: reads `reads`, writes `writes` (each the
    /// [`crate::keys::mix`] of the two values read, with `salt`) and commits
    /// once, without retrying. With one key in both arrays twice this is
    /// YCSB F's read-modify-write.
    fn read2_write2(&self, reads: [&[u8]; 2], writes: [&[u8]; 2], salt: u64) -> Result<Outcome>;
    /// Adds one to the little-endian u64 counter under `key`, retrying as
    /// the engine's own API does (or as its documentation tells users to).
    /// Returns the number of conflicts met before it committed.
    fn increment(&self, key: &[u8]) -> Result<u64>;
    /// Closes the database, waiting for its background work.
    fn close(self) -> Result<()>;
}

/// Calls `$body` with `$engine` bound to the adapter type named `$name`.
#[macro_export]
macro_rules! with_engine {
    ($name:expr, $engine:ident => $body:expr) => {{
        match $name {
            "strata" => {
                type $engine = $crate::engines::StrataEngine;
                $body
            }
            "redb" => {
                type $engine = $crate::engines::RedbEngine;
                $body
            }
            "sled" => {
                type $engine = $crate::engines::SledEngine;
                $body
            }
            "fjall" => {
                type $engine = $crate::engines::FjallEngine;
                $body
            }
            "surrealkv" => {
                type $engine = $crate::engines::SurrealKvEngine;
                $body
            }
            "lmdb" => {
                type $engine = $crate::engines::LmdbEngine;
                $body
            }
            #[cfg(feature = "rocksdb")]
            "rocksdb-optimistic" => {
                type $engine = $crate::engines::RocksOptimistic;
                $body
            }
            #[cfg(feature = "rocksdb")]
            "rocksdb-pessimistic" => {
                type $engine = $crate::engines::RocksPessimistic;
                $body
            }
            other => $crate::engines::unknown(other),
        }
    }};
}

/// The error for an engine name this build does not know.
pub fn unknown<T>(name: &str) -> Result<T> {
    if name.starts_with("rocksdb") && !cfg!(feature = "rocksdb") {
        bail!("engine {name} needs `--features rocksdb` (a ~30-minute C++ build)");
    }
    bail!("unknown engine {name}; known: {}", ALL.join(","))
}

pub use self::fjall::FjallEngine;
pub use self::lmdb::LmdbEngine;
pub use self::redb::RedbEngine;
#[cfg(feature = "rocksdb")]
pub use self::rocksdb::{RocksOptimistic, RocksPessimistic};
pub use self::sled::SledEngine;
pub use self::strata::StrataEngine;
pub use self::surrealkv::SurrealKvEngine;

/// Reads a counter value (absent is zero).
pub fn counter_value(bytes: Option<&[u8]>) -> Result<u64> {
    match bytes {
        None => Ok(0),
        Some(b) => match <[u8; 8]>::try_from(b) {
            Ok(arr) => Ok(u64::from_le_bytes(arr)),
            Err(_) => bail!("counter holds {} bytes, not 8", b.len()),
        },
    }
}

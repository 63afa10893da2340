//! The memory budget's accounts (issue 16, item 10; decision 0024).
//!
//! `Options::memory_budget` bounds what the engine holds in anonymous
//! memory: the memtables of the current view (each memtable counts its own
//! bytes, `memtable::Memtable::approximate_bytes`), the write sets of live
//! transactions, and the per-table state of every open table. The last two
//! are kept here, in one [`Account`] each, because what they count lives
//! in many owners (each `Txn`, each `Table`) and ends when its owner drops.
//!
//! A [`Charge`] (or an [`OwnedCharge`], for owners that outlive any
//! borrow) adds bytes to an account and takes them off again when it is
//! dropped, so an account returns to zero on every path out of its owner
//! (commit, rollback, drop, a failed commit, a panic unwinding) without
//! code on each path. Each account is one relaxed atomic on a cache line of
//! its own: it is a gauge read by backpressure and `Db::stats`, not a
//! protocol (nothing is ordered by it), so it needs no loom model.

use std::ops::Deref;
use std::sync::Arc;

use crate::sync::atomic::{AtomicU64, Ordering};

/// Bytes held by one part of the budget.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Account {
    bytes: AtomicU64,
}

impl Account {
    /// The bytes charged now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: u64) {
        if bytes > 0 {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn sub(&self, bytes: u64) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// A charge of nothing yet, to raise as its owner grows.
    pub(crate) fn charge(&self) -> Charge<'_> {
        Charge {
            account: self,
            bytes: 0,
        }
    }
}

/// Bytes charged to an [`Account`] until dropped; `A` is how the charge
/// holds its account (a borrow, or an `Arc` for owners that outlive any
/// borrow of the engine's state: tables and table builders).
#[derive(Debug)]
pub(crate) struct Held<A: Deref<Target = Account>> {
    account: A,
    bytes: u64,
}

/// A charge that borrows its account (a `Txn`'s).
pub(crate) type Charge<'a> = Held<&'a Account>;
/// A charge that keeps its account alive.
pub(crate) type OwnedCharge = Held<Arc<Account>>;

impl<A: Deref<Target = Account>> Held<A> {
    /// The bytes this charge holds.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Raises the charge to `bytes` (a smaller value changes nothing: an
    /// owner that shrank is over-counted until it drops, never under).
    pub(crate) fn raise_to(&mut self, bytes: u64) {
        if bytes > self.bytes {
            self.account.add(bytes - self.bytes);
            self.bytes = bytes;
        }
    }
}

impl OwnedCharge {
    pub(crate) fn new(account: &Arc<Account>, bytes: u64) -> Self {
        account.add(bytes);
        Self {
            account: Arc::clone(account),
            bytes,
        }
    }
}

impl<A: Deref<Target = Account>> Drop for Held<A> {
    fn drop(&mut self) {
        self.account.sub(self.bytes);
    }
}

/// Hands the allocator's free memory back to the operating system, where
/// the allocator keeps it otherwise: glibc's malloc keeps a heap ("arena")
/// per thread that allocates, and frees inside a heap go back to that
/// heap's free lists, returned to the system only from its top. Memtable
/// nodes are allocated by whichever committer applies a batch, so a
/// flushed memtable's memory ends up spread over as many heaps, each
/// holding its share until the same thread allocates again: measured, 23
/// MiB of anonymous memory above a 12 MiB budget with 32 committing
/// threads, 7 MiB with this after each flush (decision 0024). A no-op
/// with other allocators and C libraries.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(loom)))]
    // SAFETY: `malloc_trim` has no preconditions (`docs/unsafe.md`,
    // "Returning free heap memory"): glibc locks each arena while it walks
    // it, so it may run beside any other thread's `malloc` and `free`, and
    // it releases only pages wholly inside free chunks, which no allocation
    // can be using.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_charge_only_grows_and_is_returned_when_dropped() {
        let account = Account::default();
        let mut c = account.charge();
        c.raise_to(100);
        c.raise_to(40);
        assert_eq!((c.bytes(), account.bytes()), (100, 100));
        let mut d = account.charge();
        d.raise_to(7);
        assert_eq!(account.bytes(), 107);
        drop(c);
        assert_eq!(account.bytes(), 7);
        drop(d);
        assert_eq!(account.bytes(), 0);

        let shared = Arc::new(Account::default());
        let mut owned = OwnedCharge::new(&shared, 500);
        owned.raise_to(600);
        owned.raise_to(1);
        assert_eq!(shared.bytes(), 600);
        drop(owned);
        assert_eq!(shared.bytes(), 0);
    }
}

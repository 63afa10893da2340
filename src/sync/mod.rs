//! The concurrency seam: every lock, atomic and thread in Strata comes from here.
//!
//! In normal builds this re-exports `parking_lot` locks (wrapped to a by-value
//! `Condvar::wait` API) and `std` atomics and threads. Under `cfg(all(test, loom))`
//! the same names come from [loom](https://docs.rs/loom), so the protocols built
//! on them (`mvcc`, `wal::group_commit`) can be model-checked exhaustively.
//!
//! Rules (see `docs/concurrency.md`):
//! 1. No other module names `std::sync`, `std::thread` or `parking_lot`
//!    (clippy's `disallowed-types`/`disallowed-methods` enforce it).
//! 2. Locks do not poison: a later `lock()` after a panic while the lock
//!    was held succeeds. Only the commit path handles panics: the group
//!    commit poisons itself when a panic leaves its write or apply stage
//!    (`wal::group_commit`, protocol step 9), so later commits get
//!    `Error::Poisoned` and nobody waits for the stage forever. Elsewhere a
//!    panic while a lock is held leaves whatever that lock protects as the
//!    panic left it.

#[cfg(not(all(test, loom)))]
mod std_impl;
#[cfg(not(all(test, loom)))]
pub(crate) use std_impl::*;

#[cfg(all(test, loom))]
mod loom_impl;
#[cfg(all(test, loom))]
pub(crate) use loom_impl::*;

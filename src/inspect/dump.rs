//! [`super::dump`]: every source of versions (the WAL records above the
//! flushed lsn, then every table, level 0 newest first), merged in
//! version order. The merge keeps each source's tag, which the engine's
//! `iter::MergeIter` does not (it also yields a version two sources hold
//! once; a debugging tool shows both).

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::path::Path;
use std::sync::Arc;

use super::{DumpOptions, DumpedVersion, VersionSource};
use crate::error::{Error, Result};
use crate::manifest::{self, NUM_LEVELS};
use crate::sst::{EntryKind, Table, TableIter, cmp_version};
use crate::types::{Lsn, Ts};
use crate::vfs::{FileLock, Vfs};

/// The WAL's versions in range, in version order: value (`None`: a
/// tombstone) and the lsn of the record holding it.
type WalVersions = BTreeMap<(Vec<u8>, Reverse<Ts>), (Option<Vec<u8>>, Lsn)>;

/// The WAL source: its versions, consumed in order.
type WalSource =
    std::iter::Peekable<btree_map::IntoIter<(Vec<u8>, Reverse<Ts>), (Option<Vec<u8>>, Lsn)>>;

/// The iterator [`super::dump`] returns: `Ok` versions in version order,
/// then `None`; or an `Err` (a data block that does not read), then
/// `None`. Holds the directory's shared lock and the tables' mappings
/// until dropped.
#[derive(Debug)]
pub struct Dump {
    _lock: Option<Box<dyn FileLock>>,
    sources: Vec<Source>,
    to: Option<Vec<u8>>,
    all_versions: bool,
    /// The key of the last version taken (one version per key otherwise).
    last_key: Option<Vec<u8>>,
    done: bool,
}

#[derive(Debug)]
enum Source {
    Wal(WalSource),
    Table {
        iter: TableIter<Arc<Table>>,
        level: u8,
        number: u64,
    },
}

impl Source {
    /// The version the source is on, if any.
    fn head(&mut self) -> Option<(&[u8], Ts)> {
        match self {
            Source::Wal(it) => it.peek().map(|((k, ts), _)| (k.as_slice(), ts.0)),
            Source::Table { iter, .. } => iter.valid().then(|| (iter.key(), iter.ts())),
        }
    }

    /// Takes the version the source is on and moves past it.
    fn take(&mut self) -> Option<DumpedVersion> {
        match self {
            Source::Wal(it) => it.next().map(|((key, ts), (value, lsn))| DumpedVersion {
                key,
                ts: ts.0,
                value,
                source: VersionSource::Wal { lsn },
            }),
            Source::Table {
                iter,
                level,
                number,
            } => {
                if !iter.valid() {
                    return None;
                }
                let value = (iter.kind() == Some(EntryKind::Value)).then(|| iter.value().to_vec());
                let v = DumpedVersion {
                    key: iter.key().to_vec(),
                    ts: iter.ts(),
                    value,
                    source: VersionSource::Table {
                        level: *level,
                        number: *number,
                    },
                };
                iter.next();
                Some(v)
            }
        }
    }

    fn status(&self) -> Result<()> {
        match self {
            Source::Wal(_) => Ok(()),
            Source::Table { iter, .. } => iter.status(),
        }
    }
}

pub(super) fn dump(vfs: &dyn Vfs, dir: &Path, options: &DumpOptions) -> Result<Dump> {
    let lock = super::lock(vfs, dir)?;
    let (_, state) = super::read_manifest(vfs, dir)?;
    let in_range = |key: &[u8]| {
        options.from.as_deref().is_none_or(|from| key >= from)
            && options.to.as_deref().is_none_or(|to| key < to)
    };
    let mut wal = WalVersions::new();
    super::read_wal(vfs, dir, state.flushed_lsn(), &mut |rec| {
        for op in rec.ops().filter(|op| in_range(op.key)) {
            let version = (op.key.to_vec(), Reverse(rec.header.commit_ts));
            wal.insert(version, (op.value.map(<[u8]>::to_vec), rec.header.lsn));
        }
        Ok(())
    })?;
    let mut sources = vec![Source::Wal(wal.into_iter().peekable())];
    let tables = dir.join(manifest::TABLES_DIR);
    for (n, level) in (0..NUM_LEVELS).zip(0u8..) {
        let mut records: Vec<_> = state.level(n).iter().collect();
        if n == 0 {
            // Newest first, as a read looks at them.
            records.reverse();
        }
        for record in records {
            let path = tables.join(manifest::table_name(record.number));
            let table = Table::open(vfs, &path).map_err(|e| match e {
                Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Error::corruption(
                    &path,
                    0,
                    format!("table {} is in the manifest but missing", record.number),
                ),
                other => other,
            })?;
            let mut iter = Arc::new(table).iter();
            match &options.from {
                Some(from) => iter.seek(from, Ts::MAX),
                None => iter.seek_to_first(),
            }
            sources.push(Source::Table {
                iter,
                level,
                number: record.number,
            });
        }
    }
    Ok(Dump {
        _lock: lock,
        sources,
        to: options.to.clone(),
        all_versions: options.all_versions,
        last_key: None,
        done: false,
    })
}

impl Dump {
    /// The index of the source on the lowest version below the end of the
    /// range (the first such source on a tie), or the first damage.
    fn lowest(&mut self) -> Result<Option<usize>> {
        let mut best: Option<(usize, Vec<u8>, Ts)> = None;
        for (i, source) in self.sources.iter_mut().enumerate() {
            source.status()?;
            let Some((key, ts)) = source.head() else {
                continue;
            };
            if self.to.as_deref().is_some_and(|to| key >= to) {
                continue;
            }
            let lower = best
                .as_ref()
                .is_none_or(|(_, k, t)| cmp_version(key, ts, k, *t) == Ordering::Less);
            if lower {
                best = Some((i, key.to_vec(), ts));
            }
        }
        Ok(best.map(|(i, _, _)| i))
    }
}

impl Iterator for Dump {
    type Item = Result<DumpedVersion>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let i = match self.lowest() {
                Ok(Some(i)) => i,
                Ok(None) => break,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let Some(v) = self.sources.get_mut(i).and_then(Source::take) else {
                break;
            };
            if self.all_versions {
                return Some(Ok(v));
            }
            // Versions come newest first within a key: the first one is
            // the newest; a key whose newest is a tombstone is not shown.
            if self.last_key.as_deref() == Some(v.key.as_slice()) {
                continue;
            }
            self.last_key = Some(v.key.clone());
            if v.value.is_some() {
                return Some(Ok(v));
            }
        }
        self.done = true;
        None
    }
}

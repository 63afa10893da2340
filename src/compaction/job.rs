//! The mechanism: runs a [`Choice`] (module docs of `compaction`, and
//! decision 0019).
//!
//! A merge: the input tables, merged in version order ([`MergeIter`]),
//! through the [`GcStream`] (as the bottom when no deeper table meets the
//! inputs' key range), into new tables of the output level, cut between
//! two keys (never inside one key's versions: levels >= 1 must not
//! overlap) once a table reaches its target size; then the outputs and
//! their directory synced, one manifest edit `{ remove inputs, add
//! outputs }`, the new view, and the inputs marked obsolete (their files go
//! when the last view listing them does). A move: one edit and one view.

use std::path::PathBuf;
use std::sync::Arc;

use super::gc::{GcStream, Version};
use super::{Choice, TableSummary};
use crate::commit::Engine;
use crate::error::{Error, Result};
use crate::iter::{MergeIter, Source};
use crate::manifest::{self, Edit, TableRecord};
use crate::sst::{Table, TableBuilder, TableOptions};
use crate::store::table_record;
use crate::sync::atomic::Ordering;
use crate::types::{Lsn, Ts};
use crate::view::View;

/// What one job did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) tables_in: u64,
    pub(crate) tables_out: u64,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) versions_dropped: u64,
    pub(crate) moved: bool,
}

/// How often (in versions) a merge checks whether the database is closing.
const CLOSE_CHECK_VERSIONS: u64 = 4096;

/// Runs `choice` with outputs cut at `table_bytes`.
pub(crate) fn run(engine: &Engine, choice: &Choice, table_bytes: u64) -> Result<Outcome> {
    match choice {
        Choice::Nothing => Ok(Outcome::default()),
        Choice::Move { tables, from, to } => move_down(engine, tables, *from, *to),
        Choice::Merge {
            inputs,
            output_level,
        } => merge(engine, inputs, *output_level, table_bytes),
    }
}

/// The number a table's file name gives it.
pub(crate) fn number_of(t: &Table) -> Option<u64> {
    manifest::parse_table_name(t.path().file_name()?.to_str()?)
}

/// The view's tables as the picker sees them.
pub(crate) fn summaries(view: &View) -> Vec<Vec<TableSummary>> {
    view.levels
        .iter()
        .map(|tables| {
            tables
                .iter()
                .filter_map(|t| {
                    let p = t.properties();
                    Some(TableSummary {
                        number: number_of(t)?,
                        bytes: t.file_size(),
                        smallest: p.smallest_key.clone(),
                        largest: p.largest_key.clone(),
                    })
                })
                .collect()
        })
        .collect()
}

/// The view's table `number` in `level`.
fn find(view: &View, level: usize, number: u64) -> Result<Arc<Table>> {
    view.levels
        .get(level)
        .and_then(|ts| ts.iter().find(|t| number_of(t) == Some(number)))
        .cloned()
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "compaction input table {number} is not in level {level}"
            ))
        })
}

fn move_down(engine: &Engine, numbers: &[u64], from: usize, to: usize) -> Result<Outcome> {
    let store = &engine.store;
    let mut guard = store.manifest.lock();
    let log = guard
        .as_mut()
        .ok_or_else(|| Error::InvalidArgument("compaction without a manifest".into()))?;
    let (from_byte, to_byte) = (level_byte(from)?, level_byte(to)?);
    let mut edit = Edit::default();
    let mut removed = Vec::with_capacity(numbers.len());
    let mut added = Vec::with_capacity(numbers.len());
    for &number in numbers {
        let record = log
            .state()
            .level(from)
            .iter()
            .find(|r| r.number == number)
            .cloned()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("table {number} is not in level {from}"))
            })?;
        let table = engine
            .core
            .views
            .with_current(|view| find(view, from, number))?;
        edit.removed.push((from_byte, number));
        edit.added.push((to_byte, record));
        removed.push((from, table.clone()));
        added.push((to, table));
    }
    log.append(&edit)?;
    engine.core.views.replace_compacted(&removed, &added);
    let count = u64::try_from(numbers.len()).unwrap_or(u64::MAX);
    Ok(Outcome {
        tables_in: count,
        tables_out: count,
        moved: true,
        ..Outcome::default()
    })
}

fn level_byte(level: usize) -> Result<u8> {
    u8::try_from(level).map_err(|_| Error::InvalidArgument(format!("level {level}")))
}

fn merge(
    engine: &Engine,
    inputs: &[(usize, TableSummary)],
    output_level: usize,
    table_bytes: u64,
) -> Result<Outcome> {
    // Read under the views' lock, with no handle kept on the view.
    let (tables, bottom) = engine.core.views.with_current(|view| {
        let tables = inputs
            .iter()
            .map(|(l, s)| Ok((*l, find(view, *l, s.number)?)))
            .collect::<Result<Vec<(usize, Arc<Table>)>>>();
        let lo = inputs.iter().map(|(_, t)| t.smallest.as_slice()).min();
        let hi = inputs.iter().map(|(_, t)| t.largest.as_slice()).max();
        let bottom = view
            .levels
            .iter()
            .skip(output_level + 1)
            .flatten()
            .all(|t| {
                let p = t.properties();
                lo.is_none_or(|lo| p.largest_key.as_slice() < lo)
                    || hi.is_none_or(|hi| p.smallest_key.as_slice() > hi)
            });
        (tables, bottom)
    });
    let tables = tables?;
    // Taken after the inputs: a snapshot that began before holds it at or
    // below its read ts (invariant 2); so does the retained history.
    let watermark = engine.core.oracle.history_watermark();
    let max_lsn = tables
        .iter()
        .map(|(_, t)| t.properties().max_lsn)
        .max()
        .unwrap_or(0);
    let sources: Vec<Box<dyn Source + '_>> = tables
        .iter()
        .map(|(_, t)| Box::new(t.iter()) as Box<dyn Source + '_>)
        .collect();
    let mut gc = GcStream::new(MergeIter::new(sources), watermark, bottom);
    let mut out = Outputs::new(Lsn(max_lsn), table_bytes);
    let written = out.write_all(engine, &mut gc);
    let records = match written {
        Ok(records) => records,
        Err(e) => {
            out.abandon(engine);
            return Err(e);
        }
    };
    let store = &engine.store;
    let tables_dir = store.dir.join(manifest::TABLES_DIR);
    let opened = store
        .vfs
        .sync_dir(&tables_dir)
        .map_err(Error::from)
        .and_then(|()| {
            out.paths
                .iter()
                .map(|p| store.open_table(p))
                .collect::<Result<Vec<_>>>()
        });
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            out.abandon(engine);
            return Err(e);
        }
    };
    install(engine, &tables, output_level, &records, opened, watermark)?;
    Ok(Outcome {
        tables_in: tables.len() as u64,
        tables_out: records.len() as u64,
        bytes_read: tables.iter().map(|(_, t)| t.file_size()).sum(),
        bytes_written: records.iter().map(|r| r.file_size).sum(),
        versions_dropped: gc.dropped,
        moved: false,
    })
}

/// The durable swap: one edit, then the view, then the inputs obsolete.
/// An error after the append is attempted leaves the outputs in place (the
/// edit may be durable); the caller poisons the database.
fn install(
    engine: &Engine,
    inputs: &[(usize, Arc<Table>)],
    output_level: usize,
    records: &[TableRecord],
    opened: Vec<Arc<Table>>,
    watermark: Ts,
) -> Result<()> {
    let store = &engine.store;
    let mut guard = store.manifest.lock();
    let log = guard
        .as_mut()
        .ok_or_else(|| Error::InvalidArgument("compaction without a manifest".into()))?;
    let out = level_byte(output_level)?;
    let removed = inputs
        .iter()
        .map(|(l, t)| {
            let n = number_of(t).ok_or_else(|| Error::InvalidArgument("table name".into()))?;
            Ok((level_byte(*l)?, n))
        })
        .collect::<Result<Vec<_>>>()?;
    // What the outputs collected below, so that after a reopen no
    // snapshot older than it is taken (the floor never goes back, whatever
    // order concurrent jobs install in).
    let history_floor = Some(watermark.max(log.state().history_floor()));
    log.append(&Edit {
        removed,
        added: records.iter().map(|r| (out, r.clone())).collect(),
        history_floor,
        ..Edit::default()
    })?;
    let added: Vec<(usize, Arc<Table>)> = opened.into_iter().map(|t| (output_level, t)).collect();
    engine.core.views.replace_compacted(inputs, &added);
    let pending = &store.compaction.obsolete_pending;
    for (_, t) in inputs {
        t.mark_obsolete(store.vfs.clone(), pending.clone());
    }
    Ok(())
}

/// The output tables of one merge, as they are written.
struct Outputs {
    max_lsn: Lsn,
    table_bytes: u64,
    current: Option<(u64, TableBuilder)>,
    last_key: Vec<u8>,
    paths: Vec<PathBuf>,
    records: Vec<TableRecord>,
}

impl Outputs {
    fn new(max_lsn: Lsn, table_bytes: u64) -> Self {
        Self {
            max_lsn,
            table_bytes,
            current: None,
            last_key: Vec::new(),
            paths: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Writes every version `gc` yields; the records of the finished
    /// tables.
    fn write_all(
        &mut self,
        engine: &Engine,
        gc: &mut impl Iterator<Item = Result<Version>>,
    ) -> Result<Vec<TableRecord>> {
        let mut n = 0u64;
        for v in gc {
            let (key, ts, value) = v?;
            n += 1;
            if n.is_multiple_of(CLOSE_CHECK_VERSIONS) && engine.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let full = self.current.as_ref().is_some_and(|(_, b)| {
                b.estimated_size() >= self.table_bytes && key != self.last_key
            });
            if full {
                self.finish_current()?;
            }
            let builder = match &mut self.current {
                Some((_, b)) => b,
                None => self.start(engine)?,
            };
            builder.add(&key, ts, value.as_deref())?;
            self.last_key = key;
        }
        self.finish_current()?;
        Ok(std::mem::take(&mut self.records))
    }

    fn start(&mut self, engine: &Engine) -> Result<&mut TableBuilder> {
        let store = &engine.store;
        let number = {
            let mut guard = store.manifest.lock();
            let log = guard
                .as_mut()
                .ok_or_else(|| Error::InvalidArgument("compaction without a manifest".into()))?;
            log.new_file_number()?
        };
        let path = store
            .dir
            .join(manifest::TABLES_DIR)
            .join(manifest::table_name(number));
        let b = TableBuilder::create(store.vfs.as_ref(), &path, TableOptions::default())?
            .charged(&store.table_memory);
        self.paths.push(path);
        Ok(&mut self.current.insert((number, b)).1)
    }

    fn finish_current(&mut self) -> Result<()> {
        if let Some((number, b)) = self.current.take() {
            let built = b.finish(self.max_lsn.0)?;
            self.records
                .push(table_record(number, &built, self.max_lsn));
        }
        Ok(())
    }

    /// Removes what was written (best effort: the next open removes any
    /// file the manifest does not name).
    fn abandon(&mut self, engine: &Engine) {
        self.current = None;
        for p in &self.paths {
            let _ = engine.store.vfs.remove(p);
        }
    }
}

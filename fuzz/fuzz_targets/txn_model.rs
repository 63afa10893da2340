//! Transaction sequences against a reference model of versions.
//!
//! Ops run on a real `Db` over `MemVfs` (Durability::Sync) and on a model
//! `BTreeMap<key, [(commit ts, value or delete)]>`. Checked: every get and scan
//! of every open transaction (snapshot + own writes), commit outcomes
//! (conflict iff a written key has a version newer than the read ts), and
//! that reopening and power-cut crashes keep every acknowledged commit.
//! Flushes move versions to tables between ops, and compactions merge them
//! through the MVCC GC, with snapshots held across both. After a compaction
//! the tables hold exactly the versions `Db::compact` keeps at the GC
//! watermark the open transactions hold; after each open (once the
//! background work is done) the tables directory holds exactly the live
//! tables.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata::vfs::{MemVfs, Vfs};
use strata::{Db, Error, Options, Txn};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Begin,
    Put { t: u8, k: u8, v: u8 },
    Delete { t: u8, k: u8 },
    Get { t: u8, k: u8 },
    Scan { t: u8, lo: u8, hi: u8 },
    Commit { t: u8 },
    Rollback { t: u8 },
    Read { k: u8 },
    /// `Db::flush`: memtables to tables, open transactions held across.
    Flush,
    /// `Db::compact`: a flush, then every table merged into the bottom
    /// level through the GC, open transactions held across.
    Compact,
    Reopen,
    Crash,
}

type Versions = BTreeMap<Vec<u8>, Vec<(u64, Option<Vec<u8>>)>>;

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k % 8]
}

fn visible(model: &Versions, k: &[u8], ts: u64) -> Option<Vec<u8>> {
    model
        .get(k)?
        .iter()
        .filter(|(t, _)| *t <= ts)
        .max_by_key(|(t, _)| *t)?
        .1
        .clone()
}

fn view(
    model: &Versions,
    ts: u64,
    own: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out: BTreeMap<Vec<u8>, Vec<u8>> = model
        .keys()
        .filter_map(|k| visible(model, k, ts).map(|v| (k.clone(), v)))
        .collect();
    for (k, v) in own {
        match v {
            Some(v) => out.insert(k.clone(), v.clone()),
            None => out.remove(k),
        };
    }
    out
}

/// Versions a full compaction at GC watermark `w` keeps: per key, those
/// above `w`, and the newest at or below it unless it is a delete.
fn kept(model: &Versions, w: u64) -> u64 {
    model
        .values()
        .map(|vs| {
            let above = vs.iter().filter(|(t, _)| *t > w).count() as u64;
            let newest = vs.iter().filter(|(t, _)| *t <= w).max_by_key(|(t, _)| *t);
            above + u64::from(newest.is_some_and(|(_, v)| v.is_some()))
        })
        .sum()
}

fn table_files(vfs: &MemVfs) -> u64 {
    vfs.list(Path::new("/db/tables")).map_or(0, |names| {
        names.iter().filter(|n| n.ends_with(".sst")).count() as u64
    })
}

struct Open<'db> {
    txn: Txn<'db>,
    own: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

fn run_epoch(db: &Db, vfs: &MemVfs, ops: &[Op], model: &mut Versions) {
    let mut open: Vec<Open<'_>> = Vec::new();
    for op in ops {
        let pick = |t: u8, n: usize| usize::from(t) % n.max(1);
        match *op {
            Op::Begin if open.len() < 4 => open.push(Open {
                txn: db.begin(),
                own: BTreeMap::new(),
            }),
            Op::Put { t, k, v } if !open.is_empty() => {
                let i = pick(t, open.len());
                let value = vec![v; usize::from(v % 4)];
                open[i].txn.put(&key(k), &value).unwrap();
                open[i].own.insert(key(k), Some(value));
            }
            Op::Delete { t, k } if !open.is_empty() => {
                let i = pick(t, open.len());
                open[i].txn.delete(&key(k)).unwrap();
                open[i].own.insert(key(k), None);
            }
            Op::Get { t, k } if !open.is_empty() => {
                let o = &open[pick(t, open.len())];
                let want = view(model, o.txn.read_ts().into(), &o.own).remove(&key(k));
                assert_eq!(o.txn.get(&key(k)).unwrap(), want);
            }
            Op::Scan { t, lo, hi } if !open.is_empty() => {
                let o = &open[pick(t, open.len())];
                let (lo, hi) = (key(lo.min(hi)), key(lo.max(hi)));
                let want: Vec<_> = view(model, o.txn.read_ts().into(), &o.own)
                    .into_iter()
                    .filter(|(k, _)| *k >= lo && *k < hi)
                    .collect();
                let got: Vec<_> = o.txn.scan(lo..hi).unwrap().map(Result::unwrap).collect();
                assert_eq!(got, want);
            }
            Op::Commit { t } if !open.is_empty() => {
                let o = open.remove(pick(t, open.len()));
                let read_ts: u64 = o.txn.read_ts().into();
                let conflict = o.own.keys().any(|k| {
                    model
                        .get(k)
                        .is_some_and(|vs| vs.iter().any(|(ts, _)| *ts > read_ts))
                });
                match o.txn.commit() {
                    Ok(ts) if o.own.is_empty() => assert_eq!(u64::from(ts), read_ts),
                    Ok(ts) => {
                        assert!(!conflict, "commit should have conflicted");
                        for (k, v) in o.own {
                            model.entry(k).or_default().push((ts.into(), v));
                        }
                    }
                    Err(Error::Conflict { .. }) => assert!(conflict, "false conflict"),
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            Op::Rollback { t } if !open.is_empty() => {
                open.remove(pick(t, open.len())).txn.rollback();
            }
            Op::Read { k } => {
                let r = db.begin_read();
                let want = visible(model, &key(k), r.read_ts().into());
                assert_eq!(r.get(&key(k)).unwrap(), want);
            }
            Op::Flush => db.flush().unwrap(),
            Op::Compact => {
                db.compact().unwrap();
                let s = db.stats();
                let oldest_open = open.iter().map(|o| u64::from(o.txn.read_ts())).min();
                let w = oldest_open.unwrap_or(s.read_ts.into());
                assert_eq!(u64::from(s.gc_watermark), w);
                assert_eq!(s.memtable_versions, 0);
                assert_eq!(s.table_versions, kept(model, w), "{s:?}");
                assert_eq!(table_files(vfs), s.tables + s.obsolete_tables, "{s:?}");
            }
            _ => {}
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut vfs = MemVfs::new();
    let mut model = Versions::new();
    let dir = std::path::Path::new("/db");
    for epoch in ops
        .split_inclusive(|op| matches!(op, Op::Reopen | Op::Crash))
        .take(8)
    {
        let db = Db::open_with_vfs(
            dir,
            Options::default()
                .wal_segment_bytes(4096) // small: exercise roll-over
                .history_retention(std::time::Duration::ZERO), // GC exactly what the model predicts
            Arc::new(vfs.clone()) as Arc<dyn Vfs>,
        )
        .unwrap();
        db.wait_for_compactions().unwrap();
        let s = db.stats();
        assert_eq!(table_files(&vfs), s.tables, "orphans after open: {s:?}");
        let r = db.begin_read();
        assert_eq!(view(&model, r.read_ts().into(), &BTreeMap::new()).len(), {
            r.scan::<&[u8], _>(..).unwrap().count()
        });
        drop(r);
        run_epoch(&db, &vfs, epoch, &mut model);
        if matches!(epoch.last(), Some(Op::Crash)) {
            let crashed = vfs.crash();
            drop(db);
            vfs = crashed;
        } else {
            db.close().unwrap();
        }
    }
});

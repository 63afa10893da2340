//! `strata bench --compare FILE`: Strata's figures from this run as ratios
//! to the best peer's figures saved by the peers suite
//! (`benches/peers`, its `peers.json`).
//!
//! Only the workloads both measure the same way are compared:
//!
//! | `strata bench` row | peers.json workload |
//! |---|---|
//! | load (buffered), 1,000-key transactions | `load` |
//! | durable read-modify-write at N threads | `r2w2/Nt` (N in the suite's counts) |
//! | point reads (ReadTxn), 1 thread | `read/1t` |
//! | scan 100 (ReadTxn) | `scan` |
//!
//! One difference remains: `strata bench` reads 100 keys per `ReadTxn`, the
//! suite opens one read transaction per read. Saved figures come from
//! another run, so the ratio mixes two runs (the suite's own table, measured
//! in one run, is the comparison to quote); this is a quick check of where
//! Strata stands now against a saved baseline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::CliResult;
use super::report::{Kind, Report, Row};

/// One engine's saved median for one workload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Saved {
    /// The figure.
    pub(crate) value: f64,
    /// Its unit, as the suite wrote it.
    pub(crate) unit: String,
    /// Whether more is better.
    pub(crate) higher_is_better: bool,
}

/// The medians of a saved peers.json: workload id -> engine -> figure.
#[derive(Debug, Default)]
pub(crate) struct PeersFile {
    /// Figures by workload, then engine.
    pub(crate) workloads: BTreeMap<String, BTreeMap<String, Saved>>,
    /// The suite's command line and commit, for the header.
    pub(crate) origin: String,
}

impl PeersFile {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> CliResult<PeersFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--compare {}: {e}", path.display()))?;
        PeersFile::parse(&text).map_err(|e| format!("--compare {}: {e}", path.display()).into())
    }

    /// Parses the text of a peers.json (its `medians` object).
    pub(crate) fn parse(text: &str) -> CliResult<PeersFile> {
        let root: Value = serde_json::from_str(text)?;
        let medians = root
            .get("medians")
            .and_then(Value::as_object)
            .ok_or("no \"medians\" object: not a peers.json")?;
        let mut file = PeersFile {
            origin: format!(
                "{} at {}",
                root.get("command").and_then(Value::as_str).unwrap_or("?"),
                root.get("git_commit")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ),
            ..PeersFile::default()
        };
        for (engine, metrics) in medians {
            let metrics = metrics
                .as_object()
                .ok_or("medians.<engine> is not an object")?;
            for (id, metric) in metrics {
                let value = metric.get("value").and_then(Value::as_f64);
                let Some(value) = value else {
                    return Err(format!("medians.{engine}.{id} has no numeric value").into());
                };
                let saved = Saved {
                    value,
                    unit: metric
                        .get("unit")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    higher_is_better: metric
                        .get("higher_is_better")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                };
                let by_engine = file.workloads.entry(id.clone()).or_default();
                by_engine.insert(engine.clone(), saved);
            }
        }
        Ok(file)
    }

    /// The best engine other than Strata (and the limits) for `id`.
    pub(crate) fn best_peer(&self, id: &str) -> Option<(&str, &Saved)> {
        self.workloads
            .get(id)?
            .iter()
            .filter(|(engine, _)| *engine != "strata" && *engine != "limits")
            .max_by(|(_, a), (_, b)| {
                let order = a.value.total_cmp(&b.value);
                if a.higher_is_better {
                    order
                } else {
                    order.reverse()
                }
            })
            .map(|(engine, saved)| (engine.as_str(), saved))
    }
}

/// The peers.json workload a `strata bench` row measures, if any.
fn peer_workload(row: &Row) -> Option<String> {
    match row.kind {
        Kind::Load if row.name.contains("buffered") => Some("load".to_owned()),
        Kind::Durable => Some(format!("r2w2/{}t", row.threads)),
        Kind::PointReads if row.threads == 1 => Some("read/1t".to_owned()),
        Kind::Scans if row.threads == 1 => Some("scan".to_owned()),
        _ => None,
    }
}

/// The comparison table, for the rows of `report` that `saved` also has.
pub(crate) fn render(report: &Report, saved: &PeersFile) -> String {
    let mut out = format!("\ncompared with the peers saved by `{}`\n", saved.origin);
    let _ = writeln!(
        out,
        "{:<28} {:>14} {:>14} {:>24} {:>9}",
        "workload", "strata now", "strata saved", "best peer saved", "now/best"
    );
    let mut any = false;
    for row in &report.rows {
        let Some(id) = peer_workload(row) else {
            continue;
        };
        let Some((engine, best)) = saved.best_peer(&id) else {
            continue;
        };
        any = true;
        let strata_saved = saved
            .workloads
            .get(&id)
            .and_then(|m| m.get("strata"))
            .map_or_else(|| "-".to_owned(), |s| format!("{:.0}", s.value));
        let now = row.rate();
        let ratio = if best.value > 0.0 {
            now / best.value
        } else {
            f64::NAN
        };
        let _ = writeln!(
            out,
            "{:<28} {now:>14.0} {strata_saved:>14} {:>24} {ratio:>9.2}",
            format!("{id} ({})", row.unit),
            format!("{:.0} {engine}", best.value),
        );
    }
    if !any {
        out.push_str("(no workload in common: run with --threads 1,2,8,32 to match r2w2)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "command": "strata-peers suite --n 100000",
        "git_commit": "abc1234",
        "runs": [],
        "medians": {
            "strata": { "load": { "value": 500000.0, "unit": "keys/s", "higher_is_better": true } },
            "lmdb": {
                "load": { "value": 700000.0, "unit": "keys/s", "higher_is_better": true },
                "reopen": { "value": 0.3, "unit": "ms", "higher_is_better": false }
            },
            "redb": {
                "load": { "value": 300000.0, "unit": "keys/s", "higher_is_better": true },
                "reopen": { "value": 2.0, "unit": "ms", "higher_is_better": false },
                "r2w2/1t": { "value": 2000.0, "unit": "txn/s", "higher_is_better": true,
                             "p50_us": 400.0, "conflicts": 0 }
            },
            "limits": { "load": { "value": 9000000.0, "unit": "keys/s", "higher_is_better": true } }
        }
    }"#;

    #[test]
    fn reads_the_medians_and_picks_the_best_peer_in_each_direction() {
        let file = PeersFile::parse(SAMPLE).expect("sample parses");
        assert_eq!(file.origin, "strata-peers suite --n 100000 at abc1234");
        // Strata and the limits are never "the best peer".
        let (engine, best) = file.best_peer("load").expect("load has peers");
        assert_eq!((engine, best.value), ("lmdb", 700_000.0));
        assert_eq!(best.unit, "keys/s");
        // Lower is better for times.
        let (engine, best) = file.best_peer("reopen").expect("reopen has peers");
        assert_eq!((engine, best.value), ("lmdb", 0.3));
        assert!(!best.higher_is_better);
        assert_eq!(file.best_peer("r2w2/1t").map(|(e, _)| e), Some("redb"));
        assert!(file.best_peer("scan").is_none());
    }

    #[test]
    fn refuses_what_is_not_a_peers_file() {
        assert!(PeersFile::parse("not json").is_err());
        assert!(PeersFile::parse(r#"{"runs": []}"#).is_err());
        let no_value = r#"{"medians": {"lmdb": {"load": {"unit": "keys/s"}}}}"#;
        assert!(PeersFile::parse(no_value).is_err());
    }
}

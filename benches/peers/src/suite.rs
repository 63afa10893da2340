//! `suite`: runs every engine (and the limits) in its own child process,
//! `--reps` times, on fresh directories, and writes peers.json and peers.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::cgroup::MemoryCage;
use crate::model::{ChildReport, Settings};
use crate::report::{self, SuiteReport};
use crate::sysinfo::Machine;

/// The crates whose versions go into the report (from Cargo.lock).
const VERSIONED: &[&str] = &[
    "strata",
    "redb",
    "sled",
    "fjall",
    "lsm-tree",
    "surrealkv",
    "heed",
    "lmdb-master-sys",
    "rocksdb",
    "librocksdb-sys",
    "crossbeam-skiplist",
];

/// What the suite runs, after parsing.
pub struct Plan {
    /// Engines, in order.
    pub engines: Vec<String>,
    /// Settings handed to every child.
    pub settings: Settings,
    /// Repetitions.
    pub reps: usize,
    /// Where peers.json and peers.md go.
    pub out: PathBuf,
    /// Parent of the databases' directories (a temporary directory in it).
    pub dir: PathBuf,
}

/// Runs the plan and writes the reports; fails if an increment was lost.
pub fn run(plan: &Plan) -> Result<()> {
    let base = tempfile::Builder::new()
        .prefix("strata-peers-")
        .tempdir_in(&plan.dir)
        .with_context(|| format!("temporary directory in {}", plan.dir.display()))?;
    // The checkout as the run starts (a commit made while it runs must not
    // be named as the code measured).
    let git_commit = git_commit();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let runs = run_children(plan, base.path());
    let mut by_engine: BTreeMap<String, Vec<&ChildReport>> = BTreeMap::new();
    for (_, r) in &runs {
        by_engine.entry(r.engine.clone()).or_default().push(r);
    }
    let medians = by_engine
        .into_iter()
        .map(|(e, rs)| (e, report::medians(&rs)))
        .collect();
    let report = SuiteReport {
        command: command_line(),
        started_unix,
        git_commit,
        machine: Machine::probe(base.path()),
        settings: plan.settings.clone(),
        versions: versions(),
        runs,
        medians,
    };
    write_reports(&report, &plan.out)?;
    let lost: u64 = report
        .medians
        .values()
        .flat_map(|m| m.values())
        .filter_map(|m| m.lost)
        .sum();
    if lost > 0 {
        bail!("{lost} increments were lost (see the contention tables)");
    }
    Ok(())
}

/// Runs the limits and every engine, `--reps` times, each in a child
/// process on its own directory under `base`.
fn run_children(plan: &Plan, base: &Path) -> Vec<(usize, ChildReport)> {
    let mut runs = Vec::new();
    for rep in 0..plan.reps {
        if plan.settings.wants("limits") {
            eprintln!("rep {rep}: limits");
            let dir = base.join(format!("limits-{rep}"));
            runs.push((rep, spawn_child("limits", &dir, &plan.settings)));
        }
        // Each repetition starts one engine later, so a slow spell of a
        // shared disk does not always land on the same engine.
        let shift = rep % plan.engines.len().max(1);
        for engine in plan.engines[shift..].iter().chain(&plan.engines[..shift]) {
            eprintln!("rep {rep}: {engine}");
            let dir = base.join(format!("{engine}-{rep}"));
            runs.push((rep, spawn_child(engine, &dir, &plan.settings)));
            // Free the disk for the next engine; sizes were measured in the child.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    runs
}

/// Writes peers.json and peers.md into `out`, and the summary to stdout.
fn write_reports(report: &SuiteReport, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(out.join("peers.json"), json).context("write peers.json")?;
    std::fs::write(out.join("peers.md"), report::markdown(report)).context("write peers.md")?;
    println!("{}", report::summary(report));
    eprintln!(
        "wrote {} and {}",
        out.join("peers.md").display(),
        out.join("peers.json").display()
    );
    Ok(())
}

/// Runs `engine` (or `limits`) in a child process of this binary, in
/// `dir`; a child that fails is reported as an error row, not a crash.
fn spawn_child(engine: &str, dir: &Path, settings: &Settings) -> ChildReport {
    let failed = |error: String| ChildReport {
        engine: engine.to_owned(),
        errors: vec![error],
        ..ChildReport::default()
    };
    let result = (|| -> Result<ChildReport> {
        std::fs::create_dir_all(dir)?;
        let exe = std::env::current_exe().context("current_exe")?;
        let cage = match settings.memory_limit_bytes {
            Some(bytes) if engine != "limits" => {
                let name = format!("strata-peers-{}-{engine}", std::process::id());
                Some(MemoryCage::new(&name, bytes)?)
            }
            _ => None,
        };
        let child = Command::new(exe)
            .arg("child")
            .args([
                "--engine",
                engine,
                "--settings",
                &serde_json::to_string(settings)?,
            ])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn child")?;
        if let Some(cage) = &cage {
            // Before the child loads anything (it parses its settings first).
            cage.add(child.id())?;
        }
        let output = child.wait_with_output().context("wait for child")?;
        if !output.status.success() {
            let peak = cage.as_ref().and_then(MemoryCage::peak_bytes);
            match (settings.memory_limit_bytes, peak) {
                (Some(limit), Some(peak)) if peak / 20 >= limit / 21 => bail!(
                    "child exited with {}: out of memory under the {} MiB limit (peak {} MiB)",
                    output.status,
                    limit >> 20,
                    peak >> 20
                ),
                _ => bail!("child exited with {}", output.status),
            }
        }
        serde_json::from_slice(&output.stdout).context("child's JSON report")
    })();
    result.unwrap_or_else(|e| failed(format!("{e:#}")))
}

/// The command line, with the binary's path shortened to its name.
fn command_line() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(exe) = args.first_mut() {
        "strata-peers".clone_into(exe);
    }
    args.join(" ")
}

/// `git describe --always --dirty` of the Strata checkout, or "unknown".
fn git_commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned())
}

/// Versions of [`VERSIONED`] crates from the Cargo.lock this binary was built with.
fn versions() -> BTreeMap<String, String> {
    let lock = include_str!("../Cargo.lock");
    let mut out = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
            && VERSIONED.contains(&n)
        {
            let mut version = v.trim_matches('"').to_owned();
            if n.contains("rocksdb") && !cfg!(feature = "rocksdb") {
                version.push_str(" (locked; not built without --features rocksdb)");
            }
            out.insert(n.to_owned(), version);
        }
    }
    out
}

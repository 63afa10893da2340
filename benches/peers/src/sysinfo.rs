//! What the process and the machine look like: peak RSS, bytes on disk,
//! CPU, kernel and file system.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// A `kB` field of `/proc/self/status` (`VmHWM`, `RssAnon`, ...), in bytes.
fn status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| field.to_owned())?;
    Ok(kib * 1024)
}

/// Peak resident set size of this process (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Result<u64> {
    status_bytes("VmHWM")
}

/// Resident anonymous memory of this process now (`RssAnon`: heap, stacks,
/// anonymous maps; not the page cache of mapped files), in bytes.
pub fn anon_bytes() -> Result<u64> {
    status_bytes("RssAnon")
}

/// How often [`AnonSampler`] reads `RssAnon`.
pub const ANON_SAMPLE_INTERVAL: Duration = Duration::from_millis(5);

/// Samples `RssAnon` on a thread of its own every [`ANON_SAMPLE_INTERVAL`]
/// until stopped, keeping the largest value: the kernel keeps no
/// high-water mark of anonymous memory alone (`VmHWM` includes mapped file
/// pages, which for an mmap engine are its data). A peak shorter than the
/// interval can be missed.
pub struct AnonSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AnonSampler {
    /// Starts sampling (the first sample is taken before this returns).
    pub fn start() -> Result<AnonSampler> {
        let peak = Arc::new(AtomicU64::new(anon_bytes()?));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("anon-sampler".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Ok(now) = anon_bytes() {
                        p.fetch_max(now, Ordering::Relaxed);
                    }
                    std::thread::sleep(ANON_SAMPLE_INTERVAL);
                }
            })
            .context("spawn the RssAnon sampler")?;
        Ok(AnonSampler {
            peak,
            stop,
            thread: Some(thread),
        })
    }

    /// The largest `RssAnon` seen so far (and now).
    pub fn peak(&self) -> u64 {
        if let Ok(now) = anon_bytes() {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for AnonSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bytes allocated on disk under `dir` (blocks, so sparse or preallocated
/// files count as what they occupy, not their length).
pub fn disk_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += disk_bytes(&entry.path())?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// The machine a suite ran on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// File system type of the directory the databases live in.
    pub fs: String,
    /// Total memory, in bytes.
    pub mem_bytes: u64,
}

impl Machine {
    /// Describes this machine, with `dir`'s file system.
    pub fn probe(dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
            fs: fs_type(dir),
            mem_bytes: mem_kib * 1024,
        }
    }
}

/// The file system type of the mount holding `dir` (longest matching
/// mount point in /proc/mounts).
fn fs_type(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), format!("{kind} ({device} on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_owned(), |(_, s)| s)
}

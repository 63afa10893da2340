//! `--memory-limit-mb`: each child runs in its own memory cgroup, so that
//! a data set larger than memory really is (the limit counts the process's
//! anonymous memory and the page cache it brings in). Linux only, and only
//! as root: cgroup v1's memory controller (`/sys/fs/cgroup/memory`) when it
//! is mounted, else cgroup v2 with the memory controller enabled.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const V1_ROOT: &str = "/sys/fs/cgroup/memory";
const V2_ROOT: &str = "/sys/fs/cgroup";

/// A memory cgroup with a limit, removed when dropped.
pub struct MemoryCage {
    path: PathBuf,
    v1: bool,
}

impl MemoryCage {
    /// Creates the cgroup `name` limited to `bytes` (swap included, where
    /// the kernel allows it to be set).
    pub fn new(name: &str, bytes: u64) -> Result<MemoryCage> {
        let (root, v1) = if Path::new(V1_ROOT).join("memory.limit_in_bytes").exists() {
            (V1_ROOT, true)
        } else {
            let controllers = std::fs::read_to_string(Path::new(V2_ROOT).join("cgroup.controllers"))
                .unwrap_or_default();
            if !controllers.split_whitespace().any(|c| c == "memory") {
                bail!("--memory-limit-mb needs a cgroup memory controller (v1 at {V1_ROOT} or v2 at {V2_ROOT})");
            }
            (V2_ROOT, false)
        };
        let path = Path::new(root).join(name);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("create {} (run as root)", path.display()))?;
        let cage = MemoryCage { path, v1 };
        if v1 {
            cage.write("memory.limit_in_bytes", bytes)?;
            // No swap on these machines; ignore the knob where absent.
            let _ = cage.write("memory.swappiness", 0);
        } else {
            cage.write("memory.max", bytes)?;
            let _ = cage.write("memory.swap.max", 0);
        }
        Ok(cage)
    }

    fn write(&self, file: &str, value: impl std::fmt::Display) -> Result<()> {
        let path = self.path.join(file);
        std::fs::write(&path, value.to_string()).with_context(|| format!("write {}", path.display()))
    }

    /// Moves process `pid` into the cgroup.
    pub fn add(&self, pid: u32) -> Result<()> {
        self.write("cgroup.procs", pid)
    }

    /// The most memory the cgroup held, if the kernel reports it.
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = if self.v1 { "memory.max_usage_in_bytes" } else { "memory.peak" };
        std::fs::read_to_string(self.path.join(file)).ok()?.trim().parse().ok()
    }
}

impl Drop for MemoryCage {
    fn drop(&mut self) {
        // Empty once the child has exited; a cgroup directory is removed
        // with rmdir.
        let _ = std::fs::remove_dir(&self.path);
    }
}

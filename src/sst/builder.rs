//! [`TableBuilder`]: writes one table front to back from versions added in
//! order, then the filter, index and properties blocks and the footer, and
//! syncs the file (`docs/format/sst.md`, writer rule 1 and the file's part
//! of rule 2; syncing the directory before the manifest names the table is
//! the caller's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{
    BlockBuilder, DATA_RESTART_INTERVAL, EntryKind, INDEX_RESTART_INTERVAL, cmp_version,
};
use super::bloom::{BloomBuilder, DEFAULT_BITS_PER_KEY, HASH_V1, HASH_V2_BLOCKED};
use super::format::{BlockKind, FORMAT_VERSION, Footer, Handle, Properties, push_trailer};
use crate::budget::{Account, OwnedCharge};
use crate::error::{Error, Result};
use crate::types::{MAX_KEY_BYTES, MAX_VALUE_BYTES, Ts};
use crate::vfs::{Vfs, VfsFile};

/// Bytes gathered before one `write_all`.
const WRITE_CHUNK_BYTES: usize = 256 * 1024;

/// Contents bytes of a data block holding only an entry with these lengths:
/// the entry (`shared` 0, its lengths, key, ts, kind, value), one restart
/// and the restart count.
fn alone_block_bytes(key_len: usize, value_len: usize) -> usize {
    let varint = |n: usize| {
        let mut bytes = 1;
        let mut v = n >> 7;
        while v > 0 {
            bytes += 1;
            v >>= 7;
        }
        bytes
    };
    1 + varint(key_len) + varint(value_len) + key_len + 8 + 1 + value_len + 4 + 4
}

/// How tables are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableOptions {
    /// Target size of a data block's contents.
    pub(crate) block_bytes: usize,
    /// Bloom filter bits per distinct key.
    pub(crate) bits_per_key: usize,
    /// The format version written (tests write older ones to check that
    /// they still read): 1 has a version-1 filter, 2 a blocked one.
    pub(crate) format_version: u32,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            block_bytes: 4096,
            bits_per_key: DEFAULT_BITS_PER_KEY,
            format_version: FORMAT_VERSION,
        }
    }
}

/// What a finished table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuiltTable {
    pub(crate) file_size: u64,
    pub(crate) properties: Properties,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct TableBuilder {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    opts: TableOptions,
    /// Bytes handed to `write_all` so far.
    written: u64,
    pending: Vec<u8>,
    data: BlockBuilder,
    index: BlockBuilder,
    bloom: BloomBuilder,
    props: Properties,
    last_ts: Ts,
    scratch: Vec<u8>,
    /// What the builder holds that grows with the table (the filter's
    /// hashes, the index block), in the engine's table account while it
    /// builds (decision 0024); raised at each data block. Its fixed
    /// buffers (the write chunk, the block being built) are not counted.
    charge: Option<OwnedCharge>,
}

impl TableBuilder {
    /// Creates the table file at `path` (which must not exist yet).
    pub(crate) fn create(vfs: &dyn Vfs, path: &Path, opts: TableOptions) -> Result<Self> {
        let file = vfs.open_write(path)?;
        if file.file_len()? != 0 {
            return Err(Error::InvalidArgument(format!(
                "table file {} already exists",
                path.display()
            )));
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            opts,
            written: 0,
            pending: Vec::with_capacity(WRITE_CHUNK_BYTES + opts.block_bytes * 2),
            data: BlockBuilder::new(DATA_RESTART_INTERVAL),
            index: BlockBuilder::new(INDEX_RESTART_INTERVAL),
            bloom: BloomBuilder::default(),
            props: Properties {
                min_ts: Ts::MAX,
                ..Properties::default()
            },
            last_ts: Ts::ZERO,
            scratch: Vec::new(),
            charge: None,
        })
    }

    /// Charges what the builder holds to `account` until it is finished
    /// or dropped.
    pub(crate) fn charged(mut self, account: &Arc<Account>) -> Self {
        self.charge = Some(OwnedCharge::new(account, 0));
        self
    }

    /// Versions added so far.
    pub(crate) fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Bytes the file will have at least (written plus buffered).
    pub(crate) fn estimated_size(&self) -> u64 {
        self.written + (self.pending.len() + self.data.len_estimate()) as u64
    }

    /// Adds the version of `key` committed at `ts` (`None`: a tombstone).
    /// Versions must come strictly ascending (key ascending, ts descending).
    pub(crate) fn add(&mut self, key: &[u8], ts: Ts, value: Option<&[u8]>) -> Result<()> {
        let first = self.props.entries == 0;
        let last_key = if self.data.is_empty() {
            self.props.largest_key.as_slice()
        } else {
            self.data.last_key()
        };
        let in_order =
            first || cmp_version(last_key, self.last_ts, key, ts) == std::cmp::Ordering::Less;
        let new_key = first || last_key != key;
        if !in_order {
            return Err(Error::InvalidArgument(format!(
                "table {}: versions added out of order",
                self.path.display()
            )));
        }
        if key.len() > MAX_KEY_BYTES || value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
            return Err(Error::InvalidArgument(format!(
                "table {}: key or value over the format's limit",
                self.path.display()
            )));
        }
        // An entry that alone makes a block larger than the target gets a
        // block of its own, so that reading its neighbours never hashes (or
        // pages in) a big value.
        let value_len = value.map_or(0, <[u8]>::len);
        if alone_block_bytes(key.len(), value_len) > self.opts.block_bytes {
            self.finish_data_block()?;
        }
        if new_key {
            self.bloom.add(key);
            self.props.keys += 1;
        }
        if first {
            self.props.smallest_key = key.to_vec();
        }
        if let Some(v) = value {
            self.data.add(key, ts, EntryKind::Value, v);
        } else {
            self.data.add(key, ts, EntryKind::Tombstone, &[]);
            self.props.tombstones += 1;
        }
        self.props.entries += 1;
        self.props.key_bytes += key.len() as u64;
        self.props.value_bytes += value.map_or(0, |v| v.len() as u64);
        self.props.min_ts = self.props.min_ts.min(ts);
        self.props.max_ts = self.props.max_ts.max(ts);
        self.last_ts = ts;
        if self.data.len_estimate() >= self.opts.block_bytes {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Appends a block (contents and trailer) to the pending bytes.
    fn push_block(&mut self, kind: BlockKind) -> Result<Handle> {
        let handle = Handle {
            offset: self.written + self.pending.len() as u64,
            len: u32::try_from(self.scratch.len())
                .map_err(|_| Error::InvalidArgument("a table block over 4 GiB".into()))?,
        };
        self.pending.extend_from_slice(&self.scratch);
        push_trailer(&mut self.pending, &self.scratch, kind);
        if self.pending.len() >= WRITE_CHUNK_BYTES {
            self.flush_pending()?;
        }
        Ok(handle)
    }

    fn flush_pending(&mut self) -> Result<()> {
        self.file.write_all(&self.pending)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn finish_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        self.props.largest_key.clear();
        self.props
            .largest_key
            .extend_from_slice(self.data.last_key());
        self.scratch.clear();
        self.data.finish_into(&mut self.scratch);
        let handle = self.push_block(BlockKind::Data)?;
        let mut value = Vec::with_capacity(super::format::HANDLE_BYTES);
        handle.encode_into(&mut value);
        self.index.add(
            &self.props.largest_key,
            self.last_ts,
            EntryKind::Handle,
            &value,
        );
        self.props.data_blocks += 1;
        if let Some(charge) = &mut self.charge {
            charge.raise_to((self.bloom.memory_bytes() + self.index.len_estimate()) as u64);
        }
        Ok(())
    }

    /// Writes the rest of the table and syncs it. `max_lsn` is the highest
    /// WAL lsn whose writes it holds (0 when unknown). A table needs at
    /// least one version.
    pub(crate) fn finish(mut self, max_lsn: u64) -> Result<BuiltTable> {
        self.finish_data_block()?;
        if self.props.entries == 0 {
            return Err(Error::InvalidArgument(format!(
                "table {}: an empty table is never written",
                self.path.display()
            )));
        }
        self.props.max_lsn = max_lsn;
        let filter_version = if self.opts.format_version == 1 {
            HASH_V1
        } else {
            HASH_V2_BLOCKED
        };
        self.scratch = self
            .bloom
            .finish_version(self.opts.bits_per_key, filter_version);
        let filter = self.push_block(BlockKind::Filter)?;
        self.scratch.clear();
        self.index.finish_into(&mut self.scratch);
        let index = self.push_block(BlockKind::Index)?;
        self.scratch = self.props.encode();
        let properties = self.push_block(BlockKind::Properties)?;
        let footer = Footer {
            index,
            filter,
            properties,
            version: self.opts.format_version,
        };
        self.pending.extend_from_slice(&footer.encode());
        self.flush_pending()?;
        self.file.sync_data()?;
        Ok(BuiltTable {
            file_size: self.written,
            properties: self.props,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sst::block::BlockBuilder;

    #[test]
    fn alone_block_bytes_is_the_length_of_a_one_entry_block() {
        for (k, v) in [(0, 0), (1, 1), (127, 128), (300, 20_000), (5, 3_000_000)] {
            let mut b = BlockBuilder::new(DATA_RESTART_INTERVAL);
            b.add(&vec![b'k'; k], Ts::from(1), EntryKind::Value, &vec![0; v]);
            let mut out = Vec::new();
            b.finish_into(&mut out);
            assert_eq!(alone_block_bytes(k, v), out.len(), "key {k}, value {v}");
        }
    }
}

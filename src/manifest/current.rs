//! `CURRENT`: the checked pointer to the live manifest, and its atomic
//! install (`docs/format/manifest.md`, "Files", "Writer rules" 4).
//!
//! ```text
//! CURRENT (39 bytes) := "MANIFEST-" digit{20} "\n" hex{8} "\n"
//!                       hex = CRC32 of the first 29 bytes, lowercase
//! ```
//!
//! Install: write `CURRENT.tmp`, `sync_data`, rename over `CURRENT`,
//! `sync_dir`. The rename replaces the pointer atomically, so a crash
//! leaves the old one or the new one; `CURRENT` is never written in place,
//! so a short or mixed `CURRENT` is damage, never a torn write.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::vfs::Vfs;

/// The pointer's file name.
pub(crate) const CURRENT: &str = "CURRENT";
/// Where the next pointer is written before it is renamed over `CURRENT`.
pub(crate) const CURRENT_TMP: &str = "CURRENT.tmp";
/// The size of `CURRENT`.
pub(crate) const CURRENT_BYTES: usize = 39;
/// What line 1 starts with (also the prefix of every manifest file name).
pub(crate) const MANIFEST_PREFIX: &str = "MANIFEST-";
/// Decimal digits of a file number in a name.
pub(crate) const NUMBER_DIGITS: usize = 20;
/// Line 1 without its newline: the prefix and the number.
const LINE_BYTES: usize = MANIFEST_PREFIX.len() + NUMBER_DIGITS;

/// The 39 bytes of a `CURRENT` naming manifest `number`.
pub(crate) fn encode(number: u64) -> Vec<u8> {
    let line = format!("{MANIFEST_PREFIX}{number:020}");
    let crc = crc32fast::hash(line.as_bytes());
    format!("{line}\n{crc:08x}\n").into_bytes()
}

/// The manifest number `data` names, or the offset of the first wrong byte
/// and what is wrong with it.
pub(crate) fn decode(data: &[u8]) -> std::result::Result<u64, (u64, &'static str)> {
    if data.len() < CURRENT_BYTES {
        return Err((data.len() as u64, "CURRENT ends early"));
    }
    if data.len() > CURRENT_BYTES {
        return Err((
            CURRENT_BYTES as u64,
            "CURRENT has bytes after its second line",
        ));
    }
    let (line, _) = data.split_at(LINE_BYTES);
    let (prefix, digits) = line.split_at(MANIFEST_PREFIX.len());
    if let Some(at) = first_difference(prefix, MANIFEST_PREFIX.as_bytes()) {
        return Err((at as u64, "CURRENT does not start with MANIFEST-"));
    }
    let number = parse_number(digits).map_err(|at| {
        let at = (MANIFEST_PREFIX.len() + at) as u64;
        (at, "bad manifest number in CURRENT")
    })?;
    let newline = |at: usize| match data.get(at) {
        Some(b'\n') => Ok(()),
        _ => Err((at as u64, "CURRENT line does not end in a newline")),
    };
    newline(LINE_BYTES)?;
    let hex = data
        .get(LINE_BYTES + 1..CURRENT_BYTES - 1)
        .unwrap_or_default();
    let mut crc = 0u32;
    for (at, &b) in (LINE_BYTES + 1..).zip(hex) {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return Err((at as u64, "bad checksum digit in CURRENT")),
        };
        crc = (crc << 4) | u32::from(digit);
    }
    newline(CURRENT_BYTES - 1)?;
    if crc != crc32fast::hash(line) {
        return Err((LINE_BYTES as u64 + 1, "CURRENT checksum mismatch"));
    }
    Ok(number)
}

/// The offset of the first byte where `a` and `b` differ.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// A file number written as [`NUMBER_DIGITS`] decimal digits (>= 1); the
/// error is the offset of the first bad digit (0 if the value is out of
/// range or 0).
pub(crate) fn parse_number(digits: &[u8]) -> std::result::Result<u64, usize> {
    if digits.len() != NUMBER_DIGITS {
        return Err(digits.len().min(NUMBER_DIGITS));
    }
    let mut n = 0u64;
    for (at, &b) in digits.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(at);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(0usize)?;
    }
    if n == 0 {
        return Err(0);
    }
    Ok(n)
}

/// The manifest number `CURRENT` in `dir` names; `None` if there is no
/// `CURRENT`. A damaged one is `Error::Corruption` naming it.
pub(crate) fn read(vfs: &dyn Vfs, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(CURRENT);
    let data = match vfs.read_all(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(e)),
    };
    decode(&data)
        .map(Some)
        .map_err(|(offset, what)| Error::corruption(path, offset, what))
}

/// Points `CURRENT` in `dir` at manifest `number`, atomically and durably.
/// The manifest must already be durable, bytes and name.
pub(crate) fn install(vfs: &dyn Vfs, dir: &Path, number: u64) -> io::Result<()> {
    let tmp = dir.join(CURRENT_TMP);
    {
        // A crash may have left a longer one: start from nothing.
        let mut f = vfs.open_write(&tmp)?;
        f.set_len(0)?;
        f.write_all_at(0, &encode(number))?;
        f.sync_data()?;
    }
    vfs.rename(&tmp, &dir.join(CURRENT))?;
    vfs.sync_dir(dir)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;
    use std::collections::BTreeSet;

    #[test]
    fn encode_matches_the_spec_example_and_round_trips() {
        let one = encode(1);
        assert_eq!(one, b"MANIFEST-00000000000000000001\nf10e1b4d\n");
        assert_eq!(one.len(), CURRENT_BYTES);
        for n in [1, 7, 1 << 40, u64::MAX] {
            assert_eq!(decode(&encode(n)), Ok(n));
        }
    }

    /// Every change of every byte, and every cut or extension, is refused:
    /// a damaged pointer never names another manifest.
    #[test]
    fn every_damaged_byte_and_every_length_is_refused() {
        let good = encode(123_456);
        for at in 0..good.len() {
            for xor in 1..=255u8 {
                let mut bad = good.clone();
                bad[at] ^= xor;
                let (offset, _) = decode(&bad).expect_err("a damaged CURRENT decoded");
                assert!(offset as usize <= CURRENT_BYTES, "offset {offset}");
            }
        }
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err(), "cut at {len}");
        }
        let mut longer = good.clone();
        longer.push(b'\n');
        assert_eq!(decode(&longer).unwrap_err().0, 39);
    }

    #[test]
    fn errors_point_at_the_wrong_byte() {
        let good = encode(5);
        let at = |i: usize, b: u8| {
            let mut bad = good.clone();
            bad[i] = b;
            decode(&bad).unwrap_err()
        };
        assert_eq!(at(3, b'X').0, 3);
        assert_eq!(at(12, b'x'), (12, "bad manifest number in CURRENT"));
        assert_eq!(at(29, b' ').0, 29);
        assert_eq!(at(31, b'A'), (31, "bad checksum digit in CURRENT"));
        assert_eq!(at(38, b'\r').0, 38);
        // Number 0 and a number past u64::MAX, with a matching checksum.
        for line in [
            "MANIFEST-00000000000000000000",
            "MANIFEST-99999999999999999999",
        ] {
            let crc = crc32fast::hash(line.as_bytes());
            let data = format!("{line}\n{crc:08x}\n");
            assert_eq!(decode(data.as_bytes()).unwrap_err().0, 9, "{line}");
        }
        assert_eq!(parse_number(b"+0000000000000000001"), Err(0));
        assert_eq!(parse_number(b"1"), Err(1));
    }

    #[test]
    fn read_tells_a_missing_current_from_a_damaged_one() {
        let vfs = MemVfs::new();
        let dir = Path::new("/db");
        crate::vfs::create_dir_durable(&vfs, dir).unwrap();
        assert_eq!(read(&vfs, dir).unwrap(), None);
        vfs.write_file(&dir.join(CURRENT), b"MANIFEST-1\n".to_vec());
        let err = read(&vfs, dir).unwrap_err();
        assert!(
            matches!(&err, Error::Corruption { file, offset: 11, .. } if file.ends_with(CURRENT)),
            "{err}"
        );
        install(&vfs, dir, 9).unwrap();
        assert_eq!(read(&vfs, dir).unwrap(), Some(9));
    }

    /// A power cut after every step of an install leaves the old pointer
    /// or the new one, never none and never a damaged one; a leftover
    /// longer `CURRENT.tmp` does not leak into the new pointer.
    #[test]
    fn an_install_cut_at_any_step_leaves_the_old_or_the_new_pointer() {
        let dir = Path::new("/db");
        let mem = MemVfs::new();
        crate::vfs::create_dir_durable(&mem, dir).unwrap();
        install(&mem, dir, 3).unwrap();
        mem.write_file(&dir.join(CURRENT_TMP), vec![b'x'; 100]);
        let steps = crate::manifest::tests::StepVfs::new(mem.clone());
        install(&steps, dir, 4).unwrap();
        let cuts = steps.take_cuts();
        assert!(cuts.len() >= 6, "{} steps", cuts.len());
        let mut seen = BTreeSet::new();
        for (step, cut) in cuts.iter().enumerate() {
            let n = read(cut, dir).unwrap().expect("CURRENT is never missing");
            assert!(n == 3 || n == 4, "step {step}: {n}");
            seen.insert(n);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [3, 4]);
        assert_eq!(read(&mem.crash(), dir).unwrap(), Some(4));
    }
}

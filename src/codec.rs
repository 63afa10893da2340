//! Little-endian fixed-width and LEB128 varint encoding helpers. Pure, allocation-free, and
//! bounds-checked: a short buffer yields `None`, never a panic.

/// A forward reader over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    /// An unsigned LEB128 `u32`: at most 5 bytes, and the fifth holds at
    /// most the top 4 bits, so every value has exactly one accepted
    /// encoding length bound and nothing overflows.
    pub(crate) fn varint32(&mut self) -> Option<u32> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            if i == 4 && b > 0x0f {
                return None;
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A `u32` length followed by that many bytes.
    pub(crate) fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.bytes(len)
    }
}

/// Appends `v` as unsigned LEB128 (1 to 5 bytes).
pub(crate) fn put_varint32(buf: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends a length that the caller has already checked against a limit
/// below `u32::MAX`; the conversion is still checked so that no length can be
/// silently truncated.
pub(crate) fn put_len(buf: &mut Vec<u8>, len: usize) -> Option<()> {
    buf.extend_from_slice(&u32::try_from(len).ok()?.to_le_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overlong_or_short_input() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX >> 4,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint32(&mut buf, v);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.varint32(), Some(v), "{v}");
            assert_eq!(c.remaining(), 0);
        }
        assert_eq!(Cursor::new(&[0x80]).varint32(), None, "cut short");
        assert_eq!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x10]).varint32(),
            None,
            "33 bits"
        );
        assert_eq!(
            Cursor::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0]).varint32(),
            None,
            "6 bytes"
        );
        assert_eq!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint32(),
            Some(u32::MAX)
        );
    }

    #[test]
    fn cursor_reads_fields_and_stops_at_the_end() {
        let mut buf = vec![7u8];
        buf.extend_from_slice(&0x0102_u16.to_le_bytes());
        buf.extend_from_slice(&0x0304_0506_u32.to_le_bytes());
        buf.extend_from_slice(&u64::MAX.to_le_bytes());
        put_len(&mut buf, 2).unwrap();
        buf.extend_from_slice(b"hi");
        let mut c = Cursor::new(&buf);
        assert_eq!(c.u8(), Some(7));
        assert_eq!(c.u16(), Some(0x0102));
        assert_eq!(c.u32(), Some(0x0304_0506));
        assert_eq!(c.u64(), Some(u64::MAX));
        assert_eq!(c.len_prefixed(), Some(&b"hi"[..]));
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.u8(), None);
        assert_eq!(Cursor::new(&[1, 2]).u32(), None);
        assert_eq!(Cursor::new(&[9, 0, 0, 0, 1]).len_prefixed(), None);
    }
}

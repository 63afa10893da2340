//! WAL retention: which segments may be deleted (decision 0017, step 5).
//!
//! A segment may go only when every record in it is in a table (its
//! successor starts at or below `flushed + 1`) and no pin holds any of its
//! records; the newest segment never goes (it holds the log's end and the
//! CRC the next segment chains to). Segment positions are recorded when
//! recovery reads a segment and when the writer has created one (durably),
//! so the decision needs no file reads.
//!
//! Pins (a checkpoint copying the WAL tail now; followers and change-feed
//! cursors later) name the lowest lsn they still need.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::sync::Mutex;
use crate::types::Lsn;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Retention {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `segment_no -> first lsn`, of every segment on disk.
    segments: BTreeMap<u64, Lsn>,
    /// `lowest lsn needed -> holders`.
    pins: BTreeMap<Lsn, usize>,
}

/// Holds every record from its lsn on; released when dropped.
#[derive(Debug)]
pub(crate) struct RetentionPin {
    retention: Arc<Retention>,
    from: Lsn,
}

impl Drop for RetentionPin {
    fn drop(&mut self) {
        let mut st = self.retention.state.lock();
        if let Some(n) = st.pins.get_mut(&self.from) {
            *n -= 1;
            if *n == 0 {
                st.pins.remove(&self.from);
            }
        }
    }
}

impl Retention {
    /// Segment `no`, whose first record is (or will be) `first`, is on disk.
    pub(crate) fn note_segment(&self, no: u64, first: Lsn) {
        self.state.lock().segments.insert(no, first);
    }

    /// Keeps every record from `from` on until the pin is dropped.
    pub(crate) fn pin(self: &Arc<Self>, from: Lsn) -> RetentionPin {
        *self.state.lock().pins.entry(from).or_insert(0) += 1;
        RetentionPin {
            retention: Arc::clone(self),
            from,
        }
    }

    /// The segments that may be deleted now that every record up to
    /// `flushed` is in a table, oldest first; they are forgotten here (the
    /// caller deletes them).
    pub(crate) fn take_deletable(&self, flushed: Lsn) -> Vec<u64> {
        let mut st = self.state.lock();
        let pinned_from = st.pins.keys().next().copied();
        let mut out = Vec::new();
        let numbers: Vec<(u64, Lsn)> = st.segments.iter().map(|(&n, &f)| (n, f)).collect();
        for pair in numbers.windows(2) {
            let [(no, _), (_, next_first)] = pair else {
                continue;
            };
            // Every record of `no` is below its successor's first.
            let last_in_it = Lsn(next_first.0.saturating_sub(1));
            let flushed_whole = last_in_it <= flushed;
            let unpinned = pinned_from.is_none_or(|p| last_in_it < p);
            if !(flushed_whole && unpinned) {
                break; // keep this one and every later one
            }
            out.push(*no);
        }
        for no in &out {
            st.segments.remove(no);
        }
        out
    }

    /// The segments holding records from `from` on: the last one starting
    /// at or below it and every later one, oldest first.
    pub(crate) fn segments_from(&self, from: Lsn) -> Vec<u64> {
        let st = self.state.lock();
        let first = st
            .segments
            .iter()
            .filter(|&(_, &f)| f <= from)
            .map(|(&n, _)| n)
            .next_back()
            .or_else(|| st.segments.keys().next().copied());
        first.map_or_else(Vec::new, |first| {
            st.segments.range(first..).map(|(&n, _)| n).collect()
        })
    }

    /// Segments on disk.
    pub(crate) fn segments(&self) -> usize {
        self.state.lock().segments.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn retention(segments: &[(u64, u64)]) -> Arc<Retention> {
        let r = Arc::new(Retention::default());
        for &(no, first) in segments {
            r.note_segment(no, Lsn(first));
        }
        r
    }

    #[test]
    fn only_whole_flushed_segments_go_and_never_the_newest() {
        // Segments 3, 4, 5 hold lsns 1-10, 11-20, 21-...
        let r = retention(&[(3, 1), (4, 11), (5, 21)]);
        assert_eq!(
            r.take_deletable(Lsn(9)),
            Vec::<u64>::new(),
            "segment 3 not whole"
        );
        assert_eq!(r.take_deletable(Lsn(10)), vec![3]);
        assert_eq!(
            r.take_deletable(Lsn(10)),
            Vec::<u64>::new(),
            "forgotten once taken"
        );
        assert_eq!(r.take_deletable(Lsn(1000)), vec![4], "5 is the newest");
        assert_eq!(r.segments(), 1);
    }

    #[test]
    fn a_pin_keeps_the_segment_holding_its_lsn_and_every_later_one() {
        let r = retention(&[(1, 1), (2, 11), (3, 21), (4, 31)]);
        let pin = r.pin(Lsn(15));
        assert_eq!(r.take_deletable(Lsn(40)), vec![1], "2 holds lsn 15");
        drop(pin);
        assert_eq!(r.take_deletable(Lsn(40)), vec![2, 3]);
    }
}

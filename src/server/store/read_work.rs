//! What a history read did, counted where it happens: rollup rows, chunk index rows and
//! decoded points. The store bench prints it next to each timing, so the account of where a
//! read's time goes is measured on every run, not inferred.
//!
//! Kept per thread: each part of a read runs on one blocking thread from start to end
//! ([`take`] at its start and end brackets it), so no counter is shared or passed through
//! every reader function. Counting is a few register adds per row.

use std::cell::Cell;
use std::ops::AddAssign;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadWork {
    /// Rollup rows read: stand-ins and rows looked into.
    pub rollup_rows: usize,
    /// Of those, rows found in the [`super::row_cache`] (no SQLite read).
    pub cached_rows: usize,
    /// Rows of the chunks index read (a chunk's summary, or its data by id).
    pub chunk_rows: usize,
    /// Points decoded from chunks.
    pub points_decoded: usize,
}

impl AddAssign for ReadWork {
    fn add_assign(&mut self, o: Self) {
        self.rollup_rows += o.rollup_rows;
        self.cached_rows += o.cached_rows;
        self.chunk_rows += o.chunk_rows;
        self.points_decoded += o.points_decoded;
    }
}

thread_local! {
    static WORK: Cell<ReadWork> = const {
        Cell::new(ReadWork { rollup_rows: 0, cached_rows: 0, chunk_rows: 0, points_decoded: 0 })
    };
}

/// Adds to this thread's count.
pub fn count(rollup_rows: usize, chunk_rows: usize, points_decoded: usize) {
    add(ReadWork {
        rollup_rows,
        chunk_rows,
        points_decoded,
        ..ReadWork::default()
    });
}

/// Adds rollup rows found in the cache (counted as read too).
pub fn count_cached(rows: usize) {
    add(ReadWork {
        rollup_rows: rows,
        cached_rows: rows,
        ..ReadWork::default()
    });
}

fn add(work: ReadWork) {
    WORK.with(|w| {
        let mut v = w.get();
        v += work;
        w.set(v);
    });
}

/// This thread's count since the last call, which starts a new one.
pub fn take() -> ReadWork {
    WORK.with(Cell::take)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_thread_until_taken() {
        take();
        count(2, 1, 100);
        count(1, 0, 24);
        std::thread::spawn(|| count(50, 50, 50)).join().unwrap();
        assert_eq!(
            take(),
            ReadWork {
                rollup_rows: 3,
                chunk_rows: 1,
                points_decoded: 124,
                ..ReadWork::default()
            }
        );
        assert_eq!(take(), ReadWork::default());
    }
}

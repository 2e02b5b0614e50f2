//! Rollup rows kept in memory between history reads, so a read of a range already read (a
//! dashboard refreshing, several viewers opening the same chart, a zoom back out) finds its
//! rows without a B-tree seek each. On a long range those seeks are what grows with the
//! range: a 100 M-point read spent about 3 of its 9.5 ms per part in them (BENCHMARKS.md),
//! one row level more per column boundary for each tier between the one read and the
//! finest, while the rest of its work (a chunk decoded per boundary) is the same at any
//! length.
//!
//! # Never a stale row
//! Each read sees one SQLite snapshot, and must be given rows exactly as that snapshot has
//! them. So the cache is tied to a *version*: `meta.rollup_version`, which the writer raises
//! in every transaction that changes a rollup row ([`Writes::finish`]). Every function that
//! writes rollup rows records which rows it wrote ([`touched`]); after the commit the writer
//! drops those rows from the cache and moves the cache to the new version. A read reads the
//! version in its own snapshot and uses or fills the cache only when the two are equal, both
//! checked under the cache's lock. A read on an older snapshot, or on a newer one before the
//! writer has caught up, goes to SQLite as without a cache, and what it read is not kept.
//!
//! # What is kept
//! Per series and tier, the rows read, and the ranges of bucket starts known complete (read
//! by a range scan), so a later range inside them needs no scan and a named row absent from
//! them is known absent. Bounded by [`BUDGET_BYTES`]: past it, the series read least recently
//! go first, whole.

use super::rollup::Row;
use rusqlite::{Connection, OptionalExtension};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// Memory the cache may hold: a 2 000-column read of a 100 M-point series keeps about 7 000
/// rows (~2.5 MB), so this holds the wide reads of a few dozen such series, small beside the
/// live window.
pub const BUDGET_BYTES: usize = 64 << 20;

/// The `meta` key holding the version of the rollup rows.
const VERSION_KEY: &str = "rollup_version";

/// The rollup rows' version in `conn`'s snapshot (0 before any write raised it).
pub fn read_version(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1")?
        .query_row([VERSION_KEY], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Rows of tier `width` of a series whose bucket starts lie in `lo..=hi`: created, changed or
/// deleted by a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub series_id: i64,
    pub width: i64,
    pub lo: i64,
    pub hi: i64,
}

thread_local! {
    /// Rows written on this thread since the writer last took them: kept per thread like
    /// [`super::read_work`], so rollup's writes need no extra argument threaded through.
    static TOUCHED: RefCell<Vec<Touch>> = const { RefCell::new(Vec::new()) };
}

/// Records a write of tier `width`'s rows with bucket starts in `lo..=hi`. Every statement
/// that changes the `rollups` table must be paired with one.
pub fn touched(series_id: i64, width: i64, lo: i64, hi: i64) {
    TOUCHED.with(|t| {
        t.borrow_mut().push(Touch {
            series_id,
            width,
            lo,
            hi,
        })
    });
}

fn take_touched() -> Vec<Touch> {
    TOUCHED.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

/// The writer's side: the version it last committed, and the cache it keeps current.
pub struct Writes {
    version: i64,
    cache: std::sync::Arc<RowCache>,
}

impl Writes {
    /// For a writer on `conn`, whose rows are at the version stored there.
    pub fn new(conn: &Connection, cache: std::sync::Arc<RowCache>) -> rusqlite::Result<Self> {
        let version = read_version(conn)?;
        cache.reset(version);
        Ok(Self { version, cache })
    }

    /// The cache this writer keeps current.
    pub fn cache(&self) -> &RowCache {
        &self.cache
    }

    /// Commits `tx`, raising the version inside it if it wrote rollup rows; once committed,
    /// those rows leave the cache and the cache moves to the new version. On an error nothing
    /// was committed, so the cache stays right for the version before.
    pub fn finish(&mut self, tx: rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        let touched = take_touched();
        if touched.is_empty() {
            return tx.commit();
        }
        let version = self.version + 1;
        tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(rusqlite::params![VERSION_KEY, version])?;
        tx.commit()?;
        self.version = version;
        self.cache.advance(version, &touched);
        Ok(())
    }
}

/// See the module documentation.
pub struct RowCache {
    inner: Mutex<Inner>,
    budget: usize,
}

struct Inner {
    version: i64,
    series: HashMap<i64, SeriesRows>,
    bytes: usize,
    /// Counts reads, to order series by their last one.
    clock: u64,
}

#[derive(Default)]
struct SeriesRows {
    tiers: HashMap<i64, Tier>,
    bytes: usize,
    last_read: u64,
}

#[derive(Default)]
struct Tier {
    rows: BTreeMap<i64, Row>,
    /// Ranges of bucket starts whose rows are all in `rows`: sorted, disjoint, not touching.
    complete: Vec<(i64, i64)>,
}

/// What a row costs the cache: itself, its listing, and about a B-tree slot.
fn row_bytes(r: &Row) -> usize {
    std::mem::size_of::<Row>() + 16 + r.chunks.as_ref().map_or(0, |c| c.len())
}

/// What a range known complete costs: reads of ranges that neither overlap nor touch (empty
/// periods, far-apart zooms) add one each, rows or not, so they count too.
const RANGE_BYTES: usize = std::mem::size_of::<(i64, i64)>();

/// What a series' or tier's entry costs before any row: its map slot and bookkeeping.
const ENTRY_BYTES: usize = 64;

fn ranges_bytes(n: usize) -> isize {
    (n * RANGE_BYTES) as isize
}

impl Tier {
    fn is_complete(&self, lo: i64, hi: i64) -> bool {
        let i = self.complete.partition_point(|&(_, e)| e < lo);
        self.complete
            .get(i)
            .is_some_and(|&(s, e)| s <= lo && e >= hi)
    }

    /// Returns the bytes added (net: ranges it joins go).
    fn mark_complete(&mut self, lo: i64, hi: i64) -> isize {
        let before = self.complete.len();
        let (mut lo, mut hi) = (lo, hi);
        // Ranges that overlap or touch this one join it.
        self.complete.retain(|&(s, e)| {
            let apart = e < lo.saturating_sub(1) || s > hi.saturating_add(1);
            if !apart {
                lo = lo.min(s);
                hi = hi.max(e);
            }
            apart
        });
        let i = self.complete.partition_point(|&(s, _)| s < lo);
        self.complete.insert(i, (lo, hi));
        ranges_bytes(self.complete.len()) - ranges_bytes(before)
    }

    /// Drops the rows in `lo..=hi` and their completeness; returns the bytes freed (net: a
    /// range cut in two takes one more).
    fn forget(&mut self, lo: i64, hi: i64) -> isize {
        let before = self.complete.len();
        let mut cut = Vec::with_capacity(self.complete.len() + 1);
        for &(s, e) in &self.complete {
            if e < lo || s > hi {
                cut.push((s, e));
                continue;
            }
            if s < lo {
                cut.push((s, lo - 1));
            }
            if e > hi {
                cut.push((hi + 1, e));
            }
        }
        self.complete = cut;
        let gone: Vec<i64> = self.rows.range(lo..=hi).map(|(&k, _)| k).collect();
        let rows: usize = gone
            .iter()
            .filter_map(|k| self.rows.remove(k))
            .map(|r| row_bytes(&r))
            .sum();
        rows as isize + ranges_bytes(before) - ranges_bytes(self.complete.len())
    }

    /// Adds `rows`, replacing any with the same start; returns the bytes added (net).
    fn put(&mut self, rows: &[Row]) -> isize {
        let mut net = 0isize;
        for r in rows {
            net += row_bytes(r) as isize;
            if let Some(old) = self.rows.insert(r.start, r.clone()) {
                net -= row_bytes(&old) as isize;
            }
        }
        net
    }
}

/// What the cache knows of some named rows.
#[derive(Debug, Default)]
pub struct Named {
    /// Rows found, in the order asked.
    pub found: Vec<Row>,
    /// Starts the cache cannot answer for: read them from SQLite.
    pub missing: Vec<i64>,
}

impl RowCache {
    pub fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                version: 0,
                series: HashMap::new(),
                bytes: 0,
                clock: 0,
            }),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties the cache, keeping its version.
    pub fn clear(&self) {
        let version = self.lock().version;
        self.reset(version);
    }

    /// Empties the cache and ties it to `version`.
    pub fn reset(&self, version: i64) {
        let mut inner = self.lock();
        inner.series.clear();
        inner.bytes = 0;
        inner.version = version;
    }

    /// After the writer committed `version`, which wrote the `touched` rows.
    fn advance(&self, version: i64, touched: &[Touch]) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        for t in touched {
            let Some(series) = inner.series.get_mut(&t.series_id) else {
                continue;
            };
            if let Some(tier) = series.tiers.get_mut(&t.width) {
                let freed = tier.forget(t.lo, t.hi);
                series.bytes = series.bytes.saturating_add_signed(-freed);
                inner.bytes = inner.bytes.saturating_add_signed(-freed);
            }
        }
        inner.version = version;
    }

    /// The rows of tier `width` with bucket starts in `lo..=hi`, by start, if a read at
    /// `version` may take them from here.
    pub fn range(
        &self,
        version: i64,
        series_id: i64,
        width: i64,
        (lo, hi): (i64, i64),
    ) -> Option<Vec<Row>> {
        let mut inner = self.lock();
        if inner.version != version {
            return None;
        }
        inner.clock += 1;
        let clock = inner.clock;
        let series = inner.series.get_mut(&series_id)?;
        let tier = series.tiers.get(&width)?;
        if !tier.is_complete(lo, hi) {
            return None;
        }
        series.last_read = clock;
        Some(tier.rows.range(lo..=hi).map(|(_, r)| r.clone()).collect())
    }

    /// What the cache holds of the rows of tier `width` starting at `starts`, for a read at
    /// `version` (all missing if it may not use the cache).
    pub fn named(&self, version: i64, series_id: i64, width: i64, starts: &[i64]) -> Named {
        let mut inner = self.lock();
        let tier = (inner.version == version)
            .then(|| inner.series.get(&series_id)?.tiers.get(&width))
            .flatten();
        let Some(tier) = tier else {
            return Named {
                found: Vec::new(),
                missing: starts.to_vec(),
            };
        };
        let mut named = Named::default();
        for &s in starts {
            match tier.rows.get(&s) {
                Some(r) => named.found.push(r.clone()),
                // Known absent: its bucket was read whole and had no row.
                None if tier.is_complete(s, s) => {}
                None => named.missing.push(s),
            }
        }
        inner.clock += 1;
        let clock = inner.clock;
        if let Some(series) = inner.series.get_mut(&series_id) {
            series.last_read = clock;
        }
        named
    }

    /// Keeps `rows` of tier `width`, read at `version`; with `complete`, they are every row of
    /// the tier with a bucket start in that range. Nothing is kept if the cache moved on.
    pub fn put(
        &self,
        version: i64,
        series_id: i64,
        width: i64,
        rows: &[Row],
        complete: Option<(i64, i64)>,
    ) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.version != version {
            return;
        }
        inner.clock += 1;
        let clock = inner.clock;
        let mut net = 0isize;
        let series = inner.series.entry(series_id).or_insert_with(|| {
            net += ENTRY_BYTES as isize;
            SeriesRows::default()
        });
        series.last_read = clock;
        let tier = series.tiers.entry(width).or_insert_with(|| {
            net += ENTRY_BYTES as isize;
            Tier::default()
        });
        net += tier.put(rows);
        if let Some((lo, hi)) = complete {
            net += tier.mark_complete(lo, hi);
        }
        series.bytes = series.bytes.saturating_add_signed(net);
        inner.bytes = inner.bytes.saturating_add_signed(net);
        // The series read least recently go first; the one read now last of all.
        while inner.bytes > self.budget {
            let oldest = inner
                .series
                .iter()
                .filter(|(&id, _)| id != series_id)
                .min_by_key(|(_, s)| s.last_read)
                .map(|(&id, _)| id)
                .unwrap_or(series_id);
            if let Some(gone) = inner.series.remove(&oldest) {
                inner.bytes -= gone.bytes;
            }
            if oldest == series_id {
                break;
            }
        }
    }

    /// Bytes held, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimate::Extremes;
    use crate::model::Point;
    use crate::server::store::rollup::Summary;

    fn row(start: i64) -> Row {
        let p = Point {
            ts_ns: start,
            value: 1.0,
        };
        Row {
            start,
            summary: Summary {
                count: 1,
                clean: true,
                extremes: Extremes {
                    first: p,
                    min: p,
                    max: p,
                    last: p,
                },
            },
            chunks: Some(vec![0u8; 100].into()),
        }
    }

    fn starts(rows: &[Row]) -> Vec<i64> {
        rows.iter().map(|r| r.start).collect()
    }

    #[test]
    fn ranges_read_whole_answer_later_ranges_inside_them() {
        let cache = RowCache::new(BUDGET_BYTES);
        assert!(cache.range(0, 1, 5, (0, 100)).is_none());
        cache.put(0, 1, 5, &[row(0), row(5), row(10)], Some((0, 10)));
        cache.put(0, 1, 5, &[row(20)], Some((11, 20)));
        assert_eq!(starts(&cache.range(0, 1, 5, (5, 20)).unwrap()), [5, 10, 20]);
        assert!(
            cache.range(0, 1, 5, (5, 21)).is_none(),
            "past what was read"
        );
        assert!(cache.range(0, 1, 20, (5, 10)).is_none(), "another tier");
        assert!(cache.range(0, 2, 5, (5, 10)).is_none(), "another series");
        // Named rows: found, known absent (inside a range read whole), or missing.
        cache.put(0, 1, 5, &[row(40)], None);
        let named = cache.named(0, 1, 5, &[40, 15, 45]);
        assert_eq!(starts(&named.found), [40]);
        assert_eq!(named.missing, [45]);
        assert!(
            cache.range(0, 1, 5, (40, 40)).is_none(),
            "a named row is not a range"
        );
    }

    #[test]
    fn a_read_at_another_version_neither_uses_nor_fills_it() {
        let cache = RowCache::new(BUDGET_BYTES);
        cache.put(0, 1, 5, &[row(0)], Some((0, 10)));
        cache.advance(1, &[]);
        assert!(cache.range(0, 1, 5, (0, 10)).is_none(), "an older snapshot");
        assert_eq!(cache.named(0, 1, 5, &[0]).missing, [0]);
        // Rows the writer did not touch stay right for the new version.
        assert_eq!(starts(&cache.range(1, 1, 5, (0, 10)).unwrap()), [0]);
        cache.put(0, 1, 5, &[row(20)], Some((11, 20)));
        assert!(
            cache.range(1, 1, 5, (0, 20)).is_none(),
            "kept from an old snapshot"
        );
    }

    #[test]
    fn touched_rows_leave_and_their_range_is_no_longer_complete() {
        let cache = RowCache::new(BUDGET_BYTES);
        cache.put(0, 1, 5, &[row(0), row(5), row(10), row(15)], Some((0, 20)));
        cache.put(0, 1, 20, &[row(0)], Some((0, 20)));
        let before = cache.bytes();
        cache.advance(
            1,
            &[Touch {
                series_id: 1,
                width: 5,
                lo: 5,
                hi: 10,
            }],
        );
        // Two rows gone; the range they were in is now two.
        assert_eq!(cache.bytes(), before - 2 * row_bytes(&row(0)) + RANGE_BYTES);
        assert_eq!(starts(&cache.range(1, 1, 5, (0, 4)).unwrap()), [0]);
        assert_eq!(starts(&cache.range(1, 1, 5, (11, 20)).unwrap()), [15]);
        assert!(cache.range(1, 1, 5, (0, 20)).is_none());
        assert_eq!(cache.named(1, 1, 5, &[5, 7]).missing, [5, 7]);
        assert_eq!(starts(&cache.range(1, 1, 20, (0, 20)).unwrap()), [0]);
        // Read again, the range is whole once more.
        cache.put(1, 1, 5, &[row(5)], Some((5, 10)));
        assert_eq!(starts(&cache.range(1, 1, 5, (0, 20)).unwrap()), [0, 5, 15]);
    }

    #[test]
    fn over_budget_the_series_read_least_recently_go() {
        let one = row_bytes(&row(0));
        // A series of two rows in one range of one tier.
        let series = 2 * one + 2 * ENTRY_BYTES + RANGE_BYTES;
        let cache = RowCache::new(2 * series + one);
        cache.put(0, 1, 5, &[row(0), row(5)], Some((0, 5)));
        cache.put(0, 2, 5, &[row(0), row(5)], Some((0, 5)));
        assert!(cache.range(0, 1, 5, (0, 5)).is_some());
        cache.put(0, 3, 5, &[row(0), row(5)], Some((0, 5)));
        assert!(
            cache.range(0, 2, 5, (0, 5)).is_none(),
            "read least recently"
        );
        assert!(cache.range(0, 1, 5, (0, 5)).is_some());
        assert!(cache.range(0, 3, 5, (0, 5)).is_some());
        assert_eq!(cache.bytes(), 2 * series);
        // A series larger than the whole budget is not kept at all.
        let many: Vec<Row> = (0..12).map(|i| row(i * 5)).collect();
        cache.put(0, 4, 5, &many, Some((0, 55)));
        assert!(cache.range(0, 4, 5, (0, 55)).is_none());
        assert!(cache.bytes() <= 2 * series + one);
    }

    /// Reads that found no rows still leave what they learnt (a range known empty), and it
    /// counts against the budget: before, reads of ranges that neither overlap nor touch
    /// grew the list without bound while the cache counted 0 bytes.
    #[test]
    fn ranges_known_empty_count_against_the_budget() {
        let budget = 4_096;
        let cache = RowCache::new(budget);
        cache.put(0, 1, 5, &[], Some((0, 10)));
        assert_eq!(cache.bytes(), 2 * ENTRY_BYTES + RANGE_BYTES);
        cache.put(0, 1, 5, &[], Some((11, 20)));
        assert_eq!(
            cache.bytes(),
            2 * ENTRY_BYTES + RANGE_BYTES,
            "joined: one range"
        );
        for i in 0..10_000 {
            cache.put(0, 1 + i % 3, 5, &[], Some((100 * i, 100 * i + 10)));
            assert!(cache.bytes() <= budget, "{} bytes", cache.bytes());
        }
        // Cutting a range in two by a write costs one more.
        let cache = RowCache::new(budget);
        cache.put(0, 1, 5, &[], Some((0, 100)));
        cache.advance(
            1,
            &[Touch {
                series_id: 1,
                width: 5,
                lo: 40,
                hi: 50,
            }],
        );
        assert_eq!(cache.bytes(), 2 * ENTRY_BYTES + 2 * RANGE_BYTES);
    }

    #[test]
    fn complete_ranges_join_and_split() {
        let mut tier = Tier::default();
        tier.mark_complete(10, 20);
        tier.mark_complete(30, 40);
        tier.mark_complete(21, 29);
        assert_eq!(tier.complete, [(10, 40)]);
        tier.mark_complete(i64::MIN, 0);
        tier.mark_complete(50, i64::MAX);
        tier.forget(15, 35);
        assert_eq!(
            tier.complete,
            [(i64::MIN, 0), (10, 14), (36, 40), (50, i64::MAX)]
        );
        tier.forget(i64::MIN, i64::MAX);
        assert!(tier.complete.is_empty());
        assert!(!tier.is_complete(0, 0));
    }
}

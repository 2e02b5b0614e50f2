//! Multi-resolution summaries ("rollups") of dense series, so a history read at a given width
//! costs about the same whether its range holds a minute or a month of 1 kHz data.
//!
//! # What a rollup row is
//! For each *tier* (a bucket width from [`TIERS`], each dividing the next) a row per bucket
//! holds the first, lowest, highest and last point, and the count, of the **chunks whose
//! first point falls in the bucket**. Buckets partition chunks, not time: a bucket's data
//! spans `[first_ns, last_ns]`, which can run past its nominal end by part of a chunk.
//! `clean` says the row's extremes are exact: none of its chunks overlaps another chunk of
//! the series (an overlap may mean an overwritten timestamp, whose old value must not stand
//! in), and no chunk of it was deleted since.
//!
//! # Invariants the reader relies on
//! 1. Every chunk of a series is counted in exactly one row of each of the series' tiers
//!    (the tiers from its `rollup_width` up): no row, no chunk.
//! 2. Clean rows' spans meet no other chunk of the series, so clean rows are disjoint in time
//!    from each other and from the chunks of every other row.
//!
//! # How a read uses them
//! [`plan`] takes the coarsest tier at most a pixel column wide (the finest tier: at most
//! half a column). A clean row whose span lies inside the range and inside one column, with
//! no uncompacted (log) point in it, stands in for all its points with its four extremes
//! (the M4 answer is the same, see [`crate::decimate::Extremes`]). Any other row is looked
//! into: a coarse row through the child rows it lists, of which only those that cannot stand
//! in are fetched; at the finest tier it becomes a region read from the chunks the row lists
//! ([`ChunkRef`]: each chunk's id, count and extremes), so only the chunks that straddle a
//! column boundary are fetched and decoded. The work is a few rows per column plus, per
//! column boundary, a row or two per tier below the chosen one and one chunk decoded: it
//! follows the width, not the number of points in the range.
//!
//! Listings, not the chunks index or a range of child rows: the index answered the same
//! question, but a descent of it per boundary made a 100 M-point read 1.56x a 10 M one. With
//! chunk listings it was about 1.35x, and reading every child of each straddling row was
//! half the rows a 100 M read touched. With child listings it is about 1.25x, and about 1.0x
//! once the rows are in the row cache, i.e. from the second read of a range on (BENCHMARKS.md).
//! A listing is kept only while exact: the row is clean, and it lists chunks (finest tier)
//! or its children (coarser tiers; [`ChunkRef::id`] is then the child's bucket start) as
//! they are now. Rows without one (older databases, rows made inexact, rows whose children
//! were counted apart) are read through the index or the child tier as before. A read still
//! checks what it fetches against the listing (a chunk's id, start and count; a child row's
//! count and extremes) and a listing's counts against its row's: a wrong listing, which no
//! write should leave, costs a slower read, never a wrong answer where a fetched row shows it.
//!
//! A read takes its rows through [`RowSource`]: from the [`RowCache`] when the rows are
//! there at the version of the read's snapshot, else from SQLite (and then into the cache).
//! Every statement here that changes rows records them with [`row_cache::touched`], so the
//! writer can drop them from the cache when it commits.
//!
//! # When a series gets rollups
//! Only tiers whose buckets hold at least [`MIN_POINTS_PER_BUCKET`] points at the rate the
//! series writes: a sensor sending once a minute would get a row per chunk and gain nothing.
//! A tier is switched on when a compaction sees the rate, and filled from the series'
//! existing chunks then (a one-time scan of that series' chunk index).

use crate::decimate::{column_of, Extremes};
use crate::model::{Point, NANOS_PER_SEC};
use rusqlite::types::Value;
use rusqlite::vtab::array::Array;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::row_cache::{self, RowCache};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollups (
    series_id INTEGER NOT NULL,
    width_ns INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    clean INTEGER NOT NULL,
    -- first, lowest, highest, last point: (ts i64, value f64) each, little-endian, 64 bytes.
    -- One column instead of eight: reads step through thousands of rows, and each column
    -- read costs about as much as the row.
    extremes BLOB NOT NULL,
    -- On the series' finest tier, the row's chunks ([`ChunkRef`]s, packed): a read that looks
    -- into the row at a column boundary finds them here instead of descending the chunks
    -- index for each boundary. On coarser tiers, the row's child rows the same way (the id
    -- is the child's bucket start), so a read looks into the row without reading every
    -- child. NULL when not known exactly (written by version 2, the row is not clean, or
    -- its children were counted apart from it).
    chunks BLOB,
    PRIMARY KEY (series_id, width_ns, start_ns)
) WITHOUT ROWID;
";

/// Upgrades version 2's rows table, which had no chunk listings (its rows keep none).
pub const UPGRADE_FROM_2: &str = "ALTER TABLE rollups ADD COLUMN chunks BLOB";

const S: i64 = NANOS_PER_SEC;

/// Bucket widths, each dividing the next (so a bucket's finer buckets start inside it) and at
/// most 7× the one before (so a column holds few rows of the tier chosen for it).
pub const TIERS: [i64; 10] = [
    S,
    5 * S,
    20 * S,
    60 * S,
    300 * S,
    1_200 * S,
    3_600 * S,
    6 * 3_600 * S,
    86_400 * S,
    7 * 86_400 * S,
];

/// A tier is kept for a series only when its buckets hold about four full chunks or more:
/// below that a row saves less reading than it costs writing.
pub const MIN_POINTS_PER_BUCKET: i128 = 4 * 1_024;

/// Most chunks a row lists: about 50 bytes each (at most ~90), so the row stays within what a
/// 4 KiB B-tree page holds inline (~1 000 bytes; databases created before pages became
/// 16 KiB have such pages). Longer, each row would take an overflow
/// page (4 KiB on disk, one more read), and every compaction adding a small chunk would
/// rewrite a growing list. Rows with more are read through the chunks index.
pub const MAX_LISTED_CHUNKS: usize = 12;

/// Chunks never span more than this (an hour: they never cross an hour boundary), so a
/// bucket's data ends before `start + width + MAX_CHUNK_SPAN`.
const MAX_CHUNK_SPAN: i64 = 3_600 * S;

/// The finest tier worth keeping for a series that wrote `points` over `span_ns`, when a
/// bucket must hold `min_points` (normally [`MIN_POINTS_PER_BUCKET`]; tests lower it).
pub fn finest_worth(points: usize, span_ns: i64, min_points: i128) -> Option<i64> {
    if points < 2 || span_ns <= 0 {
        return None;
    }
    TIERS
        .into_iter()
        .find(|&w| points as i128 * w as i128 >= min_points * span_ns as i128)
}

/// The tiers of a series whose finest kept tier is `finest` (0: none).
pub fn tiers_from(finest: i64) -> impl Iterator<Item = i64> + Clone {
    TIERS
        .into_iter()
        .filter(move |&w| finest > 0 && w >= finest)
}

fn bucket(ts: i64, width: i64) -> i64 {
    ts.div_euclid(width).saturating_mul(width)
}

/// The last nanosecond of the bucket starting at `start` (from its index, so also right for
/// the first bucket, whose start saturates at `i64::MIN`).
fn bucket_end(start: i64, width: i64) -> i64 {
    (start.div_euclid(width) + 1)
        .saturating_mul(width)
        .saturating_sub(1)
}

/// A chunk (or a bucket of them) as the rollups see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: i64,
    pub clean: bool,
    pub extremes: Extremes,
}

impl Summary {
    /// Both together. Exact when both are clean (their points are disjoint in time): first and
    /// last by time, lowest and highest by value with the earlier one winning ties, as M4
    /// picks them.
    fn merge(self, o: Summary) -> Summary {
        let (a, b) = (self.extremes, o.extremes);
        let earlier = |p: Point, q: Point| if q.ts_ns < p.ts_ns { q } else { p };
        let pick = |p: Point, q: Point, better: bool| {
            if better || (q.value == p.value && q.ts_ns < p.ts_ns) {
                q
            } else {
                p
            }
        };
        Summary {
            count: self.count + o.count,
            clean: self.clean && o.clean,
            extremes: Extremes {
                first: earlier(a.first, b.first),
                min: pick(a.min, b.min, b.min.value < a.min.value),
                max: pick(a.max, b.max, b.max.value > a.max.value),
                last: if b.last.ts_ns > a.last.ts_ns {
                    b.last
                } else {
                    a.last
                },
            },
        }
    }
}

/// What [`add`] counts: one chunk, with its row id so the finest rows can list it, or a sum
/// of chunks (`chunk_id` none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub summary: Summary,
    pub chunk_id: Option<i64>,
}

impl From<Summary> for Counted {
    fn from(summary: Summary) -> Self {
        Self {
            summary,
            chunk_id: None,
        }
    }
}

/// A chunk as a finest-tier row lists it: all a read needs to let its extremes stand in for
/// it, or to fetch it by id and decode it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRef {
    pub id: i64,
    pub count: i64,
    pub extremes: Extremes,
}

impl ChunkRef {
    pub fn start(&self) -> i64 {
        self.extremes.first.ts_ns
    }

    pub fn end(&self) -> i64 {
        self.extremes.last.ts_ns
    }
}

/// `refs` (by start) as stored: per chunk its id and first timestamp as deltas from the chunk
/// before, its count, its other three timestamps from its first (zigzag varints), then its
/// four values (8 bytes each). About 50 bytes a chunk, so a row listing a dozen chunks still
/// fits in its B-tree page without overflow pages.
pub fn pack_refs(refs: &[ChunkRef]) -> Vec<u8> {
    use crate::chunk::{put_varint, zigzag};
    let mut out = Vec::with_capacity(refs.len() * 52);
    let (mut id, mut ts) = (0i64, 0i64);
    for r in refs {
        let e = &r.extremes;
        put_varint(&mut out, zigzag(r.id.wrapping_sub(id)));
        put_varint(&mut out, zigzag(r.count));
        put_varint(&mut out, zigzag(e.first.ts_ns.wrapping_sub(ts)));
        for p in [e.min, e.max, e.last] {
            put_varint(&mut out, zigzag(p.ts_ns.wrapping_sub(e.first.ts_ns)));
        }
        for p in [e.first, e.min, e.max, e.last] {
            out.extend_from_slice(&p.value.to_bits().to_le_bytes());
        }
        (id, ts) = (r.id, e.first.ts_ns);
    }
    out
}

/// What [`pack_refs`] wrote; `None` if the bytes are damaged.
pub fn unpack_refs(bytes: &[u8]) -> Option<Vec<ChunkRef>> {
    use crate::chunk::{get_varint, unzigzag};
    let mut refs = Vec::with_capacity(bytes.len() / 48);
    let mut pos = 0;
    let (mut id, mut ts) = (0i64, 0i64);
    let int = |pos: &mut usize| get_varint(bytes, pos).ok().map(unzigzag);
    while pos < bytes.len() {
        id = id.wrapping_add(int(&mut pos)?);
        let count = int(&mut pos)?;
        ts = ts.wrapping_add(int(&mut pos)?);
        let mut stamps = [ts; 4];
        for t in &mut stamps[1..] {
            *t = ts.wrapping_add(int(&mut pos)?);
        }
        let mut points = [None; 4];
        for (p, t) in points.iter_mut().zip(stamps) {
            let v = bytes.get(pos..pos + 8)?;
            pos += 8;
            let value = f64::from_bits(u64::from_le_bytes(v.try_into().ok()?));
            *p = Point::new(t, value).ok();
        }
        refs.push(ChunkRef {
            id,
            count,
            extremes: Extremes {
                first: points[0]?,
                min: points[1]?,
                max: points[2]?,
                last: points[3]?,
            },
        });
    }
    Some(refs)
}

/// The row columns reads take, in [`read_rows`]'s order.
const ROW: &str = "start_ns, count, clean, extremes, chunks";

/// The rows of a series' tier (`?1`, `?2`) with bucket starts in `?3..=?4`.
fn rows_in_range() -> String {
    format!(
        "SELECT {ROW} FROM rollups
         WHERE series_id = ?1 AND width_ns = ?2 AND start_ns >= ?3 AND start_ns <= ?4"
    )
}

/// The rows of a series' tier (`?1`, `?2`) starting in `b..=b + ?4` for each `b` in the
/// array `?3`, in one statement (CROSS JOIN keeps the list outside, so each bucket is one
/// index seek; left to itself the planner scanned the whole tier per bucket). `?4 = 0`
/// names rows by their starts.
const ROWS_FROM_STARTS: &str = "SELECT r.start_ns, r.count, r.clean, r.extremes, r.chunks
     FROM rarray(?3) AS b
     CROSS JOIN rollups AS r ON r.series_id = ?1 AND r.width_ns = ?2
                      AND r.start_ns >= b.value AND r.start_ns <= b.value + ?4";

fn pack(e: &Extremes) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, p) in [e.first, e.min, e.max, e.last].iter().enumerate() {
        out[i * 16..i * 16 + 8].copy_from_slice(&p.ts_ns.to_le_bytes());
        out[i * 16 + 8..i * 16 + 16].copy_from_slice(&p.value.to_bits().to_le_bytes());
    }
    out
}

pub fn unpack(bytes: &[u8]) -> Option<Extremes> {
    let point = |i: usize| -> Option<Point> {
        let ts = i64::from_le_bytes(bytes.get(i * 16..i * 16 + 8)?.try_into().ok()?);
        let bits = u64::from_le_bytes(bytes.get(i * 16 + 8..i * 16 + 16)?.try_into().ok()?);
        Point::new(ts, f64::from_bits(bits)).ok()
    };
    (bytes.len() == 64).then_some(())?;
    Some(Extremes {
        first: point(0)?,
        min: point(1)?,
        max: point(2)?,
        last: point(3)?,
    })
}

/// The row of tier `width` for the bucket starting at `start`, if any, with its chunk
/// listing if it has one.
pub fn get_row(
    conn: &Connection,
    series_id: i64,
    width: i64,
    start: i64,
) -> rusqlite::Result<Option<(Summary, Option<Vec<ChunkRef>>)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW} FROM rollups WHERE series_id = ?1 AND width_ns = ?2 AND start_ns = ?3"
    ))?;
    Ok(read_rows(&mut stmt, params![series_id, width, start])?
        .pop()
        .map(|r| (r.summary, r.chunks.as_deref().and_then(unpack_refs))))
}

/// Writes (or replaces) the row of tier `width` for the bucket starting at `start`, listing
/// `chunks` (only for a clean row: its chunks on the series' finest tier, its child rows
/// above).
pub fn put_row(
    conn: &Connection,
    series_id: i64,
    (width, start): (i64, i64),
    s: &Summary,
    chunks: Option<&[ChunkRef]>,
) -> rusqlite::Result<()> {
    row_cache::touched(series_id, width, start, start);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO rollups
             (series_id, width_ns, start_ns, count, clean, extremes, chunks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        series_id,
        width,
        start,
        s.count,
        s.clean,
        &pack(&s.extremes)[..],
        chunks.map(pack_refs),
    ])?;
    Ok(())
}

/// The tier whose rows are the children of tier `width`'s, for a series whose finest tier is
/// `finest`.
pub fn child_tier(width: i64, finest: i64) -> Option<i64> {
    tiers_from(finest).take_while(|&w| w < width).last()
}

/// Counts `chunks` into the rows of tiers `widths` (combined per bucket first, so a
/// compaction writes each touched row once). Rows of tier `listing` (the series' finest)
/// also list their chunks while that list is known whole and the row is clean; rows of
/// coarser tiers list their child rows the same way, when this call also counted the child
/// tier (so it knows the children's new totals) and the row's listing was whole before.
pub fn add(
    conn: &Connection,
    series_id: i64,
    widths: impl Iterator<Item = i64>,
    listing: i64,
    chunks: &[Counted],
) -> rusqlite::Result<()> {
    add_above(conn, series_id, widths, listing, chunks, None)
}

/// [`add`], with `below`: the tier under the first of `widths` and its rows' totals by start,
/// when the caller knows them (so the first tier's rows can list those children).
fn add_above(
    conn: &Connection,
    series_id: i64,
    widths: impl Iterator<Item = i64>,
    listing: i64,
    chunks: &[Counted],
    mut below: Option<(i64, BTreeMap<i64, Summary>)>,
) -> rusqlite::Result<()> {
    for width in widths {
        let children = below
            .take()
            .filter(|(w, _)| Some(*w) == child_tier(width, listing))
            .map(|(_, totals)| totals);
        let mut totals = BTreeMap::new();
        let mut buckets: BTreeMap<i64, (Summary, Option<Vec<ChunkRef>>)> = BTreeMap::new();
        for c in chunks {
            let summary = c.summary;
            let listed = c.chunk_id.map(|id| ChunkRef {
                id,
                count: summary.count,
                extremes: summary.extremes,
            });
            buckets
                .entry(bucket(summary.extremes.first.ts_ns, width))
                .and_modify(|(s, refs)| {
                    *s = s.merge(summary);
                    match (refs.as_mut(), listed) {
                        (Some(refs), Some(r)) => refs.push(r),
                        _ => *refs = None,
                    }
                })
                .or_insert((summary, listed.map(|r| vec![r])));
        }
        for (start, (s, refs)) in buckets {
            let stored = get_row(conn, series_id, width, start)?;
            let total = stored.as_ref().map_or(s, |(old, _)| old.merge(s));
            // What the row lists after this: the old listing (none if the row is new) with
            // the new entries; unknown if the old one was.
            let old_refs = match stored {
                Some((_, old)) => old,
                None => Some(Vec::new()),
            };
            let refs = if width == listing {
                old_refs.zip(refs).map(|(mut old, new)| {
                    old.extend(new);
                    old
                })
            } else {
                old_refs
                    .zip(children.as_ref())
                    .map(|(old, children)| relist(old, children, start, width))
            };
            let refs = refs
                .filter(|refs| total.clean && refs.len() <= MAX_LISTED_CHUNKS)
                .map(|mut refs| {
                    refs.sort_by_key(ChunkRef::start);
                    refs
                });
            put_row(conn, series_id, (width, start), &total, refs.as_deref())?;
            totals.insert(start, total);
        }
        below = Some((width, totals));
    }
    Ok(())
}

/// A coarse row's listing of its children (`id` is a child's bucket start) with the
/// children counted now, from `children` (the child tier's touched rows), put in.
fn relist(
    mut refs: Vec<ChunkRef>,
    children: &BTreeMap<i64, Summary>,
    start: i64,
    width: i64,
) -> Vec<ChunkRef> {
    for (&child, s) in children.range(start..=bucket_end(start, width)) {
        let entry = ChunkRef {
            id: child,
            count: s.count,
            extremes: s.extremes,
        };
        match refs.iter_mut().find(|r| r.id == child) {
            Some(r) => *r = entry,
            None => refs.push(entry),
        }
    }
    refs
}

/// Drops the listings of the tier `width` once a finer tier is the finest: they list chunks,
/// and rows above the finest tier are read as listing their child rows. (They do not get one
/// back: a row that lost its listing keeps none until it is counted anew.)
pub fn unlist_tier(conn: &Connection, series_id: i64, width: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE rollups SET chunks = NULL
         WHERE series_id = ?1 AND width_ns = ?2 AND chunks IS NOT NULL",
    )?
    .execute(params![series_id, width])?;
    row_cache::touched(series_id, width, i64::MIN, i64::MAX);
    Ok(())
}

/// Marks the rows holding chunks that start at `starts` as no longer exact.
pub fn mark_dirty(
    conn: &Connection,
    series_id: i64,
    widths: impl Iterator<Item = i64>,
    starts: &[i64],
) -> rusqlite::Result<()> {
    let mut update = conn.prepare_cached(
        "UPDATE rollups SET clean = 0, chunks = NULL
         WHERE series_id = ?1 AND width_ns = ?2 AND start_ns = ?3",
    )?;
    for width in widths {
        for &s in starts {
            let start = bucket(s, width);
            update.execute(params![series_id, width, start])?;
            row_cache::touched(series_id, width, start, start);
        }
    }
    Ok(())
}

/// After the series' chunks that ended before `cut` were deleted (`dropped`: each one's
/// start and count): each row loses the counts of its deleted chunks, so a row's count stays
/// what its chunks hold (the series list adds up the coarsest rows); rows left empty go,
/// and rows that may have lost some are no longer exact.
pub fn forget_before(
    conn: &Connection,
    series_id: i64,
    widths: impl Iterator<Item = i64>,
    cut: i64,
    dropped: &[(i64, i64)],
) -> rusqlite::Result<()> {
    let mut subtract = conn.prepare_cached(
        "UPDATE rollups SET count = count - ?4
         WHERE series_id = ?1 AND width_ns = ?2 AND start_ns = ?3 RETURNING count",
    )?;
    let mut delete_one = conn.prepare_cached(
        "DELETE FROM rollups WHERE series_id = ?1 AND width_ns = ?2 AND start_ns = ?3",
    )?;
    let mut delete = conn.prepare_cached(
        "DELETE FROM rollups WHERE series_id = ?1 AND width_ns = ?2 AND start_ns <= ?3",
    )?;
    let mut dirty = conn.prepare_cached(
        "UPDATE rollups SET clean = 0, chunks = NULL
         WHERE series_id = ?1 AND width_ns = ?2 AND start_ns < ?3 AND clean",
    )?;
    for width in widths {
        // A chunk is counted in the row of the bucket it starts in.
        let mut lost: BTreeMap<i64, i64> = BTreeMap::new();
        for &(start, count) in dropped {
            *lost.entry(bucket(start, width)).or_default() += count;
        }
        for (start, count) in lost {
            let left: Option<i64> = subtract
                .query_row(params![series_id, width, start, count], |r| r.get(0))
                .optional()?;
            if left.is_some_and(|left| left <= 0) {
                delete_one.execute(params![series_id, width, start])?;
            }
        }
        // A chunk starting in the bucket ends before start + width + MAX_CHUNK_SPAN.
        let all_gone = cut.saturating_sub(width).saturating_sub(MAX_CHUNK_SPAN);
        delete.execute(params![series_id, width, all_gone])?;
        dirty.execute(params![series_id, width, cut])?;
        row_cache::touched(series_id, width, i64::MIN, cut);
    }
    Ok(())
}

/// Deletes the rows of tiers `widths` (at most an hour wide) whose buckets start in
/// `[from, to)`: an hour about to be rewritten and counted again.
pub fn forget_span(
    conn: &Connection,
    series_id: i64,
    widths: impl Iterator<Item = i64>,
    (from, to): (i64, i64),
) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM rollups
         WHERE series_id = ?1 AND width_ns = ?2 AND start_ns >= ?3 AND start_ns < ?4",
    )?;
    for width in widths {
        delete.execute(params![series_id, width, from, to])?;
        row_cache::touched(series_id, width, from, to.saturating_sub(1));
    }
    Ok(())
}

/// Fills tiers `widths` of a series from all its chunks (switching them on). Chunks that
/// overlap another chunk make their rows not exact.
pub fn backfill(
    conn: &Connection,
    series_id: i64,
    widths: impl Iterator<Item = i64>,
    listing: i64,
) -> rusqlite::Result<()> {
    let chunks = chunk_summaries(conn, series_id, (i64::MIN, i64::MAX))?;
    add(conn, series_id, widths, listing, &chunks)
}

/// The chunks of a series starting in `[lo, hi]`, clean unless they overlap one another
/// (callers pick bounds no chunk outside can overlap into).
fn chunk_summaries(
    conn: &Connection,
    series_id: i64,
    (lo, hi): (i64, i64),
) -> rusqlite::Result<Vec<Counted>> {
    let mut stmt = conn.prepare_cached(
        "SELECT start_ns, end_ns, count, first_v, min_ns, min, max_ns, max, last_v, id
         FROM chunks WHERE series_id = ?1 AND start_ns >= ?2 AND start_ns <= ?3",
    )?;
    let mut chunks: Vec<Counted> = stmt
        .query_map(params![series_id, lo, hi], |r| {
            let point = |ts, v| row_point(r, ts, v);
            Ok(Counted {
                summary: Summary {
                    count: r.get(2)?,
                    clean: true,
                    extremes: Extremes {
                        first: point(0, 3)?,
                        min: point(4, 5)?,
                        max: point(6, 7)?,
                        last: point(1, 8)?,
                    },
                },
                chunk_id: Some(r.get(9)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let spans: Vec<(i64, i64)> = chunks
        .iter()
        .map(|c| {
            (
                c.summary.extremes.first.ts_ns,
                c.summary.extremes.last.ts_ns,
            )
        })
        .collect();
    for (c, alone) in chunks.iter_mut().zip(alone(&spans)) {
        c.summary.clean = alone;
    }
    Ok(chunks)
}

/// For each closed span `(start, end)`, whether it meets no other: O(n log n), as spans
/// sorted by start overlap exactly when one starts before the furthest end seen so far.
pub fn alone(spans: &[(i64, i64)]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| spans[i]);
    let mut alone = vec![true; spans.len()];
    let mut furthest: Option<(i64, usize)> = None;
    for &i in &order {
        let (start, end) = spans[i];
        if let Some((f, j)) = furthest {
            if start <= f {
                alone[i] = false;
                alone[j] = false;
            }
        }
        if furthest.is_none_or(|(f, _)| end > f) {
            furthest = Some((end, i));
        }
    }
    alone
}

/// After the hour starting at `hour` was merged (its rows up to an hour wide rebuilt): the
/// wider rows holding it are counted again, from the rows one tier finer, or from the chunks
/// for the finest tier, so a row made inexact by overlaps the merge resolved is exact again.
/// Buckets of an hour or more never share a chunk (chunks never cross an hour), so the
/// chunks starting in a bucket are all that can be in it.
pub fn recount_above_hour(
    conn: &Connection,
    series_id: i64,
    finest: i64,
    hour: i64,
) -> rusqlite::Result<()> {
    let tiers: Vec<i64> = tiers_from(finest).collect();
    let mut finer_rows = conn.prepare_cached(&rows_in_range())?;
    let mut delete = conn.prepare_cached(
        "DELETE FROM rollups WHERE series_id = ?1 AND width_ns = ?2 AND start_ns = ?3",
    )?;
    for (i, &width) in tiers.iter().enumerate() {
        if width <= MAX_CHUNK_SPAN {
            continue;
        }
        let start = bucket(hour, width);
        let end = bucket_end(start, width);
        // All in this one bucket: counted together, they make its row anew, listing its
        // chunks (finest tier) or the child rows it was counted from.
        let (parts, below): (Vec<Counted>, _) = match i.checked_sub(1).map(|f| tiers[f]) {
            Some(finer) if finer >= MAX_CHUNK_SPAN => {
                let rows = read_rows(&mut finer_rows, params![series_id, finer, start, end])?;
                let children: BTreeMap<i64, Summary> =
                    rows.iter().map(|r| (r.start, r.summary)).collect();
                let parts = rows.into_iter().map(|r| r.summary.into()).collect();
                (parts, Some((finer, children)))
            }
            _ => (chunk_summaries(conn, series_id, (start, end))?, None),
        };
        delete.execute(params![series_id, width, start])?;
        row_cache::touched(series_id, width, start, start);
        add_above(
            conn,
            series_id,
            std::iter::once(width),
            finest,
            &parts,
            below,
        )?;
    }
    Ok(())
}

/// The point in columns `ts` (nanoseconds) and `v` (value) of a row.
pub fn row_point(r: &rusqlite::Row<'_>, ts: usize, v: usize) -> rusqlite::Result<Point> {
    Ok(Point {
        ts_ns: r.get(ts)?,
        value: r.get(v)?,
    })
}

/// The finest tier kept for a series (0: none), as stored.
pub fn finest_of(conn: &Connection, series_id: i64) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT rollup_width FROM series WHERE id = ?1",
            [series_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// A piece of an M4 read, in time order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// A clean row inside one column: its extremes stand for its `count` points.
    Stand(Summary),
    /// A span to read from chunks and log; with the only chunks that reach into it, when a
    /// clean row says which they are (the read then skips an index scan).
    Read(i64, i64, Option<Chunks>),
}

/// The only chunks reaching into a span, as a clean row of the finest tier knows them.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunks {
    /// Those starting within these bounds: the row's bucket (a row without a listing).
    StartingIn(i64, i64),
    /// These, by start: the row's listing.
    Listed(Vec<ChunkRef>),
}

impl Chunks {
    /// Bounds of the chunks' starts (none for an empty listing, which no row has).
    pub fn starts(&self) -> Option<(i64, i64)> {
        match self {
            Chunks::StartingIn(a, b) => Some((*a, *b)),
            Chunks::Listed(refs) => Some((refs.first()?.start(), refs.last()?.start())),
        }
    }
}

impl Piece {
    fn start(&self) -> i64 {
        match self {
            Piece::Stand(s) => s.extremes.first.ts_ns,
            Piece::Read(a, ..) => *a,
        }
    }
}

/// How an M4 read of `range` at `columns` (from, to, width) should go for a series whose
/// finest tier is `finest`, with the series' uncompacted points at the sorted `log_ts`:
/// pieces covering the range in time order, or `None` when no tier is as narrow as a column
/// (the chunks alone are then the finest summary).
pub fn plan(
    src: &RowSource<'_>,
    series_id: i64,
    finest: i64,
    range: (i64, i64),
    columns: (i64, i64, usize),
    log_ts: &[i64],
) -> rusqlite::Result<Option<Vec<Piece>>> {
    let planned = plan_with(src, series_id, finest, range, columns, log_ts, true)?;
    if let Some(Err(wrong)) = planned {
        tracing::error!(series_id, "{wrong}; reading those rows instead");
        // From SQLite alone: the listing that was wrong may have come from the cache.
        return Ok(plan_with(
            &RowSource::uncached(src.conn),
            series_id,
            finest,
            range,
            columns,
            log_ts,
            false,
        )?
        .and_then(Result::ok));
    }
    Ok(planned.and_then(Result::ok))
}

/// A coarse row's listing that disagrees with a child row it names.
#[derive(Debug)]
struct WrongListing(i64);

impl std::fmt::Display for WrongListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a rollup row lists its child at {} wrongly", self.0)
    }
}

/// A clean row's listing (chunks or children) when it is whole: not empty, and its counts
/// add up to the row's. Any other is not trusted.
fn whole_listing(s: &Summary, listing: Option<&[u8]>) -> Option<Vec<ChunkRef>> {
    listing
        .filter(|_| s.clean)
        .and_then(unpack_refs)
        .filter(|refs| !refs.is_empty() && refs.iter().map(|r| r.count).sum::<i64>() == s.count)
}

/// The children a clean coarse row of tier `width` lists, when the listing is whole: their
/// counts add up to the row's, and each names a bucket of the child tier inside the row's.
fn listed_children(
    s: &Summary,
    listing: Option<&[u8]>,
    (start, width): (i64, i64),
    child_width: i64,
) -> Option<Vec<ChunkRef>> {
    let refs = whole_listing(s, listing)?;
    let inside = refs.iter().all(|r| {
        bucket(r.id, child_width) == r.id
            && bucket(r.start(), child_width) == r.id
            && bucket(r.id, width) == start
    });
    inside.then_some(refs)
}

/// [`plan`], taking coarse rows' child listings on trust or not; `Some(Err)` when a child
/// fetched did not match its listing.
fn plan_with(
    src: &RowSource<'_>,
    series_id: i64,
    finest: i64,
    (from, to): (i64, i64),
    (f, t, w): (i64, i64, usize),
    log_ts: &[i64],
    use_child_listings: bool,
) -> rusqlite::Result<Option<Result<Vec<Piece>, WrongListing>>> {
    let column_ns = ((t as i128 - f as i128) / w.max(1) as i128).min(i64::MAX as i128) as i64;
    // Rows of the finest tier about half a column wide or less: a row spans its bucket plus
    // part of a chunk, and only rows inside one column stand in; wider ones mostly straddle
    // and are looked into. Coarser rows up to a column wide: looking into one costs a seek
    // for the child that straddles, as the row lists its children.
    let tiers: Vec<i64> = tiers_from(finest)
        .filter(|&x| x <= column_ns / 2 || (x > finest && x <= column_ns))
        .collect();
    if tiers.is_empty() {
        return Ok(None);
    }
    // Rows of the finer tier inside each of the given buckets. Only for rows without a
    // listing, so not cached.
    let mut inside = src.conn.prepare_cached(ROWS_FROM_STARTS)?;
    let outside = |s: &Summary| s.extremes.last.ts_ns < from || s.extremes.first.ts_ns > to;
    let stands = |s: &Summary| {
        let (first, last) = (s.extremes.first.ts_ns, s.extremes.last.ts_ns);
        let logged = {
            let i = log_ts.partition_point(|&x| x < first);
            log_ts.get(i).is_some_and(|&x| x <= last)
        };
        s.clean
            && !logged
            && first >= from
            && last <= to
            && column_of(first, f, t, w) == column_of(last, f, t, w)
    };
    let mut pieces = Vec::new();
    let top = tiers.len() - 1;
    let mut level = src.range(series_id, tiers[top], (from, to))?;
    for k in (0..=top).rev() {
        let mut look_into: Vec<i64> = Vec::new();
        let mut fetch: Vec<ChunkRef> = Vec::new();
        for Row {
            start,
            summary: s,
            chunks,
        } in level
        {
            let (first, last) = (s.extremes.first.ts_ns, s.extremes.last.ts_ns);
            if outside(&s) {
                continue; // Nothing of it in the range.
            }
            if stands(&s) {
                pieces.push(Piece::Stand(s));
            } else if k > 0 {
                let children = use_child_listings
                    .then(|| {
                        listed_children(&s, chunks.as_deref(), (start, tiers[k]), tiers[k - 1])
                    })
                    .flatten();
                let Some(children) = children else {
                    look_into.push(start);
                    continue;
                };
                for c in children {
                    let child = Summary {
                        count: c.count,
                        clean: true,
                        extremes: c.extremes,
                    };
                    if outside(&child) {
                        continue;
                    }
                    if stands(&child) {
                        pieces.push(Piece::Stand(child));
                    } else {
                        fetch.push(c);
                    }
                }
            } else {
                // A clean row's chunks are the only ones in its span: read just them.
                let chunks = s.clean.then(|| match whole_listing(&s, chunks.as_deref()) {
                    Some(refs) => Chunks::Listed(refs),
                    None => Chunks::StartingIn(start, bucket_end(start, tiers[0])),
                });
                pieces.push(Piece::Read(first.max(from), last.min(to), chunks));
            }
        }
        if k == 0 || (look_into.is_empty() && fetch.is_empty()) {
            break;
        }
        level = Vec::new();
        if !look_into.is_empty() {
            look_into.sort_unstable();
            let parents: std::collections::HashSet<i64> = look_into.iter().copied().collect();
            let buckets: Array = Rc::new(look_into.into_iter().map(Value::from).collect());
            level = read_rows(
                &mut inside,
                params![series_id, tiers[k - 1], buckets, tiers[k] - 1],
            )?;
            // Only rows whose own parent was asked for: `start + width - 1` overshoots the
            // first bucket, whose start saturates at i64::MIN.
            level.retain(|r| parents.contains(&bucket(r.start, tiers[k])));
        }
        if !fetch.is_empty() {
            fetch.sort_unstable_by_key(|c| c.id);
            let starts: Vec<i64> = fetch.iter().map(|c| c.id).collect();
            let mut got = src.named(series_id, tiers[k - 1], &starts)?;
            got.sort_unstable_by_key(|r| r.start);
            // Each must be what its parent said: the parent's listing stood in for its
            // siblings, so a listing gone wrong must not pass.
            if got.len() != fetch.len() {
                let missing = fetch.iter().find(|c| !got.iter().any(|r| r.start == c.id));
                return Ok(Some(Err(WrongListing(missing.map_or(0, |c| c.id)))));
            }
            for (r, c) in got.iter().zip(&fetch) {
                let same = r.start == c.id
                    && r.summary.clean
                    && r.summary.count == c.count
                    && r.summary.extremes == c.extremes;
                if !same {
                    return Ok(Some(Err(WrongListing(c.id))));
                }
            }
            level.extend(got);
        }
    }
    // Chunks counted in a top bucket that starts before `from` can still reach into the
    // range: read whatever comes before the first stand-in.
    let head_end = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Stand(s) => Some(s.extremes.first.ts_ns - 1),
            Piece::Read(..) => None,
        })
        .min()
        .unwrap_or(to);
    if head_end >= from {
        pieces.push(Piece::Read(from, head_end, None));
    }
    // Log points are never inside a stand-in (that row would not stand in): read them where
    // they are.
    let lo = log_ts.partition_point(|&x| x < from);
    let hi = log_ts.partition_point(|&x| x <= to).max(lo);
    pieces.extend(log_ts[lo..hi].iter().map(|&x| Piece::Read(x, x, None)));
    Ok(Some(Ok(merge(pieces))))
}

/// Where a read takes rollup rows from: SQLite (`conn`, in the read's transaction), through
/// the cache when given one with the version of the read's snapshot.
pub struct RowSource<'a> {
    pub conn: &'a Connection,
    pub cache: Option<(&'a RowCache, i64)>,
}

impl<'a> RowSource<'a> {
    /// Rows from SQLite alone.
    pub fn uncached(conn: &'a Connection) -> Self {
        Self { conn, cache: None }
    }

    /// The rows of tier `width` with bucket starts in `lo..=hi`, by start.
    fn range(
        &self,
        series_id: i64,
        width: i64,
        (lo, hi): (i64, i64),
    ) -> rusqlite::Result<Vec<Row>> {
        if let Some(rows) = self
            .cache
            .and_then(|(cache, v)| cache.range(v, series_id, width, (lo, hi)))
        {
            super::read_work::count_cached(rows.len());
            return Ok(rows);
        }
        let mut stmt = self.conn.prepare_cached(&rows_in_range())?;
        let rows = read_rows(&mut stmt, params![series_id, width, lo, hi])?;
        if let Some((cache, v)) = self.cache {
            cache.put(v, series_id, width, &rows, Some((lo, hi)));
        }
        Ok(rows)
    }

    /// The rows of tier `width` starting at `starts` (those that exist), in no set order:
    /// one seek each for those the cache does not hold.
    fn named(&self, series_id: i64, width: i64, starts: &[i64]) -> rusqlite::Result<Vec<Row>> {
        let row_cache::Named { mut found, missing } = match self.cache {
            Some((cache, v)) => cache.named(v, series_id, width, starts),
            None => row_cache::Named {
                found: Vec::new(),
                missing: starts.to_vec(),
            },
        };
        super::read_work::count_cached(found.len());
        if missing.is_empty() {
            return Ok(found);
        }
        let mut stmt = self.conn.prepare_cached(ROWS_FROM_STARTS)?;
        let starts: Array = Rc::new(missing.into_iter().map(Value::from).collect());
        let got = read_rows(&mut stmt, params![series_id, width, starts, 0])?;
        if let Some((cache, v)) = self.cache {
            cache.put(v, series_id, width, &got, None);
        }
        found.extend(got);
        Ok(found)
    }
}

/// A row as read: its bucket's start, its summary, and its chunk listing as stored (unpacked
/// only where a read looks into the row; shared, as [`RowCache`] hands out copies).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub start: i64,
    pub summary: Summary,
    pub chunks: Option<Arc<[u8]>>,
}

fn read_rows(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Row>> {
    stmt.query_map(params, |r| {
        super::read_work::count(1, 0, 0);
        let bytes = r.get_ref(3)?.as_blob()?;
        let extremes = unpack(bytes).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Blob,
                "a damaged rollup row".into(),
            )
        })?;
        Ok(Row {
            start: r.get(0)?,
            summary: Summary {
                count: r.get(1)?,
                clean: r.get(2)?,
                extremes,
            },
            chunks: r.get_ref(4)?.as_blob_or_null()?.map(Arc::from),
        })
    })?
    .collect()
}

/// Sorts pieces by start and joins what must be read together: reads in a row (nothing
/// stands between them) become one, and a stand-in that meets a read is read with it (only
/// possible if a row was marked clean wrongly; reading is always right).
fn merge(mut pieces: Vec<Piece>) -> Vec<Piece> {
    pieces.sort_by_key(Piece::start);
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match piece {
            Piece::Read(mut a, mut b, mut starts) => {
                while let Some(last) = out.last() {
                    let (x, y) = match *last {
                        Piece::Read(x, y, _) => (x, y),
                        Piece::Stand(s) if s.extremes.last.ts_ns >= a => {
                            (s.extremes.first.ts_ns, s.extremes.last.ts_ns)
                        }
                        Piece::Stand(_) => break,
                    };
                    a = a.min(x);
                    b = b.max(y);
                    starts = None;
                    out.pop();
                }
                out.push(Piece::Read(a, b, starts));
            }
            Piece::Stand(s) => match out.last_mut() {
                Some(Piece::Read(_, b, starts)) if *b >= s.extremes.first.ts_ns => {
                    *b = (*b).max(s.extremes.last.ts_ns);
                    *starts = None;
                }
                _ => out.push(piece),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::any;

    fn stand(first: i64, last: i64) -> Piece {
        let p = |t| Point::new(t, 0.0).unwrap();
        Piece::Stand(Summary {
            count: 2,
            clean: true,
            extremes: Extremes {
                first: p(first),
                min: p(first),
                max: p(first),
                last: p(last),
            },
        })
    }

    #[test]
    fn reads_in_a_row_join_and_absorb_what_they_meet() {
        let pieces = vec![
            Piece::Read(50, 55, None),
            stand(0, 9),
            Piece::Read(12, 12, None),
            stand(20, 29),
            Piece::Read(30, 31, None),
            Piece::Read(28, 28, None),
            stand(40, 45),
        ];
        assert_eq!(
            merge(pieces),
            vec![
                stand(0, 9),
                // 20..29 meets 28, so it is read; nothing then stands between 12 and it.
                Piece::Read(12, 31, None),
                stand(40, 45),
                Piece::Read(50, 55, None)
            ]
        );
    }

    proptest::proptest! {
        /// Listings come back as written, whatever the ids, counts, times and values.
        #[test]
        fn chunk_listings_round_trip(
            refs in proptest::collection::vec(
                (any::<i64>(), 0i64..1 << 40, any::<[i64; 4]>(), any::<[i32; 4]>()),
                0..20,
            )
        ) {
            let refs: Vec<ChunkRef> = refs
                .into_iter()
                .map(|(id, count, ts, v)| {
                    let p = |i: usize| Point::new(ts[i], f64::from(v[i]) / 7.0).unwrap();
                    ChunkRef {
                        id,
                        count,
                        extremes: Extremes { first: p(0), min: p(1), max: p(2), last: p(3) },
                    }
                })
                .collect();
            let bytes = pack_refs(&refs);
            proptest::prop_assert_eq!(unpack_refs(&bytes), Some(refs));
            // Cut short, the bytes are refused rather than misread.
            if !bytes.is_empty() {
                proptest::prop_assert_eq!(unpack_refs(&bytes[..bytes.len() - 1]), None);
            }
        }
    }

    /// A row lists its chunks up to [`MAX_LISTED_CHUNKS`], added at once or one by one; one
    /// more and it lists none (it is then read through the chunks index).
    #[test]
    fn listings_stop_at_the_cap() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let chunk = |i: i64| {
            let p = |t: i64| Point::new(t, i as f64).unwrap();
            Counted {
                summary: Summary {
                    count: 2,
                    clean: true,
                    extremes: Extremes {
                        first: p(i * 10),
                        min: p(i * 10),
                        max: p(i * 10 + 1),
                        last: p(i * 10 + 1),
                    },
                },
                chunk_id: Some(100 + i),
            }
        };
        let listed = |series: i64| {
            get_row(&conn, series, S, 0)
                .unwrap()
                .and_then(|(_, refs)| refs)
                .map(|refs| refs.len())
        };
        let cap = MAX_LISTED_CHUNKS as i64;
        let all: Vec<Counted> = (0..cap).map(chunk).collect();
        add(&conn, 1, std::iter::once(S), S, &all).unwrap();
        assert_eq!(listed(1), Some(MAX_LISTED_CHUNKS));
        for c in &all {
            add(&conn, 2, std::iter::once(S), S, &[*c]).unwrap();
        }
        assert_eq!(listed(2), Some(MAX_LISTED_CHUNKS));
        for series in [1, 2] {
            add(&conn, series, std::iter::once(S), S, &[chunk(cap)]).unwrap();
            assert_eq!(listed(series), None);
            let (row, _) = get_row(&conn, series, S, 0).unwrap().unwrap();
            assert_eq!(row.count, 2 * (cap + 1));
        }
        // Not the listing tier: no listing at all.
        add(&conn, 3, std::iter::once(S), 5 * S, &all).unwrap();
        assert_eq!(listed(3), None);
    }

    #[test]
    fn tiers_nest_and_follow_the_rate() {
        for pair in TIERS.windows(2) {
            assert_eq!(pair[1] % pair[0], 0, "{pair:?}");
            assert!(pair[1] / pair[0] <= 7, "{pair:?}");
        }
        // 1 kHz: 5 s buckets hold 5 000 points; 1 Hz: 6 h hold 21 600; once a minute: none.
        let m = MIN_POINTS_PER_BUCKET;
        assert_eq!(finest_worth(1_000_000, 1_000 * S, m), Some(5 * S));
        assert_eq!(finest_worth(3_600, 3_600 * S, m), Some(6 * 3_600 * S));
        assert_eq!(finest_worth(60, 3_600 * 60 * S, m), None);
        assert_eq!(finest_worth(1, S, m), None);
    }
}

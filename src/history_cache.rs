//! What a chart holds of history from the server, when it must ask for more, and how history
//! and the live feed join into one line.
//!
//! The live feed covers the recent past (a window or two back from now) at full resolution;
//! everything older, and detail finer than the feed's snapshot, comes from `history` queries
//! decimated to the chart's pixel columns. The rule that joins them is simple so no point is
//! drawn twice or missed: **history up to its end, live after it**. A fetch is needed when the
//! part of the view the feed cannot draw is not inside what is held, or is held too coarsely.

use crate::model::{Point, SeriesKey};
use std::collections::{BTreeMap, VecDeque};

/// Held history may be this much coarser than the view's columns before it is fetched again
/// (1.5: a small zoom-in does not refetch; a real one does).
pub const COARSEST_OK: f64 = 1.5;
/// A fetch reaches this share of the span past each side of the view, so small pans are drawn
/// from what is held.
pub const FETCH_MARGIN: f64 = 0.5;

/// The widest answer the server gives ([`crate::history::MAX_QUERY_WIDTH`]).
pub const MAX_FETCH_WIDTH: usize = crate::history::MAX_QUERY_WIDTH;

/// History held for one chart: every series' points in `[from_ns, to_ns]` at `column_ns`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryCache {
    pub from_ns: i64,
    pub to_ns: i64,
    pub column_ns: i64,
    pub series: BTreeMap<SeriesKey, Vec<Point>>,
}

/// One request's worth: the range and the columns to decimate it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPlan {
    pub from_ns: i64,
    pub to_ns: i64,
    pub width: usize,
}

/// What the live feed can draw at a given column width: from which time on it holds
/// everything (`full_from`), and from which time on it holds raw points (`raw_from`), which
/// matters when the view is finer than the feed's snapshot columns (`column_ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCoverage {
    pub full_from: i64,
    pub raw_from: i64,
    pub column_ns: i64,
}

impl LiveCoverage {
    /// The earliest time the feed can draw at `column_ns` per pixel column.
    pub fn from_at(&self, column_ns: i64) -> i64 {
        if column_ns >= self.column_ns {
            self.full_from
        } else {
            self.raw_from.max(self.full_from)
        }
    }
}

impl HistoryCache {
    /// The fetch a view of `[from, to]` at `width` columns needs, or `None` when what is held
    /// (with the live feed) draws it. `server_now_ns` caps the fetch: the future is empty.
    pub fn plan(
        &self,
        from_ns: i64,
        to_ns: i64,
        width: usize,
        live: Option<LiveCoverage>,
        server_now_ns: i64,
    ) -> Option<FetchPlan> {
        // Nothing is fetched from before 1970: compare what is held with what can be, or a
        // view reaching back past it would plan the same fetch after every answer.
        let from_ns = from_ns.max(0);
        if to_ns <= from_ns {
            return None;
        }
        let width = width.max(1);
        let span = to_ns.saturating_sub(from_ns).max(1);
        // No finer than the server answers over this span (a canvas wider than its limit).
        let column_ns = (span / width as i64)
            .max(span / MAX_FETCH_WIDTH as i64)
            .max(1);
        let need_to = live.map_or(to_ns, |l| to_ns.min(l.from_at(column_ns)));
        if need_to <= from_ns {
            return None;
        }
        let held = !self.series.is_empty() || self.to_ns > self.from_ns;
        let fine_enough = (self.column_ns as f64) <= column_ns as f64 * COARSEST_OK;
        if held && fine_enough && self.from_ns <= from_ns && self.to_ns >= need_to {
            return None;
        }
        // The margin shrinks when the server's width limit would otherwise coarsen the answer.
        let room = (MAX_FETCH_WIDTH as i64).saturating_mul(column_ns) - span;
        let margin = ((span as f64 * FETCH_MARGIN) as i64).min((room / 2).max(0));
        let fetch_from = from_ns.saturating_sub(margin).max(0);
        let fetch_to = to_ns.saturating_add(margin).min(server_now_ns.max(need_to));
        let fetch_width = ((fetch_to - fetch_from) / column_ns).max(1);
        Some(FetchPlan {
            from_ns: fetch_from,
            to_ns: fetch_to,
            width: usize::try_from(fetch_width)
                .unwrap_or(usize::MAX)
                .min(MAX_FETCH_WIDTH),
        })
    }

    /// [`HistoryCache::joined`] as up to three sorted slices (history, then the feed's ring in
    /// its two halves), each trimmed to what a view starting at `from_ns` needs (the last point
    /// before it, so the line enters at the edge): decimating slices runs a tight loop per
    /// pixel column instead of a call per point.
    pub fn joined_slices<'a>(
        &'a self,
        key: &SeriesKey,
        live: &'a VecDeque<Point>,
        from_ns: i64,
        live_from: Option<i64>,
    ) -> [&'a [Point]; 3] {
        let cut = self.cut(live_from);
        let hist: &[Point] = self.series.get(key).map_or(&[], Vec::as_slice);
        let hist = &hist[..hist.partition_point(|p| p.ts_ns <= cut)];
        let (a, b) = live.as_slices();
        let after_cut = |s: &'a [Point]| &s[s.partition_point(|p| p.ts_ns <= cut)..];
        let mut parts = [hist, after_cut(a), after_cut(b)];
        // Everything before the view but its last point is of no use; later parts make earlier
        // ones useless entirely once they reach back to the view's start.
        let mut seen_before = false;
        for part in parts.iter_mut().rev() {
            if seen_before {
                *part = &[];
                continue;
            }
            let first_in = part.partition_point(|p| p.ts_ns < from_ns);
            if first_in > 0 {
                *part = &part[first_in - 1..];
                seen_before = true;
            }
        }
        parts
    }

    /// One series' line: held history up to its end, then the live feed's points after it.
    pub fn joined<'a>(
        &'a self,
        key: &SeriesKey,
        live: &'a VecDeque<Point>,
        live_from: Option<i64>,
    ) -> impl Iterator<Item = Point> + Clone + 'a {
        let cut = self.cut(live_from);
        let hist: &[Point] = self.series.get(key).map_or(&[], Vec::as_slice);
        hist.iter()
            .copied()
            .filter(move |p| p.ts_ns <= cut)
            .chain(live.iter().copied().filter(move |p| p.ts_ns > cut))
    }

    /// Where history hands over to the live feed: the end of what is held, or earlier where
    /// the feed already holds everything at the view's resolution (`live_from`), since the
    /// feed is finer and has late arrivals.
    fn cut(&self, live_from: Option<i64>) -> i64 {
        let held = !self.series.is_empty() || self.to_ns > self.from_ns;
        if !held {
            return i64::MIN;
        }
        live_from.map_or(self.to_ns, |l| l.min(self.to_ns))
    }
}

/// The point of a sorted slice nearest to `t`, if any.
pub fn nearest(points: &[Point], t: i64) -> Option<Point> {
    let i = points.partition_point(|p| p.ts_ns < t);
    let after = points.get(i);
    let before = i.checked_sub(1).and_then(|j| points.get(j));
    match (before, after) {
        (Some(b), Some(a)) => Some(if t - b.ts_ns <= a.ts_ns - t { *b } else { *a }),
        (Some(p), None) | (None, Some(p)) => Some(*p),
        (None, None) => None,
    }
}

/// The value a line drawn through sorted `points` shows at `t`: the nearer of the two points
/// around `t` when the line joins them (they are at most `max_gap` apart), or a point within
/// `slack` of `t`. `None` where the line has a hole or has not started: a tooltip must not
/// show a value from an hour away as if it were current.
pub fn value_at(points: &[Point], t: i64, max_gap: i64, slack: i64) -> Option<Point> {
    let i = points.partition_point(|p| p.ts_ns < t);
    let after = points.get(i).copied();
    let before = i.checked_sub(1).and_then(|j| points.get(j)).copied();
    if let (Some(b), Some(a)) = (before, after) {
        if a.ts_ns - b.ts_ns <= max_gap {
            return nearest(&[b, a], t);
        }
    }
    [before, after]
        .into_iter()
        .flatten()
        .filter(|p| p.ts_ns.abs_diff(t) <= slack.unsigned_abs())
        .min_by_key(|p| p.ts_ns.abs_diff(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const NOW: i64 = 1_764_230_400 * S;

    fn key(n: &str) -> SeriesKey {
        SeriesKey::new(n).unwrap()
    }

    fn p(t: i64, v: f64) -> Point {
        Point::new(t, v).unwrap()
    }

    fn live() -> LiveCoverage {
        // The feed holds the last two minutes, raw for the last 30 s, snapshot at 60 ms.
        LiveCoverage {
            full_from: NOW - 120 * S,
            raw_from: NOW - 30 * S,
            column_ns: 60_000_000,
        }
    }

    #[test]
    fn a_view_the_feed_covers_needs_no_history() {
        let c = HistoryCache::default();
        assert_eq!(c.plan(NOW - 60 * S, NOW, 1000, Some(live()), NOW), None);
    }

    #[test]
    fn an_hour_fetches_what_the_feed_lacks_with_a_margin() {
        let c = HistoryCache::default();
        let plan = c
            .plan(NOW - 3600 * S, NOW, 1000, Some(live()), NOW)
            .unwrap();
        assert_eq!(plan.from_ns, NOW - 5400 * S);
        assert_eq!(plan.to_ns, NOW, "never past now");
        assert_eq!(plan.width, 1500, "the view's column width");
    }

    #[test]
    fn held_history_is_used_until_the_view_leaves_it_or_needs_more_detail() {
        let c = HistoryCache {
            from_ns: NOW - 5400 * S,
            to_ns: NOW - 100 * S,
            column_ns: 3_600_000_000,
            series: BTreeMap::from([(key("a"), vec![p(NOW - 3000 * S, 1.0)])]),
        };
        let l = Some(live());
        assert_eq!(c.plan(NOW - 3600 * S, NOW, 1000, l, NOW), None);
        // A small pan back stays inside the margin.
        assert_eq!(c.plan(NOW - 4000 * S, NOW - 400 * S, 1000, l, NOW), None);
        // Further back than held: fetch.
        assert!(c
            .plan(NOW - 6000 * S, NOW - 2400 * S, 1000, l, NOW)
            .is_some());
        // Zoomed in 4× on held time: too coarse, fetch.
        assert!(c
            .plan(NOW - 3600 * S, NOW - 2700 * S, 1000, l, NOW)
            .is_some());
        // Time passed: the feed no longer reaches back to where history ends.
        let later = LiveCoverage {
            full_from: NOW - 60 * S,
            ..live()
        };
        assert!(c
            .plan(NOW - 3600 * S, NOW, 1000, Some(later), NOW)
            .is_some());
    }

    #[test]
    fn detail_finer_than_the_snapshot_comes_from_history() {
        let c = HistoryCache::default();
        // The last 10 s at 1000 columns: 10 ms columns, finer than the snapshot's 60 ms; the
        // feed is raw for the last 30 s, so nothing to fetch.
        assert_eq!(c.plan(NOW - 10 * S, NOW, 1000, Some(live()), NOW), None);
        // 90 s back to 80 s back: inside the feed, but only as the snapshot's 60 ms columns.
        let plan = c
            .plan(NOW - 90 * S, NOW - 80 * S, 1000, Some(live()), NOW)
            .unwrap();
        assert_eq!(plan.width, 2000);
    }

    #[test]
    fn a_canvas_wider_than_the_server_answers_does_not_refetch_forever() {
        let c = HistoryCache::default();
        let (from, to) = (NOW - 100 * S, NOW - 50 * S);
        let plan = c.plan(from, to, 20_000, None, NOW).unwrap();
        assert!(plan.width <= MAX_FETCH_WIDTH);
        // Held as answered, the same view needs nothing more.
        let held = HistoryCache {
            from_ns: plan.from_ns,
            to_ns: plan.to_ns,
            column_ns: (plan.to_ns - plan.from_ns) / plan.width as i64,
            series: BTreeMap::from([(key("a"), Vec::new())]),
        };
        assert_eq!(held.plan(from, to, 20_000, None, NOW), None);
    }

    #[test]
    fn a_view_reaching_before_1970_does_not_refetch_forever() {
        let c = HistoryCache::default();
        for (from, to) in [(-50 * S, 50 * S), (-100 * S, -50 * S)] {
            let Some(plan) = c.plan(from, to, 100, None, NOW) else {
                assert!(to <= 0, "a view after 1970 needs its history");
                continue;
            };
            assert_eq!(plan.from_ns, 0);
            let held = HistoryCache {
                from_ns: plan.from_ns,
                to_ns: plan.to_ns,
                column_ns: (plan.to_ns - plan.from_ns) / plan.width as i64,
                series: BTreeMap::from([(key("a"), Vec::new())]),
            };
            assert_eq!(held.plan(from, to, 100, None, NOW), None, "{from}..{to}");
        }
    }

    #[test]
    fn without_a_feed_everything_is_history() {
        let c = HistoryCache::default();
        let plan = c.plan(NOW - 100 * S, NOW - 50 * S, 100, None, NOW).unwrap();
        assert_eq!((plan.from_ns, plan.to_ns), (NOW - 125 * S, NOW - 25 * S));
    }

    #[test]
    fn history_then_live_without_doubles() {
        let c = HistoryCache {
            from_ns: 0,
            to_ns: 10,
            column_ns: 1,
            series: BTreeMap::from([(key("a"), vec![p(5, 1.0), p(10, 2.0)])]),
        };
        let ring: VecDeque<Point> = [p(9, 9.0), p(10, 9.0), p(11, 3.0)].into();
        let got: Vec<i64> = c.joined(&key("a"), &ring, None).map(|p| p.ts_ns).collect();
        assert_eq!(got, [5, 10, 11]);
        // A series history has nothing of: only what the feed has after the held range.
        assert_eq!(c.joined(&key("b"), &ring, None).count(), 1);
        // No history at all: the feed alone.
        assert_eq!(
            HistoryCache::default()
                .joined(&key("a"), &ring, None)
                .count(),
            3
        );
        // The feed holds everything from 8 on: it wins from there (finer, and late points).
        let got: Vec<i64> = c
            .joined(&key("a"), &ring, Some(8))
            .map(|p| p.ts_ns)
            .collect();
        assert_eq!(got, [5, 9, 10, 11]);
    }

    #[test]
    fn values_only_where_the_line_is() {
        let pts = [p(10, 1.0), p(20, 2.0), p(100, 3.0)];
        assert_eq!(value_at(&pts, 14, 15, 2).unwrap().value, 1.0);
        assert_eq!(value_at(&pts, 16, 15, 2).unwrap().value, 2.0);
        // In the hole between 20 and 100: only right beside a point.
        assert_eq!(value_at(&pts, 60, 15, 2), None);
        assert_eq!(value_at(&pts, 21, 15, 2).unwrap().value, 2.0);
        assert_eq!(value_at(&pts, 99, 15, 2).unwrap().value, 3.0);
        // Before the first and after the last point.
        assert_eq!(value_at(&pts, 5, 15, 2), None);
        assert_eq!(value_at(&pts, 9, 15, 2).unwrap().value, 1.0);
        assert_eq!(value_at(&pts, 200, 15, 2), None);
        assert_eq!(value_at(&[], 5, 15, 2), None);
    }

    #[test]
    fn slices_hold_the_same_line_from_the_view_on() {
        let c = HistoryCache {
            from_ns: 0,
            to_ns: 10,
            column_ns: 1,
            series: BTreeMap::from([(key("a"), vec![p(2, 0.0), p(5, 1.0), p(10, 2.0)])]),
        };
        let mut ring: VecDeque<Point> = VecDeque::with_capacity(4);
        // Wrap the ring around so it has two halves.
        for t in [1, 9, 10, 11] {
            ring.push_back(p(t, 9.0));
        }
        ring.pop_front();
        ring.pop_front();
        ring.push_back(p(12, 3.0));
        ring.push_back(p(13, 3.0));
        for (from, live_from) in [0, 3, 6, 11, 12, 20]
            .into_iter()
            .flat_map(|f| [(f, None), (f, Some(4)), (f, Some(10))])
        {
            let flat: Vec<i64> = c
                .joined_slices(&key("a"), &ring, from, live_from)
                .concat()
                .iter()
                .map(|p| p.ts_ns)
                .collect();
            let all: Vec<i64> = c
                .joined(&key("a"), &ring, live_from)
                .map(|p| p.ts_ns)
                .collect();
            // The same points from the last one before `from` on.
            let start = all.partition_point(|&t| t < from).saturating_sub(1);
            assert_eq!(flat, all[start..], "from {from}, live from {live_from:?}");
        }
    }

    #[test]
    fn nearest_point() {
        let pts = [p(10, 1.0), p(20, 2.0), p(40, 4.0)];
        assert_eq!(nearest(&pts, 0).unwrap().ts_ns, 10);
        assert_eq!(nearest(&pts, 14).unwrap().ts_ns, 10);
        assert_eq!(nearest(&pts, 31).unwrap().ts_ns, 40);
        assert_eq!(nearest(&pts, 99).unwrap().ts_ns, 40);
        assert_eq!(nearest(&[], 5), None);
    }
}

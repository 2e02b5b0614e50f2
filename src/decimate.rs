//! M4 decimation: per pixel column keep the first, last, minimum and maximum point.
//!
//! A line drawn through those (at most four per column, in time order) touches exactly the same
//! pixels as one drawn through every raw point: within a column the vertical extent is set by
//! min and max, and the segments between columns start at a column's last point and end at the
//! next column's first. So the cost of drawing follows the screen width, not the data size.

use crate::model::Point;

/// Decimates time-sorted `points` to `width` columns spanning `[from_ns, to_ns]`.
///
/// The nearest point on each side outside the range is kept as well, so the line enters and
/// leaves the plot at its edges instead of starting at the first visible sample.
pub fn m4<I>(points: I, from_ns: i64, to_ns: i64, width: usize) -> Vec<Point>
where
    I: IntoIterator<Item = Point>,
{
    let mut m4 = M4::new(from_ns, to_ns, width);
    for p in points {
        if !m4.push(p) {
            break;
        }
    }
    m4.finish()
}

/// The pixel column of `ts` when `[from_ns, to_ns]` spans `width` columns (both ends
/// included; the last column also takes `to_ns`). `width` and the span must be non-zero.
pub fn column_of(ts: i64, from_ns: i64, to_ns: i64, width: usize) -> usize {
    let span = (to_ns as i128 - from_ns as i128).max(1);
    let c = (ts as i128 - from_ns as i128) * width as i128 / span;
    c.clamp(0, width.max(1) as i128 - 1) as usize
}

/// The first timestamp of column `c` (`0 < c < width`): the smallest `t` with
/// `column_of(t) >= c`, by the same integer arithmetic (`i64::MIN` if out of range).
pub fn column_start(c: usize, from_ns: i64, to_ns: i64, width: usize) -> i64 {
    let span = (to_ns as i128 - from_ns as i128).max(1);
    let width = width.max(1) as i128;
    // column_of(t) ≥ c  ⇔  (t - from)·width ≥ c·span  ⇔  t ≥ from + ⌈c·span / width⌉
    let offset = (c as i128 * span + width - 1) / width;
    i64::try_from(from_ns as i128 + offset).unwrap_or(i64::MIN)
}

/// A run of points that falls inside one column can stand in for itself with its first,
/// lowest, highest and last point (the lowest and highest being their first occurrences, as
/// [`m4`] picks them): the column's M4 is the same either way. The store keeps these per
/// chunk so long ranges need not decode every point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extremes {
    pub first: Point,
    pub min: Point,
    pub max: Point,
    pub last: Point,
}

impl Extremes {
    /// Of time-sorted, non-empty `points`.
    pub fn of(points: &[Point]) -> Option<Self> {
        let (&first, &last) = (points.first()?, points.last()?);
        let (mut min, mut max) = (first, first);
        for &p in points {
            if p.value < min.value {
                min = p;
            }
            if p.value > max.value {
                max = p;
            }
        }
        Some(Self {
            first,
            min,
            max,
            last,
        })
    }

    /// The distinct points, in time order.
    pub fn points(&self) -> Vec<Point> {
        let mut v = vec![self.first, self.min, self.max, self.last];
        v.sort_by_key(|p| p.ts_ns);
        v.dedup_by_key(|p| p.ts_ns);
        v
    }
}

/// [`m4`] one point at a time, for callers that read their points in pieces (the store reads
/// history an hour at a time), so memory follows the width, not the range.
pub struct M4 {
    from_ns: i64,
    to_ns: i64,
    width: usize,
    out: Vec<Point>,
    before: Option<Point>,
    current: Option<(usize, Column)>,
    /// Where the current column ends (exclusive).
    current_end: i64,
    done: bool,
}

impl M4 {
    pub fn new(from_ns: i64, to_ns: i64, width: usize) -> Self {
        Self {
            from_ns,
            to_ns,
            width,
            out: Vec::new(),
            before: None,
            current: None,
            current_end: i64::MIN,
            done: width == 0 || to_ns <= from_ns,
        }
    }

    fn column_of(&self, ts: i64) -> usize {
        column_of(ts, self.from_ns, self.to_ns, self.width)
    }

    /// The first timestamp past column `c` (`i64::MIN` when unknown, which disables the fast
    /// path).
    fn column_end(&self, c: usize) -> i64 {
        if c + 1 >= self.width {
            return self.to_ns.saturating_add(1);
        }
        column_start(c + 1, self.from_ns, self.to_ns, self.width)
    }

    /// Takes the next point (in time order); false once the range is passed and nothing more
    /// can change the answer.
    pub fn push(&mut self, p: Point) -> bool {
        if self.done {
            return false;
        }
        if p.ts_ns < self.from_ns {
            self.before = Some(p);
            return true;
        }
        if let Some(b) = self.before.take() {
            self.out.push(b);
        }
        if p.ts_ns > self.to_ns {
            if let Some((_, col)) = self.current.take() {
                col.flush(&mut self.out);
            }
            self.out.push(p);
            self.done = true;
            return false;
        }
        // Most points land in the column of the one before: the comparison against that
        // column's end avoids a 128-bit division per point.
        if p.ts_ns < self.current_end {
            if let Some((_, col)) = &mut self.current {
                col.add(p);
                return true;
            }
        }
        let c = self.column_of(p.ts_ns);
        self.current_end = self.column_end(c);
        match &mut self.current {
            Some((idx, col)) if *idx == c => col.add(p),
            _ => {
                if let Some((_, col)) = self.current.take() {
                    col.flush(&mut self.out);
                }
                self.current = Some((c, Column::new(p)));
            }
        }
        true
    }

    /// [`M4::push`] for each of the time-sorted `points`; a run inside the current column is
    /// taken in one tight loop.
    pub fn push_all(&mut self, points: &[Point]) -> bool {
        let mut rest = points;
        while let Some(&p) = rest.first() {
            if self.done {
                return false;
            }
            if let Some((_, col)) = &mut self.current {
                if p.ts_ns < self.current_end {
                    let end = self.current_end;
                    let n = rest.partition_point(|q| q.ts_ns < end);
                    col.add_run(&rest[..n]);
                    rest = &rest[n..];
                    continue;
                }
            }
            if !self.push(p) {
                return false;
            }
            rest = &rest[1..];
        }
        true
    }

    pub fn finish(mut self) -> Vec<Point> {
        if let Some((_, col)) = self.current.take() {
            col.flush(&mut self.out);
        }
        if let Some(b) = self.before.take() {
            // Every point was before the range: keep the last one so the caller still knows it.
            self.out.push(b);
        }
        self.out
    }
}

/// Cuts a time-sorted line at `[from_ns, to_ns]`: a point outside either end is replaced by the
/// line's crossing of that boundary (or dropped when there is no neighbour to cross to), so
/// nothing is drawn outside the plot and the line still reaches its edges.
pub fn clip_to_range(points: &mut Vec<Point>, from_ns: i64, to_ns: i64) {
    let crossing = |a: Point, b: Point, at: i64| -> Point {
        let span = b.ts_ns as f64 - a.ts_ns as f64;
        let f = if span > 0.0 {
            (at as f64 - a.ts_ns as f64) / span
        } else {
            0.0
        };
        Point {
            ts_ns: at,
            value: a.value + (b.value - a.value) * f,
        }
    };
    let n = points.len();
    if n == 0 {
        return;
    }
    let (first, last) = (points[0], points[n - 1]);
    let head =
        (first.ts_ns < from_ns).then(|| (n > 1).then(|| crossing(first, points[1], from_ns)));
    let tail = (last.ts_ns > to_ns).then(|| (n > 1).then(|| crossing(points[n - 2], last, to_ns)));
    if let Some(replacement) = tail {
        points.pop();
        points.extend(replacement.filter(|p| p.ts_ns >= from_ns));
    }
    if let Some(replacement) = head {
        match replacement.filter(|p| p.ts_ns <= to_ns) {
            Some(p) if !points.is_empty() => points[0] = p,
            _ => {
                if !points.is_empty() {
                    points.remove(0);
                }
            }
        }
    }
}

/// The four extreme points of one column, each remembered with its arrival index so they can be
/// written back in time order.
struct Column {
    n: usize,
    first: (usize, Point),
    last: (usize, Point),
    min: (usize, Point),
    max: (usize, Point),
}

impl Column {
    fn new(p: Point) -> Self {
        Self {
            n: 1,
            first: (0, p),
            last: (0, p),
            min: (0, p),
            max: (0, p),
        }
    }

    fn add(&mut self, p: Point) {
        let i = self.n;
        self.n += 1;
        self.last = (i, p);
        if p.value < self.min.1.value {
            self.min = (i, p);
        }
        if p.value > self.max.1.value {
            self.max = (i, p);
        }
    }

    fn add_run(&mut self, run: &[Point]) {
        let Some(&last) = run.last() else { return };
        let (mut min, mut max) = (self.min, self.max);
        for (i, &p) in (self.n..).zip(run) {
            if p.value < min.1.value {
                min = (i, p);
            }
            if p.value > max.1.value {
                max = (i, p);
            }
        }
        self.n += run.len();
        (self.min, self.max) = (min, max);
        self.last = (self.n - 1, last);
    }

    fn flush(self, out: &mut Vec<Point>) {
        let mut picks = [self.first, self.min, self.max, self.last];
        picks.sort_by_key(|(i, _)| *i);
        let mut prev = usize::MAX;
        for (i, p) in picks {
            if i != prev {
                out.push(p);
                prev = i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator; enough to vary shapes without a test dependency.
    fn series(n: usize, seed: u64) -> Vec<Point> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut t = 0i64;
        let mut v = 0.0;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t += 1 + (s >> 60) as i64;
                v += ((s >> 33) % 1000) as f64 / 500.0 - 1.0;
                Point { ts_ns: t, value: v }
            })
            .collect()
    }

    /// Per column: (first, last, min, max) values. Identical summaries draw identical pixels.
    fn summary(points: &[Point], from: i64, to: i64, width: usize) -> Vec<Option<[f64; 4]>> {
        let span = (to - from) as i128;
        let mut cols = vec![None::<[f64; 4]>; width];
        for p in points.iter().filter(|p| p.ts_ns >= from && p.ts_ns <= to) {
            let c = (((p.ts_ns - from) as i128 * width as i128 / span) as usize).min(width - 1);
            let e = cols[c].get_or_insert([p.value, p.value, p.value, p.value]);
            e[1] = p.value;
            e[2] = e[2].min(p.value);
            e[3] = e[3].max(p.value);
        }
        cols
    }

    #[test]
    fn m4_preserves_every_columns_extremes() {
        for seed in 0..50 {
            let raw = series(5_000, seed);
            let from = raw[100].ts_ns;
            let to = raw[4_000].ts_ns;
            for width in [1, 7, 300, 1_000, 10_000] {
                let out = m4(raw.iter().copied(), from, to, width);
                assert_eq!(
                    summary(&out, from, to, width),
                    summary(&raw, from, to, width)
                );
                assert!(
                    out.len() <= 4 * width + 2,
                    "{} points for width {width}",
                    out.len()
                );
                assert!(
                    out.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
                    "time order"
                );
                assert_eq!(
                    out.first(),
                    Some(&raw[99]),
                    "keeps the point before the range"
                );
                assert_eq!(
                    out.last(),
                    Some(&raw[4_001]),
                    "keeps the point after the range"
                );
            }
        }
    }

    #[test]
    fn small_inputs_pass_through() {
        let raw = series(10, 1);
        let out = m4(raw.iter().copied(), raw[0].ts_ns, raw[9].ts_ns, 1_000);
        assert_eq!(out, raw);
        assert!(m4(raw.iter().copied(), 0, 0, 10).is_empty());
        assert!(m4(raw.iter().copied(), 0, 10, 0).is_empty());
        let before_only = m4(raw.iter().copied(), 1_000_000, 2_000_000, 10);
        assert_eq!(before_only, vec![raw[9]]);
    }

    #[test]
    fn clipping_interpolates_at_the_edges() {
        let p = |t: i64, v: f64| Point { ts_ns: t, value: v };
        let mut line = vec![p(0, 0.0), p(10, 10.0), p(20, 20.0), p(30, 0.0)];
        clip_to_range(&mut line, 5, 25);
        assert_eq!(line, vec![p(5, 5.0), p(10, 10.0), p(20, 20.0), p(25, 10.0)]);

        let mut crossing = vec![p(0, 0.0), p(100, 100.0)];
        clip_to_range(&mut crossing, 40, 60);
        assert_eq!(crossing, vec![p(40, 40.0), p(60, 60.0)]);

        let mut lonely = vec![p(0, 1.0)];
        clip_to_range(&mut lonely, 5, 25);
        assert!(lonely.is_empty());

        let mut inside = vec![p(6, 1.0), p(7, 2.0)];
        clip_to_range(&mut inside, 5, 25);
        assert_eq!(inside, vec![p(6, 1.0), p(7, 2.0)]);
    }

    /// The pixels a line through `points` lights on a `width` × `height` grid over
    /// `[from, to]` × `[lo, hi]`: x by M4's own column mapping inside the range (floor
    /// outside it), y rounded, segments by Bresenham, pixels off the grid dropped.
    fn raster(
        points: &[Point],
        (from, to, width): (i64, i64, usize),
        (lo, hi, height): (f64, f64, usize),
    ) -> std::collections::BTreeSet<(i64, i64)> {
        let span = (to - from) as i128;
        let x = |ts: i64| -> i64 {
            let c = (ts as i128 - from as i128) * width as i128;
            let c = c.div_euclid(span) as i64;
            if (from..=to).contains(&ts) {
                c.min(width as i64 - 1)
            } else {
                c
            }
        };
        let y = |v: f64| ((v - lo) / (hi - lo) * (height as f64 - 1.0)).round() as i64;
        let mut lit = std::collections::BTreeSet::new();
        let mut plot = |px: i64, py: i64| {
            if (0..width as i64).contains(&px) {
                lit.insert((px, py));
            }
        };
        let pixels: Vec<(i64, i64)> = points.iter().map(|p| (x(p.ts_ns), y(p.value))).collect();
        if let [only] = pixels.as_slice() {
            plot(only.0, only.1);
        }
        for w in pixels.windows(2) {
            let ((mut x0, mut y0), (x1, y1)) = (w[0], w[1]);
            let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
            let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
            let mut err = dx + dy;
            loop {
                plot(x0, y0);
                if (x0, y0) == (x1, y1) {
                    break;
                }
                let e2 = 2 * err;
                if e2 >= dy {
                    err += dy;
                    x0 += sx;
                }
                if e2 <= dx {
                    err += dx;
                    y0 += sy;
                }
            }
        }
        lit
    }

    proptest::proptest! {
        /// The claim M4 rests on: its output, rasterized at the width it was made for, lights
        /// exactly the pixels the raw data lights. Inputs include clusters, gaps (columns with
        /// no point), single-point columns and points outside the range on both sides.
        #[test]
        fn m4_is_pixel_identical_to_the_raw_line(
            raw in proptest::collection::btree_map(-200i64..1_200, -1_000i32..1_000, 1..300),
            width in 1usize..60,
            height in 2usize..40,
        ) {
            let (from, to) = (0i64, 1_000i64);
            let points: Vec<Point> = raw
                .iter()
                .map(|(&t, &v)| Point::new(t, f64::from(v)).unwrap())
                .collect();
            let decimated = m4(points.iter().copied(), from, to, width);
            let grid = (from, to, width);
            let values = (-1_000.0, 1_000.0, height);
            proptest::prop_assert_eq!(raster(&decimated, grid, values), raster(&points, grid, values));
        }
    }

    #[test]
    fn the_raster_check_notices_a_wrong_decimation() {
        // A column's max dropped: the check must see it, or the property above proves nothing.
        let points: Vec<Point> = [(0, 0), (10, 900), (20, 0), (600, 0)]
            .iter()
            .map(|&(t, v)| Point::new(t, f64::from(v)).unwrap())
            .collect();
        let wrong = vec![points[0], points[2], points[3]];
        let (grid, values) = ((0, 1_000, 10), (-1_000.0, 1_000.0, 20));
        assert_ne!(raster(&wrong, grid, values), raster(&points, grid, values));
    }

    proptest::proptest! {
        /// Replacing any run of points that sits inside one column by its extremes leaves the
        /// M4 answer unchanged, point for point.
        #[test]
        fn extremes_of_a_run_inside_a_column_change_nothing(
            raw in proptest::collection::btree_map(0i64..1_000, -20i32..20, 1..200),
            width in 1usize..40,
            cut in 0usize..200,
            len in 1usize..60,
        ) {
            let (from, to) = (0i64, 999i64);
            let points: Vec<Point> = raw.iter().map(|(&t, &v)| Point::new(t, f64::from(v)).unwrap()).collect();
            let start = cut.min(points.len() - 1);
            let mut end = (start + len).min(points.len());
            // Shrink the run until it sits inside one column.
            while column_of(points[start].ts_ns, from, to, width)
                != column_of(points[end - 1].ts_ns, from, to, width)
            {
                end -= 1;
            }
            let ext = Extremes::of(&points[start..end]).unwrap();
            let mut replaced = points[..start].to_vec();
            replaced.extend(ext.points());
            replaced.extend_from_slice(&points[end..]);
            proptest::prop_assert_eq!(m4(replaced, from, to, width), m4(points.iter().copied(), from, to, width));
        }
    }

    proptest::proptest! {
        /// Reads split at `column_start` boundaries put every timestamp in the same column.
        #[test]
        fn column_start_is_where_column_of_steps(
            from in -1_000_000i64..1_000_000,
            span in 1i64..10_000_000,
            width in 2usize..5_000,
            c in 1usize..5_000,
        ) {
            let c = c % (width - 1) + 1;
            let to = from + span;
            let start = column_start(c, from, to, width);
            proptest::prop_assert!(column_of(start, from, to, width) >= c);
            proptest::prop_assert!(column_of(start - 1, from, to, width) < c);
        }
    }
}

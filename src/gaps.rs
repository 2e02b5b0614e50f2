//! Where a series has no data: the chart breaks its line there instead of bridging the hole.
//!
//! Points carry no "missing" marker, so a gap is inferred the way Grafana's "disconnect values
//! above a threshold" does, with the threshold learnt from the data: a step between two
//! neighbouring points longer than [`GAP_FACTOR`] times the series' usual step (the median of
//! its recent steps) is a hole. A series sampled every 10 s with jitter keeps one line; one that
//! stopped for a minute shows the minute empty. A step that spans less than
//! [`MIN_GAP_COLUMNS`] pixel columns is never a gap: it could not be seen, and would flicker as
//! the window slides.
//!
//! Detection runs on the decimated points: M4 keeps the first and last point of every column,
//! so two neighbours across empty columns are the raw data's neighbours, and a step inside one
//! column is below the column floor anyway. The result is the same as on the raw points.

use std::ops::Range;

/// A step this many times the usual one is a hole: two missed samples in a row, not jitter.
pub const GAP_FACTOR: i64 = 3;

/// Steps narrower than this many pixel columns are drawn joined: a break must be visible.
pub const MIN_GAP_COLUMNS: i64 = 2;

/// Steps the usual step is learnt from: the newest ones, enough for a stable median and cheap
/// to sort every frame.
pub const SAMPLE_STEPS: usize = 1_024;

/// The median step between consecutive timestamps (ascending) among the last
/// [`SAMPLE_STEPS`]; `None` with fewer than two distinct timestamps.
pub fn usual_step(timestamps: impl DoubleEndedIterator<Item = i64>) -> Option<i64> {
    let mut newest_first = timestamps.rev();
    let mut later = newest_first.next()?;
    let mut steps: Vec<i64> = Vec::with_capacity(SAMPLE_STEPS.min(64));
    for t in newest_first {
        let step = later.saturating_sub(t);
        if step > 0 {
            steps.push(step);
            if steps.len() == SAMPLE_STEPS {
                break;
            }
        }
        later = t;
    }
    if steps.is_empty() {
        return None;
    }
    let mid = steps.len() / 2;
    Some(*steps.select_nth_unstable(mid).1)
}

/// The longest step still drawn as a line, for a series whose usual step is `usual` on a plot
/// whose columns are `column_ns` wide.
pub fn threshold(usual: Option<i64>, column_ns: i64) -> i64 {
    let floor = column_ns.saturating_mul(MIN_GAP_COLUMNS);
    match usual {
        Some(step) => step.saturating_mul(GAP_FACTOR).max(floor),
        // One point or one timestamp: nothing to learn from, nothing to break.
        None => i64::MAX,
    }
}

/// The runs of `timestamps` (ascending) to draw as separate lines: split wherever a step is
/// longer than `threshold`.
pub fn segments(timestamps: &[i64], threshold: i64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..timestamps.len() {
        if timestamps[i].saturating_sub(timestamps[i - 1]) > threshold {
            out.push(start..i);
            start = i;
        }
    }
    if start < timestamps.len() {
        out.push(start..timestamps.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimate::m4;
    use crate::model::Point;
    use proptest::prelude::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn the_usual_step_is_the_median_of_the_newest_steps() {
        assert_eq!(usual_step([].into_iter()), None);
        assert_eq!(usual_step([5].into_iter()), None);
        assert_eq!(usual_step([5, 5, 5].into_iter()), None);
        assert_eq!(usual_step([0, 10, 20, 1_000, 1_010].into_iter()), Some(10));
        // Only the newest steps count: an old slow rate does not hide today's gaps.
        let old = (0..10_000).map(|i| i * 60 * S);
        let new = (0..2_000).map(|i| 10_000 * 60 * S + i * S);
        assert_eq!(usual_step(old.chain(new)), Some(S));
    }

    #[test]
    fn regular_and_jittery_series_stay_one_line_and_a_hole_splits_it() {
        let column = S / 100;
        let regular: Vec<i64> = (0..100).map(|i| i * 10 * S).collect();
        let t = threshold(usual_step(regular.iter().copied()), column);
        assert_eq!(segments(&regular, t), vec![0..100]);

        // ±40 % jitter around 10 s, and one sample missed: still one line.
        let mut jittery: Vec<i64> = (0..100)
            .map(|i| i * 10 * S + if i % 2 == 0 { 4 * S } else { -4 * S })
            .collect();
        jittery.remove(50);
        let t = threshold(usual_step(jittery.iter().copied()), column);
        assert_eq!(segments(&jittery, t).len(), 1);

        // A minute without data in a 10 s series: two lines, split at the hole.
        let mut holed = regular.clone();
        holed.retain(|&ts| !(400 * S..460 * S).contains(&ts));
        let t = threshold(usual_step(holed.iter().copied()), column);
        assert_eq!(segments(&holed, t), vec![0..40, 40..94]);
    }

    #[test]
    fn a_hole_narrower_than_the_column_floor_is_not_broken() {
        // 1 kHz data with a 10 ms pause, on a plot whose columns are 100 ms wide.
        let mut ts: Vec<i64> = (0..2_000).map(|i| i * 1_000_000).collect();
        ts.retain(|&t| !(500_000_000..510_000_000).contains(&t));
        let t = threshold(usual_step(ts.iter().copied()), 100_000_000);
        assert_eq!(segments(&ts, t).len(), 1);
        let t = threshold(usual_step(ts.iter().copied()), 1_000_000);
        assert_eq!(segments(&ts, t).len(), 2);
    }

    #[test]
    fn a_single_point_or_an_empty_series_is_one_segment_or_none() {
        assert_eq!(segments(&[], 10), Vec::<Range<usize>>::new());
        assert_eq!(segments(&[7], 10), vec![0..1]);
        assert_eq!(threshold(None, 5), i64::MAX);
    }

    proptest! {
        /// Decimating first finds the same holes as the raw points: M4 keeps both neighbours
        /// of every step longer than a column.
        #[test]
        fn gaps_found_after_m4_are_the_raw_gaps(
            steps in proptest::collection::vec(1i64..50, 2..400),
            holes in proptest::collection::vec((0usize..400, 100i64..5_000), 0..5),
            width in 5usize..300,
        ) {
            let mut ts = Vec::with_capacity(steps.len());
            let mut t = 0i64;
            for (i, step) in steps.iter().enumerate() {
                t += step;
                if let Some((_, extra)) = holes.iter().find(|(at, _)| *at == i) {
                    t += extra;
                }
                ts.push(t);
            }
            let (from, to) = (0, t + 1);
            let column = (to - from + width as i64 - 1) / width as i64;
            let threshold = threshold(usual_step(ts.iter().copied()), column);
            let raw_breaks: Vec<i64> = segments(&ts, threshold).iter().map(|r| ts[r.start]).collect();
            let points: Vec<Point> = ts.iter().map(|&t| Point::new(t, (t % 7) as f64).unwrap()).collect();
            let decimated: Vec<i64> = m4(points, from, to, width).iter().map(|p| p.ts_ns).collect();
            let m4_breaks: Vec<i64> = segments(&decimated, threshold).iter().map(|r| decimated[r.start]).collect();
            prop_assert_eq!(raw_breaks, m4_breaks);
        }
    }
}

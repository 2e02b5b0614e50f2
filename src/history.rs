//! History queries: the shapes shared by the HTTP endpoint, the server function and the chart.
//!
//! An answer is either M4-decimated to the caller's pixel columns (so a line drawn from it is
//! the line drawn from every raw point, see [`crate::decimate`]) or raw points up to a limit.

use crate::decimate::m4;
use crate::model::{Point, SeriesKey};
use serde::{Deserialize, Serialize};

/// Default and ceiling for `width` in history queries: wider than any screen in device
/// pixels, small enough that one answer stays a few hundred KB.
pub const MAX_QUERY_WIDTH: usize = 8_192;
/// Most raw points one history answer carries; beyond it the answer says it was cut.
pub const MAX_RAW_POINTS: usize = 1_000_000;

/// A history request: one series, a time range, and either the pixel width to downsample to
/// or raw points up to a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// `"series": "cpu", "labels": {"host": "a"}`, side by side with the other fields.
    #[serde(flatten)]
    pub series: SeriesKey,
    pub from_ns: i64,
    pub to_ns: i64,
    pub width: usize,
    /// `Some(limit)`: raw points, at most `limit`; `None`: M4 to `width` columns.
    pub raw_limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResult {
    #[serde(flatten)]
    pub series: SeriesKey,
    pub from_ns: i64,
    pub to_ns: i64,
    /// Columns the points were decimated to, absent for raw answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Raw points read for the answer: all of the range, or, when a raw answer was cut,
    /// as many as were read before stopping.
    pub raw_points: usize,
    /// True when a raw answer stopped at the limit (the first points of the range are given).
    pub truncated: bool,
    pub points: Vec<Point>,
}

impl HistoryResult {
    /// An answer from points already decimated to `q.width` columns.
    pub fn decimated(q: &HistoryQuery, points: Vec<Point>) -> Self {
        Self {
            series: q.series.clone(),
            from_ns: q.from_ns,
            to_ns: q.to_ns,
            width: Some(q.width),
            raw_points: points.len(),
            truncated: false,
            points,
        }
    }

    /// Shapes the time-sorted points of `[from, to]` as `q` asks.
    pub fn from_points(q: &HistoryQuery, mut points: Vec<Point>) -> Self {
        let raw_points = points.len();
        let (width, truncated, points) = match q.raw_limit {
            Some(limit) => {
                let truncated = points.len() > limit;
                points.truncate(limit);
                (None, truncated, points)
            }
            None => (
                Some(q.width),
                false,
                m4(points, q.from_ns, q.to_ns, q.width),
            ),
        };
        Self {
            series: q.series.clone(),
            from_ns: q.from_ns,
            to_ns: q.to_ns,
            width,
            raw_points,
            truncated,
            points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_answers_are_cut_and_say_so() {
        let q = HistoryQuery {
            series: SeriesKey::new("a").unwrap(),
            from_ns: 0,
            to_ns: 100,
            width: 10,
            raw_limit: Some(2),
        };
        let pts: Vec<Point> = (0..5).map(|t| Point::new(t, 0.0).unwrap()).collect();
        let r = HistoryResult::from_points(&q, pts.clone());
        assert_eq!(
            (r.points.len(), r.truncated, r.raw_points, r.width),
            (2, true, 5, None)
        );
        let r = HistoryResult::from_points(
            &HistoryQuery {
                raw_limit: None,
                ..q
            },
            pts,
        );
        assert_eq!((r.truncated, r.width), (false, Some(10)));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<HistoryResult>(&json).unwrap(), r);
    }
}

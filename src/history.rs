//! History queries: the shapes shared by the HTTP endpoint, the server function and the chart.
//!
//! An answer is either M4-decimated to the caller's pixel columns (so a line drawn from it is
//! the line drawn from every raw point, see [`crate::decimate`]) or raw points up to a limit.

use crate::decimate::m4;
use crate::model::{Point, SeriesKey};
use serde::{Deserialize, Serialize};

/// Ceiling for `width` in history queries: wider than any screen in device
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

/// Several series as one long-format CSV, `series,time,timestamp_ns,value`, for the chart's
/// export: long rather than wide because series rarely share timestamps. Times are UTC to the
/// millisecond for people; `timestamp_ns` is exact.
pub fn long_csv(series: &[(String, Vec<Point>)]) -> String {
    use std::fmt::Write as _;
    let rows: usize = series.iter().map(|(_, p)| p.len()).sum();
    let mut out = String::with_capacity(rows * 64 + 32);
    out.push_str("series,time,timestamp_ns,value\n");
    for (name, points) in series {
        let name = csv_field(name);
        for p in points {
            let time = crate::ticks::format_instant(p.ts_ns, &0).replace(' ', "T");
            let _ = writeln!(out, "{name},{time}Z,{},{}", p.ts_ns, p.value);
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break (series names may:
/// `cpu{host=a,core=0}`).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
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

    #[test]
    fn long_csv_quotes_names_and_keeps_exact_timestamps() {
        let p = |t: i64, v: f64| Point::new(t, v).unwrap();
        let csv = long_csv(&[
            (
                "cpu{core=0,host=a}".into(),
                vec![p(1_764_230_405_123_456_789, 1.5)],
            ),
            ("plain".into(), vec![p(0, -2.0)]),
            ("say \"hi\"".into(), vec![]),
        ]);
        assert_eq!(
            csv,
            "series,time,timestamp_ns,value\n\
             \"cpu{core=0,host=a}\",2025-11-27T08:00:05.123Z,1764230405123456789,1.5\n\
             plain,1970-01-01T00:00:00.000Z,0,-2\n"
        );
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}

//! Where accepted points live. One trait, so the embedded durable store and Redis can replace
//! the in-memory ring without touching ingest or the live feed.
//!
//! Contract every backend keeps: `append` takes the whole batch or refuses it whole (a refused
//! batch leaves no trace), returns only once the points are as safe as the backend promises,
//! and hands back what it stored, which is what live viewers are shown. One timestamp holds
//! one value per series (the later write wins); retention may drop points older than what a
//! series keeps, and those are not in the returned batch.

pub mod chunk;
pub mod memory;
pub mod sqlite;

use crate::decimate::m4;
use crate::model::{Batch, Point, SeriesKey, SeriesPoints};
use serde::Serialize;

/// The span over which `rate` in [`SeriesInfo`] is measured: recent enough to say "is it
/// alive", long enough to smooth a once-a-second sender.
pub const RATE_WINDOW_NS: i64 = 60 * crate::model::NANOS_PER_SEC;

/// What `GET /api/v1/series` reports per series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    #[serde(flatten)]
    pub series: SeriesKey,
    /// Points held for this series.
    pub points: usize,
    pub first_ns: i64,
    pub last_ns: i64,
    pub last_value: f64,
    /// Points per second over the last [`RATE_WINDOW_NS`] of the server's clock.
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The batch would create series beyond the configured cap; nothing was stored.
    #[error("too many series: this server keeps at most {limit} and the request would add {adding} new ones")]
    TooManySeries { limit: usize, adding: usize },
    /// The backend cannot take or give data now (disk full, database damaged, shutting
    /// down); nothing of the request was stored. Answered 503: the sender should retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("no series {0}")]
    UnknownSeries(String),
}

/// Default and ceiling for `width` in history queries: wider than any screen in device
/// pixels, small enough that one answer stays a few hundred KB.
pub const MAX_QUERY_WIDTH: usize = 8_192;
/// Most raw points one history answer carries; beyond it the answer says it was cut.
pub const MAX_RAW_POINTS: usize = 1_000_000;

/// A history request: one series, a time range, and either the pixel width to downsample to
/// or raw points up to a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub series: SeriesKey,
    pub from_ns: i64,
    pub to_ns: i64,
    pub width: usize,
    /// `Some(limit)`: raw points, at most `limit`; `None`: M4 to `width` columns.
    pub raw_limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryResult {
    #[serde(flatten)]
    pub series: SeriesKey,
    pub from_ns: i64,
    pub to_ns: i64,
    /// Columns the points were decimated to, absent for raw answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Raw points in the range before decimation or cutting.
    pub raw_points: usize,
    /// True when a raw answer stopped at the limit (the first points of the range are given).
    pub truncated: bool,
    pub points: Vec<Point>,
}

impl HistoryResult {
    /// Shapes time-sorted points of `[from, to]` as `q` asks.
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

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Takes every point of `batch` or none; returns the points now stored.
    async fn append(&self, batch: Batch) -> Result<Batch, StoreError>;

    /// For each series, its points from `since_ns` on in time order, decimated with M4 to
    /// `columns` pixel columns, plus the point just before `since_ns` (so the line enters the
    /// chart at its left edge, and a quiet series still shows its latest value).
    async fn recent(&self, since_ns: i64, columns: usize) -> Result<Vec<SeriesPoints>, StoreError>;

    /// Every series with its counts and latest point, in key order.
    async fn list(&self, now_ns: i64) -> Result<Vec<SeriesInfo>, StoreError>;

    /// The stored points of one series in a time range, shaped as the query asks.
    async fn history(&self, q: HistoryQuery) -> Result<HistoryResult, StoreError>;
}

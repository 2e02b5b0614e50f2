//! Where accepted points live. One trait, so the embedded durable store and Redis can replace
//! the in-memory ring without touching ingest or the live feed.
//!
//! Contract every backend keeps: `append` takes the whole batch or refuses it whole (a refused
//! batch leaves no trace), returns only once the points are as safe as the backend promises,
//! and hands back what it stored, which is what live viewers are shown. One timestamp holds
//! one value per series (the later write wins); retention may drop points older than what a
//! series keeps, and those are not in the returned batch.

/// The chunk codec is shared: the live feed's binary deltas use it too.
pub use crate::chunk;
pub mod mapped_vfs;
pub mod memory;
pub mod prefetch;
pub mod read_work;
pub mod redis;
pub mod redis_conn;
pub mod rollup;
pub mod row_cache;
pub mod sqlite;

use crate::model::{Batch, SeriesPoints};

/// The span over which `rate` in [`SeriesInfo`] is measured: recent enough to say "is it
/// alive", long enough to smooth a once-a-second sender.
pub const RATE_WINDOW_NS: i64 = 60 * crate::model::NANOS_PER_SEC;

pub use crate::model::SeriesInfo;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The batch would create series beyond the configured cap; nothing was stored.
    #[error("too many series: this server keeps at most {limit} and the request would add {adding} new ones")]
    TooManySeries { limit: usize, adding: usize },
    /// The backend cannot take or give data now (disk full, database damaged, shutting
    /// down). Answered 503: the sender should retry. Nothing of the request was stored,
    /// except in Redis mode after a timeout or a dropped connection (docs/GUARANTEES.md).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("no series {0}")]
    UnknownSeries(String),
    /// A point already past retention: storing it would acknowledge what the store drops at
    /// once (InfluxDB refuses such writes too). Nothing of the request was stored.
    #[error(
        "a point of {series} at {at} is older than the retention of {retention} (nothing \
         before {horizon} is kept); nothing was stored"
    )]
    TooOld {
        series: String,
        at: String,
        retention: String,
        horizon: String,
    },
}

/// Refuses a batch holding a point already past `retention`: storing it would acknowledge
/// what the store drops at once.
pub fn check_retention(batch: &Batch, retention: std::time::Duration) -> Result<(), StoreError> {
    let horizon = crate::server::now_ns()
        .saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
    let too_old = batch
        .iter()
        .find_map(|(k, pts)| pts.iter().find(|p| p.ts_ns < horizon).map(|p| (k, p)));
    match too_old {
        Some((key, p)) => Err(StoreError::TooOld {
            series: key.to_string(),
            at: rfc3339(p.ts_ns),
            retention: duration_flag(retention),
            horizon: rfc3339(horizon),
        }),
        None => Ok(()),
    }
}

/// `ts_ns` as RFC 3339 (UTC), for messages and exports; the number itself if out of range.
pub fn rfc3339(ts_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ts_ns} ns"))
}

/// A duration as the `--retention` flag takes it (`30d`, `12h`, `90s`).
pub fn duration_flag(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub use crate::history::{HistoryQuery, HistoryResult, MAX_QUERY_WIDTH, MAX_RAW_POINTS};

impl StoreError {
    /// The HTTP status every endpoint answers this with.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            // A cardinality limit, named in the message.
            Self::TooManySeries { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            // Nothing was stored or read and the caller should retry: the one 5xx we give.
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnknownSeries(_) => StatusCode::NOT_FOUND,
            Self::TooOld { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// What an append stored: points sharing a series and timestamp count once (the later
/// wins), points older than a full ring are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    pub points: usize,
    pub series: usize,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Takes every point of `batch` or none; says what is now stored.
    async fn append(&self, batch: Batch) -> Result<Stored, StoreError>;

    /// For each series, its points from `since_ns` on in time order, decimated with M4 to
    /// `columns` pixel columns, plus the point just before `since_ns` (so the line enters the
    /// chart at its left edge, and a quiet series still shows its latest value).
    async fn recent(&self, since_ns: i64, columns: usize) -> Result<Vec<SeriesPoints>, StoreError>;

    /// Every series with its counts and latest point, in key order.
    async fn list(&self, now_ns: i64) -> Result<Vec<SeriesInfo>, StoreError>;

    /// The stored points of one series in a time range, shaped as the query asks.
    async fn history(&self, q: HistoryQuery) -> Result<HistoryResult, StoreError>;

    /// Whether the store can take and give data now (`/readyz`). An embedded store is part
    /// of the process: ready while it serves.
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Bytes of history kept in memory to answer reads again faster (`/metrics`); 0 when
    /// the backend keeps none.
    fn read_cache_bytes(&self) -> usize {
        0
    }
}

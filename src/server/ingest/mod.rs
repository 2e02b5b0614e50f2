//! The one path every accepted point takes: limits, store, then live fan-out.
//!
//! Each format (the demo's `/chart_data`, the `push_points` server function) parses into a
//! [`Batch`] and calls [`accept`]; nothing reaches the store or the browsers any other way.

pub mod chart_data;

use super::store::StoreError;
use super::AppState;
use crate::model::Batch;
use serde::{Deserialize, Serialize};

/// What an accepted request added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub points: usize,
    pub series: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("no points in the request")]
    Empty,
    #[error("{got} points in one request; the limit is {limit}")]
    TooManyPoints { got: usize, limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores `batch` whole and then shows what was stored to every live viewer. A refused batch
/// leaves no trace in either.
pub async fn accept(state: &AppState, batch: Batch) -> Result<Accepted, IngestError> {
    if batch.is_empty() {
        return Err(IngestError::Empty);
    }
    let limit = state.config.limits.max_points_per_request;
    if batch.point_count() > limit {
        return Err(IngestError::TooManyPoints {
            got: batch.point_count(),
            limit,
        });
    }
    let stored = state.store.append(&batch).await?;
    state.hub.publish(&stored);
    Ok(Accepted {
        points: batch.point_count(),
        series: batch.series_count(),
    })
}

/// The server's clock in nanoseconds since the epoch, for points sent without a timestamp.
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

//! Where accepted points live. One trait, so the embedded durable store and Redis can replace
//! the in-memory ring without touching ingest or the live feed.
//!
//! Contract every backend keeps: `append` stores the whole batch or nothing (a refused batch
//! leaves no trace), and returns only once the points are as safe as the backend promises.

pub mod memory;

use crate::model::{Batch, SeriesPoints};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The batch would create series beyond the configured cap; nothing was stored.
    #[error("too many series: this server keeps at most {limit} and the request would add {adding} new ones")]
    TooManySeries { limit: usize, adding: usize },
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores every point of `batch`, or none of them.
    async fn append(&self, batch: &Batch) -> Result<(), StoreError>;

    /// For each series, its points at or after `since_ns` in time order, plus its newest point
    /// even when older (so a viewer can still show the latest value of a quiet series).
    async fn recent(&self, since_ns: i64) -> Result<Vec<SeriesPoints>, StoreError>;
}

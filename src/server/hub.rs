//! Fan-out of appended batches to every live browser.
//!
//! Each batch is encoded to its wire form once and the same reference-counted bytes go to
//! every subscriber, so a thousand viewers cost one encoding.
//!
//! Slow subscribers: the channel keeps the last `capacity` messages; a subscriber that falls
//! further behind loses its place, is told so (`Lagged`), and resyncs from a fresh snapshot
//! instead of growing a queue on the server.

use crate::model::Batch;
use crate::protocol::ServerMsg;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Utf8Bytes>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// Publishes an appended batch to whoever is subscribed now; nobody listening is fine.
    pub fn publish(&self, batch: &Batch) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let msg = ServerMsg::Points {
            series: batch.to_series_points(),
        };
        let _ = self.tx.send(Utf8Bytes::from(msg.to_json()));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.tx.subscribe()
    }
}

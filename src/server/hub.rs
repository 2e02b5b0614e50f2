//! Fan-out of appended batches to every live browser.
//!
//! Each batch is encoded to its wire form once and the same reference-counted bytes go to
//! every subscriber, so a thousand viewers cost one encoding.
//!
//! Slow subscribers: the channel keeps the last `capacity` messages; a subscriber that falls
//! further behind loses its place, is told so (`Lagged`), and resyncs from a fresh snapshot
//! instead of growing a queue on the server. Batches are cut into messages of at most
//! [`MAX_POINTS_PER_MESSAGE`] points, so the channel holds at most
//! `capacity × MAX_POINTS_PER_MESSAGE` points (about 90 MB at the defaults) however large the
//! requests are.

use crate::model::{Batch, Point, SeriesKey, SeriesPoints};
use crate::protocol::ServerMsg;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

/// 2 048 points are at most ~90 KB of JSON: big enough that a steady stream needs few
/// messages, small enough to bound the channel's memory.
pub const MAX_POINTS_PER_MESSAGE: usize = 2_048;

#[derive(Clone, Debug)]
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
        for series in chunks(batch.iter(), MAX_POINTS_PER_MESSAGE) {
            let msg = ServerMsg::Points { series };
            let _ = self.tx.send(Utf8Bytes::from(msg.to_json()));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.tx.subscribe()
    }
}

/// Splits series into groups of at most `max` points in total, keeping each series' points in
/// time order across groups. Reads the batch in place: each point is copied once, into the
/// message it goes out in.
fn chunks<'a>(
    series: impl IntoIterator<Item = (&'a SeriesKey, &'a [Point])>,
    max: usize,
) -> Vec<Vec<SeriesPoints>> {
    let max = max.max(1);
    let mut out: Vec<Vec<SeriesPoints>> = Vec::new();
    let mut current: Vec<SeriesPoints> = Vec::new();
    let mut room = max;
    for (key, points) in series {
        let mut rest = points;
        while !rest.is_empty() {
            let take = rest.len().min(room);
            current.push(SeriesPoints {
                series: key.clone(),
                points: rest[..take].to_vec(),
            });
            rest = &rest[take..];
            room -= take;
            if room == 0 {
                out.push(std::mem::take(&mut current));
                room = max;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(name: &str, n: i64) -> SeriesPoints {
        SeriesPoints {
            series: SeriesKey::new(name).unwrap(),
            points: (0..n).map(|t| Point::new(t, 0.0).unwrap()).collect(),
        }
    }

    #[test]
    fn chunks_bound_points_per_message_and_keep_everything() {
        let input = [sp("a", 5), sp("b", 2), sp("c", 4)];
        let groups = chunks(input.iter().map(|s| (&s.series, s.points.as_slice())), 3);
        let sizes: Vec<usize> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.points.len()).sum())
            .collect();
        assert_eq!(sizes, vec![3, 3, 3, 2]);
        let a_ts: Vec<i64> = groups
            .iter()
            .flatten()
            .filter(|s| s.series.name() == "a")
            .flat_map(|s| s.points.iter().map(|p| p.ts_ns))
            .collect();
        assert_eq!(a_ts, vec![0, 1, 2, 3, 4]);
        let one = sp("a", 2);
        assert_eq!(chunks([(&one.series, one.points.as_slice())], 10).len(), 1);
    }
}

//! The in-memory store: a bounded, time-sorted ring per series.
//!
//! Memory is bounded by `ring_capacity × max_series` points. When a ring is full the oldest
//! point (by timestamp) goes; a new series past `max_series` is refused, never silently
//! dropped. Nothing survives a restart; the durable store replaces this for that.

use super::{HistoryQuery, HistoryResult, SeriesInfo, Store, StoreError, Stored, RATE_WINDOW_NS};
use crate::decimate::m4;
use crate::model::{merge_points, Batch, Point, SeriesMap, SeriesPoints};
use crate::server::hub::Hub;
use std::collections::VecDeque;
use std::sync::Mutex;

pub struct MemoryStore {
    ring_capacity: usize,
    max_series: usize,
    series: Mutex<SeriesMap<VecDeque<Point>>>,
    /// Where appended points are shown live, under the same lock as the append: two writes
    /// of one timestamp reach browsers in the order they were stored, so pages agree with
    /// the store on which one won.
    hub: Option<Hub>,
    /// Each series' next offset, for the live feed (only kept with a hub). Taken inside the
    /// `series` lock, so offsets follow the order points were stored.
    next_offsets: Mutex<SeriesMap<i64>>,
}

impl MemoryStore {
    pub fn new(ring_capacity: usize, max_series: usize) -> Self {
        Self {
            ring_capacity: ring_capacity.max(1),
            max_series,
            series: Mutex::default(),
            hub: None,
            next_offsets: Mutex::default(),
        }
    }

    /// Publishes every append to `hub` (see the field's doc).
    pub fn with_hub(mut self, hub: Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Forgets every point: for a live window whose source started over.
    pub fn clear(&self) {
        self.lock().clear();
        self.next_offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// A poisoned lock only means another request panicked mid-append; the rings themselves
    /// are always in a consistent state between single insertions, so keep serving.
    fn lock(&self) -> std::sync::MutexGuard<'_, SeriesMap<VecDeque<Point>>> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The span a rate is measured over: the rate window, or the series' age when younger, but at
/// least one second.
fn rate_span(now_ns: i64, first_ns: i64) -> i64 {
    now_ns
        .saturating_sub(first_ns)
        .clamp(crate::model::NANOS_PER_SEC, RATE_WINDOW_NS)
}

impl MemoryStore {
    /// Merges `batch` into the rings without the series cap: for a durable store in front of
    /// this one, which has checked the cap when it committed. Says what the rings took.
    pub fn append_unchecked(&self, batch: &Batch) -> Stored {
        let mut all = self.lock();
        let mut stored = Stored::default();
        let mut commit = Vec::new();
        for (key, points) in batch.iter() {
            let ring = all.entry(key.clone()).or_default();
            let taken = merge_points(ring, points, self.ring_capacity);
            if !taken.is_empty() {
                stored.points += taken.len();
                stored.series += 1;
                if self.hub.is_some() {
                    commit.push((key.clone(), taken));
                }
            }
        }
        if let Some(hub) = &self.hub {
            // Nothing survives a restart here, so offsets start at 0 in a new stream (the
            // hub's epoch is new each start): clients from before reload.
            let mut next = self.next_offsets.lock().unwrap_or_else(|p| p.into_inner());
            let commit = commit
                .into_iter()
                .map(|(key, points)| {
                    let offset = next.entry(key.clone()).or_insert(0);
                    let first = *offset;
                    *offset += points.len() as i64;
                    (key, first, points)
                })
                .collect();
            hub.publish(commit);
        }
        stored
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn append(&self, batch: Batch) -> Result<Stored, StoreError> {
        {
            let all = self.lock();
            let adding = batch.iter().filter(|(k, _)| !all.contains_key(*k)).count();
            if all.len() + adding > self.max_series {
                return Err(StoreError::TooManySeries {
                    limit: self.max_series,
                    adding,
                });
            }
        }
        Ok(self.append_unchecked(&batch))
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryResult, StoreError> {
        let all = self.lock();
        let ring = all
            .get(&q.series)
            .ok_or_else(|| StoreError::UnknownSeries(q.series.to_string()))?;
        let start = ring.partition_point(|p| p.ts_ns < q.from_ns);
        let points: Vec<Point> = ring
            .range(start..)
            .take_while(|p| p.ts_ns <= q.to_ns)
            .copied()
            .collect();
        drop(all);
        Ok(HistoryResult::from_points(&q, points))
    }

    async fn recent(&self, since_ns: i64, columns: usize) -> Result<Vec<SeriesPoints>, StoreError> {
        let all = self.lock();
        let mut out: Vec<SeriesPoints> = all
            .iter()
            .filter_map(|(key, ring)| {
                let last = ring.back()?.ts_ns;
                let start = ring
                    .partition_point(|p| p.ts_ns < since_ns)
                    .saturating_sub(1);
                let to = last.max(since_ns.saturating_add(1));
                Some(SeriesPoints {
                    series: key.clone(),
                    points: m4(ring.range(start..).copied(), since_ns, to, columns),
                })
            })
            .collect();
        out.sort_by(|a, b| a.series.cmp(&b.series));
        Ok(out)
    }

    async fn list(&self, now_ns: i64) -> Result<Vec<SeriesInfo>, StoreError> {
        let all = self.lock();
        let since = now_ns.saturating_sub(RATE_WINDOW_NS);
        let mut out: Vec<SeriesInfo> = all
            .iter()
            .filter_map(|(key, ring)| {
                let (first, last) = (ring.front()?, ring.back()?);
                let recent = ring.len() - ring.partition_point(|p| p.ts_ns < since);
                Some(SeriesInfo {
                    series: key.clone(),
                    points: ring.len(),
                    first_ns: first.ts_ns,
                    last_ns: last.ts_ns,
                    last_value: last.value,
                    // A series younger than the window is measured over its own age, so a new
                    // 5 Hz series reads 5/s at once, not 5/s × age/60 s.
                    rate: recent as f64 * 1e9 / rate_span(now_ns, first.ts_ns) as f64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.series.cmp(&b.series));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SeriesKey;

    fn key(s: &str) -> SeriesKey {
        SeriesKey::new(s).unwrap()
    }

    fn batch(items: &[(&str, i64, f64)]) -> Batch {
        let mut b = Batch::new();
        for &(s, t, v) in items {
            b.push(key(s), Point::new(t, v).unwrap());
        }
        b
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn ring_keeps_the_newest_points_in_time_order() {
        let store = MemoryStore::new(3, 10);
        block_on(async {
            store
                .append(batch(&[("a", 5, 5.0), ("a", 1, 1.0), ("a", 3, 3.0)]))
                .await
                .unwrap();
            store
                .append(batch(&[("a", 4, 4.0), ("a", 2, 2.0)]))
                .await
                .unwrap();
            let got = store.recent(0, 1000).await.unwrap();
            let ts: Vec<i64> = got[0].points.iter().map(|p| p.ts_ns).collect();
            assert_eq!(ts, vec![3, 4, 5]);
            let stored = store
                .append(batch(&[("a", 0, 0.0), ("a", 6, 6.0)]))
                .await
                .unwrap();
            assert_eq!(
                stored.points, 1,
                "the point older than the full ring is not stored"
            );
        });
    }

    #[test]
    fn rate_counts_recent_points_over_the_series_age() {
        let store = MemoryStore::new(1000, 10);
        let s = crate::model::NANOS_PER_SEC;
        block_on(async {
            // 20 points over the last 4 s: 5 per second, though the window is 60 s.
            let pts: Vec<(&str, i64, f64)> = (0..20)
                .map(|i| ("r", 1000 * s - 4 * s + i * s / 5, 1.0))
                .collect();
            store.append(batch(&pts)).await.unwrap();
            let info = store.list(1000 * s).await.unwrap();
            assert!((info[0].rate - 5.0).abs() < 0.01, "{}", info[0].rate);
            let later = store.list(2000 * s).await.unwrap();
            assert_eq!(later[0].rate, 0.0, "nothing recent, no rate");
        });
    }

    #[test]
    fn recent_is_decimated_to_the_columns() {
        let store = MemoryStore::new(100_000, 10);
        block_on(async {
            let points: Vec<(&str, i64, f64)> =
                (0..50_000).map(|i| ("hf", i, (i % 7) as f64)).collect();
            store.append(batch(&points)).await.unwrap();
            let got = store.recent(0, 100).await.unwrap();
            assert!(
                got[0].points.len() <= 400,
                "{} points for 100 columns",
                got[0].points.len()
            );
            assert_eq!(got[0].points.last().unwrap().ts_ns, 49_999);
        });
    }

    #[test]
    fn recent_keeps_the_latest_point_of_quiet_series() {
        let store = MemoryStore::new(10, 10);
        block_on(async {
            store
                .append(batch(&[
                    ("old", 1, 1.0),
                    ("old", 2, 2.0),
                    ("new", 100, 9.0),
                ]))
                .await
                .unwrap();
            let got = store.recent(50, 1000).await.unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].series.name(), "new");
            assert_eq!(got[1].points, vec![Point::new(2, 2.0).unwrap()]);
        });
    }

    #[test]
    fn series_cap_refuses_the_whole_batch() {
        let store = MemoryStore::new(10, 2);
        block_on(async {
            store.append(batch(&[("a", 1, 1.0)])).await.unwrap();
            let err = store
                .append(batch(&[("a", 2, 2.0), ("b", 1, 1.0), ("c", 1, 1.0)]))
                .await;
            assert_eq!(
                err,
                Err(StoreError::TooManySeries {
                    limit: 2,
                    adding: 2
                })
            );
            let got = store.recent(0, 1000).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                got[0].points.len(),
                1,
                "no point of a refused batch is stored"
            );
            store
                .append(batch(&[("a", 3, 3.0), ("b", 1, 1.0)]))
                .await
                .unwrap();
        });
    }
}

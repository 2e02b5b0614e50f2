//! What a browser holds of the live feed, and how each server message changes it.
//!
//! Pure so it is tested natively; the WASM client wraps it in a signal. Memory stays bounded:
//! only points inside two windows back from the newest time are kept (plus each series' latest
//! point, for the legend), and never more than [`MAX_POINTS_PER_SERIES`] per series.

use crate::model::{merge_points, Point, SeriesKey, SeriesPoints};
use crate::protocol::ServerMsg;
use crate::view::{live_window, DEFAULT_WINDOW_NS};
use std::collections::{BTreeMap, VecDeque};

/// A phone can hold and decimate this many per series without stalling a frame.
pub const MAX_POINTS_PER_SERIES: usize = 200_000;

#[derive(Debug, Clone, PartialEq)]
pub struct FeedState {
    /// Series in name order; legend colours follow this order.
    pub series: BTreeMap<SeriesKey, VecDeque<Point>>,
    pub window_ns: i64,
    /// Server clock minus client clock, learned from snapshots and heartbeats.
    pub clock_offset_ns: i64,
    /// Bumped on every change, so observers can tell frames apart cheaply.
    pub version: u64,
}

impl Default for FeedState {
    fn default() -> Self {
        Self {
            series: BTreeMap::new(),
            window_ns: DEFAULT_WINDOW_NS,
            clock_offset_ns: 0,
            version: 0,
        }
    }
}

impl FeedState {
    /// Applies one message received at `client_now_ns` on the browser's clock.
    pub fn apply(&mut self, msg: ServerMsg, client_now_ns: i64) {
        match msg {
            ServerMsg::Snapshot {
                server_time_ns,
                window_ns,
                series,
            } => {
                self.clock_offset_ns = server_time_ns.saturating_sub(client_now_ns);
                if window_ns > 0 {
                    self.window_ns = window_ns;
                }
                // A snapshot is the whole truth: series that vanished (restart of an
                // in-memory server) must vanish here too.
                self.series.clear();
                self.merge(series);
            }
            ServerMsg::Points { series } => self.merge(series),
            ServerMsg::Heartbeat { server_time_ns } => {
                self.clock_offset_ns = server_time_ns.saturating_sub(client_now_ns);
            }
        }
        self.prune(client_now_ns);
        self.version = self.version.wrapping_add(1);
    }

    fn merge(&mut self, series: Vec<SeriesPoints>) {
        for sp in series {
            let ring = self.series.entry(sp.series).or_default();
            merge_points(ring, &sp.points, MAX_POINTS_PER_SERIES);
        }
    }

    /// The server's clock now, as best this client knows it.
    pub fn server_now(&self, client_now_ns: i64) -> i64 {
        client_now_ns.saturating_add(self.clock_offset_ns)
    }

    /// The newest timestamp of any series.
    pub fn newest_ns(&self) -> Option<i64> {
        self.series
            .values()
            .filter_map(|r| r.back())
            .map(|p| p.ts_ns)
            .max()
    }

    fn prune(&mut self, client_now_ns: i64) {
        let (_, end) = live_window(
            self.server_now(client_now_ns),
            self.newest_ns(),
            self.window_ns,
        );
        let keep_from = end.saturating_sub(self.window_ns.saturating_mul(2));
        for ring in self.series.values_mut() {
            while ring.len() > 1 && ring.front().is_some_and(|p| p.ts_ns < keep_from) {
                ring.pop_front();
            }
        }
    }

    /// Latest point per series in legend order.
    pub fn latest(&self) -> Vec<(SeriesKey, Point)> {
        self.series
            .iter()
            .filter_map(|(k, r)| r.back().map(|p| (k.clone(), *p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn sp(name: &str, pts: &[(i64, f64)]) -> SeriesPoints {
        SeriesPoints {
            series: SeriesKey::new(name).unwrap(),
            points: pts
                .iter()
                .map(|&(t, v)| Point::new(t, v).unwrap())
                .collect(),
        }
    }

    #[test]
    fn snapshot_replaces_and_sets_the_clock() {
        let mut f = FeedState::default();
        f.apply(
            ServerMsg::Points {
                series: vec![sp("gone", &[(100 * S, 1.0)])],
            },
            100 * S,
        );
        f.apply(
            ServerMsg::Snapshot {
                server_time_ns: 105 * S,
                window_ns: 60 * S,
                series: vec![sp("a", &[(101 * S, 1.0), (102 * S, 2.0)])],
            },
            100 * S,
        );
        assert_eq!(f.clock_offset_ns, 5 * S);
        assert_eq!(f.series.len(), 1);
        assert_eq!(f.latest()[0].1.value, 2.0);
    }

    #[test]
    fn live_points_merge_in_order_without_duplicates() {
        let mut f = FeedState::default();
        let snap = vec![sp("a", &[(S, 1.0), (3 * S, 3.0)])];
        f.apply(
            ServerMsg::Snapshot {
                server_time_ns: 3 * S,
                window_ns: 60 * S,
                series: snap,
            },
            3 * S,
        );
        // The live message overlapping the snapshot repeats a point; it must not double.
        f.apply(
            ServerMsg::Points {
                series: vec![sp("a", &[(3 * S, 3.0), (2 * S, 2.0), (4 * S, 4.0)])],
            },
            4 * S,
        );
        let ts: Vec<i64> = f
            .series
            .values()
            .next()
            .unwrap()
            .iter()
            .map(|p| p.ts_ns / S)
            .collect();
        assert_eq!(ts, vec![1, 2, 3, 4]);
        assert!(f.version >= 2);
    }

    #[test]
    fn old_points_are_pruned_but_the_latest_stays() {
        let mut f = FeedState::default();
        f.apply(
            ServerMsg::Snapshot {
                server_time_ns: 1000 * S,
                window_ns: 10 * S,
                series: vec![
                    sp("old", &[(S, 1.0), (2 * S, 2.0)]),
                    sp("new", &[(975 * S, 0.0), (999 * S, 1.0)]),
                ],
            },
            1000 * S,
        );
        assert_eq!(
            f.series[&SeriesKey::new("old").unwrap()].len(),
            1,
            "latest kept for the legend"
        );
        assert_eq!(
            f.series[&SeriesKey::new("new").unwrap()].len(),
            1,
            "975 s is two windows back"
        );
    }
}

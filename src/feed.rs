//! What a browser holds of the live feed, and how each server message changes it.
//!
//! Pure so it is tested natively; the WASM client wraps it in a signal. Memory stays bounded:
//! only points inside two windows back from the newest time are kept (plus each series' latest
//! point, for the legend), and never more than [`MAX_POINTS_PER_SERIES`] per series.

use crate::history_cache::LiveCoverage;
use crate::model::{merge_points, Point, SeriesKey};
use crate::protocol::{Delta, Resume, SeriesHead, SeriesOffset, ServerMsg};
use crate::view::{live_window, DEFAULT_WINDOW_NS};
use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// The stream the offsets below belong to (`None` before the first snapshot).
    pub epoch: Option<String>,
    /// Per series, the last offset held: where a reconnect resumes.
    pub offsets: BTreeMap<SeriesKey, i64>,
    /// This connection's series ids.
    ids: HashMap<u32, SeriesKey>,
    /// Connections that continued what the page held, and ones that had to start over: the
    /// page shows both (tests read them; a user can tell a gap-free recovery from a reload).
    pub resumes: u32,
    pub reloads: u32,
    /// From when on the feed holds every point of every series (`None` before a snapshot):
    /// the snapshot's window start, moving up as old points are dropped.
    covered_from_ns: Option<i64>,
    /// The snapshot's server time: points after it arrived as deltas, at full resolution.
    raw_from_ns: i64,
    /// The snapshot's column width: how coarse the feed's oldest part may be.
    snapshot_column_ns: i64,
}

impl Default for FeedState {
    fn default() -> Self {
        Self {
            series: BTreeMap::new(),
            window_ns: DEFAULT_WINDOW_NS,
            clock_offset_ns: 0,
            version: 0,
            epoch: None,
            offsets: BTreeMap::new(),
            ids: HashMap::new(),
            resumes: 0,
            reloads: 0,
            covered_from_ns: None,
            raw_from_ns: 0,
            snapshot_column_ns: 1,
        }
    }
}

/// A delta that does not continue what the client holds: the connection is not to be
/// trusted any more, and the client reconnects (resuming from what it holds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("a delta names series id {0}, which this connection never announced")]
    UnknownId(u32),
    #[error("offsets of {series} jump from {held} to {next}: points would be missing")]
    Gap {
        series: String,
        held: i64,
        next: i64,
    },
    #[error("a delta of {series} has {why}")]
    Malformed { series: String, why: &'static str },
}

impl FeedState {
    /// Applies one text message received at `client_now_ns` on the browser's clock.
    pub fn apply(&mut self, msg: ServerMsg, client_now_ns: i64) {
        match msg {
            ServerMsg::Snapshot {
                epoch,
                server_time_ns,
                window_ns,
                width,
                series,
            } => {
                self.clock_offset_ns = server_time_ns.saturating_sub(client_now_ns);
                if window_ns > 0 {
                    self.window_ns = window_ns;
                }
                self.covered_from_ns = Some(server_time_ns.saturating_sub(self.window_ns));
                self.raw_from_ns = server_time_ns;
                self.snapshot_column_ns =
                    (self.window_ns / i64::try_from(width.max(1)).unwrap_or(i64::MAX)).max(1);
                // A snapshot is the whole truth: series that vanished (restart of an
                // in-memory server) must vanish here too.
                self.series.clear();
                self.offsets.clear();
                self.ids.clear();
                self.epoch = Some(epoch);
                for s in series {
                    self.learn(&s.head);
                    let ring = self.series.entry(s.head.series).or_default();
                    merge_points(ring, &s.points, MAX_POINTS_PER_SERIES);
                }
            }
            ServerMsg::Resumed {
                epoch,
                server_time_ns,
                series,
            } => {
                self.clock_offset_ns = server_time_ns.saturating_sub(client_now_ns);
                self.epoch = Some(epoch);
                self.ids.clear();
                self.resumes = self.resumes.wrapping_add(1);
                for head in &series {
                    self.learn(head);
                }
            }
            ServerMsg::Series(head) => self.learn(&head),
            ServerMsg::Reload { .. } => {
                // A snapshot follows; until then show nothing stale as if it were current.
                self.series.clear();
                self.offsets.clear();
                self.ids.clear();
                self.epoch = None;
                self.covered_from_ns = None;
                self.reloads = self.reloads.wrapping_add(1);
            }
            ServerMsg::Heartbeat { server_time_ns } => {
                self.clock_offset_ns = server_time_ns.saturating_sub(client_now_ns);
            }
            ServerMsg::Error { .. } | ServerMsg::Status { .. } => return,
        }
        self.prune(client_now_ns);
        self.version = self.version.wrapping_add(1);
    }

    fn learn(&mut self, head: &SeriesHead) {
        self.ids.insert(head.id, head.series.clone());
        self.offsets.insert(head.series.clone(), head.offset);
        self.series.entry(head.series.clone()).or_default();
    }

    /// Applies a binary delta. Every entry must continue its series' offsets; one that does
    /// not is refused before anything of the frame is taken.
    pub fn apply_delta(&mut self, delta: Delta, client_now_ns: i64) -> Result<(), FeedError> {
        let mut next: HashMap<u32, i64> = HashMap::new();
        for d in &delta.series {
            let key = self.ids.get(&d.id).ok_or(FeedError::UnknownId(d.id))?;
            let held = next
                .get(&d.id)
                .copied()
                .or_else(|| self.offsets.get(key).copied())
                .unwrap_or(-1);
            let bad = |why| FeedError::Malformed {
                series: key.to_string(),
                why,
            };
            if Some(d.first_offset) != held.checked_add(1) {
                return Err(FeedError::Gap {
                    series: key.to_string(),
                    held,
                    next: d.first_offset,
                });
            }
            if d.last_offset < d.first_offset {
                return Err(bad("an empty or backwards offset range"));
            }
            // Exact frames carry one point per offset; coarsened ones at most that many.
            let span = u64::try_from(d.last_offset - d.first_offset).unwrap_or(u64::MAX);
            let count = d.points.len() as u64;
            if count > span.saturating_add(1) || (!delta.coarsened && count != span + 1) {
                return Err(bad("a point count that does not match its offsets"));
            }
            next.insert(d.id, d.last_offset);
        }
        for d in delta.series {
            let Some(key) = self.ids.get(&d.id).cloned() else {
                continue;
            };
            // A coarsened frame is decimated: the feed is raw again only after it.
            if delta.coarsened {
                if let Some(last) = d.points.last() {
                    self.raw_from_ns = self.raw_from_ns.max(last.ts_ns.saturating_add(1));
                }
            }
            let ring = self.series.entry(key.clone()).or_default();
            merge_points(ring, &d.points, MAX_POINTS_PER_SERIES);
            self.offsets.insert(key, d.last_offset);
        }
        self.prune(client_now_ns);
        self.version = self.version.wrapping_add(1);
        Ok(())
    }

    /// The series a connection's id stands for.
    pub fn series_of(&self, id: u32) -> Option<&SeriesKey> {
        self.ids.get(&id)
    }

    /// What to send with the next subscribe so the server continues where this stopped.
    pub fn resume(&self) -> Option<Resume> {
        Some(Resume {
            epoch: self.epoch.clone()?,
            offsets: self
                .offsets
                .iter()
                .map(|(k, &offset)| SeriesOffset {
                    series: k.clone(),
                    offset,
                })
                .collect(),
        })
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
        let mut covered = keep_from;
        for ring in self.series.values_mut() {
            while ring.len() > 1 && ring.front().is_some_and(|p| p.ts_ns < keep_from) {
                ring.pop_front();
            }
            // A full ring dropped its oldest points for room: it holds less than the window.
            if ring.len() >= MAX_POINTS_PER_SERIES {
                if let Some(front) = ring.front() {
                    covered = covered.max(front.ts_ns);
                }
            }
        }
        self.covered_from_ns = self.covered_from_ns.map(|c| c.max(covered));
    }

    /// What the feed can draw without help from history (`None` before the first snapshot).
    pub fn coverage(&self) -> Option<LiveCoverage> {
        Some(LiveCoverage {
            full_from: self.covered_from_ns?,
            raw_from: self.raw_from_ns,
            column_ns: self.snapshot_column_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DeltaSeries, SnapshotSeries};

    const S: i64 = 1_000_000_000;

    fn key(name: &str) -> SeriesKey {
        SeriesKey::new(name).unwrap()
    }

    fn pts(p: &[(i64, f64)]) -> Vec<Point> {
        p.iter().map(|&(t, v)| Point::new(t, v).unwrap()).collect()
    }

    /// (time, value) pairs.
    type Raw<'a> = &'a [(i64, f64)];

    /// A series of a snapshot: name, id, offset and points.
    type Shown<'a> = (&'a str, u32, i64, Raw<'a>);

    fn snap(server_time_ns: i64, window_ns: i64, series: &[Shown<'_>]) -> ServerMsg {
        ServerMsg::Snapshot {
            epoch: "e".into(),
            server_time_ns,
            window_ns,
            width: 100,
            series: series
                .iter()
                .map(|&(name, id, offset, p)| SnapshotSeries {
                    head: SeriesHead {
                        id,
                        series: key(name),
                        offset,
                    },
                    points: pts(p),
                })
                .collect(),
        }
    }

    /// Entries of a delta: id, first offset, points.
    fn delta(entries: &[(u32, i64, Raw<'_>)]) -> Delta {
        Delta {
            coarsened: false,
            series: entries
                .iter()
                .map(|&(id, first, p)| DeltaSeries {
                    id,
                    first_offset: first,
                    last_offset: first + p.len() as i64 - 1,
                    points: pts(p),
                })
                .collect(),
        }
    }

    #[test]
    fn snapshot_replaces_and_sets_the_clock() {
        let mut f = FeedState::default();
        f.apply(
            snap(100 * S, 60 * S, &[("gone", 0, 0, &[(100 * S, 1.0)])]),
            100 * S,
        );
        f.apply(
            snap(
                105 * S,
                60 * S,
                &[("a", 7, 1, &[(101 * S, 1.0), (102 * S, 2.0)])],
            ),
            100 * S,
        );
        assert_eq!(f.clock_offset_ns, 5 * S);
        assert_eq!(f.series.len(), 1);
        assert_eq!(f.series[&key("a")].back().unwrap().value, 2.0);
        assert_eq!(f.resume().unwrap().offsets[0].offset, 1);
    }

    #[test]
    fn coverage_starts_at_the_snapshot_window_and_follows_pruning() {
        let mut f = FeedState::default();
        assert_eq!(f.coverage(), None);
        f.apply(
            snap(1000 * S, 60 * S, &[("a", 0, 0, &[(990 * S, 1.0)])]),
            1000 * S,
        );
        let c = f.coverage().unwrap();
        assert_eq!((c.full_from, c.raw_from), (940 * S, 1000 * S));
        assert_eq!(c.column_ns, 60 * S / 100);
        // Two windows later the oldest minute is dropped, and so is its coverage.
        f.apply(
            ServerMsg::Heartbeat {
                server_time_ns: 1100 * S,
            },
            1100 * S,
        );
        // A coarsened frame: the feed is raw only after its last point.
        let mut d = delta(&[(0, 1, &[(1090 * S, 2.0)])]);
        d.coarsened = true;
        f.apply_delta(d, 1100 * S).unwrap();
        assert_eq!(f.coverage().unwrap().raw_from, 1090 * S + 1);
        assert_eq!(f.coverage().unwrap().full_from, 980 * S);
        f.apply(
            ServerMsg::Reload {
                reason: "test".into(),
            },
            1100 * S,
        );
        assert_eq!(f.coverage(), None);
    }

    #[test]
    fn deltas_continue_offsets_merge_in_order_and_refuse_gaps() {
        let mut f = FeedState::default();
        f.apply(
            snap(3 * S, 60 * S, &[("a", 0, 1, &[(S, 1.0), (3 * S, 3.0)])]),
            3 * S,
        );
        // Repeating a point the snapshot has (same timestamp) must not double it.
        f.apply_delta(
            delta(&[
                (0, 2, &[(3 * S, 3.0), (2 * S, 2.0)]),
                (0, 4, &[(4 * S, 4.0)]),
            ]),
            4 * S,
        )
        .unwrap();
        let ts: Vec<i64> = f.series[&key("a")].iter().map(|p| p.ts_ns / S).collect();
        assert_eq!(ts, vec![1, 2, 3, 4]);
        assert_eq!(f.offsets[&key("a")], 4);
        let before = f.clone();
        // Offset 5 missing: refused whole, nothing taken.
        let gap = f
            .apply_delta(delta(&[(0, 6, &[(6 * S, 6.0)])]), 6 * S)
            .unwrap_err();
        assert!(matches!(
            gap,
            FeedError::Gap {
                held: 4,
                next: 6,
                ..
            }
        ));
        assert_eq!(f, before);
        assert_eq!(
            f.apply_delta(delta(&[(9, 0, &[(6 * S, 6.0)])]), 6 * S)
                .unwrap_err(),
            FeedError::UnknownId(9)
        );
        // A point count that does not match an exact frame's offsets is refused.
        let mut short = delta(&[(0, 5, &[(6 * S, 6.0)])]);
        short.series[0].last_offset = 6;
        assert!(matches!(
            f.apply_delta(short, 6 * S),
            Err(FeedError::Malformed { .. })
        ));
        // A new series is announced, then its deltas apply.
        f.apply(
            ServerMsg::Series(SeriesHead {
                id: 9,
                series: key("b"),
                offset: -1,
            }),
            6 * S,
        );
        f.apply_delta(delta(&[(9, 0, &[(6 * S, 6.0)])]), 6 * S)
            .unwrap();
        assert_eq!(f.offsets[&key("b")], 0);
    }

    #[test]
    fn resumed_keeps_the_data_and_renumbers_reload_drops_it() {
        let mut f = FeedState::default();
        f.apply(
            snap(3 * S, 60 * S, &[("a", 0, 1, &[(S, 1.0), (3 * S, 3.0)])]),
            3 * S,
        );
        f.apply(
            ServerMsg::Resumed {
                epoch: "e".into(),
                server_time_ns: 3 * S,
                series: vec![SeriesHead {
                    id: 5,
                    series: key("a"),
                    offset: 1,
                }],
            },
            3 * S,
        );
        assert_eq!(f.series[&key("a")].len(), 2);
        f.apply_delta(delta(&[(5, 2, &[(4 * S, 4.0)])]), 4 * S)
            .unwrap();
        assert_eq!(
            f.apply_delta(delta(&[(0, 3, &[(5 * S, 4.0)])]), 4 * S)
                .unwrap_err(),
            FeedError::UnknownId(0)
        );
        f.apply(
            ServerMsg::Reload {
                reason: "gone".into(),
            },
            4 * S,
        );
        assert!(f.series.is_empty() && f.resume().is_none());
    }

    #[test]
    fn old_points_are_pruned_but_the_latest_stays() {
        let mut f = FeedState::default();
        f.apply(
            snap(
                1000 * S,
                10 * S,
                &[
                    ("old", 0, 1, &[(S, 1.0), (2 * S, 2.0)]),
                    ("new", 1, 1, &[(975 * S, 0.0), (999 * S, 1.0)]),
                ],
            ),
            1000 * S,
        );
        assert_eq!(f.series[&key("old")].len(), 1, "latest kept for the legend");
        assert_eq!(f.series[&key("new")].len(), 1, "975 s is two windows back");
    }
}

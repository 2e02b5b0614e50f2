//! Fan-out of committed points to live sessions, and the replay buffer they resume from.
//!
//! The store publishes each commit here in commit order, with the offsets it gave the points.
//! Each series entry is encoded to its wire form once ([`Entry::wire`]), with a stream-wide
//! series id, so a session builds a delta frame by concatenating shared bytes: a thousand
//! viewers cost one encoding, whatever each of them subscribed to.
//!
//! The hub keeps the newest commits, up to [`Hub::new`]'s point budget, so a client that
//! reconnects (or a session that fell behind the channel) gets exactly the offsets it missed
//! when they are still here. Per series it knows the lowest offset it can replay from (the
//! *floor*): at start that is the store's next offset (older points are on disk, not here),
//! later it rises as old commits are let go. A resume from below the floor is refused and the
//! client reloads, explicitly.

use crate::model::{Point, SeriesKey, SeriesMap};
use crate::protocol::SeriesHead;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::broadcast;

/// One series' points of one commit, offsets `first_offset..first_offset + points.len()`.
#[derive(Debug)]
pub struct Entry {
    pub series: SeriesKey,
    pub id: u32,
    pub first_offset: i64,
    pub points: Vec<Point>,
    /// This entry as it appears inside a delta frame (see [`crate::protocol::Delta`]),
    /// encoded by the first session that sends it: a commit nobody watches costs no encoding.
    wire: OnceLock<Vec<u8>>,
}

impl Entry {
    pub fn wire(&self) -> &[u8] {
        self.wire
            .get_or_init(|| entry_wire(self.id, self.first_offset, &self.points))
    }

    pub fn last_offset(&self) -> i64 {
        self.first_offset + self.points.len() as i64 - 1
    }
}

/// One commit, as every session receives it.
#[derive(Debug)]
pub struct Published {
    pub entries: Vec<Entry>,
    /// The stream position this commit belongs to ([`Hub::restart`] starts a new one): a
    /// session subscribed before a restart reloads rather than take it.
    pub generation: u64,
    /// The delta of all entries as a WebSocket frame: what a session watching every series of
    /// the commit, with nothing else queued, writes as is (shared bytes, no copy per
    /// connection). Built by the first session that needs it.
    frame: OnceLock<axum::body::Bytes>,
}

impl Published {
    pub fn frame(&self) -> axum::body::Bytes {
        self.frame
            .get_or_init(|| {
                let size = 8 + self.entries.iter().map(|e| e.wire().len()).sum::<usize>();
                let mut frame = Vec::with_capacity(size);
                crate::protocol::frame_header(&mut frame, false, self.entries.len());
                for e in &self.entries {
                    frame.extend_from_slice(e.wire());
                }
                super::ws::ws_frame(super::ws::OP_BINARY, &frame)
            })
            .clone()
    }

    pub fn points(&self) -> usize {
        self.entries.iter().map(|e| e.points.len()).sum()
    }
}

/// Where a series stands in this stream.
#[derive(Debug, Clone, Copy)]
struct Track {
    id: u32,
    /// One past the newest offset published.
    next: i64,
    /// The lowest offset the buffer can replay.
    floor: i64,
}

#[derive(Debug)]
struct Inner {
    epoch: String,
    series: SeriesMap<Track>,
    next_id: u32,
    buffer: VecDeque<Arc<Published>>,
    buffered_points: usize,
    /// Raised by every [`Hub::restart`].
    generation: u64,
}

#[derive(Clone, Debug)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Arc<Published>>,
    replay_points: usize,
}

/// Points of one buffered entry a resuming client missed: the entry past its first `skip`
/// points. Shares the buffer's memory; nothing is copied until it is encoded.
#[derive(Debug, Clone)]
pub struct Missed {
    pub commit: Arc<Published>,
    pub entry: usize,
    pub skip: usize,
}

impl Missed {
    pub fn entry(&self) -> &Entry {
        &self.commit.entries[self.entry]
    }

    pub fn first_offset(&self) -> i64 {
        self.entry().first_offset + self.skip as i64
    }

    pub fn points(&self) -> &[Point] {
        &self.entry().points[self.skip..]
    }
}

/// Why a resume cannot continue what the client holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the stream was reset (the server's data is not the one this page saw)")]
    Reset,
    #[error("points of {0} missed since the last connection are no longer in the replay buffer")]
    Gone(String),
}

/// What a session holds after subscribing: the channel and where each series stood then.
#[derive(Debug)]
pub struct Subscription {
    pub rx: broadcast::Receiver<Arc<Published>>,
    pub epoch: String,
    /// The stream position subscribed to (see [`Published::generation`]).
    pub generation: u64,
    /// Per series known to the stream: its id and the last offset published (-1: none).
    pub heads: Vec<SeriesHead>,
}

impl Hub {
    /// A hub whose channel holds `capacity` commits and whose replay buffer about
    /// `replay_points` points (whole commits; at least the newest one).
    pub fn new(capacity: usize, replay_points: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            inner: Arc::new(Mutex::new(Inner {
                epoch: new_epoch(),
                series: SeriesMap::default(),
                next_id: 0,
                buffer: VecDeque::new(),
                buffered_points: 0,
                generation: 0,
            })),
            tx,
            replay_points,
        }
    }

    /// A poisoned lock only means a panic elsewhere between whole updates; keep serving.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the stream of a store that already holds data: `epoch` names the store (so
    /// offsets from another one are never taken for these), `next` each series' next offset.
    pub fn start(&self, epoch: String, next: impl IntoIterator<Item = (SeriesKey, i64)>) {
        let mut inner = self.lock();
        inner.epoch = epoch;
        for (key, next) in next {
            let id = inner.next_id;
            inner.next_id += 1;
            inner.series.insert(
                key,
                Track {
                    id,
                    next,
                    floor: next,
                },
            );
        }
    }

    /// Starts the stream over at a new position (a shared store that restarted, or a place
    /// in its log this instance lost): the buffer is dropped and every series' floor is its
    /// next offset, so sessions reload rather than continue from offsets that no longer
    /// follow. Series keep their ids. `next` is complete: a series it lacks was emptied.
    pub fn restart(&self, epoch: String, next: impl IntoIterator<Item = (SeriesKey, i64)>) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.epoch = epoch;
        inner.generation += 1;
        inner.buffer.clear();
        inner.buffered_points = 0;
        for track in inner.series.values_mut() {
            track.next = 0;
            track.floor = 0;
        }
        for (key, next) in next {
            let next_id = &mut inner.next_id;
            let track = inner.series.entry(key).or_insert_with(|| {
                let id = *next_id;
                *next_id += 1;
                Track {
                    id,
                    next: 0,
                    floor: 0,
                }
            });
            track.next = next;
            track.floor = next;
        }
    }

    pub fn epoch(&self) -> String {
        self.lock().epoch.clone()
    }

    /// Publishes one commit: per series its first offset and points (offsets consecutive), in
    /// the order the store assigned them. Nobody listening is fine: the buffer still keeps it.
    pub fn publish(&self, commit: Vec<(SeriesKey, i64, Vec<Point>)>) {
        if commit.is_empty() {
            return;
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        let entries: Vec<Entry> = commit
            .into_iter()
            .filter(|(_, _, points)| !points.is_empty())
            .map(|(series, first_offset, points)| {
                let next_id = &mut inner.next_id;
                let track = inner.series.entry(series.clone()).or_insert_with(|| {
                    let id = *next_id;
                    *next_id += 1;
                    Track {
                        id,
                        next: first_offset,
                        floor: first_offset,
                    }
                });
                track.next = track.next.max(first_offset + points.len() as i64);
                Entry {
                    series,
                    id: track.id,
                    first_offset,
                    points,
                    wire: OnceLock::new(),
                }
            })
            .collect();
        let published = Arc::new(Published {
            entries,
            frame: OnceLock::new(),
            generation: inner.generation,
        });
        let inner = &mut *guard;
        inner.buffered_points += published.points();
        inner.buffer.push_back(published.clone());
        // Keep the newest commit even when it alone is over budget: the floor must not rise
        // past what was just published, or a session that lagged by one would reload.
        while inner.buffered_points > self.replay_points && inner.buffer.len() > 1 {
            let Some(old) = inner.buffer.pop_front() else {
                break;
            };
            inner.buffered_points -= old.points();
            for e in &old.entries {
                if let Some(t) = inner.series.get_mut(&e.series) {
                    t.floor = t.floor.max(e.last_offset() + 1);
                }
            }
        }
        // Sent under the lock, so the channel's order is the buffer's order.
        let _ = self.tx.send(published);
    }

    /// Subscribes and reads every series' position at the same instant: whatever is
    /// published after those positions arrives on the channel.
    pub fn subscribe(&self) -> Subscription {
        let inner = self.lock();
        Subscription {
            rx: self.tx.subscribe(),
            epoch: inner.epoch.clone(),
            generation: inner.generation,
            heads: heads(&inner),
        }
    }

    /// Subscribes and collects what a client holding `held` (series and last offset) missed:
    /// for each series, every buffered point past its offset, in offset order; and for every
    /// other series `takes` accepts, all of it (the client never heard of it). Fails when a
    /// missed point is not buffered any more, or the offsets are not this stream's. The lock
    /// is held only to check and to copy references; the points are cut after.
    pub fn resume(
        &self,
        epoch: &str,
        held: &HashMap<SeriesKey, i64>,
        takes: impl Fn(&SeriesKey) -> bool,
    ) -> Result<(Subscription, Vec<Missed>), ReplayError> {
        let (sub, from, buffer) = {
            let inner = self.lock();
            if epoch != inner.epoch {
                return Err(ReplayError::Reset);
            }
            let mut from: HashMap<SeriesKey, i64> = HashMap::with_capacity(held.len());
            for (key, &offset) in held {
                match inner.series.get(key) {
                    // Never written here: the client can only hold nothing of it.
                    None if offset < 0 => {}
                    None => return Err(ReplayError::Reset),
                    Some(t) if offset >= t.next => return Err(ReplayError::Reset),
                    Some(t) if offset < t.floor - 1 => {
                        return Err(ReplayError::Gone(key.to_string()))
                    }
                    Some(_) => {}
                }
                from.insert(key.clone(), offset);
            }
            for (key, t) in &inner.series {
                if held.contains_key(key) || !takes(key) || t.next == 0 {
                    continue;
                }
                if t.floor > 0 {
                    return Err(ReplayError::Gone(key.to_string()));
                }
                from.insert(key.clone(), -1);
            }
            let buffer: Vec<Arc<Published>> = inner.buffer.iter().cloned().collect();
            let sub = Subscription {
                rx: self.tx.subscribe(),
                epoch: inner.epoch.clone(),
                generation: inner.generation,
                heads: heads(&inner),
            };
            (sub, from, buffer)
        };
        let mut missed = Vec::new();
        for commit in buffer {
            for (entry, e) in commit.entries.iter().enumerate() {
                let Some(&held) = from.get(&e.series) else {
                    continue;
                };
                let skip = usize::try_from(held + 1 - e.first_offset).unwrap_or(0);
                if skip < e.points.len() {
                    missed.push(Missed {
                        commit: commit.clone(),
                        entry,
                        skip,
                    });
                }
            }
        }
        Ok((sub, missed))
    }

    /// Series the stream knows.
    pub fn series_count(&self) -> usize {
        self.lock().series.len()
    }

    /// Points the replay buffer holds now (for tests and metrics).
    pub fn buffered_points(&self) -> usize {
        self.lock().buffered_points
    }
}

/// Every series of the stream with its id and last published offset.
fn heads(inner: &Inner) -> Vec<SeriesHead> {
    inner
        .series
        .iter()
        .map(|(k, t)| SeriesHead {
            id: t.id,
            series: k.clone(),
            offset: t.next - 1,
        })
        .collect()
}

/// One series entry of a delta frame, encoded once for every session.
fn entry_wire(id: u32, first_offset: i64, points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + points.len() * 4);
    let last_offset = first_offset + points.len() as i64 - 1;
    crate::protocol::encode_entry(&mut out, id, (first_offset, last_offset), points);
    out
}

/// A name for a stream nobody else has: 64 random bits from the standard library's per-process
/// hash keys, mixed with the clock.
pub fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(crate::server::now_ns());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Delta;

    fn key(name: &str) -> SeriesKey {
        SeriesKey::new(name).unwrap()
    }

    fn pts(ts: std::ops::Range<i64>) -> Vec<Point> {
        ts.map(|t| Point::new(t, t as f64).unwrap()).collect()
    }

    #[test]
    fn entries_concatenate_into_a_readable_frame() {
        let hub = Hub::new(16, 1_000);
        let sub = hub.subscribe();
        let mut rx = sub.rx;
        hub.publish(vec![(key("a"), 0, pts(0..3)), (key("b"), 0, pts(10..12))]);
        let p = rx.try_recv().unwrap();
        let mut frame = vec![crate::protocol::DELTA_FRAME, 0, 2];
        for e in &p.entries {
            frame.extend_from_slice(e.wire());
        }
        assert_eq!(super::super::ws::ws_frame(2, &frame), p.frame());
        let d = Delta::decode(&frame).unwrap();
        assert_eq!(d.series.len(), 2);
        assert_eq!(d.series[1].points, pts(10..12));
        assert_eq!((d.series[0].first_offset, d.series[0].last_offset), (0, 2));
    }

    #[test]
    fn resume_replays_exactly_what_was_missed_or_says_why_not() {
        let hub = Hub::new(16, 10);
        hub.start("e".into(), [(key("old"), 100)]);
        hub.publish(vec![(key("a"), 0, pts(0..4))]);
        hub.publish(vec![(key("a"), 4, pts(4..6)), (key("old"), 100, pts(0..1))]);
        let held = |h: &[(&str, i64)]| -> HashMap<SeriesKey, i64> {
            h.iter().map(|&(k, o)| (key(k), o)).collect()
        };
        let all = |_: &SeriesKey| true;
        let (_, missed) = hub
            .resume("e", &held(&[("a", 2), ("old", 99)]), all)
            .unwrap();
        let got: Vec<(i64, i64)> = missed
            .iter()
            .map(|m| (m.first_offset(), m.entry().last_offset()))
            .collect();
        assert_eq!(got, vec![(3, 3), (4, 5), (100, 100)]);
        assert_eq!(
            hub.resume("other", &held(&[]), all).unwrap_err(),
            ReplayError::Reset
        );
        // Offset 98 of "old" was never in the buffer (it was on disk before the start).
        let old_gone = hub.resume("e", &held(&[("a", 5), ("old", 97)]), all);
        assert!(matches!(old_gone, Err(ReplayError::Gone(_))));
        // Ahead of the stream: not this stream's offsets.
        let ahead = hub.resume("e", &held(&[("a", 9), ("old", 100)]), all);
        assert_eq!(ahead.unwrap_err(), ReplayError::Reset);
        // A series the client never heard of is replayed whole while the buffer has all of
        // it, and is a reload once it does not ("old" was on disk before the start).
        let (_, missed) = hub.resume("e", &held(&[("old", 100)]), all).unwrap();
        assert_eq!(missed[0].first_offset(), 0);
        let never_saw_old = hub.resume("e", &held(&[("a", 5)]), all);
        assert!(matches!(never_saw_old, Err(ReplayError::Gone(_))));
        assert!(hub
            .resume("e", &held(&[("a", 5)]), |k| k.name() == "a")
            .is_ok());
        // Past the budget the oldest commit goes and the floor rises with it.
        hub.publish(vec![(key("a"), 6, pts(6..12))]);
        let a_gone = hub.resume("e", &held(&[("a", 2), ("old", 100)]), all);
        assert!(matches!(a_gone, Err(ReplayError::Gone(_))));
        assert!(hub
            .resume("e", &held(&[("a", 5), ("old", 100)]), all)
            .is_ok());
        assert!(hub.buffered_points() <= 10);
    }
}

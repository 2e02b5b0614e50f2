//! Messages on the `/ws` live feed, shared by the server and the WASM client. `docs/PROTOCOL.md`
//! is the description for people; this module is the one for machines.
//!
//! The client speaks first: a [`ClientMsg::Subscribe`] names the series it watches, its time
//! window, its pixel width and how many updates per second it wants, and optionally where its
//! last connection stopped ([`Resume`]). The server answers with a [`ServerMsg::Snapshot`]
//! (history of the window, M4 to the width), or [`ServerMsg::Resumed`] when it can replay
//! exactly what the client missed, or [`ServerMsg::Reload`] and then a snapshot when it cannot.
//! Live points follow as binary [`Delta`] frames, coalesced to the asked rate.
//!
//! Every point a series accepts takes the next *offset* of that series in the store. Deltas
//! carry offset ranges, so a client always knows the last offset it holds and can tell a gap:
//! offsets within a stream (one `epoch`) never repeat and never go back.

use crate::chunk::{self, get_varint, put_varint, unzigzag, zigzag};
use crate::model::{Point, SeriesKey};
use serde::{Deserialize, Serialize};

/// Often enough to notice a dead peer within seconds, rare enough to cost nothing.
pub const HEARTBEAT_INTERVAL_MS: u32 = 5_000;

/// A peer heard from not at all for this long is taken for dead, by the client (which then
/// reconnects) and by the server (which then drops the connection).
pub const SILENCE_TIMEOUT_MS: u32 = 3 * HEARTBEAT_INTERVAL_MS;

/// Updates per second a client gets when it does not say: one per frame of a 60 Hz screen.
pub const DEFAULT_MAX_RATE: u32 = 60;
/// Most updates per second the server sends one connection: above a 120 Hz screen nobody sees
/// the difference, and each update costs a frame.
pub const MAX_RATE: u32 = 120;

/// WebSocket close code sent when the server shuts down: "going away", so clients reconnect.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a client that broke the protocol (an unreadable message, no subscription in
/// time); the reason names what was wrong.
pub const CLOSE_PROTOCOL_ERROR: u16 = 4002;
/// Close code for a client that stayed too far behind: it should reconnect and resume.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code for a client not heard from for [`SILENCE_TIMEOUT_MS`].
pub const CLOSE_SILENT: u16 = 4009;

/// What a client may send. JSON text frames, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Watch these series from now on (replaces any earlier subscription).
    Subscribe(Subscribe),
    /// The page is hidden: send nothing but heartbeats until the next `subscribe`.
    Pause,
    /// Proof of life; browsers cannot send WebSocket pings themselves.
    Heartbeat,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// The series to watch; empty means every series, including ones that appear later.
    #[serde(default, deserialize_with = "strict_keys")]
    pub series: Vec<SeriesKey>,
    /// The window of history the snapshot covers; the server's `--window` when absent.
    #[serde(default)]
    pub window_ns: Option<i64>,
    /// Pixel columns the snapshot is decimated to (and coarsened deltas, when the client falls
    /// behind); the server's default when absent.
    #[serde(default)]
    pub width: Option<usize>,
    /// Most delta frames per second ([`DEFAULT_MAX_RATE`] when absent, at most [`MAX_RATE`]).
    #[serde(default)]
    pub max_rate: Option<u32>,
    /// Where the previous connection stopped, to get exactly what was missed.
    #[serde(default)]
    pub resume: Option<Resume>,
}

/// Series named in a subscribe: each `{"series", "labels"}` and nothing else. A typo such as
/// `"lables"` would otherwise watch another series (the bare name) without a word.
fn strict_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SeriesKey>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        series: String,
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
    }
    Vec::<Strict>::deserialize(d)?
        .into_iter()
        .map(|k| SeriesKey::with_labels(k.series, k.labels).map_err(serde::de::Error::custom))
        .collect()
}

/// The stream a client last saw and the last offset it holds per series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    pub epoch: String,
    pub offsets: Vec<SeriesOffset>,
}

/// A series and an offset in it: the last one a snapshot covers or a client holds (-1: none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesOffset {
    #[serde(flatten)]
    pub series: SeriesKey,
    pub offset: i64,
}

/// A series as a connection numbers it: deltas name series by `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesHead {
    pub id: u32,
    #[serde(flatten)]
    pub series: SeriesKey,
    /// The last offset the client holds (or the snapshot covers) for this series.
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSeries {
    #[serde(flatten)]
    pub head: SeriesHead,
    pub points: Vec<Point>,
}

/// What the server sends as text: JSON, tagged by `"type"`. Live points come as [`Delta`]
/// binary frames instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The whole truth for the subscription: replaces whatever the client held. Live deltas
    /// continue from each series' `offset`; they may repeat points the snapshot already has
    /// (same timestamp, same value), never skip one.
    Snapshot {
        epoch: String,
        /// The server's clock, so the client can place its window on server time whatever
        /// the phone's clock says.
        server_time_ns: i64,
        window_ns: i64,
        width: usize,
        series: Vec<SnapshotSeries>,
    },
    /// The resume worked: the client keeps what it holds, deltas with what it missed follow
    /// at once. Series ids are this connection's.
    Resumed {
        epoch: String,
        server_time_ns: i64,
        series: Vec<SeriesHead>,
    },
    /// A series the subscription takes in appeared (or was first written since the snapshot);
    /// its deltas follow.
    Series(SeriesHead),
    /// What the client holds cannot be continued (the missed points are gone, or the stream
    /// was reset): drop it; a snapshot follows.
    Reload {
        reason: String,
    },
    /// A message of the client was refused (the text says why); the connection stays as it
    /// was. Messages that cannot be read at all close it with [`CLOSE_PROTOCOL_ERROR`].
    Error {
        message: String,
    },
    Heartbeat {
        server_time_ns: i64,
    },
    /// Whether live data can flow: `degraded` names why not (the shared store is away), and
    /// is `None` again once it recovers. Sent on change, and after subscribing while degraded.
    Status {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        degraded: Option<String>,
    },
}

impl ServerMsg {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no
        // custom serializers that error.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// First byte of a binary delta frame; other values are reserved for later frame kinds.
pub const DELTA_FRAME: u8 = 1;
/// Flag: some entries stand for more points than they carry (the client fell behind and got
/// per-column extremes instead). Offsets still advance over every point.
const FLAG_COARSENED: u8 = 1;

/// New points of some series, sent as a binary frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delta {
    pub coarsened: bool,
    pub series: Vec<DeltaSeries>,
}

/// Points of one series covering offsets `first_offset..=last_offset`. Exact unless the frame
/// is coarsened: then one point per offset, in offset order (not always time order: a late
/// point comes after newer ones).
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaSeries {
    pub id: u32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub points: Vec<Point>,
}

/// A binary frame that is not a delta this version can read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("not a delta frame")]
    NotDelta,
    #[error("truncated or malformed delta: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Points(#[from] chunk::Corrupt),
}

impl Delta {
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    /// The frame: [`frame_header`], then each entry as [`encode_entry`] writes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.point_count() * 4);
        frame_header(&mut out, self.coarsened, self.series.len());
        for s in &self.series {
            encode_entry(&mut out, s.id, (s.first_offset, s.last_offset), &s.points);
        }
        out
    }

    /// Reads a frame; entries of one series come in offset order.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.first() != Some(&DELTA_FRAME) {
            return Err(WireError::NotDelta);
        }
        let flags = *bytes.get(1).ok_or(WireError::Malformed("no flags"))?;
        let mut pos = 2;
        let varint = |pos: &mut usize| get_varint(bytes, pos).map_err(WireError::from);
        let n = varint(&mut pos)?;
        // Each entry takes at least four bytes: refuse a count the frame cannot hold before
        // allocating for it.
        if n > bytes.len() as u64 {
            return Err(WireError::Malformed("more series than bytes"));
        }
        let mut series = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let id = u32::try_from(varint(&mut pos)?).map_err(|_| WireError::Malformed("id"))?;
            let first_offset = unzigzag(varint(&mut pos)?);
            let last_offset = first_offset.wrapping_add(unzigzag(varint(&mut pos)?));
            let count =
                usize::try_from(varint(&mut pos)?).map_err(|_| WireError::Malformed("count"))?;
            let mut points = Vec::new();
            if count > 0 {
                let start = unzigzag(varint(&mut pos)?);
                let len = usize::try_from(varint(&mut pos)?)
                    .map_err(|_| WireError::Malformed("length"))?;
                let body = bytes
                    .get(pos..pos.saturating_add(len))
                    .ok_or(WireError::Malformed("truncated points"))?;
                pos += len;
                chunk::decode(body, start, count, &mut points)?;
            }
            series.push(DeltaSeries {
                id,
                first_offset,
                last_offset,
                points,
            });
        }
        if pos != bytes.len() {
            return Err(WireError::Malformed("trailing bytes"));
        }
        Ok(Self {
            coarsened: flags & FLAG_COARSENED != 0,
            series,
        })
    }
}

/// The start of a delta frame of `entries` entries; the entries follow, each as
/// [`encode_entry`] writes it (the server concatenates entries encoded once per commit).
pub fn frame_header(out: &mut Vec<u8>, coarsened: bool, entries: usize) {
    out.push(DELTA_FRAME);
    out.push(if coarsened { FLAG_COARSENED } else { 0 });
    put_varint(out, entries as u64);
}

/// One series entry of a delta frame: id, offsets, count, first timestamp and the points in
/// the chunk codec (timestamps as bit-packed deltas of deltas, values as decimal deltas or
/// XORs), so a steady series costs a few bits of time and a few bytes of value.
pub fn encode_entry(out: &mut Vec<u8>, id: u32, (first, last): (i64, i64), points: &[Point]) {
    put_varint(out, u64::from(id));
    put_varint(out, zigzag(first));
    put_varint(out, zigzag(last.wrapping_sub(first)));
    put_varint(out, points.len() as u64);
    if let Some(p) = points.first() {
        put_varint(out, zigzag(p.ts_ns));
        let body = chunk::encode(points);
        put_varint(out, body.len() as u64);
        out.extend_from_slice(&body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_messages_are_tagged_json() {
        let msg = ServerMsg::Series(SeriesHead {
            id: 3,
            series: SeriesKey::with_labels("cpu", [("host", "a")]).unwrap(),
            offset: 41,
        });
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"type":"series","id":3,"series":"cpu","labels":{"host":"a"},"offset":41}"#
        );
        assert_eq!(serde_json::from_str::<ServerMsg>(&json).unwrap(), msg);

        let sub: ClientMsg = serde_json::from_str(
            r#"{"type":"subscribe","series":[{"series":"cpu"}],"width":800,
                "resume":{"epoch":"e1","offsets":[{"series":"cpu","offset":7}]}}"#,
        )
        .unwrap();
        let ClientMsg::Subscribe(s) = sub else {
            panic!("a subscribe")
        };
        assert_eq!(s.width, Some(800));
        assert_eq!(s.resume.unwrap().offsets[0].offset, 7);
        assert_eq!(
            serde_json::from_str::<ClientMsg>(r#"{"type":"pause"}"#).unwrap(),
            ClientMsg::Pause
        );
        // Typos are refused, not ignored: a client would otherwise wait for what it never asked.
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"subscribe","widht":5}"#).is_err());
    }

    fn delta() -> impl Strategy<Value = Delta> {
        let points =
            proptest::collection::vec((-1_000_000_000i64..1_000_000_000, -1e9f64..1e9), 0..40);
        let entry = (0u32..1000, -1i64..1_000_000, points).prop_map(|(id, first, pts)| {
            let points: Vec<Point> = pts
                .into_iter()
                .map(|(t, v)| Point::new(t, v).unwrap())
                .collect();
            DeltaSeries {
                id,
                first_offset: first,
                last_offset: first + points.len() as i64 - 1,
                points,
            }
        });
        (any::<bool>(), proptest::collection::vec(entry, 0..5))
            .prop_map(|(coarsened, series)| Delta { coarsened, series })
    }

    proptest! {
        #[test]
        fn deltas_round_trip(d in delta()) {
            prop_assert_eq!(Delta::decode(&d.encode()).unwrap(), d);
        }

        /// Damaged frames are refused, never turned into other points silently or a panic.
        #[test]
        fn damaged_deltas_are_refused_or_read_whole(d in delta(), cut in 0usize..400, flip in 0usize..400) {
            let bytes = d.encode();
            let cut = cut.min(bytes.len());
            if cut < bytes.len() {
                prop_assert!(Delta::decode(&bytes[..cut]).is_err());
            }
            let mut damaged = bytes.clone();
            if let Some(b) = damaged.get_mut(flip) {
                *b ^= 0x5a;
                let _ = Delta::decode(&damaged);
            }
        }
    }

    #[test]
    fn a_steady_series_costs_a_few_bytes_per_point_against_json() {
        let points: Vec<Point> = (0..100)
            .map(|i| {
                Point::new(
                    1_700_000_000_000_000_000 + i * 10_000_000,
                    20.0 + (i % 7) as f64 * 0.01,
                )
                .unwrap()
            })
            .collect();
        let d = Delta {
            coarsened: false,
            series: vec![DeltaSeries {
                id: 0,
                first_offset: 1_000,
                last_offset: 1_099,
                points: points.clone(),
            }],
        };
        let binary = d.encode().len();
        let json = serde_json::to_string(&points).unwrap().len();
        assert!(binary * 10 < json, "binary {binary} bytes vs JSON {json}");
    }
}

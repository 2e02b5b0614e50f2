//! Messages on the `/ws` live feed, shared by the server and the WASM client.
//!
//! JSON text frames, one message each, tagged by `"type"`:
//! - `snapshot`: sent first on every connection and again when the client fell behind; it
//!   replaces whatever the client held. Carries the server clock so the client can place its
//!   sliding window on server time, whatever the phone's clock says.
//! - `points`: points appended since, grouped by series, encoded once and shared by every
//!   connection.
//! - `heartbeat`: proof of life every [`HEARTBEAT_INTERVAL_MS`], so a client notices a dead
//!   server that never closed the socket.

use crate::model::SeriesPoints;
use serde::{Deserialize, Serialize};

/// Often enough to notice a dead server within seconds, rare enough to cost nothing.
pub const HEARTBEAT_INTERVAL_MS: u32 = 5_000;

/// A client that hears nothing for this long assumes the connection is dead and reconnects.
pub const SILENCE_TIMEOUT_MS: u32 = 3 * HEARTBEAT_INTERVAL_MS;

/// WebSocket close code sent when the server shuts down: "going away", so clients reconnect.
pub const CLOSE_GOING_AWAY: u16 = 1001;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Snapshot {
        server_time_ns: i64,
        window_ns: i64,
        series: Vec<SeriesPoints>,
    },
    Points {
        series: Vec<SeriesPoints>,
    },
    Heartbeat {
        server_time_ns: i64,
    },
}

impl ServerMsg {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no
        // custom serializers that error.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Point, SeriesKey};

    #[test]
    fn messages_round_trip_and_are_tagged() {
        let msg = ServerMsg::Points {
            series: vec![SeriesPoints {
                series: SeriesKey::new("a").unwrap(),
                points: vec![Point::new(5, 1.5).unwrap()],
            }],
        };
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"type":"points","series":[{"series":"a","points":[[5,1.5]]}]}"#
        );
        assert_eq!(serde_json::from_str::<ServerMsg>(&json).unwrap(), msg);
    }
}

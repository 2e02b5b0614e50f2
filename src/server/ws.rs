//! `GET /ws`: one live session per browser.
//!
//! A session subscribes to the hub *before* reading the snapshot, so no point can fall between
//! the two (an overlap is possible and the client drops exact duplicates). Then it forwards
//! live messages, sends heartbeats, and ends on close, on a dead peer, or on server shutdown
//! with close code 1001 so the browser reconnects to the next server.

use super::ingest::now_ns;
use super::AppState;
use crate::protocol::{ServerMsg, CLOSE_GOING_AWAY, HEARTBEAT_INTERVAL_MS};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let limit = state.config.limits.max_client_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            // Tracked so shutdown can wait for every session to say goodbye.
            tasks.track_future(session(socket, state))
        })
}

/// Columns a snapshot is decimated to: wider than a 4K screen's plot in CSS pixels, so the
/// first frame is as exact as the live data that follows, while a high-rate series costs a
/// new viewer at most ~4 × this many points.
pub const SNAPSHOT_COLUMNS: usize = 4_096;

/// A peer that cannot take a message for this long is treated as gone; without a bound one
/// stalled socket would also stall its session's shutdown and heartbeat handling.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn snapshot(state: &AppState) -> Option<Utf8Bytes> {
    let now = now_ns();
    let window_ns = i64::try_from(state.config.window.as_nanos()).unwrap_or(i64::MAX);
    let series = state
        .store
        .recent(now.saturating_sub(window_ns), SNAPSHOT_COLUMNS)
        .await
        .ok()?;
    let msg = ServerMsg::Snapshot {
        server_time_ns: now,
        window_ns,
        series,
    };
    Some(Utf8Bytes::from(msg.to_json()))
}

async fn session(mut socket: WebSocket, state: AppState) {
    let mut live = state.hub.subscribe();
    let Some(first) = snapshot(&state).await else {
        return;
    };
    if !send(&mut socket, Message::Text(first)).await {
        return;
    }
    let mut heartbeat = tokio::time::interval(Duration::from_millis(HEARTBEAT_INTERVAL_MS.into()));
    heartbeat.tick().await;
    // Browsers answer pings by themselves; two silent heartbeat periods mean the peer is gone.
    let mut missed_pongs = 0u32;

    loop {
        tokio::select! {
            msg = live.recv() => {
                let frame = match msg {
                    Ok(bytes) => bytes,
                    Err(RecvError::Lagged(_)) => {
                        // Jump to the head of the channel first: the snapshot covers all that
                        // was skipped, and replaying the backlog would only lag again.
                        live = live.resubscribe();
                        match snapshot(&state).await {
                            Some(s) => s,
                            None => break,
                        }
                    }
                    Err(RecvError::Closed) => break,
                };
                if !send(&mut socket, Message::Text(frame)).await {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => missed_pongs = 0,
            },
            _ = heartbeat.tick() => {
                missed_pongs += 1;
                if missed_pongs > 2 {
                    break;
                }
                let beat = ServerMsg::Heartbeat { server_time_ns: now_ns() };
                let sent = send(&mut socket, Message::Text(beat.to_json().into())).await
                    && send(&mut socket, Message::Ping(Default::default())).await;
                if !sent {
                    break;
                }
            }
            _ = state.shutdown.cancelled() => {
                let bye = CloseFrame { code: CLOSE_GOING_AWAY, reason: "server shutting down".into() };
                send(&mut socket, Message::Close(Some(bye))).await;
                break;
            }
        }
    }
}

/// Sends one frame; false when the peer is gone or did not take it within [`SEND_TIMEOUT`].
async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

//! The browser's end of `/ws`: one connection per page feeding reactive signals.
//!
//! The socket loop runs only in the hydrated client. It subscribes to every series and, after
//! any drop, reconnects with jittered exponential backoff ([`crate::backoff`]) and resumes from
//! the offsets it holds: the server replays exactly what was missed, or says "reload" and
//! sends a fresh snapshot. A delta that does not continue the held offsets ends the
//! connection (and resumes), so a gap is never drawn over. [`SILENCE_TIMEOUT_MS`] without a
//! message means a dead connection. While the tab is hidden the client asks for nothing
//! (`pause`) and catches up when it is shown again.

use crate::feed::FeedState;
use leptos::prelude::*;

#[cfg(feature = "hydrate")]
use crate::protocol::SILENCE_TIMEOUT_MS;

/// Failed attempts in a row before the page says "offline" rather than "reconnecting"
/// (about five seconds of backoff): a restart is back by then, a lost network is not.
pub const OFFLINE_AFTER_ATTEMPTS: u32 = 5;

/// What the page tells the user about its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Live,
    Reconnecting {
        attempt: u32,
    },
    /// The browser reports no network, or many attempts failed; still retrying.
    Offline {
        attempt: u32,
    },
    /// Connected, but the server's store is away (Redis mode): no new points arrive until it
    /// is back, and the page says so instead of looking live.
    Degraded,
}

impl ConnState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Offline { .. } => "offline",
            Self::Degraded => "degraded",
        }
    }

    /// After `attempt` failed attempts, with the browser's own idea of the network.
    pub fn after_failures(attempt: u32, browser_online: bool) -> Self {
        if !browser_online || attempt >= OFFLINE_AFTER_ATTEMPTS {
            Self::Offline { attempt }
        } else {
            Self::Reconnecting { attempt }
        }
    }
}

/// Signals the live feed writes and the page reads. Copy, like the signals inside.
#[derive(Clone, Copy)]
pub struct LiveFeed {
    pub data: RwSignal<FeedState>,
    pub conn: RwSignal<ConnState>,
}

/// Creates the feed's signals and, in the browser, opens the socket.
pub fn use_live_feed() -> LiveFeed {
    let feed = LiveFeed {
        data: RwSignal::new(FeedState::default()),
        conn: RwSignal::new(ConnState::Connecting),
    };
    // Effects run only in the browser, after hydration: exactly where the socket belongs.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| leptos::task::spawn_local(client::run(feed)));
    feed
}

/// This machine's clock in nanoseconds since the epoch: the browser's in the client, the
/// server's while rendering (where the feed is still empty).
pub fn client_now_ns() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Date::now() * 1e6) as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use super::{client_now_ns, ConnState, LiveFeed, SILENCE_TIMEOUT_MS};
    use crate::backoff;
    use crate::protocol::{ClientMsg, Delta, ServerMsg, Subscribe, HEARTBEAT_INTERVAL_MS};
    use futures::channel::mpsc;
    use futures::{FutureExt, SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};
    use gloo_timers::future::{IntervalStream, TimeoutFuture};
    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;

    fn ws_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!("{scheme}://{}/ws", location.host().ok()?))
    }

    /// A connection that stayed up this long was healthy: its drop restarts the backoff. A
    /// server that accepts and then drops at once is retried with growing delays instead.
    const STABLE_CONNECTION_MS: f64 = 5_000.0;

    fn hidden() -> bool {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden())
    }

    fn online() -> bool {
        web_sys::window().is_none_or(|w| w.navigator().on_line())
    }

    /// Visibility changes as a stream (true: hidden). The listener lives as long as the page.
    fn visibility_changes() -> mpsc::UnboundedReceiver<bool> {
        let (tx, rx) = mpsc::unbounded();
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            let listener = Closure::<dyn FnMut()>::new(move || {
                let _ = tx.unbounded_send(hidden());
            });
            let _ = doc.add_event_listener_with_callback(
                "visibilitychange",
                listener.as_ref().unchecked_ref(),
            );
            listener.forget();
        }
        rx
    }

    pub async fn run(feed: LiveFeed) {
        let Some(url) = ws_url() else { return };
        let mut visibility = visibility_changes();
        let mut attempt: u32 = 0;
        loop {
            let opened = js_sys::Date::now();
            let got_data = connect_once(&url, feed, &mut visibility).await;
            if got_data && js_sys::Date::now() - opened >= STABLE_CONNECTION_MS {
                attempt = 0;
            }
            feed.conn
                .set(ConnState::after_failures(attempt + 1, online()));
            let delay = backoff::delay_ms(attempt, js_sys::Math::random());
            TimeoutFuture::new(delay).await;
            attempt = attempt.saturating_add(1);
        }
    }

    fn subscribe(feed: LiveFeed) -> String {
        let msg = ClientMsg::Subscribe(Subscribe {
            resume: feed.data.with_untracked(FeedState::resume),
            ..Subscribe::default()
        });
        serde_json::to_string(&msg).unwrap_or_default()
    }

    use crate::feed::FeedState;

    /// Runs one connection until it ends; true when it got as far as a snapshot or a resume,
    /// which resets the backoff.
    async fn connect_once(
        url: &str,
        feed: LiveFeed,
        visibility: &mut mpsc::UnboundedReceiver<bool>,
    ) -> bool {
        let Ok(ws) = WebSocket::open(url) else {
            return false;
        };
        let (mut sink, mut stream) = ws.split();
        let beat = serde_json::to_string(&ClientMsg::Heartbeat).unwrap_or_default();
        let pause = serde_json::to_string(&ClientMsg::Pause).unwrap_or_default();
        // A hidden tab pauses (the server would close a connection that asks for nothing) and
        // subscribes when it is shown.
        let first = if hidden() {
            pause.clone()
        } else {
            subscribe(feed)
        };
        if sink.send(Message::Text(first)).await.is_err() {
            return false;
        }
        let mut heartbeat = IntervalStream::new(HEARTBEAT_INTERVAL_MS).fuse();
        let mut got_data = false;
        // The server's heartbeats prove the connection alive; our own do not (a browser
        // buffers sends on a dead socket), so the silence is counted from the last message
        // heard, not from the last pass of this loop.
        let mut last_heard = js_sys::Date::now();
        loop {
            let quiet_ms = js_sys::Date::now() - last_heard;
            let left_ms = (f64::from(SILENCE_TIMEOUT_MS) - quiet_ms).max(0.0) as u32;
            let mut silence = TimeoutFuture::new(left_ms).fuse();
            let mut next = stream.next().fuse();
            let msg = futures::select! {
                msg = next => match msg {
                    Some(Ok(msg)) => msg,
                    // Closed or failed: let the caller reconnect.
                    _ => break,
                },
                _ = silence => break,
                _ = heartbeat.next() => {
                    if sink.send(Message::Text(beat.clone())).await.is_err() {
                        break;
                    }
                    continue;
                }
                change = visibility.next() => {
                    let text = match change {
                        Some(true) => pause.clone(),
                        _ => subscribe(feed),
                    };
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            last_heard = js_sys::Date::now();
            let now = client_now_ns();
            match msg {
                Message::Text(text) => {
                    let Ok(parsed) = serde_json::from_str::<ServerMsg>(&text) else {
                        leptos::logging::warn!("livechart: ignoring an unreadable live message");
                        continue;
                    };
                    match &parsed {
                        ServerMsg::Snapshot { .. } | ServerMsg::Resumed { .. } => {
                            got_data = true;
                            feed.conn.set(ConnState::Live);
                        }
                        ServerMsg::Status { degraded } => {
                            feed.conn.set(if degraded.is_some() {
                                ConnState::Degraded
                            } else {
                                ConnState::Live
                            });
                        }
                        ServerMsg::Error { message } => {
                            leptos::logging::warn!(
                                "livechart: the server refused a message: {message}"
                            );
                        }
                        _ => {}
                    }
                    feed.data.update(|state| state.apply(parsed, now));
                }
                Message::Bytes(bytes) => {
                    let applied = Delta::decode(&bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|d| {
                            let mut result = Ok(());
                            feed.data.update(|state| {
                                result = state.apply_delta(d, now).map_err(|e| e.to_string())
                            });
                            result
                        });
                    if let Err(e) = applied {
                        // Never draw over a gap: reconnect, and resume from what is held.
                        leptos::logging::warn!("livechart: {e}; reconnecting");
                        break;
                    }
                }
            }
        }
        got_data
    }
}

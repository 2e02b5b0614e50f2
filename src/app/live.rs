//! The browser's end of `/ws`: one connection per page feeding reactive signals.
//!
//! The socket loop runs only in the hydrated client. It reconnects after any drop with jittered
//! exponential backoff ([`crate::backoff`]), treats [`SILENCE_TIMEOUT_MS`] without a message as
//! a dead connection, and every new connection starts with a snapshot that replaces what the
//! page held, so nothing from before a server restart lingers.

use crate::feed::FeedState;
use leptos::prelude::*;

#[cfg(feature = "hydrate")]
use crate::protocol::SILENCE_TIMEOUT_MS;

/// What the page tells the user about its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Live,
    Reconnecting { attempt: u32 },
}

impl ConnState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
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
    use crate::protocol::ServerMsg;
    use futures::future::{select, Either};
    use futures::StreamExt;
    use gloo_net::websocket::{futures::WebSocket, Message};
    use gloo_timers::future::TimeoutFuture;
    use leptos::prelude::*;

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

    pub async fn run(feed: LiveFeed) {
        let Some(url) = ws_url() else { return };
        let mut attempt: u32 = 0;
        loop {
            let opened = js_sys::Date::now();
            let got_snapshot = connect_once(&url, feed).await;
            if got_snapshot && js_sys::Date::now() - opened >= STABLE_CONNECTION_MS {
                attempt = 0;
            }
            feed.conn.set(ConnState::Reconnecting {
                attempt: attempt + 1,
            });
            let delay = backoff::delay_ms(attempt, js_sys::Math::random());
            TimeoutFuture::new(delay).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// Runs one connection until it ends; true when it got as far as a snapshot, which resets
    /// the backoff.
    async fn connect_once(url: &str, feed: LiveFeed) -> bool {
        let Ok(ws) = WebSocket::open(url) else {
            return false;
        };
        let (_sink, mut stream) = ws.split();
        let mut got_snapshot = false;
        loop {
            let next = stream.next();
            let silence = TimeoutFuture::new(SILENCE_TIMEOUT_MS);
            let msg = match select(next, silence).await {
                Either::Left((Some(Ok(msg)), _)) => msg,
                // Closed, failed, or silent for too long: let the caller reconnect.
                Either::Left((Some(Err(_)) | None, _)) | Either::Right(_) => break,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Bytes(_) => continue,
            };
            let Ok(parsed) = serde_json::from_str::<ServerMsg>(&text) else {
                leptos::logging::warn!("livechart: ignoring an unreadable live message");
                continue;
            };
            if matches!(parsed, ServerMsg::Snapshot { .. }) {
                got_snapshot = true;
                feed.conn.set(ConnState::Live);
            }
            let now = client_now_ns();
            feed.data.update(|state| state.apply(parsed, now));
        }
        got_snapshot
    }
}

//! `GET /ws`: one live session per browser (the protocol is in `docs/PROTOCOL.md` and
//! [`crate::protocol`]).
//!
//! The handshake is refused before any work when the page's origin is neither this server's
//! nor an allowed one (403: a cross-site page must not read the feed with the visitor's
//! cookies) or when `--max-connections` are open (503).
//!
//! A session is one task holding the socket: it reads the client and the hub, queues what the
//! subscription takes, and writes one batch at a time. A socket that takes nothing of a batch
//! for `--send-timeout` ends the connection (close code [`CLOSE_TOO_SLOW`]); one taking a
//! large batch slowly but steadily is left to finish. While a batch is in
//! flight, and between the frames `max_rate` allows, commits wait in the session's queue; the
//! next frame takes everything queued. So a slow client gets fewer, larger frames; one so far
//! behind that [`Limits::max_queued_points`] are queued gets per-column extremes instead of
//! every point (a *coarsened* frame), and memory per connection stays bounded whatever the
//! client does. (One task rather than a reader and a writer: no channel, lock or second
//! wake-up per frame, and a few KB less per idle connection.)
//!
//! [`Limits::max_queued_points`]: super::config::Limits::max_queued_points

use super::hub::{Missed, Published, Subscription};
use super::ingest::now_ns;
use super::AppState;
use crate::decimate::m4;
use crate::model::{last_write_wins, Point, SeriesKey};
use crate::protocol::{
    encode_entry, frame_header, ClientMsg, DeltaSeries, SeriesHead, ServerMsg, SnapshotSeries,
    Subscribe, CLOSE_GOING_AWAY, CLOSE_PROTOCOL_ERROR, CLOSE_SILENT, CLOSE_TOO_SLOW,
    DEFAULT_MAX_RATE, HEARTBEAT_INTERVAL_MS, MAX_RATE,
};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// Columns a snapshot is decimated to when the client does not say: wider than a 4K screen's
/// plot in CSS pixels, so the first frame is as exact as the live data that follows.
pub const SNAPSHOT_COLUMNS: usize = 4_096;

/// A client that has neither subscribed nor paused this long after connecting is closed: it
/// holds a connection slot and would never get data.
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from a socket at a time: client messages are a few hundred bytes (a subscribe to
/// many series is more, and arrives in more reads). Every idle connection holds this buffer,
/// and it is cleared before each read.
const READ_BUFFER_BYTES: usize = 512;

/// WebSocket's own code for a message too big to take.
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// Longest window a subscription may ask for; longer views are history queries.
pub const MAX_WINDOW_NS: i64 = 31 * 86_400 * crate::model::NANOS_PER_SEC;

pub async fn upgrade(State(state): State<AppState>, mut req: Request) -> Response {
    let refuse = |status: StatusCode, message: String| {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    if let Err(message) = origin_allowed(
        req.headers(),
        req.uri().authority(),
        &state.config.allowed_origins,
    ) {
        return refuse(StatusCode::FORBIDDEN, message);
    }
    let accept = match handshake(req.method(), req.headers()) {
        Ok(accept) => accept,
        Err(e) => return e.into_response(),
    };
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        let limit = state.config.limits.max_connections;
        let message = format!(
            "too many live connections: this server keeps at most {limit} (--max-connections); retry later"
        );
        let mut res = refuse(StatusCode::SERVICE_UNAVAILABLE, message);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return res;
    };
    let limit = state.config.limits.max_client_message_bytes;
    // A small read buffer, and no write buffer: an idle connection should cost a few KB, and
    // tungstenite only ever writes control frames here (data frames bypass it).
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tasks = state.tasks.clone();
    // Tracked so shutdown can wait for every session to say goodbye.
    tokio::spawn(tasks.track_future(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(config),
        )
        .await;
        let status = state.status.subscribe();
        let generation = status.borrow().generation;
        let session = Session {
            wire: Wire {
                socket,
                out: VecDeque::new(),
                written: 0,
                sending: None,
                send_timeout: state.config.limits.send_timeout,
                metrics: state.metrics.clone(),
            },
            status,
            generation,
            told_degraded: false,
            state,
            active: None,
            last_heard: Instant::now(),
            subscribed: false,
            spoke: false,
        };
        // Boxed: this task then holds a pointer, not a copy.
        // Counted down by a guard: also when a session panics.
        let _open = super::metrics::OpenConnection::new(session.state.metrics.clone());
        Box::pin(session.serve(permit)).await;
    }));
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    res
}

/// Why a request to `/ws` is not a WebSocket handshake this server takes.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("/ws takes a GET WebSocket handshake")]
    NotGet,
    #[error("/ws is a WebSocket endpoint: send `Connection: Upgrade` and `Upgrade: websocket`")]
    NotUpgrade,
    #[error("only WebSocket version 13 is spoken here (Sec-WebSocket-Version: 13)")]
    Version,
    #[error("the WebSocket handshake has no usable Sec-WebSocket-Key")]
    Key,
}

impl IntoResponse for HandshakeError {
    fn into_response(self) -> Response {
        let status = match self {
            HandshakeError::Version => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut res = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UPGRADE_REQUIRED {
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        res
    }
}

/// Checks an HTTP/1.1 WebSocket handshake (RFC 6455 §4.2.1) and answers its key.
fn handshake(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, HandshakeError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET {
        return Err(HandshakeError::NotGet);
    }
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(HandshakeError::NotUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(HandshakeError::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
        .ok_or(HandshakeError::Key)?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).map_err(|_| HandshakeError::Key)
}

/// Same origin by default: the page's `Origin` must name the host the browser connected to
/// (`Host`), whatever the scheme (a TLS proxy in front changes it), or be in the allowlist.
/// Requests without `Origin` come from programs, not pages, and carry no visitor's cookies.
fn origin_allowed(
    headers: &HeaderMap,
    uri_authority: Option<&axum::http::uri::Authority>,
    allowed: &[String],
) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| "the Origin header is not readable text".to_string())?
        .trim()
        .trim_end_matches('/')
        .to_ascii_lowercase();
    if allowed.contains(&origin) {
        return Ok(());
    }
    let page = origin.split_once("://").map(|(_, rest)| rest);
    // HTTP/2 requests name the server in the URI, not in a Host header.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri_authority.map(|a| a.to_string()))
        .map(|h| h.trim().to_ascii_lowercase());
    match (page, host) {
        (Some(a), Some(h)) if a == h => Ok(()),
        _ => Err(format!(
            "pages from {origin} may not open this live feed: only the server's own pages and \
             origins given with --allow-origin may"
        )),
    }
}

/// Which series a subscription takes.
#[derive(Clone)]
enum Filter {
    All,
    Only(Arc<HashSet<SeriesKey>>),
}

impl Filter {
    fn takes(&self, key: &SeriesKey) -> bool {
        match self {
            Filter::All => true,
            Filter::Only(set) => set.contains(key),
        }
    }
}

/// What the session queued for the next frames, oldest first.
enum Queued {
    /// A commit from the hub: its entries of subscribed series go out as encoded there.
    Commit(Arc<Published>),
    /// The part of a buffered entry a resuming client missed (shared, not copied).
    Missed(Missed),
    /// Extremes of a backlog (a frame holding one is marked coarsened).
    Coarse(SeriesKey, DeltaSeries),
}

/// What a subscription asked for, kept to answer it again (a reload after a lag).
#[derive(Clone)]
struct Wanted {
    filter: Filter,
    width: usize,
    window_ns: i64,
    interval: Duration,
}

struct Active {
    rx: tokio::sync::broadcast::Receiver<Arc<Published>>,
    epoch: String,
    /// The hub's stream position at subscription: a commit of another one means reload.
    generation: u64,
    wanted: Wanted,
    /// Series ids the client has been told about.
    announced: HashMap<u32, SeriesKey>,
    /// Per series, the last offset queued or sent: where a catch-up continues.
    through: HashMap<SeriesKey, i64>,
    queue: VecDeque<Queued>,
    /// Points the queue keeps alive (whole commits, also series the filter skips).
    queued_points: usize,
    /// [`Limits::max_queued_points`](super::config::Limits::max_queued_points).
    max_queued_points: usize,
    last_flush: Instant,
}

/// How a session ends, said to the client when the socket still takes it.
struct Goodbye {
    code: u16,
    reason: String,
}

type Socket = tokio_tungstenite::WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The socket and the frames being written to it.
///
/// Data frames are built here and written straight to the connection from shared buffers. A
/// server's frames are unmasked, so a commit's frame is the same bytes for every client:
/// nothing is copied per client, and nothing stays allocated once written. (Through
/// tungstenite, every frame would be copied into a write buffer that keeps its largest size for
/// the life of the connection: one 150 KB snapshot would cost each viewer 150 KB for as long
/// as it watches.) Tungstenite reads the client and writes only its own control frames
/// (pongs, the close handshake), never inside one of ours. One batch is in flight at a time,
/// so what a slow client has not taken stays in the session's queue, where it can be
/// coarsened.
struct Wire {
    socket: Socket,
    /// The frames of the batch in flight, and how much of the first is written.
    out: VecDeque<Bytes>,
    written: usize,
    /// While a batch is in flight: when the socket must have taken more of it by
    /// (`--send-timeout` after the start or the last progress). A socket taking a large
    /// snapshot slowly but steadily (a phone on a slow link) is not stuck.
    sending: Option<tokio::time::Instant>,
    send_timeout: Duration,
    metrics: Arc<super::metrics::Metrics>,
}

impl Wire {
    fn busy(&self) -> bool {
        self.sending.is_some()
    }

    /// Queues frames as the batch in flight; the session loop writes them.
    fn start(&mut self, frames: impl IntoIterator<Item = Bytes>) {
        let before = self.out.len();
        self.out.extend(frames);
        let bytes: usize = self.out.iter().skip(before).map(Bytes::len).sum();
        self.metrics.ws_sent(self.out.len() - before, bytes);
        if !self.out.is_empty() && self.sending.is_none() {
            self.sending = Some(tokio::time::Instant::now() + self.send_timeout);
        }
    }

    /// Writes the batch in flight: tungstenite's pending control frames first, whole, then
    /// ours, so frames never interleave. Ready once all is written.
    fn poll_write(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        // Between frames only: flushing tungstenite inside one of ours would corrupt it.
        if self.written == 0 {
            match self.socket.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        while let Some(frame) = self.out.front() {
            let rest = &frame[self.written..];
            let n = match std::pin::Pin::new(self.socket.get_mut()).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.written += n;
            self.sending = Some(tokio::time::Instant::now() + self.send_timeout);
            if self.written == frame.len() {
                self.out.pop_front();
                self.written = 0;
            }
        }
        self.sending = None;
        Poll::Ready(Ok(()))
    }

    /// A message the client already sent, without waiting; only between our frames.
    async fn read_now(&mut self) -> Option<Option<Result<Message, tungstenite::Error>>> {
        if self.written > 0 {
            return None;
        }
        std::future::poll_fn(|cx| match self.socket.poll_next_unpin(cx) {
            Poll::Ready(read) => Poll::Ready(Some(read)),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }

    /// Writes what the socket takes now, without waiting; false when the connection is gone.
    async fn write_now(&mut self) -> bool {
        if !self.busy() {
            return true;
        }
        let now = std::future::poll_fn(|cx| Poll::Ready(self.poll_write(cx))).await;
        !matches!(now, Poll::Ready(Err(_)))
    }

    /// Waits until the batch in flight is written, at most until its deadline; `Err` says how
    /// the session ends when it cannot be (too slow, or gone).
    async fn drain(&mut self) -> Result<(), Option<Goodbye>> {
        while let Some(deadline) = self.sending {
            let written =
                tokio::time::timeout_at(deadline, std::future::poll_fn(|cx| self.poll_write(cx)))
                    .await;
            match written {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => {
                    self.sending = None;
                    return Err(None);
                }
                // It took some since: wait on.
                Err(_) if self.progressed() => {}
                Err(_) => {
                    self.sending = None;
                    self.metrics.ws_slow_close();
                    return Err(Some(too_slow()));
                }
            }
        }
        Ok(())
    }

    /// Whether the batch in flight moved since the deadline last waited on was set.
    fn progressed(&self) -> bool {
        self.sending
            .is_some_and(|d| d > tokio::time::Instant::now())
    }

    /// The next thing the socket has to say: a message from the client, or the batch in
    /// flight written.
    fn next(&mut self) -> impl std::future::Future<Output = Io> + '_ {
        std::future::poll_fn(move |cx| {
            if self.busy() {
                match self.poll_write(cx) {
                    Poll::Ready(r) => return Poll::Ready(Io::Written(r.is_ok())),
                    // No reading with a frame of ours half written: tungstenite would answer
                    // a ping in the middle of it.
                    Poll::Pending if self.written > 0 => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            self.socket.poll_next_unpin(cx).map(Io::Read)
        })
    }
}

enum Io {
    Read(Option<Result<Message, tungstenite::Error>>),
    /// The batch in flight is written (false: the connection is gone).
    Written(bool),
}

/// WebSocket opcodes of the frames built here.
const OP_TEXT: u8 = 0x1;
pub(super) const OP_BINARY: u8 = 0x2;
const OP_PING: u8 = 0x9;

/// A WebSocket frame as a server sends it: final, unmasked (RFC 6455 §5.2).
pub(super) fn ws_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(0x80 | opcode);
    match u16::try_from(len) {
        Ok(short) if short < 126 => frame.push(short as u8),
        Ok(medium) => {
            frame.push(126);
            frame.extend_from_slice(&medium.to_be_bytes());
        }
        Err(_) => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame.into()
}

fn text_frame(msg: &ServerMsg) -> Bytes {
    ws_frame(OP_TEXT, msg.to_json().as_bytes())
}

struct Session {
    state: AppState,
    wire: Wire,
    active: Option<Active>,
    last_heard: Instant,
    /// Whether the client ever subscribed (a paused one is not the one the subscribe timeout
    /// is for).
    subscribed: bool,
    /// Whether it said what it wants, a subscribe or a pause: a page opened in a hidden tab
    /// pauses first and subscribes when shown, and must not be closed meanwhile.
    spoke: bool,
    /// The live feed's state ([`super::status`]), and what of it this session acted on.
    status: tokio::sync::watch::Receiver<super::status::LiveStatus>,
    generation: u64,
    told_degraded: bool,
}

impl Session {
    /// The whole connection. What runs only at its start or end is boxed: every idle session
    /// holds its future, and a few hundred bytes less each matter at 10 000 of them.
    /// (An async block rather than an `async fn`, which would hold `self` twice.)
    #[allow(clippy::manual_async_fn)]
    fn serve(
        mut self,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> impl std::future::Future<Output = ()> {
        async move {
            let bye = Box::pin(self.run()).await;
            Box::pin(self.goodbye(bye)).await;
            drop(permit);
        }
    }

    /// A second for the goodbye: after the batch still in flight, the close frame.
    async fn goodbye(&mut self, bye: Option<Goodbye>) {
        let wire = &mut self.wire;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            std::future::poll_fn(|cx| wire.poll_write(cx)).await.ok()?;
            if let Some(Goodbye { code, reason }) = bye {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                wire.socket.send(Message::Close(Some(frame))).await.ok()?;
            }
            SinkExt::close(&mut wire.socket).await.ok()
        })
        .await;
    }

    async fn run(&mut self) -> Option<Goodbye> {
        let started = Instant::now();
        let silence = self.state.config.limits.silence_timeout;
        // At least three looks per silence period, so a silent peer goes in time.
        let beat_every = Duration::from_millis(HEARTBEAT_INTERVAL_MS.into()).min(silence / 3);
        let mut heartbeat = tokio::time::interval(beat_every.max(Duration::from_millis(10)));
        heartbeat.tick().await;
        // Waited on once for the whole session: a fresh wait each turn would queue on (and
        // lock) the one token every session shares.
        let shutdown = self.state.shutdown.clone().cancelled_owned();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // A queue waits for the rate (or the batch in flight) only as long as it must; an
            // idle session arms no timer at all.
            let next_flush = self.next_flush();
            let deadline = self.wire.sending;
            // Waiting for its rate, a session does not listen: commits wait on the channel and
            // the flush collects them, one wake-up per frame rather than per commit. (While a
            // batch is in flight it listens, so a backlog can be coarsened; the channel holds
            // 1 024 commits, and a session that misses more catches up from the replay buffer.)
            let waiting = next_flush.is_some_and(|at| at > tokio::time::Instant::now());
            let listening = self.active.is_some() && !waiting;
            tokio::select! {
                commit = recv(&mut self.active), if listening => {
                    if let Err(bye) = self.take(commit).await {
                        return bye;
                    }
                    if self.due() && !self.flush_now().await {
                        return None;
                    }
                }
                _ = sleep_until(next_flush), if next_flush.is_some() => {
                    if let Err(bye) = self.drain_hub().await {
                        return bye;
                    }
                    if !self.flush_now().await {
                        return None;
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    if self.wire.progressed() {
                        continue;
                    }
                    self.wire.metrics.ws_slow_close();
                    return Some(too_slow());
                }
                io = self.wire.next() => match io {
                    Io::Written(false) => return None,
                    Io::Written(true) => {
                        // Between batches the client can be read without a pong landing
                        // inside one of our frames: take what it sent before the next batch,
                        // or a client kept busy would never be heard.
                        while let Some(read) = self.wire.read_now().await {
                            if let Err(bye) = self.on_read(read).await {
                                return bye;
                            }
                        }
                        if self.due() && !self.flush_now().await {
                            return None;
                        }
                    }
                    Io::Read(read) => {
                        if let Err(bye) = self.on_read(read).await {
                            return bye;
                        }
                    }
                },
                _ = heartbeat.tick() => {
                    let patience = self.state.config.limits.subscribe_timeout;
                    if !self.spoke && started.elapsed() >= patience {
                        return Some(Goodbye {
                            code: CLOSE_PROTOCOL_ERROR,
                            reason: format!("no subscribe or pause message within {} ms", patience.as_millis()),
                        });
                    }
                    // A batch in flight has the send timeout watching the peer instead.
                    if self.last_heard.elapsed() >= silence && !self.wire.busy() {
                        return Some(Goodbye {
                            code: CLOSE_SILENT,
                            reason: format!("nothing heard for {} ms", silence.as_millis()),
                        });
                    }
                    // Best effort: a batch still in flight is proof enough of life.
                    if !self.wire.busy() {
                        let beat = ServerMsg::Heartbeat { server_time_ns: now_ns() };
                        self.wire.start([text_frame(&beat), ws_frame(OP_PING, &[])]);
                        if !self.wire.write_now().await {
                            return None;
                        }
                    }
                }
                changed = self.status.changed() => {
                    // The sender lives as long as the server's state, which this session holds.
                    if changed.is_ok() {
                        if let Err(bye) = self.on_status().await {
                            return bye;
                        }
                    }
                }
                _ = &mut shutdown => {
                    return Some(Goodbye { code: CLOSE_GOING_AWAY, reason: "server shutting down".into() });
                }
            }
        }
    }

    /// What the client sent (or that it is gone). `Err` ends the session, with a goodbye
    /// when the socket still takes one.
    async fn on_read(
        &mut self,
        read: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<(), Option<Goodbye>> {
        match read {
            Some(Ok(Message::Text(text))) => {
                self.last_heard = Instant::now();
                match serde_json::from_str::<ClientMsg>(&text) {
                    // Boxed: subscribing reads a snapshot, and that future would make every
                    // idle session's bigger.
                    Ok(msg) => Box::pin(self.handle(msg)).await,
                    Err(e) => Err(Some(Goodbye {
                        code: CLOSE_PROTOCOL_ERROR,
                        reason: truncate(format!("unreadable message: {e}")),
                    })),
                }
            }
            Some(Ok(Message::Binary(_))) => Err(Some(Goodbye {
                code: CLOSE_PROTOCOL_ERROR,
                reason: "clients send JSON text messages only".into(),
            })),
            // The one read error worth telling: a message over the limit (the socket is still
            // fine); others mean the socket is gone.
            Some(Err(tungstenite::Error::Capacity(_))) => {
                let limit = self.state.config.limits.max_client_message_bytes;
                Err(Some(Goodbye {
                    code: CLOSE_MESSAGE_TOO_BIG,
                    reason: format!("a message over {limit} bytes"),
                }))
            }
            Some(Err(_)) | None => Err(None),
            Some(Ok(Message::Close(_))) => {
                // Tungstenite has queued its close reply: nothing of ours may follow it. (A
                // close is only read between our frames, so none is cut short.)
                self.wire.out.clear();
                self.wire.sending = None;
                Err(None)
            }
            Some(Ok(_)) => {
                self.last_heard = Instant::now();
                Ok(())
            }
        }
    }

    /// When the session next looks at its queue: once the rate allows after the last frame,
    /// also before anything is queued, so a steady stream wakes it once per frame rather than
    /// once per commit. `None` when idle (it listens, and the next commit goes out at once) or
    /// while a batch is in flight (its end looks again).
    fn next_flush(&self) -> Option<tokio::time::Instant> {
        if self.wire.busy() {
            return None;
        }
        let active = self.active.as_ref()?;
        let due = active.last_flush + active.wanted.interval;
        (!active.queue.is_empty() || due > Instant::now())
            .then(|| tokio::time::Instant::from_std(due))
    }

    /// Sends the queue when the rate allows and writes what the socket takes at once (most
    /// frames go out in the turn that made them); false when the connection is gone.
    async fn flush_now(&mut self) -> bool {
        self.flush() && self.wire.write_now().await
    }

    /// Takes every commit waiting on the channel (see `waiting` in [`Self::run`]).
    async fn drain_hub(&mut self) -> Result<(), Option<Goodbye>> {
        use tokio::sync::broadcast::error::TryRecvError;
        loop {
            let Some(active) = self.active.as_mut() else {
                return Ok(());
            };
            let commit = match active.rx.try_recv() {
                Ok(published) => Ok(published),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            };
            self.take(commit).await?;
        }
    }

    fn due(&self) -> bool {
        self.next_flush()
            .is_some_and(|at| at <= tokio::time::Instant::now())
    }

    /// Sends a text message after the batch in flight (so a client that asks without reading
    /// stops being read); `Err` ends the session.
    async fn text(&mut self, msg: &ServerMsg) -> Result<(), Option<Goodbye>> {
        self.wire.drain().await?;
        self.wire.start([text_frame(msg)]);
        if self.wire.write_now().await {
            Ok(())
        } else {
            Err(None)
        }
    }

    /// The live feed restarted (reload the client) or its health changed (tell the client).
    async fn on_status(&mut self) -> Result<(), Option<Goodbye>> {
        let generation = self.status.borrow_and_update().generation;
        if generation != self.generation {
            self.generation = generation;
            if let Some(active) = self.active.take() {
                let reason = "the live stream restarted from the shared store".to_string();
                self.reload(reason, active.wanted).await?;
            }
        }
        self.tell_status().await
    }

    /// Says whether live data can flow, when the subscribed client's view of it is stale.
    async fn tell_status(&mut self) -> Result<(), Option<Goodbye>> {
        let degraded = self.status.borrow().degraded.clone();
        if !self.subscribed || degraded.is_some() == self.told_degraded {
            return Ok(());
        }
        self.told_degraded = degraded.is_some();
        self.text(&ServerMsg::Status { degraded }).await
    }

    async fn handle(&mut self, msg: ClientMsg) -> Result<(), Option<Goodbye>> {
        match msg {
            ClientMsg::Heartbeat => Ok(()),
            ClientMsg::Pause => {
                // Nothing more until the next subscribe, which resumes from what the client
                // holds: drop the channel and the queue, not the client's place.
                self.spoke = true;
                self.active = None;
                Ok(())
            }
            ClientMsg::Subscribe(sub) => match check(&sub, &self.state) {
                Err(message) => self.text(&ServerMsg::Error { message }).await,
                Ok(()) => {
                    self.subscribed = true;
                    self.spoke = true;
                    self.subscribe(sub).await?;
                    // A page that connects while the store is away learns it at once.
                    self.told_degraded = false;
                    self.tell_status().await
                }
            },
        }
    }

    async fn subscribe(&mut self, sub: Subscribe) -> Result<(), Option<Goodbye>> {
        let filter = if sub.series.is_empty() {
            Filter::All
        } else {
            Filter::Only(Arc::new(sub.series.iter().cloned().collect()))
        };
        let rate = sub.max_rate.unwrap_or(DEFAULT_MAX_RATE).clamp(1, MAX_RATE);
        let wanted = Wanted {
            filter,
            width: sub.width.unwrap_or(SNAPSHOT_COLUMNS),
            window_ns: sub.window_ns.unwrap_or_else(|| {
                i64::try_from(self.state.config.window.as_nanos()).unwrap_or(i64::MAX)
            }),
            interval: Duration::from_secs(1) / rate,
        };
        self.active = None;
        if let Some(resume) = &sub.resume {
            // A series named twice counts from its lowest offset: more replayed, none missed.
            let mut held: HashMap<SeriesKey, i64> = HashMap::new();
            for o in resume
                .offsets
                .iter()
                .filter(|o| wanted.filter.takes(&o.series))
            {
                let offset = held.entry(o.series.clone()).or_insert(o.offset);
                *offset = (*offset).min(o.offset);
            }
            let filter = wanted.filter.clone();
            match self
                .state
                .hub
                .resume(&resume.epoch, &held, |k| filter.takes(k))
            {
                Ok((subscription, missed)) => {
                    // The client's series and the ones replayed from their start, by id.
                    let mut told: Vec<SeriesHead> = subscription
                        .heads
                        .iter()
                        .filter_map(|h| {
                            let offset = held.get(&h.series)?;
                            Some(SeriesHead {
                                id: h.id,
                                series: h.series.clone(),
                                offset: *offset,
                            })
                        })
                        .collect();
                    told.sort_by_key(|h| h.id);
                    let msg = ServerMsg::Resumed {
                        epoch: subscription.epoch.clone(),
                        server_time_ns: now_ns(),
                        series: told.clone(),
                    };
                    self.text(&msg).await?;
                    let mut active = self.activate(subscription, wanted, &told);
                    for m in missed {
                        active.queue_missed(m);
                    }
                    self.active = Some(active);
                    return Ok(());
                }
                Err(why) => {
                    let reason = why.to_string();
                    tracing::debug!(%reason, "live resume refused; the client reloads");
                    self.text(&ServerMsg::Reload { reason }).await?;
                }
            }
        }
        self.snapshot(wanted).await
    }

    async fn snapshot(&mut self, wanted: Wanted) -> Result<(), Option<Goodbye>> {
        // Subscribed first: whatever commits while the snapshot is read comes on the channel
        // (and may repeat points the snapshot has; never the other way round).
        let subscription = self.state.hub.subscribe();
        let now = now_ns();
        let since = now.saturating_sub(wanted.window_ns);
        let recent = match self.state.store.recent(since, wanted.width).await {
            Ok(r) => r,
            Err(e) => {
                return Err(Some(Goodbye {
                    code: 1011,
                    reason: truncate(format!("cannot read the snapshot: {e}")),
                }))
            }
        };
        let mut points: HashMap<SeriesKey, Vec<Point>> = recent
            .into_iter()
            .map(|sp| (sp.series, sp.points))
            .collect();
        // Every series the subscription takes, also one quiet for longer than the window
        // (no points here): the client then holds its place, and a resume never has to
        // replay it from the start.
        let mut series: Vec<SnapshotSeries> = subscription
            .heads
            .iter()
            .filter(|h| wanted.filter.takes(&h.series))
            .map(|h| SnapshotSeries {
                points: points.remove(&h.series).unwrap_or_default(),
                head: h.clone(),
            })
            .collect();
        series.sort_by(|a, b| a.head.series.cmp(&b.head.series));
        let heads: Vec<SeriesHead> = series.iter().map(|s| s.head.clone()).collect();
        let msg = ServerMsg::Snapshot {
            epoch: subscription.epoch.clone(),
            server_time_ns: now,
            window_ns: wanted.window_ns,
            width: wanted.width,
            series,
        };
        self.text(&msg).await?;
        self.active = Some(self.activate(subscription, wanted, &heads));
        Ok(())
    }

    fn activate(&self, subscription: Subscription, wanted: Wanted, told: &[SeriesHead]) -> Active {
        let mut through = HashMap::new();
        for h in &subscription.heads {
            if wanted.filter.takes(&h.series) {
                through.insert(h.series.clone(), h.offset);
            }
        }
        for h in told {
            through.insert(h.series.clone(), h.offset);
        }
        Active {
            rx: subscription.rx,
            epoch: subscription.epoch,
            generation: subscription.generation,
            announced: told.iter().map(|h| (h.id, h.series.clone())).collect(),
            through,
            queue: VecDeque::new(),
            queued_points: 0,
            max_queued_points: self.state.config.limits.max_queued_points,
            last_flush: Instant::now()
                .checked_sub(wanted.interval)
                .unwrap_or_else(Instant::now),
            wanted,
        }
    }

    /// Tells the client its place is gone and sends a fresh snapshot.
    async fn reload(&mut self, reason: String, wanted: Wanted) -> Result<(), Option<Goodbye>> {
        self.text(&ServerMsg::Reload { reason }).await?;
        self.snapshot(wanted).await
    }

    /// Queues a commit from the hub; on a lagged channel, catches up from the replay buffer
    /// (or reloads the client when that is gone too).
    async fn take(
        &mut self,
        commit: Result<Arc<Published>, RecvError>,
    ) -> Result<(), Option<Goodbye>> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        match commit {
            Ok(published) if published.generation != active.generation => {
                // The stream restarted (Redis mode) and this commit continues the new one,
                // not what the client holds.
                let wanted = active.wanted.clone();
                self.active = None;
                let reason = "the live stream restarted from the shared store".to_string();
                return self.reload(reason, wanted).await;
            }
            Ok(published) => active.queue_commit(published),
            Err(RecvError::Closed) => return Err(None),
            Err(RecvError::Lagged(_)) => {
                let filter = active.wanted.filter.clone();
                match self
                    .state
                    .hub
                    .resume(&active.epoch, &active.through, |k| filter.takes(k))
                {
                    Ok((subscription, missed)) => {
                        active.rx = subscription.rx;
                        for m in missed {
                            active.queue_missed(m);
                        }
                    }
                    Err(why) => {
                        let wanted = active.wanted.clone();
                        self.active = None;
                        // Boxed: rare, and a snapshot's future would make every idle
                        // session's bigger.
                        return Box::pin(self.reload(why.to_string(), wanted)).await;
                    }
                }
            }
        }
        // Behind: a batch is still in flight and the queue is past its bound. (A big
        // commit to a client that keeps up is sent at the next flush instead.)
        if let Some(active) = self.active.as_mut() {
            if active.queued_points > active.max_queued_points && self.wire.busy() {
                active.coarsen();
            }
        }
        Ok(())
    }

    /// Sends one batch: announcements of new series and a frame with the queue's oldest
    /// entries, up to the queue bound in points (a long replay goes out in several frames).
    /// Only when no batch is in flight and the rate allows; false when the connection is gone.
    fn flush(&mut self) -> bool {
        let Session { active, wire, .. } = self;
        let Some(active) = active.as_mut() else {
            return true;
        };
        if active.queue.is_empty() {
            // Nothing to send, and no frame: the rate counts frames sent.
            return true;
        }
        if active.last_flush.elapsed() < active.wanted.interval || wire.busy() {
            // Keep queueing: the next frame takes it all.
            return true;
        }
        // The common case: one commit, every entry wanted, every series known. Its frame
        // was built once by the hub and goes out shared.
        if let [Queued::Commit(p)] = active.queue.make_contiguous() {
            let whole = p.entries.iter().all(|e| {
                active.wanted.filter.takes(&e.series) && active.announced.contains_key(&e.id)
            });
            if whole {
                let frame = p.frame();
                active.queue.clear();
                active.queued_points = 0;
                active.last_flush = Instant::now();
                wire.start([frame]);
                return true;
            }
        }
        let mut news = Vec::new();
        let (mut entries, mut points, mut coarsened) = (0usize, 0usize, false);
        let mut body = Vec::new();
        while points < active.max_queued_points.max(1) {
            let Some(q) = active.queue.pop_front() else {
                break;
            };
            active.queued_points = active.queued_points.saturating_sub(q.held_points());
            match q {
                Queued::Commit(p) => {
                    for e in &p.entries {
                        if !active.wanted.filter.takes(&e.series) {
                            continue;
                        }
                        active.announce(e.id, &e.series, e.first_offset, &mut news);
                        body.extend_from_slice(e.wire());
                        entries += 1;
                        points += e.points.len();
                    }
                }
                Queued::Missed(m) => {
                    let e = m.entry();
                    active.announce(e.id, &e.series, m.first_offset(), &mut news);
                    if m.skip == 0 {
                        body.extend_from_slice(e.wire());
                    } else {
                        let range = (m.first_offset(), e.last_offset());
                        encode_entry(&mut body, e.id, range, m.points());
                    }
                    entries += 1;
                    points += m.points().len();
                }
                Queued::Coarse(key, d) => {
                    active.announce(d.id, &key, d.first_offset, &mut news);
                    encode_entry(&mut body, d.id, (d.first_offset, d.last_offset), &d.points);
                    entries += 1;
                    points += d.points.len();
                    coarsened = true;
                }
            }
        }
        active.last_flush = Instant::now();
        // New series first: a frame never names an id the client has not been told.
        let mut batch: Vec<Bytes> = news
            .into_iter()
            .map(|head| text_frame(&ServerMsg::Series(head)))
            .collect();
        if entries > 0 {
            let mut frame = Vec::with_capacity(body.len() + 8);
            frame_header(&mut frame, coarsened, entries);
            frame.extend_from_slice(&body);
            batch.push(ws_frame(OP_BINARY, &frame));
        }
        wire.start(batch);
        true
    }
}

/// A series' points by offset, and the range of offsets they cover.
type Backlog = (i64, i64, Vec<(i64, Point)>);

impl Queued {
    /// Points this item keeps alive: a whole commit, whatever the filter takes of it.
    fn held_points(&self) -> usize {
        match self {
            Queued::Commit(p) => p.points(),
            Queued::Missed(m) => m.points().len(),
            Queued::Coarse(_, d) => d.points.len(),
        }
    }
}

impl Active {
    /// Tells the client about series `id` before its first entry (as continuing from the
    /// offset before `first_offset`).
    fn announce(
        &mut self,
        id: u32,
        key: &SeriesKey,
        first_offset: i64,
        news: &mut Vec<SeriesHead>,
    ) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.announced.entry(id) {
            slot.insert(key.clone());
            news.push(SeriesHead {
                id,
                series: key.clone(),
                offset: first_offset - 1,
            });
        }
    }

    fn push(&mut self, q: Queued) {
        self.queued_points += q.held_points();
        self.queue.push_back(q);
    }

    fn queue_commit(&mut self, published: Arc<Published>) {
        let mut taken = false;
        for e in published
            .entries
            .iter()
            .filter(|e| self.wanted.filter.takes(&e.series))
        {
            // No key copy for a series already known (every commit of a busy one).
            match self.through.get_mut(&e.series) {
                Some(through) => *through = e.last_offset(),
                None => {
                    self.through.insert(e.series.clone(), e.last_offset());
                }
            }
            taken = true;
        }
        if taken {
            self.push(Queued::Commit(published));
        }
    }

    fn queue_missed(&mut self, m: Missed) {
        let e = m.entry();
        self.through.insert(e.series.clone(), e.last_offset());
        self.push(Queued::Missed(m));
    }

    /// Cuts the queue to per-column extremes of each series over the span it covers: what the
    /// client would draw at its width anyway. Offsets still cover every point.
    fn coarsen(&mut self) {
        // Per series: its offsets' range and its points with offsets (later offset wins on
        // equal timestamps, as in the store).
        let mut per: HashMap<u32, Backlog> = HashMap::new();
        let mut order: Vec<(u32, SeriesKey)> = Vec::new();
        let mut add = |key: &SeriesKey, id: u32, first: i64, last: i64, points: &[Point]| {
            let e = per.entry(id).or_insert_with(|| {
                order.push((id, key.clone()));
                (first, last, Vec::new())
            });
            e.0 = e.0.min(first);
            e.1 = e.1.max(last);
            e.2.extend((first..).zip(points.iter().copied()));
        };
        for q in std::mem::take(&mut self.queue) {
            match q {
                Queued::Commit(p) => {
                    for e in p
                        .entries
                        .iter()
                        .filter(|e| self.wanted.filter.takes(&e.series))
                    {
                        add(&e.series, e.id, e.first_offset, e.last_offset(), &e.points);
                    }
                }
                Queued::Missed(m) => {
                    let e = m.entry();
                    add(
                        &e.series,
                        e.id,
                        m.first_offset(),
                        e.last_offset(),
                        m.points(),
                    );
                }
                Queued::Coarse(key, d) => add(&key, d.id, d.first_offset, d.last_offset, &d.points),
            }
        }
        // At most the queue's bound in all: fewer columns when many series are behind.
        let columns = self
            .wanted
            .width
            .min(self.max_queued_points / (4 * order.len()).max(1))
            .max(1);
        self.queued_points = 0;
        for (id, key) in order {
            let Some((first, last, mut points)) = per.remove(&id) else {
                continue;
            };
            points.sort_by_key(|(offset, p)| (p.ts_ns, *offset));
            let mut points: Vec<Point> = points.into_iter().map(|(_, p)| p).collect();
            last_write_wins(&mut points);
            let (from, to) = match (points.first(), points.last()) {
                (Some(a), Some(b)) => (a.ts_ns, b.ts_ns.max(a.ts_ns + 1)),
                _ => continue,
            };
            let points = m4(points, from, to, columns);
            self.push(Queued::Coarse(
                key,
                DeltaSeries {
                    id,
                    first_offset: first,
                    last_offset: last,
                    points,
                },
            ));
        }
    }
}

fn too_slow() -> Goodbye {
    Goodbye {
        code: CLOSE_TOO_SLOW,
        reason: "too slow: nothing was taken for the send timeout; reconnect and resume".into(),
    }
}

/// Sleeps until `at`; never wakes for `None` (the `select!` guard keeps it unpolled, so no
/// timer is made).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next commit of an active subscription (pending forever when there is none, which the
/// `select!` guard prevents).
async fn recv(active: &mut Option<Active>) -> Result<Arc<Published>, RecvError> {
    match active {
        Some(a) => a.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A subscription's values the server can serve, or what is wrong with them.
fn check(sub: &Subscribe, state: &AppState) -> Result<(), String> {
    if let Some(w) = sub.width {
        if w == 0 || w > crate::history::MAX_QUERY_WIDTH {
            return Err(format!(
                "width must be 1 to {} pixel columns, got {w}",
                crate::history::MAX_QUERY_WIDTH
            ));
        }
    }
    if let Some(window) = sub.window_ns {
        if window <= 0 || window > MAX_WINDOW_NS {
            return Err(format!(
                "window_ns must be above 0 and at most {MAX_WINDOW_NS} (31 days), got {window}"
            ));
        }
    }
    if let Some(rate) = sub.max_rate {
        if rate == 0 || rate > MAX_RATE {
            return Err(format!(
                "max_rate must be 1 to {MAX_RATE} updates per second, got {rate}"
            ));
        }
    }
    let max_series = state.config.limits.max_series;
    if sub.series.len() > max_series {
        return Err(format!(
            "{} series named; this server keeps at most {max_series}",
            sub.series.len()
        ));
    }
    Ok(())
}

/// Close reasons must fit a control frame (123 bytes).
fn truncate(mut reason: String) -> String {
    if reason.len() > 120 {
        let mut cut = 120;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn origin_allowed_h(h: &HeaderMap, allowed: &[String]) -> Result<(), String> {
        origin_allowed(h, None, allowed)
    }

    #[test]
    fn only_the_servers_own_pages_and_allowed_origins_may_connect() {
        let allowed = vec!["https://dash.example.com".to_string()];
        assert!(origin_allowed_h(&headers(None, "a:3000"), &allowed).is_ok());
        assert!(origin_allowed_h(&headers(Some("http://a:3000"), "a:3000"), &allowed).is_ok());
        assert!(origin_allowed_h(&headers(Some("https://A:3000/"), "a:3000"), &allowed).is_ok());
        let dash = headers(Some("https://dash.example.com"), "a:3000");
        assert!(origin_allowed_h(&dash, &allowed).is_ok());
        let refused = origin_allowed_h(&headers(Some("https://evil.example"), "a:3000"), &allowed);
        assert!(refused.unwrap_err().contains("https://evil.example"));
        assert!(origin_allowed_h(&headers(Some("null"), "a:3000"), &allowed).is_err());
        assert!(origin_allowed_h(&headers(Some("http://a:3001"), "a:3000"), &allowed).is_err());
        // HTTP/2: no Host header, the authority is in the URI.
        let mut h2 = HeaderMap::new();
        h2.insert(header::ORIGIN, HeaderValue::from_static("https://a:3000"));
        let authority = axum::http::uri::Authority::from_static("a:3000");
        assert!(origin_allowed(&h2, Some(&authority), &allowed).is_ok());
        assert!(
            origin_allowed(&h2, None, &allowed).is_err(),
            "no host known: refused"
        );
    }

    #[test]
    fn frames_carry_every_payload_length_form() {
        use tungstenite::protocol::frame::FrameHeader;
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
            let payload = vec![7u8; len];
            let frame = ws_frame(OP_BINARY, &payload);
            let mut cursor = std::io::Cursor::new(&frame[..]);
            let (header, size) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final && header.mask.is_none(), "{len}");
            assert_eq!(size as usize, len);
            assert_eq!(&frame[cursor.position() as usize..], &payload[..]);
        }
    }

    #[test]
    fn only_a_websocket_handshake_is_taken_and_its_key_answered() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            handshake(&Method::POST, &h),
            Err(HandshakeError::NotGet)
        ));
        assert!(matches!(
            handshake(&Method::GET, &h),
            Err(HandshakeError::NotUpgrade)
        ));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(matches!(
            handshake(&Method::GET, &h),
            Err(HandshakeError::Version)
        ));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert!(matches!(
            handshake(&Method::GET, &h),
            Err(HandshakeError::Key)
        ));
        // RFC 6455's own example.
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            handshake(&Method::GET, &h).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert!(truncate("é".repeat(100)).len() <= 120);
    }
}

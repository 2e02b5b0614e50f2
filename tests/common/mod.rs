//! Test harness: the real server on 127.0.0.1:0, real HTTP and WebSocket clients.

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use livechart::protocol::ServerMsg;
use livechart::server::config::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous: only reached when something is broken, never a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config::new()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(livechart::server::run(listener, config, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            http: reqwest::Client::new(),
            stop: Some(tx),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_json(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, json)
    }

    pub async fn ws(&self) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", self.addr))
            .await
            .unwrap();
        ws
    }

    /// Stops the server the way SIGTERM does and waits for `run` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.handle)
            .await
            .expect("server did not stop in time")
            .expect("server task panicked")
    }
}

/// The next protocol message, skipping heartbeats and control frames.
pub async fn next_msg(ws: &mut Ws) -> ServerMsg {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no message in time")
            .expect("socket ended")
            .expect("socket error");
        match frame {
            Message::Text(t) => {
                let msg: ServerMsg = serde_json::from_str(&t).expect("valid message");
                if !matches!(msg, ServerMsg::Heartbeat { .. }) {
                    return msg;
                }
            }
            Message::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Message::Close(c) => panic!("socket closed: {c:?}"),
            _ => {}
        }
    }
}

/// Series names and point counts of a snapshot.
pub fn snapshot_series(msg: &ServerMsg) -> Vec<(String, usize)> {
    match msg {
        ServerMsg::Snapshot { series, .. } => series
            .iter()
            .map(|s| (s.series.to_string(), s.points.len()))
            .collect(),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

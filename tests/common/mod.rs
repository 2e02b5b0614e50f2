//! Test harness: the real server on 127.0.0.1:0, real HTTP and WebSocket clients.

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use livechart::feed::FeedState;
use livechart::model::SeriesPoints;
use livechart::protocol::{ClientMsg, Delta, ServerMsg, Subscribe};
use livechart::server::config::{Config, Durability, Storage};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The value of the `/metrics` line starting with `line_start` (a name with its labels).
pub fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start:?} in\n{text}"))
}

/// The wall clock in epoch milliseconds, as clients stamp points.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The values of a query answer's `points` (`[[ts, value], …]`), in order.
pub fn point_values(answer: &serde_json::Value) -> Vec<f64> {
    answer["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect()
}

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
        Self::start_on("127.0.0.1:0".parse().unwrap(), config).await
    }

    /// On a given address: a restart on the port clients already use.
    pub async fn start_on(addr: SocketAddr, config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
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

    /// Posts line protocol (millisecond timestamps); it must be accepted.
    pub async fn write_lines(&self, body: String) {
        let res = self
            .http
            .post(self.url("/write?precision=ms"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);
    }

    /// A live client subscribed to every series, as the page does.
    pub async fn ws(&self) -> Client {
        self.ws_with(Subscribe::default()).await
    }

    pub async fn ws_with(&self, sub: Subscribe) -> Client {
        let mut client = Client {
            ws: self.ws_raw().await,
            feed: FeedState::default(),
        };
        client.send(&ClientMsg::Subscribe(sub)).await;
        client
    }

    /// A client holding `feed` (what a page held on an earlier connection, here or on
    /// another instance), subscribed again on a new socket with a resume from it.
    pub async fn resume(&self, feed: FeedState) -> Client {
        let mut client = Client {
            ws: self.ws_raw().await,
            feed,
        };
        let resume = client.feed.resume();
        client
            .send(&ClientMsg::Subscribe(Subscribe {
                resume,
                ..Subscribe::default()
            }))
            .await;
        client
    }

    /// A socket that has not subscribed yet.
    pub async fn ws_raw(&self) -> Ws {
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

/// What a live client gets, once applied to its [`FeedState`] (the browser's own model).
#[derive(Debug)]
pub enum Event {
    Msg(ServerMsg),
    /// A delta, with its series named.
    Points(Vec<SeriesPoints>, Delta),
}

/// A live client: the socket and what the page would hold.
pub struct Client {
    pub ws: Ws,
    pub feed: FeedState,
}

impl Client {
    pub async fn send(&mut self, msg: &ClientMsg) {
        let text = serde_json::to_string(msg).unwrap();
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next message or delta, skipping heartbeats and control frames; applied to the
    /// feed, which must accept it (a delta that skips offsets fails the test).
    pub async fn next(&mut self) -> Event {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("no message in time")
                .expect("socket ended")
                .expect("socket error");
            match frame {
                Message::Text(t) => {
                    let msg: ServerMsg = serde_json::from_str(&t).expect("valid message");
                    self.feed.apply(msg.clone(), 0);
                    if !matches!(msg, ServerMsg::Heartbeat { .. }) {
                        return Event::Msg(msg);
                    }
                }
                Message::Binary(b) => {
                    let delta = Delta::decode(&b).expect("a readable delta");
                    let named = delta
                        .series
                        .iter()
                        .map(|d| SeriesPoints {
                            series: self.feed.series_of(d.id).expect("announced id").clone(),
                            points: d.points.clone(),
                        })
                        .collect();
                    self.feed
                        .apply_delta(delta.clone(), 0)
                        .expect("deltas continue their offsets");
                    return Event::Points(named, delta);
                }
                Message::Ping(p) => {
                    let _ = self.ws.send(Message::Pong(p)).await;
                }
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// The next delta's points, skipping `series` announcements.
    pub async fn next_points(&mut self) -> Vec<SeriesPoints> {
        loop {
            match self.next().await {
                Event::Points(p, _) => return p,
                Event::Msg(ServerMsg::Series(_)) => continue,
                Event::Msg(other) => panic!("expected points, got {other:?}"),
            }
        }
    }
}

/// Reads until the server closes the socket; its close code and reason.
pub async fn close_frame(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Series names and point counts of a snapshot.
pub fn snapshot_series(event: &Event) -> Vec<(String, usize)> {
    match event {
        Event::Msg(ServerMsg::Snapshot { series, .. }) => series
            .iter()
            .map(|s| (s.head.series.to_string(), s.points.len()))
            .collect(),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

/// A fresh data directory per test, removed when dropped.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "livechart-store-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    pub fn config(&self, retention: Duration) -> Config {
        let mut config = Config::new();
        config.storage = Storage::Sqlite {
            dir: self.0.clone(),
            durability: Durability::Fsync,
            retention,
            max_disk_bytes: None,
        };
        config
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `redis-server` of its own on a free loopback port, with its data in a fresh directory
/// (append-only file, `appendfsync always`: what a 2xx promises is then on disk). Killed
/// when dropped. Needs `redis-server` (`scripts/setup.sh test` installs it).
pub struct RedisServer {
    pub port: u16,
    dir: DataDir,
    child: Option<std::process::Child>,
    extra: Vec<String>,
}

impl RedisServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With more `redis-server` flags.
    pub async fn start_with(extra: &[&str]) -> Self {
        let dir = DataDir::new();
        std::fs::create_dir_all(&dir.0).unwrap();
        let mut server = Self {
            port: 0,
            dir,
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        // A port can be taken between choosing and binding it (tests run in parallel): try
        // another when the server exits at once.
        for _ in 0..5 {
            server.port = free_port_pair();
            if server.spawn().await {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A livechart configuration that keeps its points here.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        config.storage = Storage::Redis {
            url: self.url(),
            cluster: false,
            retention: Duration::from_secs(30 * 86_400),
        };
        config
    }

    /// Starts redis-server on `self.port`; false when it exited at once (port taken).
    async fn spawn(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir.0)
            .args(["--logfile", "redis.log"])
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh test installs it)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.answers() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                self.child = None;
                return false;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Whether it answers PING (redis-cli comes with redis-server).
    fn answers(&self) -> bool {
        std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let status = std::process::Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill {sig}");
        }
    }

    /// SIGKILL, as a crash: only what its append-only file holds comes back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn().await,
            "redis-server did not start again on its port"
        );
    }

    /// SIGSTOP: connections stay open and nothing answers, like a hung host.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

/// A free loopback port whose cluster bus port (+10 000) is free too, so below 55 536: the
/// OS's ephemeral ports (from 32 768) would often put the bus past 65 535.
fn free_port_pair() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let start = 20_000 + (std::process::id() as usize * 7919) % 20_000;
    loop {
        let port = (start + NEXT.fetch_add(1, Ordering::Relaxed) * 13) % 35_000 + 20_000;
        let port = port as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

/// A Redis Cluster of three primaries on loopback, slots spread over them.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ])
                .await,
            );
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = tokio::time::Instant::now() + PATIENCE;
        for n in &nodes {
            loop {
                let info = std::process::Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cluster never came up"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Self { nodes }
    }

    /// A livechart configuration using the cluster, given as seed a node that does not hold
    /// livechart's slot: so the client must follow the cluster's redirections.
    pub fn config(&self) -> Config {
        let seed = self
            .nodes
            .iter()
            .find(|n| {
                let out = std::process::Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "type", "{livechart}:meta"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains("MOVED")
            })
            .expect("a node without livechart's slot");
        let mut config = Config::new();
        config.storage = Storage::Redis {
            url: seed.url(),
            cluster: true,
            retention: Duration::from_secs(30 * 86_400),
        };
        config
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

impl TestServer {
    /// `GET path`: the status and the JSON body (`Null` when there is none).
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.http.get(self.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Raw points of `series` in `[from, to]` (ms) as (ms, value); the query must succeed.
    pub async fn raw_history(&self, series: &str, from: i64, to: i64) -> Vec<(i64, f64)> {
        let (status, v) = self
            .get_json(&format!(
                "/api/v1/query?series={series}&from={from}&to={to}&raw=true"
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap() / 1_000_000, p[1].as_f64().unwrap()))
            .collect()
    }

    /// Waits until `/readyz` answers `status` (200: the store answers, 503: not).
    pub async fn wait_ready(&self, status: u16) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if got.as_ref().is_ok_and(|&s| s == status) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz never answered {status} (last: {got:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

//! Redis mode: what the Redis hop costs a live point, and how many points one Redis takes.
//!
//! Three release servers on loopback: A and B share one `redis-server` (started here with
//! `appendonly yes`), C keeps points in memory and is the baseline without the hop.
//!
//! - **Latency:** single points at 100/s are posted to A (and, in alternating rounds, to C);
//!   each carries the wall-clock microsecond it was posted as its value, and a live client
//!   on A, one on B and one on C take their own clock on receipt minus that (same machine,
//!   same clock). Added by the hop = A→B against C→C, p50 and p99.
//! - **Throughput:** line protocol batches of 5 000 points, four connections, two to A and
//!   two to B, for 5 s per round; points/s answered 2xx (so stored in Redis), median of
//!   three rounds, with Redis's `appendfsync everysec` and `always`.
//!
//! Needs `redis-server` on PATH (`scripts/setup.sh bench`) and the release binary. Run with
//! `make bench`; prints a Markdown section.

use futures::{SinkExt, StreamExt};
use livechart::protocol::Delta;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const RATE: u64 = 100;
const FEED: Duration = Duration::from_secs(5);
const LATENCY_ROUNDS: usize = 3;
const POINTS_PER_BATCH: usize = 5_000;
const CONNECTIONS: usize = 4;
const ROUND: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;
const BATCHES: usize = 64;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn start_redis(dir: &std::path::Path, appendfsync: &str) -> (Proc, u16) {
    let port = free_port();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("a redis directory");
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", appendfsync])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", "redis.log"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/setup.sh bench installs it)");
    (Proc(child), port)
}

fn start_livechart(args: &[String]) -> (Proc, String) {
    let port = free_port();
    let root = env!("CARGO_MANIFEST_DIR");
    let child = Command::new(format!("{root}/target/release/livechart"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(args)
        .args(["--max-series", "100000", "--ring-capacity", "200000"])
        // Its own figures (livechart.* series) would add points the run did not send.
        .arg("--no-self-metrics")
        .env("RUST_LOG", "error")
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("target/release/livechart");
    (Proc(child), format!("127.0.0.1:{port}"))
}

async fn wait_healthy(http: &reqwest::Client, addr: &str) {
    for _ in 0..400 {
        if http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} did not become healthy");
}

/// A live client on `addr` recording the latency (µs) of every `lat` point it receives.
async fn viewer(addr: &str, into: Arc<Mutex<Vec<u64>>>) -> tokio::task::JoinHandle<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("a live connection");
    ws.send(Message::Text(
        r#"{"type":"subscribe","series":[{"series":"lat"}],"max_rate":120}"#.into(),
    ))
    .await
    .expect("subscribe");
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let now = now_us();
            match msg {
                Message::Binary(b) => {
                    if let Ok(delta) = Delta::decode(&b) {
                        let mut v = into.lock().unwrap_or_else(|p| p.into_inner());
                        for s in delta.series {
                            v.extend(s.points.iter().map(|p| now.saturating_sub(p.value as u64)));
                        }
                    }
                }
                Message::Ping(p) => {
                    let _ = ws.send(Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    })
}

/// Posts single points at [`RATE`] for [`FEED`].
async fn feed(http: &reqwest::Client, addr: &str) {
    let url = format!("http://{addr}/api/v1/points");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let start = Instant::now();
    let mut posts = Vec::new();
    while start.elapsed() < FEED {
        tick.tick().await;
        let us = now_us();
        let body = format!(r#"{{"series":"lat","points":[[{},{us}]]}}"#, us / 1_000);
        let (http, url) = (http.clone(), url.clone());
        posts.push(tokio::spawn(async move {
            let ok = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            assert!(ok, "a latency point was refused");
        }));
    }
    for p in posts {
        let _ = p.await;
    }
    // Let the last points arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1_000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn batches() -> Vec<bytes::Bytes> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let mut ts = now - 3_600_000_000_000;
    (0..BATCHES)
        .map(|b| {
            let lines = POINTS_PER_BATCH / 10;
            let mut body = String::with_capacity(lines * 200);
            for l in 0..lines {
                let host = (b * lines + l) % 100;
                if host == 0 {
                    ts += 1_000_000_000;
                }
                body.push_str(&format!("sys,host=host-{host:03}"));
                for f in 0..10 {
                    let sep = if f == 0 { ' ' } else { ',' };
                    body.push_str(&format!(
                        "{sep}f{f}={}",
                        ((b * 31 + l * 7 + f * 13) % 1000) as f64 / 10.0
                    ));
                }
                body.push_str(&format!(" {ts}\n"));
            }
            bytes::Bytes::from(body)
        })
        .collect()
}

/// Points/s answered 2xx over one round, connections spread over `addrs`.
async fn throughput_round(addrs: &[String], batches: &Arc<Vec<bytes::Bytes>>) -> f64 {
    let accepted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS {
        let url = format!(
            "http://{}/write?db=bench&precision=ns",
            addrs[w % addrs.len()]
        );
        let (batches, accepted) = (batches.clone(), accepted.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut i = w;
            while start.elapsed() < ROUND {
                let body = batches[i % batches.len()].clone();
                i += CONNECTIONS;
                let r = client.post(&url).body(body).send().await;
                assert!(
                    r.as_ref().is_ok_and(|r| r.status().is_success()),
                    "a batch was refused: {r:?}"
                );
                accepted.fetch_add(POINTS_PER_BATCH as u64, Ordering::Relaxed);
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    accepted.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let http = reqwest::Client::new();
    let tmp = std::env::temp_dir().join(format!("livechart-bench-redis-{}", std::process::id()));

    // --- latency -------------------------------------------------------------------------
    let (redis, port) = start_redis(&tmp.join("latency"), "everysec");
    let url = format!("redis://127.0.0.1:{port}");
    let shared = vec!["--redis-url".to_string(), url.clone()];
    let (_a, a) = start_livechart(&shared);
    let (_b, b) = start_livechart(&shared);
    let (_c, c) = start_livechart(&["--in-memory".to_string()]);
    for addr in [&a, &b, &c] {
        wait_healthy(&http, addr).await;
    }
    let samples: Vec<Arc<Mutex<Vec<u64>>>> = (0..3).map(|_| Arc::default()).collect();
    let _viewers = [
        viewer(&a, samples[0].clone()).await,
        viewer(&b, samples[1].clone()).await,
        viewer(&c, samples[2].clone()).await,
    ];
    // One point first, so the series exists everywhere and connections are warm.
    feed_one(&http, &a).await;
    feed_one(&http, &c).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for s in &samples {
        s.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
    let mut rounds: Vec<[(f64, f64); 3]> = Vec::new();
    for _ in 0..LATENCY_ROUNDS {
        feed(&http, &c).await;
        feed(&http, &a).await;
        let mut r = [(0.0, 0.0); 3];
        for (i, s) in samples.iter().enumerate() {
            let mut v = std::mem::take(&mut *s.lock().unwrap_or_else(|p| p.into_inner()));
            v.sort_unstable();
            r[i] = (percentile(&v, 0.5), percentile(&v, 0.99));
        }
        rounds.push(r);
    }
    drop((_a, _b, _c));
    drop(redis);

    // --- throughput ------------------------------------------------------------------------
    let batches = Arc::new(batches());
    let mut through = Vec::new();
    for fsync in ["everysec", "always"] {
        let (redis, port) = start_redis(&tmp.join(format!("through-{fsync}")), fsync);
        let shared = vec![
            "--redis-url".to_string(),
            format!("redis://127.0.0.1:{port}"),
        ];
        let (_a, a) = start_livechart(&shared);
        let (_b, b) = start_livechart(&shared);
        for addr in [&a, &b] {
            wait_healthy(&http, addr).await;
        }
        let addrs = vec![a.clone(), b.clone()];
        throughput_round(&addrs, &batches).await; // warm-up
        let mut rates = Vec::new();
        for _ in 0..ROUNDS {
            rates.push(throughput_round(&addrs, &batches).await);
        }
        through.push((fsync, rates));
        drop((_a, _b));
        drop(redis);
    }
    let _ = std::fs::remove_dir_all(&tmp);

    println!("### Redis mode (issue 7)\n");
    println!(
        "Three release servers on loopback: A and B share one `redis-server` ({}), C keeps points \
         in memory (the baseline without the Redis hop). Single points at {RATE}/s posted for {} s, \
         alternately to C and to A, {LATENCY_ROUNDS} rounds each; a live client on A, on B and on C \
         measures its clock on receipt minus the post's. Everything shares the machine's 2 cores.\n",
        redis_version(),
        FEED.as_secs()
    );
    println!("| path | p50 per round | p99 per round | median p50 | median p99 |");
    println!("| --- | --- | --- | --- | --- |");
    let names = [
        "POST A → live on A (through Redis)",
        "POST A → live on B (through Redis)",
        "POST C → live on C (in memory, no Redis)",
    ];
    let mut med = [(0.0, 0.0); 3];
    for (i, name) in names.iter().enumerate() {
        let p50: Vec<f64> = rounds.iter().map(|r| r[i].0).collect();
        let p99: Vec<f64> = rounds.iter().map(|r| r[i].1).collect();
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        med[i] = (median(p50.clone()), median(p99.clone()));
        println!(
            "| {name} | {} ms | {} ms | {:.2} ms | {:.2} ms |",
            list(&p50),
            list(&p99),
            med[i].0,
            med[i].1
        );
    }
    println!(
        "\nAdded by the Redis hop (A → B against C → C): **p50 {:+.2} ms, p99 {:+.2} ms** \
         (target: ≤ 2 ms added at p99).\n",
        med[1].0 - med[2].0,
        med[1].1 - med[2].1
    );
    println!(
        "Throughput: line protocol batches of {POINTS_PER_BATCH} points (100 hosts × 10 fields), \
         {CONNECTIONS} connections (two to A, two to B) for {} s per round, median of {ROUNDS} \
         rounds after a warm-up; each answer comes after Redis applied the write.\n",
        ROUND.as_secs()
    );
    println!("| Redis `appendfsync` | points/s stored (median) | rounds |");
    println!("| --- | --- | --- |");
    for (fsync, rates) in &through {
        println!(
            "| {fsync} | {:.2} M | {} |",
            median(rates.clone()) / 1e6,
            rates
                .iter()
                .map(|r| format!("{:.2} M", r / 1e6))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("\nTarget: ≥ 0.3 M points/s through one Redis.");
}

async fn feed_one(http: &reqwest::Client, addr: &str) {
    let us = now_us();
    let body = format!(r#"{{"series":"lat","points":[[{},{us}]]}}"#, us / 1_000);
    let _ = http
        .post(format!("http://{addr}/api/v1/points"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
}

fn redis_version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.split_whitespace()
                .find(|w| w.starts_with("v="))
                .map(|w| w[2..].to_string())
        })
        .map_or_else(
            || "version unknown".into(),
            |v| format!("Redis {v}, `appendonly yes`, `appendfsync everysec`"),
        )
}

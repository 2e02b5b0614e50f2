//! End-to-end HTTP ingest: line protocol batches of 5 000 points over 4 keep-alive connections,
//! points per second answered 2xx, against VictoriaMetrics (Debian's `victoria-metrics`, which
//! takes the same line protocol on `/write`) on the same payloads in the same run.
//!
//! Both servers run as separate processes on loopback, one after the other, with the load
//! generator on the same 2-core machine (so it competes with the server, equally for both).
//! Rounds alternate between the servers; the report gives the median round of each.
//!
//! Needs the release binary (`cargo leptos build --release`) and, for the baseline,
//! `victoria-metrics` on PATH; without it only livechart is measured, and the report says so.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POINTS_PER_BATCH: usize = 5_000;
const CONNECTIONS: usize = 4;
const ROUND: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;
const BATCHES: usize = 64;
/// Distinct series across all batches: 100 hosts × 10 fields.
const HOSTS: usize = 100;
const FIELDS: usize = 10;

/// Time between two points of a series: 100 ms, so that the many millions of points a run
/// sends stay within the last day, inside VictoriaMetrics's retention.
const STEP_NS: i64 = 100_000_000;
/// How far back the first timestamp is: the run sends at most a few hours of points per
/// series at `STEP_NS`, so every timestamp stays in the past.
const START_AGO_NS: i64 = 12 * 3_600_000_000_000;

/// Telegraf-shaped batches to send: each line one host, 10 float fields, one timestamp. Every
/// batch posted carries timestamps no batch carried before, later ones for later sends, as
/// Telegraf's would: the template set is sent over and over, each pass moved on in time.
struct Batches {
    /// The set's bodies, with the byte offset and value of each 19-digit timestamp.
    bodies: Vec<(Vec<u8>, Vec<Stamp>)>,
    /// The set's time span: each pass moves its timestamps on by this much.
    span_ns: i64,
    start_ns: i64,
}

/// Where a template body holds a timestamp, and its value before the pass's shift.
type Stamp = (usize, i64);

impl Batches {
    fn new() -> Self {
        let lines_per_batch = POINTS_PER_BATCH / FIELDS;
        let start_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
            - START_AGO_NS;
        let mut step: i64 = 0;
        let bodies = (0..BATCHES)
            .map(|b| {
                let mut body = String::with_capacity(lines_per_batch * 200);
                let mut stamps = Vec::with_capacity(lines_per_batch);
                for l in 0..lines_per_batch {
                    let host = (b * lines_per_batch + l) % HOSTS;
                    if host == 0 {
                        step += 1;
                    }
                    body.push_str(&format!("sys,host=host-{host:03},dc=eu"));
                    for f in 0..FIELDS {
                        let sep = if f == 0 { ' ' } else { ',' };
                        let v = ((b * 31 + l * 7 + f * 13) % 1000) as f64 / 10.0;
                        body.push_str(&format!("{sep}f{f}={v}"));
                    }
                    body.push(' ');
                    stamps.push((body.len(), step * STEP_NS));
                    body.push_str(&format!("{:019}\n", step * STEP_NS));
                }
                (body.into_bytes(), stamps)
            })
            .collect();
        Self {
            bodies,
            span_ns: (step + 1) * STEP_NS,
            start_ns,
        }
    }

    /// The body of the `n`-th batch a server is sent.
    fn body(&self, n: u64) -> bytes::Bytes {
        let (template, stamps) = &self.bodies[(n % BATCHES as u64) as usize];
        let shift = self.start_ns + (n / BATCHES as u64) as i64 * self.span_ns;
        let mut body = template.clone();
        for &(at, ts) in stamps {
            // Written in place, a digit at a time: cheap next to what the server does with it.
            let mut v = (ts + shift) as u64;
            for d in body[at..at + 19].iter_mut().rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        bytes::Bytes::from(body)
    }
}

struct Server {
    name: String,
    url: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn wait_healthy(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not become healthy");
}

/// livechart in one storage mode: `--durability fsync` (the default), `relaxed`, or
/// `--in-memory`, each durable one with its own fresh data directory.
fn start_livechart(name: &str, storage: &[&str], data_dir: &std::path::Path) -> Server {
    let port = free_port();
    let root = env!("CARGO_MANIFEST_DIR");
    let _ = std::fs::remove_dir_all(data_dir);
    // `LIVECHART_BENCH_BIN` runs another build (A/B runs of two versions).
    let bin = std::env::var("LIVECHART_BENCH_BIN")
        .unwrap_or_else(|_| format!("{root}/target/release/livechart"));
    let child = Command::new(bin)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(storage)
        .arg("--data-dir")
        .arg(data_dir)
        // Room for every series, so nothing is refused in ways VictoriaMetrics would not.
        .args(["--max-series", "100000"])
        // Its own figures (livechart.* series) would add points the run did not send.
        .arg("--no-self-metrics")
        .env("RUST_LOG", "warn")
        .current_dir(root)
        .stdout(Stdio::null())
        .spawn()
        .expect("target/release/livechart (run `cargo leptos build --release` first)");
    Server {
        name: name.to_string(),
        url: format!("http://127.0.0.1:{port}"),
        child,
    }
}

fn start_victoria_metrics(dir: &std::path::Path) -> Option<Server> {
    let port = free_port();
    let child = Command::new("victoria-metrics")
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg("-retentionPeriod=2d")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Server {
        name: "VictoriaMetrics".to_string(),
        url: format!("http://127.0.0.1:{port}"),
        child,
    })
}

/// One round: CONNECTIONS workers post batches for ROUND; returns points/s answered 2xx.
/// `sent` counts the batches this server was sent over the whole run, so each is new.
async fn round(url: &str, batches: &Arc<Batches>, sent: &Arc<AtomicU64>) -> f64 {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + ROUND;
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (url, batches, sent, accepted, failed) = (
            format!("{url}/write?db=bench&precision=ns"),
            batches.clone(),
            sent.clone(),
            accepted.clone(),
            failed.clone(),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let body = batches.body(sent.fetch_add(1, Ordering::Relaxed));
                match client.post(&url).body(body).send().await {
                    Ok(r) if r.status().is_success() => {
                        accepted.fetch_add(POINTS_PER_BATCH as u64, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let failures = failed.load(Ordering::Relaxed);
    assert_eq!(failures, 0, "{url}: {failures} batches were not accepted");
    accepted.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let batches = Arc::new(Batches::new());
    let http = reqwest::Client::new();
    let tmp = std::env::temp_dir().join(format!("livechart-bench-{}", std::process::id()));
    let modes: [(&str, &[&str]); 3] = [
        (
            "livechart, durable (`--durability fsync`, the default)",
            &[],
        ),
        (
            "livechart, durable (`--durability relaxed`)",
            &["--durability", "relaxed"],
        ),
        // In memory the live window is the store: room for every point of the run, so none
        // is evicted. The durable modes keep their default window (the newest 10 000 points
        // of each series; the rest are on disk), as a deployed server does.
        (
            "livechart, in memory (`--in-memory`)",
            &["--in-memory", "--ring-capacity", "500000"],
        ),
    ];
    // For working on one mode: `LIVECHART_BENCH_MODES=relaxed` (or `fsync`, `in-memory`, a
    // comma-separated list) runs only those, still against VictoriaMetrics.
    let only = std::env::var("LIVECHART_BENCH_MODES").ok();
    let modes: Vec<(&str, &[&str])> = modes
        .into_iter()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|only| only.split(',').any(|m| name.contains(m.trim())))
        })
        .collect();
    let mut servers: Vec<Server> = modes
        .iter()
        .enumerate()
        .map(|(i, (name, args))| start_livechart(name, args, &tmp.join(format!("livechart-{i}"))))
        .collect();
    for s in &servers {
        wait_healthy(&http, &format!("{}/healthz", s.url)).await;
    }
    let has_vm = match start_victoria_metrics(&tmp.join("vm")) {
        Some(vm) => {
            wait_healthy(&http, &format!("{}/health", vm.url)).await;
            servers.push(vm);
            true
        }
        None => false,
    };

    // Warm-up round each, not counted; then rounds alternate between the servers.
    let sent: Vec<Arc<AtomicU64>> = servers.iter().map(|_| Arc::default()).collect();
    for (s, sent) in servers.iter().zip(&sent) {
        round(&s.url, &batches, sent).await;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    // `LIVECHART_BENCH_ROUNDS=8`: more rounds, to see whether the rate holds as data grows.
    let rounds: usize = std::env::var("LIVECHART_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    for _ in 0..rounds {
        for (i, s) in servers.iter().enumerate() {
            rates[i].push(round(&s.url, &batches, &sent[i]).await);
        }
    }

    println!("### HTTP ingest, line protocol\n");
    println!(
        "Batches of {POINTS_PER_BATCH} points ({} lines × {FIELDS} fields, {} series in all) posted to `/write` over \
         {CONNECTIONS} keep-alive connections for {} s per round; median of {rounds} alternating rounds after a \
         warm-up. Server and load generator share the machine's 2 cores. Every livechart answer is \
         sent after its points are committed (group commit); VictoriaMetrics answers once points are \
         buffered in memory and writes them out about once a second.\n",
        POINTS_PER_BATCH / FIELDS,
        HOSTS * FIELDS,
        ROUND.as_secs()
    );
    println!("| server | points/s accepted (median) | rounds |");
    println!("| --- | --- | --- |");
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.2} M", x / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (s, r) in servers.iter().zip(&rates) {
        println!(
            "| {} | {:.2} M | {} |",
            s.name,
            median(r.clone()) / 1e6,
            fmt(r)
        );
    }
    if has_vm {
        let vm = median(rates[servers.len() - 1].clone());
        println!("\nRatios against VictoriaMetrics (Debian package):\n");
        for (s, r) in servers.iter().zip(&rates).take(modes.len()) {
            println!("- {}: **{:.2}×**", s.name, median(r.clone()) / vm);
        }
    } else {
        println!("\nVictoriaMetrics is not installed (`apt-get install victoria-metrics`): no baseline this run.");
    }

    // Evidence that livechart stored what it accepted: every point of every batch it was sent.
    for (s, sent) in servers.iter().zip(&sent).take(modes.len()) {
        let distinct = sent.load(Ordering::Relaxed) * POINTS_PER_BATCH as u64;
        let listed: serde_json::Value = http
            .get(format!("{}/api/v1/series", s.url))
            .send()
            .await
            .expect("livechart answers /api/v1/series")
            .json()
            .await
            .expect("/api/v1/series is JSON");
        let points: u64 = listed["series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["points"].as_u64())
            .sum();
        assert_eq!(
            points, distinct,
            "{}: holds every distinct point sent",
            s.name
        );
    }
    println!(
        "\nEvery batch carries timestamps no earlier batch carried (each pass over the {BATCHES} template \
         batches moves them on in time), as a Telegraf agent's would. Each livechart mode holds, \
         after the run, every point it was sent, in {} series (checked through `/api/v1/series`).",
        HOSTS * FIELDS
    );
    // Evidence that the baseline stored what it accepted, not just parsed and dropped it.
    if has_vm {
        let vm = &servers[servers.len() - 1];
        tokio::time::sleep(Duration::from_secs(2)).await;
        let count = http
            .get(format!("{}/api/v1/series/count", vm.url))
            .send()
            .await
            .ok();
        let count = match count {
            Some(r) => r.text().await.unwrap_or_default(),
            None => String::from("(no answer)"),
        };
        println!(
            "\nVictoriaMetrics `/api/v1/series/count` after the run: `{}` for {} series sent (its docs \
             say the count can be inflated; it shows the points were stored, not dropped).",
            count.trim(),
            HOSTS * FIELDS
        );
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&tmp);
}

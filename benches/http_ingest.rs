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

/// Telegraf-shaped batches: each line one host, 10 float fields, one timestamp; within the
/// set, later batches carry later timestamps. Timestamps start an hour ago: VictoriaMetrics
/// silently drops samples outside its retention, which would make its side of the comparison
/// do far less work (an early version of this benchmark did exactly that). Rounds re-send the
/// set, so livechart also takes its slower path of merging repeated timestamps.
fn batches() -> Vec<bytes::Bytes> {
    let lines_per_batch = POINTS_PER_BATCH / FIELDS;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let mut ts: i64 = now - 3_600_000_000_000;
    (0..BATCHES)
        .map(|b| {
            let mut body = String::with_capacity(lines_per_batch * 200);
            for l in 0..lines_per_batch {
                let host = (b * lines_per_batch + l) % HOSTS;
                if host == 0 {
                    ts += 1_000_000_000;
                }
                body.push_str(&format!("sys,host=host-{host:03},dc=eu"));
                for f in 0..FIELDS {
                    let sep = if f == 0 { ' ' } else { ',' };
                    let v = ((b * 31 + l * 7 + f * 13) % 1000) as f64 / 10.0;
                    body.push_str(&format!("{sep}f{f}={v}"));
                }
                body.push_str(&format!(" {ts}\n"));
            }
            bytes::Bytes::from(body)
        })
        .collect()
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
    let child = Command::new(format!("{root}/target/release/livechart"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(storage)
        .arg("--data-dir")
        .arg(data_dir)
        // Room for every series and a whole round of points, so nothing is refused or evicted
        // in ways VictoriaMetrics would not.
        .args(["--max-series", "100000", "--ring-capacity", "200000"])
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
async fn round(url: &str, batches: &Arc<Vec<bytes::Bytes>>, offset: usize) -> f64 {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + ROUND;
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (url, batches, accepted, failed) = (
            format!("{url}/write?db=bench&precision=ns"),
            batches.clone(),
            accepted.clone(),
            failed.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = offset + w;
            while Instant::now() < deadline {
                let body = batches[i % batches.len()].clone();
                i += CONNECTIONS;
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
    let batches = Arc::new(batches());
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
        ("livechart, in memory (`--in-memory`)", &["--in-memory"]),
    ];
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
    for s in &servers {
        round(&s.url, &batches, 0).await;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for r in 0..ROUNDS {
        for (i, s) in servers.iter().enumerate() {
            rates[i].push(round(&s.url, &batches, r).await);
        }
    }

    println!("### HTTP ingest, line protocol\n");
    println!(
        "Batches of {POINTS_PER_BATCH} points ({} lines × {FIELDS} fields, {} series in all) posted to `/write` over \
         {CONNECTIONS} keep-alive connections for {} s per round; median of {ROUNDS} alternating rounds after a \
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

    // Evidence that livechart stored what it accepted: every series of the set, every point.
    let distinct = (BATCHES * POINTS_PER_BATCH) as u64;
    for s in servers.iter().take(modes.len()) {
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
        "\nEach livechart mode holds, after the run, the {distinct} distinct points of the batch set in \
         {} series (checked through `/api/v1/series`). Rounds re-send the set, so after its first \
         pass livechart overwrites stored timestamps (its retry path: in memory in place, on disk \
         as new chunks that win on read); VictoriaMetrics appends and deduplicates later.",
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

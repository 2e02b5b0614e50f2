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
    name: &'static str,
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

fn start_livechart() -> Server {
    let port = free_port();
    let root = env!("CARGO_MANIFEST_DIR");
    let child = Command::new(format!("{root}/target/release/livechart"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        // Room for every series and a whole round of points, so nothing is refused or evicted
        // in ways VictoriaMetrics would not.
        .args(["--max-series", "100000", "--ring-capacity", "200000"])
        .env("RUST_LOG", "warn")
        .current_dir(root)
        .stdout(Stdio::null())
        .spawn()
        .expect("target/release/livechart (run `cargo leptos build --release` first)");
    Server {
        name: "livechart",
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
        name: "VictoriaMetrics",
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
    let vm_dir = std::env::temp_dir().join(format!("livechart-bench-vm-{}", std::process::id()));

    let livechart = start_livechart();
    wait_healthy(&http, &format!("{}/healthz", livechart.url)).await;
    let vm = start_victoria_metrics(&vm_dir);
    if let Some(vm) = &vm {
        wait_healthy(&http, &format!("{}/health", vm.url)).await;
    }

    // Warm-up round each, not counted.
    round(&livechart.url, &batches, 0).await;
    if let Some(vm) = &vm {
        round(&vm.url, &batches, 0).await;
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        ours.push(round(&livechart.url, &batches, r).await);
        if let Some(vm) = &vm {
            theirs.push(round(&vm.url, &batches, r).await);
        }
    }

    println!("### HTTP ingest, line protocol\n");
    println!(
        "Batches of {POINTS_PER_BATCH} points ({} lines × {FIELDS} fields, {} series in all) posted to `/write` over \
         {CONNECTIONS} keep-alive connections for {} s per round; median of {ROUNDS} alternating rounds after a \
         warm-up. Server and load generator share the machine's 2 cores.\n",
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
    println!(
        "| {} | {:.2} M | {} |",
        livechart.name,
        median(ours.clone()) / 1e6,
        fmt(&ours)
    );
    match &vm {
        Some(vm) => {
            println!("| {} (Debian package) | {:.2} M | {} |", vm.name, median(theirs.clone()) / 1e6, fmt(&theirs));
            println!(
                "\nRatio livechart / VictoriaMetrics: **{:.2}×** points/s.",
                median(ours) / median(theirs)
            );
        }
        None => println!("\nVictoriaMetrics is not installed (`apt-get install victoria-metrics`): no baseline this run."),
    }
    // Evidence that livechart stored what it accepted: every series of the set, every point.
    let listed: serde_json::Value = http
        .get(format!("{}/api/v1/series", livechart.url))
        .send()
        .await
        .expect("livechart answers /api/v1/series")
        .json()
        .await
        .expect("/api/v1/series is JSON");
    let series = listed["series"].as_array().map_or(0, Vec::len);
    let points: u64 = listed["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["points"].as_u64())
        .sum();
    let distinct = (BATCHES * POINTS_PER_BATCH) as u64;
    assert_eq!(points, distinct, "livechart holds every distinct point sent");
    println!(
        "\nlivechart `/api/v1/series` after the run: {series} series holding {points} points, the \
         {distinct} distinct points of the batch set (rounds re-send the set, so after its first pass \
         livechart overwrites stored timestamps in place, its retry path; VictoriaMetrics appends \
         and deduplicates later)."
    );
    // Evidence that the baseline stored what it accepted, not just parsed and dropped it.
    if let Some(vm) = &vm {
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
    drop(vm);
    let _ = std::fs::remove_dir_all(&vm_dir);
}

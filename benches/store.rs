//! The durable store at scale: fill it with 100 M points (1 000 series × 100 000 points over
//! 30 days, written through the store's own append path), then measure what a restart costs
//! (opening the store in-process, and the release binary from start until it answers
//! `/healthz`), the file size per point, and history queries over ranges of growing size at
//! a fixed width (M4) against the raw points they read.
//!
//! Run with `make bench`; prints a Markdown section. The fill takes a minute or two.

use livechart::history::HistoryQuery;
use livechart::model::{Batch, Point, SeriesKey};
use livechart::server::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use livechart::server::store::Store;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERIES: usize = 1_000;
const POINTS_PER_SERIES: usize = 100_000;
const PER_APPEND: usize = 100;
const DAY_NS: i64 = 86_400 * 1_000_000_000;
const DENSE_POINTS: usize = 6 * 3_600 * 1_000;
const DENSE_PER_APPEND: usize = 100_000;

fn options(dir: &std::path::Path) -> SqliteOptions {
    SqliteOptions {
        dir: dir.to_path_buf(),
        durability: Durability::Relaxed,
        retention: Duration::from_secs(365 * 86_400),
        max_disk_bytes: None,
        max_series: SERIES + 1,
        ring_capacity: 10_000,
        warm: Duration::from_secs(60),
        hub: None,
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("livechart-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys: Vec<SeriesKey> = (0..SERIES)
        .map(|s| SeriesKey::with_labels("bench.value", [("s", s.to_string())]).unwrap())
        .collect();
    let end = now_ns();
    let start = end - 30 * DAY_NS;
    let step = 30 * DAY_NS / POINTS_PER_SERIES as i64;

    let store = SqliteStore::open(options(&dir)).expect("store opens");
    let fill = Instant::now();
    for round in 0..POINTS_PER_SERIES / PER_APPEND {
        let mut batch = Batch::new();
        for (s, key) in keys.iter().enumerate() {
            let points = (0..PER_APPEND).map(|i| {
                let n = (round * PER_APPEND + i) as i64;
                Point::new(
                    start + n * step + s as i64,
                    ((n + s as i64) % 1_000) as f64 * 0.1,
                )
                .unwrap()
            });
            batch.extend(key.clone(), points);
        }
        store.append(batch).await.expect("append");
    }
    let fill = fill.elapsed();
    // One dense series: 1 kHz for the last 6 hours (21.6 M points), for long-range queries.
    let dense = SeriesKey::new("bench.dense").expect("a valid name");
    let dense_start = end - 6 * 3_600 * 1_000_000_000;
    for round in 0..DENSE_POINTS / DENSE_PER_APPEND {
        let mut batch = Batch::new();
        let points = (0..DENSE_PER_APPEND).map(|i| {
            let n = (round * DENSE_PER_APPEND + i) as i64;
            // A slow wave with noise, so chunks have distinct extremes.
            let v = ((n as f64) / 50_000.0).sin() * 100.0 + ((n * 7_919) % 101) as f64 * 0.01;
            Point::new(dense_start + n * 1_000_000, v).expect("finite")
        });
        batch.extend(dense.clone(), points);
        store.append(batch).await.expect("append dense");
    }
    drop(store);
    // Let the writer thread finish its last compaction and close.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let total = (SERIES * POINTS_PER_SERIES) as f64;
    let file_bytes: u64 = std::fs::read_dir(&dir)
        .expect("data dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let (chunks, chunk_points, blob_bytes, free_bytes): (i64, i64, i64, i64) = {
        let db = rusqlite::Connection::open(dir.join("livechart.db")).expect("open db");
        let pragma = |n: &str| -> i64 {
            db.query_row(&format!("PRAGMA {n}"), [], |r| r.get(0))
                .expect("pragma")
        };
        let free = pragma("freelist_count") * pragma("page_size");
        let (c, p, b) = db
            .query_row(
                "SELECT count(*), sum(count), sum(length(data)) FROM chunks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("count chunks");
        (c, p, b, free)
    };

    // Restart, in-process: open (series, log, warm window) until ready.
    let mut opens = Vec::new();
    let mut store = None;
    for _ in 0..3 {
        drop(store.take());
        let t = Instant::now();
        store = Some(SqliteStore::open(options(&dir)).expect("store reopens"));
        opens.push(t.elapsed());
    }
    let store = store.unwrap();

    // History: one series, growing ranges, width 1 000.
    let mut rows = Vec::new();
    for days in [1i64, 7, 30] {
        let mut times = Vec::new();
        let mut raw = 0;
        for r in 0..5 {
            let q = HistoryQuery {
                series: keys[(r * 37) % SERIES].clone(),
                from_ns: end - days * DAY_NS,
                to_ns: end,
                width: 1_000,
                raw_limit: None,
            };
            let t = Instant::now();
            let answer = store.history(q).await.expect("history");
            times.push(t.elapsed());
            raw = answer.raw_points;
        }
        rows.push((days, raw, median(times)));
    }
    // The dense series: ranges from a minute to six hours at 1 kHz, width 1 000.
    let mut dense_rows = Vec::new();
    for (label, span_ns) in [
        ("1 min", 60 * 1_000_000_000i64),
        ("10 min", 600 * 1_000_000_000),
        ("1 h", 3_600 * 1_000_000_000),
        ("6 h", 6 * 3_600 * 1_000_000_000),
    ] {
        let mut times = Vec::new();
        let mut raw = 0;
        for _ in 0..5 {
            let q = HistoryQuery {
                series: dense.clone(),
                from_ns: end - span_ns,
                to_ns: end,
                width: 1_000,
                raw_limit: None,
            };
            let t = Instant::now();
            let answer = store.history(q).await.expect("dense history");
            times.push(t.elapsed());
            raw = answer.raw_points;
        }
        dense_rows.push((label, raw, median(times)));
    }
    drop(store);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Restart, the real binary: from spawn until /healthz answers.
    let root = env!("CARGO_MANIFEST_DIR");
    let mut starts = Vec::new();
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let t = Instant::now();
        let mut child = Command::new(format!("{root}/target/release/livechart"))
            .args([
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--max-series",
                "1001",
            ])
            .arg("--data-dir")
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("target/release/livechart");
        let url = format!("http://127.0.0.1:{port}/healthz");
        let client = reqwest::Client::new();
        loop {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        starts.push(t.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    if std::env::var_os("LIVECHART_BENCH_KEEP").is_some() {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!("### Durable store at 100 M points\n");
    println!(
        "{SERIES} series × {POINTS_PER_SERIES} points over 30 days, appended {} points at a time through \
         the store (`--durability relaxed`).\n",
        SERIES * PER_APPEND
    );
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| fill | {:.1} s ({:.2} M points/s) |",
        fill.as_secs_f64(),
        total / fill.as_secs_f64() / 1e6
    );
    println!(
        "| files on disk | {:.0} MB ({:.2} bytes/point) |",
        file_bytes as f64 / 1e6,
        file_bytes as f64 / total
    );
    println!(
        "| chunk rows | {chunks} ({:.0} points each on average) |",
        chunk_points as f64 / chunks.max(1) as f64
    );
    println!(
        "| chunk data | {:.0} MB ({:.2} bytes/point); free pages {:.0} MB |",
        blob_bytes as f64 / 1e6,
        blob_bytes as f64 / total,
        free_bytes as f64 / 1e6
    );
    println!(
        "| restart, store open (median of 3) | {:.0} ms |",
        median(opens).as_secs_f64() * 1e3
    );
    println!(
        "| restart, binary spawn to `/healthz` 200 (median of 3) | {:.0} ms |",
        median(starts).as_secs_f64() * 1e3
    );
    println!("\nHistory of one series at width 1 000 (M4), median of 5:\n");
    println!("| range | raw points read | time | ns per raw point |");
    println!("| --- | --- | --- | --- |");
    for (days, raw, t) in rows {
        println!(
            "| {days} d | {raw} | {:.1} ms | {:.0} |",
            t.as_secs_f64() * 1e3,
            t.as_nanos() as f64 / raw.max(1) as f64
        );
    }
    println!(
        "\nOne dense series, 1 kHz for 6 hours ({DENSE_POINTS} points), at width 1 000 (M4), \
         median of 5. Chunks that fall inside one pixel column are answered from their stored \
         extremes instead of being decoded, so time grows far slower than the raw points:\n"
    );
    println!("| range | raw points in range | time | ns per raw point |");
    println!("| --- | --- | --- | --- |");
    for (label, raw, t) in dense_rows {
        println!(
            "| {label} | {raw} | {:.1} ms | {:.1} |",
            t.as_secs_f64() * 1e3,
            t.as_nanos() as f64 / raw.max(1) as f64
        );
    }
}

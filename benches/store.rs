//! The durable store at scale: fill it with 100 M points (1 000 series × 100 000 points over
//! 30 days, written through the store's own append path), then measure what a restart costs
//! (opening the store in-process, and the release binary from start until it answers
//! `/healthz`), the file size per point, and history queries over ranges of growing size at
//! a fixed width (M4) against the raw points they read.
//!
//! Run with `make bench`; prints a Markdown section. The fill takes a minute or two.

use livechart::history::HistoryQuery;
use livechart::model::{Batch, Point, SeriesKey};
use livechart::server::store::read_work::ReadWork;
use livechart::server::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use livechart::server::store::Store;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERIES: usize = 1_000;
const POINTS_PER_SERIES: usize = 100_000;
const PER_APPEND: usize = 100;
const DAY_NS: i64 = 86_400 * 1_000_000_000;

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

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    // `LIVECHART_BENCH_PARTS=dense,bytes` runs only those parts (for working on them);
    // `fill` is the store of 1 000 series this function fills first.
    let parts = std::env::var("LIVECHART_BENCH_PARTS").ok();
    if let Some(parts) = parts.as_deref().filter(|p| !p.contains("fill")) {
        if parts.contains("dense") {
            dense::run().await;
        }
        if parts.contains("bytes") {
            bytes_per_point::run().await;
        }
        if parts.contains("backfill") {
            backfill::run().await;
        }
        return;
    }
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
                    ((n + s as i64) % 1_000) as f64 / 10.0,
                )
                .unwrap()
            });
            batch.extend(key.clone(), points);
        }
        store.append(batch).await.expect("append");
    }
    let fill = fill.elapsed();
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
    // `GET /api/v1/series` after the restart: counts and first points from the database
    // (the live window holds only the last minute).
    let mut lists = Vec::new();
    let mut listed = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let all = store.list(now_ns()).await.expect("series list");
        lists.push(t.elapsed());
        listed = all.iter().map(|i| i.points).sum::<usize>();
    }
    assert_eq!(
        listed,
        SERIES * POINTS_PER_SERIES,
        "the list counts every point"
    );
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
                "--no-self-metrics",
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
    println!(
        "| series list (`GET /api/v1/series`) after the restart, {SERIES} series (median of 5) | {:.0} ms |",
        median(lists).as_secs_f64() * 1e3
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
    if parts.is_some() {
        return;
    }
    dense::run().await;
    bytes_per_point::run().await;
    backfill::run().await;
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("livechart-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Bytes on disk of a store's directory.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Bytes of database pages in use (free pages, left by the commit log that compaction emptied,
/// are reused by later writes, so they are not the data's cost).
fn used_bytes(dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("livechart.db")).expect("open db");
    let pragma = |n: &str| -> i64 {
        db.query_row(&format!("PRAGMA {n}"), [], |r| r.get(0))
            .expect("pragma")
    };
    (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")
}

/// Sum of the chunks' encoded bytes and their point count.
fn chunk_bytes(dir: &std::path::Path) -> (i64, i64) {
    let db = rusqlite::Connection::open(dir.join("livechart.db")).expect("open db");
    db.query_row(
        "SELECT coalesce(sum(length(data)), 0), coalesce(sum(count), 0) FROM chunks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("sum chunks")
}

/// Appends `points` (time-sorted) to `key` in `per_append` slices, then closes the store and
/// waits for its writer to compact and finish.
async fn fill(
    store: SqliteStore,
    key: &SeriesKey,
    points: &[Point],
    per_append: usize,
) -> Duration {
    let t = Instant::now();
    for slice in points.chunks(per_append) {
        let mut batch = Batch::new();
        batch.extend(key.clone(), slice.iter().copied());
        store.append(batch).await.expect("append");
    }
    let took = t.elapsed();
    drop(store);
    tokio::time::sleep(Duration::from_secs(6)).await;
    took
}

/// One series at 1 kHz holding 100 M points (~28 hours): history at 2 000 columns over ranges
/// holding 0.1 M to 100 M of them. The target: ≤ 20 ms, independent of the count.
mod dense {
    use super::*;

    /// How long one history read takes.
    async fn timed(store: &SqliteStore, q: HistoryQuery) -> Duration {
        timed_faults(store, q).await.0
    }

    /// How long one history read takes, and the page faults the process took meanwhile
    /// (nothing else runs during a read).
    async fn timed_faults(store: &SqliteStore, q: HistoryQuery) -> (Duration, u64) {
        let faults = minor_faults();
        let t = Instant::now();
        store.history_with_work(q).await.expect("dense history");
        (t.elapsed(), minor_faults().saturating_sub(faults))
    }

    fn minor_faults() -> u64 {
        // SAFETY: getrusage writes the struct it is given and nothing else.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return 0;
        }
        usage.ru_minflt as u64
    }

    /// Points in the series; `LIVECHART_BENCH_DENSE_POINTS=1000000000` makes it 1 G (about
    /// 8.3 GB, filled in minutes) and adds a 1 G range, to see reads keep their time at 10×.
    fn points_total() -> usize {
        std::env::var("LIVECHART_BENCH_DENSE_POINTS")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(100_000_000)
    }
    const WIDTH: usize = 2_000;
    /// Rounds of the reads that must not find all their rows cached (moved, new, after a start).
    const COLD_ROUNDS: usize = 5;

    pub async fn run() {
        // `LIVECHART_BENCH_DENSE_DIR` keeps the filled store there and reuses it next time.
        let kept = std::env::var_os("LIVECHART_BENCH_DENSE_DIR").map(std::path::PathBuf::from);
        let dir = kept.clone().unwrap_or_else(|| temp_dir("dense"));
        let reuse = kept.is_some() && dir.join("end").exists();
        let key = SeriesKey::new("bench.dense").expect("a valid name");
        let end = if reuse {
            std::fs::read_to_string(dir.join("end"))
                .expect("end")
                .trim()
                .parse()
                .expect("end")
        } else {
            now_ns()
        };
        let total = points_total();
        let start = end - total as i64 * 1_000_000;
        // A slow wave with noise at full precision, so chunks have distinct extremes and take
        // the slower (XOR) value path.
        let point = |n: i64| {
            let v = ((n as f64) / 50_000.0).sin() * 100.0 + ((n * 7_919) % 101) as f64 * 0.01;
            Point::new(start + n * 1_000_000, v).expect("finite")
        };
        let store = SqliteStore::open(options(&dir)).expect("store opens");
        let t = Instant::now();
        for round in 0..if reuse { 0 } else { total / 1_000_000 } {
            let points: Vec<Point> = (0..1_000_000)
                .map(|i| point((round * 1_000_000 + i) as i64))
                .collect();
            let mut batch = Batch::new();
            batch.extend(key.clone(), points);
            store.append(batch).await.expect("append");
        }
        let fill = t.elapsed();
        drop(store);
        tokio::time::sleep(Duration::from_secs(6)).await;
        let store = SqliteStore::open(options(&dir)).expect("store reopens");
        // A server up for a few seconds has its file mapped in (`mapped_vfs::populate`, which
        // pauses while reads go on, and these rounds read without pause); the first reads
        // after a start are the last column.
        tokio::time::sleep(Duration::from_secs(3)).await;
        // For profiling: `LIVECHART_BENCH_ONLY="100 M"` runs one range,
        // `LIVECHART_BENCH_REPEAT=60` that many rounds.
        let ranges: Vec<(&str, i64)> = [
            ("0.1 M", 100_000i64),
            ("1 M", 1_000_000),
            ("10 M", 10_000_000),
            ("20 M", 20_000_000),
            ("50 M", 50_000_000),
            ("100 M", 100_000_000),
            ("1 G", 1_000_000_000),
        ]
        .into_iter()
        .filter(|(_, points)| *points as usize <= total)
        .filter(|(label, _)| {
            std::env::var("LIVECHART_BENCH_ONLY").is_ok_and(|o| o.split(',').any(|o| o == *label))
                || std::env::var("LIVECHART_BENCH_ONLY").is_err()
        })
        .collect();
        let repeat: usize = std::env::var("LIVECHART_BENCH_REPEAT")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(15);
        // The range holding `points` (at 1 kHz) and ending `later` after the data does.
        let query_at = |points: i64, later: Duration| {
            let to_ns = end + later.as_nanos() as i64;
            HistoryQuery {
                series: key.clone(),
                from_ns: to_ns - points * 1_000_000,
                to_ns,
                width: WIDTH,
                raw_limit: None,
            }
        };
        let query = |points: i64| query_at(points, Duration::ZERO);
        // Round by round, every range once per round: drift on a noisy machine then weighs on
        // all ranges alike, and their ratio means something.
        let mut times = vec![Vec::new(); ranges.len()];
        let mut raw = vec![0; ranges.len()];
        let mut work = vec![ReadWork::default(); ranges.len()];
        for _ in 0..repeat {
            for (i, (_, points)) in ranges.iter().enumerate() {
                let t = Instant::now();
                let (answer, did) = store
                    .history_with_work(query(*points))
                    .await
                    .expect("dense history");
                times[i].push(t.elapsed());
                raw[i] = answer.raw_points;
                work[i] = did;
            }
        }
        // A read of the range moved a second on (a live dashboard's refresh, after reading
        // it once), and the first read of a range no read asked for before (the row cache
        // emptied, the window moved by seconds and a fraction, so its columns split
        // elsewhere), both on the store's warm read connections, as a running server's are.
        let mut moved = vec![Vec::new(); ranges.len()];
        let mut news = vec![Vec::new(); ranges.len()];
        let mut ingesting = vec![Vec::new(); ranges.len()];
        let mut faults = vec![[Vec::new(), Vec::new(), Vec::new()]; ranges.len()];
        let other = SeriesKey::new("bench.other").expect("a valid name");
        for round in 0..COLD_ROUNDS {
            for (i, (_, points)) in ranges.iter().enumerate() {
                timed(&store, query(*points)).await;
                moved[i].push(timed(&store, query_at(*points, Duration::from_secs(1))).await);
                store.clear_row_cache();
                let elsewhere = Duration::from_millis(7_300 + 11_100 * round as u64);
                let (took, faulted) = timed_faults(&store, query_at(*points, elsewhere)).await;
                news[i].push(took);
                faults[i][0].push(faulted);
                // A commit (a point of another series) between two reads of the same range.
                let mut batch = Batch::new();
                batch.extend(
                    other.clone(),
                    vec![Point::new(now_ns(), 1.0).expect("finite")],
                );
                store.append(batch).await.expect("append");
                let (took, faulted) = timed_faults(&store, query(*points)).await;
                ingesting[i].push(took);
                faults[i][1].push(faulted);
            }
        }
        // The first read after a start: the store reopened before it, so new read
        // connections that have mapped none of the file yet.
        let mut firsts = vec![Vec::new(); ranges.len()];
        let mut store = store;
        for _ in 0..COLD_ROUNDS {
            for (i, (_, points)) in ranges.iter().enumerate() {
                // The last store's background work (mapping its file in, at most 1 s after
                // it opened) ends before it closes: a new process has none still running.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                drop(store);
                store = SqliteStore::open(options(&dir)).expect("store reopens");
                let (took, faulted) = timed_faults(&store, query(*points)).await;
                firsts[i].push(took);
                faults[i][2].push(faulted);
            }
        }
        let rows: Vec<(&str, usize, [Duration; 5], ReadWork)> = ranges
            .iter()
            .zip(raw)
            .zip(times.into_iter().zip(moved))
            .zip(news.into_iter().zip(ingesting).zip(firsts))
            .zip(work)
            .map(
                |(((((label, _), raw), (t, moved)), ((new, ingesting), first)), work)| {
                    let times = [
                        median(t),
                        median(moved),
                        median(new),
                        median(ingesting),
                        median(first),
                    ];
                    (*label, raw, times, work)
                },
            )
            .collect();
        let faults: Vec<[u64; 3]> = faults.into_iter().map(|f| f.map(median)).collect();
        drop(store);
        let bytes = dir_bytes(&dir);
        if kept.is_some() {
            std::fs::write(dir.join("end"), end.to_string()).expect("end");
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }

        let filled = if reuse {
            format!("kept from an earlier run in {}", dir.display())
        } else {
            format!(
                "filled in {:.1} s ({:.2} M points/s)",
                fill.as_secs_f64(),
                total as f64 / fill.as_secs_f64() / 1e6
            )
        };
        println!(
            "\n### History at 2 000 columns, one series of {} M points\n\n\
             One series at 1 kHz for {:.1} hours ({total} points, a slow wave plus noise at full \
             precision), {filled}, {:.2} bytes/point on disk. \
             History queries ending now at width {WIDTH} (M4) after a restart, in {repeat} rounds of one query per range (a read this wide runs as one part per core, at most 2); medians. \
             From the second round on, reads find the rollup rows they need in the row cache. \
             *Moved 1 s* is the range ending a second later, read right after the range itself \
             (a live dashboard's refresh); *new range*, the first read of a range no read asked \
             for (the row cache emptied, the window moved by seconds and a fraction), both on \
             warm read connections; *while ingesting*, the range read again right after a commit \
             (a point of another series), as reads go while points arrive: SQLite drops a read \
             connection's page cache when the database changed since its last read (the map \
             of the file stays, `mapped_vfs.rs`); *after a start*, one right after opening the store (its \
             read connections new, their page caches empty). Page faults: the process's, during \
             one read (first touches of mapped file pages or of new memory). Each median of {COLD_ROUNDS}:\n",
            total / 1_000_000,
            total as f64 / 3.6e6,
            bytes as f64 / total as f64,
        );
        println!(
            "| range holds | raw points | pixel column | time | moved 1 s | new range | while ingesting | after a start | rollup rows read (from the cache) | chunk index rows read | points decoded | page faults: new range, while ingesting, after a start |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (
            (label, raw, [t, moved, new, ingesting, first], work),
            [f_new, f_ingesting, f_first],
        ) in rows.iter().zip(&faults)
        {
            // At 1 kHz, a point per millisecond.
            let column_ms = *raw as f64 / WIDTH as f64;
            println!(
                "| {label} points | {raw} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} ({}) | {} | {} | {f_new}, {f_ingesting}, {f_first} |",
                if column_ms >= 1_000.0 {
                    format!("{:.1} s", column_ms / 1e3)
                } else {
                    format!("{column_ms:.0} ms")
                },
                t.as_secs_f64() * 1e3,
                moved.as_secs_f64() * 1e3,
                new.as_secs_f64() * 1e3,
                ingesting.as_secs_f64() * 1e3,
                first.as_secs_f64() * 1e3,
                work.rollup_rows,
                work.cached_rows,
                work.chunk_rows,
                work.points_decoded,
            );
        }
        let at = |label: &str| rows.iter().find(|r| r.0 == label).map(|r| r.2);
        let ratios = |a: [Duration; 5], b: [Duration; 5]| {
            let r = |i: usize| a[i].as_secs_f64() / b[i].as_secs_f64();
            format!(
                "**{:.2}×** ({:.2}× moved 1 s, {:.2}× for a new range, {:.2}× while ingesting, \
                 {:.2}× after a start)",
                r(0),
                r(1),
                r(2),
                r(3),
                r(4)
            )
        };
        if let (Some(ten), Some(hundred)) = (at("10 M"), at("100 M")) {
            println!(
                "\n100 M points against 10 M: {} the time for 10× the points.",
                ratios(hundred, ten)
            );
        }
        if let (Some(hundred), Some(billion)) = (at("100 M"), at("1 G")) {
            println!(
                "1 G points against 100 M: {} the time for 10× the points.",
                ratios(billion, hundred)
            );
        }
        if let (Some(fifty), Some(hundred)) = (at("50 M"), at("100 M")) {
            println!(
                "100 M points against 50 M: {} the time for 2× the points.",
                ratios(hundred, fifty)
            );
        }
    }
}

/// Bytes per point on disk for the shapes the issue names: a slowly varying sensor and noise.
mod bytes_per_point {
    use super::*;

    const POINTS: usize = 1_000_000;

    pub async fn run() {
        // A deterministic xorshift, so every run stores the same bytes.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let start = now_ns() - POINTS as i64 * 1_000_000_000;
        let mut temp = 2_000i64;
        let shapes: Vec<(&str, Vec<Point>)> = vec![
            (
                "sensor: every 1 s, a temperature in hundredths drifting a step or two",
                (0..POINTS)
                    .map(|i| {
                        temp += (random() * 5.0) as i64 - 2;
                        Point::new(start + i as i64 * 1_000_000_000, temp as f64 / 100.0).unwrap()
                    })
                    .collect(),
            ),
            (
                "noise with sensor precision: every 1 s, uniform in [0, 100) to 2 decimals",
                (0..POINTS)
                    .map(|i| {
                        let v = (random() * 10_000.0).floor() / 100.0;
                        Point::new(start + i as i64 * 1_000_000_000, v).unwrap()
                    })
                    .collect(),
            ),
            (
                "noise at full precision: every 1 s, uniform in [0, 1) (all 52 mantissa bits random)",
                (0..POINTS)
                    .map(|i| Point::new(start + i as i64 * 1_000_000_000, random()).unwrap())
                    .collect(),
            ),
        ];
        let mut rows = Vec::new();
        for (label, points) in shapes {
            let dir = temp_dir("bytes");
            let key = SeriesKey::new("bench.shape").expect("a valid name");
            let store = SqliteStore::open(options(&dir)).expect("store opens");
            fill(store, &key, &points, 10_000).await;
            let (data, count) = chunk_bytes(&dir);
            let used = used_bytes(&dir);
            let file = dir_bytes(&dir);
            rows.push((
                label,
                data as f64 / count.max(1) as f64,
                used as f64 / POINTS as f64,
                file as f64 / POINTS as f64,
            ));
            let _ = std::fs::remove_dir_all(&dir);
        }
        println!(
            "\n### Bytes per point on disk\n\n{POINTS} points per shape, each in a fresh store, \
             after compaction. Gorilla's published figure is 1.37 bytes/point; the issue aims at ≤ 4.\n"
        );
        println!(
            "| series | chunk data | database pages in use (chunks, indexes, rollups) | files on disk |"
        );
        println!("| --- | --- | --- | --- |");
        for (label, data, used, file) in rows {
            println!("| {label} | {data:.2} | {used:.2} | {file:.2} |");
        }
        println!(
            "\nBytes per point. Files on disk also hold the WAL and the pages the commit log \
             used before compaction emptied it, which later writes reuse: at a million \
             points that is a large share, at a hundred million (above) a small one."
        );
    }
}

/// Four writers backfilling the last 12 hours of the same series at once, as a client with
/// concurrent flushes (Vector's HTTP sink, the Influx client libraries' async writers) does
/// after an outage: 5 000-point batches (1 000 series × 5 points), taken in turn from one
/// counter, each pair sent in reverse order, so batches reach the store out of order and
/// compactions regularly overlap chunks already written. The
/// figure that matters is the writer thread's CPU time per point *including* the merges of
/// fragmented hours that come after the writes stop (the store stays open until they are
/// done), since a store may defer work but not skip it.
mod backfill {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const POINTS_PER_BATCH_SERIES: usize = 5;
    /// 80 M points: long enough (~20 s) that hours written early become quiet and are merged
    /// while later batches still come, so their wait behind merges shows in the latencies.
    const BATCHES: u64 = 16_000;
    const WRITERS: usize = 4;
    /// 10 points a second per series: 12 h hold 432 000 of them, more than a run writes.
    const STEP_NS: i64 = 100_000_000;
    /// Long enough for the writer to merge every hour the run left fragmented (it waits for
    /// an hour to be quiet for 10 s, and looks every 5 s when idle).
    const SETTLE: Duration = Duration::from_secs(20);

    /// CPU time of this process's threads named `name`, from `/proc` (Linux).
    fn thread_cpu(name: &str) -> Duration {
        let ticks: u64 = std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let t = t.ok()?.path();
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                (comm.trim() == name).then_some(())?;
                let stat = std::fs::read_to_string(t.join("stat")).ok()?;
                // Fields after the command's closing parenthesis; utime and stime are 14, 15.
                let rest = &stat[stat.rfind(')')? + 2..];
                let f: Vec<u64> = rest
                    .split(' ')
                    .skip(11)
                    .take(2)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                Some(f.iter().sum::<u64>())
            })
            .sum();
        Duration::from_millis(ticks * 10)
    }

    pub async fn run() {
        let dir = temp_dir("backfill");
        let store = Arc::new(SqliteStore::open(options(&dir)).expect("store opens"));
        let keys: Arc<Vec<SeriesKey>> = Arc::new(
            (0..SERIES)
                .map(|s| SeriesKey::with_labels("bench.backfill", [("s", s.to_string())]).unwrap())
                .collect(),
        );
        let start = now_ns() - 12 * 3_600 * 1_000_000_000;
        let next = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (store, keys, next) = (store.clone(), keys.clone(), next.clone());
                tokio::spawn(async move {
                    let mut waits = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= BATCHES {
                            break;
                        }
                        let n = n ^ 1;
                        let mut batch = Batch::new();
                        for (s, key) in keys.iter().enumerate() {
                            let points = (0..POINTS_PER_BATCH_SERIES).map(|i| {
                                let k = n as i64 * POINTS_PER_BATCH_SERIES as i64 + i as i64;
                                let v = ((k * 7 + s as i64) % 1_000) as f64 / 10.0;
                                Point::new(start + k * STEP_NS + s as i64, v).unwrap()
                            });
                            batch.extend(key.clone(), points);
                        }
                        let sent = Instant::now();
                        store.append(batch).await.expect("append");
                        waits.push(sent.elapsed());
                    }
                    waits
                })
            })
            .collect();
        let mut waits = Vec::new();
        for w in writers {
            waits.extend(w.await.expect("writer"));
        }
        let wrote = t.elapsed();
        waits.sort();
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        let during = thread_cpu("livechart-store");
        tokio::time::sleep(SETTLE).await;
        let total = thread_cpu("livechart-store");
        drop(store);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let points = BATCHES as f64 * (SERIES * POINTS_PER_BATCH_SERIES) as f64;
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "\n### Backfill by four writers at once\n\n\
             {WRITERS} writers append {BATCHES} batches of {} points ({SERIES} series × \
             {POINTS_PER_BATCH_SERIES}, 100 ms apart, starting 12 h ago) through the store \
             (`--durability relaxed`), taking batches in turn and sending each pair in reverse \
             order. Then the store stays open {} s, idle, for the merges it deferred.\n",
            SERIES * POINTS_PER_BATCH_SERIES,
            SETTLE.as_secs()
        );
        println!("| measure | value |");
        println!("| --- | --- |");
        println!(
            "| appended | {:.1} s ({:.2} M points/s) |",
            wrote.as_secs_f64(),
            points / wrote.as_secs_f64() / 1e6
        );
        println!(
            "| append latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
            at(0.5),
            at(0.99),
            at(1.0)
        );
        println!(
            "| writer thread CPU while appending | {:.1} s ({:.0} ns/point) |",
            during.as_secs_f64(),
            during.as_secs_f64() * 1e9 / points
        );
        println!(
            "| writer thread CPU in all, merges included | {:.1} s ({:.0} ns/point) |",
            total.as_secs_f64(),
            total.as_secs_f64() * 1e9 / points
        );
    }
}

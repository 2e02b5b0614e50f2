//! The durable store through the real server: acknowledged points survive a restart, groups
//! of concurrent requests commit together, retention drops what expired, and history queries
//! answer at any width, raw or as CSV.

mod common;

use common::{now_ms, DataDir, TestServer};
use livechart::server::config::Storage;
use serde_json::{json, Value};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

async fn query(server: &TestServer, params: &str) -> (u16, Value) {
    let res = server
        .http
        .get(server.url(&format!("/api/v1/query?{params}")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn points_of(v: &Value) -> Vec<(i64, f64)> {
    v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

#[tokio::test]
async fn acknowledged_points_survive_a_restart_and_warm_the_live_window() {
    let dir = DataDir::new();
    let t0 = now_ms() - 10_000;
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let body = json!({"series": "temp", "labels": {"room": "a"},
        "points": (0..100).map(|i| json!([t0 + i * 10, i as f64 * 0.5])).collect::<Vec<_>>()});
    let (status, _) = server.post_json("/api/v1/points", &body.to_string()).await;
    assert_eq!(status, 200);
    // An overwrite of one timestamp: the later write wins, on disk too.
    let (status, _) = server
        .post_json(
            "/chart_data",
            &json!({"series": "temp", "value": 99.0, "timestamp": t0}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();

    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let (status, v) = query(
        &server,
        &format!(
            "series=temp&label=room=a&from={}&to={}&raw=true",
            t0,
            t0 + 2_000
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let pts = points_of(&v);
    assert_eq!(pts.len(), 100);
    assert_eq!(pts[1], ((t0 + 10) * 1_000_000, 0.5));
    // The demo-shaped write went to the unlabelled `temp`, a different series.
    let (_, plain) = query(
        &server,
        &format!("series=temp&from={}&to={}&raw=true", t0, t0 + 1),
    )
    .await;
    assert_eq!(points_of(&plain), vec![(t0 * 1_000_000, 99.0)]);
    // The live window was warmed from disk: a new browser sees the points at once.
    let (_, listed) = {
        let res = server
            .http
            .get(server.url("/api/v1/series"))
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(listed["series"].as_array().unwrap().len(), 2, "{listed}");
    let mut ws = server.ws().await;
    let snapshot = ws.next().await;
    assert!(format!("{snapshot:?}").contains("room"), "{snapshot:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_commit_together_and_lose_nothing() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let t0 = now_ms() - 60_000;
    let mut handles = Vec::new();
    for c in 0..16i64 {
        let http = server.http.clone();
        let url = server.url("/write?precision=ms");
        handles.push(tokio::spawn(async move {
            for r in 0..10i64 {
                let body: String = (0..50i64)
                    .map(|i| format!("load,client={c} value={} {}\n", r * 50 + i, t0 + r * 50 + i))
                    .collect();
                let res = http.post(&url).body(body).send().await.unwrap();
                assert_eq!(res.status().as_u16(), 204);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    server.stop().await.unwrap();

    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    for c in 0..16 {
        let (status, v) = query(
            &server,
            &format!(
                "series=load&label=client={c}&from={}&to={}&raw=true",
                t0,
                t0 + 500
            ),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let values: Vec<f64> = points_of(&v).iter().map(|p| p.1).collect();
        let want: Vec<f64> = (0..500).map(f64::from).collect();
        assert_eq!(
            values, want,
            "client {c}: every acknowledged point, once, in order"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn retention_refuses_expired_points_and_drops_what_ages_out() {
    let dir = DataDir::new();
    // Long enough that the new point outlives the test, short enough to be checked often.
    let server = TestServer::start_with(dir.config(Duration::from_secs(20))).await;
    let now = now_ms();
    // Already past retention: refused whole, naming the limit, on every ingest path.
    let (status, body) = server
        .post_json(
            "/chart_data",
            &json!({"series": "r", "value": 1.0, "timestamp": now - 3_600_000}).to_string(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("retention of 20s"), "{body}");
    let res = server
        .http
        .post(server.url("/write?precision=ms"))
        .body(format!("r value=1 {now}\nr value=1 {}\n", now - 3_600_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let text = res.text().await.unwrap();
    assert!(text.contains("retention"), "{text}");
    // Inside retention: taken, then dropped once it ages out; the fresh point stays.
    let aging = now - 15_000;
    for (t, v) in [(aging, 1.0), (now, 2.0)] {
        let (status, _) = server
            .post_json(
                "/chart_data",
                &json!({"series": "r", "value": v, "timestamp": t}).to_string(),
            )
            .await;
        assert_eq!(status, 200);
    }
    let range = format!("series=r&from={}&to={}&raw=true", aging - 1, now + 1);
    assert_eq!(points_of(&query(&server, &range).await.1).len(), 2);
    let mut left = Vec::new();
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = points_of(&query(&server, &range).await.1);
        if left.len() == 1 {
            break;
        }
    }
    assert_eq!(
        left,
        vec![(now * 1_000_000, 2.0)],
        "the aging point expired, the new one stays"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn history_answers_m4_raw_csv_and_clear_errors() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let t0 = now_ms() - 100_000;
    // 10 000 points, one per 10 ms, a sawtooth with one spike.
    let points: Vec<Value> = (0..10_000i64)
        .map(|i| {
            json!([
                t0 + i,
                if i == 5_000 {
                    1_000.0
                } else {
                    (i % 100) as f64
                }
            ])
        })
        .collect();
    let body = json!({"series": "saw", "points": points});
    let (status, v) = server.post_json("/api/v1/points", &body.to_string()).await;
    assert_eq!(status, 200, "{v}");

    let range = format!("series=saw&from={}&to={}", t0, t0 + 9_999);
    let (status, v) = query(&server, &format!("{range}&width=50")).await;
    assert_eq!(status, 200, "{v}");
    let pts = points_of(&v);
    assert!(
        pts.len() <= 4 * 50 && pts.len() >= 50,
        "{} points",
        pts.len()
    );
    assert_eq!(v["raw_points"], 10_000);
    assert_eq!(v["width"], 50);
    assert!(
        pts.iter().any(|p| p.1 == 1_000.0),
        "the spike survives decimation"
    );
    assert!(pts.windows(2).all(|w| w[0].0 < w[1].0), "time order");

    let (_, v) = query(&server, &format!("{range}&raw=true&limit=10")).await;
    assert_eq!(points_of(&v).len(), 10);
    assert_eq!(v["truncated"], true);

    let res = server
        .http
        .get(server.url(&format!("/api/v1/query?{range}&raw=true&limit=3")))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(lines[0], "time,timestamp_ns,value");
    assert!(
        lines[1].ends_with(&format!(",{},0", t0 * 1_000_000)),
        "{csv}"
    );

    let (status, v) = query(&server, "series=nope").await;
    assert_eq!(status, 404, "{v}");
    // A label too many misses the series; the answer names the one held.
    let (status, v) = query(&server, "series=saw&label=host=a").await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(
        v["error"],
        "no series saw{host=a}; held under that name, with other labels (give each as \
         label=key=value): saw"
    );
    let (status, v) = query(&server, "series=saw&width=0").await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("width"), "{v}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_in_memory_store_answers_history_too() {
    let server = TestServer::start().await;
    let t = now_ms();
    server
        .post_json(
            "/chart_data",
            &json!({"series": "m", "value": 1.5, "timestamp": t}).to_string(),
        )
        .await;
    let (status, v) = query(
        &server,
        &format!("series=m&from={}&to={}&raw=true", t - 1, t + 1),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(points_of(&v), vec![(t * 1_000_000, 1.5)]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn compaction_keeps_answers_identical_and_retention_reaches_chunks() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let now = now_ms();
    let old = now - 3_600_000;
    // Two writes overlapping in time: the second wins where they meet.
    for (from, value) in [(0i64, 1.0), (50, 2.0)] {
        let points: Vec<Value> = (from..from + 100)
            .map(|i| json!([old + i, value]))
            .collect();
        let (status, _) = server
            .post_json(
                "/api/v1/points",
                &json!({"series": "c", "points": points}).to_string(),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = server
        .post_json(
            "/chart_data",
            &json!({"series": "c", "value": 3.0, "timestamp": now}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let range = format!("series=c&from={}&to={}&raw=true", old - 1, now + 1);
    let from_log = points_of(&query(&server, &range).await.1);
    assert_eq!(from_log.len(), 151);
    assert_eq!(from_log[49].1, 1.0);
    assert_eq!(from_log[50].1, 2.0, "the later write wins");
    // The log is compacted into chunks within 5 s; answers must not change.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(points_of(&query(&server, &range).await.1), from_log);
    // Every point took an offset (201 writes), and the series row keeps where they got to
    // once they left the log, so a restart cannot hand one out again.
    let db = rusqlite::Connection::open(dir.0.join("livechart.db")).unwrap();
    let next: i64 = db
        .query_row("SELECT next_offset FROM series WHERE name = 'c'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(next, 201);
    server.stop().await.unwrap();

    // Restarted with a shorter retention: the hour-old chunk goes, the fresh point stays.
    let server = TestServer::start_with(dir.config(Duration::from_secs(600))).await;
    let mut left = Vec::new();
    for _ in 0..150 {
        left = points_of(&query(&server, &range).await.1);
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, vec![(now * 1_000_000, 3.0)]);
    // ...and not only hidden: the expired chunk is gone from the file.
    let db = rusqlite::Connection::open(dir.0.join("livechart.db")).unwrap();
    let mut expired = -1i64;
    for _ in 0..100 {
        expired = db
            .query_row(
                "SELECT count(*) FROM chunks WHERE end_ns < ?1",
                [(now - 600_000) * 1_000_000],
                |r| r.get(0),
            )
            .unwrap();
        if expired == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(expired, 0, "retention deleted the hour-old chunk");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_series_cap_holds_on_disk_and_existing_series_keep_working() {
    let dir = DataDir::new();
    let mut config = dir.config(30 * DAY);
    config.limits.max_series = 2;
    let server = TestServer::start_with(config.clone()).await;
    let post = |body: &'static str| {
        let http = server.http.clone();
        let url = server.url("/write");
        async move {
            let res = http.post(url).body(body).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    assert_eq!(post("a value=1\nb value=1").await.0, 204);
    let (status, body) = post("a value=2\nc value=1").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("too many series"), "{body}");
    assert_eq!(
        post("a value=3\nb value=3").await.0,
        204,
        "existing series still work"
    );
    server.stop().await.unwrap();
    // The cap counts what is on disk after a restart, too.
    let server = TestServer::start_with(config).await;
    let res = server
        .http
        .post(server.url("/write"))
        .body("d value=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let (_, v) = query(&server, "series=a&from=now-1h&raw=true").await;
    let values: Vec<f64> = points_of(&v).iter().map(|p| p.1).collect();
    assert_eq!(
        values,
        vec![1.0, 3.0],
        "nothing of the refused request was stored"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_history_server_function_answers_like_the_endpoint() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let t0 = now_ms() - 10_000;
    let points: Vec<Value> = (0..1_000i64)
        .map(|i| json!([t0 + i, (i % 7) as f64]))
        .collect();
    server
        .post_json(
            "/api/v1/points",
            &json!({"series": "h", "labels": {"k": "v"}, "points": points}).to_string(),
        )
        .await;
    let (from, to) = (t0 * 1_000_000, (t0 + 999) * 1_000_000);
    let call = json!({"query": {"series": "h", "labels": {"k": "v"}, "from_ns": from, "to_ns": to, "width": 20, "raw_limit": null}});
    let (status, via_fn) = server.post_json("/api/history", &call.to_string()).await;
    assert_eq!(status, 200, "{via_fn}");
    let (_, via_get) = query(
        &server,
        &format!("series=h&label=k=v&from={t0}&to={}&width=20", t0 + 999),
    )
    .await;
    assert_eq!(via_fn["points"], via_get["points"]);
    assert_eq!(via_fn["raw_points"], 1_000);

    let bad =
        json!({"query": {"series": "h", "from_ns": 5, "to_ns": 1, "width": 20, "raw_limit": null}});
    let (status, v) = server.post_json("/api/history", &bad.to_string()).await;
    assert_eq!(status, 400, "{v}");
    let unknown = json!({"query": {"series": "nope", "from_ns": 1, "to_ns": 5, "width": 20, "raw_limit": null}});
    assert_eq!(
        server
            .post_json("/api/history", &unknown.to_string())
            .await
            .0,
        404
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_disk_cap_drops_the_oldest_hours_first() {
    const CAP: u64 = 900 * 1024;
    let dir = DataDir::new();
    let mut config = dir.config(30 * DAY);
    if let Storage::Sqlite { max_disk_bytes, .. } = &mut config.storage {
        *max_disk_bytes = Some(CAP);
    }
    config.limits.max_points_per_request = 1_000_000;
    config.limits.max_body_bytes = 64 * 1024 * 1024;
    let server = TestServer::start_with(config).await;
    let now = now_ms();
    let start = now - 6 * 3_600_000;
    // Six hours of 20 series at one point a second, values jumping at random between
    // hundredths (~2 bytes a point; a smooth series would take a fraction of a byte): about
    // 1.15 MB of pages against a 900 KB cap. Written as a backfill, each series' six hours
    // at once, so a 16 KiB page holds about two hours of one series and is freed only when
    // both are dropped; the tables and indexes take about 160 KB whatever they hold.
    for s in 0..20 {
        let body: String = (0..6 * 3_600i64)
            .map(|i| {
                format!(
                    "cap,s={s} value={} {}\n",
                    (i * 7_919 % 10_007) as f64 / 100.0,
                    start + i * 1_000
                )
            })
            .collect();
        server.write_lines(body).await;
    }
    let count = |from: i64, to: i64| {
        let server = &server;
        async move {
            let (_, v) = query(
                server,
                &format!("series=cap&label=s=0&from={from}&to={to}&raw=true"),
            )
            .await;
            points_of(&v).len()
        }
    };
    let first_hour = (start, start + 3_599_000);
    let last_hour = (now - 3_600_000, now);
    let mut left = usize::MAX;
    for _ in 0..150 {
        left = count(first_hour.0, first_hour.1).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the oldest hour was dropped to fit the cap");
    assert!(
        count(last_hour.0, last_hour.1).await >= 3_500,
        "the newest hour stays"
    );
    let db = rusqlite::Connection::open(dir.0.join("livechart.db")).unwrap();
    let pragma = |n: &str| {
        db.query_row(&format!("PRAGMA {n}"), [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
    assert!(used as u64 <= CAP, "{used} bytes in use");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn small_chunks_of_a_finished_hour_are_merged_without_changing_answers() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    // Two hours ago, well inside one finished hour whatever the clock says.
    let hour_ms = 3_600_000;
    let base = (now_ms() / hour_ms - 2) * hour_ms + 60_000;
    let db_path = dir.0.join("livechart.db");
    let chunks = || {
        let db = rusqlite::Connection::open(&db_path).unwrap();
        db.query_row("SELECT count(*) FROM chunks", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    // Three writes, each compacted on its own: three small chunks in that hour. The last
    // overwrites half of the first.
    for (from, value) in [(0i64, 1.0), (100, 2.0), (5, 3.0)] {
        let points: Vec<Value> = (from..from + 10)
            .map(|i| json!([base + i, value]))
            .collect();
        let (status, _) = server
            .post_json(
                "/api/v1/points",
                &json!({"series": "frag", "points": points}).to_string(),
            )
            .await;
        assert_eq!(status, 200);
        let before = chunks();
        for _ in 0..80 {
            if chunks() != before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let range = format!("series=frag&from={}&to={}&raw=true", base - 1, base + 200);
    // The hour is merged once no compaction has written into it for a while (10 s), found
    // by the writer's next idle pass (every 5 s).
    let mut merged = i64::MAX;
    for _ in 0..300 {
        merged = chunks();
        if merged == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(merged, 1, "one chunk for the hour after merging");
    let got = points_of(&query(&server, &range).await.1);
    let mut want: Vec<(i64, f64)> = (0..5).map(|i| ((base + i) * 1_000_000, 1.0)).collect();
    want.extend((5..15).map(|i| ((base + i) * 1_000_000, 3.0)));
    want.extend((100..110).map(|i| ((base + i) * 1_000_000, 2.0)));
    assert_eq!(got, want);
    server.stop().await.unwrap();
}

/// Bytes the store's row cache holds, from `/metrics`.
async fn read_cache_bytes(server: &TestServer) -> f64 {
    let res = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    common::metric(
        &res.text().await.unwrap(),
        "livechart_store_read_cache_bytes",
    )
}

/// Lines of series `d` at 100 Hz from `start` (ms), 20 minutes of them, all at `value`, in
/// requests under the body limit.
async fn write_dense(server: &TestServer, start: i64, value: f64) {
    for part in 0..6 {
        let body: String = (part * 20_000..(part + 1) * 20_000)
            .map(|i| format!("d value={value} {}\n", start + i * 10))
            .collect();
        server.write_lines(body).await;
    }
}

/// The values of an M4 answer of series `d`, once the log is compacted into chunks (and
/// rollups), which happens within 5 s.
async fn dense_values(server: &TestServer, range: &str) -> Vec<f64> {
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, answer) = query(server, range).await;
    assert_eq!(status, 200, "{answer}");
    points_of(&answer).into_iter().map(|(_, v)| v).collect()
}

/// A range wholly past the retention, read after a wide read left the series' rows in the
/// row cache, is an empty answer (it was a panic in the cache's range lookup, and a 503).
#[tokio::test]
async fn a_range_wholly_past_retention_is_empty_not_an_error() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(Duration::from_secs(3_600))).await;
    let start = now_ms() - 30 * 60_000;
    write_dense(&server, start, 1.0).await;
    let wide = "series=d&from=now-2h&to=now&width=10";
    assert!(!dense_values(&server, wide).await.is_empty());
    for range in [
        "series=d&from=now-3h&to=now-2h&width=10",
        "series=d&from=now-3h&to=now-2h&raw=true",
    ] {
        let (status, answer) = query(&server, range).await;
        assert_eq!(status, 200, "{range}: {answer}");
        assert_eq!(answer["points"], serde_json::json!([]), "{range}");
        assert_eq!(answer["raw_points"], 0, "{range}");
    }
    server.stop().await.unwrap();
}

/// A series dense enough for rollups is read through the row cache (the gauge shows it), and
/// once the whole series is rewritten, no answer shows a value of the old rows it held.
#[tokio::test]
async fn a_dense_series_is_read_through_the_row_cache_and_a_rewrite_shows() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    // 20 minutes at 100 Hz: compaction gives it rollups of 60 s and more, and 10 columns
    // of 120 s read them.
    let start = now_ms() - 30 * 60_000;
    let range = format!("series=d&from={start}&to={}&width=10", start + 1_200_000);
    write_dense(&server, start, 1.0).await;
    let first = dense_values(&server, &range).await;
    assert!(
        !first.is_empty() && first.iter().all(|&v| v == 1.0),
        "{first:?}"
    );
    assert!(read_cache_bytes(&server).await > 0.0, "no rows kept");
    write_dense(&server, start, 2.0).await;
    let second = dense_values(&server, &range).await;
    assert!(
        !second.is_empty() && second.iter().all(|&v| v == 2.0),
        "old rows answered: {second:?}"
    );
    server.stop().await.unwrap();
}

//! Redis mode with a real `redis-server` on a free loopback port: two livechart instances
//! share history and live points, a viewer moves between them without a gap, and Redis
//! crashing or hanging during ingest and fan-out loses no acknowledged point and needs no
//! page reload.

mod common;

use common::{now_ms, Client, Event, RedisCluster, RedisServer, TestServer, PATIENCE};
use livechart::model::SeriesKey;
use livechart::protocol::ServerMsg;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

async fn two_instances(redis: &RedisServer) -> (TestServer, TestServer) {
    let a = TestServer::start_with(redis.config()).await;
    let b = TestServer::start_with(redis.config()).await;
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    (a, b)
}

/// Posts one point (`ts` in ms); the status.
async fn post_point(server: &TestServer, series: &str, ts: i64, value: f64) -> u16 {
    let body = json!({"series": series, "points": [[ts, value]]}).to_string();
    server.post_json("/api/v1/points", &body).await.0
}

/// Reads until the client holds offset `last` of `series`, returning the status messages
/// seen on the way.
async fn read_through(
    client: &mut Client,
    series: &str,
    last: i64,
    patience: Duration,
) -> Vec<ServerMsg> {
    let key = SeriesKey::new(series).unwrap();
    let mut seen = Vec::new();
    let read = async {
        while client.feed.offsets.get(&key).copied().unwrap_or(-1) < last {
            if let Event::Msg(m) = client.next().await {
                seen.push(m);
            }
        }
    };
    tokio::time::timeout(patience, read)
        .await
        .unwrap_or_else(|_| panic!("offset {last} of {series} never arrived"));
    seen
}

fn values(client: &Client, series: &str) -> Vec<i64> {
    client.feed.series[&SeriesKey::new(series).unwrap()]
        .iter()
        .map(|p| p.value as i64)
        .collect()
}

#[tokio::test]
async fn a_point_posted_to_one_instance_is_live_and_in_history_on_the_other() {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(&redis).await;
    let mut viewer = b.ws().await;
    assert!(matches!(
        viewer.next().await,
        Event::Msg(ServerMsg::Snapshot { .. })
    ));

    let t = now_ms();
    assert_eq!(post_point(&a, "shared", t, 42.5).await, 200);
    let got = viewer.next_points().await;
    assert_eq!(got[0].series.to_string(), "shared");
    assert_eq!(got[0].points[0].value, 42.5);

    assert_eq!(b.raw_history("shared", t - 1, t + 1).await, vec![(t, 42.5)]);
    let (_, list) = b.get_json("/api/v1/series").await;
    let s = &list["series"][0];
    assert_eq!(
        (s["series"].as_str(), s["points"].as_u64()),
        (Some("shared"), Some(1)),
        "{list}"
    );
    assert_eq!(s["last_value"].as_f64(), Some(42.5), "{list}");

    // A new page on A sees the point in its snapshot: A's live window came from Redis too.
    let mut page = a.ws().await;
    assert!(format!("{:?}", page.next().await).contains("shared"));

    let (_, health) = a.get_json("/healthz").await;
    assert_eq!(health["redis"]["connected"], true, "{health}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn a_viewer_moving_from_one_instance_to_another_resumes_without_a_gap() {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(&redis).await;
    let t0 = now_ms() - 5_000;
    let mut viewer = a.ws().await;
    viewer.next().await;
    for v in 0..5 {
        assert_eq!(post_point(&a, "move", t0 + v * 10, v as f64).await, 200);
    }
    read_through(&mut viewer, "move", 4, PATIENCE).await;
    // Gone from A; meanwhile points arrive through both instances.
    let Client { feed, ws } = viewer;
    drop(ws);
    for v in 5..10 {
        let server = if v % 2 == 0 { &a } else { &b };
        assert_eq!(post_point(server, "move", t0 + v * 10, v as f64).await, 200);
    }
    let mut moved = b.resume(feed).await;
    assert!(
        matches!(moved.next().await, Event::Msg(ServerMsg::Resumed { .. })),
        "B continues A's offsets"
    );
    read_through(&mut moved, "move", 9, PATIENCE).await;
    assert_eq!(values(&moved, "move"), (0..10).collect::<Vec<_>>());
    assert_eq!(moved.feed.reloads, 0);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Writers post numbered points to both instances while Redis is killed and restarted, then
/// hung with SIGSTOP and continued. Every 2xx point must be in both instances' history, no
/// 2xx may come while Redis is away, and a viewer connected to B throughout must get every
/// acknowledged point with gapless offsets, told of the outage, without reloading.
#[tokio::test]
async fn redis_crashing_or_hanging_loses_no_acknowledged_point_and_viewers_resume() {
    let mut redis = RedisServer::start().await;
    let (a, b) = two_instances(&redis).await;
    let a = std::sync::Arc::new(a);
    let b = std::sync::Arc::new(b);
    let mut viewer = b.ws().await;
    viewer.next().await;

    let t0 = now_ms() - 20_000;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0usize);
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let server = if i % 2 == 0 { &a } else { &b };
                match post_point(server, "crash", t0 + i, i as f64).await {
                    200 => acked.push(i),
                    503 => refused += 1,
                    other => panic!("point {i}: status {other}, expected 200 or 503"),
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            (acked, refused, i)
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    b.wait_ready(503).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart().await;
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.pause();
    b.wait_ready(503).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    redis.resume();
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, refused, sent) = writer.await.unwrap();

    let acked_set: BTreeSet<i64> = acked.iter().copied().collect();
    for server in [&a, &b] {
        let present: BTreeSet<i64> = server
            .raw_history("crash", t0, t0 + sent)
            .await
            .into_iter()
            .map(|(ts, _)| ts - t0)
            .collect();
        let lost: Vec<i64> = acked_set.difference(&present).copied().collect();
        println!(
            "sent {sent}, acknowledged {}, refused (503) {refused}, present {}, lost {}",
            acked.len(),
            present.len(),
            lost.len()
        );
        assert!(lost.is_empty(), "acknowledged points lost: {lost:?}");
    }
    assert!(refused > 0, "the outages were not noticed by any writer");
    assert!(
        acked.len() > 100,
        "too few points were acknowledged to mean anything"
    );

    // The viewer holds every acknowledged point, through gapless deltas, after being told.
    let key = SeriesKey::new("crash").unwrap();
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let held: BTreeSet<i64> = viewer
            .feed
            .series
            .get(&key)
            .map(|ring| ring.iter().map(|p| p.value as i64).collect())
            .unwrap_or_default();
        if acked_set.is_subset(&held) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer misses {} acknowledged points",
            acked_set.difference(&held).count()
        );
        if let Event::Msg(m) = viewer.next().await {
            statuses.push(m);
        }
    }
    assert_eq!(
        viewer.feed.reloads, 0,
        "the viewer had to reload: {statuses:?}"
    );
    let told: Vec<bool> = statuses
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Status { degraded } => Some(degraded.is_some()),
            _ => None,
        })
        .collect();
    assert!(
        told.windows(2).any(|w| w == [true, false]),
        "the viewer was not told of the outage and the recovery: {statuses:?}"
    );
}

#[tokio::test]
async fn ingest_answers_503_while_redis_is_away_and_the_page_is_told() {
    let redis = RedisServer::start().await;
    let a = TestServer::start_with(redis.config()).await;
    a.wait_ready(200).await;
    let mut viewer = a.ws().await;
    viewer.next().await;
    redis.pause();
    let started = std::time::Instant::now();
    let body = json!({"series": "x", "points": [[now_ms(), 1.0]]}).to_string();
    let (status, v) = a.post_json("/api/v1/points", &body).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v.to_string().contains("redis"),
        "the error names the cause: {v}"
    );
    assert!(
        started.elapsed() < PATIENCE,
        "a hung Redis must not hold requests for long"
    );
    match viewer.next().await {
        Event::Msg(ServerMsg::Status {
            degraded: Some(why),
        }) => assert!(why.contains("redis"), "{why}"),
        other => panic!("expected a degraded status, got {other:?}"),
    }
    let (_, health) = a.get_json("/healthz").await;
    assert_eq!(health["status"], "degraded", "{health}");
    redis.resume();
    match viewer.next().await {
        Event::Msg(ServerMsg::Status { degraded: None }) => {}
        other => panic!("expected the recovery, got {other:?}"),
    }
    assert_eq!(post_point(&a, "x", now_ms(), 2.0).await, 200);
    a.stop().await.unwrap();
}

/// Reads until a reload and its snapshot came.
async fn read_reload(viewer: &mut Client) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no reload came");
        if let Event::Msg(ServerMsg::Reload { .. }) = viewer.next().await {
            break;
        }
    }
    assert!(matches!(
        viewer.next().await,
        Event::Msg(ServerMsg::Snapshot { .. })
    ));
}

fn redis_cli(redis: &RedisServer, args: &[&str]) {
    redis_cli_out(redis, args);
}

/// What `redis-cli` printed, trimmed.
fn redis_cli_out(redis: &RedisServer, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Redis emptied (FLUSHALL, or one without persistence restarted): its data is another
/// stream, which the page must reload into rather than continue.
async fn emptied_redis_makes_pages_reload(restart: bool) {
    let mut redis = RedisServer::start().await;
    let a = TestServer::start_with(redis.config()).await;
    a.wait_ready(200).await;
    let mut viewer = a.ws().await;
    viewer.next().await;
    assert_eq!(post_point(&a, "gone", now_ms(), 1.0).await, 200);
    read_through(&mut viewer, "gone", 0, PATIENCE).await;
    redis_cli(&redis, &["flushall"]);
    if restart {
        redis.restart().await;
        a.wait_ready(200).await;
    }
    // The new data starts the series over at offset 0, and the page follows it.
    assert_eq!(post_point(&a, "gone", now_ms(), 2.0).await, 200);
    read_reload(&mut viewer).await;
    read_through(&mut viewer, "gone", 0, PATIENCE).await;
    assert_eq!(values(&viewer, "gone"), vec![2]);
    a.stop().await.unwrap();
}

#[tokio::test]
async fn redis_coming_back_empty_restarts_the_stream_and_pages_reload() {
    emptied_redis_makes_pages_reload(true).await;
}

#[tokio::test]
async fn redis_emptied_under_a_live_connection_restarts_the_stream_too() {
    emptied_redis_makes_pages_reload(false).await;
}

/// Redis restarts from an older snapshot (as after a crash under `appendfsync everysec`, or
/// a failover): the commits after it are gone and their offsets will be given to other
/// points. The page must reload, not keep the lost points under offsets that now mean
/// others.
#[tokio::test]
async fn redis_losing_commits_makes_pages_reload_instead_of_mixing_data() {
    let mut redis = RedisServer::start_with(&["--appendonly", "no"]).await;
    let a = TestServer::start_with(redis.config()).await;
    a.wait_ready(200).await;
    let mut viewer = a.ws().await;
    viewer.next().await;
    // 20 ms apart: wider than a snapshot column, so the reload's snapshot keeps every point.
    let t0 = now_ms() - 5_000;
    let at = |v: i64| t0 + v * 20;
    for v in 0..3 {
        assert_eq!(post_point(&a, "lossy", at(v), v as f64).await, 200);
    }
    redis_cli(&redis, &["save"]);
    for v in 3..6 {
        assert_eq!(post_point(&a, "lossy", at(v), v as f64).await, 200);
    }
    read_through(&mut viewer, "lossy", 5, PATIENCE).await;
    redis.restart().await;
    a.wait_ready(200).await;
    assert_eq!(post_point(&a, "lossy", at(10), 10.0).await, 200);
    read_reload(&mut viewer).await;
    read_through(&mut viewer, "lossy", 3, PATIENCE).await;
    assert_eq!(values(&viewer, "lossy"), vec![0, 1, 2, 10]);
    let kept: Vec<f64> = a
        .raw_history("lossy", t0, at(20))
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(kept, vec![0.0, 1.0, 2.0, 10.0]);
    a.stop().await.unwrap();
}

#[tokio::test]
async fn retention_refuses_expired_points_and_drops_what_ages_out() {
    let redis = RedisServer::start().await;
    let mut config = redis.config();
    config.storage = livechart::server::config::Storage::Redis {
        url: redis.url(),
        cluster: false,
        retention: Duration::from_secs(2),
    };
    let a = TestServer::start_with(config).await;
    a.wait_ready(200).await;
    let t = now_ms();
    assert_eq!(post_point(&a, "short", t, 1.0).await, 200);
    let (status, v) = a
        .post_json(
            "/api/v1/points",
            &json!({"series": "short", "points": [[t - 5_000, 1.0]]}).to_string(),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert!(v.to_string().contains("retention"), "{v}");
    assert_eq!(a.raw_history("short", t - 1, t + 1).await.len(), 1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !a.raw_history("short", t - 1, t + 1).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired point was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The commit log, which carries each commit's points to the other instances, lets them
    // go too, once a newer commit can stand as its last entry.
    assert_eq!(post_point(&a, "later", now_ms(), 2.0).await, 200);
    while redis_cli_out(&redis, &["XLEN", "{livechart}:log"]) != "1" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the commit log kept the expired point: {}",
            redis_cli_out(&redis, &["XRANGE", "{livechart}:log", "-", "+"])
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await.unwrap();
}

#[tokio::test]
async fn two_instances_share_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let a = TestServer::start_with(cluster.config()).await;
    let b = TestServer::start_with(cluster.config()).await;
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    let mut viewer = b.ws().await;
    viewer.next().await;
    let t = now_ms();
    for (i, s) in ["x", "y{z}", "{livechart}"].iter().enumerate() {
        assert_eq!(post_point(&a, s, t + i as i64, i as f64).await, 200, "{s}");
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.extend(
            viewer
                .next_points()
                .await
                .into_iter()
                .map(|sp| sp.series.name().to_string()),
        );
    }
    assert_eq!(seen, ["x", "y{z}", "{livechart}"]);
    assert_eq!(b.raw_history("x", t - 1, t + 1).await, vec![(t, 0.0)]);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

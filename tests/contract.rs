//! The store contract (`livechart::server::store::Store`), checked through the real server
//! against every backend: in memory, the embedded SQLite store and Redis (a `redis-server` of
//! the test's own). One body of checks, so a backend cannot drift from the others.

mod common;

use common::{now_ms, DataDir, RedisCluster, RedisServer, TestServer};
use livechart::server::config::{Config, Durability, Storage};
use serde_json::{json, Value};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);
/// Series the contract's servers keep at most.
const MAX_SERIES: usize = 3;

async fn post(server: &TestServer, body: Value) -> (u16, Value) {
    server.post_json("/api/v1/points", &body.to_string()).await
}

/// Every check, on a server whose store keeps [`MAX_SERIES`] series and one day.
async fn contract(server: TestServer, keeps_retention: bool) {
    let t = now_ms() - 10_000;

    // Points of a request in any order come back in time order; one timestamp holds one
    // value, the later write winning (also within one request).
    let (status, v) = post(
        &server,
        json!({"series": "a", "points": [[t + 2, 2.0], [t, 0.0], [t + 1, 1.0], [t + 1, 1.5]]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["points"], 3, "{v}");
    let (status, _) = post(&server, json!({"series": "a", "points": [[t + 2, 20.0]]})).await;
    assert_eq!(status, 200);
    assert_eq!(
        server.raw_history("a", t, t + 10).await,
        vec![(t, 0.0), (t + 1, 1.5), (t + 2, 20.0)]
    );

    // M4 at a width: first, lowest, highest and last of each column.
    let body = json!({"series": "b", "points": (0..100).map(|i| json!([t + i, (i % 7) as f64])).collect::<Vec<_>>()});
    assert_eq!(post(&server, body).await.0, 200);
    let (status, v) = server
        .get_json(&format!(
            "/api/v1/query?series=b&from={t}&to={}&width=1",
            t + 99
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    let values = common::point_values(&v);
    assert_eq!(values.first(), Some(&0.0), "{v}");
    assert_eq!(values.last(), Some(&((99 % 7) as f64)), "{v}");
    assert!(values.contains(&6.0), "the column's highest is kept: {v}");

    // The series list: counts, first and last, latest value.
    let (_, list) = server.get_json("/api/v1/series").await;
    let a = list["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["series"] == "a")
        .cloned()
        .unwrap_or_else(|| panic!("no a in {list}"));
    assert_eq!(a["last_value"], 20.0, "{list}");
    // Redis counts points written (a rewritten timestamp again), the others distinct ones.
    assert!((3..=4).contains(&a["points"].as_u64().unwrap()), "{list}");
    let b = list["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["series"] == "b");
    assert_eq!(b.map(|b| b["points"].clone()), Some(json!(100)), "{list}");
    assert_eq!(
        b.map(|b| b["last_value"].clone()),
        Some(json!(1.0)),
        "{list}"
    );
    assert_eq!(a["first_ns"].as_i64(), Some(t * 1_000_000), "{list}");
    assert_eq!(a["last_ns"].as_i64(), Some((t + 2) * 1_000_000), "{list}");

    // A request that would pass the series cap is refused whole: its point for an existing
    // series is not stored either, and existing series keep working.
    let (status, v) = post(
        &server,
        json!([{"series": "a", "points": [[t + 5, 5.0]]},
               {"series": "c", "points": [[t, 1.0]]},
               {"series": "d", "points": [[t, 1.0]]}]),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v.to_string().contains("series"),
        "the error names the limit: {v}"
    );
    assert_eq!(server.raw_history("a", t + 3, t + 5).await, vec![]);
    assert_eq!(
        server
            .get_json("/api/v1/query?series=c&from=0&to=1")
            .await
            .0,
        404
    );
    assert_eq!(
        post(&server, json!({"series": "c", "points": [[t, 1.0]]}))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&server, json!({"series": "a", "points": [[t + 5, 5.0]]}))
            .await
            .0,
        200
    );

    // Past retention: refused whole, nothing stored.
    if keeps_retention {
        let old = now_ms() - 2 * DAY.as_millis() as i64;
        let (status, v) = post(
            &server,
            json!({"series": "a", "points": [[t + 6, 6.0], [old, 1.0]]}),
        )
        .await;
        assert_eq!(status, 422, "{v}");
        assert!(v.to_string().contains("retention"), "{v}");
        assert_eq!(server.raw_history("a", t + 6, t + 7).await, vec![]);
    }

    // Live viewers get what was stored, offsets continuing.
    let mut viewer = server.ws().await;
    viewer.next().await;
    assert_eq!(
        post(&server, json!({"series": "a", "points": [[t + 7, 7.0]]}))
            .await
            .0,
        200
    );
    let got = viewer.next_points().await;
    assert_eq!(
        (got[0].series.to_string(), got[0].points[0].value),
        ("a".into(), 7.0)
    );
    server.stop().await.unwrap();
}

fn limited(mut config: Config) -> Config {
    config.limits.max_series = MAX_SERIES;
    config
}

#[tokio::test]
async fn the_in_memory_store_keeps_the_contract() {
    contract(TestServer::start_with(limited(Config::new())).await, false).await;
}

#[tokio::test]
async fn the_embedded_store_keeps_the_contract() {
    let dir = DataDir::new();
    let mut config = Config::new();
    config.storage = Storage::Sqlite {
        dir: dir.0.clone(),
        durability: Durability::Relaxed,
        retention: DAY,
        max_disk_bytes: None,
    };
    contract(TestServer::start_with(limited(config)).await, true).await;
}

#[tokio::test]
async fn the_redis_store_keeps_the_contract() {
    let redis = RedisServer::start().await;
    let mut config = redis.config();
    config.storage = Storage::Redis {
        url: redis.url(),
        cluster: false,
        retention: DAY,
    };
    let server = TestServer::start_with(limited(config)).await;
    server.wait_ready(200).await;
    contract(server, true).await;
}

#[tokio::test]
async fn the_redis_store_keeps_the_contract_on_a_cluster() {
    let cluster = RedisCluster::start().await;
    let mut config = cluster.config();
    if let Storage::Redis { retention, .. } = &mut config.storage {
        *retention = DAY;
    }
    let server = TestServer::start_with(limited(config)).await;
    server.wait_ready(200).await;
    contract(server, true).await;
}

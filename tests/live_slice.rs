//! The foundation slice end to end over real sockets: push over HTTP, receive over WebSocket.

#![cfg(feature = "ssr")]

mod common;

use common::{snapshot_series, TestServer};
use livechart::protocol::CLOSE_GOING_AWAY;
use livechart::server::config::Config;
use serde_json::json;

#[tokio::test]
async fn a_demo_point_reaches_a_live_browser() {
    let server = TestServer::start().await;
    let mut ws = server.ws().await;
    assert!(snapshot_series(&ws.next().await).is_empty());

    let (status, body) = server
        .post_json(
            "/chart_data",
            r#"{"value": 21.5, "timestamp": 1764230400000}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "success", "message": "New data added!"})
    );

    let series = ws.next_points().await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].series.name(), "value");
    assert_eq!(series[0].points[0].ts_ns, 1_764_230_400_000_000_000);
    assert_eq!(series[0].points[0].value, 21.5);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_browser_gets_every_point() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut ws = server.ws().await;
        ws.next().await;
        clients.push(ws);
    }
    for v in 0..3 {
        let (status, _) = server
            .post_json(
                "/chart_data",
                &format!(r#"{{"value": {v}, "series": "fan"}}"#),
            )
            .await;
        assert_eq!(status, 200);
    }
    for ws in &mut clients {
        let mut got = Vec::new();
        while got.len() < 3 {
            for s in ws.next_points().await {
                got.extend(s.points.iter().map(|p| p.value));
            }
        }
        assert_eq!(
            got,
            vec![0.0, 1.0, 2.0],
            "each client sees each point once, in order"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_browser_gets_recent_history_first() {
    let server = TestServer::start().await;
    server
        .post_json("/chart_data", r#"{"value": 1, "series": "a"}"#)
        .await;
    server
        .post_json("/chart_data", r#"{"value": 2, "series": "a"}"#)
        .await;
    server
        .post_json(
            "/chart_data",
            r#"{"value": 3, "series": "old", "timestamp": 1000}"#,
        )
        .await;
    let mut ws = server.ws().await;
    let snap = ws.next().await;
    assert_eq!(
        snapshot_series(&snap),
        vec![("a".to_string(), 2), ("old".to_string(), 1)],
        "recent points, and the latest point of a quiet series"
    );
    server.stop().await.unwrap();
}

/// The bad inputs the issue lists: each answers 400 in the demo's error shape, naming the
/// problem, and stores nothing.
#[tokio::test]
async fn bad_demo_bodies_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    let cases: &[(Option<&str>, &str, &str)] = &[
        (
            Some("application/json"),
            r#"{"timestamp": 1764230400000}"#,
            "missing field \"value\"",
        ),
        (
            Some("application/json"),
            r#"{"value": "abc"}"#,
            "must be a number",
        ),
        (Some("application/json"), r#"{"value": "NaN"}"#, "finite"),
        (
            Some("application/json"),
            r#"{"value": "Infinity"}"#,
            "finite",
        ),
        (
            Some("application/json"),
            r#"{"value": 1, "timestamp": "not a time"}"#,
            "timestamp",
        ),
        (
            Some("application/json"),
            r#"{"value": 1,"#,
            "malformed JSON",
        ),
        (Some("text/plain"), r#"{"value": 1}"#, "Content-Type"),
        (None, r#"{"value": 1}"#, "Content-Type"),
    ];
    for (ct, body, want) in cases {
        let mut req = server
            .http
            .post(server.url("/chart_data"))
            .body(body.to_string());
        if let Some(ct) = ct {
            req = req.header("content-type", *ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400, "{body}");
        let json: serde_json::Value = res.json().await.unwrap();
        assert_eq!(json["status"], "error");
        let msg = json["message"].as_str().unwrap();
        assert!(
            msg.contains(want),
            "{body}: {msg:?} should mention {want:?}"
        );
    }
    let mut ws = server.ws().await;
    assert!(
        snapshot_series(&ws.next().await).is_empty(),
        "nothing was stored"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn body_limit_answers_413_in_the_error_shape() {
    let mut config = Config::new();
    config.limits.max_body_bytes = 64;
    let server = TestServer::start_with(config).await;
    let big = format!(r#"{{"value": 1, "pad": "{}"}}"#, "x".repeat(100));
    let (status, body) = server.post_json("/chart_data", &big).await;
    assert_eq!(status, 413);
    assert_eq!(body["status"], "error");
    assert!(body["message"].as_str().unwrap().contains("64-byte limit"));
    let (status, _) = server.post_json("/chart_data", r#"{"value": 1}"#).await;
    assert_eq!(status, 200, "a body under the limit still passes");
    let big_fn = format!(
        r#"{{"series": "s", "points": [{}{{"value": 1}}]}}"#,
        r#"{"value": 1},"#.repeat(10)
    );
    let (status, body) = server.post_json("/api/push_points", &big_fn).await;
    assert_eq!(status, 413, "{body}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn series_limit_refuses_new_series_but_keeps_old_ones() {
    let mut config = Config::new();
    config.limits.max_series = 2;
    let server = TestServer::start_with(config).await;
    for s in ["a", "b"] {
        let (status, _) = server
            .post_json(
                "/chart_data",
                &format!(r#"{{"value": 1, "series": "{s}"}}"#),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = server
        .post_json("/chart_data", r#"{"value": 1, "series": "c"}"#)
        .await;
    assert_eq!(status, 422, "a cardinality limit, named");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("too many series"));
    let (status, _) = server
        .post_json("/chart_data", r#"{"value": 2, "series": "a"}"#)
        .await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_function_pushes_through_the_same_path() {
    let server = TestServer::start().await;
    let mut ws = server.ws().await;
    ws.next().await;

    let (status, body) = server
        .post_json(
            "/api/push_points",
            r#"{"series": "fn", "points": [{"value": 1.5, "timestamp": 1764230400000}, {"value": 2.5, "timestamp": "2025-11-27T08:00:01Z"}]}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"points": 2, "series": 1}));
    let series = ws.next_points().await;
    let values: Vec<f64> = series[0].points.iter().map(|p| p.value).collect();
    assert_eq!(series[0].series.name(), "fn");
    assert_eq!(values, vec![1.5, 2.5]);

    for (bad, want) in [
        (
            r#"{"series": "fn", "points": [{"value": "x"}]}"#,
            "invalid arguments",
        ),
        (r#"{"series": "fn"}"#, "invalid arguments"),
        (
            r#"{"series": "", "points": [{"value": 1}]}"#,
            "series name is empty",
        ),
        (
            r#"{"series": "fn", "points": [{"value": 1, "timestamp": "later"}]}"#,
            "points[0].timestamp",
        ),
        (r#"{"series": "fn", "points": []}"#, "no points"),
        // The body limit's error text inside a small bad body is still a 400, not a 413.
        (
            r#"{"series": "fn", "points": [{"value": "length limit exceeded"}]}"#,
            "expected f64",
        ),
    ] {
        let (status, body) = server.post_json("/api/push_points", bad).await;
        assert_eq!(status, 400, "{bad} answered {body}");
        assert!(
            body.to_string().contains(want),
            "{bad}: {body} should mention {want:?}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_is_server_rendered_with_its_canvas() {
    let server = TestServer::start().await;
    let res = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap();
    for want in [
        "<canvas",
        "livechart</title>",
        // Plain names, or content-hashed ones when the site is built (`/pkg/livechart.<hash>.js`).
        "/pkg/livechart.",
        "viewport",
    ] {
        assert!(html.contains(want), "page lacks {want:?}");
    }
    for ext in [".js\"", ".wasm\"", ".css\""] {
        assert!(
            html.match_indices("/pkg/livechart").any(|(i, _)| html[i..]
                .split('"')
                .next()
                .is_some_and(|u| format!("{u}\"").ends_with(ext))),
            "the page links no /pkg/livechart…{ext}"
        );
    }
    let res = server
        .http
        .get(server.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let res = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_tells_browsers_to_come_back_and_returns() {
    let server = TestServer::start().await;
    let mut client = server.ws().await;
    client.next().await;
    let stopped = tokio::spawn(server.stop());
    let (code, _) = common::close_frame(&mut client.ws).await;
    assert_eq!(code, CLOSE_GOING_AWAY);
    stopped.await.unwrap().unwrap();
}

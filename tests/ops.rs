//! Operations over real HTTP: `/metrics` counts what happened, `/readyz`, request ids,
//! security headers with a CSP whose nonce is the page's, and the server's own figures as
//! `livechart.*` series.

mod common;

use common::{metric, TestServer};
use livechart::server::config::Config;
use std::time::Duration;

#[tokio::test]
async fn metrics_count_ingest_live_connections_and_commits() {
    let server = TestServer::start().await;
    let (status, _) = server
        .post_json(
            "/api/v1/points",
            r#"{"series":"m","points":[["2026-11-28T00:00:00Z",1],["2026-11-28T00:00:01Z",2]]}"#,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server.post_json("/api/v1/points", r#"{"series":""}"#).await;
    assert_eq!(status, 400);
    let mut viewer = server.ws().await;
    viewer.next().await;

    let res = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    assert_eq!(
        metric(
            &text,
            "livechart_ingest_requests_total{result=\"accepted\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "livechart_ingest_requests_total{result=\"refused\"}"),
        1.0
    );
    assert_eq!(metric(&text, "livechart_ingest_points_total"), 2.0);
    assert_eq!(metric(&text, "livechart_ws_connections_open"), 1.0);
    assert!(metric(&text, "livechart_ws_bytes_sent_total") > 0.0);
    assert_eq!(metric(&text, "livechart_store_commit_seconds_count"), 1.0);
    assert_eq!(metric(&text, "livechart_series"), 1.0);
    // Nothing was read through rollups yet.
    assert_eq!(metric(&text, "livechart_store_read_cache_bytes"), 0.0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn readiness_request_ids_and_security_headers() {
    let server = TestServer::start().await;
    let (status, v) = server.get_json("/readyz").await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ready")));

    let res = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"],
        "abc-123",
        "a caller's id is kept"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let res = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!id.is_empty());

    // The page: a CSP naming this response's nonce, which is the hydration script's.
    let res = server.http.get(server.url("/")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in {csp}"));
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry it"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(
        !csp.contains("'unsafe-inline'; img") || !csp.contains("script-src 'self' 'unsafe-inline'")
    );

    // An address that is no page: 404 with a page saying so, not a dashboard.
    let res = server.http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let html = res.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert!(!html.contains("chart-canvas"), "no dashboard on a 404");
    let res = server
        .http
        .get(server.url("/?c0.s=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("chart-canvas"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_server_charts_its_own_figures() {
    let mut config = Config::new();
    config.self_metrics = true;
    let server = TestServer::start_with(config).await;
    let mut viewer = server.ws().await;
    viewer.next().await;
    // The first record comes after one interval (10 s): wait for it on the live feed.
    let deadline = tokio::time::Instant::now() + livechart::server::ops::SELF_METRICS_EVERY * 3;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|s: &String| s == "livechart.ingest.points_per_s")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no own figures came: {seen:?}"
        );
        if let Ok(Ok(points)) = tokio::time::timeout(Duration::from_secs(1), async {
            Ok::<_, ()>(viewer.next_points().await)
        })
        .await
        {
            seen.extend(points.into_iter().map(|p| p.series.to_string()));
        }
    }
    assert!(
        seen.iter().any(|s| s == "livechart.ws.connections"),
        "{seen:?}"
    );
    server.stop().await.unwrap();
}

/// A client trickling a body (to a route without an ingest deadline) when shutdown comes
/// does not hold the server up past the drain limit.
#[tokio::test]
async fn shutdown_does_not_wait_forever_on_a_stalled_request() {
    use tokio::io::AsyncWriteExt;
    let mut config = Config::new();
    config.limits.drain_limit = Duration::from_millis(500);
    let server = TestServer::start_with(config).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(
        b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nq=CREATE",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // `stop` gives up (and fails the test) after PATIENCE; without the limit it waits forever.
    server.stop().await.unwrap();
    drop(slow);
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = Config::new();
    config.limits.header_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(config).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    // The head never ends: the server closes the connection soon after the deadline.
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("the server gave up on the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // A normal client on a kept-alive connection is not cut off between requests.
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let res = client.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    server.stop().await.unwrap();
}

/// SIGTERM on the real binary while ingest requests are in flight and a page is connected:
/// the page gets "going away" (1001), every request is answered 2xx or fails (never a 2xx
/// for points that are then missing), and the process exits 0. After a restart on the same
/// data, every acknowledged point is there.
#[tokio::test]
async fn sigterm_finishes_in_flight_ingest_and_sends_pages_away() {
    use futures::StreamExt;
    use std::io::BufRead;
    let data = common::DataDir::new();
    let start = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_livechart"))
            .args(["--addr", "127.0.0.1:0", "--no-self-metrics", "--data-dir"])
            .arg(&data.0)
            .env_remove("LIVECHART_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the livechart binary");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        (child, url)
    };
    let (child, url) = start();
    let (mut page, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", url.replace("http", "ws")))
            .await
            .unwrap();
    let t0 = common::now_ms() - 60_000;
    let http = reqwest::Client::new();
    let mut posts = Vec::new();
    for i in 0..200i64 {
        let (http, url) = (http.clone(), url.clone());
        posts.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i as u64)).await;
            let body = format!(r#"{{"series":"term","points":[[{},{i}]]}}"#, t0 + i);
            let res = http
                .post(format!("{url}/api/v1/points"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            (i, res.map(|r| r.status().as_u16()).ok())
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), page.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f))))) => {
                break u16::from(f.code)
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1001, "going away");
    let mut acked = Vec::new();
    for p in posts {
        let (i, status) = p.await.unwrap();
        match status {
            Some(200) => acked.push(i),
            // Refused while stopping, or the connection went: not acknowledged.
            Some(s) => assert!(s == 503 || s >= 500 || s == 408, "point {i}: {s}"),
            None => {}
        }
    }
    let exit = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        !acked.is_empty(),
        "some requests were taken before the signal"
    );

    let (mut child, url) = start();
    let res: serde_json::Value = http
        .get(format!(
            "{url}/api/v1/query?series=term&from={t0}&to={}&raw=true",
            t0 + 300
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let present: std::collections::BTreeSet<i64> = res["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap() as i64)
        .collect();
    let lost: Vec<i64> = acked
        .iter()
        .filter(|i| !present.contains(i))
        .copied()
        .collect();
    assert!(lost.is_empty(), "acknowledged, then missing: {lost:?}");
    let _ = child.kill();
    let _ = child.wait();
}

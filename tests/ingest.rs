//! Ingest formats over real HTTP: line protocol (2.x and 1.x), batch JSON and NDJSON, gzip,
//! limits, auth, and the series listing that shows what was stored.

#![cfg(feature = "ssr")]

mod common;

use common::TestServer;
use flate2::write::GzEncoder;
use livechart::server::auth::Tokens;
use livechart::server::config::Config;
use serde_json::{json, Value};
use std::io::Write;

async fn send(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = server.http.post(server.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

async fn lp(
    server: &TestServer,
    path: &str,
    body: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        server,
        path,
        Some("text/plain; charset=utf-8"),
        &[],
        body.as_bytes().to_vec(),
    )
    .await
}

async fn series(server: &TestServer, query: &str) -> Vec<Value> {
    let res = server
        .http
        .get(server.url(&format!("/api/v1/series{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    body["series"].as_array().unwrap().clone()
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| {
            let labels = s["labels"].as_object().map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            match labels {
                Some(l) => format!("{}{{{l}}}", s["series"].as_str().unwrap()),
                None => s["series"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn line_protocol_v2_stores_fields_as_labelled_series_and_goes_live() {
    let server = TestServer::start().await;
    let mut ws = server.ws().await;
    ws.next().await;
    let body = "# telegraf\n\
        cpu,host=a,cpu=cpu0 usage_idle=95.5,usage_user=3i,steal=0u,up=true,msg=\"hi\" 1764230400\n\
        temp,room=lab\\ 1 value=21.5 1764230401\n";
    let (status, _, headers) = lp(&server, "/api/v2/write?org=o&bucket=b&precision=s", body).await;
    assert_eq!(status, 204);
    assert_eq!(
        headers["x-livechart-skipped-fields"], "1",
        "the string field is counted"
    );

    let all = series(&server, "").await;
    assert_eq!(
        names(&all),
        vec![
            "cpu.steal{cpu=cpu0,host=a}",
            "cpu.up{cpu=cpu0,host=a}",
            "cpu.usage_idle{cpu=cpu0,host=a}",
            "cpu.usage_user{cpu=cpu0,host=a}",
            "temp{room=lab 1}",
        ]
    );
    let idle = &all[2];
    assert_eq!(idle["last_value"], 95.5);
    assert_eq!(idle["last_ns"], 1_764_230_400_000_000_000_i64);
    assert_eq!(idle["points"], 1);

    assert_eq!(ws.next_points().await.len(), 5);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn line_protocol_v1_gzip_and_precision() {
    let server = TestServer::start().await;
    let body = gzip(b"mem,host=a used=1i 1764230400000\nmem,host=a used=2i 1764230401000\n");
    let (status, _, _) = send(
        &server,
        "/write?db=telegraf&precision=ms&u=x&p=y",
        Some("text/plain"),
        &[("content-encoding", "gzip")],
        body,
    )
    .await;
    assert_eq!(status, 204);
    let all = series(&server, "").await;
    assert_eq!(names(&all), vec!["mem.used{host=a}"]);
    assert_eq!(all[0]["points"], 2);
    assert_eq!(all[0]["last_ns"], 1_764_230_401_000_000_000_i64);
    // A body without points is a 204 for 1.x (node-influx's `writePoints([])` sends one) and
    // a 400 for 2.x ("writing requires points"), as each InfluxDB answers.
    for (body, status) in [("", 204), ("# nothing\n", 204)] {
        let (got, _, _) = send(&server, "/write?db=x", Some("text/plain"), &[], body.into()).await;
        assert_eq!(got, status, "{body:?}");
        let (got, _, _) = send(
            &server,
            "/api/v2/write",
            Some("text/plain"),
            &[],
            body.into(),
        )
        .await;
        assert_eq!(got, 400, "{body:?}");
    }
    assert_eq!(series(&server, "").await.len(), 1);
    server.stop().await.unwrap();
}

/// The corpus of bad line protocol: InfluxDB-shaped errors naming the line; nothing stored.
#[tokio::test]
async fn bad_line_protocol_is_refused_whole_with_influx_errors() {
    let server = TestServer::start().await;
    let cases: &[(&str, Vec<u8>, u16, &str)] = &[
        (
            "/api/v2/write",
            b"m v=1\nm v=oops\n".to_vec(),
            400,
            "line 2: field \"v\": invalid value",
        ),
        (
            "/api/v2/write",
            b"m v=1\n,t=1 v=1\nm\n".to_vec(),
            400,
            "2 bad lines",
        ),
        (
            "/api/v2/write",
            b"m,t=1,t=2 v=1".to_vec(),
            400,
            "duplicate tag key",
        ),
        (
            "/api/v2/write",
            b"m v=1,v=2".to_vec(),
            400,
            "duplicate field key",
        ),
        (
            "/api/v2/write",
            b"m v=\"open".to_vec(),
            400,
            "unterminated string",
        ),
        (
            "/api/v2/write",
            b"m v=99999999999999999999i".to_vec(),
            400,
            "out of range",
        ),
        (
            "/api/v2/write",
            b"m v=1 12x".to_vec(),
            400,
            "invalid timestamp",
        ),
        (
            "/api/v2/write",
            b"m v=1\n\xff v=1".to_vec(),
            400,
            "line 2: line is not valid UTF-8",
        ),
        ("/api/v2/write", b"m\\ v=1".to_vec(), 400, "missing fields"),
        ("/api/v2/write", b"".to_vec(), 400, "no points"),
        (
            "/api/v2/write",
            b"# only a comment\n".to_vec(),
            400,
            "no points",
        ),
        (
            "/api/v2/write?precision=h2",
            b"m v=1".to_vec(),
            400,
            "invalid precision",
        ),
        (
            "/api/v2/write?precision=s",
            b"m v=1 99999999999".to_vec(),
            400,
            "out of range",
        ),
        (
            "/write",
            b"m,=x v=1".to_vec(),
            400,
            "empty tag key or value",
        ),
    ];
    for (path, body, want_status, want) in cases {
        let (status, json, _) = send(&server, path, Some("text/plain"), &[], body.clone()).await;
        assert_eq!(
            status,
            *want_status,
            "{path} {:?}: {json}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(json["code"], "invalid", "{json}");
        let msg = json["message"].as_str().unwrap();
        assert!(
            msg.contains(want),
            "{:?}: {msg:?} should mention {want:?}",
            String::from_utf8_lossy(body)
        );
    }
    // A good line followed by a bad one stores neither.
    assert!(series(&server, "").await.is_empty(), "nothing was stored");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn gzip_limits_refuse_bombs_and_unknown_encodings() {
    let mut config = Config::new();
    config.limits.max_body_bytes = 64 * 1024;
    let server = TestServer::start_with(config).await;
    let bomb = gzip(&vec![b'0'; 10 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "the bomb itself fits the limit");
    let (status, json, _) = send(
        &server,
        "/api/v2/write",
        Some("text/plain"),
        &[("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(json["code"], "request too large");
    assert!(json["message"]
        .as_str()
        .unwrap()
        .contains("inflates to more than"));

    let (status, json, _) = send(
        &server,
        "/api/v2/write",
        Some("text/plain"),
        &[("content-encoding", "br")],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, 415, "{json}");
    let (status, _, _) = send(
        &server,
        "/api/v2/write",
        Some("text/plain"),
        &[("content-encoding", "gzip")],
        b"nope".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let big = vec![b'#'; 65 * 1024];
    let (status, _, _) = send(&server, "/api/v2/write", Some("text/plain"), &[], big).await;
    assert_eq!(status, 413);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn json_points_as_object_array_and_ndjson() {
    let server = TestServer::start().await;
    let (status, json, _) = send(
        &server,
        "/api/v1/points",
        Some("application/json"),
        &[],
        br#"{"series": "cpu", "labels": {"host": "a"}, "points": [[1764230400000, 1.5], [null, 2]]}"#.to_vec(),
    )
    .await;
    assert_eq!((status, json), (200, json!({"points": 2, "series": 1})));

    let (status, json, _) = send(
        &server,
        "/api/v1/points?precision=s",
        Some("application/json"),
        &[],
        br#"[{"series": "a", "points": [[1764230400, 1]]}, {"series": "b", "points": [["2025-11-27T08:00:00Z", 2]]}]"#.to_vec(),
    )
    .await;
    assert_eq!((status, json), (200, json!({"points": 2, "series": 2})));

    let nd =
        b"{\"series\": \"n\", \"points\": [[1, 1]]}\n{\"series\": \"n\", \"points\": [[2, 2]]}\n"
            .to_vec();
    let (status, json, _) = send(
        &server,
        "/api/v1/points?precision=ns",
        Some("application/x-ndjson"),
        &[],
        nd,
    )
    .await;
    assert_eq!((status, json), (200, json!({"points": 2, "series": 1})));

    let all = series(&server, "").await;
    assert_eq!(names(&all), vec!["a", "b", "cpu{host=a}", "n"]);
    assert_eq!(
        all[0]["last_ns"], all[1]["last_ns"],
        "seconds and RFC 3339 agree"
    );
    server.stop().await.unwrap();
}

/// Path, content type, body, expected status, text the answer must contain.
type JsonCase<'a> = (&'a str, Option<&'a str>, &'a [u8], u16, &'a str);

/// The corpus of bad JSON bodies: 4xx with JSON paths; nothing stored.
#[tokio::test]
async fn bad_json_points_name_their_paths_and_store_nothing() {
    let server = TestServer::start().await;
    let cases: &[JsonCase] = &[
        (
            "/api/v1/points",
            Some("text/plain"),
            br#"{}"#,
            415,
            "Content-Type must be",
        ),
        (
            "/api/v1/points",
            None,
            br#"{}"#,
            415,
            "Content-Type must be",
        ),
        (
            "/api/v1/points",
            Some("application/json"),
            b"",
            400,
            "malformed JSON",
        ),
        (
            "/api/v1/points",
            Some("application/json"),
            b"\xff\xfe",
            400,
            "malformed JSON",
        ),
        (
            "/api/v1/points",
            Some("application/json"),
            br#"{"series": "a", "points": [[1, 1], [2, "x"]]}"#,
            400,
            "points[1][1]",
        ),
        (
            "/api/v1/points",
            Some("application/json"),
            br#"[{"series": "a", "points": [[1, 1]]}, {"points": [[1, 1]]}]"#,
            400,
            "[1].series: missing",
        ),
        (
            "/api/v1/points",
            Some("application/json"),
            br#"{"series": "a", "points": [[1e300, 1]]}"#,
            400,
            "timestamp 1e300 is outside the supported range",
        ),
        (
            "/api/v1/points",
            Some("application/json"),
            br#"{"series": "a", "points": [[1, 1]], "extra": 1}"#,
            400,
            "extra: unknown field",
        ),
        (
            "/api/v1/points?precision=weeks",
            Some("application/json"),
            br#"{"series": "a", "points": [[1, 1]]}"#,
            400,
            "invalid precision",
        ),
        (
            "/api/v1/points",
            Some("application/x-ndjson"),
            b"{\"series\": \"a\", \"points\": [[1, 1]]}\n{oops}\n",
            400,
            "line 2: malformed JSON",
        ),
    ];
    for (path, ct, body, want_status, want) in cases {
        let (status, json, _) = send(&server, path, *ct, &[], body.to_vec()).await;
        assert_eq!(
            status,
            *want_status,
            "{:?}: {json}",
            String::from_utf8_lossy(body)
        );
        assert!(
            json.to_string().contains(want),
            "{:?}: {json} should mention {want:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(series(&server, "").await.is_empty(), "nothing was stored");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cardinality_and_points_limits_name_themselves() {
    let mut config = Config::new();
    config.limits.max_series = 2;
    config.limits.max_points_per_request = 3;
    let server = TestServer::start_with(config).await;
    let (status, _, _) = lp(&server, "/api/v2/write", "m,h=a v=1\nm,h=b v=1").await;
    assert_eq!(status, 204);
    let (status, json, _) = lp(&server, "/api/v2/write", "m,h=a v=2\nm,h=c v=1").await;
    assert_eq!(status, 422);
    assert_eq!(json["code"], "unprocessable entity");
    assert!(
        json["message"].as_str().unwrap().contains("at most 2"),
        "{json}"
    );
    let (status, _, _) = lp(&server, "/api/v2/write", "m,h=a v=3").await;
    assert_eq!(status, 204, "existing series keep working");

    let (status, json, _) = lp(
        &server,
        "/api/v2/write",
        "m,h=a v=1 1\nm,h=a v=1 2\nm,h=a v=1 3\nm,h=a v=1 4",
    )
    .await;
    assert_eq!(status, 413, "{json}");
    assert!(json["message"].as_str().unwrap().contains("limit is 3"));
    let (status, json, _) = send(
        &server,
        "/api/v1/points",
        Some("application/json"),
        &[],
        br#"{"series": "new", "points": [[1, 1]]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{json}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn series_listing_filters_by_prefix_and_labels() {
    let server = TestServer::start().await;
    lp(
        &server,
        "/api/v2/write",
        "cpu,host=a,dc=x value=1\ncpu,host=b,dc=x value=2\nmem,host=a value=3",
    )
    .await;
    assert_eq!(
        names(&series(&server, "?prefix=cp").await),
        vec!["cpu{dc=x,host=a}", "cpu{dc=x,host=b}"]
    );
    assert_eq!(
        names(&series(&server, "?label=host%3Da").await),
        vec!["cpu{dc=x,host=a}", "mem{host=a}"]
    );
    assert_eq!(
        names(&series(&server, "?label=host%3Da&label=dc%3Dx").await),
        vec!["cpu{dc=x,host=a}"]
    );
    let res = server
        .http
        .get(server.url("/api/v1/series?label=nokey"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res = server
        .http
        .get(server.url("/api/v1/series?bogus=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let all = series(&server, "").await;
    assert!(
        all[0]["rate"].as_f64().unwrap() > 0.0,
        "a point just now counts in the rate"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn ingest_tokens_guard_every_ingest_path_and_nothing_else() {
    let mut config = Config::new();
    config.ingest_tokens = Tokens::new(["s3cret".to_string()]);
    let server = TestServer::start_with(config).await;

    let demo = br#"{"value": 1}"#.to_vec();
    let lpb = b"m v=1".to_vec();
    let js = br#"{"series": "j", "points": [[1, 1]]}"#.to_vec();
    let fun = br#"{"series": "f", "points": [{"value": 1}]}"#.to_vec();
    let endpoints: [(&str, &str, &Vec<u8>); 5] = [
        ("/chart_data", "application/json", &demo),
        ("/api/v2/write", "text/plain", &lpb),
        ("/write", "text/plain", &lpb),
        ("/api/v1/points", "application/json", &js),
        ("/api/push_points", "application/json", &fun),
    ];
    for (path, ct, body) in endpoints {
        let (status, json, _) = send(&server, path, Some(ct), &[], body.clone()).await;
        assert_eq!(status, 401, "{path} without a token: {json}");
        assert!(
            json.to_string().contains("missing ingest token"),
            "{path}: {json}"
        );
        // Each endpoint's own error shape: Influx 1.x clients read "error", 2.x "message".
        if path.contains("write") {
            assert_eq!(json["code"], "unauthorized", "{json}");
            assert_eq!(json["error"], json["message"], "{json}");
        }
        let (status, json, _) = send(
            &server,
            path,
            Some(ct),
            &[("authorization", "Bearer wrong")],
            body.clone(),
        )
        .await;
        assert_eq!(status, 401, "{path} with a wrong token");
        assert!(json.to_string().contains("invalid ingest token"));
    }
    let ok = |s: u16| (200..300).contains(&s);
    let (s, _, _) = send(
        &server,
        "/chart_data",
        Some("application/json"),
        &[("authorization", "Bearer s3cret")],
        demo.clone(),
    )
    .await;
    assert!(ok(s));
    let (s, _, _) = send(
        &server,
        "/api/v2/write",
        Some("text/plain"),
        &[("authorization", "Token s3cret")],
        lpb.clone(),
    )
    .await;
    assert!(ok(s));
    // "user:s3cret" in base64, as Influx 1.x clients send it, with and without padding.
    for basic in ["Basic dXNlcjpzM2NyZXQ=", "Basic dXNlcjpzM2NyZXQ"] {
        let (s, _, _) = send(
            &server,
            "/write",
            Some("text/plain"),
            &[("authorization", basic)],
            lpb.clone(),
        )
        .await;
        assert!(ok(s), "{basic}");
    }
    // Basic auth that does not decode leaves the query's p= to be tried.
    let (s, _, _) = send(
        &server,
        "/write?p=s3cret",
        Some("text/plain"),
        &[("authorization", "Basic %%%")],
        lpb.clone(),
    )
    .await;
    assert!(ok(s));
    let (s, _, _) = send(
        &server,
        "/write?db=x&u=user&p=s3cret",
        Some("text/plain"),
        &[],
        lpb.clone(),
    )
    .await;
    assert!(ok(s));

    // Reading needs no token.
    assert_eq!(
        server
            .http
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(series(&server, "").await.len(), 2);
    let mut ws = server.ws().await;
    ws.next().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn line_length_and_label_limits_are_configurable_and_named() {
    let mut config = Config::new();
    config.limits.max_line_bytes = 32;
    config.limits.max_labels = 2;
    let server = TestServer::start_with(config).await;
    let (status, json, _) = lp(
        &server,
        "/api/v2/write",
        "m v=1\nm,a=1 long_field_name_here=1,x=2,y=3",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("line 2: line is 36 bytes long; the limit is 32"),
        "{json}"
    );

    let (status, json, _) = lp(&server, "/api/v2/write", "m,a=1,b=2,c=3 v=1").await;
    assert_eq!(status, 422, "{json}");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("3 labels; the limit is 2"),
        "{json}"
    );
    let (status, json, _) = send(
        &server,
        "/api/v1/points",
        Some("application/json"),
        &[],
        br#"{"series": "j", "labels": {"a": "1", "b": "2", "c": "3"}, "points": [[1, 1]]}"#
            .to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{json}");
    let (status, _, _) = lp(&server, "/api/v2/write", "m,a=1,b=2 v=1").await;
    assert_eq!(status, 204);
    server.stop().await.unwrap();
}

/// A client that starts a request and stalls is answered 408 after the request time limit,
/// and nothing of it is stored.
#[tokio::test]
async fn a_stalled_upload_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = Config::new();
    config.limits.request_timeout = std::time::Duration::from_millis(300);
    let server = TestServer::start_with(config).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/v2/write HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nm v=1",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(common::PATIENCE, tcp.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("second limit"), "{text}");
    // In InfluxDB's shape, so Influx clients show the reason.
    assert!(text.contains(r#""code":"request timeout""#), "{text}");
    assert!(text.contains(r#""error":"request took"#), "{text}");
    assert!(series(&server, "").await.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn influx_client_conveniences_and_error_shapes() {
    let server = TestServer::start().await;
    let res = server.http.get(server.url("/ping")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let res = server.http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = server
        .http
        .post(server.url("/query"))
        .form(&[("q", "CREATE DATABASE \"telegraf\"")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = server
        .http
        .post(server.url("/query?q=SELECT%20*%20FROM%20cpu"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // 1.x clients read "error", 2.x clients "message": both carry the reason.
    let (status, json, _) = lp(&server, "/write", "m v=oops").await;
    assert_eq!(status, 400);
    assert_eq!(json["error"], json["message"]);
    assert!(json["error"].as_str().unwrap().contains("line 1"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_later_line_wins_a_tie_whatever_the_tag_order() {
    let server = TestServer::start().await;
    let (status, _, _) = lp(
        &server,
        "/api/v2/write",
        "m,a=1,b=2 value=1 5\nm,b=2,a=1 value=2 5",
    )
    .await;
    assert_eq!(status, 204);
    let all = series(&server, "").await;
    assert_eq!(
        (
            all.len(),
            all[0]["points"].as_u64(),
            all[0]["last_value"].as_f64()
        ),
        (1, Some(1), Some(2.0))
    );
    // Back to the first spelling: its line is the latest, so it wins (as in InfluxDB), also
    // when the series is spelled as measurement `n.a` with field `b` in between.
    let (status, _, _) = lp(
        &server,
        "/api/v2/write",
        "m,a=1,b=2 value=1 6\nm,b=2,a=1 value=2 6\nm,a=1,b=2 value=3 6\n\
         n a.b=1 6\nn.a b=2 6\nn a.b=3 6",
    )
    .await;
    assert_eq!(status, 204);
    let all = series(&server, "").await;
    let last = |name: &str| {
        all.iter()
            .find(|s| s["series"] == name)
            .map(|s| (s["points"].as_u64(), s["last_value"].as_f64()))
    };
    assert_eq!(last("m"), Some((Some(2), Some(3.0))));
    assert_eq!(last("n.a.b"), Some((Some(1), Some(3.0))));
    // The JSON API reports what was stored: two points at one timestamp are one point.
    let (status, json, _) = send(
        &server,
        "/api/v1/points?precision=ns",
        Some("application/json"),
        &[],
        br#"{"series": "t", "points": [[7, 1], [7, 2], [8, 3]]}"#.to_vec(),
    )
    .await;
    assert_eq!((status, json), (200, json!({"points": 2, "series": 1})));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn web_pages_on_other_sites_cannot_write() {
    let server = TestServer::start().await;
    let host = server.addr.to_string();
    let (status, json, _) = send(
        &server,
        "/write",
        Some("text/plain"),
        &[("origin", "https://evil.example")],
        b"m v=1".to_vec(),
    )
    .await;
    assert_eq!(status, 403, "{json}");
    assert!(json.to_string().contains("another site"));
    let own = format!("http://{host}");
    let (status, _, _) = send(
        &server,
        "/chart_data",
        Some("application/json"),
        &[("origin", own.as_str())],
        br#"{"value": 1}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200, "the app's own page may write");
    // DNS rebinding: a page on rebind.example, its name switched to 127.0.0.1, sends an
    // Origin matching its Host. Its Host is still a domain name.
    let port = server.addr.port();
    let rebound = format!("rebind.example:{port}");
    let rebound_origin = format!("http://{rebound}");
    let (status, json, _) = send(
        &server,
        "/write",
        Some("text/plain"),
        &[
            ("origin", rebound_origin.as_str()),
            ("host", rebound.as_str()),
        ],
        b"m v=1".to_vec(),
    )
    .await;
    assert_eq!(status, 403, "{json}");
    assert!(json.to_string().contains("DNS rebinding"), "{json}");
    // A program reaching loopback by a name from /etc/hosts sends no Origin: let through.
    let (status, _, _) = send(
        &server,
        "/write",
        Some("text/plain"),
        &[("host", rebound.as_str())],
        b"m v=1".to_vec(),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(names(&series(&server, "").await), vec!["m.v", "value"]);
    server.stop().await.unwrap();
}

//! The live protocol over real sockets: subscriptions, gapless resume, reload, backpressure,
//! origin checks and the connection limit.
//!
//! Every client here is [`common::Client`], which applies what it gets to the browser's own
//! model ([`livechart::feed::FeedState`]): a delta that skips or repeats an offset fails the
//! test where it arrives.

mod common;

use common::{close_frame, now_ms, snapshot_series, Client, DataDir, Event, TestServer, PATIENCE};
use futures::StreamExt;
use livechart::model::SeriesKey;
use livechart::protocol::{ClientMsg, ServerMsg, Subscribe, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_SLOW};
use livechart::server::config::Config;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const DAY: Duration = Duration::from_secs(86_400);

/// Posts `values` of `series`, one line each, timestamps [`STEP_MS`] apart from `t0`.
async fn push(server: &TestServer, series: &str, t0: i64, values: std::ops::Range<i64>) {
    push_every(server, series, t0, STEP_MS, values).await
}

/// Wider than a snapshot column (60 s over 4 096 columns), so snapshots keep every point.
const STEP_MS: i64 = 20;

async fn push_every(
    server: &TestServer,
    series: &str,
    t0: i64,
    step_ms: i64,
    values: std::ops::Range<i64>,
) {
    let body: String = values
        .map(|v| format!("{series} value={v} {}\n", t0 + v * step_ms))
        .collect();
    server.write_lines(body).await;
}

/// Reads until the client holds offset `last` of `series` (heartbeats would keep a plain
/// read waiting forever for a point that never comes).
async fn read_through(client: &mut Client, series: &str, last: i64) {
    let key = SeriesKey::new(series).unwrap();
    let read = async {
        while client.feed.offsets.get(&key).copied().unwrap_or(-1) < last {
            client.next().await;
        }
    };
    tokio::time::timeout(PATIENCE * 3, read)
        .await
        .unwrap_or_else(|_| panic!("offset {last} of {series} never arrived"));
}

/// The values a client holds for `series`, in time order.
fn values(client: &Client, series: &str) -> Vec<i64> {
    client.feed.series[&SeriesKey::new(series).unwrap()]
        .iter()
        .map(|p| p.value as i64)
        .collect()
}

#[tokio::test]
async fn a_dropped_connection_resumes_without_gaps_or_repeats() {
    let server = TestServer::start().await;
    let t0 = now_ms() - 15_000;
    let mut client = server.ws().await;
    assert!(snapshot_series(&client.next().await).is_empty());
    push(&server, "n", t0, 0..100).await;
    read_through(&mut client, "n", 99).await;

    // The socket dies; points keep coming while nobody listens.
    drop(std::mem::replace(&mut client.ws, server.ws_raw().await));
    push(&server, "n", t0, 100..250).await;
    let mut client = server.resume(client.feed).await;
    match client.next().await {
        Event::Msg(ServerMsg::Resumed { series, .. }) => assert_eq!(series[0].offset, 99),
        other => panic!("expected a resume, got {other:?}"),
    }
    push(&server, "n", t0, 250..300).await;
    read_through(&mut client, "n", 299).await;
    // Offsets were checked one by one on the way (0 missing, 0 repeated); the values too.
    assert_eq!(values(&client, "n"), (0..300).collect::<Vec<_>>());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_hidden_page_gets_nothing_then_catches_up() {
    let server = TestServer::start().await;
    let t0 = now_ms() - 15_000;
    push(&server, "n", t0, 0..10).await;
    let mut client = server.ws().await;
    client.next().await;
    client.send(&ClientMsg::Pause).await;
    // A round trip through the server after the pause: nothing may arrive in between.
    push(&server, "n", t0, 10..20).await;
    // Out of range is an error naming the field, not silently clamped.
    for (bad, field) in [
        (
            Subscribe {
                width: Some(0),
                ..Subscribe::default()
            },
            "width",
        ),
        (
            Subscribe {
                max_rate: Some(1_000),
                ..Subscribe::default()
            },
            "max_rate",
        ),
    ] {
        client.send(&ClientMsg::Subscribe(bad)).await;
        match client.next().await {
            Event::Msg(ServerMsg::Error { message }) => {
                assert!(message.contains(field), "{message}")
            }
            other => panic!("nothing but the error was due while paused, got {other:?}"),
        }
    }
    let resume = client.feed.resume();
    client
        .send(&ClientMsg::Subscribe(Subscribe {
            resume,
            ..Subscribe::default()
        }))
        .await;
    read_through(&mut client, "n", 19).await;
    assert_eq!(values(&client, "n"), (0..20).collect::<Vec<_>>());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_resume_continues_across_a_server_restart() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let t0 = now_ms() - 15_000;
    let mut client = server.ws().await;
    client.next().await;
    push(&server, "n", t0, 0..50).await;
    read_through(&mut client, "n", 49).await;
    server.stop().await.unwrap();

    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    push(&server, "n", t0, 50..80).await;
    let mut client = server.resume(client.feed).await;
    assert!(matches!(
        client.next().await,
        Event::Msg(ServerMsg::Resumed { .. })
    ));
    read_through(&mut client, "n", 79).await;
    assert_eq!(values(&client, "n"), (0..80).collect::<Vec<_>>());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_whose_missed_points_are_gone_is_told_to_reload() {
    let mut config = Config::new();
    config.limits.replay_points = 100;
    let server = TestServer::start_with(config).await;
    let t0 = now_ms() - 15_000;
    let mut client = server.ws().await;
    client.next().await;
    push(&server, "n", t0, 0..10).await;
    read_through(&mut client, "n", 9).await;
    drop(std::mem::replace(&mut client.ws, server.ws_raw().await));
    for i in 0..5 {
        push(&server, "n", t0, 10 + i * 100..10 + (i + 1) * 100).await;
    }
    let mut client = server.resume(client.feed).await;
    match client.next().await {
        Event::Msg(ServerMsg::Reload { reason }) => {
            assert!(
                reason.contains("no longer in the replay buffer"),
                "{reason}"
            )
        }
        other => panic!("expected a reload, got {other:?}"),
    }
    // Then the whole truth, continuing from the newest offset.
    assert_eq!(
        snapshot_series(&client.next().await),
        vec![("n".to_string(), 510)]
    );
    push(&server, "n", t0, 510..511).await;
    read_through(&mut client, "n", 510).await;
    server.stop().await.unwrap();

    // A server that restarted in memory is another stream: resuming from it reloads.
    let server = TestServer::start().await;
    let mut client = server.resume(client.feed).await;
    match client.next().await {
        Event::Msg(ServerMsg::Reload { reason }) => assert!(reason.contains("reset"), "{reason}"),
        other => panic!("expected a reload, got {other:?}"),
    }
    assert!(snapshot_series(&client.next().await).is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_subscription_gets_only_its_series_and_hears_of_new_ones() {
    let server = TestServer::start().await;
    let t0 = now_ms() - 15_000;
    push(&server, "a", t0, 0..3).await;
    let mut only_b = server
        .ws_with(Subscribe {
            series: vec![SeriesKey::new("b").unwrap()],
            ..Subscribe::default()
        })
        .await;
    assert!(snapshot_series(&only_b.next().await).is_empty());
    let mut all = server.ws().await;
    assert_eq!(
        snapshot_series(&all.next().await),
        vec![("a".to_string(), 3)]
    );
    push(&server, "a", t0, 3..5).await;
    push(&server, "b", t0, 0..2).await;
    match only_b.next().await {
        Event::Msg(ServerMsg::Series(head)) => {
            assert_eq!((head.series.name(), head.offset), ("b", -1))
        }
        other => panic!("expected b announced, got {other:?}"),
    }
    let got = only_b.next_points().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].series.name(), "b");
    read_through(&mut all, "b", 1).await;
    assert_eq!(values(&all, "a"), vec![0, 1, 2, 3, 4]);
    server.stop().await.unwrap();
}

/// A client with a small receive buffer, so the server's sends block soon instead of filling
/// the kernel's buffers for megabytes.
async fn tiny_buffer_client(server: &TestServer) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4_096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", server.addr), stream)
        .await
        .unwrap();
    Client {
        ws,
        feed: Default::default(),
    }
}

/// `posts` batches of 5 000 full-precision points (about six bytes each on the wire), so a
/// backlog is megabytes: more than the kernel's socket buffers take before sends block.
async fn push_noise(server: &TestServer, t0: i64, posts: i64) {
    for i in 0..posts {
        let body: String = (i * 5_000..(i + 1) * 5_000)
            .map(|v| {
                format!(
                    "n value={} {}\n",
                    (v as f64 * 0.618_033_988_749_894_9).fract(),
                    t0 + v
                )
            })
            .collect();
        server.write_lines(body).await;
    }
}

/// A reader that stops reading while a fast one keeps up: the fast one gets every point
/// exactly; the slow one gets coarsened frames (still gapless in offsets) or is closed with
/// the documented code, never an unbounded queue.
#[tokio::test]
async fn a_slow_reader_is_coarsened_or_closed_while_others_keep_every_point() {
    const POSTS: i64 = 160;
    const LAST: i64 = POSTS * 5_000 - 1;
    let mut config = Config::new();
    config.limits.max_queued_points = 20_000;
    config.limits.send_timeout = Duration::from_secs(2);
    config.limits.ring_capacity = 1_000_000;
    let server = TestServer::start_with(config).await;
    let t0 = now_ms() - 3_600_000;
    let mut fast = server.ws().await;
    fast.next().await;
    let mut slow = tiny_buffer_client(&server).await;
    slow.send(&ClientMsg::Subscribe(Subscribe {
        width: Some(100),
        ..Subscribe::default()
    }))
    .await;
    slow.next().await;
    // The fast reader keeps reading on its own task while the writer pushes.
    let reader = tokio::spawn(async move {
        let (mut coarsened, mut points) = (false, 0);
        while fast
            .feed
            .offsets
            .get(&SeriesKey::new("n").unwrap())
            .copied()
            .unwrap_or(-1)
            < LAST
        {
            if let Event::Points(_, d) = fast.next().await {
                coarsened |= d.coarsened;
                points += d.point_count();
            }
        }
        (coarsened, points)
    });
    push_noise(&server, t0, POSTS).await;
    let (fast_coarsened, fast_points) = tokio::time::timeout(PATIENCE * 6, reader)
        .await
        .unwrap()
        .unwrap();
    assert!(!fast_coarsened, "a reader that keeps up gets every point");
    assert_eq!(fast_points, (LAST + 1) as usize);

    // Now the slow one reads what it was left with.
    let mut saw_coarse = false;
    let mut closed_slow = false;
    loop {
        match tokio::time::timeout(PATIENCE, slow.ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                let d = livechart::protocol::Delta::decode(&b).unwrap();
                saw_coarse |= d.coarsened;
                slow.feed
                    .apply_delta(d, 0)
                    .expect("gapless even when coarsened");
                if slow.feed.offsets.get(&SeriesKey::new("n").unwrap()) == Some(&LAST) {
                    break;
                }
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                slow.feed.apply(serde_json::from_str(&t).unwrap(), 0);
            }
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(u16::from(frame.code), CLOSE_TOO_SLOW);
                closed_slow = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => {
                closed_slow = true;
                break;
            }
            Err(_) => panic!("the slow reader got neither its data nor a close"),
        }
    }
    assert!(
        saw_coarse || closed_slow,
        "the slow reader was coarsened or closed"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cross_site_pages_and_connections_over_the_limit_are_refused() {
    let mut config = Config::new();
    config.limits.max_connections = 2;
    config.allowed_origins = vec!["https://dash.example.com".into()];
    let server = TestServer::start_with(config).await;
    let attempt = |origin: &'static str| {
        let url = format!("ws://{}/ws", server.addr);
        async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut req = url.into_client_request().unwrap();
            req.headers_mut().insert("origin", origin.parse().unwrap());
            tokio_tungstenite::connect_async(req).await
        }
    };
    match attempt("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 403);
            let body = String::from_utf8(res.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("evil.example"), "{body}");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let own = format!("http://{}", server.addr);
    let own: &'static str = Box::leak(own.into_boxed_str());
    let (_a, _) = attempt(own)
        .await
        .expect("the server's own pages may connect");
    let (_b, _) = attempt("https://dash.example.com")
        .await
        .expect("allowed origin");
    match attempt(own).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 503);
            let body = String::from_utf8(res.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("at most 2"), "{body}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    drop(_a);
    // The slot comes back once the session ends.
    let mut freed = false;
    for _ in 0..50 {
        if attempt(own).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "a closed connection frees its slot");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unreadable_messages_close_with_a_reason() {
    let server = TestServer::start().await;
    let mut ws = server.ws_raw().await;
    use futures::SinkExt;
    ws.send(Message::Text(r#"{"type":"subscribe","widht":5}"#.into()))
        .await
        .unwrap();
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, CLOSE_PROTOCOL_ERROR);
    assert!(reason.contains("widht"), "{reason}");
    // Inside a series too: a typo there would watch the bare name instead.
    let mut ws = server.ws_raw().await;
    let typo = r#"{"type":"subscribe","series":[{"series":"cpu","lables":{"host":"a"}}]}"#;
    ws.send(Message::Text(typo.into())).await.unwrap();
    let (code, reason) = tokio::time::timeout(PATIENCE, close_frame(&mut ws))
        .await
        .expect("closed, not subscribed to the bare name");
    assert_eq!(code, CLOSE_PROTOCOL_ERROR);
    assert!(reason.contains("lables"), "{reason}");
    server.stop().await.unwrap();
}

/// A reader that takes nothing at all for longer than the send timeout is closed, and its
/// connection slot is freed.
#[tokio::test]
async fn a_reader_stuck_past_the_send_timeout_is_closed() {
    let mut config = Config::new();
    config.limits.send_timeout = Duration::from_millis(500);
    config.limits.max_connections = 1;
    config.limits.ring_capacity = 1_000_000;
    let server = TestServer::start_with(config).await;
    let mut stuck = tiny_buffer_client(&server).await;
    stuck
        .send(&ClientMsg::Subscribe(Subscribe::default()))
        .await;
    stuck.next().await;
    push_noise(&server, now_ms() - 3_600_000, 160).await;
    // Its session ends by itself: the slot frees while the client still reads nothing.
    let mut freed = false;
    for _ in 0..100 {
        let url = format!("ws://{}/ws", server.addr);
        if tokio_tungstenite::connect_async(url).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the stuck connection was closed and its slot freed");
    // What it finally reads ends in the close code (when the frame got through) or the end.
    loop {
        match tokio::time::timeout(PATIENCE, stuck.ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), CLOSE_TOO_SLOW);
                break;
            }
            Some(Err(_)) | None | Some(Ok(Message::Close(None))) => break,
            Some(Ok(_)) => continue,
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_connection() {
    let mut config = Config::new();
    config.limits.max_client_message_bytes = 1_024;
    let server = TestServer::start_with(config).await;
    let mut ws = server.ws_raw().await;
    use futures::SinkExt;
    let names: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"series":"s{i}"}}"#))
        .collect();
    let big = format!(r#"{{"type":"subscribe","series":[{}]}}"#, names.join(","));
    assert!(big.len() > 1_024);
    let _ = ws.send(Message::Text(big.into())).await;
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, 1009);
    assert!(reason.contains("1024 bytes"), "{reason}");
    server.stop().await.unwrap();
}

/// A series quiet for longer than the window is in the snapshot (no points, its offset), so
/// resuming after a restart does not reload because of it.
#[tokio::test]
async fn a_series_quiet_for_longer_than_the_window_does_not_force_reloads() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    push(&server, "quiet", now_ms() - 600_000, 0..3).await;
    server.stop().await.unwrap();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let mut client = server.ws().await;
    match client.next().await {
        Event::Msg(ServerMsg::Snapshot { series, .. }) => {
            let quiet = series
                .iter()
                .find(|s| s.head.series.name() == "quiet")
                .unwrap();
            assert_eq!(quiet.head.offset, 2);
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    drop(std::mem::replace(&mut client.ws, server.ws_raw().await));
    push(&server, "busy", now_ms() - 1_000, 0..3).await;
    let mut client = server.resume(client.feed).await;
    assert!(matches!(
        client.next().await,
        Event::Msg(ServerMsg::Resumed { .. })
    ));
    read_through(&mut client, "busy", 2).await;
    server.stop().await.unwrap();
}

/// With a one-commit channel, sessions fall behind it all the time and catch up from the
/// replay buffer; series created meanwhile must arrive whole, announced first, without gaps.
#[tokio::test]
async fn sessions_that_fall_behind_the_channel_catch_up_every_series() {
    let mut config = Config::new();
    config.limits.hub_capacity = 1;
    let server = TestServer::start_with(config).await;
    let t0 = now_ms() - 15_000;
    let mut client = server.ws().await;
    client.next().await;
    let posts = (0..20).map(|i| {
        let server = &server;
        async move { push(server, &format!("s{i}"), t0, 0..50).await }
    });
    futures::future::join_all(posts).await;
    for i in 0..20 {
        read_through(&mut client, &format!("s{i}"), 49).await;
        assert_eq!(
            values(&client, &format!("s{i}")),
            (0..50).collect::<Vec<_>>()
        );
    }
    server.stop().await.unwrap();
}

/// With a viewer token configured, reading needs it (header, query or the cookie a valid
/// query token sets); the page shell itself still loads.
#[tokio::test]
async fn a_viewer_token_guards_reading_when_configured() {
    let mut config = Config::new();
    config.viewer_tokens = livechart::server::auth::Tokens::new(["v-secret".to_string()]);
    let server = TestServer::start_with(config).await;
    push(&server, "n", now_ms() - 1_000, 0..3).await;
    let get = |path: &str, auth: Option<(&str, &str)>| {
        let mut req = server.http.get(server.url(path));
        if let Some((k, v)) = auth {
            req = req.header(k, v);
        }
        req.send()
    };
    let res = get("/api/v1/series", None).await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert!(res.text().await.unwrap().contains("viewer token"));
    let res = get("/api/v1/series", Some(("authorization", "Bearer wrong")))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = get("/api/v1/series", Some(("authorization", "Bearer v-secret")))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = get("/api/v1/query?series=n&from=0&token=v-secret", None)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = get("/api/v1/series?prefix=n&token=v-secret", None)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // The page loads without a token; with one it remembers it in a cookie.
    assert_eq!(get("/", None).await.unwrap().status().as_u16(), 200);
    let res = get("/?token=v-secret", None).await.unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("livechart_token=v-secret;") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // A browser opening the page with the token is sent to the same page without it (out of
    // the address bar and history), the cookie set; behind a TLS proxy the cookie is Secure.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser
        .get(server.url("/?window=5m&token=v-secret"))
        .header("accept", "text/html,*/*")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/?window=5m");
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("v-secret") && cookie.contains("Secure"),
        "{cookie}"
    );
    let res = get(
        "/api/v1/series",
        Some(("cookie", "livechart_token=v-secret")),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // The live feed: refused without, served with.
    match tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let url = format!("ws://{}/ws?token=v-secret", server.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_ok());
    server.stop().await.unwrap();
}

/// A client that sends nothing and answers no ping is dropped after the silence timeout
/// (code 4009, when the close frame reaches it), and its slot is freed.
#[tokio::test]
async fn a_silent_client_is_dropped() {
    let mut config = Config::new();
    config.limits.silence_timeout = Duration::from_millis(600);
    config.limits.max_connections = 1;
    let server = TestServer::start_with(config).await;
    let mut ws = server.ws_raw().await;
    use futures::SinkExt;
    ws.send(Message::Text(r#"{"type":"subscribe"}"#.into()))
        .await
        .unwrap();
    // Not reading means not answering pings either.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let url = format!("ws://{}/ws", server.addr);
    assert!(
        tokio_tungstenite::connect_async(url).await.is_ok(),
        "the silent connection was dropped and its slot freed"
    );
    // What it reads ends in the close code, or in an error once it tries to answer a ping
    // on the closed socket.
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), livechart::protocol::CLOSE_SILENT);
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    server.stop().await.unwrap();
}

/// The server writes its data frames itself, straight to the socket, while the WebSocket
/// library answers the client's pings: neither may cut into the other's frame, also when the
/// socket is full. A big snapshot, pings sent while nobody reads, more points behind them
/// (live, or in the snapshot when the server reads the subscribe after they commit); then
/// everything read back whole and the pings answered (RFC 6455 lets a pong answer only the
/// latest of several pings).
#[tokio::test]
async fn pings_answered_while_big_frames_are_written_never_cut_into_them() {
    use futures::SinkExt;
    use livechart::protocol::Delta;
    let server = TestServer::start().await;
    // Noise, so the snapshot keeps every column's extremes: 24 series of ~110 KB each, more
    // than the socket buffers take while nobody reads.
    let t0 = now_ms() - 45_000;
    for series in 0..24 {
        let body: String = (0..10_000i64)
            .map(|v| {
                let value = (v * 7_919 + series) % 1_000 + 100;
                format!("big{series} value={value} {}\n", t0 + v * 4)
            })
            .collect();
        server.write_lines(body).await;
    }
    let mut client = server.ws().await;
    for i in 0..20u8 {
        client.ws.send(Message::Ping(vec![i].into())).await.unwrap();
    }
    push(&server, "big", now_ms() - 1_000, 0..50).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut pongs, mut snapshot_bytes) = (Vec::new(), 0);
    // The last point of the `push` above (values 0..50, after everything else) has arrived.
    let has_last = |c: &Client| {
        c.feed
            .series
            .values()
            .filter_map(|r| r.back())
            .any(|p| p.value == 49.0)
    };
    while pongs.last() != Some(&19) || !has_last(&client) {
        let frame = tokio::time::timeout(PATIENCE, client.ws.next())
            .await
            .expect("no message in time")
            .expect("socket ended")
            .expect("socket error");
        match frame {
            Message::Pong(p) => pongs.extend_from_slice(&p),
            Message::Text(t) => {
                let msg: ServerMsg = serde_json::from_str(&t).expect("a whole message");
                if let ServerMsg::Snapshot { .. } = &msg {
                    snapshot_bytes = t.len();
                }
                client.feed.apply(msg, 0);
            }
            Message::Binary(b) => {
                let delta = Delta::decode(&b).expect("a whole delta");
                client
                    .feed
                    .apply_delta(delta, 0)
                    .expect("deltas continue their offsets");
            }
            _ => {}
        }
    }
    assert!(
        snapshot_bytes > 2_000_000,
        "a snapshot of {snapshot_bytes} bytes"
    );
    assert!(
        pongs.windows(2).all(|w| w[0] < w[1]),
        "pongs in order: {pongs:?}"
    );
    server.stop().await.unwrap();
}

/// `/ws` answers requests that are not a WebSocket handshake with a 4xx saying what is missing.
#[tokio::test]
async fn a_request_that_is_not_a_handshake_is_told_what_is_missing() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let res = http.get(server.url("/ws")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Upgrade: websocket"),
        "{body}"
    );
    let res = http
        .get(server.url("/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 426);
    assert_eq!(res.headers()["sec-websocket-version"], "13");
    server.stop().await.unwrap();
}

/// Reads at most 4 KiB a millisecond (about 4 MB/s): a slow link.
struct Trickle {
    inner: tokio::net::TcpStream,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl tokio::io::AsyncRead for Trickle {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future;
        std::task::ready!(self.pause.as_mut().poll(cx));
        let mut small = [0u8; 4_096];
        let mut part = tokio::io::ReadBuf::new(&mut small[..buf.remaining().min(4_096)]);
        std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut part))?;
        buf.put_slice(part.filled());
        let next = tokio::time::Instant::now() + Duration::from_millis(1);
        self.pause.as_mut().reset(next);
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Trickle {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The send timeout is for a socket that takes nothing: one taking a snapshot slowly but
/// steadily, for longer than the timeout in all, gets all of it and stays connected.
#[tokio::test]
async fn a_slow_but_steady_reader_gets_its_whole_snapshot() {
    use futures::SinkExt;
    // Longer than the kernel's pauses between waking a writer on a draining socket (a third
    // of its 4 MiB buffer at this reader's pace, about 0.35 s).
    let timeout = Duration::from_secs(1);
    let mut config = Config::new();
    config.limits.send_timeout = timeout;
    config.limits.ring_capacity = 100_000;
    let server = TestServer::start_with(config).await;
    // Series with a point every millisecond over the last minute: a snapshot of about
    // 16 000 points each at 4 096 columns, over 8 MiB in all.
    let t0 = now_ms() - 59_000;
    let names = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
    ];
    for series in names {
        for part in 0..12 {
            let body: String = (part * 5_000..(part + 1) * 5_000)
                .map(|i| format!("{series} value={} {}\n", (i as f64 * 0.618).fract(), t0 + i))
                .collect();
            server.write_lines(body).await;
        }
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4_096).unwrap();
    let stream = Trickle {
        inner: socket.connect(server.addr).await.unwrap(),
        pause: Box::pin(tokio::time::sleep(Duration::ZERO)),
    };
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", server.addr), stream)
        .await
        .unwrap();
    let subscribe = serde_json::to_string(&ClientMsg::Subscribe(Subscribe::default())).unwrap();
    ws.send(Message::Text(subscribe.into())).await.unwrap();
    let started = std::time::Instant::now();
    let snapshot = loop {
        match tokio::time::timeout(PATIENCE * 3, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) if t.contains("\"snapshot\"") => break t,
            Some(Ok(Message::Close(frame))) => panic!("closed during the snapshot: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("no snapshot: {other:?}"),
        }
    };
    let took = started.elapsed();
    // What makes this test: the snapshot is larger than twice the kernel's largest send
    // buffer here (`tcp_wmem`: 4 MiB), so the server itself waits on the reader for longer
    // than the timeout.
    assert!(snapshot.len() > 8 << 20, "{} bytes", snapshot.len());
    assert!(took > timeout, "the snapshot came in {took:?}");
    let ServerMsg::Snapshot { series, .. } = serde_json::from_str(&snapshot).unwrap() else {
        panic!("not a snapshot");
    };
    assert_eq!(series.len(), names.len());
    assert!(
        series.iter().all(|s| s.points.len() > 10_000),
        "decimated to the columns"
    );
    server.stop().await.unwrap();
}

/// A connection that asks for nothing is closed; one that pauses first (a page opened in a
/// hidden tab) stays, and subscribes when shown.
#[tokio::test]
async fn a_paused_client_is_not_closed_for_not_subscribing() {
    use futures::SinkExt;
    let mut config = Config::new();
    config.limits.subscribe_timeout = Duration::from_millis(500);
    // Heartbeats (and with them the subscribe check) every 300 ms.
    config.limits.silence_timeout = Duration::from_millis(900);
    let server = TestServer::start_with(config).await;
    let mut mute = server.ws_raw().await;
    let mut hidden = server.ws_raw().await;
    hidden
        .send(Message::Text(r#"{"type":"pause"}"#.into()))
        .await
        .unwrap();
    // Both keep reading (and so answer pings) past the timeout.
    let closed = |frame: Option<Result<Message, _>>| match frame {
        Some(Ok(Message::Close(Some(f)))) => Some(u16::from(f.code)),
        Some(Ok(_)) => None,
        _ => Some(0),
    };
    let mut mute_closed = None;
    let until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while tokio::time::Instant::now() < until {
        tokio::select! {
            m = mute.next(), if mute_closed.is_none() => mute_closed = closed(m),
            h = hidden.next() => assert_eq!(closed(h), None, "the paused client was closed"),
            _ = tokio::time::sleep_until(until) => {}
        }
    }
    assert_eq!(mute_closed, Some(CLOSE_PROTOCOL_ERROR));
    hidden
        .send(Message::Text(r#"{"type":"subscribe"}"#.into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(PATIENCE, hidden.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) if t.contains("\"snapshot\"") => break,
            Some(Ok(_)) => continue,
            other => panic!("no snapshot after the pause: {other:?}"),
        }
    }
    server.stop().await.unwrap();
}

//! `livechart push` as a user runs it: the real binary, its stdin a pipe, against the real
//! server. Numbers, CSV and line protocol arrive; bad lines are named and skipped; a server
//! restart in the middle of the stream loses nothing.

mod common;

use common::{now_ms, DataDir, TestServer};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn push(server: &TestServer, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_livechart"))
        .arg("push")
        .args(["--url", &server.url("")])
        .args(args)
        .env_remove("LIVECHART_CONFIG")
        .env_remove("LIVECHART_URL")
        .env_remove("LIVECHART_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the livechart binary")
}

/// Closes stdin and waits (off the runtime) for the exit: (success, stderr).
async fn finish(mut child: Child) -> (bool, String) {
    drop(child.stdin.take());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn numbers_csv_and_line_protocol_from_stdin_arrive() {
    let server = TestServer::start().await;
    let t = now_ms() - 10_000;
    let mut child = push(&server, &["--series", "piped", "--label", "host=a"]);
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, "timestamp,value").unwrap();
    writeln!(stdin, "{t},1.5").unwrap();
    writeln!(stdin, "{},2.5", t + 1).unwrap();
    writeln!(stdin, "42").unwrap();
    writeln!(
        stdin,
        "# a comment, then line protocol with and without a timestamp"
    )
    .unwrap();
    writeln!(stdin, "room,site=lab temp=21.5 {}", (t + 2) * 1_000_000).unwrap();
    writeln!(stdin, "room,site=lab temp=22").unwrap();
    let (ok, stderr) = finish(child).await;
    assert!(ok, "{stderr}");

    let (_, v) = server
        .get_json(&format!(
            "/api/v1/query?series=piped&label=host=a&from={t}&to=now&raw=true"
        ))
        .await;
    let values = common::point_values(&v);
    assert_eq!(values, vec![1.5, 2.5, 42.0], "{v}");
    let (_, v) = server
        .get_json(&format!(
            "/api/v1/query?series=room.temp&label=site=lab&from={t}&to=now&raw=true"
        ))
        .await;
    assert_eq!(v["points"].as_array().map(Vec::len), Some(2), "{v}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_lines_are_named_skipped_and_fail_the_exit_status() {
    let server = TestServer::start().await;
    let mut child = push(&server, &["--series", "mixed"]);
    writeln!(child.stdin.as_mut().unwrap(), "1\nnot a number\n2").unwrap();
    let (ok, stderr) = finish(child).await;
    assert!(!ok, "bad input must fail the exit status");
    assert!(stderr.contains("line 2"), "{stderr}");
    let (_, v) = server
        .get_json("/api/v1/query?series=mixed&from=now-1h&to=now&raw=true")
        .await;
    assert_eq!(v["points"].as_array().map(Vec::len), Some(2), "{v}");

    // A batch the server refuses (a label value over its limit) is reported, not retried
    // forever.
    let long = format!("k={}", "v".repeat(5_000));
    let mut child = push(&server, &["--series", "refused", "--label", &long]);
    writeln!(child.stdin.as_mut().unwrap(), "1").unwrap();
    let (ok, stderr) = finish(child).await;
    assert!(!ok);
    assert!(stderr.contains("refused"), "{stderr}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_server_restart_mid_stream_loses_nothing() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(30 * DAY)).await;
    let addr = server.addr;
    let t = now_ms() - 60_000;
    let mut child = push(&server, &["--series", "steady"]);
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..50 {
        writeln!(stdin, "{},{i}", t + i).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop().await.unwrap();
    // Written while nobody listens: held, retried.
    for i in 50..100 {
        writeln!(stdin, "{},{i}", t + i).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = TestServer::start_on(addr, dir.config(30 * DAY)).await;
    for i in 100..150 {
        writeln!(stdin, "{},{i}", t + i).unwrap();
    }
    drop(stdin);
    let (ok, stderr) = tokio::time::timeout(Duration::from_secs(30), finish(child))
        .await
        .expect("push finishes once everything is taken");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("retrying"),
        "the outage was noticed: {stderr}"
    );
    let got = server.raw_history("steady", t, t + 200).await;
    let values: Vec<i64> = got.iter().map(|(_, v)| *v as i64).collect();
    assert_eq!(values, (0..150).collect::<Vec<_>>());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_point_does_not_take_the_good_ones_of_its_batch_with_it() {
    let dir = DataDir::new();
    let server = TestServer::start_with(dir.config(DAY)).await;
    let t = now_ms() - 10_000;
    let mut child = push(&server, &["--series", "kept"]);
    // One write: the three rows reach the server in one batch, which it refuses whole for
    // the row past retention; push splits it and the two good rows are stored.
    let rows = format!("{t},1\n{},2\n{},3\n", t - 3 * 86_400_000, t + 1);
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(rows.as_bytes())
        .unwrap();
    let (ok, stderr) = finish(child).await;
    assert!(!ok, "a refused point fails the exit status");
    assert!(stderr.contains("retention"), "{stderr}");
    let values: Vec<f64> = server
        .raw_history("kept", t - 10, t + 10)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, vec![1.0, 3.0]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_stops_pushing_instead_of_dropping_every_batch() {
    let mut config = livechart::server::config::Config::new();
    config.ingest_tokens = livechart::server::auth::Tokens::new(["right".to_string()]);
    let server = TestServer::start_with(config).await;
    let mut child = push(&server, &["--series", "x", "--token", "wrong"]);
    // The producer stays open and quiet (`tail -f` of a log written once an hour): push must
    // stop and say why without waiting for its next line.
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "1").unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("push exits while its stdin is still open")
    .unwrap()
    .unwrap();
    drop(stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_series_the_server_would_refuse_stops_push_before_sending() {
    let server = TestServer::start().await;
    let long = format!("k={}", "v".repeat(300));
    let child = push(&server, &["--series", "x", "--label", &long]);
    let (ok, stderr) = finish(child).await;
    assert!(!ok);
    assert!(stderr.contains("--series/--label"), "{stderr}");
    let (_, list) = server.get_json("/api/v1/series").await;
    assert_eq!(list["series"], serde_json::json!([]), "nothing was sent");
    server.stop().await.unwrap();
}

/// A server that answers 408 to any request of more than one point, as a server cuts off
/// an upload too slow for its request timeout: push splits instead of resending the same.
#[tokio::test]
async fn requests_cut_off_as_too_slow_are_split_until_they_go_through() {
    use std::sync::{Arc, Mutex};
    let taken: Arc<Mutex<Vec<f64>>> = Arc::default();
    let seen = taken.clone();
    let app = axum::Router::new().route(
        "/api/v1/points",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let points = v["points"].as_array().unwrap();
                if points.len() > 1 {
                    return axum::http::StatusCode::REQUEST_TIMEOUT;
                }
                seen.lock().unwrap().push(points[0][1].as_f64().unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut child = Command::new(env!("CARGO_BIN_EXE_livechart"))
        .args(["push", "--series", "slow", "--url", &url])
        .env_remove("LIVECHART_CONFIG")
        .env_remove("LIVECHART_TOKEN")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"1\n2\n3\n4\n5\n6\n7\n8\n")
        .unwrap();
    let (ok, stderr) = tokio::time::timeout(Duration::from_secs(30), finish(child))
        .await
        .expect("push gets through without retrying the same request forever");
    assert!(ok, "{stderr}");
    let mut got = taken.lock().unwrap().clone();
    got.sort_by(f64::total_cmp);
    assert_eq!(got, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
}

//! Acknowledged means durable, checked the hard way: the real binary is killed with SIGKILL
//! at random moments while writers push numbered points, then restarted on the same data
//! directory, again and again. Every point that got a 2xx must be there at the end.

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kill-and-restart rounds, writers per round and points per request.
const ROUNDS: usize = 8;
const WRITERS: usize = 3;
const PER_REQUEST: u64 = 200;

struct Server {
    child: Child,
    url: String,
}

/// Starts the binary on a free loopback port over `dir` and waits for its address.
fn start(dir: &Path, durability: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_livechart"))
        .args(["--addr", "127.0.0.1:0", "--durability", durability])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the livechart binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the address line");
    let addr = line
        .trim()
        .strip_prefix("livechart listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Server { child, url: addr }
}

/// A small deterministic generator, so a failing run can be repeated.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn crash_loop(durability: &str) {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "livechart-crash-{durability}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let http = reqwest::Client::new();
    let base_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        - 600_000_000_000;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::<u64>::new()));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next_number = 0u64;
    let mut refused = 0usize;
    for _ in 0..ROUNDS {
        let mut server = start(&dir, durability);
        // Writers take disjoint runs of numbers; each request is one run.
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut writers = Vec::new();
        for w in 0..WRITERS as u64 {
            let (http, url, acknowledged, mut stop) = (
                http.clone(),
                server.url.clone(),
                acknowledged.clone(),
                rx.clone(),
            );
            let first = next_number + w * 1_000_000;
            writers.push(tokio::spawn(async move {
                let mut n = first;
                let mut refused = 0usize;
                while !*stop.borrow_and_update() {
                    let body: String = (n..n + PER_REQUEST)
                        .map(|i| format!("crash value={i} {}\n", base_ns + i as i64))
                        .collect();
                    let sent = http
                        .post(format!("{url}/write?precision=ns"))
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 204 => {
                            acknowledged.lock().unwrap().extend(n..n + PER_REQUEST);
                        }
                        // Killed mid-request: not acknowledged, so it may or may not be there.
                        _ => refused += 1,
                    }
                    n += PER_REQUEST;
                }
                refused
            }));
        }
        // Let it run for a random while, then kill it without warning.
        let run_ms = 100 + next(&mut rng) % 700;
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        tx.send(true).ok();
        for w in writers {
            refused += w.await.unwrap();
        }
        next_number += WRITERS as u64 * 1_000_000;
    }

    // Restart once more and read everything back.
    let mut server = start(&dir, durability);
    let res = http
        .get(format!(
            "{}/api/v1/query?series=crash&from={}&to={}&raw=true&limit=1000000",
            server.url,
            base_ns / 1_000_000,
            (base_ns + next_number as i64) / 1_000_000 + 1
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_ne!(
        body["truncated"], true,
        "the read-back was cut: raise the limit"
    );
    let present: BTreeSet<u64> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let (ts, value) = (p[0].as_i64().unwrap(), p[1].as_f64().unwrap());
            // Each number is stored at its own timestamp with itself as value.
            assert_eq!(
                value as i64,
                ts - base_ns,
                "point {p} holds another's value"
            );
            value as u64
        })
        .collect();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let lost: Vec<&u64> = acknowledged.difference(&present).collect();
    eprintln!(
        "crash test ({durability}): {ROUNDS} SIGKILLs, acknowledged {}, present {}, lost {}, \
         requests cut by the kills {refused}",
        acknowledged.len(),
        present.len(),
        lost.len()
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(acknowledged.len() > 1_000, "the writers got little through");
    assert!(
        lost.is_empty(),
        "{} acknowledged points lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_point_is_lost_to_sigkill_with_fsync() {
    crash_loop("fsync").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_point_is_lost_to_sigkill_with_relaxed() {
    crash_loop("relaxed").await;
}

//! `livechart push`: charts whatever a shell prints. Reads numbers, `timestamp,value` CSV or
//! line protocol from stdin ([`crate::push_input`]) and posts them in batches as they come.
//!
//! Nothing read is lost: a batch is sent until the server takes it, with backoff while it is
//! away (a restart, a network drop), and reading stops while too much waits, which makes
//! the producer wait on the pipe instead of anything being dropped. Points are stamped when
//! read, so a batch sent again is the same batch. Only a batch the server refuses as bad
//! (a 4xx other than 408 and 429) is given up, with the server's reason on stderr, because
//! sending it again would not change the answer.

use crate::model::Point;
use crate::parse::timestamp::Precision;
use crate::push_input::{read_line, Input};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

/// Most points (or lines) in one request: well under the server's default per-request cap.
pub const MAX_BATCH: usize = 5_000;
/// Read-ahead while the server is away, in lines: beyond it the producer waits.
pub const MAX_PENDING: usize = 1_000_000;
/// How long one request may take before it is tried again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays grow to this.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// What to push, from the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Series the numbers and CSV rows go to (line protocol names its own).
    #[arg(long, short)]
    pub series: String,
    /// A label of the series, `key=value`; repeatable.
    #[arg(long = "label", short, value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The livechart server.
    #[arg(long, env = "LIVECHART_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Ingest token (`Authorization: Bearer`).
    #[arg(long, env = "LIVECHART_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Unit of numeric CSV timestamps: s, ms, us or ns.
    #[arg(long, default_value = "ms", value_parser = parse_precision)]
    pub precision: Precision,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected key=value")),
    }
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::parse(s).ok_or_else(|| format!("{s:?}: expected s, ms, us or ns"))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Points and lines waiting to be sent, in reading order within each kind.
#[derive(Default)]
struct Pending {
    points: Vec<Point>,
    lines: Vec<String>,
}

impl Pending {
    fn len(&self) -> usize {
        self.points.len() + self.lines.len()
    }
}

/// How the run went, for the exit status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub bad_lines: usize,
    pub refused: usize,
}

/// Pushes stdin until it ends and everything read is taken (or refused as bad).
pub async fn run(args: PushArgs) -> Summary {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Input>(MAX_PENDING);
    let precision = args.precision;
    // std's stdin in a thread of its own: a blocking read, and a full channel blocks it,
    // which is the backpressure the producer feels.
    let reader = std::thread::spawn(move || {
        let mut bad = 0usize;
        for (n, line) in std::io::stdin().lock().lines().enumerate() {
            let Ok(line) = line else {
                eprintln!("livechart push: line {}: not UTF-8 text, skipped", n + 1);
                bad += 1;
                continue;
            };
            match read_line(&line, now_ns(), precision) {
                Ok(Input::Skip) => {}
                Ok(input) => {
                    if tx.blocking_send(input).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("livechart push: line {}: {e}; skipped", n + 1);
                    bad += 1;
                }
            }
        }
        bad
    });

    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap_or_default();
    let sender = Sender {
        client,
        base: args.url.trim_end_matches('/').to_string(),
        token: args.token,
        series: args.series,
        labels: args.labels.into_iter().collect(),
    };
    let mut summary = Summary::default();
    let mut pending = Pending::default();
    loop {
        // Wait for something, then take whatever else is already there: batches follow the
        // input's pace (one point a second goes out at once; a flood goes out in big ones).
        if pending.len() == 0 {
            match rx.recv().await {
                Some(input) => add(&mut pending, input),
                None => break,
            }
        }
        while pending.points.len() < MAX_BATCH && pending.lines.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(input) => add(&mut pending, input),
                Err(_) => break,
            }
        }
        let batch = std::mem::take(&mut pending);
        let (sent, refused) = sender.send(batch).await;
        summary.sent += sent;
        summary.refused += refused;
    }
    summary.bad_lines = reader.join().unwrap_or(0);
    summary
}

fn add(pending: &mut Pending, input: Input) {
    match input {
        Input::Point(p) => pending.points.push(p),
        Input::Line(l) => pending.lines.push(l),
        Input::Skip => {}
    }
}

struct Sender {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    series: String,
    labels: BTreeMap<String, String>,
}

/// What one attempt came to.
enum Outcome {
    Taken,
    /// Bad data: sending it again gets the same answer.
    Refused(String),
    Retry(String),
}

impl Sender {
    /// Sends a batch until it is taken or refused; (points sent, points refused).
    async fn send(&self, batch: Pending) -> (usize, usize) {
        let mut result = (0, 0);
        if !batch.points.is_empty() {
            let points: Vec<(i64, f64)> = batch.points.iter().map(|p| (p.ts_ns, p.value)).collect();
            let body = serde_json::json!({
                "series": self.series,
                "labels": self.labels,
                "points": points,
            })
            .to_string();
            let n = points.len();
            if self
                .deliver("/api/v1/points?precision=ns", "application/json", body)
                .await
            {
                result.0 += n;
            } else {
                result.1 += n;
            }
        }
        if !batch.lines.is_empty() {
            let n = batch.lines.len();
            let body = batch.lines.join("\n");
            if self
                .deliver("/write?precision=ns", "text/plain; charset=utf-8", body)
                .await
            {
                result.0 += n;
            } else {
                result.1 += n;
            }
        }
        result
    }

    /// Posts `body` until the server takes it (true) or refuses it as bad (false).
    async fn deliver(&self, path: &str, content_type: &str, body: String) -> bool {
        let mut attempt = 0u32;
        loop {
            match self.attempt(path, content_type, body.clone()).await {
                Outcome::Taken => {
                    if attempt > 0 {
                        eprintln!("livechart push: the server takes points again");
                    }
                    return true;
                }
                Outcome::Refused(why) => {
                    eprintln!("livechart push: the server refused a batch: {why}");
                    return false;
                }
                Outcome::Retry(why) => {
                    if attempt == 0 {
                        eprintln!("livechart push: {why}; holding the points and retrying");
                    }
                    let delay =
                        Duration::from_millis(crate::backoff::delay_ms(attempt, jitter()).into())
                            .min(MAX_RETRY_DELAY);
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    async fn attempt(&self, path: &str, content_type: &str, body: String) -> Outcome {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Err(e) => Outcome::Retry(format!("cannot reach {}: {e}", self.base)),
            Ok(res) => {
                let status = res.status();
                if status.is_success() {
                    return Outcome::Taken;
                }
                let text = res.text().await.unwrap_or_default();
                let why = format!("{status}: {}", text.trim());
                if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                    Outcome::Refused(why)
                } else {
                    Outcome::Retry(why)
                }
            }
        }
    }
}

/// Uniform in [0, 1), from the clock: enough to spread retries of many pushers.
fn jitter() -> f64 {
    f64::from(now_ns().rem_euclid(1_000_003) as u32) / 1_000_003.0
}

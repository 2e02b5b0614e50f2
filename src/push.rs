//! `livechart push`: charts whatever a shell prints. Reads numbers, `timestamp,value` CSV or
//! line protocol from stdin ([`crate::push_input`]) and posts them in batches as they come.
//!
//! Nothing read is lost: a batch is sent until the server takes it, with backoff while it is
//! away (a restart, a network drop), and reading stops while too much waits, which makes
//! the producer wait on the pipe instead of anything being dropped. Points are stamped when
//! read, so a batch sent again is the same batch. A batch the server refuses as bad (a 4xx
//! other than 408 and 429) is split until only the bad points are left, which are given up
//! with the server's reason on stderr (sending them again would not change the answer); one
//! that takes too long (408, or no answer in time) is split too, so a slow link still gets
//! smaller requests through. An
//! answer every request would get (401, 403, 404, 405, a redirect) stops pushing with a
//! non-zero exit status, so the producer sees the pipe close instead of points vanishing.

use crate::model::Point;
use crate::parse::timestamp::Precision;
use crate::push_input::{read_line, Input};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

/// Most points (or lines) in one request: well under the server's default per-request cap.
pub const MAX_BATCH: usize = 5_000;
/// Read-ahead while the server is away, in bytes of lines held: beyond it the producer
/// waits. About 300 k typical lines (minutes of a busy producer), and bounded whatever the
/// lines' length (a count of lines let 64 KiB lines hold gigabytes).
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// How long one request may take before it is tried again: a 512 KiB batch at 100 kbit/s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
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
    bytes: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.points.len() + self.lines.len()
    }

    fn full(&self) -> bool {
        self.points.len() >= MAX_BATCH
            || self.lines.len() >= MAX_BATCH
            || self.bytes >= MAX_BATCH_BYTES
    }
}

/// How the run went, for the exit status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub bad_lines: usize,
    pub refused: usize,
    /// Why pushing stopped early (stdin unreadable, the server refuses everything), if it did.
    pub stopped: Option<String>,
}

/// Most bytes of line protocol in one request: well under the server's default body limit
/// (1 MiB) and nginx's default `client_max_body_size` (1 MiB).
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
/// Longest input line taken (the server's default line limit); longer ones are skipped.
pub const MAX_LINE_BYTES: usize = crate::parse::line_protocol::MAX_LINE_BYTES;

/// Writes to stderr, ignoring a closed one (a message must never kill the pushing).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "livechart push: {}", format_args!($($arg)*));
    }};
}

/// Bytes read ahead and not yet taken into a batch ([`MAX_PENDING_BYTES`]): the reader waits
/// for room, which is the backpressure the producer feels.
struct ReadAhead {
    held: std::sync::Mutex<usize>,
    room: std::sync::Condvar,
    cap: usize,
}

impl ReadAhead {
    fn new(cap: usize) -> Self {
        Self {
            held: std::sync::Mutex::new(0),
            room: std::sync::Condvar::new(),
            cap,
        }
    }

    /// Waits until `n` more bytes fit (one item alone always fits), then holds them.
    fn hold(&self, n: usize) {
        let held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut held = self
            .room
            .wait_while(held, |held| *held > 0 && *held + n > self.cap)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held += n;
    }

    fn release(&self, n: usize) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = held.saturating_sub(n);
        self.room.notify_all();
    }
}

/// What an item read ahead holds in memory, about.
fn held_bytes(input: &Input) -> usize {
    std::mem::size_of::<Input>()
        + match input {
            Input::Line(l) => l.capacity(),
            Input::Point(_) | Input::Skip => 0,
        }
}

/// Reads stdin into `tx` until it ends; the count of bad lines, or why reading failed.
fn read_stdin(
    tx: tokio::sync::mpsc::UnboundedSender<Input>,
    ahead: &ReadAhead,
    precision: Precision,
) -> Result<usize, String> {
    use std::io::Read;
    let mut stdin = std::io::stdin().lock();
    let (mut buf, mut n, mut bad) = (Vec::new(), 0usize, 0usize);
    // Read-time stamps strictly increase: two numbers read within one clock tick must not
    // become one point (a series holds one value per timestamp).
    let mut last_ns = i64::MIN;
    loop {
        buf.clear();
        match (&mut stdin)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => return Ok(bad),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read stdin: {e}")),
        }
        n += 1;
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            say!("line {n}: longer than {MAX_LINE_BYTES} bytes; skipped");
            bad += 1;
            // The rest of the line, in bounded pieces.
            loop {
                buf.clear();
                match (&mut stdin)
                    .take(MAX_LINE_BYTES as u64)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) => return Ok(bad),
                    Ok(_) if buf.ends_with(b"\n") => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("cannot read stdin: {e}")),
                }
            }
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            say!("line {n}: not UTF-8 text; skipped");
            bad += 1;
            continue;
        };
        // A byte order mark (Windows editors) is not part of the first line.
        let text = if n == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        let now = now_ns().max(last_ns.saturating_add(1));
        last_ns = now;
        match read_line(text, now, precision) {
            Ok(Input::Skip) => {}
            Ok(input) => {
                ahead.hold(held_bytes(&input));
                if tx.send(input).is_err() {
                    // The sender stopped (a fatal answer): nothing more is wanted.
                    return Ok(bad);
                }
            }
            Err(e) => {
                say!("line {n}: {e}; skipped");
                bad += 1;
            }
        }
    }
}

/// Pushes stdin until it ends and everything read is taken (or refused as bad), or until
/// the server refuses everything (a wrong token, URL or path).
pub async fn run(args: PushArgs) -> Summary {
    let mut summary = Summary::default();
    let sender = match Sender::new(&args) {
        Ok(s) => s,
        Err(e) => {
            summary.stopped = Some(e);
            return summary;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Input>();
    let precision = args.precision;
    let ahead = std::sync::Arc::new(ReadAhead::new(MAX_PENDING_BYTES));
    // std's stdin in a thread of its own: a blocking read, which waits while the read-ahead
    // is full.
    let reader = std::thread::spawn({
        let ahead = ahead.clone();
        move || read_stdin(tx, &ahead, precision)
    });
    let mut pending = Pending::default();
    let take = |pending: &mut Pending, input: Input| {
        ahead.release(held_bytes(&input));
        add(pending, input);
    };
    loop {
        // Wait for something, then take whatever else is already there: batches follow the
        // input's pace (one point a second goes out at once; a flood goes out in big ones).
        if pending.len() == 0 {
            match rx.recv().await {
                Some(input) => take(&mut pending, input),
                None => break,
            }
        }
        while !pending.full() {
            match rx.try_recv() {
                Ok(input) => take(&mut pending, input),
                Err(_) => break,
            }
        }
        let batch = std::mem::take(&mut pending);
        match sender.send(batch).await {
            Ok((sent, refused)) => {
                summary.sent += sent;
                summary.refused += refused;
            }
            Err(fatal) => {
                // Not waiting for the reader: it may sit in a read of a quiet stdin for
                // hours. Exiting closes the pipe, which the producer sees.
                summary.stopped = Some(fatal);
                return summary;
            }
        }
    }
    match reader.join() {
        Ok(Ok(bad)) => summary.bad_lines = bad,
        Ok(Err(e)) => {
            summary.stopped.get_or_insert(e);
        }
        Err(_) => {
            summary
                .stopped
                .get_or_insert("the stdin reader failed".into());
        }
    }
    summary
}

fn add(pending: &mut Pending, input: Input) {
    match input {
        Input::Point(p) => {
            pending.points.push(p);
            pending.bytes += 48;
        }
        Input::Line(l) => {
            pending.bytes += l.len() + 1;
            pending.lines.push(l);
        }
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
    /// Bad data (the whole request is refused, as the server takes requests whole).
    Refused(String),
    /// Every request would get this answer (credentials, address, a redirect): stop.
    Fatal(String),
    Retry(String),
    /// The request took too long (the server's 408, or our own timeout): on a slow link a
    /// smaller one goes through where sending the same again never would.
    TooSlow(String),
}

/// Items of one kind, sent as one request.
#[derive(Clone, Copy)]
enum Items<'a> {
    Points(&'a [Point]),
    Lines(&'a [String]),
}

impl Items<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Points(p) => p.len(),
            Self::Lines(l) => l.len(),
        }
    }

    fn halves(self) -> (Self, Self) {
        let mid = self.len() / 2;
        match self {
            Self::Points(p) => (Items::Points(&p[..mid]), Items::Points(&p[mid..])),
            Self::Lines(l) => (Items::Lines(&l[..mid]), Items::Lines(&l[mid..])),
        }
    }
}

impl Sender {
    fn new(args: &PushArgs) -> Result<Self, String> {
        let url =
            reqwest::Url::parse(&args.url).map_err(|e| format!("--url {:?}: {e}", args.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "--url {:?}: expected http://host[:port] or https://…",
                args.url
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirect would turn the POST into a GET without the points: say so instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        // Checked here, or every point would be refused alone, one request and one line of
        // stderr each.
        crate::model::SeriesKey::with_labels(args.series.as_str(), args.labels.iter().cloned())
            .map_err(|e| format!("--series/--label: {e}"))?;
        Ok(Self {
            client,
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token.clone(),
            series: args.series.clone(),
            labels: args.labels.iter().cloned().collect(),
        })
    }

    /// Sends a batch until it is taken, refused or the server refuses everything:
    /// (items sent, items refused), or the fatal reason.
    async fn send(&self, batch: Pending) -> Result<(usize, usize), String> {
        let mut result = (0, 0);
        for items in [Items::Points(&batch.points), Items::Lines(&batch.lines)] {
            if items.len() > 0 {
                let (sent, refused) = self.deliver(items).await?;
                result.0 += sent;
                result.1 += refused;
            }
        }
        Ok(result)
    }

    /// Sends `items` until taken. A refused request of several items is split in two and
    /// each half sent again, down to the single bad items: one bad line does not take good
    /// ones with it, and a batch too large for the server goes in smaller requests.
    async fn deliver(&self, items: Items<'_>) -> Result<(usize, usize), String> {
        let mut stack = vec![items];
        let (mut sent, mut refused) = (0, 0);
        while let Some(items) = stack.pop() {
            match self.until_answered(&items).await {
                Outcome::Taken => sent += items.len(),
                Outcome::Refused(_) | Outcome::TooSlow(_) if items.len() > 1 => {
                    let (a, b) = items.halves();
                    stack.push(b);
                    stack.push(a);
                }
                Outcome::Refused(why) => {
                    say!("the server refused a point: {why}");
                    refused += 1;
                }
                Outcome::Fatal(why) => return Err(why),
                Outcome::Retry(_) | Outcome::TooSlow(_) => unreachable!("until_answered retries"),
            }
        }
        Ok((sent, refused))
    }

    /// One request, retried with backoff while the server is away.
    async fn until_answered(&self, items: &Items<'_>) -> Outcome {
        let (path, content_type, body) = match items {
            Items::Points(points) => {
                let points: Vec<(i64, f64)> = points.iter().map(|p| (p.ts_ns, p.value)).collect();
                let body = serde_json::json!({
                    "series": self.series,
                    "labels": self.labels,
                    "points": points,
                })
                .to_string();
                ("/api/v1/points?precision=ns", "application/json", body)
            }
            Items::Lines(lines) => (
                "/write?precision=ns",
                "text/plain; charset=utf-8",
                lines.join("\n"),
            ),
        };
        let mut attempt = 0u32;
        loop {
            match self.attempt(path, content_type, body.clone()).await {
                Outcome::TooSlow(why) if items.len() > 1 => return Outcome::TooSlow(why),
                Outcome::Retry(why) | Outcome::TooSlow(why) => {
                    if attempt == 0 {
                        say!("{why}; holding the points and retrying");
                    }
                    let delay =
                        Duration::from_millis(crate::backoff::delay_ms(attempt, jitter()).into())
                            .min(MAX_RETRY_DELAY);
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
                other => {
                    if attempt > 0 {
                        say!("the server answers again");
                    }
                    return other;
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
            Err(e) if e.is_builder() => {
                Outcome::Fatal(format!("cannot send to {}: {e}", self.base))
            }
            Err(e) if e.is_timeout() => {
                Outcome::TooSlow(format!("{} took too long to answer: {e}", self.base))
            }
            Err(e) => Outcome::Retry(format!("cannot reach {}: {e}", self.base)),
            Ok(res) => {
                let status = res.status();
                if status.is_success() {
                    return Outcome::Taken;
                }
                let location = res
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_string);
                let text = res.text().await.unwrap_or_default();
                let why = format!("{status}: {}", text.trim());
                match status.as_u16() {
                    300..=399 => Outcome::Fatal(format!(
                        "{} redirects to {} (use that as --url)",
                        self.base,
                        location.unwrap_or_default()
                    )),
                    401 | 403 => Outcome::Fatal(format!("not allowed ({why}); check --token")),
                    404 | 405 => Outcome::Fatal(format!(
                        "{} is not a livechart server ({why}); check --url",
                        self.base
                    )),
                    408 => Outcome::TooSlow(why),
                    429 => Outcome::Retry(why),
                    400..=499 => Outcome::Refused(why),
                    _ => Outcome::Retry(why),
                }
            }
        }
    }
}

/// Uniform in [0, 1), from the clock: enough to spread retries of many pushers.
fn jitter() -> f64 {
    f64::from(now_ns().rem_euclid(1_000_003) as u32) / 1_000_003.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The reader waits while the read-ahead is full and goes on once a batch takes some; an
    /// item larger than the whole budget still goes, alone.
    #[test]
    fn read_ahead_waits_for_room() {
        let ahead = Arc::new(ReadAhead::new(100));
        ahead.hold(60);
        let (went, gone) = std::sync::mpsc::channel();
        let reader = {
            let ahead = ahead.clone();
            std::thread::spawn(move || {
                ahead.hold(60);
                went.send(()).unwrap();
            })
        };
        assert!(
            gone.recv_timeout(Duration::from_millis(200)).is_err(),
            "60 more bytes do not fit beside 60 of 100"
        );
        ahead.release(60);
        gone.recv_timeout(Duration::from_secs(30))
            .expect("room again: the reader goes on");
        reader.join().unwrap();
        ahead.release(60);
        ahead.hold(500);
        ahead.release(500);
    }
}

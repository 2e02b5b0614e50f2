//! The server's own figures: `GET /metrics` in the Prometheus text format, and the same
//! figures as livechart series (`livechart.*`), so a fresh install has something real to
//! chart and an operator sees the server in the tool they already watch.
//!
//! Counters are plain atomics bumped where things happen (ingest, the live sessions, the
//! store's commits); nothing is allocated per request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the commit latency histogram: from a memory append to a slow
/// fsync or a Redis round trip under load.
const COMMIT_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// How an ingest request ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// 2xx: stored.
    Accepted = 0,
    /// 4xx: refused as sent (bad input, auth, limits).
    Refused = 1,
    /// 5xx: the store could not take it; the sender should retry.
    Unavailable = 2,
}

const OUTCOMES: [&str; 3] = ["accepted", "refused", "unavailable"];

#[derive(Debug, Default)]
pub struct Metrics {
    ingest_requests: [AtomicU64; 3],
    ingest_points: AtomicU64,
    ws_open: AtomicI64,
    ws_opened: AtomicU64,
    ws_messages: AtomicU64,
    ws_bytes: AtomicU64,
    ws_slow_closes: AtomicU64,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    commit_count: AtomicU64,
    commit_nanos: AtomicU64,
}

impl Metrics {
    pub fn ingest_request(&self, outcome: Outcome) {
        self.ingest_requests[outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn ingest_points(&self, n: usize) {
        self.ingest_points.fetch_add(n as u64, Relaxed);
    }

    /// A commit that stored its points in `took`.
    pub fn commit(&self, took: Duration) {
        let secs = took.as_secs_f64();
        // The count first: a scrape in between then sees +Inf at least as high as a bucket.
        self.commit_count.fetch_add(1, Relaxed);
        self.commit_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        // Its own bucket only; a scrape adds them up. Raising every bucket above it, one by
        // one, let a scrape in between see a smaller bucket above a larger one.
        if let Some(i) = COMMIT_BUCKETS.iter().position(|bound| secs <= *bound) {
            self.commit_buckets[i].fetch_add(1, Relaxed);
        }
    }

    pub fn ws_opened(&self) {
        self.ws_open.fetch_add(1, Relaxed);
        self.ws_opened.fetch_add(1, Relaxed);
    }

    pub fn ws_closed(&self) {
        self.ws_open.fetch_sub(1, Relaxed);
    }

    pub fn ws_sent(&self, messages: usize, bytes: usize) {
        self.ws_messages.fetch_add(messages as u64, Relaxed);
        self.ws_bytes.fetch_add(bytes as u64, Relaxed);
    }

    pub fn ws_slow_close(&self) {
        self.ws_slow_closes.fetch_add(1, Relaxed);
    }

    /// The figures now, for rates between two looks.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            ingest_points: self.ingest_points.load(Relaxed),
            ingest_requests: self.ingest_requests.iter().map(|c| c.load(Relaxed)).sum(),
            ws_open: self.ws_open.load(Relaxed).max(0) as u64,
            ws_bytes: self.ws_bytes.load(Relaxed),
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, series: usize, read_cache_bytes: usize) -> String {
        let mut out = String::with_capacity(2_048);
        let mut counter = |name: &str, help: &str, kind: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: u64| vec![(String::new(), v.to_string())];
        counter(
            "livechart_ingest_requests_total",
            "Ingest requests by how they ended.",
            "counter",
            &OUTCOMES
                .iter()
                .zip(&self.ingest_requests)
                .map(|(o, c)| (format!("{{result=\"{o}\"}}"), c.load(Relaxed).to_string()))
                .collect::<Vec<_>>(),
        );
        counter(
            "livechart_ingest_points_total",
            "Points stored.",
            "counter",
            &plain(self.ingest_points.load(Relaxed)),
        );
        counter(
            "livechart_ws_connections_open",
            "Live connections open now.",
            "gauge",
            &plain(self.ws_open.load(Relaxed).max(0) as u64),
        );
        counter(
            "livechart_ws_connections_total",
            "Live connections opened.",
            "counter",
            &plain(self.ws_opened.load(Relaxed)),
        );
        counter(
            "livechart_ws_messages_sent_total",
            "WebSocket messages handed to connections (snapshots, deltas, control).",
            "counter",
            &plain(self.ws_messages.load(Relaxed)),
        );
        counter(
            "livechart_ws_bytes_sent_total",
            "WebSocket bytes sent, frame headers included.",
            "counter",
            &plain(self.ws_bytes.load(Relaxed)),
        );
        counter(
            "livechart_ws_slow_closes_total",
            "Live connections closed for not keeping up (close code 4008).",
            "counter",
            &plain(self.ws_slow_closes.load(Relaxed)),
        );
        counter(
            "livechart_series",
            "Series the live stream knows.",
            "gauge",
            &plain(series as u64),
        );
        counter(
            "livechart_store_read_cache_bytes",
            "Memory the store keeps to answer history reads again (rollup rows).",
            "gauge",
            &plain(read_cache_bytes as u64),
        );
        let mut below = 0u64;
        let mut lines: Vec<(String, String)> = COMMIT_BUCKETS
            .iter()
            .zip(&self.commit_buckets)
            .map(|(b, c)| {
                below += c.load(Relaxed);
                (format!("_bucket{{le=\"{b}\"}}"), below.to_string())
            })
            .collect();
        let count = self.commit_count.load(Relaxed).max(below);
        lines.push(("_bucket{le=\"+Inf\"}".into(), count.to_string()));
        lines.push((
            "_sum".into(),
            format!("{}", self.commit_nanos.load(Relaxed) as f64 / 1e9),
        ));
        lines.push(("_count".into(), count.to_string()));
        counter(
            "livechart_store_commit_seconds",
            "Time from handing a request's points to the store to their being stored.",
            "histogram",
            &lines,
        );
        out
    }
}

/// One open live connection, for as long as it lives.
pub struct OpenConnection(std::sync::Arc<Metrics>);

impl OpenConnection {
    pub fn new(metrics: std::sync::Arc<Metrics>) -> Self {
        metrics.ws_opened();
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.ws_closed();
    }
}

/// Counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub ingest_points: u64,
    pub ingest_requests: u64,
    pub ws_open: u64,
    pub ws_bytes: u64,
}

/// The `livechart.*` series for the span between two snapshots.
pub fn as_points(
    before: Snapshot,
    now: Snapshot,
    secs: f64,
    series: usize,
) -> Vec<(&'static str, f64)> {
    let rate = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / secs.max(1e-3);
    vec![
        (
            "livechart.ingest.points_per_s",
            rate(before.ingest_points, now.ingest_points),
        ),
        (
            "livechart.ingest.requests_per_s",
            rate(before.ingest_requests, now.ingest_requests),
        ),
        ("livechart.ws.connections", now.ws_open as f64),
        (
            "livechart.ws.bytes_per_s",
            rate(before.ws_bytes, now.ws_bytes),
        ),
        ("livechart.series", series as f64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.ingest_request(Outcome::Accepted);
        m.ingest_request(Outcome::Refused);
        m.ingest_points(5);
        m.commit(Duration::from_micros(700));
        m.commit(Duration::from_millis(30));
        m.ws_opened();
        m.ws_sent(2, 100);
        let text = m.render(3, 4096);
        for line in [
            "livechart_ingest_requests_total{result=\"accepted\"} 1",
            "livechart_ingest_requests_total{result=\"refused\"} 1",
            "livechart_ingest_points_total 5",
            "livechart_ws_connections_open 1",
            "livechart_ws_bytes_sent_total 100",
            "livechart_series 3",
            "livechart_store_read_cache_bytes 4096",
            "livechart_store_commit_seconds_bucket{le=\"0.0005\"} 0",
            "livechart_store_commit_seconds_bucket{le=\"0.001\"} 1",
            "livechart_store_commit_seconds_bucket{le=\"0.05\"} 2",
            "livechart_store_commit_seconds_bucket{le=\"+Inf\"} 2",
            "livechart_store_commit_seconds_count 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn rates_are_per_second_between_looks() {
        let before = Snapshot {
            ingest_points: 100,
            ..Snapshot::default()
        };
        let now = Snapshot {
            ingest_points: 600,
            ws_open: 2,
            ..Snapshot::default()
        };
        let pts = as_points(before, now, 10.0, 4);
        assert!(pts.contains(&("livechart.ingest.points_per_s", 50.0)));
        assert!(pts.contains(&("livechart.ws.connections", 2.0)));
        assert!(pts.contains(&("livechart.series", 4.0)));
    }
}

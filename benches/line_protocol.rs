//! Line protocol parser throughput, single-threaded, against InfluxDB IOx's own parser
//! (`influxdb-line-protocol`) on the same input in the same run.
//!
//! Input: Telegraf-shaped lines (cpu, mem, disk, net plugins: 1–3 tags, 3–8 fields, float,
//! integer and unsigned fields, nanosecond timestamps). Both parsers validate UTF-8 and every
//! field value is consumed, so neither can skip work. Runs alternate between the parsers to
//! spread machine noise evenly; the report gives medians and the ratio.
//!
//! A third row, the floor, finds the same tokens and reads the same numbers but checks and
//! builds nothing: the target (10 M lines/s) is measured against what this machine can do
//! at all on these lines, not only against another parser.
//!
//! Run with `make bench`; prints a Markdown section.

use std::hint::black_box;
use std::time::{Duration, Instant};

use livechart::parse::line_protocol::{self, FieldValue, Precision};

const LINES: usize = 200_000;
const RUNS: usize = 15;

fn telegraf_body() -> String {
    let mut body = String::new();
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..LINES {
        ts += 10_000_000;
        let host = format!("server-{:02}", i % 16);
        let r = rnd();
        let f = |k: u64| (k % 10_000) as f64 / 100.0;
        match i % 4 {
            0 => body.push_str(&format!(
                "cpu,cpu=cpu{},host={host} usage_user={},usage_system={},usage_idle={},usage_iowait={},usage_steal=0,usage_guest=0 {ts}\n",
                r % 8, f(r), f(r >> 8), f(r >> 16), f(r >> 24)
            )),
            1 => body.push_str(&format!(
                "mem,host={host} used={}i,free={}i,cached={}i,used_percent={} {ts}\n",
                r % 1_000_000_000, (r >> 4) % 1_000_000_000, (r >> 8) % 1_000_000_000, f(r)
            )),
            2 => body.push_str(&format!(
                "disk,device=sda1,fstype=ext4,host={host} free={}u,used={}u,used_percent={},inodes_free={}u {ts}\n",
                r % 1_000_000_000_000, (r >> 3) % 1_000_000_000_000, f(r >> 5), r % 10_000_000
            )),
            _ => body.push_str(&format!(
                "net,host={host},interface=eth0 bytes_sent={}i,bytes_recv={}i,packets_sent={}i,packets_recv={}i,err_in=0i,err_out=0i,drop_in=0i,drop_out=0i {ts}\n",
                r % 1_000_000_000, (r >> 2) % 1_000_000_000, r % 1_000_000, (r >> 1) % 1_000_000
            )),
        }
    }
    body
}

fn ours(body: &[u8]) -> (usize, f64) {
    let mut lines = 0;
    let mut sum = 0.0;
    line_protocol::parse(
        body,
        line_protocol::Options::new(Precision::Nanoseconds),
        |_, line| {
            lines += 1;
            for (_, v) in &line.fields {
                sum += v.as_f64().unwrap_or(0.0);
            }
            sum += line.timestamp.unwrap_or(0) as f64 + line.tags.len() as f64;
        },
    )
    .expect("benchmark input is valid");
    (lines, sum)
}

fn iox(body: &[u8]) -> (usize, f64) {
    use influxdb_line_protocol::FieldValue as F;
    let text = std::str::from_utf8(body).expect("benchmark input is UTF-8");
    let mut lines = 0;
    let mut sum = 0.0;
    for line in influxdb_line_protocol::parse_lines(text) {
        let line = line.expect("benchmark input is valid");
        lines += 1;
        for (_, v) in &line.field_set {
            sum += match v {
                F::F64(f) => *f,
                F::I64(i) => *i as f64,
                F::U64(u) => *u as f64,
                F::Boolean(b) => f64::from(u8::from(*b)),
                F::String(_) => 0.0,
            };
        }
        sum += line.timestamp.unwrap_or(0) as f64
            + line.series.tag_set.as_ref().map_or(0, |t| t.len()) as f64;
    }
    (lines, sum)
}

/// The least any parser of these lines must do, as a yardstick for the target: find each
/// line, token and number and add up the values, with the separator scan and number reader
/// livechart uses. It checks nothing (no UTF-8, escapes, quotes, duplicates or errors; it
/// would panic on other input) and builds nothing. Not a usable parser: it shows how close to
/// the floor livechart is on this machine.
fn floor(body: &[u8]) -> (usize, f64) {
    use livechart::parse::number::{field_value, timestamp, Number};
    use livechart::parse::separators::Separators;
    let (mut lines, mut sum, mut start) = (0, 0.0, 0);
    let mut seps = Separators::new(body);
    while start < body.len() {
        let mut i = seps.next_stop();
        let mut tags = 0;
        while body[i] == b',' {
            seps.next_stop();
            i = seps.next_stop();
            tags += 1;
        }
        loop {
            let eq = seps.next_stop();
            i = seps.next_stop();
            let (n, _) = field_value(&body[eq + 1..i]).expect("benchmark input is valid");
            sum += match n {
                Number::Float(v) => v,
                Number::Int(v) => v as f64,
                Number::UInt(v) => v as f64,
            };
            if body[i] != b',' {
                break;
            }
        }
        let end = seps.next_stop();
        let ts = timestamp(&body[i + 1..end]).expect("benchmark input is valid");
        sum += ts as f64 + f64::from(tags);
        lines += 1;
        start = end + 1;
    }
    (lines, sum)
}

/// A hostile body within the default limits: 1 MiB of lines just under the 64 KiB line
/// limit, each of about 7 000 distinct fields. Duplicate-key checks that compare each key
/// with every earlier one are quadratic in the keys per line; this times the worst case,
/// on the fast path and (with an escape in the measurement) on the byte-by-byte parser.
fn wide_body(measurement: &str) -> String {
    let fields: Vec<String> = (0..7_000).map(|i| format!("f{i}=1")).collect();
    let line = format!("{measurement} {}\n", fields.join(","));
    assert!(line.len() < line_protocol::MAX_LINE_BYTES);
    line.repeat(1024 * 1024 / line.len())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let body = telegraf_body();
    let bytes = body.as_bytes();
    let (n_ours, sum_ours) = ours(bytes);
    let (n_iox, sum_iox) = iox(bytes);
    let (n_floor, sum_floor) = floor(bytes);
    assert_eq!(n_ours, LINES);
    assert_eq!(n_iox, LINES);
    assert_eq!(n_floor, LINES);
    assert!(
        (sum_ours - sum_floor).abs() <= sum_floor.abs() * 1e-9,
        "the floor reads the same values"
    );
    assert!(
        (sum_ours - sum_iox).abs() <= sum_iox.abs() * 1e-9,
        "both parsers read the same values"
    );
    // Keep the field-value enum in use so the comparison covers all its kinds.
    black_box(FieldValue::Bool(true));

    // For profiling: `LIVECHART_BENCH_PROFILE=200` parses with livechart only, that many times.
    if let Some(n) = std::env::var("LIVECHART_BENCH_PROFILE")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let times = (0..n)
            .map(|_| {
                let t = Instant::now();
                black_box(ours(black_box(bytes)));
                t.elapsed()
            })
            .collect();
        println!("median {:.2} ms", median(times).as_secs_f64() * 1e3);
        return;
    }
    let (mut t_ours, mut t_iox, mut t_floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        black_box(ours(black_box(bytes)));
        t_ours.push(t.elapsed());
        let t = Instant::now();
        black_box(iox(black_box(bytes)));
        t_iox.push(t.elapsed());
        let t = Instant::now();
        black_box(floor(black_box(bytes)));
        t_floor.push(t.elapsed());
    }
    let (m_ours, m_iox, m_floor) = (median(t_ours), median(t_iox), median(t_floor));
    let rate = |d: Duration| LINES as f64 / d.as_secs_f64();
    let mb = |d: Duration| bytes.len() as f64 / d.as_secs_f64() / 1e6;
    println!("### Line protocol parser, one core\n");
    println!(
        "{LINES} Telegraf-shaped lines ({:.1} MB, {:.0} bytes/line average), median of {RUNS} alternating runs.\n",
        bytes.len() as f64 / 1e6,
        bytes.len() as f64 / LINES as f64
    );
    println!("| parser | median time | lines/s | MB/s |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| livechart `parse::line_protocol` | {:.1} ms | {:.2} M | {:.0} |",
        m_ours.as_secs_f64() * 1e3,
        rate(m_ours) / 1e6,
        mb(m_ours)
    );
    println!(
        "| influxdb-line-protocol 2.0 (IOx) | {:.1} ms | {:.2} M | {:.0} |",
        m_iox.as_secs_f64() * 1e3,
        rate(m_iox) / 1e6,
        mb(m_iox)
    );
    println!(
        "| floor: finds tokens and reads numbers, checks nothing (not a parser) | {:.1} ms | {:.2} M | {:.0} |",
        m_floor.as_secs_f64() * 1e3,
        rate(m_floor) / 1e6,
        mb(m_floor)
    );
    for (measurement, path) in [("m", "fast path"), ("m\\ x", "escaped, byte by byte")] {
        let wide = wide_body(measurement);
        let time = median(
            (0..RUNS)
                .map(|_| {
                    let t = Instant::now();
                    black_box(ours(black_box(wide.as_bytes())));
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "| livechart, worst case ({path}): a {:.1} MB body of {} lines of 7 000 fields | {:.1} ms | | {:.0} |",
            wide.len() as f64 / 1e6,
            wide.lines().count(),
            time.as_secs_f64() * 1e3,
            wide.len() as f64 / time.as_secs_f64() / 1e6
        );
    }
    println!(
        "\nRatio livechart / IOx: **{:.2}×** lines/s. livechart takes **{:.2}×** the floor's time: \
         the rest is UTF-8 validation, escapes, quoted strings, duplicate keys, error reporting \
         and the parsed line it hands on.",
        rate(m_ours) / rate(m_iox),
        m_ours.as_secs_f64() / m_floor.as_secs_f64()
    );
}

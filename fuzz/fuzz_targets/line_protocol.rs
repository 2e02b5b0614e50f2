//! Any bytes through the line protocol parser and the endpoint's conversion: no panic, every
//! line handed out has a measurement and at least one field, and the fast path for plain
//! lines agrees with the full parser on each line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechart::parse::line_protocol::{self, Options, Precision, MAX_LINE_BYTES};
use livechart::server::ingest::influx;

fuzz_target!(|data: &[u8]| {
    let options = Options {
        max_errors: 10,
        ..Options::new(Precision::Nanoseconds)
    };
    let _ = line_protocol::parse(data, options, |_, line| {
        assert!(!line.measurement.is_empty());
        assert!(!line.fields.is_empty());
    });
    if let Ok(text) = std::str::from_utf8(data) {
        // Without quotes, lines are split at every newline, so each can be parsed alone.
        if !text.contains('"') {
            for raw in text.split('\n') {
                let untrimmed = raw.strip_suffix('\r').unwrap_or(raw);
                let line = untrimmed.trim_start_matches([' ', '\t']);
                // The length limit counts leading blanks too.
                if line.is_empty() || line.starts_with('#') || untrimmed.len() > MAX_LINE_BYTES {
                    continue;
                }
                let mut fast = None;
                let through_parse = line_protocol::parse(
                    raw.as_bytes(),
                    Options::new(Precision::Seconds),
                    |_, l| fast = Some(l.clone()),
                );
                match (through_parse, line_protocol::parse_line(line, Precision::Seconds)) {
                    (Ok(()), Ok(full)) => assert_eq!(fast, Some(full), "{line:?}"),
                    (Err(_), Err(_)) => {}
                    (a, b) => panic!("{line:?}: parse says {a:?}, parse_line {b:?}"),
                }
            }
        }
    }
    let cache = livechart::server::ingest::key_cache::KeyCache::new(64);
    for precision in [Precision::Seconds, Precision::Hours] {
        let _ = influx::to_batch(
            data,
            Options::new(precision),
            0,
            influx::BatchLimits::unbounded(),
            &cache,
        );
    }
});

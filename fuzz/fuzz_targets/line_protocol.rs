//! Any bytes through the line protocol parser and the endpoint's conversion: no panic, and
//! every line handed out has a measurement and at least one field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechart::parse::line_protocol::{self, Options, Precision};
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

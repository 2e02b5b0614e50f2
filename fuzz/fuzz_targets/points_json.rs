//! Any bytes through the batch JSON and NDJSON parsers: no panic; a success holds only finite
//! values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechart::parse::points_json;
use livechart::parse::timestamp::Precision;

fuzz_target!(|data: &[u8]| {
    for precision in [Precision::Milliseconds, Precision::Seconds] {
        for parsed in [
            points_json::parse_document(data, precision, 0, 10),
            points_json::parse_ndjson(data, precision, 0, 10),
        ] {
            if let Ok(batch) = parsed {
                assert!(batch.iter().all(|(_, pts)| pts.iter().all(|p| p.value.is_finite())));
            }
        }
    }
});

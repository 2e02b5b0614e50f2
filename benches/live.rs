//! The live feed's wire cost: bytes per point of binary delta frames against the JSON message
//! the first version sent for the same points (`{"type":"points","series":[…]}`), for the
//! shapes live charts see. Deterministic (no timing), so one run is the figure.
//!
//! Run with `make bench`; prints a Markdown section.

use livechart::model::{Point, SeriesKey, SeriesPoints};
use livechart::protocol::{Delta, DeltaSeries};

struct Shape {
    name: &'static str,
    series: usize,
    /// Points per series in one frame.
    per_frame: usize,
    interval_ns: i64,
    value: fn(usize, i64) -> f64,
}

fn main() {
    // A deterministic xorshift for noise.
    fn noise(n: i64) -> f64 {
        let mut x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
    let shapes = [
        Shape {
            name: "one sensor at 1 Hz, a frame per point (temperature in hundredths)",
            series: 1,
            per_frame: 1,
            interval_ns: 1_000_000_000,
            value: |_, n| 21.0 + ((n % 37) as f64) / 100.0,
        },
        Shape {
            name: "ten sensors at 10 Hz, coalesced at 60 frames/s (values to 2 decimals)",
            series: 10,
            per_frame: 1,
            interval_ns: 100_000_000,
            value: |s, n| ((s as i64 * 1_000 + n * 7) % 10_000) as f64 / 100.0,
        },
        Shape {
            name: "one 1 kHz series, coalesced at 60 frames/s (full-precision noise)",
            series: 1,
            per_frame: 17,
            interval_ns: 1_000_000,
            value: |_, n| noise(n),
        },
        Shape {
            name: "a 1 kHz counter, coalesced at 60 frames/s (integers)",
            series: 1,
            per_frame: 17,
            interval_ns: 1_000_000,
            value: |_, n| (n * 3) as f64,
        },
    ];
    const FRAMES: usize = 1_000;
    println!("### Live feed: bytes per point on the wire\n");
    println!(
        "{FRAMES} frames per shape; binary delta frames (`src/protocol.rs`, timestamps as deltas of \
         deltas) against the JSON the first version sent for the same points.\n"
    );
    println!("| shape | points/frame | binary bytes/point | JSON bytes/point | JSON / binary |");
    println!("| --- | --- | --- | --- | --- |");
    let t0 = 1_764_230_400_000_000_000i64;
    for shape in &shapes {
        let (mut binary, mut json, mut points) = (0usize, 0usize, 0usize);
        for f in 0..FRAMES {
            let mut delta = Delta::default();
            let mut legacy = Vec::new();
            for s in 0..shape.series {
                let pts: Vec<Point> = (0..shape.per_frame)
                    .map(|i| {
                        let n = (f * shape.per_frame + i) as i64;
                        Point::new(t0 + n * shape.interval_ns, (shape.value)(s, n)).expect("finite")
                    })
                    .collect();
                let first = (f * shape.per_frame) as i64;
                delta.series.push(DeltaSeries {
                    id: s as u32,
                    first_offset: first,
                    last_offset: first + pts.len() as i64 - 1,
                    points: pts.clone(),
                });
                legacy.push(SeriesPoints {
                    series: SeriesKey::with_labels("sensor.temp", [("host", format!("h{s}"))])
                        .expect("valid"),
                    points: pts,
                });
                points += shape.per_frame;
            }
            binary += delta.encode().len();
            json += serde_json::json!({"type": "points", "series": legacy})
                .to_string()
                .len();
        }
        let (b, j) = (binary as f64 / points as f64, json as f64 / points as f64);
        println!(
            "| {} | {} | {b:.1} | {j:.1} | {:.1}× |",
            shape.name,
            shape.series * shape.per_frame,
            j / b
        );
    }
    println!(
        "\nA frame also costs the WebSocket header (2–4 bytes from the server). Offsets ride \
         along in each entry, so a client can resume exactly."
    );
}

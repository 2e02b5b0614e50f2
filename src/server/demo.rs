//! The demo feed behind `--demo`: a sine wave and a random walk, five points a second each, so
//! the first screen after `make run` is alive. It pushes through the same ingest path as any
//! client.

use super::ingest::{accept, now_ns};
use super::AppState;
use crate::model::{Batch, Point, SeriesKey};
use std::time::Duration;

const TICK: Duration = Duration::from_millis(200);
/// One full sine period every 20 s: visibly moving, several periods in the default window.
const SINE_PERIOD_SECS: f64 = 20.0;

pub async fn run(state: AppState) {
    let (Ok(sine), Ok(walk)) = (SeriesKey::new("demo.sine"), SeriesKey::new("demo.walk")) else {
        return;
    };
    let mut rng = XorShift(now_ns() as u64 | 1);
    let mut level = 50.0;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let now = now_ns();
        let secs = now as f64 / 1e9;
        level = (level + (rng.unit() - 0.5) * 4.0).clamp(0.0, 100.0);
        let wave = 50.0 + 40.0 * (secs * std::f64::consts::TAU / SINE_PERIOD_SECS).sin();
        let mut batch = Batch::new();
        for (key, v) in [(&sine, wave), (&walk, level)] {
            if let Ok(p) = Point::new(now, v) {
                batch.push(key.clone(), p);
            }
        }
        if let Err(e) = accept(&state, batch).await {
            tracing::warn!(error = %e, "demo feed point refused");
        }
    }
}

/// A tiny PRNG: the demo needs wobble, not cryptography or another dependency.
struct XorShift(u64);

impl XorShift {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

//! Reconnect delays for the live feed: exponential with full jitter, so a restarted server is
//! not hit by every browser in the same millisecond.

/// First retry comes quickly: most drops are a server restart that is back within a second.
pub const BASE_DELAY_MS: f64 = 250.0;
/// Never wait longer than this; a user looking at a stalled chart should not wait minutes.
pub const MAX_DELAY_MS: f64 = 10_000.0;

/// Delay before reconnect attempt `attempt` (0-based). `unit_random` is uniform in [0, 1); the
/// delay is uniform in [cap/2, cap) where cap doubles per attempt up to [`MAX_DELAY_MS`].
pub fn delay_ms(attempt: u32, unit_random: f64) -> u32 {
    let cap = (BASE_DELAY_MS * 2f64.powi(attempt.min(16) as i32)).min(MAX_DELAY_MS);
    let r = unit_random.clamp(0.0, 1.0);
    (cap / 2.0 + cap / 2.0 * r) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_stays_jittered() {
        assert_eq!(delay_ms(0, 0.0), 125);
        assert_eq!(delay_ms(1, 0.0), 250);
        assert!(delay_ms(3, 0.999) < 2000);
        for attempt in 0..100 {
            for r in [0.0, 0.5, 0.999] {
                let d = delay_ms(attempt, r) as f64;
                assert!((BASE_DELAY_MS / 2.0..=MAX_DELAY_MS).contains(&d));
            }
        }
        assert_eq!(delay_ms(60, 0.0), 5000);
    }
}

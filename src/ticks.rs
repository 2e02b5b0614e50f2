//! Axis ticks a person can read: clock times on round minutes, hours or days in the viewer's
//! time zone, and values on 1-2-5 steps.
//!
//! Plotters would pick "nice" numbers of seconds since the epoch (ticks at 08:03:20 for an
//! hour's view), so the chart hands it these instead.

use crate::model::{NANOS_PER_MILLI, NANOS_PER_SEC};

const MINUTE_NS: i64 = 60 * NANOS_PER_SEC;
const HOUR_NS: i64 = 60 * MINUTE_NS;
const DAY_NS: i64 = 24 * HOUR_NS;

/// Steps a time axis may use, smallest first: the ones wall clocks and calendars make round.
const TIME_STEPS: [i64; 31] = [
    NANOS_PER_MILLI,
    2 * NANOS_PER_MILLI,
    5 * NANOS_PER_MILLI,
    10 * NANOS_PER_MILLI,
    20 * NANOS_PER_MILLI,
    50 * NANOS_PER_MILLI,
    100 * NANOS_PER_MILLI,
    200 * NANOS_PER_MILLI,
    500 * NANOS_PER_MILLI,
    NANOS_PER_SEC,
    2 * NANOS_PER_SEC,
    5 * NANOS_PER_SEC,
    10 * NANOS_PER_SEC,
    15 * NANOS_PER_SEC,
    30 * NANOS_PER_SEC,
    MINUTE_NS,
    2 * MINUTE_NS,
    5 * MINUTE_NS,
    10 * MINUTE_NS,
    15 * MINUTE_NS,
    30 * MINUTE_NS,
    HOUR_NS,
    2 * HOUR_NS,
    3 * HOUR_NS,
    6 * HOUR_NS,
    12 * HOUR_NS,
    DAY_NS,
    2 * DAY_NS,
    7 * DAY_NS,
    14 * DAY_NS,
    30 * DAY_NS,
];

/// Ticks for a time axis over `[from, to]` with at most `max_ticks` of them (at least one
/// step is always chosen), aligned to round local times. Returns the ticks and the step.
pub fn time_ticks(
    from_ns: i64,
    to_ns: i64,
    max_ticks: usize,
    utc_offset_minutes: i32,
) -> (Vec<i64>, i64) {
    let span = to_ns.saturating_sub(from_ns).max(1);
    let max_ticks = max_ticks.max(1) as i64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / s < max_ticks)
        .unwrap_or_else(|| {
            // Beyond a month per tick: whole multiples of 30 days.
            let months = span / (30 * DAY_NS) / max_ticks + 1;
            months * 30 * DAY_NS
        });
    let offset = i64::from(utc_offset_minutes) * MINUTE_NS;
    // Days and longer align to local midnight; shorter steps divide an hour, so local and UTC
    // alignment agree except for zones off by a fraction of an hour, which the offset covers.
    let local_from = from_ns.saturating_add(offset);
    let first = local_from.div_euclid(step).saturating_add(1) * step - offset;
    let first = if first - step >= from_ns {
        first - step
    } else {
        first
    };
    let mut ticks = Vec::new();
    let mut t = first;
    while t <= to_ns && ticks.len() < 1_000 {
        ticks.push(t);
        t = t.saturating_add(step);
    }
    (ticks, step)
}

/// The label of a time tick: as much of the time as the step needs to tell ticks apart.
/// Midnight ticks on views of a day or more name the date instead.
pub fn format_time_tick(ts_ns: i64, step_ns: i64, utc_offset_minutes: i32) -> String {
    let local = ts_ns.saturating_add(i64::from(utc_offset_minutes) * MINUTE_NS);
    let day = local.div_euclid(DAY_NS);
    let in_day = local.rem_euclid(DAY_NS);
    let (h, m) = (in_day / HOUR_NS, in_day / MINUTE_NS % 60);
    let s = in_day / NANOS_PER_SEC % 60;
    let ms = in_day / NANOS_PER_MILLI % 1000;
    if step_ns >= DAY_NS || (step_ns >= HOUR_NS && in_day == 0) {
        let (_, month, d) = civil_from_days(day);
        return format!("{} {d}", MONTHS[(month - 1) as usize]);
    }
    if step_ns >= MINUTE_NS {
        format!("{h:02}:{m:02}")
    } else if step_ns >= NANOS_PER_SEC {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}.{ms:03}")
    }
}

/// A moment in full, for the crosshair's tooltip: `2025-11-27 08:00:05.123` in local time.
pub fn format_instant(ts_ns: i64, utc_offset_minutes: i32) -> String {
    let local = ts_ns.saturating_add(i64::from(utc_offset_minutes) * MINUTE_NS);
    let (y, mo, d) = civil_from_days(local.div_euclid(DAY_NS));
    let in_day = local.rem_euclid(DAY_NS);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        in_day / HOUR_NS,
        in_day / MINUTE_NS % 60,
        in_day / NANOS_PER_SEC % 60,
        in_day / NANOS_PER_MILLI % 1000
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Ticks for a value axis over `[lo, hi]`: multiples of 1, 2 or 5 × 10ⁿ, at most `max_ticks`.
pub fn value_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return Vec::new();
    }
    let max_ticks = max_ticks.max(2);
    let raw = (hi - lo) / max_ticks as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| (hi - lo) / s <= max_ticks as f64)
        .unwrap_or(10.0 * magnitude);
    // A hair of tolerance, so 0.35 / 0.05 = 6.999999999999999 still ticks at 0.35.
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    // Round to the step's decimals, so ticks are 0.15, not 0.15000000000000002.
    let scale = 10f64.powi((2 - step.log10().floor() as i32).clamp(0, 300));
    let mut ticks = Vec::new();
    let mut i = first;
    while i <= last && ticks.len() <= max_ticks {
        let t = (i * step * scale).round() / scale;
        ticks.push(if t == 0.0 { 0.0 } else { t });
        i += 1.0;
    }
    ticks
}

/// Ticks for a logarithmic axis over `[lo, hi]` (both positive): powers of ten, with 2 and 5
/// between them when few decades are in view.
pub fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = (d1 - d0).max(1) as usize;
    let mantissas: &[f64] = if decades * 3 <= max_ticks {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let every = decades.div_ceil(max_ticks.max(1)).max(1);
    let mut ticks = Vec::new();
    for d in (d0..=d1).filter(|d| ((d - d0) as usize).is_multiple_of(every)) {
        for m in mantissas {
            let t = m * 10f64.powi(d);
            if (lo..=hi).contains(&t) {
                ticks.push(t);
            }
        }
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;
    /// 2025-11-27T08:00:05Z
    const T: i64 = 1_764_230_405 * S;

    #[test]
    fn an_hour_gets_round_minutes_in_local_time() {
        let (ticks, step) = time_ticks(T, T + 3600 * S, 8, 0);
        assert_eq!(step, 10 * 60 * S);
        assert_eq!(
            ticks
                .iter()
                .map(|&t| format_time_tick(t, step, 0))
                .collect::<Vec<_>>(),
            ["08:10", "08:20", "08:30", "08:40", "08:50", "09:00"]
        );
        // Half-hour zones still tick on round local times.
        let (ticks, step) = time_ticks(T, T + 3600 * S, 8, 330);
        assert_eq!(format_time_tick(ticks[0], step, 330), "13:40");
    }

    #[test]
    fn a_minute_gets_seconds_and_a_second_gets_milliseconds() {
        let (ticks, step) = time_ticks(T, T + 60 * S, 6, 0);
        assert_eq!(step, 15 * S);
        assert_eq!(format_time_tick(ticks[0], step, 0), "08:00:15");
        let (ticks, step) = time_ticks(T, T + S, 5, 0);
        assert_eq!(step, 500 * NANOS_PER_MILLI);
        assert_eq!(format_time_tick(ticks[0], step, 0), "00:05.000");
        assert_eq!(ticks.len(), 3);
    }

    #[test]
    fn days_are_named_by_date_at_local_midnight() {
        let (ticks, step) = time_ticks(T, T + 7 * 86_400 * S, 8, 60);
        assert_eq!(step, 86_400 * S);
        assert_eq!(format_time_tick(ticks[0], step, 60), "Nov 28");
        // The tick is at local (UTC+1) midnight.
        assert_eq!((ticks[0] + 3600 * S).rem_euclid(86_400 * S), 0);
        // A 24 h view ticks in hours, with the date at midnight.
        let (ticks, step) = time_ticks(T, T + 86_400 * S, 8, 0);
        assert_eq!(step, 6 * 3600 * S);
        let labels: Vec<_> = ticks
            .iter()
            .map(|&t| format_time_tick(t, step, 0))
            .collect();
        assert_eq!(labels, ["12:00", "18:00", "Nov 28", "06:00"]);
    }

    #[test]
    fn ticks_stay_inside_and_within_the_count() {
        for span in [S / 100, S, 60 * S, 3600 * S, 86_400 * S, 400 * 86_400 * S] {
            for max in [1, 2, 5, 12] {
                let (ticks, step) = time_ticks(T, T + span, max, -300);
                assert!(ticks.len() <= max.max(1), "{span} {max}: {}", ticks.len());
                assert!(ticks.iter().all(|&t| (T..=T + span).contains(&t)));
                assert!(ticks.windows(2).all(|w| w[1] - w[0] == step));
            }
        }
    }

    #[test]
    fn instants_in_full() {
        assert_eq!(
            format_instant(T + 123 * NANOS_PER_MILLI, 0),
            "2025-11-27 08:00:05.123"
        );
        assert_eq!(format_instant(T, -9 * 60), "2025-11-26 23:00:05.000");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn value_ticks_are_round() {
        assert_eq!(
            value_ticks(0.0, 100.0, 5),
            [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(value_ticks(-1.0, 1.0, 4), [-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(value_ticks(0.1, 0.35, 5), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
        assert!(value_ticks(1.0, 1.0, 5).is_empty());
        assert!(value_ticks(f64::NAN, 1.0, 5).is_empty());
        for (lo, hi) in [(3.7, 912.4), (-1e9, 1e9), (1e-6, 2e-6), (99.0, 101.0)] {
            let t = value_ticks(lo, hi, 6);
            assert!((2..=7).contains(&t.len()), "{lo}..{hi}: {t:?}");
            assert!(t.iter().all(|v| (lo..=hi).contains(v)));
        }
    }

    #[test]
    fn log_ticks_are_decades() {
        assert_eq!(
            log_ticks(1.0, 1000.0, 10),
            [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert_eq!(log_ticks(1.0, 1e6, 4), [1.0, 100.0, 10_000.0, 1e6]);
        assert!(log_ticks(-1.0, 10.0, 5).is_empty());
    }
}

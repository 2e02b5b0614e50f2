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
/// Past these, whole calendar months ([`MONTH_STEPS`]).
const TIME_STEPS: [i64; 30] = [
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
];

/// Calendar steps in months, ticking on the first of a month (January for a year or more).
const MONTH_STEPS: [i64; 10] = [1, 2, 3, 6, 12, 24, 60, 120, 240, 600];
/// A month's length as a step reports it (formatting only; ticks follow the calendar).
const MONTH_NS: i64 = 30 * DAY_NS;
/// The average month, for choosing a step.
const AVERAGE_MONTH_NS: i64 = 2_629_746 * NANOS_PER_SEC;

/// The viewer's time zone as an axis needs it: the offset from UTC at a given moment, which
/// daylight saving moves. The browser's `Date` answers for any moment; a fixed offset (`i32`
/// minutes) serves exports and tests.
pub trait Zone {
    /// Minutes east of UTC at `ts_ns`.
    fn offset_minutes(&self, ts_ns: i64) -> i32;

    /// `ts_ns` on the local wall clock, in nanoseconds since the local epoch.
    fn local(&self, ts_ns: i64) -> i64 {
        ts_ns.saturating_add(i64::from(self.offset_minutes(ts_ns)) * MINUTE_NS)
    }

    /// The moment the local wall clock shows `local_ns`. In an hour the clocks skip, the
    /// moment after the jump; in one they repeat, one of the two.
    fn moment(&self, local_ns: i64) -> i64 {
        let offset = |t: i64| i64::from(self.offset_minutes(t)) * MINUTE_NS;
        let guess = local_ns.saturating_sub(offset(local_ns));
        let t = local_ns.saturating_sub(offset(guess));
        if offset(t) == offset(guess) {
            t
        } else {
            local_ns.saturating_sub(offset(t))
        }
    }
}

impl Zone for i32 {
    fn offset_minutes(&self, _: i64) -> i32 {
        *self
    }
}

/// Ticks for a time axis over `[from, to]` with at most `max_ticks` of them (at least one
/// step is always chosen), on round local times: steps of an hour or more are counted on
/// the local wall clock (so a day tick stays on midnight across a daylight saving change),
/// months on the calendar. Returns the ticks and the step ([`MONTH_NS`] per month for
/// calendar steps).
pub fn time_ticks(from_ns: i64, to_ns: i64, max_ticks: usize, zone: &impl Zone) -> (Vec<i64>, i64) {
    let span = to_ns.saturating_sub(from_ns).max(1);
    let max_ticks = max_ticks.max(1) as i64;
    let Some(step) = TIME_STEPS.iter().copied().find(|s| span / s < max_ticks) else {
        let months = MONTH_STEPS
            .iter()
            .copied()
            .find(|m| span / (m * AVERAGE_MONTH_NS) < max_ticks)
            .unwrap_or(MONTH_STEPS[MONTH_STEPS.len() - 1]);
        return (month_ticks(from_ns, to_ns, months, zone), months * MONTH_NS);
    };
    let mut ticks = Vec::new();
    if step < HOUR_NS {
        // Steps that divide an hour: the same moments on any clock but a fractional zone's,
        // which the offset at the start covers.
        let offset = i64::from(zone.offset_minutes(from_ns)) * MINUTE_NS;
        let local_from = from_ns.saturating_add(offset);
        let mut t = local_from.div_euclid(step).saturating_mul(step) - offset;
        if t < from_ns {
            t = t.saturating_add(step);
        }
        while t <= to_ns && ticks.len() < 1_000 {
            ticks.push(t);
            t = t.saturating_add(step);
        }
    } else {
        let local_from = zone.local(from_ns);
        let mut local = local_from.div_euclid(step).saturating_mul(step);
        while ticks.len() < 1_000 {
            let t = zone.moment(local);
            if t > to_ns {
                break;
            }
            if t >= from_ns && ticks.last().is_none_or(|&last| t > last) {
                ticks.push(t);
            }
            local = local.saturating_add(step);
        }
    }
    (ticks, step)
}

/// Local midnights on the first of every `months`-th month in `[from, to]`.
fn month_ticks(from_ns: i64, to_ns: i64, months: i64, zone: &impl Zone) -> Vec<i64> {
    let (year, month, _) = civil_from_days(zone.local(from_ns).div_euclid(DAY_NS));
    // Months since year 0, rounded down to a multiple of the step.
    let mut index = (year * 12 + i64::from(month) - 1).div_euclid(months) * months;
    let mut ticks = Vec::new();
    while ticks.len() < 1_000 {
        let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
        let t = zone.moment(days_from_civil(y, m as u32, 1).saturating_mul(DAY_NS));
        if t > to_ns {
            break;
        }
        if t >= from_ns {
            ticks.push(t);
        }
        index += months;
    }
    ticks
}

/// The label of a time tick: as much of the time as the step needs to tell ticks apart.
/// Midnight ticks on views of a day or more name the date instead; month ticks name the
/// month and year, and ticks a year or more apart the year.
pub fn format_time_tick(ts_ns: i64, step_ns: i64, zone: &impl Zone) -> String {
    let local = zone.local(ts_ns);
    let day = local.div_euclid(DAY_NS);
    let in_day = local.rem_euclid(DAY_NS);
    let (h, m) = (in_day / HOUR_NS, in_day / MINUTE_NS % 60);
    let s = in_day / NANOS_PER_SEC % 60;
    let ms = in_day / NANOS_PER_MILLI % 1000;
    if step_ns >= MONTH_NS {
        let (y, month, _) = civil_from_days(day);
        return if step_ns >= 12 * MONTH_NS {
            format!("{y}")
        } else {
            format!("{} {y}", MONTHS[(month - 1) as usize])
        };
    }
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
pub fn format_instant(ts_ns: i64, zone: &impl Zone) -> String {
    let local = zone.local(ts_ns);
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

/// A value-axis label with the decimals its tick step needs, so neighbouring ticks never
/// read the same (`5.124e9` five times for a counter moving by 2e8): thousands and up with
/// k, M, G, T while the step needs at most three decimals of that unit, tiny values in
/// scientific form, the rest plain.
pub fn format_axis_value(v: f64, step: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let step = step.abs();
    let step = if step > 0.0 && step.is_finite() {
        step
    } else {
        v.abs()
    };
    // Decimals that show a multiple of `step` exactly (a hair of tolerance: log10(0.1) is
    // a bit under -1).
    let decimals = |step: f64| (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    let magnitude = v.abs();
    for (unit, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if magnitude >= unit {
            let d = decimals(step / unit);
            if d <= 3 {
                return format!("{:.*}{suffix}", d, v / unit);
            }
            break;
        }
    }
    let d = decimals(step);
    if d > 6 && magnitude < 1e-3 {
        // Significant digits down to the step's.
        let digits = (magnitude.log10().floor() - (step.log10() + 1e-9).floor()).max(0.0);
        return format!("{:.*e}", digits as usize, v);
    }
    format!("{:.*}", d.min(17), v)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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
        let (ticks, step) = time_ticks(T, T + 3600 * S, 8, &0);
        assert_eq!(step, 10 * 60 * S);
        assert_eq!(
            ticks
                .iter()
                .map(|&t| format_time_tick(t, step, &0))
                .collect::<Vec<_>>(),
            ["08:10", "08:20", "08:30", "08:40", "08:50", "09:00"]
        );
        // Half-hour zones still tick on round local times.
        let (ticks, step) = time_ticks(T, T + 3600 * S, 8, &330);
        assert_eq!(format_time_tick(ticks[0], step, &330), "13:40");
    }

    #[test]
    fn a_minute_gets_seconds_and_a_second_gets_milliseconds() {
        let (ticks, step) = time_ticks(T, T + 60 * S, 6, &0);
        assert_eq!(step, 15 * S);
        assert_eq!(format_time_tick(ticks[0], step, &0), "08:00:15");
        let (ticks, step) = time_ticks(T, T + S, 5, &0);
        assert_eq!(step, 500 * NANOS_PER_MILLI);
        assert_eq!(format_time_tick(ticks[0], step, &0), "00:05.000");
        assert_eq!(ticks.len(), 3);
    }

    #[test]
    fn days_are_named_by_date_at_local_midnight() {
        let (ticks, step) = time_ticks(T, T + 7 * 86_400 * S, 8, &60);
        assert_eq!(step, 86_400 * S);
        assert_eq!(format_time_tick(ticks[0], step, &60), "Nov 28");
        // The tick is at local (UTC+1) midnight.
        assert_eq!((ticks[0] + 3600 * S).rem_euclid(86_400 * S), 0);
        // A 24 h view ticks in hours, with the date at midnight.
        let (ticks, step) = time_ticks(T, T + 86_400 * S, 8, &0);
        assert_eq!(step, 6 * 3600 * S);
        let labels: Vec<_> = ticks
            .iter()
            .map(|&t| format_time_tick(t, step, &0))
            .collect();
        assert_eq!(labels, ["12:00", "18:00", "Nov 28", "06:00"]);
    }

    #[test]
    fn ticks_stay_inside_and_within_the_count() {
        for span in [S / 100, S, 60 * S, 3600 * S, 86_400 * S, 400 * 86_400 * S] {
            for max in [1, 2, 5, 12] {
                let (ticks, step) = time_ticks(T, T + span, max, &-300);
                assert!(ticks.len() <= max.max(1), "{span} {max}: {}", ticks.len());
                assert!(ticks.iter().all(|&t| (T..=T + span).contains(&t)));
                // Calendar months are 28 to 31 days long; the rest are even.
                let even = |d: i64| {
                    d == step
                        || step >= MONTH_NS && (d - step).abs() <= 3 * DAY_NS * (step / MONTH_NS)
                };
                assert!(
                    ticks.windows(2).all(|w| even(w[1] - w[0])),
                    "{span} {max}: {ticks:?}"
                );
            }
        }
    }

    #[test]
    fn instants_in_full() {
        assert_eq!(
            format_instant(T + 123 * NANOS_PER_MILLI, &0),
            "2025-11-27 08:00:05.123"
        );
        assert_eq!(format_instant(T, &(-9 * 60)), "2025-11-26 23:00:05.000");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    /// Central European time: UTC+1, UTC+2 from the last Sunday of March (01:00 UTC) to the
    /// last Sunday of October (01:00 UTC); 2025's dates.
    struct Berlin;
    const SUMMER_2025: (i64, i64) = (1_743_296_400 * S, 1_761_440_400 * S);
    impl Zone for Berlin {
        fn offset_minutes(&self, ts: i64) -> i32 {
            if (SUMMER_2025.0..SUMMER_2025.1).contains(&ts) {
                120
            } else {
                60
            }
        }
    }

    #[test]
    fn daylight_saving_moves_the_labels_with_the_clock() {
        // 2025-07-01 10:00 UTC is 12:00 in Berlin, whatever the offset is today.
        let july = 1_751_364_000 * S;
        assert_eq!(format_instant(july, &Berlin), "2025-07-01 12:00:00.000");
        let (ticks, step) = time_ticks(july, july + 3600 * S, 7, &Berlin);
        assert_eq!(format_time_tick(ticks[0], step, &Berlin), "12:00");
        // A week across the autumn change: every day tick on local midnight, named by date.
        let from = SUMMER_2025.1 - 3 * 86_400 * S;
        let (ticks, step) = time_ticks(from, from + 7 * 86_400 * S, 8, &Berlin);
        assert_eq!(step, 86_400 * S);
        let labels: Vec<String> = ticks
            .iter()
            .map(|&t| format_time_tick(t, step, &Berlin))
            .collect();
        assert_eq!(
            labels,
            ["Oct 24", "Oct 25", "Oct 26", "Oct 27", "Oct 28", "Oct 29", "Oct 30"]
        );
        assert!(ticks
            .iter()
            .all(|&t| Berlin.local(t).rem_euclid(86_400 * S) == 0));
        // The day the clocks go back has 25 hours.
        assert_eq!(ticks[3] - ticks[2], 25 * 3600 * S);
        // Six-hour ticks across it stay on 00, 06, 12, 18 local.
        let change = SUMMER_2025.1;
        let (ticks, step) = time_ticks(change - 18 * 3600 * S, change + 18 * 3600 * S, 8, &Berlin);
        assert_eq!(step, 6 * 3600 * S);
        assert!(ticks
            .iter()
            .all(|&t| Berlin.local(t).rem_euclid(6 * 3600 * S) == 0));
    }

    #[test]
    fn long_views_tick_on_months_and_name_the_year() {
        let jan_2025 = days_from_civil(2025, 1, 1) * 86_400 * S;
        let (ticks, step) = time_ticks(jan_2025 - 86_400 * S, jan_2025 + 364 * 86_400 * S, 6, &0);
        let labels: Vec<String> = ticks
            .iter()
            .map(|&t| format_time_tick(t, step, &0))
            .collect();
        assert_eq!(
            labels,
            ["Jan 2025", "Mar 2025", "May 2025", "Jul 2025", "Sep 2025", "Nov 2025"]
        );
        // Five years: one tick a year, named by it.
        let (ticks, step) = time_ticks(jan_2025, jan_2025 + 5 * 366 * 86_400 * S, 8, &0);
        let labels: Vec<String> = ticks
            .iter()
            .map(|&t| format_time_tick(t, step, &0))
            .collect();
        assert_eq!(labels, ["2025", "2026", "2027", "2028", "2029", "2030"]);
    }

    #[test]
    fn axis_values_differ_where_the_ticks_do() {
        let labels = |lo: f64, hi: f64| -> Vec<String> {
            let t = value_ticks(lo, hi, 6);
            let step = t[1] - t[0];
            t.iter().map(|&v| format_axis_value(v, step)).collect()
        };
        for (lo, hi) in [
            (5_123_456_789.0, 5_124_456_789.0),
            (1013.21, 1013.25),
            (1e12, 1e12 + 500.0),
            (0.00101, 0.00109),
            (1e-9, 2e-9),
            (-3.0, 3.0),
            (0.0, 100.0),
        ] {
            let l = labels(lo, hi);
            let mut unique = l.clone();
            unique.dedup();
            assert_eq!(unique.len(), l.len(), "{lo}..{hi}: {l:?}");
        }
        assert_eq!(labels(0.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(0.0, 5000.0)[1], "1k");
        assert_eq!(labels(1013.21, 1013.25)[0], "1013.21");
        assert_eq!(format_axis_value(5.2e9, 2e8), "5.2G");
        assert_eq!(format_axis_value(1.5e-9, 1e-10), "1.5e-9");
        assert_eq!(format_axis_value(-0.5, 0.5), "-0.5");
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

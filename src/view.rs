//! Chart view math that does not need a browser: axis ranges, label text, colours, the sliding
//! window. The WASM chart calls these; tests run them natively.

use crate::model::NANOS_PER_SEC;

/// What "live" shows unless the server says otherwise: the last minute, like the demo.
pub const DEFAULT_WINDOW_NS: i64 = 60 * NANOS_PER_SEC;

/// Line colours in legend order: distinct for the common colour-vision deficiencies (the
/// Okabe–Ito set, with black swapped for a dark grey that stays visible on the dark theme).
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (150, 150, 150),
];

pub fn series_color(index: usize) -> (u8, u8, u8) {
    PALETTE[index % PALETTE.len()]
}

/// A series' unit, from its `unit` label (`temp{room=lab,unit=°C}`): shown beside its values.
pub fn unit_of(key: &crate::model::SeriesKey) -> Option<&str> {
    key.labels().get("unit").map(String::as_str)
}

/// A value with its unit, as legends and tooltips show it.
pub fn format_with_unit(v: f64, unit: Option<&str>) -> String {
    match unit {
        Some("%") => format!("{}%", format_value(v)),
        Some(u) => format!("{} {u}", format_value(v)),
        None => format_value(v),
    }
}

pub fn css_color((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The y range to draw for data spanning `[min, max]`: 5 % headroom so lines never sit on the
/// frame, and a sensible band around a flat line instead of a zero-height axis.
pub fn y_range(min: f64, max: f64) -> (f64, f64) {
    if !(min.is_finite() && max.is_finite()) || min > max {
        return (0.0, 1.0);
    }
    if max - min < f64::EPSILON * max.abs().max(1.0) {
        // At least ±1 around ordinary values; a small value (1e-9) gets a band of its own
        // size, or its line would sit on an axis reading 0.
        let pad = match min.abs() {
            0.0 => 1.0,
            a if a < 1.0 => a * 0.1,
            a => (a * 0.1).max(1.0),
        };
        return (min - pad, max + pad);
    }
    let pad = (max - min) * 0.05;
    (min - pad, max + pad)
}

/// How far ahead of the server's clock the live window may reach to show a pusher whose clock
/// runs fast. Bounded, so one point stamped in the year 2100 cannot drag every chart there.
pub const MAX_AHEAD_NS: i64 = 5 * NANOS_PER_SEC;

/// The live window on the server's clock: it ends "now", or at the newest point when that is
/// slightly ahead (at most [`MAX_AHEAD_NS`]), and spans `span_ns`.
pub fn live_window(server_now_ns: i64, newest_ns: Option<i64>, span_ns: i64) -> (i64, i64) {
    let latest_allowed = server_now_ns.saturating_add(MAX_AHEAD_NS);
    let end = newest_ns.map_or(server_now_ns, |n| n.clamp(server_now_ns, latest_allowed));
    (end.saturating_sub(span_ns), end)
}

/// A value as a person reads it in a legend: at most four significant decimals, no trailing
/// zeros, scientific only for the very large or very small.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e9).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = if a >= 1000.0 {
        1
    } else if a >= 1.0 {
        3
    } else {
        4
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// How long ago a series last reported, for legend entries whose latest point is outside the
/// window: "12 s ago", "5 min ago", "3 h ago", "400 d ago".
pub fn format_age(age_ns: i64) -> String {
    let secs = (age_ns / NANOS_PER_SEC).max(0);
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7_199 => format!("{} min ago", secs / 60),
        7_200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// Segments per stroke when lines are wider than a device pixel. A software canvas strokes a
/// wide polyline as one outline, and the outline of a thousand columns of min/max zigzag
/// crosses itself everywhere: one 8 000-vertex 2 px stroke took 62 ms in headless Chromium,
/// the same vertices in strokes of 128 segments 13 ms (16 per stroke: 32 ms; 512: 32 ms).
pub const WIDE_STROKE_SEGMENTS: usize = 128;

/// The index ranges of a polyline of `len` points to stroke one by one, each at most
/// `segments` segments long. Each piece starts at the point before the last one's end, so
/// one segment is drawn twice and every vertex is inside some piece: every join is drawn,
/// and with an opaque colour the pixels are those of one stroke.
pub fn stroke_pieces(len: usize, segments: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = segments.max(2) - 1;
    (0..len.saturating_sub(1))
        .step_by(step)
        .map(move |start| {
            start
                ..start
                    .saturating_add(segments.max(2))
                    .saturating_add(1)
                    .min(len)
        })
        .take_while(move |r| r.start == 0 || r.start + 2 < len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_range_pads_and_handles_flat_lines() {
        assert_eq!(y_range(0.0, 100.0), (-5.0, 105.0));
        assert_eq!(y_range(5.0, 5.0), (4.0, 6.0));
        assert_eq!(y_range(1000.0, 1000.0), (900.0, 1100.0));
        assert_eq!(y_range(0.0, 0.0), (-1.0, 1.0));
        let (lo, hi) = y_range(1e-9, 1e-9);
        assert!(
            lo > 0.0 && hi < 2e-9 && lo < 1e-9 && hi > 1e-9,
            "{lo}..{hi}"
        );
        assert_eq!(y_range(f64::NAN, 1.0), (0.0, 1.0));
        assert_eq!(y_range(2.0, 1.0), (0.0, 1.0));
    }

    #[test]
    fn live_window_follows_now_or_newer_points() {
        assert_eq!(live_window(100, None, 10), (90, 100));
        assert_eq!(live_window(100, Some(50), 10), (90, 100));
        let now = 1_000 * NANOS_PER_SEC;
        let ahead = now + NANOS_PER_SEC;
        assert_eq!(live_window(now, Some(ahead), 10), (ahead - 10, ahead));
        let far = now + 3_000_000 * NANOS_PER_SEC;
        assert_eq!(live_window(now, Some(far), 10).1, now + MAX_AHEAD_NS);
    }

    #[test]
    fn values_read_well() {
        assert_eq!(format_value(1.5), "1.5");
        assert_eq!(format_value(21.0), "21");
        assert_eq!(format_value(12.345678), "12.346");
        assert_eq!(format_value(0.000123), "1.230e-4");
        assert_eq!(format_value(0.01234567), "0.0123");
        assert_eq!(format_value(12345.67), "12345.7");
        assert_eq!(format_value(-0.00001), "-1.000e-5");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-0.00004), "-4.000e-5");
        assert_eq!(format_value(2.5e12), "2.500e12");
    }

    #[test]
    fn units_follow_values() {
        let key = crate::model::SeriesKey::with_labels("t", [("unit", "°C")]).unwrap();
        assert_eq!(unit_of(&key), Some("°C"));
        assert_eq!(format_with_unit(21.5, unit_of(&key)), "21.5 °C");
        assert_eq!(format_with_unit(99.0, Some("%")), "99%");
        assert_eq!(format_with_unit(1.0, None), "1");
    }

    #[test]
    fn colours_cycle() {
        assert_eq!(css_color(series_color(0)), "#0072b2");
        assert_eq!(series_color(PALETTE.len()), series_color(0));
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(format_age(5 * NANOS_PER_SEC), "5 s ago");
        assert_eq!(format_age(300 * NANOS_PER_SEC), "5 min ago");
        assert_eq!(format_age(3 * 3600 * NANOS_PER_SEC), "3 h ago");
        assert_eq!(format_age(365 * 86_400 * NANOS_PER_SEC), "365 d ago");
        assert_eq!(format_age(-5), "0 s ago");
    }

    #[test]
    fn stroke_pieces_cover_every_segment_and_join() {
        for len in 0..400 {
            assert_eq!(
                stroke_pieces(len, usize::MAX).collect::<Vec<_>>(),
                (len >= 2).then_some(0..len).into_iter().collect::<Vec<_>>()
            );
            let pieces: Vec<_> = stroke_pieces(len, 128).collect();
            if len < 2 {
                assert!(pieces.len() <= 1, "{len}: {pieces:?}");
                continue;
            }
            assert_eq!(pieces.first().map(|r| r.start), Some(0));
            assert_eq!(pieces.last().map(|r| r.end), Some(len));
            for r in &pieces {
                assert!(r.len() >= 2 && r.len() <= 129, "{len}: {r:?}");
            }
            // Every join (an inner vertex with both its segments) lies inside one piece.
            for v in 1..len - 1 {
                assert!(
                    pieces.iter().any(|r| r.start < v && v + 1 < r.end),
                    "{len}: join {v} in none of {pieces:?}"
                );
            }
        }
    }
}

//! Where a chart looks in time, and how zoom, pan and selection move it.
//!
//! Pure so it is tested natively; the WASM chart turns wheel, drag, pinch and keys into these
//! calls. A viewport is either **live** (its end follows the newest data, only its span is
//! stored) or **paused** at a fixed end. Every gesture that moves the view pauses it, as in
//! Grafana: the user asked to look somewhere, and streaming data must not drag the view away.
//! [`Viewport::live`] returns.
//!
//! Positions along the plot are fractions (0 at the left edge, 1 at the right), so the math
//! does not care about pixels or device pixel ratios.

use crate::model::{NANOS_PER_MILLI, NANOS_PER_SEC};

/// Narrowest view: 10 ms. Pushed timestamps are rarely denser, and tick labels stop being
/// distinct below it.
pub const MIN_SPAN_NS: i64 = 10 * NANOS_PER_MILLI;
/// Widest view: about five years, well past any sensible retention.
pub const MAX_SPAN_NS: i64 = 5 * 365 * DAY_NS;
const MINUTE_NS: i64 = 60 * NANOS_PER_SEC;
const HOUR_NS: i64 = 60 * MINUTE_NS;
const DAY_NS: i64 = 24 * HOUR_NS;

/// The window presets users of every dashboard expect, in the order the toolbar shows them.
pub const PRESETS: [(&str, i64); 7] = [
    ("1m", MINUTE_NS),
    ("5m", 5 * MINUTE_NS),
    ("15m", 15 * MINUTE_NS),
    ("1h", HOUR_NS),
    ("6h", 6 * HOUR_NS),
    ("24h", DAY_NS),
    ("7d", 7 * DAY_NS),
];

/// One wheel notch or `+`/`-` key zooms by this factor: five notches halve the span about
/// twice, close to what uPlot and Grafana do.
pub const ZOOM_STEP: f64 = 1.25;
/// An arrow key pans by this share of the span.
pub const PAN_STEP: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewport {
    /// Width of the view in nanoseconds.
    pub span_ns: i64,
    /// `None`: live, ending at the newest data. `Some(t)`: paused, ending at `t`.
    pub paused_end: Option<i64>,
}

impl Default for Viewport {
    fn default() -> Self {
        Self::live(crate::view::DEFAULT_WINDOW_NS)
    }
}

impl Viewport {
    /// Following the newest data with `span_ns` in view.
    pub fn live(span_ns: i64) -> Self {
        Self {
            span_ns: clamp_span(span_ns),
            paused_end: None,
        }
    }

    /// A fixed range; spans outside the limits are widened or narrowed about its centre.
    pub fn paused(from_ns: i64, to_ns: i64) -> Self {
        let (from_ns, to_ns) = (from_ns.min(to_ns), from_ns.max(to_ns));
        let span = clamp_span(to_ns.saturating_sub(from_ns));
        let mid = from_ns / 2 + to_ns / 2;
        Self {
            span_ns: span,
            paused_end: Some(mid.saturating_add(span / 2)),
        }
    }

    pub fn is_live(&self) -> bool {
        self.paused_end.is_none()
    }

    /// The range shown when live data ends at `live_end_ns`.
    pub fn range(&self, live_end_ns: i64) -> (i64, i64) {
        let end = self.paused_end.unwrap_or(live_end_ns);
        (end.saturating_sub(self.span_ns), end)
    }

    /// Zooms by `factor` (below 1 zooms in) keeping the time under `anchor` (a fraction of the
    /// plot width) where it is. Pauses, and never reaches past the newest data.
    pub fn zoom(&self, factor: f64, anchor: f64, live_end_ns: i64) -> Self {
        let (from, _) = self.range(live_end_ns);
        let anchor = if anchor.is_finite() {
            anchor.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        let at = from.saturating_add((self.span_ns as f64 * anchor) as i64);
        let span = clamp_span((self.span_ns as f64 * factor) as i64);
        let new_from = at.saturating_sub((span as f64 * anchor) as i64);
        Self::bounded(new_from.saturating_add(span), span, live_end_ns)
    }

    /// Moves the view by `fraction` of its span (positive: later). Pauses.
    pub fn pan(&self, fraction: f64, live_end_ns: i64) -> Self {
        let (_, end) = self.range(live_end_ns);
        let fraction = if fraction.is_finite() { fraction } else { 0.0 };
        let shift = (self.span_ns as f64 * fraction) as i64;
        Self::bounded(end.saturating_add(shift), self.span_ns, live_end_ns)
    }

    /// Zooms to the part of the plot between two fractions (a drag selection). Pauses.
    pub fn select(&self, a: f64, b: f64, live_end_ns: i64) -> Self {
        let (from, _) = self.range(live_end_ns);
        let at = |f: f64| from.saturating_add((self.span_ns as f64 * f.clamp(0.0, 1.0)) as i64);
        let v = Self::paused(at(a.min(b)), at(a.max(b)));
        Self::bounded(v.paused_end.unwrap_or(live_end_ns), v.span_ns, live_end_ns)
    }

    /// The time under `fraction` of the plot width.
    pub fn time_at(&self, fraction: f64, live_end_ns: i64) -> i64 {
        let (from, _) = self.range(live_end_ns);
        from.saturating_add((self.span_ns as f64 * fraction) as i64)
    }

    /// Paused at `end`, except never past the newest data nor before the epoch.
    fn bounded(end: i64, span: i64, live_end_ns: i64) -> Self {
        let end = end.min(live_end_ns).max(span);
        Self {
            span_ns: span,
            paused_end: Some(end),
        }
    }
}

fn clamp_span(span: i64) -> i64 {
    span.clamp(MIN_SPAN_NS, MAX_SPAN_NS)
}

/// The preset name of a span ("5m"), or `None` for a custom one.
pub fn preset_name(span_ns: i64) -> Option<&'static str> {
    PRESETS.iter().find(|p| p.1 == span_ns).map(|p| p.0)
}

/// Reads a span as users write it: `90s`, `5m`, `1h`, `7d`, `250ms`, or bare seconds.
pub fn parse_span(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_ns = match unit {
        "ms" => NANOS_PER_MILLI,
        "" | "s" => NANOS_PER_SEC,
        "m" => MINUTE_NS,
        "h" => HOUR_NS,
        "d" => DAY_NS,
        "w" => 7 * DAY_NS,
        _ => return None,
    };
    let ns = n * unit_ns as f64;
    (ns.is_finite() && ns >= 1.0 && ns <= MAX_SPAN_NS as f64).then_some(clamp_span(ns as i64))
}

/// A span written the shortest way [`parse_span`] reads back.
pub fn format_span(span_ns: i64) -> String {
    for (unit, ns) in [
        ("d", DAY_NS),
        ("h", HOUR_NS),
        ("m", MINUTE_NS),
        ("s", NANOS_PER_SEC),
        ("ms", NANOS_PER_MILLI),
    ] {
        if span_ns >= ns && span_ns % ns == 0 {
            return format!("{}{unit}", span_ns / ns);
        }
    }
    format!("{}ms", span_ns / NANOS_PER_MILLI)
}

/// A span as a person reads it beside the presets after a zoom: `37.2 s`, `4.5 min`, `2 h`.
pub fn describe_span(span_ns: i64) -> String {
    let (n, unit) = if span_ns < NANOS_PER_SEC {
        (span_ns as f64 / NANOS_PER_MILLI as f64, "ms")
    } else if span_ns < 2 * MINUTE_NS {
        (span_ns as f64 / NANOS_PER_SEC as f64, "s")
    } else if span_ns < 2 * HOUR_NS {
        (span_ns as f64 / MINUTE_NS as f64, "min")
    } else if span_ns < 2 * DAY_NS {
        (span_ns as f64 / HOUR_NS as f64, "h")
    } else {
        (span_ns as f64 / DAY_NS as f64, "d")
    };
    let text = format!("{n:.1}");
    format!("{} {unit}", text.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = NANOS_PER_SEC;
    const NOW: i64 = 1_764_230_400 * S;

    #[test]
    fn live_follows_the_end_and_paused_stays() {
        let v = Viewport::live(60 * S);
        assert!(v.is_live());
        assert_eq!(v.range(NOW), (NOW - 60 * S, NOW));
        let p = Viewport::paused(NOW - 100 * S, NOW - 40 * S);
        assert_eq!(p.range(NOW + 999 * S), (NOW - 100 * S, NOW - 40 * S));
    }

    #[test]
    fn zoom_keeps_the_anchor_under_the_cursor() {
        let v = Viewport::live(100 * S);
        let before = v.time_at(0.25, NOW);
        let z = v.zoom(0.5, 0.25, NOW);
        assert!(!z.is_live());
        assert_eq!(z.span_ns, 50 * S);
        assert_eq!(z.time_at(0.25, NOW), before);
    }

    #[test]
    fn zoom_out_at_the_right_edge_stops_at_the_newest_data() {
        let z = Viewport::live(100 * S).zoom(2.0, 0.5, NOW);
        assert_eq!(z.span_ns, 200 * S);
        assert_eq!(z.range(NOW).1, NOW);
    }

    #[test]
    fn zoom_is_bounded_both_ways() {
        let tiny = Viewport::live(S).zoom(1e-12, 0.5, NOW);
        assert_eq!(tiny.span_ns, MIN_SPAN_NS);
        let huge = Viewport::live(S).zoom(1e30, 0.5, NOW);
        assert_eq!(huge.span_ns, MAX_SPAN_NS);
        let nan = Viewport::live(S).zoom(f64::NAN, f64::NAN, NOW);
        assert_eq!(nan.span_ns, S);
    }

    #[test]
    fn pan_moves_by_a_share_of_the_span_and_not_into_the_future() {
        let v = Viewport::live(100 * S);
        let back = v.pan(-0.5, NOW);
        assert_eq!(back.range(NOW), (NOW - 150 * S, NOW - 50 * S));
        assert!(!back.is_live());
        let forward = back.pan(5.0, NOW);
        assert_eq!(forward.range(NOW), (NOW - 100 * S, NOW));
        assert!(
            !forward.is_live(),
            "reaching the end does not resume live by itself"
        );
    }

    #[test]
    fn pan_never_goes_before_the_epoch() {
        let v = Viewport::paused(10 * S, 20 * S).pan(-100.0, NOW);
        assert_eq!(v.range(NOW), (0, 10 * S));
    }

    #[test]
    fn selection_zooms_to_the_dragged_part_in_either_direction() {
        let v = Viewport::live(100 * S);
        let a = v.select(0.8, 0.2, NOW);
        assert_eq!(a.range(NOW), (NOW - 80 * S, NOW - 20 * S));
        assert_eq!(a, v.select(0.2, 0.8, NOW));
        let click = v.select(0.5, 0.5, NOW);
        assert_eq!(click.span_ns, MIN_SPAN_NS);
    }

    #[test]
    fn spans_read_and_write_back() {
        assert_eq!(parse_span("5m"), Some(5 * 60 * S));
        assert_eq!(parse_span("90"), Some(90 * S));
        assert_eq!(parse_span("1.5h"), Some(5400 * S));
        assert_eq!(parse_span("250ms"), Some(250 * NANOS_PER_MILLI));
        assert_eq!(parse_span("2w"), Some(14 * DAY_NS));
        for bad in ["", "m", "5x", "-5m", "1e400d", "9999999d"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
        for (name, ns) in PRESETS {
            assert_eq!(format_span(ns), name.replace("24h", "1d"));
            assert_eq!(parse_span(&format_span(ns)), Some(ns));
        }
        assert_eq!(format_span(1500 * NANOS_PER_MILLI), "1500ms");
        assert_eq!(preset_name(5 * 60 * S), Some("5m"));
        assert_eq!(preset_name(7 * S), None);
    }

    #[test]
    fn spans_described_for_people() {
        assert_eq!(describe_span(37_200 * NANOS_PER_MILLI), "37.2 s");
        assert_eq!(describe_span(270 * S), "4.5 min");
        assert_eq!(describe_span(2 * 3600 * S), "2 h");
        assert_eq!(describe_span(250 * NANOS_PER_MILLI), "250 ms");
        assert_eq!(describe_span(3 * DAY_NS), "3 d");
    }

    proptest! {
        #[test]
        fn views_stay_inside_their_bounds(
            span in 1i64..(10 * 365 * DAY_NS),
            factor in 0.001f64..1000.0,
            anchor in -1.0f64..2.0,
            shift in -50.0f64..50.0,
        ) {
            for v in [
                Viewport::live(span).zoom(factor, anchor, NOW),
                Viewport::live(span).pan(shift, NOW),
                Viewport::live(span).zoom(factor, anchor, NOW).pan(shift, NOW),
            ] {
                let (from, to) = v.range(NOW);
                prop_assert!((MIN_SPAN_NS..=MAX_SPAN_NS).contains(&v.span_ns));
                prop_assert!(to <= NOW);
                prop_assert!(from >= 0);
                prop_assert_eq!(to - from, v.span_ns);
            }
        }

        #[test]
        fn zoom_in_then_out_about_one_point_comes_back(
            span in (MIN_SPAN_NS * 100)..(365 * DAY_NS),
            anchor in 0.0f64..1.0,
        ) {
            let v = Viewport::paused(NOW - 2 * span, NOW - span);
            let back = v.zoom(0.5, anchor, NOW).zoom(2.0, anchor, NOW);
            let (a, b) = (v.range(NOW), back.range(NOW));
            // Float rounding of the anchor time: within a few nanoseconds per step.
            prop_assert!((a.0 - b.0).abs() <= 4 && (a.1 - b.1).abs() <= 4, "{:?} vs {:?}", a, b);
        }
    }
}

//! The dashboard's layout in the page address, so a link reproduces the view.
//!
//! Each chart `i` is a handful of query parameters with the prefix `c{i}.`:
//!
//! | key | meaning |
//! | --- | --- |
//! | `c0.s` | repeatable: a series shown, as the legend writes it (`cpu{host=a}`); none: all |
//! | `c0.span` | the window (`5m`, `1h`, `90s`) |
//! | `c0.end` | paused at this time (epoch ms); absent: live |
//! | `c0.log` | `1`: logarithmic value axis |
//! | `c0.hide` | repeatable: a series switched off in the legend |
//! | `c0.right` | repeatable: a series drawn against the right-hand value axis |
//!
//! Keys and values are plain strings here; the address's percent-encoding is done where the
//! address is read and written. Anything unreadable is ignored rather than refused: a link
//! that half works is better than a blank page.

use crate::model::NANOS_PER_MILLI;
use crate::viewport::{format_span, parse_span, Viewport};

/// More charts than this on one page would each be a sliver on a phone, and each one costs a
/// canvas and its history requests.
pub const MAX_CHARTS: usize = 12;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartSpec {
    /// Series shown, by display name; empty: every series.
    pub series: Vec<String>,
    pub view: Viewport,
    pub log: bool,
    pub hidden: Vec<String>,
    /// Series on the second (right-hand) value axis.
    pub right: Vec<String>,
}

/// Reads charts from a lookup of query parameters (`get_all(key)`: every value of `key`).
/// No chart parameters at all: one chart of every series.
pub fn read(get_all: impl Fn(&str) -> Vec<String>) -> Vec<ChartSpec> {
    let mut charts = Vec::new();
    for i in 0..MAX_CHARTS {
        let key = |k: &str| format!("c{i}.{k}");
        let series = get_all(&key("s"));
        let span = get_all(&key("span"));
        let end = get_all(&key("end"));
        let log = get_all(&key("log"));
        let hidden = get_all(&key("hide"));
        let right = get_all(&key("right"));
        if [&series, &span, &end, &log, &hidden, &right]
            .iter()
            .all(|v| v.is_empty())
        {
            continue;
        }
        let span_ns = span
            .last()
            .and_then(|s| parse_span(s))
            .unwrap_or(Viewport::default().span_ns);
        let end_ns = end
            .last()
            .and_then(|e| e.parse::<i64>().ok())
            .map(|ms| ms.saturating_mul(NANOS_PER_MILLI));
        let view = match end_ns {
            Some(end) => Viewport::paused(end.saturating_sub(span_ns), end),
            None => Viewport::live(span_ns),
        };
        charts.push(ChartSpec {
            series: dedup(series),
            view,
            log: log.last().is_some_and(|l| l == "1" || l == "true"),
            hidden: dedup(hidden),
            right: dedup(right),
        });
    }
    if charts.is_empty() {
        charts.push(ChartSpec::default());
    }
    charts
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|s| !s.is_empty() && seen.insert(s.clone()));
    v
}

/// The query parameters of `charts`, in order. A lone default chart writes nothing, so the
/// plain address stays plain.
pub fn write(charts: &[ChartSpec]) -> Vec<(String, String)> {
    if charts.len() == 1 && charts[0] == ChartSpec::default() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, c) in charts.iter().take(MAX_CHARTS).enumerate() {
        let key = |k: &str| format!("c{i}.{k}");
        for s in &c.series {
            out.push((key("s"), s.clone()));
        }
        out.push((key("span"), format_span(c.view.span_ns)));
        if let Some(end) = c.view.paused_end {
            out.push((key("end"), (end / NANOS_PER_MILLI).to_string()));
        }
        if c.log {
            out.push((key("log"), "1".into()));
        }
        for h in &c.hidden {
            out.push((key("hide"), h.clone()));
        }
        for r in &c.right {
            out.push((key("right"), r.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lookup(pairs: &[(String, String)]) -> impl Fn(&str) -> Vec<String> + '_ {
        move |k| {
            pairs
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .collect()
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_parameters_is_one_chart_of_everything() {
        assert_eq!(read(lookup(&[])), vec![ChartSpec::default()]);
        assert!(write(&[ChartSpec::default()]).is_empty());
    }

    #[test]
    fn charts_read_from_the_address() {
        let p = pairs(&[
            ("c0.s", "cpu{host=a,core=0}"),
            ("c0.s", "mem"),
            ("c0.span", "5m"),
            ("c1.s", "temp"),
            ("c1.span", "1h"),
            ("c1.end", "1764230400000"),
            ("c1.log", "1"),
            ("c1.hide", "temp"),
            ("c1.right", "beta"),
            ("other", "ignored"),
        ]);
        let charts = read(lookup(&p));
        assert_eq!(charts.len(), 2);
        assert_eq!(charts[0].series, ["cpu{host=a,core=0}", "mem"]);
        assert_eq!(charts[0].view, Viewport::live(300_000_000_000));
        assert_eq!(
            charts[1].view.range(0),
            (1_764_226_800_000_000_000, 1_764_230_400_000_000_000)
        );
        assert!(charts[1].log);
        assert_eq!(charts[1].hidden, ["temp"]);
        assert_eq!(charts[1].right, ["beta"]);
        assert_eq!(read(lookup(&write(&charts))), charts);
    }

    #[test]
    fn unreadable_parts_fall_back_instead_of_failing() {
        let p = pairs(&[
            ("c3.span", "forever"),
            ("c3.end", "yesterday"),
            ("c3.s", ""),
            ("c3.s", "a"),
            ("c3.s", "a"),
            ("c99.s", "beyond the limit"),
        ]);
        let charts = read(lookup(&p));
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].series, ["a"]);
        assert_eq!(charts[0].view, Viewport::default());
    }

    proptest! {
        #[test]
        fn layouts_round_trip(
            specs in proptest::collection::vec(
                (
                    proptest::collection::vec("[a-z{}=,. ]{1,12}", 0..4),
                    1i64..1_000_000,
                    proptest::option::of(1_000_000i64..2_000_000_000_000),
                    any::<bool>(),
                ),
                1..MAX_CHARTS,
            )
        ) {
            let charts: Vec<ChartSpec> = specs
                .into_iter()
                .map(|(series, span_s, end_ms, log)| {
                    let span = span_s * 1_000_000_000;
                    ChartSpec {
                        series: dedup(series.clone()),
                        view: match end_ms {
                            Some(ms) => Viewport::paused(ms * 1_000_000 - span, ms * 1_000_000),
                            None => Viewport::live(span),
                        },
                        log,
                        hidden: dedup(series.iter().take(1).cloned().collect()),
                        right: dedup(series.into_iter().skip(1).collect()),
                    }
                })
                .collect();
            let back = read(lookup(&write(&charts)));
            if charts.len() == 1 && charts[0] == ChartSpec::default() {
                prop_assert_eq!(back, vec![ChartSpec::default()]);
            } else {
                prop_assert_eq!(back, charts);
            }
        }
    }
}

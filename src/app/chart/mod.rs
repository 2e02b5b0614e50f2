//! The live chart: a `<canvas>` drawn by plotters from WASM, a toolbar for the time range and
//! export, HTML overlays for the crosshair, tooltip and drag selection, and an HTML legend.
//!
//! The legend is HTML rather than pixels so it wraps on a phone, stays crisp, is read by
//! screen readers and its entries are buttons that hide and show series. Overlays are HTML so
//! moving the crosshair never redraws the canvas. The canvas carries an `aria-label`
//! summarising the latest value per series.
//!
//! State lives in [`ChartCtl`] signals; the browser-only modules turn gestures into viewport
//! changes ([`gesture`]), load history for what the live feed cannot draw ([`history`]) and
//! draw ([`draw`]).

/// Only in the benchmark's build (`make bench`): it costs 4.5 KB of the download.
#[cfg(feature = "bench-hook")]
pub mod bench;
#[cfg(feature = "hydrate")]
mod draw;
#[cfg(feature = "hydrate")]
mod export;
#[cfg(feature = "hydrate")]
mod gesture;
#[cfg(feature = "hydrate")]
mod history;
#[cfg(feature = "hydrate")]
mod listeners;
mod picker;
mod range;

use super::live::{client_now_ns, LiveFeed};
use crate::history_cache::HistoryCache;
use crate::layout::ChartSpec;
use crate::model::SeriesInfo;
use crate::view::{css_color, format_age, format_with_unit, live_window, series_color, unit_of};
use crate::viewport::{preset_name, Viewport, PRESETS};
use leptos::prelude::*;
use picker::SeriesPicker;
use range::RangeForm;
use std::collections::BTreeSet;

/// Everything about one chart that is not the data itself. Copy, like the signals inside.
#[derive(Clone, Copy)]
pub struct ChartCtl {
    /// Series this chart shows, by display name; empty: every series.
    pub series: RwSignal<Vec<String>>,
    pub view: RwSignal<Viewport>,
    /// Series (by their display name) the user switched off in the legend.
    pub hidden: RwSignal<BTreeSet<String>>,
    pub history: RwSignal<HistoryCache>,
    /// History requests in flight.
    pub loading: RwSignal<u32>,
    pub inspect: RwSignal<Option<Inspect>>,
    /// A drag selection in progress: left and right edge in CSS pixels inside the chart box.
    pub selection: RwSignal<Option<(f64, f64)>>,
    /// What a reset (double click, double tap) returns to: the last preset chosen.
    pub home_span: RwSignal<i64>,
    /// A logarithmic value axis (points at or below zero are not drawn on it).
    pub log_scale: RwSignal<bool>,
    /// Series drawn against the second, right-hand value axis.
    pub right: RwSignal<BTreeSet<String>>,
    /// What went wrong with the last CSV export (a series that failed or was cut), shown
    /// beside the toolbar until dismissed or the next export: a partial file must not pass
    /// for a whole one.
    pub notice: RwSignal<Option<String>>,
}

impl ChartCtl {
    pub fn new(spec: &ChartSpec) -> Self {
        let view = spec.view;
        Self {
            series: RwSignal::new(spec.series.clone()),
            view: RwSignal::new(view),
            hidden: RwSignal::new(spec.hidden.iter().cloned().collect()),
            history: RwSignal::new(HistoryCache::default()),
            loading: RwSignal::new(0),
            inspect: RwSignal::new(None),
            selection: RwSignal::new(None),
            home_span: RwSignal::new(view.span_ns),
            log_scale: RwSignal::new(spec.log),
            right: RwSignal::new(spec.right.iter().cloned().collect()),
            notice: RwSignal::new(None),
        }
    }

    /// The chart as the address records it (tracked: an effect reading it follows changes).
    pub fn spec(&self) -> ChartSpec {
        ChartSpec {
            series: self.series.get(),
            view: self.view.get(),
            log: self.log_scale.get(),
            hidden: self.hidden.get().into_iter().collect(),
            right: self.right.get().into_iter().collect(),
        }
    }

    /// Whether the series named `name` is on this chart (before legend toggles).
    pub fn shows(&self, name: &str) -> bool {
        self.series
            .with_untracked(|s| s.is_empty() || s.iter().any(|x| x == name))
    }

    /// Back to following the newest data with the span of the last preset.
    pub fn go_live(&self) {
        self.view
            .set(Viewport::live(self.home_span.get_untracked()));
        self.inspect.set(None);
    }

    pub fn choose_span(&self, span_ns: i64) {
        self.home_span.set(span_ns);
        self.view.update(|v| {
            *v = match v.paused_end {
                // A paused view keeps its end and takes the new span, as Grafana does.
                Some(end) => Viewport {
                    span_ns,
                    paused_end: Some(end),
                },
                None => Viewport::live(span_ns),
            }
        });
    }
}

/// Puts `key` in the set if it is not there, takes it out if it is (legend buttons).
fn toggle(set: RwSignal<BTreeSet<String>>, key: String) {
    set.update(|s| {
        if !s.remove(&key) {
            s.insert(key);
        }
    });
}

/// Whether a chart is still on the page. Callbacks that can outlive it (animation frames,
/// timers, observers, requests in flight) check this first: a removed chart's signals are
/// gone, and touching them would panic.
#[derive(Clone, Copy)]
pub struct Mounted(StoredValue<()>);

impl Mounted {
    /// Owned by the component being rendered: disposed with it.
    fn new() -> Self {
        Self(StoredValue::new(()))
    }

    pub fn is(&self) -> bool {
        self.0.try_get_value().is_some()
    }
}

/// The crosshair's place and the tooltip's text, in CSS pixels inside the chart box.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspect {
    pub x: f64,
    pub top: f64,
    pub bottom: f64,
    /// Where the tooltip goes (its top-left corner).
    pub tip_left: f64,
    pub tip_top: f64,
    pub time: String,
    pub rows: Vec<InspectRow>,
    /// `right` or `left` of the cursor, or `above` a finger (a CSS hook).
    pub placement: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InspectRow {
    pub name: String,
    pub color: String,
    pub value: String,
}

/// One legend row: name, colour, latest value, and how stale it is when off the chart.
#[derive(Debug, Clone, PartialEq)]
struct LegendItem {
    name: String,
    color: String,
    value: String,
    age: Option<String>,
}

/// One chart of the dashboard. `known` is the server's series list for the picker;
/// `on_remove` (when given) adds a button that takes the chart off the page.
#[component]
pub fn LiveChart(
    feed: LiveFeed,
    ctl: ChartCtl,
    known: RwSignal<Vec<SeriesInfo>>,
    #[prop(optional)] on_remove: Option<Callback<()>>,
) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let chart_box = NodeRef::<leptos::html::Div>::new();
    let mounted = Mounted::new();
    #[cfg(feature = "hydrate")]
    {
        let listeners = listeners::Listeners::new();
        let drawn = draw::attach(canvas, feed, ctl, mounted, listeners.clone());
        gesture::attach(chart_box, feed, ctl, drawn, mounted, listeners);
        history::attach(canvas, feed, ctl, mounted);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = mounted;

    // Every series on the chart, in the feed's order (which sets its colour everywhere), with
    // its newest value: from the live feed, or from held history for a series quiet longer
    // than the feed reaches back.
    let legend = Memo::new(move |_| {
        let view = ctl.view.get();
        ctl.series.track();
        ctl.history.with(|history| {
            feed.data.with(|d| {
                let live_end = live_window(d.server_now(client_now_ns()), d.newest_ns(), 0).1;
                let (start, end) = view.range(live_end);
                d.series
                    .iter()
                    .enumerate()
                    .filter(|(_, (key, _))| ctl.shows(&key.to_string()))
                    .map(|(i, (key, ring))| {
                        let newest = ring
                            .back()
                            .or_else(|| history.series.get(key).and_then(|h| h.last()));
                        LegendItem {
                            name: key.to_string(),
                            color: css_color(series_color(i)),
                            value: newest.map_or_else(
                                || "–".to_string(),
                                |p| format_with_unit(p.value, unit_of(key)),
                            ),
                            age: newest
                                .filter(|p| p.ts_ns < start)
                                .map(|p| format_age(end.saturating_sub(p.ts_ns))),
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
    });
    let rows = Memo::new(move |_| {
        legend.with(|l| {
            l.iter()
                .map(|i| (i.name.clone(), i.color.clone()))
                .collect::<Vec<_>>()
        })
    });
    let summary = move || {
        legend.with(|items| {
            if items.is_empty() {
                "Live chart: no data yet".to_string()
            } else {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| format!("{} {}", i.name, i.value))
                    .collect();
                format!("Live chart, latest values: {}", parts.join(", "))
            }
        })
    };
    let mode = move || {
        if ctl.view.get().is_live() {
            "live"
        } else {
            "paused"
        }
    };
    let live_label = move || {
        if ctl.view.get().is_live() {
            "Live"
        } else {
            "Paused · back to live"
        }
    };
    let presets = PRESETS
        .iter()
        .map(|&(name, span)| {
            let pressed = move || {
                let v = ctl.view.get();
                (v.span_ns == span).to_string()
            };
            view! {
                <button
                    class="preset"
                    type="button"
                    data-span=name
                    aria-pressed=pressed
                    on:click=move |_| ctl.choose_span(span)
                >
                    {name}
                </button>
            }
        })
        .collect_view();
    // A span no preset names (after a zoom) is spelled out beside the presets.
    let span_text = move || {
        let span = ctl.view.get().span_ns;
        preset_name(span).map_or_else(|| crate::viewport::describe_span(span), |_| String::new())
    };

    let title = move || {
        ctl.series.with(|s| {
            if s.is_empty() {
                "All series".to_string()
            } else {
                s.join(", ")
            }
        })
    };
    let remove = on_remove.map(|cb| {
        view! {
            <button
                class="remove-chart"
                type="button"
                title="Remove this chart"
                aria-label="Remove this chart"
                on:click=move |_| cb.run(())
            >
                "×"
            </button>
        }
    });

    view! {
        <figure class="chart" data-mode=mode>
            <div class="chart-head">
                <h2 class="chart-title">{title}</h2>
                <SeriesPicker feed ctl known />
                {remove}
            </div>
            <div class="chart-toolbar" role="toolbar" aria-label="Time range and export">
                <div class="presets" role="group" aria-label="Window">
                    {presets}
                </div>
                <RangeForm ctl feed />
                <span class="span-now" aria-live="polite">{span_text}</span>
                <button
                    class="live-toggle"
                    type="button"
                    data-live=move || ctl.view.get().is_live().to_string()
                    aria-pressed=move || ctl.view.get().is_live().to_string()
                    title="Follow the newest data (L)"
                    on:click=move |_| ctl.go_live()
                >
                    <span class="dot" aria-hidden="true"></span>
                    {live_label}
                </button>
                <span class="toolbar-gap"></span>
                <button
                    class="log-toggle"
                    type="button"
                    title="Logarithmic value axis"
                    aria-pressed=move || ctl.log_scale.get().to_string()
                    on:click=move |_| ctl.log_scale.update(|l| *l = !*l)
                >
                    "log"
                </button>
                <button
                    class="export-csv"
                    type="button"
                    title="The visible range as CSV, raw points from the server"
                    on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        export::csv(feed, ctl, mounted);
                    }
                >
                    "CSV"
                </button>
                <button
                    class="export-png"
                    type="button"
                    title="The chart as a PNG image"
                    on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        export::png(canvas);
                    }
                >
                    "PNG"
                </button>
            </div>
            {move || {
                ctl.notice
                    .get()
                    .map(|text| {
                        view! {
                            <p class="chart-notice" role="status">
                                <span>{text}</span>
                                <button
                                    class="notice-close"
                                    type="button"
                                    aria-label="Dismiss"
                                    on:click=move |_| ctl.notice.set(None)
                                >
                                    "×"
                                </button>
                            </p>
                        }
                    })
            }}
            <div
                node_ref=chart_box
                class="chart-box"
                tabindex="0"
                aria-label="Chart. Arrows pan, plus and minus zoom, L returns to live, Escape closes the tooltip."
                aria-keyshortcuts="ArrowLeft ArrowRight + - L Escape"
                data-loading=move || (ctl.loading.get() > 0).to_string()
            >
                <canvas node_ref=canvas class="chart-canvas" role="img" aria-label=summary></canvas>
                {move || {
                    ctl.selection
                        .get()
                        .map(|(a, b)| {
                            view! {
                                <div
                                    class="selection"
                                    style:left=format!("{}px", a.min(b))
                                    style:width=format!("{}px", (b - a).abs())
                                ></div>
                            }
                        })
                }}
                {move || {
                    ctl.inspect
                        .get()
                        .map(|i| {
                            view! {
                                <div
                                    class="crosshair"
                                    style:left=format!("{}px", i.x)
                                    style:top=format!("{}px", i.top)
                                    style:height=format!("{}px", (i.bottom - i.top).max(0.0))
                                ></div>
                                <div
                                    class="tooltip"
                                    role="tooltip"
                                    data-placement=i.placement
                                    style:left=format!("{}px", i.tip_left)
                                    style:top=format!("{}px", i.tip_top)
                                >
                                    <div class="tooltip-time">{i.time}</div>
                                    {i
                                        .rows
                                        .into_iter()
                                        .map(|r| {
                                            let key = r.name.clone();
                                            view! {
                                                <div class="tooltip-row" data-series=key>
                                                    <span
                                                        class="swatch"
                                                        style:background-color=r.color
                                                        aria-hidden="true"
                                                    ></span>
                                                    <span class="series-name">{r.name}</span>
                                                    <span class="series-value">{r.value}</span>
                                                </div>
                                            }
                                        })
                                        .collect_view()}
                                </div>
                            }
                        })
                }}
                <div class="loading" aria-hidden="true">"loading history…"</div>
            </div>
            <figcaption>
                <ul class="legend" aria-label="Series: press to hide or show">
                    // Keyed rows: a new value updates one text node, it does not rebuild the
                    // legend (at 10 updates a second that churned the WASM heap).
                    <For
                        each=move || rows.get()
                        key=|row| row.clone()
                        children=move |(name, color)| {
                            let value_name = name.clone();
                            let value = move || {
                                legend
                                    .with(|l| {
                                        l.iter()
                                            .find(|i| i.name == value_name)
                                            .map(|i| i.value.clone())
                                            .unwrap_or_default()
                                    })
                            };
                            let age_name = name.clone();
                            let age = move || {
                                legend
                                    .with(|l| {
                                        l.iter().find(|i| i.name == age_name).and_then(|i| i.age.clone())
                                    })
                                    .map(|a| view! { <span class="series-age">{a}</span> })
                            };
                            let toggle_key = name.clone();
                            let shown_key = name.clone();
                            let right_key = name.clone();
                            let on_right_key = name.clone();
                            let row_key = name.clone();
                            let on_right = move || {
                                ctl.right.with(|r| r.contains(&on_right_key)).to_string()
                            };
                            let shown = move || {
                                ctl.hidden.with(|h| !h.contains(&shown_key)).to_string()
                            };
                            view! {
                                <li class="legend-item" data-series=row_key>
                                    <button
                                        type="button"
                                        class="legend-toggle"
                                        aria-pressed=shown
                                        on:click=move |_| toggle(ctl.hidden, toggle_key.clone())
                                    >
                                        <span
                                            class="swatch"
                                            style:background-color=color
                                            aria-hidden="true"
                                        ></span>
                                        <span class="series-name">{name}</span>
                                        <span class="series-value">{value}</span>
                                        {age}
                                    </button>
                                    <button
                                        type="button"
                                        class="axis-toggle"
                                        title="Draw against the right-hand axis"
                                        aria-label="Right-hand axis"
                                        aria-pressed=on_right
                                        on:click=move |_| toggle(ctl.right, right_key.clone())
                                    >
                                        "R"
                                    </button>
                                </li>
                            }
                        }
                    />
                </ul>
            </figcaption>
        </figure>
    }
}

//! The live chart: a `<canvas>` drawn by plotters from WASM, with an HTML legend beside it.
//!
//! The legend is HTML rather than pixels so it wraps on a phone, stays crisp, and is read by
//! screen readers; the canvas carries an `aria-label` summarising the latest value per series.

#[cfg(feature = "hydrate")]
mod draw;

use super::live::{client_now_ns, LiveFeed};
use crate::view::{css_color, format_age, format_value, live_window, series_color};
use leptos::prelude::*;

/// One legend row: name, colour, latest value, and how stale it is when off the chart.
#[derive(Debug, Clone, PartialEq)]
struct LegendItem {
    name: String,
    color: String,
    value: String,
    age: Option<String>,
}

#[component]
pub fn LiveChart(feed: LiveFeed) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    #[cfg(feature = "hydrate")]
    draw::attach(canvas, feed);

    let legend = Memo::new(move |_| {
        feed.data.with(|d| {
            let (start, end) =
                live_window(d.server_now(client_now_ns()), d.newest_ns(), d.window_ns);
            d.latest()
                .into_iter()
                .enumerate()
                .map(|(i, (key, p))| LegendItem {
                    name: key.to_string(),
                    color: css_color(series_color(i)),
                    value: format_value(p.value),
                    age: (p.ts_ns < start).then(|| format_age(end.saturating_sub(p.ts_ns))),
                })
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

    view! {
        <figure class="chart">
            <div class="chart-box">
                <canvas node_ref=canvas class="chart-canvas" role="img" aria-label=summary></canvas>
            </div>
            <figcaption>
                <ul class="legend" aria-label="Latest value per series">
                    {move || {
                        legend
                            .get()
                            .into_iter()
                            .map(|item| {
                                let key = item.name.clone();
                                view! {
                                    <li class="legend-item" data-series=key>
                                        <span
                                            class="swatch"
                                            style:background-color=item.color
                                            aria-hidden="true"
                                        ></span>
                                        <span class="series-name">{item.name}</span>
                                        <span class="series-value">{item.value}</span>
                                        {item.age.map(|a| view! { <span class="series-age">{a}</span> })}
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </figcaption>
        </figure>
    }
}

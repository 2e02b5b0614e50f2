//! The series picker: a searchable list of every series the server holds (from
//! `GET /api/v1/series`, refreshed each time the picker opens, plus any the live feed has
//! announced since), each with a checkbox that puts it on this chart or takes it off.
//!
//! A `<details>` element, so it opens and closes without script and is keyboard- and
//! screen-reader-friendly; the filter matches the name and labels anywhere, ignoring case.

use super::ChartCtl;
use crate::app::live::LiveFeed;
use crate::model::SeriesInfo;
use crate::view::format_value;
use leptos::prelude::*;

/// Rows listed at once: enough to scroll through, few enough for a phone to render at once.
/// The filter finds the rest.
pub const MAX_LISTED: usize = 200;

#[component]
pub fn SeriesPicker(
    feed: LiveFeed,
    ctl: ChartCtl,
    known: RwSignal<Vec<SeriesInfo>>,
) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    // Every series name, the server's list first, then any the feed has that it lacked.
    let names = Memo::new(move |_| {
        let mut rows: Vec<(String, Option<SeriesInfo>)> = known.with(|k| {
            k.iter()
                .map(|i| (i.series.to_string(), Some(i.clone())))
                .collect()
        });
        feed.data.with(|d| {
            for key in d.series.keys() {
                let name = key.to_string();
                if !rows.iter().any(|(n, _)| *n == name) {
                    rows.push((name, None));
                }
            }
        });
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    });
    let listed = Memo::new(move |_| {
        let needle = filter.get().to_lowercase();
        names.with(|rows| {
            let matching: Vec<_> = rows
                .iter()
                .filter(|(n, _)| needle.is_empty() || n.to_lowercase().contains(&needle))
                .cloned()
                .collect();
            let total = matching.len();
            (
                matching.into_iter().take(MAX_LISTED).collect::<Vec<_>>(),
                total,
            )
        })
    });
    let all = move || ctl.series.with(Vec::is_empty);
    let toggle = move |name: String| {
        let everything: Vec<String> =
            names.with_untracked(|r| r.iter().map(|(n, _)| n.clone()).collect());
        ctl.series.update(|s| {
            if s.is_empty() {
                // From "all": keep every other series.
                *s = everything.into_iter().filter(|n| *n != name).collect();
            } else if let Some(i) = s.iter().position(|n| *n == name) {
                // The last one stays: an empty choice would mean every series.
                if s.len() > 1 {
                    s.remove(i);
                }
            } else {
                s.push(name);
            }
        });
    };
    let on_toggle = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let open = _ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlDetailsElement>().ok())
                .is_some_and(|d| d.open());
            if open {
                leptos::task::spawn_local(async move {
                    match fetch_series().await {
                        Ok(list) => known.set(list),
                        Err(e) => leptos::logging::warn!("livechart: series list: {e}"),
                    }
                });
            }
        }
    };

    view! {
        <details class="picker" on:toggle=on_toggle>
            <summary>"Series"</summary>
            <div class="picker-body">
                <input
                    class="picker-filter"
                    type="search"
                    placeholder="Filter by name or label"
                    aria-label="Filter series"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
                <label class="picker-row picker-all">
                    <input
                        type="checkbox"
                        prop:checked=all
                        on:change=move |_| ctl.series.set(Vec::new())
                    />
                    <span>"All series"</span>
                </label>
                <ul class="picker-list">
                    {move || {
                        listed
                            .get()
                            .0
                            .into_iter()
                            .map(|(name, info)| {
                                let checked_name = name.clone();
                                let toggle_name = name.clone();
                                let row_key = name.clone();
                                let checked = move || {
                                    ctl.series
                                        .with(|s| s.is_empty() || s.contains(&checked_name))
                                };
                                let detail = info
                                    .map(|i| {
                                        format!(
                                            "{} · {} pts",
                                            format_value(i.last_value),
                                            i.points,
                                        )
                                    });
                                view! {
                                    <li>
                                        <label class="picker-row" data-series=row_key>
                                            <input
                                                type="checkbox"
                                                prop:checked=checked
                                                on:change=move |_| toggle(toggle_name.clone())
                                            />
                                            <span class="series-name">{name}</span>
                                            <span class="picker-detail">{detail}</span>
                                        </label>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
                {move || {
                    let (shown, total) = listed.get();
                    (total > shown.len())
                        .then(|| {
                            view! {
                                <p class="picker-more">
                                    {format!("{} more: narrow the filter", total - shown.len())}
                                </p>
                            }
                        })
                }}
            </div>
        </details>
    }
}

#[cfg(feature = "hydrate")]
async fn fetch_series() -> Result<Vec<SeriesInfo>, String> {
    let res = gloo_net::http::Request::get("/api/v1/series")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.ok() {
        return Err(format!("the server answered {}", res.status()));
    }
    res.json::<crate::model::SeriesList>()
        .await
        .map(|l| l.series)
        .map_err(|e| e.to_string())
}

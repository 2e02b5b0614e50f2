//! The custom range: a "from" and a "to" in the viewer's local time, as `datetime-local`
//! inputs (the phone's own date and time pickers), filled with the chart's current range when
//! opened. Applying pauses the chart on exactly that range.
//!
//! Local time is read and written by the browser's `Date`, which knows the zone's daylight
//! saving rules for any date; the server renders the inputs empty.

use super::ChartCtl;
use crate::app::live::LiveFeed;
use leptos::html::Details;
use leptos::prelude::*;

#[component]
pub fn RangeForm(ctl: ChartCtl, feed: LiveFeed) -> impl IntoView {
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let details = NodeRef::<Details>::new();
    // Read only in the browser.
    let _ = (feed, ctl);

    let on_toggle = move |_| {
        #[cfg(feature = "hydrate")]
        if details.get_untracked().is_some_and(|d| d.open()) {
            let live_end = feed.data.with_untracked(|d| {
                crate::view::live_window(
                    d.server_now(crate::app::live::client_now_ns()),
                    d.newest_ns(),
                    0,
                )
                .1
            });
            let (a, b) = ctl.view.get_untracked().range(live_end);
            from.set(local::to_input(a));
            to.set(local::to_input(b));
            error.set(None);
        }
    };
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            let (a, b) = (
                local::from_input(&from.get_untracked()),
                local::from_input(&to.get_untracked()),
            );
            match (a, b) {
                (Some(a), Some(b)) if a < b => {
                    error.set(None);
                    ctl.inspect.set(None);
                    ctl.view.set(crate::viewport::Viewport::paused(a, b));
                    if let Some(d) = details.get_untracked() {
                        d.set_open(false);
                    }
                }
                (Some(_), Some(_)) => error.set(Some("“From” must be before “To”.".into())),
                _ => error.set(Some("Enter both times.".into())),
            }
        }
    };

    view! {
        <details class="range" node_ref=details on:toggle=on_toggle>
            <summary title="An absolute time range">"Custom"</summary>
            <form class="range-body" on:submit=apply>
                <label>
                    <span>"From"</span>
                    <input
                        class="range-from"
                        type="datetime-local"
                        step="1"
                        prop:value=move || from.get()
                        on:input=move |ev| from.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    <span>"To"</span>
                    <input
                        class="range-to"
                        type="datetime-local"
                        step="1"
                        prop:value=move || to.get()
                        on:input=move |ev| to.set(event_target_value(&ev))
                    />
                </label>
                <button type="submit">"Apply"</button>
                {move || error.get().map(|e| view! { <p class="range-error" role="alert">{e}</p> })}
            </form>
        </details>
    }
}

#[cfg(feature = "hydrate")]
mod local {
    use crate::model::NANOS_PER_MILLI;
    use wasm_bindgen::JsValue;

    /// `YYYY-MM-DDTHH:MM:SS` in the browser's zone, as a `datetime-local` input holds it.
    pub fn to_input(ns: i64) -> String {
        let d = js_sys::Date::new(&JsValue::from_f64((ns / NANOS_PER_MILLI) as f64));
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date(),
            d.get_hours(),
            d.get_minutes(),
            d.get_seconds()
        )
    }

    /// The instant a `datetime-local` value names in the browser's zone.
    pub fn from_input(s: &str) -> Option<i64> {
        if s.is_empty() {
            return None;
        }
        // Without a zone suffix, Date reads an ISO date-time as local time.
        let ms = js_sys::Date::new(&JsValue::from_str(s)).get_time();
        ms.is_finite()
            .then_some((ms * NANOS_PER_MILLI as f64) as i64)
    }
}

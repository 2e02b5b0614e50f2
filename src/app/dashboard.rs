//! The page: a header with the connection state, a responsive grid of charts (one column on
//! a phone), and a hint for pushing the first point when there is nothing to show yet.
//!
//! The charts and their settings live in the address ([`crate::layout`]): read once when the
//! page is rendered (on the server and again in the browser, so both agree), and rewritten in
//! place (no new history entry) shortly after any change, so a copied link reproduces the view.

use super::chart::{ChartCtl, LiveChart};
use super::live::{use_live_feed, ConnState};
use crate::layout::{self, ChartSpec, MAX_CHARTS};
use crate::model::SeriesInfo;
use leptos::prelude::*;

/// How long the address waits after the last change before it is rewritten: a drag changes
/// the view every frame, and browsers throttle address updates.
#[cfg(feature = "hydrate")]
const ADDRESS_SETTLE_MS: u32 = 300;

#[component]
pub fn Dashboard() -> impl IntoView {
    let feed = use_live_feed();
    let pairs = query_pairs();
    let specs = layout::read(|k| {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    });
    let next_id = StoredValue::new(specs.len());
    let charts: RwSignal<Vec<(usize, ChartCtl)>> = RwSignal::new(
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| (i, ChartCtl::new(s)))
            .collect(),
    );
    let known: RwSignal<Vec<SeriesInfo>> = RwSignal::new(Vec::new());
    let add = move |_| {
        if charts.with_untracked(Vec::len) >= MAX_CHARTS {
            return;
        }
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        charts.update(|c| c.push((id, ChartCtl::new(&ChartSpec::default()))));
    };
    let full = move || charts.with(Vec::len) >= MAX_CHARTS;
    #[cfg(feature = "hydrate")]
    {
        let timer: std::rc::Rc<std::cell::RefCell<Option<gloo_timers::callback::Timeout>>> =
            Default::default();
        Effect::new(move |_| {
            let specs: Vec<ChartSpec> =
                charts.with(|c| c.iter().map(|(_, ctl)| ctl.spec()).collect());
            let pairs = layout::write(&specs);
            *timer.borrow_mut() = Some(gloo_timers::callback::Timeout::new(
                ADDRESS_SETTLE_MS,
                move || write_address(&pairs),
            ));
        });
    }
    let conn = feed.conn;
    let state_name = move || conn.get().as_str();
    let state_text = move || match conn.get() {
        ConnState::Connecting => "connecting…".to_string(),
        ConnState::Live => "live".to_string(),
        ConnState::Reconnecting { attempt } => format!("reconnecting… (attempt {attempt})"),
        ConnState::Offline { attempt } => format!("offline — retrying (attempt {attempt})"),
        ConnState::Degraded => "store unavailable — live updates paused".to_string(),
    };
    let empty = move || feed.data.with(|d| d.series.is_empty());
    let resumes = move || feed.data.with(|d| d.resumes);
    let reloads = move || feed.data.with(|d| d.reloads);
    // The server cannot know the address the browser used; fill it in once hydrated.
    let origin = RwSignal::new(String::from("http://localhost:3000"));
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(o) = web_sys::window().and_then(|w| w.location().origin().ok()) {
            origin.set(o);
        }
    });
    let example = move || {
        format!(
            "curl -X POST {}/chart_data \\\n  -H 'content-type: application/json' \\\n  -d '{{\"value\": 21.5}}'",
            origin.get()
        )
    };

    view! {
        <main class="page">
            <header class="topbar">
                <h1 class="brand">"livechart"</h1>
                <span
                    class="conn"
                    data-state=state_name
                    data-resumes=resumes
                    data-reloads=reloads
                    role="status"
                    aria-live="polite"
                >
                    <span class="dot" aria-hidden="true"></span>
                    <span class="conn-text">{state_text}</span>
                </span>
                <button
                    class="add-chart"
                    type="button"
                    disabled=full
                    title=format!("Add a chart (at most {MAX_CHARTS})")
                    on:click=add
                >
                    "+ Chart"
                </button>
            </header>
            <div class="charts">
                <For
                    each=move || charts.get()
                    key=|(id, _)| *id
                    children=move |(id, ctl)| {
                        let remove = Callback::new(move |()| {
                            // Its signals belong to the page; let go of the data they hold.
                            ctl.history.set(Default::default());
                            charts.update(|c| c.retain(|(i, _)| *i != id));
                        });
                        view! { <LiveChart feed ctl known on_remove=remove /> }
                    }
                />
            </div>
            <Show when=empty>
                <section class="hint">
                    <p>"No data yet. Push a point and watch it appear:"</p>
                    <pre>
                        <code>{example}</code>
                    </pre>
                </section>
            </Show>
        </main>
    }
}

/// Rewrites the address's query in place, keeping the path.
#[cfg(feature = "hydrate")]
fn write_address(pairs: &[(String, String)]) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(params) = web_sys::UrlSearchParams::new() else {
        return;
    };
    for (k, v) in pairs {
        params.append(k, v);
    }
    let query: String = params.to_string().into();
    let path = window.location().pathname().unwrap_or_else(|_| "/".into());
    let url = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let current = window
        .location()
        .href()
        .ok()
        .and_then(|h| web_sys::Url::new(&h).ok())
        .map(|u| format!("{}{}", u.pathname(), u.search()));
    if current.as_deref() == Some(url.as_str()) {
        return;
    }
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// The page address's query as decoded pairs: from the request on the server, from the
/// location in the browser, so both render the same charts.
fn query_pairs() -> Vec<(String, String)> {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>()
            .and_then(|p| p.uri.query().map(str::to_string))
            .and_then(|q| serde_urlencoded::from_str(&q).ok())
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        let Some(search) = web_sys::window().and_then(|w| w.location().search().ok()) else {
            return Vec::new();
        };
        let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let entries = js_sys::try_iter(&params.entries()).ok().flatten();
        for entry in entries.into_iter().flatten().flatten() {
            let pair = js_sys::Array::from(&entry);
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.push((k, v));
            }
        }
        out
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Vec::new()
    }
}

//! The page: a header with the connection state, the live chart, and a hint for pushing the
//! first point when there is nothing to show yet.

use super::chart::LiveChart;
use super::live::{use_live_feed, ConnState};
use leptos::prelude::*;

#[component]
pub fn Dashboard() -> impl IntoView {
    let feed = use_live_feed();
    let conn = feed.conn;
    let state_name = move || conn.get().as_str();
    let state_text = move || match conn.get() {
        ConnState::Connecting => "connecting…".to_string(),
        ConnState::Live => "live".to_string(),
        ConnState::Reconnecting { attempt } => format!("reconnecting… (attempt {attempt})"),
        ConnState::Offline { attempt } => format!("offline — retrying (attempt {attempt})"),
    };
    let empty = move || {
        feed.data
            .with(|d| d.series.values().all(|ring| ring.is_empty()))
    };
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
            </header>
            <LiveChart feed />
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

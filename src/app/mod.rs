//! The Leptos UI: rendered on the server, then hydrated by the WASM build.

pub mod api;
pub mod chart;
pub mod dashboard;
pub mod live;

use dashboard::Dashboard;
use leptos::prelude::*;

/// The HTML document around the app; `HydrationScripts` loads the WASM that takes it over.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::headers::content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <meta name="description" content="Live charts of numbers pushed over HTTP" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" href="/pkg/livechart.css" />
                <title>"livechart"</title>
                <AutoReload options=options.clone() />
                <HydrationScripts options />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The whole app is one page. No router and no meta crate: the head is static (written by
/// [`shell`] on the server), and each would add its own code and a second, async hydration
/// path for the whole view to the WASM (measured: the WASM went from 309 to 244 KB brotli).
#[component]
pub fn App() -> impl IntoView {
    view! { <Dashboard /> }
}

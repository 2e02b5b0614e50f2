//! The Leptos UI: rendered on the server, then hydrated by the WASM build.

pub mod api;
pub mod chart;
pub mod dashboard;
pub mod live;

use dashboard::Dashboard;
use leptos::prelude::*;

/// The URLs the page links for the client: its JS glue, its WASM and the stylesheet. The
/// server provides them per request (content-hashed, see `server::assets`).
#[derive(Debug, Clone, Default)]
pub struct PageAssets {
    pub js: String,
    pub wasm: String,
    pub css: String,
}

impl PageAssets {
    /// The plain names of a build, when none were provided.
    pub fn plain(options: &LeptosOptions) -> Self {
        let base = format!("/{}/{}", options.site_pkg_dir, options.output_name);
        Self {
            js: format!("{base}.js"),
            wasm: format!("{base}.wasm"),
            css: format!("{base}.css"),
        }
    }

    /// The module script that loads the client and hydrates the page (what Leptos's
    /// `HydrationScripts` writes, with our file names).
    fn boot(&self) -> String {
        format!(
            "import init, {{ hydrate }} from {:?}; init({{ module_or_path: {:?} }}).then(() => hydrate());",
            self.js, self.wasm
        )
    }
}

/// The HTML document around the app; its module script loads the WASM that takes it over.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::headers::content_security_policy(&options);
    let assets = use_context::<PageAssets>().unwrap_or_else(|| PageAssets::plain(&options));
    let boot = assets.boot();
    let nonce = leptos::nonce::use_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <meta name="description" content="Live charts of numbers pushed over HTTP" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" href=assets.css.clone() />
                <link rel="modulepreload" href=assets.js.clone() />
                <link
                    rel="preload"
                    href=assets.wasm.clone()
                    r#as="fetch"
                    r#type="application/wasm"
                    crossorigin=""
                />
                <title>"livechart"</title>
                <AutoReload options=options.clone() />
                <script type="module" nonce=nonce>
                    {boot}
                </script>
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

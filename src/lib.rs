//! livechart: push numbers over HTTP, watch them on a live chart in the browser.
//!
//! One crate, two builds: with `ssr` it is the server (axum + leptos_axum), with `hydrate` the
//! WASM client that takes over the server-rendered page. The modules at the top (model, parse,
//! protocol, chunk, decimate, gaps, history, history_cache, layout, view, viewport, ticks, backoff, push_input) are pure and shared by both and tested natively.

// The page's view types nest deeply; erasing them with `into_any` instead would compile an
// async hydration path per erased view into the WASM (measured: tens of KB).
#![recursion_limit = "256"]

pub mod app;
pub mod backoff;
pub mod chunk;
pub mod decimate;
pub mod feed;
pub mod gaps;
pub mod history;
pub mod history_cache;
pub mod layout;
pub mod model;
pub mod parse;
pub mod protocol;
pub mod push_input;
pub mod ticks;
pub mod view;
pub mod viewport;

#[cfg(feature = "ssr")]
pub mod push;
#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the WASM build: attach to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

//! Security headers: what a browser is told about every answer, and the page's Content
//! Security Policy.
//!
//! The policy lets the page run only our own scripts and WASM: the one inline script (the
//! hydration loader) carries the per-response nonce Leptos renders into it, and nothing else
//! inline may run. Styles may be inline (the chart positions its tooltip with `style`).
//! Framing is refused unless `--frame-ancestors` names who may frame the page.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Who may put the page in a frame (the CSP `frame-ancestors` source list), provided to the
/// shell per request.
#[derive(Debug, Clone)]
pub struct FrameAncestors(pub String);

/// The default: nobody (clickjacking).
pub const NO_FRAMING: &str = "'none'";

/// The policy for a page rendered with `nonce`; `reload_port`: under `cargo leptos watch`,
/// where the page's live-reload socket connects.
pub fn policy(nonce: &str, frame_ancestors: &str, reload_port: Option<u32>) -> String {
    let reload = reload_port.map_or(String::new(), |p| format!(" ws://*:{p}"));
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'{reload}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

/// Called while the shell renders: sets the page's CSP with this response's nonce.
pub fn content_security_policy(options: &leptos::config::LeptosOptions) {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let frame = use_context::<FrameAncestors>().map_or_else(|| NO_FRAMING.to_string(), |f| f.0);
    let watching = std::env::var_os("LEPTOS_WATCH").is_some();
    let reload = watching.then_some(options.reload_port);
    if let Ok(v) = HeaderValue::from_str(&policy(&nonce, &frame, reload)) {
        res.insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
    if frame == NO_FRAMING {
        res.insert_header(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    // Pages are rendered per request (and name the client build's hashed files): never
    // reuse one without asking.
    res.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// Middleware: headers every answer gets.
pub async fn common(State(_): State<super::AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_our_scripts_and_wasm_only() {
        let p = policy("abc", NO_FRAMING, None);
        assert!(
            p.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"),
            "{p}"
        );
        assert!(!p.contains("unsafe-eval'") || p.contains("wasm-unsafe-eval"));
        assert!(p.ends_with("frame-ancestors 'none'"), "{p}");
        assert!(HeaderValue::from_str(&p).is_ok());
        let dev = policy("abc", NO_FRAMING, Some(3001));
        assert!(dev.contains("connect-src 'self' ws://*:3001;"), "{dev}");
    }
}

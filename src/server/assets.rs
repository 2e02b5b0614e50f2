//! The site's files (the WASM client, its JS glue, CSS, icon): from inside the binary when it
//! was built with `embed` (`make build`), otherwise from `site-root` on disk (`cargo leptos
//! watch`, tests).
//!
//! Each file is also served under a content-hashed name (`/pkg/livechart.3f9a0c21d4e5b6a7.wasm`)
//! with a year-long, immutable cache lifetime, and the page links those names: a browser keeps
//! the client until a new build changes it, and never runs a stale one. The plain names stay
//! served, revalidated by ETag. Precompressed siblings (`.br`, `.gz`, written by `cargo leptos
//! build --precompress`) are sent to browsers that accept them.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::hash::Hasher;
use std::path::Path;
use std::sync::Arc;

/// The embedded site: (path under the site root, bytes). Empty without `embed`.
const EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/embedded_site.rs"));

/// How long a browser keeps a file under its hashed name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct File {
    bytes: axum::body::Bytes,
    br: Option<axum::body::Bytes>,
    gz: Option<axum::body::Bytes>,
    content_type: &'static str,
    etag: String,
}

/// Every file by URL path, under its plain and its hashed name.
pub struct Assets {
    files: HashMap<String, (Arc<File>, bool)>,
    hashed: HashMap<String, String>,
    /// Where they came from, for the start-up log.
    pub source: String,
    /// The site root when files are served from disk.
    disk: Option<String>,
}

pub use crate::app::PageAssets;

impl Assets {
    /// The embedded site when there is one. Otherwise nothing is held: the files under
    /// `site_root` are served from disk as they are at each request (Leptos's file handler,
    /// plain names), so `cargo leptos watch` can rebuild them under a running server.
    pub fn load(site_root: &str) -> Self {
        if !EMBEDDED.is_empty() {
            let files = EMBEDDED
                .iter()
                .map(|(p, b)| (p.to_string(), axum::body::Bytes::from_static(b)))
                .collect();
            return Self::from_files(files, "embedded in the binary".into(), None);
        }
        Self::from_files(
            Vec::new(),
            format!("{site_root}/ on disk"),
            Some(site_root.into()),
        )
    }

    fn from_files(
        list: Vec<(String, axum::body::Bytes)>,
        source: String,
        disk: Option<String>,
    ) -> Self {
        let all: HashMap<String, axum::body::Bytes> = list.into_iter().collect();
        let mut files = HashMap::new();
        let mut hashed = HashMap::new();
        for (path, bytes) in &all {
            if path.ends_with(".br") || path.ends_with(".gz") {
                continue;
            }
            let hash = content_hash(bytes);
            let file = Arc::new(File {
                bytes: bytes.clone(),
                br: all.get(&format!("{path}.br")).cloned(),
                gz: all.get(&format!("{path}.gz")).cloned(),
                content_type: content_type(path),
                etag: format!("\"{hash}\""),
            });
            let url = format!("/{path}");
            let hashed_url = match url.rsplit_once('.') {
                Some((stem, ext)) if !stem.ends_with('/') => format!("{stem}.{hash}.{ext}"),
                _ => format!("{url}.{hash}"),
            };
            files.insert(url.clone(), (file.clone(), false));
            files.insert(hashed_url.clone(), (file, true));
            hashed.insert(url, hashed_url);
        }
        Self {
            files,
            hashed,
            source,
            disk,
        }
    }

    /// The hashed URL of `url` when it is one of ours, else `url` itself.
    pub fn url(&self, url: &str) -> String {
        self.hashed
            .get(url)
            .cloned()
            .unwrap_or_else(|| url.to_string())
    }

    /// What the page links, for the build named `output` under `pkg`.
    pub fn page(&self, pkg: &str, output: &str) -> PageAssets {
        let wasm = format!("/{pkg}/{output}.wasm");
        let exists = match &self.disk {
            Some(root) => Path::new(root).join(&wasm[1..]).exists(),
            None => self.hashed.contains_key(&wasm),
        };
        let wasm = if exists {
            wasm
        } else {
            format!("/{pkg}/{output}_bg.wasm")
        };
        PageAssets {
            js: self.url(&format!("/{pkg}/{output}.js")),
            wasm: self.url(&wasm),
            css: self.url(&format!("/{pkg}/{output}.css")),
        }
    }

    /// Whether `path` names a file of the site on disk (when serving from disk): such a file,
    /// written after start by `cargo leptos watch`, is left to the disk file handler.
    pub fn on_disk(&self, path: &str) -> bool {
        let relative = Path::new(path.trim_start_matches('/'));
        let plain = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        self.disk
            .as_ref()
            .is_some_and(|root| plain && Path::new(root).join(relative).is_file())
    }

    /// The answer for `req` when it names one of our files.
    pub fn respond(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return None;
        }
        let (file, immutable) = self.files.get(req.uri().path())?;
        let accepts = |coding: &str| accepts(req.headers(), coding);
        let (body, encoding) = match (&file.br, &file.gz) {
            (Some(br), _) if accepts("br") => (br.clone(), Some("br")),
            (_, Some(gz)) if accepts("gzip") => (gz.clone(), Some("gzip")),
            _ => (file.bytes.clone(), None),
        };
        // One tag per representation: the brotli bytes are not the identity bytes.
        let etag = match encoding {
            Some(e) => format!("{}-{e}\"", file.etag.trim_end_matches('"')),
            None => file.etag.clone(),
        };
        let mut res = if fresh(req.headers(), &etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut res = if req.method() == Method::HEAD {
                let mut r = Response::new(Body::empty());
                if let Ok(v) = HeaderValue::from_str(&body.len().to_string()) {
                    r.headers_mut().insert(header::CONTENT_LENGTH, v);
                }
                r
            } else {
                Response::new(Body::from(body))
            };
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            );
            if let Some(e) = encoding {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
            }
            res
        };
        let h = res.headers_mut();
        if file.br.is_some() || file.gz.is_some() {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if *immutable { IMMUTABLE } else { "no-cache" }),
        );
        Some(res)
    }
}

/// 16 hex digits of a fixed-key SipHash: names change when the content does.
fn content_hash(bytes: &[u8]) -> String {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    h.write(bytes);
    format!("{:016x}", h.finish())
}

fn fresh(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// Whether `Accept-Encoding` takes `coding` (and does not refuse it with `q=0`).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            name.eq_ignore_ascii_case(coding) && !refused
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "wasm" => "application/wasm",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> Assets {
        let f = |p: &str, b: &'static [u8]| (p.to_string(), axum::body::Bytes::from_static(b));
        Assets::from_files(
            vec![
                f("pkg/app.js", b"js"),
                f("pkg/app.js.br", b"brotli"),
                f("pkg/app.wasm", b"wasm"),
                f("favicon.svg", b"<svg/>"),
            ],
            "test".into(),
            None,
        )
    }

    fn get(a: &Assets, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        a.respond(&req.body(Body::empty()).unwrap())
            .expect("served")
    }

    #[test]
    fn hashed_names_are_immutable_and_plain_names_revalidate() {
        let a = assets();
        let page = a.page("pkg", "app");
        assert!(
            page.js.starts_with("/pkg/app.")
                && page.js.ends_with(".js")
                && page.js != "/pkg/app.js"
        );
        let hashed = get(&a, &page.js, &[]);
        assert_eq!(hashed.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(
            hashed.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let plain = get(&a, "/pkg/app.js", &[]);
        assert_eq!(plain.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = plain.headers()[header::ETAG].to_str().unwrap().to_string();
        let again = get(&a, "/pkg/app.js", &[("if-none-match", &etag)]);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(a
            .respond(
                &Request::builder()
                    .uri("/nope.js")
                    .body(Body::empty())
                    .unwrap()
            )
            .is_none());
    }

    #[test]
    fn precompressed_files_go_to_browsers_that_take_them() {
        let a = assets();
        let br = get(
            &a,
            "/pkg/app.js",
            &[("accept-encoding", "gzip, deflate, br")],
        );
        assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(br.headers()[header::VARY], "accept-encoding");
        let plain = get(&a, "/pkg/app.js", &[("accept-encoding", "br;q=0, gzip")]);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let wasm = get(&a, "/pkg/app.wasm", &[("accept-encoding", "br")]);
        assert!(
            wasm.headers().get(header::CONTENT_ENCODING).is_none(),
            "no .br of it"
        );
        assert_eq!(wasm.headers()[header::CONTENT_TYPE], "application/wasm");
    }

    #[test]
    fn the_hash_follows_the_content() {
        assert_eq!(content_hash(b"a"), content_hash(b"a"));
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b"a").len(), 16);
    }
}

//! Tokens: who may push points, and (when configured) who may read them.
//!
//! A token is accepted as `Authorization: Bearer T`, `Authorization: Token T` (InfluxDB 2.x
//! clients), HTTP basic auth with the token as password, or the `p` query parameter (InfluxDB
//! 1.x). Tokens are compared in constant time (a length mismatch still returns early; lengths
//! are not secret) and never logged: [`Tokens`] prints as a count.
//!
//! Policy, decided once at start from the listening address: with tokens configured, every
//! ingest request needs one. Without tokens, ingest is open on a loopback address, and closed
//! (401, saying how to open it) on any other unless `--allow-anonymous-ingest` is given.
//!
//! Reading (the live feed, the series list, history) is open unless `--viewer-token` is given;
//! then it needs a viewer token (or an ingest token) as `Authorization: Bearer T`, the `token`
//! query parameter, or the `livechart_token` cookie. A valid `?token=` on any request also
//! sets that cookie, so opening `/?token=T` once lets the page's own requests through.

use super::ingest::is_ingest;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use std::fmt;
use std::net::SocketAddr;

/// Configured ingest tokens; `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq)]
pub struct Tokens(Vec<String>);

impl Tokens {
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Self {
        Self(
            tokens
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks `given` against every token without stopping at the first match.
    fn accepts(&self, given: &str) -> bool {
        self.0.iter().fold(false, |found, t| {
            found | constant_time_eq(t.as_bytes(), given.as_bytes())
        })
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What ingest requires, fixed at start.
#[derive(Debug, Clone)]
pub enum IngestAuth {
    /// Anyone may push: `--allow-anonymous-ingest`.
    Open,
    /// Anyone on this machine may push: no tokens, listening on loopback only.
    Loopback,
    Tokens(Tokens),
    /// No tokens on a public address: refuse, and say why.
    Closed {
        addr: SocketAddr,
    },
}

impl IngestAuth {
    pub fn decide(tokens: &Tokens, allow_anonymous: bool, addr: SocketAddr) -> Self {
        if !tokens.is_empty() {
            Self::Tokens(tokens.clone())
        } else if allow_anonymous {
            Self::Open
        } else if addr.ip().is_loopback() {
            Self::Loopback
        } else {
            Self::Closed { addr }
        }
    }
}

/// The token a request carries, in any of the accepted forms.
fn presented_token(req: &Request) -> Option<String> {
    if let Some(auth) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, rest) = auth.trim().split_once(' ').unwrap_or((auth, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
            return Some(rest.to_string());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            // Padding optional: some clients leave it off. Undecodable, the query may still
            // carry the token.
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let password = lenient
                .decode(rest)
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|text| text.split_once(':').map(|(_, p)| p.to_string()));
            if password.is_some() {
                return password;
            }
        }
    }
    let query = req.uri().query()?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == "p").map(|(_, v)| v)
}

fn refuse(path: &str, message: String) -> Response {
    let mut res = super::ingest::error_for(path, StatusCode::UNAUTHORIZED, message);
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"livechart ingest\""),
    );
    res
}

/// A browser on another site can POST a plain-text body to a loopback server without any
/// preflight; such a request carries an `Origin` that is not this server. Refuse it, so an
/// open loopback server cannot be written to by a web page the user happens to visit.
/// Programs (curl, Telegraf, client libraries) send no `Origin` and are unaffected.
fn cross_site(req: &Request) -> Option<String> {
    let origin = req
        .headers()
        .get(header::ORIGIN)?
        .to_str()
        .unwrap_or("(not text)");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    (origin_host != host).then(|| origin.to_string())
}

/// Whether a page that sent this request reached the server by a name only this machine
/// answers to (an IP literal or `localhost`). A page on `attacker.example` whose DNS name
/// is switched to 127.0.0.1 (DNS rebinding) sends a matching `Origin` and `Host`, so
/// [`cross_site`] cannot tell; its `Host` is still the attacker's name. Requests without an
/// `Origin` come from programs, which may use any name `/etc/hosts` maps to loopback.
fn from_page_by_local_name(req: &Request) -> bool {
    if !req.headers().contains_key(header::ORIGIN) {
        return true;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    is_local_name(host)
}

/// `127.0.0.1:3000`, `[::1]:3000`, `localhost`, `app.localhost:3000` (RFC 6761 keeps
/// `.localhost` on loopback).
fn is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
}

/// Middleware in front of the whole router; lets everything but ingest through untouched.
pub async fn require_ingest_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !is_ingest(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    if let Some(origin) = cross_site(&req) {
        let message = format!("ingest from a web page on another site ({origin}) is not allowed");
        return super::ingest::error_for(&path, StatusCode::FORBIDDEN, message);
    }
    match &state.ingest_auth {
        IngestAuth::Open => next.run(req).await,
        IngestAuth::Loopback if from_page_by_local_name(&req) => next.run(req).await,
        IngestAuth::Loopback => super::ingest::error_for(
            &path,
            StatusCode::FORBIDDEN,
            "ingest from a web page that reached this server by a domain name is not \
             allowed without a token (it may be DNS rebinding): open the page at \
             http://127.0.0.1 or http://localhost, or configure --ingest-token"
                .into(),
        ),
        IngestAuth::Closed { addr } => refuse(
            &path,
            format!(
                "ingest needs a token: this server listens on {addr} and has no --ingest-token \
                 (or LIVECHART_INGEST_TOKENS); configure one, or pass --allow-anonymous-ingest"
            ),
        ),
        IngestAuth::Tokens(tokens) => match presented_token(&req) {
            None => refuse(
                &path,
                "missing ingest token: send Authorization: Bearer <token> (or Token <token>)"
                    .into(),
            ),
            Some(t) if tokens.accepts(&t) => next.run(req).await,
            Some(_) => refuse(&path, "invalid ingest token".into()),
        },
    }
}

/// The cookie a valid `?token=` sets, so a page opened once with it can read.
pub const VIEWER_COOKIE: &str = "livechart_token";

/// Requests that read stored data: these need a viewer token when tokens are configured.
pub fn is_read(path: &str) -> bool {
    matches!(
        path,
        "/ws" | "/api/v1/series" | "/api/v1/query" | "/api/history"
    )
}

/// The `token` query parameter.
fn query_token(req: &Request) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.uri().query()?).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// A viewer token in any accepted form: bearer header, `token` query, cookie.
fn viewer_token(req: &Request) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        });
    let cookie = || {
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == VIEWER_COOKIE)
            .map(|(_, v)| v.to_string())
    };
    bearer.or_else(|| query_token(req)).or_else(cookie)
}

/// Characters a cookie value may hold as is (RFC 6265 cookie-octet); other tokens are still
/// accepted in the header and the query, just not remembered in a cookie.
fn cookie_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// Middleware in front of the whole router: with viewer tokens configured, reads need one.
pub async fn require_viewer_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let viewers = &state.config.viewer_tokens;
    if viewers.is_empty() {
        return next.run(req).await;
    }
    let given = viewer_token(&req);
    let valid = given.as_deref().is_some_and(|t| {
        viewers.accepts(t) || matches!(&state.ingest_auth, IngestAuth::Tokens(i) if i.accepts(t))
    });
    if is_read(req.uri().path()) && !valid {
        let message = if given.is_some() {
            "invalid viewer token"
        } else {
            "this server needs a viewer token to read: open the page with ?token=<token>, or \
             send Authorization: Bearer <token>"
        };
        let mut res = (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"livechart\""),
        );
        return res;
    }
    // Only a viewer token is remembered: an ingest token given as `?token=` reads, but does
    // not stay in the browser.
    let remember = query_token(&req)
        .filter(|t| valid && given.as_deref() == Some(t.as_str()) && viewers.accepts(t))
        .filter(|t| cookie_safe(t));
    let Some(token) = remember else {
        return next.run(req).await;
    };
    // `Secure` when the browser reached us over TLS (a proxy in front says so): the token then
    // never travels in clear.
    let secure = if over_tls(&req) { "; Secure" } else { "" };
    let cookie = format!("{VIEWER_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let Ok(cookie) = header::HeaderValue::from_str(&cookie) else {
        return next.run(req).await;
    };
    // A page opened with `?token=` is sent to the same address without it, now that the cookie
    // carries it: the token leaves the address bar, the history and shared links.
    let mut res = match page_without_token(&req) {
        Some(location) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, "no-store".into()),
            ],
        )
            .into_response(),
        None => next.run(req).await,
    };
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

/// Whether the browser's connection was TLS: the URI says so, or a proxy in front does
/// (`X-Forwarded-Proto`, `Forwarded: proto=`).
fn over_tls(req: &Request) -> bool {
    let h = req.headers();
    let says_https = |name: &str, value_of: fn(&str) -> Option<&str>| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .ok()
                .and_then(value_of)
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        })
    };
    req.uri().scheme_str() == Some("https")
        || says_https("x-forwarded-proto", |v| v.split(',').next())
        || says_https("forwarded", |v| {
            v.split([';', ',']).find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                k.eq_ignore_ascii_case("proto").then(|| v.trim_matches('"'))
            })
        })
}

/// For a browser asking for a page (GET, HTML accepted): where it is without `token`.
fn page_without_token(req: &Request) -> Option<String> {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let path = req.uri().path();
    // Pages only: an API link opened from another site must keep working, and the cookie
    // (SameSite=Strict) would not follow a redirect started there.
    if req.method() != axum::http::Method::GET
        || !wants_html
        || is_read(path)
        || path.starts_with("/api/")
    {
        return None;
    }
    // `//evil.example` is another host to a browser: never send one there.
    let path = format!("/{}", path.trim_start_matches(['/', '\\']));
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).ok()?;
    let rest: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "token").collect();
    if rest.is_empty() {
        return Some(path);
    }
    Some(format!(
        "{path}?{}",
        serde_urlencoded::to_string(rest).ok()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_sent_to_itself_without_the_token_and_never_elsewhere() {
        let req = |uri: &str| {
            axum::http::Request::builder()
                .uri(uri)
                .header(header::ACCEPT, "text/html")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let to = |uri: &str| page_without_token(&req(uri));
        assert_eq!(to("/?token=t").as_deref(), Some("/"));
        assert_eq!(to("/?a=1&token=t&b=2").as_deref(), Some("/?a=1&b=2"));
        assert_eq!(
            to("//evil.example/?token=t").as_deref(),
            Some("/evil.example/")
        );
        assert_eq!(
            to("/\\evil.example?token=t").as_deref(),
            Some("/evil.example")
        );
        assert_eq!(to("/api/v1/query?series=a&token=t"), None);
        assert_eq!(to("/ws?token=t"), None);
    }

    #[test]
    fn tls_is_known_from_the_uri_or_the_proxy_in_front() {
        let req = |h: &[(&str, &str)]| {
            let mut b = axum::http::Request::builder().uri("/");
            for (k, v) in h {
                b = b.header(*k, *v);
            }
            b.body(axum::body::Body::empty()).unwrap()
        };
        assert!(!over_tls(&req(&[])));
        assert!(over_tls(&req(&[("x-forwarded-proto", "https")])));
        assert!(over_tls(&req(&[("x-forwarded-proto", "HTTPS, http")])));
        assert!(!over_tls(&req(&[("x-forwarded-proto", "http")])));
        assert!(over_tls(&req(&[(
            "forwarded",
            "for=1.2.3.4;proto=https;by=x"
        )])));
        assert!(over_tls(&req(&[("forwarded", "proto=\"https\"")])));
        assert!(!over_tls(&req(&[("forwarded", "for=1.2.3.4;proto=http")])));
        let tls = axum::http::Request::builder()
            .uri("https://a.example/")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(over_tls(&tls));
    }

    #[test]
    fn local_names_are_ip_literals_and_localhost() {
        for local in [
            "127.0.0.1:3000",
            "127.0.0.1",
            "[::1]:3000",
            "[::1]",
            "localhost:3000",
            "LocalHost",
            "localhost.",
            "app.localhost:8080",
            "192.168.1.5:3000",
        ] {
            assert!(is_local_name(local), "{local}");
        }
        for remote in [
            "attacker.example:3000",
            "localhost.example",
            "",
            "[evil]:1",
            "1.2.3:80",
        ] {
            assert!(!is_local_name(remote), "{remote}");
        }
    }

    #[test]
    fn tokens_compare_and_hide() {
        let t = Tokens::new(["alpha".to_string(), "beta".to_string(), String::new()]);
        assert!(t.accepts("beta"));
        assert!(!t.accepts("bet"));
        assert!(!t.accepts(""));
        assert_eq!(format!("{t:?}"), "Tokens(2 configured)");
    }

    #[test]
    fn policy_follows_the_address() {
        let lo: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        let none = Tokens::default();
        assert!(matches!(
            IngestAuth::decide(&none, false, lo),
            IngestAuth::Loopback
        ));
        assert!(matches!(
            IngestAuth::decide(&none, false, public),
            IngestAuth::Closed { .. }
        ));
        assert!(matches!(
            IngestAuth::decide(&none, true, public),
            IngestAuth::Open
        ));
        let some = Tokens::new(["x".to_string()]);
        assert!(matches!(
            IngestAuth::decide(&some, false, lo),
            IngestAuth::Tokens(_)
        ));
    }
}

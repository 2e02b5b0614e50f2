//! Operations: the health probe and the signals that stop the server.

use super::metrics::Outcome;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tracing::Instrument;

/// `GET /healthz`: liveness. Answers 200 while the process serves, so a supervisor restarts
/// it only when it is stuck, never because Redis is away (a restart would not bring Redis
/// back). In Redis mode the body says whether Redis is reachable; `/readyz` is the probe
/// that fails then.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    if state.redis.is_none() {
        return Json(json!({"status": "ok"}));
    }
    match state.status.borrow().degraded.clone() {
        None => Json(json!({"status": "ok", "redis": {"connected": true}})),
        Some(why) => {
            Json(json!({"status": "degraded", "redis": {"connected": false, "error": why}}))
        }
    }
}

/// `GET /readyz`: whether this instance can take and show points now (its store answers):
/// 200, or 503 with the reason. For load balancers and orchestrators.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": e.to_string()})),
        ),
    }
}

/// `GET /metrics`: the Prometheus text format ([`super::metrics`]).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state
            .metrics
            .render(state.hub.series_count(), state.store.read_cache_bytes()),
    )
}

/// Middleware, outermost: gives each request an id (the caller's `X-Request-Id` when it
/// sends a sane one), runs it inside a span carrying the id so every log line of the
/// request names it, returns the id, logs the outcome, and counts ingest outcomes.
/// Query strings are not logged: `/write?p=token` carries credentials.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_string);
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    let ingest = super::ingest::is_ingest(req.method(), req.uri().path());
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status();
    let _enter = span.enter();
    if status.is_server_error() {
        tracing::warn!(
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    } else {
        tracing::debug!(
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    }
    if ingest {
        state.metrics.ingest_request(if status.is_success() {
            Outcome::Accepted
        } else if status.is_client_error() {
            Outcome::Refused
        } else {
            Outcome::Unavailable
        });
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Unique within this process and unlikely to repeat across restarts: a start-time prefix
/// and a counter.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| format!("{:x}", super::now_ns() / 1_000_000 % 0xff_ffff));
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Appends the server's own figures as `livechart.*` series every [`SELF_METRICS_EVERY`],
/// until shutdown. In Redis mode each instance labels its own (`instance`).
pub async fn self_metrics(state: AppState, instance: Option<String>) {
    let mut tick = tokio::time::interval(SELF_METRICS_EVERY);
    // After a slow store (Redis timing out), no burst of catch-up ticks with bogus rates.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut warned = false;
    let mut before = (state.metrics.snapshot(), std::time::Instant::now());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let now = (state.metrics.snapshot(), std::time::Instant::now());
        let secs = now.1.duration_since(before.1).as_secs_f64();
        let at = super::now_ns();
        let mut batch = crate::model::Batch::new();
        for (name, value) in
            super::metrics::as_points(before.0, now.0, secs, state.hub.series_count())
        {
            let labels: Vec<(&str, &str)> =
                instance.iter().map(|i| ("instance", i.as_str())).collect();
            let (Ok(key), Ok(point)) = (
                crate::model::SeriesKey::with_labels(name, labels),
                crate::model::Point::new(at, value),
            ) else {
                continue;
            };
            batch.push(key, point);
        }
        before = now;
        match state.store.append(batch).await {
            Ok(_) => warned = false,
            // Once per failing stretch: a full series cap would otherwise say it every 10 s.
            Err(e) if !warned => {
                tracing::warn!("own figures (livechart.*) not stored: {e}");
                warned = true;
            }
            Err(_) => {}
        }
    }
}

/// How often the server records its own figures as series.
pub const SELF_METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET|HEAD /ping` as InfluxDB answers it: clients (Telegraf, Vector, the Influx libraries)
/// probe it before writing.
pub async fn influx_ping() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::NO_CONTENT,
        [
            ("x-influxdb-version", "livechart"),
            ("x-influxdb-build", "OSS"),
        ],
    )
}

/// `GET /health` in InfluxDB 2.x's shape, for clients that check it before writing.
pub async fn influx_health() -> Json<Value> {
    Json(json!({"name": "livechart", "status": "pass", "message": "ready for writes"}))
}

/// `POST /query`: InfluxDB 1.x clients (Telegraf's influxdb output) send `CREATE DATABASE`
/// before writing. livechart has one namespace, so that succeeds and does nothing; any other
/// InfluxQL is refused with a clear 400 rather than a 404.
pub async fn influx_query(
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut text = String::new();
    for part in [
        query.unwrap_or_default(),
        String::from_utf8_lossy(&body).into_owned(),
    ] {
        if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(&part) {
            for (k, v) in pairs {
                if k == "q" {
                    text.push_str(&v);
                }
            }
        }
    }
    if text
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("CREATE DATABASE")
    {
        return Json(json!({"results": [{"statement_id": 0}]})).into_response();
    }
    (
        axum::http::StatusCode::BAD_REQUEST,
        Json(json!({"error": "livechart accepts writes only; InfluxQL queries are not supported"})),
    )
        .into_response()
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, whichever comes first; graceful shutdown starts
/// then. If a handler cannot be installed, that signal simply never fires.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

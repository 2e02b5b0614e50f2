//! Operations: the health probe and the signals that stop the server.

use axum::Json;
use serde_json::{json, Value};

/// `GET /healthz`: answers while the server accepts requests; for load balancers and scripts
/// that wait for start-up. In Redis mode it also says whether Redis is reachable, and
/// answers 503 while it is not: this instance can then neither take nor show new points.
pub async fn health(
    axum::extract::State(state): axum::extract::State<super::AppState>,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    if state.redis.is_none() {
        return (StatusCode::OK, Json(json!({"status": "ok"})));
    }
    match state.status.borrow().degraded.clone() {
        None => (
            StatusCode::OK,
            Json(json!({"status": "ok", "redis": {"connected": true}})),
        ),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "redis": {"connected": false, "error": why}})),
        ),
    }
}

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

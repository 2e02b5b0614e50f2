//! `GET /api/v1/series`: what the server holds, for the series picker and for scripts.
//!
//! Filters: `prefix=cpu.` keeps names starting with it; `label=host=a` (repeatable) keeps series
//! carrying every given label. Answers `{"series": [{"series", "labels", "points", "first_ns",
//! "last_ns", "last_value", "rate"}, …]}` in name order.

use super::ingest::now_ns;
use super::AppState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

pub async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        match serde_urlencoded::from_str(query.as_deref().unwrap_or("")) {
            Ok(p) => p,
            Err(e) => return bad(format!("bad query string: {e}")),
        };
    let mut prefix = String::new();
    let mut labels: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "prefix" => prefix = v,
            "label" => match v.split_once('=') {
                Some((lk, lv)) if !lk.is_empty() => labels.push((lk.to_string(), lv.to_string())),
                _ => return bad(format!("label filter {v:?} must be key=value")),
            },
            // The viewer token (checked by the auth middleware before this runs).
            "token" => {}
            other => {
                return bad(format!(
                    "unknown parameter {other:?} (use prefix, label, token)"
                ))
            }
        }
    }
    let all = match state.store.list(now_ns()).await {
        Ok(all) => all,
        Err(e) => return (e.status(), Json(json!({"error": e.to_string()}))).into_response(),
    };
    let series: Vec<_> = all
        .into_iter()
        .filter(|s| s.series.name().starts_with(&prefix))
        .filter(|s| {
            s.series
                .has_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        })
        .collect();
    Json(json!({ "series": series })).into_response()
}

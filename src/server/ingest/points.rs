//! `POST /api/v1/points`: batch JSON or NDJSON, see [`crate::parse::points_json`].
//!
//! `?precision=ns|us|ms|s` sets the unit of numeric timestamps (default ms). Answers
//! `200 {"points": N, "series": M}`, or an error `{"error": "…", "details": ["path: reason", …]}`.

use super::body::{read_decoded, BodyError};
use super::{accept, now_ns, IngestError, MAX_REPORTED_ERRORS};
use crate::parse::points_json::{self, JsonError};
use crate::parse::timestamp::Precision;
use crate::server::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug)]
pub struct PointsError {
    status: StatusCode,
    message: String,
    details: Vec<String>,
}

impl PointsError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }
}

impl From<BodyError> for PointsError {
    fn from(e: BodyError) -> Self {
        Self::new(e.status(), e.to_string())
    }
}

impl From<IngestError> for PointsError {
    fn from(e: IngestError) -> Self {
        Self::new(e.status(), e.to_string())
    }
}

impl IntoResponse for PointsError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message});
        if !self.details.is_empty() {
            body["details"] = json!(self.details);
        }
        (self.status, Json(body)).into_response()
    }
}

enum Format {
    Json,
    NdJson,
}

fn format_of(headers: &HeaderMap) -> Result<Format, PointsError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""))
        .unwrap_or("");
    let essence = crate::parse::media_type(raw);
    match essence.as_str() {
        "application/json" => Ok(Format::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/jsonlines" => Ok(Format::NdJson),
        _ => Err(PointsError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json or application/x-ndjson, got {raw:?}"),
        )),
    }
}

pub async fn post(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PointsError> {
    let Query(params) = query
        .map_err(|e| PointsError::new(StatusCode::BAD_REQUEST, format!("bad query string: {e}")))?;
    let precision = match params.get("precision").map(String::as_str) {
        None | Some("") => Precision::Milliseconds,
        Some(p @ ("ns" | "us" | "ms" | "s")) => Precision::parse(p).unwrap_or_default(),
        Some(p) => {
            return Err(PointsError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid precision {p:?}; use ns, us, ms or s"),
            ))
        }
    };
    let format = format_of(&headers)?;
    let bytes = read_decoded(&headers, body, state.config.limits.max_body_bytes).await?;
    let now = now_ns();
    let parsed = match format {
        Format::Json => points_json::parse_document(&bytes, precision, now, MAX_REPORTED_ERRORS),
        Format::NdJson => points_json::parse_ndjson(&bytes, precision, now, MAX_REPORTED_ERRORS),
    };
    let batch = parsed.map_err(|errors: Vec<JsonError>| PointsError {
        status: StatusCode::BAD_REQUEST,
        message: format!(
            "{} problem{} in the request, nothing was stored",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
        details: errors.iter().map(ToString::to_string).collect(),
    })?;
    let ack = accept(&state, batch).await?;
    Ok(Json(json!({"points": ack.points, "series": ack.series})).into_response())
}

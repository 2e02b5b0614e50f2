//! `POST /chart_data`, the original demo's endpoint, answering in its shape:
//! `{"status":"success","message":"New data added!"}` or `{"status":"error","message":"…"}`.

use super::body::{read_limited, BodyError};
use super::{accept, now_ns, IngestError};
use crate::model::Batch;
use crate::parse::chart_data::{self, ChartDataError};
use crate::server::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ChartDataFailure {
    #[error(transparent)]
    Parse(#[from] ChartDataError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl IntoResponse for ChartDataFailure {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Body(e) => e.status(),
            Self::Ingest(e) => e.status(),
            Self::Parse(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(body(&self.to_string()))).into_response()
    }
}

/// The demo's error shape, which its clients read.
pub fn body(message: &str) -> serde_json::Value {
    json!({"status": "error", "message": message})
}

pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ChartDataFailure> {
    let limit = state.config.limits.max_body_bytes;
    let bytes = read_limited(body, limit).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let (series, point) = chart_data::parse(content_type, &bytes, now_ns())?;
    let mut batch = Batch::new();
    batch.push(series, point);
    accept(&state, batch).await?;
    Ok(Json(json!({"status": "success", "message": "New data added!"})).into_response())
}

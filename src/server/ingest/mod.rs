//! The one path every accepted point takes: limits, store, then live fan-out.
//!
//! Each format (the demo's `/chart_data`, the `push_points` server function) parses into a
//! [`Batch`] and calls [`accept`]; nothing reaches the store or the browsers any other way.

pub mod body;
pub mod chart_data;
pub mod influx;
pub mod key_cache;
pub mod points;

use super::store::StoreError;
use super::AppState;
use crate::model::Batch;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What an accepted request added to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub points: usize,
    pub series: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("no points in the request")]
    Empty,
    #[error("{got} points in one request; the limit is {limit}")]
    TooManyPoints { got: usize, limit: usize },
    #[error("series {series} has {got} labels; the limit is {limit}")]
    TooManyLabels {
        series: String,
        got: usize,
        limit: usize,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many problems one refused request reports: enough to fix a batch, short enough to read.
pub const MAX_REPORTED_ERRORS: usize = 10;

impl IngestError {
    /// Too many points is a size problem (413); a new series past the cap is a cardinality
    /// limit (422, naming it); everything else is a bad request.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Empty => StatusCode::BAD_REQUEST,
            Self::TooManyPoints { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyLabels { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(e) => e.status(),
        }
    }
}

impl body::BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) | Self::InflatesTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadGzip(_) | Self::Read(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Stores `batch` whole and then shows what was stored to every live viewer. A refused batch
/// leaves no trace in either.
pub async fn accept(state: &AppState, batch: Batch) -> Result<Accepted, IngestError> {
    if batch.is_empty() {
        return Err(IngestError::Empty);
    }
    let limit = state.config.limits.max_points_per_request;
    if batch.point_count() > limit {
        return Err(IngestError::TooManyPoints {
            got: batch.point_count(),
            limit,
        });
    }
    let max_labels = state.config.limits.max_labels;
    if let Some((key, _)) = batch.iter().find(|(k, _)| k.labels().len() > max_labels) {
        return Err(IngestError::TooManyLabels {
            series: key.to_string(),
            got: key.labels().len(),
            limit: max_labels,
        });
    }
    // Outside the deadline middleware (the server function path in tests) there is no flag.
    let _ = COMMITTING.try_with(|c| c.store(true, Ordering::Release));
    // The store shows what it stored to live viewers itself, in commit order.
    let started = std::time::Instant::now();
    let stored = state.store.append(batch).await?;
    state.metrics.commit(started.elapsed());
    state.metrics.ingest_points(stored.points);
    // What is now stored: points sharing a series and timestamp count once (the later wins),
    // and a point older than everything in a full ring does not count.
    Ok(Accepted {
        points: stored.points,
        series: stored.series,
    })
}

/// Requests that add points; everything else (pages, the live feed, queries) is read access.
pub fn is_ingest(method: &Method, path: &str) -> bool {
    method == Method::POST
        && matches!(
            path,
            "/chart_data" | "/api/v1/points" | "/api/v2/write" | "/write" | "/api/push_points"
        )
}

tokio::task_local! {
    /// Set by [`accept`] once a batch goes to the store: from then on the request's outcome
    /// is the store's, and the deadline must wait for it rather than claim nothing was stored.
    static COMMITTING: Arc<AtomicBool>;
}

/// Middleware: an ingest request, body upload included, gets `--request-timeout-secs`; past it
/// the client is answered 408 and the half-read request is dropped, nothing stored. A request
/// whose batch already went to the store is answered by the store instead (a commit takes
/// milliseconds; claiming "nothing was stored" for points about to be committed would lie).
pub async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !is_ingest(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let limit = state.config.limits.request_timeout;
    let path = req.uri().path().to_string();
    let committing = Arc::new(AtomicBool::new(false));
    let handler = COMMITTING.scope(committing.clone(), next.run(req));
    tokio::pin!(handler);
    match tokio::time::timeout(limit, &mut handler).await {
        Ok(res) => res,
        Err(_) if committing.load(Ordering::Acquire) => handler.await,
        Err(_) => error_for(
            &path,
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request took longer than the {}-second limit; nothing was stored",
                limit.as_secs()
            ),
        ),
    }
}

/// An error answer from outside the handlers (auth, the request deadline) in the shape each
/// ingest endpoint's clients read: the demo's, InfluxDB's, or `{"error"}`.
pub fn error_for(path: &str, status: StatusCode, message: String) -> Response {
    let body = match path {
        "/chart_data" => chart_data::body(&message),
        "/api/v2/write" | "/write" => influx::body(influx::code_of(status), &message),
        _ => serde_json::json!({"error": message}),
    };
    (status, axum::Json(body)).into_response()
}

pub use super::now_ns;

//! Server functions: typed calls from Rust (the WASM client or any Rust program) to the server.
//!
//! `push_points` is served at `POST /api/push_points` with a JSON body
//! `{"series": "…", "points": [{"value": 1.5, "timestamp": 1764230400000}, …]}`; timestamps take
//! the same forms as `/chart_data` and default to "now". Bad input answers 400, never 500.
//!
//! `history` is served at `POST /api/history` with a JSON [`HistoryQuery`]: the same answer
//! as `GET /api/v1/query`, for the chart and for Rust clients.

use leptos::prelude::*;
use leptos::server_fn::codec::{Json, JsonEncoding};
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

pub use crate::history::{HistoryQuery, HistoryResult};

/// One point as a Rust client sends it; `timestamp` as in `/chart_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushPoint {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    pub points: usize,
    pub series: usize,
}

/// Errors of the server functions, as the caller sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// The request was refused; the text says why. Answered with status 400.
    #[error("{0}")]
    BadRequest(String),
    /// The server cannot answer now (its store is unavailable: shutting down, disk trouble);
    /// nothing was done, try again. Answered with status 503.
    #[error("{0}")]
    Unavailable(String),
    /// The call itself failed (network, encoding, server trouble).
    #[error("{0}")]
    Call(String),
}

impl ApiError {
    /// An error the server answers with `status`: a 5xx is "try again", anything else a
    /// refusal. Sets the status when running on the server.
    pub fn from_status(status: u16, message: String) -> Self {
        set_status(status);
        if status >= 500 {
            Self::Unavailable(message)
        } else {
            Self::BadRequest(message)
        }
    }

    /// A refusal: sets the HTTP status to 400 when running on the server.
    pub fn bad_request(message: impl Into<String>) -> Self {
        set_status(400);
        Self::BadRequest(message.into())
    }
}

/// Sets the response status of the server function call being handled; nothing elsewhere.
fn set_status(_code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(res), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        axum::http::StatusCode::from_u16(_code),
    ) {
        res.set_status(status);
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // On the server, arguments that do not decode are the caller's fault: answer 400
        // (server_fn would say 500). On the client these variants describe a bad response.
        match value {
            // axum's body limit (DefaultBodyLimit, set from --max-body-bytes) surfaces here as
            // a failed read ending in this text; it deserves 413 like every other endpoint.
            // The end, not anywhere: a decode error quotes the body's own strings.
            ServerFnErrorErr::Deserialization(ref e)
                if cfg!(feature = "ssr") && e.ends_with("length limit exceeded") =>
            {
                set_status(413);
                Self::BadRequest(format!("request body is larger than the limit: {e}"))
            }
            ServerFnErrorErr::Args(_)
            | ServerFnErrorErr::MissingArg(_)
            | ServerFnErrorErr::Deserialization(_)
                if cfg!(feature = "ssr") =>
            {
                Self::bad_request(format!("invalid arguments: {value}"))
            }
            other => Self::Call(other.to_string()),
        }
    }
}

/// Appends points to one series through the same path as every other ingest format.
#[server(endpoint = "push_points", input = Json)]
pub async fn push_points(series: String, points: Vec<PushPoint>) -> Result<PushAck, ApiError> {
    use crate::model::{Batch, Point, SeriesKey};
    use crate::parse::timestamp;
    use crate::server::ingest::{accept, now_ns};
    use crate::server::AppState;

    let state = use_context::<AppState>()
        .ok_or_else(|| ApiError::Call("server state is missing".into()))?;
    let key = SeriesKey::new(series).map_err(|e| ApiError::bad_request(format!("series: {e}")))?;
    let now = now_ns();
    let mut batch = Batch::new();
    for (i, p) in points.iter().enumerate() {
        let ts = match &p.timestamp {
            None => None,
            Some(v) => timestamp::parse_json(v)
                .map_err(|e| ApiError::bad_request(format!("points[{i}].timestamp: {e}")))?,
        };
        let point = Point::new(ts.unwrap_or(now), p.value)
            .map_err(|e| ApiError::bad_request(format!("points[{i}].value: {e}")))?;
        batch.push(key.clone(), point);
    }
    let ack = accept(&state, batch).await.map_err(|e| {
        // Limits keep their own status (413 too many points, 422 too many series).
        ApiError::from_status(e.status().as_u16(), e.to_string())
    })?;
    Ok(PushAck {
        points: ack.points,
        series: ack.series,
    })
}

/// One series' history in a time range, decimated to the caller's width or raw.
#[server(endpoint = "history", input = Json)]
pub async fn history(query: HistoryQuery) -> Result<HistoryResult, ApiError> {
    use crate::history::{MAX_QUERY_WIDTH, MAX_RAW_POINTS};
    use crate::server::AppState;

    let state = use_context::<AppState>()
        .ok_or_else(|| ApiError::Call("server state is missing".into()))?;
    if !(1..=MAX_QUERY_WIDTH).contains(&query.width) {
        return Err(ApiError::bad_request(format!(
            "width {} must be 1 to {MAX_QUERY_WIDTH}",
            query.width
        )));
    }
    if query
        .raw_limit
        .is_some_and(|l| !(1..=MAX_RAW_POINTS).contains(&l))
    {
        return Err(ApiError::bad_request(format!(
            "raw_limit must be 1 to {MAX_RAW_POINTS}"
        )));
    }
    if query.from_ns >= query.to_ns {
        return Err(ApiError::bad_request("from_ns must be before to_ns"));
    }
    state
        .store
        .history(query)
        .await
        .map_err(|e| ApiError::from_status(e.status().as_u16(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::ApiError;

    #[test]
    fn server_trouble_is_told_apart_from_a_refusal() {
        // The chart retries the first and shows "no history" for the second.
        assert_eq!(
            ApiError::from_status(503, "store unavailable".into()),
            ApiError::Unavailable("store unavailable".into())
        );
        assert_eq!(
            ApiError::from_status(404, "no such series".into()),
            ApiError::BadRequest("no such series".into())
        );
    }
}

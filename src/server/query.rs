//! `GET /api/v1/query`: the history of one series over a time range, downsampled with M4 to
//! the pixel columns the caller will draw (so a line drawn from the answer is the line drawn
//! from every raw point), or raw points up to a limit. JSON by default; CSV with
//! `format=csv` or `Accept: text/csv`, which is the export.
//!
//! Parameters: `series` (required), `label=key=value` (repeatable; the series' exact label
//! set), `from` / `to` (epoch milliseconds, RFC 3339, `now` or `now-15m`; default the last
//! hour), `width` (columns, default 1000, at most [`MAX_QUERY_WIDTH`]), `raw=true` with
//! `limit` (default and ceiling [`MAX_RAW_POINTS`]), `format=json|csv`.

use super::config::parse_duration;
use super::ingest::now_ns;
use super::store::{HistoryQuery, HistoryResult, StoreError, MAX_QUERY_WIDTH, MAX_RAW_POINTS};
use super::AppState;
use crate::model::SeriesKey;
use crate::parse::timestamp;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::fmt::Write as _;

/// Columns when the caller does not say: a typical chart's width in CSS pixels.
const DEFAULT_WIDTH: usize = 1_000;
/// Range when the caller gives no `from`.
const DEFAULT_SPAN_NS: i64 = 3_600 * crate::model::NANOS_PER_SEC;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Bad(_) => StatusCode::BAD_REQUEST,
            Self::Store(e) => e.status(),
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// Parses the query string into a store query and an answer format.
fn parse(query: &str, headers: &HeaderMap, now: i64) -> Result<(HistoryQuery, Format), QueryError> {
    let bad = |m: String| QueryError::Bad(m);
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| bad(format!("bad query string: {e}")))?;
    let (mut name, mut labels) = (None, Vec::new());
    let (mut from, mut to, mut width, mut raw, mut limit, mut format) =
        (None, None, DEFAULT_WIDTH, false, MAX_RAW_POINTS, None);
    for (k, v) in pairs {
        match k.as_str() {
            "series" => name = Some(v),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => labels.push((lk.to_string(), lv.to_string())),
                None => return Err(bad(format!("label {v:?} must be key=value"))),
            },
            "from" => from = Some(time_param("from", &v, now)?),
            "to" => to = Some(time_param("to", &v, now)?),
            "width" => width = count_param("width", &v, MAX_QUERY_WIDTH)?,
            "raw" => {
                raw = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("raw {v:?} must be true or false"))),
                }
            }
            "limit" => limit = count_param("limit", &v, MAX_RAW_POINTS)?,
            "format" => {
                format = Some(match v.as_str() {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    _ => return Err(bad(format!("format {v:?} must be json or csv"))),
                })
            }
            // The viewer token (checked by the auth middleware before this runs).
            "token" => {}
            other => {
                return Err(bad(format!(
                    "unknown parameter {other:?} (use series, label, from, to, width, raw, limit, format, token)"
                )))
            }
        }
    }
    let name = name.ok_or_else(|| bad("missing parameter series".into()))?;
    let series = SeriesKey::with_labels(name, labels).map_err(|e| bad(e.to_string()))?;
    let to_ns = to.unwrap_or(now);
    let from_ns = from.unwrap_or(to_ns.saturating_sub(DEFAULT_SPAN_NS));
    if from_ns >= to_ns {
        return Err(bad(format!(
            "from ({from_ns} ns) must be before to ({to_ns} ns)"
        )));
    }
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    let format = format.unwrap_or(if wants_csv { Format::Csv } else { Format::Json });
    Ok((
        HistoryQuery {
            series,
            from_ns,
            to_ns,
            width,
            raw_limit: raw.then_some(limit),
        },
        format,
    ))
}

/// A whole number from 1 to `max`.
fn count_param(name: &str, v: &str, max: usize) -> Result<usize, QueryError> {
    v.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| QueryError::Bad(format!("{name} {v:?} must be 1 to {max}")))
}

/// `now`, `now-15m`, epoch milliseconds, or RFC 3339.
fn time_param(name: &str, v: &str, now: i64) -> Result<i64, QueryError> {
    if v == "now" {
        return Ok(now);
    }
    if let Some(ago) = v.strip_prefix("now-") {
        let d = parse_duration(ago).map_err(|e| QueryError::Bad(format!("{name}: {e}")))?;
        return Ok(now.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
    }
    timestamp::parse_str(v).map_err(|e| QueryError::Bad(format!("{name}: {e}")))
}

pub async fn get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let (q, format) = parse(query.as_deref().unwrap_or(""), &headers, now_ns())?;
    let result = state.store.history(q).await?;
    Ok(match format {
        Format::Json => Json(result).into_response(),
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"livechart.csv\"",
                ),
            ],
            to_csv(&result),
        )
            .into_response(),
    })
}

/// `time,timestamp_ns,value` rows: RFC 3339 for people and spreadsheets, nanoseconds exact.
pub fn to_csv(result: &HistoryResult) -> String {
    let mut out = String::with_capacity(result.points.len() * 48 + 32);
    out.push_str("time,timestamp_ns,value\n");
    for p in &result.points {
        let time = crate::server::store::rfc3339(p.ts_ns);
        let _ = writeln!(out, "{time},{},{}", p.ts_ns, p.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<(HistoryQuery, Format), QueryError> {
        parse(s, &HeaderMap::new(), 10_000_000_000_000)
    }

    #[test]
    fn parameters_and_their_errors() {
        let (h, f) = q("series=cpu&label=host=a&from=now-1s&width=10").unwrap();
        assert_eq!(h.series.to_string(), "cpu{host=a}");
        assert_eq!(
            (h.from_ns, h.to_ns, h.width),
            (9_999_000_000_000, 10_000_000_000_000, 10)
        );
        assert_eq!((h.raw_limit, f), (None, Format::Json));
        let (h, f) = q("series=cpu&raw=true&limit=5&format=csv&from=0&to=1000").unwrap();
        assert_eq!(
            (h.raw_limit, f, h.from_ns, h.to_ns),
            (Some(5), Format::Csv, 0, 1_000_000_000)
        );
        for (bad, says) in [
            ("", "missing parameter series"),
            ("series=a&width=0", "width"),
            ("series=a&width=99999", "width"),
            ("series=a&from=now-1x", "unknown unit"),
            ("series=a&from=yesterday", "from"),
            ("series=a&from=2000&to=1000", "must be before"),
            ("series=a&raw=maybe", "raw"),
            ("series=a&limit=0", "limit"),
            ("series=a&format=xml", "format"),
            ("series=a&colour=red", "unknown parameter"),
            ("series=a&label=host", "key=value"),
            ("series=", "empty"),
        ] {
            let e = q(bad).expect_err(bad).to_string();
            assert!(e.contains(says), "{bad:?}: {e:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, "text/csv".parse().unwrap());
        assert_eq!(parse("series=a", &headers, 5).unwrap().1, Format::Csv);
    }
}

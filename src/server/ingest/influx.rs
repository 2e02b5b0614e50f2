//! InfluxDB line protocol writes: `POST /api/v2/write` (2.x: `org`, `bucket`, `precision`) and
//! `POST /write` (1.x: `db`, `precision`, `u`/`p`).
//!
//! Answers as InfluxDB does, so Telegraf and the client libraries show useful messages: 204 on
//! success, errors as `{"code": "invalid", "message": "…"}` naming the lines. Each numeric field
//! becomes a series `measurement.field` (just `measurement` for a field named `value`) with the
//! tags as labels; string fields are skipped and counted in the `X-Livechart-Skipped-Fields`
//! header. `org`, `bucket` and `db` are accepted and ignored: livechart has one namespace.

use super::body::{read_decoded, BodyError};
use super::key_cache::{self, FieldKeys, KeyCache};
use super::{accept, now_ns, IngestError, MAX_REPORTED_ERRORS};
use crate::model::{Batch, Point, SeriesKey, SeriesMap};
use crate::parse::line_protocol::{self, Precision};
use crate::server::store::StoreError;
use crate::server::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::borrow::Cow;
use std::collections::HashMap;

/// Header carrying how many string fields a write skipped.
pub const SKIPPED_FIELDS_HEADER: &str = "x-livechart-skipped-fields";

/// An error in InfluxDB's shape; `code` uses InfluxDB's names.
#[derive(Debug)]
pub struct InfluxError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl InfluxError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
        }
    }
}

impl InfluxError {
    /// InfluxDB's name for each status this server answers with.
    fn with_status(status: StatusCode, message: String) -> Self {
        Self {
            status,
            code: code_of(status),
            message,
        }
    }
}

/// InfluxDB's `code` for an answer with `status`.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable entity",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::REQUEST_TIMEOUT => "request timeout",
        _ => "invalid",
    }
}

impl From<BodyError> for InfluxError {
    fn from(e: BodyError) -> Self {
        Self::with_status(e.status(), e.to_string())
    }
}

impl From<IngestError> for InfluxError {
    fn from(e: IngestError) -> Self {
        Self::with_status(e.status(), e.to_string())
    }
}

impl IntoResponse for InfluxError {
    fn into_response(self) -> Response {
        (self.status, Json(body(self.code, &self.message))).into_response()
    }
}

/// 2.x clients read `code` and `message`; 1.x clients (Telegraf's influxdb output, the
/// influxdb1 client) read `error`.
pub fn body(code: &str, message: &str) -> serde_json::Value {
    json!({"code": code, "message": message, "error": message})
}

/// `POST /api/v2/write`. It and `/write` differ in query parameters livechart ignores
/// (`org`/`bucket` against `db`), and in a body without points: 2.x refuses it ("writing
/// requires points").
pub async fn write(
    state: State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, InfluxError> {
    write_lines(state, query, headers, body, false).await
}

/// `POST /write`: InfluxDB 1.x answers a body without points (empty, or only comments) with
/// 204, and node-influx's `writePoints([])` sends just that.
pub async fn write_v1(
    state: State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, InfluxError> {
    write_lines(state, query, headers, body, true).await
}

async fn write_lines(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
    empty_is_ok: bool,
) -> Result<Response, InfluxError> {
    let Query(params) =
        query.map_err(|e| InfluxError::invalid(format!("bad query string: {e}")))?;
    let precision = match params.get("precision").map(String::as_str) {
        None | Some("") => Precision::Nanoseconds,
        Some(p) => Precision::parse(p).ok_or_else(|| {
            InfluxError::invalid(format!("invalid precision {p:?}; use ns, us, ms or s"))
        })?,
    };
    let bytes = read_decoded(&headers, body, state.config.limits.max_body_bytes).await?;
    let options = line_protocol::Options {
        precision,
        max_errors: MAX_REPORTED_ERRORS,
        max_line_bytes: state.config.limits.max_line_bytes,
    };
    let limits = &state.config.limits;
    let batch_limits = BatchLimits {
        max_points: limits.max_points_per_request,
        max_labels: limits.max_labels,
        max_series: limits.max_series,
    };
    let (batch, skipped) = to_batch(&bytes, options, now_ns(), batch_limits, &state.series_keys)
        .map_err(|e| match e {
            BatchError::Lines(errors) => InfluxError::invalid(summarize(&errors)),
            BatchError::Limit(e) => InfluxError::from(e),
        })?;
    if batch.is_empty() && (skipped > 0 || empty_is_ok) {
        return Ok(no_content(skipped));
    }
    accept(&state, batch).await?;
    Ok(no_content(skipped))
}

fn no_content(skipped: usize) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    if skipped > 0 {
        res.headers_mut()
            .insert(SKIPPED_FIELDS_HEADER, HeaderValue::from(skipped));
    }
    res
}

fn summarize(errors: &[(usize, String)]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .map(|(n, e)| format!("line {n}: {e}"))
        .collect();
    let noun = if errors.len() == 1 { "line" } else { "lines" };
    let more = if errors.len() >= MAX_REPORTED_ERRORS {
        " (first ones shown)"
    } else {
        ""
    };
    format!(
        "{} bad {noun}{more}, nothing was written: {}",
        errors.len(),
        shown.join("; ")
    )
}

/// Bounds checked while a body is turned into points, so a hostile body is refused before it
/// allocates, not after.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_points: usize,
    pub max_labels: usize,
    /// Distinct series one request may name (the store applies the global cap afterwards).
    pub max_series: usize,
}

impl BatchLimits {
    /// No limits beyond the parser's: for tests and fuzzing.
    pub fn unbounded() -> Self {
        Self {
            max_points: usize::MAX,
            max_labels: crate::model::MAX_LABELS,
            max_series: usize::MAX,
        }
    }
}

/// Why a body did not become a batch.
#[derive(Debug)]
pub enum BatchError {
    /// Bad lines: line number and reason, in line order, at most [`MAX_REPORTED_ERRORS`].
    Lines(Vec<(usize, String)>),
    /// A limit crossed; nothing further was parsed.
    Limit(IngestError),
}

/// Turns a line protocol body into a batch. Returns the number of string fields skipped.
///
/// Hot path: a series key (name and labels, validated) is built once per distinct
/// `(measurement+tags text, field)` in the body and found again by borrowed text, so repeated
/// series cost a hash lookup per point instead of allocations. Texts that spell one series
/// differently (tags in another order, `cpu a.b=` and `cpu.a b=`) share one entry, whose
/// points stay in line order, so of two points with one series and timestamp the later line
/// wins.
pub fn to_batch(
    body: &[u8],
    options: line_protocol::Options,
    now: i64,
    limits: BatchLimits,
    cache: &KeyCache,
) -> Result<(Batch, usize), BatchError> {
    type Entry = Result<(SeriesKey, Vec<Point>), String>;
    // Per distinct measurement+tags text, its fields' entries in first-seen order: one hash
    // lookup per line, and the fields of the next line with that text are found in the same
    // positions. Borrowed field names clone for free; only escaped keys allocate.
    let mut groups: HashMap<&str, Group<'_>> = HashMap::new();
    let mut entries: Vec<Entry> = Vec::new();
    // The entry of each series, for texts that spell it another way: looked up once per
    // new text and field, not per point.
    let mut entry_of: SeriesMap<usize> = SeriesMap::default();
    let mut skipped = 0;
    let mut points = 0usize;
    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut limit: Option<IngestError> = None;
    let parsed = line_protocol::parse(body, options, |n, line| {
        if bad.len() >= MAX_REPORTED_ERRORS || limit.is_some() {
            return;
        }
        if line.tags.len() > limits.max_labels {
            limit = Some(IngestError::TooManyLabels {
                series: line.measurement.to_string(),
                got: line.tags.len(),
                limit: limits.max_labels,
            });
            return;
        }
        let ts = line.timestamp.unwrap_or(now);
        let group = groups.entry(line.series_text).or_insert_with(|| Group {
            fields: Vec::new(),
            cached: cache.get(line.series_text),
            built: Vec::new(),
        });
        for (position, (field, value)) in line.fields.iter().enumerate() {
            let Some(v) = value.as_f64() else {
                skipped += 1;
                continue;
            };
            let point = match Point::new(ts, v) {
                Ok(p) => p,
                Err(e) => {
                    bad.push((n, e.to_string()));
                    continue;
                }
            };
            points += 1;
            if points > limits.max_points {
                limit = Some(IngestError::TooManyPoints {
                    got: points,
                    limit: limits.max_points,
                });
                return;
            }
            let known = match group.fields.get(position) {
                Some((k, slot)) if k == field => Some(*slot),
                _ => group
                    .fields
                    .iter()
                    .find(|(k, _)| k == field)
                    .map(|(_, slot)| *slot),
            };
            let slot = match known {
                Some(slot) => slot,
                None => {
                    let key = match key_cache::find(group.cached.as_ref(), field) {
                        Some(key) => Ok(key.clone()),
                        None => series_key(line, field).inspect(|key| {
                            group.built.push((field.as_ref().into(), key.clone()));
                        }),
                    };
                    let seen = key.as_ref().ok().and_then(|k| entry_of.get(k).copied());
                    let slot = match seen {
                        Some(slot) => slot,
                        None => {
                            if entries.len() >= limits.max_series {
                                limit = Some(IngestError::Store(StoreError::TooManySeries {
                                    limit: limits.max_series,
                                    adding: entries.len() + 1,
                                }));
                                return;
                            }
                            if let Ok(k) = &key {
                                entry_of.insert(k.clone(), entries.len());
                            }
                            entries.push(key.map(|k| (k, Vec::new())));
                            entries.len() - 1
                        }
                    };
                    group.fields.push((field.clone(), slot));
                    slot
                }
            };
            match &mut entries[slot] {
                Ok((_, pts)) => pts.push(point),
                Err(e) => bad.push((n, e.clone())),
            }
        }
    });
    if let Some(e) = limit {
        return Err(BatchError::Limit(e));
    }
    if let Err(errors) = parsed {
        bad.extend(errors.into_iter().map(|e| (e.line, e.kind.to_string())));
    }
    if !bad.is_empty() {
        bad.sort_by_key(|(n, _)| *n);
        bad.truncate(MAX_REPORTED_ERRORS);
        return Err(BatchError::Lines(bad));
    }
    for (text, group) in groups {
        if !group.built.is_empty() {
            cache.add(text, group.built);
        }
    }
    let mut batch = Batch::new();
    for (key, points) in entries.into_iter().flatten() {
        batch.extend_vec(key, points);
    }
    Ok((batch, skipped))
}

/// One distinct measurement+tags text within a request.
struct Group<'a> {
    /// Field name and its entry, in first-seen order.
    fields: Vec<(Cow<'a, str>, usize)>,
    /// Keys earlier requests built for this text.
    cached: Option<FieldKeys>,
    /// Keys this request built, for the cache.
    built: Vec<(Box<str>, SeriesKey)>,
}

/// `measurement.field`, or just `measurement` for a field named `value`, with the tags as labels.
fn series_key(line: &line_protocol::Line<'_>, field: &str) -> Result<SeriesKey, String> {
    let name = if field == "value" {
        line.measurement.to_string()
    } else {
        format!("{}.{}", line.measurement, field)
    };
    let labels = line
        .tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()));
    SeriesKey::with_labels(name, labels).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key served from the cache is the key a fresh build gives, and a bad series text is
    /// refused every time, not only before it is cached.
    #[test]
    fn cached_keys_match_fresh_ones() {
        let cache = KeyCache::new(16);
        let opts = line_protocol::Options::new(Precision::Nanoseconds);
        let body = b"cpu,host=a user=1,idle=2 5\nmem,host=a used=3i 5\ncpu,host=a idle=4 6\n";
        let (fresh, _) = to_batch(body, opts, 0, BatchLimits::unbounded(), &cache).unwrap();
        assert!(cache.get("cpu,host=a").is_some());
        let (cached, _) = to_batch(body, opts, 0, BatchLimits::unbounded(), &cache).unwrap();
        assert_eq!(cached, fresh);
        let (uncached, _) =
            to_batch(body, opts, 0, BatchLimits::unbounded(), &KeyCache::new(16)).unwrap();
        assert_eq!(cached, uncached);
        let names: Vec<String> = cached.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            names,
            ["cpu.user{host=a}", "cpu.idle{host=a}", "mem.used{host=a}"]
        );

        let bad = "m,host=a\u{7f}b v=1 5".as_bytes();
        for _ in 0..2 {
            assert!(matches!(
                to_batch(bad, opts, 0, BatchLimits::unbounded(), &cache),
                Err(BatchError::Lines(_))
            ));
        }
    }
}

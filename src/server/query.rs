//! `GET /api/v1/query`: the history of one series over a time range, downsampled with M4 to
//! the pixel columns the caller will draw (so a line drawn from the answer is the line drawn
//! from every raw point), or raw points up to a limit. JSON by default; CSV with
//! `format=csv` or `Accept: text/csv`, which is the export.
//!
//! Parameters: `series` (required), `label=key=value` (repeatable; the series' exact label
//! set), `from` / `to` (epoch milliseconds, RFC 3339, `now`, `now-15m` or `now+5m`;
//! default the last hour), `width` (columns, default 1000, at most [`MAX_QUERY_WIDTH`]), `raw=true` with
//! `limit` (default and ceiling [`MAX_RAW_POINTS`]), `format=json|csv`.

use super::config::parse_duration;
use super::ingest::now_ns;
use super::store::{HistoryQuery, HistoryResult, StoreError, MAX_QUERY_WIDTH, MAX_RAW_POINTS};
use super::AppState;
use crate::model::{SeriesInfo, SeriesKey};
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
                // A series has one value per label key: a second would pick one silently.
                Some((lk, _)) if labels.iter().any(|(k, _)| k == lk) => {
                    return Err(bad(format!("label {lk:?} is given twice")))
                }
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

/// `now`, `now-15m`, `now+5m` (Grafana's relative times), epoch milliseconds, or RFC 3339.
fn time_param(name: &str, v: &str, now: i64) -> Result<i64, QueryError> {
    // An unescaped `+` (`now+5m`, `…T08:00:00+01:00`) arrives as a space; no form here has one.
    let v = &v.replace(' ', "+");
    if v == "now" {
        return Ok(now);
    }
    let relative = v
        .strip_prefix("now-")
        .map(|d| (d, -1))
        .or_else(|| v.strip_prefix("now+").map(|d| (d, 1)));
    if let Some((span, sign)) = relative {
        let d = parse_duration(span).map_err(|e| QueryError::Bad(format!("{name}: {e}")))?;
        let d = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        return Ok(if sign < 0 {
            now.saturating_sub(d)
        } else {
            now.saturating_add(d)
        });
    }
    timestamp::parse_str(v).map_err(|e| QueryError::Bad(format!("{name}: {e}")))
}

/// Most held series a "no series" answer names: enough to spot the right one, short enough
/// to read.
const MAX_HINTS: usize = 5;

/// The 404 for a series the server does not hold, naming the ones the caller most likely
/// meant: the same name with other labels (a series is name plus labels, so leaving out a
/// tag misses it), or, with no such name, names that start with it (line protocol stores
/// field `usage` of measurement `cpu` as `cpu.usage`, not `cpu`).
fn unknown_series(asked: &SeriesKey, held: &[SeriesInfo]) -> StoreError {
    let same_name: Vec<String> = held
        .iter()
        .filter(|s| s.series.name() == asked.name())
        .map(|s| s.series.to_string())
        .collect();
    let (what, found) = if same_name.is_empty() {
        let prefix = format!("{}.", asked.name());
        let mut names: Vec<&str> = held
            .iter()
            .map(|s| s.series.name())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        names.dedup();
        (
            "names starting with it",
            names.into_iter().map(str::to_string).collect(),
        )
    } else {
        (
            "under that name, with other labels (give each as label=key=value)",
            same_name,
        )
    };
    if found.is_empty() {
        return StoreError::UnknownSeries(format!("{asked} (GET /api/v1/series lists them)"));
    }
    let more = found.len().saturating_sub(MAX_HINTS);
    let mut listed = found[..found.len() - more].join(", ");
    if more > 0 {
        let _ = write!(listed, " and {more} more");
    }
    StoreError::UnknownSeries(format!("{asked}; held {what}: {listed}"))
}

pub async fn get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let now = now_ns();
    let (q, format) = parse(query.as_deref().unwrap_or(""), &headers, now)?;
    let asked = q.series.clone();
    let result = match state.store.history(q).await {
        Err(StoreError::UnknownSeries(_)) => {
            let held = state.store.list(now).await?;
            return Err(unknown_series(&asked, &held).into());
        }
        other => other?,
    };
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
            ("series=a&label=host=a&label=host=b", "given twice"),
            ("series=", "empty"),
        ] {
            let e = q(bad).expect_err(bad).to_string();
            assert!(e.contains(says), "{bad:?}: {e:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, "text/csv".parse().unwrap());
        assert_eq!(parse("series=a", &headers, 5).unwrap().1, Format::Csv);
    }

    #[test]
    fn relative_times_reach_forward_and_a_plus_survives_the_url() {
        for (to, want) in [
            ("now%2B1s", 10_001_000_000_000),
            // An unescaped `+` arrives as a space.
            ("now+1s", 10_001_000_000_000),
            ("now-1s", 9_999_000_000_000),
            ("1970-01-01T03:46:41%2B01:00", 10_001_000_000_000),
            ("1970-01-01T03:46:41+01:00", 10_001_000_000_000),
        ] {
            let (h, _) = q(&format!("series=a&from=now-2s&to={to}")).unwrap();
            assert_eq!(h.to_ns, want, "{to}");
        }
        assert!(q("series=a&to=now%2Bsoon").is_err());
    }

    fn held(keys: &[&str]) -> Vec<SeriesInfo> {
        keys.iter()
            .map(|k| {
                let (name, labels) = k.split_once('{').unwrap_or((k, ""));
                let labels = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|l| l.split_once('=').unwrap());
                SeriesInfo {
                    series: SeriesKey::with_labels(name, labels).unwrap(),
                    points: 1,
                    first_ns: 0,
                    last_ns: 0,
                    last_value: 0.0,
                    rate: 0.0,
                }
            })
            .collect()
    }

    #[test]
    fn a_missing_series_names_the_ones_meant() {
        let key =
            |name: &str| SeriesKey::with_labels(name, Vec::<(String, String)>::new()).unwrap();
        let all = held(&[
            "cpu.usage_idle{host=a}",
            "cpu.usage_idle{host=b}",
            "cpu.usage_user{host=a}",
            "mem.used",
        ]);
        let says = |asked: &str| unknown_series(&key(asked), &all).to_string();
        assert_eq!(
            says("cpu.usage_idle"),
            "no series cpu.usage_idle; held under that name, with other labels (give each as \
             label=key=value): cpu.usage_idle{host=a}, cpu.usage_idle{host=b}"
        );
        assert_eq!(
            says("cpu"),
            "no series cpu; held names starting with it: cpu.usage_idle, cpu.usage_user"
        );
        assert_eq!(
            says("disk"),
            "no series disk (GET /api/v1/series lists them)"
        );
        let many: Vec<String> = (0..8).map(|i| format!("t{{room={i}}}")).collect();
        let many = held(&many.iter().map(String::as_str).collect::<Vec<_>>());
        let e = unknown_series(&key("t"), &many).to_string();
        assert!(e.ends_with("t{room=4} and 3 more"), "{e}");
    }
}

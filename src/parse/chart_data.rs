//! The original demo's body: `POST /chart_data` with `{"value": 21.5, "timestamp": 1764230400000}`.
//!
//! Kept compatible with what the Flask demo's clients send: `value` may be a number or a numeric
//! string, `timestamp` epoch milliseconds (number or string) or RFC 3339, and unknown fields are
//! ignored. Two additions: an optional `"series"` (default `"value"`), and a missing timestamp
//! meaning "now at the server".

use super::timestamp::{self, TimestampError};
use crate::model::{Point, SeriesKey, ValidationError};
use serde_json::Value;

/// The series a demo-style point lands in when the body names none.
pub const DEFAULT_SERIES: &str = "value";

/// Everything that makes a `/chart_data` body unacceptable; the message is sent back verbatim.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChartDataError {
    #[error("missing Content-Type header; send the body as application/json")]
    MissingContentType,
    #[error("Content-Type must be application/json, got {0:?}")]
    WrongContentType(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("body must be a JSON object like {{\"value\": 21.5, \"timestamp\": 1764230400000}}, got {0}")]
    NotAnObject(&'static str),
    #[error("missing field \"value\"")]
    MissingValue,
    #[error("\"value\" must be a number, got {0}")]
    NonNumericValue(String),
    #[error("\"value\": {0}")]
    InvalidValue(ValidationError),
    #[error("\"timestamp\": {0}")]
    Timestamp(#[from] TimestampError),
    #[error("\"series\" must be a string, got {0}")]
    SeriesNotString(&'static str),
    #[error("\"series\": {0}")]
    InvalidSeries(ValidationError),
}

/// Accepts `application/json` and structured `+json` types, with or without parameters.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), ChartDataError> {
    let raw = content_type.ok_or(ChartDataError::MissingContentType)?;
    let essence = super::media_type(raw);
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ChartDataError::WrongContentType(raw.to_string()))
    }
}

/// Parses one demo point. `now_ns` stands in for a missing timestamp.
pub fn parse(
    content_type: Option<&str>,
    body: &[u8],
    now_ns: i64,
) -> Result<(SeriesKey, Point), ChartDataError> {
    check_content_type(content_type)?;
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| ChartDataError::MalformedJson(e.to_string()))?;
    let Value::Object(fields) = doc else {
        return Err(ChartDataError::NotAnObject(json_kind(&doc)));
    };

    let value = match fields.get("value") {
        None | Some(Value::Null) => return Err(ChartDataError::MissingValue),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| ChartDataError::NonNumericValue(format!("{s:?}")))?,
        Some(other) => {
            return Err(ChartDataError::NonNumericValue(
                json_kind(other).to_string(),
            ))
        }
    };

    let ts_ns = match fields.get("timestamp") {
        None => None,
        Some(v) => timestamp::parse_json(v)?,
    }
    .unwrap_or(now_ns);

    let series = match fields.get("series") {
        None | Some(Value::Null) => DEFAULT_SERIES.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(ChartDataError::SeriesNotString(json_kind(other))),
    };
    let series = SeriesKey::new(series).map_err(ChartDataError::InvalidSeries)?;
    let point = Point::new(ts_ns, value).map_err(ChartDataError::InvalidValue)?;
    Ok((series, point))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const NOW: i64 = 42;

    fn ok(body: &str) -> (String, i64, f64) {
        let (s, p) = parse(JSON, body.as_bytes(), NOW).unwrap_or_else(|e| panic!("{body}: {e}"));
        (s.to_string(), p.ts_ns, p.value)
    }

    #[test]
    fn accepts_the_demo_shapes() {
        let ms = 1_764_230_400_000_i64;
        let ns = ms * 1_000_000;
        assert_eq!(
            ok(r#"{"value": 21.5, "timestamp": 1764230400000}"#),
            ("value".into(), ns, 21.5)
        );
        assert_eq!(
            ok(r#"{"value": "21.5", "timestamp": "1764230400000"}"#),
            ("value".into(), ns, 21.5)
        );
        assert_eq!(
            ok(r#"{"value": 3, "timestamp": "2025-11-27T08:00:00Z"}"#),
            ("value".into(), ns, 3.0)
        );
        assert_eq!(ok(r#"{"value": -1e3}"#), ("value".into(), NOW, -1000.0));
        assert_eq!(
            ok(r#"{"value": 1, "timestamp": null, "series": "temp", "extra": [1]}"#),
            ("temp".into(), NOW, 1.0)
        );
    }

    #[test]
    fn accepts_json_content_type_variants() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(parse(Some(ct), br#"{"value":1}"#, NOW).is_ok(), "{ct}");
        }
    }

    /// Every bad input the issue lists, and each error must say what was wrong.
    #[test]
    fn rejects_bad_input_with_a_reason() {
        let cases: &[(Option<&str>, &str, &str)] = &[
            (None, r#"{"value":1}"#, "missing Content-Type"),
            (
                Some("text/plain"),
                r#"{"value":1}"#,
                "must be application/json",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                "value=1",
                "must be application/json",
            ),
            (JSON, "", "malformed JSON"),
            (JSON, "{", "malformed JSON"),
            (JSON, r#"{"value": 1,}"#, "malformed JSON"),
            (JSON, r#"{"value": NaN}"#, "malformed JSON"),
            (JSON, r#"{"value": 1e999}"#, "malformed JSON"),
            (JSON, "[1,2]", "must be a JSON object"),
            (JSON, "21.5", "must be a JSON object"),
            (JSON, "{}", "missing field \"value\""),
            (JSON, r#"{"timestamp": 1}"#, "missing field \"value\""),
            (JSON, r#"{"value": null}"#, "missing field \"value\""),
            (JSON, r#"{"value": "abc"}"#, "must be a number, got \"abc\""),
            (JSON, r#"{"value": ""}"#, "must be a number"),
            (
                JSON,
                r#"{"value": true}"#,
                "must be a number, got a boolean",
            ),
            (JSON, r#"{"value": [1]}"#, "must be a number, got an array"),
            (JSON, r#"{"value": "NaN"}"#, "finite number, got NaN"),
            (JSON, r#"{"value": "inf"}"#, "finite number, got inf"),
            (JSON, r#"{"value": "-Infinity"}"#, "finite number, got -inf"),
            (
                JSON,
                r#"{"value": 1, "timestamp": "soon"}"#,
                "\"timestamp\": timestamp \"soon\" is neither",
            ),
            (
                JSON,
                r#"{"value": 1, "timestamp": 1e300}"#,
                "outside the supported range",
            ),
            (JSON, r#"{"value": 1, "timestamp": {}}"#, "got an object"),
            (
                JSON,
                r#"{"value": 1, "series": ""}"#,
                "series name is empty",
            ),
            (
                JSON,
                r#"{"value": 1, "series": 7}"#,
                "\"series\" must be a string",
            ),
            (
                JSON,
                r#"{"value": 1, "series": "a\u0000b"}"#,
                "control character",
            ),
        ];
        for (ct, body, want) in cases {
            let err = parse(*ct, body.as_bytes(), NOW)
                .expect_err(&format!("{body:?} with {ct:?} should be refused"));
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "{body:?}: {msg:?} should contain {want:?}"
            );
        }
    }
}

//! The JSON body of `POST /api/v1/points`:
//!
//! ```json
//! {"series": "cpu.usage", "labels": {"host": "a"}, "points": [[1764230400000, 0.5], [null, 0.7]]}
//! ```
//!
//! one such object, an array of them, or NDJSON (one object per line). A point is
//! `[timestamp, value]`; the timestamp is a number or numeric string in the request's
//! precision (default milliseconds), an RFC 3339 string, or `null` for "now". Unknown fields
//! are refused, so a typo such as `"lables"` is not silently ignored.
//!
//! Every problem is reported with its JSON path (`[2].points[5][1]`, or `line 3: points[0][0]`
//! for NDJSON), up to a cap, and a request with any problem adds nothing.

use super::timestamp::{self, Precision};
use crate::model::{Batch, Point, SeriesKey};
use serde_json::Value;
use std::fmt;

/// One problem, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

struct Collector {
    errors: Vec<JsonError>,
    max: usize,
}

impl Collector {
    fn new(max: usize) -> Self {
        Self {
            errors: Vec::new(),
            max: max.max(1),
        }
    }

    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        if self.errors.len() < self.max {
            self.errors.push(JsonError {
                path: path.into(),
                reason: reason.into(),
            });
        }
    }

    fn full(&self) -> bool {
        self.errors.len() >= self.max
    }
}

/// One object or an array of objects.
pub fn parse_document(
    body: &[u8],
    precision: Precision,
    now_ns: i64,
    max_errors: usize,
) -> Result<Batch, Vec<JsonError>> {
    let mut out = Collector::new(max_errors);
    let mut batch = Batch::new();
    match serde_json::from_slice::<Value>(body) {
        Err(e) => out.push("", format!("malformed JSON: {e}")),
        Ok(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if out.full() {
                    break;
                }
                parse_object(
                    item,
                    &format!("[{i}]"),
                    precision,
                    now_ns,
                    &mut batch,
                    &mut out,
                );
            }
        }
        Ok(item) => parse_object(&item, "", precision, now_ns, &mut batch, &mut out),
    }
    finish(batch, out)
}

/// One object per line; blank lines are skipped.
pub fn parse_ndjson(
    body: &[u8],
    precision: Precision,
    now_ns: i64,
    max_errors: usize,
) -> Result<Batch, Vec<JsonError>> {
    let mut out = Collector::new(max_errors);
    let mut batch = Batch::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        if out.full() {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let prefix = format!("line {}", i + 1);
        match serde_json::from_slice::<Value>(line) {
            Err(e) => out.push(prefix, format!("malformed JSON: {e}")),
            Ok(item) => parse_object(
                &item,
                &format!("{prefix}:"),
                precision,
                now_ns,
                &mut batch,
                &mut out,
            ),
        }
    }
    finish(batch, out)
}

fn finish(batch: Batch, out: Collector) -> Result<Batch, Vec<JsonError>> {
    if out.errors.is_empty() {
        Ok(batch)
    } else {
        Err(out.errors)
    }
}

/// Joins a path prefix and a field: `[2]` + `points` = `[2].points`; `line 3:` + `points` =
/// `line 3: points`.
fn join(prefix: &str, field: &str) -> String {
    match prefix {
        "" => field.to_string(),
        p if p.ends_with(':') => format!("{p} {field}"),
        p => format!("{p}.{field}"),
    }
}

fn parse_object(
    item: &Value,
    at: &str,
    precision: Precision,
    now_ns: i64,
    batch: &mut Batch,
    out: &mut Collector,
) {
    let here = if at.is_empty() {
        "body".to_string()
    } else {
        at.trim_end_matches(':').to_string()
    };
    let Value::Object(fields) = item else {
        out.push(
            here,
            "expected an object like {\"series\": \"…\", \"points\": [[ts, value]]}",
        );
        return;
    };
    for key in fields.keys() {
        if !matches!(key.as_str(), "series" | "labels" | "points") {
            out.push(
                join(at, key),
                "unknown field (expected series, labels, points)",
            );
        }
    }
    let name = match fields.get("series") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            out.push(join(at, "series"), "must be a string");
            None
        }
        None => {
            out.push(join(at, "series"), "missing");
            None
        }
    };
    let mut labels = Vec::new();
    match fields.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => labels.push((k.clone(), s.clone())),
                    _ => out.push(
                        join(at, &format!("labels.{k}")),
                        "label values must be strings",
                    ),
                }
            }
        }
        Some(_) => out.push(join(at, "labels"), "must be an object of strings"),
    }
    let key = name.and_then(|n| match SeriesKey::with_labels(n, labels) {
        Ok(k) => Some(k),
        Err(e) => {
            out.push(join(at, "series"), e.to_string());
            None
        }
    });

    let points_path = join(at, "points");
    let Some(Value::Array(points)) = fields.get("points") else {
        out.push(
            points_path,
            "missing or not an array of [timestamp, value] pairs",
        );
        return;
    };
    if points.is_empty() {
        out.push(points_path, "no points");
        return;
    }
    let mut parsed = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        if out.full() {
            return;
        }
        let path = format!("{points_path}[{i}]");
        let Some([t, v]) = p
            .as_array()
            .map(Vec::as_slice)
            .and_then(|a| <&[Value; 2]>::try_from(a).ok())
        else {
            out.push(path, "expected a [timestamp, value] pair");
            continue;
        };
        let ts = match timestamp::parse_json_in(t, precision) {
            Ok(ts) => ts.unwrap_or(now_ns),
            Err(e) => {
                out.push(format!("{path}[0]"), e.to_string());
                continue;
            }
        };
        let value = match v {
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            other => {
                out.push(
                    format!("{path}[1]"),
                    format!("value must be a number, got {other}"),
                );
                continue;
            }
        };
        match Point::new(ts, value) {
            Ok(p) => parsed.push(p),
            Err(e) => out.push(format!("{path}[1]"), e.to_string()),
        }
    }
    if let Some(key) = key {
        batch.extend(key, parsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 99;

    fn errors(body: &str) -> Vec<String> {
        parse_document(body.as_bytes(), Precision::Milliseconds, NOW, 10)
            .expect_err(body)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn accepts_objects_arrays_and_ndjson() {
        let one = parse_document(
            br#"{"series": "cpu", "labels": {"host": "a"}, "points": [[1000, 1.5], [null, 2], ["2025-11-27T08:00:00Z", 3]]}"#,
            Precision::Milliseconds,
            NOW,
            10,
        )
        .unwrap();
        assert_eq!(one.point_count(), 3);
        let (key, points) = one.iter().next().unwrap();
        assert_eq!(key.to_string(), "cpu{host=a}");
        assert_eq!(points[0].ts_ns, 1_000_000_000);
        assert_eq!(points[1].ts_ns, NOW);

        let many = parse_document(
            br#"[{"series": "a", "points": [[1, 1]]}, {"series": "b", "points": [[1, 1], [2, 2]]}]"#,
            Precision::Seconds,
            NOW,
            10,
        )
        .unwrap();
        assert_eq!((many.series_count(), many.point_count()), (2, 3));

        let nd = parse_ndjson(
            b"{\"series\": \"a\", \"points\": [[1, 1]]}\n\n{\"series\": \"a\", \"labels\": {\"k\": \"v\"}, \"points\": [[2, 2]]}\n",
            Precision::Nanoseconds,
            NOW,
            10,
        )
        .unwrap();
        assert_eq!((nd.series_count(), nd.point_count()), (2, 2));
    }

    /// The corpus of bad bodies: each names where and what.
    #[test]
    fn bad_bodies_name_path_and_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "malformed JSON"),
            ("{", "malformed JSON"),
            ("42", "body: expected an object"),
            (r#"[1]"#, "[0]: expected an object"),
            (r#"{"points": [[1, 1]]}"#, "series: missing"),
            (
                r#"{"series": 5, "points": [[1, 1]]}"#,
                "series: must be a string",
            ),
            (
                r#"{"series": "", "points": [[1, 1]]}"#,
                "series: series name is empty",
            ),
            (r#"{"series": "a"}"#, "points: missing or not an array"),
            (r#"{"series": "a", "points": []}"#, "points: no points"),
            (
                r#"{"series": "a", "points": [[1]]}"#,
                "points[0]: expected a [timestamp, value] pair",
            ),
            (
                r#"{"series": "a", "points": [[1, "x"]]}"#,
                "points[0][1]: value must be a number",
            ),
            (
                r#"{"series": "a", "points": [["soon", 1]]}"#,
                "points[0][0]: timestamp \"soon\"",
            ),
            (
                r#"{"series": "a", "points": [[1e300, 1]]}"#,
                "points[0][0]: timestamp",
            ),
            (
                r#"{"series": "a", "lables": {}, "points": [[1, 1]]}"#,
                "lables: unknown field",
            ),
            (
                r#"{"series": "a", "labels": {"k": 1}, "points": [[1, 1]]}"#,
                "labels.k: label values must be strings",
            ),
            (
                r#"{"series": "a", "labels": {"k": ""}, "points": [[1, 1]]}"#,
                "series: label \"k\" value \"\"",
            ),
            (
                r#"[{"series": "a", "points": [[1, 1]]}, {"series": "b", "points": [[1, 1], [2, null]]}]"#,
                "[1].points[1][1]",
            ),
        ];
        for (body, want) in cases {
            let got = errors(body);
            assert!(
                got.iter().any(|e| e.contains(want)),
                "{body:?}: {got:?} should mention {want:?}"
            );
        }
        let nd = parse_ndjson(
            b"{\"series\": \"a\", \"points\": [[1, 1]]}\nnot json\n",
            Precision::Milliseconds,
            NOW,
            10,
        )
        .unwrap_err();
        assert!(
            nd[0].to_string().starts_with("line 2: malformed JSON"),
            "{nd:?}"
        );
    }

    #[test]
    fn errors_are_capped() {
        let body = format!(
            r#"{{"series": "a", "points": [{}[1, 1]]}}"#,
            r#"["x", 1],"#.repeat(50)
        );
        let errs = parse_document(body.as_bytes(), Precision::Milliseconds, NOW, 5).unwrap_err();
        assert_eq!(errs.len(), 5);
    }
}

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
//!
//! Two readers: a typed one that goes straight from the bytes to points (a point costs its
//! 16 bytes, not a tree of `Value`s twenty times the body), and the `Value` walk that names
//! every problem. A body goes through the first; only when it refuses the body does the
//! second run, to say why. They accept the same bodies with the same points (a property
//! test checks it).

use super::timestamp::{self, Precision};
use crate::model::{Batch, Point, SeriesKey, ValidationError};
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
    match fast::document(body, precision, now_ns) {
        Some(batch) => Ok(batch),
        None => document_by_value(body, precision, now_ns, max_errors),
    }
}

/// [`parse_document`] through `Value`s: slower, and names every problem.
fn document_by_value(
    body: &[u8],
    precision: Precision,
    now_ns: i64,
    max_errors: usize,
) -> Result<Batch, Vec<JsonError>> {
    let mut out = Collector::new(max_errors);
    let mut batch = Batch::new();
    repeated_keys(body, "", &mut out);
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
    match fast::ndjson(body, precision, now_ns) {
        Some(batch) => Ok(batch),
        None => ndjson_by_value(body, precision, now_ns, max_errors),
    }
}

/// [`parse_ndjson`] through `Value`s: slower, and names every problem.
fn ndjson_by_value(
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
        repeated_keys(line, &format!("{prefix}:"), &mut out);
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

/// Reports every key an object in `json` repeats, at its path under `at`: `Value` keeps
/// only the last, so `{"points": [..], "points": [..]}` would drop the first list without a
/// word (and other JSON readers keep the first). Malformed JSON is left to the caller.
fn repeated_keys(json: &[u8], at: &str, out: &mut Collector) {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Walk<'a> {
        at: String,
        out: &'a mut Collector,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = join(&self.at, &key);
                if !seen.insert(key) {
                    self.out
                        .push(path.clone(), "repeated key (give each key once)");
                }
                map.next_value_seed(Walk {
                    at: path,
                    out: &mut *self.out,
                })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    at: format!("{}[{i}]", self.at),
                    out: &mut *self.out,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let mut d = serde_json::Deserializer::from_slice(json);
    let _ = Walk {
        at: at.to_string(),
        out,
    }
    .deserialize(&mut d);
}

/// The typed reader: `None` for any body it does not take whole (the `Value` walk then
/// names the problems).
mod fast {
    use super::super::timestamp::{self, Precision};
    use crate::model::{Batch, Point, SeriesKey};
    use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
    use std::collections::BTreeMap;
    use std::fmt;

    struct Object {
        series: String,
        labels: Option<Labels>,
        points: Vec<(Ts, f64)>,
    }

    /// Label pairs, each key once: a repeated key is refused (the `Value` walk names it).
    struct Labels(BTreeMap<String, String>);

    impl<'de> Deserialize<'de> for Labels {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Pairs;
            impl<'de> Visitor<'de> for Pairs {
                type Value = Labels;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object of strings")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                    let mut labels = BTreeMap::new();
                    while let Some((k, v)) = map.next_entry::<String, String>()? {
                        if labels.insert(k, v).is_some() {
                            return Err(de::Error::custom("repeated label"));
                        }
                    }
                    Ok(Labels(labels))
                }
            }
            d.deserialize_map(Pairs)
        }
    }

    /// A timestamp as JSON gave it, read without building a `Value`; turned into
    /// nanoseconds exactly as [`timestamp::parse_json_in`] does.
    enum Ts {
        Null,
        Int(i64),
        Float(f64),
        Text(String),
    }

    impl Ts {
        fn nanos(&self, unit: Precision) -> Option<Option<i64>> {
            match self {
                Ts::Null => Some(None),
                Ts::Int(t) => timestamp::int_to_nanos(*t, unit).ok().map(Some),
                Ts::Float(t) => timestamp::float_to_nanos(*t, unit).ok().map(Some),
                Ts::Text(s) => timestamp::parse_str_in(s, unit).ok().map(Some),
            }
        }
    }

    impl<'de> Deserialize<'de> for Ts {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Any;
            impl<'de> Visitor<'de> for Any {
                type Value = Ts;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a timestamp: number, string or null")
                }
                fn visit_unit<E: de::Error>(self) -> Result<Ts, E> {
                    Ok(Ts::Null)
                }
                fn visit_i64<E: de::Error>(self, t: i64) -> Result<Ts, E> {
                    Ok(Ts::Int(t))
                }
                // As `Value::as_i64` then `as_f64`: beyond i64 an integer goes the float way.
                fn visit_u64<E: de::Error>(self, t: u64) -> Result<Ts, E> {
                    Ok(i64::try_from(t).map_or(Ts::Float(t as f64), Ts::Int))
                }
                fn visit_f64<E: de::Error>(self, t: f64) -> Result<Ts, E> {
                    Ok(Ts::Float(t))
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Ts, E> {
                    Ok(Ts::Text(s.to_owned()))
                }
            }
            d.deserialize_any(Any)
        }
    }

    /// By hand rather than derived: a derived struct also reads a JSON *array* by position
    /// (`["cpu", null, [[1, 2]]]`), which the `Value` walk rightly refuses. Only a map, each
    /// known field once.
    impl<'de> Deserialize<'de> for Object {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Fields;
            impl<'de> Visitor<'de> for Fields {
                type Value = Object;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object with series, labels and points")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                    let (mut series, mut labels, mut points) = (None, None, None);
                    while let Some(key) = map.next_key::<String>()? {
                        match key.as_str() {
                            "series" if series.is_none() => series = Some(map.next_value()?),
                            "labels" if labels.is_none() => labels = Some(map.next_value()?),
                            "points" if points.is_none() => points = Some(map.next_value()?),
                            _ => return Err(de::Error::custom("unknown or repeated field")),
                        }
                    }
                    Ok(Object {
                        series: series.ok_or_else(|| de::Error::missing_field("series"))?,
                        labels: labels.flatten(),
                        points: points.ok_or_else(|| de::Error::missing_field("points"))?,
                    })
                }
            }
            d.deserialize_map(Fields)
        }
    }

    pub fn document(body: &[u8], precision: Precision, now_ns: i64) -> Option<Batch> {
        let mut batch = Batch::new();
        let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first == b'[' {
            let objects: Vec<Object> = serde_json::from_slice(body).ok()?;
            for o in objects {
                add(o, precision, now_ns, &mut batch)?;
            }
        } else {
            add(
                serde_json::from_slice(body).ok()?,
                precision,
                now_ns,
                &mut batch,
            )?;
        }
        Some(batch)
    }

    pub fn ndjson(body: &[u8], precision: Precision, now_ns: i64) -> Option<Batch> {
        let mut batch = Batch::new();
        for line in body.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            add(
                serde_json::from_slice(line).ok()?,
                precision,
                now_ns,
                &mut batch,
            )?;
        }
        Some(batch)
    }

    fn add(o: Object, precision: Precision, now_ns: i64, batch: &mut Batch) -> Option<()> {
        if o.points.is_empty() {
            return None;
        }
        let labels = o.labels.map(|l| l.0).unwrap_or_default();
        let key = SeriesKey::with_labels(o.series, labels).ok()?;
        let mut points = Vec::with_capacity(o.points.len());
        for (t, value) in &o.points {
            let ts = t.nanos(precision)?.unwrap_or(now_ns);
            points.push(Point::new(ts, *value).ok()?);
        }
        batch.extend_vec(key, points);
        Some(())
    }
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
            let path = match &e {
                ValidationError::LabelKey(k, _) | ValidationError::LabelValue(k, ..) => {
                    join(at, &format!("labels.{k}"))
                }
                ValidationError::TooManyLabels(_) => join(at, "labels"),
                _ => join(at, "series"),
            };
            out.push(path, e.to_string());
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
        batch.extend_vec(key, parsed);
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

    use proptest::prelude::*;

    /// A generated object: series, labels, points as JSON text, and whether it carries a
    /// misspelt field.
    type Generated = (
        String,
        Option<std::collections::BTreeMap<String, String>>,
        Vec<(String, String)>,
        bool,
    );

    proptest! {
        /// Both readers agree: on every body the typed one takes, the `Value` walk gives the
        /// same batch; on bodies it refuses, the walk decides (and names the problem). The
        /// bodies mix every timestamp form, labels, escapes, and breakage.
        #[test]
        fn the_typed_reader_agrees_with_the_value_walk(
            objects in proptest::collection::vec(
                (
                    prop_oneof![9 => "[a-z][a-z.]{0,5}", 1 => "[a-z\\.\\\\\"é ]{0,6}"],
                    proptest::option::of(proptest::collection::btree_map("[a-z\"]{1,3}", "[a-z]{0,3}", 0..3)),
                    proptest::collection::vec(
                        (
                            prop_oneof![
                                4 => (0i64..2_000_000_000_000).prop_map(|t| t.to_string()),
                                2 => (0.0f64..2e12).prop_map(|t| t.to_string()),
                                3 => Just("null".to_string()),
                                2 => (0i64..2_000_000_000_000).prop_map(|t| format!("\"{t}\"")),
                                1 => Just("\"2025-11-27T08:00:00.5Z\"".to_string()),
                                1 => any::<i64>().prop_map(|t| t.to_string()),
                                1 => Just("\"soon\"".to_string()),
                                1 => Just("true".to_string()),
                            ],
                            prop_oneof![
                                4 => any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| v.to_string()),
                                4 => (-100i32..100).prop_map(|v| v.to_string()),
                                1 => Just("1e400".to_string()),
                                1 => Just("\"1\"".to_string()),
                                1 => Just("null".to_string()),
                            ],
                        ),
                        0..4,
                    ),
                    prop_oneof![9 => Just(false), 1 => Just(true)],
                ),
                1..4,
            ),
            as_array in any::<bool>(),
            positional_at in proptest::option::weighted(0.2, 0usize..4),
            precision in prop_oneof![
                Just(Precision::Milliseconds),
                Just(Precision::Nanoseconds),
                Just(Precision::Seconds),
            ],
        ) {
            let render = |(series, labels, points, extra): &Generated| {
                let mut o = format!("{{\"series\": {}", serde_json::to_string(series).unwrap());
                if let Some(l) = labels {
                    o += &format!(", \"labels\": {}", serde_json::to_string(l).unwrap());
                }
                let pts: Vec<String> = points.iter().map(|(t, v)| format!("[{t}, {v}]")).collect();
                o += &format!(", \"points\": [{}]", pts.join(", "));
                if *extra {
                    o += ", \"lables\": {}";
                }
                o + "}"
            };
            // The same object written as an array, by position: both must refuse it.
            let positional = |(series, labels, points, _): &Generated| {
                let pts: Vec<String> = points.iter().map(|(t, v)| format!("[{t}, {v}]")).collect();
                format!(
                    "[{}, {}, [{}]]",
                    serde_json::to_string(series).unwrap(),
                    serde_json::to_string(labels).unwrap(),
                    pts.join(", ")
                )
            };
            let rendered: Vec<String> = objects
                .iter()
                .enumerate()
                .map(|(i, o)| if positional_at == Some(i) { positional(o) } else { render(o) })
                .collect();
            let doc = if as_array { format!("[{}]", rendered.join(", ")) } else { rendered[0].clone() };
            let fast = fast::document(doc.as_bytes(), precision, NOW);
            let slow = document_by_value(doc.as_bytes(), precision, NOW, 10);
            match (&fast, &slow) {
                (Some(f), Ok(s)) => prop_assert_eq!(f, s, "{}", doc),
                (Some(_), Err(e)) => prop_assert!(false, "typed took what the walk refused: {doc} {e:?}"),
                (None, _) => {}
            }
            let nd = rendered.join("\n");
            let fast = fast::ndjson(nd.as_bytes(), precision, NOW);
            let slow = ndjson_by_value(nd.as_bytes(), precision, NOW, 10);
            match (&fast, &slow) {
                (Some(f), Ok(s)) => prop_assert_eq!(f, s, "{}", nd),
                (Some(_), Err(e)) => prop_assert!(false, "typed took what the walk refused: {nd} {e:?}"),
                (None, _) => {}
            }
        }
    }

    /// The typed reader is what takes ordinary bodies (the walk only runs for errors).
    #[test]
    fn ordinary_bodies_take_the_typed_reader() {
        let body = br#"[{"series": "cpu", "labels": {"host": "a"}, "points": [[1000, 1.5], [null, 2], ["2025-11-27T08:00:00Z", 3]]}]"#;
        let fast = fast::document(body, Precision::Milliseconds, NOW).expect("typed");
        assert_eq!(
            Ok(fast),
            document_by_value(body, Precision::Milliseconds, NOW, 10)
        );
        assert!(fast::document(
            br#"{"series": "a", "points": []}"#,
            Precision::Milliseconds,
            NOW
        )
        .is_none());
        // An object written as an array, by position, is not an object.
        let positional = br#"[["cpu", {"host": "a"}, [[1000, 1.5]]]]"#;
        assert!(fast::document(positional, Precision::Milliseconds, NOW).is_none());
        let line = &positional[1..positional.len() - 1];
        assert!(fast::ndjson(line, Precision::Milliseconds, NOW).is_none());
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
                "labels.k: label \"k\" value \"\"",
            ),
            // Repeated keys: `Value` would keep the last one and drop the rest silently.
            (
                r#"{"series": "a", "points": [[1, 1]], "points": [[2, 2]]}"#,
                "points: repeated key",
            ),
            (
                r#"[{"series": "a", "points": [[1, 1]]}, {"series": "b", "series": "c", "points": [[1, 1]]}]"#,
                "[1].series: repeated key",
            ),
            (
                r#"{"series": "a", "labels": {"host": "x", "host": "y"}, "points": [[1, 1]]}"#,
                "labels.host: repeated key",
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
        let nd = parse_ndjson(
            b"{\"series\": \"a\", \"points\": [[1, 1]]}\n\n{\"series\": \"a\", \"labels\": {\"k\": \"1\", \"k\": \"2\"}, \"points\": [[1, 1]]}\n",
            Precision::Milliseconds,
            NOW,
            10,
        )
        .unwrap_err();
        assert_eq!(
            nd[0].to_string(),
            "line 3: labels.k: repeated key (give each key once)"
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

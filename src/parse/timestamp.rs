//! Timestamps as pushers send them: epoch milliseconds (number or numeric string) or RFC 3339.
//!
//! Everything becomes i64 nanoseconds since the epoch. Milliseconds are the default unit
//! because that is what the original demo, JavaScript's `Date.now()` and most dashboards use.

use crate::model::NANOS_PER_MILLI;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp {0} is outside the supported range (years 1677 to 2262)")]
    OutOfRange(String),
    #[error("timestamp {0:?} is neither epoch milliseconds nor an RFC 3339 date-time (e.g. 2026-11-27T08:00:00Z)")]
    Unparseable(String),
    #[error("timestamp must be a number of epoch milliseconds or a string, got {0}")]
    WrongType(&'static str),
}

/// Converts a (possibly fractional) count of epoch milliseconds to nanoseconds, refusing what
/// does not fit in i64 instead of saturating silently.
pub fn millis_to_nanos(ms: f64) -> Result<i64, TimestampError> {
    let ns = (ms * NANOS_PER_MILLI as f64).round();
    // i64::MAX as f64 rounds up to 2^63, so the upper bound must be exclusive.
    if !ns.is_finite() || ns < i64::MIN as f64 || ns >= i64::MAX as f64 {
        return Err(TimestampError::OutOfRange(format_ms(ms)));
    }
    Ok(ns as i64)
}

fn format_ms(ms: f64) -> String {
    if ms.fract() == 0.0 && ms.abs() < 1e21 {
        format!("{ms:.0}")
    } else {
        ms.to_string()
    }
}

/// Integer milliseconds stay exact (no trip through f64) when they fit.
pub fn int_millis_to_nanos(ms: i64) -> Result<i64, TimestampError> {
    ms.checked_mul(NANOS_PER_MILLI)
        .ok_or_else(|| TimestampError::OutOfRange(ms.to_string()))
}

/// Parses the string forms: numeric epoch milliseconds, or an RFC 3339 date-time.
pub fn parse_str(s: &str) -> Result<i64, TimestampError> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return int_millis_to_nanos(ms);
    }
    if let Some(ns) = exact_decimal_millis(t) {
        return ns.ok_or_else(|| TimestampError::OutOfRange(s.to_string()));
    }
    if looks_numeric(t) {
        if let Ok(ms) = t.parse::<f64>() {
            return millis_to_nanos(ms);
        }
    }
    let dt = OffsetDateTime::parse(t, &Rfc3339)
        .map_err(|_| TimestampError::Unparseable(s.to_string()))?;
    i64::try_from(dt.unix_timestamp_nanos()).map_err(|_| TimestampError::OutOfRange(s.to_string()))
}

/// `123.456789` milliseconds exactly to nanoseconds (f64 would blur the last digits at today's
/// magnitudes). `None` when `s` is not of that plain form; `Some(None)` when it overflows.
fn exact_decimal_millis(s: &str) -> Option<Option<i64>> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.')?;
    let all_digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    // Digits past nanoseconds are dropped (truncation toward zero); six is all ms can carry.
    let mut sub_ns: i64 = 0;
    for i in 0..6 {
        let d = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        sub_ns = sub_ns * 10 + d;
    }
    let int_ms: i64 = if int.is_empty() {
        Some(0)
    } else {
        int.parse().ok()
    }
    .unwrap_or(i64::MAX);
    let magnitude = int_ms
        .checked_mul(NANOS_PER_MILLI)
        .and_then(|n| n.checked_add(sub_ns));
    Some(magnitude.map(|m| if negative { -m } else { m }))
}

/// Only plain decimal notation counts as milliseconds: Rust's float parser would also take
/// "inf" or "NaN", which are not times.
fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// Parses a JSON timestamp value. `None` or `null` is "no timestamp" and left to the caller.
pub fn parse_json(v: &serde_json::Value) -> Result<Option<i64>, TimestampError> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(ms) = n.as_i64() {
                int_millis_to_nanos(ms).map(Some)
            } else {
                // u64 beyond i64 or a float: both go through f64 and the range check.
                millis_to_nanos(n.as_f64().unwrap_or(f64::INFINITY)).map(Some)
            }
        }
        Value::String(s) => parse_str(s).map(Some),
        Value::Bool(_) => Err(TimestampError::WrongType("a boolean")),
        Value::Array(_) => Err(TimestampError::WrongType("an array")),
        Value::Object(_) => Err(TimestampError::WrongType("an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: i64 = 1_764_230_400_000; // 2025-11-27T08:00:00Z

    #[test]
    fn numbers_are_epoch_millis() {
        assert_eq!(parse_json(&json!(T)).unwrap(), Some(T * 1_000_000));
        assert_eq!(parse_json(&json!(1.5)).unwrap(), Some(1_500_000));
        assert_eq!(parse_json(&json!(-1000)).unwrap(), Some(-1_000_000_000));
        assert_eq!(parse_json(&json!(null)).unwrap(), None);
    }

    #[test]
    fn strings_are_millis_or_rfc3339() {
        assert_eq!(parse_str("1764230400000").unwrap(), T * 1_000_000);
        assert_eq!(
            parse_str(" 1764230400000.25 ").unwrap(),
            T * 1_000_000 + 250_000
        );
        assert_eq!(parse_str("2025-11-27T08:00:00Z").unwrap(), T * 1_000_000);
        assert_eq!(
            parse_str("2025-11-27T09:00:00+01:00").unwrap(),
            T * 1_000_000
        );
        assert_eq!(
            parse_str("2025-11-27T08:00:00.000000123Z").unwrap(),
            T * 1_000_000 + 123
        );
    }

    #[test]
    fn bad_timestamps_name_the_problem() {
        for bad in [
            "yesterday",
            "",
            "NaN",
            "inf",
            "2025-13-01T00:00:00Z",
            "2025-11-27",
        ] {
            assert!(
                matches!(parse_str(bad), Err(TimestampError::Unparseable(_))),
                "{bad:?} should be unparseable"
            );
        }
        assert!(matches!(
            parse_json(&json!(1e300)),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_json(&json!(i64::MAX)),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_json(&json!(u64::MAX)),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_json(&json!(true)),
            Err(TimestampError::WrongType(_))
        ));
        assert!(matches!(
            parse_str("3000-01-01T00:00:00Z"),
            Err(TimestampError::OutOfRange(_))
        ));
    }

    #[test]
    fn range_edges() {
        let max_ms = i64::MAX / NANOS_PER_MILLI;
        assert!(int_millis_to_nanos(max_ms).is_ok());
        assert!(int_millis_to_nanos(max_ms + 1).is_err());
        assert!(millis_to_nanos(9.3e12).is_err());
        assert!(millis_to_nanos(-9.3e12).is_err());
    }
}

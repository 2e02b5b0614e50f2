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
    #[error(
        "timestamp {0:?} is neither a number nor an RFC 3339 date-time (e.g. 2026-11-27T08:00:00Z)"
    )]
    Unparseable(String),
    #[error("timestamp must be a number or a string, got {0}")]
    WrongType(&'static str),
}

/// Units of numeric timestamps: the `precision` query parameter of the JSON and Influx
/// endpoints. Milliseconds are the default of the JSON API, nanoseconds of line protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    /// InfluxDB 1.x only.
    Minutes,
    /// InfluxDB 1.x only.
    Hours,
}

impl Precision {
    /// Accepts both the 2.x (`ns`, `us`, `ms`, `s`) and the 1.x (`n`, `u`, `ms`, `s`, `m`, `h`)
    /// spellings.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ns" | "n" => Some(Self::Nanoseconds),
            "us" | "u" | "µs" => Some(Self::Microseconds),
            "ms" => Some(Self::Milliseconds),
            "s" => Some(Self::Seconds),
            "m" => Some(Self::Minutes),
            "h" => Some(Self::Hours),
            _ => None,
        }
    }

    pub fn nanos_per_unit(self) -> i64 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => NANOS_PER_MILLI,
            Self::Seconds => 1_000_000_000,
            Self::Minutes => 60_000_000_000,
            Self::Hours => 3_600_000_000_000,
        }
    }

    /// Scales an integer count of this unit, refusing overflow.
    pub fn to_nanos(self, t: i64) -> Option<i64> {
        t.checked_mul(self.nanos_per_unit())
    }
}

/// Converts a (possibly fractional) count of `unit` to nanoseconds, refusing what does not fit
/// in i64 instead of saturating silently.
pub fn float_to_nanos(t: f64, unit: Precision) -> Result<i64, TimestampError> {
    let ns = (t * unit.nanos_per_unit() as f64).round();
    // i64::MAX as f64 rounds up to 2^63, so the upper bound must be exclusive.
    if !ns.is_finite() || ns < i64::MIN as f64 || ns >= i64::MAX as f64 {
        return Err(TimestampError::OutOfRange(format_number(t)));
    }
    Ok(ns as i64)
}

fn format_number(t: f64) -> String {
    if t.abs() >= 1e21 {
        format!("{t:e}")
    } else if t.fract() == 0.0 {
        format!("{t:.0}")
    } else {
        t.to_string()
    }
}

/// Integer counts stay exact (no trip through f64).
pub fn int_to_nanos(t: i64, unit: Precision) -> Result<i64, TimestampError> {
    unit.to_nanos(t)
        .ok_or_else(|| TimestampError::OutOfRange(t.to_string()))
}

/// Epoch milliseconds (fractions allowed) to nanoseconds; the demo endpoint's unit.
pub fn millis_to_nanos(ms: f64) -> Result<i64, TimestampError> {
    float_to_nanos(ms, Precision::Milliseconds)
}

/// Integer epoch milliseconds to nanoseconds, exactly.
pub fn int_millis_to_nanos(ms: i64) -> Result<i64, TimestampError> {
    int_to_nanos(ms, Precision::Milliseconds)
}

/// Parses the string forms: a number of `unit`, or an RFC 3339 date-time.
pub fn parse_str_in(s: &str, unit: Precision) -> Result<i64, TimestampError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return int_to_nanos(n, unit);
    }
    if let Some(ns) = exact_decimal(t, unit) {
        return ns.ok_or_else(|| TimestampError::OutOfRange(s.to_string()));
    }
    if looks_numeric(t) {
        if let Ok(n) = t.parse::<f64>() {
            return float_to_nanos(n, unit);
        }
    }
    let dt = OffsetDateTime::parse(t, &Rfc3339)
        .map_err(|_| TimestampError::Unparseable(s.to_string()))?;
    i64::try_from(dt.unix_timestamp_nanos()).map_err(|_| TimestampError::OutOfRange(s.to_string()))
}

/// Parses the string forms in milliseconds, the demo endpoint's unit.
pub fn parse_str(s: &str) -> Result<i64, TimestampError> {
    parse_str_in(s, Precision::Milliseconds)
}

/// `123.456789` of `unit` exactly to nanoseconds (f64 would blur the last digits at today's
/// magnitudes). `None` when `s` is not of that plain form; `Some(None)` when it overflows.
fn exact_decimal(s: &str, unit: Precision) -> Option<Option<i64>> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.')?;
    let all_digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let per_unit = i128::from(unit.nanos_per_unit());
    // Digits below a nanosecond are dropped (truncation toward zero).
    let mut sub: i128 = 0;
    let mut scale: i128 = 1;
    for b in frac.bytes().take(18) {
        sub = sub * 10 + i128::from(b - b'0');
        scale *= 10;
    }
    let int_part: i128 = if int.is_empty() {
        Some(0)
    } else {
        int.parse().ok()
    }?;
    let magnitude = int_part
        .checked_mul(per_unit)?
        .checked_add(sub * per_unit / scale)?;
    let signed = if negative { -magnitude } else { magnitude };
    Some(i64::try_from(signed).ok())
}

/// Only plain decimal notation counts as a number: Rust's float parser would also take "inf"
/// or "NaN", which are not times.
fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// Parses a JSON timestamp given in `unit` (numbers and numeric strings) or RFC 3339.
/// `null` is "no timestamp" and left to the caller.
pub fn parse_json_in(
    v: &serde_json::Value,
    unit: Precision,
) -> Result<Option<i64>, TimestampError> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(t) = n.as_i64() {
                int_to_nanos(t, unit).map(Some)
            } else {
                // u64 beyond i64 or a float: both go through f64 and the range check.
                float_to_nanos(n.as_f64().unwrap_or(f64::INFINITY), unit).map(Some)
            }
        }
        Value::String(s) => parse_str_in(s, unit).map(Some),
        Value::Bool(_) => Err(TimestampError::WrongType("a boolean")),
        Value::Array(_) => Err(TimestampError::WrongType("an array")),
        Value::Object(_) => Err(TimestampError::WrongType("an object")),
    }
}

/// [`parse_json_in`] with milliseconds, the demo endpoint's unit.
pub fn parse_json(v: &serde_json::Value) -> Result<Option<i64>, TimestampError> {
    parse_json_in(v, Precision::Milliseconds)
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
    fn other_precisions() {
        assert_eq!(
            parse_json_in(&json!(5), Precision::Seconds).unwrap(),
            Some(5_000_000_000)
        );
        assert_eq!(
            parse_json_in(&json!("1.5"), Precision::Seconds).unwrap(),
            Some(1_500_000_000)
        );
        assert_eq!(
            parse_json_in(&json!(7), Precision::Nanoseconds).unwrap(),
            Some(7)
        );
        assert_eq!(
            parse_json_in(&json!(2.5), Precision::Microseconds).unwrap(),
            Some(2_500)
        );
        assert!(parse_json_in(&json!(i64::MAX / 10), Precision::Seconds).is_err());
        assert_eq!(
            parse_json_in(&json!("2025-11-27T08:00:00Z"), Precision::Seconds).unwrap(),
            Some(T * 1_000_000)
        );
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

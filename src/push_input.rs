//! What `livechart push` makes of one line of its input: a bare number, `timestamp,value`
//! CSV, or InfluxDB line protocol, whichever the line is. Pure, so it is tested natively.
//!
//! Every point gets its timestamp when the line is read, not when it is sent: a batch sent
//! again after the server was away then carries the same points, and writing a point twice
//! changes nothing (one value per timestamp).

use crate::model::Point;
use crate::parse::line_protocol;
use crate::parse::timestamp::{self, Precision};

/// One input line, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Empty, a `#` comment, or a CSV header such as `timestamp,value`.
    Skip,
    /// A point of the series named on the command line.
    Point(Point),
    /// A line protocol line, with a nanosecond timestamp appended when it had none.
    Line(String),
}

/// Reads `text` as read at `now_ns`; CSV timestamps that are numbers are in `precision`.
pub fn read_line(text: &str, now_ns: i64, precision: Precision) -> Result<Input, String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Input::Skip);
    }
    if let Ok(v) = t.parse::<f64>() {
        return point(now_ns, v);
    }
    if let Some((ts, value)) = t.split_once(',') {
        let (ts, value) = (ts.trim(), value.trim());
        if let Ok(v) = value.parse::<f64>() {
            let at = timestamp::parse_str_in(ts, precision)
                .map_err(|e| format!("CSV timestamp: {e}"))?;
            return point(at, v);
        }
        if is_word(ts) && is_word(value) {
            return Ok(Input::Skip);
        }
    }
    match line_protocol::parse_line(t, Precision::Nanoseconds) {
        Ok(line) if line.timestamp.is_some() => Ok(Input::Line(t.to_string())),
        Ok(_) => Ok(Input::Line(format!("{t} {now_ns}"))),
        Err(e) => Err(format!(
            "not a number, `timestamp,value` or line protocol ({e}): {}",
            clip(t)
        )),
    }
}

fn point(ts_ns: i64, value: f64) -> Result<Input, String> {
    Point::new(ts_ns, value)
        .map(Input::Point)
        .map_err(|e| e.to_string())
}

/// A CSV header cell: letters, digits, `_`, `-`, `.` and spaces.
fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars().any(|c| c.is_alphabetic())
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
}

/// A line shortened for an error message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn read(t: &str) -> Result<Input, String> {
        read_line(t, NOW, Precision::Milliseconds)
    }

    fn p(ts: i64, v: f64) -> Input {
        Input::Point(Point::new(ts, v).unwrap())
    }

    #[test]
    fn a_number_is_a_point_now() {
        assert_eq!(read("42").unwrap(), p(NOW, 42.0));
        assert_eq!(read("  -3.5e2 \r").unwrap(), p(NOW, -350.0));
    }

    #[test]
    fn csv_carries_its_own_timestamp() {
        assert_eq!(
            read("1700000000000,1.5").unwrap(),
            p(1_700_000_000_000_000_000, 1.5)
        );
        assert_eq!(
            read("2026-11-28T00:00:00Z, 2").unwrap(),
            p(1_795_824_000_000_000_000, 2.0)
        );
        let secs = read_line("1700000000,1", NOW, Precision::Seconds).unwrap();
        assert_eq!(secs, p(1_700_000_000_000_000_000, 1.0));
    }

    #[test]
    fn headers_comments_and_blank_lines_are_skipped() {
        for t in [
            "",
            "   ",
            "# a comment",
            "timestamp,value",
            "time, cpu idle",
        ] {
            assert_eq!(read(t).unwrap(), Input::Skip, "{t:?}");
        }
    }

    #[test]
    fn line_protocol_gets_the_read_time_when_it_has_none() {
        assert_eq!(
            read("cpu,host=a idle=95 1700000000000000000").unwrap(),
            Input::Line("cpu,host=a idle=95 1700000000000000000".into())
        );
        assert_eq!(
            read("temp value=21.5").unwrap(),
            Input::Line(format!("temp value=21.5 {NOW}"))
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for t in ["abc", "NaN", "inf", "12,abc,3", "cpu idle", "1,2,3"] {
            let e = read(t).unwrap_err();
            assert!(!e.is_empty(), "{t:?}");
        }
        assert!(read("notatime,3").unwrap_err().contains("timestamp"));
    }
}

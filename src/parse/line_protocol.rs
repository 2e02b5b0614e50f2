//! InfluxDB line protocol, so Telegraf, Vector and the Influx client libraries push unchanged.
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! Escapes follow InfluxDB 2.x: in the measurement `\,` and `\ `; in tag keys, tag values and
//! field keys also `\=`; everywhere `\\` is one literal backslash; in string field values
//! `\"` and `\\`. A backslash before any other character is a literal backslash. Field values are floats (`1`, `-1.5e3`), integers (`42i`),
//! unsigned integers (`42u`), booleans (`t`, `true`, `F`, `FALSE`, …) or double-quoted strings.
//! Empty lines and lines starting with `#` are skipped; `\r\n` line ends are accepted.
//!
//! Stricter than InfluxDB where it would silently lose data: a duplicate tag or field key, NaN
//! or an infinite float, and an integer outside its type's range are errors naming the line.
//!
//! The parser borrows from the input and allocates only for keys that contain escapes. A plain
//! line (no escapes or quotes, which is what Telegraf sends) takes a fast path that finds its
//! separators 64 bytes at a time ([`super::separators`]); any other line, and every bad one,
//! is parsed a byte at a time, which also names the error. `make bench` measures it.

use super::lookahead::Lookahead;
use super::number::{self, Number};
use super::separators::Separators;
use std::borrow::Cow;

/// Default for the longest line accepted: 64 KiB holds hundreds of fields, and the bound keeps
/// one bad line from dominating the work of a request.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How to read a body: timestamp unit, how many errors to report, longest line.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub precision: Precision,
    pub max_errors: usize,
    pub max_line_bytes: usize,
}

impl Options {
    pub fn new(precision: Precision) -> Self {
        Self {
            precision,
            max_errors: 1,
            max_line_bytes: MAX_LINE_BYTES,
        }
    }
}

const MEASUREMENT_ESCAPES: &[u8] = b", \\";
const KEY_ESCAPES: &[u8] = b",= \\";

pub use super::timestamp::Precision;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    /// The raw text between the quotes, escapes not yet resolved (strings are not stored).
    Str(&'a str),
}

impl FieldValue<'_> {
    /// The number livechart stores, or `None` for strings.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Float(v) => Some(v),
            Self::Int(v) => Some(v as f64),
            Self::UInt(v) => Some(v as f64),
            Self::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            Self::Str(_) => None,
        }
    }
}

/// One parsed line, borrowing from the request body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line<'a> {
    /// The measurement and tag set as sent (escapes unresolved): equal text, equal series, so
    /// callers can use it as a cheap key before building labels.
    pub series_text: &'a str,
    pub measurement: Cow<'a, str>,
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Nanoseconds since the epoch, already scaled by the precision.
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    #[error("line is {0} bytes long; the limit is {1}")]
    LineTooLong(usize, usize),
    #[error("missing measurement")]
    MissingMeasurement,
    #[error("tag {0:?} has no value (expected key=value)")]
    TagWithoutValue(String),
    #[error("empty tag key or value")]
    EmptyTag,
    #[error("duplicate tag key {0:?}")]
    DuplicateTag(String),
    #[error("missing fields (expected at least one key=value after the measurement and tags)")]
    MissingFields,
    #[error("field {0:?} has no value (expected key=value)")]
    FieldWithoutValue(String),
    #[error("empty field key")]
    EmptyFieldKey,
    #[error("duplicate field key {0:?}")]
    DuplicateField(String),
    #[error("field {key:?}: invalid value {value:?}")]
    InvalidFieldValue { key: String, value: String },
    #[error("field {key:?}: integer {value:?} is out of range")]
    IntegerOutOfRange { key: String, value: String },
    #[error("field {key:?}: value must be finite, got {value:?}")]
    NonFiniteField { key: String, value: String },
    #[error("field {0:?}: unterminated string")]
    UnterminatedString(String),
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    #[error("timestamp {0} is out of range at this precision")]
    TimestampOutOfRange(i64),
    #[error("unexpected text after the timestamp")]
    TrailingText,
}

/// A bad line, with its 1-based number in the request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct LineError {
    pub line: usize,
    pub kind: ErrorKind,
}

/// Calls `on_line` with every data line of `body`, in order.
///
/// Lines are split on `\n`; the line number in errors counts every line, comments and empty
/// lines included, so it matches what the sender sees in its own file. After a bad line the
/// rest is still checked, so the sender learns of up to `max_errors` problems at once; the
/// caller must then discard what `on_line` received.
///
/// Speed: UTF-8 is checked a piece at a time just ahead of the parser ([`Lookahead`]; per
/// line once a piece fails, to name the line), plain lines take a fast path that finds their
/// ends with their tokens, and one [`Line`] is reused, so a typical line costs no allocation.
pub fn parse<'a>(
    body: &'a [u8],
    options: Options,
    mut on_line: impl FnMut(usize, &Line<'a>),
) -> Result<(), Vec<LineError>> {
    let max_errors = options.max_errors;
    let mut errors = Vec::new();
    let mut line = Line::default();
    let mut start = 0;
    let mut number = 0;
    let mut seps = Separators::new(body);
    let mut ahead = Lookahead::new(body);
    // Whether `seps` goes on from `start`: true after a line the fast path took.
    let mut in_step = true;
    while start <= body.len() {
        number += 1;
        let checked = ahead.text_through_line(start);
        if let Some(all) = checked {
            if !in_step {
                seps.seek(start);
            }
            let plain = parse_plain(all, start, &mut seps, &mut ahead, options, &mut line);
            in_step = plain.is_some();
            if let Some(line_end) = plain {
                if errors.is_empty() {
                    on_line(number, &line);
                }
                start = line_end + 1;
                continue;
            }
        }
        let slow = parse_slow(body, checked, start, options, &mut line);
        start = slow.next;
        // Errors name the line where the logical line starts; the next one counts on from
        // where it ended.
        let this = number;
        number += slow.inner_newlines;
        let number = this;
        let Some(outcome) = slow.outcome else {
            continue;
        };
        match outcome {
            Ok(()) if errors.is_empty() => on_line(number, &line),
            Ok(()) => {}
            Err(kind) => {
                errors.push(LineError { line: number, kind });
                if errors.len() >= max_errors.max(1) {
                    break;
                }
            }
        }
        // Unescaped keys own their text: drop them here, so the fast path finds only
        // borrowed text and may forget it instead of dropping it ([`forget_borrowed`]).
        line.tags.clear();
        line.fields.clear();
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What the byte-by-byte parser made of the logical line at `start`.
struct Slow {
    /// Where the next line starts.
    next: usize,
    /// Newlines inside the line's quoted strings, which the line count must skip.
    inner_newlines: usize,
    /// `None` for a blank line or a comment.
    outcome: Option<Result<(), ErrorKind>>,
}

/// Parses the line at `start` that the fast path did not take, and names what is wrong with
/// it. Out of line, so that the fast path's loop keeps its values in registers. `checked` is
/// the body's prefix already known to be UTF-8 ([`Lookahead`]): a line inside it is not
/// checked again (bodies of string fields send every line here).
#[cold]
#[inline(never)]
fn parse_slow<'a>(
    body: &'a [u8],
    checked: Option<&'a str>,
    start: usize,
    options: Options,
    line: &mut Line<'a>,
) -> Slow {
    let mut end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |p| start + p);
    // Only a line with a quote can hold a newline inside a string value.
    let mut inner_newlines = 0;
    if memchr::memchr(b'"', &body[start..end]).is_some() {
        // Leading blanks and comments first: a quote in a comment opens nothing.
        let text_start = body[start..end]
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .map_or(end, |p| start + p);
        if body.get(text_start) != Some(&b'#') {
            end = logical_line_end(body, text_start);
            inner_newlines = memchr::memchr_iter(b'\n', &body[start..end]).count();
        }
    }
    let (from, to) = (start, end - usize::from(body[start..end].ends_with(b"\r")));
    let outcome = if to - from > options.max_line_bytes {
        Some(Err(ErrorKind::LineTooLong(
            to - from,
            options.max_line_bytes,
        )))
    } else {
        let text = match checked.and_then(|all| all.get(from..to)) {
            Some(text) => Ok(text),
            None => std::str::from_utf8(&body[from..to]),
        };
        match text {
            Err(_) => Some(Err(ErrorKind::InvalidUtf8)),
            Ok(text) => {
                let trimmed = text.trim_start_matches([' ', '\t']);
                (!trimmed.is_empty() && !trimmed.starts_with('#'))
                    .then(|| parse_into(trimmed, options.precision, line))
            }
        }
    };
    Slow {
        next: end + 1,
        inner_newlines,
        outcome,
    }
}

/// Where the line starting at `start` ends when a newline may sit inside a quoted string
/// field value, which InfluxDB keeps as part of the value. A quote opens a string only right
/// after the `=` of a field (quotes in the measurement and tags are plain characters);
/// inside it, a backslash escapes the next byte. An unterminated string runs to the end.
fn logical_line_end(body: &[u8], start: usize) -> usize {
    let mut i = start;
    // Measurement and tags: up to the first unescaped space (or the end of the line).
    while let Some(&b) = body.get(i) {
        match b {
            // An escape never reaches across the line end.
            b'\\' if body.get(i + 1) != Some(&b'\n') => i += 2,
            b' ' => break,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    let (mut in_string, mut prev) = (false, 0u8);
    while let Some(&b) = body.get(i) {
        match (in_string, b) {
            // Inside a string an escaped newline is part of the value; outside, the newline
            // still ends the line.
            (_, b'\\') if in_string || body.get(i + 1) != Some(&b'\n') => {
                i += 2;
                prev = 0;
                continue;
            }
            (true, b'"') => in_string = false,
            (false, b'"') if prev == b'=' => in_string = true,
            (false, b'\n') => return i,
            _ => {}
        }
        prev = b;
        i += 1;
    }
    body.len()
}

/// Parses one non-empty, non-comment line.
pub fn parse_line(text: &str, precision: Precision) -> Result<Line<'_>, ErrorKind> {
    let mut line = Line::default();
    parse_into(text, precision, &mut line)?;
    Ok(line)
}

/// Parses the line starting at `all[start..]` into `line` when it is a plain line: no escapes
/// or quotes, no leading blank, single spaces, and fields the fast number reader takes. That
/// is what Telegraf and the client libraries send, and here each token costs a few
/// instructions ([`Separators`], which must go on from `start`). `all` holds the whole line
/// and `ahead` knows where its backslashes and quotes are. Returns where the line ends
/// (its `\n`, or the body's length), or `None` for anything else, invalid lines included:
/// [`parse_into`] then parses the line from scratch and names any error. For every line this
/// accepts, the two give the same result (a property test checks it).
#[inline(always)]
fn parse_plain<'a>(
    all: &'a str,
    start: usize,
    seps: &mut Separators,
    ahead: &mut Lookahead,
    options: Options,
    line: &mut Line<'a>,
) -> Option<usize> {
    let b = all.as_bytes();
    // The byte at `i`, with the body's end read as one more line end.
    let at = |i: usize| b.get(i).copied().unwrap_or(b'\n');
    // The text between two positions, each `start` or a stop (or one past one). Both are
    // char boundaries, since ASCII bytes never occur inside a multi-byte UTF-8 sequence,
    // and stops come in order. Skipping the checked slice's boundary tests measured 1.5%.
    let text = |from: usize, to: usize| -> &'a str {
        debug_assert!(from <= to && all.is_char_boundary(from) && all.is_char_boundary(to));
        // SAFETY: `from <= to <= all.len()`, both at char boundaries (see above).
        unsafe { all.get_unchecked(from..to) }
    };
    // A tab or `#` first is a blank line or a comment (a space is caught below).
    if matches!(b.get(start), Some(b'\t' | b'#')) {
        return None;
    }
    forget_borrowed(&mut line.tags, |tag| {
        matches!(tag, (Cow::Borrowed(_), Cow::Borrowed(_)))
    });
    forget_borrowed(&mut line.fields, |field| {
        matches!(field, (Cow::Borrowed(_), _))
    });
    // The measurement ends at a ',' or ' ' (an '=' in it is left to the full parser).
    let mut p = seps.next_stop();
    if p == start {
        return None;
    }
    line.measurement = Cow::Borrowed(text(start, p));
    let mut tag_keys = 0u64;
    while at(p) == b',' {
        let eq = seps.next_stop();
        if at(eq) != b'=' || eq == p + 1 {
            return None;
        }
        let end = seps.next_stop();
        if matches!(at(end), b'=' | b'\n') || end == eq + 1 {
            return None;
        }
        tag_keys |= KeySet::span_bit(b, p + 1, eq);
        push_tag(&mut line.tags, text(p + 1, eq), text(eq + 1, end));
        p = end;
    }
    if duplicate_key(tag_keys, &line.tags) {
        return None;
    }
    // An escape in the measurement or tags (a tag value with a space, say) makes the tokens
    // above wrong: give up now rather than at the line's end.
    if at(p) != b' ' || ahead.special_in(start, p) {
        return None;
    }
    let series_end = p;
    // The line's text ends before a `\r\n`.
    let text_end = |nl: usize| nl - usize::from(nl > start && b[nl - 1] == b'\r');
    let mut field_keys = 0u64;
    loop {
        let eq = seps.next_stop();
        if at(eq) != b'=' || eq == p + 1 {
            return None;
        }
        let end = seps.next_stop();
        let value_end = if at(end) == b'\n' { text_end(end) } else { end };
        // The number must run exactly to the next separator.
        let (n, len) = number::field_value(b.get(eq + 1..value_end)?)?;
        if eq + 1 + len != value_end {
            return None;
        }
        field_keys |= KeySet::span_bit(b, p + 1, eq);
        line.fields.push((Cow::Borrowed(text(p + 1, eq)), n.into()));
        p = end;
        if at(p) != b',' {
            break;
        }
    }
    if duplicate_key(field_keys, &line.fields) {
        return None;
    }
    let line_end = if at(p) == b'\n' {
        line.timestamp = None;
        p
    } else {
        // One space, then digits to the end of the line.
        let nl = seps.next_stop();
        if at(p) != b' ' || at(nl) != b'\n' {
            return None;
        }
        let t = number::timestamp(b.get(p + 1..text_end(nl))?)?;
        line.timestamp = Some(options.precision.to_nanos(t)?);
        nl
    };
    // A backslash or quote anywhere means the tokens above may be wrong.
    if text_end(line_end) - start > options.max_line_bytes || ahead.special_in(start, line_end) {
        return None;
    }
    line.series_text = text(start, series_end);
    Some(line_end)
}

/// Empties `v` without running each element's drop: `clear` tests every `Cow` for owned
/// text, which cost about 2% of the parse on typical lines. Only borrowed text may be in
/// `v` (`parse` drops what the slow path built before the next line), so nothing is leaked;
/// `borrowed` checks that in debug builds.
#[inline(always)]
fn forget_borrowed<T>(v: &mut Vec<T>, borrowed: impl Fn(&T) -> bool) {
    debug_assert!(v.iter().all(borrowed), "owned text would leak");
    // SAFETY: a length of 0 is always valid; the elements are forgotten, not read again.
    unsafe { v.set_len(0) };
}

/// `tags.push` of a borrowed pair, written in place. `Vec::push` built the pair on the stack
/// first (it must drop it if growing panics) and copied it with 16-byte loads over 8-byte
/// stores, which the CPU cannot forward (the hottest instruction in a profile; writing in
/// place measured about 1% faster overall). Reserving first leaves no panic between
/// building the pair and storing it.
#[inline(always)]
fn push_tag<'a>(tags: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>, key: &'a str, value: &'a str) {
    tags.reserve(1);
    let len = tags.len();
    tags.spare_capacity_mut()[0].write((Cow::Borrowed(key), Cow::Borrowed(value)));
    // SAFETY: `reserve(1)` made room for one more element, and the line above initialised it.
    unsafe { tags.set_len(len + 1) };
}

/// Parses one line into `line`, reusing its buffers.
fn parse_into<'a>(
    text: &'a str,
    precision: Precision,
    line: &mut Line<'a>,
) -> Result<(), ErrorKind> {
    let bytes = text.as_bytes();
    line.tags.clear();
    line.fields.clear();

    // Measurement: up to the first unescaped ',' or ' '.
    let (m_end, escaped) = scan(bytes, 0, COMMA | SPACE);
    if m_end == 0 {
        return Err(ErrorKind::MissingMeasurement);
    }
    line.measurement = unescape(&text[..m_end], escaped, MEASUREMENT_ESCAPES);
    let mut pos = m_end;

    // Tags: ",key=value" repeated, until an unescaped space.
    let mut tag_keys = SeenKeys::default();
    while pos < bytes.len() && bytes[pos] == b',' {
        let start = pos + 1;
        let (eq, k_escaped) = scan(bytes, start, EQUALS | COMMA | SPACE);
        if eq >= bytes.len() || bytes[eq] != b'=' {
            return Err(ErrorKind::TagWithoutValue(text[start..eq].to_string()));
        }
        let (end, v_escaped) = scan(bytes, eq + 1, COMMA | SPACE);
        let (k, v) = (&text[start..eq], &text[eq + 1..end]);
        if k.is_empty() || v.is_empty() {
            return Err(ErrorKind::EmptyTag);
        }
        let key = unescape(k, k_escaped, KEY_ESCAPES);
        if tag_keys.repeats(&key, &line.tags) {
            return Err(ErrorKind::DuplicateTag(key.into_owned()));
        }
        line.tags.push((key, unescape(v, v_escaped, KEY_ESCAPES)));
        pos = end;
    }

    let pos_after_tags = pos;
    // One or more spaces, then the field set.
    let fields_start = skip_spaces(bytes, pos);
    if fields_start >= bytes.len() {
        return Err(ErrorKind::MissingFields);
    }
    pos = fields_start;
    let mut field_keys = SeenKeys::default();
    loop {
        let (key_end, escaped) = scan(bytes, pos, EQUALS | COMMA | SPACE);
        let raw_key = &text[pos..key_end];
        if key_end >= bytes.len() || bytes[key_end] != b'=' {
            return Err(ErrorKind::FieldWithoutValue(raw_key.to_string()));
        }
        if raw_key.is_empty() {
            return Err(ErrorKind::EmptyFieldKey);
        }
        let key = unescape(raw_key, escaped, KEY_ESCAPES);
        let value_start = key_end + 1;
        let (value, value_end) = match number::field_value(&bytes[value_start..]) {
            Some((n, len)) => (n.into(), value_start + len),
            None => parse_field_value(text, value_start, &key)?,
        };
        if field_keys.repeats(&key, &line.fields) {
            return Err(ErrorKind::DuplicateField(key.into_owned()));
        }
        line.fields.push((key, value));
        pos = value_end;
        if pos < bytes.len() && bytes[pos] == b',' {
            pos += 1;
            continue;
        }
        break;
    }

    // Optional timestamp after one or more spaces; nothing may follow it.
    let ts_start = skip_spaces(bytes, pos);
    line.timestamp = if ts_start >= bytes.len() {
        None
    } else {
        let ts_end = bytes[ts_start..]
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .map_or(bytes.len(), |p| ts_start + p);
        if skip_spaces(bytes, ts_end) < bytes.len() {
            return Err(ErrorKind::TrailingText);
        }
        let raw = &text[ts_start..ts_end];
        let t: i64 = match number::timestamp(raw.as_bytes()) {
            Some(t) => t,
            None => raw
                .parse()
                .map_err(|_| ErrorKind::InvalidTimestamp(raw.to_string()))?,
        };
        Some(
            precision
                .to_nanos(t)
                .ok_or(ErrorKind::TimestampOutOfRange(t))?,
        )
    };
    line.series_text = &text[..pos_after_tags];
    Ok(())
}

impl From<Number> for FieldValue<'_> {
    fn from(n: Number) -> Self {
        match n {
            Number::Float(v) => Self::Float(v),
            Number::Int(v) => Self::Int(v),
            Number::UInt(v) => Self::UInt(v),
        }
    }
}

/// Parses the field value starting at `start`; returns it and the index just past it.
fn parse_field_value<'a>(
    text: &'a str,
    start: usize,
    key: &str,
) -> Result<(FieldValue<'a>, usize), ErrorKind> {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'"') {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return Ok((FieldValue::Str(&text[start + 1..i]), i + 1)),
                _ => i += 1,
            }
        }
        return Err(ErrorKind::UnterminatedString(key.to_string()));
    }
    let end = bytes[start..]
        .iter()
        .position(|&b| b == b',' || b == b' ')
        .map_or(bytes.len(), |p| start + p);
    let raw = &text[start..end];
    let invalid = || ErrorKind::InvalidFieldValue {
        key: key.to_string(),
        value: raw.to_string(),
    };
    let out_of_range = || ErrorKind::IntegerOutOfRange {
        key: key.to_string(),
        value: raw.to_string(),
    };
    let value = match raw.as_bytes().last() {
        None => return Err(invalid()),
        Some(b'i') => {
            let digits = &raw[..raw.len() - 1];
            if !is_integer(digits) {
                return Err(invalid());
            }
            FieldValue::Int(digits.parse().map_err(|_| out_of_range())?)
        }
        Some(b'u') => {
            let digits = &raw[..raw.len() - 1];
            if digits.starts_with('-') || !is_integer(digits) {
                return Err(invalid());
            }
            FieldValue::UInt(digits.parse().map_err(|_| out_of_range())?)
        }
        _ => match raw {
            "t" | "T" | "true" | "True" | "TRUE" => FieldValue::Bool(true),
            "f" | "F" | "false" | "False" | "FALSE" => FieldValue::Bool(false),
            _ => {
                if !is_float_syntax(raw) {
                    return Err(invalid());
                }
                let v: f64 = raw.parse().map_err(|_| invalid())?;
                if !v.is_finite() {
                    return Err(ErrorKind::NonFiniteField {
                        key: key.to_string(),
                        value: raw.to_string(),
                    });
                }
                FieldValue::Float(v)
            }
        },
    };
    Ok((value, end))
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Decimal float syntax only: Rust's parser would also take `inf`, `NaN` or `infinity`.
fn is_float_syntax(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

fn skip_spaces(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos] == b' ' {
        pos += 1;
    }
    pos
}

const COMMA: u8 = 1;
const SPACE: u8 = 2;
const EQUALS: u8 = 4;
const BACKSLASH: u8 = 8;

/// Byte classes for [`scan`]: one table load per byte instead of a chain of compares.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b',' as usize] = COMMA;
    t[b' ' as usize] = SPACE;
    t[b'=' as usize] = EQUALS;
    t[b'\\' as usize] = BACKSLASH;
    t
};

/// Index of the first byte at or after `from` in class `stop` that is not escaped by a
/// backslash (or `bytes.len()`), and whether a backslash came before it, so [`unescape`]
/// need not look again.
#[inline(always)]
fn scan(bytes: &[u8], from: usize, stop: u8) -> (usize, bool) {
    let mut i = from;
    let mut escaped = false;
    while let Some(&b) = bytes.get(i) {
        let class = CLASS[usize::from(b)];
        if class & (stop | BACKSLASH) != 0 {
            if class & BACKSLASH == 0 {
                return (i, escaped);
            }
            escaped = true;
            i += 1;
        }
        i += 1;
    }
    (bytes.len(), escaped)
}

/// Keys seen so far in one line, as a 64-bit fingerprint set: a new key whose bit is clear
/// cannot be a duplicate, so keys are compared only on a fingerprint collision.
#[derive(Default)]
struct KeySet(u64);

impl KeySet {
    /// Whether a key like `key` may have been seen before, and records it.
    #[inline]
    fn seen(&mut self, key: &str) -> bool {
        let b = key.as_bytes();
        let bit = Self::bit(
            b.len(),
            b.first().copied().unwrap_or(0),
            b.last().copied().unwrap_or(0),
        );
        let hit = self.0 & bit != 0;
        self.0 |= bit;
        hit
    }

    /// The fingerprint bit of the key `b[from..to]` (not empty), from the positions the fast
    /// path already has. The fast path ORs a line's bits into one word, with no test per
    /// key, and compares keys only when fewer bits are set than it has keys
    /// ([`duplicate_key`]); a test and a search per key took about 4% more of the parse.
    #[inline(always)]
    fn span_bit(b: &[u8], from: usize, to: usize) -> u64 {
        Self::bit(to - from, b[from], b[to - 1])
    }

    /// The fingerprint is the key's length and first and last bytes, mixed by one
    /// multiplication (Fibonacci hashing: the top six bits of the product depend on every
    /// bit of the three). Mixing them with shifts and XORs kept three bits of the last byte,
    /// and two keys collided in Telegraf's `cpu`, `mem`, `swap` and `diskio` lines; none of
    /// the keys of those plugins (or `disk`, `net`, `system`, `processes`, `kernel`) collide
    /// now.
    #[inline(always)]
    fn bit(len: usize, first: u8, last: u8) -> u64 {
        let key = len as u64 | u64::from(first) << 8 | u64::from(last) << 16;
        1u64 << (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
    }
}

/// Past this many keys in a line, duplicates are found with a hash set: comparing each key
/// with every earlier one is quadratic (32 M comparisons for a 64 KiB line of 8 000
/// fields, and a 1 MiB body, the default limit, holds 16 such lines). Lines this wide are
/// rare; below it the fingerprint and a few comparisons cost less than hashing.
const MANY_KEYS: usize = 64;

/// Whether two keys of `pairs` are equal, given the OR of their fingerprint bits
/// ([`KeySet::span_bit`]): keys are compared only when fewer bits are set than there are
/// keys, which is always the case past 64 keys.
#[inline(always)]
fn duplicate_key<V>(bits: u64, pairs: &[(Cow<'_, str>, V)]) -> bool {
    bits.count_ones() as usize != pairs.len() && has_duplicate(pairs)
}

#[cold]
fn has_duplicate<V>(pairs: &[(Cow<'_, str>, V)]) -> bool {
    if pairs.len() > MANY_KEYS {
        let mut set = std::collections::HashSet::with_capacity(pairs.len());
        return !pairs.iter().all(|(k, _)| set.insert(k));
    }
    pairs
        .iter()
        .enumerate()
        .any(|(i, (a, _))| pairs[..i].iter().any(|(b, _)| a == b))
}

/// The keys of one line so far, for the byte-by-byte parser, which names the first key that
/// repeats.
#[derive(Default)]
struct SeenKeys<'a> {
    bits: KeySet,
    /// Every key so far once the line has more than [`MANY_KEYS`].
    many: Option<std::collections::HashSet<Cow<'a, str>>>,
}

impl<'a> SeenKeys<'a> {
    /// Whether `key` is one of the keys of `earlier` (the line's pairs before it), and
    /// records it; the caller then adds it to `earlier`.
    // The set keeps a clone of the `Cow` itself, so borrowed keys stay borrowed.
    #[allow(clippy::ptr_arg)]
    fn repeats<V>(&mut self, key: &Cow<'a, str>, earlier: &[(Cow<'a, str>, V)]) -> bool {
        if earlier.len() < MANY_KEYS {
            return self.bits.seen(key) && earlier.iter().any(|(k, _)| k == key);
        }
        let many = self
            .many
            .get_or_insert_with(|| earlier.iter().map(|(k, _)| k.clone()).collect());
        !many.insert(key.clone())
    }
}

/// Resolves `\x` for each `x` in `escapable`; other backslashes stay literal. Borrows when
/// the scanner saw no backslash, which is almost always: that check is inlined, the work
/// is not (as one function, the call cost about 5% of a typical line).
#[inline(always)]
fn unescape<'a>(s: &'a str, escaped: bool, escapable: &[u8]) -> Cow<'a, str> {
    if escaped {
        unescape_slow(s, escapable)
    } else {
        Cow::Borrowed(s)
    }
}

#[cold]
#[inline(never)]
fn unescape_slow<'a>(s: &'a str, escapable: &[u8]) -> Cow<'a, str> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if next.is_ascii() && escapable.contains(&(next as u8)) {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Writes one line in line protocol, escaping as the parser expects; used by tests and the
/// benchmark to produce input, and by anything that needs to forward points.
pub fn write_line(
    out: &mut String,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, f64)],
    timestamp: Option<i64>,
) {
    escape_into(out, measurement, &[',', ' ']);
    for (k, v) in tags {
        out.push(',');
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        escape_into(out, v, &[',', '=', ' ']);
    }
    out.push(' ');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        // `{:?}` keeps full precision and always writes a float form ("1.0", "1e300").
        out.push_str(&format!("{v:?}"));
    }
    if let Some(t) = timestamp {
        out.push(' ');
        out.push_str(&t.to_string());
    }
}

fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(text: &str) -> Line<'_> {
        parse_line(text, Precision::Nanoseconds).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(body: &str) -> LineError {
        parse(
            body.as_bytes(),
            Options::new(Precision::Nanoseconds),
            |_, _| {},
        )
        .expect_err(&format!("{body:?} should be refused"))
        .remove(0)
    }

    #[test]
    fn parses_a_typical_telegraf_line() {
        let l = one("cpu,cpu=cpu0,host=server01 usage_idle=95.2,usage_user=3i,up=true,n=7u,msg=\"ok\" 1700000000000000000");
        assert_eq!(l.measurement, "cpu");
        assert_eq!(
            l.tags,
            vec![
                ("cpu".into(), "cpu0".into()),
                ("host".into(), "server01".into())
            ]
        );
        assert_eq!(
            l.fields,
            vec![
                ("usage_idle".into(), FieldValue::Float(95.2)),
                ("usage_user".into(), FieldValue::Int(3)),
                ("up".into(), FieldValue::Bool(true)),
                ("n".into(), FieldValue::UInt(7)),
                ("msg".into(), FieldValue::Str("ok")),
            ]
        );
        assert_eq!(l.timestamp, Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn resolves_escapes() {
        let l = one(r#"my\ meas\,x,ta\=g\ k=v\,a\ l\=ue fi\ eld\,k\=1=1,s="a \"q\" \\ b" 5"#);
        assert_eq!(l.measurement, "my meas,x");
        assert_eq!(l.tags, vec![("ta=g k".into(), "v,a l=ue".into())]);
        assert_eq!(l.fields[0].0, "fi eld,k=1");
        assert_eq!(l.fields[1].1, FieldValue::Str(r#"a \"q\" \\ b"#));
        assert_eq!(one(r"a\\b x=1").measurement, r"a\b");
        assert_eq!(
            one(r"a\b x=1").measurement,
            r"a\b",
            "a lone backslash is literal"
        );
        assert_eq!(
            one(r#"m s="a,b c=d" 1"#).fields[0].1,
            FieldValue::Str("a,b c=d")
        );
    }

    #[test]
    fn numbers_and_booleans() {
        for (text, want) in [
            ("m v=1", FieldValue::Float(1.0)),
            ("m v=-1.5e3", FieldValue::Float(-1500.0)),
            ("m v=.5", FieldValue::Float(0.5)),
            ("m v=-9223372036854775808i", FieldValue::Int(i64::MIN)),
            ("m v=18446744073709551615u", FieldValue::UInt(u64::MAX)),
            ("m v=F", FieldValue::Bool(false)),
            ("m v=TRUE", FieldValue::Bool(true)),
        ] {
            assert_eq!(one(text).fields[0].1, want, "{text}");
        }
    }

    #[test]
    fn precision_scales_timestamps() {
        let l = parse_line("m v=1 1700000000", Precision::Seconds).unwrap();
        assert_eq!(l.timestamp, Some(1_700_000_000_000_000_000));
        assert_eq!(Precision::parse("u"), Some(Precision::Microseconds));
        assert_eq!(Precision::parse("ms"), Some(Precision::Milliseconds));
        assert_eq!(Precision::parse("h"), Some(Precision::Hours));
        assert_eq!(Precision::parse("d"), None);
        assert_eq!(
            parse_line("m v=1 99999999999", Precision::Seconds),
            Err(ErrorKind::TimestampOutOfRange(99_999_999_999))
        );
    }

    #[test]
    fn a_newline_inside_a_string_value_belongs_to_it() {
        let mut got = Vec::new();
        parse(
            b"m s=\"a\nb\",v=1 5\nm,t=\"x v=2 6\r\nm s=\"q\\\"\n\",v=3",
            Options::new(Precision::Nanoseconds),
            |n, l: &Line<'_>| {
                got.push((
                    n,
                    l.fields
                        .clone()
                        .into_iter()
                        .map(|(k, v)| (k.into_owned(), format!("{v:?}")))
                        .collect::<Vec<_>>(),
                ))
            },
        )
        .unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, 1);
        assert_eq!(got[0].1[0].1, "Str(\"a\\nb\")");
        assert_eq!(
            got[1].0, 3,
            "physical line numbers continue after the embedded newline"
        );
        assert_eq!(got[2].0, 4);
        assert_eq!(got[2].1[1].1, "Float(3.0)");
        // Errors name the physical line too, and an unterminated string is reported as such.
        let e = parse(
            b"m s=\"a\nb\" 5\nm v=x",
            Options::new(Precision::Nanoseconds),
            |_, _| {},
        )
        .unwrap_err();
        assert_eq!(e[0].line, 3);
        assert!(err("m v=1\nm s=\"open\nm v=2")
            .to_string()
            .contains("line 2: field \"s\": unterminated string"));
        // A quote in a comment or after leading blanks opens nothing.
        let mut lines = Vec::new();
        parse(
            b"# set x=\"foo\nm v=1\n  m,t=\"x v=2",
            Options::new(Precision::Nanoseconds),
            |n, _| lines.push(n),
        )
        .unwrap();
        assert_eq!(lines, vec![2, 3]);
        // A trailing backslash does not join lines: line 1 is refused alone, line 2 is read.
        let e = parse(
            b"m s=\"a\",v=3\\\nm v=4",
            Options {
                max_errors: 5,
                ..Options::new(Precision::Nanoseconds)
            },
            |_, _| {},
        )
        .unwrap_err();
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn skips_comments_blank_lines_and_crlf() {
        let mut got = Vec::new();
        parse(
            b"# comment\n\nm v=1\r\n  \nm v=2",
            Options::new(Precision::Nanoseconds),
            |n, l: &Line<'_>| got.push((n, l.fields[0].1)),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![(3, FieldValue::Float(1.0)), (5, FieldValue::Float(2.0))]
        );
    }

    /// The corpus of bad lines: each names its line and its reason.
    #[test]
    fn bad_lines_are_refused_with_line_and_reason() {
        let cases: &[(&str, &str)] = &[
            ("m v=1\n,t=1 v=1", "line 2: missing measurement"),
            (" ,t=1 v=1", "missing measurement"),
            ("m", "missing fields"),
            ("m,t=1", "missing fields"),
            ("m,t v=1", "tag \"t\" has no value"),
            ("m,t= v=1", "empty tag key or value"),
            ("m,=v v=1", "empty tag key or value"),
            ("m,t=1,t=2 v=1", "duplicate tag key \"t\""),
            ("m v", "field \"v\" has no value"),
            ("m v=", "invalid value \"\""),
            ("m =1", "empty field key"),
            ("m v=1,v=2", "duplicate field key \"v\""),
            ("m v=1,", "field \"\" has no value"),
            ("m v=abc", "invalid value \"abc\""),
            ("m v=NaN", "invalid value \"NaN\""),
            ("m v=inf", "invalid value \"inf\""),
            ("m v=1e999", "must be finite"),
            ("m v=1.5i", "invalid value \"1.5i\""),
            ("m v=-1u", "invalid value \"-1u\""),
            ("m v=9223372036854775808i", "out of range"),
            ("m v=18446744073709551616u", "out of range"),
            ("m v=\"open", "unterminated string"),
            ("m v=1 12x", "invalid timestamp \"12x\""),
            ("m v=1 1.5", "invalid timestamp"),
            ("m v=1 123 456", "unexpected text after the timestamp"),
            ("m v=1 99999999999999999999", "invalid timestamp"),
        ];
        for (body, want) in cases {
            let e = err(body).to_string();
            assert!(e.contains(want), "{body:?}: {e:?} should contain {want:?}");
        }
        assert_eq!(err("m v=1\nm v=\u{0}x").line, 2);
        let e = parse(
            b"m v=1\n\xff\xfe v=1",
            Options::new(Precision::Nanoseconds),
            |_, _| {},
        )
        .unwrap_err();
        assert_eq!((e[0].line, e[0].kind.clone()), (2, ErrorKind::InvalidUtf8));
        // Past the first piece the body is checked ([`Lookahead`]), and lines in the
        // pieces before a bad one were already handed on; the caller discards them.
        let good = "温度,地点=東京 値=21.5 1\n".repeat(10_000);
        let mut body = good.clone().into_bytes();
        body.extend_from_slice(b"m v=1\n\xff v=1\nm v=2\n");
        let mut seen = 0;
        let e = parse(&body, Options::new(Precision::Seconds), |_, _| seen += 1).unwrap_err();
        assert_eq!(
            (e[0].line, e[0].kind.clone()),
            (10_002, ErrorKind::InvalidUtf8)
        );
        assert!(seen > 0 && seen <= 10_001);
        let mut seen = 0;
        let all = parse(good.as_bytes(), Options::new(Precision::Seconds), |_, l| {
            assert_eq!(l.fields, [(Cow::Borrowed("値"), FieldValue::Float(21.5))]);
            seen += 1;
        });
        assert_eq!((all, seen), (Ok(()), 10_000));
        let many = parse(
            b"m v=x\nm v=1\nm\nm v=1,v=2\nm v=",
            Options {
                max_errors: 3,
                ..Options::new(Precision::Nanoseconds)
            },
            |_, _| {},
        )
        .unwrap_err();
        let lines: Vec<usize> = many.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4], "several errors, capped");
        let long = format!("m v={}", "1".repeat(MAX_LINE_BYTES));
        assert!(matches!(
            err(&long).kind,
            ErrorKind::LineTooLong(_, MAX_LINE_BYTES)
        ));
        let short = Options {
            max_line_bytes: 8,
            ..Options::new(Precision::Nanoseconds)
        };
        let e = parse(b"m v=1\nm v=123456", short, |_, _| {}).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "line 2: line is 10 bytes long; the limit is 8"
        );
    }

    fn text() -> impl Strategy<Value = String> {
        // Every character that needs escaping somewhere, plus letters, digits and non-ASCII.
        proptest::collection::vec(
            prop_oneof![
                Just(','),
                Just('='),
                Just(' '),
                Just('\\'),
                Just('"'),
                Just('#'),
                Just('é'),
                Just('温'),
                Just('🙂'),
                proptest::char::range('a', 'z'),
                proptest::char::range('0', '9'),
            ],
            1..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    /// A line that is mostly well formed, with whatever a fast path could get wrong:
    /// separators in names, odd numbers, double spaces, escapes and quotes.
    fn near_valid_line() -> impl Strategy<Value = String> {
        let name = || {
            prop_oneof![
                8 => proptest::string::string_regex("[a-z9é]{1,5}").expect("valid regex"),
                1 => proptest::string::string_regex("[a-z9é=,]{0,5}").expect("valid regex"),
            ]
        };
        let value = prop_oneof![
            8 => proptest::sample::select(vec!["1", "-1.5", "2e3", "12i", "-7i", "9u", "1.", ".5", "-0"]),
            2 => proptest::sample::select(vec![
                "-9u", "t", "false", "\"s\"", "\"a b\\\"\"", "1e400", "99999999999999999999i",
                "18446744073709551616u", "nan", "", "1x", "0x1", "1_0", "+1", "1e",
                "123456789012345678901234",
            ]),
        ];
        let stamp = prop_oneof![
            4 => proptest::sample::select(vec!["", " 1700000000000000000", " -5"]),
            1 => proptest::sample::select(vec![
                " ", " x", " 9999999999999999999", " 12 ", "  7", " 9223372036854775807", " 1.5",
            ]),
        ];
        (
            name(),
            proptest::collection::vec((name(), name()), 0..4),
            proptest::collection::vec((name(), value), 1..5),
            prop_oneof![Just(" "), Just("  ")],
            stamp,
            proptest::option::of((
                any::<proptest::sample::Index>(),
                proptest::sample::select(vec![
                    ",", "=", " ", "\\", "\"", "\t", "#", "\\,", "\\ ", "\\=", "\\\\",
                ]),
            )),
            // Lines past 64 bytes, so a backslash can sit in a later block than the start.
            prop_oneof![Just(String::new()), "[a-z]{50,70}"],
        )
            .prop_map(|(m, tags, fields, gap, stamp, insert, long)| {
                let mut line = long + &m;
                for (k, v) in tags {
                    line += &format!(",{k}={v}");
                }
                line += gap;
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                line += &fields.join(",");
                line += stamp;
                if let Some((at, text)) = insert {
                    let mut chars: Vec<char> = line.chars().collect();
                    let at = at.index(chars.len() + 1);
                    chars.splice(at..at, text.chars());
                    line = chars.into_iter().collect();
                }
                line
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn the_fast_path_agrees_with_the_full_parser(line in near_valid_line(), tail in "[a-z,= \\\\\"]{0,70}") {
            for precision in [Precision::Nanoseconds, Precision::Seconds] {
                // The line sits at the start of a longer body, as in a request.
                let body = format!("{line}\n{tail}");
                let mut fast = Line::default();
                let mut seps = Separators::new(body.as_bytes());
                let mut ahead = Lookahead::new(body.as_bytes());
                let all = ahead.text_through_line(0).expect("a String is UTF-8");
                let options = Options::new(precision);
                if let Some(end) = parse_plain(all, 0, &mut seps, &mut ahead, options, &mut fast) {
                    prop_assert_eq!(end, memchr::memchr(b'\n', body.as_bytes()).unwrap());
                    let text = body[..end].strip_suffix('\r').unwrap_or(&body[..end]);
                    let full = parse_line(text, precision)
                        .map_err(|e| TestCaseError::fail(format!("{line:?}: fast path took it, full parser says {e}")))?;
                    prop_assert_eq!(fast, full, "{:?}", line);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn a_body_parses_as_its_lines_one_by_one(
            lines in proptest::collection::vec(
                (
                    // Mostly valid lines, so that bodies go on past their first line.
                    prop_oneof![
                        4 => near_valid_line().prop_filter("a valid line", |l| {
                            parse_line(&l.replace('"', "q"), Precision::Seconds).is_ok()
                        }),
                        1 => near_valid_line(),
                    ],
                    proptest::sample::select(vec!["", "", "", " ", "\t", "#"]),
                    any::<bool>(),
                ),
                1..8,
            ),
        ) {
            // Without quotes a newline always ends a line, so each line stands alone.
            let lines: Vec<String> = lines
                .into_iter()
                .map(|(l, lead, crlf)| format!("{lead}{}{}", l.replace('"', "q"), if crlf { "\r" } else { "" }))
                .collect();
            let body = lines.join("\n");
            let mut want = Vec::new();
            let mut want_ok = true;
            for (i, raw) in lines.iter().enumerate() {
                let text = raw.strip_suffix('\r').unwrap_or(raw).trim_start_matches([' ', '\t']);
                if text.is_empty() || text.starts_with('#') {
                    continue;
                }
                match parse_line(text, Precision::Seconds) {
                    Ok(l) => want.push((i + 1, l)),
                    Err(_) => {
                        want_ok = false;
                        break;
                    }
                }
            }
            let mut got = Vec::new();
            let outcome = parse(body.as_bytes(), Options::new(Precision::Seconds), |n, l| got.push((n, l.clone())));
            prop_assert_eq!(outcome.is_ok(), want_ok, "{:?}", body);
            prop_assert_eq!(got, want, "{:?}", body);
        }
    }

    #[test]
    fn wide_lines_find_every_duplicate() {
        let options = Options {
            max_line_bytes: 1 << 20,
            ..Options::new(Precision::Seconds)
        };
        let fields: Vec<String> = (0..5_000).map(|i| format!("f{i}=1")).collect();
        let tags: Vec<String> = (0..100).map(|i| format!("t{i}=a")).collect();
        let fields = fields.join(",");
        let tags = tags.join(",");
        // The first line takes the fast path; the escaped measurement sends the second to
        // the byte-by-byte parser.
        for m in ["m", "m\\ x"] {
            let parse_one = |text: String| {
                let mut got = None;
                parse(text.as_bytes(), options, |_, l| {
                    got = Some((l.tags.len(), l.fields.len()))
                })
                .map(|()| got)
                .map_err(|e| e[0].kind.clone())
            };
            assert_eq!(
                parse_one(format!("{m},{tags} {fields}")),
                Ok(Some((100, 5_000)))
            );
            assert_eq!(
                parse_one(format!("{m},{tags} {fields},f17=2")),
                Err(ErrorKind::DuplicateField("f17".into()))
            );
            assert_eq!(
                parse_one(format!("{m},{tags},t5=b {fields}")),
                Err(ErrorKind::DuplicateTag("t5".into()))
            );
        }
    }

    fn plain<'a>(body: &'a str, line: &mut Line<'a>) -> Option<usize> {
        let mut seps = Separators::new(body.as_bytes());
        let mut ahead = Lookahead::new(body.as_bytes());
        let all = ahead.text_through_line(0).expect("a str is UTF-8");
        let options = Options::new(Precision::Nanoseconds);
        parse_plain(all, 0, &mut seps, &mut ahead, options, line)
    }

    #[test]
    fn the_fast_path_takes_typical_lines() {
        let mut l = Line::default();
        for line in [
            "cpu,cpu=cpu0,host=server01 usage_idle=95.2,usage_user=3i,n=7u 1700000000000000000",
            "m v=1",
            "温度,地点=東京 値=21.5 1",
        ] {
            assert_eq!(plain(line, &mut l), Some(line.len()), "{line}");
            assert_eq!(l, one(line));
        }
        for line in [
            "m v=t",
            "m v=\"x\"",
            "m\\ x v=1",
            "m  v=1",
            "m v=1 ",
            "m,a=1,a=2 v=1",
        ] {
            assert_eq!(plain(line, &mut l), None, "{line}");
        }
    }

    proptest! {
        #[test]
        fn written_lines_parse_back_to_the_same_points(
            measurement in text().prop_filter("a leading # makes a comment", |m| !m.starts_with('#')),
            tags in proptest::collection::btree_map(text(), text(), 0..4),
            fields in proptest::collection::btree_map(text(), proptest::num::f64::NORMAL | proptest::num::f64::ZERO, 1..4),
            timestamp in proptest::option::of(any::<i64>()),
        ) {
            let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let field_refs: Vec<(&str, f64)> = fields.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let mut line = String::new();
            write_line(&mut line, &measurement, &tag_refs, &field_refs, timestamp);
            let parsed = parse_line(&line, Precision::Nanoseconds)
                .map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
            prop_assert_eq!(parsed.measurement.as_ref(), measurement.as_str());
            let got_tags: Vec<(String, String)> = parsed.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let want_tags: Vec<(String, String)> = tags.into_iter().collect();
            prop_assert_eq!(got_tags, want_tags);
            let got_fields: Vec<(String, f64)> = parsed.fields.iter().map(|(k, v)| (k.to_string(), v.as_f64().unwrap())).collect();
            let want_fields: Vec<(String, f64)> = fields.into_iter().collect();
            prop_assert_eq!(got_fields, want_fields);
            prop_assert_eq!(parsed.timestamp, timestamp);
        }
    }
}

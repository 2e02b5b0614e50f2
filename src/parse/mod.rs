//! Input formats turned into validated model values. Pure functions, shared by every ingest
//! path and tested natively; the HTTP layer only maps their errors to status codes.

pub mod chart_data;
pub mod line_protocol;
pub mod lookahead;
pub mod number;
pub mod points_json;
pub mod separators;
pub mod timestamp;

/// The media type of a `Content-Type` value, lowercased, without parameters:
/// `Application/JSON; charset=utf-8` → `application/json`.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

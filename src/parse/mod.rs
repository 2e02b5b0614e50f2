//! Input formats turned into validated model values. Pure functions, shared by every ingest
//! path and tested natively; the HTTP layer only maps their errors to status codes.

pub mod chart_data;
pub mod line_protocol;
pub mod points_json;
pub mod timestamp;

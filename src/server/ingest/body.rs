//! Reading request bodies within limits, gzip included.
//!
//! Both sides of compression are bounded by `--max-body-bytes`: the bytes received, and the
//! bytes a gzip body inflates to. Inflation stops one byte past the limit, so a small gzip bomb
//! costs at most the limit in memory and is refused with 413.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use std::io::Read;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("request body inflates to more than the {0}-byte limit")]
    InflatesTooLarge(usize),
    #[error("unsupported Content-Encoding {0:?}; send identity or gzip")]
    UnsupportedEncoding(String),
    #[error("body is not valid gzip: {0}")]
    BadGzip(String),
    #[error("could not read the request body: {0}")]
    Read(String),
}

/// Reads at most `limit` bytes, telling "too large" apart from a broken upload.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            BodyError::TooLarge(limit)
        } else {
            BodyError::Read(e.to_string())
        }
    })
}

/// Reads the body and undoes `Content-Encoding: gzip`, both within `limit`.
pub async fn read_decoded(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| {
        v.to_str()
            .unwrap_or("(not text)")
            .trim()
            .to_ascii_lowercase()
    });
    let raw = read_limited(body, limit).await?;
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => gunzip_limited(&raw, limit),
        Some(other) => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

pub fn gunzip_limited(raw: &[u8], limit: usize) -> Result<Bytes, BodyError> {
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(raw);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(BodyError::InflatesTooLarge(limit));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_round_trips_within_the_limit() {
        let data = b"m v=1\n".repeat(100);
        assert_eq!(
            gunzip_limited(&gzip(&data), 1000).unwrap().as_ref(),
            &data[..]
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it() {
        // 100 MB of zeros compress to ~100 KB; the limit stops inflation at 1 MiB + 1 byte.
        let bomb = gzip(&vec![0u8; 100 * 1024 * 1024]);
        assert!(bomb.len() < 200 * 1024);
        assert_eq!(
            gunzip_limited(&bomb, 1024 * 1024),
            Err(BodyError::InflatesTooLarge(1024 * 1024))
        );
    }

    #[test]
    fn broken_gzip_is_a_clear_error() {
        assert!(matches!(
            gunzip_limited(b"not gzip", 100),
            Err(BodyError::BadGzip(_))
        ));
    }
}

//! Byte ranges of files (RFC 9110, one range per request, as S3 serves
//! them): what a `Range` header asks, and the headers of the answer. Video
//! and audio seek through them; big downloads resume with them.

use crate::ApiError;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What a `Range` header asks of a blob of some size.
#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    /// One satisfiable range of bytes: a 206.
    Range(std::ops::Range<u64>),
    /// A range that starts past the end (or an empty suffix): a 416.
    Unsatisfiable,
    /// Not one byte range we serve (another unit, several ranges, bad
    /// syntax): the whole blob, as RFC 9110 allows.
    Ignored,
}

/// Reads a `Range` header (`bytes=0-499`, `bytes=500-`, `bytes=-500`) against a blob of `size` bytes.
pub fn byte_range(value: &str, size: u64) -> Requested {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Requested::Ignored };
    if spec.contains(',') {
        return Requested::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Requested::Ignored };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => Requested::Unsatisfiable,
            Some(_) if size == 0 => Requested::Unsatisfiable,
            Some(n) => Requested::Range(size.saturating_sub(n)..size),
            None => Requested::Ignored,
        },
        (first, "") => match number(first) {
            Some(start) if start < size => Requested::Range(start..size),
            Some(_) => Requested::Unsatisfiable,
            None => Requested::Ignored,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start > end => Requested::Ignored,
            (Some(start), Some(_)) if start >= size => Requested::Unsatisfiable,
            (Some(start), Some(end)) => Requested::Range(start..end.min(size - 1) + 1),
            _ => Requested::Ignored,
        },
    }
}

impl Requested {
    /// What the `Range` header of `headers` asks of `size` bytes; `None` without one.
    pub fn of(headers: &HeaderMap, size: u64) -> Option<Requested> {
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(|v| byte_range(v, size))
    }
}

/// The `Content-Range` of a 206 that holds `range` of `size` bytes.
pub fn content_range(range: &std::ops::Range<u64>, size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start, range.end - 1)).expect("digits")
}

/// The 416 of a range outside `size` bytes: the JSON error, and the size in
/// `Content-Range` (`bytes */size`), so that a client can ask again within it.
pub fn range_not_satisfiable(size: u64) -> Response {
    let mut refused = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        format!("the range lies outside the {size} bytes of this file"),
    )
    .into_response();
    let whole = HeaderValue::from_str(&format!("bytes */{size}")).expect("digits");
    refused.headers_mut().insert(header::CONTENT_RANGE, whole);
    refused.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_read_like_rfc_9110() {
        use Requested::*;
        assert_eq!(byte_range("bytes=0-499", 1000), Range(0..500));
        assert_eq!(byte_range("bytes=500-", 1000), Range(500..1000));
        assert_eq!(byte_range("bytes=-200", 1000), Range(800..1000));
        assert_eq!(byte_range("bytes=-5000", 1000), Range(0..1000), "a suffix longer than the file is all of it");
        assert_eq!(byte_range("bytes=900-5000", 1000), Range(900..1000), "an end past the file is its end");
        assert_eq!(byte_range("bytes=999-999", 1000), Range(999..1000));
        assert_eq!(byte_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(byte_range("bytes=1000-1200", 1000), Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(byte_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(byte_range("bytes=-10", 0), Unsatisfiable);
        for ignored in ["bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=a-b", "bytes=-", "bytes=1", "bytes=+1-2"] {
            assert_eq!(byte_range(ignored, 1000), Ignored, "{ignored}");
        }
    }
}

//! The local server's stand-in for S3's presigned URLs: `GET` and `PUT` on
//! `/_blobs/{key}` with a signature and an expiry: a download with a forced
//! attachment name, or one part of a multipart upload, of exactly the size
//! its URL names, taken only while the upload is neither completed nor aborted.
//! Downloads take a single byte range, as S3's do (resumable downloads of big
//! ZIPs, video seeking), and are read in large chunks by a thread of their own.

use super::ApiError;
use crate::adapters::embedded::{BlobGrant, BlobUrlError, DirectoryBlobStore, PartError};
use crate::media::attachment_disposition;
use crate::store::{BlobStore, MultipartUpload, StoreError};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

/// The blob routes over one blob directory.
pub fn router(store: DirectoryBlobStore) -> Router {
    Router::new()
        .route("/_blobs/{*key}", get(download).put(upload_part))
        .layer(DefaultBodyLimit::disable())
        .with_state(BlobState { store })
}

#[derive(Clone)]
struct BlobState {
    store: DirectoryBlobStore,
}

#[derive(Deserialize)]
struct Signed {
    op: String,
    exp: i64,
    name: Option<String>,
    upload: Option<String>,
    part: Option<u32>,
    size: Option<u64>,
    sig: String,
}

fn refused(e: BlobUrlError) -> ApiError {
    let code = match e {
        BlobUrlError::BadSignature => "invalid_signature",
        BlobUrlError::Expired => "url_expired",
    };
    ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
}

fn bad_query() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "this is not a signed blob URL")
}

async fn download(
    State(s): State<BlobState>,
    Path(key): Path<String>,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = q else { return Err(bad_query()) };
    let (Some(name), "get") = (q.name, q.op.as_str()) else { return Err(bad_query()) };
    let grant = BlobGrant::Get { download_name: name };
    s.store.signer().verify(&key, &grant, q.exp, &q.sig).map_err(refused)?;
    let BlobGrant::Get { download_name } = grant else { unreachable!() };
    let size = s.store.head(&key).await?.ok_or(ApiError::from(StoreError::NotFound("blob")))?.size;
    let content_type = s.store.content_type(&key).await?;
    let requested = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(|v| byte_range(v, size));
    let (status, range) = match requested {
        None | Some(Requested::Ignored) => (StatusCode::OK, 0..size),
        Some(Requested::Range(range)) => (StatusCode::PARTIAL_CONTENT, range),
        Some(Requested::Unsatisfiable) => {
            let mut refused = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range lies outside the {size} bytes of this file"),
            )
            .into_response();
            let whole = header::HeaderValue::from_str(&format!("bytes */{size}")).expect("digits");
            refused.headers_mut().insert(header::CONTENT_RANGE, whole);
            refused.headers_mut().insert(header::ACCEPT_RANGES, header::HeaderValue::from_static("bytes"));
            return Ok(refused);
        }
    };
    let body = Body::from_stream(s.store.stream_range(&key, range.clone()).await?);
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, (range.end - range.start).to_string()),
            (header::CONTENT_DISPOSITION, attachment_disposition(&download_name)),
            (header::CACHE_CONTROL, "private, max-age=0".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::ACCEPT_RANGES, "bytes".to_string()),
        ],
        body,
    )
        .into_response();
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {}-{}/{size}", range.start, range.end - 1);
        response.headers_mut().insert(header::CONTENT_RANGE, value.parse().expect("digits"));
    }
    Ok(response)
}

/// What a `Range` header asks of a blob of some size.
#[derive(Debug, PartialEq, Eq)]
enum Requested {
    /// One satisfiable range of bytes: a 206.
    Range(std::ops::Range<u64>),
    /// A range that starts past the end (or an empty suffix): a 416.
    Unsatisfiable,
    /// Not one byte range we serve (another unit, several ranges, bad
    /// syntax): the whole blob, as RFC 9110 allows.
    Ignored,
}

/// Reads a `Range` header (`bytes=0-499`, `bytes=500-`, `bytes=-500`) against a blob of `size` bytes.
fn byte_range(value: &str, size: u64) -> Requested {
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

async fn upload_part(
    State(s): State<BlobState>,
    Path(key): Path<String>,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let Ok(Query(q)) = q else { return Err(bad_query()) };
    let (Some(upload_id), Some(number), Some(size), "part") = (q.upload, q.part, q.size, q.op.as_str()) else {
        return Err(bad_query());
    };
    let grant = BlobGrant::Part { upload_id: upload_id.clone(), number, size };
    s.store.signer().verify(&key, &grant, q.exp, &q.sig).map_err(refused)?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "part_too_large",
            format!("this part must hold exactly {size} bytes"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > size) {
        return Err(too_large());
    }
    let upload = MultipartUpload { key, upload_id };
    match s.store.put_part(&upload, number, size, body.into_data_stream()).await {
        Ok(_) => Ok(StatusCode::OK),
        Err(PartError::TooLarge) => Err(too_large()),
        Err(e @ PartError::TooSmall { .. }) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "part_too_small", e.to_string()))
        }
        Err(PartError::Store(StoreError::NotFound(_))) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_upload",
            "this upload is completed or aborted: its parts can no longer change",
        )),
        Err(PartError::Store(e)) => Err(e.into()),
    }
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

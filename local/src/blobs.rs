//! The local server's stand-in for S3's presigned URLs: `GET` and `PUT` on
//! `/_blobs/{key}` with a signature and an expiry: a download with a forced
//! attachment name, or one part of a multipart upload, of exactly the size
//! its URL names, taken only while the upload is neither completed nor aborted.
//! Downloads take a single byte range, as S3's do (resumable downloads of big
//! ZIPs, video seeking), and are read in large chunks by a thread of their own.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use publinks_domain::store::attachment_disposition;
use publinks_domain::store::{BlobStore, MultipartUpload, StoreError};
use publinks_embedded::{BlobGrant, BlobUrlError, DirectoryBlobStore, PartError};
use publinks_http::ApiError;
use publinks_http::ranges::{Requested, content_range, range_not_satisfiable};
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
    let (status, range) = match Requested::of(&headers, size) {
        None | Some(Requested::Ignored) => (StatusCode::OK, 0..size),
        Some(Requested::Range(range)) => (StatusCode::PARTIAL_CONTENT, range),
        Some(Requested::Unsatisfiable) => return Ok(range_not_satisfiable(size)),
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
        response.headers_mut().insert(header::CONTENT_RANGE, content_range(&range, size));
    }
    Ok(response)
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

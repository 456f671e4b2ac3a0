//! The local server's stand-in for S3's presigned URLs: `GET` and `PUT` on
//! `/_blobs/{key}` with a signature, an expiry and, like S3, a signed content
//! type on uploads and a forced attachment name on downloads.

use super::ApiError;
use crate::adapters::embedded::{BlobGrant, BlobUrlError, DirectoryBlobStore};
use crate::media::attachment_disposition;
use crate::store::{BlobStore, StoreError};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

/// The blob routes over one blob directory; uploads are capped at `max_upload_bytes`.
pub fn router(store: DirectoryBlobStore, max_upload_bytes: u64) -> Router {
    Router::new()
        .route("/_blobs/{*key}", get(download).put(upload))
        .layer(DefaultBodyLimit::disable())
        .with_state(BlobState { store, max_upload_bytes })
}

#[derive(Clone)]
struct BlobState {
    store: DirectoryBlobStore,
    max_upload_bytes: u64,
}

#[derive(Deserialize)]
struct Signed {
    op: String,
    exp: i64,
    name: Option<String>,
    ct: Option<String>,
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
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = q else { return Err(bad_query()) };
    let (Some(name), "get") = (q.name, q.op.as_str()) else { return Err(bad_query()) };
    let grant = BlobGrant::Get { download_name: name };
    s.store.signer().verify(&key, &grant, q.exp, &q.sig).map_err(refused)?;
    let BlobGrant::Get { download_name } = grant else { unreachable!() };
    let size = s.store.head(&key).await?.ok_or(ApiError::from(StoreError::NotFound("blob")))?.size;
    let content_type = s.store.content_type(&key).await?;
    let reader = s.store.open(&key).await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, attachment_disposition(&download_name)),
            (header::CACHE_CONTROL, "private, max-age=0".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response())
}

async fn upload(
    State(s): State<BlobState>,
    Path(key): Path<String>,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let Ok(Query(q)) = q else { return Err(bad_query()) };
    let (Some(ct), "put") = (q.ct, q.op.as_str()) else { return Err(bad_query()) };
    let grant = BlobGrant::Put { content_type: ct.clone() };
    s.store.signer().verify(&key, &grant, q.exp, &q.sig).map_err(refused)?;
    let sent = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !sent.eq_ignore_ascii_case(&ct) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "content_type_mismatch",
            format!("this URL accepts Content-Type: {ct} only"),
        ));
    }
    match s.store.put_stream(&key, &ct, body.into_data_stream(), s.max_upload_bytes).await {
        Ok(_) => Ok(StatusCode::OK),
        Err(StoreError::Backend(m)) if m == "too large" => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("uploads are limited to {} bytes", s.max_upload_bytes),
        )),
        Err(e) => Err(e.into()),
    }
}

//! What every route shares: body extraction with structured errors, the body cap, JSON
//! 404/405, the panic guard, and the caching headers.

use crate::Error;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request body: JSON (`application/json`) or, where the route allows it, a form. Every
/// failure is a structured error (415 for the wrong type, 413 over the cap, 400 when
/// malformed), never axum's plain-text rejection.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let kind = content_kind(req.headers());
        let bytes = read_body(req, state).await?;
        match kind {
            ContentKind::Json => parse_json(&bytes).map(Body),
            ContentKind::Form => serde_urlencoded::from_bytes(&bytes)
                .map(Body)
                .map_err(Error::MalformedForm),
            ContentKind::None if bytes.is_empty() => parse_json(b"{}").map(Body),
            ContentKind::None | ContentKind::Other => Err(Error::UnsupportedMediaType),
        }
    }
}

enum ContentKind {
    Json,
    Form,
    None,
    Other,
}

fn content_kind(headers: &HeaderMap) -> ContentKind {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return ContentKind::None;
    };
    let mime = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => ContentKind::Json,
        "application/x-www-form-urlencoded" => ContentKind::Form,
        _ => ContentKind::Other,
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            }
        } else {
            Error::UnreadableBody
        }
    })
}

/// Parses JSON with a structured error (serde_json bounds nesting depth, so deep documents
/// are refused, not overflowed).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(Error::MalformedJson)
}

/// Adds what every router needs: JSON 404/405, the body cap, and a panic guard that answers
/// with a JSON 500 instead of dropping the connection (Lambda would turn that into a 502).
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| Error::Panicked.into_response(),
        ))
}

/// `Cache-Control: no-store`, for anything carrying a token.
pub fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// A short public cache (the public key URL, the provider script).
pub fn public_cache() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    )]
}

/// True when the client asked for JSON rather than the raw token.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

//! HTTP glue shared by every function: the JSON error shape, body extraction with structured
//! errors, CORS from an allow-list, caching headers, and the verified identity of the caller.

use crate::Error;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The claims of the caller, already verified by the host: on Lambda, API Gateway's JWT
/// authorizer; locally, the server's bearer check. Handlers never look anywhere else for
/// identity, and nothing a client sends can place this in the request.
#[derive(Debug, Clone, Default)]
pub struct VerifiedClaims(pub Map<String, Value>);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %ErrorChain(&self), "request failed");
        } else {
            tracing::debug!(code = self.code(), "request refused");
        }
        let mut response = (
            status,
            axum::Json(json!({"error": {"code": self.code(), "message": self.public_message()}})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Displays an error with its sources, for server-side logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

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
            ContentKind::Form => serde_urlencoded::from_bytes(&bytes).map(Body).map_err(|e| {
                Error::bad_request("malformed_form", format!("the form body is invalid: {e}"))
            }),
            ContentKind::None if bytes.is_empty() => parse_json(b"{}").map(Body),
            ContentKind::None | ContentKind::Other => Err(Error::bad_request(
                "unsupported_media_type",
                "send the body as application/json",
            )),
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
            Error::bad_request("unreadable_body", "the request body could not be read")
        }
    })
}

/// Parses JSON with a structured error (serde_json bounds nesting depth, so deep documents
/// are refused, not overflowed).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request("malformed_json", format!("the JSON body is invalid: {e}")))
}

/// Adds what every router needs: JSON 404/405, the body cap, and a panic guard that answers
/// with a JSON 500 instead of dropping the connection (Lambda would turn that into a 502).
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| Error::Crypto("unexpected failure").into_response(),
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

/// Browser origins allowed to call a route, and whether they may send cookies.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Arc<[String]>,
    credentials: bool,
}

impl Cors {
    /// From an allow-list (already normalised by [`crate::Config`]); `credentials` only when
    /// the page's identity may travel in cookies: a bearer-only deployment never lets a
    /// foreign-looking request carry the user's cookies.
    pub fn new(origins: &[String], credentials: bool) -> Self {
        Cors {
            origins: origins.into(),
            credentials,
        }
    }

    /// The configured allow-list, with credentials unless the identity mode is bearer-only.
    pub fn from_config(config: &crate::Config) -> Self {
        Self::new(
            &config.allowed_origins,
            config.identity_mode != crate::config::IdentityMode::Bearer,
        )
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

/// CORS middleware: requests without `Origin` (servers, same-origin GETs) pass; an allowed
/// origin gets `Access-Control-Allow-Origin` (with credentials when allowed); any other origin is refused with
/// 403 *before* the handler runs, so a foreign page can neither read nor trigger a mint.
pub async fn cors(State(cors): State<Cors>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    if !allowed {
        return Error::OriginNotAllowed.into_response();
    }
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if cors.credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// The caller's verified claims, or 401. Placed before the body extractor so that an
/// unauthenticated caller learns nothing about body validation.
pub struct Identity(pub Map<String, Value>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Identity {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Error> {
        parts
            .extensions
            .get::<VerifiedClaims>()
            .map(|claims| Identity(claims.0.clone()))
            .ok_or(Error::Unauthenticated(std::borrow::Cow::Borrowed(
                "sign in first: no verified identity came with the request",
            )))
    }
}

/// True when the client asked for JSON rather than the raw token.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

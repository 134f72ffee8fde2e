//! provider-script: `GET /provider.js`, rendered once from configuration.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chat_auth_host::http::public_cache;
use chat_auth_shared::provider::ProviderScript;
use std::sync::Arc;

/// The `/provider.js` route.
pub fn router(script: Arc<ProviderScript>) -> Router {
    Router::new()
        .route("/provider.js", get(serve))
        .with_state(script)
}

async fn serve(State(script): State<Arc<ProviderScript>>, headers: HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&script.etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == script.etag));
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            public_cache(),
            [(header::ETAG, etag)],
        )
            .into_response();
    }
    (
        public_cache(),
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (header::ETAG, etag),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        script.body.clone(),
    )
        .into_response()
}

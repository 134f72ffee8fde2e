//! `GET /openapi.json`: the local server's contract (every route, every status it can answer,
//! the error schema), kept as `openapi.json` at the repository root so that reviews see it and
//! the schemathesis test (`tests/tests/openapi.rs`) checks the running server against it.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

const DOCUMENT: &str = include_str!("../../openapi.json");

/// The route serving the document.
pub fn router() -> Router {
    Router::new().route(
        "/openapi.json",
        get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                DOCUMENT,
            )
                .into_response()
        }),
    )
}

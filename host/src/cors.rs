//! CORS from an allow-list: tower-http's `CorsLayer` writes the headers and answers
//! preflights; a small guard in front of it refuses any other origin with a JSON 403 *before*
//! the handler runs, so a foreign page can neither read nor trigger a mint (CorsLayer alone
//! only withholds the headers, and the request would still reach the handler).

use crate::Error;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Browser origins allowed to call a route, and whether they may send cookies.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Arc<[HeaderValue]>,
    credentials: bool,
}

impl Cors {
    /// From an allow-list (already normalised by [`chat_auth_shared::config::BrowserConfig`]); `credentials` only
    /// when the page's identity may travel in cookies: a bearer-only deployment never lets a
    /// foreign-looking request carry the user's cookies. An origin that is not a valid header
    /// value can never be sent, so it is dropped.
    pub fn new(origins: &[String], credentials: bool) -> Self {
        Cors {
            origins: origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect(),
            credentials,
        }
    }

    /// The configured allow-list, with credentials unless the identity mode is bearer-only.
    pub fn from_config(config: &chat_auth_shared::config::BrowserConfig) -> Self {
        Self::new(
            &config.allowed_origins,
            config.identity_mode != chat_auth_shared::config::IdentityMode::Bearer,
        )
    }

    /// Wraps `routes`: the guard outermost, then tower-http's layer.
    pub fn apply(&self, routes: Router) -> Router {
        let layer = CorsLayer::new()
            .allow_origin(AllowOrigin::list(self.origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .allow_credentials(self.credentials)
            .max_age(Duration::from_secs(600));
        routes
            .layer(layer)
            .layer(from_fn_with_state(self.clone(), guard))
    }
}

/// Requests without `Origin` (servers, same-origin GETs) pass; an origin off the list is
/// refused with 403.
async fn guard(State(cors): State<Cors>, req: Request, next: Next) -> Response {
    match req.headers().get(header::ORIGIN) {
        Some(origin) if !cors.origins.contains(origin) => Error::OriginNotAllowed.into_response(),
        _ => next.run(req).await,
    }
}

//! public-keys: the Public key URL in Omnichannel's formats, and a JWKS.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chat_auth_host::Error;
use chat_auth_host::cache::PublicKeys;
use chat_auth_host::http::public_cache;
use chat_auth_shared::config::KeyCacheConfig;
use chat_auth_shared::store::PublicKeySource;
use serde::Deserialize;
use std::sync::Arc;

/// The published set, cached and pre-rendered.
pub struct PublicKeysState<P> {
    /// The published set (never the private ring).
    pub keys: PublicKeys<P>,
}

impl<P: PublicKeySource> PublicKeysState<P> {
    /// From the key cache's settings and a public key store.
    pub fn new(keys: &KeyCacheConfig, store: P) -> Self {
        PublicKeysState {
            keys: PublicKeys::new(store, keys.ttl, keys.stale_for),
        }
    }
}

/// `?format=pem` selects the single-PEM form.
#[derive(Debug, Deserialize)]
pub struct FormatQuery {
    /// `pem` or `multi` (default).
    pub format: Option<String>,
}

/// `/public-key` and `/.well-known/jwks.json`; open to every origin (public material).
pub fn router<P: PublicKeySource>(state: Arc<PublicKeysState<P>>) -> Router {
    Router::new()
        .route("/public-key", get(public_key::<P>))
        .route("/.well-known/jwks.json", get(jwks::<P>))
        .with_state(state)
}

async fn public_key<P: PublicKeySource>(
    State(state): State<Arc<PublicKeysState<P>>>,
    query: Result<Query<FormatQuery>, axum::extract::rejection::QueryRejection>,
) -> chat_auth_host::Result<Response> {
    let format = query.map_err(|_| Error::MalformedQuery)?.0.format;
    let docs = state.keys.get().await?;
    match format.as_deref() {
        None | Some("multi") | Some("json") => {
            Ok(document(docs.multi_key.clone(), "application/json"))
        }
        Some("pem") => Ok(document(docs.pem.clone(), "application/x-pem-file")),
        Some(_) => Err(Error::UnknownParameterValue {
            name: "format",
            allowed: "pem or multi",
        }),
    }
}

async fn jwks<P: PublicKeySource>(
    State(state): State<Arc<PublicKeysState<P>>>,
) -> chat_auth_host::Result<Response> {
    let docs = state.keys.get().await?;
    Ok(document(docs.jwks.clone(), "application/jwk-set+json"))
}

fn document(body: axum::body::Bytes, content_type: &'static str) -> Response {
    (
        public_cache(),
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body,
    )
        .into_response()
}

//! validate-token: `POST /validate`, every reason Omnichannel would refuse a token.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chat_auth_host::cache::PublicKeys;
use chat_auth_host::http::{Body, no_store};
use chat_auth_shared::TokenPolicy;
use chat_auth_shared::config::KeyCacheConfig;
use chat_auth_shared::jwt::Validator;
use chat_auth_shared::store::PublicKeySource;
use serde::Deserialize;
use std::sync::Arc;

/// What the handler shares: the published keys (cached) and the rules.
pub struct ValidateState<P> {
    /// The published set (never the private ring).
    pub keys: PublicKeys<P>,
    /// Omnichannel's rules plus this service's issuer.
    pub validator: Validator,
}

impl<P: PublicKeySource> ValidateState<P> {
    /// From the token rules (the issuer to expect), the key cache and a public key store.
    pub fn new(tokens: &TokenPolicy, keys: &KeyCacheConfig, store: P) -> Self {
        ValidateState {
            keys: PublicKeys::new(store, keys.ttl, keys.stale_for),
            validator: chat_auth_shared::config::validator(tokens),
        }
    }
}

/// `{"token": "..."}` (JSON) or `token=...` (form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The compact JWT.
    pub token: String,
}

/// The `/validate` route.
pub fn router<P: PublicKeySource>(state: Arc<ValidateState<P>>) -> Router {
    Router::new()
        .route("/validate", post(validate::<P>))
        .with_state(state)
}

async fn validate<P: PublicKeySource>(
    State(state): State<Arc<ValidateState<P>>>,
    Body(request): Body<ValidateRequest>,
) -> chat_auth_host::Result<Response> {
    let docs = state.keys.get().await?;
    let report =
        state
            .validator
            .validate(&request.token, &docs.keys, chat_auth_shared::time::now());
    if !report.is_active() {
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code.as_str()).collect();
        tracing::info!(?codes, "token refused");
        for code in &codes {
            chat_auth_host::telemetry::metrics(
                &[("ValidationRefusals", 1.0, "Count")],
                &[("ProblemCode", code)],
            );
        }
    }
    Ok((no_store(), Json(report.to_json())).into_response())
}

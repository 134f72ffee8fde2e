//! mint-token: `GET`/`POST /token`, an RS256 JWT for the caller the gateway authenticated, and
//! `POST /issue` (IAM-authorized in the template) and `POST /issue/client-credentials` (a
//! client-credentials JWT authorizer) for trusted backends.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_auth_host::cache::SigningKeys;
use chat_auth_host::caller::{Backend, ISSUE_CLIENT_ROUTE, ISSUE_ROUTE};
use chat_auth_host::http::{Body, no_store, wants_json};
use chat_auth_host::{Caller, Cors};
use chat_auth_shared::claims::{MintedToken, RemoteSigner, mint_with};
use chat_auth_shared::config::{BrowserConfig, IdentityConfig, KeyCacheConfig, Section, Vars};
use chat_auth_shared::mapping::IdentityMapping;
use chat_auth_shared::store::RingSource;
use chat_auth_shared::{Config, TokenPolicy};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What mint-token reads of the configuration, and nothing else.
#[derive(Debug, Clone)]
pub struct MintConfig {
    /// Issuer, lifetime, skew.
    pub tokens: TokenPolicy,
    /// Subject, context and `/issue` callers.
    pub identity: IdentityConfig,
    /// The CORS allow-list.
    pub browser: BrowserConfig,
    /// The ring cache.
    pub keys: KeyCacheConfig,
}

impl Section for MintConfig {
    fn read(get: Vars<'_>) -> chat_auth_shared::Result<Self> {
        Ok(MintConfig {
            tokens: TokenPolicy::read(get)?,
            identity: IdentityConfig::read(get)?,
            browser: BrowserConfig::read(get)?,
            keys: KeyCacheConfig::read(get)?,
        })
    }
}

impl From<&Config> for MintConfig {
    fn from(config: &Config) -> Self {
        MintConfig {
            tokens: config.tokens.clone(),
            identity: config.identity.clone(),
            browser: config.browser.clone(),
            keys: config.ring.keys.clone(),
        }
    }
}

/// What the mint handlers share: the cached ring and the issuing rules.
pub struct MintState<R> {
    /// The signing ring (cached).
    pub keys: SigningKeys<R>,
    /// Issuer, lifetime, skew.
    pub policy: TokenPolicy,
    /// Claims → sub and context.
    pub identity: IdentityMapping,
    /// KMS, in custody `kms`: the ring then names keys this process cannot sign with itself.
    pub remote: Option<Arc<dyn RemoteSigner>>,
}

impl<R: RingSource> MintState<R> {
    /// From configuration, a ring store, and in KMS custody the signer for its keys.
    pub fn new(config: &MintConfig, store: R, remote: Option<Arc<dyn RemoteSigner>>) -> Self {
        MintState {
            keys: SigningKeys::new(store, config.keys.ttl, config.keys.signing_stale_for),
            policy: config.tokens.clone(),
            identity: IdentityMapping::from_config(&config.identity),
            remote,
        }
    }

    /// Mints a token for `sub` with `context` (claims already mapped and checked); `backend`
    /// is the caller of `/issue`, whose mints are logged with the subject for audit (a backend
    /// chooses `sub`, so the log is the only record of which backend said who the user was).
    pub async fn mint(
        &self,
        sub: &str,
        context: &chat_auth_shared::CustomContext,
        backend: Option<&Backend>,
    ) -> chat_auth_shared::Result<MintedToken> {
        let ring = self.keys.get().await?;
        let now = chat_auth_shared::time::now();
        let claims = self.policy.claims(sub, context, now)?;
        let minted = mint_with(&ring.signer, &claims, self.remote.as_deref()).await?;
        // The signing key's age is how an alarm sees a stuck rotation.
        chat_auth_host::telemetry::metrics(
            &[
                ("TokensMinted", 1.0, "Count"),
                (
                    "SigningKeyAgeSeconds",
                    (now - ring.signer.times.activates) as f64,
                    "Seconds",
                ),
            ],
            &[],
        );
        let (kid, jti) = (&minted.kid, &claims.jti);
        match backend {
            Some(Backend::Iam(caller)) => {
                tracing::info!(%kid, %jti, caller, sub, "token issued to a backend")
            }
            Some(Backend::Client(client_id)) => {
                tracing::info!(%kid, %jti, client_id, sub, "token issued to a backend")
            }
            Some(Backend::IssueKey) => {
                tracing::info!(%kid, %jti, caller = "issue key", sub, "token issued to a backend")
            }
            None => tracing::info!(%kid, %jti, "token minted"),
        }
        Ok(minted)
    }
}

/// `POST /token` body: optional client context (allow-listed keys only).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Extra context variables.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// `POST /issue` body: a trusted backend names the subject and context itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The subject.
    pub sub: String,
    /// Context variables (every key allowed; the limits still apply).
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// The whole mint-token app as Lambda runs it: the routes, CORS from `config`, the common
/// layers, and the caller from API Gateway's authorizer context.
pub fn lambda_app<R: RingSource>(
    config: &MintConfig,
    store: R,
    remote: Option<Arc<dyn RemoteSigner>>,
) -> Router {
    let state = Arc::new(MintState::new(config, store, remote));
    let app = chat_auth_host::http::finish(Cors::from_config(&config.browser).apply(routes(state)));
    chat_auth_host::lambda::authenticate(app, &config.identity)
}

/// The `/token` and `/issue` routes, without CORS or an authenticate layer: each host puts
/// its own authenticate layer *inside* CORS (so that a refused identity's 401 still carries
/// the CORS headers a page needs to read it) and [`chat_auth_host::http::finish`] once around
/// the whole app (a router carries one fallback).
pub fn routes<R: RingSource>(state: Arc<MintState<R>>) -> Router {
    Router::new()
        // OPTIONS is routed so that CORS preflights reach the CORS layer (which answers them).
        .route(
            "/token",
            get(get_token::<R>)
                .post(post_token::<R>)
                .options(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route(ISSUE_ROUTE, post(issue_for_backend::<R>))
        .route(ISSUE_CLIENT_ROUTE, post(issue_for_backend::<R>))
        .with_state(state)
}

async fn get_token<R: RingSource>(
    State(state): State<Arc<MintState<R>>>,
    headers: HeaderMap,
    caller: Caller,
) -> chat_auth_host::Result<Response> {
    issue(&state, &headers, caller.user()?, None).await
}

/// The body is taken as a `Result` so that the caller is checked first: an anonymous caller
/// learns nothing about body validation.
async fn post_token<R: RingSource>(
    State(state): State<Arc<MintState<R>>>,
    headers: HeaderMap,
    caller: Caller,
    body: chat_auth_host::Result<Body<TokenRequest>>,
) -> chat_auth_host::Result<Response> {
    let claims = caller.user()?;
    let Body(request) = body?;
    issue(&state, &headers, claims, request.context.as_ref()).await
}

async fn issue<R: RingSource>(
    state: &MintState<R>,
    headers: &HeaderMap,
    claims: &Map<String, Value>,
    client_context: Option<&Map<String, Value>>,
) -> chat_auth_host::Result<Response> {
    let sub = state.identity.subject(claims)?;
    let context = state.identity.context(claims, client_context)?;
    let minted = state.mint(&sub, &context, None).await?;
    Ok(token_response(headers, minted))
}

async fn issue_for_backend<R: RingSource>(
    State(state): State<Arc<MintState<R>>>,
    headers: HeaderMap,
    caller: Caller,
    body: chat_auth_host::Result<Body<IssueRequest>>,
) -> chat_auth_host::Result<Response> {
    let backend = caller.backend()?;
    let Body(request) = body?;
    let mut context = chat_auth_shared::CustomContext::new();
    for (key, value) in request.context.iter().flatten() {
        context.insert_json(key, value)?;
    }
    let minted = state.mint(&request.sub, &context, Some(backend)).await?;
    Ok(token_response(&headers, minted))
}

/// The raw JWT (`application/jwt`, what Microsoft's sample client function reads), or JSON
/// when asked; never cacheable.
pub fn token_response(headers: &HeaderMap, minted: MintedToken) -> Response {
    if wants_json(headers) {
        (no_store(), Json(minted)).into_response()
    } else {
        (
            no_store(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwt"),
            )],
            minted.token,
        )
            .into_response()
    }
}

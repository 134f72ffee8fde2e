//! mint-token: `GET`/`POST /token`, an RS256 JWT for the caller the gateway authenticated, and
//! `POST /issue` for trusted backends (IAM-authorized in the template).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_auth::cache::SigningKeys;
use chat_auth::claims::{MintedToken, mint};
use chat_auth::http::{Body, Cors, Identity, VerifiedClaims, no_store, wants_json};
use chat_auth::identity::IdentityMapping;
use chat_auth::store::RingSource;
use chat_auth::{Config, TokenPolicy};
use lambda_http::request::RequestContext;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What the mint handlers share: the cached ring and the issuing rules.
pub struct MintState<R> {
    /// The signing ring (cached).
    pub keys: SigningKeys<R>,
    /// Issuer, lifetime, skew.
    pub policy: TokenPolicy,
    /// Claims → sub and context.
    pub identity: IdentityMapping,
}

impl<R: RingSource> MintState<R> {
    /// From configuration and a ring store.
    pub fn new(config: &Config, store: R) -> Self {
        MintState {
            keys: SigningKeys::new(store, config.key_cache_ttl, config.signing_stale_for),
            policy: config.policy.clone(),
            identity: IdentityMapping::from_config(config),
        }
    }

    /// Mints a token for `sub` with `context` (claims already mapped and checked); `backend`
    /// names the IAM caller of `/issue`, whose mints are logged with the subject for audit.
    pub async fn mint(
        &self,
        sub: &str,
        context: &chat_auth::CustomContext,
        backend: Option<&str>,
    ) -> chat_auth::Result<MintedToken> {
        let ring = self.keys.get().await?;
        let now = chat_auth::time::now();
        let claims = self.policy.claims(sub, context, now)?;
        let minted = mint(&ring.signer, &claims)?;
        // The signing key's age is how an alarm sees a stuck rotation.
        chat_auth::telemetry::metrics(
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
        match backend {
            Some(caller) => {
                tracing::info!(kid = %minted.kid, jti = %claims.jti, caller, sub, "token issued to a backend")
            }
            None => tracing::info!(kid = %minted.kid, jti = %claims.jti, "token minted"),
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

/// A backend the gateway authenticated with IAM (SigV4). Only hosts insert it.
#[derive(Debug, Clone)]
pub struct TrustedCaller(pub String);

/// The whole mint-token app as Lambda runs it: the routes, CORS from `config`, the common
/// layers, and identity from API Gateway's request context.
pub fn lambda_app<R: RingSource>(config: &Config, store: R) -> Router {
    let state = Arc::new(MintState::new(config, store));
    chat_auth::http::finish(router(state, Cors::from_config(config))).layer(
        axum::middleware::from_fn_with_state(Arc::new(config.clone()), lambda_identity),
    )
}

/// The `/token` and `/issue` routes behind the CORS allow-list. Hosts add
/// [`chat_auth::http::finish`] once around the whole app (a router carries one fallback).
pub fn router<R: RingSource>(state: Arc<MintState<R>>, cors: Cors) -> Router {
    with_cors(routes(state), cors)
}

/// The routes without CORS, for hosts that put their own identity layer *inside* CORS (so that
/// a refused identity's 401 still carries the CORS headers a page needs to read it).
pub fn routes<R: RingSource>(state: Arc<MintState<R>>) -> Router {
    Router::new()
        // OPTIONS is routed so that CORS preflights reach the CORS layer (which answers them).
        .route(
            "/token",
            get(get_token::<R>)
                .post(post_token::<R>)
                .options(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/issue", post(issue_for_backend::<R>))
        .with_state(state)
}

/// Wraps `routes` in the CORS allow-list.
pub fn with_cors(routes: Router, cors: Cors) -> Router {
    routes.layer(axum::middleware::from_fn_with_state(
        cors,
        chat_auth::http::cors,
    ))
}

async fn get_token<R: RingSource>(
    State(state): State<Arc<MintState<R>>>,
    headers: HeaderMap,
    Identity(claims): Identity,
) -> chat_auth::Result<Response> {
    issue(&state, &headers, &claims, None).await
}

async fn post_token<R: RingSource>(
    State(state): State<Arc<MintState<R>>>,
    headers: HeaderMap,
    Identity(claims): Identity,
    Body(request): Body<TokenRequest>,
) -> chat_auth::Result<Response> {
    issue(&state, &headers, &claims, request.context.as_ref()).await
}

async fn issue<R: RingSource>(
    state: &MintState<R>,
    headers: &HeaderMap,
    claims: &Map<String, Value>,
    client_context: Option<&Map<String, Value>>,
) -> chat_auth::Result<Response> {
    let sub = state.identity.subject(claims)?;
    let context = state.identity.context(claims, client_context)?;
    let minted = state.mint(&sub, &context, None).await?;
    Ok(token_response(headers, minted))
}

async fn issue_for_backend<R: RingSource>(
    State(state): State<Arc<MintState<R>>>,
    headers: HeaderMap,
    caller: Option<axum::Extension<TrustedCaller>>,
    Body(request): Body<IssueRequest>,
) -> chat_auth::Result<Response> {
    let Some(axum::Extension(caller)) = caller else {
        return Err(chat_auth::Error::Unauthenticated(
            "/issue accepts only trusted backends (on AWS: IAM-signed requests from CHAT_AUTH_ISSUE_CALLERS; locally: the X-Chat-Auth-Issue-Key header)".into(),
        ));
    };
    let mut context = chat_auth::CustomContext::new();
    for (key, value) in request.context.iter().flatten() {
        context.insert_json(key, value)?;
    }
    let minted = state.mint(&request.sub, &context, Some(&caller.0)).await?;
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

/// On Lambda: turns the HTTP API JWT authorizer's claims (already verified by API Gateway)
/// into [`VerifiedClaims`], and an IAM authorizer's caller into [`TrustedCaller`] if `config`
/// lists it for `/issue` (any other IAM caller gets 403). Without an authorizer context the
/// request stays anonymous.
pub async fn lambda_identity(
    State(config): State<Arc<Config>>,
    mut req: Request,
    next: Next,
) -> Response {
    let authorizer = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.clone(),
        _ => None,
    };
    let caller = authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.user_arn.clone().or_else(|| iam.caller_id.clone()));
    if let Some(caller) = caller {
        if !config.issue_caller_allowed(&caller) {
            tracing::warn!(caller, "IAM caller refused: not in CHAT_AUTH_ISSUE_CALLERS");
            return chat_auth::Error::CallerNotAllowed.into_response();
        }
        req.extensions_mut().insert(TrustedCaller(caller));
    }
    let claims = match authorizer {
        Some(authorizer) => authorizer
            .jwt
            .as_ref()
            .filter(|jwt| !jwt.claims.is_empty())
            .map(|jwt| {
                jwt.claims
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<_, _>>()
            }),
        _ => None,
    };
    if let Some(claims) = claims {
        req.extensions_mut().insert(VerifiedClaims(claims));
    }
    next.run(req).await
}

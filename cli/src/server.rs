//! The local server: every function's routes on one port over the file-backed key ring.

use crate::local::{IdentitySource, LocalConfig, is_loopback_host};
use crate::upstream::BearerAuth;
use crate::{CliError, dev};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use chat_auth_host::caller::{Backend, is_issue_route};
use chat_auth_host::{Caller, Cors, Error, FileStore};
use chat_auth_shared::mapping::IssueClients;
use chat_auth_shared::provider::ProviderScript;
use chat_auth_shared::store::ensure_ring;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Builds the whole app: opens (or creates) the key ring, then wires every route.
pub async fn app(config: &LocalConfig) -> Result<Router, CliError> {
    let shared = &config.shared;
    let store = FileStore::open(&config.data_dir)?;
    let ring = ensure_ring(
        &store,
        &shared.ring.lifecycle(),
        chat_auth_shared::time::now(),
    )
    .await?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        current = %ring.current.kid,
        next = %ring.next.kid,
        "key ring ready"
    );
    let (bearer, clients, dev_idp, issue_key) = match config.identity()? {
        IdentitySource::Upstream {
            issuer,
            audience,
            issue_audience,
            jwks,
        } => {
            let bearer = BearerAuth::upstream(issuer, audience, jwks.clone());
            let clients = issue_audience.as_deref().map(|a| bearer.for_clients(a));
            (bearer, clients, None, None)
        }
        IdentitySource::Development { issue_key, .. } => {
            let idp = Arc::new(dev::DevIdp::new()?);
            let key = Some(issue_key.as_str().into());
            (idp.verifier()?, None, Some(idp), key)
        }
    };
    let auth = Arc::new(LocalAuth {
        bearer,
        clients: clients.map(|verifier| ClientAuth {
            verifier,
            allowed: IssueClients::from_config(&shared.identity),
        }),
        issue_key,
    });
    let mint = Arc::new(mint_token::MintState::new(
        &shared.into(),
        store.clone(),
        None,
    ));
    // The caller is authenticated inside CORS: a refused bearer's 401 must stay readable by
    // the page.
    let token_routes = mint_token::routes(mint).layer(from_fn_with_state(auth, authenticate));
    let mut app = Cors::from_config(&shared.browser)
        .apply(token_routes)
        .merge(validate_token::router(Arc::new(
            validate_token::ValidateState::new(&shared.tokens, &shared.ring.keys, store.clone()),
        )))
        .merge(public_keys::router(Arc::new(
            public_keys::PublicKeysState::new(&shared.ring.keys, store),
        )))
        .merge(provider_script::router(Arc::new(ProviderScript::render(
            &shared.browser,
        ))))
        .merge(crate::openapi::router());
    if let Some(idp) = dev_idp {
        app = app
            .merge(dev::router(idp))
            .layer(from_fn(loopback_host_only));
    }
    Ok(chat_auth_host::socket::limited(
        chat_auth_host::http::finish(app),
        &config.limits,
    ))
}

/// Who vouches for callers locally: the identity provider's tokens for customers; for
/// `/issue`, its client-credentials tokens (upstream mode, with an issue audience) or, in
/// development mode, the per-run issue key.
struct LocalAuth {
    bearer: BearerAuth,
    clients: Option<ClientAuth>,
    issue_key: Option<Arc<str>>,
}

/// Backends' client-credentials tokens: verified like API Gateway's second JWT authorizer
/// does, then admitted by client id.
struct ClientAuth {
    verifier: BearerAuth,
    allowed: IssueClients,
}

/// The local server's authenticate layer, playing each API Gateway authorizer's part. On the
/// `/issue` routes, in development mode an `X-Chat-Auth-Issue-Key` makes a [`Caller::Backend`]
/// if it is the per-run key (403 if not), and in upstream mode with an issue audience a bearer
/// token must be a listed client's client-credentials token (401 if it does not verify, 403 if
/// the client is not listed or the token is a user's). Elsewhere a bearer token (or the demo
/// cookie) that verifies makes a [`Caller::User`], one that does not is refused with 401 and
/// the reason, and a request with neither stays anonymous.
async fn authenticate(
    State(auth): State<Arc<LocalAuth>>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req.headers().get(ISSUE_KEY_HEADER);
    let issue = is_issue_route(req.uri().path());
    let caller = match (&auth.issue_key, presented, &auth.clients) {
        (Some(key), Some(given), _) if issue => {
            if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), key.as_bytes())
                .is_err()
            {
                return Error::IssueKeyRefused.into_response();
            }
            Caller::Backend(Backend::IssueKey)
        }
        (_, _, Some(clients)) if issue => match clients.verifier.claims_of(req.headers()).await {
            Ok(None) => Caller::Anonymous,
            Ok(Some(claims)) => match Backend::client(&clients.allowed, &claims) {
                Ok(backend) => Caller::Backend(backend),
                Err(refused) => return refused.into_response(),
            },
            Err(e) => return e.into_response(),
        },
        _ => match auth.bearer.claims_of(req.headers()).await {
            Ok(None) => Caller::Anonymous,
            Ok(Some(claims)) => Caller::User(claims),
            Err(e) => return e.into_response(),
        },
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Development mode: a request must be addressed to a loopback host. A page on any site can
/// point its own DNS name at 127.0.0.1 (DNS rebinding) and a proxy or tunnel forwards foreign
/// names; both arrive here with a `Host` that is not loopback.
async fn loopback_host_only(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !host.map(without_port).is_some_and(is_loopback_host) {
        return Error::HostNotAllowed.into_response();
    }
    next.run(req).await
}

fn without_port(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(host, |(ip, _)| ip),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    }
}

/// The header carrying development mode's per-run `/issue` secret.
pub const ISSUE_KEY_HEADER: &str = "x-chat-auth-issue-key";

/// Binds the configured address.
pub async fn bind(config: &LocalConfig) -> Result<TcpListener, CliError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| CliError::Io {
            context: format!("binding {}", config.listen),
            source,
        })
}

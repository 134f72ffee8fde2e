//! The local server: every function's routes on one port over the file-backed key ring.

use crate::identity::{BearerAuth, authenticate};
use crate::local::{IdentitySource, LocalConfig};
use crate::{CliError, dev};
use axum::Router;
use chat_auth::provider::ProviderScript;
use chat_auth::store::{FileStore, ensure_ring};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Builds the whole app: opens (or creates) the key ring, then wires every route.
pub async fn app(config: &LocalConfig) -> Result<Router, CliError> {
    let shared = &config.shared;
    let store = FileStore::open(&config.data_dir)?;
    let ring = ensure_ring(&store, &shared.lifecycle(), chat_auth::time::now()).await?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        current = %ring.current.kid,
        next = %ring.next.kid,
        "key ring ready"
    );
    let (auth, dev_routes) = match &config.identity {
        IdentitySource::Upstream {
            issuer,
            jwks_url,
            audience,
        } => (
            BearerAuth::upstream(issuer.clone(), jwks_url.clone(), audience.clone()),
            None,
        ),
        IdentitySource::Development => {
            let idp = Arc::new(dev::DevIdp::new()?);
            (idp.verifier()?, Some(dev::router(idp)))
        }
    };
    let mint = Arc::new(mint_token::MintState::new(shared, store.clone()));
    // Identity is checked inside CORS: a refused bearer's 401 must stay readable by the page.
    let token_routes = mint_token::routes(mint).layer(axum::middleware::from_fn_with_state(
        Arc::new(auth),
        authenticate,
    ));
    let mut app = mint_token::with_cors(token_routes, chat_auth::http::Cors::from_config(shared))
        .merge(validate_token::router(Arc::new(
            validate_token::ValidateState::new(shared, store.clone()),
        )))
        .merge(public_keys::router(Arc::new(
            public_keys::PublicKeysState::new(shared, store),
        )))
        .merge(provider_script::router(Arc::new(ProviderScript::render(
            shared,
        ))))
        .merge(crate::openapi::router());
    if let Some(dev_routes) = dev_routes {
        // Development mode is loopback-only: every local process is a trusted backend for /issue.
        app = app.merge(dev_routes).layer(axum::middleware::from_fn(
            |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                req.extensions_mut()
                    .insert(mint_token::TrustedCaller("local development".into()));
                next.run(req).await
            },
        ));
    }
    Ok(chat_auth::http::finish(app))
}

/// Serves `app` on `listener` until Ctrl-C / SIGTERM.
pub async fn serve(listener: TcpListener, app: Router) -> Result<(), CliError> {
    axum::serve(listener, app)
        .with_graceful_shutdown(chat_auth::host::shutdown_signal())
        .await
        .map_err(|source| CliError::Io {
            context: "serving".into(),
            source,
        })
}

/// Binds the configured address.
pub async fn bind(config: &LocalConfig) -> Result<TcpListener, CliError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| CliError::Io {
            context: format!("binding {}", config.listen),
            source,
        })
}

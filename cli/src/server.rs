//! The local server: every function's routes on one port over the file-backed key ring.

use crate::identity::{BearerAuth, authenticate};
use crate::local::{IdentitySource, Limits, LocalConfig, is_loopback_host};
use crate::{CliError, dev};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use chat_auth::Error;
use chat_auth::provider::ProviderScript;
use chat_auth::store::{FileStore, ensure_ring};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

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
    let (auth, dev_routes) = match config.identity()? {
        IdentitySource::Upstream {
            issuer,
            audience,
            jwks,
        } => (BearerAuth::upstream(issuer, audience, jwks.clone()), None),
        IdentitySource::Development { issue_key, .. } => {
            let idp = Arc::new(dev::DevIdp::new()?);
            (
                idp.verifier()?,
                Some((dev::router(idp), Arc::<str>::from(issue_key.as_str()))),
            )
        }
    };
    let mint = Arc::new(mint_token::MintState::new(shared, store.clone()));
    // Identity is checked inside CORS: a refused bearer's 401 must stay readable by the page.
    let token_routes =
        mint_token::routes(mint).layer(from_fn_with_state(Arc::new(auth), authenticate));
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
    if let Some((dev_routes, issue_key)) = dev_routes {
        app = app
            .merge(dev_routes)
            .layer(from_fn_with_state(issue_key, issue_key_check))
            .layer(from_fn(loopback_host_only));
    }
    Ok(limited(chat_auth::http::finish(app), &config.limits))
}

/// The local server's limits, outermost first: header size (431), concurrency (503 at once,
/// never a queue), then the request timeout (408). All answer with the JSON error body.
fn limited(app: Router, limits: &Limits) -> Router {
    let timeout = limits.request_timeout;
    let (header_bytes, header_fields) = (limits.header_bytes, limits.header_fields);
    app.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        timeout,
    ))
    // tower-http's timeout answers with an empty body; give it the JSON error.
    .layer(from_fn(move |req: Request, next: Next| async move {
        let response = next.run(req).await;
        if response.status() == StatusCode::REQUEST_TIMEOUT {
            return Error::RequestTimeout {
                seconds: timeout.as_secs(),
            }
            .into_response();
        }
        response
    }))
    .layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                Error::Overloaded
            }))
            .load_shed()
            // Global: `Router::layer` wraps every route separately, and one semaphore must
            // count them all.
            .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency)),
    )
    // Hand-written: tower-http has no header-size layer, and hyper's own limits (see
    // `MAX_HEADERS`, `MAX_HEAD_BYTES`) answer without a JSON body.
    .layer(from_fn(move |req: Request, next: Next| async move {
        let bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if bytes > header_bytes || req.headers().len() > header_fields {
            return Error::HeadersTooLarge {
                bytes: header_bytes,
                fields: header_fields,
            }
            .into_response();
        }
        next.run(req).await
    }))
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

/// Development mode: `/issue` trusts a caller that presents the per-run issue key (printed at
/// start). Without the header the request is not trusted (`/issue` answers 401); with a wrong
/// one it is refused here (403).
async fn issue_key_check(State(key): State<Arc<str>>, mut req: Request, next: Next) -> Response {
    if req.uri().path() != "/issue" {
        return next.run(req).await;
    }
    match req.headers().get(ISSUE_KEY_HEADER) {
        None => {}
        Some(given)
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                given.as_bytes(),
                key.as_bytes(),
            )
            .is_ok() =>
        {
            req.extensions_mut().insert(mint_token::TrustedCaller(
                "local development (issue key)".into(),
            ));
        }
        Some(_) => return Error::IssueKeyRefused.into_response(),
    }
    next.run(req).await
}

/// Header fields a request may carry before hyper itself refuses it (431 without a body and
/// the connection closed): above the JSON `headers_too_large` limit (100 fields, 16 KiB), so
/// that answers first up to here.
const MAX_HEADERS: usize = 512;
/// hyper's read buffer, which bounds the request head: above the 16 KiB header limit.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A client must send its whole request head within this (slow-header clients hold a
/// connection open forever otherwise; the request timeout only starts once headers are in).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections still open this long after a shutdown signal are dropped.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until Ctrl-C / SIGTERM. hyper directly rather than
/// `axum::serve`, which exposes neither the header-read timeout nor the header limits.
pub async fn serve(listener: TcpListener, app: Router) -> Result<(), CliError> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let shutdown = chat_auth::host::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin or exit.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; dropping them");
    }
    Ok(())
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

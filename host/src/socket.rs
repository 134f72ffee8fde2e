//! Serves a router on a TCP socket (the local server), with the limits a server facing
//! browsers needs: header size, concurrency, request time, header-read time, graceful drain.

use crate::Error;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request that takes longer gets 408.
    pub request_timeout: Duration,
    /// Requests beyond this many at once get 503 at once.
    pub concurrency: usize,
    /// Total bytes of header names and values a request may carry (431 beyond).
    pub header_bytes: usize,
    /// Header fields a request may carry (431 beyond).
    pub header_fields: usize,
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

/// The limits as layers, outermost first: header size (431), concurrency (503 at once, never a
/// queue), then the request timeout (408). All answer with the JSON error body.
pub fn limited(app: Router, limits: &Limits) -> Router {
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

/// Serves `app` on `listener` until Ctrl-C / SIGTERM. hyper directly rather than
/// `axum::serve`, which exposes neither the header-read timeout nor the header limits.
pub async fn serve(listener: TcpListener, app: Router) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
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
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

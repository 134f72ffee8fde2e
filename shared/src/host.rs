//! Runs a function's router under the Lambda Runtime API. Locally the routers run inside
//! `chat-auth serve` instead, so a function binary has no HTTP mode of its own.

use axum::Router;

/// Serves `router` until the Lambda runtime stops.
pub async fn serve(router: Router) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    lambda_http::run(router).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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

//! Runs a router under Lambda (when `AWS_LAMBDA_RUNTIME_API` is set) or as a plain HTTP server,
//! so each function binary also runs on its own for local debugging.

use axum::Router;

/// Serves `router` until the runtime stops (Lambda) or Ctrl-C / SIGTERM (standalone).
pub async fn serve(
    router: Router,
    standalone_listen: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_http::run(router).await;
    }
    let listener = tokio::net::TcpListener::bind(standalone_listen).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
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

//! Lambda entrypoint: config and key store (Secrets Manager, or a data directory when run
//! standalone) once, then serve `/token` and `/issue`.

use chat_auth::Config;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth::telemetry::init();
    let config = Config::from_env()?;
    let store = chat_auth_aws::AnyStore::from_env(true).await?;
    let state = Arc::new(mint_token::MintState::new(&config, store));
    let router = chat_auth::http::finish(mint_token::router(
        state,
        chat_auth::http::Cors::from_config(&config),
    ))
    .layer(axum::middleware::from_fn(mint_token::lambda_identity));
    chat_auth::host::serve(router, "127.0.0.1:9001").await
}

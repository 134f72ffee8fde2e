//! Lambda entrypoint: config and key store once, then serve `/token`.

use chat_auth::{Config, store::FileStore};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth::telemetry::init();
    let config = Config::from_env()?;
    let store = FileStore::open(
        std::env::var("CHAT_AUTH_DATA_DIR").unwrap_or_else(|_| "/tmp/chat-auth".into()),
    )?;
    let state = Arc::new(mint_token::MintState::new(&config, store));
    let router = chat_auth::http::finish(mint_token::router(state, &config.allowed_origins))
        .layer(axum::middleware::from_fn(mint_token::lambda_identity));
    chat_auth::host::serve(router, "127.0.0.1:9001").await
}

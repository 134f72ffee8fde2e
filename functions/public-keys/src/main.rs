//! Lambda entrypoint: config and public key store once, then serve the key documents.

use chat_auth::{Config, store::FileStore};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth::telemetry::init();
    let config = Config::from_env()?;
    let store = FileStore::open(
        std::env::var("CHAT_AUTH_DATA_DIR").unwrap_or_else(|_| "/tmp/chat-auth".into()),
    )?;
    let state = Arc::new(public_keys::PublicKeysState::new(&config, store));
    chat_auth::host::serve(
        chat_auth::http::finish(public_keys::router(state)),
        "127.0.0.1:9003",
    )
    .await
}

//! Lambda entrypoint: config and the public key store (Secrets Manager, or a data directory
//! under a local Lambda runtime) once, then serve. This function never reads the private ring.

use chat_auth::Config;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth::telemetry::init();
    let config = Config::from_env()?;
    let store = chat_auth_aws::AnyStore::from_env(false).await?;
    let state = Arc::new(validate_token::ValidateState::new(&config, store));
    chat_auth::host::serve(chat_auth::http::finish(validate_token::router(state))).await
}

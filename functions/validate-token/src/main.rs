//! Lambda entrypoint: config and the public key store (Secrets Manager, or a data directory
//! under a local Lambda runtime) once, then serve. This function never reads the private ring.

use chat_auth::Config;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth_host::telemetry::init();
    let config = Config::from_env()?;
    let store = chat_auth_aws::AnyStore::from_env(false).await?;
    let state = Arc::new(validate_token::ValidateState::new(&config, store));
    chat_auth_host::lambda::serve(chat_auth_host::http::finish(validate_token::router(state))).await
}

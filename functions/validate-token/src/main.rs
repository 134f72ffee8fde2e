//! Lambda entrypoint: config and the public key store (Secrets Manager, or a data directory
//! under a local Lambda runtime) once, then serve. This function never reads the private ring.

use chat_auth_host::lambda::{InitClock, Phase};
use chat_auth_shared::config::{KeyCacheConfig, StoreConfig, TelemetryConfig};
use chat_auth_shared::{Section, TokenPolicy};
use std::sync::Arc;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut init = InitClock::start();
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    init.end(Phase::Telemetry);
    let (tokens, keys) = (TokenPolicy::from_env()?, KeyCacheConfig::from_env()?);
    let store_config = StoreConfig::from_env()?;
    init.end(Phase::Config);
    let store = chat_auth_aws::AnyStore::open(&store_config, false).await?;
    init.end(Phase::Store);
    let state = Arc::new(validate_token::ValidateState::new(&tokens, &keys, store));
    let app = chat_auth_host::http::finish(validate_token::router(state));
    init.end(Phase::App);
    init.log();
    chat_auth_host::lambda::serve(app).await
}

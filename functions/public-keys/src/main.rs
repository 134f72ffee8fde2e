//! Lambda entrypoint: config and the public key store (Secrets Manager, or a data directory
//! under a local Lambda runtime) once, then serve. This function never reads the private ring.

use chat_auth::Section;
use chat_auth::config::{KeyCacheConfig, StoreConfig, TelemetryConfig};
use std::sync::Arc;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    let keys = KeyCacheConfig::from_env()?;
    let store = chat_auth_aws::AnyStore::open(&StoreConfig::from_env()?, false).await?;
    let state = Arc::new(public_keys::PublicKeysState::new(&keys, store));
    chat_auth_host::lambda::serve(chat_auth_host::http::finish(public_keys::router(state))).await
}

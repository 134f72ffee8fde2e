//! Lambda entrypoint: config and key store (Secrets Manager, or a data directory under a
//! local Lambda runtime) once, then serve `/token` and `/issue`.

use chat_auth::Section;
use chat_auth::config::{StoreConfig, TelemetryConfig};
use mint_token::MintConfig;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    let config = MintConfig::from_env()?;
    let store = chat_auth_aws::AnyStore::open(&StoreConfig::from_env()?, true).await?;
    chat_auth_host::lambda::serve(mint_token::lambda_app(&config, store)).await
}

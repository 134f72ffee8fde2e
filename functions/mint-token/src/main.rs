//! Lambda entrypoint: config and key store (Secrets Manager, or a data directory under a
//! local Lambda runtime) once, then serve `/token` and `/issue`.

use chat_auth_host::lambda::{InitClock, Phase};
use chat_auth_shared::Section;
use chat_auth_shared::config::{StoreConfig, TelemetryConfig};
use mint_token::MintConfig;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut init = InitClock::start();
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    init.end(Phase::Telemetry);
    let (config, store_config) = (MintConfig::from_env()?, StoreConfig::from_env()?);
    init.end(Phase::Config);
    let store = chat_auth_aws::AnyStore::open(&store_config, true).await?;
    let remote = chat_auth_aws::remote_signer(&store_config).await;
    init.end(Phase::Store);
    let app = mint_token::lambda_app(&config, store, remote);
    init.end(Phase::App);
    init.log();
    chat_auth_host::lambda::serve(app).await
}

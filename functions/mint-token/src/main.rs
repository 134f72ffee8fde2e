//! Lambda entrypoint: config and key store (Secrets Manager, or a data directory under a
//! local Lambda runtime) once, then serve `/token` and `/issue`.

use chat_auth::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chat_auth_host::telemetry::init();
    let config = Config::from_env()?;
    let store = chat_auth_aws::AnyStore::from_env(true).await?;
    chat_auth_host::lambda::serve(mint_token::lambda_app(&config, store)).await
}

//! Lambda entrypoint: render the script once from configuration, then serve it.

use chat_auth_host::lambda::{InitClock, Phase};
use chat_auth_shared::Section;
use chat_auth_shared::config::{BrowserConfig, TelemetryConfig};
use chat_auth_shared::provider::ProviderScript;
use std::sync::Arc;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut init = InitClock::start();
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    init.end(Phase::Telemetry);
    let config = BrowserConfig::from_env()?;
    init.end(Phase::Config);
    let script = Arc::new(ProviderScript::render(&config));
    let app = chat_auth_host::http::finish(provider_script::router(script));
    init.end(Phase::App);
    init.log();
    chat_auth_host::lambda::serve(app).await
}

//! Lambda entrypoint: config and the Secrets Manager store once, then one rotation step per
//! invocation (`rotate_keys::handle`).

use chat_auth_aws::SecretsManagerStore;
use chat_auth_aws::rotation::Rotator;
use chat_auth_host::lambda::{InitClock, Phase};
use chat_auth_shared::Section;
use chat_auth_shared::config::{RingConfig, StoreConfig, TelemetryConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut init = InitClock::start();
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    init.end(Phase::Telemetry);
    let (ring, store_config) = (RingConfig::from_env()?, StoreConfig::from_env()?);
    init.end(Phase::Config);
    let store = SecretsManagerStore::for_rotation(&store_config).await?;
    init.end(Phase::Store);
    let rotator = Rotator::new(store, chat_auth_aws::lifecycle(&ring, &store_config).await?);
    init.end(Phase::App);
    init.log();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        rotate_keys::handle(&rotator, event.payload, chat_auth_shared::time::now())
    }))
    .await
}

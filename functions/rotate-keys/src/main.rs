//! Lambda entrypoint: config and the Secrets Manager store once, then one rotation step per
//! invocation (`rotate_keys::handle`).

use chat_auth::Section;
use chat_auth::config::{RingConfig, StoreConfig, TelemetryConfig};
use chat_auth_aws::SecretsManagerStore;
use chat_auth_aws::rotation::Rotator;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

// One thread: Lambda sends one invocation at a time, and a multi-thread runtime only adds
// hand-offs between its workers to each one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    chat_auth_host::telemetry::init(&TelemetryConfig::from_env()?);
    let ring = RingConfig::from_env()?;
    let store = SecretsManagerStore::for_rotation(&StoreConfig::from_env()?).await?;
    let rotator = Rotator::new(store, ring.lifecycle());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        rotate_keys::handle(&rotator, event.payload, chat_auth::time::now())
    }))
    .await
}

//! rotate-keys: Secrets Manager's four-step rotation of the key ring, and operators' emergency
//! rotation (`{"emergencyKid": "..."}` as a manual invoke payload).

use chat_auth::Config;
use chat_auth_aws::SecretsManagerStore;
use chat_auth_aws::rotation::{Invocation, Rotator};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_auth::telemetry::init();
    let config = Config::from_env()?;
    let var = |name: &'static str| {
        std::env::var(name).map_err(|_| chat_auth::Error::Config {
            var: name,
            reason: "is required".into(),
        })
    };
    let store = SecretsManagerStore::new(
        SecretsManagerStore::client_from_env().await,
        Some(var("CHAT_AUTH_SIGNING_SECRET_ID")?),
        var("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID")?,
    );
    let rotator = Rotator::new(store, config.lifecycle());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let rotator = &rotator;
        async move {
            let invocation: Invocation = serde_json::from_value(event.payload).map_err(|_| {
                Error::from(
                    "expected a Secrets Manager rotation event or {\"emergencyKid\": \"...\"}",
                )
            })?;
            match rotator.handle(invocation, chat_auth::time::now()).await {
                Ok(summary) => {
                    tracing::info!(%summary, "rotation step succeeded");
                    let outcome = if summary.contains("deferred") {
                        "deferred"
                    } else {
                        "done"
                    };
                    chat_auth::telemetry::metrics(
                        &[("RotationSteps", 1.0, "Count")],
                        &[("Outcome", outcome)],
                    );
                    Ok(json!({ "result": summary }))
                }
                Err(e) => {
                    tracing::error!(error = %e, "rotation step failed");
                    chat_auth::telemetry::metrics(
                        &[("RotationSteps", 1.0, "Count")],
                        &[("Outcome", "failed")],
                    );
                    Err(Error::from(e.to_string()))
                }
            }
        }
    }))
    .await
}

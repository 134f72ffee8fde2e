//! rotate-keys: Secrets Manager's four-step rotation of the key ring, and operators' emergency
//! rotation (`{"emergencyKid": "..."}` as a manual invoke payload). One invocation in, one
//! summary (or the error Secrets Manager retries on) out, with a metric for each outcome.

use chat_auth_aws::rotation::{Invocation, Outcome, Rotator};
use lambda_runtime::Error;
use serde_json::{Value, json};

/// Handles one invocation payload at time `now`: Secrets Manager's rotation event (read by
/// aws_lambda_events) or the operator's `{"emergencyKid"}`, one `Invocation`. A payload that is
/// neither gets a fixed message, so that nothing of it is echoed into the logs.
pub async fn handle(rotator: &Rotator, payload: Value, now: i64) -> Result<Value, Error> {
    let invocation: Invocation = serde_json::from_value(payload).map_err(|_| {
        Error::from("expected a Secrets Manager rotation event or {\"emergencyKid\": \"...\"}")
    })?;
    let outcome = rotator.handle(invocation, now).await;
    let label = outcome.as_ref().map_or("failed", Outcome::label);
    chat_auth_host::telemetry::metrics(&[("RotationSteps", 1.0, "Count")], &[("Outcome", label)]);
    if let Ok(Outcome::Deferred {
        signing_key_age, ..
    }) = &outcome
    {
        // template.yaml's RotationDeferredAlarm: a deferral that leaves an old key signing.
        chat_auth_host::telemetry::metrics(
            &[(
                "DeferredSigningKeyAgeSeconds",
                *signing_key_age as f64,
                "Seconds",
            )],
            &[],
        );
    }
    match outcome {
        Ok(outcome) => {
            tracing::info!(%outcome, "rotation step succeeded");
            Ok(json!({ "result": outcome.to_string() }))
        }
        Err(e) => {
            // Secrets Manager shows this in the secret's rotation status: with its causes.
            let message = chat_auth_shared::chain(&e);
            tracing::error!(error = %message, "rotation step failed");
            Err(Error::from(message))
        }
    }
}

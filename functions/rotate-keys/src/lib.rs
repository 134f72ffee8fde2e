//! rotate-keys: Secrets Manager's four-step rotation of the key ring, and operators' emergency
//! rotation (`{"emergencyKid": "..."}` as a manual invoke payload). One invocation in, one
//! summary (or the error Secrets Manager retries on) out, with a metric for each outcome.

use chat_auth_aws::rotation::{Invocation, Rotator};
use lambda_runtime::Error;
use serde_json::{Value, json};

/// Handles one invocation payload at time `now`.
pub async fn handle(rotator: &Rotator, payload: Value, now: i64) -> Result<Value, Error> {
    let invocation: Invocation = serde_json::from_value(payload).map_err(|_| {
        Error::from("expected a Secrets Manager rotation event or {\"emergencyKid\": \"...\"}")
    })?;
    let outcome = rotator.handle(invocation, now).await;
    let label = match &outcome {
        Ok(summary) if summary.contains("deferred") => "deferred",
        Ok(_) => "done",
        Err(_) => "failed",
    };
    chat_auth::telemetry::metrics(&[("RotationSteps", 1.0, "Count")], &[("Outcome", label)]);
    match outcome {
        Ok(summary) => {
            tracing::info!(%summary, "rotation step succeeded");
            Ok(json!({ "result": summary }))
        }
        Err(e) => {
            tracing::error!(error = %e, "rotation step failed");
            Err(Error::from(e.to_string()))
        }
    }
}

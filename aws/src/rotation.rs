//! Secrets Manager's rotation protocol over the key ring.
//!
//! Secrets Manager's own guards come first (rotation enabled, the token is a version of the
//! secret, it is AWSCURRENT or AWSPENDING); the four steps themselves, their lineage checks and
//! the emergency revocation are `chat_auth_shared::store`'s, the same code the local service and the
//! model tests run. The ring's invariants are written in `chat_auth_shared::ring`.

use crate::secrets::{CURRENT, PENDING};
use crate::{RotationError, SecretsManagerStore};
use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use chat_auth_shared::Lifecycle;
use chat_auth_shared::ring::Deferral;
use chat_auth_shared::store::{self, Step};
use serde::Deserialize;

/// What rotate-keys is invoked with: Secrets Manager's rotation event, or an operator's
/// emergency request `{"emergencyKid": "..."}` (a manual invoke).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    /// A rotation step, as aws_lambda_events reads Secrets Manager's event. Its step is the
    /// name as sent: an unknown one is refused by name ([`RotationError::InvalidStep`]), not
    /// as an unreadable event.
    Step(SecretsManagerSecretRotationEvent),
    /// Drop a compromised key now.
    Emergency {
        /// The kid to drop.
        #[serde(rename = "emergencyKid")]
        emergency_kid: String,
    },
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A rotation step ran (or had already run: every step is safe to repeat).
    Done {
        /// Which of the four; a repeated step is reported as done, not as an error.
        step: Step,
        /// The secret version it worked on.
        token: String,
    },
    /// `createSecret` derived a ring, but the ring rules kept the current key signing.
    Deferred {
        /// The secret version it worked on.
        token: String,
        /// Why promotion waits.
        why: Deferral,
        /// Seconds the key that keeps signing has signed (an alarm's view of a stuck rotation).
        signing_key_age: i64,
    },
    /// An emergency revocation dropped a key.
    Revoked {
        /// The dropped kid.
        kid: String,
        /// The new ring's version.
        version: u64,
        /// The kid that signs now.
        signer: String,
    },
}

impl Outcome {
    /// The `Outcome` dimension of the `RotationSteps` metric.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::Deferred { .. } => "deferred",
            Outcome::Revoked { .. } => "revoked",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Done { step, token } => write!(f, "{step:?} done for version {token}"),
            Outcome::Deferred { token, why, .. } => write!(
                f,
                "{:?} done for version {token}; promotion deferred: {why}",
                Step::Create
            ),
            Outcome::Revoked {
                kid,
                version,
                signer,
            } => write!(
                f,
                "revoked {kid}; ring version {version} signs with {signer}"
            ),
        }
    }
}

/// Runs rotation steps against a store.
#[derive(Debug, Clone)]
pub struct Rotator {
    store: SecretsManagerStore,
    life: Lifecycle,
}

impl Rotator {
    /// A rotator writing through `store` under the ring rules of `life`.
    pub fn new(store: SecretsManagerStore, life: Lifecycle) -> Self {
        Rotator { store, life }
    }

    /// Handles one invocation at time `now`.
    pub async fn handle(&self, invocation: Invocation, now: i64) -> Result<Outcome, RotationError> {
        match invocation {
            Invocation::Step(SecretsManagerSecretRotationEvent {
                step,
                secret_id,
                client_request_token: token,
                ..
            }) => {
                let step = Step::from_name(&step)
                    .ok_or_else(|| RotationError::InvalidStep(step.chars().take(40).collect()))?;
                let outcome = self.step(&secret_id, &token, step, now).await?;
                let deferred =
                    outcome.and_then(|r| Some((r.deferred?, now - r.ring.current.times.activates)));
                Ok(match deferred {
                    Some((why, signing_key_age)) => Outcome::Deferred {
                        token,
                        why,
                        signing_key_age,
                    },
                    None => Outcome::Done { step, token },
                })
            }
            Invocation::Emergency { emergency_kid } => {
                let ring = store::revoke(&self.store, &emergency_kid, &self.life, now).await?;
                Ok(Outcome::Revoked {
                    kid: emergency_kid,
                    version: ring.version,
                    signer: ring.current.kid.clone(),
                })
            }
        }
    }

    /// Secrets Manager's guards, then the step.
    pub async fn step(
        &self,
        secret: &str,
        token: &str,
        step: Step,
        now: i64,
    ) -> Result<store::StepOutcome, RotationError> {
        let (enabled, versions) = self.store.describe(secret).await?;
        if !enabled {
            return Err(RotationError::NotEnabled(secret.to_owned()));
        }
        let stages = versions
            .get(token)
            .ok_or_else(|| RotationError::UnknownVersion {
                token: token.to_owned(),
                secret: secret.to_owned(),
            })?;
        if !stages.iter().any(|s| s == CURRENT || s == PENDING) {
            return Err(RotationError::NotPending {
                token: token.to_owned(),
                secret: secret.to_owned(),
            });
        }
        let store = self.store.for_signing_secret(secret);
        Ok(store::step(&store, token, step, &self.life, now).await?)
    }
}

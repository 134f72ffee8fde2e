//! Secrets Manager's rotation protocol over the key ring.
//!
//! Guards first (rotation enabled, the token is a version of the secret, already AWSCURRENT
//! means done, otherwise it must be AWSPENDING), then one of four steps, each safe to run twice
//! or after a crash at any point:
//! - createSecret: ring N+1 from AWSCURRENT ring N (or a fresh ring), stored as AWSPENDING
//!   under the token, unless that version already holds a ring;
//! - setSecret: publish N ∪ N+1, so N+1's keys are verifiable before anything signs with them;
//! - testSecret: sign with N+1's current key and verify against what is published;
//! - finishSecret: move AWSCURRENT to the token, drop AWSPENDING, publish N+1's set.
//!
//! Every key that signed an unexpired token stays published throughout: N's keys are in every
//! set published until N+1 is current, and N+1 keeps N's current key as its previous.

use crate::secrets::{CURRENT, PENDING};
use crate::{RotationError, SecretsManagerStore};
use chat_auth::claims::mint;
use chat_auth::jwt::Validator;
use chat_auth::store::{KeyStore, PublicKeySource, Rotation, rotate};
use chat_auth::{CustomContext, Error, RingState, TokenPolicy};
use serde::Deserialize;

/// One of the four steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// createSecret.
    Create,
    /// setSecret.
    Set,
    /// testSecret.
    Test,
    /// finishSecret.
    Finish,
}

impl std::str::FromStr for Step {
    type Err = RotationError;

    fn from_str(s: &str) -> Result<Self, RotationError> {
        match s {
            "createSecret" => Ok(Step::Create),
            "setSecret" => Ok(Step::Set),
            "testSecret" => Ok(Step::Test),
            "finishSecret" => Ok(Step::Finish),
            other => Err(RotationError::InvalidStep(other.chars().take(40).collect())),
        }
    }
}

/// What rotate-keys is invoked with: Secrets Manager's rotation event, or an operator's
/// emergency request `{"emergencyKid": "..."}` (a manual invoke).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    /// A rotation step.
    Step {
        /// The step name.
        #[serde(rename = "Step")]
        step: String,
        /// The signing secret.
        #[serde(rename = "SecretId")]
        secret_id: String,
        /// The version being created.
        #[serde(rename = "ClientRequestToken")]
        token: String,
    },
    /// Drop a compromised key now.
    Emergency {
        /// The kid to drop.
        #[serde(rename = "emergencyKid")]
        emergency_kid: String,
    },
}

/// Runs rotation steps against a store.
#[derive(Debug, Clone)]
pub struct Rotator {
    store: SecretsManagerStore,
    period: i64,
}

impl Rotator {
    /// A rotator publishing through `store` with the given rotation period (seconds).
    pub fn new(store: SecretsManagerStore, period: i64) -> Self {
        Rotator { store, period }
    }

    /// Handles one invocation at time `now`; returns a one-line summary.
    pub async fn handle(&self, invocation: Invocation, now: i64) -> Result<String, RotationError> {
        match invocation {
            Invocation::Step {
                step,
                secret_id,
                token,
            } => {
                let step: Step = step.parse()?;
                self.step(&secret_id, &token, step, now).await?;
                Ok(format!("{step:?} done for version {token}"))
            }
            Invocation::Emergency { emergency_kid } => {
                let ring = rotate(
                    &self.store,
                    &Rotation::Emergency(emergency_kid.clone()),
                    now,
                    self.period,
                )
                .await?;
                Ok(format!(
                    "dropped {emergency_kid}; ring version {} signs with {}",
                    ring.version, ring.current.kid
                ))
            }
        }
    }

    /// Guards, then the step.
    pub async fn step(
        &self,
        secret: &str,
        token: &str,
        step: Step,
        now: i64,
    ) -> Result<(), RotationError> {
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
        if stages.iter().any(|s| s == CURRENT) {
            tracing::info!(?step, token, "version is already AWSCURRENT");
            if step == Step::Finish {
                // A crash after the stage moved but before publishing: publish now.
                self.publish_current(secret).await?;
            }
            return Ok(());
        }
        if !stages.iter().any(|s| s == PENDING) {
            return Err(RotationError::NotPending {
                token: token.to_owned(),
                secret: secret.to_owned(),
            });
        }
        match step {
            Step::Create => self.create(secret, token, now).await,
            Step::Set => self.set(secret, token).await,
            Step::Test => self.test(secret, token, now).await,
            Step::Finish => {
                let current = versions
                    .iter()
                    .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
                    .map(|(version, _)| version.as_str());
                self.finish(secret, token, current).await
            }
        }
    }

    async fn create(&self, secret: &str, token: &str, now: i64) -> Result<(), RotationError> {
        if self
            .store
            .ring(secret, PENDING, Some(token))
            .await?
            .is_some()
        {
            tracing::info!(token, "createSecret: the pending ring already exists");
            return Ok(());
        }
        let next = match self.store.ring(secret, CURRENT, None).await? {
            Some(current) => current.rotate(now, self.period)?,
            None => RingState::generate(now, self.period)?,
        };
        self.store
            .put_ring(secret, token, &next, &[PENDING])
            .await?;
        tracing::info!(token, version = next.version, current = %next.current.kid, "createSecret: pending ring stored");
        Ok(())
    }

    async fn pending(&self, secret: &str, token: &str) -> Result<RingState, RotationError> {
        Ok(self
            .store
            .ring(secret, PENDING, Some(token))
            .await?
            .ok_or(Error::NotProvisioned(
                "pending ring (run createSecret first)",
            ))?)
    }

    async fn set(&self, secret: &str, token: &str) -> Result<(), RotationError> {
        let pending = self.pending(secret, token).await?.public_set()?;
        let set = match self.store.ring(secret, CURRENT, None).await? {
            Some(current) => current.public_set()?.union(&pending),
            None => pending,
        };
        self.store.publish(&set).await?;
        tracing::info!(
            token,
            keys = set.keys.len(),
            "setSecret: published old and new keys"
        );
        Ok(())
    }

    async fn test(&self, secret: &str, token: &str, now: i64) -> Result<(), RotationError> {
        let pending = self.pending(secret, token).await?;
        let published = self
            .store
            .load_public()
            .await?
            .ok_or_else(|| RotationError::TestFailed("nothing is published".into()))?;
        if !published.contains_all(&pending.public_set()?) {
            return Err(RotationError::TestFailed(
                "the published set lacks keys of the pending ring".into(),
            ));
        }
        if let Some(current) = self.store.ring(secret, CURRENT, None).await?
            && !published.contains_all(&current.public_set()?)
        {
            return Err(RotationError::TestFailed(
                "the published set lacks keys of the current ring".into(),
            ));
        }
        let policy = TokenPolicy {
            issuer: "chat-auth-rotation-test".into(),
            ttl: 60,
            skew: 0,
        };
        let claims = policy.claims("rotation-test", &CustomContext::new(), now)?;
        let probe = mint(&pending.load()?.signer, &claims)?;
        let validator = Validator {
            issuer: Some(policy.issuer),
            audience: None,
            leeway: 0,
            omnichannel: true,
        };
        let report = validator.validate(&probe.token, &published.render()?.keys, now);
        if !report.is_active() {
            let codes: Vec<&str> = report.problems.iter().map(|p| p.code).collect();
            return Err(RotationError::TestFailed(format!(
                "a token signed by the pending key does not verify against the published set: {codes:?}"
            )));
        }
        tracing::info!(token, kid = %probe.kid, "testSecret: pending key verifies against the published set");
        Ok(())
    }

    async fn finish(
        &self,
        secret: &str,
        token: &str,
        current: Option<&str>,
    ) -> Result<(), RotationError> {
        self.store
            .move_stage(secret, CURRENT, Some(token), current)
            .await?;
        // Leaving AWSPENDING on the new current version blocks the next rotation (moto refuses
        // it); removing it is harmless on AWS.
        self.store
            .move_stage(secret, PENDING, None, Some(token))
            .await?;
        self.publish_current(secret).await?;
        tracing::info!(
            token,
            "finishSecret: version is AWSCURRENT and its set is published"
        );
        Ok(())
    }

    async fn publish_current(&self, secret: &str) -> Result<(), RotationError> {
        let ring = self
            .store
            .ring(secret, CURRENT, None)
            .await?
            .ok_or(Error::NotProvisioned("key ring"))?;
        self.store.publish(&ring.public_set()?).await?;
        Ok(())
    }
}

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use chat_auth_shared::config::StoreConfig;
use chat_auth_shared::store::{Basis, KeyStore, PublicKeySource, RingSource, Slots, Stage};
use chat_auth_shared::{Error, PublicKeySet, Result, RingState};
use std::collections::HashMap;

/// The AWSCURRENT staging label.
pub const CURRENT: &str = "AWSCURRENT";
/// The AWSPENDING staging label.
pub const PENDING: &str = "AWSPENDING";

/// Secrets Manager as the key store.
///
/// A secret whose value is empty or `{}` holds nothing yet (the template creates both secrets
/// that way; the first rotation fills them).
#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
    signing_secret: Option<String>,
    public_secret: String,
}

impl SecretsManagerStore {
    /// A store over an SDK client. Functions that only verify pass no signing secret: they
    /// cannot read the private ring even by mistake (IAM denies it as well).
    pub fn new(client: Client, signing_secret: Option<String>, public_secret: String) -> Self {
        SecretsManagerStore {
            client,
            signing_secret,
            public_secret,
        }
    }

    /// A client from the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn client_from_env() -> Client {
        Client::new(crate::sdk_config().await)
    }

    /// The store rotate-keys works on: both secrets are required.
    pub async fn for_rotation(config: &StoreConfig) -> Result<Self> {
        let required = |var: &'static str| Error::Config {
            var,
            reason: "is required".into(),
        };
        let StoreConfig::SecretsManager {
            public, signing, ..
        } = config
        else {
            return Err(required("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID"));
        };
        let signing = signing
            .clone()
            .ok_or_else(|| required("CHAT_AUTH_SIGNING_SECRET_ID"))?;
        Ok(Self::new(
            Self::client_from_env().await,
            Some(signing),
            public.clone(),
        ))
    }

    /// The same store working on `signing_secret` (a rotation event names its secret).
    pub fn for_signing_secret(&self, signing_secret: &str) -> Self {
        SecretsManagerStore {
            signing_secret: Some(signing_secret.to_owned()),
            ..self.clone()
        }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The public-set secret id.
    pub fn public_secret(&self) -> &str {
        &self.public_secret
    }

    fn signing(&self) -> Result<&str> {
        self.signing_secret.as_deref().ok_or(Error::Config {
            var: "CHAT_AUTH_SIGNING_SECRET_ID",
            reason: "this function has no access to the signing ring".into(),
        })
    }

    /// The value of one version of a secret (by stage, and version id when given); `None` when
    /// the version has no value yet or holds the empty placeholder.
    pub async fn value(
        &self,
        secret: &str,
        stage: &str,
        version: Option<&str>,
    ) -> Result<Option<String>> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out
                .secret_string()
                .map(str::trim)
                .filter(|v| !v.is_empty() && *v != "{}")
                .map(str::to_owned)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The ring stored in one version of the signing secret.
    pub async fn ring(
        &self,
        secret: &str,
        stage: &str,
        version: Option<&str>,
    ) -> Result<Option<RingState>> {
        self.value(secret, stage, version)
            .await?
            .map(|v| RingState::from_json(v.as_bytes()))
            .transpose()
    }

    /// Stores `ring` as a new version of `secret` with `stages`, under `token` (idempotent:
    /// repeating the same token and value is a no-op; another value under the same token is
    /// refused by Secrets Manager).
    pub async fn put_ring(
        &self,
        secret: &str,
        token: &str,
        ring: &RingState,
        stages: &[&str],
    ) -> Result<()> {
        let json = String::from_utf8(ring.to_json()).map_err(|_| Error::Crypto("ring encoding"))?;
        self.client
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(token)
            .secret_string(json)
            .set_version_stages(Some(stages.iter().map(|s| (*s).to_owned()).collect()))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().and_then(|s| s.code()) == Some("ResourceExistsException") {
                    Error::Conflict(format!("secret version {token} already holds another ring"))
                } else {
                    unavailable(e)
                }
            })?;
        Ok(())
    }

    /// Rotation flag and version → stages map of a secret.
    pub async fn describe(&self, secret: &str) -> Result<(bool, HashMap<String, Vec<String>>)> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .map_err(unavailable)?;
        Ok((
            out.rotation_enabled().unwrap_or(false),
            out.version_ids_to_stages().cloned().unwrap_or_default(),
        ))
    }

    /// [`Slots::check_publication`] against the stored rings and `published`.
    async fn check_basis(&self, basis: &Basis, published: Option<&PublicKeySet>) -> Result<()> {
        Slots {
            current: self.load_ring().await?,
            pending: self.load_any_pending().await?,
        }
        .check_publication(published, basis)
    }

    /// Moves `stage` to `to` (removing it from `from`), or removes it from `from` alone.
    pub async fn move_stage(
        &self,
        secret: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<()> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

fn not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ResourceNotFoundException")
}

/// The SDK error is kept as the source (for logs); clients see only the error code.
fn unavailable<E, R>(e: SdkError<E, R>) -> Error
where
    SdkError<E, R>: std::error::Error + Send + Sync + 'static,
{
    Error::StoreUnavailable(Box::new(e))
}

impl RingSource for SecretsManagerStore {
    async fn load_ring(&self) -> Result<Option<RingState>> {
        self.ring(self.signing()?, CURRENT, None).await
    }
}

impl PublicKeySource for SecretsManagerStore {
    async fn load_public(&self) -> Result<Option<PublicKeySet>> {
        self.value(&self.public_secret, CURRENT, None)
            .await?
            .map(|v| PublicKeySet::from_json(v.as_bytes()))
            .transpose()
    }
}

/// The ClientRequestToken of a direct write of AWSCURRENT: a function of the base ring alone,
/// so that every writer starting from one base uses the same token and all but the first are
/// refused (invariant 4 of `chat_auth_shared::ring`), whatever ring each of them wrote.
fn direct_write_token(base: Option<&str>) -> String {
    match base {
        Some(digest) => format!("chat-auth-after-{}", &digest[..digest.len().min(40)]),
        None => "chat-auth-first-ring-0000000000000000".to_owned(),
    }
}

impl KeyStore for SecretsManagerStore {
    /// Writes a new AWSCURRENT version (first ring, emergency revocation) after checking that
    /// AWSCURRENT is still `base`, then removes AWSPENDING from any pending version: a rotation
    /// derived from the replaced ring must not resume (its lineage check would refuse it too).
    ///
    /// Secrets Manager has no conditional write; the check, the per-base token and
    /// ResourceExistsException together leave only writers racing within one round trip, and
    /// those collide on the token.
    async fn save_ring(&self, base: Option<&str>, ring: &RingState) -> Result<()> {
        let secret = self.signing()?;
        let stored = self.load_ring().await?.map(|r| r.digest());
        if stored.as_deref() != base {
            return Err(Error::Conflict(
                "AWSCURRENT is no longer the ring this change was derived from".into(),
            ));
        }
        let token = direct_write_token(base);
        let (_, versions) = self.describe(secret).await?;
        if versions.contains_key(&token) {
            return Err(Error::Conflict(
                "another writer already replaced this ring".into(),
            ));
        }
        self.put_ring(secret, &token, ring, &[CURRENT]).await?;
        for (version, stages) in &versions {
            if stages.iter().any(|s| s == PENDING) {
                tracing::warn!(
                    version,
                    "discarding the pending rotation: the ring it derives from was replaced"
                );
                self.move_stage(secret, PENDING, None, Some(version))
                    .await?;
            }
        }
        Ok(())
    }

    async fn stage(&self, id: &str) -> Result<Stage> {
        let (_, versions) = self.describe(self.signing()?).await?;
        let stages = versions.get(id);
        let has = |label: &str| stages.is_some_and(|s| s.iter().any(|x| x == label));
        Ok(if has(CURRENT) {
            Stage::Current
        } else if has(PENDING) {
            Stage::Pending
        } else {
            Stage::Unknown
        })
    }

    async fn load_pending(&self, id: &str) -> Result<Option<RingState>> {
        self.ring(self.signing()?, PENDING, Some(id)).await
    }

    async fn load_any_pending(&self) -> Result<Option<RingState>> {
        self.ring(self.signing()?, PENDING, None).await
    }

    async fn put_pending(&self, id: &str, ring: &RingState) -> Result<()> {
        self.put_ring(self.signing()?, id, ring, &[PENDING]).await
    }

    async fn promote(&self, id: &str, base: Option<&str>) -> Result<()> {
        let secret = self.signing()?;
        let stored = self.load_ring().await?.map(|r| r.digest());
        if stored.as_deref() != base {
            return Err(Error::Conflict(
                "AWSCURRENT is no longer the ring the pending ring derives from".into(),
            ));
        }
        let (_, versions) = self.describe(secret).await?;
        let current = versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
            .map(|(version, _)| version.as_str());
        self.move_stage(secret, CURRENT, Some(id), current).await?;
        // Leaving AWSPENDING on the new current version blocks the next rotation (moto refuses
        // it); removing it is harmless on AWS.
        self.move_stage(secret, PENDING, None, Some(id)).await
    }

    /// Secrets Manager has no conditional write, so the basis is checked both before and after
    /// the write. A writer that overtook this one in between (only rotate-keys may write, so
    /// another of its invocations) is then seen afterwards, and the conflict makes the protocol
    /// republish from the ring as it is now: a stale set can be visible for a round trip, never
    /// left behind.
    async fn publish(&self, basis: &Basis, set: &PublicKeySet) -> Result<()> {
        self.check_basis(basis, self.load_public().await?.as_ref())
            .await?;
        let json = String::from_utf8(set.to_json()).map_err(|_| Error::Crypto("set encoding"))?;
        self.client
            .put_secret_value()
            .secret_id(&self.public_secret)
            .secret_string(json)
            .send()
            .await
            .map_err(unavailable)?;
        // The set is ours now; only the rings can have moved.
        self.check_basis(basis, basis.published.as_ref()).await
    }
}

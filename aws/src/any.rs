use crate::SecretsManagerStore;
use chat_auth_host::FileStore;
use chat_auth_shared::config::StoreConfig;
use chat_auth_shared::store::{Basis, KeyStore, PublicKeySource, RingSource, Stage};
use chat_auth_shared::{PublicKeySet, Result, RingState};

/// The store a function binary runs with: Secrets Manager when
/// `CHAT_AUTH_PUBLIC_KEYS_SECRET_ID` is set, else the file store (under a local Lambda runtime).
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// On Lambda: the two secrets, each function reading only the one its IAM role allows.
    SecretsManager(SecretsManagerStore),
    /// Under a local Lambda runtime, so that the functions run with no AWS account.
    File(FileStore),
}

impl AnyStore {
    /// Opens the configured store; the signing secret only `with_signing` (verifying functions
    /// never get the private ring, even when it is configured).
    pub async fn open(config: &StoreConfig, with_signing: bool) -> Result<Self> {
        match config {
            StoreConfig::SecretsManager {
                public, signing, ..
            } => {
                let signing = match (with_signing, signing) {
                    (false, _) => None,
                    (true, Some(signing)) => Some(signing.clone()),
                    (true, None) => {
                        return Err(chat_auth_shared::Error::Config {
                            var: "CHAT_AUTH_SIGNING_SECRET_ID",
                            reason: "is required with CHAT_AUTH_PUBLIC_KEYS_SECRET_ID".into(),
                        });
                    }
                };
                let client = SecretsManagerStore::client_from_env().await;
                Ok(AnyStore::SecretsManager(SecretsManagerStore::new(
                    client,
                    signing,
                    public.clone(),
                )))
            }
            StoreConfig::Files(dir) => Ok(AnyStore::File(FileStore::open(dir)?)),
        }
    }
}

/// Calls the same method on whichever store this is.
macro_rules! either {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::SecretsManager($s) => $call.await,
            AnyStore::File($s) => $call.await,
        }
    };
}

impl RingSource for AnyStore {
    async fn load_ring(&self) -> Result<Option<RingState>> {
        either!(self, s => s.load_ring())
    }
}

impl PublicKeySource for AnyStore {
    async fn load_public(&self) -> Result<Option<PublicKeySet>> {
        either!(self, s => s.load_public())
    }
}

impl KeyStore for AnyStore {
    async fn save_ring(&self, base: Option<&str>, ring: &RingState) -> Result<()> {
        either!(self, s => s.save_ring(base, ring))
    }

    async fn publish(&self, basis: &Basis, set: &PublicKeySet) -> Result<()> {
        either!(self, s => s.publish(basis, set))
    }

    async fn stage(&self, id: &str) -> Result<Stage> {
        either!(self, s => s.stage(id))
    }

    async fn load_pending(&self, id: &str) -> Result<Option<RingState>> {
        either!(self, s => s.load_pending(id))
    }

    async fn load_any_pending(&self) -> Result<Option<RingState>> {
        either!(self, s => s.load_any_pending())
    }

    async fn put_pending(&self, id: &str, ring: &RingState) -> Result<()> {
        either!(self, s => s.put_pending(id, ring))
    }

    async fn promote(&self, id: &str, base: Option<&str>) -> Result<()> {
        either!(self, s => s.promote(id, base))
    }
}

use crate::SecretsManagerStore;
use chat_auth::store::{FileStore, KeyStore, PublicKeySource, RingSource};
use chat_auth::{PublicKeySet, Result, RingState};

/// The store a function binary runs with: Secrets Manager when
/// `CHAT_AUTH_PUBLIC_KEYS_SECRET_ID` is set, else the file store (standalone local runs).
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// Secrets Manager.
    SecretsManager(SecretsManagerStore),
    /// A data directory.
    File(FileStore),
}

impl AnyStore {
    /// Reads `CHAT_AUTH_SIGNING_SECRET_ID` (only when `with_signing`: verifying functions never
    /// get the private ring), `CHAT_AUTH_PUBLIC_KEYS_SECRET_ID` and, without them,
    /// `CHAT_AUTH_DATA_DIR`.
    pub async fn from_env(with_signing: bool) -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        match var("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID") {
            Some(public) => {
                let signing = if with_signing {
                    Some(
                        var("CHAT_AUTH_SIGNING_SECRET_ID").ok_or(chat_auth::Error::Config {
                            var: "CHAT_AUTH_SIGNING_SECRET_ID",
                            reason: "is required with CHAT_AUTH_PUBLIC_KEYS_SECRET_ID".into(),
                        })?,
                    )
                } else {
                    None
                };
                let client = SecretsManagerStore::client_from_env().await;
                Ok(AnyStore::SecretsManager(SecretsManagerStore::new(
                    client, signing, public,
                )))
            }
            None => Ok(AnyStore::File(FileStore::open(
                var("CHAT_AUTH_DATA_DIR").unwrap_or_else(|| ".chat-auth".into()),
            )?)),
        }
    }
}

impl RingSource for AnyStore {
    async fn load_ring(&self) -> Result<Option<RingState>> {
        match self {
            AnyStore::SecretsManager(s) => s.load_ring().await,
            AnyStore::File(s) => s.load_ring().await,
        }
    }
}

impl PublicKeySource for AnyStore {
    async fn load_public(&self) -> Result<Option<PublicKeySet>> {
        match self {
            AnyStore::SecretsManager(s) => s.load_public().await,
            AnyStore::File(s) => s.load_public().await,
        }
    }
}

impl KeyStore for AnyStore {
    async fn save_ring(&self, expected: Option<u64>, ring: &RingState) -> Result<()> {
        match self {
            AnyStore::SecretsManager(s) => s.save_ring(expected, ring).await,
            AnyStore::File(s) => s.save_ring(expected, ring).await,
        }
    }

    async fn publish(&self, set: &PublicKeySet) -> Result<()> {
        match self {
            AnyStore::SecretsManager(s) => s.publish(set).await,
            AnyStore::File(s) => s.publish(set).await,
        }
    }
}

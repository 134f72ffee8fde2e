//! AWS adapters for omnichannel-chat-auth.
//!
//! [`SecretsManagerStore`] keeps the private ring in the signing secret (one ring state per
//! secret version) and the published set in a second secret; [`rotation`] implements Secrets
//! Manager's four-step rotation protocol over them. [`AnyStore`] lets a function binary pick
//! Secrets Manager or the file store from its configuration. In KMS custody, [`kms`] signs for
//! mint-token and makes and withdraws the ring's KMS keys for rotation.
#![deny(missing_docs)]

mod any;
mod error;
pub mod kms;
pub mod rotation;
mod secrets;

pub use any::AnyStore;
pub use error::RotationError;
pub use secrets::SecretsManagerStore;

use chat_auth_shared::config::{Custody, RingConfig, StoreConfig};
use chat_auth_shared::{Lifecycle, claims::RemoteSigner};
use std::sync::Arc;

/// The standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`), read once per
/// process: Secrets Manager's and KMS's clients share it.
pub async fn sdk_config() -> &'static aws_config::SdkConfig {
    static CONFIG: tokio::sync::OnceCell<aws_config::SdkConfig> =
        tokio::sync::OnceCell::const_new();
    CONFIG
        .get_or_init(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest()))
        .await
}

/// The ring's rules with the keys' custody: fresh keys in the ring, or made in KMS.
pub async fn lifecycle(
    ring: &RingConfig,
    store: &StoreConfig,
) -> chat_auth_shared::Result<Lifecycle> {
    match store {
        StoreConfig::SecretsManager {
            custody:
                Custody::Kms {
                    stack_tag,
                    signer_role,
                    rotator_role,
                },
            ..
        } => {
            let required = |value: &Option<String>, var: &'static str| {
                value.clone().ok_or(chat_auth_shared::Error::Config {
                    var,
                    reason: "is required with CHAT_AUTH_KEY_CUSTODY=kms".into(),
                })
            };
            let roles = kms::KeyRoles {
                signer: required(signer_role, "CHAT_AUTH_KMS_SIGNER_ROLE_ARN")?,
                rotator: required(rotator_role, "CHAT_AUTH_KMS_ROTATOR_ROLE_ARN")?,
            };
            let stack = required(stack_tag, "CHAT_AUTH_KMS_STACK_TAG")?;
            let custody =
                kms::KmsCustody::new(aws_sdk_kms::Client::new(sdk_config().await), stack, roles)?;
            Ok(Lifecycle::in_custody(ring.ring_policy(), Arc::new(custody)))
        }
        _ => Ok(ring.lifecycle()),
    }
}

/// mint-token's signer for keys in KMS. Built whatever the configured custody, whenever the ring
/// is in Secrets Manager: a ring changes custody key by key as rotations replace its keys, so
/// after a switch either way it may hold keys of both kinds for a rotation period or two.
pub async fn remote_signer(store: &StoreConfig) -> Option<Arc<dyn RemoteSigner>> {
    match store {
        StoreConfig::SecretsManager { .. } => {
            let client = aws_sdk_kms::Client::new(sdk_config().await);
            Some(Arc::new(kms::KmsSigner::new(client)))
        }
        StoreConfig::Files(_) => None,
    }
}

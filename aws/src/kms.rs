//! KMS custody (`CHAT_AUTH_KEY_CUSTODY=kms`): each ring key is an AWS KMS RSA_2048 signing key.
//! mint-token signs through [`KmsSigner`] and never holds private material; rotate-keys makes
//! and withdraws keys through [`KmsCustody`], which may not sign (the template grants `kms:Sign`
//! to mint-token alone).
//!
//! A key is found again by its tags, not by an alias: `CreateKey` cannot create an alias with
//! the key, so a crash between the two calls would leave a key that a retry cannot find by name.
//! Every key carries `chat-auth:stack` (the only keys this stack may touch), `chat-auth:rotation`
//! (`<change id>/<n>`: a retried step finds the key its first run made) and `chat-auth:created`
//! (the ring clock, for the grace that protects changes in flight from a withdrawal,
//! `chat_auth_shared::ring::CUSTODY_GRACE`).

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, MessageType, SigningAlgorithmSpec, Tag};
use chat_auth_shared::claims::RemoteSigner;
use chat_auth_shared::keys::{KeyTimes, StoredKey};
use chat_auth_shared::ring::{BoxFuture, KeyCustody, withdrawable};
use chat_auth_shared::{Error, Result, RingState};
use std::collections::HashMap;

/// The tag naming the stack a key belongs to.
pub const STACK_TAG: &str = "chat-auth:stack";
/// The tag naming the ring change (`<id>/<n>`) that made a key.
pub const CHANGE_TAG: &str = "chat-auth:rotation";
/// The tag holding when (ring clock, unix seconds) a key was made.
pub const CREATED_TAG: &str = "chat-auth:created";
/// The pending window of a withdrawn key. AWS's default rather than its 7-day minimum: nothing
/// can need a withdrawn key, but a month leaves time to cancel a deletion made by mistake.
pub const DELETION_WINDOW_DAYS: i32 = 30;

/// mint-token's signer: `kms:Sign` with a raw message and RSASSA-PKCS1-v1_5 SHA-256, which is
/// exactly RS256. Raw, not a digest: the message is the JWT's signing input, far under KMS's
/// 4,096-byte limit, and KMS hashes it itself.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: Client,
}

impl KmsSigner {
    /// A signer over `client`.
    pub fn new(client: Client) -> Self {
        KmsSigner { client }
    }
}

impl RemoteSigner for KmsSigner {
    fn sign<'a>(
        &'a self,
        key_ref: &'a str,
        message: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>>> + Send + 'a>> {
        Box::pin(async move {
            let out = self
                .client
                .sign()
                .key_id(key_ref)
                .message(Blob::new(message))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
                .send()
                .await
                .map_err(kms_error)?;
            out.signature
                .map(Blob::into_inner)
                .ok_or_else(|| service_error(false, "KMS answered Sign with no signature"))
        })
    }
}

/// Every KMS failure becomes [`Error::KeyService`]: throttling by its code, anything else as
/// unavailable. The SDK's error (which names the key, never key material) goes to the logs only.
fn kms_error<E, R>(e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let throttled = matches!(
        e.code(),
        Some("ThrottlingException" | "LimitExceededException")
    );
    Error::KeyService {
        throttled,
        source: Box::new(e),
    }
}

fn service_error(throttled: bool, why: &str) -> Error {
    Error::KeyService {
        throttled,
        source: why.into(),
    }
}

/// The principals a key's own policy names.
#[derive(Debug, Clone)]
pub struct KeyRoles {
    /// mint-token's role: the only principal that may sign.
    pub signer: String,
    /// rotate-keys' role: reads, disables and schedules the deletion of keys, and may replace
    /// the policy (KMS refuses a policy that would lock its creator out).
    pub rotator: String,
}

/// Administration the account keeps over every key, listed action by action as the template's
/// signing-secret key does: no `kms:Sign`, so that no IAM policy in the account (not even
/// `AdministratorAccess`) lets anyone but mint-token sign; an administrator who rewrites the
/// policy (`kms:PutKeyPolicy`) is still trusted (docs/deploy.md, "What you still trust").
const ACCOUNT_ACTIONS: [&str; 13] = [
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:ListKeyPolicies",
    "kms:PutKeyPolicy",
    "kms:GetPublicKey",
    "kms:UpdateKeyDescription",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
];

impl KeyRoles {
    /// The key policy of every key rotation creates. Written with serde_json, not a policy
    /// crate: no maintained Rust crate models IAM policy documents.
    pub fn key_policy(&self) -> Result<String> {
        // arn:PARTITION:iam::ACCOUNT:role/NAME -> arn:PARTITION:iam::ACCOUNT:root
        let parts: Vec<&str> = self.signer.split(':').collect();
        let [arn, partition, "iam", "", account, _] = parts.as_slice() else {
            return Err(Error::Config {
                var: "CHAT_AUTH_KMS_SIGNER_ROLE_ARN",
                reason: "is not an IAM role ARN".into(),
            });
        };
        let root = format!("{arn}:{partition}:iam::{account}:root");
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersButCannotSign",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": ACCOUNT_ACTIONS,
                    "Resource": "*"
                },
                {
                    "Sid": "OnlyMintTokenSigns",
                    "Effect": "Allow",
                    "Principal": {"AWS": self.signer},
                    "Action": "kms:Sign",
                    "Resource": "*",
                    "Condition": {"StringEquals": {
                        "kms:SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256",
                        "kms:MessageType": "RAW"
                    }}
                },
                {
                    "Sid": "RotateKeysWithdraws",
                    "Effect": "Allow",
                    "Principal": {"AWS": self.rotator},
                    "Action": [
                        "kms:DescribeKey",
                        "kms:GetPublicKey",
                        "kms:ListResourceTags",
                        "kms:DisableKey",
                        "kms:ScheduleKeyDeletion",
                        "kms:PutKeyPolicy"
                    ],
                    "Resource": "*"
                }
            ]
        });
        Ok(policy.to_string())
    }
}

/// rotate-keys' custody: makes keys tagged for this stack under a policy that lets only
/// mint-token sign, confirms them, and withdraws those no ring uses.
#[derive(Debug, Clone)]
pub struct KmsCustody {
    client: Client,
    stack: String,
    policy: String,
}

impl KmsCustody {
    /// Keys tagged `chat-auth:stack=stack`, under the key policy `roles` make.
    pub fn new(client: Client, stack: String, roles: KeyRoles) -> Result<Self> {
        Ok(KmsCustody {
            client,
            stack,
            policy: roles.key_policy()?,
        })
    }

    /// Every key of this stack with its tags. ListKeys has no tag filter (the Resource Groups
    /// Tagging API has one, at the price of another SDK and grant), so each key's tags are
    /// read; a key whose tags IAM does not let this stack read is not this stack's.
    pub async fn stack_keys(&self) -> Result<Vec<(String, HashMap<String, String>)>> {
        let mut keys = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_keys()
                .set_marker(marker)
                .send()
                .await
                .map_err(kms_error)?;
            for entry in page.keys() {
                let Some(arn) = entry.key_arn() else { continue };
                let tags = match self.client.list_resource_tags().key_id(arn).send().await {
                    Ok(out) => out
                        .tags()
                        .iter()
                        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
                        .collect::<HashMap<_, _>>(),
                    Err(e) if e.code() == Some("AccessDeniedException") => continue,
                    Err(e) => return Err(kms_error(e)),
                };
                if tags.get(STACK_TAG) == Some(&self.stack) {
                    keys.push((arn.to_owned(), tags));
                }
            }
            marker = page.next_marker().map(str::to_owned);
            if !page.truncated() || marker.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The key's id and state. The id, not the ARN, is what [`KmsCustody::retire`] passes on:
    /// AWS takes either, moto 5.2.6's DisableKey and ScheduleKeyDeletion only the id.
    async fn state(&self, arn: &str) -> Result<Option<(String, KeyState)>> {
        let out = self
            .client
            .describe_key()
            .key_id(arn)
            .send()
            .await
            .map_err(kms_error)?;
        Ok(out
            .key_metadata
            .and_then(|m| Some((m.key_id().to_owned(), m.key_state?))))
    }

    async fn public_key(&self, arn: &str) -> Result<Vec<u8>> {
        let out = self
            .client
            .get_public_key()
            .key_id(arn)
            .send()
            .await
            .map_err(kms_error)?;
        out.public_key
            .map(Blob::into_inner)
            .ok_or_else(|| service_error(false, "KMS answered GetPublicKey with no key"))
    }

    /// Disables `arn` at once (it can sign nothing from then on), then schedules its deletion.
    /// Returns false when it was already pending deletion.
    async fn retire(&self, arn: &str) -> Result<bool> {
        let (id, state) = match self.state(arn).await? {
            Some((_, KeyState::PendingDeletion)) | None => return Ok(false),
            Some(known) => known,
        };
        if state == KeyState::Enabled {
            self.client
                .disable_key()
                .key_id(&id)
                .send()
                .await
                .map_err(kms_error)?;
        }
        self.client
            .schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send()
            .await
            .map_err(kms_error)?;
        Ok(true)
    }

    fn tag(key: &str, value: impl Into<String>) -> Result<Tag> {
        Tag::builder()
            .tag_key(key)
            .tag_value(value)
            .build()
            .map_err(|e| service_error(false, &e.to_string()))
    }
}

impl KeyCustody for KmsCustody {
    fn create<'a>(&'a self, id: &'a str, n: usize, times: KeyTimes, now: i64) -> BoxFuture<'a> {
        Box::pin(async move {
            let change = format!("{id}/{n}");
            let mut made = None;
            for (arn, tags) in self.stack_keys().await? {
                if tags.get(CHANGE_TAG) == Some(&change)
                    && matches!(self.state(&arn).await?, Some((_, KeyState::Enabled)))
                {
                    tracing::info!(change, arn, "the key this change made before is reused");
                    made = Some(arn);
                    break;
                }
            }
            let arn = match made {
                Some(arn) => arn,
                None => {
                    let out = self
                        .client
                        .create_key()
                        .key_spec(KeySpec::Rsa2048)
                        .key_usage(KeyUsageType::SignVerify)
                        .description(format!("chat-auth signing key, stack {}", self.stack))
                        .policy(&self.policy)
                        .tags(Self::tag(STACK_TAG, &self.stack)?)
                        .tags(Self::tag(CHANGE_TAG, &change)?)
                        .tags(Self::tag(CREATED_TAG, now.to_string())?)
                        .send()
                        .await
                        .map_err(kms_error)?;
                    let arn = out.key_metadata.and_then(|m| m.arn).ok_or_else(|| {
                        service_error(false, "KMS answered CreateKey with no ARN")
                    })?;
                    tracing::info!(change, arn, "key created in KMS");
                    arn
                }
            };
            let spki = self.public_key(&arn).await?;
            StoredKey::in_kms(arn, spki, times)
        })
    }

    fn confirm<'a>(&'a self, key: &'a StoredKey) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let failed = |why: String| Error::Rotation(format!("testSecret failed: {why}"));
            let arn = key
                .kms_key()
                .ok_or_else(|| failed(format!("key {} is not in KMS", key.kid)))?;
            let state = self.state(arn).await?.map(|(_, state)| state);
            if state != Some(KeyState::Enabled) {
                return Err(failed(format!("KMS key {arn} is {state:?}, not enabled")));
            }
            if self.public_key(arn).await? != key.spki()? {
                return Err(failed(format!(
                    "KMS key {arn} has another public key than the ring's {}",
                    key.kid
                )));
            }
            Ok(())
        })
    }

    fn withdraw<'a>(
        &'a self,
        keep: &'a [&'a RingState],
        revoked: &'a [String],
        now: i64,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let held: Vec<(String, Option<i64>)> = self
                .stack_keys()
                .await?
                .into_iter()
                .map(|(arn, tags)| {
                    let made = tags.get(CREATED_TAG).and_then(|t| t.parse().ok());
                    (arn, made)
                })
                .collect();
            let mut withdrawn = Vec::new();
            for arn in withdrawable(&held, keep, revoked, now) {
                if self.retire(&arn).await? {
                    withdrawn.push(arn);
                }
            }
            Ok(withdrawn)
        })
    }
}

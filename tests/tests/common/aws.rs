//! What the AWS tests share beyond the harness's peers: the secrets and the issuer they use, the
//! environment they give the real function binaries, and checks against the published set.

pub use chat_auth_harness::apigw::{get_public_keys as public_keys_event, response_body};
pub use chat_auth_harness::lambda::{Function, LambdaRuntime};
pub use chat_auth_harness::moto::Moto;
use std::process::Stdio;

/// The issuer the AWS tests mint with.
pub const ISSUER: &str = "contosohelp.com";

fn issuer_config() -> chat_auth_shared::TokenPolicy {
    use chat_auth_shared::Section;
    chat_auth_shared::TokenPolicy::from_lookup(|k| {
        (k == "CHAT_AUTH_ISSUER").then(|| ISSUER.to_owned())
    })
    .unwrap()
}

/// A token signed now by the store's current key.
pub async fn mint_now(
    store: &chat_auth_aws::SecretsManagerStore,
) -> chat_auth_shared::claims::MintedToken {
    use chat_auth_shared::store::RingSource;
    let ring = store.load_ring().await.unwrap().expect("a ring is current");
    let claims = issuer_config()
        .claims(
            "contact-1",
            &chat_auth_shared::CustomContext::new(),
            chat_auth_shared::time::now(),
        )
        .unwrap();
    chat_auth_shared::claims::mint(&ring.load().unwrap().signer, &claims).unwrap()
}

/// Every token verifies against what is published right now.
pub async fn assert_nothing_lost(
    store: &chat_auth_aws::SecretsManagerStore,
    tokens: &[chat_auth_shared::claims::MintedToken],
    when: &str,
) {
    use chat_auth_shared::store::PublicKeySource;
    let set = store
        .load_public()
        .await
        .unwrap()
        .expect("a set is published");
    let keys = set.render().unwrap().keys;
    for t in tokens {
        let report = chat_auth_shared::config::validator(&issuer_config()).validate(
            &t.token,
            &keys,
            chat_auth_shared::time::now(),
        );
        assert!(
            report.is_active(),
            "{when}: token of {} lost: {:?}",
            t.kid,
            report.problems
        );
    }
}

/// The signing and public secrets the AWS tests create.
pub const SIGNING: &str = "chat-auth/signing";
/// See [`SIGNING`].
pub const PUBLIC: &str = "chat-auth/public";

/// moto with both secrets (placeholders, as the template creates them), a registered rotation
/// function, and a store over them; returns the function's ARN too.
pub async fn provisioned() -> (Moto, chat_auth_aws::SecretsManagerStore, String) {
    let moto = Moto::start(Stdio::null()).await;
    let arn = provision(&moto).await;
    let store =
        chat_auth_aws::SecretsManagerStore::new(moto.client(), Some(SIGNING.into()), PUBLIC.into());
    (moto, store, arn)
}

/// The two secrets as the template creates them, with placeholder `{}` values.
pub async fn create_secrets(moto: &Moto, signing: &str, public: &str) {
    for name in [signing, public] {
        moto.create_secret(name, "{}").await;
    }
}

/// Both secrets and a registered rotation function, on `moto`; the function's ARN.
pub async fn provision(moto: &Moto) -> String {
    create_secrets(moto, SIGNING, PUBLIC).await;
    moto.register_rotation_lambda()
}

/// The ring rules of the AWS tests: 30-day period, and `next` may sign at once (these tests
/// rotate seconds apart; the waiting rule has its own tests).
pub fn life() -> chat_auth_shared::Lifecycle {
    chat_auth_shared::Lifecycle::new(chat_auth_shared::RingPolicy::new(30 * 86_400, 0, 0, 0, 30))
}

/// The function environment the AWS tests give the real binaries: `moto`'s endpoint and
/// credentials, both secrets, the issuer, the contact-id subject, the region context claim and
/// the Entra fixture's client as a listed `/issue` client.
/// Rotations in these tests are seconds apart, so keys may sign as soon as they are published.
pub fn lambda_env(moto: &Moto) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.extend(
        [
            ("CHAT_AUTH_SIGNING_SECRET_ID", SIGNING),
            ("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID", PUBLIC),
            ("CHAT_AUTH_ISSUER", ISSUER),
            ("CHAT_AUTH_SUBJECT_CLAIM", "contact_id"),
            ("CHAT_AUTH_CONTEXT_CLAIMS", "msdyn_region=region"),
            ("CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS", "0"),
            (
                "CHAT_AUTH_ISSUE_CLIENTS",
                "6e3a9a5c-1b1e-4d7e-9c2f-0b8a3f1d2c11",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// Secrets Manager's rotation event for `step` of rotation `token` on the signing secret.
pub fn rotation_event(step: chat_auth_shared::store::Step, token: &str) -> serde_json::Value {
    serde_json::json!({"Step": step.as_str(), "SecretId": SIGNING, "ClientRequestToken": token})
}

/// A rotation run to the end by the real rotate-keys: each of the four steps once, each
/// answered without error.
pub async fn rotate_fully(rotate: &Function, token: &str) {
    for step in chat_auth_shared::store::STEPS {
        let out = rotate.invoke(&rotation_event(step, token)).await;
        assert!(out.is_ok(), "{step}: {out:?}");
    }
}

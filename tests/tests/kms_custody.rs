//! GIVEN KMS custody (`CHAT_AUTH_KEY_CUSTODY=kms`) on moto's Secrets Manager and KMS through the
//! real SDK, WHEN the real rotate-keys, mint-token and public-keys binaries run under
//! cargo-lambda's Lambda runtime (and the rotation runs in-process where the test must move the
//! clock), THEN every token verifies with PyJWT against the published documents and its kid is a
//! KMS key's, a retried or crashed createSecret makes one key, a revoked key is disabled and
//! never signs or appears again, unused keys are scheduled for deletion and held ones never, and
//! no version of any secret holds private key material.
//!
//! moto 5.2.6 signs with a disabled key and one pending deletion, so key states are read with
//! DescribeKey rather than waited for as refusals (docs/testing.md, "moto's KMS").

use crate::common::aws::{
    LambdaRuntime, PUBLIC, SIGNING, lambda_env, provisioned, public_keys_event, response_body,
    rotate_fully, rotation_event,
};
use aws_sdk_kms::types::{KeyState, Tag};
use chat_auth_aws::SecretsManagerStore;
use chat_auth_aws::kms::{CHANGE_TAG, CREATED_TAG, KeyRoles, KmsCustody, STACK_TAG};
use chat_auth_aws::rotation::Rotator;
use chat_auth_harness::moto::Moto;
use chat_auth_shared::keys::{Material, StoredKey};
use chat_auth_shared::store::{PublicKeySource, RingSource, STEPS};
use chat_auth_shared::{Lifecycle, RingPolicy, RingState};
use serde_json::{Value, json};
use std::sync::Arc;

const STACK: &str = "chat-auth-test";
const DAY: i64 = 86_400;

const SIGNER: &str = "arn:aws:iam::123456789012:role/chat-auth-test-MintTokenFunctionRole";
const ROTATOR: &str = "arn:aws:iam::123456789012:role/chat-auth-test-RotateKeysFunctionRole";

fn kms_env(moto: &Moto) -> Vec<(String, String)> {
    let mut env = lambda_env(moto);
    for (k, v) in [
        ("CHAT_AUTH_KEY_CUSTODY", "kms"),
        ("CHAT_AUTH_KMS_STACK_TAG", STACK),
        ("CHAT_AUTH_KMS_SIGNER_ROLE_ARN", SIGNER),
        ("CHAT_AUTH_KMS_ROTATOR_ROLE_ARN", ROTATOR),
    ] {
        env.push((k.into(), v.into()));
    }
    env
}

fn roles() -> KeyRoles {
    KeyRoles {
        signer: SIGNER.into(),
        rotator: ROTATOR.into(),
    }
}

fn custody(moto: &Moto, stack: &str) -> KmsCustody {
    KmsCustody::new(moto.kms_client(), stack.into(), roles()).unwrap()
}

/// Who the key policy of `arn` lets do what: its statements' principals with their actions.
async fn policy_grants(moto: &Moto, arn: &str) -> Vec<(String, Vec<String>)> {
    let policy = moto
        .kms_client()
        .get_key_policy()
        .key_id(arn)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let strings = |v: &Value| match v {
        Value::String(s) => vec![s.clone()],
        v => v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    };
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Principal"]["AWS"].as_str().unwrap().to_owned(),
                strings(&s["Action"]),
            )
        })
        .collect()
}

async fn current_ring(store: &SecretsManagerStore) -> RingState {
    store.load_ring().await.unwrap().expect("a ring is current")
}

/// Each stack key's ARN.
async fn stack_keys(moto: &Moto) -> Vec<String> {
    let keys = custody(moto, STACK).stack_keys().await.unwrap();
    keys.into_iter().map(|(arn, _)| arn).collect()
}

/// A key's state and, when pending deletion, the days until it is deleted.
async fn state(moto: &Moto, arn: &str) -> (KeyState, Option<i64>) {
    let meta = moto
        .kms_client()
        .describe_key()
        .key_id(arn)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let days = meta
        .deletion_date()
        .map(|d| (d.secs() - chat_auth_shared::time::now()) / DAY);
    (meta.key_state().unwrap().clone(), days)
}

async fn assert_withdrawn(moto: &Moto, arn: &str, what: &str) {
    let (state, days) = state(moto, arn).await;
    assert_eq!(state, KeyState::PendingDeletion, "{what} {arn}");
    // The window is at least AWS's 7-day minimum (moto would accept less).
    assert!(
        days.is_some_and(|d| d >= 7),
        "{what} {arn}: deleted in {days:?} days"
    );
}

/// A key as `KmsCustody` makes it, made by the test: a crashed first attempt of `change`, an
/// orphan, or another stack's key.
async fn make_key(moto: &Moto, stack: &str, change: &str, made: i64) -> String {
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    moto.kms_client()
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .policy(roles().key_policy().unwrap())
        .tags(tag(STACK_TAG, stack))
        .tags(tag(CHANGE_TAG, change))
        .tags(tag(CREATED_TAG, &made.to_string()))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap()
}

/// Every version of both secrets, searched for private key material: none may hold any, and
/// every ring key must be a KMS key.
async fn assert_no_private_material(moto: &Moto) {
    let client = moto.client();
    let mut versions = 0;
    for secret in [SIGNING, PUBLIC] {
        let listed = client
            .list_secret_version_ids()
            .secret_id(secret)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        for version in listed.versions() {
            let value = client
                .get_secret_value()
                .secret_id(secret)
                .version_id(version.version_id().unwrap())
                .send()
                .await
                .unwrap();
            let text = value.secret_string().unwrap_or_default();
            versions += 1;
            for needle in ["pkcs8", "PRIVATE KEY", "\"d\"", "\"p\"", "\"q\""] {
                assert!(
                    !text.contains(needle),
                    "{secret} version {:?} holds {needle}",
                    version.version_id()
                );
            }
            if secret == SIGNING && text.len() > 2 {
                let ring: RingState = serde_json::from_str(text).unwrap();
                for key in [&ring.current, &ring.next] {
                    assert!(matches!(key.material, Material::Kms { .. }), "{}", key.kid);
                }
            }
        }
    }
    assert!(versions > 2, "only {versions} versions searched");
}

/// The kid of a compact JWT's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// PyJWT verifies `token` with the multi-key document and with the JWKS public-keys serves.
async fn assert_verifies(lambda: &LambdaRuntime, env: &[(String, String)], token: &str) {
    let keys_fn = lambda.run("public-keys", env, std::process::Stdio::inherit());
    for path in ["/public-key", "/.well-known/jwks.json"] {
        let doc = keys_fn.invoke(&public_keys_event(path)).await.unwrap();
        assert_eq!(doc["statusCode"], 200, "{doc}");
        let body = response_body(&doc).unwrap();
        let claims =
            chat_auth_harness::pyjwt::verify(token, body.as_bytes(), crate::common::aws::ISSUER)
                .unwrap_or_else(|e| panic!("PyJWT refused the KMS-signed token with {path}: {e}"));
        assert_eq!(claims["sub"], "87b4d06c-abc2-e811-a9b0-000d3a10e09e");
    }
}

async fn mint(lambda: &LambdaRuntime, env: &[(String, String)]) -> String {
    let mint_fn = lambda.run("mint-token", env, std::process::Stdio::inherit());
    let response = mint_fn.invoke_fixture("apigw-v2-get-token.json").await;
    assert_eq!(response["statusCode"], 200, "{response}");
    response_body(&response).unwrap()
}

/// A KMS that throttles every request, as KMS answers past the account's RSA quota; its message
/// names a key so that a leak would show.
async fn throttling_kms() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"ThrottlingException","message":"Rate exceeded for arn:aws:kms:us-east-1:1:key/leak"}"#,
        )
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, server)
}

#[tokio::test]
async fn kms_failures_answer_503_with_their_own_code_and_nothing_of_kms() {
    let (moto, _store, arn) = provisioned().await;
    let env = kms_env(&moto);
    let lambda = LambdaRuntime::start(std::process::Stdio::inherit()).await;
    let rotate = lambda.run("rotate-keys", &env, std::process::Stdio::inherit());
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    rotate_fully(&rotate, &token).await;
    let (throttler, _server) = throttling_kms().await;
    let closed = format!("http://127.0.0.1:{}", chat_auth_harness::free_port());
    for (kms, code) in [(throttler, "kms_throttled"), (closed, "kms_unavailable")] {
        // Only KMS moves: the ring still comes from moto's Secrets Manager.
        let mut env = env.clone();
        env.push(("AWS_ENDPOINT_URL_KMS".into(), kms));
        let mint_fn = lambda.run("mint-token", &env, std::process::Stdio::inherit());
        let response = mint_fn.invoke_fixture("apigw-v2-get-token.json").await;
        assert_eq!(response["statusCode"], 503, "{code}: {response}");
        let body = response_body(&response).unwrap();
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
        for leak in ["Rate exceeded", "arn:aws:kms", "127.0.0.1", "Throttling"] {
            assert!(
                !body.contains(leak),
                "{code}: the answer shows {leak:?}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_real_binaries_rotate_sign_in_kms_and_revoke_under_a_lambda_runtime() {
    let (moto, store, arn) = provisioned().await;
    let env = kms_env(&moto);
    let lambda = LambdaRuntime::start(std::process::Stdio::inherit()).await;
    let rotate = lambda.run("rotate-keys", &env, std::process::Stdio::inherit());

    // The first rotation makes the first ring: two keys, however often createSecret runs.
    let first = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in STEPS {
        for _ in 0..2 {
            let out = rotate.invoke(&rotation_event(step, &first)).await;
            assert!(out.is_ok(), "{step}: {out:?}");
        }
    }
    assert_eq!(
        stack_keys(&moto).await.len(),
        2,
        "a first ring holds two keys"
    );

    // A second rotation whose first createSecret crashed after CreateKey: the retry finds that
    // key by its tags and makes no other.
    let second = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    let crashed = make_key(
        &moto,
        STACK,
        &format!("{second}/0"),
        chat_auth_shared::time::now(),
    )
    .await;
    for step in STEPS {
        for _ in 0..2 {
            let out = rotate.invoke(&rotation_event(step, &second)).await;
            assert!(out.is_ok(), "{step}: {out:?}");
        }
    }
    let ring = current_ring(&store).await;
    assert_eq!(
        ring.next.kms_key(),
        Some(crashed.as_str()),
        "the crashed key is reused"
    );
    assert_eq!(stack_keys(&moto).await.len(), 3, "one key per rotation");

    // Every kid is the thumbprint of the public key KMS holds for it.
    let kms = moto.kms_client();
    for key in [&ring.current, &ring.next] {
        let held = key.kms_key().expect("a KMS key");
        let spki = kms.get_public_key().key_id(held).send().await.unwrap();
        let spki = spki.public_key.unwrap().into_inner();
        assert_eq!(
            StoredKey::in_kms(held.into(), spki, key.times).unwrap().kid,
            key.kid
        );
        assert_eq!(state(&moto, held).await.0, KeyState::Enabled);
    }

    // Each key's own policy lets mint-token's role alone sign: the account administers but
    // cannot, and rotate-keys may withdraw but not sign (moto stores the policy; it does not
    // enforce it).
    for held in ring.kms_keys() {
        let grants = policy_grants(&moto, held).await;
        let signers: Vec<&str> = grants
            .iter()
            .filter(|(_, actions)| actions.iter().any(|a| a == "kms:Sign" || a.contains('*')))
            .map(|(principal, _)| principal.as_str())
            .collect();
        assert_eq!(signers, [SIGNER], "{held}: {grants:?}");
        assert!(
            grants
                .iter()
                .any(|(p, a)| p == ROTATOR && a.iter().any(|a| a == "kms:ScheduleKeyDeletion"))
        );
    }

    // mint-token signs through KMS; PyJWT verifies with both published documents.
    let token = mint(&lambda, &env).await;
    assert_eq!(kid_of(&token), ring.current.kid);
    assert_verifies(&lambda, &env, &token).await;

    // An emergency revocation disables the signing key at once and schedules its deletion;
    // the kid is never published again, and a fresh mint-token signs with another key.
    let revoked = ring.current.kid.clone();
    let revoked_key = ring.current.kms_key().unwrap().to_owned();
    let out = rotate
        .invoke(&json!({"emergencyKid": revoked}))
        .await
        .unwrap();
    assert!(out["result"].as_str().unwrap().contains("revoked"), "{out}");
    assert_withdrawn(&moto, &revoked_key, "the revoked key").await;
    let set = store.load_public().await.unwrap().unwrap();
    assert!(set.key(&revoked).is_none() && set.revoked.contains(&revoked));
    let after = mint(&lambda, &env).await;
    assert_ne!(kid_of(&after), revoked);
    assert_verifies(&lambda, &env, &after).await;
    // A later rotation does not bring it back either.
    let third = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    rotate_fully(&rotate, &third).await;
    let ring = current_ring(&store).await;
    assert!(ring.kids().all(|kid| kid != revoked) && ring.is_revoked(&revoked));

    assert_no_private_material(&moto).await;
}

/// The custody's clean-up, with the ring clock moved by the test: a pruned key, an orphan past
/// the grace and a revoked key are scheduled for deletion; held keys, a fresh orphan and another
/// stack's key are not.
#[tokio::test]
async fn unused_kms_keys_are_withdrawn_and_held_ones_never() {
    let (moto, store, arn) = provisioned().await;
    let policy = RingPolicy::new(30 * DAY, 0, 0, 0, 30);
    let life = Lifecycle::in_custody(policy, Arc::new(custody(&moto, STACK)));
    let rotator = Rotator::new(store.clone(), life);
    let start = chat_auth_shared::time::now();
    let rotate_at = async |now: i64| {
        let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
        for step in STEPS {
            rotator.step(SIGNING, &token, step, now).await.unwrap();
        }
    };
    rotate_at(start).await;
    let first = current_ring(&store).await;
    let old_orphan = make_key(&moto, STACK, "crashed/0", start).await;
    let foreign = make_key(&moto, "another-stack", "theirs/0", start).await;

    // The first signing key retires; it stays held (verify-only) while tokens may need it.
    rotate_at(start + 31 * DAY).await;
    let second = current_ring(&store).await;
    assert_eq!(second.retired[0].kid, first.current.kid);
    assert_eq!(
        second.retired[0].kms_key.as_deref(),
        first.current.kms_key()
    );
    let young_orphan = make_key(&moto, STACK, "in-flight/0", start + 62 * DAY).await;
    rotate_at(start + 62 * DAY).await;
    let third = current_ring(&store).await;
    assert!(
        third.retired.iter().all(|k| k.kid != first.current.kid),
        "pruned"
    );

    assert_withdrawn(&moto, first.current.kms_key().unwrap(), "the pruned key").await;
    assert_withdrawn(&moto, &old_orphan, "the orphan past the grace").await;
    for (arn, what) in [
        (&young_orphan, "the fresh orphan"),
        (&foreign, "another stack's key"),
    ] {
        assert_eq!(state(&moto, arn).await.0, KeyState::Enabled, "{what}");
    }
    for held in third.kms_keys() {
        assert_eq!(state(&moto, held).await.0, KeyState::Enabled, "held {held}");
    }
    // A rotation that is deferred (next not yet published) makes no key at all.
    let before = stack_keys(&moto).await.len();
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    let deferred = Rotator::new(
        store.clone(),
        Lifecycle::in_custody(
            RingPolicy::new(30 * DAY, 365 * DAY, 0, 0, 30),
            Arc::new(custody(&moto, STACK)),
        ),
    );
    let outcome = deferred
        .step(SIGNING, &token, STEPS[0], start + 93 * DAY)
        .await
        .unwrap();
    assert!(outcome.unwrap().deferred.is_some());
    assert_eq!(
        stack_keys(&moto).await.len(),
        before,
        "a deferral made a key"
    );
}

/// A stack that changes custody keeps minting through the rotations that replace its keys, in
/// either direction: the ring holds keys of both kinds meanwhile, and mint-token signs with each
/// the way its custody needs.
#[tokio::test]
async fn switching_custody_either_way_keeps_minting() {
    let (moto, store, arn) = provisioned().await;
    let lambda = LambdaRuntime::start(std::process::Stdio::inherit()).await;
    let secret = lambda_env(&moto);
    let kms = kms_env(&moto);
    // In-memory keys first, then two rotations in KMS custody, then back.
    for (env, rotations) in [(&secret, 1), (&kms, 2), (&secret, 1)] {
        let rotate = lambda.run("rotate-keys", env, std::process::Stdio::inherit());
        for _ in 0..rotations {
            let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
            rotate_fully(&rotate, &token).await;
            let ring = current_ring(&store).await;
            let token = mint(&lambda, env).await;
            assert_eq!(kid_of(&token), ring.current.kid);
            assert_verifies(&lambda, env, &token).await;
        }
    }
    // The ring went through both kinds: its current key is a KMS key made two rotations ago
    // (promoted by the rotation back), its next an in-memory one.
    let ring = current_ring(&store).await;
    assert!(ring.current.kms_key().is_some() && ring.next.kms_key().is_none());
}

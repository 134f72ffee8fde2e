//! GIVEN moto's Secrets Manager server reached through the real SDK client, WHEN the key ring
//! is stored and rotated the way Secrets Manager drives rotation (in-process and through the
//! real rotate-keys binary under a Lambda Runtime API emulator), THEN the ring stays consistent,
//! every key that signed a live token stays published, and nothing is lost.

use crate::common;

use crate::common::aws::{
    LambdaRuntime, SIGNING, assert_nothing_lost, lambda_env, life, mint_now, provisioned,
    public_keys_event, response_body, rotate_fully, rotation_event,
};
use chat_auth_aws::SecretsManagerStore;
use chat_auth_aws::rotation::Rotator;
use chat_auth_shared::store::{Basis, KeyStore, PublicKeySource, RingSource};
use chat_auth_shared::store::{STEPS, Step};
use chat_auth_shared::{PublicKeySet, RingState, Section, TokenPolicy};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn config() -> TokenPolicy {
    TokenPolicy::from_lookup(|k| (k == "CHAT_AUTH_ISSUER").then(|| "contosohelp.com".to_owned()))
        .unwrap()
}

async fn current_ring(store: &SecretsManagerStore) -> RingState {
    store.load_ring().await.unwrap().expect("a ring is current")
}

async fn published(store: &SecretsManagerStore) -> PublicKeySet {
    store
        .load_public()
        .await
        .unwrap()
        .expect("a set is published")
}

#[tokio::test]
async fn the_store_reads_placeholders_as_empty_and_compares_before_it_swaps() {
    let (_moto, store, _) = provisioned().await;
    assert!(store.load_ring().await.unwrap().is_none());
    assert!(store.load_public().await.unwrap().is_none());
    let now = chat_auth_shared::time::now();
    let ring = RingState::generate(now, 30 * DAY).unwrap();
    store.save_ring(None, &ring).await.unwrap();
    store
        .publish(
            &Basis::read(&store).await.unwrap(),
            &ring.public_set().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(current_ring(&store).await, ring);
    assert_eq!(published(&store).await, ring.public_set().unwrap());
    let base = ring.digest();
    let a = ring.revoke(&ring.next.kid, None, &life(), now).unwrap();
    let b = ring.revoke(&ring.current.kid, None, &life(), now).unwrap();
    assert!(matches!(
        store.save_ring(None, &a).await,
        Err(chat_auth_shared::Error::Conflict(_))
    ));
    store.save_ring(Some(&base), &a).await.unwrap();
    // A second writer from the same base loses, whatever it wrote.
    assert!(matches!(
        store.save_ring(Some(&base), &b).await,
        Err(chat_auth_shared::Error::Conflict(_))
    ));
    assert_eq!(current_ring(&store).await, a);
}

#[tokio::test]
async fn four_steps_twice_in_a_row_each_step_repeated_keep_every_token_valid() {
    let (moto, store, arn) = provisioned().await;
    let rotator = Rotator::new(store.clone(), life());
    let mut tokens = Vec::new();
    for round in 0..3 {
        let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
        for step in STEPS {
            // Secrets Manager may retry any step: running each twice must change nothing.
            for _ in 0..2 {
                rotator
                    .step(SIGNING, &token, step, chat_auth_shared::time::now())
                    .await
                    .unwrap();
            }
            if round > 0 && step == Step::Set {
                tokens.push(mint_now(&store).await); // minted during the rotation
            }
        }
        let ring = current_ring(&store).await;
        assert_eq!(ring.version, round + 1);
        common::assert_publishes(&published(&store).await, &ring);
        tokens.push(mint_now(&store).await);
        // Every token minted so far, not only the newest.
        assert_nothing_lost(&store, &tokens, "after rotation").await;
        // Finishing again after the fact is a no-op.
        rotator
            .step(SIGNING, &token, Step::Finish, chat_auth_shared::time::now())
            .await
            .unwrap();
    }
    let (_, versions) = store.describe(SIGNING).await.unwrap();
    assert!(!versions.values().flatten().any(|s| s == "AWSPENDING"));
}

#[tokio::test]
async fn a_rotation_that_fails_midway_is_finished_by_the_retry_and_loses_nothing() {
    let (moto, store, arn) = provisioned().await;
    let rotator = Rotator::new(store.clone(), life());
    let first = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in STEPS {
        rotator
            .step(SIGNING, &first, step, chat_auth_shared::time::now())
            .await
            .unwrap();
    }
    let before = mint_now(&store).await;
    let ring_before = current_ring(&store).await;

    // A second rotation stops after setSecret, and someone publishes a set missing the new keys.
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    rotator
        .step(SIGNING, &token, Step::Create, chat_auth_shared::time::now())
        .await
        .unwrap();
    rotator
        .step(SIGNING, &token, Step::Set, chat_auth_shared::time::now())
        .await
        .unwrap();
    store
        .publish(
            &Basis::read(&store).await.unwrap(),
            &ring_before.public_set().unwrap(),
        )
        .await
        .unwrap();
    let err = rotator
        .step(SIGNING, &token, Step::Test, chat_auth_shared::time::now())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("testSecret failed"), "{err}");
    assert_eq!(
        current_ring(&store).await,
        ring_before,
        "a failed test changes nothing"
    );
    assert_nothing_lost(&store, std::slice::from_ref(&before), "after rotation").await;

    // Secrets Manager retries from the start with the same token.
    for step in STEPS {
        rotator
            .step(SIGNING, &token, step, chat_auth_shared::time::now())
            .await
            .unwrap();
    }
    let after = current_ring(&store).await;
    assert_eq!(after.version, ring_before.version + 1);
    assert_eq!(after.current.kid, ring_before.next.kid);
    assert_eq!(after.retired.last().unwrap().kid, ring_before.current.kid);
    assert_nothing_lost(&store, &[before, mint_now(&store).await], "after rotation").await;
}

#[tokio::test]
async fn guards_refuse_unknown_and_non_pending_versions() {
    let (moto, store, arn) = provisioned().await;
    let rotator = Rotator::new(store.clone(), life());
    let err = rotator
        .step(
            SIGNING,
            "00000000-0000-0000-0000-000000000000",
            Step::Create,
            0,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not enabled") || err.to_string().contains("no stage"),
        "{err}"
    );
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    let err = rotator
        .step(
            SIGNING,
            "00000000-0000-0000-0000-000000000000",
            Step::Create,
            0,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no stage"), "{err}");
    let err = rotator
        .step(SIGNING, &token, Step::Set, 0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("createSecret"), "{err}");
}

#[tokio::test]
async fn a_corrupt_ring_is_reported_and_never_overwritten() {
    let (moto, store, arn) = provisioned().await;
    moto.client()
        .put_secret_value()
        .secret_id(SIGNING)
        .secret_string(r#"{"version": 1, "not": "a ring"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.load_ring().await.unwrap_err().code(),
        "key_store_corrupt"
    );
    let rotator = Rotator::new(store.clone(), life());
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    let err = rotator
        .step(SIGNING, &token, Step::Create, 0)
        .await
        .unwrap_err();
    let status = chat_auth_shared::chain(&err);
    assert!(status.contains("does not parse: "), "{status}");
    let value = moto
        .client()
        .get_secret_value()
        .secret_id(SIGNING)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert!(value.secret_string().unwrap().contains("not"));
}

#[tokio::test]
async fn the_real_binaries_rotate_mint_and_publish_under_a_lambda_runtime() {
    let (moto, store, arn) = provisioned().await;
    let env = lambda_env(&moto);
    let lambda = LambdaRuntime::start(std::process::Stdio::inherit()).await;
    let rotate = lambda.run("rotate-keys", &env, std::process::Stdio::inherit());
    for _round in 0..2 {
        let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
        rotate_fully(&rotate, &token).await;
    }
    // A third rotation whose testSecret fails (the published set was rolled back behind the
    // function's back); Secrets Manager retries every step and the ring ends consistent.
    let before = current_ring(&store).await;
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in [Step::Create, Step::Set] {
        rotate.invoke(&rotation_event(step, &token)).await.unwrap();
    }
    store
        .publish(
            &Basis::read(&store).await.unwrap(),
            &before.public_set().unwrap(),
        )
        .await
        .unwrap();
    let failed = rotate
        .invoke(&rotation_event(Step::Test, &token))
        .await
        .unwrap_err();
    assert!(
        failed["errorMessage"]
            .as_str()
            .unwrap()
            .contains("testSecret failed"),
        "{failed}"
    );
    assert_eq!(current_ring(&store).await, before);
    rotate_fully(&rotate, &token).await;
    let ring = current_ring(&store).await;
    assert_eq!(ring.version, 3);
    assert_eq!(ring.retired.last().unwrap().kid, before.current.kid);
    common::assert_publishes(&published(&store).await, &ring);
    let bad = rotate
        .invoke(&json!({"Step": "dance", "SecretId": SIGNING, "ClientRequestToken": "x"}))
        .await;
    assert!(
        bad.unwrap_err()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("invalid step")
    );

    // The mint goes through `cargo lambda invoke` itself, with the API Gateway fixture file.
    let mint_fn = lambda.run("mint-token", &env, std::process::Stdio::inherit());
    let response = mint_fn.invoke_fixture("apigw-v2-get-token.json").await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let token = response_body(&response).unwrap();
    // A backend off AWS: an Entra client-credentials token, as API Gateway's second JWT
    // authorizer passes it on, names the subject.
    let issued = mint_fn
        .invoke_fixture("apigw-v2-post-issue-client-entra.json")
        .await;
    assert_eq!(issued["statusCode"], 200, "{issued}");
    let issued: Value = serde_json::from_str(&response_body(&issued).unwrap()).unwrap();
    let sub = jsonwebtoken::dangerous::insecure_decode::<Value>(issued["token"].as_str().unwrap())
        .unwrap()
        .claims["sub"]
        .clone();
    assert_eq!(sub, "87b4d06c-abc2-e811-a9b0-000d3a10e09e");

    let keys_fn = lambda.run("public-keys", &env, std::process::Stdio::inherit());
    let doc = keys_fn
        .invoke(&public_keys_event("/public-key"))
        .await
        .unwrap();
    assert_eq!(doc["statusCode"], 200, "{doc}");
    let keys = chat_auth_shared::publish::parse_public_key_document(
        doc["body"].as_str().unwrap().as_bytes(),
    )
    .unwrap();
    let report = chat_auth_shared::config::validator(&config()).validate(
        &token,
        &keys,
        chat_auth_shared::time::now(),
    );
    assert!(report.is_active(), "{:?}", report.problems);
    assert_eq!(
        report.to_json()["sub"],
        "87b4d06c-abc2-e811-a9b0-000d3a10e09e"
    );
    assert_eq!(report.to_json()["context"]["msdyn_region"], "EU");

    // Emergency rotation through a manual invoke drops the signing key at once.
    let dropped = ring.current.kid.clone();
    let out = rotate
        .invoke(&json!({"emergencyKid": dropped}))
        .await
        .unwrap();
    assert!(out["result"].as_str().unwrap().contains("revoked"));
    assert!(
        published(&store)
            .await
            .keys
            .iter()
            .all(|k| k.kid != dropped)
    );
}

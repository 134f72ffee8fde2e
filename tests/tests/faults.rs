//! GIVEN the functions on Secrets Manager (moto), WHEN the store is unreachable, corrupt, or a
//! rotation is interrupted at any point or raced, THEN the service fails closed with a clear
//! code, bridges short outages from its cache, and no key that signed a live token is lost.

use crate::common;

use crate::common::aws::{
    Moto, PUBLIC, SIGNING, assert_nothing_lost, create_secrets, life, mint_now, provisioned,
};
use axum::Router;
use chat_auth_aws::SecretsManagerStore;
use chat_auth_aws::rotation::Rotator;
use chat_auth_host::FileStore;
use chat_auth_shared::store::{PublicKeySource, RingSource, ensure_ring, rotate};
use chat_auth_shared::store::{STEPS, Step};
use chat_auth_shared::{Config, RingState, Section};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const GET_TOKEN: &str = include_str!("../fixtures/apigw-v2-get-token.json");

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
            .or_else(|| match k {
                "CHAT_AUTH_ISSUER" => Some("contosohelp.com".into()),
                "CHAT_AUTH_SUBJECT_CLAIM" => Some("contact_id".into()),
                _ => None,
            })
    })
    .unwrap()
}

fn mint_app(config: &Config, store: SecretsManagerStore) -> Router {
    mint_token::lambda_app(&config.into(), store, None)
}

async fn get_token(app: &Router) -> (u16, Value) {
    let request = lambda_http::request::from_str(GET_TOKEN).unwrap();
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

fn dead_endpoint_client() -> aws_sdk_secretsmanager::Client {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

#[tokio::test]
async fn an_unreachable_store_at_cold_start_fails_closed_with_503() {
    let store =
        SecretsManagerStore::new(dead_endpoint_client(), Some(SIGNING.into()), PUBLIC.into());
    let (status, body) = get_token(&mint_app(&config(&[]), store.clone())).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "key_store_unavailable");
    let validate = chat_auth_host::http::finish(validate_token::router(Arc::new(
        validate_token::ValidateState::new(&config(&[]).tokens, &config(&[]).ring.keys, store),
    )));
    let request = http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"token":"a.b.c"}"#))
        .unwrap();
    let response = validate.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn a_warm_signer_bridges_an_outage_up_to_the_signing_stale_cap_then_fails_closed() {
    let moto = Moto::start(std::process::Stdio::null()).await;
    create_secrets(&moto, SIGNING, PUBLIC).await;
    let store = SecretsManagerStore::new(moto.client(), Some(SIGNING.into()), PUBLIC.into());
    ensure_ring(&store, &life(), chat_auth_shared::time::now())
        .await
        .unwrap();
    let app = mint_app(
        &config(&[
            ("CHAT_AUTH_KEY_CACHE_TTL_SECONDS", "0"),
            ("CHAT_AUTH_KEY_STALE_SECONDS", "10"),
            ("CHAT_AUTH_SIGNING_STALE_SECONDS", "3"),
        ]),
        store,
    );
    assert_eq!(get_token(&app).await.0, 200);
    drop(moto); // Secrets Manager goes away.
    let (status, body) = get_token(&app).await;
    assert_eq!(
        status, 200,
        "the cached ring signs within the signing stale cap: {body}"
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (status, body) = get_token(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "key_store_unavailable");
}

#[tokio::test]
async fn a_corrupt_ring_is_a_clear_503_not_a_default_key() {
    let moto = Moto::start(std::process::Stdio::null()).await;
    create_secrets(&moto, SIGNING, PUBLIC).await;
    moto.client()
        .put_secret_value()
        .secret_id(SIGNING)
        .secret_string(r#"{"version": 3, "current": "garbage"}"#)
        .send()
        .await
        .unwrap();
    let store = SecretsManagerStore::new(moto.client(), Some(SIGNING.into()), PUBLIC.into());
    let (status, body) = get_token(&mint_app(&config(&[]), store)).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "key_store_corrupt");
}

#[tokio::test]
async fn every_rotation_step_interrupted_at_each_point_and_rerun_loses_nothing() {
    let (moto, store, arn) = provisioned().await;
    let rotator = Rotator::new(store.clone(), life());
    let first = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in STEPS {
        rotator
            .step(SIGNING, &first, step, chat_auth_shared::time::now())
            .await
            .unwrap();
    }
    let mut tokens = vec![mint_now(&store).await];
    let mut faults = 0;
    // Crash after 0..=3 completed steps, then Secrets Manager retries the whole rotation.
    for crash_after in 0..=3 {
        let before: RingState = store.load_ring().await.unwrap().unwrap();
        // Every token minted so far is unexpired (rotations here are seconds apart), and every
        // one of them must survive, not only the newest.
        let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
        for step in &STEPS[..crash_after] {
            rotator
                .step(SIGNING, &token, *step, chat_auth_shared::time::now())
                .await
                .unwrap();
            tokens.push(mint_now(&store).await);
            assert_nothing_lost(&store, &tokens, &format!("after {step:?}")).await;
        }
        faults += 1;
        for step in STEPS {
            rotator
                .step(SIGNING, &token, step, chat_auth_shared::time::now())
                .await
                .unwrap();
            assert_nothing_lost(&store, &tokens, &format!("retry {step:?}")).await;
        }
        let after = store.load_ring().await.unwrap().unwrap();
        assert_eq!(
            after.version,
            before.version + 1,
            "crash after {crash_after}: exactly one rotation"
        );
        assert_eq!(after.current.kid, before.next.kid);
        common::assert_publishes(&store.load_public().await.unwrap().unwrap(), &after);
        tokens.push(mint_now(&store).await);
        assert_nothing_lost(&store, &tokens, "end of round").await;
    }
    // Inside finishSecret: the stage moved, then the function died before publishing.
    let before = store.load_ring().await.unwrap().unwrap();
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in &STEPS[..3] {
        rotator
            .step(SIGNING, &token, *step, chat_auth_shared::time::now())
            .await
            .unwrap();
    }
    let (_, versions) = store.describe(SIGNING).await.unwrap();
    let current = versions
        .iter()
        .find(|(_, s)| s.iter().any(|s| s == "AWSCURRENT"))
        .unwrap()
        .0
        .clone();
    store
        .move_stage(SIGNING, "AWSCURRENT", Some(&token), Some(&current))
        .await
        .unwrap();
    faults += 1;
    assert_nothing_lost(&store, &tokens, "crashed inside finishSecret").await;
    rotator
        .step(SIGNING, &token, Step::Finish, chat_auth_shared::time::now())
        .await
        .unwrap();
    let after = store.load_ring().await.unwrap().unwrap();
    assert_eq!(after.version, before.version + 1);
    common::assert_publishes(&store.load_public().await.unwrap().unwrap(), &after);
    eprintln!("rotation faults survived: {faults}, tokens lost: 0");
}

#[tokio::test]
async fn two_rotations_racing_leave_one_consistent_ring() {
    // Secrets Manager: two invocations of the same rotation run concurrently.
    let (moto, store, arn) = provisioned().await;
    let a = Rotator::new(store.clone(), life());
    let b = Rotator::new(store.clone(), life());
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in STEPS {
        let now = chat_auth_shared::time::now();
        let (ra, rb) = tokio::join!(
            a.step(SIGNING, &token, step, now),
            b.step(SIGNING, &token, step, now)
        );
        assert!(ra.is_ok() || rb.is_ok(), "{step:?}: {ra:?} {rb:?}");
    }
    let ring = store.load_ring().await.unwrap().unwrap();
    common::assert_publishes(&store.load_public().await.unwrap().unwrap(), &ring);
    assert_nothing_lost(&store, &[mint_now(&store).await], "after the race").await;

    // The file store: two local rotations from the same version; compare-and-swap lets one win.
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::open(dir.path()).unwrap();
    let start = ensure_ring(&files, &life(), 0).await.unwrap();
    let life = life();
    let (x, y) = tokio::join!(rotate(&files, &life, 10), rotate(&files, &life, 10));
    let wins = [&x, &y].iter().filter(|r| r.is_ok()).count() as u64;
    for r in [&x, &y] {
        if let Err(e) = r {
            assert_eq!(e.code(), "conflict");
        }
    }
    let end = files.load_ring().await.unwrap().unwrap();
    assert_eq!(end.version, start.version + wins);
    common::assert_publishes(&files.load_public().await.unwrap().unwrap(), &end);
}

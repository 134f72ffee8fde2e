//! In-process costs of the hot paths, for `scripts/bench.sh` (which sets them against
//! `openssl speed rsa2048` measured in the same run) and for comparing changes:
//!
//! - `sign/rs256`: the RSA-2048 PKCS#1 v1.5 SHA-256 signature alone (compare `openssl speed`);
//! - `sign/mint`: what `/token` does per request: context from verified claims, claims (with a
//!   random `jti`), JSON, base64url and the signature, with the key parsed once;
//! - `validate/verify`: the RSA verification alone (compare `openssl speed`);
//! - `validate/full`: what `/validate` does: decode, strict JSON, signature, every claim check and
//!   the `lwicontexts` rules;
//! - `context/*`: building, serializing and checking the custom context;
//! - `public_keys/render`: the multi-key, PEM and JWKS documents of a three-key ring.
//!
//! `cargo bench -p chat-auth-shared --bench chat_auth [-- FILTER]`

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_auth::claims::mint;
use chat_auth::jwt::Validator;
use chat_auth::{CustomContext, RingState, TokenPolicy};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

const NOW: i64 = 1_800_000_000;
const PERIOD: i64 = 30 * 86_400;
const SUB: &str = "87b4d06c-7c6e-4e8e-9c3f-0b2f1f6f7a11";

/// A ring as it looks after its first rotation: previous, current and next all published.
fn ring() -> RingState {
    RingState::generate(NOW - PERIOD, PERIOD)
        .and_then(|r| r.rotate(NOW - 100, PERIOD))
        .expect("ring")
}

/// The verified identity claims the development mapping turns into context.
fn identity_claims() -> [(&'static str, Value); 3] {
    [
        ("msdyn_cartvalue", json!("10000")),
        ("msdyn_isvip", json!(true)),
        ("region", json!("emea")),
    ]
}

fn context() -> CustomContext {
    let mut ctx = CustomContext::new();
    for (name, value) in identity_claims() {
        ctx.insert_json(name, &value).expect("context");
    }
    ctx
}

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: "chat-auth".into(),
        ttl: 900,
        skew: 30,
    }
}

fn validator() -> Validator {
    Validator {
        issuer: Some("chat-auth".into()),
        audience: None,
        leeway: 30,
        omnichannel: true,
    }
}

fn sign(c: &mut Criterion) {
    let ring = ring();
    let loaded = ring.load().expect("load");
    let policy = policy();
    let claims = identity_claims();
    let sample = mint(
        &loaded.signer,
        &policy.claims(SUB, &context(), NOW).expect("claims"),
    )
    .expect("mint")
    .token;
    let signing_input = sample.rsplit_once('.').expect("jws").0.to_owned();

    let mut g = c.benchmark_group("sign");
    g.bench_function("rs256", |b| {
        b.iter(|| loaded.signer.sign(black_box(signing_input.as_bytes())))
    });
    g.bench_function("mint", |b| {
        b.iter(|| {
            let mut ctx = CustomContext::new();
            for (name, value) in &claims {
                ctx.insert_json(name, value).expect("context");
            }
            let claims = policy.claims(black_box(SUB), &ctx, NOW).expect("claims");
            mint(&loaded.signer, &claims).expect("mint")
        })
    });
    g.finish();
}

fn validate(c: &mut Criterion) {
    let ring = ring();
    let loaded = ring.load().expect("load");
    let keys = ring
        .public_set()
        .and_then(|s| s.render())
        .expect("render")
        .keys;
    let token = mint(
        &loaded.signer,
        &policy().claims(SUB, &context(), NOW).expect("claims"),
    )
    .expect("mint")
    .token;
    let validator = validator();
    let report = validator.validate(&token, &keys, NOW);
    assert!(report.is_active(), "{:?}", report.problems);
    let (input, sig) = token.rsplit_once('.').expect("jws");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
    let key = keys.find(&ring.current.kid).expect("current key");

    let mut g = c.benchmark_group("validate");
    g.bench_function("verify", |b| {
        b.iter(|| assert!(key.verify(black_box(input.as_bytes()), black_box(&sig))))
    });
    g.bench_function("full", |b| {
        b.iter(|| validator.validate(black_box(&token), &keys, NOW))
    });
    g.bench_function("full_with_report_json", |b| {
        b.iter(|| {
            validator
                .validate(black_box(&token), &keys, NOW)
                .to_json()
                .to_string()
        })
    });
    g.finish();
}

fn context_benches(c: &mut Criterion) {
    let claims = identity_claims();
    let ctx = context();
    let lwicontexts = ctx.to_lwicontexts();
    let mut g = c.benchmark_group("context");
    g.bench_function("insert_json", |b| {
        b.iter(|| {
            let mut ctx = CustomContext::new();
            for (name, value) in &claims {
                ctx.insert_json(black_box(name), black_box(value))
                    .expect("context");
            }
            ctx
        })
    });
    g.bench_function("to_lwicontexts", |b| {
        b.iter(|| black_box(&ctx).to_lwicontexts())
    });
    g.bench_function("check_lwicontexts", |b| {
        b.iter(|| {
            let (ctx, problems) = CustomContext::check_lwicontexts(black_box(&lwicontexts));
            assert!(problems.is_empty());
            ctx
        })
    });
    g.finish();
}

fn public_keys(c: &mut Criterion) {
    let set = ring().public_set().expect("public set");
    let mut g = c.benchmark_group("public_keys");
    g.bench_function("render", |b| {
        b.iter(|| black_box(&set).render().expect("render"))
    });
    g.finish();
}

criterion_group!(benches, sign, validate, context_benches, public_keys);
criterion_main!(benches);

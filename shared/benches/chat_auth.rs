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
//! - `public_keys/render`: the multi-key, PEM and JWKS documents of a three-key ring;
//! - `keys/*`: parsing a private key the first time (aws-lc's checks) and again (remembered),
//!   and reading a whole stored ring (start and every cache refresh).
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! `openssl speed`, the floor these are compared with, divides by CPU time too, and CPU time
//! does not count the slices another process takes on a shared core. On an idle core the two
//! agree.
//!
//! `cargo bench -p chat-auth-shared --bench chat_auth [-- FILTER]`

use base64::Engine;
use chat_auth::claims::mint;
use chat_auth::jwt::Validator;
use chat_auth::{CustomContext, Lifecycle, RingPolicy, RingState, TokenPolicy};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::LazyLock;

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            t if t < 1e9 => (1e6, "ms"),
            _ => (1e9, "s"),
        };
        values.iter_mut().for_each(|v| *v /= divisor);
        unit
    }

    fn scale_throughputs(
        &self,
        _: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        "/s (CPU)"
    }

    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

type Cpu = Criterion<ThreadCpuTime>;

const NOW: i64 = 1_800_000_000;
const PERIOD: i64 = 30 * 86_400;
const SUB: &str = "87b4d06c-7c6e-4e8e-9c3f-0b2f1f6f7a11";

/// A ring as it looks after its first rotation: a verify-only key, current and next published.
/// Generated once per run (RSA key generation takes a while) and shared by every bench.
fn ring() -> RingState {
    static RING: LazyLock<RingState> = LazyLock::new(|| {
        let first = RingState::generate(NOW - PERIOD, PERIOD).expect("ring");
        let life = Lifecycle::new(RingPolicy::new(PERIOD, 0, 300, 60, 30));
        first
            .rotate(first.public_set().ok().as_ref(), &life, NOW - 100)
            .expect("ring")
            .ring
    });
    RING.clone()
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
        leeway: 30,
    }
}

fn sign(c: &mut Cpu) {
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

fn validate(c: &mut Cpu) {
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
    let key = keys.find(&ring.current.kid).expect("current key");

    let mut g = c.benchmark_group("validate");
    g.bench_function("verify", |b| {
        b.iter(|| assert!(key.verify(black_box(input.as_bytes()), black_box(sig))))
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

fn context_benches(c: &mut Cpu) {
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

fn public_keys(c: &mut Cpu) {
    let set = ring().public_set().expect("public set");
    let mut g = c.benchmark_group("public_keys");
    g.bench_function("render", |b| {
        b.iter(|| black_box(&set).render().expect("render"))
    });
    g.finish();
}

fn keys(c: &mut Cpu) {
    let ring = ring();
    let stored = ring.to_json();
    let stored_key = serde_json::to_value(&ring.current).expect("stored key");
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(stored_key["pkcs8"].as_str().expect("pkcs8"))
        .expect("base64");
    let mut g = c.benchmark_group("keys");
    g.bench_function("parse_uncached", |b| {
        b.iter(|| aws_lc_rs::rsa::KeyPair::from_pkcs8(black_box(&pkcs8)).expect("pkcs8"))
    });
    g.bench_function("parse", |b| {
        b.iter(|| black_box(&ring.current).parse().expect("parse"))
    });
    g.bench_function("ring_from_json", |b| {
        b.iter(|| RingState::from_json(black_box(&stored)).expect("ring"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = sign, validate, context_benches, public_keys, keys
}
criterion_main!(benches);

//! In-process figures: the domain crate's hot paths called as the hosts call them, on the
//! server core, timed in the thread's CPU time. The same workloads run under criterion
//! (`cargo bench -p xtask`, xtask/benches/inproc.rs) to compare two changes with its
//! statistics; here each is a loop of batches whose median is a number the run sets against the
//! floor. Not criterion's estimates: they are wall time over its own schedule, and each round
//! here is thread CPU time taken right after its own `openssl speed` floor on the same core.

use crate::error::{Error, Result};
use crate::figures::{Figure, Id, Round, median};
use crate::floor::Floors;
use crate::process::Cores;
use crate::sys::thread_cpu;
use base64::Engine;
use chat_auth_shared::claims::{TokenPolicy, mint};
use chat_auth_shared::context::CustomContext;
use chat_auth_shared::jwt::Validator;
use chat_auth_shared::keys::KeySet;
use chat_auth_shared::publish::PublicKeySet;
use chat_auth_shared::ring::{Lifecycle, LoadedRing, RingPolicy, RingState};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Rounds of the ratio-critical workloads, each after its own floor; the median round counts.
const ROUNDS: usize = 3;
/// Run before measuring, so caches and branch predictors hold the workload.
const WARM_UP: Duration = Duration::from_millis(500);
/// Measuring time per workload and round.
const MEASURE: Duration = Duration::from_secs(2);
/// CPU time of one batch of calls; long enough for the clock's resolution not to matter.
const BATCH: Duration = Duration::from_millis(10);

const NOW: i64 = 1_800_000_000;
const PERIOD: i64 = 30 * 86_400;
const SUB: &str = "87b4d06c-7c6e-4e8e-9c3f-0b2f1f6f7a11";

/// One workload: a call whose result is discarded through `black_box`.
pub type Workload<'a> = Box<dyn FnMut() + 'a>;

/// Measures every workload on the server core: [`ROUNDS`] rounds of the ratio-critical ones
/// (sign, mint, verify, validation), then one round of the others, each round after a floor.
pub fn run(cores: &Cores, floors: &mut Floors) -> Result<Vec<Figure>> {
    crate::note(format!(
        "in-process: {ROUNDS} rounds on core {} ({MEASURE:?} per workload)",
        cores.server
    ));
    let fixture = Fixture::new()?;
    let mut figures: Vec<Figure> = Vec::new();
    let mut record = |id: Id, round: Round| match figures.iter_mut().find(|f| f.id == id) {
        Some(figure) => figure.rounds.push(round),
        None => figures.push(Figure {
            id,
            rounds: vec![round],
            detail: String::new(),
        }),
    };
    for _ in 0..ROUNDS {
        let floor = floors.take()?;
        for (id, workload) in fixture.critical()? {
            let value = cores.on_server(|| per_call(workload))?;
            record(id, Round { value, floor });
        }
    }
    let floor = floors.take()?;
    for (id, workload) in fixture.others() {
        let value = cores.on_server(|| per_call(workload))?;
        record(id, Round { value, floor });
    }
    for figure in &mut figures {
        figure.detail = crate::table::duration(figure.value());
    }
    Ok(figures)
}

/// Thread CPU seconds per call: the median over batches of about [`BATCH`] each.
fn per_call(mut workload: Workload<'_>) -> f64 {
    let mut batch = |calls: u32| {
        let start = thread_cpu();
        for _ in 0..calls {
            workload();
        }
        thread_cpu() - start
    };
    let mut calls = 1;
    while batch(calls) < BATCH {
        calls *= 2;
    }
    let warm = Instant::now() + WARM_UP;
    while Instant::now() < warm {
        batch(calls);
    }
    let mut samples = Vec::new();
    let end = Instant::now() + MEASURE;
    while Instant::now() < end || samples.len() < 10 {
        samples.push(batch(calls).as_secs_f64() / f64::from(calls));
    }
    median(samples)
}

/// What the workloads work on, made once: a ring after its first rotation (a verify-only key,
/// current and next published), a token it signed, the parts of both.
pub struct Fixture {
    ring: RingState,
    loaded: LoadedRing,
    keys: KeySet,
    set: PublicKeySet,
    token: String,
    policy: TokenPolicy,
    validator: Validator,
    context: CustomContext,
    lwicontexts: String,
    stored: Vec<u8>,
    pkcs8: Vec<u8>,
}

/// The verified identity claims the development mapping turns into context.
fn identity_claims() -> [(&'static str, Value); 3] {
    [
        ("msdyn_cartvalue", json!("10000")),
        ("msdyn_isvip", json!(true)),
        ("region", json!("emea")),
    ]
}

fn build_context(claims: &[(&str, Value)]) -> chat_auth_shared::Result<CustomContext> {
    let mut context = CustomContext::new();
    for (name, value) in claims {
        context.insert_json(name, value)?;
    }
    Ok(context)
}

impl Fixture {
    /// Builds the ring, the token and the documents the workloads use.
    pub fn new() -> Result<Self> {
        let first = RingState::generate(NOW - PERIOD, PERIOD)?;
        let life = Lifecycle::new(RingPolicy::new(PERIOD, 0, 300, 60, 30));
        let ring = first
            .rotate(first.public_set().ok().as_ref(), &life, NOW - 100)?
            .ring;
        let loaded = ring.load()?;
        let set = ring.public_set()?;
        let keys = set.render()?.keys;
        let policy = TokenPolicy {
            issuer: "chat-auth".into(),
            ttl: 900,
            skew: 30,
        };
        let context = build_context(&identity_claims())?;
        let token = mint(&loaded.signer, &policy.claims(SUB, &context, NOW)?)?.token;
        let validator = Validator {
            issuer: Some("chat-auth".into()),
            leeway: 30,
        };
        let report = validator.validate(&token, &keys, NOW);
        if !report.is_active() {
            return Err(Error::Answer(format!(
                "the fixture token does not validate: {:?}",
                report.problems
            )));
        }
        // The figures are those of the provider the hosts run (keys parsed once), not of
        // jsonwebtoken's stock backend.
        if !chat_auth_shared::crypto::installed() {
            return Err(Error::Setup(
                "the domain crate's crypto provider is not the process default".into(),
            ));
        }
        let stored_key = serde_json::to_value(&ring.current)?;
        let pkcs8 = stored_key["pkcs8"]
            .as_str()
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .ok_or_else(|| Error::Answer("a stored key without base64 pkcs8".into()))?;
        Ok(Fixture {
            lwicontexts: context.to_lwicontexts(),
            stored: ring.to_json(),
            ring,
            loaded,
            keys,
            set,
            token,
            policy,
            validator,
            context,
            pkcs8,
        })
    }

    /// The workloads whose ratios are goals, or that those ratios are read against.
    pub fn critical(&self) -> Result<Vec<(Id, Workload<'_>)>> {
        let claims = identity_claims();
        let (input, signature) = self
            .token
            .rsplit_once('.')
            .ok_or_else(|| Error::Answer("the fixture token is no JWS".into()))?;
        let key = self
            .keys
            .find(&self.ring.current.kid)
            .ok_or_else(|| Error::Answer("the current key is not published".into()))?;
        Ok(vec![
            (
                Id::Rs256,
                Box::new(move || {
                    black_box(self.loaded.signer.sign(black_box(input.as_bytes())).ok());
                }),
            ),
            (
                Id::Mint,
                Box::new(move || {
                    let minted = build_context(&claims)
                        .and_then(|ctx| self.policy.claims(black_box(SUB), &ctx, NOW))
                        .and_then(|c| mint(&self.loaded.signer, &c));
                    black_box(minted.ok());
                }),
            ),
            (
                Id::Verify,
                Box::new(move || {
                    black_box(key.verify(black_box(input.as_bytes()), black_box(signature)));
                }),
            ),
            (
                Id::FullValidation,
                Box::new(|| {
                    black_box(
                        self.validator
                            .validate(black_box(&self.token), &self.keys, NOW),
                    );
                }),
            ),
            (
                Id::ValidationReport,
                Box::new(|| {
                    let report = self
                        .validator
                        .validate(black_box(&self.token), &self.keys, NOW);
                    black_box(report.to_json().to_string());
                }),
            ),
        ])
    }

    /// Context, public key documents, key and ring parsing.
    pub fn others(&self) -> Vec<(Id, Workload<'_>)> {
        let claims = identity_claims();
        vec![
            (
                Id::ContextBuild,
                Box::new(move || {
                    black_box(build_context(black_box(&claims)).ok());
                }),
            ),
            (
                Id::ContextSerialize,
                Box::new(|| {
                    black_box(black_box(&self.context).to_lwicontexts());
                }),
            ),
            (
                Id::ContextCheck,
                Box::new(|| {
                    black_box(CustomContext::check_lwicontexts(black_box(
                        &self.lwicontexts,
                    )));
                }),
            ),
            (
                Id::PublicKeyDocs,
                Box::new(|| {
                    black_box(black_box(&self.set).render().ok());
                }),
            ),
            (
                Id::KeyParseUncached,
                Box::new(|| {
                    black_box(aws_lc_rs::rsa::KeyPair::from_pkcs8(black_box(&self.pkcs8)).ok());
                }),
            ),
            (
                Id::KeyParse,
                Box::new(|| {
                    black_box(black_box(&self.ring.current).parse().ok());
                }),
            ),
            (
                Id::RingParse,
                Box::new(|| {
                    black_box(RingState::from_json(black_box(&self.stored)).ok());
                }),
            ),
        ]
    }
}

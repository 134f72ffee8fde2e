//! GIVEN random sequences of key-ring events (mints by a warm signer with a cache, scheduled
//! rotations whose four steps can crash after any step and be retried, emergency revocations
//! of any role, racing writers, operations that read the store, are overtaken by another event,
//! then write, clock jumps from seconds to months), run through the real
//! protocol (`chat_auth_shared::store`) against the in-memory and the file store, WHEN each event has
//! run, THEN every invariant written in `chat_auth_shared::ring` holds. The model remembers every token
//! it minted, with its `exp`, and every kid it revoked.
//!
//! `CHAT_AUTH_RING_SEQUENCES` sets the number of sequences per store (default: 8,000 in memory
//! and 2,000 on files).

use crate::common;

use crate::common::interleaved::Interleaved;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_auth_host::FileStore;
use chat_auth_host::cache::{PublicKeys, SigningKeys};
use chat_auth_shared::claims::{RemoteSigner, mint, mint_with};
use chat_auth_shared::jwt::Validator;
use chat_auth_shared::keys::{KeyTimes, StoredKey};
use chat_auth_shared::publish::{parse_jwks, parse_public_key_document};
use chat_auth_shared::ring::{
    BoxFuture, KeyCustody, MAX_VERIFY_ONLY, MIN_ROTATION_PERIOD, withdrawable,
};
use chat_auth_shared::store::{self, KeyStore, MemoryStore, PublicKeySource, RingSource, STEPS};
use chat_auth_shared::{CustomContext, Error, Lifecycle, RingPolicy, RingState, TokenPolicy};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

const START: i64 = 1_800_000_000;
/// How long the model's warm signer keeps a ring before it reads the store again.
const SIGNER_CACHE: i64 = 300;
const SKEW: i64 = 30;
/// The ring rules of a sequence; `min_published` varies so that some sequences promote at
/// every rotation and reach the verify-only bound.
fn policy(min_published: i64) -> RingPolicy {
    RingPolicy::new(MIN_ROTATION_PERIOD, min_published, SIGNER_CACHE, 60, SKEW)
}
const MAX_EVENTS: usize = 30;
/// Fresh keys a sequence can need: two at genesis, at most one per event (a race makes two).
const POOL: usize = 2 * MAX_EVENTS + 4;

/// RSA key generation costs tens of milliseconds; sequences draw from keys made once.
static KEYS: LazyLock<Vec<StoredKey>> = LazyLock::new(|| {
    let times = KeyTimes {
        created: 0,
        activates: 0,
        retires: 0,
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    (0..POOL / 2)
                        .map(|_| StoredKey::generate(times).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
});

/// The ring rules of a sequence, with fresh keys drawn from [`KEYS`] in order.
fn pool_lifecycle(min_published: i64) -> Lifecycle {
    let cursor = Arc::new(AtomicUsize::new(0));
    Lifecycle::with_keygen(policy(min_published), move |times| {
        let i = cursor.fetch_add(1, Ordering::Relaxed);
        let key = KEYS
            .get(i)
            .ok_or(Error::Crypto("model key pool exhausted"))?;
        Ok(StoredKey {
            times,
            ..key.clone()
        })
    })
}

/// A key store in the model's KMS: the custody's key, its tags' worth of bookkeeping, and its
/// private half (from [`KEYS`]), which only this fake signs with, as KMS alone does.
#[derive(Debug)]
struct CustodyKey {
    arn: String,
    change: String,
    made: i64,
    state: KeyState,
    private: StoredKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    Enabled,
    /// Disabled and scheduled for deletion: KMS signs with neither.
    PendingDeletion,
}

/// AWS KMS as the ring sees it, in memory: keys made per change and found again by it, states,
/// and a signer that refuses a key that is not enabled, as KMS does (moto does not: the moto
/// tests check states instead). Withdrawal applies the domain's rule
/// (`chat_auth_shared::ring::withdrawable`), as `KmsCustody` does.
#[derive(Debug, Default)]
struct ModelKms {
    keys: Mutex<Vec<CustodyKey>>,
}

impl ModelKms {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CustodyKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self, arn: &str) -> Option<KeyState> {
        self.lock().iter().find(|k| k.arn == arn).map(|k| k.state)
    }
}

impl KeyCustody for ModelKms {
    fn create<'a>(&'a self, id: &'a str, n: usize, times: KeyTimes, now: i64) -> BoxFuture<'a> {
        Box::pin(async move {
            let change = format!("{id}/{n}");
            let mut keys = self.lock();
            let found = keys
                .iter()
                .position(|k| k.change == change && k.state == KeyState::Enabled);
            let i = match found {
                Some(i) => i,
                None => {
                    let private = KEYS
                        .get(keys.len())
                        .ok_or(Error::Crypto("model key pool exhausted"))?
                        .clone();
                    let arn = format!("arn:aws:kms:model:1:key/{}", keys.len());
                    keys.push(CustodyKey {
                        arn,
                        change,
                        made: now,
                        state: KeyState::Enabled,
                        private,
                    });
                    keys.len() - 1
                }
            };
            StoredKey::in_kms(keys[i].arn.clone(), keys[i].private.spki()?, times)
        })
    }

    fn confirm<'a>(&'a self, key: &'a StoredKey) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match key.kms_key().and_then(|arn| self.state(arn)) {
                Some(KeyState::Enabled) => Ok(()),
                state => Err(Error::Rotation(format!("key {} is {state:?}", key.kid))),
            }
        })
    }

    fn withdraw<'a>(
        &'a self,
        keep: &'a [&'a RingState],
        revoked: &'a [String],
        now: i64,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut keys = self.lock();
            let held: Vec<(String, Option<i64>)> = keys
                .iter()
                .filter(|k| k.state != KeyState::PendingDeletion)
                .map(|k| (k.arn.clone(), Some(k.made)))
                .collect();
            let out = withdrawable(&held, keep, revoked, now);
            for key in keys.iter_mut().filter(|k| out.contains(&k.arn)) {
                key.state = KeyState::PendingDeletion;
            }
            Ok(out)
        })
    }
}

impl RemoteSigner for ModelKms {
    fn sign<'a>(
        &'a self,
        key_ref: &'a str,
        message: &'a [u8],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = chat_auth_shared::Result<Vec<u8>>> + Send + 'a>,
    > {
        Box::pin(async move {
            let keys = self.lock();
            let key = keys
                .iter()
                .find(|k| k.arn == key_ref && k.state == KeyState::Enabled)
                .ok_or_else(|| Error::KeyService {
                    throttled: false,
                    source: format!("{key_ref} is not enabled").into(),
                })?;
            let signature = key.private.parse()?.sign(message)?;
            URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| Error::Crypto("b64"))
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Current,
    Next,
    VerifyOnly(usize),
}

#[derive(Debug, Clone)]
enum Event {
    Mint {
        ttl: i64,
    },
    /// A scheduled rotation; `crash_after` steps run when it is `Some` (0..=3), else all four.
    Rotate {
        crash_after: Option<usize>,
    },
    /// Secrets Manager retries the crashed rotation from its first step.
    Retry,
    Revoke(Role),
    /// Two revocations computed from one base, written one after the other.
    RaceRevokes(Role, Role),
    /// Two rotations created from one base; both then try to finish.
    RaceRotations,
    /// `op` runs, and just before its `at`-th call on the store (a read or a write) `by` runs
    /// to completion: an operator command or a rotation step that read the ring, was
    /// descheduled, and went on after another writer changed it.
    Overtaken {
        op: Op,
        at: usize,
        by: Op,
    },
    Advance(i64),
}

/// An operation that can overtake another or be overtaken.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `ensure_ring`, as `serve`, `mint`, `keys` and `rotate` run it first.
    Ensure,
    /// A scheduled rotation's four steps.
    Rotate,
    /// An emergency revocation.
    Revoke(Role),
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Current),
        Just(Role::Next),
        (0..MAX_VERIFY_ONLY).prop_map(Role::VerifyOnly),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Ensure),
        Just(Op::Rotate),
        role().prop_map(Op::Revoke),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (60..=3600i64).prop_map(|ttl| Event::Mint { ttl }),
        4 => prop::option::weighted(0.3, 0..=3usize).prop_map(|crash_after| Event::Rotate { crash_after }),
        1 => Just(Event::Retry),
        2 => role().prop_map(Event::Revoke),
        1 => (role(), role()).prop_map(|(a, b)| Event::RaceRevokes(a, b)),
        1 => Just(Event::RaceRotations),
        3 => (op(), 0..16usize, op()).prop_map(|(op, at, by)| Event::Overtaken { op, at, by }),
        4 => prop_oneof![
            1..120i64,
            60..3600i64,
            3600..86_400i64,
            86_400..(90 * 86_400i64),
        ]
        .prop_map(Event::Advance),
    ]
}

/// Runs `op` against `store`; `id` names the rotation if it is one.
async fn perform<S: KeyStore>(
    store: &S,
    op: Op,
    id: String,
    life: &Lifecycle,
    now: i64,
) -> chat_auth_shared::Result<()> {
    match op {
        Op::Ensure => store::ensure_ring(store, life, now).await.map(|_| ()),
        Op::Rotate => {
            for step in STEPS {
                store::step(store, &id, step, life, now).await?;
            }
            Ok(())
        }
        Op::Revoke(role) => {
            let ring = store
                .load_ring()
                .await?
                .ok_or(Error::NotProvisioned("key ring"))?;
            match kid_of(&ring, role) {
                Some(kid) => store::revoke(store, &kid, life, now).await.map(|_| ()),
                None => Ok(()),
            }
        }
    }
}

fn kid_of(ring: &RingState, role: Role) -> Option<String> {
    match role {
        Role::Current => Some(ring.current.kid.clone()),
        Role::Next => Some(ring.next.kid.clone()),
        Role::VerifyOnly(i) => ring.retired.get(i).map(|k| k.kid.clone()),
    }
}

struct Minted {
    token: String,
    kid: String,
    exp: i64,
}

/// Everything the model knows from outside the store.
struct Model<S> {
    store: Arc<Interleaved<S>>,
    life: Lifecycle,
    /// In KMS custody, the keys' custody; otherwise the ring holds them.
    kms: Option<Arc<ModelKms>>,
    now: i64,
    /// The warm signer's ring and when it read it.
    signer: Option<(RingState, i64)>,
    tokens: Vec<Minted>,
    revoked: BTreeMap<String, i64>,
    /// When each kid was first seen in the published set.
    first_published: BTreeMap<String, i64>,
    /// Kids allowed to sign without having waited: the first ring's, and those promoted by the
    /// revocation of the signing key.
    exempt: BTreeSet<String>,
    /// A crashed rotation and the digest of the ring it started from.
    crashed: Option<(String, Option<String>)>,
    next_id: usize,
    /// The real caches, with no time to live, must follow every change (invariant 5).
    public_cache: PublicKeys<Arc<Interleaved<S>>>,
    signing_cache: SigningKeys<Arc<Interleaved<S>>>,
    checked: usize,
}

fn validator() -> Validator {
    Validator {
        issuer: Some("model".into()),
        leeway: SKEW,
    }
}

fn fail(what: String) -> TestCaseError {
    TestCaseError::fail(what)
}

/// Errors a step may legitimately end with after another writer or a revocation intervened.
fn superseded(e: &Error) -> bool {
    matches!(e, Error::Conflict(_) | Error::Rotation(_))
}

impl<S: KeyStore> Model<S> {
    async fn new(store: S, min_published: i64, in_kms: bool) -> Result<Self, TestCaseError> {
        let kms = in_kms.then(|| Arc::new(ModelKms::default()));
        let life = match &kms {
            Some(kms) => Lifecycle::in_custody(policy(min_published), kms.clone()),
            None => pool_lifecycle(min_published),
        };
        let store = Arc::new(Interleaved::new(store));
        let ring = store::ensure_ring(&store, &life, START)
            .await
            .map_err(|e| fail(format!("first ring: {e}")))?;
        let mut model = Model {
            public_cache: PublicKeys::new(store.clone(), Duration::ZERO, Duration::ZERO),
            signing_cache: SigningKeys::new(store.clone(), Duration::ZERO, Duration::ZERO),
            store,
            life,
            kms,
            now: START,
            signer: None,
            tokens: Vec::new(),
            revoked: BTreeMap::new(),
            first_published: BTreeMap::new(),
            exempt: BTreeSet::from([ring.current.kid.clone()]),
            crashed: None,
            next_id: 0,
            checked: 0,
        };
        model.check().await?;
        Ok(model)
    }

    async fn ring(&self) -> Result<RingState, TestCaseError> {
        self.store
            .load_ring()
            .await
            .map_err(|e| fail(format!("load ring: {e}")))?
            .ok_or_else(|| fail("no ring".into()))
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("rotation-{}", self.next_id)
    }

    async fn steps(&self, id: &str, steps: &[store::Step]) -> chat_auth_shared::Result<()> {
        for step in steps {
            store::step(&*self.store, id, *step, &self.life, self.now).await?;
        }
        Ok(())
    }

    fn record_revocation(&mut self, before: &RingState, kid: &str) {
        self.revoked.insert(kid.to_owned(), self.now);
        if before.current.kid == kid {
            self.exempt.insert(before.next.kid.clone());
        }
    }

    async fn run(&mut self, event: &Event) -> Result<(), TestCaseError> {
        match *event {
            Event::Mint { ttl } => self.mint(ttl).await?,
            Event::Advance(secs) => self.now += secs,
            Event::Rotate { crash_after } => {
                let id = self.fresh_id();
                let base = Some(self.ring().await?.digest());
                let upto = crash_after.unwrap_or(STEPS.len());
                self.steps(&id, &STEPS[..upto])
                    .await
                    .map_err(|e| fail(format!("rotation with nothing in its way failed: {e}")))?;
                if crash_after.is_some() {
                    self.crashed = Some((id, base));
                }
            }
            Event::Retry => {
                if let Some((id, base)) = self.crashed.take() {
                    let undisturbed = Some(self.ring().await?.digest()) == base;
                    match self.steps(&id, &STEPS).await {
                        Ok(()) => {}
                        Err(e) if !undisturbed && superseded(&e) => {}
                        Err(e) => {
                            return Err(fail(format!(
                                "retry of an undisturbed rotation failed: {e}"
                            )));
                        }
                    }
                }
            }
            Event::Revoke(role) => {
                let before = self.ring().await?;
                if let Some(kid) = kid_of(&before, role) {
                    store::revoke(&*self.store, &kid, &self.life, self.now)
                        .await
                        .map_err(|e| fail(format!("revoke {role:?}: {e}")))?;
                    self.record_revocation(&before, &kid);
                }
            }
            Event::RaceRevokes(a, b) => {
                let base = self.ring().await?;
                let published = self.store.load_public().await.ok().flatten();
                let (Some(ka), Some(kb)) = (kid_of(&base, a), kid_of(&base, b)) else {
                    return Ok(());
                };
                let digest = base.digest();
                let (published, now) = (published.as_ref(), self.now);
                let (id_a, id_b) = (self.fresh_id(), self.fresh_id());
                let ra = self
                    .life
                    .derive(&id_a, now, |life| base.revoke(&ka, published, life, now))
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let rb = self
                    .life
                    .derive(&id_b, now, |life| base.revoke(&kb, published, life, now))
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                self.store
                    .save_ring(Some(&digest), &ra)
                    .await
                    .map_err(|e| fail(format!("the first writer must win: {e}")))?;
                match self.store.save_ring(Some(&digest), &rb).await {
                    Err(Error::Conflict(_)) => {}
                    other => {
                        return Err(fail(format!(
                            "the second writer from the same base must lose, got {other:?}"
                        )));
                    }
                }
                self.record_revocation(&base, &ka);
                // The first writer completes its revocation (publishes); the loser reloads and
                // retries, as `store::revoke` callers do.
                store::revoke(&*self.store, &ka, &self.life, self.now)
                    .await
                    .map_err(|e| fail(format!("completing the winner: {e}")))?;
                let now_ring = self.ring().await?;
                if now_ring.kids().any(|k| k == kb) {
                    store::revoke(&*self.store, &kb, &self.life, self.now)
                        .await
                        .map_err(|e| fail(format!("the loser's retry: {e}")))?;
                    self.record_revocation(&now_ring, &kb);
                }
            }
            Event::Overtaken { op, at, by } => self.overtaken(op, at, by).await?,
            Event::RaceRotations => {
                let before = self.ring().await?;
                let (x, y) = (self.fresh_id(), self.fresh_id());
                self.steps(&x, &STEPS[..1])
                    .await
                    .map_err(|e| fail(format!("first create: {e}")))?;
                self.steps(&y, &STEPS[..1])
                    .await
                    .map_err(|e| fail(format!("second create: {e}")))?;
                let rx = self.steps(&x, &STEPS[1..]).await;
                let ry = self.steps(&y, &STEPS[1..]).await;
                let after = self.ring().await?;
                let wins = [&rx, &ry].iter().filter(|r| r.is_ok()).count();
                if wins != 1 || after.version != before.version + 1 {
                    return Err(fail(format!(
                        "racing rotations: exactly one must win ({rx:?}, {ry:?}, version {} -> {})",
                        before.version, after.version
                    )));
                }
                for r in [rx, ry] {
                    if let Err(e) = r
                        && !superseded(&e)
                    {
                        return Err(fail(format!("the losing rotation failed oddly: {e}")));
                    }
                }
            }
        }
        self.check().await
    }

    /// `op`, overtaken before its `at`-th store call by `by` (run afterwards if `op` makes
    /// fewer calls). `by` has nothing in its way and must succeed; `op` may lose only to a
    /// writer of the ring that came after its first read, and only with a conflict. The
    /// revocations either made are read from the store's log of ring replacements.
    async fn overtaken(&mut self, op: Op, at: usize, by: Op) -> Result<(), TestCaseError> {
        let (id, by_id) = (self.fresh_id(), self.fresh_id());
        let intruded = Arc::new(Mutex::new(None));
        let intrusion = {
            let (store, life, now) = (self.store.clone(), self.life.clone(), self.now);
            let intruded = intruded.clone();
            Box::pin(async move {
                let done = perform(&*store, by, by_id, &life, now).await;
                *intruded.lock().unwrap() = Some(done);
            })
        };
        self.store.arm(at, intrusion);
        let result = perform(&*self.store, op, id, &self.life, self.now).await;
        if let Some(late) = self.store.disarm() {
            late.await;
        }
        for (replaced, written) in self.store.take_saved() {
            if let Some(revocation) = written.revoked.last()
                && !replaced.is_revoked(&revocation.kid)
            {
                self.record_revocation(&replaced, &revocation.kid);
            }
        }
        intruded
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| fail("the intruding operation never ran".into()))?
            .map_err(|e| fail(format!("{by:?}, with nothing in its way, failed: {e}")))?;
        let by_writes = !matches!(by, Op::Ensure);
        match result {
            Ok(()) => Ok(()),
            Err(e) if by_writes && at > 0 && !matches!(op, Op::Ensure) && superseded(&e) => Ok(()),
            Err(e) => Err(fail(format!("{op:?} overtaken by {by:?} failed: {e}"))),
        }
    }

    async fn mint(&mut self, ttl: i64) -> Result<(), TestCaseError> {
        let stale = self
            .signer
            .as_ref()
            .is_none_or(|(_, at)| self.now - at >= SIGNER_CACHE);
        if stale {
            self.signer = Some((self.ring().await?, self.now));
        }
        let Some((ring, _)) = &self.signer else {
            return Ok(());
        };
        let kid = ring.current.kid.clone();
        // Invariant 6 (in the model's terms): a warm signer stops using a revoked key within its
        // cache time.
        if let Some(at) = self.revoked.get(&kid)
            && self.now - at >= SIGNER_CACHE
        {
            return Err(fail(format!("signed with {kid}, revoked at {at}")));
        }
        // Invariant 2: the key signing now was published long enough ago.
        if !self.exempt.contains(&kid) {
            match self.first_published.get(&kid) {
                Some(since) if self.now - since >= self.life.policy.min_published => {}
                other => {
                    return Err(fail(format!(
                        "{kid} signs at {} but was first published at {other:?}",
                        self.now
                    )));
                }
            }
        }
        let policy = TokenPolicy {
            issuer: "model".into(),
            ttl,
            skew: SKEW,
        };
        let claims = policy
            .claims("contact", &CustomContext::new(), self.now)
            .map_err(|e| fail(e.to_string()))?;
        let signer = ring.load().map_err(|e| fail(e.to_string()))?.signer;
        let remote = self.kms.as_deref().map(|kms| kms as &dyn RemoteSigner);
        let minted = match mint_with(&signer, &claims, remote).await {
            Ok(minted) => minted,
            // KMS refuses a revoked key the moment it is disabled, before a warm signer's cache
            // lets go of it: failing closed is right. Any other key must still sign.
            Err(Error::KeyService { .. }) if self.revoked.contains_key(&kid) => return Ok(()),
            Err(e) => return Err(fail(format!("mint with {kid}: {e}"))),
        };
        self.tokens.push(Minted {
            token: minted.token,
            kid,
            exp: claims.exp,
        });
        Ok(())
    }

    /// Invariants 1, 3 and 5 (2 and 6 are checked where keys sign, 4 where writers race).
    async fn check(&mut self) -> Result<(), TestCaseError> {
        let ring = self.ring().await?;
        ring.check()
            .map_err(|e| fail(format!("stored ring: {e}")))?;
        if ring.retired.len() > MAX_VERIFY_ONLY {
            return Err(fail(format!("{} verify-only keys", ring.retired.len())));
        }
        let set = self
            .store
            .load_public()
            .await
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("nothing published".into()))?;
        for key in &set.keys {
            self.first_published
                .entry(key.kid.clone())
                .or_insert(self.now);
        }
        let docs = set.render().map_err(|e| fail(e.to_string()))?;
        let documents = [
            ("multi-key", parse_public_key_document(&docs.multi_key)),
            ("JWKS", parse_jwks(&docs.jwks)),
        ];
        // 1. Every unexpired token of a key not revoked verifies against every document.
        self.tokens.retain(|t| t.exp > self.now);
        for (name, keys) in &documents {
            let keys = keys
                .as_ref()
                .map_err(|e| fail(format!("{name} unreadable: {e}")))?;
            for t in self
                .tokens
                .iter()
                .filter(|t| !self.revoked.contains_key(&t.kid))
            {
                let report = validator().validate(&t.token, keys, self.now);
                self.checked += 1;
                if !report.is_active() {
                    return Err(fail(format!(
                        "token of {} (exp {}) lost at {} in the {name} document: {:?}",
                        t.kid, t.exp, self.now, report.problems
                    )));
                }
            }
        }
        // 3. No revoked kid in the ring, its record, or the published set.
        for kid in self.revoked.keys() {
            if ring.kids().any(|k| k == kid) || set.key(kid).is_some() {
                return Err(fail(format!("revoked {kid} is back")));
            }
            if !ring.is_revoked(kid) {
                return Err(fail(format!("the ring forgot the revocation of {kid}")));
            }
        }
        // In KMS custody: every key a stored ring holds is enabled (a withdrawal never takes a
        // key that can still sign or verify), every revoked key is not, and each change holds
        // one live key however often its steps ran.
        if let Some(kms) = &self.kms {
            // A pending ring derived before a revocation never becomes current (lineage), so it
            // may name a withdrawn key.
            let pending = self
                .store
                .load_any_pending()
                .await
                .map_err(|e| fail(e.to_string()))?
                .filter(|p| p.descends_from(Some(&ring)).is_ok());
            for ring in std::iter::once(&ring).chain(&pending) {
                for arn in ring.kms_keys() {
                    if kms.state(arn) != Some(KeyState::Enabled) {
                        return Err(fail(format!("{arn} is held but {:?}", kms.state(arn))));
                    }
                }
            }
            for kid in self.revoked.keys() {
                let revocation = ring.revoked.iter().find(|r| r.kid == *kid);
                let arn = revocation.and_then(|r| r.kms_key.as_deref());
                if arn.is_none_or(|arn| kms.state(arn) == Some(KeyState::Enabled)) {
                    return Err(fail(format!("revoked {kid} ({arn:?}) is still enabled")));
                }
            }
            // A change whose key was withdrawn (its rotation superseded, then retried by Secrets
            // Manager after the grace) gets a new one; two live keys for one change never.
            let keys = kms.lock();
            let live: Vec<&CustodyKey> = keys
                .iter()
                .filter(|k| k.state == KeyState::Enabled)
                .collect();
            for (i, key) in live.iter().enumerate() {
                if live[..i].iter().any(|k| k.change == key.change) {
                    return Err(fail(format!("change {} holds two live keys", key.change)));
                }
            }
        }
        // 5. Caches with no time to live follow the content.
        let cached = self
            .public_cache
            .get()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if cached.jwks != docs.jwks {
            return Err(fail("the public-key cache is pinned to an old set".into()));
        }
        let signing = self
            .signing_cache
            .get()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if signing.signer.kid != ring.current.kid {
            return Err(fail("the signing cache is pinned to an old ring".into()));
        }
        Ok(())
    }
}

/// A fresh file store on tmpfs where there is one (the store's fsyncs would otherwise dominate).
fn file_store() -> (FileStore, tempfile::TempDir) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    (FileStore::open(dir.path().join("ring")).unwrap(), dir)
}

/// The review's reproduction, deterministically: `chat-auth keys` (which runs `ensure_ring`)
/// reads the ring and is paused; an emergency revocation of the signing key runs to the end;
/// then `keys` goes on. Paused before each of its store calls in turn, it must never publish the
/// revoked kid again nor drop it from `revoked`, and a token that kid signed must be refused as
/// `revoked_kid`.
async fn a_paused_publication_keeps_a_later_revocation<S: KeyStore>(fresh: impl AsyncFn() -> S) {
    for at in 0..4 {
        let store = Interleaved::new(fresh().await);
        let life = pool_lifecycle(0);
        let ring = store::ensure_ring(&store, &life, START).await.unwrap();
        let kid = ring.current.kid.clone();
        let claims = TokenPolicy {
            issuer: "model".into(),
            ttl: 600,
            skew: SKEW,
        }
        .claims("contact", &CustomContext::new(), START)
        .unwrap();
        let token = mint(&ring.load().unwrap().signer, &claims).unwrap().token;
        let revocation = {
            let (inner, life, kid) = (store.inner.clone(), life.clone(), kid.clone());
            Box::pin(async move {
                store::revoke(&*inner, &kid, &life, START + 10)
                    .await
                    .unwrap();
            })
        };
        store.arm(at, revocation);
        store::ensure_ring(&store, &life, START + 10).await.unwrap();
        let ran_inside = match store.disarm() {
            Some(late) => {
                late.await;
                false
            }
            None => true,
        };
        let set = store.load_public().await.unwrap().unwrap();
        assert!(
            set.key(&kid).is_none(),
            "paused before call {at} (revocation inside: {ran_inside}): the revoked kid is published again"
        );
        assert!(
            set.revoked.contains(&kid),
            "paused before call {at}: `revoked` lost the kid: {:?}",
            set.revoked
        );
        let report = validator().validate(&token, &set.render().unwrap().keys, START + 10);
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["revoked_kid"], "paused before call {at}");
    }
}

#[tokio::test]
async fn a_publication_overtaken_by_a_revocation_keeps_the_key_revoked_on_files() {
    let dirs = Mutex::new(Vec::new());
    a_paused_publication_keeps_a_later_revocation(async || {
        let (store, dir) = file_store();
        dirs.lock().unwrap().push(dir);
        store
    })
    .await;
}

/// The same on Secrets Manager (moto), whose store checks the basis before and after its write.
#[tokio::test]
async fn a_publication_overtaken_by_a_revocation_keeps_the_key_revoked_on_secrets_manager() {
    let (moto, store, _) = common::aws::provisioned().await;
    a_paused_publication_keeps_a_later_revocation(async || {
        moto.reset().await;
        common::aws::provision(&moto).await;
        store.clone()
    })
    .await;
}

fn run_sequences<S, F>(name: &str, default_cases: u32, in_kms: bool, make: F)
where
    S: KeyStore,
    F: Fn() -> (S, Option<tempfile::TempDir>),
{
    let cases = std::env::var("CHAT_AUTH_RING_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    LazyLock::force(&KEYS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let started = std::time::Instant::now();
    let counts = Mutex::new((0usize, 0usize, 0usize));
    let sequences = (
        prop_oneof![Just(0i64), Just(60), Just(600)],
        prop::collection::vec(event(), 1..=MAX_EVENTS),
    );
    let result = runner.run(&sequences, |(min_published, events)| {
        rt.block_on(async {
            let (store, _dir) = make();
            let mut model = Model::new(store, min_published, in_kms).await?;
            for (i, event) in events.iter().enumerate() {
                model.run(event).await.map_err(|e| {
                    fail(format!("after event {i} ({event:?}) at {}: {e}", model.now))
                })?;
            }
            let mut c = counts.lock().unwrap();
            c.0 += 1;
            c.1 += events.len();
            c.2 += model.checked;
            Ok(())
        })
    });
    let (sequences, events, checks) = *counts.lock().unwrap();
    eprintln!(
        "ring model on {name}: {sequences} sequences, {events} events, {checks} token checks, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_ring_contract_holds_for_random_event_sequences_in_memory() {
    run_sequences("the memory store", 8_000, false, || {
        (MemoryStore::new(), None)
    });
}

/// The same contract with every key in (the model's) KMS, plus custody's own: held keys stay
/// enabled, revoked ones do not, one key per change.
#[test]
fn the_ring_contract_holds_for_random_event_sequences_in_kms_custody() {
    run_sequences("the memory store, KMS custody", 2_000, true, || {
        (MemoryStore::new(), None)
    });
}

#[test]
fn the_ring_contract_holds_for_random_event_sequences_on_files() {
    run_sequences("the file store", 2_000, false, || {
        let (store, dir) = file_store();
        (store, Some(dir))
    });
}

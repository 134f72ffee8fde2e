//! The key ring: one stored version holds every key the service signs or verifies with, and the
//! record of what may never come back.
//!
//! - `current` signs;
//! - `next` is published and waits to sign;
//! - `retired` keys are verify-only (their public half only: a key that will never sign again
//!   has no business keeping its private half);
//! - `revoked` lists kids that were withdrawn by an emergency and must never reappear;
//! - `parent` is the digest of the ring this one was derived from (its lineage), and
//!   `rotation_id` the rotation that created it, if any.
//!
//! # The contract
//! These hold after *any* sequence of events: scheduled rotations at any spacing, crashes between
//! rotation steps and their retries, emergency revocations of any role, racing writers and clock
//! jumps. Every path that writes a ring or a published set goes through this module and
//! [`crate::store`]'s protocol, and `tests/tests/ring_model.rs` checks each invariant after every
//! event of random sequences.
//!
//! 1. **No live token loses its key.** Every unexpired token the service minted verifies against
//!    every published document unless its key was revoked. A key that stops signing stays
//!    published, verify-only, until `stopped + keep_published`, where `keep_published` is the
//!    longest token lifetime + the key cache TTL + the signing stale cap + the clock skew
//!    ([`RingPolicy::keep_published`]). `stopped` is the moment publication first showed another
//!    key signing; a ring derivation prunes a key only when the published set records that
//!    moment and it is far enough past (unknown means kept). At most [`MAX_VERIFY_ONLY`]
//!    verify-only keys are held: a scheduled rotation that would exceed the bound is deferred (the
//!    current key keeps signing) until the oldest can be pruned.
//! 2. **No key signs before caches have seen it.** A rotation promotes `next` only after the
//!    published set has shown it for [`RingPolicy::min_published`]
//!    (`CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS`, by default the public documents' `max-age` + the key
//!    cache TTL). A rotation that comes too early is *deferred*: the current key keeps signing,
//!    `next` keeps waiting, the rotation still prunes, and [`Rotated::deferred`] says why and
//!    when promotion becomes possible. Deferring rather than failing keeps Secrets Manager's
//!    schedule and CloudFormation's immediate rotations harmless. Two exceptions, each because no
//!    better key exists: the first ring's key signs at once (no cache can hold an earlier
//!    document), and revoking the signing key promotes `next` at once (a compromised key must
//!    stop now; `next` has at least been published since it was made).
//! 3. **A revoked kid never comes back.** `revoked` is inherited by every derived ring; no ring
//!    key and no published key is ever in it ([`RingState::check`], [`RingState::publication`]).
//!    Writing a revocation discards any pending rotation, and every rotation step checks lineage
//!    ([`RingState::descends_from`]), so a ring derived before the revocation never becomes
//!    current. A publication is written only while the rings it was computed from are still the
//!    stored ones ([`crate::store::Basis`]), so a writer that read the ring before a revocation
//!    cannot publish the revoked key after it. The list is bounded at [`MAX_REVOKED`]; forgetting the oldest entry is safe
//!    because lineage alone already keeps every ring that could hold it from being stored.
//! 4. **Racing writers: exactly one wins.** Every write of the current ring is a compare-and-swap
//!    on the *digest* of the ring it was derived from, so every writer that started from one base
//!    collides, whatever it wrote.
//! 5. **Caches follow content.** A cache keeps what it prepared until a refreshed document
//!    differs in content from the one it prepared it from, never by version number; writers
//!    name lineage by digest ([`RingState::digest`], [`crate::publish::PublicKeySet::digest`]).
//! 6. **Revocation reaches warm signers.** A warm function signs from a ring it could not refresh
//!    for at most the signing stale cap (`CHAT_AUTH_SIGNING_STALE_SECONDS`), shorter than the stale
//!    bound for verification material; past it, minting fails closed (see [`crate::cache`]).

use crate::keys::{KeyTimes, SigningKey, StoredKey, b64_std, thumbprint};
use crate::publish::{PublicKeySet, PublishedKey};
use crate::{Error, Result};
use aws_lc_rs::rsa::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The minimum rotation period: a key must stay published longer than any token lives (1 h).
pub const MIN_ROTATION_PERIOD: i64 = 2 * 3600;
/// At most this many verify-only keys, so that with `current` and `next` a published document
/// holds at most ten keys (Zendesk's limit for the same kind of overlapping rotation).
pub const MAX_VERIFY_ONLY: usize = 8;
/// At most this many revocations are remembered (about 60 bytes each in a 64 KiB secret).
pub const MAX_REVOKED: usize = 256;

/// The timing rules of the ring, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPolicy {
    /// Seconds between scheduled rotations; a new `next` plans to sign one period after it is
    /// made.
    pub rotation_period: i64,
    /// A key signs only after the published set has shown it this long (invariant 2).
    pub min_published: i64,
    /// A key stays published this long after it stopped signing (invariant 1).
    pub keep_published: i64,
}

impl RingPolicy {
    /// The rules from the service's settings: `min_published` as configured, and
    /// `keep_published` = the longest token lifetime + key cache TTL + signing stale cap + skew.
    pub fn new(
        rotation_period: i64,
        min_published: i64,
        key_cache_ttl: i64,
        signing_stale_for: i64,
        skew: i64,
    ) -> Self {
        RingPolicy {
            rotation_period,
            min_published,
            keep_published: crate::claims::MAX_TTL + key_cache_ttl + signing_stale_for + skew,
        }
    }
}

/// The ring rules plus the source of fresh keys.
///
/// Key generation is a parameter because RSA-2048 generation costs tens of milliseconds (the
/// model tests run thousands of sequences from a pre-generated pool), and because in KMS custody
/// a key is made by a network call ([`KeyCustody`]). Production uses [`Lifecycle::new`] or
/// [`Lifecycle::in_custody`].
#[derive(Clone)]
pub struct Lifecycle {
    /// The timing rules.
    pub policy: RingPolicy,
    keygen: Keygen,
}

type Generate = Arc<dyn Fn(KeyTimes) -> Result<StoredKey> + Send + Sync>;

#[derive(Clone)]
enum Keygen {
    /// Keys made here, at once, and held in the ring.
    Now(Generate),
    /// Keys a custody makes with a network call: the ring's derivations are synchronous, so
    /// [`Lifecycle::derive`] runs one twice, first to learn which keys it needs, then with them.
    Custody(Arc<dyn KeyCustody>),
    /// A derivation's first run: what it asks for is written down, and it gets stand-ins.
    Recording(Arc<Mutex<Vec<KeyTimes>>>),
    /// A derivation's second run: the keys the custody made, in the order the first run asked.
    Supplied(Arc<Mutex<VecDeque<StoredKey>>>),
}

/// Where keys whose private half this process never holds are made and withdrawn (AWS KMS,
/// `CHAT_AUTH_KEY_CUSTODY=kms`). Boxed futures so that a [`Lifecycle`] can hold any custody.
pub trait KeyCustody: Send + Sync + fmt::Debug {
    /// The `n`th new key of the ring change `id` (a rotation's token, or a revocation's id),
    /// with `times`. Asked again with the same `id` and `n`, as a retried or crashed step does,
    /// it returns the same key: one key per change, however often its step runs.
    fn create<'a>(&'a self, id: &'a str, n: usize, times: KeyTimes, now: i64) -> BoxFuture<'a>;
    /// Checks that `key` is the custody's, enabled, and has the public key the ring records:
    /// testSecret's check in this custody, where rotation may not sign.
    fn confirm<'a>(&'a self, key: &'a StoredKey) -> BoxFuture<'a, ()>;
    /// Withdraws what no ring in `keep` uses: every key named in `revoked` is disabled at once;
    /// then it and every other key of the custody that no ring holds and that is past
    /// `now`'s grace for changes still in flight is scheduled for deletion. Returns the keys it
    /// withdrew. Safe to repeat.
    fn withdraw<'a>(
        &'a self,
        keep: &'a [&'a RingState],
        revoked: &'a [String],
        now: i64,
    ) -> BoxFuture<'a, Vec<String>>;
}

/// A key in custody that no ring holds is left alone this long after it was made: a rotation or
/// a revocation may have made it and not yet stored its ring (steps run seconds apart).
pub const CUSTODY_GRACE: i64 = 3600;

/// Which of a custody's keys to withdraw ([`KeyCustody::withdraw`]'s rule, for every custody):
/// each key in `revoked` that no ring in `keep` holds, whatever its age, since a revoked key must
/// stop signing now; then each `held` key (its ARN and when it was made, by the ring clock) that
/// no ring in `keep` holds and that is past [`CUSTODY_GRACE`]. Unknown age means too young.
pub fn withdrawable(
    held: &[(String, Option<i64>)],
    keep: &[&RingState],
    revoked: &[String],
    now: i64,
) -> Vec<String> {
    let used: BTreeSet<&str> = keep.iter().flat_map(|ring| ring.kms_keys()).collect();
    let mut out: Vec<String> = Vec::new();
    let settled = held
        .iter()
        .filter(|(_, made)| made.is_some_and(|t| now - t >= CUSTODY_GRACE))
        .map(|(arn, _)| arn);
    for arn in revoked.iter().chain(settled) {
        if !used.contains(arn.as_str()) && !out.contains(arn) {
            out.push(arn.clone());
        }
    }
    out
}

/// What a [`KeyCustody`] call returns.
pub type BoxFuture<'a, T = StoredKey> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("policy", &self.policy)
            .field("custody", &self.custody())
            .finish()
    }
}

impl Lifecycle {
    /// Fresh RSA-2048 keys under `policy`, held in the ring (custody `secret`).
    pub fn new(policy: RingPolicy) -> Self {
        Self::with_keygen(policy, StoredKey::generate)
    }

    /// Keys from `keygen` (tests).
    pub fn with_keygen(
        policy: RingPolicy,
        keygen: impl Fn(KeyTimes) -> Result<StoredKey> + Send + Sync + 'static,
    ) -> Self {
        Lifecycle {
            policy,
            keygen: Keygen::Now(Arc::new(keygen)),
        }
    }

    /// Keys made and withdrawn by `custody` (custody `kms`).
    pub fn in_custody(policy: RingPolicy, custody: Arc<dyn KeyCustody>) -> Self {
        Lifecycle {
            policy,
            keygen: Keygen::Custody(custody),
        }
    }

    /// The custody that holds the keys, when it is not the ring.
    pub fn custody(&self) -> Option<&dyn KeyCustody> {
        match &self.keygen {
            Keygen::Custody(custody) => Some(custody.as_ref()),
            _ => None,
        }
    }

    /// Runs the derivation `derive` (a rotation, a revocation, a first ring) for the ring change
    /// `id`. With a custody, it runs twice: once with stand-in keys to learn which keys it needs,
    /// then with the keys the custody made, so a derivation that needs none (a deferred
    /// rotation) makes none. Derivations are pure functions of their inputs, so both runs ask
    /// for the same keys.
    pub async fn derive<T>(
        &self,
        id: &str,
        now: i64,
        derive: impl Fn(&Lifecycle) -> Result<T>,
    ) -> Result<T> {
        let Keygen::Custody(custody) = &self.keygen else {
            return derive(self);
        };
        let asked = Arc::new(Mutex::new(Vec::new()));
        derive(&self.using(Keygen::Recording(asked.clone())))?;
        let asked = std::mem::take(&mut *lock(&asked));
        let mut made = VecDeque::new();
        for (n, times) in asked.into_iter().enumerate() {
            made.push_back(custody.create(id, n, times, now).await?);
        }
        let supplied = Arc::new(Mutex::new(made));
        let derived = derive(&self.using(Keygen::Supplied(supplied.clone())))?;
        if !lock(&supplied).is_empty() {
            return Err(Error::Rotation(
                "a derivation asked for other keys on its second run".into(),
            ));
        }
        Ok(derived)
    }

    fn using(&self, keygen: Keygen) -> Lifecycle {
        Lifecycle {
            policy: self.policy,
            keygen,
        }
    }

    fn fresh(&self, times: KeyTimes) -> Result<StoredKey> {
        match &self.keygen {
            Keygen::Now(generate) => generate(times),
            Keygen::Custody(_) => Err(Error::Rotation(
                "a key in custody is made only through Lifecycle::derive".into(),
            )),
            Keygen::Recording(asked) => {
                let mut asked = lock(asked);
                asked.push(times);
                Ok(StoredKey {
                    kid: format!("~stand-in-{}", asked.len()),
                    times,
                    material: crate::keys::Material::Kms {
                        kms_key: String::new(),
                        spki: Vec::new(),
                    },
                })
            }
            Keygen::Supplied(made) => match lock(made).pop_front() {
                Some(key) if key.times == times => Ok(key),
                _ => Err(Error::Rotation(
                    "a derivation asked for other keys on its second run".into(),
                )),
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A key that no longer signs: its public half and its schedule (`retires` is when this ring
/// demoted it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Schedule.
    #[serde(flatten)]
    pub times: KeyTimes,
    /// SubjectPublicKeyInfo DER.
    #[serde(with = "b64_std")]
    pub spki: Vec<u8>,
    /// In KMS custody, the KMS key, kept until the key is pruned so that its custody can then
    /// schedule its deletion (absent in custody `secret`, so such rings store as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

/// A kid withdrawn by an emergency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Kept after the key itself is gone, so that no later ring or publication can bring a key
    /// with this thumbprint back.
    pub kid: String,
    /// When (unix seconds).
    pub at: i64,
    /// In KMS custody, the KMS key that held it: every later withdrawal disables it again, so
    /// a revocation a crash interrupted is finished by the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

/// One version of the private ring, as stored (signing secret / `ring.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingState {
    /// Increases by one at every change; for people reading logs (caches and writers use the
    /// digest).
    pub version: u64,
    /// Digest of the ring this one was derived from; `None` for a first ring.
    pub parent: Option<String>,
    /// The rotation (Secrets Manager's ClientRequestToken, or a local id) that created it.
    #[serde(default)]
    pub rotation_id: Option<String>,
    /// The rotation period this ring was made with.
    pub rotation_period: i64,
    /// The signing key.
    pub current: StoredKey,
    /// Published, signs after a later rotation.
    pub next: StoredKey,
    /// Verify-only keys that still cover live tokens, oldest first.
    #[serde(default)]
    pub retired: Vec<RetiredKey>,
    /// Kids that must never come back, oldest first.
    #[serde(default)]
    pub revoked: Vec<Revocation>,
}

/// What a scheduled rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The derived ring.
    pub ring: RingState,
    /// Why `next` was not promoted, if it was not.
    pub deferred: Option<Deferral>,
    /// Verify-only keys dropped because every token they signed has expired.
    pub pruned: Vec<String>,
}

/// Why a scheduled rotation kept the current key signing (invariants 1 and 2). Its `Display`
/// is what operators read: `chat-auth rotate` prints it, and rotate-keys' summary carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferral {
    /// `next` is not in the published set yet, so no cache can have seen it.
    NextNotPublished {
        /// `next`'s kid.
        kid: String,
        /// How long it must then stay published before it signs, in seconds.
        min_published: i64,
    },
    /// `next` is published, but for less than caches need.
    NextPublishedTooRecently {
        /// `next`'s kid.
        kid: String,
        /// Seconds it has been published.
        published_for: i64,
        /// Seconds caches need ([`RingPolicy::min_published`]).
        min_published: i64,
        /// The first time a rotation promotes it.
        usable_at: i64,
    },
    /// Promoting would retire a key past [`MAX_VERIFY_ONLY`] verify-only keys, each still
    /// covering live tokens.
    TooManyVerifyOnly {
        /// When the oldest can be pruned; `None` until a publication records when it stopped
        /// signing.
        prunable_at: Option<i64>,
    },
}

impl std::fmt::Display for Deferral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Deferral::NextNotPublished { kid, min_published } => write!(
                f,
                "next key {kid} is not in the published set yet; it signs once it has been published for {min_published} s"
            ),
            Deferral::NextPublishedTooRecently {
                kid,
                published_for,
                min_published,
                usable_at,
            } => write!(
                f,
                "next key {kid} has been published for {published_for} s of the {min_published} s caches need; a rotation at or after {usable_at} promotes it"
            ),
            Deferral::TooManyVerifyOnly { prunable_at } => {
                write!(
                    f,
                    "the ring already holds {MAX_VERIFY_ONLY} verify-only keys that cover live tokens; the oldest can be pruned at "
                )?;
                match prunable_at {
                    Some(t) => write!(f, "{t}"),
                    None => f.write_str("its next publication"),
                }
            }
        }
    }
}

impl RingState {
    /// A first ring with fresh RSA keys: current signs from `now`, next is planned one period on.
    pub fn generate(now: i64, rotation_period: i64) -> Result<Self> {
        check_period(rotation_period)?;
        Self::genesis(
            &Lifecycle::new(RingPolicy::new(rotation_period, 0, 0, 0, 0)),
            now,
        )
    }

    /// A first ring under `life`.
    pub fn genesis(life: &Lifecycle, now: i64) -> Result<Self> {
        let period = life.policy.rotation_period;
        check_period(period)?;
        Ok(RingState {
            version: 1,
            parent: None,
            rotation_id: None,
            rotation_period: period,
            current: life.fresh(KeyTimes {
                created: now,
                activates: now,
                retires: now + period,
            })?,
            next: life.fresh(next_times(now, period))?,
            retired: Vec::new(),
            revoked: Vec::new(),
        })
    }

    /// SHA-256 (hex) of the stored form: the ring's identity for caches, lineage and
    /// compare-and-swap.
    pub fn digest(&self) -> String {
        crate::crypto::hex_digest(&self.to_json())
    }

    /// Every kid the ring holds, signing first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        [self.current.kid.as_str(), self.next.kid.as_str()]
            .into_iter()
            .chain(self.retired.iter().map(|k| k.kid.as_str()))
    }

    /// True when `kid` was revoked.
    pub fn is_revoked(&self, kid: &str) -> bool {
        self.revoked.iter().any(|r| r.kid == kid)
    }

    /// The KMS key behind `kid`, in KMS custody.
    pub fn kms_key_of(&self, kid: &str) -> Option<String> {
        [&self.current, &self.next]
            .into_iter()
            .find(|k| k.kid == kid)
            .and_then(|k| k.kms_key().map(str::to_owned))
            .or_else(|| {
                self.retired
                    .iter()
                    .find(|k| k.kid == kid)
                    .and_then(|k| k.kms_key.clone())
            })
    }

    /// Every KMS key this ring uses, signing or verify-only.
    pub fn kms_keys(&self) -> impl Iterator<Item = &str> {
        [&self.current, &self.next]
            .into_iter()
            .filter_map(StoredKey::kms_key)
            .chain(self.retired.iter().filter_map(|k| k.kms_key.as_deref()))
    }

    fn child(&self, period: i64) -> RingState {
        RingState {
            version: self.version + 1,
            parent: Some(self.digest()),
            rotation_id: None,
            rotation_period: period,
            ..self.clone()
        }
    }

    /// Scheduled rotation: prune what has expired, then promote `next` if invariants 1 and 2
    /// allow it; otherwise the current key keeps signing and [`Rotated::deferred`] says why.
    pub fn rotate(
        &self,
        published: Option<&PublicKeySet>,
        life: &Lifecycle,
        now: i64,
    ) -> Result<Rotated> {
        let policy = life.policy;
        check_period(policy.rotation_period)?;
        let mut ring = self.child(policy.rotation_period);
        let pruned = ring.prune(published, &policy, now);
        let shown = published
            .and_then(|set| set.key(&self.next.kid))
            .and_then(|k| k.published);
        let deferred = match shown {
            None => Some(Deferral::NextNotPublished {
                kid: self.next.kid.clone(),
                min_published: policy.min_published,
            }),
            Some(since) if now - since < policy.min_published => {
                Some(Deferral::NextPublishedTooRecently {
                    kid: self.next.kid.clone(),
                    published_for: now - since,
                    min_published: policy.min_published,
                    usable_at: since + policy.min_published,
                })
            }
            Some(_) if ring.retired.len() >= MAX_VERIFY_ONLY => Some(Deferral::TooManyVerifyOnly {
                prunable_at: ring
                    .retired
                    .first()
                    .and_then(|k| stopped_at(k, published))
                    .map(|t| t + policy.keep_published),
            }),
            Some(_) => None,
        };
        if deferred.is_none() {
            let mut retired = self.current.clone();
            retired.times.retires = now;
            ring.retired.push(RetiredKey {
                kid: retired.kid.clone(),
                spki: retired.spki()?,
                times: retired.times,
                kms_key: retired.kms_key().map(str::to_owned),
            });
            ring.current = self.next.clone();
            ring.current.times.activates = now;
            ring.current.times.retires = now + policy.rotation_period;
            ring.next = life.fresh(next_times(now, policy.rotation_period))?;
        }
        Ok(Rotated {
            ring,
            deferred,
            pruned,
        })
    }

    /// Emergency revocation of any key: the current key (next signs at once), next (a fresh
    /// next replaces it) or a verify-only key (its tokens stop verifying). The kid is recorded so
    /// that it never comes back.
    pub fn revoke(
        &self,
        kid: &str,
        published: Option<&PublicKeySet>,
        life: &Lifecycle,
        now: i64,
    ) -> Result<RingState> {
        let period = self.rotation_period;
        let mut ring = self.child(period);
        let kms_key = self.kms_key_of(kid);
        if self.current.kid == kid {
            ring.current = self.next.clone();
            ring.current.times.activates = now;
            ring.current.times.retires = now + period;
            ring.next = life.fresh(next_times(now, period))?;
        } else if self.next.kid == kid {
            ring.next = life.fresh(next_times(now, period))?;
        } else if let Some(i) = self.retired.iter().position(|k| k.kid == kid) {
            ring.retired.remove(i);
        } else {
            return Err(Error::Rotation(format!(
                "no key {:?} in the ring",
                kid.chars().take(64).collect::<String>()
            )));
        }
        ring.revoked.push(Revocation {
            kid: kid.to_owned(),
            at: now,
            kms_key,
        });
        let excess = ring.revoked.len().saturating_sub(MAX_REVOKED);
        ring.revoked.drain(..excess);
        ring.prune(published, &life.policy, now);
        Ok(ring)
    }

    /// Drops the verify-only keys whose tokens have all expired, by the stop time publication
    /// recorded (invariant 1); returns their kids.
    fn prune(
        &mut self,
        published: Option<&PublicKeySet>,
        policy: &RingPolicy,
        now: i64,
    ) -> Vec<String> {
        let mut pruned = Vec::new();
        self.retired.retain(|key| {
            let expired = stopped_at(key, published)
                .is_some_and(|stopped| stopped + policy.keep_published <= now);
            if expired {
                pruned.push(key.kid.clone());
            }
            !expired
        });
        pruned
    }

    /// Checks lineage: this ring was derived from `base` (`None`: it is a first ring).
    pub fn descends_from(&self, base: Option<&RingState>) -> Result<()> {
        let expected = base.map(RingState::digest);
        if self.parent == expected {
            return Ok(());
        }
        Err(Error::Rotation(format!(
            "the pending ring (version {}) was derived from {}, but the current ring is {}; another writer or an emergency revocation came first, so this rotation cannot finish: start a new one",
            self.version,
            short(self.parent.as_deref()),
            short(expected.as_deref()),
        )))
    }

    /// The set to publish while this ring is current, carrying over what `before` (the set
    /// published so far) recorded. With `incoming` (a pending ring derived from this one), its
    /// new keys are published too while this ring's current key keeps signing (setSecret).
    ///
    /// Publication records when each key first appeared and when it stopped signing; rotation
    /// reads those times back for invariants 1 and 2. Revoked kids of either ring are left out.
    pub fn publication(
        &self,
        incoming: Option<&RingState>,
        before: Option<&PublicKeySet>,
        policy: &RingPolicy,
        now: i64,
    ) -> Result<PublicKeySet> {
        let revoked: BTreeSet<&str> = self
            .revoked
            .iter()
            .chain(incoming.into_iter().flat_map(|r| r.revoked.iter()))
            .map(|r| r.kid.as_str())
            .collect();
        let mut keys: Vec<PublishedKey> = Vec::new();
        let mut add = |kid: &str, spki: Vec<u8>, times: KeyTimes, signed: Signed| {
            if revoked.contains(kid) || keys.iter().any(|k| k.kid == kid) {
                return;
            }
            let prior = before.and_then(|set| set.key(kid));
            let stopped = match signed {
                Signed::Now | Signed::Never => None,
                Signed::Before => Some(
                    prior
                        .and_then(|k| k.stopped)
                        .unwrap_or(now)
                        .max(times.retires),
                ),
            };
            keys.push(PublishedKey {
                kid: kid.to_owned(),
                spki,
                activates: times.activates,
                retires: times.retires,
                expiry: stopped.map_or(times.retires + self.rotation_period, |t| {
                    t + policy.keep_published
                }),
                published: Some(prior.and_then(|k| k.published).unwrap_or(now)),
                stopped,
            });
        };
        add(
            &self.current.kid,
            self.current.spki()?,
            self.current.times,
            Signed::Now,
        );
        for ring in std::iter::once(self).chain(incoming) {
            add(
                &ring.next.kid,
                ring.next.spki()?,
                ring.next.times,
                Signed::Never,
            );
            for key in &ring.retired {
                add(&key.kid, key.spki.clone(), key.times, Signed::Before);
            }
        }
        let mut revoked: Vec<String> = revoked.into_iter().map(str::to_owned).collect();
        let excess = revoked.len().saturating_sub(MAX_REVOKED);
        revoked.drain(..excess);
        Ok(PublicKeySet {
            version: incoming.map_or(self.version, |r| r.version.max(self.version)),
            current_kid: self.current.kid.clone(),
            keys,
            revoked,
        })
    }

    /// This ring's keys as a first publication would show them at its current key's
    /// activation, with the default rules: for tools and tests that need a set from a ring alone.
    pub fn public_set(&self) -> Result<PublicKeySet> {
        let policy = RingPolicy::new(self.rotation_period, 0, 300, 60, 30);
        self.publication(None, None, &policy, self.current.times.activates)
    }

    /// The structural rules every stored ring obeys: unique kids, none of them revoked, and
    /// verify-only keys whose kid is their thumbprint.
    pub fn check(&self) -> Result<()> {
        let kids: Vec<&str> = self.kids().collect();
        for (i, kid) in kids.iter().enumerate() {
            if kids[..i].contains(kid) {
                return Err(Error::corrupt(
                    "key ring",
                    format!("kid {kid} appears twice"),
                ));
            }
            if self.is_revoked(kid) {
                return Err(Error::corrupt(
                    "key ring",
                    format!("kid {kid} is both held and revoked"),
                ));
            }
        }
        for key in &self.retired {
            let public = PublicKey::from_der(&key.spki)
                .map_err(|e| Error::corrupt("key ring", format!("key {}: {e}", key.kid)))?;
            if thumbprint(&public) != key.kid {
                return Err(Error::corrupt(
                    "key ring",
                    format!("kid {} does not match its key's thumbprint", key.kid),
                ));
            }
        }
        Ok(())
    }

    /// Parses the signing key; the result signs without further parsing.
    pub fn load(&self) -> Result<LoadedRing> {
        self.validate()?;
        Ok(LoadedRing {
            version: self.version,
            signer: self.current.parse()?,
        })
    }

    /// The ring's invariants and both keys checked (aws-lc's parse is remembered by digest), with
    /// no signer built: [`RingState::from_json`] runs on every cache refresh, and only a changed
    /// ring is loaded for signing.
    fn validate(&self) -> Result<()> {
        self.check()?;
        self.current.validate()?;
        self.next.validate()
    }

    /// Parses a stored ring document and checks it.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let ring: RingState =
            serde_json::from_slice(bytes).map_err(Error::unreadable("key ring"))?;
        check_period(ring.rotation_period)
            .map_err(|_| Error::corrupt("key ring", "rotation_period is too short"))?;
        ring.validate()?;
        Ok(ring)
    }

    /// The stored form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Whether a key signs in the ring being published.
#[derive(Clone, Copy)]
enum Signed {
    Now,
    Never,
    Before,
}

/// When publication first showed `key` no longer signing, if it recorded that.
fn stopped_at(key: &RetiredKey, published: Option<&PublicKeySet>) -> Option<i64> {
    published
        .and_then(|set| set.key(&key.kid))
        .and_then(|k| k.stopped)
        .map(|t| t.max(key.times.retires))
}

fn short(digest: Option<&str>) -> String {
    digest.map_or_else(
        || "no ring".to_owned(),
        |d| format!("ring {}", &d[..d.len().min(12)]),
    )
}

fn next_times(now: i64, period: i64) -> KeyTimes {
    KeyTimes {
        created: now,
        activates: now + period,
        retires: now + 2 * period,
    }
}

fn check_period(period: i64) -> Result<()> {
    if period < MIN_ROTATION_PERIOD {
        return Err(Error::Rotation(format!(
            "rotation period {period} s is shorter than the minimum {MIN_ROTATION_PERIOD} s"
        )));
    }
    Ok(())
}

/// A ring version with its signing key parsed.
#[derive(Debug)]
pub struct LoadedRing {
    /// The ring version it came from.
    pub version: u64,
    /// The current key.
    pub signer: SigningKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn life(min_published: i64) -> Lifecycle {
        Lifecycle::new(RingPolicy::new(
            MIN_ROTATION_PERIOD,
            min_published,
            300,
            60,
            30,
        ))
    }

    #[test]
    fn next_signs_only_after_it_has_been_published_long_enough() {
        let life = life(600);
        let ring = RingState::genesis(&life, 0).unwrap();
        let unpublished = ring.rotate(None, &life, 10).unwrap();
        assert_eq!(
            unpublished.deferred,
            Some(Deferral::NextNotPublished {
                kid: ring.next.kid.clone(),
                min_published: 600
            })
        );
        assert_eq!(unpublished.ring.current, ring.current);

        let set = ring.publication(None, None, &life.policy, 0).unwrap();
        let early = ring.rotate(Some(&set), &life, 599).unwrap();
        assert_eq!(
            early.deferred,
            Some(Deferral::NextPublishedTooRecently {
                kid: ring.next.kid.clone(),
                published_for: 599,
                min_published: 600,
                usable_at: 600
            })
        );
        assert_eq!(early.ring.next, ring.next, "next keeps waiting");
        assert_eq!(early.ring.parent.as_deref(), Some(ring.digest().as_str()));

        let on_time = ring.rotate(Some(&set), &life, 600).unwrap();
        assert_eq!(on_time.deferred, None);
        assert_eq!(on_time.ring.current.kid, ring.next.kid);
        assert_eq!(on_time.ring.retired[0].kid, ring.current.kid);
        assert_eq!(on_time.ring.retired[0].times.retires, 600);
    }

    /// Operators and the rotate-keys summary read these sentences; tests elsewhere match them.
    #[test]
    fn a_deferral_reads_as_it_always_has() {
        let text = |d: Deferral| d.to_string();
        assert_eq!(
            text(Deferral::NextNotPublished {
                kid: "k".into(),
                min_published: 600
            }),
            "next key k is not in the published set yet; it signs once it has been published for 600 s"
        );
        assert_eq!(
            text(Deferral::NextPublishedTooRecently {
                kid: "k".into(),
                published_for: 599,
                min_published: 600,
                usable_at: 600
            }),
            "next key k has been published for 599 s of the 600 s caches need; a rotation at or after 600 promotes it"
        );
        assert_eq!(
            text(Deferral::TooManyVerifyOnly {
                prunable_at: Some(7)
            }),
            "the ring already holds 8 verify-only keys that cover live tokens; the oldest can be pruned at 7"
        );
        assert_eq!(
            text(Deferral::TooManyVerifyOnly { prunable_at: None }),
            "the ring already holds 8 verify-only keys that cover live tokens; the oldest can be pruned at its next publication"
        );
    }

    #[test]
    fn a_rotation_past_the_verify_only_bound_waits_for_the_oldest_to_go() {
        let life = life(0);
        let mut ring = RingState::genesis(&life, 0).unwrap();
        let mut set = ring.publication(None, None, &life.policy, 0).unwrap();
        for t in 1..=MAX_VERIFY_ONLY as i64 {
            ring = ring.rotate(Some(&set), &life, t * 10).unwrap().ring;
            set = ring
                .publication(None, Some(&set), &life.policy, t * 10)
                .unwrap();
        }
        assert_eq!(ring.retired.len(), MAX_VERIFY_ONLY);
        let stopped = set.key(&ring.retired[0].kid).unwrap().stopped.unwrap();
        let held = ring.rotate(Some(&set), &life, 100).unwrap();
        assert_eq!(
            held.deferred,
            Some(Deferral::TooManyVerifyOnly {
                prunable_at: Some(stopped + life.policy.keep_published)
            })
        );
        assert_eq!(held.ring.current, ring.current);
    }

    #[test]
    fn a_retired_key_is_pruned_only_once_its_tokens_have_expired() {
        let life = life(0);
        let keep = life.policy.keep_published;
        let first = RingState::genesis(&life, 0).unwrap();
        let set = first.publication(None, None, &life.policy, 0).unwrap();
        let second = first.rotate(Some(&set), &life, 100).unwrap().ring;
        // Publication learns the stop time when it first shows the old key as verify-only.
        let set = second
            .publication(None, Some(&set), &life.policy, 150)
            .unwrap();
        assert_eq!(set.key(&first.current.kid).unwrap().stopped, Some(150));
        assert_eq!(set.key(&first.current.kid).unwrap().expiry, 150 + keep);
        assert_eq!(keep, H + 300 + 60 + 30);
        let before = second.rotate(Some(&set), &life, 150 + keep - 1).unwrap();
        assert!(before.pruned.is_empty());
        assert!(before.ring.kids().any(|k| k == first.current.kid));
        let after = second.rotate(Some(&set), &life, 150 + keep).unwrap();
        assert_eq!(after.pruned, vec![first.current.kid.clone()]);
        // Without a record of the stop time nothing is pruned.
        let unknown = second.rotate(None, &life, 100 * keep).unwrap();
        assert!(unknown.pruned.is_empty());
    }

    #[test]
    fn revoking_any_role_records_it_and_keeps_it_out() {
        let life = life(0);
        let ring = RingState::genesis(&life, 0).unwrap();
        let set = ring.publication(None, None, &life.policy, 0).unwrap();
        let ring = ring.rotate(Some(&set), &life, 10).unwrap().ring;
        let retired = ring.retired[0].kid.clone();
        for kid in [&ring.current.kid, &ring.next.kid, &retired] {
            let after = ring.revoke(kid, None, &life, 20).unwrap();
            assert!(after.kids().all(|k| k != kid));
            assert!(after.is_revoked(kid));
            after.check().unwrap();
            let published = after
                .publication(None, Some(&set), &life.policy, 20)
                .unwrap();
            assert!(published.key(kid).is_none());
            assert!(published.revoked.contains(kid));
        }
        let after = ring.revoke(&ring.current.kid, None, &life, 20).unwrap();
        assert_eq!(after.current.kid, ring.next.kid, "next signs at once");
        assert_eq!(
            ring.revoke("nope", None, &life, 20).unwrap_err().code(),
            "rotation_refused"
        );
        // A ring that holds a revoked kid is corrupt.
        let mut bad = after.clone();
        bad.revoked[0].kid = bad.next.kid.clone();
        assert_eq!(bad.check().unwrap_err().code(), "key_store_corrupt");
    }

    #[test]
    fn lineage_refuses_a_pending_ring_from_another_base() {
        let life = life(0);
        let base = RingState::genesis(&life, 0).unwrap();
        let pending = base.rotate(None, &life, 10).unwrap().ring;
        pending.descends_from(Some(&base)).unwrap();
        let revoked = base.revoke(&base.current.kid, None, &life, 11).unwrap();
        let err = pending.descends_from(Some(&revoked)).unwrap_err();
        assert!(err.to_string().contains("start a new one"), "{err}");
        assert!(pending.descends_from(None).is_err());
        base.descends_from(None).unwrap();
    }

    #[test]
    fn stored_ring_round_trips_and_detects_tampering() {
        let r = RingState::generate(0, 86_400).unwrap();
        assert_eq!(RingState::from_json(&r.to_json()).unwrap(), r);
        let mut bad = r.clone();
        bad.current.kid = bad.next.kid.clone();
        assert_eq!(
            RingState::from_json(&bad.to_json()).unwrap_err().code(),
            "key_store_corrupt"
        );
        assert!(RingState::from_json(b"{\"version\":1}").is_err());
        assert!(
            RingState::generate(0, H).is_err(),
            "periods shorter than 2 h"
        );
    }
}

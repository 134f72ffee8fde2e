//! Where the key ring and the published key set live, and the one rotation protocol every host
//! runs over them.
//!
//! Stores are split by capability: signing functions read the private ring ([`RingSource`]);
//! verifying functions read only the public set ([`PublicKeySource`]); rotation writes both
//! ([`KeyStore`]). A store holds a current ring, at most one pending ring (named by its rotation
//! id, as Secrets Manager's AWSPENDING version is named by its ClientRequestToken) and the
//! published set. Every write of the current ring is a compare-and-swap on the digest of the ring
//! it replaces, and every publication is computed from the rings and the set as the store holds
//! them when it writes ([`Basis`]): a publication overtaken by another writer is computed again,
//! never written from its earlier read.
//!
//! The protocol is Secrets Manager's four steps ([`create`], [`set`], [`test`], [`finish`]),
//! each safe to repeat and to resume after a crash at any point; the local `chat-auth rotate`
//! runs the same four in a row ([`rotate`]). [`revoke`] is the emergency path. The invariants
//! they keep are written in [`crate::ring`].

use crate::claims::mint;
use crate::context::CustomContext;
use crate::jwt::Validator;
use crate::publish::PublicKeySet;
use crate::ring::{Lifecycle, RingState, Rotated};
use crate::{Error, Result, TokenPolicy};
use std::future::Future;

/// Reads the private ring.
pub trait RingSource: Send + Sync + 'static {
    /// The current ring, if one exists.
    fn load_ring(&self) -> impl Future<Output = Result<Option<RingState>>> + Send;
}

/// Reads the published public key set.
pub trait PublicKeySource: Send + Sync + 'static {
    /// The published set, if one exists.
    fn load_public(&self) -> impl Future<Output = Result<Option<PublicKeySet>>> + Send;
}

/// Where a rotation id stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The current ring was created by it: the rotation is done.
    Current,
    /// It names the pending version.
    Pending,
    /// Neither.
    Unknown,
}

/// Writes the ring and the published set.
pub trait KeyStore: RingSource + PublicKeySource {
    /// Stores `ring` as current only if the current ring's digest is `base` (`None`: no ring
    /// yet), otherwise fails with [`Error::Conflict`]. Discards any pending rotation: it was
    /// derived from the ring this write replaces.
    fn save_ring(
        &self,
        base: Option<&str>,
        ring: &RingState,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the published set with `set`, computed from `basis`, only while the store still
    /// holds everything `basis` names; otherwise fails with [`Error::Conflict`] and, where the
    /// store can, writes nothing.
    ///
    /// This is what keeps invariant 3 of [`crate::ring`] against a slow writer: a set computed
    /// from a ring that an emergency revocation has since replaced still lists the revoked key.
    /// A store with a lock checks and writes under it; Secrets Manager, which has no
    /// conditional write across two secrets, checks before and after the write, and the
    /// protocol republishes from the ring as it is whenever a publication conflicts.
    fn publish(&self, basis: &Basis, set: &PublicKeySet)
    -> impl Future<Output = Result<()>> + Send;
    /// Where rotation `id` stands.
    fn stage(&self, id: &str) -> impl Future<Output = Result<Stage>> + Send;
    /// The pending ring of rotation `id`, if that rotation is pending and holds one.
    fn load_pending(&self, id: &str) -> impl Future<Output = Result<Option<RingState>>> + Send;
    /// The pending ring of whichever rotation is in progress: every publication shows its keys,
    /// so that a republication in the middle of a rotation (a restart, an operator command)
    /// never withdraws keys that setSecret published.
    fn load_any_pending(&self) -> impl Future<Output = Result<Option<RingState>>> + Send;
    /// Stores `ring` as the pending version of rotation `id` (a pending version of another
    /// rotation is superseded). Writing the same ring again is a no-op; another ring under the
    /// same id is a conflict.
    fn put_pending(&self, id: &str, ring: &RingState) -> impl Future<Output = Result<()>> + Send;
    /// Makes the pending ring of rotation `id` current, only if the current ring's digest is
    /// `base`; the pending version ends.
    fn promote(&self, id: &str, base: Option<&str>) -> impl Future<Output = Result<()>> + Send;
}

impl<T: RingSource> RingSource for std::sync::Arc<T> {
    fn load_ring(&self) -> impl Future<Output = Result<Option<RingState>>> + Send {
        (**self).load_ring()
    }
}

impl<T: PublicKeySource> PublicKeySource for std::sync::Arc<T> {
    fn load_public(&self) -> impl Future<Output = Result<Option<PublicKeySet>>> + Send {
        (**self).load_public()
    }
}

impl<T: KeyStore> KeyStore for std::sync::Arc<T> {
    fn save_ring(
        &self,
        base: Option<&str>,
        ring: &RingState,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).save_ring(base, ring)
    }
    fn publish(
        &self,
        basis: &Basis,
        set: &PublicKeySet,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).publish(basis, set)
    }
    fn stage(&self, id: &str) -> impl Future<Output = Result<Stage>> + Send {
        (**self).stage(id)
    }
    fn load_pending(&self, id: &str) -> impl Future<Output = Result<Option<RingState>>> + Send {
        (**self).load_pending(id)
    }
    fn load_any_pending(&self) -> impl Future<Output = Result<Option<RingState>>> + Send {
        (**self).load_any_pending()
    }
    fn put_pending(&self, id: &str, ring: &RingState) -> impl Future<Output = Result<()>> + Send {
        (**self).put_pending(id, ring)
    }
    fn promote(&self, id: &str, base: Option<&str>) -> impl Future<Output = Result<()>> + Send {
        (**self).promote(id, base)
    }
}

/// What a publication is computed from, as read from the store just before: the current ring,
/// the pending ring published beside it (alone when there is no current ring yet) and the set it
/// replaces (whose recorded times it carries over).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Basis {
    /// The current ring.
    pub current: Option<RingState>,
    /// The pending ring whose keys are published beside the current ones: the one stored, if
    /// it derives from the current ring (one that does not will never become current).
    pub incoming: Option<RingState>,
    /// The published set this publication replaces.
    pub published: Option<PublicKeySet>,
}

impl Basis {
    /// The store's rings and published set, as they are now.
    pub async fn read<S: KeyStore>(store: &S) -> Result<Basis> {
        let current = store.load_ring().await?;
        let incoming = store
            .load_any_pending()
            .await?
            .filter(|pending| pending.descends_from(current.as_ref()).is_ok());
        Ok(Basis {
            current,
            incoming,
            published: store.load_public().await?,
        })
    }

    /// The set these rings should show at `now`.
    pub fn publication(&self, life: &Lifecycle, now: i64) -> Result<PublicKeySet> {
        let (ring, incoming) = match (&self.current, &self.incoming) {
            (Some(current), incoming) => (current, incoming.as_ref()),
            (None, Some(first)) => (first, None),
            (None, None) => return Err(Error::NotProvisioned("key ring")),
        };
        ring.publication(incoming, self.published.as_ref(), &life.policy, now)
    }
}

/// How often [`republish`] reads the ring again when another writer keeps overtaking it.
const PUBLISH_ATTEMPTS: usize = 8;

/// Publishes what the stored rings should show, unless it is published exactly, computed from
/// the rings and the set as they are when the store writes (read again each time another writer
/// overtakes this one). Returns what it published and the basis it published from.
async fn republish<S: KeyStore>(
    store: &S,
    life: &Lifecycle,
    now: i64,
) -> Result<(PublicKeySet, Basis)> {
    let mut conflict = None;
    for _ in 0..PUBLISH_ATTEMPTS {
        let basis = Basis::read(store).await?;
        let set = basis.publication(life, now)?;
        if basis.published.as_ref() == Some(&set) {
            return Ok((set, basis));
        }
        match store.publish(&basis, &set).await {
            Ok(()) => return Ok((set, basis)),
            Err(Error::Conflict(why)) => conflict = Some(why),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!(
        "the key ring kept changing while it was being published ({PUBLISH_ATTEMPTS} attempts): {}",
        conflict.unwrap_or_default()
    )))
}

/// Returns the current ring, creating a first one when there is none, and republishing when a
/// crash left the published set behind the ring (or another writer got there in between).
pub async fn ensure_ring<S: KeyStore>(store: &S, life: &Lifecycle, now: i64) -> Result<RingState> {
    if store.load_ring().await?.is_none() {
        // One id for every first ring: racing starts in custody ask for the same keys.
        let ring = life
            .derive("genesis", now, |life| RingState::genesis(life, now))
            .await?;
        match store.save_ring(None, &ring).await {
            Ok(()) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    current_of(republish(store, life, now).await?.1)
}

fn current_of(basis: Basis) -> Result<RingState> {
    basis.current.ok_or(Error::NotProvisioned("key ring"))
}

/// One of the four rotation steps; [`Step::as_str`] is the name Secrets Manager's rotation
/// event carries, written nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// createSecret: derive the pending ring.
    Create,
    /// setSecret: publish the pending ring's keys beside the current ones.
    Set,
    /// testSecret: a token signed by the pending key verifies against what is published.
    Test,
    /// finishSecret: the pending ring becomes current and its set is published.
    Finish,
}

/// The four steps in order.
pub const STEPS: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

impl Step {
    /// The step's name in a rotation event's `Step` member.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }

    /// The step a rotation event names, if it is one of the four.
    pub fn from_name(name: &str) -> Option<Step> {
        STEPS.into_iter().find(|step| step.as_str() == name)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a step did: for `Create`, the rotation it derived (`None` when the pending ring
/// already existed).
pub type StepOutcome = Option<Rotated>;

/// Runs one step of rotation `id`, after the generic guards: a rotation whose ring is already
/// current is done (a repeated finish republishes, in case a crash came between the stage move
/// and the publication); any other id must be pending, except that `Create` may start one.
pub async fn step<S: KeyStore>(
    store: &S,
    id: &str,
    step: Step,
    life: &Lifecycle,
    now: i64,
) -> Result<StepOutcome> {
    match store.stage(id).await? {
        Stage::Current => {
            tracing::info!(?step, id, "the rotation's ring is already current");
            if step == Step::Finish {
                republish(store, life, now).await?;
            }
            return Ok(None);
        }
        Stage::Unknown if step != Step::Create => return Err(superseded(id)),
        Stage::Pending | Stage::Unknown => {}
    }
    match step {
        Step::Create => create(store, id, life, now).await,
        Step::Set => set(store, id, life, now).await.map(|()| None),
        Step::Test => test(store, id, life, now).await.map(|()| None),
        Step::Finish => finish(store, id, life, now).await.map(|()| None),
    }
}

async fn current_ring<S: RingSource>(store: &S) -> Result<RingState> {
    store
        .load_ring()
        .await?
        .ok_or(Error::NotProvisioned("key ring"))
}

/// The pending ring of `id` and the current ring, checked for lineage.
async fn pending_and_base<S: KeyStore>(
    store: &S,
    id: &str,
) -> Result<(RingState, Option<RingState>)> {
    let pending = match store.load_pending(id).await? {
        Some(pending) => pending,
        None if store.stage(id).await? == Stage::Pending => {
            return Err(Error::NotProvisioned(
                "pending ring (run createSecret first)",
            ));
        }
        None => return Err(superseded(id)),
    };
    let current = store.load_ring().await?;
    pending.descends_from(current.as_ref())?;
    Ok((pending, current))
}

fn superseded(id: &str) -> Error {
    Error::Conflict(format!(
        "rotation {id:?} is not pending: another rotation or an emergency revocation superseded it"
    ))
}

/// createSecret: the pending ring is the current ring rotated (or a first ring), stored under
/// `id`. A pending ring already there is kept if it still derives from the current ring.
pub async fn create<S: KeyStore>(
    store: &S,
    id: &str,
    life: &Lifecycle,
    now: i64,
) -> Result<StepOutcome> {
    let current = store.load_ring().await?;
    if let Some(pending) = store.load_pending(id).await? {
        pending.descends_from(current.as_ref())?;
        tracing::info!(id, "createSecret: the pending ring already exists");
        return Ok(None);
    }
    let published = store.load_public().await?;
    let mut rotated = life
        .derive(id, now, |life| match &current {
            Some(ring) => ring.rotate(published.as_ref(), life, now),
            None => Ok(Rotated {
                ring: RingState::genesis(life, now)?,
                deferred: None,
                pruned: Vec::new(),
            }),
        })
        .await?;
    rotated.ring.rotation_id = Some(id.to_owned());
    store.put_pending(id, &rotated.ring).await?;
    tracing::info!(
        id,
        version = rotated.ring.version,
        signs = %rotated.ring.current.kid,
        deferred = rotated
            .deferred
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        pruned = rotated.pruned.len(),
        "createSecret: pending ring stored"
    );
    Ok(Some(rotated))
}

/// setSecret: publish the current ring's keys and the pending ring's new ones together, so the
/// pending keys are verifiable before anything signs with them. Fails if, by the time it
/// published, another rotation or a revocation had superseded this one.
pub async fn set<S: KeyStore>(store: &S, id: &str, life: &Lifecycle, now: i64) -> Result<()> {
    pending_and_base(store, id).await?;
    let (set, basis) = republish(store, life, now).await?;
    if basis.incoming.and_then(|r| r.rotation_id).as_deref() != Some(id) {
        return Err(superseded(id));
    }
    tracing::info!(id, keys = set.keys.len(), "setSecret: published");
    Ok(())
}

/// testSecret: the published set holds every key of both rings and no revoked one, and a
/// token signed by the pending ring's key verifies against it. In KMS custody, where rotation
/// may not sign, the custody confirms instead that the key is enabled and is the public key
/// published under its kid.
pub async fn test<S: KeyStore>(store: &S, id: &str, life: &Lifecycle, now: i64) -> Result<()> {
    let (pending, current) = pending_and_base(store, id).await?;
    let failed = |why: String| Error::Rotation(format!("testSecret failed: {why}"));
    let published = store
        .load_public()
        .await?
        .ok_or_else(|| failed("nothing is published".into()))?;
    for ring in std::iter::once(&pending).chain(current.as_ref()) {
        if let Some(kid) = ring.kids().find(|kid| published.key(kid).is_none()) {
            return Err(failed(format!("key {kid} is not published")));
        }
        if let Some(key) = published.keys.iter().find(|k| ring.is_revoked(&k.kid)) {
            return Err(failed(format!("revoked key {} is published", key.kid)));
        }
    }
    // A KMS key (also one left in the ring after a switch back to custody `secret`, whose
    // rotation has no KMS grants) is checked by its public key, not by a probe signature.
    if pending.current.kms_key().is_some() {
        if let Some(custody) = life.custody() {
            custody.confirm(&pending.current).await?;
        }
        let spki = pending.current.spki()?;
        if published.key(&pending.current.kid).map(|k| &k.spki) != Some(&spki) {
            return Err(failed(format!(
                "key {} is published with another public key",
                pending.current.kid
            )));
        }
        tracing::info!(id, kid = %pending.current.kid, "testSecret: the pending KMS key is published");
        return Ok(());
    }
    let policy = TokenPolicy {
        issuer: "chat-auth-rotation-test".into(),
        ttl: 60,
        skew: 0,
    };
    let claims = policy.claims("rotation-test", &CustomContext::new(), now)?;
    let probe = mint(&pending.load()?.signer, &claims)?;
    let validator = Validator {
        issuer: Some(policy.issuer),
        leeway: 0,
    };
    let report = validator.validate(&probe.token, &published.render()?.keys, now);
    if !report.is_active() {
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code.as_str()).collect();
        return Err(failed(format!(
            "a token signed by the pending key does not verify against the published set: {codes:?}"
        )));
    }
    tracing::info!(id, kid = %probe.kid, "testSecret: the pending key verifies against the published set");
    Ok(())
}

/// finishSecret: the pending ring becomes current (compare-and-swap on its base) and its own
/// set is published, recording when the old signing key stopped.
pub async fn finish<S: KeyStore>(store: &S, id: &str, life: &Lifecycle, now: i64) -> Result<()> {
    let (pending, current) = pending_and_base(store, id).await?;
    let base = current.as_ref().map(RingState::digest);
    store.promote(id, base.as_deref()).await?;
    let (_, basis) = republish(store, life, now).await?;
    tracing::info!(id, signs = %pending.current.kid, "finishSecret: the ring is current and published");
    withdraw(&basis, life, now).await
}

/// In custody, withdraws the keys that no stored ring uses any more: pruned ones, those of
/// rotations that were superseded or crashed before storing their ring, and revoked ones
/// (disabled again, in case a crash came between a revocation and its withdrawal). Runs after a
/// ring is current and published, so nothing it withdraws can still be needed: a key a change in
/// flight has just made is within the custody's grace, not in `basis`.
async fn withdraw(basis: &Basis, life: &Lifecycle, now: i64) -> Result<()> {
    let Some(custody) = life.custody() else {
        return Ok(());
    };
    let keep: Vec<&RingState> = basis.current.iter().chain(&basis.incoming).collect();
    let revoked: Vec<String> = basis
        .current
        .iter()
        .flat_map(|ring| &ring.revoked)
        .filter_map(|r| r.kms_key.clone())
        .collect();
    let withdrawn = custody.withdraw(&keep, &revoked, now).await?;
    if !withdrawn.is_empty() {
        tracing::info!(?withdrawn, "keys no ring uses are withdrawn from custody");
    }
    Ok(())
}

/// A scheduled rotation run to the end at once: the four steps under a fresh rotation id.
pub async fn rotate<S: KeyStore>(store: &S, life: &Lifecycle, now: i64) -> Result<Rotated> {
    let id = format!("local-{}", crate::claims::random_id()?);
    let rotated = create(store, &id, life, now)
        .await?
        .ok_or_else(|| Error::Rotation("a fresh rotation id was already pending".into()))?;
    set(store, &id, life, now).await?;
    test(store, &id, life, now).await?;
    finish(store, &id, life, now).await?;
    Ok(rotated)
}

/// Emergency revocation of `kid`: the derived ring is written over the current one
/// (compare-and-swap; any pending rotation is discarded), then published without the kid. A kid
/// that is already revoked only republishes, which completes a revocation a crash interrupted.
pub async fn revoke<S: KeyStore>(
    store: &S,
    kid: &str,
    life: &Lifecycle,
    now: i64,
) -> Result<RingState> {
    let current = current_ring(store).await?;
    if !current.is_revoked(kid) {
        let published = store.load_public().await?;
        let base = current.digest();
        // Named after the ring and the kid, so a retried revocation asks for the same new key.
        let id = crate::crypto::hex_digest(format!("{base}/{kid}").as_bytes());
        let ring = life
            .derive(&format!("revoke-{}", &id[..32]), now, |life| {
                current.revoke(kid, published.as_ref(), life, now)
            })
            .await?;
        store.save_ring(Some(&base), &ring).await?;
    }
    let (_, basis) = republish(store, life, now).await?;
    withdraw(&basis, life, now).await?;
    current_of(basis)
}

/// What a store of the private ring holds (the test `MemoryStore`, the host crate's
/// `FileStore`), with the compare-and-swap rules every store must apply the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// The current ring.
    pub current: Option<RingState>,
    /// The pending ring of a rotation in progress.
    pub pending: Option<RingState>,
}

impl Slots {
    /// Where rotation `id` stands.
    pub fn stage(&self, id: &str) -> Stage {
        let created_by = |ring: &Option<RingState>| {
            ring.as_ref()
                .is_some_and(|r| r.rotation_id.as_deref() == Some(id))
        };
        if created_by(&self.current) {
            Stage::Current
        } else if created_by(&self.pending) {
            Stage::Pending
        } else {
            Stage::Unknown
        }
    }

    fn check_base(&self, base: Option<&str>) -> Result<()> {
        let digest = self.current.as_ref().map(RingState::digest);
        if digest.as_deref() == base {
            Ok(())
        } else {
            Err(Error::Conflict(
                "the current ring is not the one this change was derived from".into(),
            ))
        }
    }

    /// [`KeyStore::publish`]'s check on these slots and the set `published` now: the rings and
    /// the set a publication was computed from must still be the stored ones.
    pub fn check_publication(&self, published: Option<&PublicKeySet>, basis: &Basis) -> Result<()> {
        let moved = if self.current != basis.current {
            "the current ring"
        } else if basis.incoming.is_some() && self.pending != basis.incoming {
            "the pending ring"
        } else if published != basis.published.as_ref() {
            "the published set"
        } else {
            return Ok(());
        };
        Err(Error::Conflict(format!(
            "{moved} changed after this publication was computed"
        )))
    }

    /// [`KeyStore::save_ring`] on these slots.
    pub fn save(&mut self, base: Option<&str>, ring: &RingState) -> Result<()> {
        self.check_base(base)?;
        self.current = Some(ring.clone());
        self.pending = None;
        Ok(())
    }

    /// [`KeyStore::put_pending`] on these slots.
    pub fn put_pending(&mut self, id: &str, ring: &RingState) -> Result<()> {
        match &self.pending {
            Some(p) if p.rotation_id.as_deref() == Some(id) && p != ring => Err(Error::Conflict(
                format!("rotation {id:?} already holds another pending ring"),
            )),
            _ => {
                self.pending = Some(ring.clone());
                Ok(())
            }
        }
    }

    /// The pending ring of rotation `id`, if that is the one pending.
    pub fn pending_of(&self, id: &str) -> Option<RingState> {
        self.pending
            .clone()
            .filter(|p| p.rotation_id.as_deref() == Some(id))
    }

    /// [`KeyStore::promote`] on these slots.
    pub fn promote(&mut self, id: &str, base: Option<&str>) -> Result<()> {
        let pending = self
            .pending_of(id)
            .ok_or_else(|| Error::Rotation(format!("rotation {id:?} is not pending")))?;
        self.check_base(base)?;
        self.current = Some(pending);
        self.pending = None;
        Ok(())
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryStore;

/// Test support only: not in production builds (the `test-util` feature brings it in).
#[cfg(any(test, feature = "test-util"))]
mod memory {
    use super::{
        Basis, KeyStore, PublicKeySet, PublicKeySource, Result, RingSource, RingState, Slots, Stage,
    };
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory store for tests; counts reads so tests can prove caching.
    #[derive(Debug, Default)]
    pub struct MemoryStore {
        state: Mutex<(Slots, Option<PublicKeySet>)>,
        reads: AtomicUsize,
    }

    impl MemoryStore {
        /// An empty store.
        pub fn new() -> Self {
            Self::default()
        }

        /// How many loads (ring or public) have been served.
        pub fn reads(&self) -> usize {
            self.reads.load(Ordering::Relaxed)
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, (Slots, Option<PublicKeySet>)> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl RingSource for MemoryStore {
        async fn load_ring(&self) -> Result<Option<RingState>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Ok(self.lock().0.current.clone())
        }
    }

    impl PublicKeySource for MemoryStore {
        async fn load_public(&self) -> Result<Option<PublicKeySet>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Ok(self.lock().1.clone())
        }
    }

    impl KeyStore for MemoryStore {
        async fn save_ring(&self, base: Option<&str>, ring: &RingState) -> Result<()> {
            self.lock().0.save(base, ring)
        }

        async fn publish(&self, basis: &Basis, set: &PublicKeySet) -> Result<()> {
            let mut state = self.lock();
            state.0.check_publication(state.1.as_ref(), basis)?;
            state.1 = Some(set.clone());
            Ok(())
        }

        async fn stage(&self, id: &str) -> Result<Stage> {
            Ok(self.lock().0.stage(id))
        }

        async fn load_pending(&self, id: &str) -> Result<Option<RingState>> {
            Ok(self.lock().0.pending_of(id))
        }

        async fn load_any_pending(&self) -> Result<Option<RingState>> {
            Ok(self.lock().0.pending.clone())
        }

        async fn put_pending(&self, id: &str, ring: &RingState) -> Result<()> {
            self.lock().0.put_pending(id, ring)
        }

        async fn promote(&self, id: &str, base: Option<&str>) -> Result<()> {
            self.lock().0.promote(id, base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_found_by_its_event_name_only() {
        for step in STEPS {
            assert_eq!(Step::from_name(step.as_str()), Some(step));
        }
        assert_eq!(Step::from_name("createsecret"), None);
        assert_eq!(Step::from_name("Create"), None);
    }
}

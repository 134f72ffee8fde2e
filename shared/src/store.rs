//! Where the key ring and the published key set live.
//!
//! Split by capability: signing functions read the private ring ([`RingSource`]); verifying
//! functions read only the public set ([`PublicKeySource`]); rotation writes both
//! ([`KeyStore`]). Every ring write is a compare-and-swap on [`RingState::version`], so two
//! rotations racing cannot both win. The Secrets Manager store keeps one ring version per
//! secret version and the public set in a second secret; the file store keeps `ring.json`
//! (mode 0600) and `public.json` in a data directory.

use crate::keys::RingState;
use crate::publish::PublicKeySet;
use crate::{Error, Result};
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Reads the private ring.
pub trait RingSource: Send + Sync + 'static {
    /// The stored ring, if one exists.
    fn load_ring(&self) -> impl Future<Output = Result<Option<RingState>>> + Send;
}

/// Reads the published public key set.
pub trait PublicKeySource: Send + Sync + 'static {
    /// The published set, if one exists.
    fn load_public(&self) -> impl Future<Output = Result<Option<PublicKeySet>>> + Send;
}

/// Writes the ring and the published set.
pub trait KeyStore: RingSource + PublicKeySource {
    /// Stores `ring` only if the stored ring's version is `expected` (`None`: no ring yet);
    /// otherwise fails with [`Error::Conflict`].
    fn save_ring(
        &self,
        expected: Option<u64>,
        ring: &RingState,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the published set.
    fn publish(&self, set: &PublicKeySet) -> impl Future<Output = Result<()>> + Send;
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
        expected: Option<u64>,
        ring: &RingState,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).save_ring(expected, ring)
    }

    fn publish(&self, set: &PublicKeySet) -> impl Future<Output = Result<()>> + Send {
        (**self).publish(set)
    }
}

/// Returns the stored ring, creating (and publishing) a first one when there is none, and
/// republishing the ring's set when a crash left the published set behind the ring.
pub async fn ensure_ring<S: KeyStore>(store: &S, now: i64, period: i64) -> Result<RingState> {
    let ring = match store.load_ring().await? {
        Some(ring) => ring,
        None => {
            let ring = RingState::generate(now, period)?;
            store.publish(&ring.public_set()?).await?;
            match store.save_ring(None, &ring).await {
                Ok(()) => ring,
                Err(Error::Conflict { .. }) => store
                    .load_ring()
                    .await?
                    .ok_or(Error::NotProvisioned("key ring"))?,
                Err(e) => return Err(e),
            }
        }
    };
    let wanted = ring.public_set()?;
    if store.load_public().await?.as_ref() != Some(&wanted) {
        store.publish(&wanted).await?;
    }
    Ok(ring)
}

/// What an operator asks of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// next → current → previous, new next.
    Scheduled,
    /// Drop this kid at once.
    Emergency(String),
}

/// Rotates the ring in place (the local counterpart of Secrets Manager's four steps).
///
/// Scheduled: publish old ∪ new, store the new ring (compare-and-swap), publish the new set; a
/// crash between steps leaves every key that may have signed a live token published.
/// Emergency: store, then publish the new set, so the dropped key disappears at once.
pub async fn rotate<S: KeyStore>(
    store: &S,
    rotation: &Rotation,
    now: i64,
    period: i64,
) -> Result<RingState> {
    let old = store
        .load_ring()
        .await?
        .ok_or(Error::NotProvisioned("key ring"))?;
    let new = match rotation {
        Rotation::Scheduled => old.rotate(now, period)?,
        Rotation::Emergency(kid) => old.drop_key(kid, now)?,
    };
    let new_set = new.public_set()?;
    if *rotation == Rotation::Scheduled {
        store.publish(&old.public_set()?.union(&new_set)).await?;
    }
    store.save_ring(Some(old.version), &new).await?;
    store.publish(&new_set).await?;
    Ok(new)
}

/// An in-memory store for tests; counts reads so tests can prove caching.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<(Option<RingState>, Option<PublicKeySet>)>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<RingState>, Option<PublicKeySet>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RingSource for MemoryStore {
    async fn load_ring(&self) -> Result<Option<RingState>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().0.clone())
    }
}

impl PublicKeySource for MemoryStore {
    async fn load_public(&self) -> Result<Option<PublicKeySet>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().1.clone())
    }
}

impl KeyStore for MemoryStore {
    async fn save_ring(&self, expected: Option<u64>, ring: &RingState) -> Result<()> {
        let mut state = self.lock();
        if state.0.as_ref().map(|r| r.version) != expected {
            return Err(Error::Conflict { expected });
        }
        state.0 = Some(ring.clone());
        Ok(())
    }

    async fn publish(&self, set: &PublicKeySet) -> Result<()> {
        self.lock().1 = Some(set.clone());
        Ok(())
    }
}

/// The embedded default: a data directory holding `ring.json` (0600) and `public.json`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses (and creates, mode 0700) `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| io_error(&dir, source))?;
        Ok(FileStore { dir })
    }

    /// The private ring file.
    pub fn ring_path(&self) -> PathBuf {
        self.dir.join("ring.json")
    }

    /// The published set file.
    pub fn public_path(&self) -> PathBuf {
        self.dir.join("public.json")
    }

    async fn read(path: PathBuf) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io_error(&path, source)),
        }
    }

    /// Writes through a private temporary file and a rename, so readers never see half a file.
    fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|source| io_error(&tmp, source))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| io_error(&tmp, source))?;
        std::fs::rename(&tmp, path).map_err(|source| io_error(path, source))
    }

    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock_path = self.dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| io_error(&lock_path, source))?;
        lock.lock().map_err(|source| io_error(&lock_path, source))?;
        f()
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl RingSource for FileStore {
    async fn load_ring(&self) -> Result<Option<RingState>> {
        Self::read(self.ring_path())
            .await?
            .map(|bytes| RingState::from_json(&bytes))
            .transpose()
    }
}

impl PublicKeySource for FileStore {
    async fn load_public(&self) -> Result<Option<PublicKeySet>> {
        Self::read(self.public_path())
            .await?
            .map(|bytes| PublicKeySet::from_json(&bytes))
            .transpose()
    }
}

impl KeyStore for FileStore {
    async fn save_ring(&self, expected: Option<u64>, ring: &RingState) -> Result<()> {
        let store = self.clone();
        let ring = ring.clone();
        blocking(move || {
            store.locked(|| {
                let path = store.ring_path();
                let stored = match std::fs::read(&path) {
                    Ok(bytes) => Some(RingState::from_json(&bytes)?.version),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(source) => return Err(io_error(&path, source)),
                };
                if stored != expected {
                    return Err(Error::Conflict { expected });
                }
                Self::write_atomic(&path, &ring.to_json(), 0o600)
            })
        })
        .await
    }

    async fn publish(&self, set: &PublicKeySet) -> Result<()> {
        let store = self.clone();
        let bytes = set.to_json();
        blocking(move || store.locked(|| Self::write_atomic(&store.public_path(), &bytes, 0o644)))
            .await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::StoreUnavailable(Box::new(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const DAY: i64 = 86_400;

    #[tokio::test]
    async fn file_store_creates_a_private_ring_once_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("data")).unwrap();
        let first = ensure_ring(&store, 0, DAY).await.unwrap();
        let mode = std::fs::metadata(store.ring_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ensure_ring(&store, 5, DAY).await.unwrap(), first);

        let second = rotate(&store, &Rotation::Scheduled, 10, DAY).await.unwrap();
        assert_eq!(second.current.kid, first.next.kid);
        let published = store.load_public().await.unwrap().unwrap();
        assert_eq!(published, second.public_set().unwrap());
    }

    #[tokio::test]
    async fn stale_writers_lose_the_compare_and_swap() {
        let store = MemoryStore::new();
        let ring = ensure_ring(&store, 0, DAY).await.unwrap();
        let a = ring.rotate(1, DAY).unwrap();
        let b = ring.rotate(2, DAY).unwrap();
        store.save_ring(Some(ring.version), &a).await.unwrap();
        assert!(matches!(
            store.save_ring(Some(ring.version), &b).await,
            Err(Error::Conflict { .. })
        ));
    }

    #[tokio::test]
    async fn emergency_rotation_unpublishes_the_key_at_once() {
        let store = MemoryStore::new();
        let ring = ensure_ring(&store, 0, DAY).await.unwrap();
        let kid = ring.current.kid.clone();
        rotate(&store, &Rotation::Emergency(kid.clone()), 1, DAY)
            .await
            .unwrap();
        let set = store.load_public().await.unwrap().unwrap();
        assert!(set.keys.iter().all(|k| k.kid != kid));
    }

    #[tokio::test]
    async fn a_published_set_left_behind_by_a_crash_is_repaired() {
        let store = MemoryStore::new();
        let ring = ensure_ring(&store, 0, DAY).await.unwrap();
        // Crash after the ring was saved but before the final publish.
        let next = ring.rotate(1, DAY).unwrap();
        store
            .publish(
                &ring
                    .public_set()
                    .unwrap()
                    .union(&next.public_set().unwrap()),
            )
            .await
            .unwrap();
        store.save_ring(Some(ring.version), &next).await.unwrap();
        ensure_ring(&store, 2, DAY).await.unwrap();
        assert_eq!(
            store.load_public().await.unwrap().unwrap(),
            next.public_set().unwrap()
        );
    }
}

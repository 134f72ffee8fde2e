//! The embedded default store: a private data directory holding `ring.json` (the current
//! ring), `pending.json` (a rotation in progress) and `public.json` (the published set).
//!
//! Private files are mode 0600 in a directory that must be the user's own and closed to
//! others (it holds private keys). Every write goes through a fresh temporary file and a
//! rename, so readers never see half a document, and happens under an exclusive lock, so the
//! compare-and-swap of the ring is atomic between processes (`serve` and `chat-auth rotate`).

use crate::fsutil::{check_private_dir, write_private_atomic};
use chat_auth_shared::publish::PublicKeySet;
use chat_auth_shared::ring::RingState;
use chat_auth_shared::store::{Basis, KeyStore, PublicKeySource, RingSource, Slots, Stage};
use chat_auth_shared::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A data directory as the key store.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses `dir`, creating it (mode 0700) when missing; refuses a directory that another user
    /// owns or that others may write.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| io_error(&dir, source))?;
        check_private_dir(&dir).map_err(|source| io_error(&dir, source))?;
        Ok(FileStore { dir })
    }

    /// The current ring's file.
    pub fn ring_path(&self) -> PathBuf {
        self.dir.join("ring.json")
    }

    /// The pending ring's file.
    pub fn pending_path(&self) -> PathBuf {
        self.dir.join("pending.json")
    }

    /// The published set's file.
    pub fn public_path(&self) -> PathBuf {
        self.dir.join("public.json")
    }

    fn read_sync(path: &Path) -> Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io_error(path, source)),
        }
    }

    fn ring_at(path: &Path) -> Result<Option<RingState>> {
        Self::read_sync(path)?
            .map(|bytes| RingState::from_json(&bytes))
            .transpose()
    }

    fn slots(&self) -> Result<Slots> {
        Ok(Slots {
            current: Self::ring_at(&self.ring_path())?,
            pending: Self::ring_at(&self.pending_path())?,
        })
    }

    /// Writes back what changed in `after` compared with `before`.
    fn store_slots(&self, before: &Slots, after: &Slots) -> Result<()> {
        let write = |path: PathBuf, ring: &Option<RingState>| match ring {
            Some(ring) => write_private_atomic(&path, &ring.to_json(), 0o600)
                .map_err(|source| io_error(&path, source)),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(&path, e)),
                _ => Ok(()),
            },
        };
        // Pending first: a crash between the two writes then leaves no pending ring that
        // names a base the current ring no longer is (lineage would refuse it anyway).
        if before.pending != after.pending {
            write(self.pending_path(), &after.pending)?;
        }
        if before.current != after.current {
            write(self.ring_path(), &after.current)?;
        }
        Ok(())
    }

    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock_path = self.dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|source| io_error(&lock_path, source))?;
        lock.lock().map_err(|source| io_error(&lock_path, source))?;
        f()
    }

    /// Runs `change` on the stored rings under the lock and writes back what it changed.
    async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut Slots) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        blocking(move || {
            store.locked(|| {
                let before = store.slots()?;
                let mut after = before.clone();
                let out = change(&mut after)?;
                store.store_slots(&before, &after)?;
                Ok(out)
            })
        })
        .await
    }

    async fn read(&self, path: PathBuf) -> Result<Option<Vec<u8>>> {
        blocking(move || Self::read_sync(&path)).await
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::StoreUnavailable(Box::new(e)))?
}

impl RingSource for FileStore {
    async fn load_ring(&self) -> Result<Option<RingState>> {
        self.read(self.ring_path())
            .await?
            .map(|bytes| RingState::from_json(&bytes))
            .transpose()
    }
}

impl PublicKeySource for FileStore {
    async fn load_public(&self) -> Result<Option<PublicKeySet>> {
        self.read(self.public_path())
            .await?
            .map(|bytes| PublicKeySet::from_json(&bytes))
            .transpose()
    }
}

impl KeyStore for FileStore {
    async fn save_ring(&self, base: Option<&str>, ring: &RingState) -> Result<()> {
        let (base, ring) = (base.map(str::to_owned), ring.clone());
        self.update(move |slots| slots.save(base.as_deref(), &ring))
            .await
    }

    /// Checks the basis and writes under the one lock every writer takes, so no other writer
    /// can come between the check and the write.
    async fn publish(&self, basis: &Basis, set: &PublicKeySet) -> Result<()> {
        let (store, basis) = (self.clone(), basis.clone());
        let bytes = set.to_json();
        blocking(move || {
            store.locked(|| {
                let path = store.public_path();
                let published = Self::read_sync(&path)?
                    .map(|bytes| PublicKeySet::from_json(&bytes))
                    .transpose()?;
                store
                    .slots()?
                    .check_publication(published.as_ref(), &basis)?;
                write_private_atomic(&path, &bytes, 0o644).map_err(|source| io_error(&path, source))
            })
        })
        .await
    }

    async fn stage(&self, id: &str) -> Result<Stage> {
        let id = id.to_owned();
        let store = self.clone();
        blocking(move || Ok(store.slots()?.stage(&id))).await
    }

    async fn load_pending(&self, id: &str) -> Result<Option<RingState>> {
        let id = id.to_owned();
        let store = self.clone();
        blocking(move || Ok(store.slots()?.pending_of(&id))).await
    }

    async fn load_any_pending(&self) -> Result<Option<RingState>> {
        self.read(self.pending_path())
            .await?
            .map(|bytes| RingState::from_json(&bytes))
            .transpose()
    }

    async fn put_pending(&self, id: &str, ring: &RingState) -> Result<()> {
        let (id, ring) = (id.to_owned(), ring.clone());
        self.update(move |slots| slots.put_pending(&id, &ring))
            .await
    }

    async fn promote(&self, id: &str, base: Option<&str>) -> Result<()> {
        let (id, base) = (id.to_owned(), base.map(str::to_owned));
        self.update(move |slots| slots.promote(&id, base.as_deref()))
            .await
    }
}

//! A store that lets another event run in the middle of an operation: the ring model's way to
//! interleave readers and writers.

use chat_auth_shared::RingState;
use chat_auth_shared::store::{Basis, KeyStore, PublicKeySource, RingSource, Stage};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// An event that runs in the middle of another.
pub type Intrusion = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The model's store: the real one, with a hook that runs another event just before the n-th
/// call the next operation makes on it, read or write. A process paused between reading the
/// ring and writing what it computed from it (a slow disk, a descheduled operator command, a
/// Lambda invocation frozen mid-step) is exactly this.
///
/// It also keeps a log of the rings loaded and written since it was last armed, so that the model
/// learns which ring each revocation was derived from, whoever overtook whom.
pub struct Interleaved<S> {
    pub inner: Arc<S>,
    calls: AtomicUsize,
    armed: Mutex<Option<(usize, Intrusion)>>,
    loaded: Mutex<Vec<RingState>>,
    /// Each successful `save_ring`: the ring it replaced and the ring it wrote.
    saved: Mutex<Vec<(RingState, RingState)>>,
}

impl<S: KeyStore> Interleaved<S> {
    pub fn new(inner: S) -> Self {
        Interleaved {
            inner: Arc::new(inner),
            calls: AtomicUsize::new(0),
            armed: Mutex::new(None),
            loaded: Mutex::new(Vec::new()),
            saved: Mutex::new(Vec::new()),
        }
    }

    /// Runs `intrusion` just before call number `at` (from 0) from now on.
    pub fn arm(&self, at: usize, intrusion: Intrusion) {
        self.calls.store(0, Ordering::SeqCst);
        self.loaded.lock().unwrap().clear();
        self.saved.lock().unwrap().clear();
        *self.armed.lock().unwrap() = Some((at, intrusion));
    }

    /// The ring replacements logged since [`Self::arm`].
    pub fn take_saved(&self) -> Vec<(RingState, RingState)> {
        std::mem::take(&mut *self.saved.lock().unwrap())
    }

    /// The intrusion that has not run yet, if any.
    pub fn disarm(&self) -> Option<Intrusion> {
        self.armed
            .lock()
            .unwrap()
            .take()
            .map(|(_, intrusion)| intrusion)
    }

    async fn call(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let due = {
            let mut armed = self.armed.lock().unwrap();
            match &*armed {
                Some((at, _)) if *at == n => armed.take(),
                _ => None,
            }
        };
        if let Some((_, intrusion)) = due {
            intrusion.await;
        }
    }
}

impl<S: KeyStore> RingSource for Interleaved<S> {
    async fn load_ring(&self) -> chat_auth_shared::Result<Option<RingState>> {
        self.call().await;
        let ring = self.inner.load_ring().await?;
        self.loaded.lock().unwrap().extend(ring.clone());
        Ok(ring)
    }
}

impl<S: KeyStore> PublicKeySource for Interleaved<S> {
    async fn load_public(
        &self,
    ) -> chat_auth_shared::Result<Option<chat_auth_shared::PublicKeySet>> {
        self.call().await;
        self.inner.load_public().await
    }
}

impl<S: KeyStore> KeyStore for Interleaved<S> {
    async fn save_ring(
        &self,
        base: Option<&str>,
        ring: &RingState,
    ) -> chat_auth_shared::Result<()> {
        self.call().await;
        self.inner.save_ring(base, ring).await?;
        let replaced = self
            .loaded
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|r| Some(r.digest().as_str()) == base)
            .cloned();
        if let Some(replaced) = replaced {
            self.saved.lock().unwrap().push((replaced, ring.clone()));
        }
        Ok(())
    }
    async fn publish(
        &self,
        basis: &Basis,
        set: &chat_auth_shared::PublicKeySet,
    ) -> chat_auth_shared::Result<()> {
        self.call().await;
        self.inner.publish(basis, set).await
    }
    async fn stage(&self, id: &str) -> chat_auth_shared::Result<Stage> {
        self.call().await;
        self.inner.stage(id).await
    }
    async fn load_pending(&self, id: &str) -> chat_auth_shared::Result<Option<RingState>> {
        self.call().await;
        self.inner.load_pending(id).await
    }
    async fn load_any_pending(&self) -> chat_auth_shared::Result<Option<RingState>> {
        self.call().await;
        self.inner.load_any_pending().await
    }
    async fn put_pending(&self, id: &str, ring: &RingState) -> chat_auth_shared::Result<()> {
        self.call().await;
        self.inner.put_pending(id, ring).await
    }
    async fn promote(&self, id: &str, base: Option<&str>) -> chat_auth_shared::Result<()> {
        self.call().await;
        self.inner.promote(id, base).await
    }
}

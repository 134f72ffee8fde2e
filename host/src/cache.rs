//! A warm-function cache with a bounded time to live and a bounded staleness.
//!
//! Requests never wait on the key store while the cached value is fresh. When the time to live
//! runs out, one request refreshes (others keep being served or wait for that one refresh). If
//! the store is unreachable, the last good value is served until it is `stale_for` past its
//! time to live, then the cache fails closed: a token is never signed with a key it cannot vouch
//! for. A refresh that finds the same content (the stored document equal to the one the cached
//! value was made from, never by version number: two different documents can carry one
//! version) keeps the already-parsed value, without serializing or hashing anything.

use chat_auth_shared::publish::{PublicKeySet, PublishedDocs};
use chat_auth_shared::ring::{LoadedRing, RingState};
use chat_auth_shared::store::{PublicKeySource, RingSource};
use chat_auth_shared::{Error, Result};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What a refresh found.
pub enum Fetched<S, T> {
    /// The stored document equals the one the cached value was made from: keep the value.
    Unchanged,
    /// A new document, and the value made from it.
    New(S, T),
}

/// `source` is kept to compare the next refresh's document with: comparing parsed state costs
/// less than serializing the document again to hash it.
struct Entry<S, T> {
    value: Arc<T>,
    source: Arc<S>,
    next_check: Instant,
    usable_until: Instant,
}

impl<S, T> Clone for Entry<S, T> {
    fn clone(&self) -> Self {
        Entry {
            value: self.value.clone(),
            source: self.source.clone(),
            next_check: self.next_check,
            usable_until: self.usable_until,
        }
    }
}

/// The cache of a value made from a stored document of type `S`; see the module documentation.
pub struct Cached<S, T> {
    ttl: Duration,
    stale_for: Duration,
    entry: RwLock<Option<Entry<S, T>>>,
    refresh: tokio::sync::Mutex<()>,
}

/// After a failed refresh with a usable stale value, wait this long before trying again so an
/// outage does not turn every request into a store call.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

impl<S: Send + Sync, T: Send + Sync> Cached<S, T> {
    /// A cache that refreshes every `ttl` and may serve a value `stale_for` beyond it.
    pub fn new(ttl: Duration, stale_for: Duration) -> Self {
        Cached {
            ttl,
            stale_for,
            entry: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Entry<S, T>> {
        self.entry.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn fresh(&self, now: Instant) -> Option<Arc<T>> {
        let guard = self.entry.read().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|e| now < e.next_check)
            .map(|e| e.value.clone())
    }

    fn set(&self, entry: Entry<S, T>) {
        *self.entry.write().unwrap_or_else(|e| e.into_inner()) = Some(entry);
    }

    /// The cached value, refreshed through `fetch` (given the document it was made from) when
    /// due.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<T>>
    where
        F: FnOnce(Option<Arc<S>>) -> Fut,
        Fut: Future<Output = Result<Fetched<S, T>>>,
    {
        if let Some(value) = self.fresh(Instant::now()) {
            return Ok(value);
        }
        let _refreshing = self.refresh.lock().await;
        let now = Instant::now();
        if let Some(value) = self.fresh(now) {
            return Ok(value);
        }
        let cached = self.current();
        match fetch(cached.as_ref().map(|e| e.source.clone())).await {
            Ok(Fetched::New(source, value)) => {
                let value = Arc::new(value);
                self.set(Entry {
                    value: value.clone(),
                    source: Arc::new(source),
                    next_check: now + self.ttl,
                    usable_until: now + self.ttl + self.stale_for,
                });
                Ok(value)
            }
            Ok(Fetched::Unchanged) => match cached {
                Some(entry) => {
                    let value = entry.value.clone();
                    self.set(Entry {
                        next_check: now + self.ttl,
                        usable_until: now + self.ttl + self.stale_for,
                        ..entry
                    });
                    Ok(value)
                }
                None => Err(Error::NotProvisioned("cached keys")),
            },
            Err(error) => match cached {
                Some(entry) if now < entry.usable_until && is_transient(&error) => {
                    tracing::warn!(error = %error, "key store refresh failed; serving the cached keys");
                    let value = entry.value.clone();
                    self.set(Entry {
                        next_check: (now + RETRY_AFTER_FAILURE).min(entry.usable_until),
                        ..entry
                    });
                    Ok(value)
                }
                _ => Err(error),
            },
        }
    }
}

/// Only an unreachable store justifies serving stale keys; a store that answers with a
/// corrupt or missing document is a real state change and is reported at once.
fn is_transient(error: &Error) -> bool {
    matches!(error, Error::StoreUnavailable(_) | Error::Io { .. })
}

/// A stored document (a ring version, a published set) that is prepared once per content into
/// the value requests use. Equality is over the whole content, so an unchanged document is
/// recognised without being prepared, serialized or hashed again.
pub trait Document: PartialEq + Sized + Send + Sync {
    /// The parsed, ready-to-use form.
    type Ready: Send + Sync;
    /// What it is called in errors.
    const NAME: &'static str;
    /// Makes the value requests use.
    fn prepare(&self) -> Result<Self::Ready>;
}

impl Document for RingState {
    type Ready = LoadedRing;
    const NAME: &'static str = "key ring";
    fn prepare(&self) -> Result<LoadedRing> {
        self.load()
    }
}

impl Document for PublicKeySet {
    type Ready = PublishedDocs;
    const NAME: &'static str = "public key set";
    fn prepare(&self) -> Result<PublishedDocs> {
        self.render()
    }
}

impl<D: Document> Cached<D, D::Ready> {
    /// The cached value of a document that `load` reads from the store when a refresh is due.
    pub async fn document<Fut>(&self, load: impl FnOnce() -> Fut) -> Result<Arc<D::Ready>>
    where
        Fut: Future<Output = Result<Option<D>>>,
    {
        self.get(|cached| async move {
            let doc = load().await?.ok_or(Error::NotProvisioned(D::NAME))?;
            if cached.as_deref() == Some(&doc) {
                Ok(Fetched::Unchanged)
            } else {
                let ready = doc.prepare()?;
                Ok(Fetched::New(doc, ready))
            }
        })
        .await
    }
}

/// The signing ring, cached in the warm function.
pub struct SigningKeys<R> {
    store: R,
    cache: Cached<RingState, LoadedRing>,
}

impl<R: RingSource> SigningKeys<R> {
    /// Caches `store`'s ring for `ttl`, bridging outages for `stale_for`: the signing stale
    /// cap, which bounds how long a revocation can take to reach a warm signer that cannot
    /// reach the store (invariant 6 of [`chat_auth_shared::ring`]).
    pub fn new(store: R, ttl: Duration, stale_for: Duration) -> Self {
        SigningKeys {
            store,
            cache: Cached::new(ttl, stale_for),
        }
    }

    /// The current ring, parsed.
    pub async fn get(&self) -> Result<Arc<LoadedRing>> {
        self.cache.document(|| self.store.load_ring()).await
    }
}

/// The published key set, cached and pre-rendered.
pub struct PublicKeys<P> {
    store: P,
    cache: Cached<PublicKeySet, PublishedDocs>,
}

impl<P: PublicKeySource> PublicKeys<P> {
    /// Caches `store`'s set for `ttl`, bridging outages for `stale_for`.
    pub fn new(store: P, ttl: Duration, stale_for: Duration) -> Self {
        PublicKeys {
            store,
            cache: Cached::new(ttl, stale_for),
        }
    }

    /// The published set, rendered.
    pub async fn get(&self) -> Result<Arc<PublishedDocs>> {
        self.cache.document(|| self.store.load_public()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unavailable() -> Error {
        Error::StoreUnavailable("down".into())
    }

    #[tokio::test]
    async fn fresh_values_do_not_touch_the_store() {
        let cache = Cached::new(Duration::from_secs(60), Duration::ZERO);
        let calls = AtomicUsize::new(0);
        for _ in 0..100 {
            let v = cache
                .get(|_| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(Fetched::New("a".to_owned(), 7))
                })
                .await
                .unwrap();
            assert_eq!(*v, 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_outage_is_bridged_up_to_the_stale_bound_then_fails_closed() {
        let cache = Cached::new(Duration::ZERO, Duration::from_millis(200));
        cache
            .get(|_| async { Ok(Fetched::New("a".to_owned(), 1)) })
            .await
            .unwrap();
        assert_eq!(
            *cache.get(|_| async { Err(unavailable()) }).await.unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let err = cache
            .get(|_| async { Err(unavailable()) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "key_store_unavailable");
    }

    #[tokio::test]
    async fn cold_start_without_a_store_fails_closed() {
        let cache: Cached<String, u8> =
            Cached::new(Duration::from_secs(60), Duration::from_secs(60));
        assert!(cache.get(|_| async { Err(unavailable()) }).await.is_err());
    }

    #[tokio::test]
    async fn corrupt_documents_are_not_bridged() {
        let cache = Cached::new(Duration::ZERO, Duration::from_secs(60));
        cache
            .get(|_| async { Ok(Fetched::New("a".to_owned(), 1)) })
            .await
            .unwrap();
        let err = cache
            .get(|_| async {
                Err(Error::CorruptKeys {
                    what: "key ring",
                    reason: "bad".into(),
                })
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "key_store_corrupt");
    }

    #[tokio::test]
    async fn unchanged_versions_keep_the_parsed_value() {
        let cache = Cached::new(Duration::ZERO, Duration::ZERO);
        let first = cache
            .get(|_| async { Ok(Fetched::New("c".to_owned(), vec![1])) })
            .await
            .unwrap();
        let again = cache
            .get(|v| async move {
                assert_eq!(v.as_deref().map(String::as_str), Some("c"));
                Ok(Fetched::Unchanged)
            })
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }

    /// Counts its preparations.
    #[derive(PartialEq)]
    struct Counted(u8);

    static PREPARED: AtomicUsize = AtomicUsize::new(0);

    impl Document for Counted {
        type Ready = u8;
        const NAME: &'static str = "counted";
        fn prepare(&self) -> Result<u8> {
            PREPARED.fetch_add(1, Ordering::SeqCst);
            Ok(self.0)
        }
    }

    #[tokio::test]
    async fn a_refresh_prepares_only_a_changed_document() {
        let cache = Cached::new(Duration::ZERO, Duration::ZERO);
        for stored in [1, 1, 1, 2, 2] {
            let value = cache
                .document(|| async move { Ok(Some(Counted(stored))) })
                .await
                .unwrap();
            assert_eq!(*value, stored);
        }
        assert_eq!(PREPARED.load(Ordering::SeqCst), 2);
    }
}

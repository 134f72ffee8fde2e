//! Serves a router on a TCP socket (the local server), with the limits a server facing
//! browsers, or anyone, needs: header size, concurrency, request time, a bound on every wait
//! on a client, a cap on open connections, graceful drain.

use crate::Error;
use crate::http::MAX_BODY_BYTES;
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request that takes longer, once its body is in, gets 408.
    pub request_timeout: Duration,
    /// Requests beyond this many at once get 503 at once.
    pub concurrency: usize,
    /// Total bytes of header names and values a request may carry (431 beyond).
    pub header_bytes: usize,
    /// Header fields a request may carry (431 beyond).
    pub header_fields: usize,
    /// The longest the server waits on a client: for a whole request head, from the accept or
    /// from the previous response; for a whole body (then 408); for a client to take a
    /// response. See [`serve`].
    pub client_timeout: Duration,
    /// Connections open at once; see [`serve`] for what happens at the cap.
    pub max_connections: usize,
}

/// Descriptors the connection cap leaves to everything else: the listener, standard streams,
/// the runtime's, the key ring's files, the identity provider's JWKS client, and the one
/// connection accepted while [`serve`] makes room for it.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The process's open-file limit (the soft one, which is what `accept` runs into), or `None`
/// when it is unlimited or cannot be read.
pub fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is handed, which outlives the call.
    #[allow(unsafe_code)]
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Header fields a request may carry before hyper itself refuses it (431 without a body and
/// the connection closed): above the JSON `headers_too_large` limit (100 fields, 16 KiB), so
/// that answers first up to here.
const MAX_HEADERS: usize = 512;
/// hyper's read buffer, which bounds the request head: above the 16 KiB header limit.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Connections still open this long after a shutdown signal are dropped.
const DRAIN: Duration = Duration::from_secs(10);
/// The pause after a failed `accept` (out of descriptors, say): the backlog keeps the client
/// waiting meanwhile, and the loop neither spins nor floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The limits as layers, outermost first: header size (431), the body read whole under the
/// client timeout (408, 413 over the cap), concurrency (503 at once, never a queue), then the
/// request timeout (408). All answer with the JSON error body.
pub fn limited(app: Router, limits: &Limits) -> Router {
    let timeout = limits.request_timeout;
    let client_timeout = limits.client_timeout;
    let (header_bytes, header_fields) = (limits.header_bytes, limits.header_fields);
    app.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        timeout,
    ))
    // tower-http's timeout answers with an empty body; give it the JSON error.
    .layer(from_fn(move |req: Request, next: Next| async move {
        let response = next.run(req).await;
        if response.status() == StatusCode::REQUEST_TIMEOUT {
            return Error::RequestTimeout {
                seconds: timeout.as_secs(),
            }
            .into_response();
        }
        response
    }))
    .layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                Error::Overloaded
            }))
            .load_shed()
            // Global: `Router::layer` wraps every route separately, and one semaphore must
            // count them all.
            .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency)),
    )
    // Outside the concurrency limit: a body arrives at the client's pace, and a client that
    // sends it a byte at a time must not hold a permit a fast request needs.
    .layer(from_fn(move |req: Request, next: Next| async move {
        match read_body(req, client_timeout).await {
            Ok(req) => next.run(req).await,
            Err(e) => e.into_response(),
        }
    }))
    // Hand-written: tower-http has no header-size layer, and hyper's own limits (see
    // `MAX_HEADERS`, `MAX_HEAD_BYTES`) answer without a JSON body.
    .layer(from_fn(move |req: Request, next: Next| async move {
        let bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if bytes > header_bytes || req.headers().len() > header_fields {
            return Error::HeadersTooLarge {
                bytes: header_bytes,
                fields: header_fields,
            }
            .into_response();
        }
        next.run(req).await
    }))
}

/// The request with its body read whole, at most [`MAX_BODY_BYTES`] within `deadline`.
async fn read_body(req: Request, deadline: Duration) -> Result<Request, Error> {
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(deadline, Limited::new(body, MAX_BODY_BYTES).collect())
        .await
        .map_err(|_| Error::RequestTimeout {
            seconds: deadline.as_secs(),
        })?
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                Error::PayloadTooLarge {
                    limit: MAX_BODY_BYTES,
                }
            } else {
                Error::UnreadableBody
            }
        })?;
    Ok(Request::from_parts(parts, Body::from(collected.to_bytes())))
}

/// Serves `app` on `listener` until Ctrl-C / SIGTERM. hyper directly rather than
/// `axum::serve`, which exposes neither the header limits nor a hold on each connection.
/// HTTP/1.1 only: browsers never speak HTTP/2 in clear text, and serving it would add waits
/// of its own (the preface, pings, streams) to bound.
///
/// Every wait on a client ends within `limits.client_timeout`: a connection closes once it has
/// gone that long without a request in progress, counted from the accept or from the last
/// response handed to it. That bounds a client that sends nothing, trickles its request head,
/// idles between requests, or does not read what it asked for; [`limited`] bounds the body.
///
/// At most `limits.max_connections` are open. At the cap, a newly accepted connection makes
/// room by closing the one that has gone longest without a request in progress (nothing of
/// value is lost: an HTTP/1.1 client must expect an idle connection to close, and retries);
/// only when every connection has a request in progress does the server wait for one to end.
/// So a flood of idle connections pushes itself out and a fast client is served at once,
/// where refusing to accept at the cap would leave that client queued behind the flood.
pub async fn serve(listener: TcpListener, app: Router, limits: &Limits) {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    let open = Arc::new(Open::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let next = async { (accept(&listener).await, open.admit().await) };
        let (stream, slot) = tokio::select! {
            next = next => next,
            () = &mut shutdown => break,
        };
        let activity = slot.activity.clone();
        let app = app.clone();
        let service = tower::service_fn(move |req| {
            let busy = Busy::start(activity.clone());
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await;
                drop(busy);
                response
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        let client_timeout = limits.client_timeout;
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = slot.activity.idle_for(client_timeout) => {}
                () = slot.activity.evicted.notified() => {}
            }
            // The connection is dropped (closed) before its slot is given back.
            drop(slot);
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; dropping them");
    }
}

/// The next connection. A failed accept (out of descriptors, for one) is logged when a run of
/// failures starts and when it ends, and retried after [`ACCEPT_BACKOFF`].
async fn accept(listener: &TcpListener) -> TcpStream {
    let mut failures = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if failures > 0 {
                    tracing::warn!(failures, "accepting again");
                }
                return stream;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %e, "accept failed; retrying until it succeeds");
                }
                failures += 1;
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The open connections, for the cap.
struct Open {
    /// One permit per connection that may open.
    slots: Arc<Semaphore>,
    /// Each open connection's activity, by id.
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    /// The server's start, which idle times count from.
    epoch: Instant,
}

impl Open {
    fn new(max: usize) -> Self {
        Open {
            slots: Arc::new(Semaphore::new(max)),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// A slot for a connection just accepted: at once below the cap; at the cap, once the
    /// connection idle longest has closed, or, when every connection has a request in
    /// progress, once any has closed.
    async fn admit(self: &Arc<Self>) -> Slot {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.evict_longest_idle();
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        self.lock().insert(id, activity.clone());
        Slot {
            open: self.clone(),
            id,
            activity,
            _permit: permit,
        }
    }

    fn evict_longest_idle(&self) {
        let mut connections = self.lock();
        let longest = connections
            .iter()
            .filter(|(_, a)| a.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, a)| a.idle_since.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        if let Some(activity) = longest.and_then(|id| connections.remove(&id)) {
            activity.evicted.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An open connection's place under the cap, given back when it is dropped.
struct Slot {
    open: Arc<Open>,
    id: u64,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

/// What the timeout and the cap know of one connection.
struct Activity {
    /// Requests whose handler is running (one at a time over HTTP/1.1).
    busy: AtomicUsize,
    /// When it was accepted or last handed a response, in ms since `epoch`.
    idle_since: AtomicU64,
    /// Closes the connection to make room under the cap.
    evicted: Notify,
    /// The server's start.
    epoch: Instant,
}

impl Activity {
    /// A connection accepted now.
    fn new(epoch: Instant) -> Self {
        let activity = Activity {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            evicted: Notify::new(),
            epoch,
        };
        activity
            .idle_since
            .store(activity.millis(), Ordering::Release);
        activity
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Resolves once the connection has gone `timeout` without a request in progress.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let wake = if self.busy.load(Ordering::Acquire) == 0 {
                let since = Duration::from_millis(self.idle_since.load(Ordering::Acquire));
                self.epoch + since + timeout
            } else {
                Instant::now() + timeout
            };
            if wake <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A request in progress on a connection, from its complete head to its response; then the
/// connection is idle again.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.millis(), Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

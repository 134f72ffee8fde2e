//! The authorizer's part, played by the local server: a bearer token (or, in development mode,
//! the demo sign-in cookie) is verified and its claims attached to the request as
//! [`VerifiedClaims`]. A request without one stays anonymous (and `/token` answers 401); a
//! request with a bad one is refused here with 401 and the reasons.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chat_auth::http::VerifiedClaims;
use chat_auth::jwt::Validator;
use chat_auth::keys::KeySet;
use chat_auth::publish::parse_jwks;
use chat_auth::{Error, Result};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The development sign-in cookie.
pub const DEV_COOKIE: &str = "chat_auth_id";
/// Refetch the upstream JWKS this often.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// An unknown kid triggers a refetch at most this often (a forged kid cannot hammer the IdP).
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);

/// Where the verifying keys come from.
enum Keys {
    /// The development identity provider's own key.
    Fixed(KeySet),
    /// An upstream JWKS, fetched and cached.
    Remote(RemoteJwks),
}

struct RemoteJwks {
    url: String,
    /// Built on first use: loading the system's root certificates is the largest part of a
    /// cold start, and a start that never sees a bearer token should not pay for it.
    client: std::sync::OnceLock<reqwest::Client>,
    cached: RwLock<Option<(Arc<KeySet>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl RemoteJwks {
    async fn get(&self, max_age: Duration) -> Result<Arc<KeySet>> {
        if let Some(keys) = self.fresh(max_age) {
            return Ok(keys);
        }
        let _guard = self.refresh.lock().await;
        if let Some(keys) = self.fresh(max_age) {
            return Ok(keys);
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.cached.write().unwrap_or_else(|e| e.into_inner()) =
                    Some((keys.clone(), Instant::now()));
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "could not fetch the upstream JWKS");
                self.cached
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|(k, _)| k.clone())
                    .ok_or(e)
            }
        }
    }

    fn fresh(&self, max_age: Duration) -> Option<Arc<KeySet>> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(_, at)| at.elapsed() < max_age)
            .map(|(k, _)| k.clone())
    }

    async fn fetch(&self) -> Result<KeySet> {
        let unavailable = |e: reqwest::Error| Error::StoreUnavailable(Box::new(e));
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default()
        });
        let body = client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .bytes()
            .await
            .map_err(unavailable)?;
        parse_jwks(&body)
    }
}

/// Verifies callers' identity tokens.
pub struct BearerAuth {
    validator: Validator,
    keys: Keys,
    accept_cookie: bool,
}

impl BearerAuth {
    /// Tokens from the development identity provider (also accepted from its cookie).
    pub fn development(issuer: &str, keys: KeySet) -> Self {
        BearerAuth {
            validator: upstream_validator(issuer.to_owned(), Some(issuer.to_owned())),
            keys: Keys::Fixed(keys),
            accept_cookie: true,
        }
    }

    /// Tokens from the site's identity provider.
    pub fn upstream(issuer: String, jwks_url: String, audience: Option<String>) -> Self {
        BearerAuth {
            validator: upstream_validator(issuer, audience),
            keys: Keys::Remote(RemoteJwks {
                url: jwks_url,
                client: std::sync::OnceLock::new(),
                cached: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
            }),
            accept_cookie: false,
        }
    }

    /// The verified claims of `token`, or why it was refused.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Value>> {
        let now = chat_auth::time::now();
        let mut report = match &self.keys {
            Keys::Fixed(keys) => self.validator.validate(token, keys, now),
            Keys::Remote(remote) => {
                let report = self
                    .validator
                    .validate(token, &*remote.get(JWKS_TTL).await?, now);
                if report.problems.iter().any(|p| p.code == "unknown_kid") {
                    // The IdP may have rotated: look again, at most every JWKS_MIN_REFETCH.
                    self.validator
                        .validate(token, &*remote.get(JWKS_MIN_REFETCH).await?, now)
                } else {
                    report
                }
            }
        };
        if report.is_active() {
            return Ok(report.claims.take().unwrap_or_default());
        }
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code).collect();
        Err(Error::Unauthenticated(Cow::Owned(format!(
            "the identity token was refused: {}",
            codes.join(", ")
        ))))
    }

    fn token_of<'r>(&self, req: &'r Request) -> Option<&'r str> {
        let headers = req.headers();
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let auth = auth.to_str().ok()?;
            let (scheme, token) = auth.split_once(' ')?;
            return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
        }
        if !self.accept_cookie {
            return None;
        }
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(DEV_COOKIE)?.strip_prefix('='))
    }
}

fn upstream_validator(issuer: String, audience: Option<String>) -> Validator {
    Validator {
        issuer: Some(issuer),
        audience,
        leeway: 60,
        omnichannel: false,
    }
}

/// Middleware: attaches [`VerifiedClaims`] when a valid identity token came with the request.
pub async fn authenticate(
    State(auth): State<Arc<BearerAuth>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = auth.token_of(&req).map(str::to_owned) else {
        return next.run(req).await;
    };
    match auth.verify(&token).await {
        Ok(claims) => {
            req.extensions_mut().insert(VerifiedClaims(claims));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

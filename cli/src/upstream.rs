//! The authorizer's part, played by the local server: verifying a customer's identity token (a
//! bearer token or, in development mode, the demo sign-in cookie) against the site's identity
//! provider. The server's authenticate layer (`crate::server`) turns the claims into a
//! `Caller::User`, or refuses the request with 401 and the reason.
//!
//! Verification is `jsonwebtoken`'s (RS, PS, ES and EdDSA). The algorithm is pinned per key
//! from its JWK (`alg`, else the only one its key type and curve allow), never taken from the
//! token's header: a token whose `alg` differs from its key's is refused before any signature
//! check.

use crate::local::JwksSettings;
use axum::http::{HeaderMap, header};
use chat_auth_host::{Error, Result, TokenRefusal};
use chat_auth_shared::crypto::sha256;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The development sign-in cookie.
pub const DEV_COOKIE: &str = "chat_auth_id";
/// A JWKS larger than this is refused (real ones are a few KiB).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// One JWKS request may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Leeway for `exp`/`nbf` of identity tokens.
const LEEWAY_SECONDS: u64 = 60;

/// One usable verifying key and the one algorithm it verifies.
struct UpstreamKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The usable keys of one JWKS document.
pub struct VerifyingKeys(Vec<UpstreamKey>);

impl VerifyingKeys {
    /// Every usable key of a JWKS document. A key that cannot be used (unknown type, an
    /// encryption key, HMAC, a curve or algorithm that does not match) is skipped with a
    /// warning: one odd key must not lock every user out. A document with no usable key, or
    /// that is not a JWKS, is an error.
    pub fn from_jwks(body: &[u8]) -> Result<Self> {
        let unusable = |why: &str| Error::UpstreamUnavailable(format!("the JWKS {why}"));
        let doc: Value = serde_json::from_slice(body).map_err(|_| unusable("is not JSON"))?;
        let members = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| unusable("has no \"keys\" array"))?;
        let mut keys = Vec::new();
        for (index, member) in members.iter().enumerate() {
            match usable_key(member) {
                Ok(key) => keys.push(key),
                Err(why) => {
                    let kid = member.get("kid").and_then(Value::as_str).unwrap_or("");
                    tracing::warn!(
                        index,
                        kid,
                        why,
                        "skipping an unusable key of the upstream JWKS"
                    );
                }
            }
        }
        if keys.is_empty() {
            return Err(unusable("has no usable signing key"));
        }
        Ok(VerifyingKeys(keys))
    }

    /// The key for a token's `kid`; a token without one may use the set's only key.
    fn find(&self, kid: Option<&str>) -> Option<&UpstreamKey> {
        match kid {
            Some(kid) => self.0.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.0.len() == 1 => self.0.first(),
            None => None,
        }
    }
}

fn usable_key(member: &Value) -> std::result::Result<UpstreamKey, &'static str> {
    let jwk: Jwk = serde_json::from_value(member.clone()).map_err(|_| "not a JWK")?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key (use: enc)");
    }
    let alg = pinned_algorithm(&jwk)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "its key parameters are invalid")?;
    Ok(UpstreamKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// The JWK's own `alg` when it names a signature algorithm its key type can do; otherwise the
/// only algorithm the key type and curve allow (RSA keys without `alg` are RS256, the common
/// case; PS* must be declared).
fn pinned_algorithm(jwk: &Jwk) -> std::result::Result<Algorithm, &'static str> {
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
        Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => return Err("its alg is not an asymmetric signature algorithm"),
    };
    let alg = match (&jwk.algorithm, declared) {
        (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
        (AlgorithmParameters::RSA(_), Some(a)) if is_rsa(a) => a,
        (AlgorithmParameters::EllipticCurve(ec), declared) => {
            let by_curve = match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("its curve is not P-256 or P-384"),
            };
            match declared {
                None => by_curve,
                Some(a) if a == by_curve => a,
                Some(_) => return Err("its alg does not match its curve"),
            }
        }
        (AlgorithmParameters::OctetKeyPair(okp), None | Some(Algorithm::EdDSA))
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            Algorithm::EdDSA
        }
        (AlgorithmParameters::OctetKey(_), _) => return Err("a symmetric (oct) key"),
        _ => return Err("its alg does not match its key type"),
    };
    Ok(alg)
}

fn is_rsa(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    )
}

/// Where the verifying keys come from; shared by the customers' and the backends' verifiers,
/// which trust one provider.
#[derive(Clone)]
enum Keys {
    /// The development identity provider's own key.
    Fixed(Arc<VerifyingKeys>),
    /// An upstream JWKS, fetched and cached.
    Remote(Arc<RemoteJwks>),
}

/// The upstream JWKS, cached. Fetches are rate-limited as a whole: at most one attempt per
/// `retry` whether it failed or not, so neither an outage nor tokens with forged kids turn
/// traffic into fetches. During an outage a set keeps verifying until `ttl + stale` old.
struct RemoteJwks {
    settings: JwksSettings,
    /// Built on first use: loading the system's root certificates is the largest part of a
    /// cold start, and a start that never sees a bearer token should not pay for it.
    client: std::sync::OnceLock<reqwest::Client>,
    state: RwLock<Cache>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cache {
    keys: Option<(Arc<VerifyingKeys>, Instant)>,
    last_attempt: Option<Instant>,
}

impl RemoteJwks {
    /// The cached set if fresh (and `newer` is false); else a fetch if one is allowed now;
    /// else the cached set within its stale bound.
    async fn get(&self, newer: bool) -> Result<Arc<VerifyingKeys>> {
        if let Some(keys) = self.cached(newer) {
            return Ok(keys);
        }
        let _guard = self.refresh.lock().await;
        if let Some(keys) = self.cached(newer) {
            return Ok(keys);
        }
        let allowed = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            state
                .last_attempt
                .is_none_or(|at| at.elapsed() >= self.settings.retry)
        };
        if allowed {
            self.state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    let keys = Arc::new(keys);
                    self.state.write().unwrap_or_else(|e| e.into_inner()).keys =
                        Some((keys.clone(), Instant::now()));
                    return Ok(keys);
                }
                Err(e) => {
                    tracing::warn!(error = %e, url = %self.settings.url,
                        retry_in_seconds = self.settings.retry.as_secs(),
                        "could not fetch the upstream JWKS");
                }
            }
        }
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match &state.keys {
            Some((keys, at)) if at.elapsed() < self.settings.ttl + self.settings.stale => {
                Ok(keys.clone())
            }
            _ => Err(Error::UpstreamUnavailable(
                "no usable copy of the JWKS".into(),
            )),
        }
    }

    /// The cached set while fresh; with `newer` (an unknown kid: the provider may have
    /// rotated) only if no fetch may be attempted yet.
    fn cached(&self, newer: bool) -> Option<Arc<VerifyingKeys>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let (keys, at) = state.keys.as_ref()?;
        let fresh = at.elapsed() < self.settings.ttl;
        let may_fetch = state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.settings.retry);
        (fresh && !(newer && may_fetch)).then(|| keys.clone())
    }

    async fn fetch(&self) -> Result<VerifyingKeys> {
        let failed = |why: String| Error::UpstreamUnavailable(why);
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                // A redirect could lead the key fetch anywhere, including plain http.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        });
        let response = client
            .get(self.settings.url.clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(format!("request failed: {e}")))?;
        if response.status().is_redirection() {
            return Err(failed(format!(
                "answered {} (redirects are refused)",
                response.status()
            )));
        }
        let body = crate::fetch::capped_body(response, MAX_JWKS_BYTES)
            .await
            .map_err(failed)?;
        VerifyingKeys::from_jwks(&body)
    }
}

/// Verifies callers' identity tokens.
pub struct BearerAuth {
    validation: Validation,
    keys: Keys,
    accept_cookie: bool,
    verified: Verified,
    /// For client-credentials tokens, the audience to check as API Gateway's JWT authorizer
    /// does (`aud`, or `client_id` when there is no `aud`: Cognito's client-credentials tokens
    /// carry no `aud`); jsonwebtoken then checks no audience itself. `None` for customers'
    /// tokens, whose `aud` jsonwebtoken checks.
    client_audience: Option<String>,
}

/// Identity tokens already verified, by SHA-256 digest, until their `exp` (without the leeway:
/// past `exp` a token goes through the full check again) and only while the JWKS that verified
/// them is the fresh one (past its TTL the token is checked against the set fetched again, so a
/// key the provider dropped stops working, and an outage fails closed as without this memory).
/// A page asks for chat tokens with the same identity token many times, and each repeat then
/// costs no signature check. Bounded: at the bound expired entries go, and if none has expired
/// the whole map does, so a flood of distinct tokens costs signature checks, never memory.
/// Not quick_cache: it evicts by how recently and often an entry was used, never by expiry, so
/// a live token seen once would go before expired ones (`the_memory_is_bounded` checks the
/// opposite); of moka and quick_cache only moka knows per-entry expiry, and one process-wide
/// mutex over a map is all this needs.
#[derive(Default)]
struct Verified(std::sync::Mutex<HashMap<[u8; 32], Remembered>>);

/// One remembered token: its claims, its `exp`, and the fetched JWKS that verified it (`None`
/// for the development provider's fixed keys).
struct Remembered {
    claims: Claims,
    exp: i64,
    keys: Option<Arc<VerifyingKeys>>,
}

/// A verified token's claims, shared by every request that presents it.
type Claims = Arc<Map<String, Value>>;

/// Verified identity tokens remembered at once.
const MAX_VERIFIED: usize = 10_000;

impl Verified {
    /// The claims of a remembered token, if it has not expired and `fresh` (the JWKS in use
    /// now, if fresh) is the set that verified it.
    fn get(
        &self,
        digest: &[u8; 32],
        now: i64,
        fresh: Option<&Arc<VerifyingKeys>>,
    ) -> Option<Claims> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(digest).filter(|e| now < e.exp)?;
        let same_keys = match (&entry.keys, fresh) {
            (None, _) => true,
            (Some(verified_by), Some(fresh)) => Arc::ptr_eq(verified_by, fresh),
            (Some(_), None) => false,
        };
        same_keys.then(|| entry.claims.clone())
    }

    fn put(&self, digest: [u8; 32], entry: Remembered, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_VERIFIED {
            map.retain(|_, e| now < e.exp);
            if map.len() >= MAX_VERIFIED {
                map.clear();
            }
        }
        map.insert(digest, entry);
    }
}

impl BearerAuth {
    /// Tokens from the development identity provider (also accepted from its cookie).
    pub fn development(issuer: &str, keys: VerifyingKeys) -> Self {
        BearerAuth {
            validation: validation(issuer, issuer),
            keys: Keys::Fixed(Arc::new(keys)),
            accept_cookie: true,
            verified: Verified::default(),
            client_audience: None,
        }
    }

    /// Tokens from the site's identity provider.
    pub fn upstream(issuer: &str, audience: &str, jwks: JwksSettings) -> Self {
        BearerAuth {
            validation: validation(issuer, audience),
            keys: Keys::Remote(Arc::new(RemoteJwks {
                settings: jwks,
                client: std::sync::OnceLock::new(),
                state: RwLock::new(Cache::default()),
                refresh: tokio::sync::Mutex::new(()),
            })),
            accept_cookie: false,
            verified: Verified::default(),
            client_audience: None,
        }
    }

    /// Backends' client-credentials tokens from the same provider (same issuer and keys, one
    /// JWKS cache), for `audience`: the API's identifier, which the page's tokens never carry.
    /// Bearer only, never the development cookie.
    pub fn for_clients(&self, audience: &str) -> Self {
        let mut validation = self.validation.clone();
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        BearerAuth {
            validation,
            keys: self.keys.clone(),
            accept_cookie: false,
            verified: Verified::default(),
            client_audience: Some(audience.to_owned()),
        }
    }

    /// The verified claims of the identity token a request's `headers` carry
    /// ([`BearerAuth::token_of`]), `None` when they carry none, or why it was refused. The
    /// headers, not the request: a borrowed request (its body) cannot be held across the await
    /// of a Send future.
    pub(crate) async fn claims_of(&self, headers: &HeaderMap) -> Result<Option<Claims>> {
        match self.token_of(headers) {
            None => Ok(None),
            Some(token) => self.verify(token).await.map(Some),
        }
    }

    /// The verified claims of `token`, or why it was refused; a token verified before and not
    /// yet expired is answered from memory.
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        let (digest, now) = (sha256(token.as_bytes()), chat_auth_shared::time::now());
        let fresh = match &self.keys {
            Keys::Fixed(_) => None,
            Keys::Remote(remote) => remote.cached(false),
        };
        if let Some(claims) = self.verified.get(&digest, now, fresh.as_ref()) {
            return Ok(claims);
        }
        let (claims, keys) = self.check(token).await?;
        let claims = Arc::new(claims);
        // `exp` is required by the validation, so a verified token has one.
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
            let entry = Remembered {
                claims: claims.clone(),
                exp,
                keys,
            };
            self.verified.put(digest, entry, now);
        }
        Ok(claims)
    }

    /// The full check; with the fetched set that verified the token.
    async fn check(&self, token: &str) -> Result<(Map<String, Value>, Option<Arc<VerifyingKeys>>)> {
        // `alg: none` and unknown algorithms do not even parse as a header.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRefusal::Malformed)?;
        let kid = header.kid.as_deref();
        match &self.keys {
            Keys::Fixed(keys) => Ok((self.verify_with(token, header.alg, keys.find(kid))?, None)),
            Keys::Remote(remote) => {
                let mut keys = remote.get(false).await?;
                if keys.find(kid).is_none() {
                    // The provider may have rotated: look again (rate-limited like every fetch).
                    keys = remote.get(true).await?;
                }
                let claims = self.verify_with(token, header.alg, keys.find(kid))?;
                Ok((claims, Some(keys)))
            }
        }
    }

    fn verify_with(
        &self,
        token: &str,
        alg: Algorithm,
        key: Option<&UpstreamKey>,
    ) -> Result<Map<String, Value>> {
        let key = key.ok_or(TokenRefusal::UnknownKid)?;
        if alg != key.alg {
            return Err(TokenRefusal::AlgMismatch.into());
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.alg];
        // RS256 goes through the domain crate's provider, which keeps keys parsed.
        chat_auth_shared::crypto::install();
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                Error::from(match e.kind() {
                    ErrorKind::ExpiredSignature => TokenRefusal::Expired,
                    ErrorKind::ImmatureSignature => TokenRefusal::NotYetValid,
                    ErrorKind::InvalidIssuer => TokenRefusal::WrongIssuer,
                    ErrorKind::InvalidAudience => TokenRefusal::WrongAudience,
                    ErrorKind::InvalidSignature => TokenRefusal::BadSignature,
                    ErrorKind::MissingRequiredClaim(_) => TokenRefusal::MissingClaim,
                    ErrorKind::InvalidAlgorithm => TokenRefusal::AlgMismatch,
                    _ => TokenRefusal::Malformed,
                })
            })?;
        match &self.client_audience {
            Some(audience) if !for_audience(&claims, audience) => {
                Err(TokenRefusal::WrongAudience.into())
            }
            _ => Ok(claims),
        }
    }

    /// The identity token a request's headers carry, if any. Not axum-extra's `Authorization<Bearer>`:
    /// headers' `Bearer::token()` keeps what follows `"Bearer "` untrimmed, so a second space
    /// that verifies today would be a 401. Not its `CookieJar`: the cookie crate's jar keeps the
    /// last of two cookies with one name (`replace`), where this takes the first, the
    /// most specific path as browsers order them.
    fn token_of<'r>(&self, headers: &'r HeaderMap) -> Option<&'r str> {
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

/// API Gateway's JWT authorizer rule: `aud` (a string or an array) holds `audience`, or there
/// is no `aud` and `client_id` is `audience`.
fn for_audience(claims: &Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        Some(_) => false,
        None => claims.get("client_id").and_then(Value::as_str) == Some(audience),
    }
}

/// `iss`, `aud` and `exp` are required; `nbf` is checked when present.
fn validation(issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECONDS;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remembered(sub: &str, exp: i64, keys: Option<&Arc<VerifyingKeys>>) -> Remembered {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(sub.into()));
        Remembered {
            claims: Arc::new(claims),
            exp,
            keys: keys.cloned(),
        }
    }

    fn keys() -> Arc<VerifyingKeys> {
        Arc::new(VerifyingKeys(Vec::new()))
    }

    #[test]
    fn a_verified_token_is_remembered_until_its_exp_and_no_longer() {
        let verified = Verified::default();
        let digest = sha256("a.b.c".as_bytes());
        verified.put(digest, remembered("u1", 1_000, None), 900);
        assert_eq!(verified.get(&digest, 999, None).unwrap()["sub"], "u1");
        assert!(
            verified.get(&digest, 1_000, None).is_none(),
            "served at its exp"
        );
        assert!(
            verified
                .get(&sha256("a.b.d".as_bytes()), 900, None)
                .is_none()
        );
    }

    #[test]
    fn only_while_the_set_that_verified_it_is_the_fresh_one() {
        let (verified, set, refetched) = (Verified::default(), keys(), keys());
        let digest = sha256("a.b.c".as_bytes());
        verified.put(digest, remembered("u1", 1_000, Some(&set)), 900);
        assert!(verified.get(&digest, 950, Some(&set)).is_some());
        // Past the set's TTL (no fresh set), or once it was fetched again: the full check.
        assert!(verified.get(&digest, 950, None).is_none());
        assert!(verified.get(&digest, 950, Some(&refetched)).is_none());
    }

    #[test]
    fn the_memory_is_bounded() {
        let verified = Verified::default();
        for i in 0..MAX_VERIFIED + 5 {
            verified.put(
                sha256(i.to_string().as_bytes()),
                remembered("u", 2_000, None),
                1_000,
            );
        }
        let len = verified.0.lock().unwrap().len();
        assert!((1..=MAX_VERIFIED).contains(&len), "{len}");
        // Expired entries are the first to go.
        let verified = Verified::default();
        verified.put(
            sha256("live".as_bytes()),
            remembered("u", 5_000, None),
            1_000,
        );
        for i in 1..MAX_VERIFIED {
            verified.put(
                sha256(i.to_string().as_bytes()),
                remembered("u", 1_500, None),
                1_000,
            );
        }
        verified.put(
            sha256("new".as_bytes()),
            remembered("u", 5_000, None),
            2_000,
        );
        assert!(
            verified
                .get(&sha256("live".as_bytes()), 2_000, None)
                .is_some()
        );
        assert!(
            verified
                .get(&sha256("new".as_bytes()), 2_000, None)
                .is_some()
        );
    }
}

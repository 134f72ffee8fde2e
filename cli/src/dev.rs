//! Development mode: a built-in identity provider and the demo page, so the whole flow runs on
//! one machine with nothing else installed. Only with `--dev` (or `CHAT_AUTH_DEV=1`), only on
//! loopback, only for requests addressed to a loopback host (see [`crate::server`]).

use crate::upstream::{BearerAuth, DEV_COOKIE, VerifyingKeys};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_auth_host::http::{Body, no_store};
use chat_auth_shared::claims::{check_subject, encode};
use chat_auth_shared::keys::{KeyTimes, SigningKey, StoredKey};
use chat_auth_shared::publish::{PublicKeySet, PublishedDocs, PublishedKey};
use chat_auth_shared::{Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The demo identity provider's issuer and audience.
pub const DEV_ISSUER: &str = "chat-auth-dev";
/// Demo identity tokens live this long.
const DEV_TOKEN_TTL: i64 = 3600;

const INDEX: &str = include_str!("../assets/index.html");
const STANDIN: &str = include_str!("../assets/lcw-standin.js");

/// A throwaway signing key made at start; its tokens are worthless outside this process.
pub struct DevIdp {
    key: SigningKey,
    docs: PublishedDocs,
}

impl DevIdp {
    /// Generates the key.
    pub fn new() -> Result<Self> {
        let now = chat_auth_shared::time::now();
        let stored = StoredKey::generate(KeyTimes {
            created: now,
            activates: now,
            retires: now + 86_400,
        })?;
        let set = PublicKeySet {
            version: 1,
            current_kid: stored.kid.clone(),
            keys: vec![PublishedKey {
                kid: stored.kid.clone(),
                spki: stored.spki()?,
                activates: now,
                retires: now + 86_400,
                expiry: now + 86_400,
                published: Some(now),
                stopped: None,
            }],
            revoked: Vec::new(),
        };
        Ok(DevIdp {
            key: stored.parse()?,
            docs: set.render()?,
        })
    }

    /// A verifier that accepts this provider's tokens.
    pub fn verifier(&self) -> chat_auth_host::Result<BearerAuth> {
        Ok(BearerAuth::development(
            DEV_ISSUER,
            VerifyingKeys::from_jwks(self.docs.jwks.as_ref())?,
        ))
    }

    /// Signs an identity token for `sub` with extra `claims`.
    pub fn sign_in(&self, sub: &str, claims: &Map<String, Value>) -> Result<(String, i64)> {
        check_subject(sub)?;
        let now = chat_auth_shared::time::now();
        let mut payload = Map::new();
        for (name, value) in claims {
            if matches!(name.as_str(), "iss" | "aud" | "sub" | "iat" | "nbf" | "exp") {
                return Err(Error::ReservedClaim(name.clone()));
            }
            payload.insert(name.clone(), value.clone());
        }
        let exp = now + DEV_TOKEN_TTL;
        payload.extend([
            ("iss".to_owned(), json!(DEV_ISSUER)),
            ("aud".to_owned(), json!(DEV_ISSUER)),
            ("sub".to_owned(), json!(sub)),
            ("iat".to_owned(), json!(now)),
            ("exp".to_owned(), json!(exp)),
        ]);
        Ok((encode(&self.key, &payload)?, exp))
    }
}

/// `POST /dev/sign-in` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The contact's id (becomes the identity token's `sub`).
    pub sub: String,
    /// Extra identity claims (mapped to context by `CHAT_AUTH_CONTEXT_CLAIMS`).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// The demo page, the widget stand-in, sign-in and sign-out, and the demo JWKS.
pub fn router(idp: Arc<DevIdp>) -> Router {
    let session = Router::new()
        .route("/dev/sign-in", post(sign_in))
        .route("/dev/sign-out", post(sign_out))
        .route_layer(from_fn(same_origin_only));
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/dev/lcw-standin.js", get(standin))
        .route("/dev/jwks.json", get(jwks))
        .merge(session)
        .with_state(idp)
}

/// Sign-in and sign-out change the browser's session cookie, so only the demo page (this
/// server's own origin) may call them. A page on another site can post a form here without
/// any CORS preflight, and the browser keeps the answer's cookie: that is login CSRF (the
/// victim then chats as whoever the other site signed in). The `Host` is loopback by the time
/// this runs ([`crate::server`] checks it first).
async fn same_origin_only(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    if is_cross_origin(req.headers(), host) {
        return chat_auth_host::Error::OriginNotAllowed.into_response();
    }
    next.run(req).await
}

/// True when the browser says the request comes from another origin than the one it is
/// addressed to: an `Origin` that is not `Host`'s (`null` included), a `Sec-Fetch-Site` other
/// than `same-origin` or `none`, or, with no `Origin`, a `Referer` from elsewhere. A client
/// that sends none of these (curl, a test, a backend) is not a browser and cannot be tricked
/// into carrying someone's cookie.
///
/// The scheme is not compared: this server speaks plain HTTP, but a local TLS proxy in front
/// of it passes `Host` through, and what keeps another site out is its host and port.
fn is_cross_origin(headers: &HeaderMap, host: &str) -> bool {
    let text = |name: HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    let from_elsewhere = |url: &str| {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        !authority.is_some_and(|a| !a.is_empty() && a.eq_ignore_ascii_case(host))
    };
    if text(header::ORIGIN).is_some_and(from_elsewhere) {
        return true;
    }
    if text(SEC_FETCH_SITE).is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return true;
    }
    text(header::ORIGIN).is_none() && text(header::REFERER).is_some_and(from_elsewhere)
}

/// The Fetch Metadata header a browser sends with every request it makes.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

async fn standin() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        )],
        STANDIN,
    )
        .into_response()
}

async fn jwks(State(idp): State<Arc<DevIdp>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        )],
        idp.docs.jwks.clone(),
    )
        .into_response()
}

async fn sign_in(
    State(idp): State<Arc<DevIdp>>,
    Body(req): Body<SignIn>,
) -> chat_auth_host::Result<Response> {
    let (token, exp) = idp.sign_in(&req.sub, &req.claims)?;
    let cookie =
        format!("{DEV_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={DEV_TOKEN_TTL}");
    let cookie = HeaderValue::from_str(&cookie).map_err(|_| Error::Crypto("cookie"))?;
    Ok((
        no_store(),
        [(header::SET_COOKIE, cookie)],
        Json(json!({"id_token": token, "expires_at": exp})),
    )
        .into_response())
}

/// `POST /dev/sign-out`: drops the sign-in cookie (the page cannot: it is HttpOnly).
async fn sign_out() -> chat_auth_host::Result<Response> {
    let cookie = format!("{DEV_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let cookie = HeaderValue::from_str(&cookie).map_err(|_| Error::Crypto("cookie"))?;
    Ok((
        no_store(),
        [(header::SET_COOKIE, cookie)],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

//! Development mode: a built-in identity provider and the demo page, so the whole flow runs on
//! one machine with nothing else installed. Only with `--dev` (or `CHAT_AUTH_DEV=1`), only on
//! loopback, only for requests addressed to a loopback host (see [`crate::server`]).

use crate::upstream::{BearerAuth, DEV_COOKIE, VerifyingKeys};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_auth::claims::{check_subject, encode};
use chat_auth::keys::{KeyTimes, SigningKey, StoredKey};
use chat_auth::publish::{PublicKeySet, PublishedDocs, PublishedKey};
use chat_auth::{Error, Problem, Result};
use chat_auth_host::http::{Body, no_store};
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
        let now = chat_auth::time::now();
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
        let now = chat_auth::time::now();
        let mut payload = Map::new();
        for (name, value) in claims {
            if matches!(name.as_str(), "iss" | "aud" | "sub" | "iat" | "nbf" | "exp") {
                return Err(Problem::new(
                    "reserved_claim",
                    format!("claim {name:?} is set by the identity provider"),
                )
                .into());
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
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/dev/lcw-standin.js", get(standin))
        .route("/dev/sign-in", post(sign_in))
        .route("/dev/sign-out", post(sign_out))
        .route("/dev/jwks.json", get(jwks))
        .with_state(idp)
}

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

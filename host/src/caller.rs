//! Who is calling, as the host verified it. Each host has one authenticate layer that sets
//! it: on Lambda, from API Gateway's authorizer context ([`crate::lambda::authenticate`]);
//! locally, from the bearer token, the demo cookie or the issue key (`chat-auth serve`).
//! Handlers read it through the one extractor, [`Caller`], and never look anywhere else:
//! nothing a client sends can place it in the request.

use crate::{Error, Refusal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::sync::Arc;

/// The caller of a request.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    /// No verified identity came with the request.
    #[default]
    Anonymous,
    /// A signed-in customer, with the claims of the identity token the host verified.
    User(Arc<Map<String, Value>>),
    /// A trusted backend, named by its IAM identity (or, locally, the issue key).
    Backend(String),
}

impl Caller {
    /// The customer's verified claims, or 401: the route is for signed-in customers.
    pub fn user(&self) -> Result<&Map<String, Value>, Error> {
        match self {
            Caller::User(claims) => Ok(claims),
            _ => Err(Error::Unauthenticated(Refusal::NoIdentity)),
        }
    }

    /// The backend's name, or 401: the route is for trusted backends.
    pub fn backend(&self) -> Result<&str, Error> {
        match self {
            Caller::Backend(name) => Ok(name),
            _ => Err(Error::Unauthenticated(Refusal::NotABackend)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}

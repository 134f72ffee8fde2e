//! Who is calling, as the host verified it. Each host has one authenticate layer that sets
//! it: on Lambda, from API Gateway's authorizer context ([`crate::lambda::authenticate`]);
//! locally, from the bearer token, the demo cookie or the issue key (`chat-auth serve`).
//! Handlers read it through the one extractor, [`Caller`], and never look anywhere else:
//! nothing a client sends can place it in the request.

use crate::{Error, Refusal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chat_auth_shared::mapping::IssueClients;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::sync::Arc;

/// The server-to-server route for backends on AWS (IAM SigV4 on Lambda; the development issue
/// key locally).
pub const ISSUE_ROUTE: &str = "/issue";
/// The server-to-server route for backends off AWS, with their identity provider's
/// client-credentials token. Its own path, because an API Gateway route has one authorizer
/// and `/issue` keeps IAM's.
pub const ISSUE_CLIENT_ROUTE: &str = "/issue/client-credentials";

/// True for either `/issue` route: there a verified token is a backend's, never a customer's.
pub fn is_issue_route(path: &str) -> bool {
    path == ISSUE_ROUTE || path == ISSUE_CLIENT_ROUTE
}

/// A trusted backend, as its host verified it; each mint for one is logged under this name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// An IAM identity listed in `CHAT_AUTH_ISSUE_CALLERS`: the ARN API Gateway reports.
    Iam(String),
    /// A client listed in `CHAT_AUTH_ISSUE_CLIENTS`: the client id of its client-credentials
    /// token.
    Client(String),
    /// Locally, in development mode: whoever holds the per-run issue key.
    IssueKey,
}

impl Backend {
    /// The backend of a verified client-credentials token on an `/issue` route, or 403
    /// `caller_not_allowed` saying why (logged, with the client id when there is one, never
    /// the token). Both hosts admit clients here, so the rule cannot drift between them.
    pub fn client(clients: &IssueClients, claims: &Map<String, Value>) -> Result<Backend, Error> {
        clients
            .admit(claims)
            .map(|id| Backend::Client(id.to_owned()))
            .map_err(|why| {
                let client_id = chat_auth_shared::mapping::client_id(claims).unwrap_or("");
                tracing::warn!(client_id, reason = %why, "client-credentials caller refused");
                Error::ClientNotAllowed(why)
            })
    }
}

/// The caller of a request.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    /// No verified identity came with the request.
    #[default]
    Anonymous,
    /// A signed-in customer, with the claims of the identity token the host verified.
    User(Arc<Map<String, Value>>),
    /// A trusted backend of `/issue`.
    Backend(Backend),
}

impl Caller {
    /// The customer's verified claims, or 401: the route is for signed-in customers.
    pub fn user(&self) -> Result<&Map<String, Value>, Error> {
        match self {
            Caller::User(claims) => Ok(claims),
            _ => Err(Error::Unauthenticated(Refusal::NoIdentity)),
        }
    }

    /// The backend, or 401: the route is for trusted backends.
    pub fn backend(&self) -> Result<&Backend, Error> {
        match self {
            Caller::Backend(backend) => Ok(backend),
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

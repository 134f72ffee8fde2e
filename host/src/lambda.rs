//! Runs a function's router under the Lambda Runtime API, with the caller taken from API
//! Gateway's authorizer context. Locally the routers run inside `chat-auth serve` instead, so
//! a function binary has no HTTP mode of its own.

use crate::{Caller, Error};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use chat_auth::config::IdentityConfig;
use lambda_http::request::RequestContext;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Serves `router` until the Lambda runtime stops.
pub async fn serve(router: Router) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    lambda_http::run(router).await
}

/// The Lambda host's authenticate layer over `router`. The HTTP API JWT authorizer's claims
/// (already verified by API Gateway) make a [`Caller::User`]; an IAM authorizer's caller makes
/// a [`Caller::Backend`] if `config` lists it for `/issue` (any other IAM caller gets 403).
/// Without an authorizer context the request stays anonymous.
pub fn authenticate(router: Router, config: &IdentityConfig) -> Router {
    router.layer(from_fn_with_state(Arc::new(config.clone()), authorizer))
}

async fn authorizer(
    State(config): State<Arc<IdentityConfig>>,
    mut req: Request,
    next: Next,
) -> Response {
    let authorizer = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.clone(),
        _ => None,
    };
    let Some(authorizer) = authorizer else {
        return next.run(req).await;
    };
    let iam = authorizer
        .iam
        .as_ref()
        .and_then(|iam| iam.user_arn.clone().or_else(|| iam.caller_id.clone()));
    let caller = if let Some(name) = iam {
        if !config.issue_caller_allowed(&name) {
            tracing::warn!(
                caller = name,
                "IAM caller refused: not in CHAT_AUTH_ISSUE_CALLERS"
            );
            return Error::CallerNotAllowed.into_response();
        }
        Caller::Backend(name)
    } else {
        match authorizer.jwt.as_ref().filter(|jwt| !jwt.claims.is_empty()) {
            Some(jwt) => Caller::User(Arc::new(
                jwt.claims
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<_, _>>(),
            )),
            None => Caller::Anonymous,
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

//! Runs a function's router under the Lambda Runtime API, with the caller taken from API
//! Gateway's authorizer context. Locally the routers run inside `chat-auth serve` instead, so
//! a function binary has no HTTP mode of its own.

use crate::caller::{Backend, is_issue_route};
use crate::{Caller, Error};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use chat_auth_shared::config::IdentityConfig;
use chat_auth_shared::mapping::IssueClients;
use lambda_http::request::RequestContext;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Serves `router` until the Lambda runtime stops. lambda_runtime's own client already keeps
/// one connection to the Runtime API across invocations (under cargo-lambda, one `connect` for
/// 2,005 invocations; issue 24), and it takes no client of ours. The reuse holds while the
/// Runtime API's reply to a posted response arrives in one read: lambda_runtime drops that
/// reply unread, and hyper keeps a connection only if the dropped body was already buffered.
pub async fn serve(router: Router) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    lambda_http::run(router).await
}

/// The phases of a function's init, in the order they run.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// The log subscriber.
    Telemetry,
    /// The environment read into configuration.
    Config,
    /// The key store opened (for Secrets Manager, the SDK's set-up: the key cache fetches the
    /// secret on first use, in the first invocation).
    Store,
    /// The router and its state built.
    App,
}

/// Times a cold start's init phase by phase and logs it as one `init done` line at the end.
/// Lambda's REPORT line gives only the total Init Duration, and a slow cold start is nearly
/// always one phase (the secret fetch); the line also carries the wall-clock time `main` began,
/// so that whoever spawned the process can tell the time before `main` (exec, dynamic linking,
/// the tokio runtime) from the rest.
#[derive(Debug)]
pub struct InitClock {
    began: SystemTime,
    mark: Instant,
    phases: [Duration; 4],
}

impl InitClock {
    /// Starts the clock: the first line of `main`.
    pub fn start() -> Self {
        InitClock {
            began: SystemTime::now(),
            mark: Instant::now(),
            phases: [Duration::ZERO; 4],
        }
    }

    /// Ends `phase`: the time since the previous phase ended (or the clock started).
    pub fn end(&mut self, phase: Phase) {
        let now = Instant::now();
        self.phases[phase as usize] += now - self.mark;
        self.mark = now;
    }

    /// Logs the phases in microseconds (a phase a function does not have is 0).
    pub fn log(self) {
        let [telemetry_us, config_us, store_us, app_us] = self.phases.map(|d| d.as_micros() as u64);
        let began_unix_us = self
            .began
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        tracing::info!(
            began_unix_us,
            telemetry_us,
            config_us,
            store_us,
            app_us,
            "init done"
        );
    }
}

/// The Lambda host's authenticate layer over `router`. The HTTP API JWT authorizer's claims
/// (already verified by API Gateway) make a [`Caller::User`], except on the `/issue` routes:
/// there the only JWT authorizer is the client-credentials one, so its claims make a
/// [`Caller::Backend`] if `config` lists the client (else 403). An IAM authorizer's caller
/// makes a [`Caller::Backend`] if `config` lists it (else 403). Without an authorizer context
/// the request stays anonymous.
pub fn authenticate(router: Router, config: &IdentityConfig) -> Router {
    let allowed = Allowed {
        callers: IssueCallers(config.issue_callers.clone()),
        clients: IssueClients::from_config(config),
    };
    router.layer(from_fn_with_state(Arc::new(allowed), authorizer))
}

/// Who may use `/issue`: IAM identities and client-credentials clients.
struct Allowed {
    callers: IssueCallers,
    clients: IssueClients,
}

/// The IAM identities `CHAT_AUTH_ISSUE_CALLERS` lets use `/issue`.
struct IssueCallers(Vec<String>);

impl IssueCallers {
    /// True when the IAM caller API Gateway reports may use `/issue`: its ARN is listed, or it
    /// is a session of a listed role (`arn:aws:sts::A:assumed-role/R/S` for
    /// `arn:aws:iam::A:role/R`, with any role path), since a role's callers arrive as sessions.
    fn allow(&self, caller: &str) -> bool {
        self.0.iter().any(|allowed| {
            allowed == caller
                || assumed_role(caller).is_some_and(|role| role_matches(allowed, role))
        })
    }
}

/// `(partition, account, role name)` of an STS assumed-role session ARN.
fn assumed_role(caller: &str) -> Option<(&str, &str, &str)> {
    let mut parts = caller.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sts"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    Some((partition, account, role))
}

/// True when `allowed` is the IAM role ARN (any path) of `role`.
fn role_matches(allowed: &str, (partition, account, role): (&str, &str, &str)) -> bool {
    allowed
        .strip_prefix(&format!("arn:{partition}:iam::{account}:role/"))
        .is_some_and(|path| path.rsplit('/').next() == Some(role))
}

async fn authorizer(State(allowed): State<Arc<Allowed>>, mut req: Request, next: Next) -> Response {
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
        if !allowed.callers.allow(&name) {
            tracing::warn!(
                caller = name,
                "IAM caller refused: not in CHAT_AUTH_ISSUE_CALLERS"
            );
            return Error::CallerNotAllowed.into_response();
        }
        Caller::Backend(Backend::Iam(name))
    } else {
        match authorizer.jwt.as_ref().filter(|jwt| !jwt.claims.is_empty()) {
            Some(jwt) => {
                let claims = jwt
                    .claims
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<_, _>>();
                if is_issue_route(req.uri().path()) {
                    match Backend::client(&allowed.clients, &claims) {
                        Ok(backend) => Caller::Backend(backend),
                        Err(refused) => return refused.into_response(),
                    }
                } else {
                    Caller::User(Arc::new(claims))
                }
            }
            None => Caller::Anonymous,
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_callers_match_listed_arns_and_their_role_sessions() {
        let callers = IssueCallers(vec![
            "arn:aws:iam::123456789012:role/backend".into(),
            "arn:aws:iam::123456789012:user/ops".into(),
        ]);
        assert!(callers.allow("arn:aws:iam::123456789012:user/ops"));
        assert!(callers.allow("arn:aws:sts::123456789012:assumed-role/backend/s1"));
        assert!(!callers.allow("arn:aws:sts::123456789012:assumed-role/backend2/s1"));
        assert!(!callers.allow("arn:aws:sts::210987654321:assumed-role/backend/s1"));
        assert!(!callers.allow("arn:aws:iam::123456789012:user/other"));
        assert!(!IssueCallers(Vec::new()).allow("arn:aws:iam::123456789012:user/ops"));
    }
}

//! From a caller's verified claims to a token's `sub` and custom context.
//!
//! The subject and the claim-mapped context come only from claims the host verified. A browser
//! may add context, but only keys on the allow-list: anything else is refused by name, so a
//! misconfigured page fails loudly instead of silently losing context.

use crate::config::IdentityConfig;
use crate::context::CustomContext;
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Which verified claims become `sub` and context, and which context keys a client may add.
#[derive(Debug, Clone)]
pub struct IdentityMapping {
    subject_claim: String,
    context_claims: Vec<(String, String)>,
    client_keys: BTreeSet<String>,
}

impl IdentityMapping {
    /// From the configuration.
    pub fn from_config(config: &IdentityConfig) -> Self {
        IdentityMapping {
            subject_claim: config.subject_claim.clone(),
            context_claims: config.context_claims.clone(),
            client_keys: config.client_context_keys.clone(),
        }
    }

    /// The subject: the configured claim, as a string.
    pub fn subject(&self, claims: &Map<String, Value>) -> Result<String> {
        match claims.get(&self.subject_claim) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(Error::NoSubjectClaim {
                claim: self.subject_claim.clone(),
            }),
        }
    }

    /// The context: mapped claims (those present), then allow-listed client keys.
    pub fn context(
        &self,
        claims: &Map<String, Value>,
        client: Option<&Map<String, Value>>,
    ) -> Result<CustomContext> {
        let mut context = CustomContext::new();
        for (var, claim) in &self.context_claims {
            if let Some(value) = claims.get(claim) {
                context.insert_json(var, value)?;
            }
        }
        self.add_client_context(&mut context, client)?;
        Ok(context)
    }

    /// Adds client-supplied keys, refusing any not on the allow-list.
    pub fn add_client_context(
        &self,
        context: &mut CustomContext,
        client: Option<&Map<String, Value>>,
    ) -> Result<()> {
        for (key, value) in client.into_iter().flatten() {
            if !self.client_keys.contains(key) {
                let shown: String = key.chars().take(100).collect();
                return Err(Error::ContextKeyNotAllowed(shown));
            }
            context.insert_json(key, value)?;
        }
        Ok(())
    }
}

/// The client-credentials callers `CHAT_AUTH_ISSUE_CLIENTS` lets use `/issue`: backends off
/// AWS, which prove who they are with their identity provider's OAuth 2.0 client-credentials
/// token instead of SigV4.
#[derive(Debug, Clone, Default)]
pub struct IssueClients(BTreeSet<String>);

/// Why a verified client-credentials token may not use `/issue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRefusal {
    /// The token names no client: no `client_id`, `azp` or `appid` claim.
    NoClientId,
    /// The token is a user's (it names a client, but a person signed in through it): a
    /// backend's token has no user, so a customer holding a token for a listed client must
    /// still not choose any `sub` it likes.
    UserToken,
    /// The client is not in `CHAT_AUTH_ISSUE_CLIENTS`.
    Unlisted,
}

impl std::fmt::Display for ClientRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientRefusal::NoClientId => {
                "the token names no client (no client_id, azp or appid claim): /issue takes \
                 client-credentials tokens"
            }
            ClientRefusal::UserToken => {
                "the token is a signed-in user's, not a client-credentials token: /issue is \
                 for backends"
            }
            ClientRefusal::Unlisted => {
                "this client may not use /issue (its client id is not in CHAT_AUTH_ISSUE_CLIENTS)"
            }
        })
    }
}

/// The client a verified token names: the first of `client_id` (Cognito), `azp` (Auth0, Entra
/// v2) and `appid` (Entra v1) that is a non-empty string. One reading for admitting a client and
/// for naming a refused one in the log.
pub fn client_id(claims: &Map<String, Value>) -> Option<&str> {
    ["client_id", "azp", "appid"].into_iter().find_map(|name| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
    })
}

impl IssueClients {
    /// From the configuration.
    pub fn from_config(config: &IdentityConfig) -> Self {
        IssueClients(config.issue_clients.clone())
    }

    /// The client id ([`client_id`]) of a verified token whose client may use `/issue`.
    /// The token must also be the client's own, with no user: its `sub` is the client
    /// (Cognito's is the client id, Auth0's `<client id>@clients`), or the provider marks it as
    /// an application's (Auth0's `gty: client-credentials`, Entra's optional `idtyp: app`), or,
    /// Entra's shape without `idtyp`, it has no delegated scope (`scp`) and its `sub` is the
    /// service principal's `oid` (a user's `sub` is pairwise, never its `oid`). A user's token
    /// for a listed client (one a person signed in through) fails all of these.
    pub fn admit<'c>(
        &self,
        claims: &'c Map<String, Value>,
    ) -> std::result::Result<&'c str, ClientRefusal> {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let id = client_id(claims).ok_or(ClientRefusal::NoClientId)?;
        let sub = text("sub");
        let own = match text("idtyp") {
            Some(kind) => kind == "app",
            None => {
                text("gty") == Some("client-credentials")
                    || sub == Some(id)
                    || sub.and_then(|s| s.strip_suffix("@clients")) == Some(id)
                    || (claims.get("scp").is_none() && sub.is_some() && text("oid") == sub)
            }
        };
        if !own {
            return Err(ClientRefusal::UserToken);
        }
        if !self.0.contains(id) {
            return Err(ClientRefusal::Unlisted);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Section;
    use serde_json::json;

    fn mapping() -> IdentityMapping {
        let config = IdentityConfig::from_lookup(|k| match k {
            "CHAT_AUTH_SUBJECT_CLAIM" => Some("contact_id".into()),
            "CHAT_AUTH_CONTEXT_CLAIMS" => Some("msdyn_region=region".into()),
            "CHAT_AUTH_CLIENT_CONTEXT_KEYS" => Some("page".into()),
            _ => None,
        })
        .unwrap();
        IdentityMapping::from_config(&config)
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn subject_comes_from_the_configured_claim() {
        let m = mapping();
        assert_eq!(
            m.subject(&claims(json!({"contact_id": "g-1", "sub": "x"})))
                .unwrap(),
            "g-1"
        );
        assert_eq!(
            m.subject(&claims(json!({"sub": "x"}))).unwrap_err().code(),
            "unauthenticated"
        );
    }

    #[test]
    fn client_keys_outside_the_allow_list_are_named() {
        let m = mapping();
        let c = claims(json!({"region": "EU"}));
        let ok = m
            .context(&c, Some(&claims(json!({"page": "/cart"}))))
            .unwrap();
        assert_eq!(ok.len(), 2);
        let err = m
            .context(&c, Some(&claims(json!({"msdyn_region": "US"}))))
            .unwrap_err();
        assert_eq!(err.code(), "context_key_not_allowed");
        assert!(err.to_string().contains("msdyn_region"));
        let err = m
            .context(&c, Some(&claims(json!({"page": {"a": 1}}))))
            .unwrap_err();
        assert_eq!(err.code(), "context_value_not_primitive");
    }

    /// The three providers' client-credentials tokens and their users' tokens, as their docs
    /// show them (claims trimmed to the ones that matter).
    #[test]
    fn issue_clients_admit_listed_applications_and_never_users() {
        let cfg = IdentityConfig::from_lookup(|k| {
            (k == "CHAT_AUTH_ISSUE_CLIENTS").then(|| "crm-sync, 6a1f0c2e-entra, Xy9auth0".into())
        })
        .unwrap();
        let clients = IssueClients::from_config(&cfg);
        let admit = |v: Value| clients.admit(&claims(v)).map(str::to_owned);
        // Cognito: client_id, and sub is the client id.
        assert_eq!(
            admit(
                json!({"client_id": "crm-sync", "sub": "crm-sync", "token_use": "access", "scope": "chat/issue"})
            ),
            Ok("crm-sync".into())
        );
        // Entra v1, without the optional idtyp: appid, no scp, sub is the service principal's oid.
        assert_eq!(
            admit(
                json!({"appid": "6a1f0c2e-entra", "oid": "sp-1", "sub": "sp-1", "roles": "Chat.Issue"})
            ),
            Ok("6a1f0c2e-entra".into())
        );
        // Entra v2 with idtyp.
        assert_eq!(
            admit(json!({"azp": "6a1f0c2e-entra", "oid": "sp-1", "sub": "sp-1", "idtyp": "app"})),
            Ok("6a1f0c2e-entra".into())
        );
        // Auth0: azp, gty, and sub is "<client id>@clients".
        assert_eq!(
            admit(
                json!({"azp": "Xy9auth0", "sub": "Xy9auth0@clients", "gty": "client-credentials"})
            ),
            Ok("Xy9auth0".into())
        );
        assert_eq!(
            admit(json!({"azp": "Xy9auth0", "sub": "Xy9auth0@clients"})),
            Ok("Xy9auth0".into())
        );
        // Users signed in through a listed client: refused whatever the provider.
        for user in [
            json!({"client_id": "crm-sync", "sub": "5f2e-user", "username": "ann", "token_use": "access"}),
            json!({"azp": "6a1f0c2e-entra", "oid": "user-oid", "sub": "pairwise-sub", "scp": "Chat.Issue"}),
            json!({"appid": "6a1f0c2e-entra", "oid": "sp-1", "sub": "sp-1", "scp": "user_impersonation"}),
            json!({"azp": "6a1f0c2e-entra", "oid": "sp-1", "sub": "sp-1", "idtyp": "user"}),
            json!({"azp": "Xy9auth0", "sub": "auth0|65f0", "gty": "password"}),
        ] {
            assert_eq!(admit(user.clone()), Err(ClientRefusal::UserToken), "{user}");
        }
        // An application, but not a listed one; and a token that names no client at all.
        assert_eq!(
            admit(json!({"client_id": "other", "sub": "other"})),
            Err(ClientRefusal::Unlisted)
        );
        assert_eq!(
            admit(json!({"sub": "crm-sync", "aud": "api://chat"})),
            Err(ClientRefusal::NoClientId)
        );
        // Nobody is listed by default.
        let none = IssueClients::default();
        assert_eq!(
            none.admit(&claims(json!({"client_id": "crm-sync", "sub": "crm-sync"}))),
            Err(ClientRefusal::Unlisted)
        );
    }
}

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
}

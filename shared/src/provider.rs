//! The provider script: the JavaScript a page loads to wire Omnichannel's widget to the token
//! endpoint (`setAuthTokenProvider` after `lcw:ready`, and the admin-configured client function).
//!
//! Rendered once at start from deploy-time configuration; the body, its ETag and its
//! Subresource Integrity hash never change while the process runs.

use crate::config::BrowserConfig;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde_json::json;

const TEMPLATE: &str = include_str!("../assets/provider.js");
const PLACEHOLDER: &str = "__CHAT_AUTH_CONFIG__";

/// The rendered script.
#[derive(Debug, Clone)]
pub struct ProviderScript {
    /// The JavaScript.
    pub body: Bytes,
    /// Strong ETag (quoted).
    pub etag: String,
    /// `sha384-...` for the `integrity` attribute.
    pub integrity: String,
}

impl ProviderScript {
    /// Renders the template with the token URL, client function and identity mode.
    pub fn render(config: &BrowserConfig) -> Self {
        let settings = json!({
            "tokenUrl": config.token_url,
            "clientFunction": config.client_function,
            "identityMode": config.identity_mode.as_str(),
        });
        let body = TEMPLATE.replacen(PLACEHOLDER, &script_safe_json(&settings), 1);
        let sha256 = digest::digest(&digest::SHA256, body.as_bytes());
        ProviderScript {
            etag: format!("\"{}\"", &URL_SAFE_NO_PAD.encode(sha256.as_ref())[..27]),
            integrity: integrity(body.as_bytes()),
            body: Bytes::from(body),
        }
    }
}

/// The Subresource Integrity value (`sha384-...`) of a script's bytes.
pub fn integrity(script: &[u8]) -> String {
    let sha384 = digest::digest(&digest::SHA384, script);
    format!("sha384-{}", STANDARD.encode(sha384.as_ref()))
}

/// JSON that cannot close a `<script>` element or break a JavaScript string literal.
fn script_safe_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Section;

    #[test]
    fn settings_are_embedded_once_and_safely() {
        let config = BrowserConfig::from_lookup(|k| {
            (k == "CHAT_AUTH_TOKEN_URL").then(|| "https://x.test/token?</script>".to_owned())
        })
        .unwrap();
        let script = ProviderScript::render(&config);
        let text = std::str::from_utf8(&script.body).unwrap();
        assert!(!text.contains(PLACEHOLDER));
        assert!(!text.contains("</script>"));
        assert!(text.contains("auth.getAuthenticationToken"));
        assert!(script.integrity.starts_with("sha384-"));
        assert_eq!(script.etag, ProviderScript::render(&config).etag);
    }
}

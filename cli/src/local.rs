//! Local-only configuration: where to listen, where the key ring lives, and who vouches for
//! callers (an upstream identity provider, or the built-in development one).

use chat_auth::config::config;
use chat_auth::{Config, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Who verifies the bearer tokens presented to `/token`.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// The site's identity provider: tokens are verified against its JWKS.
    Upstream {
        /// Required `iss`.
        issuer: String,
        /// Where its signing keys are published.
        jwks_url: String,
        /// Required `aud` member.
        audience: Option<String>,
    },
    /// The built-in demo identity provider (`POST /dev/sign-in`); loopback only.
    Development,
}

/// The local server's settings.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The shared configuration (same variables as on Lambda).
    pub shared: Config,
    /// `CHAT_AUTH_LISTEN` / `--listen`.
    pub listen: SocketAddr,
    /// `CHAT_AUTH_DATA_DIR` / `--data-dir`.
    pub data_dir: PathBuf,
    /// Upstream or development identity.
    pub identity: IdentitySource,
}

/// The context mapping the demo page relies on, used in development mode when
/// `CHAT_AUTH_CONTEXT_CLAIMS` is not set.
pub const DEV_CONTEXT_CLAIMS: &str = "msdyn_cartvalue=cart_value,msdyn_isvip=vip,region=region";

impl LocalConfig {
    /// Reads the environment, with command-line overrides for listen address and data dir.
    pub fn from_env(listen: Option<String>, data_dir: Option<PathBuf>) -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok(), listen, data_dir)
    }

    /// Reads variables through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let listen_raw = listen
            .or_else(|| get("CHAT_AUTH_LISTEN"))
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            config(
                "CHAT_AUTH_LISTEN",
                format!("{listen_raw:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let data_dir = data_dir
            .or_else(|| get("CHAT_AUTH_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".chat-auth"));
        let identity = match (
            get("CHAT_AUTH_UPSTREAM_ISSUER"),
            get("CHAT_AUTH_UPSTREAM_JWKS_URL"),
        ) {
            (Some(issuer), Some(jwks_url)) => {
                if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
                    return Err(config(
                        "CHAT_AUTH_UPSTREAM_JWKS_URL",
                        "must be an http(s) URL",
                    ));
                }
                IdentitySource::Upstream {
                    issuer,
                    jwks_url,
                    audience: get("CHAT_AUTH_UPSTREAM_AUDIENCE"),
                }
            }
            (None, None) => IdentitySource::Development,
            (Some(_), None) => {
                return Err(config(
                    "CHAT_AUTH_UPSTREAM_JWKS_URL",
                    "is required with CHAT_AUTH_UPSTREAM_ISSUER",
                ));
            }
            (None, Some(_)) => {
                return Err(config(
                    "CHAT_AUTH_UPSTREAM_ISSUER",
                    "is required with CHAT_AUTH_UPSTREAM_JWKS_URL",
                ));
            }
        };
        let development = matches!(identity, IdentitySource::Development);
        if development && !listen.ip().is_loopback() {
            return Err(config(
                "CHAT_AUTH_LISTEN",
                "development mode (no CHAT_AUTH_UPSTREAM_ISSUER) hands out identities to anyone and only listens on loopback",
            ));
        }
        let mut shared = Config::from_lookup(|k| {
            if development && k == "CHAT_AUTH_CONTEXT_CLAIMS" {
                return get(k).or_else(|| Some(DEV_CONTEXT_CLAIMS.to_owned()));
            }
            get(k)
        })?;
        // The local key ring lives next to the server: a short TTL lets `chat-auth rotate`
        // from another terminal take effect within seconds.
        if get("CHAT_AUTH_KEY_CACHE_TTL_SECONDS").is_none() {
            shared.key_cache_ttl = std::time::Duration::from_secs(2);
        }
        if development {
            for origin in [
                format!("http://{listen}"),
                format!("http://localhost:{}", listen.port()),
            ] {
                if !shared.allowed_origins.contains(&origin) {
                    shared.allowed_origins.push(origin);
                }
            }
        }
        Ok(LocalConfig {
            shared,
            listen,
            data_dir,
            identity,
        })
    }

    /// True in development mode.
    pub fn development(&self) -> bool {
        matches!(self.identity, IdentitySource::Development)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_mode_refuses_non_loopback() {
        let err =
            LocalConfig::from_lookup(|_| None, Some("0.0.0.0:8080".into()), None).unwrap_err();
        assert!(err.to_string().contains("CHAT_AUTH_LISTEN"));
        let ok = LocalConfig::from_lookup(|_| None, None, None).unwrap();
        assert!(ok.development());
        assert!(
            ok.shared
                .allowed_origins
                .contains(&"http://127.0.0.1:8080".to_owned())
        );
    }

    #[test]
    fn upstream_mode_needs_both_variables() {
        let only_issuer =
            |k: &str| (k == "CHAT_AUTH_UPSTREAM_ISSUER").then(|| "https://idp".to_owned());
        let err = LocalConfig::from_lookup(only_issuer, None, None).unwrap_err();
        assert!(err.to_string().contains("CHAT_AUTH_UPSTREAM_JWKS_URL"));
        let both = |k: &str| match k {
            "CHAT_AUTH_UPSTREAM_ISSUER" => Some("https://idp".to_owned()),
            "CHAT_AUTH_UPSTREAM_JWKS_URL" => Some("https://idp/jwks".to_owned()),
            _ => None,
        };
        let ok = LocalConfig::from_lookup(both, Some("0.0.0.0:8080".into()), None).unwrap();
        assert!(!ok.development());
    }
}

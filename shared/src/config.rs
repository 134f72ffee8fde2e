//! Configuration from environment variables, read once at start. The same names apply on
//! Lambda and locally; a bad value stops the process with a message naming the variable.
//!
//! Each variable's default is written once in prose, in the doc comment of what it sets, as
//! `` (`NAME`, default `VALUE`) `` or `` (`NAME`, default: words) ``; docs/configuration.md's
//! table repeats it, and a test in the CLI crate (`local.rs`) checks the table against these
//! comments and each literal default against what the code does when the variable is unset.

use crate::claims::{MAX_TTL, TokenPolicy};
use crate::ring::{MIN_ROTATION_PERIOD, RingPolicy};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::time::Duration;
use tracing::level_filters::LevelFilter;

/// How the provider script proves who the page's user is to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityMode {
    /// A bearer token from a getter the page configures.
    Bearer,
    /// The page's cookies (`credentials: "include"`).
    Cookie,
    /// Bearer when the page configured a getter, cookies otherwise.
    Auto,
}

impl IdentityMode {
    /// The name the provider script understands.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMode::Bearer => "bearer",
            IdentityMode::Cookie => "cookie",
            IdentityMode::Auto => "auto",
        }
    }
}

/// Variables, as a [`Section`] reads them: trimmed, and `None` when unset or blank.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as [`read_vars`] looks it up.
pub fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The one reader of variables: `read` sees what `lookup` (the environment, or a test's map)
/// holds, trimmed, with a blank value treated as unset, so that every section and the local
/// server's own settings agree on what "set" means.
pub fn read_vars<T>(
    lookup: impl Fn(&str) -> Option<String>,
    read: impl FnOnce(Vars<'_>) -> Result<T>,
) -> Result<T> {
    read(&|name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// One concern's part of the configuration, read once at start. Each function reads only the
/// sections it uses (the local server reads them all, as [`Config`]), and nothing outside this
/// module reads the environment.
pub trait Section: Sized {
    /// Reads and checks the section's variables.
    fn read(get: Vars<'_>) -> Result<Self>;

    /// Reads the process environment.
    fn from_env() -> Result<Self> {
        Self::from_lookup(environment)
    }

    /// Reads variables through `lookup` (tests pass a map).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        read_vars(lookup, Self::read)
    }
}

/// What minting and validation agree on: the issuer (`CHAT_AUTH_ISSUER`, default `chat-auth`),
/// the tokens' lifetime (`CHAT_AUTH_TOKEN_TTL_SECONDS`, default `900`) and the clock skew
/// (`CHAT_AUTH_CLOCK_SKEW_SECONDS`, default `30`).
impl Section for TokenPolicy {
    fn read(get: Vars<'_>) -> Result<Self> {
        let issuer = get("CHAT_AUTH_ISSUER").unwrap_or_else(|| "chat-auth".to_owned());
        let ttl = number(&get, "CHAT_AUTH_TOKEN_TTL_SECONDS", 900)?;
        if !(60..=MAX_TTL).contains(&ttl) {
            return Err(config(
                "CHAT_AUTH_TOKEN_TTL_SECONDS",
                format!("must be between 60 and {MAX_TTL} seconds"),
            ));
        }
        let skew = number(&get, "CHAT_AUTH_CLOCK_SKEW_SECONDS", 30)?;
        if !(0..=300).contains(&skew) {
            return Err(config(
                "CHAT_AUTH_CLOCK_SKEW_SECONDS",
                "must be between 0 and 300",
            ));
        }
        Ok(TokenPolicy { issuer, ttl, skew })
    }
}

/// Who may be given a token, and what of their identity goes into it (mint-token).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The verified claim that becomes `sub` (`CHAT_AUTH_SUBJECT_CLAIM`, default `sub`).
    pub subject_claim: String,
    /// Context variable ← verified claim, as `var=claim,...` (`CHAT_AUTH_CONTEXT_CLAIMS`,
    /// default: none).
    pub context_claims: Vec<(String, String)>,
    /// Context keys a browser may add (`CHAT_AUTH_CLIENT_CONTEXT_KEYS`, default: none).
    pub client_context_keys: BTreeSet<String>,
    /// IAM identities (role or user ARNs) that may use `/issue` on Lambda; the Lambda host
    /// matches callers against them (`CHAT_AUTH_ISSUE_CALLERS`, default: none).
    pub issue_callers: Vec<String>,
    /// OAuth 2.0 client ids whose client-credentials tokens may use `/issue`, matched against
    /// the token's `client_id`, `azp` or `appid` claim (`CHAT_AUTH_ISSUE_CLIENTS`, default:
    /// none).
    pub issue_clients: BTreeSet<String>,
}

impl Section for IdentityConfig {
    fn read(get: Vars<'_>) -> Result<Self> {
        let subject_claim = get("CHAT_AUTH_SUBJECT_CLAIM").unwrap_or_else(|| "sub".to_owned());
        let context_claims = match get("CHAT_AUTH_CONTEXT_CLAIMS") {
            None => Vec::new(),
            Some(raw) => parse_pairs(&raw)?,
        };
        let client_context_keys: BTreeSet<String> = list(get("CHAT_AUTH_CLIENT_CONTEXT_KEYS"));
        if let Some((var, _)) = context_claims
            .iter()
            .find(|(var, _)| client_context_keys.contains(var))
        {
            return Err(config(
                "CHAT_AUTH_CLIENT_CONTEXT_KEYS",
                format!(
                    "{var:?} is already filled from a verified claim; a browser must not override it"
                ),
            ));
        }
        let issue_callers: Vec<String> = list(get("CHAT_AUTH_ISSUE_CALLERS")).into_iter().collect();
        if let Some(bad) = issue_callers.iter().find(|a| !a.starts_with("arn:")) {
            return Err(config(
                "CHAT_AUTH_ISSUE_CALLERS",
                format!("{bad:?} is not an IAM ARN like arn:aws:iam::123456789012:role/backend"),
            ));
        }
        Ok(IdentityConfig {
            subject_claim,
            context_claims,
            client_context_keys,
            issue_callers,
            issue_clients: list(get("CHAT_AUTH_ISSUE_CLIENTS")),
        })
    }
}

/// The page's side: which origins may call, and how the provider script gets its tokens
/// (mint-token's CORS, provider-script).
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// Browser origins allowed to call the token endpoint (`CHAT_AUTH_ALLOWED_ORIGINS`,
    /// default: none).
    pub allowed_origins: Vec<String>,
    /// The admin-configured JavaScript client function (`CHAT_AUTH_CLIENT_FUNCTION`, default
    /// `auth.getAuthenticationToken`).
    pub client_function: String,
    /// Where the provider script fetches tokens (`CHAT_AUTH_TOKEN_URL`, default `/token`).
    pub token_url: String,
    /// How the provider script identifies the user (`CHAT_AUTH_IDENTITY_MODE`, default
    /// `auto`).
    pub identity_mode: IdentityMode,
}

impl Section for BrowserConfig {
    fn read(get: Vars<'_>) -> Result<Self> {
        let allowed_origins = list(get("CHAT_AUTH_ALLOWED_ORIGINS"))
            .into_iter()
            .map(|o| check_origin(&o))
            .collect::<Result<Vec<_>>>()?;
        let client_function = get("CHAT_AUTH_CLIENT_FUNCTION")
            .unwrap_or_else(|| "auth.getAuthenticationToken".to_owned());
        check_function_name(&client_function)?;
        let token_url = get("CHAT_AUTH_TOKEN_URL").unwrap_or_else(|| "/token".to_owned());
        if !(token_url.starts_with('/')
            || token_url.starts_with("https://")
            || token_url.starts_with("http://"))
            || token_url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(config(
                "CHAT_AUTH_TOKEN_URL",
                "must be an absolute URL or a path starting with /",
            ));
        }
        let identity_mode = match get("CHAT_AUTH_IDENTITY_MODE").as_deref() {
            None | Some("auto") => IdentityMode::Auto,
            Some("bearer") => IdentityMode::Bearer,
            Some("cookie") => IdentityMode::Cookie,
            Some(_) => {
                return Err(config(
                    "CHAT_AUTH_IDENTITY_MODE",
                    "must be auto, bearer or cookie",
                ));
            }
        };
        Ok(BrowserConfig {
            allowed_origins,
            client_function,
            token_url,
            identity_mode,
        })
    }
}

/// How long a warm function trusts the keys it read from the store (every function but
/// provider-script).
#[derive(Debug, Clone)]
pub struct KeyCacheConfig {
    /// How long a read of the store is trusted before the next (`CHAT_AUTH_KEY_CACHE_TTL_SECONDS`,
    /// default `300`).
    pub ttl: Duration,
    /// How long past its time to live a cached key may serve while the store is unreachable
    /// (`CHAT_AUTH_KEY_STALE_SECONDS`, default `900`).
    pub stale_for: Duration,
    /// How long a warm signer may keep signing from a ring it could not refresh
    /// (`CHAT_AUTH_SIGNING_STALE_SECONDS`, default `60`, and at most half of `stale_for`):
    /// shorter than `stale_for`, because a revocation must reach signers sooner than verifiers
    /// need fresh public keys.
    pub signing_stale_for: Duration,
}

impl Section for KeyCacheConfig {
    fn read(get: Vars<'_>) -> Result<Self> {
        let ttl = number(&get, "CHAT_AUTH_KEY_CACHE_TTL_SECONDS", 300)?;
        if !(0..=3600).contains(&ttl) {
            return Err(config(
                "CHAT_AUTH_KEY_CACHE_TTL_SECONDS",
                "must be between 0 and 3600",
            ));
        }
        let stale = number(&get, "CHAT_AUTH_KEY_STALE_SECONDS", 900)?;
        if !(0..=3600).contains(&stale) {
            return Err(config(
                "CHAT_AUTH_KEY_STALE_SECONDS",
                "must be between 0 and 3600",
            ));
        }
        let signing_stale = number(&get, "CHAT_AUTH_SIGNING_STALE_SECONDS", 60.min(stale / 2))?;
        if !(0..=stale).contains(&signing_stale) || (stale > 0 && signing_stale == stale) {
            return Err(config(
                "CHAT_AUTH_SIGNING_STALE_SECONDS",
                format!(
                    "must be at least 0 and shorter than CHAT_AUTH_KEY_STALE_SECONDS ({stale})"
                ),
            ));
        }
        Ok(KeyCacheConfig {
            ttl: Duration::from_secs(ttl as u64),
            stale_for: Duration::from_secs(stale as u64),
            signing_stale_for: Duration::from_secs(signing_stale as u64),
        })
    }
}

/// The ring's timing rules (rotate-keys, and every host that creates or rotates a ring). The
/// rules depend on how long signers cache keys and on the clock skew, so this section reads
/// those variables too, through the same sections.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Seconds between scheduled rotations, set in days (`CHAT_AUTH_ROTATION_PERIOD_DAYS`,
    /// default `30`).
    pub rotation_period: i64,
    /// How long a key must have been published before it signs
    /// (`CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS`, default: the public documents' `max-age` plus
    /// the key cache TTL, which `None` stands for).
    pub key_min_published: Option<i64>,
    /// The key cache every function uses: a key must stay published for as long as a cache
    /// may hold a ring, so the rules depend on it. [`Config`] holds it only here.
    pub keys: KeyCacheConfig,
    /// The tokens' clock skew, for the same reason.
    pub skew: i64,
}

impl Section for RingConfig {
    fn read(get: Vars<'_>) -> Result<Self> {
        let key_min_published = match get("CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS") {
            None => None,
            Some(_) => {
                let secs = number(&get, "CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS", 0)?;
                if !(0..=7 * 86_400).contains(&secs) {
                    return Err(config(
                        "CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS",
                        "must be between 0 and 604800 (7 days)",
                    ));
                }
                Some(secs)
            }
        };
        let rotation_days = number(&get, "CHAT_AUTH_ROTATION_PERIOD_DAYS", 30)?;
        let rotation_period = rotation_days.saturating_mul(86_400);
        if !(1..=365).contains(&rotation_days) || rotation_period < MIN_ROTATION_PERIOD {
            return Err(config(
                "CHAT_AUTH_ROTATION_PERIOD_DAYS",
                "must be between 1 and 365",
            ));
        }
        Ok(RingConfig {
            rotation_period,
            key_min_published,
            keys: KeyCacheConfig::read(get)?,
            skew: TokenPolicy::read(get)?.skew,
        })
    }
}

impl RingConfig {
    /// The ring's timing rules (see [`crate::ring`]).
    pub fn ring_policy(&self) -> RingPolicy {
        let ttl = self.keys.ttl.as_secs() as i64;
        RingPolicy::new(
            self.rotation_period,
            self.key_min_published
                .unwrap_or(crate::publish::PUBLIC_DOCS_MAX_AGE + ttl),
            ttl,
            self.keys.signing_stale_for.as_secs() as i64,
            self.skew,
        )
    }

    /// The ring's rules with fresh RSA keys.
    pub fn lifecycle(&self) -> crate::ring::Lifecycle {
        crate::ring::Lifecycle::new(self.ring_policy())
    }
}

/// Where a function binary's keys live: Secrets Manager, or a data directory (under a local
/// Lambda runtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// On AWS, the template names both secrets.
    SecretsManager {
        /// The published set's secret (`CHAT_AUTH_PUBLIC_KEYS_SECRET_ID`, default: none, which
        /// means the data directory).
        public: String,
        /// The private ring's secret (`CHAT_AUTH_SIGNING_SECRET_ID`, default: none): a
        /// verifying function is not given it.
        signing: Option<String>,
        /// Where the private keys are (`CHAT_AUTH_KEY_CUSTODY`, default `secret`): the signing
        /// secret by default, because it signs in-process (no network call per token, no
        /// per-request price, no share of the account's KMS quota) and runs with no AWS account;
        /// `kms` where a review requires that no function ever hold the private key.
        custody: Custody,
    },
    /// Under a local Lambda runtime, when no secret is named (`CHAT_AUTH_DATA_DIR`, default
    /// `.chat-auth`).
    Files(std::path::PathBuf),
}

impl Section for StoreConfig {
    fn read(get: Vars<'_>) -> Result<Self> {
        let custody = match get("CHAT_AUTH_KEY_CUSTODY").as_deref() {
            None | Some("secret") => Custody::Secret,
            Some("kms") => Custody::Kms {
                stack_tag: get("CHAT_AUTH_KMS_STACK_TAG"),
                signer_role: get("CHAT_AUTH_KMS_SIGNER_ROLE_ARN"),
                rotator_role: get("CHAT_AUTH_KMS_ROTATOR_ROLE_ARN"),
            },
            Some(other) => {
                return Err(config(
                    "CHAT_AUTH_KEY_CUSTODY",
                    format!("{other:?} is not secret or kms"),
                ));
            }
        };
        Ok(match get("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID") {
            Some(public) => StoreConfig::SecretsManager {
                public,
                signing: get("CHAT_AUTH_SIGNING_SECRET_ID"),
                custody,
            },
            None if custody != Custody::Secret => {
                return Err(config(
                    "CHAT_AUTH_KEY_CUSTODY",
                    "kms needs the Secrets Manager store (CHAT_AUTH_PUBLIC_KEYS_SECRET_ID); the data directory holds its own keys",
                ));
            }
            None => StoreConfig::Files(
                get("CHAT_AUTH_DATA_DIR")
                    .unwrap_or_else(|| ".chat-auth".into())
                    .into(),
            ),
        })
    }
}

/// Where the ring's private keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Custody {
    /// In the signing secret: mint-token signs in its own memory.
    Secret,
    /// In AWS KMS: the ring holds each key's ARN and public key, mint-token asks KMS to sign.
    Kms {
        /// The value of the `chat-auth:stack` tag on the keys rotation creates, and the only
        /// keys it may withdraw (`CHAT_AUTH_KMS_STACK_TAG`, default: none; rotate-keys refuses to
        /// start without it, since two stacks sharing a tag would withdraw each other's keys).
        stack_tag: Option<String>,
        /// The one role the keys' policy lets sign: mint-token's
        /// (`CHAT_AUTH_KMS_SIGNER_ROLE_ARN`, default: none; rotate-keys refuses to start
        /// without it, so that no key is made whose policy leaves signing to IAM policies).
        signer_role: Option<String>,
        /// The role the keys' policy lets read, disable and schedule the deletion of them:
        /// rotate-keys' own (`CHAT_AUTH_KMS_ROTATOR_ROLE_ARN`, default: none; required as
        /// above).
        rotator_role: Option<String>,
    },
}

/// Logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The CloudWatch namespace for metrics, only on Lambda (`AWS_LAMBDA_FUNCTION_NAME` set):
    /// metrics are log lines that only CloudWatch reads (`CHAT_AUTH_METRICS_NAMESPACE`,
    /// default `ChatAuth`).
    pub metrics_namespace: Option<String>,
    /// JSON log lines, when Lambda's advanced logging asks for them
    /// (`AWS_LAMBDA_LOG_FORMAT=JSON`).
    pub json_logs: bool,
    /// The level Lambda's advanced logging asks for (`AWS_LAMBDA_LOG_LEVEL`; its `FATAL` is
    /// `ERROR`, the most severe level `tracing` has). It replaces the default level of `info`;
    /// `log_filter` still refines it.
    pub log_level: Option<LevelFilter>,
    /// Filter directives (`RUST_LOG`, as everywhere in Rust).
    pub log_filter: Option<String>,
}

impl Section for TelemetryConfig {
    fn read(get: Vars<'_>) -> Result<Self> {
        let log_level = match get("AWS_LAMBDA_LOG_LEVEL") {
            None => None,
            Some(level) if level.eq_ignore_ascii_case("fatal") => Some(LevelFilter::ERROR),
            Some(level) => Some(level.parse().map_err(|_| {
                config(
                    "AWS_LAMBDA_LOG_LEVEL",
                    format!("{level:?} is not TRACE, DEBUG, INFO, WARN, ERROR or FATAL"),
                )
            })?),
        };
        Ok(TelemetryConfig {
            metrics_namespace: get("AWS_LAMBDA_FUNCTION_NAME").map(|_| {
                get("CHAT_AUTH_METRICS_NAMESPACE").unwrap_or_else(|| "ChatAuth".to_owned())
            }),
            json_logs: get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            log_level,
            log_filter: get("RUST_LOG"),
        })
    }
}

/// Every section the local server runs (all the functions on one machine).
#[derive(Debug, Clone)]
pub struct Config {
    /// Issuer, lifetime, skew.
    pub tokens: TokenPolicy,
    /// Subject, context and `/issue` callers.
    pub identity: IdentityConfig,
    /// Origins and the provider script.
    pub browser: BrowserConfig,
    /// The ring's timing rules, and the key cache (`ring.keys`) they depend on.
    pub ring: RingConfig,
}

impl Section for Config {
    fn read(get: Vars<'_>) -> Result<Self> {
        Ok(Config {
            tokens: TokenPolicy::read(get)?,
            identity: IdentityConfig::read(get)?,
            browser: BrowserConfig::read(get)?,
            ring: RingConfig::read(get)?,
        })
    }
}

/// The validator for this service's own tokens, with Omnichannel's rules.
pub fn validator(tokens: &TokenPolicy) -> crate::jwt::Validator {
    crate::jwt::Validator {
        issuer: Some(tokens.issuer.clone()),
        leeway: tokens.skew,
    }
}

/// Names the variable in a configuration error.
pub fn config(var: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        var,
        reason: reason.into(),
    }
}

fn number(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: i64) -> Result<i64> {
    match get(var) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|_| config(var, format!("{raw:?} is not a whole number"))),
    }
}

/// A whole number from `var` (seconds, a count), `default` when unset, refused outside `range`.
pub fn bounded(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64> {
    let value = number(get, var, default as i64)?;
    u64::try_from(value)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            config(
                var,
                format!("{value} is outside {}..={}", range.start(), range.end()),
            )
        })
}

fn list(raw: Option<String>) -> BTreeSet<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_pairs(raw: &str) -> Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (var, claim) = item
            .split_once('=')
            .map(|(v, c)| (v.trim(), c.trim()))
            .filter(|(v, c)| !v.is_empty() && !c.is_empty())
            .ok_or_else(|| {
                config(
                    "CHAT_AUTH_CONTEXT_CLAIMS",
                    format!("{item:?} is not var=claim"),
                )
            })?;
        if pairs.iter().any(|(v, _)| v == var) {
            return Err(config(
                "CHAT_AUTH_CONTEXT_CLAIMS",
                format!("{var:?} appears twice"),
            ));
        }
        if var.chars().count() > crate::context::MAX_NAME_CHARS {
            return Err(config(
                "CHAT_AUTH_CONTEXT_CLAIMS",
                format!("{var:?} is longer than 100 characters"),
            ));
        }
        pairs.push((var.to_owned(), claim.to_owned()));
    }
    if pairs.len() > crate::context::MAX_VARIABLES {
        return Err(config(
            "CHAT_AUTH_CONTEXT_CLAIMS",
            "more than 100 variables",
        ));
    }
    Ok(pairs)
}

/// An origin is `scheme://host[:port]`, exactly as browsers send it.
fn check_origin(origin: &str) -> Result<String> {
    let origin = origin.trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let valid = rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    if !valid {
        return Err(config(
            "CHAT_AUTH_ALLOWED_ORIGINS",
            format!(
                "{origin:?} is not an origin like https://www.contoso.com (no wildcards, no paths)"
            ),
        ));
    }
    Ok(origin.to_ascii_lowercase())
}

/// A dotted JavaScript path of plain identifiers that cannot reach prototypes.
fn check_function_name(name: &str) -> Result<()> {
    let ok = name.len() <= 200
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                && !matches!(part, "__proto__" | "prototype" | "constructor")
        });
    if ok {
        Ok(())
    } else {
        Err(config(
            "CHAT_AUTH_CLIENT_FUNCTION",
            format!("{name:?} is not a dotted JavaScript name like auth.getAuthenticationToken"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config> {
        lookup::<Config>(vars)
    }

    fn lookup<S: Section>(vars: &[(&str, &str)]) -> Result<S> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        S::from_lookup(|k| map.get(k).cloned())
    }

    fn var_of<S: std::fmt::Debug>(r: Result<S>) -> &'static str {
        match r.unwrap_err() {
            Error::Config { var, .. } => var,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn issue_callers_are_iam_arns() {
        let c = with(&[(
            "CHAT_AUTH_ISSUE_CALLERS",
            "arn:aws:iam::123456789012:role/backend, arn:aws:iam::123456789012:user/ops",
        )])
        .unwrap()
        .identity;
        assert_eq!(
            c.issue_callers,
            [
                "arn:aws:iam::123456789012:role/backend",
                "arn:aws:iam::123456789012:user/ops"
            ]
        );
        assert!(with(&[]).unwrap().identity.issue_callers.is_empty());
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_ISSUE_CALLERS", "backend")])),
            "CHAT_AUTH_ISSUE_CALLERS"
        );
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.tokens.ttl, 900);
        assert_eq!(c.tokens.skew, 30);
        assert_eq!(c.identity.subject_claim, "sub");
        assert_eq!(c.browser.client_function, "auth.getAuthenticationToken");
        assert_eq!(c.browser.token_url, "/token");
        assert_eq!(c.ring.keys.ttl, Duration::from_secs(300));
        assert_eq!(
            lookup::<StoreConfig>(&[]).unwrap(),
            StoreConfig::Files(".chat-auth".into())
        );
        assert_eq!(
            lookup::<TelemetryConfig>(&[("AWS_LAMBDA_LOG_FORMAT", "json")]).unwrap(),
            TelemetryConfig {
                metrics_namespace: None,
                json_logs: true,
                log_level: None,
                log_filter: None,
            }
        );
        let lambda = lookup::<TelemetryConfig>(&[
            ("AWS_LAMBDA_LOG_LEVEL", "warn"),
            ("RUST_LOG", "chat_auth=debug"),
        ])
        .unwrap();
        assert_eq!(lambda.log_level, Some(LevelFilter::WARN));
        assert_eq!(lambda.log_filter.as_deref(), Some("chat_auth=debug"));
        let fatal = lookup::<TelemetryConfig>(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).unwrap();
        assert_eq!(fatal.log_level, Some(LevelFilter::ERROR));
        assert_eq!(
            var_of(lookup::<TelemetryConfig>(&[(
                "AWS_LAMBDA_LOG_LEVEL",
                "loud"
            )])),
            "AWS_LAMBDA_LOG_LEVEL"
        );
    }

    #[test]
    fn a_section_reads_only_its_own_variables() {
        // provider-script does not stop on a bad key cache variable it never uses...
        let bad_ttl = [("CHAT_AUTH_KEY_CACHE_TTL_SECONDS", "-1")];
        assert!(lookup::<BrowserConfig>(&bad_ttl).is_ok());
        // ...while every function that caches keys does.
        assert_eq!(
            var_of(lookup::<KeyCacheConfig>(&bad_ttl)),
            "CHAT_AUTH_KEY_CACHE_TTL_SECONDS"
        );
        assert_eq!(
            var_of(lookup::<RingConfig>(&bad_ttl)),
            "CHAT_AUTH_KEY_CACHE_TTL_SECONDS"
        );
    }

    #[test]
    fn parses_lists_and_pairs() {
        let c = with(&[
            ("CHAT_AUTH_CONTEXT_CLAIMS", "msdyn_region=region, Tier=tier"),
            ("CHAT_AUTH_CLIENT_CONTEXT_KEYS", "page,cart"),
            (
                "CHAT_AUTH_ALLOWED_ORIGINS",
                "https://www.Contoso.com/, http://localhost:3000",
            ),
        ])
        .unwrap();
        assert_eq!(c.identity.context_claims[1], ("Tier".into(), "tier".into()));
        assert!(c.identity.client_context_keys.contains("cart"));
        assert_eq!(
            c.browser.allowed_origins,
            vec!["http://localhost:3000", "https://www.contoso.com"]
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_TOKEN_TTL_SECONDS", "3601")])),
            "CHAT_AUTH_TOKEN_TTL_SECONDS"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_TOKEN_TTL_SECONDS", "ten")])),
            "CHAT_AUTH_TOKEN_TTL_SECONDS"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_ALLOWED_ORIGINS", "*")])),
            "CHAT_AUTH_ALLOWED_ORIGINS"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_ALLOWED_ORIGINS", "https://a.com/path")])),
            "CHAT_AUTH_ALLOWED_ORIGINS"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_CONTEXT_CLAIMS", "novalue")])),
            "CHAT_AUTH_CONTEXT_CLAIMS"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_CLIENT_FUNCTION", "a.__proto__.x")])),
            "CHAT_AUTH_CLIENT_FUNCTION"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_CLIENT_FUNCTION", "alert(1)")])),
            "CHAT_AUTH_CLIENT_FUNCTION"
        );
        assert_eq!(
            var_of(with(&[
                ("CHAT_AUTH_CONTEXT_CLAIMS", "tier=tier"),
                ("CHAT_AUTH_CLIENT_CONTEXT_KEYS", "tier")
            ])),
            "CHAT_AUTH_CLIENT_CONTEXT_KEYS"
        );
        assert_eq!(
            var_of(with(&[("CHAT_AUTH_IDENTITY_MODE", "magic")])),
            "CHAT_AUTH_IDENTITY_MODE"
        );
    }
}

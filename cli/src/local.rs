//! Local-only configuration: where to listen, where the key ring lives, who vouches for
//! callers (an upstream identity provider, or, only when asked for, the built-in development
//! one), and the server's limits.

use chat_auth_host::socket::{Limits, RESERVED_DESCRIPTORS, descriptor_limit};
use chat_auth_shared::config::{Vars, bounded, config, environment, read_vars};
use chat_auth_shared::{Config, Result, Section};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How the upstream identity provider's JWKS is fetched and cached.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Where its signing keys are published, https or http on loopback
    /// (`CHAT_AUTH_UPSTREAM_JWKS_URL`, default: none).
    pub url: reqwest::Url,
    /// How long a fetched set is used before refetching (`CHAT_AUTH_UPSTREAM_JWKS_TTL_SECONDS`,
    /// default `600`).
    pub ttl: Duration,
    /// At most one fetch attempt this often, whatever the traffic: an outage or a forged kid
    /// must not turn every request into a fetch (`CHAT_AUTH_UPSTREAM_JWKS_RETRY_SECONDS`,
    /// default `30`).
    pub retry: Duration,
    /// How long past its TTL a set keeps verifying while no fetch succeeds
    /// (`CHAT_AUTH_UPSTREAM_JWKS_STALE_SECONDS`, default `3600`).
    pub stale: Duration,
}

/// Who verifies the bearer tokens presented to `/token`.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// The site's identity provider: tokens are verified against its JWKS.
    Upstream {
        /// Required `iss` (`CHAT_AUTH_UPSTREAM_ISSUER`, default: none).
        issuer: String,
        /// Required `aud` member: without it any token the provider issues for any of the
        /// tenant's apps would mint chat tokens (`CHAT_AUTH_UPSTREAM_AUDIENCE`, default: none).
        audience: String,
        /// The audience of backends' client-credentials tokens for `/issue`: the API's
        /// identifier at the provider, which must differ from `audience` so that no page token
        /// reaches `/issue` (`CHAT_AUTH_UPSTREAM_ISSUE_AUDIENCE`, default: none, and `/issue`
        /// takes no tokens).
        issue_audience: Option<String>,
        /// Its keys.
        jwks: JwksSettings,
    },
    /// The built-in demo identity provider (`POST /dev/sign-in`); loopback only, and only with
    /// `--dev` (`CHAT_AUTH_DEV`, default `0`).
    Development {
        /// The secret `/issue` requires in `X-Chat-Auth-Issue-Key` (`CHAT_AUTH_DEV_ISSUE_KEY`,
        /// default: random per run).
        issue_key: String,
        /// True when it came from `CHAT_AUTH_DEV_ISSUE_KEY` (then it is never printed).
        issue_key_from_env: bool,
    },
}

/// The local server's settings.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The shared configuration (same variables as on Lambda).
    pub shared: Config,
    /// `--listen` (`CHAT_AUTH_LISTEN`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `--data-dir` (`CHAT_AUTH_DATA_DIR`, default `.chat-auth`).
    pub data_dir: PathBuf,
    /// Upstream or development identity; `None` when neither is configured (only `serve`
    /// needs one, see [`LocalConfig::identity`]).
    identity: Option<IdentitySource>,
    /// The server's limits: the request timeout (`CHAT_AUTH_REQUEST_TIMEOUT_SECONDS`, default
    /// `15`), requests in progress (`CHAT_AUTH_MAX_CONCURRENT_REQUESTS`, default `256`), the
    /// wait on a client (`CHAT_AUTH_CLIENT_TIMEOUT_SECONDS`, default `10`) and open
    /// connections (`CHAT_AUTH_MAX_CONNECTIONS`, default: 4096, fewer under a low open-file
    /// limit).
    pub limits: Limits,
}

/// The context mapping the demo page relies on, used in development mode when
/// `CHAT_AUTH_CONTEXT_CLAIMS` is not set.
pub const DEV_CONTEXT_CLAIMS: &str = "msdyn_cartvalue=cart_value,msdyn_isvip=vip,region=region";

/// Header bytes a request may carry: browsers send 1-2 KiB; a bearer identity token with many
/// claims fits several times over.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Header fields a request may carry: browsers send about 20.
const MAX_HEADER_FIELDS: usize = 100;
/// Connections open at once when the open-file limit allows: plenty for a site's browsers,
/// few enough that idle ones cost little memory (hyper holds a read buffer for each).
const MAX_CONNECTIONS: u64 = 4096;

impl LocalConfig {
    /// Reads the environment, with command-line overrides (`--listen`, `--data-dir`, `--dev`).
    pub fn from_env(listen: Option<String>, data_dir: Option<PathBuf>, dev: bool) -> Result<Self> {
        Self::from_lookup(environment, listen, data_dir, dev)
    }

    /// Reads variables through `lookup` (tests pass a map); `dev` is the `--dev` flag.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
        dev: bool,
    ) -> Result<Self> {
        read_vars(lookup, |get| Self::read(get, listen, data_dir, dev))
    }

    fn read(
        get: Vars<'_>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
        dev: bool,
    ) -> Result<Self> {
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
        let dev = dev
            || match get("CHAT_AUTH_DEV").as_deref() {
                None | Some("0") | Some("false") => false,
                Some("1") | Some("true") => true,
                Some(other) => {
                    return Err(config("CHAT_AUTH_DEV", format!("{other:?} is not 1 or 0")));
                }
            };
        let identity = identity(&get, dev)?;
        let development = matches!(identity, Some(IdentitySource::Development { .. }));
        if development && !listen.ip().is_loopback() {
            return Err(config(
                "CHAT_AUTH_LISTEN",
                "development mode hands out identities to anyone and only listens on loopback",
            ));
        }
        let mut shared = Config::read(&|k| {
            get(k).or_else(|| match k {
                // The local key ring lives next to the server: a short TTL lets `chat-auth
                // rotate` from another terminal take effect within seconds.
                "CHAT_AUTH_KEY_CACHE_TTL_SECONDS" => Some("2".to_owned()),
                "CHAT_AUTH_CONTEXT_CLAIMS" if development => Some(DEV_CONTEXT_CLAIMS.to_owned()),
                _ => None,
            })
        })?;
        if development {
            for origin in [
                format!("http://{listen}"),
                format!("http://localhost:{}", listen.port()),
            ] {
                if !shared.browser.allowed_origins.contains(&origin) {
                    shared.browser.allowed_origins.push(origin);
                }
            }
        }
        let limits = Limits {
            request_timeout: Duration::from_secs(bounded(
                &get,
                "CHAT_AUTH_REQUEST_TIMEOUT_SECONDS",
                15,
                1..=300,
            )?),
            concurrency: bounded(&get, "CHAT_AUTH_MAX_CONCURRENT_REQUESTS", 256, 1..=65_536)?
                as usize,
            header_bytes: MAX_HEADER_BYTES,
            header_fields: MAX_HEADER_FIELDS,
            client_timeout: secs(bounded(
                &get,
                "CHAT_AUTH_CLIENT_TIMEOUT_SECONDS",
                10,
                1..=300,
            )?),
            max_connections: max_connections(&get, descriptor_limit())?,
        };
        Ok(LocalConfig {
            shared,
            listen,
            data_dir,
            identity,
            limits,
        })
    }

    /// Who vouches for callers; `serve` cannot run without one.
    pub fn identity(&self) -> Result<&IdentitySource> {
        self.identity.as_ref().ok_or_else(|| {
            config(
                "CHAT_AUTH_UPSTREAM_ISSUER",
                "no identity provider is configured. Either set CHAT_AUTH_UPSTREAM_ISSUER, \
                 CHAT_AUTH_UPSTREAM_JWKS_URL and CHAT_AUTH_UPSTREAM_AUDIENCE (your identity \
                 provider), or run `chat-auth serve --dev` (or CHAT_AUTH_DEV=1) for the \
                 built-in demo sign-in on loopback",
            )
        })
    }

    /// True in development mode.
    pub fn development(&self) -> bool {
        matches!(self.identity, Some(IdentitySource::Development { .. }))
    }
}

fn identity(get: &impl Fn(&str) -> Option<String>, dev: bool) -> Result<Option<IdentitySource>> {
    let issuer = get("CHAT_AUTH_UPSTREAM_ISSUER");
    let url = get("CHAT_AUTH_UPSTREAM_JWKS_URL");
    let audience = get("CHAT_AUTH_UPSTREAM_AUDIENCE");
    let issue_audience = get("CHAT_AUTH_UPSTREAM_ISSUE_AUDIENCE");
    if dev {
        if issuer.is_some() || url.is_some() || audience.is_some() || issue_audience.is_some() {
            return Err(config(
                "CHAT_AUTH_DEV",
                "development mode and an upstream identity provider (CHAT_AUTH_UPSTREAM_*) \
                 exclude each other",
            ));
        }
        let (issue_key, issue_key_from_env) = match get("CHAT_AUTH_DEV_ISSUE_KEY") {
            Some(key) if key.len() >= 22 => (key, true),
            Some(_) => {
                return Err(config(
                    "CHAT_AUTH_DEV_ISSUE_KEY",
                    "must be at least 22 characters (128 bits of base64)",
                ));
            }
            None => (chat_auth_shared::claims::random_id()?, false),
        };
        return Ok(Some(IdentitySource::Development {
            issue_key,
            issue_key_from_env,
        }));
    }
    let (issuer, url, audience) = match (issuer, url, audience) {
        (None, None, None) if issue_audience.is_none() => return Ok(None),
        (Some(i), Some(u), Some(a)) => (i, u, a),
        (i, u, _) => {
            let missing = if i.is_none() {
                "CHAT_AUTH_UPSTREAM_ISSUER"
            } else if u.is_none() {
                "CHAT_AUTH_UPSTREAM_JWKS_URL"
            } else {
                "CHAT_AUTH_UPSTREAM_AUDIENCE"
            };
            return Err(config(
                missing,
                "is required: an upstream identity provider needs CHAT_AUTH_UPSTREAM_ISSUER, \
                 CHAT_AUTH_UPSTREAM_JWKS_URL and CHAT_AUTH_UPSTREAM_AUDIENCE (the audience keeps \
                 tokens meant for the tenant's other apps out)",
            ));
        }
    };
    if issue_audience.as_ref() == Some(&audience) {
        return Err(config(
            "CHAT_AUTH_UPSTREAM_ISSUE_AUDIENCE",
            "must differ from CHAT_AUTH_UPSTREAM_AUDIENCE: with one audience, the tokens pages \
             send would also reach /issue, where a backend names any user",
        ));
    }
    Ok(Some(IdentitySource::Upstream {
        issuer,
        audience,
        issue_audience,
        jwks: JwksSettings {
            url: jwks_url(&url)?,
            ttl: secs(bounded(
                get,
                "CHAT_AUTH_UPSTREAM_JWKS_TTL_SECONDS",
                600,
                1..=86_400,
            )?),
            retry: secs(bounded(
                get,
                "CHAT_AUTH_UPSTREAM_JWKS_RETRY_SECONDS",
                30,
                1..=3_600,
            )?),
            stale: secs(bounded(
                get,
                "CHAT_AUTH_UPSTREAM_JWKS_STALE_SECONDS",
                3_600,
                0..=86_400,
            )?),
        },
    }))
}

/// True for `localhost`, a name under `.localhost`, or a loopback address (IPv6 in brackets or
/// not): the names that stay on this machine, where the JWKS may come over plain http and
/// where development mode answers.
pub fn is_loopback_host(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `CHAT_AUTH_MAX_CONNECTIONS`: [`MAX_CONNECTIONS`] by default, fewer if the open-file limit
/// `nofile` would otherwise leave less than [`RESERVED_DESCRIPTORS`] for everything else. A
/// value that does not fit stops the start: past the limit `accept` fails ("Too many open
/// files") while the connections the cap was to bound hold every descriptor.
fn max_connections(get: &impl Fn(&str) -> Option<String>, nofile: Option<u64>) -> Result<usize> {
    let var = "CHAT_AUTH_MAX_CONNECTIONS";
    let room = nofile.map_or(u64::MAX, |n| n.saturating_sub(RESERVED_DESCRIPTORS));
    let max = bounded(get, var, MAX_CONNECTIONS.min(room).max(1), 1..=1_000_000)?;
    match nofile {
        Some(limit) if max > room => Err(config(
            var,
            format!(
                "{max} connections and {RESERVED_DESCRIPTORS} other descriptors exceed the \
                 open-file limit of {limit} (ulimit -n): lower it or raise the limit"
            ),
        )),
        _ => Ok(max as usize),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// https, or plain http to a loopback address (an identity provider on the same machine):
/// keys fetched over the network in clear text could be swapped by anyone on the path.
fn jwks_url(raw: &str) -> Result<reqwest::Url> {
    let var = "CHAT_AUTH_UPSTREAM_JWKS_URL";
    let url = reqwest::Url::parse(raw).map_err(|e| config(var, format!("not a URL: {e}")))?;
    let loopback = is_loopback_host(url.host_str().unwrap_or_default());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(config(
            var,
            "must be https (plain http only to localhost or a loopback address)",
        )),
        other => Err(config(var, format!("{other}: must be https"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const UPSTREAM: &[(&str, &str)] = &[
        ("CHAT_AUTH_UPSTREAM_ISSUER", "https://idp"),
        ("CHAT_AUTH_UPSTREAM_JWKS_URL", "https://idp/jwks"),
        ("CHAT_AUTH_UPSTREAM_AUDIENCE", "api://chat"),
    ];

    #[test]
    fn without_dev_or_upstream_serve_has_no_identity_and_says_both_ways_out() {
        let cfg = LocalConfig::from_lookup(|_| None, None, None, false).unwrap();
        assert!(!cfg.development());
        let err = cfg.identity().unwrap_err().to_string();
        assert!(
            err.contains("--dev") && err.contains("CHAT_AUTH_UPSTREAM_AUDIENCE"),
            "{err}"
        );
    }

    #[test]
    fn development_mode_only_when_asked_and_only_on_loopback() {
        let err = LocalConfig::from_lookup(|_| None, Some("0.0.0.0:8080".into()), None, true)
            .unwrap_err();
        assert!(err.to_string().contains("CHAT_AUTH_LISTEN"));
        let ok =
            LocalConfig::from_lookup(vars(&[("CHAT_AUTH_DEV", "1")]), None, None, false).unwrap();
        assert!(ok.development());
        assert!(
            ok.shared
                .browser
                .allowed_origins
                .contains(&"http://127.0.0.1:8080".to_owned())
        );
        let Ok(IdentitySource::Development { issue_key, .. }) = ok.identity() else {
            panic!("development identity");
        };
        assert!(issue_key.len() >= 22);
    }

    #[test]
    fn upstream_mode_needs_issuer_jwks_and_audience() {
        for missing in [
            "CHAT_AUTH_UPSTREAM_ISSUER",
            "CHAT_AUTH_UPSTREAM_JWKS_URL",
            "CHAT_AUTH_UPSTREAM_AUDIENCE",
        ] {
            let lookup = |k: &str| (k != missing).then(|| vars(UPSTREAM)(k)).flatten();
            let err = LocalConfig::from_lookup(lookup, None, None, false).unwrap_err();
            assert!(err.to_string().starts_with(missing), "{err}");
        }
        let ok = LocalConfig::from_lookup(vars(UPSTREAM), Some("0.0.0.0:8080".into()), None, false)
            .unwrap();
        assert!(matches!(ok.identity(), Ok(IdentitySource::Upstream { .. })));
        let both = LocalConfig::from_lookup(vars(UPSTREAM), None, None, true).unwrap_err();
        assert!(both.to_string().starts_with("CHAT_AUTH_DEV"));
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_to_the_rest_of_the_process() {
        let unset = |_: &str| None;
        assert_eq!(max_connections(&unset, Some(256)).unwrap(), 192);
        assert_eq!(max_connections(&unset, Some(1 << 20)).unwrap(), 4096);
        assert_eq!(max_connections(&unset, None).unwrap(), 4096);
        let set = vars(&[("CHAT_AUTH_MAX_CONNECTIONS", "192")]);
        assert_eq!(max_connections(&set, Some(256)).unwrap(), 192);
        assert_eq!(max_connections(&set, Some(1 << 20)).unwrap(), 192);
        for (get, nofile) in [(set, 255), (vars(&[]), 40)] {
            let err = max_connections(&get, Some(nofile)).unwrap_err().to_string();
            assert!(err.starts_with("CHAT_AUTH_MAX_CONNECTIONS"), "{err}");
            assert!(err.contains(&format!("limit of {nofile} ")), "{err}");
        }
    }

    #[test]
    fn the_jwks_url_must_be_https_except_on_loopback() {
        for ok in [
            "https://login.example.com/keys",
            "http://127.0.0.1:9000/jwks",
            "http://localhost/jwks",
            "http://[::1]:80/jwks",
        ] {
            assert!(jwks_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "ftp://idp/jwks",
            "http://10.0.0.1/jwks",
        ] {
            assert!(jwks_url(bad).is_err(), "{bad}");
        }
    }

    /// Each `(`NAME`, default ...)` that the doc comments of `source` state, with the default
    /// when it is a literal (`` default `VALUE` ``) rather than words (`default: ...`).
    fn documented_defaults(source: &str) -> Vec<(String, Option<String>)> {
        let docs: Vec<&str> = source
            .lines()
            .filter_map(|line| line.trim().strip_prefix("///"))
            .map(str::trim)
            .collect();
        let docs = docs.join(" ");
        docs.split("`CHAT_AUTH_")
            .skip(1)
            .filter_map(|rest| {
                let (name, after) = rest.split_once('`')?;
                let literal = match after.strip_prefix(", default `") {
                    Some(value) => Some(value.split_once('`')?.0.to_owned()),
                    None => {
                        after.strip_prefix(", default: ")?;
                        None
                    }
                };
                Some((format!("CHAT_AUTH_{name}"), literal))
            })
            .collect()
    }

    /// docs/configuration.md's table: each variable with the literal its default cell starts
    /// with, if it starts with one.
    fn table_defaults(doc: &str) -> Vec<(String, Option<String>)> {
        doc.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .flat_map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                let literal = cells
                    .get(1)
                    .and_then(|cell| cell.strip_prefix('`'))
                    .and_then(|cell| cell.split_once('`'))
                    .map(|(value, _)| value.to_owned());
                cells[0]
                    .split('`')
                    .filter(|name| name.starts_with("CHAT_AUTH_"))
                    .map(move |name| (name.to_owned(), literal.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Everything the shared sections read, as `{:?}`, with `extra` set.
    fn shared_sections(extra: &[(&str, &str)]) -> String {
        use chat_auth_shared::config::{StoreConfig, TelemetryConfig};
        let lookup = |k: &str| {
            extra
                .iter()
                .chain(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        format!(
            "{:?} {:?} {:?}",
            Config::from_lookup(lookup),
            StoreConfig::from_lookup(lookup),
            TelemetryConfig::from_lookup(lookup)
        )
    }

    /// What the local server reads, as `{:?}`, with `extra` set (and an upstream provider,
    /// whose settings have defaults of their own).
    fn local_settings(extra: &[(&str, &str)]) -> String {
        let lookup = |k: &str| {
            extra
                .iter()
                .chain(UPSTREAM)
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        format!("{:?}", LocalConfig::from_lookup(lookup, None, None, false))
    }

    #[test]
    fn the_configuration_table_states_the_defaults_the_code_has() {
        let table = table_defaults(include_str!("../../docs/configuration.md"));
        type Read = fn(&[(&str, &str)]) -> String;
        let sources: [(&str, Read); 2] = [
            (include_str!("../../shared/src/config.rs"), shared_sections),
            (include_str!("local.rs"), local_settings),
        ];
        let mut drift = Vec::new();
        let mut documented = Vec::new();
        for (source, read) in sources {
            for (name, literal) in documented_defaults(source) {
                documented.push(name.clone());
                match table.iter().find(|(n, _)| *n == name) {
                    None => drift.push(format!("{name}: not in docs/configuration.md")),
                    Some((_, table)) if literal.is_some() && *table != literal => drift.push(
                        format!("{name}: the doc comment says {literal:?}, the table {table:?}"),
                    ),
                    Some(_) => {}
                }
                if let Some(value) = &literal
                    && read(&[]) != read(&[(name.as_str(), value.as_str())])
                {
                    drift.push(format!("{name}: unset is not the same as {value:?}"));
                }
            }
        }
        for (name, _) in &table {
            if !documented.contains(name) {
                drift.push(format!(
                    "{name}: in the table, but no doc comment states its default"
                ));
            }
        }
        assert!(drift.is_empty(), "{drift:#?}");
        assert!(documented.len() > 25, "{documented:?}");
    }
}

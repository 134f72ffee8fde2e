//! `chat-auth`: the local token service and operator commands.

use chat_auth_cli::local::IdentitySource;
use chat_auth_cli::{CliError, LocalConfig, doctor, server, snippet};
use chat_auth_host::FileStore;
use chat_auth_shared::Section;
use chat_auth_shared::config::TelemetryConfig;
use chat_auth_shared::store::{PublicKeySource, ensure_ring, revoke, rotate};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Authenticated chat for Omnichannel's live chat widget: tokens, public keys, rotation.
#[derive(Parser)]
#[command(name = "chat-auth", version, about)]
struct Cli {
    /// Key ring directory (default: CHAT_AUTH_DATA_DIR, else ./.chat-auth).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every route on one port with the file key ring. Needs an upstream identity provider
    /// (CHAT_AUTH_UPSTREAM_ISSUER, _JWKS_URL, _AUDIENCE) or --dev.
    Serve {
        /// Address to listen on (default: CHAT_AUTH_LISTEN, else 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Development mode (also CHAT_AUTH_DEV=1): a built-in demo sign-in that vouches for
        /// anyone, so loopback only, for loopback Host names only.
        #[arg(long)]
        dev: bool,
    },
    /// Print a token for SUB signed by the local ring.
    Mint {
        /// The subject (the Dataverse contact's GUID).
        #[arg(long)]
        sub: String,
        /// Context variable as name=value (string values); repeatable.
        #[arg(long = "context", value_name = "NAME=VALUE")]
        context: Vec<String>,
    },
    /// Validate a token (argument, or "-" for stdin) and print the report; exit 0 only if active.
    Verify {
        /// The token, or "-" to read it from stdin (keeps it out of the process list).
        token: String,
    },
    /// Rotate the local ring (next signs, current turns verify-only), or revoke a key at once.
    Rotate {
        /// Revoke this kid now (any role) instead of a scheduled rotation. A kid is base64url, so
        /// one in 64 starts with `-`: clap must take it as the value, not as a flag.
        #[arg(long, value_name = "KID", allow_hyphen_values = true)]
        emergency: Option<String>,
    },
    /// Print every key with its state and when it will be pruned (creates the ring if none).
    Keys,
    /// Check a deployment as Omnichannel and the widget will see it: one line per check, each
    /// failure with its fix; exit 0 only when no check fails.
    Doctor {
        /// Public base URL of the service (the Public key URL is BASE/public-key).
        #[arg(long)]
        base_url: String,
        /// A signed-in user's identity token, sent to /token as `Authorization: Bearer` to mint
        /// and check a real token ("-" reads it from stdin, out of the process list). Never
        /// printed.
        #[arg(long, value_name = "TOKEN", allow_hyphen_values = true)]
        identity_token: Option<String>,
        /// A page origin (https://www.contoso.com) that must be allowed to call /token.
        #[arg(long)]
        origin: Option<String>,
        /// Seconds each request may take: a deployment that hangs fails its check rather than
        /// hanging the doctor.
        #[arg(long, value_name = "SECONDS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
    },
    /// Print what to paste into the page and the Omnichannel admin app.
    Snippet {
        /// Public base URL of the service (e.g. https://chat-auth.contoso.com).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match TelemetryConfig::from_env() {
        Ok(telemetry) => chat_auth_host::telemetry::init(&telemetry),
        Err(e) => {
            eprintln!("chat-auth: {e}");
            return ExitCode::from(2);
        }
    }
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // The operator sees the causes too (a ring that does not parse says where).
            eprintln!("chat-auth: {}", chat_auth_shared::chain(&e));
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // Before the local configuration is read: the doctor looks at a deployment from the
    // outside, and this machine's settings (or their errors) have nothing to say about it.
    if let Command::Doctor {
        base_url,
        identity_token,
        origin,
        timeout,
    } = cli.command
    {
        let identity_token = match identity_token.as_deref() {
            Some("-") => Some(read_stdin()?),
            _ => identity_token,
        };
        let diagnosis = doctor::diagnose(&doctor::Options {
            base_url,
            identity_token,
            origin,
            timeout: std::time::Duration::from_secs(timeout),
        })
        .await?;
        println!("{diagnosis}");
        return Ok(if diagnosis.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let (listen, dev) = match &cli.command {
        Command::Serve { listen, dev } => (listen.clone(), *dev),
        _ => (None, false),
    };
    let config = LocalConfig::from_env(listen, cli.data_dir, dev)?;
    let shared = &config.shared;
    let store = || FileStore::open(&config.data_dir);
    let life = shared.ring.lifecycle();
    let now = chat_auth_shared::time::now();
    match cli.command {
        Command::Doctor { .. } => unreachable!("the doctor returned before the configuration"),
        Command::Serve { .. } => {
            let app = server::app(&config).await?;
            let listener = server::bind(&config).await?;
            tracing::info!(
                address = %config.listen,
                development = config.development(),
                issuer = %shared.tokens.issuer,
                "chat-auth listening"
            );
            if let IdentitySource::Development {
                issue_key,
                issue_key_from_env,
            } = config.identity()?
            {
                eprintln!(
                    "Demo: http://{}/  (development mode: built-in sign-in, loopback only)",
                    config.listen
                );
                if *issue_key_from_env {
                    eprintln!(
                        "POST /issue: header X-Chat-Auth-Issue-Key from CHAT_AUTH_DEV_ISSUE_KEY"
                    );
                } else {
                    eprintln!(
                        "POST /issue: header X-Chat-Auth-Issue-Key: {issue_key}  (this run only)"
                    );
                }
            }
            chat_auth_host::socket::serve(listener, app, &config.limits).await;
        }
        Command::Mint { sub, context } => {
            let ring = ensure_ring(&store()?, &life, now).await?;
            let mut ctx = chat_auth_shared::CustomContext::new();
            for pair in &context {
                let (name, value) = pair.split_once('=').ok_or_else(|| {
                    CliError::Usage(format!("--context {pair:?} is not NAME=VALUE"))
                })?;
                ctx.insert_json(name, &Value::String(value.to_owned()))?;
            }
            let claims = shared.tokens.claims(&sub, &ctx, now)?;
            let minted = chat_auth_shared::claims::mint(&ring.load()?.signer, &claims)?;
            println!("{}", minted.token);
        }
        Command::Verify { token } => {
            let token = if token == "-" { read_stdin()? } else { token };
            let set = store()?
                .load_public()
                .await?
                .ok_or(chat_auth_shared::Error::NotProvisioned("public key set"))?;
            let report = chat_auth_shared::config::validator(&shared.tokens).validate(
                &token,
                &set.render()?.keys,
                now,
            );
            println!(
                "{}",
                serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
            );
            if !report.is_active() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Rotate { emergency } => {
            let store = store()?;
            ensure_ring(&store, &life, now).await?;
            let report = match emergency {
                Some(kid) => {
                    let ring = revoke(&store, &kid, &life, now).await?;
                    json!({"revoked": kid, "ring": key_states(&store, &ring, &life).await?})
                }
                None => {
                    let rotated = rotate(&store, &life, now).await?;
                    json!({"promoted": rotated.deferred.is_none(), "deferred": rotated.deferred.as_ref().map(ToString::to_string),
                           "pruned": rotated.pruned,
                           "ring": key_states(&store, &rotated.ring, &life).await?})
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
        Command::Keys => {
            let store = store()?;
            let ring = ensure_ring(&store, &life, now).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&key_states(&store, &ring, &life).await?)
                    .unwrap_or_default()
            );
        }
        Command::Snippet { base_url } => {
            let base = base_url.trim_end_matches('/');
            let url = format!("{base}/provider.js");
            let local =
                chat_auth_shared::provider::ProviderScript::render(&shared.browser).integrity;
            let integrity = match served_script(&url).await {
                Ok(script) => {
                    let served = script.integrity;
                    if served != local {
                        eprintln!(
                            "chat-auth: note: {url} differs from the script this machine's \
                             configuration renders; the hash below is of the served one"
                        );
                    }
                    served
                }
                Err(why) => {
                    eprintln!(
                        "chat-auth: warning: could not fetch {url} ({why}); the integrity hash \
                         below is of this machine's script and matches only if the server runs \
                         the same version with the same configuration"
                    );
                    local
                }
            };
            println!("Paste into the page, before the widget's script:");
            println!("  {}", snippet::script_tag(&url, &integrity));
            println!("Omnichannel admin > chat authentication settings:");
            println!("  Public key URL:             {base}/public-key");
            println!("    (the multi-key array: keys rotate without downtime; ?format=pem carries");
            println!("     one key only, so every rotation would break live chats until re-read)");
            println!(
                "  JavaScript client function: {}",
                shared.browser.client_function
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A token from stdin (at most 64 KiB, trimmed): keeps it out of the process list.
fn read_stdin() -> Result<String, CliError> {
    let mut buf = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .map_err(|source| CliError::Io {
            context: "reading stdin".into(),
            source,
        })?;
    Ok(buf.trim().to_owned())
}

/// The script as served at `url` (the bytes a browser checks the `integrity` against).
async fn served_script(url: &str) -> Result<snippet::ServedScript, String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    snippet::served_script(&client, url).await
}

/// Every key of `ring` with its state, read against what is published: `signing`, `next`
/// (and when it may start signing), `verify-only` (and from when a rotation may prune it),
/// and the revoked kids.
async fn key_states(
    store: &FileStore,
    ring: &chat_auth_shared::RingState,
    life: &chat_auth_shared::Lifecycle,
) -> Result<Value, CliError> {
    let published = store.load_public().await?;
    let entry = |kid: &str| published.as_ref().and_then(|set| set.key(kid)).cloned();
    let policy = life.policy;
    let mut keys = vec![json!({
        "kid": ring.current.kid, "state": "signing", "since": ring.current.times.activates,
        "published": entry(&ring.current.kid).and_then(|k| k.published),
    })];
    let next_published = entry(&ring.next.kid).and_then(|k| k.published);
    keys.push(json!({
        "kid": ring.next.kid, "state": "next", "published": next_published,
        "signs_after": next_published.map(|t| t + policy.min_published),
        "planned": ring.next.times.activates,
    }));
    for key in &ring.retired {
        let stopped = entry(&key.kid).and_then(|k| k.stopped);
        keys.push(json!({
            "kid": key.kid, "state": "verify-only", "stopped": stopped,
            "verify_until": stopped.map(|t| t + policy.keep_published),
            "pruned": "by the first rotation after verify_until",
        }));
    }
    let revoked: Vec<Value> = ring
        .revoked
        .iter()
        .map(|r| json!({"kid": r.kid, "state": "revoked", "at": r.at}))
        .collect();
    Ok(json!({"version": ring.version, "keys": keys, "revoked": revoked}))
}

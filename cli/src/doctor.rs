//! `chat-auth doctor`: a deployment checked from the outside, as Omnichannel's servers (which
//! fetch the Public key URL and verify every token) and the widget (which loads the provider
//! script and reads the token in the browser) will see it.
//!
//! Each check is a [`Check`] that carries its own fix, and a run is a list of [`Finding`]s: what
//! is printed, what decides the exit status and what the tests read are one list, so a check
//! cannot fail in the output and pass in the exit status. The formats, the token rules and the
//! `lwicontexts` limits are the domain crate's, read the way the service itself reads them.

use crate::CliError;
use crate::fetch::read_capped;
use crate::local::is_loopback_host;
use crate::snippet;
use chat_auth_shared::context::{MAX_NAME_CHARS, MAX_VALUE_CHARS, MAX_VARIABLES};
use chat_auth_shared::jwt::{MAX_NUMERIC_DATE, Report, Validator};
use chat_auth_shared::keys::KeySet;
use chat_auth_shared::publish::{
    ArrayEntry, jwks_thumbprints, parse_public_key_document, read_key_array,
};
use chat_auth_shared::{ProblemCode, Section, TokenPolicy, WarningCode};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Omnichannel's admin field for the Public key URL (`msdyn_publickeyurl`) holds at most this
/// many characters; Dataverse is reported to check it when the settings record is saved.
pub const MAX_PUBLIC_KEY_URL_CHARS: usize = 256;

/// A second page origin for the CORS check that no deployment can list: `.invalid` never
/// resolves (RFC 2606), so allowing it means allowing any origin.
pub const FOREIGN_ORIGIN: &str = "https://chat-auth-doctor.invalid";

/// The documents read here are a few KB; a larger answer is a fault of its own, and must not
/// make the doctor buffer without bound.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every check, in the order a run reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// Omnichannel's servers fetch the key over the internet; plain http would let anyone on the
    /// path swap the key that decides whose chats are authenticated.
    PublicKeyUrlHttps,
    /// A longer URL does not fit Omnichannel's admin field.
    PublicKeyUrlLength,
    /// Omnichannel verifies every token against this document: no document, no chat.
    PublicKeyAnswers,
    /// Only the multi-key array lets keys rotate without a gap.
    KeyArray,
    /// Omnichannel skips a key it cannot read without a word; the tokens it signed are refused.
    KeyMaterial,
    /// Omnichannel picks the key by kid; two keys under one kid make that a guess.
    KidsUnique,
    /// Omnichannel drops a key whose expiry has passed without a word.
    KeyExpiry,
    /// The JWKS is what standard verifiers read (a gateway, a JWT library): with another set,
    /// a token one of them accepts the other refuses.
    JwksAgrees,
    /// `?format=pem` carries one key only: usable, but no rotation without downtime.
    PemFormat,
    /// The page runs the provider script only if it is served as a script, and its integrity
    /// hash pins the exact bytes.
    ProviderScript,
    /// The page's own origin must be able to ask for a token from the browser.
    CorsOrigin,
    /// Any other site's page must not: it would get tokens for the page's signed-in customers.
    CorsForeignOrigin,
    /// A signed-in user must get a token at all.
    TokenMint,
    /// The widget refuses a token that is not three segments with a JSON payload before it is
    /// ever sent.
    TokenFormat,
    /// Omnichannel verifies RS256 only, with the published key the header's kid names.
    TokenHeader,
    /// The widget refuses `exp < now` with no leeway and reads 13 digits as milliseconds;
    /// Omnichannel requires `iat` and `exp` in seconds.
    TokenTimes,
    /// Omnichannel requires `iss` and `sub`, and links the conversation to `sub`.
    TokenClaims,
    /// Custom context reaches the conversation only in `lwicontexts`, within the documented
    /// limits.
    TokenContext,
    /// The signature must verify with the published key: what Omnichannel's servers do.
    TokenSignature,
    /// The deployment's own judgement, with its issuer and clock.
    TokenValidate,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: &[Check] = &[
        Check::PublicKeyUrlHttps,
        Check::PublicKeyUrlLength,
        Check::PublicKeyAnswers,
        Check::KeyArray,
        Check::KeyMaterial,
        Check::KidsUnique,
        Check::KeyExpiry,
        Check::JwksAgrees,
        Check::PemFormat,
        Check::ProviderScript,
        Check::CorsOrigin,
        Check::CorsForeignOrigin,
        Check::TokenMint,
        Check::TokenFormat,
        Check::TokenHeader,
        Check::TokenTimes,
        Check::TokenClaims,
        Check::TokenContext,
        Check::TokenSignature,
        Check::TokenValidate,
    ];

    /// The stable name printed on the check's line (what a script or a test matches on).
    pub fn id(self) -> &'static str {
        match self {
            Check::PublicKeyUrlHttps => "public-key-url-https",
            Check::PublicKeyUrlLength => "public-key-url-length",
            Check::PublicKeyAnswers => "public-key-answers",
            Check::KeyArray => "key-array",
            Check::KeyMaterial => "key-material",
            Check::KidsUnique => "key-kids-unique",
            Check::KeyExpiry => "key-expiry",
            Check::JwksAgrees => "jwks-agrees",
            Check::PemFormat => "pem-format",
            Check::ProviderScript => "provider-script",
            Check::CorsOrigin => "cors-origin",
            Check::CorsForeignOrigin => "cors-foreign-origin",
            Check::TokenMint => "token-mint",
            Check::TokenFormat => "token-format",
            Check::TokenHeader => "token-header",
            Check::TokenTimes => "token-times",
            Check::TokenClaims => "token-claims",
            Check::TokenContext => "token-context",
            Check::TokenSignature => "token-signature",
            Check::TokenValidate => "token-validate",
        }
    }

    /// What to do when the check fails.
    pub fn fix(self) -> String {
        let text = match self {
            Check::PublicKeyUrlHttps => {
                "serve the service over https (API Gateway's URLs are): Omnichannel's servers \
                 fetch the Public key URL over the internet; plain http is for a loopback test only"
            }
            Check::PublicKeyUrlLength => {
                return format!(
                    "shorten the base URL (a custom domain, a shorter stage or path): the admin \
                     field msdyn_publickeyurl holds at most {MAX_PUBLIC_KEY_URL_CHARS} \
                     characters, and Dataverse is reported to refuse a longer one when the \
                     settings record is saved"
                );
            }
            Check::PublicKeyAnswers => {
                "make GET /public-key answer 200: read the public-keys function's logs \
                 (key_store_unavailable: the public key secret is unreadable; \
                 keys_not_provisioned: it is empty, run the rotation once), and check that the \
                 base URL is the stack's"
            }
            Check::KeyArray => {
                "serve the multi-key array [{\"kid\",\"publicKey\",\"expiry\"}] at /public-key (the \
                 public-keys function does): one PEM block carries one key, so every rotation \
                 breaks live chats until Omnichannel re-reads the URL"
            }
            Check::KeyMaterial => {
                "publish each key as the base64 of its PEM text (-----BEGIN PUBLIC KEY-----), RSA \
                 of at least 2048 bits: Omnichannel skips a publicKey it cannot read without an \
                 error, and refuses every token that key signed. Republish from the ring (a \
                 rotation)"
            }
            Check::KidsUnique => {
                "give every published key its own kid (this service uses the key's RFC 7638 \
                 thumbprint): Omnichannel picks the key by the token's kid"
            }
            Check::KeyExpiry => {
                "publish expiry as unix seconds after the last token the key signed expires \
                 (the ring does): Omnichannel drops a key whose expiry has passed without an \
                 error, and refuses the tokens it signed. Run a rotation to republish the set"
            }
            Check::JwksAgrees => {
                "serve /.well-known/jwks.json and /public-key from the same public key set (the \
                 public-keys function renders both from one): a difference means a stale cache \
                 or another deployment behind one of the routes"
            }
            Check::PemFormat => {
                "fix the multi-key array (above) and configure it as the Public key URL: \
                 ?format=pem carries the current key only, so each rotation would break live \
                 chats until Omnichannel re-reads the URL"
            }
            Check::ProviderScript => {
                "serve /provider.js with 200 and Content-Type application/javascript (the \
                 provider-script function does): a browser refuses to run a script served as \
                 another type"
            }
            Check::CorsOrigin => {
                "add the page's origin (scheme, host and port, no path) to \
                 CHAT_AUTH_ALLOWED_ORIGINS (the stack's AllowedOrigins parameter)"
            }
            Check::CorsForeignOrigin => {
                "list only your pages' origins in CHAT_AUTH_ALLOWED_ORIGINS: any other site's \
                 page could get tokens for your signed-in customers"
            }
            Check::TokenMint => {
                "GET /token with the identity token must answer 200 with the raw JWT: a 401 \
                 means the identity token was refused (its issuer, audience or expiry: the \
                 stack's identity provider settings, or CHAT_AUTH_UPSTREAM_* locally); the \
                 error code says which"
            }
            Check::TokenFormat => {
                "mint a compact JWS (three base64url segments, JSON header and payload, no \
                 duplicate members) of a few KB at most: the widget refuses anything else, and \
                 the token travels in an HTTP header"
            }
            Check::TokenHeader => {
                "sign RS256 with a key of the published set and name it in the header's kid: a \
                 key must be published before it signs (the ring publishes next, then waits)"
            }
            Check::TokenTimes => {
                "mint iat and exp in unix seconds, exp later than now: check the signer's clock \
                 and CHAT_AUTH_TOKEN_TTL_SECONDS; the widget refuses exp < now with no leeway \
                 and reads a 13-digit exp as milliseconds"
            }
            Check::TokenClaims => {
                "mint iss and sub (Omnichannel requires both; sub is the Dataverse contact's or \
                 account's GUID): check CHAT_AUTH_ISSUER and CHAT_AUTH_SUBJECT_CLAIM"
            }
            Check::TokenContext => {
                return format!(
                    "put the custom context in lwicontexts as a string of serialized JSON, each \
                     value a string, number or boolean (or {{\"value\", \"isDisplayable\"}}), at \
                     most {MAX_VARIABLES} variables, names of at most {MAX_NAME_CHARS} and values \
                     of at most {MAX_VALUE_CHARS} characters: check CHAT_AUTH_CONTEXT_CLAIMS and \
                     CHAT_AUTH_CLIENT_CONTEXT_KEYS"
                );
            }
            Check::TokenSignature => {
                "sign with the private half of the published key the kid names: a mismatch means \
                 the signer and the published set disagree (a key replaced without \
                 republishing, or a stale public key secret)"
            }
            Check::TokenValidate => {
                "fix each problem /validate names (docs/reference.md lists every code): it \
                 judges the token with the deployment's own issuer and clock"
            }
        };
        text.to_owned()
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// As Omnichannel and the widget need it.
    Pass,
    /// Omnichannel or the widget would refuse, or lose, something.
    Fail,
    /// Not run: an option was not given, or what it checks could not be read (that failure is
    /// its own line).
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One check's outcome, with what was seen. The detail never holds a token or a key, only
/// their kid, jti, times and sizes.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Which check.
    pub check: Check,
    /// Its outcome.
    pub status: Status,
    /// What was seen (for a failure: what is wrong).
    pub detail: String,
}

/// A whole run: one finding per check, in [`Check::ALL`] order.
#[derive(Debug)]
pub struct Diagnosis {
    /// The base URL checked.
    pub base: String,
    /// One per check.
    pub findings: Vec<Finding>,
    /// The page's script tag, once the provider script passed.
    pub script_tag: Option<String>,
}

impl Diagnosis {
    /// True only when no check failed: the exit status.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.status != Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chat-auth doctor: {} as Omnichannel and the widget will see it",
            self.base
        )?;
        let width = Check::ALL.iter().map(|c| c.id().len()).max().unwrap_or(0);
        for finding in &self.findings {
            writeln!(
                f,
                "{}  {:width$}  {}",
                finding.status.label(),
                finding.check.id(),
                finding.detail
            )?;
            if finding.status == Status::Fail {
                writeln!(f, "      fix: {}", finding.check.fix())?;
            }
        }
        if let Some(tag) = &self.script_tag {
            writeln!(f, "Paste into the page, before the widget's script:")?;
            writeln!(f, "  {tag}")?;
        }
        let (passed, failed, skipped) = (
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip),
        );
        let verdict = if failed == 0 {
            "nothing found that Omnichannel or the widget would refuse"
        } else {
            "Omnichannel or the widget would refuse or lose something: see each fix"
        };
        write!(
            f,
            "{passed} passed, {failed} failed, {skipped} skipped: {verdict}"
        )
    }
}

/// What to check.
pub struct Options {
    /// The service's public base URL: the Public key URL is `BASE/public-key`.
    pub base_url: String,
    /// A signed-in user's identity token, to mint and check a real token. Never printed.
    pub identity_token: Option<String>,
    /// A page origin that must be allowed to call `/token` from the browser.
    pub origin: Option<String>,
    /// How long each request may take.
    pub timeout: Duration,
}

/// Runs every check. Fails only on unusable options; everything about the deployment, down to
/// a connection refused, is a finding.
pub async fn diagnose(options: &Options) -> Result<Diagnosis, CliError> {
    let base = base_url(&options.base_url)?;
    let origin = options.origin.as_deref().map(page_origin).transpose()?;
    let http = Http::new(options.timeout)?;
    let key_url = format!("{base}/public-key");
    let script_url = format!("{base}/provider.js");
    let mut run = Run::default();

    run.record(Check::PublicKeyUrlHttps, url_https(&key_url));
    run.record(Check::PublicKeyUrlLength, url_length(&key_url));

    // Independent requests at once: a deployment that hangs costs one timeout, not six.
    let token_url = format!("{base}/token");
    let (array, pem, jwks, script, own, foreign) = tokio::join!(
        http.send(http.client.get(&key_url)),
        http.send(http.client.get(format!("{key_url}?format=pem"))),
        http.send(http.client.get(format!("{base}/.well-known/jwks.json"))),
        http.within(snippet::served_script(&http.client, &script_url)),
        async {
            match &origin {
                Some(origin) => Some(http.send(preflight(&http.client, &token_url, origin)).await),
                None => None,
            }
        },
        http.send(preflight(&http.client, &token_url, FOREIGN_ORIGIN)),
    );

    let published = match &array {
        Ok(answer) if answer.status == StatusCode::OK => {
            run.record(
                Check::PublicKeyAnswers,
                pass(format!("200, {} bytes", answer.body.len())),
            );
            key_array(&mut run, &answer.body)
        }
        unanswered => {
            let why = match unanswered {
                Ok(answer) => answer.describe(&key_url),
                Err(why) => format!("GET {key_url}: {why}"),
            };
            run.record(Check::PublicKeyAnswers, fail(why));
            for check in [
                Check::KeyArray,
                Check::KeyMaterial,
                Check::KidsUnique,
                Check::KeyExpiry,
            ] {
                run.record(check, skip("the Public key URL gave no document"));
            }
            Published::default()
        }
    };
    run.record(Check::JwksAgrees, jwks_agrees(&published, &jwks));
    run.record(Check::PemFormat, pem_format(&published, &pem));

    let (finding, tag) = provider_script(&script, &script_url);
    run.record(Check::ProviderScript, finding);

    run.record(
        Check::CorsOrigin,
        match (&origin, own) {
            (Some(origin), Some(answer)) => match preflight_allows(&answer, origin) {
                Some(Ok(seen)) => pass(format!("a preflight from {origin} is allowed ({seen})")),
                Some(Err(seen)) => fail(format!("a preflight from {origin} is refused ({seen})")),
                None => fail(no_preflight_answer(&token_url, &answer)),
            },
            _ => skip("no --origin given"),
        },
    );
    run.record(
        Check::CorsForeignOrigin,
        match preflight_allows(&foreign, FOREIGN_ORIGIN) {
            Some(Ok(seen)) => fail(format!(
                "a preflight from {FOREIGN_ORIGIN} is allowed ({seen})"
            )),
            Some(Err(seen)) => pass(format!(
                "a preflight from {FOREIGN_ORIGIN} is refused ({seen})"
            )),
            // A route that does not answer refuses nothing for certain.
            None => fail(no_preflight_answer(&token_url, &foreign)),
        },
    );

    match &options.identity_token {
        Some(identity) => token_checks(&mut run, &http, &base, identity, &published).await?,
        None => {
            for check in needing_a_token() {
                run.record(check, skip("no --identity-token given"));
            }
        }
    }

    Ok(Diagnosis {
        base,
        findings: run.finish(),
        script_tag: tag,
    })
}

/// The checks that need a minted token: [`Check::TokenMint`] and every check reported after
/// it (`Check`'s order is the report order).
fn needing_a_token() -> impl Iterator<Item = Check> {
    Check::ALL
        .iter()
        .copied()
        .filter(|c| *c >= Check::TokenMint)
}

/// The findings so far, one per check; a check not recorded by the end is a bug of the doctor,
/// reported as a failure rather than hidden.
#[derive(Default)]
struct Run(BTreeMap<Check, (Status, String)>);

impl Run {
    fn record(&mut self, check: Check, (status, detail): (Status, String)) {
        self.0.insert(check, (status, detail));
    }

    fn finish(mut self) -> Vec<Finding> {
        Check::ALL
            .iter()
            .map(|&check| {
                let (status, detail) = self
                    .0
                    .remove(&check)
                    .unwrap_or_else(|| fail("not run (a bug of chat-auth doctor)".into()));
                Finding {
                    check,
                    status,
                    detail,
                }
            })
            .collect()
    }
}

fn pass(detail: String) -> (Status, String) {
    (Status::Pass, detail)
}

fn fail(detail: String) -> (Status, String) {
    (Status::Fail, detail)
}

fn skip(detail: &str) -> (Status, String) {
    (Status::Skip, detail.to_owned())
}

/// `URL` without its trailing slashes, refused unless it is an http(s) URL with a host and no
/// query or fragment (the routes are appended to it).
fn base_url(given: &str) -> Result<String, CliError> {
    let base = given.trim().trim_end_matches('/');
    let url = Url::parse(base)
        .map_err(|e| CliError::Usage(format!("--base-url {base:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::Usage(format!(
            "--base-url {base:?} must be an http(s) URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CliError::Usage(format!(
            "--base-url {base:?} must not have a query or fragment: the routes are appended to it"
        )));
    }
    Ok(base.to_owned())
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`.
fn page_origin(given: &str) -> Result<String, CliError> {
    let origin = given.trim().trim_end_matches('/');
    let url = Url::parse(origin)
        .map_err(|e| CliError::Usage(format!("--origin {origin:?} is not an origin: {e}")))?;
    if url.host_str().is_none() || url.path() != "/" || url.query().is_some() {
        return Err(CliError::Usage(format!(
            "--origin {origin:?} must be scheme://host[:port], as a browser sends it"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

fn url_https(key_url: &str) -> (Status, String) {
    let Ok(url) = Url::parse(key_url) else {
        return fail(format!("{key_url} is not a URL"));
    };
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => pass("https".into()),
        "http" if is_loopback_host(host) => pass(format!(
            "http to loopback {host}: a local test only, Omnichannel's servers cannot reach it"
        )),
        scheme => fail(format!("{scheme}, not https, to {host}")),
    }
}

fn url_length(key_url: &str) -> (Status, String) {
    let chars = key_url.chars().count();
    if chars <= MAX_PUBLIC_KEY_URL_CHARS {
        pass(format!(
            "{chars} characters (Omnichannel's field holds {MAX_PUBLIC_KEY_URL_CHARS})"
        ))
    } else {
        fail(format!(
            "{chars} characters: more than the {MAX_PUBLIC_KEY_URL_CHARS} Omnichannel's Public \
             key URL field holds"
        ))
    }
}

/// The script's finding, and the tag to paste once it passed: a tag for a script the browser
/// would not run would only move the failure to the page.
fn provider_script(
    script: &Result<snippet::ServedScript, String>,
    url: &str,
) -> ((Status, String), Option<String>) {
    let served = match script {
        Ok(served) => served,
        Err(why) => return (fail(format!("GET {url}: {why}")), None),
    };
    let content_type = served.content_type.as_deref();
    let essence = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/javascript" | "text/javascript") => (
            pass(format!(
                "{}, {} bytes, integrity {}",
                content_type.unwrap_or_default(),
                served.body.len(),
                served.integrity
            )),
            Some(snippet::script_tag(url, &served.integrity)),
        ),
        _ => (
            fail(format!(
                "served as {}, not as JavaScript",
                content_type.unwrap_or("no Content-Type")
            )),
            None,
        ),
    }
}

/// The HTTP side: one client, and a timeout around each whole exchange (connecting, headers
/// and body), so that a deployment that hangs fails its check instead of hanging the doctor.
struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

/// An answer: its status, headers and (capped) body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    /// `GET url answered 500 (internal_error: ...)`: the status and the service's error code,
    /// never the body itself.
    fn describe(&self, url: &str) -> String {
        let code = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| {
                let error = &v["error"];
                let code = error["code"].as_str()?;
                let message: String = error["message"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(160)
                    .collect();
                Some(format!(" ({code}: {message})"))
            })
            .unwrap_or_default();
        format!("GET {url} answered {}{code}", self.status)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    fn new(timeout: Duration) -> Result<Self, CliError> {
        // No client timeout: [`Http::within`] bounds each whole exchange, and one clock means
        // one message for a deployment that hangs.
        let client = reqwest::Client::builder()
            // Omnichannel is not documented to follow redirects: the URL must answer itself.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| CliError::Http {
                context: "building the HTTP client".into(),
                source,
            })?;
        Ok(Http { client, timeout })
    }

    async fn within<T>(
        &self,
        exchange: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(self.no_answer()))
    }

    fn no_answer(&self) -> String {
        format!(
            "no answer within {} s (--timeout): the widget and Omnichannel would wait too",
            self.timeout.as_secs()
        )
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        self.within(async {
            let response = request.send().await.map_err(|e| {
                let e = e.without_url();
                if e.is_connect() {
                    format!("could not connect: {}", chat_auth_shared::chain(&e))
                } else {
                    chat_auth_shared::chain(&e)
                }
            })?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_capped(response, MAX_BODY_BYTES).await?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
        .await
    }
}

/// The preflight a page at `origin` makes before `GET /token` with a bearer identity.
fn preflight(client: &reqwest::Client, url: &str, origin: &str) -> reqwest::RequestBuilder {
    client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
}

/// Whether the preflight answer lets a page at `origin` go on (`Ok`) or not (`Err`), with what
/// was seen; `None` when there was no answer.
fn preflight_allows(
    answer: &Result<Answer, String>,
    origin: &str,
) -> Option<Result<String, String>> {
    let answer = answer.as_ref().ok()?;
    let allowed = answer.header("access-control-allow-origin");
    let seen = format!(
        "{}, Access-Control-Allow-Origin {}",
        answer.status.as_u16(),
        allowed.unwrap_or("absent")
    );
    Some(
        if answer.status.is_success() && allowed.is_some_and(|a| a == origin || a == "*") {
            Ok(seen)
        } else {
            Err(seen)
        },
    )
}

fn no_preflight_answer(url: &str, answer: &Result<Answer, String>) -> String {
    let why = answer.as_ref().err().map_or("", String::as_str);
    format!("OPTIONS {url}: {why}")
}

/// What the Public key URL publishes, as far as it could be read.
#[derive(Default)]
struct Published {
    /// The document was a JSON array.
    array: bool,
    /// Every array check passed: Omnichannel can use every key.
    usable: bool,
    /// Each entry's kid (when a string) and key thumbprint (when readable).
    kids: Vec<(Option<String>, Option<String>)>,
    /// The readable keys, to verify a token with as Omnichannel would.
    keys: KeySet,
}

/// The four array checks; what was published.
fn key_array(run: &mut Run, body: &[u8]) -> Published {
    let entries = if body.trim_ascii_start().starts_with(b"-----BEGIN") {
        Err("one PEM block, not the multi-key array".to_owned())
    } else {
        match read_key_array(body) {
            Ok(entries) if entries.is_empty() => Err("an empty array: no key".to_owned()),
            Ok(entries) => Ok(entries),
            Err(e) => Err(format!("not a JSON array: {}", document_problem(&e))),
        }
    };
    let entries = match entries {
        Ok(entries) => entries,
        Err(why) => {
            run.record(Check::KeyArray, fail(why));
            for check in [Check::KeyMaterial, Check::KidsUnique, Check::KeyExpiry] {
                run.record(check, skip("no multi-key array to read"));
            }
            return Published::default();
        }
    };
    run.record(
        Check::KeyArray,
        pass(format!(
            "a multi-key array of {}",
            plural(entries.len(), "key")
        )),
    );
    let name = |i: usize, entry: &ArrayEntry| match &entry.kid {
        Some(kid) => format!("key {kid}"),
        None => format!("entry {i}"),
    };

    let mut bad = Vec::new();
    let mut bits = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match &entry.key {
            Ok(key) => bits.push(key.bits.to_string()),
            Err(e) => bad.push(format!("{}: {}", name(i, entry), key_problem(e))),
        }
    }
    let material = if bad.is_empty() {
        pass(format!(
            "every publicKey is the base64 of a PEM RSA public key ({} bits)",
            bits.join(", ")
        ))
    } else {
        fail(bad.join("; "))
    };

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match &entry.kid {
            Some(kid) if !kid.is_empty() => *counts.entry(kid).or_default() += 1,
            _ => bad.push(format!("entry {i} has no kid")),
        }
    }
    bad.extend(
        counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(kid, n)| format!("kid {kid} appears {n} times")),
    );
    let unique = if bad.is_empty() {
        pass(format!("{}, each distinct", plural(counts.len(), "kid")))
    } else {
        fail(bad.join("; "))
    };

    let now = chat_auth_shared::time::now();
    let mut bad = Vec::new();
    let mut soonest: Option<i64> = None;
    for (i, entry) in entries.iter().enumerate() {
        match expiry_problem(entry.expiry.as_ref(), now) {
            Ok(expiry) => soonest = Some(soonest.map_or(expiry, |s| s.min(expiry))),
            Err(why) => bad.push(format!("{}: {why}", name(i, entry))),
        }
    }
    let expiry = if bad.is_empty() {
        pass(format!(
            "every expiry is unix seconds in the future (the soonest in {})",
            duration(soonest.unwrap_or(now) - now)
        ))
    } else {
        fail(bad.join("; "))
    };

    let usable = [&material, &unique, &expiry]
        .iter()
        .all(|(status, _)| *status == Status::Pass);
    run.record(Check::KeyMaterial, material);
    run.record(Check::KidsUnique, unique);
    run.record(Check::KeyExpiry, expiry);
    let kids = entries
        .iter()
        .map(|e| {
            (
                e.kid.clone(),
                e.key.as_ref().ok().map(|k| k.thumbprint.clone()),
            )
        })
        .collect();
    let keys = entries
        .into_iter()
        .filter_map(|e| e.key.ok().map(|k| k.verifier))
        .collect();
    Published {
        array: true,
        usable,
        kids,
        keys: KeySet::new(keys),
    }
}

/// What is wrong with a document, without the "stored ... is invalid" framing the domain
/// error has for the service's own store: here the document is someone else's answer.
fn document_problem(error: &chat_auth_shared::Error) -> String {
    match error {
        chat_auth_shared::Error::CorruptKeys { reason, .. } => reason.clone(),
        chat_auth_shared::Error::UnreadableKeys { source, .. } => source.to_string(),
        other => chat_auth_shared::chain(other),
    }
}

/// Why a `publicKey` cannot be used, in the words of the array's format.
fn key_problem(error: &chat_auth_shared::Error) -> String {
    match document_problem(error).as_str() {
        "publicKey is not a PEM" => "publicKey does not decode to PEM text".to_owned(),
        "shorter than 2048 bits" => "an RSA key shorter than 2048 bits".to_owned(),
        missing @ "publicKey is missing or not a string" => missing.to_owned(),
        other if other.contains("PEM") => format!("publicKey decodes, but {other}"),
        other => format!("publicKey is not the base64 of a PEM RSA public key ({other})"),
    }
}

/// An entry's expiry in unix seconds, or why Omnichannel could not use it.
fn expiry_problem(expiry: Option<&Value>, now: i64) -> Result<i64, String> {
    let Some(value) = expiry else {
        return Err("no expiry".to_owned());
    };
    let Some(expiry) = value.as_i64() else {
        return Err(format!(
            "expiry {value} is not a whole number of unix seconds"
        ));
    };
    if expiry > MAX_NUMERIC_DATE {
        return Err(format!(
            "expiry {expiry} is not unix seconds (milliseconds?)"
        ));
    }
    if expiry <= now {
        return Err(format!(
            "expiry {expiry} passed {} ago",
            duration(now - expiry)
        ));
    }
    Ok(expiry)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `3 d 4 h`, `12 min`, `40 s`: how far a time is, for a person.
fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..120 => format!("{s} s"),
        120..7_200 => format!("{} min", s / 60),
        7_200..172_800 => format!("{} h", s / 3_600),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

fn jwks_agrees(published: &Published, jwks: &Result<Answer, String>) -> (Status, String) {
    let jwks = match jwks {
        Ok(answer) if answer.status == StatusCode::OK => &answer.body,
        Ok(answer) => return fail(answer.describe("/.well-known/jwks.json")),
        Err(why) => return fail(format!("GET /.well-known/jwks.json: {why}")),
    };
    let listed = match jwks_thumbprints(jwks) {
        Ok(listed) => listed,
        Err(e) => {
            return fail(format!(
                "/.well-known/jwks.json is not a JWKS: {}",
                document_problem(&e)
            ));
        }
    };
    if !published.array {
        return skip("no multi-key array to compare it with");
    }
    let in_jwks: BTreeMap<&str, &str> = listed
        .iter()
        .map(|(kid, thumb)| (kid.as_str(), thumb.as_str()))
        .collect();
    let mut bad = Vec::new();
    for (kid, thumbprint) in &published.kids {
        let Some(kid) = kid else { continue };
        match (in_jwks.get(kid.as_str()), thumbprint) {
            (None, _) => bad.push(format!("kid {kid} is not in the JWKS")),
            (Some(theirs), Some(ours)) if theirs != ours => {
                bad.push(format!("kid {kid} is another key in the JWKS"))
            }
            _ => {}
        }
    }
    for (kid, _) in &listed {
        if !published
            .kids
            .iter()
            .any(|(k, _)| k.as_deref() == Some(kid))
        {
            bad.push(format!("kid {kid} is in the JWKS only"));
        }
    }
    if bad.is_empty() {
        pass(format!(
            "/.well-known/jwks.json has the same {}",
            plural(listed.len(), "key")
        ))
    } else {
        fail(bad.join("; "))
    }
}

fn pem_format(published: &Published, pem: &Result<Answer, String>) -> (Status, String) {
    let pem_kid = match pem {
        Ok(answer)
            if answer.status == StatusCode::OK
                && answer.body.trim_ascii_start().starts_with(b"-----BEGIN") =>
        {
            match parse_public_key_document(&answer.body) {
                Ok(keys) => keys.single().map(|k| k.kid.clone()),
                Err(_) => None,
            }
        }
        _ => None,
    };
    match (published.usable, pem_kid) {
        (true, Some(kid)) => {
            if published
                .kids
                .iter()
                .any(|(_, thumb)| thumb.as_deref() == Some(kid.as_str()))
            {
                pass(format!(
                    "?format=pem also answers, with the array's key {kid}: configure the array, \
                     which rotates without downtime"
                ))
            } else {
                fail(format!(
                    "?format=pem answers key {kid}, which the array does not publish"
                ))
            }
        }
        (true, None) => {
            pass("?format=pem gives no usable key; not needed: configure the array".to_owned())
        }
        (false, Some(kid)) => fail(format!(
            "only ?format=pem is usable (one key, {kid}): it cannot rotate without downtime"
        )),
        (false, None) => fail("neither the multi-key array nor ?format=pem is usable".to_owned()),
    }
}

/// Mints a token with the identity token and checks it as the widget and Omnichannel will,
/// then as the deployment's `/validate` does.
async fn token_checks(
    run: &mut Run,
    http: &Http,
    base: &str,
    identity: &str,
    published: &Published,
) -> Result<(), CliError> {
    let token_url = format!("{base}/token");
    let minted = http
        .send(http.client.get(&token_url).bearer_auth(identity))
        .await;
    let token = match minted {
        Ok(answer) if answer.status == StatusCode::OK => {
            String::from_utf8_lossy(&answer.body).trim().to_owned()
        }
        Ok(answer) => {
            run.record(Check::TokenMint, fail(answer.describe(&token_url)));
            return skip_rest(run, "no token was minted");
        }
        Err(why) => {
            run.record(Check::TokenMint, fail(format!("GET {token_url}: {why}")));
            return skip_rest(run, "no token was minted");
        }
    };
    let validator = Validator {
        // The deployment's issuer is unknown here: /validate judges it.
        issuer: None,
        leeway: TokenPolicy::from_lookup(|_| None)?.skew,
    };
    let now = chat_auth_shared::time::now();
    let report = validator.validate(&token, &published.keys, now);
    let claim = |name: &str| report.claims.as_ref().and_then(|c| c.get(name));
    let header_kid = report
        .header
        .as_ref()
        .and_then(|h| h.get("kid"))
        .and_then(Value::as_str);
    run.record(
        Check::TokenMint,
        pass(format!(
            "200: kid {}, jti {}, exp {}",
            header_kid.unwrap_or("none"),
            claim("jti").and_then(Value::as_str).unwrap_or("none"),
            claim("exp").map_or("none".to_owned(), Value::to_string),
        )),
    );

    let mut by_check: BTreeMap<Check, Vec<String>> = BTreeMap::new();
    for problem in &report.problems {
        by_check
            .entry(check_of(problem.code))
            .or_default()
            .push(problem.message.clone());
    }
    let kid_missing = report.header.is_some() && header_kid.is_none();
    if kid_missing
        && !report
            .problems
            .iter()
            .any(|p| p.code == ProblemCode::MissingKid)
    {
        by_check
            .entry(Check::TokenHeader)
            .or_default()
            .push("the header has no kid: Omnichannel picks the key by it".into());
    }
    if let Some(Value::Number(exp)) = claim("exp")
        && exp.as_u64().is_some_and(|e| e >= 1_000_000_000_000)
    {
        by_check.entry(Check::TokenTimes).or_default().push(
            "exp has 13 digits: the widget reads it as milliseconds, Omnichannel as seconds".into(),
        );
    }

    let undecoded = |part: &str| format!("the {part} could not be read (see token-format)");
    let mut verdict = |check: Check, decoded: bool, part: &str, passed: String| {
        run.record(
            check,
            match by_check.remove(&check) {
                Some(problems) => fail(problems.join("; ")),
                None if !decoded => (Status::Skip, undecoded(part)),
                None => pass(passed),
            },
        );
    };
    verdict(
        Check::TokenFormat,
        true,
        "token",
        format!(
            "three base64url segments, JSON header and payload, {} bytes",
            token.len()
        ),
    );
    verdict(
        Check::TokenHeader,
        report.header.is_some(),
        "header",
        format!("RS256, kid {} is published", header_kid.unwrap_or("none")),
    );
    let payload = report.claims.is_some();
    verdict(
        Check::TokenTimes,
        payload,
        "payload",
        match claim("exp").and_then(Value::as_i64) {
            Some(exp) => format!("exp in {} (unix seconds), iat present", duration(exp - now)),
            None => "exp and iat present".into(),
        },
    );
    verdict(
        Check::TokenClaims,
        payload,
        "payload",
        format!(
            "iss {} and sub present{}",
            claim("iss").map_or("none".to_owned(), Value::to_string),
            warnings(&report, &[WarningCode::SubNotGuid])
        ),
    );
    verdict(
        Check::TokenContext,
        payload,
        "payload",
        match &report.context {
            Some(context) => format!(
                "lwicontexts is a JSON string of {} within the limits",
                plural(context.len(), "variable")
            ),
            None => format!(
                "no lwicontexts{}",
                warnings(&report, &[WarningCode::NoLwicontexts])
            ),
        },
    );
    let signature = by_check.remove(&Check::TokenSignature);
    run.record(
        Check::TokenSignature,
        match (signature, signature_checked(&report)) {
            (Some(problems), _) => fail(problems.join("; ")),
            (None, Some(kid)) => pass(format!("verifies with the published key {kid}")),
            (None, None) if report.header.is_none() => (Status::Skip, undecoded("header")),
            (None, None) => skip("no published key to verify with (see token-header)"),
        },
    );
    // Every problem has its check; one left over would be a check without a line.
    debug_assert!(by_check.is_empty(), "{by_check:?}");

    let validate_url = format!("{base}/validate");
    let verdict = http
        .send(
            http.client
                .post(&validate_url)
                .json(&serde_json::json!({ "token": token })),
        )
        .await;
    run.record(
        Check::TokenValidate,
        match verdict {
            Ok(answer) if answer.status == StatusCode::OK => {
                validate_verdict(&answer.body, &validate_url)
            }
            Ok(answer) => fail(answer.describe(&validate_url)),
            Err(why) => fail(format!("POST {validate_url}: {why}")),
        },
    );
    Ok(())
}

fn skip_rest(run: &mut Run, why: &str) -> Result<(), CliError> {
    for check in needing_a_token().skip(1) {
        run.record(check, skip(why));
    }
    Ok(())
}

/// Which check a validation problem belongs to. Exhaustive: a new problem code must be given a
/// check here before the doctor compiles.
fn check_of(code: ProblemCode) -> Check {
    use ProblemCode as P;
    match code {
        P::TokenTooLarge
        | P::Malformed
        | P::BadEncoding
        | P::HeaderNotJson
        | P::PayloadNotJson
        | P::DuplicateClaim => Check::TokenFormat,
        P::AlgNotAllowed
        | P::UnsupportedTyp
        | P::CritUnsupported
        | P::MissingKid
        | P::UnknownKid
        | P::RevokedKid => Check::TokenHeader,
        P::BadSignature => Check::TokenSignature,
        P::MissingIss | P::WrongIss | P::MissingSub | P::InvalidSubject => Check::TokenClaims,
        P::MissingIat
        | P::MissingExp
        | P::InvalidTime
        | P::Expired
        | P::NotYetValid
        | P::IssuedInFuture
        | P::ExpBeforeIat => Check::TokenTimes,
        P::LwicontextsNotString
        | P::ContextInvalidJson
        | P::ContextNotObject
        | P::ContextDuplicateKey
        | P::ContextValueNotPrimitive
        | P::ContextNameEmpty
        | P::ContextNameTooLong
        | P::ContextValueTooLong
        | P::ContextTooManyVariables => Check::TokenContext,
    }
}

/// The kid whose key the signature was checked with, when the validator checked it: a
/// published key was found, the algorithm was RS256 and the signature decoded.
fn signature_checked(report: &Report) -> Option<&str> {
    let blocked = report.problems.iter().any(|p| {
        matches!(
            p.code,
            ProblemCode::AlgNotAllowed | ProblemCode::BadEncoding | ProblemCode::Malformed
        )
    });
    report.kid.as_deref().filter(|_| !blocked)
}

/// ` (warning: ...)` for the report's warnings of `codes`, or nothing.
fn warnings(report: &Report, codes: &[WarningCode]) -> String {
    let found: Vec<&str> = report
        .warnings
        .iter()
        .filter(|w| codes.contains(&w.code))
        .map(|w| w.message.as_str())
        .collect();
    if found.is_empty() {
        String::new()
    } else {
        format!(" (warning: {})", found.join("; "))
    }
}

/// `/validate`'s answer: active, or each problem it names by code.
fn validate_verdict(body: &[u8], url: &str) -> (Status, String) {
    let Ok(verdict) = serde_json::from_slice::<Value>(body) else {
        return fail(format!("POST {url} did not answer JSON"));
    };
    let listed = |field: &str| -> Vec<String> {
        verdict[field]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|p| {
                        format!(
                            "{}: {}",
                            p["code"].as_str().unwrap_or("?"),
                            p["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    match verdict["active"].as_bool() {
        Some(true) => {
            let warned = listed("warnings");
            if warned.is_empty() {
                pass("active".to_owned())
            } else {
                pass(format!("active (warnings: {})", warned.join("; ")))
            }
        }
        Some(false) => fail(format!("not active: {}", listed("problems").join("; "))),
        None => fail(format!("POST {url} answered no \"active\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report order is `Check::ALL`'s, and [`needing_a_token`] relies on it being the
    /// enum's own order.
    #[test]
    fn the_report_order_is_the_declaration_order() {
        assert!(Check::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(needing_a_token().next(), Some(Check::TokenMint));
        assert_eq!(needing_a_token().last(), Some(Check::TokenValidate));
    }
}

//! GIVEN the local server verifying callers against an upstream identity provider (a stand-in
//! serving a JWKS over HTTP, whose keys, behaviour and request count the test controls),
//! WHEN identity tokens signed with each algorithm family, hostile tokens and JWKS outages
//! arrive, THEN: ES256, EdDSA, PS256 and RS256 tokens mint chat tokens; a token without the
//! configured audience, one whose `alg` is not its key's, HS256 over the public key, `none` and
//! unknown kids are refused with 401 and the reason; unusable keys in the JWKS are skipped, not
//! fatal; an endpoint that is down costs at most one fetch per retry interval however many
//! requests arrive; a warm set keeps verifying through an outage within its stale bound and not
//! after; redirects and oversized documents are refused; the server's request timeout and
//! concurrency limit answer with JSON errors (a hanging provider makes requests slow); and
//! `serve` without an identity provider or `--dev` refuses to start.

use crate::common;

use crate::common::{Server, get_token, start};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "https://login.contoso.example/tenant/v2.0";
const AUDIENCE: &str = "api://chat-auth";

/// What the stand-in's `/jwks` does.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    Fail,
    Redirect,
    Huge,
    /// Never answers (within the test).
    Hang,
}

struct IdpState {
    mode: Mutex<Mode>,
    jwks: String,
    fetches: AtomicUsize,
    redirect_followed: AtomicUsize,
}

/// The stand-in identity provider: four signing keys (RS256, PS256, ES256, EdDSA) in its JWKS
/// alongside three unusable members.
struct Idp {
    url: String,
    state: Arc<IdpState>,
    keys: Vec<(Algorithm, String, EncodingKey)>,
    rsa_public_pem: Vec<u8>,
    _task: tokio::task::JoinHandle<()>,
}

fn rsa_pem() -> (String, Vec<u8>) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = key.as_der().unwrap();
    let public: aws_lc_rs::encoding::PublicKeyX509Der<'_> =
        aws_lc_rs::signature::KeyPair::public_key(&key)
            .as_der()
            .unwrap();
    (
        pem("PRIVATE KEY", der.as_ref()),
        pem("PUBLIC KEY", public.as_ref()).into_bytes(),
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl Idp {
    async fn start() -> Idp {
        let (rs_private, rsa_public_pem) = rsa_pem();
        let (ps_private, _) = rsa_pem();
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap();
        let ed = Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap();
        let keys = vec![
            (
                Algorithm::RS256,
                "rs".to_owned(),
                EncodingKey::from_rsa_pem(rs_private.as_bytes()).unwrap(),
            ),
            (
                Algorithm::PS256,
                "ps".to_owned(),
                EncodingKey::from_rsa_pem(ps_private.as_bytes()).unwrap(),
            ),
            (
                Algorithm::ES256,
                "ec".to_owned(),
                EncodingKey::from_ec_der(ec.as_ref()),
            ),
            (
                Algorithm::EdDSA,
                "ed".to_owned(),
                EncodingKey::from_ed_der(ed.as_ref()),
            ),
        ];
        let mut members: Vec<Value> = keys
            .iter()
            .map(|(alg, kid, key)| {
                let mut jwk = Jwk::from_encoding_key(key, *alg).unwrap();
                jwk.common.key_id = Some(kid.clone());
                let mut v = serde_json::to_value(&jwk).unwrap();
                // The RSA key declares no alg: RS256 is pinned for it by its type.
                if kid == "rs" {
                    v.as_object_mut().unwrap().remove("alg");
                }
                v
            })
            .collect();
        members.extend([
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"}),
            json!({"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}),
            json!({"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": "AAAA"}),
        ]);
        let state = Arc::new(IdpState {
            mode: Mutex::new(Mode::Serve),
            jwks: json!({ "keys": members }).to_string(),
            fetches: AtomicUsize::new(0),
            redirect_followed: AtomicUsize::new(0),
        });
        let served = state.clone();
        let followed = state.clone();
        let app = Router::new()
            .route(
                "/jwks",
                get(move || {
                    let state = served.clone();
                    async move { jwks(&state).await }
                }),
            )
            .route(
                "/moved",
                get(move || {
                    let state = followed.clone();
                    async move {
                        state.redirect_followed.fetch_add(1, Ordering::SeqCst);
                        state.jwks.clone()
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Idp {
            url: format!("http://{addr}/jwks"),
            state,
            keys,
            rsa_public_pem,
            _task: task,
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// A token signed with the key of `kid`, claiming `changes` over a valid default.
    fn token(&self, kid: &str, changes: Value) -> String {
        let (alg, _, key) = self.keys.iter().find(|(_, k, _)| k == kid).unwrap();
        signed(*alg, kid, key, changes)
    }

    /// The signing key of `kid`.
    fn key(&self, kid: &str) -> &EncodingKey {
        &self.keys.iter().find(|(_, k, _)| k == kid).unwrap().2
    }

    /// The local server verifying against this provider, with `extra` settings.
    async fn server(&self, extra: &[(&str, &str)]) -> Server {
        let mut vars = vec![
            ("CHAT_AUTH_UPSTREAM_ISSUER", ISSUER),
            ("CHAT_AUTH_UPSTREAM_JWKS_URL", self.url.as_str()),
            ("CHAT_AUTH_UPSTREAM_AUDIENCE", AUDIENCE),
        ];
        vars.extend_from_slice(extra);
        start(&vars).await
    }
}

async fn jwks(state: &IdpState) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = *state.mode.lock().unwrap();
    if mode == Mode::Hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    match mode {
        Mode::Hang => StatusCode::GATEWAY_TIMEOUT.into_response(),
        Mode::Serve => state.jwks.clone().into_response(),
        Mode::Fail => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Redirect => (StatusCode::FOUND, [(header::LOCATION, "/moved")]).into_response(),
        Mode::Huge => {
            let pad = "x".repeat(300 * 1024);
            json!({"keys": [], "pad": pad}).to_string().into_response()
        }
    }
}

/// A token whose header says `alg` and `kid`, signed with `key` whatever those say.
fn signed(alg: Algorithm, kid: &str, key: &EncodingKey, changes: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims(changes), key).unwrap()
}

fn claims(changes: Value) -> Value {
    let now = chat_auth_shared::time::now();
    let mut claims =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "contact-1", "iat": now, "exp": now + 600});
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

/// `GET /token` with `bearer`: the status and the error code, if any.
async fn mint(server: &Server, bearer: &str) -> (u16, String) {
    let response = get_token(server, bearer).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.clone());
    (status, code)
}

#[tokio::test]
async fn es256_eddsa_ps256_and_rs256_tokens_from_the_provider_mint_chat_tokens() {
    let idp = Idp::start().await;
    let server = idp.server(&[]).await;
    for kid in ["ec", "ed", "ps", "rs"] {
        let (status, body) = mint(
            &server,
            &idp.token(kid, json!({"sub": format!("contact-{kid}")})),
        )
        .await;
        assert_eq!(status, 200, "{kid}: {body}");
        let verdict = common::validate(&server, &body).await;
        assert_eq!(verdict["active"], true, "{kid}: {verdict}");
        assert_eq!(verdict["sub"], format!("contact-{kid}"));
    }
    // Three unusable members were skipped, not fatal; one fetch served all four.
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn tokens_the_provider_did_not_mean_for_us_are_refused_with_the_reason() {
    let idp = Idp::start().await;
    let server = idp.server(&[]).await;
    let now = chat_auth_shared::time::now();
    let hs256_over_the_public_key = signed(
        Algorithm::HS256,
        "rs",
        &EncodingKey::from_secret(&idp.rsa_public_pem),
        json!({}),
    );
    let es256_signed_but_naming_the_rsa_kid =
        signed(Algorithm::ES256, "rs", idp.key("ec"), json!({}));
    let ps256_header_on_the_rs256_key = signed(Algorithm::PS256, "rs", idp.key("rs"), json!({}));
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"rs"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let cases = [
        (
            "another app's audience",
            idp.token("ec", json!({"aud": "api://other-app"})),
            "wrong_audience",
        ),
        (
            "no audience",
            idp.token("ec", json!({"aud": null})),
            "missing_claim",
        ),
        (
            "another issuer",
            idp.token("ed", json!({"iss": "https://evil.example"})),
            "wrong_issuer",
        ),
        (
            "expired",
            idp.token("ps", json!({"exp": now - 3600})),
            "expired",
        ),
        (
            "not yet valid",
            idp.token("rs", json!({"nbf": now + 3600})),
            "not_yet_valid",
        ),
        (
            "HS256 over the RSA public key",
            hs256_over_the_public_key,
            "alg_mismatch",
        ),
        (
            "ES256 naming the RSA key",
            es256_signed_but_naming_the_rsa_kid,
            "alg_mismatch",
        ),
        (
            "PS256 header on the RS256 key",
            ps256_header_on_the_rs256_key,
            "alg_mismatch",
        ),
        ("alg none", unsigned, "malformed"),
        (
            "the skipped HMAC member's kid",
            signed(
                Algorithm::HS256,
                "hmac",
                &EncodingKey::from_secret(b"secret"),
                json!({}),
            ),
            "unknown_kid",
        ),
        (
            "tampered signature",
            {
                let t = idp.token("ec", json!({}));
                let (head, sig) = t.rsplit_once('.').unwrap();
                let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
                sig[10] ^= 1;
                format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig))
            },
            "bad_signature",
        ),
    ];
    for (name, token, code) in cases {
        let (status, message) = mint(&server, &token).await;
        assert_eq!(status, 401, "{name}: {message}");
        assert!(
            message.ends_with(code),
            "{name}: {message} (expected {code})"
        );
    }
}

#[tokio::test]
async fn with_the_jwks_endpoint_down_500_requests_cost_one_fetch() {
    let idp = Idp::start().await;
    idp.set_mode(Mode::Fail);
    let server = Arc::new(
        idp.server(&[("CHAT_AUTH_UPSTREAM_JWKS_RETRY_SECONDS", "30")])
            .await,
    );
    let token = Arc::new(idp.token("ec", json!({})));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (server, token) = (server.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..500 / 16 + 1 {
                statuses.push(get_token(&server, &token).await.status().as_u16());
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    assert!(statuses.len() >= 500);
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert_eq!(idp.fetches(), 1, "one attempt per retry interval");

    // Forged kids against a healthy provider: the same bound.
    let healthy = Idp::start().await;
    let server = healthy.server(&[]).await;
    for i in 0..200 {
        let forged = signed(
            Algorithm::ES256,
            &format!("forged-{i}"),
            healthy.key("ec"),
            json!({}),
        );
        assert_eq!(mint(&server, &forged).await.0, 401);
    }
    assert_eq!(
        healthy.fetches(),
        1,
        "forged kids never refetch within the retry interval"
    );
    eprintln!(
        "{} requests with the JWKS endpoint down: {} fetch; 200 forged kids: {} fetch",
        statuses.len(),
        idp.fetches(),
        healthy.fetches()
    );
}

#[tokio::test]
async fn a_warm_set_verifies_through_an_outage_within_its_stale_bound_and_not_after() {
    let idp = Idp::start().await;
    let server = idp
        .server(&[
            ("CHAT_AUTH_UPSTREAM_JWKS_TTL_SECONDS", "1"),
            ("CHAT_AUTH_UPSTREAM_JWKS_RETRY_SECONDS", "1"),
            ("CHAT_AUTH_UPSTREAM_JWKS_STALE_SECONDS", "2"),
        ])
        .await;
    let token = idp.token("ed", json!({}));
    assert_eq!(mint(&server, &token).await.0, 200);
    idp.set_mode(Mode::Fail);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // Past the TTL, the fetch fails, and the cached set still verifies.
    assert_eq!(mint(&server, &token).await.0, 200);
    assert_eq!(idp.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    // Past TTL + stale: fail closed.
    let (status, message) = mint(&server, &token).await;
    assert_eq!(status, 503, "{message}");
    // The provider is back: the next allowed attempt restores service.
    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(mint(&server, &token).await.0, 200);
}

#[tokio::test]
async fn redirects_and_oversized_documents_are_refused() {
    for mode in [Mode::Redirect, Mode::Huge] {
        let idp = Idp::start().await;
        idp.set_mode(mode);
        let server = idp.server(&[]).await;
        let response = get_token(&server, &idp.token("ec", json!({}))).await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "identity_provider_unavailable");
        assert_eq!(idp.state.redirect_followed.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn serve_without_an_identity_provider_or_dev_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(common::chat_auth_bin())
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for named in ["--dev", "CHAT_AUTH_DEV=1", "CHAT_AUTH_UPSTREAM_AUDIENCE"] {
        assert!(stderr.contains(named), "{named} not named: {stderr}");
    }
    // An upstream without an audience is refused at start too.
    let out = tokio::process::Command::new(common::chat_auth_bin())
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("CHAT_AUTH_UPSTREAM_ISSUER", ISSUER)
        .env(
            "CHAT_AUTH_UPSTREAM_JWKS_URL",
            "https://login.contoso.example/keys",
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CHAT_AUTH_UPSTREAM_AUDIENCE"), "{stderr}");
}

#[tokio::test]
async fn slow_requests_time_out_and_excess_ones_are_shed_with_json_errors() {
    let idp = Idp::start().await;
    idp.set_mode(Mode::Hang);
    let server = Arc::new(
        idp.server(&[
            ("CHAT_AUTH_REQUEST_TIMEOUT_SECONDS", "2"),
            ("CHAT_AUTH_MAX_CONCURRENT_REQUESTS", "2"),
        ])
        .await,
    );
    let token = Arc::new(idp.token("ec", json!({})));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (server, token) = (server.clone(), token.clone());
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let response = get_token(&server, &token).await;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                (status, body, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Both slots are taken: the third request is shed at once, whatever its route.
    let shed = common::get(&server.url("/public-key")).await;
    assert_eq!(shed.status(), 503);
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    // The request that fetches times out; one that waited for it may then find no fetch
    // allowed yet and no cached set (503), never a hang.
    let mut timed_out = 0;
    for task in slow {
        let (status, body, took) = task.await.unwrap();
        match status {
            408 => {
                assert_eq!(body["error"]["code"], "request_timeout");
                timed_out += 1;
            }
            503 => assert_eq!(body["error"]["code"], "identity_provider_unavailable"),
            other => panic!("{other}: {body}"),
        }
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
    assert!(timed_out >= 1);
    // The slots are free again.
    let ok = common::get(&server.url("/public-key")).await;
    assert_eq!(ok.status(), 200);
}

/// `POST path` with `bearer` (if any) and an `/issue` body: the status and the body.
async fn issue(base: &str, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut request = common::client()
        .post(format!("{base}{path}"))
        .header(header::ACCEPT, "application/json")
        .json(&json!({"sub": "contact-9", "context": {"msdyn_region": "EU"}}));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GIVEN the real `chat-auth serve` in upstream mode with an issue audience and one listed
/// client, WHEN backends and users call the `/issue` routes with the provider's tokens, THEN a
/// listed client's client-credentials token mints for the `sub` it names (logged with its
/// client id, the `sub` and the `jti`), and an unlisted client, a user's token for the listed
/// client, a page's token and no token are refused; a Cognito-shaped token (no `aud`, the
/// client id as audience) is checked as API Gateway checks it.
#[tokio::test]
async fn backends_with_client_credentials_tokens_use_issue_and_users_do_not() {
    const ISSUE_AUDIENCE: &str = "api://chat-auth-issue";
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = common::serve_process(
        &dir.path().join("data"),
        &[
            ("CHAT_AUTH_UPSTREAM_ISSUER", ISSUER),
            ("CHAT_AUTH_UPSTREAM_JWKS_URL", idp.url.as_str()),
            ("CHAT_AUTH_UPSTREAM_AUDIENCE", AUDIENCE),
            ("CHAT_AUTH_UPSTREAM_ISSUE_AUDIENCE", ISSUE_AUDIENCE),
            ("CHAT_AUTH_ISSUE_CLIENTS", "backend-app"),
            ("RUST_LOG", "info"),
        ],
        std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
    )
    .await;
    let base = server.base.as_str();
    // Auth0's machine-to-machine shape.
    let backend = idp.token(
        "rs",
        json!({"aud": ISSUE_AUDIENCE, "azp": "backend-app", "sub": "backend-app@clients",
               "gty": "client-credentials"}),
    );
    for path in ["/issue/client-credentials", "/issue"] {
        let (status, body) = issue(base, path, Some(&backend)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let token = body["token"].as_str().unwrap();
        let verdict = common::validate_at(base, token).await;
        assert_eq!(verdict["active"], true, "{verdict}");
        assert_eq!(verdict["sub"], "contact-9");
        assert_eq!(verdict["context"]["msdyn_region"], "EU");
        let jti = verdict["jti"].as_str().unwrap();
        let logged = std::fs::read_to_string(&log).unwrap();
        let line = logged
            .lines()
            .find(|l| l.contains(jti))
            .unwrap_or_else(|| panic!("no log line names jti {jti}:\n{logged}"));
        assert!(
            line.contains("backend-app") && line.contains("contact-9"),
            "{line}"
        );
        assert!(!logged.contains(&backend), "the backend's token was logged");
    }
    let refused = [
        (
            "an unlisted client",
            Some(idp.token(
                "rs",
                json!({"aud": ISSUE_AUDIENCE, "azp": "other-app", "sub": "other-app@clients"}),
            )),
            403,
            "CHAT_AUTH_ISSUE_CLIENTS",
        ),
        (
            "a user's token for the listed client",
            Some(idp.token(
                "rs",
                json!({"aud": ISSUE_AUDIENCE, "azp": "backend-app", "sub": "auth0|ann"}),
            )),
            403,
            "user",
        ),
        (
            "a page's token",
            Some(idp.token("rs", json!({}))),
            401,
            "wrong_audience",
        ),
        (
            "a Cognito-shaped token whose client id is not the audience",
            Some(idp.token(
                "rs",
                json!({"aud": null, "client_id": "backend-app", "sub": "backend-app"}),
            )),
            401,
            "wrong_audience",
        ),
        ("no token", None, 401, "trusted backends"),
    ];
    for (what, bearer, status, says) in refused {
        let (got, body) = issue(base, "/issue/client-credentials", bearer.as_deref()).await;
        assert_eq!(got, status, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{what}: {body}");
    }
    // The backend's token is not a customer's: /token refuses its audience.
    let response = common::get_token_at(base, &backend).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(
        (status, body.contains("wrong_audience")),
        (401, true),
        "{body}"
    );
    // Cognito: the audience is the app client's id, matched against client_id.
    let cognito = common::serve_process(
        &dir.path().join("data2"),
        &[
            ("CHAT_AUTH_UPSTREAM_ISSUER", ISSUER),
            ("CHAT_AUTH_UPSTREAM_JWKS_URL", idp.url.as_str()),
            ("CHAT_AUTH_UPSTREAM_AUDIENCE", AUDIENCE),
            (
                "CHAT_AUTH_UPSTREAM_ISSUE_AUDIENCE",
                "4p1r8mq2v6n3ltg7c0e5d9hkab",
            ),
            ("CHAT_AUTH_ISSUE_CLIENTS", "4p1r8mq2v6n3ltg7c0e5d9hkab"),
        ],
        std::process::Stdio::null(),
    )
    .await;
    let token = idp.token(
        "rs",
        json!({"aud": null, "client_id": "4p1r8mq2v6n3ltg7c0e5d9hkab",
               "sub": "4p1r8mq2v6n3ltg7c0e5d9hkab", "token_use": "access"}),
    );
    let (status, body) = issue(&cognito.base, "/issue/client-credentials", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
}

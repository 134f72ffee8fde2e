//! GIVEN `chat-auth doctor` (the real binary), WHEN it checks the local server and stand-ins
//! that each break one thing (a small axum router in front of the local server that answers one
//! route itself and proxies the rest), THEN it passes the healthy server with every check, and
//! fails each stand-in with exit status 1, naming the failing check and what is wrong: the
//! Public key URL answering 500, hanging, too long or serving one PEM block; a past `expiry`; a
//! `publicKey` that is not base64 PEM; a repeated kid; a JWKS that disagrees; the provider
//! script served as text; CORS that refuses the page or allows any origin; a token signed by
//! an unpublished key, under its own kid or a published one; a token with bad claims. It never
//! prints a token or a key.

use crate::common;

use crate::common::{Server, sign_in_at, start};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const CONTACT: &str = "87b4d06c-abc2-e811-a9b0-000d3a10e09e";
const ORIGIN: &str = "https://www.contoso.com";

/// One run of the doctor: its exit code and what it printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The status (`PASS`, `FAIL`, `SKIP`) of check `id`.
    fn status(&self, id: &str) -> &str {
        self.line(id).split_whitespace().next().unwrap_or_default()
    }

    /// The line of check `id`.
    fn line(&self, id: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{}", self.stdout))
    }

    /// The ids of the checks that failed, in report order.
    fn failed(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("FAIL "))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect()
    }

    /// Exit 1, exactly `checks` failed, and the first one's line says `says`.
    fn fails_with(&self, checks: &[&str], says: &str) {
        assert_eq!(self.code, Some(1), "{self}");
        assert_eq!(self.failed(), checks, "{self}");
        assert!(self.line(checks[0]).contains(says), "{says:?}\n{self}");
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs `chat-auth doctor --base-url BASE ARGS`, with `stdin` on its standard input. Through
/// tokio's process: the servers it checks run on this test's runtime.
async fn doctor(base: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = tokio::process::Command::new(common::chat_auth_bin())
        .args(["doctor", "--base-url", base])
        .args(args)
        // Loopback peers only: no proxy variable may send the doctor elsewhere.
        .env("NO_PROXY", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A stand-in on a free loopback port: `routes` answer themselves, anything else goes to
/// `upstream` unchanged. Its base URL; it stops with the test's runtime.
async fn stand_in(upstream: &str, routes: Router<Arc<str>>) -> String {
    let app = routes
        .fallback(proxy)
        .with_state(Arc::<str>::from(upstream));
    serve_at("", app).await
}

/// Serves `app` under the path `prefix` on a free loopback port; the base URL.
async fn serve_at(prefix: &str, app: Router) -> String {
    let app = if prefix.is_empty() {
        app
    } else {
        Router::new().nest(prefix, app)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}{prefix}")
}

/// Forwards the request to the upstream as it came (but for `Host`), and its answer back.
async fn proxy(State(upstream): State<Arc<str>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    let answer = common::client()
        .request(parts.method, format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let mut headers = answer.headers().clone();
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    let bytes = answer.bytes().await.unwrap();
    (status, headers, bytes).into_response()
}

/// The upstream's `GET path`, as JSON.
async fn upstream_json(upstream: &str, path: &str) -> Value {
    common::get(&format!("{upstream}{path}"))
        .await
        .json()
        .await
        .unwrap()
}

/// A stand-in whose multi-key array (not `?format=pem`) is the upstream's after `alter`.
async fn altered_array(upstream: &str, alter: fn(&mut Vec<Value>)) -> String {
    let routes = Router::new().route(
        "/public-key",
        get(
            move |State(upstream): State<Arc<str>>, req: Request| async move {
                if req.uri().query().is_some() {
                    return proxy(State(upstream), req).await;
                }
                let mut array: Vec<Value> =
                    serde_json::from_value(upstream_json(&upstream, "/public-key").await).unwrap();
                alter(&mut array);
                axum::Json(array).into_response()
            },
        ),
    );
    stand_in(upstream, routes).await
}

/// A stand-in whose `/token` answers `token` (whoever asks).
async fn minting(upstream: &str, token: String) -> String {
    let routes = Router::new().route(
        "/token",
        get(move || async move { ([(header::CONTENT_TYPE, "application/jwt")], token) }),
    );
    stand_in(upstream, routes).await
}

/// A fresh ring's signing key: a key no deployment publishes.
fn unpublished_key() -> chat_auth_shared::keys::SigningKey {
    chat_auth_shared::RingState::generate(common::now(), 86_400)
        .unwrap()
        .load()
        .unwrap()
        .signer
}

/// The server's own signing key, read from its data directory.
async fn servers_key(server: &Server) -> chat_auth_shared::keys::SigningKey {
    use chat_auth_shared::store::RingSource;
    let store = chat_auth_host::FileStore::open(server.data_dir.path()).unwrap();
    let ring = store.load_ring().await.unwrap().expect("the server's ring");
    ring.load().unwrap().signer
}

/// Claims as the server mints them, for `sub`, now.
fn claims(sub: &str) -> chat_auth_shared::Claims {
    let policy = chat_auth_shared::TokenPolicy {
        issuer: "chat-auth".into(),
        ttl: 900,
        skew: 30,
    };
    let mut context = chat_auth_shared::CustomContext::new();
    context.insert_json("region", &json!("EU")).unwrap();
    policy.claims(sub, &context, common::now()).unwrap()
}

fn the_other_checks_pass(run: &Run, failed_or_skipped: &[&str]) {
    for line in run.stdout.lines().filter(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|id| !failed_or_skipped.contains(&id))
            && (l.starts_with("FAIL ") || l.starts_with("SKIP ") || l.starts_with("PASS "))
    }) {
        assert!(line.starts_with("PASS "), "{line}\n{run}");
    }
}

#[tokio::test]
async fn the_local_server_passes_every_check_and_nothing_secret_is_printed() {
    let data = tempfile::tempdir().unwrap();
    let server = common::serve_process(
        data.path(),
        &[("CHAT_AUTH_ALLOWED_ORIGINS", ORIGIN)],
        Stdio::null(),
    )
    .await;
    let identity = sign_in_at(&server.base, CONTACT, json!({"region": "EU"})).await;
    // The identity token on stdin ("-"), out of the process list.
    let run = doctor(
        &server.base,
        &["--identity-token", "-", "--origin", ORIGIN],
        Some(&identity),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run}");
    let passed = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("PASS "))
        .count();
    assert_eq!(passed, 20, "{run}");
    assert!(
        run.stdout.contains("20 passed, 0 failed, 0 skipped"),
        "{run}"
    );

    // The tag to paste carries the integrity of the script as served.
    let script = common::get(&format!("{}/provider.js", server.base))
        .await
        .bytes()
        .await
        .unwrap();
    let integrity = chat_auth_shared::provider::integrity(&script);
    assert!(
        run.stdout.contains(&format!(
            "<script src=\"{}/provider.js\" integrity=\"{integrity}\" crossorigin=\"anonymous\"></script>",
            server.base
        )),
        "{run}"
    );

    // No token (a JWT's header begins {"typ":"JWT" or {"alg", as base64url) and no key, whole
    // or as the PEM's base64 body.
    let printed = format!("{}{}", run.stdout, run.stderr);
    assert!(!printed.contains(&identity), "{run}");
    for header_start in ["eyJ0eXAiOiJKV1Qi", "eyJhbGciOi"] {
        assert!(!printed.contains(header_start), "{run}");
    }
    let array = upstream_json(&server.base, "/public-key").await;
    for key in array.as_array().unwrap() {
        let public_key = key["publicKey"].as_str().unwrap();
        let pem = String::from_utf8(STANDARD.decode(public_key).unwrap()).unwrap();
        let der_line = pem.lines().nth(1).unwrap();
        assert!(!printed.contains(&public_key[..40]), "{run}");
        assert!(!printed.contains(der_line), "{run}");
    }
    assert!(!printed.contains("BEGIN PUBLIC KEY"), "{run}");
}

/// Without `--identity-token` or `--origin` those checks are skipped, and skipping is not
/// failing.
#[tokio::test]
async fn checks_without_their_option_are_skipped_and_the_run_passes() {
    let server = start(&[]).await;
    let run = doctor(&server.url(""), &[], None).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.status("cors-origin"), "SKIP", "{run}");
    assert_eq!(run.status("token-validate"), "SKIP", "{run}");
    assert_eq!(run.status("cors-foreign-origin"), "PASS", "{run}");
    assert!(
        run.stdout.contains("11 passed, 0 failed, 9 skipped"),
        "{run}"
    );
}

#[tokio::test]
async fn a_public_key_url_answering_500_fails() {
    let server = start(&[]).await;
    let routes = Router::new().route(
        "/public-key",
        get(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"error": {"code": "internal_error", "message": "boom"}})),
            )
        }),
    );
    let base = stand_in(&server.url(""), routes).await;
    let run = doctor(&base, &[], None).await;
    run.fails_with(
        &["public-key-answers", "pem-format"],
        "answered 500 Internal Server Error (internal_error: boom)",
    );
    assert!(
        run.line("pem-format")
            .contains("neither the multi-key array nor ?format=pem is usable"),
        "{run}"
    );
    assert_eq!(run.status("key-array"), "SKIP", "{run}");
    assert_eq!(run.status("jwks-agrees"), "SKIP", "{run}");
    // Each failure comes with its fix.
    assert!(
        run.stdout
            .contains("      fix: make GET /public-key answer 200"),
        "{run}"
    );
}

/// A deployment that hangs fails its check within the timeout; the doctor does not hang.
#[tokio::test]
async fn a_public_key_url_that_hangs_fails_within_the_timeout() {
    let server = start(&[]).await;
    let routes = Router::new().route(
        "/public-key",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "never"
        }),
    );
    let base = stand_in(&server.url(""), routes).await;
    let started = Instant::now();
    let run = doctor(&base, &["--timeout", "1"], None).await;
    let took = started.elapsed();
    run.fails_with(
        &["public-key-answers", "pem-format"],
        "no answer within 1 s (--timeout)",
    );
    assert!(took < Duration::from_secs(5), "took {took:?}\n{run}");
}

#[tokio::test]
async fn a_key_whose_expiry_has_passed_fails() {
    let server = start(&[]).await;
    let base = altered_array(&server.url(""), |array| {
        array[1]["expiry"] = json!(common::now() - 7_200);
    })
    .await;
    let next_kid = upstream_json(&server.url(""), "/public-key").await[1]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = doctor(&base, &[], None).await;
    run.fails_with(
        &["key-expiry", "pem-format"],
        &format!("key {next_kid}: expiry"),
    );
    assert!(run.line("key-expiry").contains("passed 2 h ago"), "{run}");
    assert!(
        run.line("pem-format")
            .contains("only ?format=pem is usable"),
        "{run}"
    );
}

/// An expiry in milliseconds is "in the future" for ever: it is not unix seconds.
#[tokio::test]
async fn an_expiry_in_milliseconds_fails() {
    let server = start(&[]).await;
    let base = altered_array(&server.url(""), |array| {
        array[0]["expiry"] = json!((common::now() + 3_600) * 1_000);
    })
    .await;
    let run = doctor(&base, &[], None).await;
    run.fails_with(&["key-expiry", "pem-format"], "is not unix seconds");
}

#[tokio::test]
async fn a_public_key_that_is_not_base64_pem_fails() {
    let server = start(&[]).await;
    let base = altered_array(&server.url(""), |array| {
        array[0]["publicKey"] = json!(STANDARD.encode("not a PEM at all"));
        array[1]["publicKey"] = json!("%%% not base64 %%%");
    })
    .await;
    let array = upstream_json(&server.url(""), "/public-key").await;
    let run = doctor(&base, &[], None).await;
    run.fails_with(
        &["key-material", "pem-format"],
        &format!(
            "key {}: publicKey decodes, but not a PUBLIC KEY PEM block",
            array[0]["kid"].as_str().unwrap()
        ),
    );
    assert!(
        run.line("key-material").contains(&format!(
            "key {}: publicKey is not the base64 of a PEM RSA public key",
            array[1]["kid"].as_str().unwrap()
        )),
        "{run}"
    );
}

#[tokio::test]
async fn a_repeated_kid_fails() {
    let server = start(&[]).await;
    let base = altered_array(&server.url(""), |array| {
        array[1]["kid"] = array[0]["kid"].clone();
    })
    .await;
    let run = doctor(&base, &[], None).await;
    // The JWKS still lists the second key under its own kid, which the array no longer does.
    run.fails_with(
        &["key-kids-unique", "jwks-agrees", "pem-format"],
        "appears 2 times",
    );
}

#[tokio::test]
async fn a_public_key_url_serving_one_pem_block_fails() {
    let server = start(&[]).await;
    let routes = Router::new().route(
        "/public-key",
        get(|State(upstream): State<Arc<str>>| async move {
            common::get(&format!("{upstream}/public-key?format=pem"))
                .await
                .text()
                .await
                .unwrap()
        }),
    );
    let base = stand_in(&server.url(""), routes).await;
    let run = doctor(&base, &[], None).await;
    run.fails_with(
        &["key-array", "pem-format"],
        "one PEM block, not the multi-key array",
    );
    assert_eq!(run.status("jwks-agrees"), "SKIP", "{run}");
}

/// Omnichannel's admin field holds 256 characters: a long base path makes the Public key URL
/// longer, though everything else works.
#[tokio::test]
async fn a_public_key_url_longer_than_256_characters_fails() {
    let server = start(&[]).await;
    let upstream: Arc<str> = server.url("").into();
    let prefix = format!("/{}", "stage".repeat(50));
    let base = serve_at(&prefix, Router::new().fallback(proxy).with_state(upstream)).await;
    let length = format!("{base}/public-key").chars().count();
    assert!(length > 256);
    let identity = sign_in_at(&server.url(""), CONTACT, json!({})).await;
    let run = doctor(&base, &["--identity-token", &identity], None).await;
    run.fails_with(
        &["public-key-url-length"],
        &format!("{length} characters: more than the 256"),
    );
    the_other_checks_pass(&run, &["public-key-url-length", "cors-origin"]);
}

#[tokio::test]
async fn a_jwks_that_lacks_a_published_key_fails() {
    let server = start(&[]).await;
    let routes = Router::new().route(
        "/.well-known/jwks.json",
        get(|State(upstream): State<Arc<str>>| async move {
            let mut jwks = upstream_json(&upstream, "/.well-known/jwks.json").await;
            jwks["keys"].as_array_mut().unwrap().truncate(1);
            axum::Json(jwks)
        }),
    );
    let base = stand_in(&server.url(""), routes).await;
    let array = upstream_json(&server.url(""), "/public-key").await;
    let run = doctor(&base, &[], None).await;
    run.fails_with(
        &["jwks-agrees"],
        &format!(
            "kid {} is not in the JWKS",
            array[1]["kid"].as_str().unwrap()
        ),
    );
}

#[tokio::test]
async fn a_provider_script_served_as_text_fails_and_no_tag_is_offered() {
    let server = start(&[]).await;
    let routes = Router::new().route(
        "/provider.js",
        get(|State(upstream): State<Arc<str>>| async move {
            let script = common::get(&format!("{upstream}/provider.js"))
                .await
                .bytes()
                .await
                .unwrap();
            ([(header::CONTENT_TYPE, "text/plain")], script)
        }),
    );
    let base = stand_in(&server.url(""), routes).await;
    let run = doctor(&base, &[], None).await;
    run.fails_with(
        &["provider-script"],
        "served as text/plain, not as JavaScript",
    );
    assert!(!run.stdout.contains("<script"), "{run}");
}

#[tokio::test]
async fn cors_that_refuses_the_page_or_allows_any_origin_fails() {
    let server = start(&[("CHAT_AUTH_ALLOWED_ORIGINS", ORIGIN)]).await;
    let run = doctor(
        &server.url(""),
        &["--origin", "https://www.fabrikam.com"],
        None,
    )
    .await;
    run.fails_with(
        &["cors-origin"],
        "a preflight from https://www.fabrikam.com is refused (403",
    );

    // A stand-in that answers every preflight for whoever asks.
    let routes = Router::new().route(
        "/token",
        axum::routing::options(|req: Request<Body>| async move {
            let origin = req.headers()[header::ORIGIN].clone();
            (
                [
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                    (
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("authorization"),
                    ),
                ],
                "",
            )
        }),
    );
    let base = stand_in(&server.url(""), routes).await;
    let run = doctor(&base, &["--origin", ORIGIN], None).await;
    run.fails_with(
        &["cors-foreign-origin"],
        "a preflight from https://chat-auth-doctor.invalid is allowed",
    );
}

/// A token signed by a key the Public key URL does not publish, under that key's own kid:
/// Omnichannel has no key to verify it with.
#[tokio::test]
async fn a_token_signed_by_an_unpublished_key_fails() {
    let server = start(&[]).await;
    let key = unpublished_key();
    let token = chat_auth_shared::claims::mint(&key, &claims(CONTACT))
        .unwrap()
        .token;
    let base = minting(&server.url(""), token).await;
    let identity = sign_in_at(&server.url(""), CONTACT, json!({})).await;
    let run = doctor(&base, &["--identity-token", &identity], None).await;
    run.fails_with(
        &["token-header", "token-validate"],
        &format!("kid \"{}\" is not published", key.kid),
    );
    assert_eq!(run.status("token-signature"), "SKIP", "{run}");
    assert!(run.line("token-validate").contains("unknown_kid"), "{run}");
    assert!(!run.stdout.contains(&identity), "{run}");
}

/// The same, under the kid of a published key: the signature does not verify.
#[tokio::test]
async fn a_token_signed_by_an_unpublished_key_under_a_published_kid_fails() {
    let server = start(&[]).await;
    let published = servers_key(&server).await.kid;
    let header = URL_SAFE_NO_PAD.encode(
        json!({"alg": "RS256", "typ": "JWT", "kid": published})
            .to_string()
            .as_bytes(),
    );
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(CONTACT)).unwrap());
    let input = format!("{header}.{payload}");
    let signature = unpublished_key().sign(input.as_bytes()).unwrap();
    let base = minting(&server.url(""), format!("{input}.{signature}")).await;
    let run = doctor(&base, &["--identity-token", "unused"], None).await;
    run.fails_with(
        &["token-signature", "token-validate"],
        &format!("the signature does not verify with key {published}"),
    );
    assert!(
        run.line("token-validate").contains("bad_signature"),
        "{run}"
    );
}

/// Signed by the published key, but `exp` in milliseconds, no `iss`, and `lwicontexts` as an
/// object instead of a string: each is named by its own check.
#[tokio::test]
async fn a_token_with_bad_claims_fails_each_claims_check() {
    let server = start(&[]).await;
    let now = common::now();
    let payload = json!({
        "sub": CONTACT,
        "iat": now,
        "exp": (now + 900) * 1_000,
        "lwicontexts": {"region": "EU"},
    });
    let token = chat_auth_shared::claims::encode(&servers_key(&server).await, &payload).unwrap();
    let base = minting(&server.url(""), token).await;
    let run = doctor(&base, &["--identity-token", "unused"], None).await;
    run.fails_with(
        &[
            "token-times",
            "token-claims",
            "token-context",
            "token-validate",
        ],
        "exp has 13 digits: the widget reads it as milliseconds",
    );
    assert!(
        run.line("token-claims")
            .contains("the iss claim is required"),
        "{run}"
    );
    assert!(
        run.line("token-context")
            .contains("lwicontexts must be a string"),
        "{run}"
    );
    assert_eq!(run.status("token-signature"), "PASS", "{run}");
}

/// Omnichannel's servers fetch the key over the internet: plain http is refused unless it is
/// to loopback (a local test). TEST-NET-1 never answers, so only the URL's own checks pass.
#[tokio::test]
async fn a_public_key_url_over_plain_http_to_another_host_fails() {
    let run = doctor("http://192.0.2.1:9", &["--timeout", "1"], None).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(run.status("public-key-url-https"), "FAIL", "{run}");
    assert!(
        run.line("public-key-url-https")
            .contains("http, not https, to 192.0.2.1"),
        "{run}"
    );
    assert_eq!(run.status("public-key-url-length"), "PASS", "{run}");
}

/// An identity token the service refuses mints nothing; the checks of the token are skipped.
#[tokio::test]
async fn an_identity_token_the_service_refuses_fails_the_mint() {
    let server = start(&[]).await;
    let run = doctor(&server.url(""), &["--identity-token", "not-a-token"], None).await;
    run.fails_with(
        &["token-mint"],
        "answered 401 Unauthorized (unauthenticated",
    );
    assert_eq!(run.status("token-validate"), "SKIP", "{run}");
    assert!(!run.stdout.contains("not-a-token"), "{run}");
}

/// Something that is not a JWT: the widget refuses it before sending it anywhere.
#[tokio::test]
async fn a_token_that_is_not_a_jwt_fails_the_format() {
    let server = start(&[]).await;
    let base = minting(&server.url(""), "an opaque session id".to_owned()).await;
    let run = doctor(&base, &["--identity-token", "unused"], None).await;
    run.fails_with(
        &["token-format", "token-validate"],
        "a JWT has exactly three dot-separated segments",
    );
    for check in ["token-header", "token-times", "token-signature"] {
        assert_eq!(run.status(check), "SKIP", "{check}\n{run}");
    }
}

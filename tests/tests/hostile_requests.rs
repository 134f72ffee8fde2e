//! GIVEN the local server behind an upstream identity provider the test controls, WHEN every
//! route is sent malformed, oversized, forged or unexpected requests, THEN each answers a
//! structured JSON error with a stable code and the right status, and none answers 5xx.

mod common;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_auth::claims::encode;
use chat_auth::keys::{KeyTimes, SigningKey, StoredKey};
use chat_auth::publish::PublicKeySet;
use common::{client, start};
use serde_json::{Value, json};

const IDP: &str = "https://idp.test/";
const AUD: &str = "chat-widget";

struct Idp {
    key: SigningKey,
    other: SigningKey,
    jwks_url: String,
    _task: tokio::task::JoinHandle<()>,
}

fn key() -> StoredKey {
    let now = chat_auth::time::now();
    StoredKey::generate(KeyTimes {
        created: now,
        activates: now,
        retires: now + 86_400,
    })
    .unwrap()
}

/// A stand-in identity provider: its JWKS served over HTTP, its key in the test's hands.
async fn idp() -> Idp {
    let stored = key();
    let set = PublicKeySet {
        version: 1,
        current_kid: stored.kid.clone(),
        keys: vec![chat_auth::publish::PublishedKey {
            kid: stored.kid.clone(),
            spki: stored.spki().unwrap(),
            activates: 0,
            retires: i64::MAX / 2,
            expiry: i64::MAX / 2,
            published: Some(0),
            stopped: None,
        }],
        revoked: Vec::new(),
    };
    let jwks = set.render().unwrap().jwks;
    let app = Router::new().route("/jwks", get(move || async move { jwks.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Idp {
        key: stored.parse().unwrap(),
        other: key().parse().unwrap(),
        jwks_url: format!("http://{addr}/jwks"),
        _task: task,
    }
}

fn id_token(key: &SigningKey, changes: Value) -> String {
    let now = chat_auth::time::now();
    let mut claims =
        json!({"iss": IDP, "aud": AUD, "sub": "contact-1", "iat": now, "exp": now + 600});
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    encode(key, &claims).unwrap()
}

struct Case {
    name: &'static str,
    dev: bool,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        dev: false,
        method,
        path: path.to_owned(),
        headers: vec![],
        body: None,
        status,
        code,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        let mut c = self.header("content-type", "application/json");
        c.body = Some(body.into());
        c
    }
    fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers.push(("content-type", content_type.to_owned()));
        self.body = Some(body.into());
        self
    }
    fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    /// Sent to the development-mode server.
    fn on_dev(mut self) -> Self {
        self.dev = true;
        self
    }
    /// With development mode's `/issue` key.
    fn issue_key(self) -> Self {
        self.header("x-chat-auth-issue-key", common::ISSUE_KEY)
    }
}

#[tokio::test]
async fn every_hostile_request_gets_a_structured_error() {
    let idp = idp().await;
    let service = start(&[
        ("CHAT_AUTH_UPSTREAM_ISSUER", IDP),
        ("CHAT_AUTH_UPSTREAM_JWKS_URL", &idp.jwks_url),
        ("CHAT_AUTH_UPSTREAM_AUDIENCE", AUD),
        ("CHAT_AUTH_ALLOWED_ORIGINS", "https://www.contoso.com"),
        ("CHAT_AUTH_CLIENT_CONTEXT_KEYS", "page"),
    ])
    .await;
    let dev = start(&[]).await;
    let good = id_token(&idp.key, json!({}));
    let now = chat_auth::time::now();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD
            .encode(json!({"iss": IDP, "aud": AUD, "sub": "x", "exp": now + 600}).to_string())
    );
    let big = vec![b' '; 20 * 1024];
    let deep = format!("{{\"token\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let context = |value: Value| json!({"context": {"page": value}}).to_string();
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("v{i}"), json!(i))).collect();

    let cases = vec![
        case(
            "validate: malformed JSON",
            "POST",
            "/validate",
            400,
            "malformed_json",
        )
        .json("{\"token\": "),
        case(
            "validate: wrong content type",
            "POST",
            "/validate",
            415,
            "unsupported_media_type",
        )
        .raw("text/plain", "token=x"),
        case(
            "validate: XML",
            "POST",
            "/validate",
            415,
            "unsupported_media_type",
        )
        .raw("application/xml", "<token/>"),
        case(
            "validate: body over the cap",
            "POST",
            "/validate",
            413,
            "payload_too_large",
        )
        .json(big.clone()),
        case(
            "validate: deep nesting",
            "POST",
            "/validate",
            400,
            "malformed_json",
        )
        .json(deep.clone()),
        case(
            "validate: missing token",
            "POST",
            "/validate",
            400,
            "malformed_json",
        )
        .json("{}"),
        case(
            "validate: token not a string",
            "POST",
            "/validate",
            400,
            "malformed_json",
        )
        .json(r#"{"token": 7}"#),
        case(
            "validate: unknown field",
            "POST",
            "/validate",
            400,
            "malformed_json",
        )
        .json(r#"{"token": "a", "admin": true}"#),
        case(
            "validate: JSON null",
            "POST",
            "/validate",
            400,
            "malformed_json",
        )
        .json("null"),
        case(
            "validate: bad form encoding",
            "POST",
            "/validate",
            400,
            "malformed_form",
        )
        .raw("application/x-www-form-urlencoded", "tok%ZZen=1&x"),
        case(
            "validate: GET",
            "GET",
            "/validate",
            405,
            "method_not_allowed",
        ),
        case("token: PUT", "PUT", "/token", 405, "method_not_allowed"),
        case(
            "public-key: DELETE",
            "DELETE",
            "/public-key",
            405,
            "method_not_allowed",
        ),
        case(
            "jwks: POST",
            "POST",
            "/.well-known/jwks.json",
            405,
            "method_not_allowed",
        )
        .json("{}"),
        case(
            "provider.js: POST",
            "POST",
            "/provider.js",
            405,
            "method_not_allowed",
        ),
        case("unknown path", "GET", "/admin", 404, "not_found"),
        case(
            "very long path",
            "GET",
            &format!("/{}", "a".repeat(4000)),
            404,
            "not_found",
        ),
        case(
            "public-key: unknown format",
            "GET",
            "/public-key?format=xml",
            400,
            "bad_format",
        ),
        case(
            "public-key: repeated format",
            "GET",
            "/public-key?format=pem&format=multi",
            400,
            "bad_query",
        ),
        case(
            "token: no identity",
            "GET",
            "/token",
            401,
            "unauthenticated",
        ),
        case(
            "token: unsigned bearer",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer(&unsigned),
        case(
            "token: bearer signed by another key",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer(&id_token(&idp.other, json!({}))),
        case(
            "token: bearer from another issuer",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer(&id_token(&idp.key, json!({"iss": "https://evil.test/"}))),
        case(
            "token: bearer for another audience",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer(&id_token(&idp.key, json!({"aud": "other-app"}))),
        case(
            "token: expired bearer",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer(&id_token(&idp.key, json!({"exp": now - 3600}))),
        case(
            "token: garbage bearer",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer("not-a-jwt"),
        case(
            "token: empty bearer",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .header("authorization", "Bearer "),
        case(
            "token: Basic scheme",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .header("authorization", "Basic dXNlcjpwYXNz"),
        case(
            "token: identity without the subject claim",
            "GET",
            "/token",
            401,
            "unauthenticated",
        )
        .bearer(&id_token(&idp.key, json!({"sub": null}))),
        case(
            "token: unlisted origin",
            "GET",
            "/token",
            403,
            "origin_not_allowed",
        )
        .bearer(&good)
        .header("origin", "https://evil.example"),
        case(
            "token: null origin",
            "GET",
            "/token",
            403,
            "origin_not_allowed",
        )
        .bearer(&good)
        .header("origin", "null"),
        case(
            "token: unlisted preflight",
            "OPTIONS",
            "/token",
            403,
            "origin_not_allowed",
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET"),
        case(
            "token: context key outside the allow-list",
            "POST",
            "/token",
            400,
            "context_key_not_allowed",
        )
        .bearer(&good)
        .json(r#"{"context": {"msdyn_isvip": true}}"#),
        case(
            "token: nested context value",
            "POST",
            "/token",
            400,
            "context_value_not_primitive",
        )
        .bearer(&good)
        .json(context(json!({"a": 1}))),
        case(
            "token: array context value",
            "POST",
            "/token",
            400,
            "context_value_not_primitive",
        )
        .bearer(&good)
        .json(context(json!([1]))),
        case(
            "token: null context value",
            "POST",
            "/token",
            400,
            "context_value_not_primitive",
        )
        .bearer(&good)
        .json(context(Value::Null)),
        case(
            "token: value past the limit",
            "POST",
            "/token",
            400,
            "context_value_too_long",
        )
        .bearer(&good)
        .json(context(json!("v".repeat(4001)))),
        case(
            "token: context not an object",
            "POST",
            "/token",
            400,
            "malformed_json",
        )
        .bearer(&good)
        .json(r#"{"context": "page=1"}"#),
        case(
            "token: unknown field",
            "POST",
            "/token",
            400,
            "malformed_json",
        )
        .bearer(&good)
        .json(r#"{"sub": "someone-else"}"#),
        case(
            "token: wrong content type",
            "POST",
            "/token",
            415,
            "unsupported_media_type",
        )
        .bearer(&good)
        .raw("text/plain", "{}"),
        case(
            "token: body over the cap",
            "POST",
            "/token",
            413,
            "payload_too_large",
        )
        .bearer(&good)
        .json(big.clone()),
        case(
            "issue: no IAM caller",
            "POST",
            "/issue",
            401,
            "unauthenticated",
        )
        .json(r#"{"sub": "contact-1"}"#),
        case(
            "issue: 101 variables",
            "POST",
            "/issue",
            400,
            "context_too_many_variables",
        )
        .json(json!({"sub": "c", "context": many}).to_string())
        .on_dev()
        .issue_key(),
        case(
            "issue: name past the limit",
            "POST",
            "/issue",
            400,
            "context_name_too_long",
        )
        .json(json!({"sub": "c", "context": {"n".repeat(101): 1}}).to_string())
        .on_dev()
        .issue_key(),
        case(
            "issue: empty subject",
            "POST",
            "/issue",
            400,
            "invalid_subject",
        )
        .json(r#"{"sub": ""}"#)
        .on_dev()
        .issue_key(),
        case(
            "issue: control characters in the subject",
            "POST",
            "/issue",
            400,
            "invalid_subject",
        )
        .json(r#"{"sub": "a\u0000b"}"#)
        .on_dev()
        .issue_key(),
        case(
            "sign-in: reserved claim",
            "POST",
            "/dev/sign-in",
            400,
            "reserved_claim",
        )
        .json(r#"{"sub": "c", "claims": {"iss": "me"}}"#)
        .on_dev(),
        case(
            "sign-in: missing sub",
            "POST",
            "/dev/sign-in",
            400,
            "malformed_json",
        )
        .json(r#"{"claims": {}}"#)
        .on_dev(),
        case(
            "dev issue: no issue key",
            "POST",
            "/issue",
            401,
            "unauthenticated",
        )
        .json(r#"{"sub": "contact-1"}"#)
        .on_dev(),
        case(
            "dev issue: wrong issue key",
            "POST",
            "/issue",
            403,
            "caller_not_allowed",
        )
        .json(r#"{"sub": "contact-1"}"#)
        .on_dev()
        .header("x-chat-auth-issue-key", "guessed-guessed-guessed-guessed"),
        case(
            "dev: a foreign Host (DNS rebinding, a tunnel)",
            "GET",
            "/public-key",
            403,
            "host_not_allowed",
        )
        .header("host", "rebind.evil.example:8080")
        .on_dev(),
        case(
            "dev: a foreign Host on sign-in",
            "POST",
            "/dev/sign-in",
            403,
            "host_not_allowed",
        )
        .json(r#"{"sub": "contact-1"}"#)
        .header("host", "127.0.0.1.evil.example")
        .on_dev(),
        case(
            "headers past 16 KiB",
            "GET",
            "/public-key",
            431,
            "headers_too_large",
        )
        .header("x-padding", "p".repeat(17 * 1024)),
        (0..120).fold(
            case(
                "120 header fields",
                "GET",
                "/public-key",
                431,
                "headers_too_large",
            ),
            |c, i| c.header("x-repeat", format!("{i}")),
        ),
    ];
    assert!(cases.len() >= 30, "{} cases", cases.len());

    let http = client();
    for c in &cases {
        let server = if c.dev { &dev } else { &service };
        let mut request = http.request(c.method.parse().unwrap(), server.url(&c.path));
        for (name, value) in &c.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &c.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        assert!(status < 500, "{}: {status} {text}", c.name);
        assert_eq!(status, c.status, "{}: {text}", c.name);
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{}",
            c.name
        );
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: not JSON: {text}", c.name));
        assert_eq!(body["error"]["code"], c.code, "{}: {text}", c.name);
        assert!(body["error"]["message"].is_string(), "{}", c.name);
        assert!(
            !text.contains(&good) && !text.contains("PRIVATE"),
            "{}: leaks",
            c.name
        );
    }
    eprintln!(
        "hostile requests answered with a structured error: {}",
        cases.len()
    );

    // The limits are inclusive: a value of exactly 4000 characters and a 100-character name pass.
    let ok = http
        .post(service.url("/token"))
        .bearer_auth(&good)
        .header("content-type", "application/json")
        .body(context(json!("v".repeat(4000))))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = http
        .post(dev.url("/issue"))
        .header("x-chat-auth-issue-key", common::ISSUE_KEY)
        .json(&json!({"sub": "c", "context": {"n".repeat(100): 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

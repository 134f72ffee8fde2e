//! GIVEN the local server behind an upstream identity provider the test controls, WHEN every
//! route is sent malformed, oversized, forged or unexpected requests, THEN each answers a
//! structured JSON error with a stable code and the right status, and none answers 5xx.

use crate::common;

use crate::common::{client, start};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_auth_shared::claims::encode;
use chat_auth_shared::keys::{KeyTimes, SigningKey, StoredKey};
use chat_auth_shared::publish::PublicKeySet;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDP: &str = "https://idp.test/";
const AUD: &str = "chat-widget";

struct Idp {
    key: SigningKey,
    other: SigningKey,
    jwks_url: String,
    _task: tokio::task::JoinHandle<()>,
}

fn key() -> StoredKey {
    let now = chat_auth_shared::time::now();
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
        keys: vec![chat_auth_shared::publish::PublishedKey {
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
    let now = chat_auth_shared::time::now();
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
    let now = chat_auth_shared::time::now();
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

// GIVEN the real `chat-auth serve` binary as its own process (`CHAT_AUTH_BIN`, e.g. a release
// build, or the debug one the test command builds), WHEN clients connect and then send
// nothing, part of a request, or a body that never ends, or open more connections than it has
// file descriptors, THEN each wait is bounded by CHAT_AUTH_CLIENT_TIMEOUT_SECONDS, the
// connection cap keeps room for a fast client, and a slow body never takes a request's turn.

/// `chat-auth serve --dev` on a free port, with its stderr in a file; killed on drop.
struct Served {
    /// `host:port`, for raw sockets.
    addr: String,
    process: common::Serve,
    log: std::path::PathBuf,
    _data: tempfile::TempDir,
}

impl Served {
    /// Stops the server and returns what it logged.
    fn stop(&mut self) -> String {
        self.process.process.stop();
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// `GET /public-key` as a fast client makes it, given `limit`; the answer and how long it
    /// took.
    async fn fast_get(&self, limit: Duration) -> (reqwest::Result<reqwest::Response>, Duration) {
        let start = Instant::now();
        let answer = common::client()
            .get(format!("{}/public-key", self.process.base))
            .timeout(limit)
            .send()
            .await;
        (answer, start.elapsed())
    }
}

/// The `sh -c` script that lowers the open-file limit (soft and hard) and then runs the server.
const WITH_NOFILE: &str = "ulimit -n \"$NOFILE\" && exec \"$0\" \"$@\"";

/// Starts the server with `env`, under an open-file limit of `nofile` if given, and waits until
/// it answers.
async fn serve(env: &[(&str, &str)], nofile: Option<u32>) -> Served {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("stderr.log");
    let command = match nofile {
        Some(n) => {
            let mut sh = std::process::Command::new("sh");
            sh.args(["-c", WITH_NOFILE])
                .arg(common::chat_auth_bin())
                .env("NOFILE", n.to_string());
            sh
        }
        None => std::process::Command::new(common::chat_auth_bin()),
    };
    let stderr = std::fs::File::create(&log).unwrap().into();
    let process = common::serve_process_via(command, &data.path().join("ring"), env, stderr).await;
    Served {
        addr: process.base.trim_start_matches("http://").to_owned(),
        process,
        log,
        _data: data,
    }
}

/// Reads (and drops) what the server sends until it closes the connection (end of stream or
/// reset); how long that took from `since`, or `None` if it was still open after `within`.
async fn closed(stream: &mut TcpStream, since: Instant, within: Duration) -> Option<Duration> {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        while let Ok(1..) = stream.read(&mut buf).await {}
    })
    .await
    .ok()
    .map(|()| since.elapsed())
}

/// The client timeout the connection tests configure: short, so each takes seconds.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long past the client timeout a test waits for the server to act (a loaded machine).
const MARGIN: Duration = Duration::from_secs(3);

#[tokio::test]
async fn every_wait_on_a_client_is_bounded_from_accept_onwards() {
    let server = serve(&[("CHAT_AUTH_CLIENT_TIMEOUT_SECONDS", "1")], None).await;
    let connect = || TcpStream::connect(&server.addr);
    let within = CLIENT_TIMEOUT + MARGIN;

    // Sends nothing at all (the protocol sniff waited forever).
    let silent = async {
        let mut s = connect().await.unwrap();
        closed(&mut s, Instant::now(), within).await
    };
    // Stops inside the HTTP/2 preface: half of it, and a shorter part that leaves an HTTP/1
    // parser waiting for more.
    let preface = |len: usize| async move {
        let mut s = connect().await.unwrap();
        s.write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..len])
            .await
            .unwrap();
        closed(&mut s, Instant::now(), within).await
    };
    // Trickles its request head, a byte every 100 ms, never finishing.
    let slow_head = async {
        let mut s = connect().await.unwrap();
        let start = Instant::now();
        s.write_all(b"GET /public-key HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        let (mut rx, mut tx) = s.split();
        let trickle = async {
            while tx.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            std::future::pending::<()>().await
        };
        let mut buf = [0u8; 1024];
        let read = async { while let Ok(1..) = rx.read(&mut buf).await {} };
        tokio::time::timeout(within, async {
            tokio::select! {
                () = trickle => {},
                () = read => {},
            }
        })
        .await
        .ok()
        .map(|()| start.elapsed())
    };
    // Keeps a connection open after one answered request.
    let kept_alive = async {
        let mut s = connect().await.unwrap();
        s.write_all(b"GET /public-key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        closed(&mut s, Instant::now(), within).await
    };
    // Asks for large responses and never reads them: the server's write must give up.
    let not_reading = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(server.addr.parse().unwrap()).await.unwrap();
        let requests = b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(300);
        let start = Instant::now();
        // The server stops reading once its writes block; what does not fit stays unsent.
        let _ = tokio::time::timeout(Duration::from_millis(200), s.write_all(&requests)).await;
        tokio::time::sleep(CLIENT_TIMEOUT + Duration::from_millis(500)).await;
        closed(&mut s, start, within).await
    };
    let (silent, half_preface, preface_start, slow_head, kept_alive, not_reading) = tokio::join!(
        silent,
        preface(12),
        preface(9),
        slow_head,
        kept_alive,
        not_reading
    );
    eprintln!(
        "closed after: silent {silent:?}, half preface {half_preface:?}, preface start \
         {preface_start:?}, slow head {slow_head:?}, kept alive {kept_alive:?}, not reading \
         {not_reading:?}"
    );
    for (name, after) in [
        ("a connection that sends nothing", silent),
        (
            "a connection half-way through the HTTP/2 preface",
            half_preface,
        ),
        (
            "a connection 9 bytes into the HTTP/2 preface",
            preface_start,
        ),
        ("a request head sent a byte at a time", slow_head),
        ("an idle kept-alive connection", kept_alive),
        ("a client that does not read its responses", not_reading),
    ] {
        assert!(after.is_some(), "{name} was still open after {within:?}");
    }
}

#[tokio::test]
async fn slow_bodies_do_not_take_the_fast_requests_turn() {
    let server = serve(&[("CHAT_AUTH_CLIENT_TIMEOUT_SECONDS", "2")], None).await;
    // More slow clients than CHAT_AUTH_MAX_CONCURRENT_REQUESTS (256): each sends its head and
    // one byte of a 10,000-byte body.
    let mut slow = Vec::new();
    for _ in 0..260 {
        let mut s = TcpStream::connect(&server.addr).await.unwrap();
        s.write_all(
            b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 10000\r\n\r\n{",
        )
        .await
        .unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (fast, took) = server.fast_get(Duration::from_secs(5)).await;
    let fast = fast.unwrap();
    let status = fast.status();
    let text = fast.text().await.unwrap();
    eprintln!("GET /public-key beside 260 slow bodies: {status} in {took:?}");
    assert_eq!(status, 200, "{text}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The slow body itself is refused with the JSON 408 once the client timeout passes.
    let mut response = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(2) + MARGIN,
        slow[0].read_to_end(&mut response),
    )
    .await
    .expect("the slow body was answered")
    .unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(
        head.contains("content-type: application/json"),
        "{response}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
}

#[tokio::test]
async fn idle_connections_beyond_the_descriptor_limit_leave_room_for_a_fast_client() {
    // A long client timeout: it is the connection cap, not a timeout, that must make room.
    let mut server = serve(&[("CHAT_AUTH_CLIENT_TIMEOUT_SECONDS", "60")], Some(256)).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(&server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (fast, took) = server.fast_get(Duration::from_secs(3)).await;
    let status = fast.as_ref().map(|r| r.status());
    eprintln!(
        "GET /public-key beside 300 idle connections under ulimit -n 256: {status:?} in {took:?}"
    );
    drop(idle);
    let log = server.stop();
    let emfile = log.matches("Too many open files").count();
    assert_eq!(status.ok().map(|s| s.as_u16()), Some(200), "{log}");
    assert_eq!(emfile, 0, "the server ran out of descriptors:\n{log}");
}

#[tokio::test]
async fn a_connection_cap_the_descriptor_limit_cannot_hold_stops_the_start() {
    let data = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("sh")
        .args(["-c", WITH_NOFILE])
        .arg(common::chat_auth_bin())
        .env("NOFILE", "256")
        .arg("--data-dir")
        .arg(data.path().join("ring"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("CHAT_AUTH_MAX_CONNECTIONS", "1000")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the server started anyway")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("CHAT_AUTH_MAX_CONNECTIONS") && stderr.contains("256"),
        "{stderr}"
    );
}

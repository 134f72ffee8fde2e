//! Real-browser tests: the provider script and the widget stand-in in headless Chromium.
//!
//! Debian's `chromium` and `chromium-driver` (installed by `scripts/install-browser.sh`, which
//! the README test command runs) are driven over WebDriver by fantoccini. Every test starts its
//! own ChromeDriver on a free port with a fresh profile, and kills its process group at the end,
//! so nothing outlives a test, failed or not.
//!
//! Pages are served by a small "shop" server spawned here, on another origin than the token
//! service (as on a customer's site). Its `/api/token` answers like a token endpoint, or slowly,
//! or with garbage, and counts requests. The token service itself is the in-process local server
//! (`common::start`), in development mode.
//!
//! What the page sees is recorded by a prelude script: every `lcw:*` and `chat-auth:*` window
//! event in `__events`, every `console.warn` in `__warns` and `console.error` in `__errors`;
//! `Date.now` is shifted by `__shift` milliseconds so that token expiry can be tested without
//! waiting (the tests of Microsoft's widget code leave it alone and wait in real time).
//!
//! Two widgets take the token: Microsoft's own token handling (`FacadeChatSDK` and
//! `authHelper` from `@microsoft/omnichannel-chat-widget`, bundled by
//! `scripts/install-widget.sh` and served by the shop as `/ms-widget.js`), and, for the LCW v1
//! script API whose code is not published, the stand-in `/dev/lcw-standin.js`. Microsoft's
//! headless chat SDK (`/ms-chat-sdk.js`) takes it as `getAuthToken` in [`chat_sdk`], against
//! a stand-in for Omnichannel's live chat endpoints that the shop serves under `/oc/`.

mod chat_sdk;

use crate::common;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The widget's documented bound for one token request.
const WIDGET_BOUND_MS: f64 = 10_000.0;
/// The sample token of Microsoft's "Send authentication token" page: HS256, no `exp`.
const MICROSOFT_SAMPLE_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
/// The contact every test signs in as.
const SUB: &str = "3f2c8e4a-6b1d-4c9e-9a7f-0d5e8b2a1c44";
/// The next customer at the same computer.
const OTHER_SUB: &str = "b9e0c7d2-5a41-4f3e-8c6b-2d7f1e9a0b35";

// ---------------------------------------------------------------------------------------------
// The browser

/// ChromeDriver + headless Chromium with a fresh profile; the whole process group is killed on
/// drop.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: run scripts/install-browser.sh (the README test command scripts/test.sh does)"
            );
        }
        let profile = tempfile::tempdir().unwrap();
        let mut last_error = String::new();
        // A free port can be taken by someone else before ChromeDriver binds it: try again.
        for _ in 0..3 {
            let port = common::free_port();
            let driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that drop can kill Chromium's processes with it.
                .process_group(0)
                .spawn()
                .expect("start chromedriver");
            let mut guard = DriverGuard(Some(driver));
            let url = format!("http://127.0.0.1:{port}");
            if let Err(e) = wait_for_driver(&url, guard.0.as_mut().unwrap()).await {
                last_error = e;
                continue;
            }
            let profile_arg = format!("--user-data-dir={}", profile.path().display());
            let capabilities = json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--no-first-run", "--disable-sync", "--disable-extensions",
                        "--disable-default-apps", "--window-size=1280,1000", "--lang=en-US",
                        profile_arg,
                    ],
                },
                "timeouts": { "script": 30_000, "pageLoad": 30_000, "implicit": 0 },
            });
            let Value::Object(capabilities) = capabilities else {
                unreachable!()
            };
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver: guard.0.take().unwrap(),
                        _profile: profile,
                    };
                }
                Err(e) => last_error = format!("new session: {e}"),
            }
        }
        panic!("could not start headless Chromium through ChromeDriver: {last_error}");
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` and waits for it to call `done(value)` (the last argument).
    async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        let script = format!("var done = arguments[arguments.length - 1];\n{script}");
        self.client
            .execute_async(&script, args)
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// Polls the expression `expr` until it is truthy; returns its value.
    async fn wait_for(&self, expr: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(&format!("return ({expr}) || null;"), vec![]).await;
            if !v.is_null() && v != json!(false) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn events(&self, name: &str) -> Vec<Value> {
        let v = self
            .js(
                "var name = arguments[0];
                 return __events.filter(function (e) { return e.name === name; })
                   .map(function (e) { return e.detail; });",
                vec![json!(name)],
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    async fn warns(&self) -> Vec<String> {
        let v = self.js("return __warns;", vec![]).await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    /// Forgets the recorded events and console messages.
    async fn clear_records(&self) {
        self.js("__events.length = 0; __warns.length = 0;", vec![])
            .await;
    }

    /// `Microsoft.Omnichannel.LiveChatWidget.SDK.startChat()` on the stand-in, timed in the
    /// page: `{ok, token?, errorCode?, ms}`.
    async fn start_chat(&self) -> Value {
        self.js_async(
            "var t0 = performance.now();
             Microsoft.Omnichannel.LiveChatWidget.SDK.startChat().then(function (r) {
               r.ms = performance.now() - t0; done(r);
             }, function (e) { done({ rejected: String(e) }); });",
            vec![],
        )
        .await
    }

    /// Calls `method` on Microsoft's `FacadeChatSDK` (`window.__w`), which first makes sure it
    /// holds an unexpired token, asking the client function through the loader if not. Returns
    /// `{ok, error?, calls: [loader calls], sent: [{call, token}], widgetErrors, errors}`.
    async fn facade(&self, method: &str) -> Value {
        self.js_async(
            "var w = window.__w;
             // After a moment: the widget's broadcast channel delivers asynchronously.
             var report = function (r) { setTimeout(function () {
               r.calls = w.calls; r.sent = w.chatSDK.sent; r.widgetErrors = msWidget.widgetErrors;
               r.errors = __errors; done(JSON.parse(JSON.stringify(r)));
             }, 200); };
             w.facade[arguments[0]]().then(function () { report({ ok: true }); },
               function (e) { report({ ok: false, error: String(e && e.message) }); });",
            vec![json!(method)],
        )
        .await
    }

    /// Calls the client function named `name` the way the widget does, with an optional first
    /// argument (`{isMidAuthEnabled}`), timed in the page: `{token, ms, calls}`.
    async fn call_client_function(&self, name: &str, first: Option<Value>) -> Value {
        self.js_async(
            "var fn = arguments[0].split('.').reduce(function (o, k) { return o && o[k]; }, window);
             var t0 = performance.now(), calls = 0;
             var cb = function (token) {
               calls++;
               // Report after a moment, so that a second (wrong) callback would be counted.
               setTimeout(function () { done({ token: token, ms: performance.now() - t0, calls: calls }); }, 50);
             };
             if (arguments[1] != null) fn(arguments[1], cb); else fn(cb);",
            vec![json!(name), first.unwrap_or(Value::Null)],
        )
        .await
    }

    /// Points the provider at `url` for tokens, with a fixed identity token.
    async fn use_token_url(&self, url: &str) {
        self.js(
            "chatAuth.configure({ tokenUrl: arguments[0], identityToken: function () { return 'id'; } });",
            vec![json!(url)],
        )
        .await;
    }

    /// Hands the page an identity getter that answers `id_token` (asynchronously if `async_`).
    async fn configure_identity(&self, id_token: &str, async_: bool) {
        self.js(
            "var id = arguments[0], later = arguments[1];
             chatAuth.configure({ identityToken: function () { return later ? Promise.resolve(id) : id; } });",
            vec![json!(id_token), json!(async_)],
        )
        .await;
    }

    /// A PNG of the whole page (the window is grown to fit it first) in target/artifacts/.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let size = self
            .js(
                "return [window.outerWidth, window.outerHeight - window.innerHeight
                         + document.documentElement.scrollHeight];",
                vec![],
            )
            .await;
        let (w, h) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
        self.client
            .set_window_size(w as u32, h.min(4000) as u32)
            .await
            .expect("resize the window");
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = target_dir().join("artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills a ChromeDriver that never became a [`Browser`].
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_group(child);
        }
    }
}

/// ChromeDriver, the Chromium it started and Chromium's helpers share one process group.
fn kill_group(child: &mut Child) {
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
    let _ = child.wait();
}

async fn wait_for_driver(url: &str, driver: &mut Child) -> Result<(), String> {
    let client = common::client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited at start: {status}"));
        }
        if let Ok(r) = client.get(format!("{url}/status")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("chromedriver did not become ready within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("target"))
}

// ---------------------------------------------------------------------------------------------
// The shop: the customer's site, on its own origin

#[derive(Clone, Default)]
struct ShopState {
    pages: Arc<Mutex<HashMap<String, String>>>,
    token_requests: Arc<AtomicUsize>,
    /// What the chat SDK sent to the Omnichannel stand-in, in order.
    omnichannel: Arc<Mutex<Vec<Value>>>,
}

struct Shop {
    addr: std::net::SocketAddr,
    state: ShopState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shop {
    async fn start() -> Shop {
        let state = ShopState::default();
        let app = Router::new()
            .route("/p/{name}", get(shop_page))
            .route("/api/token", get(shop_token))
            .route("/ms-widget.js", get(ms_widget))
            .route("/ms-chat-sdk.js", get(ms_chat_sdk))
            .route("/oc/{*endpoint}", any(chat_sdk::omnichannel))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Shop { addr, state, task }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Publishes a page made of `parts` (after the recording prelude) and returns its URL.
    fn page(&self, name: &str, parts: &[Part]) -> String {
        let mut html = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Contoso shop</title>\n",
        );
        html.push_str(&format!("<script>{PRELUDE}</script>\n"));
        for part in parts {
            match part {
                Part::Src(src) => html.push_str(&format!("<script src=\"{src}\"></script>\n")),
                Part::Inline(js) => html.push_str(&format!("<script>{js}</script>\n")),
                Part::Html(tag) => html.push_str(&format!("{tag}\n")),
            }
        }
        html.push_str("</head><body><h1>Contoso shop</h1></body></html>\n");
        self.state
            .pages
            .lock()
            .unwrap()
            .insert(name.to_owned(), html);
        self.url(&format!("/p/{name}"))
    }
}

enum Part {
    Src(String),
    Inline(&'static str),
    /// Raw HTML, e.g. a `<script>` tag with `integrity`.
    Html(String),
}

/// Records what the page sees; lets a test move the page's clock.
const PRELUDE: &str = r#"
window.__events = []; window.__warns = []; window.__errors = [];
["lcw:ready", "lcw:error", "lcw:chatStarted", "chat-auth:error", "chat-auth:token"].forEach(function (n) {
  addEventListener(n, function (e) { __events.push({ name: n, detail: e.detail || null }); });
});
(function () {
  var warn = console.warn;
  console.warn = function () { __warns.push([].join.call(arguments, " ")); return warn.apply(console, arguments); };
  var error = console.error;
  console.error = function () { __errors.push([].join.call(arguments, " ")); return error.apply(console, arguments); };
  var now = Date.now;
  window.__shift = 0;
  Date.now = function () { return now() + __shift; };
})();
"#;

async fn shop_page(State(state): State<ShopState>, UrlPath(name): UrlPath<String>) -> Response {
    match state.pages.lock().unwrap().get(&name) {
        Some(html) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Microsoft's widget code, as `scripts/install-widget.sh` bundled it.
async fn ms_widget() -> Response {
    bundle("ms-widget.js")
}

/// Microsoft's headless chat SDK, as `scripts/install-widget.sh` bundled it.
async fn ms_chat_sdk() -> Response {
    bundle("ms-chat-sdk.js")
}

fn bundle(name: &str) -> Response {
    let path = target_dir().join("widget").join(name);
    match std::fs::read(&path) {
        Ok(js) => ([(header::CONTENT_TYPE, "application/javascript")], js).into_response(),
        Err(e) => panic!(
            "{}: {e}: run scripts/install-widget.sh (the README test command scripts/test.sh does)",
            path.display()
        ),
    }
}

/// A token endpoint with knobs: `delay_ms` (only for the bearer identity `delay_for`, if
/// given), `ttl` (seconds, default 900), and `kind` = json (default) | raw | html | not_jwt |
/// expired | status500. Counts every request; its tokens carry the bearer identity they were
/// asked for as `idt`.
async fn shop_token(
    State(state): State<ShopState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let n = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let identity = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let delayed = q.get("delay_for").is_none_or(|id| id == identity);
    if let Some(ms) = q.get("delay_ms").and_then(|v| v.parse().ok())
        && delayed
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let shaped = |offset, ttl| shaped_jwt(n, identity, offset, ttl);
    let json = |body: Value| {
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body.to_string(),
        )
            .into_response()
    };
    let ttl = q.get("ttl").and_then(|v| v.parse().ok()).unwrap_or(900);
    match q.get("kind").map(String::as_str).unwrap_or("json") {
        "raw" => ([(header::CONTENT_TYPE, "application/jwt")], shaped(0, 900)).into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Service temporarily unavailable</body></html>",
        )
            .into_response(),
        "not_jwt" => json(json!({"token": "this-is-not-a-jwt", "expires_at": 0})),
        "expired" => json(json!({"token": shaped(-1000, 900)})),
        "status500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        _ => json(json!({"token": shaped(0, ttl), "kid": "shop"})),
    }
}

/// A JWT-shaped token (RS256 header, iss/sub/iat/exp; the signature is not real) whose `jti`
/// numbers the request that produced it and whose `idt` is the identity it was asked for.
/// `iat` = now + `offset`, `exp` = `iat` + `ttl`.
fn shaped_jwt(n: usize, identity: &str, offset: i64, ttl: i64) -> String {
    let iat = common::now() + offset;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "shop"});
    let claims = json!({"iss": "shop", "sub": SUB, "iat": iat, "exp": iat + ttl,
                        "jti": n.to_string(), "idt": identity});
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2lnbmF0dXJl", enc(&header), enc(&claims))
}

/// The decoded payload of a JWT (not verified).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn jti(token: &str) -> String {
    claims(token)["jti"].as_str().unwrap_or_default().to_owned()
}

fn exp(token: &str) -> i64 {
    claims(token)["exp"].as_i64().expect("exp")
}

// ---------------------------------------------------------------------------------------------
// The token service

/// The shop, a token service that admits the shop's origin (plus `vars`), and a browser.
struct Fixture {
    shop: Shop,
    service: common::Server,
    browser: Browser,
}

impl Fixture {
    async fn start(vars: &[(&str, &str)]) -> Fixture {
        let shop = Shop::start().await;
        let origin = shop.origin();
        let mut all = vec![("CHAT_AUTH_ALLOWED_ORIGINS", origin.as_str())];
        all.extend_from_slice(vars);
        let service = common::start(&all).await;
        let browser = Browser::start().await;
        Fixture {
            shop,
            service,
            browser,
        }
    }

    fn provider(&self) -> Part {
        Part::Src(self.service.url("/provider.js"))
    }

    fn standin(&self) -> Part {
        Part::Src(self.service.url("/dev/lcw-standin.js"))
    }

    /// Opens a shop page with the provider script and the widget stand-in (in that order),
    /// and waits for `lcw:ready` to have wired the provider.
    async fn open_widget_page(&self, name: &str) {
        let url = self.shop.page(name, &[self.provider(), self.standin()]);
        self.browser.goto(&url).await;
        self.browser
            .wait_for(
                "lcwStandin.registrations > 0",
                "setAuthTokenProvider after lcw:ready",
            )
            .await;
    }

    /// Opens a shop page with the provider script and Microsoft's widget code, and makes
    /// `window.__w` one widget whose admin-configured client function is `client_function`.
    async fn open_ms_widget_page(&self, name: &str, client_function: &str) {
        let url = self.shop.page(
            name,
            &[self.provider(), Part::Src(self.shop.url("/ms-widget.js"))],
        );
        self.browser.goto(&url).await;
        self.browser
            .wait_for("window.msWidget && window.chatAuth", "the widget code")
            .await;
        self.browser
            .js(
                "window.__w = msWidget.widget(arguments[0]);",
                vec![json!(client_function)],
            )
            .await;
    }

    async fn sign_in(&self) -> String {
        common::sign_in(
            &self.service,
            SUB,
            json!({"cart_value": "120.50", "vip": true, "region": "emea"}),
        )
        .await
    }

    async fn validate(&self, token: &str) -> Value {
        common::validate(&self.service, token).await
    }
}

/// A loopback URL where nothing listens.
fn closed_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", common::free_port())
}

fn ms(v: &Value) -> f64 {
    v["ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no timing in {v}"))
}

/// The failure contract: the chat did not start, the widget saw no token (code 3) within the
/// bound, the page got one `chat-auth:error` with `reason`, and one console message.
async fn assert_failed_with(b: &Browser, chat: &Value, reason: &str) {
    assert_eq!(chat["ok"], false, "{chat}");
    assert_eq!(chat["errorCode"], 3, "the widget must see no token: {chat}");
    assert!(ms(chat) < WIDGET_BOUND_MS, "answered too late: {chat}");
    let errors = b.events("chat-auth:error").await;
    assert_eq!(
        errors.len(),
        1,
        "one chat-auth:error per failure: {errors:?}"
    );
    assert_eq!(errors[0]["reason"], reason, "{errors:?}");
    let lcw = b.events("lcw:error").await;
    assert_eq!(
        lcw,
        vec![
            json!({"errorCode": 3, "errorDescription": "Auth token provider didn't provide any token"})
        ],
        "lcw:error carries the documented errorCode and errorDescription"
    );
    assert!(b.events("lcw:chatStarted").await.is_empty());
    let warns = b.warns().await;
    assert_eq!(warns.len(), 1, "one console message per failure: {warns:?}");
    assert!(
        warns[0].starts_with("[chat-auth]") && warns[0].contains(reason),
        "{warns:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lcw_v1_ready_wires_the_provider_and_its_token_validates() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("v1").await;

    // The provider loaded first, when there was no SDK yet: only lcw:ready can have wired it,
    // and the stand-in accepts functions only.
    let wired = b
        .js(
            "return { ready: __events.filter(function (e) { return e.name === 'lcw:ready'; }).length,
                      registrations: lcwStandin.registrations };",
            vec![],
        )
        .await;
    assert_eq!(wired["ready"], 1, "{wired}");
    assert!(wired["registrations"].as_u64().unwrap() >= 1, "{wired}");
    // The stand-in refuses anything else, as the real SDK does.
    for bad in [json!("auth.getAuthenticationToken"), Value::Null, json!({})] {
        let r = b
            .js(
                "try { Microsoft.Omnichannel.LiveChatWidget.SDK.setAuthTokenProvider(arguments[0]); return 'accepted'; }
                 catch (e) { return 'threw: ' + e.message; }",
                vec![bad.clone()],
            )
            .await;
        assert_eq!(r, "threw: authTokenProvider is not a function", "{bad}");
    }

    let id = fx.sign_in().await;
    b.configure_identity(&id, false).await;
    let chat = b.start_chat().await;
    assert_eq!(chat["ok"], true, "{chat}");
    assert!(ms(&chat) < WIDGET_BOUND_MS, "{chat}");
    let token = chat["token"].as_str().unwrap();

    let verdict = fx.validate(token).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], SUB);
    assert_eq!(verdict["context"]["msdyn_cartvalue"], "120.50", "{verdict}");
    assert_eq!(b.events("lcw:chatStarted").await.len(), 1);
    assert_eq!(b.events("chat-auth:token").await.len(), 1);
    assert!(b.events("chat-auth:error").await.is_empty());
    assert!(b.warns().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lcw_v1_provider_loaded_after_the_widget_wires_at_once() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    // The provider comes in the way `chat-auth snippet` prints it: with its SRI hash, which
    // the browser checks (the script is served with Access-Control-Allow-Origin: *).
    let config =
        <chat_auth_shared::config::BrowserConfig as chat_auth_shared::Section>::from_lookup(|_| {
            None
        })
        .unwrap();
    let integrity = chat_auth_shared::provider::ProviderScript::render(&config).integrity;
    let tag = |integrity: &str| {
        format!(
            r#"<script src="{}" integrity="{integrity}" crossorigin="anonymous"></script>"#,
            fx.service.url("/provider.js")
        )
    };
    // A tampered hash blocks the script: nothing is defined, nothing is registered.
    let wrong = format!("sha384-{}", "A".repeat(64));
    let tampered = fx
        .shop
        .page("tampered", &[fx.standin(), Part::Html(tag(&wrong))]);
    b.goto(&tampered).await;
    b.wait_for(
        "__events.some(function (e) { return e.name === 'lcw:ready'; })",
        "lcw:ready",
    )
    .await;
    let state = b
        .js(
            "return { chatAuth: typeof window.chatAuth, registrations: lcwStandin.registrations };",
            vec![],
        )
        .await;
    assert_eq!(state, json!({"chatAuth": "undefined", "registrations": 0}));

    let url = fx
        .shop
        .page("late", &[fx.standin(), Part::Html(tag(&integrity))]);
    b.goto(&url).await;
    b.wait_for("lcwStandin.registrations > 0", "setAuthTokenProvider")
        .await;

    let id = fx.sign_in().await;
    b.configure_identity(&id, true).await;
    let chat = b.start_chat().await;
    assert_eq!(chat["ok"], true, "{chat}");
    assert_eq!(
        fx.validate(chat["token"].as_str().unwrap()).await["active"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_named_client_function_answers_a_valid_token_within_10_s() {
    let name = "contoso.chat.getAuthToken";
    let fx = Fixture::start(&[("CHAT_AUTH_CLIENT_FUNCTION", name)]).await;
    let b = &fx.browser;
    let url = fx.shop.page(
        "v2",
        &[
            Part::Inline("window.contoso = { brand: 'Contoso' };"),
            fx.provider(),
        ],
    );
    b.goto(&url).await;
    let shape = b
        .js(
            "return { brand: contoso.brand, fn: typeof contoso.chat.getAuthToken, auth: typeof window.auth };",
            vec![],
        )
        .await;
    assert_eq!(
        shape,
        json!({"brand": "Contoso", "fn": "function", "auth": "undefined"}),
        "the configured name is defined and the existing object kept"
    );

    let id = fx.sign_in().await;
    b.configure_identity(&id, true).await;
    let first = b.call_client_function(name, None).await;
    assert!(ms(&first) < WIDGET_BOUND_MS, "{first}");
    assert_eq!(first["calls"], 1, "the callback is called exactly once");
    let token = first["token"].as_str().expect("a token").to_owned();
    let verdict = fx.validate(&token).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], SUB);

    // Newer widgets pass {isMidAuthEnabled} first; the token (cached now) comes back the same.
    let mid = b
        .call_client_function(name, Some(json!({"isMidAuthEnabled": true})))
        .await;
    assert_eq!(mid["token"], token.as_str(), "{mid}");
    assert_eq!(mid["calls"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_the_widget_gets_null_and_the_page_an_error_event() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("anonymous").await;

    // No getter: the page's cookies are sent, there are none, the service says 401.
    let chat = b.start_chat().await;
    assert_failed_with(b, &chat, "unauthenticated").await;
    assert_eq!(b.events("chat-auth:error").await[0]["status"], 401);

    // A getter that has nothing (signed out), one that throws, one that rejects: no request.
    for getter in [
        "function () { return null; }",
        "function () { throw new Error('no session'); }",
        "function () { return Promise.reject(new Error('no session')); }",
    ] {
        b.clear_records().await;
        b.js(
            &format!("chatAuth.configure({{ identityToken: {getter} }});"),
            vec![],
        )
        .await;
        let chat = b.start_chat().await;
        assert_failed_with(b, &chat, "no_identity").await;
    }

    // Mid-conversation sign-in: null means "continue unauthenticated"; the page is told.
    b.clear_records().await;
    b.js("chatAuth.reset();", vec![]).await;
    let mid = b
        .call_client_function(
            "auth.getAuthenticationToken",
            Some(json!({"isMidAuthEnabled": true})),
        )
        .await;
    assert_eq!(mid["token"], Value::Null, "{mid}");
    assert_eq!(mid["calls"], 1);
    let errors = b.events("chat-auth:error").await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["midAuth"], true, "{errors:?}");
}

/// An expired or forged identity must read as "unauthenticated" (so the page can send the user
/// to sign in), not as a network failure: the local server checks identity inside the CORS
/// layer, so its 401 carries the headers the browser needs to let the page read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_identity_reads_as_unauthenticated() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("refused").await;
    b.configure_identity("not.a.valid-identity", false).await;
    let chat = b.start_chat().await;
    assert_failed_with(b, &chat, "unauthenticated").await;
    assert_eq!(b.events("chat-auth:error").await[0]["status"], 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_is_down_gives_null_at_once() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("down").await;
    b.use_token_url(&closed_url("/token")).await;
    let chat = b.start_chat().await;
    assert_failed_with(b, &chat, "network").await;
    assert!(
        ms(&chat) < 5_000.0,
        "a refused connection is not a timeout: {chat}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_token_endpoint_gives_null_never_a_bad_token() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("garbage").await;
    for (kind, reason) in [
        ("html", "invalid_response"),
        ("not_jwt", "invalid_response"),
        ("expired", "invalid_response"),
        ("status500", "http_500"),
    ] {
        b.clear_records().await;
        b.use_token_url(&fx.shop.url(&format!("/api/token?kind={kind}")))
            .await;
        let chat = b.start_chat().await;
        assert_failed_with(b, &chat, reason).await;
    }
    // A failure is not cached: the next attempt goes out again, and a raw-JWT body (what
    // Microsoft's sample endpoint returns) is accepted as well as {"token"}.
    let before = fx.shop.token_requests();
    b.clear_records().await;
    b.use_token_url(&fx.shop.url("/api/token?kind=raw")).await;
    let chat = b.start_chat().await;
    assert_eq!(chat["ok"], true, "{chat}");
    assert_eq!(fx.shop.token_requests(), before + 1);

    // The stand-in applies the documented codes to whatever a provider hands it: an invalid
    // token is 4, a provider that throws is 2. It is no stricter than Microsoft's widget code:
    // Microsoft's own documented sample token (HS256, no exp) starts a chat.
    let codes = b
        .js_async(
            "var sdk = Microsoft.Omnichannel.LiveChatWidget.SDK, out = {}, sample = arguments[0];
             var run = function (provider) { sdk.setAuthTokenProvider(provider); return sdk.startChat(); };
             run(function (cb) { cb('garbage'); }).then(function (r) {
               out.garbage = r.errorCode;
               return run(function () { throw new Error('x'); });
             }).then(function (r) {
               out.threw = r.errorCode;
               return run(function (cb) { cb(sample); });
             }).then(function (r) {
               out.sample = r.ok;
               out.details = __events.filter(function (e) { return e.name === 'lcw:error'; })
                 .slice(-2).map(function (e) { return e.detail; });
               done(out);
             });",
            vec![json!(MICROSOFT_SAMPLE_TOKEN)],
        )
        .await;
    assert_eq!(
        codes,
        json!({"garbage": 4, "threw": 2, "sample": true, "details": [
            {"errorCode": 4, "errorDescription": "Auth token provider provided invalid token"},
            {"errorCode": 2, "errorDescription": "Auth token provider method execution failed"},
        ]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_slower_than_the_widget_allows_gives_null_within_10_s() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("slow").await;
    // Two attempts at once (configure() starts a new one): an endpoint that answers after
    // 20 s, and an identity getter that never settles. Both must end before the widget's 10 s.
    let r = b
        .js_async(
            "var t0 = performance.now(), out = {};
             var settle = function (k) { return function (t) {
               out[k] = { token: t, ms: performance.now() - t0 };
               if (out.slow && out.hung) done(out);
             }; };
             chatAuth.configure({ tokenUrl: arguments[0], identityToken: function () { return 'id'; } });
             auth.getAuthenticationToken(settle('slow'));
             chatAuth.configure({ identityToken: function () { return new Promise(function () {}); } });
             auth.getAuthenticationToken(settle('hung'));",
            vec![json!(fx.shop.url("/api/token?delay_ms=20000"))],
        )
        .await;
    for k in ["slow", "hung"] {
        assert_eq!(r[k]["token"], Value::Null, "{r}");
        let t = ms(&r[k]);
        // The provider gives up at 8 s: well before the widget's 10 s, never before ~8 s.
        assert!((7_500.0..9_500.0).contains(&t), "{k}: {t} ms");
    }
    let reasons: Vec<Value> = b
        .events("chat-auth:error")
        .await
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons, vec![json!("timeout"), json!("timeout")]);
    assert_eq!(
        fx.shop.token_requests(),
        1,
        "the hung getter never sent a request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_request_and_the_token_is_reused_until_expiry() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_widget_page("cache").await;
    b.use_token_url(&fx.shop.url("/api/token?delay_ms=300"))
        .await;

    // Three concurrent callers: the widget's provider, the client function, chatAuth.getToken.
    let three = b
        .js_async(
            "var got = [];
             var add = function (t) { got.push(t); if (got.length == 3) done(got); };
             chatAuth.provider(add);
             auth.getAuthenticationToken(add);
             chatAuth.getToken().then(add);",
            vec![],
        )
        .await;
    let three: Vec<&str> = three
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().expect("a token"))
        .collect();
    assert_eq!(fx.shop.token_requests(), 1, "one request for three callers");
    assert!(three.iter().all(|t| *t == three[0]));
    assert_eq!(jti(three[0]), "1");

    // A widget callback that throws is contained: no error escapes, the state stays sound.
    let contained = b
        .js_async(
            "var errors = 0;
             window.addEventListener('error', function () { errors++; });
             window.addEventListener('unhandledrejection', function () { errors++; });
             auth.getAuthenticationToken(function () { throw new Error('widget bug'); });
             setTimeout(function () {
               chatAuth.getToken().then(function (t) { done({ errors: errors, token: t }); });
             }, 100);",
            vec![],
        )
        .await;
    assert_eq!(contained["errors"], 0, "{contained}");
    assert_eq!(contained["token"], three[0]);

    // Reused while fresh, also by the widget: no new request.
    let chat = b.start_chat().await;
    assert_eq!(chat["ok"], true, "{chat}");
    assert_eq!(chat["token"], three[0]);
    b.js("__shift = 600 * 1000;", vec![]).await; // 10 min later (the token lives 15)
    let later = b
        .call_client_function("auth.getAuthenticationToken", None)
        .await;
    assert_eq!(later["token"], three[0]);
    assert_eq!(fx.shop.token_requests(), 1);

    // Within a minute of exp it is fetched again.
    b.js("__shift = 850 * 1000;", vec![]).await;
    let renewed = b
        .call_client_function("auth.getAuthenticationToken", None)
        .await;
    assert_eq!(fx.shop.token_requests(), 2);
    assert_eq!(jti(renewed["token"].as_str().unwrap()), "2");

    // A new identity never gets the previous one's token.
    b.js("__shift = 0;", vec![]).await;
    b.configure_identity("another-id", false).await;
    let other = b
        .call_client_function("auth.getAuthenticationToken", None)
        .await;
    assert_eq!(fx.shop.token_requests(), 3);
    assert_eq!(jti(other["token"].as_str().unwrap()), "3");
    assert!(b.events("chat-auth:error").await.is_empty());
}

/// The shared computer (issue 23): in a single-page app user A signs out and user B signs in
/// without a reload. The page's getter follows the page's own sign-in state, asynchronously
/// as identity libraries do, and the provider asks it on every call: after the sign-out the
/// widget gets `null`, not A's token, and then B gets a token whose `sub` is B's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sign_out_the_next_user_never_gets_the_previous_users_token() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    let url = fx.shop.page("shared-computer", &[fx.provider()]);
    b.goto(&url).await;
    b.wait_for("window.chatAuth", "the provider script").await;
    b.js(
        "window.__id = null;
         chatAuth.configure({ identityToken: function () {
           return new Promise(function (r) { setTimeout(function () { r(window.__id); }, 10); });
         } });",
        vec![],
    )
    .await;
    let id_a = common::sign_in(&fx.service, SUB, json!({})).await;
    let id_b = common::sign_in(&fx.service, OTHER_SUB, json!({})).await;

    let a = client_function_as(b, json!(id_a)).await;
    let token_a = a["token"].as_str().expect("A's token").to_owned();
    assert_eq!(fx.validate(&token_a).await["sub"], SUB);

    let signed_out = client_function_as(b, Value::Null).await;
    assert_eq!(
        signed_out["token"],
        Value::Null,
        "A signed out, the widget still got A's token: {signed_out}"
    );
    assert_eq!(signed_out["calls"], 1);
    let errors = b.events("chat-auth:error").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["reason"], "no_identity");

    let signed_in_b = client_function_as(b, json!(id_b)).await;
    let token_b = signed_in_b["token"].as_str().expect("B's token").to_owned();
    let verdict = fx.validate(&token_b).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], OTHER_SUB, "B chats as A: {verdict}");
    // B's own token is still reused for B.
    let again = client_function_as(b, json!(id_b)).await;
    assert_eq!(again["token"], token_b.as_str());
    assert_eq!(b.events("chat-auth:token").await.len(), 2, "one fetch each");
}

/// The interleavings (issue 23): A's request is still in flight when the page's getter already
/// answers B. B's three calls must not join it: they share one request of their own. A's
/// answer, which comes last, goes to A's call only and does not replace B's cached token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_for_one_user_is_never_handed_to_the_next() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    let url = fx.shop.page("interleaved", &[fx.provider()]);
    b.goto(&url).await;
    b.wait_for("window.chatAuth", "the provider script").await;
    let got = b
        .js_async(
            "chatAuth.configure({ tokenUrl: arguments[0], identityToken: function () { return window.__id; } });
             var out = {}, n = 0;
             var got = function (k) { return function (t) { out[k] = t; if (++n == 4) done(out); }; };
             window.__id = 'id-A';
             auth.getAuthenticationToken(got('a'));
             setTimeout(function () {
               window.__id = 'id-B'; // A signed out and B signed in while A's request is out
               auth.getAuthenticationToken(got('b1'));
               chatAuth.provider(got('b2'));
               chatAuth.getToken().then(got('b3'));
             }, 200);",
            vec![json!(
                fx.shop
                    .url("/api/token?delay_ms=1500&delay_for=id-A")
            )],
        )
        .await;
    let asked_for = |k: &str| {
        let token = got[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: no token in {got}"));
        claims(token)["idt"].clone()
    };
    assert_eq!(asked_for("a"), "id-A");
    for k in ["b1", "b2", "b3"] {
        assert_eq!(asked_for(k), "id-B", "{k} got A's token: {got}");
        assert_eq!(got[k], got["b1"], "B's calls share one request");
    }
    assert_eq!(fx.shop.token_requests(), 2, "one request per identity");

    // A's late answer did not displace B's token.
    let again = b
        .call_client_function("auth.getAuthenticationToken", None)
        .await;
    assert_eq!(again["token"], got["b1"]);
    assert_eq!(fx.shop.token_requests(), 2);
}

/// Cookie mode (issue 23): the script cannot see the sign-in cookie (HttpOnly, and usually on
/// the token service's origin), so it cannot tell that the user changed. It keeps no token
/// between calls: each call asks the server, which reads the cookie. On the demo page, a
/// sign-in as B after A, with no reload, is seen at the next call; after sign-out, `null`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_mode_sees_a_new_sign_in_at_the_next_call() {
    let service = common::start(&[]).await;
    let b = Browser::start().await;
    b.goto(&service.url("/")).await;
    b.wait_for("window.chatAuth && window.lcwStandin", "the demo scripts")
        .await;
    // The demo page drops any earlier cookie as it loads: let that finish first.
    b.wait_for(
        "performance.getEntriesByName(location.origin + '/dev/sign-out')
           .some(function (e) { return e.responseEnd > 0; })",
        "the demo page's own sign-out",
    )
    .await;
    let session =
        "fetch(arguments[0], { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                       body: JSON.stringify({ sub: arguments[1] }) })
                     .then(function (r) { done(r.status); }, function (e) { done(String(e)); });";
    let mut subs = Vec::new();
    for sub in [SUB, OTHER_SUB] {
        let status = b
            .js_async(session, vec![json!("/dev/sign-in"), json!(sub)])
            .await;
        assert_eq!(status, 200);
        let r = b
            .call_client_function("auth.getAuthenticationToken", None)
            .await;
        let token = r["token"].as_str().unwrap_or_else(|| panic!("{r}"));
        subs.push(common::validate(&service, token).await["sub"].clone());
    }
    assert_eq!(subs, vec![json!(SUB), json!(OTHER_SUB)], "B chats as A");

    let status = b
        .js_async(session, vec![json!("/dev/sign-out"), json!(null)])
        .await;
    assert_eq!(status, 204);
    let r = b
        .call_client_function("auth.getAuthenticationToken", None)
        .await;
    assert_eq!(r["token"], Value::Null, "signed out, still B's token: {r}");
}

/// Sets the page's sign-in state read by its getter (`null`: signed out) and calls the client
/// function as the widget does.
async fn client_function_as(b: &Browser, id: Value) -> Value {
    b.js("window.__id = arguments[0];", vec![id]).await;
    b.call_client_function("auth.getAuthenticationToken", None)
        .await
}

/// Microsoft's widget code asks the client function for a token when a chat starts, hands it
/// to the chat SDK, and keeps using it while it has not expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_widget_code_starts_a_chat_with_a_service_token() {
    let name = "contoso.chat.getAuthToken";
    let fx = Fixture::start(&[("CHAT_AUTH_CLIENT_FUNCTION", name)]).await;
    let b = &fx.browser;
    fx.open_ms_widget_page("ms-start", name).await;
    let id = fx.sign_in().await;
    b.configure_identity(&id, true).await;

    let started = b.facade("startChat").await;
    assert_eq!(started["ok"], true, "{started}");
    let calls = started["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{started}");
    assert_eq!(calls[0]["name"], name);
    assert_eq!(calls[0]["outcome"], "token");
    assert!(
        calls[0]["ms"].as_f64().unwrap() < WIDGET_BOUND_MS,
        "{started}"
    );
    let token = calls[0]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        started["sent"],
        json!([{"call": "startChat", "token": token}])
    );
    let verdict = fx.validate(&token).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], SUB);
    assert_eq!(verdict["context"]["msdyn_cartvalue"], "120.50", "{verdict}");

    // Fresh: later calls carry the same token, and the client function is not asked again.
    b.facade("getConversationDetails").await;
    let ended = b.facade("endChat").await;
    assert_eq!(ended["ok"], true, "{ended}");
    assert_eq!(ended["calls"].as_array().unwrap().len(), 1, "{ended}");
    assert_eq!(ended["sent"][2], json!({"call": "endChat", "token": token}));
    assert_eq!(ended["widgetErrors"], json!([]));
    assert!(b.events("chat-auth:error").await.is_empty());
}

/// The long chat: the token expires, in real time, while the chat is open. Before the next
/// call (ending the chat), Microsoft's code asks the client function again, and the provider
/// fetches a fresh token instead of handing back the one it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_widget_code_asks_again_once_the_token_has_expired() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_ms_widget_page("ms-expiry", "auth.getAuthenticationToken")
        .await;
    // A 3-second token from the shop's endpoint: the service's own tokens live at least 60 s.
    b.use_token_url(&fx.shop.url("/api/token?ttl=3")).await;
    let started = b.facade("startChat").await;
    assert_eq!(started["ok"], true, "{started}");
    let first = started["sent"][0]["token"].as_str().unwrap().to_owned();
    assert_eq!(jti(&first), "1");

    // Wait, in real time, until the widget itself sees it as expired (now > exp, in seconds).
    b.wait_for(
        &format!("Math.floor(Date.now() / 1000) > {}", exp(&first)),
        "the token to expire",
    )
    .await;
    let ended = b.facade("endChat").await;
    assert_eq!(ended["ok"], true, "{ended}");
    let calls = ended["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "asked again once expired: {ended}");
    let second = calls[1]["token"].as_str().unwrap();
    assert_eq!(jti(second), "2", "a fresh token, not the cached one");
    assert_eq!(
        ended["sent"][1],
        json!({"call": "endChat", "token": second})
    );
    assert_eq!(fx.shop.token_requests(), 2);
    assert_eq!(ended["widgetErrors"], json!([]));
}

/// Where Microsoft's code refuses: a `null` from the provider (no identity) and a token that
/// has just expired. `/validate` judges that token as the widget does, within the leeway too;
/// one 20 s from expiry is taken by both, with a warning from `/validate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_widget_code_and_validate_refuse_the_same_tokens() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_ms_widget_page("ms-null", "auth.getAuthenticationToken")
        .await;
    b.js(
        "chatAuth.configure({ identityToken: function () { return null; } });",
        vec![],
    )
    .await;
    let refused = b.facade("startChat").await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("Authentication Setup Error"),
        "{refused}"
    );
    assert_eq!(refused["calls"][0]["outcome"], "null");
    assert_eq!(refused["sent"], json!([]), "the chat never reached the SDK");
    assert_eq!(refused["widgetErrors"].as_array().unwrap().len(), 1);
    let reasons: Vec<Value> = b
        .events("chat-auth:error")
        .await
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons, vec![json!("no_identity")]);

    // Tokens signed by the service that expired a second ago, and that expire in 20 s, handed
    // to the widget by a client function of the page's own.
    let now = common::now();
    for (exp, widget_takes) in [(now - 1, false), (now + 20, true)] {
        let token = common::token_expiring_at(&fx.service, SUB, exp).await;
        fx.open_ms_widget_page("ms-direct", "direct.fn").await;
        let r = b
            .js_async(
                "var t = arguments[0];
                 window.direct = { fn: function (cb) { cb(t); } };
                 __w.facade.startChat().then(function () { done({ ok: true, errors: __errors }); },
                   function (e) { done({ ok: false, errors: __errors }); });",
                vec![json!(token)],
            )
            .await;
        let verdict = fx.validate(&token).await;
        assert_eq!(r["ok"], widget_takes, "{r}");
        assert_eq!(verdict["active"], widget_takes, "{verdict}");
        if widget_takes {
            assert_eq!(verdict["warnings"][0]["code"], "expires_soon", "{verdict}");
        } else {
            assert_eq!(verdict["problems"][0]["code"], "expired", "{verdict}");
            assert!(
                r["errors"].to_string().contains("already expired"),
                "the widget's own reason: {r}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_from_an_unlisted_origin_cannot_read_a_token() {
    // `listed` admits the shop's origin; `unlisted` (development mode) admits only its own.
    let fx = Fixture::start(&[]).await;
    let unlisted = common::start(&[]).await;
    let b = &fx.browser;
    let url = fx.shop.page(
        "cors",
        &[
            Part::Src(unlisted.url("/provider.js")),
            Part::Src(unlisted.url("/dev/lcw-standin.js")),
        ],
    );
    b.goto(&url).await;
    b.wait_for("lcwStandin.registrations > 0", "setAuthTokenProvider")
        .await;
    // A valid identity for that service, as a bearer token: the browser still must not let
    // the shop's page read the answer.
    let id = common::sign_in(&unlisted, SUB, json!({})).await;
    b.configure_identity(&id, false).await;
    let chat = b.start_chat().await;
    assert_failed_with(b, &chat, "network").await;

    // The same request by hand, with the page's cookies too, against both services.
    let probe = "fetch(arguments[0], { headers: { Authorization: 'Bearer ' + arguments[1], Accept: 'application/json' },
                                      credentials: 'include' })
                   .then(function (r) { return r.json(); })
                   .then(function (j) { done({ token: typeof j.token }); }, function (e) { done({ error: e.name }); });";
    let refused = b
        .js_async(probe, vec![json!(unlisted.url("/token")), json!(id)])
        .await;
    assert_eq!(refused, json!({"error": "TypeError"}), "CORS must block it");
    let listed_id = fx.sign_in().await;
    let admitted = b
        .js_async(
            probe,
            vec![json!(fx.service.url("/token")), json!(listed_id)],
        )
        .await;
    assert_eq!(
        admitted,
        json!({"token": "string"}),
        "the listed origin is admitted"
    );

    // What the browser was told: the preflight from the shop's origin is refused outright.
    let preflight = common::client()
        .request(reqwest::Method::OPTIONS, unlisted.url("/token"))
        .header("Origin", fx.shop.origin())
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_starts_a_chat_with_a_verified_token() {
    let service = common::start(&[]).await;
    let b = Browser::start().await;
    b.goto(&service.url("/")).await;
    b.wait_for("window.chatAuth && window.lcwStandin", "the demo scripts")
        .await;

    // Sign in with the form's defaults (a fresh GUID) and a VIP flag.
    b.client
        .find(Locator::Css("#vip"))
        .await
        .unwrap()
        .select_by_label("true")
        .await
        .unwrap();
    click(&b, "#sign-in").await;
    b.wait_for(
        "document.querySelector('#signed-in-state.in')",
        "the signed-in state",
    )
    .await;
    click(&b, "#start-chat").await;
    b.wait_for(
        "/verified/.test(document.getElementById('verdict').textContent)",
        "the /validate verdict",
    )
    .await;
    let shown = b
        .js(
            "var t = function (id) { return document.getElementById(id).textContent; };
             return { status: t('status'), context: t('context'), claims: t('claims'), token: t('token'),
                      sub: document.getElementById('sub').value };",
            vec![],
        )
        .await;
    assert!(
        shown["status"].as_str().unwrap().contains("chat started"),
        "{shown}"
    );
    let context = shown["context"].as_str().unwrap();
    assert!(
        context.contains("msdyn_cartvalue") && context.contains("msdyn_isvip"),
        "{shown}"
    );
    let sub = shown["sub"].as_str().unwrap();
    assert!(shown["claims"].as_str().unwrap().contains(sub), "{shown}");
    assert_eq!(shown["token"].as_str().unwrap().split('.').count(), 3);
    let path = b.screenshot("demo-page.png").await;
    eprintln!("demo page screenshot: {}", path.display());

    // The sign-in cookie alone is an identity too (the page's getter dropped).
    let cookie_chat = {
        b.js("chatAuth.reset();", vec![]).await;
        b.start_chat().await
    };
    assert_eq!(cookie_chat["ok"], true, "{cookie_chat}");

    // Signing out drops the getter, the cached token and the cookie: the widget gets nothing.
    click(&b, "#sign-out").await;
    b.wait_for(
        "!document.querySelector('#signed-in-state.in')",
        "the signed-out state",
    )
    .await;
    click(&b, "#start-chat").await;
    let status = b
        .wait_for(
            "(function (s) { return /lcw:error|chat started/.test(s) && s; })(document.getElementById('status').textContent)",
            "the chat outcome",
        )
        .await;
    assert!(
        status.as_str().unwrap().contains("lcw:error 3"),
        "still signed in after sign-out: {status}"
    );
    b.screenshot("demo-page-signed-out.png").await;
}

async fn click(b: &Browser, css: &str) {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

//! `chatAuth.getToken` as the `getAuthToken` of Microsoft's headless Omnichannel Chat SDK
//! (`@microsoft/omnichannel-chat-sdk` from npm, unchanged, bundled by
//! `scripts/install-widget.sh`), the way a custom chat UI wires it:
//! `new OmnichannelChatSDK(omnichannelConfig, { getAuthToken: () => chatAuth.getToken() })`.
//!
//! The SDK's `orgUrl` is the shop's `/oc`, where [`omnichannel`] stands in for Omnichannel's live
//! chat endpoints and records every call with its `AuthenticatedUserToken` header. The SDK runs
//! offline through `initialize()`, the token step and `createConversation`, then stops where it
//! joins the conversation over Azure Communication Services: `startRealtimeNotifications()`, whose
//! client sends only over https and whose realtime signalling is Microsoft's own service, which
//! these tests do not stand in for. The SDK then ends the chat itself (`sessionclose`), and the
//! tests go on with the calls a chat UI makes after a chat (transcript, `endChat`) and with a
//! second chat.

use super::*;
use axum::http::{Method, Uri};

const ORG_ID: &str = "00000000-0000-0000-0000-0000000000c5";
const WIDGET_ID: &str = "00000000-0000-0000-0000-00000000d9e7";
/// The conversation the stand-in's `createConversation` answers with.
const CHAT_ID: &str = "19:chat-auth-tests@thread.v2";
/// The SDK's error when the conversation join fails, and the step it failed at: where the SDK
/// stops without Microsoft's services.
const JOIN_FAILURE: &str = "MessagingClientConversationJoinFailure";
const STOPS_AT: &str = "StartRealtimeNotificationsFailed";

/// Records every request the page's code makes (XHR, fetch, WebSocket) and lets none leave
/// loopback: the SDK must reach only the stand-in and the token service, whatever it tries.
const NETWORK_RECORDER: &str = r#"
window.__net = [];
(function () {
  var loopback = function (u) {
    try { return /^(127\.0\.0\.1|localhost)$/.test(new URL(String(u), location.href).hostname); }
    catch (e) { return false; }
  };
  var f = window.fetch;
  window.fetch = function (u) {
    var url = String((u && u.url) || u);
    __net.push(url);
    return loopback(url) ? f.apply(this, arguments) : Promise.reject(new TypeError("test page: loopback only"));
  };
  var open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (m, u) {
    __net.push(String(u));
    if (!loopback(u)) arguments[1] = "http://127.0.0.1:9/refused";
    return open.apply(this, arguments);
  };
  var WS = window.WebSocket;
  window.WebSocket = function (u, p) {
    __net.push(String(u));
    if (!loopback(u)) throw new Error("test page: loopback only");
    return new WS(u, p);
  };
})();
"#;

/// `chatSDK.make()`: one SDK as a custom chat UI makes it, with the README's `getAuthToken`
/// (plus a record of each time the SDK asked and what it got) and telemetry off (it would post
/// to Microsoft). `window.__sdk = {sdk, getAuthToken, asked}`.
const GLUE: &str = r#"
window.chatSDK = {
  make: function (orgId, widgetId) {
    var asked = [];
    var getAuthToken = function () {
      var t0 = performance.now(), rec = { token: null, ms: null };
      var p = chatAuth.getToken();
      rec.settled = Promise.resolve(p).then(
        function (t) { rec.token = t; rec.ms = performance.now() - t0; },
        function (e) { rec.rejected = String(e && (e.message || e.reason) || e); rec.ms = performance.now() - t0; });
      asked.push(rec);
      return p;
    };
    var sdk = new msChatSDK.OmnichannelChatSDK(
      { orgUrl: location.origin + "/oc", orgId: orgId, widgetId: widgetId },
      { getAuthToken: getAuthToken, telemetry: { disable: true } });
    window.__sdk = { sdk: sdk, getAuthToken: getAuthToken, asked: asked };
  }
};
"#;

impl Fixture {
    /// Opens a shop page with the provider script and Microsoft's chat SDK, and makes one SDK
    /// (`window.__sdk`) whose `orgUrl` is the shop's Omnichannel stand-in.
    async fn open_chat_sdk_page(&self, name: &str) {
        let url = self.shop.page(
            name,
            &[
                self.provider(),
                Part::Inline(NETWORK_RECORDER),
                Part::Src(self.shop.url("/ms-chat-sdk.js")),
                Part::Inline(GLUE),
            ],
        );
        self.browser.goto(&url).await;
        self.browser
            .wait_for("window.msChatSDK && window.chatAuth", "the chat SDK")
            .await;
        self.new_chat_sdk().await;
    }

    /// Replaces `window.__sdk` with a new SDK instance (a new chat UI session).
    async fn new_chat_sdk(&self) {
        self.browser
            .js(
                "chatSDK.make(arguments[0], arguments[1]);",
                vec![json!(ORG_ID), json!(WIDGET_ID)],
            )
            .await;
    }

    /// What the SDK sent to Omnichannel so far: `[{call, token}]`.
    fn omnichannel(&self) -> Vec<Value> {
        self.shop.state.omnichannel.lock().unwrap().clone()
    }
}

impl Browser {
    /// Evaluates `call`, a JavaScript expression over `sdk` and `getAuthToken` (the page's
    /// `window.__sdk`), and reports how its promise ended once every `getAuthToken` call so
    /// far has settled: `{ok, error?, details?, ms, asked: [{token, ms, rejected?}], net}`.
    /// `ms` is timed in the page, from the call to its end.
    async fn sdk(&self, call: &str) -> Value {
        self.js_async(
            "var call = arguments[0], s = window.__sdk, t0 = performance.now();
             var report = function (r) {
               r.ms = performance.now() - t0;
               Promise.all(s.asked.map(function (a) { return a.settled; })).then(function () {
                 r.asked = s.asked.map(function (a) { return { token: a.token, ms: a.ms, rejected: a.rejected }; });
                 r.net = __net;
                 done(JSON.parse(JSON.stringify(r)));
               });
             };
             Promise.resolve()
               .then(function () { return new Function('sdk', 'getAuthToken', 'return ' + call)(s.sdk, s.getAuthToken); })
               .then(function () { report({ ok: true }); },
                     function (e) { report({ ok: false, error: String(e && e.message), details: (e && e.exceptionDetails) || null }); });",
            vec![json!(call)],
        )
        .await
    }
}

/// Omnichannel's live chat endpoints (`{orgUrl}/livechatconnector/...`) as far as the SDK's
/// calls need answers: the widget's configuration (an authenticated widget), a new
/// conversation, and `{}` for the rest. Like Omnichannel, it refuses an `AuthenticatedUserToken`
/// past its `exp` (401): Microsoft's widget team found that a session outliving its token
/// "will fail to call close session endpoints or post surveys"
/// (microsoft/omnichannel-chat-widget#554). It checks nothing else of the token: the tests
/// check the tokens it recorded with the service's `/validate`.
pub(super) async fn omnichannel(
    State(state): State<ShopState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // "livechatconnector/[v2/][auth/]NAME/..." is named NAME; the conversation's path ends
    // with it.
    let endpoint = uri.path().trim_start_matches("/oc/");
    let call = if endpoint.ends_with("/conversation") {
        "conversation"
    } else {
        endpoint
            .split('/')
            .find(|s| {
                let version =
                    s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit());
                !["livechatconnector", "auth"].contains(s) && !version
            })
            .unwrap_or_default()
    };
    let token = headers
        .get("authenticatedusertoken")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let expired = token.as_deref().is_some_and(|t| {
        t.split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .and_then(|c| c["exp"].as_i64())
            .is_some_and(|exp| exp < common::now())
    });
    state.omnichannel.lock().unwrap().push(json!({
        "call": call, "method": method.as_str(), "token": token, "expired": expired,
    }));
    if expired {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let body = match call {
        "config" => json!({
            "LiveChatConfigAuthSettings": {
                "msdyn_name": "chat-auth", "msdyn_javascriptclientfunction": "auth.getAuthenticationToken",
            },
            "LiveWSAndLiveChatEngJoin": { "msdyn_conversationmode": "192350000" },
            "LiveChatVersion": 2,
            "ChatWidgetLanguage": { "msdyn_localeid": "1033" },
        }),
        // The ACS token only has to parse (a JWT with exp); the endpoint is plain http, which
        // ACS's client refuses before sending anything.
        "conversation" => json!({
            "ChatId": CHAT_ID, "Token": acs_token(), "RegionGtms": "{}", "ExpiresIn": "86400",
            "VisitorId": "8:acs:chat-auth-tests", "ACSEndpoint": format!("http://{host}/acs/"),
        }),
        _ => json!({}),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn acs_token() -> String {
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({"skypeid": "acs:chat-auth-tests", "exp": common::now() + 86_400});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc(json!({"alg": "RS256", "typ": "JWT"})),
        enc(claims)
    )
}

/// The token of each call to Omnichannel, by call name.
fn sent(calls: &[Value]) -> Vec<(String, Value)> {
    calls
        .iter()
        .map(|c| (c["call"].as_str().unwrap().to_owned(), c["token"].clone()))
        .collect()
}

fn tokens(r: &Value) -> Vec<Value> {
    r["asked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["token"].clone())
        .collect()
}

/// The transcript of the stand-in's conversation, asked after the chat as a chat UI does (with
/// the chat's context, since the SDK forgets the chat when it ends).
fn transcript() -> String {
    format!(
        "sdk.getLiveChatTranscript({{ liveChatContext: {{ requestId: 'r-1', chatToken: {{ chatId: '{CHAT_ID}', token: 'acs' }} }} }})"
    )
}

/// The SDK stopped where it needs Microsoft's services, after the calls this suite is about.
fn assert_stopped_at_realtime(start: &Value) {
    assert_eq!(start["ok"], false, "{start}");
    assert_eq!(start["error"], JOIN_FAILURE, "{start}");
    assert!(
        start["details"]["errorObject"]
            .as_str()
            .unwrap_or_default()
            .contains(STOPS_AT),
        "{start}"
    );
}

/// The page asked only the stand-in (the shop's `/oc/`) and a token endpoint on loopback:
/// nothing tried to reach Microsoft.
fn assert_loopback_only(r: &Value, fx: &Fixture) {
    for url in r["net"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        let token = url.starts_with("http://127.0.0.1:") && url.ends_with("/token");
        assert!(
            url.starts_with(&fx.shop.url("/oc/")) || token,
            "the page asked {url}"
        );
    }
}

/// Signed in: the SDK asks once, at `initialize()`, and sends that token, the one `/token`
/// minted for the user, in every call to Omnichannel: a second chat on the same instance too,
/// and after the user has signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_chat_sdk_sends_the_service_token_in_every_call() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_chat_sdk_page("sdk-session").await;
    let id = fx.sign_in().await;
    b.configure_identity(&id, true).await;

    let init = b.sdk("sdk.initialize()").await;
    assert_eq!(init["ok"], true, "{init}");
    let asked = tokens(&init);
    assert_eq!(asked.len(), 1, "initialize() asks for the token: {init}");
    let token = asked[0].as_str().expect("a token").to_owned();
    assert!(init["asked"][0]["ms"].as_f64().unwrap() < WIDGET_BOUND_MS);
    let verdict = fx.validate(&token).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], SUB);
    assert_eq!(verdict["context"]["msdyn_cartvalue"], "120.50", "{verdict}");

    let start = b.sdk("sdk.startChat()").await;
    assert_stopped_at_realtime(&start);
    assert_eq!(
        tokens(&start).len(),
        1,
        "startChat() used the token it held"
    );
    assert_eq!(
        sent(&fx.omnichannel()),
        vec![
            ("config".to_owned(), Value::Null),
            ("conversation".to_owned(), json!(token)),
            // The SDK's own clean-up of the conversation it could not join.
            ("sessionclose".to_owned(), json!(token)),
        ]
    );

    // After the chat: the transcript, a second chat, its end. Same token, never asked again.
    let transcript = b.sdk(&transcript()).await;
    assert_eq!(transcript["ok"], true, "{transcript}");
    assert_stopped_at_realtime(&b.sdk("sdk.startChat()").await);
    assert_eq!(tokens(&b.sdk("sdk.endChat()").await), vec![json!(token)]);

    // Sign-out does not reach the SDK: handed a provider that answers null, it keeps the token
    // it holds (Microsoft's widget drops it itself: authHelper's removeAuthTokenProvider).
    b.js(
        "chatAuth.configure({ identityToken: function () { return null; } });",
        vec![],
    )
    .await;
    let out = b.sdk("sdk.setAuthTokenProvider(getAuthToken)").await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(tokens(&out), vec![json!(token), Value::Null]);
    let end = b.sdk("sdk.endChat()").await;
    assert_eq!(end["ok"], true, "{end}");

    let calls = sent(&fx.omnichannel());
    assert_eq!(
        calls[3..]
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>(),
        [
            "getchattranscripts",
            "conversation",
            "sessionclose",
            "sessionclose",
            "sessionclose"
        ],
        "{calls:?}"
    );
    assert!(
        calls[1..].iter().all(|(_, t)| *t == json!(token)),
        "{calls:?}"
    );
    assert_eq!(b.events("chat-auth:token").await.len(), 1);
    let errors = b.events("chat-auth:error").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["reason"], "no_identity");
    assert_loopback_only(&end, &fx);
}

/// The SDK never looks at `exp`: past it, it keeps sending the token it holds, and the calls after
/// the chat are refused (by the stand-in, as by Omnichannel). Handing it a new token the way Microsoft's widget does
/// (`setAuthTokenProvider`, from `handleAuthentication`) ends that; `chatAuth.getToken` then
/// answers with a fresh token, not the expired one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_chat_sdk_keeps_its_token_past_exp_until_handed_a_new_one() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_chat_sdk_page("sdk-expiry").await;
    // A 2-second token from the shop's endpoint: the service's own tokens live at least 60 s.
    b.use_token_url(&fx.shop.url("/api/token?ttl=2")).await;
    let init = b.sdk("sdk.initialize()").await;
    let first = init["asked"][0]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_stopped_at_realtime(&b.sdk("sdk.startChat()").await);
    assert_eq!(fx.omnichannel()[1]["token"], json!(first));

    // Real time, as the widget tests do: the SDK's own code reads no clock to shift.
    b.wait_for(
        &format!("Math.floor(Date.now() / 1000) > {}", exp(&first)),
        "the token to expire",
    )
    .await;
    let late = b.sdk(&transcript()).await;
    assert_eq!(late["ok"], false, "{late}");
    assert_eq!(
        late["error"], "LiveChatTranscriptRetrievalFailure",
        "{late}"
    );
    let end = b.sdk("sdk.endChat()").await;
    assert_eq!(end["ok"], false, "{end}");
    assert_eq!(end["error"], "ConversationClosureFailure", "{end}");
    assert_eq!(tokens(&end).len(), 1, "the SDK did not ask again: {end}");
    assert_eq!(fx.shop.token_requests(), 1);
    let calls = fx.omnichannel();
    assert_eq!(calls.len(), 5, "{calls:?}");
    for c in &calls[3..] {
        assert_eq!(
            (&c["token"], &c["expired"]),
            (&json!(first), &json!(true)),
            "{calls:?}"
        );
    }

    let renewed = b.sdk("sdk.setAuthTokenProvider(getAuthToken)").await;
    assert_eq!(renewed["ok"], true, "{renewed}");
    let second = renewed["asked"][1]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_eq!(jti(&second), "2", "a fresh token, not the expired one");
    let again = b.sdk(&transcript()).await;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(
        fx.omnichannel().last().unwrap()["token"],
        json!(second),
        "{again}"
    );
}

/// No token (signed out, or the token endpoint down): `getAuthToken` resolves `null` at once,
/// `startChat()` rejects with the SDK's `UndefinedAuthToken` and nothing reaches Omnichannel.
/// The SDK keeps no `null`: after sign-in the same instance asks again and starts the chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_chat_sdk_without_a_token_starts_no_chat() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_chat_sdk_page("sdk-anonymous").await;
    b.js(
        "chatAuth.configure({ identityToken: function () { return null; } });",
        vec![],
    )
    .await;
    // initialize() asks too, but an authenticated widget without a token initialises all
    // the same (the SDK's "backward compatibility"): only startChat() refuses.
    let init = b.sdk("sdk.initialize()").await;
    assert_eq!(init["ok"], true, "{init}");
    let start = b.sdk("sdk.startChat()").await;
    assert_eq!(start["ok"], false, "{start}");
    assert_eq!(start["error"], "UndefinedAuthToken", "{start}");
    assert_eq!(tokens(&start), vec![Value::Null, Value::Null], "{start}");
    assert_eq!(
        sent(&fx.omnichannel()),
        vec![("config".to_owned(), Value::Null)]
    );
    let reasons: Vec<Value> = b
        .events("chat-auth:error")
        .await
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons, vec![json!("no_identity"), json!("no_identity")]);

    // The customer signs in; the same SDK instance starts the chat with their token.
    let id = fx.sign_in().await;
    b.configure_identity(&id, false).await;
    let start = b.sdk("sdk.startChat()").await;
    assert_stopped_at_realtime(&start);
    let token = start["asked"][2]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_eq!(fx.omnichannel()[1]["call"], "conversation");
    assert_eq!(fx.omnichannel()[1]["token"], json!(token));
    assert_eq!(fx.validate(&token).await["sub"], SUB);

    // The token endpoint down: a new chat UI session gets null at once, not at the timeout.
    fx.new_chat_sdk().await;
    b.use_token_url(&closed_url("/token")).await;
    b.clear_records().await;
    let before = fx.omnichannel().len();
    b.sdk("sdk.initialize()").await;
    let down = b.sdk("sdk.startChat()").await;
    assert_eq!(down["error"], "UndefinedAuthToken", "{down}");
    assert!(
        ms(&down) < 5_000.0,
        "a refused connection is not a timeout: {down}"
    );
    assert_eq!(
        sent(&fx.omnichannel()[before..]),
        vec![("config".to_owned(), Value::Null)]
    );
    assert_eq!(b.events("chat-auth:error").await[0]["reason"], "network");
    assert_loopback_only(&down, &fx);
}

/// A token endpoint that never answers in time: `getAuthToken` resolves `null` within the 10 s
/// (the provider gives up at 8 s) and `startChat()` rejects then, instead of hanging: the SDK
/// has no time limit of its own on `getAuthToken`. Real time, as in the provider's own test
/// of that limit (`a_token_endpoint_slower_than_the_widget_allows_gives_null_within_10_s`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_chat_sdk_gets_null_within_10_s_from_a_hanging_token_endpoint() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    fx.open_chat_sdk_page("sdk-hang").await;
    b.use_token_url(&fx.shop.url("/api/token?delay_ms=20000"))
        .await;
    // No wait for initialize()'s token: startChat() asks at once and joins the same request.
    let start = b
        .sdk("sdk.initialize().then(function () { return sdk.startChat(); })")
        .await;
    assert_eq!(start["ok"], false, "{start}");
    assert_eq!(start["error"], "UndefinedAuthToken", "{start}");
    let t = ms(&start);
    assert!((7_500.0..9_500.0).contains(&t), "startChat ended at {t} ms");
    for a in start["asked"].as_array().unwrap() {
        assert_eq!(a["token"], Value::Null, "{start}");
        assert!(a["ms"].as_f64().unwrap() < WIDGET_BOUND_MS, "{start}");
    }
    assert_eq!(fx.shop.token_requests(), 1, "one request, shared");
    assert_eq!(
        sent(&fx.omnichannel()),
        vec![("config".to_owned(), Value::Null)]
    );
}

/// `getAuthToken: () => Promise<string | null>` allows nothing else: whatever `getToken` is
/// called with, before or after `configure()`, whatever the identity getter or the page's
/// `fetch` does, the promise resolves (a token or `null`), and a failure leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_token_resolves_whatever_it_is_called_with_and_whatever_fails() {
    let fx = Fixture::start(&[]).await;
    let b = &fx.browser;
    let url = fx.shop.page("get-token", &[fx.provider()]);
    b.goto(&url).await;
    b.wait_for("window.chatAuth", "the provider").await;
    let r = b
        .js_async(
            "var shopToken = arguments[0], realFetch = window.fetch, out = [];
             var getter = function (g) { return function () { chatAuth.configure({ identityToken: g }); }; };
             var cases = [
               // No configure() yet: cookie mode, and this page has no cookie for the service.
               ['before configure', function () {}, function () { return chatAuth.getToken(); }],
               ['a callback argument', function () {}, function () { return chatAuth.getToken(function () {}); }],
               ['odd arguments', function () {}, function () { return chatAuth.getToken({ isMidAuthEnabled: true }, 42, 'x'); }],
               ['detached', function () {}, function () { var g = chatAuth.getToken; return g.call(undefined); }],
               ['getter throws', getter(function () { throw new Error('idp down'); }), null],
               ['getter answers a number', getter(function () { return 42; }), null],
               ['getter answers an object', getter(function () { return { token: 'x' }; }), null],
               ['getter answers true', getter(function () { return true; }), null],
               ['getter answers an array', getter(function () { return ['x']; }), null],
               ['getter answers a bad thenable', getter(function () { return { then: function () { throw new Error('x'); } }; }), null],
               ['fetch throws', function () {
                  chatAuth.configure({ tokenUrl: shopToken, identityToken: function () { return 'id'; } });
                  window.fetch = function () { throw new TypeError('a page wrapper that throws'); };
                }, null],
               ['fetch throws again', function () {}, null],
               ['fetch works again', function () { window.fetch = realFetch; }, null],
             ];
             var next = function (i) {
               if (i == cases.length) return done(out);
               var c = cases[i], t0 = performance.now();
               c[1]();
               var p;
               try { p = (c[2] || function () { return chatAuth.getToken(); })(); }
               catch (e) { out.push({ name: c[0], threw: String(e) }); return next(i + 1); }
               p.then(function (t) { out.push({ name: c[0], token: t, ms: performance.now() - t0 }); next(i + 1); },
                      function (e) { out.push({ name: c[0], rejected: String(e), ms: performance.now() - t0 }); next(i + 1); });
             };
             next(0);",
            vec![json!(fx.shop.url("/api/token"))],
        )
        .await;
    let out = r.as_array().unwrap();
    assert_eq!(out.len(), 13, "{r}");
    for c in out {
        assert!(
            c.get("threw").is_none() && c.get("rejected").is_none(),
            "{c}"
        );
        assert!(ms(c) < 2_000.0, "{c}");
        if c["name"] == "fetch works again" {
            let t = c["token"].as_str().unwrap_or_else(|| panic!("{r}"));
            assert_eq!(jti(t), "1", "{c}");
        } else {
            assert_eq!(c["token"], Value::Null, "{c}");
        }
    }
    let reasons: Vec<String> = b
        .events("chat-auth:error")
        .await
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = vec!["unauthenticated"; 4];
    expected.extend(["no_identity"; 6]);
    expected.extend(["network"; 2]);
    assert_eq!(reasons, expected);
    assert_eq!(
        fx.shop.token_requests(),
        1,
        "only the last call reached the shop"
    );
}

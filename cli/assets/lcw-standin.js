/* Stand-in for Omnichannel's live chat widget (LCW v1 script API), for the demo page and the
 * browser tests. The script loader behind this API is closed source, so this follows the
 * documented contract only: it asks the page for a token the way the widget does and reports
 * failures with the documented error codes. It never talks to Omnichannel.
 *
 * What the widget does with the token itself is not imitated beyond one check: the browser tests
 * run Microsoft's own code for that (FacadeChatSDK and authHelper from
 * @microsoft/omnichannel-chat-widget, see tests/widget/). The stand-in's validity check is the
 * facade's, no stricter: three segments, a payload that decodes to JSON, and an `exp` (if any,
 * 13 digits read as milliseconds) that has not passed. It does not check alg, iss, sub or the
 * signature (POST /validate on the token service does that).
 *
 *   Microsoft.Omnichannel.LiveChatWidget.SDK.setAuthTokenProvider(fn)  throws if fn is not a function
 *   Microsoft.Omnichannel.LiveChatWidget.SDK.startChat()  -> Promise<{ok, token?, elapsedMs?, errorCode?}>
 *   window events: lcw:ready, lcw:chatStarted {token}, lcw:error {errorCode, errorDescription}
 *   window.lcwStandin = { timeoutMs, registrations, startChat }
 *     (timeoutMs may be set before loading; registrations counts the providers
 *      setAuthTokenProvider accepted)
 */
(function (w) {
  "use strict";

  // The documented errorDescription of each code (error-code-reference).
  var DESCRIPTIONS = {
    2: "Auth token provider method execution failed",
    3: "Auth token provider didn't provide any token",
    4: "Auth token provider provided invalid token"
  };

  // Keep settings a test may have put on window.lcwStandin before this script loaded.
  var pre = w.lcwStandin || {};
  var standin = {
    timeoutMs: typeof pre.timeoutMs == "number" ? pre.timeoutMs : 10000,
    registrations: 0, // providers accepted by setAuthTokenProvider
    startChat: null
  };
  var provider = null;

  function emit(name, detail) {
    w.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  // FacadeChatSDK.extractExpFromToken + setToken: the payload is decoded with atob (after
  // base64url -> base64), a falsy exp means "never expires", 13 digits are milliseconds, and the
  // token is refused when exp < now in whole seconds, with no leeway.
  function widgetAccepts(t) {
    if (typeof t != "string") return false;
    var parts = t.split(".");
    if (parts.length != 3) return false;
    try {
      var claims = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")));
      if (!claims) return false;
      var exp = claims.exp || 0;
      if (String(exp).length === 13) exp = Math.floor(exp / 1000);
      return !(exp > 0 && exp < Math.floor(Date.now() / 1000));
    } catch (e) {
      return false;
    }
  }

  function startChat() {
    return new Promise(function (resolve) {
      var started = Date.now();
      var settled = false, timer = null;

      function fail(code) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        emit("lcw:error", { errorCode: code, errorDescription: DESCRIPTIONS[code] });
        resolve({ ok: false, errorCode: code });
      }

      function callback(token) {
        if (settled) return; // late or repeated answers are ignored, like the widget does
        if (token == null || token === "") return fail(3);
        if (!widgetAccepts(token)) return fail(4);
        settled = true;
        clearTimeout(timer);
        emit("lcw:chatStarted", { token: token });
        resolve({ ok: true, token: token, elapsedMs: Date.now() - started });
      }

      var fn = provider;
      if (!fn) return fail(3);

      timer = setTimeout(function () { fail(3); }, standin.timeoutMs);
      try {
        var ret = fn(callback);
        // An async provider that rejects has failed just like one that throws.
        if (ret && typeof ret.then == "function") ret.then(null, function () { fail(2); });
      } catch (e) {
        fail(2);
      }
    });
  }
  standin.startChat = startChat;

  var M = (w.Microsoft = w.Microsoft || {});
  var O = (M.Omnichannel = M.Omnichannel || {});
  var L = (O.LiveChatWidget = O.LiveChatWidget || {});
  L.SDK = {
    setAuthTokenProvider: function (fn) {
      if (typeof fn != "function") throw new Error("authTokenProvider is not a function");
      provider = fn;
      standin.registrations++;
    },
    removeAuthTokenProvider: function () {
      provider = null;
    },
    startChat: startChat
  };
  w.lcwStandin = standin;

  // Asynchronously, so listeners registered right after this script loads still see it.
  setTimeout(function () { emit("lcw:ready", {}); }, 0);
})(window);

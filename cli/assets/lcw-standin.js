/* Stand-in for Omnichannel's live chat widget (LCW v1 script API), for the demo page and
 * browser tests. It follows the documented contract only: it asks the page for a token the
 * way the widget does and reports failures with the widget's error codes. It never talks to
 * Omnichannel, and its checks are structural: it does not verify the signature (POST /validate
 * on the token service does that).
 *
 *   Microsoft.Omnichannel.LiveChatWidget.SDK.setAuthTokenProvider(fn)  throws if fn is not a function
 *   Microsoft.Omnichannel.LiveChatWidget.SDK.startChat()  -> Promise<{ok, token?, elapsedMs?, errorCode?}>
 *   window events: lcw:ready, lcw:chatStarted {token}, lcw:error {errorCode, message}
 *   window.lcwStandin = { clientFunction, timeoutMs, registrations, startChat }
 *     (clientFunction and timeoutMs may be set before loading; registrations counts the
 *      providers setAuthTokenProvider accepted)
 */
(function (w) {
  "use strict";

  var MESSAGES = {
    2: "Auth token provider method execution failed",
    3: "Auth token provider didn't provide any token",
    4: "Auth token provider provided invalid token",
    8: "Authentication client function not found on the page"
  };

  // Keep settings a test may have put on window.lcwStandin before this script loaded.
  var pre = w.lcwStandin || {};
  var standin = {
    clientFunction: pre.clientFunction || "auth.getAuthenticationToken",
    timeoutMs: typeof pre.timeoutMs == "number" ? pre.timeoutMs : 10000,
    registrations: 0, // providers accepted by setAuthTokenProvider
    startChat: null
  };
  var provider = null;

  function emit(name, detail) {
    w.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function lookup(path) {
    var o = w, parts = String(path || "").split(".");
    for (var i = 0; i < parts.length; i++) {
      if (o == null || !parts[i]) return undefined;
      o = o[parts[i]];
    }
    return o;
  }

  function decodeSegment(s) {
    var bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // The checks the widget can make in the browser: shape, RS256, required claims, not expired.
  function isWellFormedJwt(t) {
    if (typeof t != "string") return false;
    var parts = t.split(".");
    if (parts.length != 3) return false;
    for (var i = 0; i < 3; i++) if (!/^[A-Za-z0-9_-]+$/.test(parts[i])) return false;
    try {
      var header = decodeSegment(parts[0]);
      var claims = decodeSegment(parts[1]);
      var now = Date.now() / 1000;
      return !!header && header.alg === "RS256" &&
        !!claims && typeof claims.exp == "number" && claims.exp > now &&
        typeof claims.iat == "number" &&
        typeof claims.iss == "string" && claims.iss !== "" &&
        typeof claims.sub == "string" && claims.sub !== "";
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
        emit("lcw:error", { errorCode: code, message: MESSAGES[code] });
        resolve({ ok: false, errorCode: code });
      }

      function callback(token) {
        if (settled) return; // late or repeated answers are ignored, like the widget does
        if (token == null || token === "") return fail(3);
        if (!isWellFormedJwt(token)) return fail(4);
        settled = true;
        clearTimeout(timer);
        emit("lcw:chatStarted", { token: token });
        resolve({ ok: true, token: token, elapsedMs: Date.now() - started });
      }

      var fn = provider;
      if (!fn) {
        var named = lookup(standin.clientFunction);
        if (typeof named == "function") fn = named;
      }
      if (!fn) return fail(8);

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
